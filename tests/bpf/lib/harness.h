/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A private instance of the dataplane for tests: the skeleton loaded with
 * no map pinned (so it never meets an attachment under /sys/fs/bpf), a
 * policy written straight into its maps, packets run through the XDP and TC
 * programs and the agent's tick run with BPF_PROG_TEST_RUN, and the
 * counters, tables and the abort ring read back. Needs root (loading
 * programs).
 */
#ifndef LS_TEST_HARNESS_H
#define LS_TEST_HARNESS_H

#include <stddef.h>
#include <linux/types.h>
#include "loadshed.h"

struct loadshed_bpf;
struct ring_buffer;

struct dp {
	struct loadshed_bpf *skel;
	int xdp_fd;
	int tc_fd;
	int tick_fd;
	int nr_cpus;		      /* possible CPUs: the slots of a per-CPU value */
	struct ring_buffer *aborts;   /* the abort ring's reader, opened on first use */
	struct ring_buffer *suspects; /* the suspect ring's reader, likewise */
	void *abort_sink;	      /* where the reader puts what it reads, while it reads */
};

/* The outcome of one program run. */
struct dp_run {
	__u32 retval;
	__u32 len;	   /* bytes in out */
	__u32 duration_ns; /* the kernel's average per repetition */
	__u8 out[4096];
};

/*
 * Opens and loads a fresh dataplane with every map unpinned. max_flows
 * sizes the flow table (0: the built-in default). Returns 0 or -errno.
 */
int dp_open(struct dp *dp, __u32 max_flows);
void dp_close(struct dp *dp);

/* Policy: services, rules, prefixes, limits, state. 0 or -errno. */
int dp_port_any(struct dp *dp, __u32 gen, __u16 port, __u32 svc);
int dp_port_addr(struct dp *dp, __u32 gen, __u16 port, const char *addr, __u32 svc);
int dp_policy(struct dp *dp, __u32 gen, __u32 svc, const struct ls_service_policy *pol);
/* cidr is "a.b.c.d/n" or "x::y/n"; mask the rules whose prefix holds it. */
int dp_prefix(struct dp *dp, __u32 gen, __u32 svc, const char *cidr, __u32 rule_mask);
int dp_limits(struct dp *dp, __u32 svc, const struct ls_limits *lim);
int dp_state(struct dp *dp, __u32 active_gen, __u64 heartbeat_ns, __u64 failopen_after_ns);

/* Building a policy value. */
void dp_policy_init(struct ls_service_policy *pol, __u32 flags, __u8 default_class);
void dp_policy_class(struct ls_service_policy *pol, __u8 cls, __u8 action);
/* The class's action for a request shed under admit = requests. */
void dp_policy_req_action(struct ls_service_policy *pol, __u8 cls, __u8 req_action);
/* Appends a rule; port_lo/hi 0 and dscp LS_DSCP_ANY mean any. */
void dp_policy_rule(struct ls_service_policy *pol, __u8 cls, int has_prefix, __u16 port_lo,
		    __u16 port_hi, __u8 dscp);

/* CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns(). */
__u64 dp_now_ns(void);

/* Runs the XDP or TC program once on frame. 0 or -errno. */
int dp_xdp(struct dp *dp, const void *frame, size_t len, struct dp_run *r);
int dp_tc(struct dp *dp, const void *frame, size_t len, struct dp_run *r);
/* Runs prog_fd repeat times on frame (XDP or TC context alike). */
int dp_run(int prog_fd, const void *frame, size_t len, __u32 repeat, struct dp_run *r);
/*
 * Runs the agent's tick program (a SYSCALL program) on t, as the agent
 * does: t's inputs in, its outputs written back into t. Returns the
 * program's return value, or -errno.
 */
int dp_tick(struct dp *dp, struct ls_tick *t);

/* Counters, summed over CPUs. 0 or -errno. */
int dp_class_stats(struct dp *dp, __u32 svc, __u32 cls, struct ls_class_stats *out);
int dp_iface_stats(struct dp *dp, struct ls_iface_stats *out);
/* count, sum, buckets summed; min the least non-zero min; max the max. */
int dp_latency(struct dp *dp, __u32 svc, __u32 cls, struct ls_latency_hist *out);
/* Starts (epoch_ns) or ends (0) a service's probe on every CPU, its histogram empty. */
int dp_probe_set(struct dp *dp, __u32 svc, __u64 epoch_ns);
/* The probe histogram of a service, summed over the CPUs. */
int dp_probe_hist(struct dp *dp, __u32 svc, struct ls_latency_hist *out);
int dp_inflight(struct dp *dp, __u32 svc, struct ls_inflight *out);
/* Entries in the flow table, or -errno. */
long dp_count_flows(struct dp *dp);
/* The flow entry of key: 0, or -ENOENT when there is none. */
int dp_flow(struct dp *dp, const struct ls_flow_key *key, struct ls_flow *out);
/* Writes a flow entry as it stands (a state only a race makes). 0 or -errno. */
int dp_flow_put(struct dp *dp, const struct ls_flow_key *key, const struct ls_flow *f);
/* Entries in the handshake table, or -errno. */
long dp_count_handshakes(struct dp *dp);
/* The handshake way of key: 0, or -ENOENT when there is none. */
int dp_handshake(struct dp *dp, const struct ls_flow_key *key, struct ls_handshake *out);
/* The handshake set of key under this dataplane's seed. */
__u32 dp_hs_set(const struct dp *dp, const struct ls_flow_key *key);
/* The state entry (heartbeat, generation). 0 or -errno. */
int dp_state_get(struct dp *dp, struct ls_state *out);
/*
 * Reads the abort records waiting in the ring buffer, as the agent would:
 * up to max keys into keys (the rest are read and dropped). Returns how
 * many records there were, or -errno.
 */
int dp_aborts(struct dp *dp, struct ls_flow_key *keys, int max);
/* The same for the suspect flows the sweep handed over. */
int dp_suspects(struct dp *dp, struct ls_flow_key *keys, int max);
/* Runs the tick with op (LS_TICK_*) for key, as the agent does; its done, or -errno. */
int dp_tick_op(struct dp *dp, const struct ls_flow_key *key, __u8 op);

#endif /* LS_TEST_HARNESS_H */
