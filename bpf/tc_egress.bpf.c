// SPDX-License-Identifier: GPL-2.0-only
/*
 * Egress observation at TC (doc/design.md §4-§6). What the local stack
 * sends can be trusted, so this side:
 *  - notes each SYN-ACK's ISN, which the client's ACK must acknowledge for
 *    a connection to be admitted at ingress (a new handshake on a tracked
 *    tuple also ends the old flow: the kernel let it go);
 *  - ends a request at the first server payload after its start: its
 *    latency, from the request's last client payload (what the server
 *    controls), goes into the class's histogram, and under admit =
 *    requests its slot is given back;
 *  - follows what the server acknowledged, which tells a client's new
 *    bytes from a retransmission;
 *  - ends the flow on the server's FIN or RST.
 * The program never changes or drops a packet.
 */
#include <linux/pkt_cls.h>
#include "parse.h"
#include "flow.h"

/* Enough for Ethernet, two tags, IPv6 with extension headers and TCP. */
#define LS_PULL_LEN 256

/*
 * A request's latency into its class's histogram, and into its service's
 * probe histogram when a probe runs and the request was admitted since it
 * began (one admitted before saw the limit the probe replaced).
 */
static __always_inline void ls_record_latency(__u64 req, __u64 now, __u64 ns)
{
	__u32 svc = ls_slot_svc(req), cls = ls_slot_cls(req);
	__u32 idx = ls_class_index(svc, cls);
	struct ls_latency_hist *h;
	struct ls_probe *pr;
	__u64 epoch;

	if (svc >= LS_MAX_SERVICES || cls >= LS_MAX_CLASSES)
		return;
	h = bpf_map_lookup_elem(&ls_latency, &idx);
	if (h)
		ls_hist_add(h, ns);
	pr = bpf_map_lookup_elem(&ls_probe, &svc);
	if (!pr)
		return;
	epoch = READ_ONCE(pr->epoch_ns);
	if (epoch && ls_slot_since(req, epoch, now))
		ls_hist_add(&pr->hist, ns);
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

/*
 * A SYN-ACK: the ISN the handshake's ACK must acknowledge and the sequence
 * number it must carry (this SYN-ACK's acknowledgment), in a way of the
 * tuple's set: the tuple's own, else an empty one, else the oldest.
 */
static __always_inline void ls_on_synack(const struct ls_pkt *p)
{
	__u32 now = (__u32)(bpf_ktime_get_coarse_ns() / 1000000) | 1;
	struct ls_handshake *same = NULL, *victim;
	__u32 tag, oldest = 0, word;
	struct ls_hs_set *set;
	struct ls_flow *f;
	int i;

	set = ls_hs_set_for(&p->key, &tag);
	if (!set)
		return;
	victim = &set->way[0];
#pragma unroll
	for (i = 0; i < LS_HS_WAYS; i++) {
		struct ls_handshake *w = &set->way[i];
		__u32 sent = READ_ONCE(w->sent_ms);
		__u32 age = sent ? now - sent : 0xffffffff;

		if (sent && READ_ONCE(w->word) >> 16 == tag) {
			same = w;
			break;
		}
		if (age >= oldest) {
			oldest = age;
			victim = w;
		}
	}
	/*
	 * A retransmitted SYN-ACK (the kernel dropped the ACK, its accept queue
	 * full, say) is the same handshake, perhaps completed: it ends nothing.
	 * The same ISN on a used way whose tuple has no flow is a new connection
	 * (SYN cookies repeat an ISN within their minute): its way opens again.
	 */
	if (same && READ_ONCE(same->isn) == p->seq) {
		word = READ_ONCE(same->word);
		if (ls_hs_state(word) == LS_HS_USED && !bpf_map_lookup_elem(&ls_flows, &p->key) &&
		    __sync_val_compare_and_swap(&same->word, word, ls_hs_word(tag, LS_HS_OPEN)) ==
			    word)
			WRITE_ONCE(same->cli_seq, p->ack_seq);
		WRITE_ONCE(same->sent_ms, now);
		return;
	}
	f = bpf_map_lookup_elem(&ls_flows, &p->key);
	if (f && READ_ONCE(f->srv_isn) == p->seq && p->seq)
		return;
	/* A new handshake on the tuple: the kernel let the old connection go. */
	if (f)
		ls_flow_end(&p->key, f, LS_END_REUSED);
	if (same)
		victim = same;
	/*
	 * The way is taken over with plain stores: an ACK racing with them may
	 * read a tag and an ISN that do not belong together, and then finds no
	 * handshake (its connection is adopted at its first request); it cannot
	 * find one its client did not complete.
	 */
	WRITE_ONCE(victim->sent_ms, 0);
	WRITE_ONCE(victim->word, ls_hs_word(tag, LS_HS_OPEN));
	WRITE_ONCE(victim->isn, p->seq);
	WRITE_ONCE(victim->cli_seq, p->ack_seq);
	WRITE_ONCE(victim->sent_ms, now);
}

SEC("tc")
int ls_tc_egress(struct __sk_buff *skb)
{
	struct ls_class_stats *st;
	struct ls_port *port;
	struct ls_flow *f;
	struct ls_pkt p;
	__u64 req, now;
	__u32 key, end;
	__u8 state;

	if (ls_parse_skb(skb, &p) != LS_PARSE_TCP)
		return TC_ACT_OK;
	key = bpf_ntohs(p.key.server_port);
	port = bpf_map_lookup_elem(&ls_ports, &key);
	if (!port || !*(__u32 *)port)
		return TC_ACT_OK;
	if ((p.tcp_flags & (LS_TCP_SYN | LS_TCP_ACK | LS_TCP_RST)) == (LS_TCP_SYN | LS_TCP_ACK)) {
		ls_on_synack(&p);
		return TC_ACT_OK;
	}
	f = bpf_map_lookup_elem(&ls_flows, &p.key);
	if (!f)
		return TC_ACT_OK;
	if (p.tcp_flags & LS_TCP_RST) {
		ls_flow_end(&p.key, f, LS_END_RST);
		return TC_ACT_OK;
	}
	now = bpf_ktime_get_coarse_ns();
	if (f->last_seen_ns != now)
		f->last_seen_ns = now;
	/* The server still talks on it: a client RST it got was not taken. */
	if (f->flags & (LS_FLOW_RST_SUSPECT | LS_FLOW_SUSPECT_SENT))
		__sync_fetch_and_and(&f->flags, ~(LS_FLOW_RST_SUSPECT | LS_FLOW_SUSPECT_SENT));
	if ((p.tcp_flags & LS_TCP_ACK) && LS_SEQ_AFTER(p.ack_seq, READ_ONCE(f->cli_acked)))
		WRITE_ONCE(f->cli_acked, p.ack_seq);
	/*
	 * New server bytes end the outstanding request, also when the segment
	 * carries the FIN too: a small response written just before close()
	 * leaves that way, and it must not lose its sample to the flow's end.
	 * A retransmission of an earlier answer ends nothing.
	 */
	if (p.payload_len && LS_SEQ_AFTER(p.seq + p.payload_len, READ_ONCE(f->srv_next))) {
		end = p.seq + p.payload_len;
		WRITE_ONCE(f->srv_next, end);
		req = ls_req_release(f);
		if (req && !(READ_ONCE(f->flags) & LS_FLOW_NO_SAMPLE)) {
			now = bpf_ktime_get_ns();
			ls_record_latency(req, now, now - READ_ONCE(f->req_last_ns));
		}
		state = READ_ONCE(f->state);
		if (!req && state == LS_FLOW_IDLE) {
			/* Nobody asked: a server that speaks first. */
			st = ls_stats_of(f->svc, f->cls);
			if (st)
				st->server_first++;
		}
		/* A deferred or aborted flow stays so whatever the server sends meanwhile. */
		if (state == LS_FLOW_IDLE || state == LS_FLOW_REQUEST)
			WRITE_ONCE(f->state, LS_FLOW_RESPONSE);
	}
	if (p.tcp_flags & LS_TCP_FIN)
		ls_flow_end(&p.key, f, LS_END_FIN);
	return TC_ACT_OK;
}
