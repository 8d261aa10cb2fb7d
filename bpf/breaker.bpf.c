// SPDX-License-Identifier: GPL-2.0-only
/*
 * The outbound circuit breaker (doc/design.md §15): programs on the cgroup
 * of a caller that observe its calls to upstreams and refuse them fast
 * while a circuit is open.
 *  - cgroup/connect4, connect6: a connect() to an upstream whose circuit
 *    is open fails at once with ECONNREFUSED; half-open, it takes a trial
 *    permit or fails the same way.
 *  - sockops: times connects (TCP_CONNECT to ACTIVE_ESTABLISHED), counts
 *    refused and timed-out connects (STATE, RTO), puts each established
 *    connection to an upstream in brk_conns, and ends a call as a failure
 *    at a reset or a close without an answer.
 *  - cgroup_skb/ingress: ends a call at the first byte back, when the
 *    segment brings the byte TCP expects next (not a forgery, not a
 *    retransmission).
 *  - sk_msg on brk_conns: the first send of a new request starts a call,
 *    or fails at once (EACCES, sk_msg's only error) while the circuit is
 *    open.
 * A separate object from the interface's dataplane: it shares only
 * ls_state (the agent's heartbeat), whose pinned map the loader reuses.
 * Every hook but ingress runs under the socket's lock; ingress and the
 * close callback end a request by a compare-and-swap of its phase. The
 * counters are per-CPU.
 */
#include <linux/bpf.h>
#include <linux/errno.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "loadshed.h"
#include "loadshed_breaker.h"

#define READ_ONCE(x)	 (*(const volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

/* The interface dataplane's ls_state (heartbeat): the loader reuses its pin. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_state);
	__uint(max_entries, 1);
} ls_state SEC(".maps");

/* Destination prefix -> (port range, upstream) list; see struct ls_brk_dest. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ls_brk_dest_key);
	__type(value, struct ls_brk_dest);
	__uint(max_entries, LS_MAX_DESTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} brk_dests SEC(".maps");

/* upstream -> state and trial permits; shared, not per-CPU: permits are one count. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_brk_ctl);
	__uint(max_entries, LS_MAX_UPSTREAMS);
} brk_ctl SEC(".maps");

/* upstream -> outcome counters; per-CPU so that counting needs no atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_brk_stats);
	__uint(max_entries, LS_MAX_UPSTREAMS);
} brk_stats SEC(".maps");

/* upstream -> time to first byte of its answered calls. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_latency_hist);
	__uint(max_entries, LS_MAX_UPSTREAMS);
} brk_latency SEC(".maps");

/* upstream -> names, settings, transitions: the agent's and the CLI's. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_upstream_meta);
	__uint(max_entries, LS_MAX_UPSTREAMS);
} brk_meta SEC(".maps");

/* A connection's upstream and call; freed with the socket. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ls_brk_sock);
} brk_socks SEC(".maps");

/*
 * Established connections to upstreams, by socket cookie: the sk_msg
 * program runs on their sends. The kernel takes a socket out when it
 * closes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, __u64);
	__type(value, __u64);
	__uint(max_entries, LS_BRK_MAX_CONNS);
} brk_conns SEC(".maps");

/* The upstream of addr:port (port in host order), or -1. */
static __always_inline int upstream_of(const __u8 addr[16], __u16 port)
{
	struct ls_brk_dest_key k = {.prefixlen = 128};
	struct ls_brk_dest *d;

	__builtin_memcpy(k.addr, addr, 16);
	d = bpf_map_lookup_elem(&brk_dests, &k);
	if (!d)
		return -1;
	for (__u32 i = 0; i < LS_BRK_DEST_WAYS; i++) {
		if (i >= d->nr)
			break;
		if (port >= d->p[i].lo && port <= d->p[i].hi)
			return d->p[i].up;
	}
	return -1;
}

static __always_inline void v4_mapped(__u8 out[16], __u32 ip4_be)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &ip4_be, 4);
}

static __always_inline struct ls_brk_stats *stats_of(__u32 up)
{
	return bpf_map_lookup_elem(&brk_stats, &up);
}

/*
 * The state the dataplane enforces: the agent's, unless its heartbeat is
 * stale (as the interface's fail-open, §4.8): a dead agent leaves every
 * circuit closed.
 */
static __always_inline __u32 effective_state(struct ls_brk_ctl *c, __u64 now)
{
	__u32 zero = 0, st = READ_ONCE(c->state);
	struct ls_state *s;

	if (st == LS_BRK_CLOSED || !c->active)
		return LS_BRK_CLOSED;
	s = bpf_map_lookup_elem(&ls_state, &zero);
	if (!s || !s->heartbeat_ns)
		return LS_BRK_CLOSED;
	if (s->failopen_after_ns && now - READ_ONCE(s->heartbeat_ns) > s->failopen_after_ns)
		return LS_BRK_CLOSED;
	return st;
}

#define PERMITTED   1
#define TRIAL_TAKEN 2

/*
 * Whether a new call to up, whose control entry is c (NULL: none), may
 * start: closed (PERMITTED), or half-open with a permit left (TRIAL_TAKEN,
 * *gen the state's generation); 0: refused.
 */
static __always_inline int call_permitted(struct ls_brk_ctl *c, __u32 up, __u64 now, __u32 *gen)
{
	struct ls_brk_stats *st;
	__u32 state;

	if (!c)
		return PERMITTED;
	*gen = READ_ONCE(c->gen);
	state = effective_state(c, now);
	if (state == LS_BRK_CLOSED)
		return PERMITTED;
	if (state != LS_BRK_HALF_OPEN)
		return 0;
	if (__sync_fetch_and_add(&c->permits, -1) > 0) {
		st = stats_of(up);
		if (st)
			st->trials++;
		return TRIAL_TAKEN;
	}
	/*
	 * None left: give back what was taken, so that refused calls leave the
	 * count at 0 (2^31 of them would otherwise wrap it around to permits).
	 */
	__sync_fetch_and_add(&c->permits, 1);
	return 0;
}

static __always_inline void hist_add(__u32 up, __u64 ns)
{
	struct ls_latency_hist *h = bpf_map_lookup_elem(&brk_latency, &up);

	if (h)
		ls_hist_add(h, ns);
}

/* A call's outcome: its duration decides slow, against the upstream's threshold. */
static __always_inline void call_done(struct ls_brk_sock *s, __u64 now, int failed)
{
	__u32 up = s->up;
	struct ls_brk_ctl *c = bpf_map_lookup_elem(&brk_ctl, &up);
	struct ls_brk_stats *st = stats_of(up);
	__u64 ns = now - s->start_ns;

	if (!st)
		return;
	st->calls++;
	if (failed)
		st->failures++;
	else
		hist_add(up, ns);
	if (c && c->slow_ns && ns >= c->slow_ns)
		st->slow++;
}

static __always_inline int connect_common(struct bpf_sock_addr *ctx, const __u8 addr[16])
{
	struct ls_brk_stats *st;
	struct ls_brk_sock *s;
	struct ls_brk_ctl *c;
	__u32 gen = 0;
	int up, verdict;
	__u64 now;

	if (ctx->type != 1 /* SOCK_STREAM */)
		return 1;
	up = upstream_of(addr, bpf_ntohs((__u16)ctx->user_port));
	if (up < 0)
		return 1;
	/* Only the upstream's callers: processes of its cgroup or of one below it. */
	c = bpf_map_lookup_elem(&brk_ctl, &(__u32){up});
	if (!c || bpf_get_current_ancestor_cgroup_id(c->cgroup_level) != c->cgroup_id)
		return 1;
	now = bpf_ktime_get_ns();
	verdict = call_permitted(c, up, now, &gen);
	if (verdict) {
		/* sockops times and counts only the connects this program saw as calls. */
		s = bpf_sk_storage_get(&brk_socks, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (s) {
			s->caller = 1;
			s->up = up;
			/*
			 * A trial permit taken here belongs to this connection's first
			 * request; ls_brk_release gives it back if none comes.
			 */
			s->trial = verdict == TRIAL_TAKEN;
			s->gen = gen;
		}
		return 1;
	}
	st = stats_of(up);
	if (st)
		st->rejected_connect++;
	/* 0 alone would fail connect() with EPERM; the caller's retry logic wants ECONNREFUSED. */
	bpf_set_retval(-ECONNREFUSED);
	return 0;
}

SEC("cgroup/connect4")
int ls_brk_connect4(struct bpf_sock_addr *ctx)
{
	__u8 addr[16];

	v4_mapped(addr, ctx->user_ip4);
	return connect_common(ctx, addr);
}

SEC("cgroup/connect6")
int ls_brk_connect6(struct bpf_sock_addr *ctx)
{
	__u32 a[4];

	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	return connect_common(ctx, (const __u8 *)a);
}

/* The upstream of a sock_ops socket's peer, or -1. */
static __always_inline int peer_upstream(struct bpf_sock_ops *skops)
{
	/* Every field read once, unconditionally: the verifier wants plain ctx loads. */
	__u16 port = (__u16)bpf_ntohl(READ_ONCE(skops->remote_port));
	__u32 family = READ_ONCE(skops->family), ip4 = READ_ONCE(skops->remote_ip4);
	__u32 a[4] = {READ_ONCE(skops->remote_ip6[0]), READ_ONCE(skops->remote_ip6[1]),
		      READ_ONCE(skops->remote_ip6[2]), READ_ONCE(skops->remote_ip6[3])};

	if (family == 2 /* AF_INET */)
		v4_mapped((__u8 *)a, ip4);
	return upstream_of((const __u8 *)a, port);
}

/* Sequence arithmetic, as TCP's before()/after(). */
static __always_inline int seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

/*
 * An ACK's slack below snd_una that a genuine answer may carry (its ACK
 * older than one that arrived first, reordered): 1 MiB.
 */
#define ACK_SLACK (1u << 20)

/*
 * Whether a segment of payload plen at seq, acknowledging ack, brings the
 * next byte TCP expects: seq <= rcv_nxt < seq + plen. This program runs
 * before TCP validates the segment, so without it any forged segment with a
 * payload, or a retransmission of an answer already read, would end the
 * call. Off-path, a forger has to hit rcv_nxt within plen bytes and an ACK
 * TCP would accept; on-path, it sees both (what it can still do: §15.2).
 */
static __always_inline int brings_next_byte(struct bpf_sock *sk, __u32 seq, __u32 ack, __u32 plen)
{
	struct bpf_tcp_sock *tp = bpf_tcp_sock(sk);
	__u32 rcv_nxt, snd_nxt, snd_una;

	if (!tp)
		return 0;
	rcv_nxt = tp->rcv_nxt;
	snd_nxt = tp->snd_nxt;
	snd_una = tp->snd_una;
	if (seq_before(rcv_nxt, seq) || !seq_before(rcv_nxt, seq + plen))
		return 0;
	/* TCP drops an ACK of data not sent yet, and one older than its window. */
	return !seq_before(snd_nxt, ack) && !seq_before(ack, snd_una - ACK_SLACK);
}

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/*
 * A segment received, in the caller's cgroup: the first byte back after a
 * request ends the call. This runs in softirq without the socket's lock,
 * so the end of the request is a compare-and-swap: one party counts it.
 */
SEC("cgroup_skb/ingress")
int ls_brk_ingress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct ls_brk_sock *s;
	__u32 ip_len, hdr_len, seq, ack, len = skb->len;
	__u8 b[1], th[14];

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return 1;
	s = bpf_sk_storage_get(&brk_socks, sk, 0, 0);
	if (!s || READ_ONCE(s->phase) != LS_BRK_REQUEST)
		return 1;
	/* cgroup_skb sees the packet from its IP header. */
	if (skb->protocol == bpf_htons(0x0800)) {
		if (bpf_skb_load_bytes(skb, 0, b, 1))
			return 1;
		ip_len = (__u32)(b[0] & 0xf) * 4;
	} else {
		ip_len = 40; /* no extension headers on a connection's segments here */
	}
	if (bpf_skb_load_bytes(skb, ip_len, th, sizeof(th)))
		return 1;
	hdr_len = ip_len + (__u32)(th[12] >> 4) * 4;
	if (len <= hdr_len)
		return 1;
	/* Only what TCP would take as data: an ACK, neither a SYN nor a RST. */
	if ((th[13] & (TCP_FLAG_ACK | TCP_FLAG_SYN | TCP_FLAG_RST)) != TCP_FLAG_ACK)
		return 1;
	__builtin_memcpy(&seq, &th[4], 4);
	__builtin_memcpy(&ack, &th[8], 4);
	if (!brings_next_byte(sk, bpf_ntohl(seq), bpf_ntohl(ack), len - hdr_len))
		return 1;
	if (__sync_val_compare_and_swap(&s->phase, LS_BRK_REQUEST, LS_BRK_IDLE) == LS_BRK_REQUEST)
		call_done(s, bpf_ktime_get_ns(), 0);
	return 1;
}

enum { REFUSED, CONNECT_TIMEOUT, RESET, NO_ANSWER };

static __always_inline void count(__u32 up, int what)
{
	struct ls_brk_stats *st = stats_of(up);

	if (!st)
		return;
	switch (what) {
	case REFUSED:
		st->refused++;
		break;
	case CONNECT_TIMEOUT:
		st->connect_timeouts++;
		break;
	case RESET:
		st->resets++;
		break;
	case NO_ANSWER:
		st->no_answer++;
		break;
	}
}

static __always_inline void on_state(struct bpf_sock_ops *skops, struct ls_brk_sock *s)
{
	__u32 old = skops->args[0], new = skops->args[1];
	__u64 now = bpf_ktime_get_ns();

	switch (s->phase) {
	case LS_BRK_CONNECTING:
		if (new != BPF_TCP_CLOSE)
			return;
		/* Closed before established: a RST to the SYN, or given up on. */
		call_done(s, now, 1);
		count(s->up, REFUSED);
		break;
	case LS_BRK_REQUEST:
		if (new != BPF_TCP_CLOSE &&new != BPF_TCP_CLOSE_WAIT)
			return;
		/* The ingress program may end the call at the same moment: one counts it. */
		if (__sync_val_compare_and_swap(&s->phase, LS_BRK_REQUEST, LS_BRK_DONE) !=
		    LS_BRK_REQUEST)
			return;
		call_done(s, now, 1);
		count(s->up,
		      old == BPF_TCP_ESTABLISHED && new == BPF_TCP_CLOSE ? RESET : NO_ANSWER);
		return;
	case LS_BRK_IDLE:
		/* An established connection reset (ESTABLISHED -> CLOSE skips the FIN states). */
		if (old != BPF_TCP_ESTABLISHED || new != BPF_TCP_CLOSE)
			return;
		s->start_ns = now;
		call_done(s, now, 1);
		count(s->up, RESET);
		break;
	default:
		return;
	}
	s->phase = LS_BRK_DONE;
}

SEC("sockops")
int ls_brk_sockops(struct bpf_sock_ops *skops)
{
	struct ls_brk_stats *st;
	struct ls_brk_sock *s;
	__u64 cookie;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		/* A call only if the connect program saw it as one (the caller's cgroup). */
		if (!skops->sk)
			return 1;
		s = bpf_sk_storage_get(&brk_socks, skops->sk, 0, 0);
		if (!s || !s->caller || peer_upstream(skops) != s->up)
			return 1;
		s->phase = LS_BRK_CONNECTING;
		s->syn_rtos = 0;
		s->start_ns = bpf_ktime_get_ns();
		bpf_sock_ops_cb_flags_set(skops,
					  BPF_SOCK_OPS_STATE_CB_FLAG | BPF_SOCK_OPS_RTO_CB_FLAG);
		return 1;
	}
	if (!skops->sk)
		return 1;
	s = bpf_sk_storage_get(&brk_socks, skops->sk, 0, 0);
	if (!s)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		if (s->phase != LS_BRK_CONNECTING)
			return 1;
		s->phase = LS_BRK_IDLE;
		st = stats_of(s->up);
		if (st)
			st->connects++;
		cookie = bpf_get_socket_cookie(skops);
		bpf_sock_hash_update(skops, &brk_conns, &cookie, BPF_NOEXIST);
		bpf_sock_ops_cb_flags_set(skops,
					  BPF_SOCK_OPS_STATE_CB_FLAG | BPF_SOCK_OPS_RTO_CB_FLAG);
		break;
	case BPF_SOCK_OPS_RTO_CB:
		if (s->phase != LS_BRK_CONNECTING || ++s->syn_rtos != LS_BRK_SYN_RTOS)
			return 1;
		call_done(s, bpf_ktime_get_ns(), 1);
		count(s->up, CONNECT_TIMEOUT);
		s->phase = LS_BRK_DONE;
		break;
	case BPF_SOCK_OPS_STATE_CB:
		on_state(skops, s);
		break;
	}
	return 1;
}

/*
 * A send on an established connection to an upstream. The first send
 * after the peer answered (or since the connection was established)
 * starts a request; the sends that follow until the answer are that
 * request's, never refused halfway.
 */
SEC("sk_msg")
int ls_brk_send(struct sk_msg_md *msg)
{
	struct ls_brk_stats *st;
	struct ls_brk_sock *s;
	struct ls_brk_ctl *c;
	__u32 gen;
	int trial;
	__u64 now;

	if (!msg->sk)
		return SK_PASS;
	s = bpf_sk_storage_get(&brk_socks, msg->sk, 0, 0);
	if (!s || s->phase != LS_BRK_IDLE)
		return SK_PASS;
	now = bpf_ktime_get_ns();
	c = bpf_map_lookup_elem(&brk_ctl, &(__u32){s->up});
	trial = s->trial;
	if (trial) {
		/*
		 * The permit taken at connect is only good in the half-open phase
		 * it came from: once the circuit moved on (open, closed, or a
		 * fresh half-open phase), this request asks again.
		 */
		s->trial = 0;
		trial = c && READ_ONCE(c->gen) == s->gen &&
			effective_state(c, now) == LS_BRK_HALF_OPEN;
	}
	if (!trial && !call_permitted(c, s->up, now, &gen)) {
		st = stats_of(s->up);
		if (st)
			st->rejected_send++;
		return SK_DROP;
	}
	s->start_ns = now;
	WRITE_ONCE(s->phase, LS_BRK_REQUEST);
	return SK_PASS;
}

/*
 * A socket of the caller's cgroup released (closed by its process). A
 * trial permit its connection took and never used — the connect failed
 * before TCP sent a SYN (no route), or the connection is closed without a
 * request — goes back, so that a half-open circuit does not wait forever
 * for trial calls that will never be made. Only to the half-open state it
 * was taken from (same gen): a later one has permits of its own.
 */
SEC("cgroup/sock_release")
int ls_brk_release(struct bpf_sock *sk)
{
	struct ls_brk_sock *s;
	struct ls_brk_ctl *c;
	__u32 up;

	if (sk->protocol != IPPROTO_TCP)
		return 1;
	s = bpf_sk_storage_get(&brk_socks, sk, 0, 0);
	if (!s || !s->trial || (s->phase && s->phase != LS_BRK_IDLE))
		return 1;
	s->trial = 0;
	up = s->up;
	c = bpf_map_lookup_elem(&brk_ctl, &up);
	if (c && READ_ONCE(c->gen) == s->gen && READ_ONCE(c->state) == LS_BRK_HALF_OPEN)
		__sync_fetch_and_add(&c->permits, 1);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
