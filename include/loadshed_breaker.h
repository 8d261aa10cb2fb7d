/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The outbound circuit breaker's map keys and values (doc/design.md §15),
 * shared by bpf/breaker.bpf.c and the agent. One upstream is an index
 * 0..LS_MAX_UPSTREAMS-1; addresses are 16 bytes, IPv4 mapped, as in
 * loadshed.h.
 */
#ifndef LS_LOADSHED_BREAKER_H
#define LS_LOADSHED_BREAKER_H

#include <linux/types.h>

#define LS_MAX_UPSTREAMS 16
/* dest entries (prefix and port range) of one upstream, and of all of them. */
#define LS_MAX_UPSTREAM_DESTS 16
#define LS_MAX_DESTS	      64
/* Port ranges an address may be in, over every prefix that holds it. */
#define LS_BRK_DEST_WAYS 8
/* SYN retransmission timeouts after which a connect is a failed call. */
#define LS_BRK_SYN_RTOS 3
/* Connections to upstreams the send edge sees (the sockhash). */
#define LS_BRK_MAX_CONNS 65536

/* State of a circuit, as resilience4j names them. */
enum ls_brk_state {
	LS_BRK_CLOSED = 0,
	LS_BRK_OPEN = 1,
	LS_BRK_HALF_OPEN = 2,
};

/* Who decides the state (ls_upstream_meta.mode): the state machine or the operator. */
enum ls_brk_mode {
	LS_BRK_AUTO = 0,
	LS_BRK_FORCED_OPEN = 1,
	LS_BRK_FORCED_CLOSED = 2,
};

/*
 * brk_dests key (LPM trie): prefixlen counts the bits of addr (an IPv4
 * /24 is 96 + 24).
 */
struct ls_brk_dest_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct ls_brk_port_range {
	__u16 lo, hi; /* host order */
	__u8 up;      /* upstream index */
	__u8 pad[3];
};

/*
 * brk_dests value: every (port range, upstream) whose prefix holds this
 * prefix, most specific prefix first, so that the longest match alone
 * answers "which upstream is ADDR:PORT" and a shorter prefix with another
 * port still counts.
 */
struct ls_brk_dest {
	__u32 nr;
	struct ls_brk_port_range p[LS_BRK_DEST_WAYS];
};

/*
 * brk_ctl value, key = upstream: what the dataplane enforces. The agent
 * writes it at each transition; the dataplane only takes half-open
 * permits, with an atomic add.
 */
struct ls_brk_ctl {
	__u32 state;   /* enum ls_brk_state */
	__s32 permits; /* HALF_OPEN: trial calls still allowed; taken atomically */
	__u64 slow_ns; /* slow_call_duration_threshold */
	__u32 active;  /* 1: a configured upstream */
	__u32 gen;     /* bumped at every write of state: whose permits a socket holds */
	/* The callers' cgroup: a connect is the upstream's when its ancestor at level is it. */
	__u64 cgroup_id;
	__u32 cgroup_level;
	__u32 pad;
};

/* brk_stats value (per CPU), key = upstream. Only ever incremented. */
struct ls_brk_stats {
	__u64 calls;		/* calls with an outcome: successes + failures */
	__u64 failures;		/* refused + connect_timeouts + resets + no_answer */
	__u64 slow;		/* calls (failed or not) that took slow_ns or more */
	__u64 refused;		/* connects that ended before being established */
	__u64 connect_timeouts; /* connects past LS_BRK_SYN_RTOS SYN timeouts */
	__u64 resets;		/* established connections closed by a reset */
	__u64 no_answer;	/* requests the peer closed on without a byte */
	__u64 connects;		/* connects established */
	__u64 rejected_connect; /* connect() refused by an open circuit */
	__u64 rejected_send;	/* a request's first send refused by an open circuit */
	__u64 trials;		/* half-open permits taken */
};

/* Per-socket storage (brk_socks): the connection's upstream and its call. */
enum ls_brk_phase {
	LS_BRK_CONNECTING = 1,
	LS_BRK_IDLE = 2,    /* established, no request outstanding */
	LS_BRK_REQUEST = 3, /* a request sent, no byte back yet */
	LS_BRK_DONE = 4,    /* its outcome counted; nothing more to count */
};

struct ls_brk_sock {
	__u64 start_ns; /* connect or request start */
	__u32 phase;	/* enum ls_brk_phase; 32 bits for compare-and-swap */
	__u8 up;
	__u8 syn_rtos;
	__u8 trial;  /* holds a half-open permit its first request uses */
	__u8 caller; /* its connect was a call of upstream up, from up's cgroup */
	__u32 gen;   /* brk_ctl's gen when the permit was taken */
	__u32 pad2;
};

/*
 * brk_meta value, key = upstream: names, settings and transitions for the
 * agent and the CLI. The dataplane never reads it.
 */
struct ls_upstream_meta {
	char name[32];
	__u32 active;
	__u32 mode; /* enum ls_brk_mode */
	__u32 window_time_based;
	__u32 window_size; /* calls, or seconds */
	__u32 minimum_calls;
	__u32 failure_rate_ppm;
	__u32 slow_rate_ppm;
	__u32 half_open_permits;
	__u64 slow_ns;
	__u64 open_wait_ns;
	__u64 half_open_max_wait_ns; /* 0: wait for every trial */
	__u64 cgroup_id;
	__u64 to_open, to_half_open, to_closed; /* transitions */
	__u64 state_since_ns;			/* bpf_ktime_get_ns() clock */
	char cgroup[128];
};

_Static_assert(sizeof(struct ls_brk_dest) == 4 + 8 * LS_BRK_DEST_WAYS, "ls_brk_dest");
_Static_assert(sizeof(struct ls_brk_ctl) == 40, "ls_brk_ctl");
_Static_assert(sizeof(struct ls_brk_stats) == 11 * 8, "ls_brk_stats: u64 counters only");
_Static_assert(sizeof(struct ls_brk_sock) == 24, "ls_brk_sock");
_Static_assert(sizeof(struct ls_upstream_meta) == 32 + 8 * 4 + 8 * 8 + 128, "ls_upstream_meta");

#endif /* LS_LOADSHED_BREAKER_H */
