/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one definition of every map key and value that the dataplane (bpf/)
 * and the agent (user/) share. Both sides include this file; nothing here
 * may depend on libc or on kernel-internal headers.
 *
 * Layout conventions:
 *  - a service is an index 0..LS_MAX_SERVICES-1;
 *  - a class is a slot 0..LS_MAX_CLASSES-1 inside its service; per-class
 *    maps are indexed by ls_class_index(svc, cls);
 *  - addresses are 16 bytes, IPv4 in its IPv4-mapped IPv6 form
 *    (::ffff:a.b.c.d), so one key type serves both families;
 *  - the policy exists in two generations; the agent writes the inactive
 *    one and then flips ls_state.active_gen, so a reload is seen by the
 *    dataplane all at once.
 */
#ifndef LS_LOADSHED_H
#define LS_LOADSHED_H

#include <linux/types.h>

/*
 * The version of everything pinned: map set, keys and values. A binary
 * refuses pins of another version (a restart resumes from the pins, so it
 * must never misread them). Raise it with any change to the structs below
 * or to the set of maps.
 */
#define LS_LAYOUT_VERSION 6

#define LS_MAX_SERVICES 16
/* 16 configured classes, plus room for an implicit default and a bypass. */
#define LS_MAX_CLASSES	   18
#define LS_MAX_RULES	   32
#define LS_NR_CLASS_SLOTS  (LS_MAX_SERVICES * LS_MAX_CLASSES)
#define LS_NR_GENS	   2
#define LS_NAME_LEN	   32
#define LS_ALGO_PARAMS_LEN 128
/* Listen entries (port, address) per service. */
#define LS_MAX_LISTEN 16
/* Source prefixes of one rule. */
#define LS_MAX_RULE_PREFIXES 16
/* Source prefix entries of one policy generation (the trie holds two). */
#define LS_MAX_PREFIX_ENTRIES (LS_MAX_SERVICES * LS_MAX_RULES * LS_MAX_RULE_PREFIXES)
/* Map sizes: both policy generations of everything above. */
#define LS_NR_POLICY_SLOTS (LS_NR_GENS * LS_MAX_SERVICES)
#define LS_NR_SVC_ADDRS	   (LS_NR_GENS * LS_MAX_SERVICES * LS_MAX_LISTEN)
#define LS_NR_PREFIXES	   (LS_NR_GENS * LS_MAX_PREFIX_ENTRIES)

/* Highest limit accepted anywhere (pinned, initial, min, max). */
#define LS_MAX_LIMIT 1000000u
/* Shares are parts per million of L. */
#define LS_PPM 1000000u

/* Flow table size when the user does not choose one. */
#define LS_DEFAULT_MAX_FLOWS 131072
/*
 * Handshake table: SYN-ACKs awaiting their ACK, in sets of LS_HS_WAYS (see
 * maps.h), LS_MAX_HANDSHAKES in all.
 */
#define LS_MAX_HANDSHAKES 262144
#define LS_HS_WAYS	  4
#define LS_HS_SETS	  (LS_MAX_HANDSHAKES / LS_HS_WAYS)
/* Abort records the agent has not yet read (ring buffer bytes). */
#define LS_ABORT_RING_BYTES (64 * 1024)
/* Suspect flows the agent has not yet asked the kernel about (ring buffer bytes). */
#define LS_SUSPECT_RING_BYTES (64 * 1024)

/* What a service's limit L counts (ls_service_policy.admit). */
enum ls_admit {
	LS_ADMIT_CONNECTIONS = 0, /* connections, each admitted when its handshake completes */
	LS_ADMIT_REQUESTS = 1,	  /* requests outstanding on persistent connections */
};

/* Shed actions of a class for a new connection. */
enum ls_action {
	LS_ACT_DROP = 0,   /* silent: the client's timers back off */
	LS_ACT_RESET = 1,  /* XDP_TX a RST: the client fails fast */
	LS_ACT_BYPASS = 2, /* never shed, never counted in in-flight */
};

/* Shed actions of a class for a request (admit = requests). */
enum ls_req_action {
	LS_REQ_DEFER = 0, /* drop the request's segments: its client retransmits, decided again */
	LS_REQ_ABORT = 1, /* RST to the client, the server's socket destroyed */
};

/* ls_service_policy.flags */
#define LS_SVC_ACTIVE	    (1u << 0)
#define LS_SVC_SHADOW	    (1u << 1) /* decide and count, admit anyway */
#define LS_SVC_PREFIX_RULES (1u << 2) /* some rule needs the LPM lookup */

#define LS_DSCP_ANY 0xff

/*
 * One ordered classification rule. A rule matches when every condition it
 * has holds; the first matching rule gives the class.
 */
struct ls_rule {
	__u16 port_lo; /* destination port range, host order; 0/0 = any */
	__u16 port_hi;
	__u8 dscp;	 /* LS_DSCP_ANY = any */
	__u8 has_prefix; /* 1: the source must be in this rule's prefixes */
	__u8 cls;	 /* class slot the rule selects */
	__u8 pad;
};

struct ls_class_policy {
	__u8 action; /* enum ls_action */
	__u8 in_use;
	__u8 req_action; /* enum ls_req_action */
	__u8 pad;
};

/* policy map value, key = ls_policy_key(gen, svc) */
struct ls_service_policy {
	__u32 flags;
	__u32 max_connections; /* 0: no cap on tracked connections */
	__u32 max_defer_ms;    /* a request deferred longer is aborted, not served; 0: never */
	__u16 nr_rules;
	__u8 default_class; /* class of traffic no rule matches */
	__u8 admit;	    /* enum ls_admit */
	struct ls_rule rules[LS_MAX_RULES];
	struct ls_class_policy classes[LS_MAX_CLASSES];
};

/*
 * ports map value, key = destination port (host order). Per generation:
 * any_svc is svc + 1 of the any-address service on the port (0 = none),
 * by_addr says some address-specific service uses the port, so the exact
 * lookup in svc_addrs is needed.
 */
struct ls_port {
	__u8 any_svc[LS_NR_GENS];
	__u8 by_addr[LS_NR_GENS];
};

/* svc_addrs key; value is the service index (__u32) */
struct ls_svc_addr_key {
	__u32 gen;
	__u16 port; /* host order */
	__u16 pad;
	__u8 addr[16];
};

/*
 * src_prefixes key (LPM trie). prefixlen counts gen and svc (16 bits) plus
 * the address bits (an IPv4 /24 is 16 + 96 + 24). The value is the mask of
 * rules whose source prefix contains this prefix: the longest match thus
 * yields every rule whose prefix holds the source address.
 */
struct ls_prefix_key {
	__u32 prefixlen;
	__u8 gen;
	__u8 svc;
	__u8 addr[16];
};
#define LS_PREFIX_KEY_FIXED_BITS 16

/*
 * limits map value, key = svc. Written by the agent every interval (or by
 * `loadshed limit set`): the service limit L and each class's guarantee,
 * max(1, ceil(L * share)) for a class with a share, 0 for a class without.
 */
struct ls_limits {
	__u32 limit;
	__u32 guarantee[LS_MAX_CLASSES];
};

/*
 * inflight map value, key = svc. Changed only with atomic adds, by the
 * dataplane and the agent's sweep (also a BPF program). total and cls
 * count what L bounds (connections, or requests outstanding); conns counts
 * tracked connections in either mode (what max_connections bounds).
 * Signed, so that an accounting bug shows as a negative number.
 */
struct ls_inflight {
	__s32 total;
	__s32 cls[LS_MAX_CLASSES];
	__s32 conns;
};

struct ls_flow_key {
	__u8 client[16];
	__u8 server[16];
	__u16 client_port; /* network order */
	__u16 server_port; /* network order */
};

enum ls_flow_state {
	LS_FLOW_IDLE = 0,     /* no request yet, since the handshake or adoption */
	LS_FLOW_REQUEST = 1,  /* a request outstanding: client data, no answer yet */
	LS_FLOW_RESPONSE = 2, /* the server answers (or spoke first) */
	LS_FLOW_DEFERRED = 3, /* a request shed by defer: its segments are dropped */
	LS_FLOW_ABORTED = 4,  /* aborted: client segments dropped until the server's RST */
};

/* ls_flow.flags */
#define LS_FLOW_REQUESTS   (1u << 0) /* admitted under admit = requests */
#define LS_FLOW_CLIENT_FIN (1u << 1) /* the client half-closed */
#define LS_FLOW_RST_SUSPECT                                                                        \
	(1u << 2) /* a client RST we could not trust; any server segment clears it */
#define LS_FLOW_ADOPTED (1u << 3) /* tracked from a segment, not a handshake */
/* The client shut its window while the request was outstanding: no latency sample. */
#define LS_FLOW_NO_SAMPLE (1u << 4)
/* A suspect the sweep has handed to the agent, to ask the kernel about (§5.3). */
#define LS_FLOW_SUSPECT_SENT (1u << 5)

/*
 * A slot word: who holds an in-flight slot and of which class, in one
 * word so that one atomic exchange hands over the ownership and the class
 * together (a preallocated hash entry may be reused under a reader).
 * Bits 0-7 class, 8-15 service, 16 counted in total/cls, 17 present,
 * 24-63 the start in µs (wrapping every 12.7 days). 0: no slot.
 */
#define LS_SLOT_COUNTED	 (1ull << 16)
#define LS_SLOT_PRESENT	 (1ull << 17)
#define LS_SLOT_US_SHIFT 24

static inline __u64 ls_slot_word(__u64 now_ns, __u32 svc, __u32 cls, int counted)
{
	return ((now_ns / 1000) << LS_SLOT_US_SHIFT) | LS_SLOT_PRESENT |
	       (counted ? LS_SLOT_COUNTED : 0) | ((__u64)(svc & 0xff) << 8) | (cls & 0xff);
}

static inline __u32 ls_slot_svc(__u64 w)
{
	return (__u32)(w >> 8) & 0xff;
}

static inline __u32 ls_slot_cls(__u64 w)
{
	return (__u32)w & 0xff;
}

/* µs since the slot's start at now_ns, modulo the word's 40 bits of µs. */
static inline __u64 ls_slot_age_us(__u64 w, __u64 now_ns)
{
	return ((now_ns / 1000) - (w >> LS_SLOT_US_SHIFT)) &
	       ((1ull << (64 - LS_SLOT_US_SHIFT)) - 1);
}

/* Whether the slot of w was taken at or after epoch_ns (both no older than 2^40 us). */
static inline int ls_slot_since(__u64 w, __u64 epoch_ns, __u64 now_ns)
{
	__u64 epoch_age = ((now_ns - epoch_ns) / 1000) & ((1ull << (64 - LS_SLOT_US_SHIFT)) - 1);

	return now_ns >= epoch_ns && ls_slot_age_us(w, now_ns) <= epoch_age;
}

/*
 * flows map value, key = ls_flow_key. A connection whose handshake the
 * server completed (or, adopted, that the kernel holds established).
 */
struct ls_flow {
	__u64 slot; /* its connection slot (a slot word, counted under admit = connections) */
	__u64 req;  /* the outstanding request's slot word (counted under admit = requests) */
	__u64 req_last_ns;  /* the request's last client payload: its latency runs from here */
	__u64 last_seen_ns; /* coarse clock, any segment either way */
	__u32 cli_next;	    /* the client's data seen at ingress, contiguous, ends here */
	__u32 cli_acked;    /* the server's latest acknowledgment: what it received */
	__u32 srv_next;	    /* the server's data sent ends here */
	__u32 defer_end;    /* LS_FLOW_DEFERRED: the end of the deferred bytes seen */
	__u8 svc;
	__u8 cls;
	__u8 state; /* enum ls_flow_state */
	__u8 pad;
	__u32 flags;	/* LS_FLOW_*; 32 bits for atomic or/and */
	__u32 defer_ms; /* LS_FLOW_DEFERRED: when the request was first deferred (ms, wrapping) */
	__u32 srv_isn;	/* the server's ISN (0: adopted, unknown) */
};

/* The state of a way of a handshake set (the low half of ls_handshake.word). */
#define LS_HS_OPEN    0 /* awaiting its ACK */
#define LS_HS_USED    1 /* its ACK came: the connection was admitted (or passed) */
#define LS_HS_REFUSED 2 /* its ACK was shed with a RST: later segments get one too */
#define LS_HS_CLAIMED 3 /* an ACK is being decided: others of its handshake wait */

/*
 * One way of a handshake set: a SYN-ACK the server sent, so that an ACK
 * acknowledging its ISN, at the sequence number the SYN-ACK acknowledged,
 * proves the client saw it. word holds the tuple's 16-bit tag (high half,
 * ls_hs_tag_of) and the way's LS_HS_* state (low half), changed together
 * by compare-and-swap.
 */
struct ls_handshake {
	__u32 word;
	__u32 isn;     /* the server's initial sequence number */
	__u32 cli_seq; /* the SYN-ACK's acknowledgment: the client's next byte */
	__u32 sent_ms; /* coarse clock in ms (| 1) of the last SYN-ACK; 0: an empty way */
};

static inline __u32 ls_hs_word(__u32 tag, __u32 state)
{
	return tag << 16 | state;
}

static inline __u32 ls_hs_state(__u32 word)
{
	return word & 0xffff;
}

/*
 * handshakes map value, key = ls_hs_hash() % LS_HS_SETS: one set, one
 * cache line. A SYN-ACK takes its tuple's way, else an empty one, else the
 * oldest.
 */
struct ls_hs_set {
	struct ls_handshake way[LS_HS_WAYS];
};

/*
 * The keyed hash of a tuple: multiply-xorshift over its 36 bytes, keyed
 * with the dataplane's random seed (set at load), so that a sender can
 * neither tell which tuples share a set nor make a tag match. The low bits
 * choose the set, the high bits are the tag.
 */
static inline __u64 ls_hs_hash(const struct ls_flow_key *k, __u64 seed)
{
	__u32 w[sizeof(*k) / 4];
	__u64 h = seed ^ 0x2545f4914f6cdd1dull;

	__builtin_memcpy(w, k, sizeof(w));
#define LS_HS_MIX(i) (h = (h ^ w[i]) * 0x9e3779b97f4a7c15ull, h ^= h >> 29)
	LS_HS_MIX(0), LS_HS_MIX(1), LS_HS_MIX(2), LS_HS_MIX(3), LS_HS_MIX(4);
	LS_HS_MIX(5), LS_HS_MIX(6), LS_HS_MIX(7), LS_HS_MIX(8);
#undef LS_HS_MIX
	return h;
}

static inline __u32 ls_hs_set_of(__u64 hash)
{
	return (__u32)hash & (LS_HS_SETS - 1);
}

static inline __u32 ls_hs_tag_of(__u64 hash)
{
	return (__u32)(hash >> 48) | 1;
}

/*
 * state map value (one entry). failopen_after_ns == 0 means no agent keeps
 * a heartbeat, so the limits in the maps are enforced as they stand.
 */
struct ls_state {
	__u64 heartbeat_ns; /* bpf_ktime_get_ns() of the agent's last round, in the kernel */
	__u64 failopen_after_ns;
	__u32 active_gen;
	__u32 pad;
};

/* class_stats map value (per CPU), key = ls_class_index(svc, cls) */
struct ls_class_stats {
	__u64 packets;	    /* packets of this class's flows, SYNs included */
	__u64 syns;	    /* connection attempts (SYN without ACK) */
	__u64 handshakes;   /* ACKs that completed a handshake the server started */
	__u64 admitted;	    /* connections tracked from their handshake */
	__u64 adopted;	    /* connections tracked from a segment (established before) */
	__u64 shed_drop;    /* connections shed with XDP_DROP: SYN, or the handshake's ACK */
	__u64 shed_reset;   /* connections shed with a RST */
	__u64 would_shed;   /* shadow mode: connections or requests that would have been shed */
	__u64 fail_open;    /* admitted unchecked: agent heartbeat stale */
	__u64 untracked;    /* admitted unchecked: flow table full */
	__u64 requests;	    /* request starts */
	__u64 deferred;	    /* request starts shed by defer (each retransmission again) */
	__u64 aborted;	    /* requests shed by abort */
	__u64 abandoned;    /* deferred requests whose client closed: never served */
	__u64 expired;	    /* deferred requests aborted after max_defer: never served late */
	__u64 stalled;	    /* requests whose slot a stall timeout released */
	__u64 pipelined;    /* request starts before the client acknowledged the last answer */
	__u64 server_first; /* answers with no request outstanding: the server spoke first */
	__u64 ended_fin;    /* flows ended by the server's FIN */
	__u64 ended_rst;    /* flows ended by a RST: the server's, or a client's in sequence */
	__u64 ended_reused; /* flows ended by a new handshake on the same tuple */
	__u64 ended_idle;   /* flows idle past the timeout (the agent's sweep) */
	__u64 untrusted;    /* client RSTs that could not end a flow (out of sequence) */
};

/* iface_stats map value (per CPU, one entry) */
struct ls_iface_stats {
	__u64 parse_errors;	 /* malformed or unparseable: passed */
	__u64 untracked_packets; /* service packets of no tracked flow: passed */
	__u64 tx_errors;	 /* a RST could not be built: dropped instead */
	__u64 abort_lost;	 /* aborts the agent could not be told of (ring full) */
	__u64 fragments_dropped; /* first fragments of TCP to a service (or too short to tell) */
	__u64 undecidable;	 /* dropped: IPv6 chains too long to follow, v4-mapped addresses */
	__u64 bad_checksums; /* segments that would have changed a count, checksum wrong: passed */
};

/*
 * The agent's tick: a BPF_PROG_TYPE_SYSCALL program it runs each round
 * through BPF_PROG_RUN. It stamps the heartbeat with the dataplane's own
 * clock and, when asked, sweeps the flow table in the kernel.
 */
struct ls_tick {
	__u64 failopen_after_ns; /* in: written to the state with the heartbeat */
	__u64 idle_timeout_ns;	 /* in: flows idle this long end */
	__u64 stall_timeout_ns;	 /* in: requests outstanding this long release their slot */
	__u64 suspect_ns;	 /* in: flows silent this long after an untrusted RST end */
	__u64 now_ns;		 /* out: the heartbeat written */
	__u64 flows;		 /* out: flows the sweep visited */
	__u64 ended;		 /* out: flows the sweep ended */
	__u64 stalled;		 /* out: requests the sweep released */
	__u8 beat;		 /* in: 1 to stamp the heartbeat (0: only read the clock) */
	__u8 sweep;		 /* in: 1 to sweep this round */
	__u8 op;		 /* in: LS_TICK_* for key, the kernel asked (0: none) */
	__u8 pad;
	__u32 pad2;
	struct ls_flow_key key; /* in: the flow op is for */
	__u32 done;		/* out: 1 when op changed the flow */
};

/* ls_tick.op: what the kernel said of a suspect flow's socket. */
#define LS_TICK_END_SUSPECT   1 /* no socket any more: the flow ends */
#define LS_TICK_CLEAR_SUSPECT 2 /* the socket lives: the flow is no suspect */

/*
 * Latency histogram: log-linear buckets over microseconds. Below 2^LS_HIST_SUB
 * µs a bucket per µs; above, each power of two is split in 2^LS_HIST_SUB
 * linear sub-buckets (relative width 1/8). 60 s lands in bucket 190; the
 * last bucket, 199, also takes everything above 2^27 µs (134 s).
 */
#define LS_HIST_SUB	   3
#define LS_HIST_SUB_N	   (1u << LS_HIST_SUB)
#define LS_HIST_MAX_OCTAVE 26
#define LS_HIST_BUCKETS	   (LS_HIST_SUB_N + (LS_HIST_MAX_OCTAVE - LS_HIST_SUB + 1) * LS_HIST_SUB_N)

/* latency map value (per CPU), key = ls_class_index(svc, cls) */
struct ls_latency_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 min_ns; /* 0: no sample yet */
	__u64 max_ns;
	__u64 buckets[LS_HIST_BUCKETS];
};

/*
 * probe map value (per CPU), key = service: the latencies of the requests
 * admitted at or after epoch_ns (the dataplane's clock), while the agent
 * measures the no-load latency with the limit pinned low (design §7.4).
 * epoch_ns == 0: no probe, nothing recorded. The agent writes a new epoch
 * and an empty histogram on every CPU when a probe starts, and 0 when it
 * ends.
 */
struct ls_probe {
	__u64 epoch_ns;
	__u64 pad;
	struct ls_latency_hist hist;
};

/*
 * The agent's and the CLI's own records: names, shares and algorithm of
 * each service, so that `status` can name things and a restarted agent
 * resumes from the pinned maps alone. The dataplane never reads them.
 */
struct ls_class_meta {
	char name[LS_NAME_LEN];
	__u32 share_ppm;	/* guaranteed share of L, parts per million */
	__u32 pinned_guarantee; /* 0: from the share; else set by `limit set --class` */
};

/* config map value, key = svc */
struct ls_service_meta {
	char name[LS_NAME_LEN];
	char algo[LS_NAME_LEN];
	char algo_params[LS_ALGO_PARAMS_LEN]; /* "k=v,k=v" as configured */
	__u32 in_use;
	__u32 pinned_limit; /* 0: the algorithm sets L */
	__u32 min_limit;
	__u32 max_limit;
	__u32 initial_limit;
	__u32 nr_classes;
	__u32 rtt_quantile_ppm; /* the window's RTT: 0 the mean, else this quantile */
	__u32 admit;		/* enum ls_admit, for status */
	struct ls_class_meta classes[LS_MAX_CLASSES];
};

enum ls_xdp_mode {
	LS_XDP_NATIVE = 1,
	LS_XDP_GENERIC = 2,
};

enum ls_tc_mode {
	LS_TC_TCX = 1,	  /* a TCX link, pinned */
	LS_TC_CLSACT = 2, /* a filter on a clsact qdisc */
};

/*
 * Where the agent serves its Prometheus metrics ([agent] metrics). The
 * address is IPv4-mapped for IPv4, as everywhere; port 0: metrics off.
 */
enum ls_metrics_family {
	LS_METRICS_V4 = 1,   /* A.B.C.D:PORT, 0.0.0.0:PORT included */
	LS_METRICS_V6 = 2,   /* [IPV6]:PORT, [::]:PORT included (IPv6 only) */
	LS_METRICS_DUAL = 3, /* *:PORT: every address, IPv4 and IPv6 */
};

struct ls_metrics_addr {
	__u8 addr[16];
	__u16 port;
	__u8 family; /* enum ls_metrics_family */
	__u8 pad[5];
};

/* agent map value (one entry): settings of the control loop and attachment */
struct ls_agent_meta {
	__u64 interval_ns;
	__u64 idle_timeout_ns;
	__u64 stall_timeout_ns; /* admit = requests: a request outstanding longer gives its slot
				   back */
	__u64 failopen_after_ns;
	__u32 agent_pid; /* 0: no agent running */
	__u32 max_flows;
	__u32 ifindex;
	__u8 xdp_mode;	       /* enum ls_xdp_mode */
	__u8 tc_mode;	       /* enum ls_tc_mode */
	__u8 qdisc_created;    /* detach removes the clsact qdisc too */
	__u8 config_unwatched; /* [agent] watch_config = false: not followed */
	__u32 tc_handle;       /* clsact filter, when tc_mode is LS_TC_CLSACT */
	__u32 tc_priority;
	__u32 log_change_ppm;  /* the agent logs limit changes larger than this */
	char config_path[256]; /* what SIGHUP reloads; empty: built from options */
	struct ls_metrics_addr metrics;
};

/* layout map value (one entry): LS_LAYOUT_VERSION of the build that pinned. */
struct ls_layout {
	__u32 version;
	__u32 pad;
};

static inline __u32 ls_class_index(__u32 svc, __u32 cls)
{
	return svc * LS_MAX_CLASSES + cls;
}

/* Key of a service's entry in the policy map of generation gen. */
static inline __u32 ls_policy_key(__u32 gen, __u32 svc)
{
	return gen * LS_MAX_SERVICES + svc;
}

/* Index of the highest set bit of v (v > 0), without loops. */
static inline __u32 ls_fls64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

/* Bucket of a latency sample. */
static inline __u32 ls_hist_bucket(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 octave, sub, idx;

	if (us < LS_HIST_SUB_N)
		return (__u32)us;
	octave = ls_fls64(us);
	if (octave > LS_HIST_MAX_OCTAVE)
		return LS_HIST_BUCKETS - 1;
	sub = (__u32)(us >> (octave - LS_HIST_SUB)) & (LS_HIST_SUB_N - 1);
	idx = LS_HIST_SUB_N + (octave - LS_HIST_SUB) * LS_HIST_SUB_N + sub;
	return idx;
}

/* Lowest latency, in µs, that lands in bucket idx. */
static inline __u64 ls_hist_bucket_lo_us(__u32 idx)
{
	__u32 octave, sub;

	if (idx < LS_HIST_SUB_N)
		return idx;
	octave = (idx - LS_HIST_SUB_N) / LS_HIST_SUB_N + LS_HIST_SUB;
	sub = (idx - LS_HIST_SUB_N) % LS_HIST_SUB_N;
	return (__u64)(LS_HIST_SUB_N + sub) << (octave - LS_HIST_SUB);
}

/* First latency, in µs, above bucket idx. */
static inline __u64 ls_hist_bucket_hi_us(__u32 idx)
{
	__u32 octave;

	if (idx < LS_HIST_SUB_N)
		return idx + 1;
	octave = (idx - LS_HIST_SUB_N) / LS_HIST_SUB_N + LS_HIST_SUB;
	return ls_hist_bucket_lo_us(idx) + (1ull << (octave - LS_HIST_SUB));
}

/*
 * One sample of ns into h, for the BPF programs (the caller owns h: a
 * per-CPU or per-key value) and the agent's replays and tests alike.
 */
static inline void ls_hist_add(struct ls_latency_hist *h, __u64 ns)
{
	__u32 b = ls_hist_bucket(ns);

	h->count++;
	h->sum_ns += ns;
	if (!h->min_ns || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
#ifdef barrier_var
	barrier_var(b); /* the compiler knows b is in range; the verifier must be shown */
#endif
	if (b < LS_HIST_BUCKETS)
		h->buckets[b]++;
}

/*
 * Both sides compile these structs; a size that moves on one side only
 * would make them disagree silently. Any change here raises
 * LS_LAYOUT_VERSION.
 */
_Static_assert(sizeof(struct ls_rule) == 8, "ls_rule");
_Static_assert(sizeof(struct ls_class_policy) == 4, "ls_class_policy");
_Static_assert(sizeof(struct ls_service_policy) == 344, "ls_service_policy");
_Static_assert(sizeof(struct ls_port) == 4, "ls_port");
_Static_assert(sizeof(struct ls_svc_addr_key) == 24, "ls_svc_addr_key");
_Static_assert(sizeof(struct ls_prefix_key) == 24, "ls_prefix_key");
_Static_assert(sizeof(struct ls_limits) == 76, "ls_limits");
_Static_assert(sizeof(struct ls_inflight) == 80, "ls_inflight");
_Static_assert(sizeof(struct ls_flow_key) == 36, "ls_flow_key");
_Static_assert(sizeof(struct ls_flow) == 64, "ls_flow");
_Static_assert(sizeof(struct ls_handshake) == 16, "ls_handshake");
_Static_assert(sizeof(struct ls_hs_set) == 64, "ls_hs_set: one cache line");
_Static_assert(sizeof(struct ls_flow_key) == 9 * 4, "ls_hs_hash hashes nine words");
_Static_assert((LS_HS_SETS & (LS_HS_SETS - 1)) == 0, "LS_HS_SETS: a power of two");
_Static_assert(sizeof(struct ls_state) == 24, "ls_state");
_Static_assert(sizeof(struct ls_class_stats) == 23 * 8, "ls_class_stats: u64 counters only");
_Static_assert(sizeof(struct ls_iface_stats) == 7 * 8, "ls_iface_stats: u64 counters only");
_Static_assert(sizeof(struct ls_tick) == 9 * 8 + 40, "ls_tick");
_Static_assert(sizeof(struct ls_latency_hist) == (4 + LS_HIST_BUCKETS) * 8, "ls_latency_hist");
_Static_assert(sizeof(struct ls_probe) == (6 + LS_HIST_BUCKETS) * 8, "ls_probe");
_Static_assert(sizeof(struct ls_class_meta) == 40, "ls_class_meta");
_Static_assert(sizeof(struct ls_service_meta) == 944, "ls_service_meta");
_Static_assert(sizeof(struct ls_metrics_addr) == 24, "ls_metrics_addr");
_Static_assert(sizeof(struct ls_agent_meta) == 344, "ls_agent_meta");
_Static_assert(sizeof(struct ls_layout) == 8, "ls_layout");

#endif /* LS_LOADSHED_H */
