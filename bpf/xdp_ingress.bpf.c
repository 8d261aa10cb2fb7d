// SPDX-License-Identifier: GPL-2.0-only
/*
 * Ingress admission at XDP. A SYN to a protected service is classified,
 * checked against its service's concurrency limit and its class's
 * guarantee, and then admitted (tracked as a flow), or shed with a drop or
 * a RST. Every other segment passes: dropping a packet of an admitted
 * connection sheds no work, it only causes a retransmit. Segments of
 * tracked flows refresh the flow, stamp request starts for the latency
 * measurement and end the flow on FIN or RST.
 */
#include "parse.h"
#include "flow.h"

/* Returns the service the packet is addressed to, or -1. */
static __always_inline int ls_service_of(__u32 gen, const struct ls_port *port,
					 const struct ls_pkt *p)
{
	if (port->by_addr[gen]) {
		struct ls_svc_addr_key k = {.gen = gen, .port = bpf_ntohs(p->key.server_port)};
		__u32 *svc;

		__builtin_memcpy(k.addr, p->key.server, sizeof(k.addr));
		svc = bpf_map_lookup_elem(&ls_svc_addrs, &k);
		if (svc && *svc < LS_MAX_SERVICES)
			return *svc;
	}
	if (port->any_svc[gen] && port->any_svc[gen] <= LS_MAX_SERVICES)
		return port->any_svc[gen] - 1;
	return -1;
}

/* The first rule that matches gives the class; no match, the default. */
static __always_inline __u32 ls_class_of(const struct ls_service_policy *pol, __u32 gen, __u32 svc,
					 const struct ls_pkt *p)
{
	__u16 dport = bpf_ntohs(p->key.server_port);
	__u32 mask = 0, i;

	if (pol->flags & LS_SVC_PREFIX_RULES) {
		struct ls_prefix_key k = {
			.prefixlen = LS_PREFIX_KEY_FIXED_BITS + 128,
			.gen = gen,
			.svc = svc,
		};
		__u32 *m;

		__builtin_memcpy(k.addr, p->key.client, sizeof(k.addr));
		m = bpf_map_lookup_elem(&ls_src_prefixes, &k);
		if (m)
			mask = *m;
	}
	for (i = 0; i < LS_MAX_RULES; i++) {
		const struct ls_rule *r = &pol->rules[i];

		if (i >= pol->nr_rules)
			break;
		if (r->has_prefix && !(mask & (1u << i)))
			continue;
		if (r->port_hi && (dport < r->port_lo || dport > r->port_hi))
			continue;
		if (r->dscp != LS_DSCP_ANY && r->dscp != p->dscp)
			continue;
		return r->cls;
	}
	return pol->default_class;
}

/*
 * The partition rule, as one step: admit if the service's total is under
 * L, else if the class is under its guarantee. The check and the
 * increment happen under the service's lock, so no interleaving of CPUs
 * admits past L or past a guarantee (two counters cannot be checked
 * together by atomics alone). Flows end with lock-free decrements: a
 * check may see a count about to drop and shed, never the reverse.
 */
static __always_inline int ls_admit(struct ls_inflight *inf, const struct ls_limits *lim, __u32 svc,
				    __u32 cls)
{
	__s32 limit = (__s32)lim->limit, guarantee = (__s32)lim->guarantee[cls];
	struct ls_admit_lock *l;
	int ok;

	/* Over both bounds: shed without a write to the shared line (a SYN flood's path). */
	if (READ_ONCE(inf->total) >= limit && READ_ONCE(inf->cls[cls]) >= guarantee)
		return 0;
	l = bpf_map_lookup_elem(&ls_admit_lock, &svc);
	if (!l)
		return 0;
	bpf_spin_lock(&l->lock);
	ok = inf->total < limit || inf->cls[cls] < guarantee;
	if (ok) {
		__sync_fetch_and_add(&inf->total, 1);
		__sync_fetch_and_add(&inf->cls[cls], 1);
	}
	bpf_spin_unlock(&l->lock);
	return ok;
}

static __always_inline __u32 ls_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline __u32 ls_csum_words(const void *buf, int len, __u32 sum)
{
	const __u16 *w = buf;
	int i;

#pragma unroll
	for (i = 0; i < len / 2; i++)
		sum += w[i];
	return sum;
}

struct ls_rst4 {
	struct iphdr ip;
	struct tcphdr tcp;
};

struct ls_rst6 {
	struct ipv6hdr ip;
	struct tcphdr tcp;
};

/* The RST|ACK that answers a SYN (RFC 9293 3.10.7.1): seq 0, ack = ISN + SYN + data. */
static __always_inline void ls_rst_tcp(struct tcphdr *t, const struct ls_pkt *p)
{
	t->source = p->key.server_port;
	t->dest = p->key.client_port;
	t->seq = 0;
	t->ack_seq = bpf_htonl(p->seq + 1 + p->payload_len);
	t->doff = 5;
	t->rst = 1;
	t->ack = 1;
}

/*
 * Rewrites the SYN in place into the RST|ACK that refuses it and sends it
 * back out of the interface. The L2 header, VLAN tags included, is kept
 * with its MAC addresses swapped; IP options, extension headers and TCP
 * options are not copied.
 */
static __always_inline int ls_send_reset(struct xdp_md *ctx, const struct ls_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = p->l3_off, len, sum;
	__u8 mac[ETH_ALEN];

	if (off > 14 + 4 * LS_MAX_VLAN_TAGS || (void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);

	if (!p->ipv6) {
		struct ls_rst4 r = {};

		if (data + off + sizeof(r) > data_end)
			return -1;
		r.ip.version = 4;
		r.ip.ihl = 5;
		r.ip.tot_len = bpf_htons(sizeof(r));
		r.ip.frag_off = bpf_htons(0x4000); /* DF */
		r.ip.ttl = 64;
		r.ip.protocol = IPPROTO_TCP;
		__builtin_memcpy(&r.ip.saddr, &p->key.server[12], 4);
		__builtin_memcpy(&r.ip.daddr, &p->key.client[12], 4);
		r.ip.check = ls_csum_fold(ls_csum_words(&r.ip, sizeof(r.ip), 0));
		ls_rst_tcp(&r.tcp, p);
		sum = ls_csum_words(&r.ip.saddr, 8,
				    bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(r.tcp)));
		r.tcp.check = ls_csum_fold(ls_csum_words(&r.tcp, sizeof(r.tcp), sum));
		__builtin_memcpy(data + off, &r, sizeof(r));
		len = off + sizeof(r);
	} else {
		struct ls_rst6 r = {};

		if (data + off + sizeof(r) > data_end)
			return -1;
		r.ip.version = 6;
		r.ip.payload_len = bpf_htons(sizeof(r.tcp));
		r.ip.nexthdr = IPPROTO_TCP;
		r.ip.hop_limit = 64;
		__builtin_memcpy(&r.ip.saddr, p->key.server, 16);
		__builtin_memcpy(&r.ip.daddr, p->key.client, 16);
		ls_rst_tcp(&r.tcp, p);
		sum = ls_csum_words(&r.ip.saddr, 32,
				    bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(r.tcp)));
		r.tcp.check = ls_csum_fold(ls_csum_words(&r.tcp, sizeof(r.tcp), sum));
		__builtin_memcpy(data + off, &r, sizeof(r));
		len = off + sizeof(r);
	}
	if (bpf_xdp_adjust_tail(ctx, (int)len - (int)(data_end - data)))
		return -1;
	return 0;
}

/* Admits a new flow: counts it in flight and enters it in the flow table. */
static __always_inline void ls_track(const struct ls_pkt *p, struct ls_inflight *inf, __u32 svc,
				     __u32 cls, __u64 now, struct ls_class_stats *st)
{
	struct ls_flow f = {
		.last_seen_ns = bpf_ktime_get_coarse_ns(),
		.admitted_ns = now,
		.syn_seq = p->seq,
		.svc = svc,
		.cls = cls,
		.state = LS_FLOW_HALF_OPEN,
	};
	long err = bpf_map_update_elem(&ls_flows, &p->key, &f, BPF_NOEXIST);

	if (!err) {
		st->admitted++;
		return;
	}
	/* Not tracked: it must not hold an in-flight slot nobody would free. */
	ls_inflight_count(inf, cls, -1);
	if (err == -EEXIST /* the same SYN, admitted on another CPU */) {
		st->syn_retransmits++;
	} else {
		st->admitted++;
		st->untracked++;
	}
}

static __always_inline int ls_on_syn(struct xdp_md *ctx, const struct ls_pkt *p,
				     const struct ls_state *s, __u32 gen, __u32 svc)
{
	__u32 pol_idx = ls_policy_key(gen, svc), cls;
	const struct ls_service_policy *pol;
	struct ls_class_stats *st;
	struct ls_inflight *inf;
	struct ls_limits *lim;
	struct ls_flow *f;
	__u64 now;

	f = bpf_map_lookup_elem(&ls_flows, &p->key);
	if (f) {
		if (f->syn_seq == p->seq) {
			/* The client still tries: not a half-open flow to sweep yet. */
			f->last_seen_ns = bpf_ktime_get_coarse_ns();
			st = ls_stats_of(f->svc, f->cls);
			if (st) {
				st->packets++;
				st->syns++;
				st->syn_retransmits++;
			}
			return XDP_PASS;
		}
		/* A new connection on the tuple of one we never saw end. */
		ls_flow_end(&p->key, f, LS_END_REUSED);
	}

	pol = bpf_map_lookup_elem(&ls_policy, &pol_idx);
	if (!pol || !(pol->flags & LS_SVC_ACTIVE))
		return XDP_PASS;
	cls = ls_class_of(pol, gen, svc, p);
	if (cls >= LS_MAX_CLASSES)
		return XDP_PASS;
	st = ls_stats_of(svc, cls);
	if (!st)
		return XDP_PASS;
	st->packets++;
	st->syns++;
	if (pol->classes[cls].action == LS_ACT_BYPASS) {
		st->admitted++;
		return XDP_PASS;
	}

	lim = bpf_map_lookup_elem(&ls_limits, &svc);
	inf = bpf_map_lookup_elem(&ls_inflight, &svc);
	if (!lim || !inf)
		return XDP_PASS;
	now = bpf_ktime_get_ns();
	if (s->failopen_after_ns && (__s64)(now - s->heartbeat_ns) > (__s64)s->failopen_after_ns) {
		/* No agent keeps the limits true: a dead agent is no outage. */
		st->fail_open++;
		ls_inflight_count(inf, cls, 1);
	} else if (!ls_admit(inf, lim, svc, cls)) {
		if (!(pol->flags & LS_SVC_SHADOW)) {
			if (pol->classes[cls].action != LS_ACT_RESET) {
				st->shed_drop++;
				return XDP_DROP;
			}
			st->shed_reset++;
			if (ls_send_reset(ctx, p)) {
				struct ls_iface_stats *is = ls_iface_counters();

				if (is)
					is->tx_errors++;
				return XDP_DROP;
			}
			return XDP_TX;
		}
		st->would_shed++;
		ls_inflight_count(inf, cls, 1);
	}
	ls_track(p, inf, svc, cls, now, st);
	return XDP_PASS;
}

/* A segment other than a new SYN: never shed, only accounted. */
static __always_inline int ls_on_segment(const struct ls_pkt *p)
{
	struct ls_class_stats *st;
	struct ls_flow *f;
	__u64 now;

	f = bpf_map_lookup_elem(&ls_flows, &p->key);
	if (!f) {
		struct ls_iface_stats *is = ls_iface_counters();

		if (is)
			is->untracked_packets++;
		return XDP_PASS;
	}
	st = ls_stats_of(f->svc, f->cls);
	if (st)
		st->packets++;
	if (p->tcp_flags & (LS_TCP_RST | LS_TCP_FIN)) {
		ls_flow_end(&p->key, f, p->tcp_flags & LS_TCP_RST ? LS_END_RST : LS_END_FIN);
		return XDP_PASS;
	}
	if (f->state == LS_FLOW_HALF_OPEN && (p->tcp_flags & LS_TCP_ACK))
		f->state = LS_FLOW_ESTABLISHED;
	now = bpf_ktime_get_coarse_ns();
	if (f->last_seen_ns != now)
		f->last_seen_ns = now;
	/* A request starts with the first client payload while none is outstanding. */
	if (p->payload_len && !f->req_start_ns &&
	    !__sync_val_compare_and_swap(&f->req_start_ns, 0, bpf_ktime_get_ns()) && st)
		st->requests++;
	return XDP_PASS;
}

SEC("xdp")
int ls_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ls_port *port;
	struct ls_state *s;
	struct ls_pkt p;
	__u32 key, gen;
	int svc;

	switch (ls_parse(data, data_end, data_end - data, LS_DIR_INGRESS, &p)) {
	case LS_PARSE_TCP:
		break;
	case LS_PARSE_NOT_TCP:
		return XDP_PASS;
	default: {
		struct ls_iface_stats *is = ls_iface_counters();

		if (is)
			is->parse_errors++;
		return XDP_PASS;
	}
	}

	key = bpf_ntohs(p.key.server_port);
	port = bpf_map_lookup_elem(&ls_ports, &key);
	if (!port || !*(__u32 *)port)
		return XDP_PASS; /* not a service port in any generation */

	if ((p.tcp_flags & (LS_TCP_SYN | LS_TCP_ACK | LS_TCP_RST | LS_TCP_FIN)) != LS_TCP_SYN)
		return ls_on_segment(&p);

	key = 0;
	s = bpf_map_lookup_elem(&ls_state, &key);
	if (!s)
		return XDP_PASS;
	gen = s->active_gen & 1;
	svc = ls_service_of(gen, port, &p);
	if (svc < 0)
		return XDP_PASS;
	return ls_on_syn(ctx, &p, s, gen, svc);
}
