// SPDX-License-Identifier: GPL-2.0-only
/*
 * Egress observation at TC. The first server payload after a request
 * start ends the request: its time to first byte, queueing included, goes
 * into the class's latency histogram. A FIN or RST from the server ends
 * the flow. The program never changes or drops a packet.
 */
#include <linux/pkt_cls.h>
#include "parse.h"
#include "flow.h"

/* Enough for Ethernet, two tags, IPv6 with extension headers and TCP. */
#define LS_PULL_LEN 256

static __always_inline void ls_record_latency(__u32 svc, __u32 cls, __u64 ns)
{
	__u32 idx = ls_class_index(svc, cls), b;
	struct ls_latency_hist *h;

	h = bpf_map_lookup_elem(&ls_latency, &idx);
	if (!h)
		return;
	h->count++;
	h->sum_ns += ns;
	if (!h->min_ns || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	b = ls_hist_bucket(ns);
	/* The compiler knows b is in range; the verifier must be shown. */
	barrier_var(b);
	if (b < LS_HIST_BUCKETS)
		h->buckets[b]++;
}

static __always_inline enum ls_parse_result ls_parse_skb(struct __sk_buff *skb, struct ls_pkt *p)
{
	enum ls_parse_result r;

	r = ls_parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, LS_DIR_EGRESS,
		     p);
	if (r != LS_PARSE_MALFORMED || skb->data_end - skb->data >= skb->len)
		return r;
	/* Headers may lie beyond the linear part: pull them in once. */
	if (bpf_skb_pull_data(skb, skb->len < LS_PULL_LEN ? skb->len : LS_PULL_LEN))
		return r;
	return ls_parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len,
			LS_DIR_EGRESS, p);
}

SEC("tc")
int ls_tc_egress(struct __sk_buff *skb)
{
	struct ls_port *port;
	struct ls_flow *f;
	struct ls_pkt p;
	__u64 start;
	__u32 key;

	if (ls_parse_skb(skb, &p) != LS_PARSE_TCP)
		return TC_ACT_OK;
	key = bpf_ntohs(p.key.server_port);
	port = bpf_map_lookup_elem(&ls_ports, &key);
	if (!port || !*(__u32 *)port)
		return TC_ACT_OK;
	f = bpf_map_lookup_elem(&ls_flows, &p.key);
	if (!f)
		return TC_ACT_OK;
	/*
	 * Payload ends the outstanding request, also when the segment carries
	 * the FIN too: a small response written just before close() leaves
	 * that way, and it must not lose its sample to the flow's end.
	 */
	if (p.payload_len && !(p.tcp_flags & LS_TCP_RST) && f->req_start_ns) {
		start = __sync_lock_test_and_set(&f->req_start_ns, 0);
		if (start)
			ls_record_latency(f->svc, f->cls, bpf_ktime_get_ns() - start);
	}
	if (p.tcp_flags & (LS_TCP_RST | LS_TCP_FIN))
		ls_flow_end(&p.key, f, p.tcp_flags & LS_TCP_RST ? LS_END_RST : LS_END_FIN);
	return TC_ACT_OK;
}
