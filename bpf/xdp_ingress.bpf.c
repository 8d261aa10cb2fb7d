// SPDX-License-Identifier: GPL-2.0-only
/*
 * Ingress admission at XDP (doc/design.md §3-§4). Work is counted from a
 * completed handshake, never from a bare SYN:
 *  - a SYN to a protected service is classified and checked read-only: it
 *    is shed (drop or RST) only when its class is already over both bounds,
 *    and it writes no state, so a spoofed SYN can hold nothing;
 *  - the ACK that acknowledges the server's SYN-ACK (its ISN, noted at TC
 *    egress) proves the client real: admit = connections admits the
 *    connection there, under the service's lock, and a loser is shed (drop:
 *    decided again on its next segment; reset: RST), so in-flight never
 *    passes the limit; admit = requests tracks the connection and admits
 *    each request start on it instead;
 *  - segments of tracked flows stamp request starts, defer or abort shed
 *    requests, and end a flow only on a client RST in sequence.
 * Connections established before attach are adopted at their next payload,
 * once the kernel confirms it holds them.
 */
#include "parse.h"
#include "flow.h"

#ifndef BPF_TCP_ESTABLISHED
#define BPF_TCP_ESTABLISHED 1
#endif

/* Where a packet goes: its service, policy and class, resolved once. */
struct ls_where {
	struct ls_state *st;
	const struct ls_service_policy *pol;
	struct ls_class_stats *stats;
	__u32 gen, svc, cls;
};

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

/* The active state, service, policy and class of a packet; -1: not protected. */
static __always_inline int ls_resolve(const struct ls_port *port, const struct ls_pkt *p,
				      struct ls_where *w)
{
	__u32 key = 0;
	int svc;

	w->st = bpf_map_lookup_elem(&ls_state, &key);
	if (!w->st)
		return -1;
	w->gen = w->st->active_gen & 1;
	svc = ls_service_of(w->gen, port, p);
	if (svc < 0)
		return -1;
	w->svc = svc;
	key = ls_policy_key(w->gen, w->svc);
	w->pol = bpf_map_lookup_elem(&ls_policy, &key);
	if (!w->pol || !(w->pol->flags & LS_SVC_ACTIVE))
		return -1;
	w->cls = ls_class_of(w->pol, w->gen, w->svc, p);
	if (w->cls >= LS_MAX_CLASSES)
		return -1;
	w->stats = ls_stats_of(w->svc, w->cls);
	return w->stats ? 0 : -1;
}

/*
 * No agent keeps the limits true: a dead agent is no outage. The heartbeat
 * is the dataplane's own clock; one from the future is as stale as an old
 * one (the unsigned difference is then huge).
 */
static __always_inline int ls_failing_open(const struct ls_state *s, __u64 now)
{
	return s->failopen_after_ns && now - READ_ONCE(s->heartbeat_ns) > s->failopen_after_ns;
}

/* Both bounds of the partition rule reached: total at L and the class at its guarantee. */
static __always_inline int ls_over(const struct ls_inflight *inf, const struct ls_limits *lim,
				   __u32 cls)
{
	return READ_ONCE(inf->total) >= (__s32)lim->limit &&
	       READ_ONCE(inf->cls[cls]) >= (__s32)lim->guarantee[cls];
}

/*
 * The partition rule as one step: admit if the service's total is under
 * L, else if the class is under its guarantee (limited); and, for a
 * connection, if the service has fewer than max_conns (0: no cap). Check
 * and count happen under the service's lock, so no interleaving of CPUs
 * admits past L, a guarantee or the cap (several counters cannot be
 * checked together by atomics alone). Slots are given back with lock-free
 * decrements: a check may see a count about to drop and shed, never the
 * reverse.
 */
static __always_inline int ls_admit(struct ls_inflight *inf, const struct ls_limits *lim, __u32 svc,
				    __u32 cls, int limited, int conn, __u32 max_conns)
{
	struct ls_admit_lock *l;
	int ok;

	/* Over the bounds: shed without a write to the shared line (a flood's path). */
	if (limited && ls_over(inf, lim, cls))
		return 0;
	if (conn && max_conns && READ_ONCE(inf->conns) >= (__s32)max_conns)
		return 0;
	if (!limited && !(conn && max_conns)) {
		ls_slot_take(inf, cls, 0, conn);
		return 1;
	}
	l = bpf_map_lookup_elem(&ls_admit_lock, &svc);
	if (!l)
		return 0;
	bpf_spin_lock(&l->lock);
	ok = (!limited || inf->total < (__s32)lim->limit ||
	      inf->cls[cls] < (__s32)lim->guarantee[cls]) &&
	     (!conn || !max_conns || inf->conns < (__s32)max_conns);
	if (ok) {
		if (limited) {
			__sync_fetch_and_add(&inf->total, 1);
			__sync_fetch_and_add(&inf->cls[cls], 1);
		}
		if (conn)
			__sync_fetch_and_add(&inf->conns, 1);
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

/*
 * The RST|ACK that answers the segment p: for a SYN (RFC 9293 3.10.7.1)
 * seq 0 and ack = ISN + SYN + data; for a segment of a connection the
 * client holds established, seq = its acknowledgment (exactly what the
 * client expects, so it is accepted) and ack = what it sent.
 */
static __always_inline void ls_rst_tcp(struct tcphdr *t, const struct ls_pkt *p)
{
	int syn = p->tcp_flags & LS_TCP_SYN;

	t->source = p->key.server_port;
	t->dest = p->key.client_port;
	t->seq = syn ? 0 : bpf_htonl(p->ack_seq);
	t->ack_seq = bpf_htonl(p->seq + (syn ? 1 : 0) + p->payload_len +
			       (p->tcp_flags & LS_TCP_FIN ? 1 : 0));
	t->doff = 5;
	t->rst = 1;
	t->ack = 1;
}

/*
 * Rewrites the client's segment in place into the RST|ACK that refuses it
 * and sends it back out of the interface. The L2 header, VLAN tags
 * included, is kept with its MAC addresses swapped; IP options, extension
 * headers and TCP options are not copied.
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

/* Options scanned at most in one header (IPv4's 40 bytes of NOPs); more make the packet risky. */
#define LS_MAX_OPTS 64
/* Linux drops an IPv6 options header with more padding in a row, or more other options. */
#define LS_V6_MAX_PAD  7
#define LS_V6_MAX_OPTS 8

struct ls_opt_scan {
	struct xdp_md *ctx;
	__u32 off, end; /* the options not yet scanned */
	__u32 v6;
	__u32 pad;  /* IPv6: bytes of padding in a row */
	__u32 opts; /* IPv6: options other than padding */
	__u32 risky;
};

/*
 * One option of ls_opts_risky's scan (a bpf_loop callback: the verifier
 * checks it once, whatever the number of options). 1 stops the scan.
 */
static long ls_opt_step(__u32 i, void *arg)
{
	struct ls_opt_scan *s = arg;
	void *data = (void *)(long)s->ctx->data;
	void *data_end = (void *)(long)s->ctx->data_end;
	__u32 off = s->off;
	__u8 *o;

	if (off >= s->end)
		return 1;
	if (off > LS_MAX_L4_OFF)
		goto risky;
	o = data + off;
	if ((void *)(o + 2) > data_end)
		goto risky;
	if (!s->v6) {
		if (o[0] == 0) { /* EOL */
			s->off = s->end;
			return 1;
		}
		if (o[0] == 0x83 || o[0] == 0x89) /* LSRR, SSRR */
			goto risky;
		s->off = off + (o[0] == 1 ? 1 : o[1] < 2 ? 2 : o[1]);
		return 0;
	}
	if (o[0] == 0 || o[0] == 1) { /* Pad1, PadN */
		s->pad += o[0] == 0 ? 1 : o[1] + 2;
		if (s->pad > LS_V6_MAX_PAD)
			goto risky;
	} else {
		if (o[0] >> 6 || ++s->opts > LS_V6_MAX_OPTS)
			goto risky;
		s->pad = 0;
	}
	s->off = off + (o[0] == 0 ? 1 : o[1] + 2);
	return 0;
risky:
	s->risky = 1;
	return 1;
}

/*
 * Whether the options in [off, end) hold one the kernel may throw the
 * packet away for: an IPv4 source route (v6 = 0); an IPv6 option whose
 * action bits say "discard if unknown", a run of more than 7 bytes of
 * padding, or more than 8 other options (v6 = 1: ip6_parse_tlv). Pad1
 * (NOP) is one byte, every other option type, length, value; IPv4's EOL
 * ends them. More than LS_MAX_OPTS options are risky too.
 */
__noinline int ls_opts_risky(struct xdp_md *ctx, __u32 off, __u32 end, __u32 v6)
{
	struct ls_opt_scan s = {.ctx = ctx, .off = off, .end = end, .v6 = v6};

	if (bpf_loop(LS_MAX_OPTS, ls_opt_step, &s, 0) < 0)
		return 1;
	return s.risky || s.off < s.end;
}

/*
 * Whether the packet's IP options make it one the kernel may drop after we
 * decided on it: IPv4 source routes, IPv6 options marked "discard if
 * unknown", an IPv6 routing header with segments left. No TCP stack sends
 * them to a server, so to a service they are dropped (undecidable).
 * Global, so that the verifier checks its loops once.
 */
__noinline int ls_ip_opts_risky(struct xdp_md *ctx, __u32 l3_off, __u32 ipv6)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off, len;
	__u8 *hdr, nexthdr;
	int i;

	if (l3_off > 14 + 4 * LS_MAX_VLAN_TAGS)
		return 1;
	hdr = data + l3_off;
	if (!ipv6) {
		if ((void *)(hdr + 20) > data_end)
			return 1;
		len = (hdr[0] & 0xf) * 4;
		return ls_opts_risky(ctx, l3_off + 20, l3_off + len, 0);
	}
	if ((void *)(hdr + 40) > data_end)
		return 1;
	nexthdr = hdr[6];
	off = l3_off + 40;
	for (i = 0; i < LS_MAX_EXT_HDRS; i++) {
		if (nexthdr != IPPROTO_HOPOPTS && nexthdr != IPPROTO_DSTOPTS &&
		    nexthdr != IPPROTO_ROUTING && nexthdr != IPPROTO_AH &&
		    nexthdr != IPPROTO_FRAGMENT)
			return 0;
		if (off > LS_MAX_L4_OFF)
			return 1;
		hdr = data + off;
		if ((void *)(hdr + 8) > data_end)
			return 1;
		len = ls_ipv6_ext_len(nexthdr, hdr);
		if (nexthdr == IPPROTO_ROUTING && hdr[3])
			return 1;
		if ((nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_DSTOPTS) &&
		    ls_opts_risky(ctx, off + 2, off + len, 1))
			return 1;
		nexthdr = hdr[0];
		off += len;
	}
	return 0;
}

/* Longest TCP segment whose checksum is verified: a 9000-byte jumbo frame's. */
#define LS_CSUM_MAX_LEN 9000
#define LS_CSUM_CHUNK	64

/*
 * Whether the TCP checksum of segment p is right. Segments that would
 * change accounting (a handshake's ACK, a RST or FIN that ends a flow) are
 * checked: a segment the kernel throws away must not move a count. Global,
 * so that the verifier checks its loop once.
 */
__noinline int ls_tcp_csum_ok(struct xdp_md *ctx, __u32 off, __u32 len, __u32 sum)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *ptr;
	int i;

	if (off > LS_MAX_L4_OFF + 60 || len > LS_CSUM_MAX_LEN)
		return 0;
	for (i = 0; i < LS_CSUM_MAX_LEN / LS_CSUM_CHUNK && len >= LS_CSUM_CHUNK; i++) {
		ptr = data + off;
		if ((void *)(ptr + LS_CSUM_CHUNK) > data_end)
			return 0;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)ptr, LS_CSUM_CHUNK, sum);
		off += LS_CSUM_CHUNK;
		len -= LS_CSUM_CHUNK;
		if (off > LS_MAX_L4_OFF + 60 + LS_CSUM_MAX_LEN)
			return 0;
	}
#define LS_CSUM_PART(n)                                                                            \
	if (len & (n)) {                                                                           \
		ptr = data + off;                                                                  \
		if ((void *)(ptr + (n)) > data_end)                                                \
			return 0;                                                                  \
		sum = bpf_csum_diff(NULL, 0, (__be32 *)ptr, (n), sum);                             \
		off += (n);                                                                        \
		if (off > LS_MAX_L4_OFF + 60 + LS_CSUM_MAX_LEN)                                    \
			return 0;                                                                  \
	}
	LS_CSUM_PART(32)
	LS_CSUM_PART(16)
	LS_CSUM_PART(8)
	LS_CSUM_PART(4)
#undef LS_CSUM_PART
	/* The last one to three bytes, as words padded with zero (network order). */
	ptr = data + off;
	if (len & 3) {
		__u8 b[4] = {};

		if ((void *)(ptr + 3) <= data_end) {
			b[0] = ptr[0];
			if (len & 2)
				b[1] = ptr[1];
			if ((len & 3) == 3)
				b[2] = ptr[2];
		} else if ((void *)(ptr + 1) <= data_end && (len & 3) == 1) {
			b[0] = ptr[0];
		} else if ((void *)(ptr + 2) <= data_end && (len & 3) == 2) {
			b[0] = ptr[0];
			b[1] = ptr[1];
		} else {
			return 0;
		}
		sum = bpf_csum_diff(NULL, 0, (__be32 *)b, 4, sum);
	}
	return ls_csum_fold(sum) == 0;
}

/*
 * The checksum of p's TCP segment with its pseudo-header: right, or left
 * for the device to fill in. A segment from a local peer over a veth (a
 * container's) with checksum offload arrives CHECKSUM_PARTIAL: its field
 * holds only the pseudo-header's folded sum, which the kernel trusts
 * without a check. A forger can write that value too (design §12).
 */
static __always_inline int ls_segment_ok(struct xdp_md *ctx, const struct ls_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 sum, off = p->l4_off;
	__u16 *check;

	if (p->ipv6)
		sum = ls_csum_words(p->key.client, 32, 0) + bpf_htons(p->l4_len) +
		      bpf_htons(IPPROTO_TCP);
	else
		sum = ls_csum_words(&p->key.client[12], 4, 0) +
		      ls_csum_words(&p->key.server[12], 4, 0) + bpf_htons(p->l4_len) +
		      bpf_htons(IPPROTO_TCP);
	if (off > LS_MAX_L4_OFF)
		return 0;
	check = data + off + 16;
	if ((void *)(check + 1) > data_end)
		return 0;
	if (*check == (__u16)~ls_csum_fold(sum))
		return 1;
	return ls_tcp_csum_ok(ctx, p->l4_off, p->l4_len, sum);
}

/* ls_segment_ok, counting a wrong checksum in bad_checksums. */
static __always_inline int ls_segment_checked(struct xdp_md *ctx, const struct ls_pkt *p)
{
	struct ls_iface_stats *is;

	if (ls_segment_ok(ctx, p))
		return 1;
	is = ls_iface_counters();
	if (is)
		is->bad_checksums++;
	return 0;
}

/* Sheds a connection (a SYN, or the ACK of its handshake) by the class's action. */
static __always_inline int ls_shed_conn(struct xdp_md *ctx, const struct ls_pkt *p,
					const struct ls_where *w)
{
	struct ls_iface_stats *is;

	if (w->pol->classes[w->cls].action != LS_ACT_RESET) {
		w->stats->shed_drop++;
		return XDP_DROP;
	}
	w->stats->shed_reset++;
	if (!ls_send_reset(ctx, p))
		return XDP_TX;
	is = ls_iface_counters();
	if (is)
		is->tx_errors++;
	return XDP_DROP;
}

/*
 * A SYN: read-only. Shed only when the class is over both bounds already
 * (or the service at max_connections); otherwise pass, with nothing
 * written but per-CPU counters, so that no SYN, spoofed or real, holds a
 * slot or a table entry. The decision that counts is at the ACK.
 */
static __always_inline int ls_on_syn(struct xdp_md *ctx, const struct ls_pkt *p,
				     const struct ls_port *port)
{
	struct ls_inflight *inf;
	struct ls_limits *lim;
	struct ls_where w;
	int full;

	if (ls_resolve(port, p, &w))
		return XDP_PASS;
	w.stats->packets++;
	w.stats->syns++;
	if (w.pol->classes[w.cls].action == LS_ACT_BYPASS || (w.pol->flags & LS_SVC_SHADOW))
		return XDP_PASS;
	lim = bpf_map_lookup_elem(&ls_limits, &w.svc);
	inf = bpf_map_lookup_elem(&ls_inflight, &w.svc);
	if (!lim || !inf)
		return XDP_PASS;
	/*
	 * A SYN with data (TCP Fast Open) hands its request to the server at
	 * once: under admit = requests it is shed when a request would be.
	 */
	full = ((w.pol->admit == LS_ADMIT_CONNECTIONS || p->payload_len) &&
		ls_over(inf, lim, w.cls)) ||
	       (w.pol->max_connections && READ_ONCE(inf->conns) >= (__s32)w.pol->max_connections);
	if (!full || ls_failing_open(w.st, bpf_ktime_get_ns()))
		return XDP_PASS;
	return ls_shed_conn(ctx, p, &w);
}

/* The flow a completed handshake or an adoption enters, unless the table is full. */
static __always_inline int ls_track(const struct ls_pkt *p, const struct ls_where *w, __u64 slot,
				    __u32 srv_next, __u32 flags)
{
	struct ls_flow f = {
		.slot = slot,
		.last_seen_ns = bpf_ktime_get_coarse_ns(),
		.cli_next = p->seq, /* the segment's own bytes count once it passes */
		.cli_acked = p->seq,
		.srv_next = srv_next,
		.srv_isn = flags & LS_FLOW_ADOPTED ? 0 : srv_next - 1,
		.svc = w->svc,
		.cls = w->cls,
		.state = LS_FLOW_IDLE,
		.flags = flags | (w->pol->admit == LS_ADMIT_REQUESTS ? LS_FLOW_REQUESTS : 0),
	};

	if (!bpf_map_update_elem(&ls_flows, &p->key, &f, BPF_NOEXIST))
		return 0;
	/* Not tracked: it must not hold a slot nobody would give back. */
	ls_slot_release(slot, 1);
	w->stats->untracked++;
	return -1;
}

/*
 * A connection that cannot be tracked (the flow table full) is shed like
 * one over the limit: untracked, none of its work could be counted or
 * decided. In shadow mode, or failing open, it passes.
 */
static __always_inline int ls_untrackable(struct xdp_md *ctx, const struct ls_pkt *p,
					  const struct ls_where *w)
{
	if ((w->pol->flags & LS_SVC_SHADOW) || ls_failing_open(w->st, bpf_ktime_get_ns()))
		return XDP_PASS;
	return ls_shed_conn(ctx, p, w);
}

static __always_inline int ls_on_payload(struct xdp_md *ctx, const struct ls_pkt *p,
					 struct ls_flow *f);

/* What passes extends the client's contiguous data; a gap or a forgery ahead does not. */
static __always_inline void ls_advance(struct ls_flow *f, const struct ls_pkt *p)
{
	__u32 next = READ_ONCE(f->cli_next);
	__u32 end = p->seq + p->payload_len + (p->tcp_flags & LS_TCP_FIN ? 1 : 0);

	if (!LS_SEQ_AFTER(p->seq, next) && LS_SEQ_AFTER(end, next))
		WRITE_ONCE(f->cli_next, end);
}

/* Client payload on a flow just entered: its request logic, then its bytes. */
static __always_inline int ls_first_payload(struct xdp_md *ctx, const struct ls_pkt *p)
{
	struct ls_flow *f = bpf_map_lookup_elem(&ls_flows, &p->key);
	int verdict;

	if (!f)
		return XDP_PASS;
	verdict = ls_on_payload(ctx, p, f);
	if (verdict == XDP_PASS)
		ls_advance(f, p);
	return verdict;
}

/*
 * An ACK on a tuple with no flow that acknowledges the server's SYN-ACK at
 * the sequence number the SYN-ACK acknowledged: the client saw the
 * server's ISN, so it is no spoofed source. The connection is decided
 * here, once: the way is claimed by compare-and-swap, and an ACK of the
 * same handshake meanwhile waits (dropped: the client sends again).
 */
static __always_inline int ls_on_handshake(struct xdp_md *ctx, const struct ls_pkt *p,
					   const struct ls_port *port, struct ls_handshake *hs,
					   __u32 tag)
{
	struct ls_inflight *inf;
	struct ls_limits *lim;
	struct ls_where w;
	int counted;
	__u64 now;

	if (__sync_val_compare_and_swap(&hs->word, ls_hs_word(tag, LS_HS_OPEN),
					ls_hs_word(tag, LS_HS_CLAIMED)) !=
	    ls_hs_word(tag, LS_HS_OPEN))
		return XDP_DROP; /* being decided on another CPU, or taken over */
	if (ls_resolve(port, p, &w)) {
		WRITE_ONCE(hs->word, ls_hs_word(tag, LS_HS_USED));
		return XDP_PASS;
	}
	w.stats->packets++;
	w.stats->handshakes++;
	if (w.pol->classes[w.cls].action == LS_ACT_BYPASS) {
		WRITE_ONCE(hs->word, ls_hs_word(tag, LS_HS_USED));
		return XDP_PASS;
	}
	lim = bpf_map_lookup_elem(&ls_limits, &w.svc);
	inf = bpf_map_lookup_elem(&ls_inflight, &w.svc);
	if (!lim || !inf) {
		WRITE_ONCE(hs->word, ls_hs_word(tag, LS_HS_OPEN));
		return XDP_PASS;
	}
	counted = w.pol->admit == LS_ADMIT_CONNECTIONS;
	now = bpf_ktime_get_ns();
	if (ls_failing_open(w.st, now)) {
		w.stats->fail_open++;
		ls_slot_take(inf, w.cls, counted, 1);
	} else if (!ls_admit(inf, lim, w.svc, w.cls, counted, 1, w.pol->max_connections)) {
		if (!(w.pol->flags & LS_SVC_SHADOW)) {
			/*
			 * A dropped ACK is decided again when the client sends
			 * again; after a RST, what the client sent meanwhile (its
			 * request, already on the wire) gets one too, never the
			 * server.
			 */
			WRITE_ONCE(hs->word,
				   ls_hs_word(tag, w.pol->classes[w.cls].action == LS_ACT_RESET
							   ? LS_HS_REFUSED
							   : LS_HS_OPEN));
			return ls_shed_conn(ctx, p, &w);
		}
		w.stats->would_shed++;
		ls_slot_take(inf, w.cls, counted, 1);
	}
	if (ls_track(p, &w, ls_slot_word(now, w.svc, w.cls, counted), p->ack_seq, 0)) {
		WRITE_ONCE(hs->word, ls_hs_word(tag, LS_HS_OPEN));
		return ls_untrackable(ctx, p, &w);
	}
	WRITE_ONCE(hs->word, ls_hs_word(tag, LS_HS_USED));
	w.stats->admitted++;
	return p->payload_len ? ls_first_payload(ctx, p) : XDP_PASS;
}

/* What the kernel's socket of a connection says, read through its BTF (CO-RE). */
struct tcp_sock___ls {
	__u32 rcv_nxt;
	__u32 snd_nxt;
	__u64 bytes_received;
} __attribute__((preserve_access_index));

/*
 * A segment with payload on a tuple with no flow and no handshake: a
 * connection established before attach (or whose handshake was pushed out
 * of its set), or a forgery. Adopted only when the kernel holds it
 * established and the segment carries exactly its next byte (a forger
 * cannot choose where the flow stands); the flow starts from the socket's
 * own sequence numbers. A connection that has received nothing yet is new
 * work: it is decided as at its handshake. One whose work is under way is
 * counted without a decision (shedding it would shed nothing), and its
 * payload starts a request.
 */
static __always_inline int ls_adopt(struct xdp_md *ctx, const struct ls_pkt *p,
				    const struct ls_port *port)
{
	struct bpf_sock_tuple t = {};
	struct tcp_sock___ls *tp;
	struct bpf_sock *sk;
	struct ls_inflight *inf;
	struct ls_limits *lim;
	struct ls_where w;
	__u32 tlen, rcv_nxt = 0, snd_nxt = 0;
	int established, fresh = 0, counted;
	__u64 now;

	/* Classified first: a bypass class is never tracked, so never looked up either. */
	if (ls_resolve(port, p, &w))
		return -1;
	if (w.pol->classes[w.cls].action == LS_ACT_BYPASS)
		return XDP_PASS;
	if (p->ipv6) {
		__builtin_memcpy(t.ipv6.saddr, p->key.client, 16);
		__builtin_memcpy(t.ipv6.daddr, p->key.server, 16);
		t.ipv6.sport = p->key.client_port;
		t.ipv6.dport = p->key.server_port;
		tlen = sizeof(t.ipv6);
	} else {
		__builtin_memcpy(&t.ipv4.saddr, &p->key.client[12], 4);
		__builtin_memcpy(&t.ipv4.daddr, &p->key.server[12], 4);
		t.ipv4.sport = p->key.client_port;
		t.ipv4.dport = p->key.server_port;
		tlen = sizeof(t.ipv4);
	}
	sk = (struct bpf_sock *)bpf_skc_lookup_tcp(ctx, &t, tlen, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return -1;
	established = sk->state == BPF_TCP_ESTABLISHED;
	tp = established ? (struct tcp_sock___ls *)bpf_skc_to_tcp_sock(sk) : NULL;
	if (tp) {
		rcv_nxt = tp->rcv_nxt;
		snd_nxt = tp->snd_nxt;
		fresh = !tp->bytes_received;
	}
	bpf_sk_release(sk);
	if (!tp || p->seq != rcv_nxt)
		return -1;
	w.stats->packets++;
	inf = bpf_map_lookup_elem(&ls_inflight, &w.svc);
	lim = bpf_map_lookup_elem(&ls_limits, &w.svc);
	if (!inf || !lim)
		return -1;
	counted = w.pol->admit == LS_ADMIT_CONNECTIONS;
	now = bpf_ktime_get_ns();
	if (!fresh || ls_failing_open(w.st, now)) {
		ls_slot_take(inf, w.cls, counted, 1);
	} else if (!ls_admit(inf, lim, w.svc, w.cls, counted, 1, w.pol->max_connections)) {
		if (!(w.pol->flags & LS_SVC_SHADOW))
			return ls_shed_conn(ctx, p, &w);
		w.stats->would_shed++;
		ls_slot_take(inf, w.cls, counted, 1);
	}
	/* No room: new work is shed; work under way goes on, holding nothing. */
	if (ls_track(p, &w, ls_slot_word(now, w.svc, w.cls, counted), snd_nxt, LS_FLOW_ADOPTED))
		return fresh ? ls_untrackable(ctx, p, &w) : XDP_PASS;
	if (fresh)
		w.stats->admitted++;
	else
		w.stats->adopted++;
	return ls_first_payload(ctx, p);
}

/*
 * An ACK (no SYN, no RST) on a tuple with no flow: the handshake's, if it
 * acknowledges a noted ISN at the sequence number the SYN-ACK acknowledged
 * and its checksum is right (the kernel would throw it away otherwise).
 */
static __always_inline int ls_on_untracked(struct xdp_md *ctx, const struct ls_pkt *p,
					   const struct ls_port *port)
{
	struct ls_handshake *hs = NULL;
	struct ls_iface_stats *is;
	struct ls_hs_set *set;
	int verdict;
	__u32 tag, state;

	set = ls_hs_set_for(&p->key, &tag);
	if (set)
		hs = ls_hs_find(set, tag, p->ack_seq - 1);
	if (hs && p->seq == READ_ONCE(hs->cli_seq)) {
		state = ls_hs_state(READ_ONCE(hs->word));
		if (state == LS_HS_CLAIMED)
			return XDP_DROP; /* its handshake is being decided on another CPU */
		if (state == LS_HS_OPEN) {
			if (!ls_segment_checked(ctx, p))
				return XDP_PASS; /* the kernel drops it */
			return ls_on_handshake(ctx, p, port, hs, tag);
		}
		if (state == LS_HS_REFUSED) {
			/* The tail of a connection refused at its ACK: a RST again. */
			if (!ls_send_reset(ctx, p))
				return XDP_TX;
			return XDP_DROP;
		}
	}
	if (p->payload_len) {
		verdict = ls_adopt(ctx, p, port);
		if (verdict >= 0)
			return verdict;
	}
	is = ls_iface_counters();
	if (is)
		is->untracked_packets++;
	return XDP_PASS;
}

/*
 * Aborts a flow with its request unserved: the client gets a RST at once,
 * and the agent destroys the server's socket (XDP sends one packet, not
 * two), so the server never works on a request nobody waits for. Until the
 * server's socket goes (its RST ends the flow at egress), every client
 * segment still on the wire is dropped: none may reach it.
 */
static __always_inline int ls_abort_flow(struct xdp_md *ctx, const struct ls_pkt *p,
					 struct ls_flow *f)
{
	struct ls_iface_stats *is;

	if (bpf_ringbuf_output(&ls_aborts, (void *)&p->key, sizeof(p->key), 0)) {
		is = ls_iface_counters();
		if (is)
			is->abort_lost++;
	}
	ls_req_release(f);
	WRITE_ONCE(f->state, LS_FLOW_ABORTED);
	if (!ls_send_reset(ctx, p))
		return XDP_TX;
	is = ls_iface_counters();
	if (is)
		is->tx_errors++;
	return XDP_DROP;
}

/* A request shed by the class's request action: deferred (dropped) or aborted (RST). */
static __always_inline int ls_shed_request(struct xdp_md *ctx, const struct ls_pkt *p,
					   struct ls_flow *f, __u32 cls,
					   const struct ls_service_policy *pol,
					   struct ls_class_stats *st)
{
	__u32 end = p->seq + p->payload_len;

	barrier_var(cls);
	if (cls < LS_MAX_CLASSES && pol->classes[cls].req_action != LS_REQ_ABORT) {
		__u32 now_ms = (__u32)(bpf_ktime_get_coarse_ns() / 1000000);

		if (READ_ONCE(f->state) != LS_FLOW_DEFERRED) {
			WRITE_ONCE(f->defer_ms, now_ms);
			WRITE_ONCE(f->defer_end, end);
		} else if (LS_SEQ_AFTER(end, READ_ONCE(f->defer_end))) {
			WRITE_ONCE(f->defer_end, end);
		}
		if (st)
			st->deferred++;
		WRITE_ONCE(f->state, LS_FLOW_DEFERRED);
		return XDP_DROP;
	}
	if (st)
		st->aborted++;
	return ls_abort_flow(ctx, p, f);
}

/*
 * Client payload on a tracked flow. A request starts with the segment that
 * carries the next byte the server reads — the one it acknowledged last
 * (cli_acked, from its own segments at TC) — while none is outstanding;
 * under admit = requests that start is admitted by the partition rule.
 * Bytes before it are retransmissions; bytes after it reach the server
 * only behind it, so they pass undecided and wait in the kernel's queue
 * for the segment that is decided (a forger's far-ahead bytes are thrown
 * away there). While a request is deferred every segment of it is
 * dropped, not only the first, or SACK would bring the rest in one round
 * trip; the retransmission of its first segment is decided again.
 */
static __always_inline int ls_on_payload(struct xdp_md *ctx, const struct ls_pkt *p,
					 struct ls_flow *f)
{
	const struct ls_service_policy *pol;
	struct ls_class_stats *st;
	struct ls_inflight *inf;
	struct ls_limits *lim;
	struct ls_state *s;
	__u32 key = 0, end = p->seq + p->payload_len, svc = f->svc, cls = f->cls;
	__u32 acked = READ_ONCE(f->cli_acked);
	__u8 state = READ_ONCE(f->state);
	__u64 now, w;
	int starts = !LS_SEQ_AFTER(p->seq, acked) && LS_SEQ_AFTER(end, acked);

	if (state == LS_FLOW_DEFERRED) {
		if (!LS_SEQ_AFTER(end, acked))
			return XDP_PASS; /* bytes the server has */
		if (!starts) {
			if (LS_SEQ_AFTER(end, READ_ONCE(f->defer_end)))
				WRITE_ONCE(f->defer_end, end);
			return XDP_DROP;
		}
	} else if (state == LS_FLOW_REQUEST && READ_ONCE(f->req)) {
		/* More of the outstanding request: its latency runs from its last new byte. */
		if (LS_SEQ_AFTER(end, READ_ONCE(f->cli_next)))
			WRITE_ONCE(f->req_last_ns, bpf_ktime_get_ns());
		return XDP_PASS;
	} else if (state == LS_FLOW_REQUEST) {
		/*
		 * A request whose slot a stall gave back: its next new bytes are
		 * decided again, as a start.
		 */
		__u32 next = READ_ONCE(f->cli_next);

		if (!starts && (LS_SEQ_AFTER(p->seq, next) || !LS_SEQ_AFTER(end, next)))
			return XDP_PASS;
	} else if (!starts) {
		/* A retransmission, or bytes beyond the next one the server reads. */
		return XDP_PASS;
	}

	if (svc >= LS_MAX_SERVICES || cls >= LS_MAX_CLASSES)
		return XDP_PASS;
	st = ls_stats_of(svc, cls);
	now = bpf_ktime_get_ns();
	if (!(f->flags & LS_FLOW_REQUESTS)) {
		/* admit = connections: a request is only measured. */
		w = ls_slot_word(now, svc, cls, 0);
		goto begin;
	}
	s = bpf_map_lookup_elem(&ls_state, &key);
	if (!s)
		return XDP_PASS;
	key = ls_policy_key(s->active_gen & 1, svc);
	pol = bpf_map_lookup_elem(&ls_policy, &key);
	key = svc;
	lim = bpf_map_lookup_elem(&ls_limits, &key);
	inf = bpf_map_lookup_elem(&ls_inflight, &key);
	if (!pol || !lim || !inf)
		return XDP_PASS;
	/*
	 * Waited outside past max_defer: its client has most likely given up,
	 * and serving it now would spend the server on an answer nobody reads.
	 */
	if (state == LS_FLOW_DEFERRED && pol->max_defer_ms &&
	    (__u32)(bpf_ktime_get_coarse_ns() / 1000000) - READ_ONCE(f->defer_ms) >
		    pol->max_defer_ms) {
		if (st)
			st->expired++;
		return ls_abort_flow(ctx, p, f);
	}
	if (ls_failing_open(s, now)) {
		if (st)
			st->fail_open++;
		ls_slot_take(inf, cls, 1, 0);
	} else if (!ls_admit(inf, lim, svc, cls, 1, 0, 0)) {
		if (!(pol->flags & LS_SVC_SHADOW))
			return ls_shed_request(ctx, p, f, cls, pol, st);
		if (st)
			st->would_shed++;
		ls_slot_take(inf, cls, 1, 0);
	}
	w = ls_slot_word(now, svc, cls, 1);
begin:
	if (!ls_req_begin(f, w)) {
		ls_slot_release(w, 0);
		return XDP_PASS;
	}
	WRITE_ONCE(f->req_last_ns, now);
	WRITE_ONCE(f->state, LS_FLOW_REQUEST);
	if (f->flags & LS_FLOW_NO_SAMPLE)
		__sync_fetch_and_and(&f->flags, ~LS_FLOW_NO_SAMPLE);
	if (st) {
		st->requests++;
		/* Sent before the last answer was all acknowledged: pipelined or multiplexed. */
		if (LS_SEQ_AFTER(READ_ONCE(f->srv_next), p->ack_seq))
			st->pipelined++;
	}
	return XDP_PASS;
}

/* How far from the client's next byte a RST may be to make a flow a suspect. */
#define LS_RST_WINDOW (1u << 20)

/*
 * A client's RST on a tracked flow. One ends the flow only where the
 * kernel surely takes it: exactly at the next byte the server reads, with
 * every byte the client sent acknowledged (so that no byte of its own, or
 * of a forger's, that the kernel threw away has moved the point), and a
 * right checksum. Behind a deferred request, a RST at the end of the
 * deferred bytes (the client's next byte) or at the server's next one
 * abandons the request. One near the next byte otherwise makes the flow a
 * suspect, for the agent to confirm with the kernel (§5.3).
 */
static __always_inline int ls_on_client_rst(struct xdp_md *ctx, const struct ls_pkt *p,
					    struct ls_flow *f, __u8 state,
					    struct ls_class_stats *st)
{
	__u32 acked = READ_ONCE(f->cli_acked), next = READ_ONCE(f->cli_next);
	int exact = p->seq == acked && acked == next;
	int abandon =
		state == LS_FLOW_DEFERRED && (p->seq == READ_ONCE(f->defer_end) || p->seq == acked);

	if (exact || abandon) {
		if (!ls_segment_checked(ctx, p))
			return XDP_PASS;
		if (abandon) {
			if (ls_flow_end(&p->key, f, LS_END_ABORT) && st)
				st->abandoned++;
		} else {
			ls_flow_end(&p->key, f, LS_END_RST);
		}
		return XDP_PASS;
	}
	if (st)
		st->untrusted++;
	if (p->seq - next + LS_RST_WINDOW <= 2 * LS_RST_WINDOW)
		__sync_fetch_and_or(&f->flags, LS_FLOW_RST_SUSPECT);
	return XDP_PASS;
}

/* Any segment but a bare SYN on a tracked flow: never shed unless part of a deferred request. */
static __always_inline int ls_on_flow(struct xdp_md *ctx, const struct ls_pkt *p, struct ls_flow *f)
{
	struct ls_class_stats *st = ls_stats_of(f->svc, f->cls);
	int verdict = XDP_PASS;
	__u64 now;
	__u8 state;

	if (st)
		st->packets++;
	now = bpf_ktime_get_coarse_ns();
	if (f->last_seen_ns != now)
		f->last_seen_ns = now;
	state = READ_ONCE(f->state);
	if (state == LS_FLOW_ABORTED)
		return p->tcp_flags & LS_TCP_RST ? XDP_PASS : XDP_DROP;
	if (p->tcp_flags & LS_TCP_RST)
		return ls_on_client_rst(ctx, p, f, state, st);
	if (p->tcp_flags & LS_TCP_SYN)
		return XDP_PASS;
	/*
	 * A FIN at the end of a deferred request: the client closed before it
	 * was served (its deadline passed, typically). Deferring it further
	 * would only have the server answer nobody later: it is dropped for
	 * good. A FIN anywhere else behind a deferred request is the client's
	 * stream beyond what it waits for, or a forger's: dropped.
	 */
	if (state == LS_FLOW_DEFERRED && (p->tcp_flags & LS_TCP_FIN) && !p->payload_len) {
		if (p->seq != READ_ONCE(f->defer_end))
			return LS_SEQ_AFTER(p->seq, READ_ONCE(f->cli_acked)) ? XDP_DROP : XDP_PASS;
		if (!ls_segment_checked(ctx, p))
			return XDP_DROP;
		if (st)
			st->abandoned++;
		return ls_abort_flow(ctx, p, f);
	}
	if (p->payload_len)
		verdict = ls_on_payload(ctx, p, f);
	if (verdict != XDP_PASS)
		return verdict;
	/* A shut window holds the answer back: that time is no service time. */
	if (!p->window && READ_ONCE(f->state) == LS_FLOW_REQUEST &&
	    !(READ_ONCE(f->flags) & LS_FLOW_NO_SAMPLE))
		__sync_fetch_and_or(&f->flags, LS_FLOW_NO_SAMPLE);
	ls_advance(f, p);
	/* A client FIN is a half-close: the server may still be working. */
	if ((p->tcp_flags & LS_TCP_FIN) && !(f->flags & LS_FLOW_CLIENT_FIN))
		__sync_fetch_and_or(&f->flags, LS_FLOW_CLIENT_FIN);
	return XDP_PASS;
}

/*
 * The first fragment of a TCP segment: reassembled by the kernel, it would
 * reach a listener without a decision, so a fragment to a service port, or
 * one too short to show its port, is dropped. Later fragments then never
 * reassemble; they pass as parse errors. TCP never needs to fragment (its
 * segments follow the path MTU), so this costs no honest client.
 */
static __always_inline int ls_on_first_fragment(const struct ls_pkt *p)
{
	struct ls_iface_stats *is = ls_iface_counters();
	struct ls_port *port;
	__u32 key;

	if (p->flags & LS_PKT_PORTS) {
		key = bpf_ntohs(p->key.server_port);
		port = bpf_map_lookup_elem(&ls_ports, &key);
		if (!port || !*(__u32 *)port) {
			if (is)
				is->parse_errors++;
			return XDP_PASS;
		}
	}
	if (is)
		is->fragments_dropped++;
	return XDP_DROP;
}

SEC("xdp")
int ls_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ls_port *port;
	struct ls_flow *f;
	struct ls_pkt p;
	__u32 key;

	switch (ls_parse(data, data_end, data_end - data, LS_DIR_INGRESS, &p)) {
	case LS_PARSE_TCP:
		break;
	case LS_PARSE_NOT_TCP:
		return XDP_PASS;
	case LS_PARSE_FIRST_FRAGMENT:
		return ls_on_first_fragment(&p);
	case LS_PARSE_UNDECIDABLE: {
		struct ls_iface_stats *is = ls_iface_counters();

		if (is)
			is->undecidable++;
		return XDP_DROP;
	}
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
	if ((p.flags & LS_PKT_OPTIONS) && ls_ip_opts_risky(ctx, p.l3_off, p.ipv6)) {
		struct ls_iface_stats *is = ls_iface_counters();

		if (is)
			is->undecidable++;
		return XDP_DROP;
	}

	if ((p.tcp_flags & (LS_TCP_SYN | LS_TCP_ACK | LS_TCP_RST | LS_TCP_FIN)) == LS_TCP_SYN)
		return ls_on_syn(ctx, &p, port);
	f = bpf_map_lookup_elem(&ls_flows, &p.key);
	if (f)
		return ls_on_flow(ctx, &p, f);
	if ((p.tcp_flags & (LS_TCP_SYN | LS_TCP_ACK | LS_TCP_RST)) == LS_TCP_ACK)
		return ls_on_untracked(ctx, &p, port);
	{
		struct ls_iface_stats *is = ls_iface_counters();

		if (is)
			is->untracked_packets++;
	}
	return XDP_PASS;
}
