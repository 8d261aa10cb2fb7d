// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The dataplane under test, loaded privately. Every map of the skeleton is
 * declared LIBBPF_PIN_BY_NAME, which would make libbpf reuse (or create)
 * pins under /sys/fs/bpf and so share state with a real attachment or with
 * another test: clearing each map's pin path before load keeps this
 * instance to itself, and leaves nothing behind when it is destroyed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loadshed.skel.h"
#include "lib/harness.h"

/* Quiet unless LS_TEST_VERBOSE is set: libbpf's debug log drowns TAP output. */
static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !getenv("LS_TEST_VERBOSE"))
		return 0;
	if (level == LIBBPF_INFO && !getenv("LS_TEST_VERBOSE"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int dp_open(struct dp *dp, __u32 max_flows)
{
	int err;

	memset(dp, 0, sizeof(*dp));
	libbpf_set_print(print_libbpf);
	dp->nr_cpus = libbpf_num_possible_cpus();
	if (dp->nr_cpus <= 0)
		return dp->nr_cpus ? dp->nr_cpus : -EINVAL;

	dp->skel = loadshed_bpf__open();
	if (!dp->skel)
		return -errno ? -errno : -EINVAL;
	/* A random key for the handshake table, as the loader's (ls_hs_hash). */
	if (getrandom(&dp->skel->rodata->ls_hs_seed, sizeof(dp->skel->rodata->ls_hs_seed), 0) !=
	    (ssize_t)sizeof(dp->skel->rodata->ls_hs_seed)) {
		err = -EIO;
		goto fail;
	}
	/* Nothing is pinned: the loader, not the object, says where maps go. */
	if (max_flows) {
		err = bpf_map__set_max_entries(dp->skel->maps.ls_flows, max_flows);
		if (err)
			goto fail;
	}
	err = loadshed_bpf__load(dp->skel);
	if (err)
		goto fail;
	dp->xdp_fd = bpf_program__fd(dp->skel->progs.ls_xdp_ingress);
	dp->tc_fd = bpf_program__fd(dp->skel->progs.ls_tc_egress);
	dp->tick_fd = bpf_program__fd(dp->skel->progs.ls_tick);
	return 0;
fail:
	loadshed_bpf__destroy(dp->skel);
	dp->skel = NULL;
	return err;
}

void dp_close(struct dp *dp)
{
	ring_buffer__free(dp->aborts);
	dp->aborts = NULL;
	ring_buffer__free(dp->suspects);
	dp->suspects = NULL;
	loadshed_bpf__destroy(dp->skel);
	dp->skel = NULL;
}

static int fd_of(struct bpf_map *map)
{
	return bpf_map__fd(map);
}

static int update(struct bpf_map *map, const void *key, const void *val)
{
	return bpf_map_update_elem(fd_of(map), key, val, BPF_ANY) ? -errno : 0;
}

static int parse_addr16(const char *text, __u8 addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET6, text, addr) == 1)
		return 0;
	/* IPv4 as IPv4-mapped IPv6, the dataplane's one address form. */
	if (inet_pton(AF_INET, text, addr + 12) == 1) {
		addr[10] = addr[11] = 0xff;
		return 0;
	}
	return -EINVAL;
}

int dp_port_any(struct dp *dp, __u32 gen, __u16 port, __u32 svc)
{
	struct ls_port p;
	__u32 key = port;
	int err;

	if (bpf_map_lookup_elem(fd_of(dp->skel->maps.ls_ports), &key, &p))
		return -errno;
	p.any_svc[gen] = (__u8)(svc + 1);
	err = update(dp->skel->maps.ls_ports, &key, &p);
	return err;
}

int dp_port_addr(struct dp *dp, __u32 gen, __u16 port, const char *addr, __u32 svc)
{
	struct ls_svc_addr_key k;
	struct ls_port p;
	__u32 key = port;
	int err;

	memset(&k, 0, sizeof(k));
	k.gen = gen;
	k.port = port;
	err = parse_addr16(addr, k.addr);
	if (err)
		return err;
	err = update(dp->skel->maps.ls_svc_addrs, &k, &svc);
	if (err)
		return err;
	if (bpf_map_lookup_elem(fd_of(dp->skel->maps.ls_ports), &key, &p))
		return -errno;
	p.by_addr[gen] = 1;
	return update(dp->skel->maps.ls_ports, &key, &p);
}

int dp_policy(struct dp *dp, __u32 gen, __u32 svc, const struct ls_service_policy *pol)
{
	__u32 key = gen * LS_MAX_SERVICES + svc;

	return update(dp->skel->maps.ls_policy, &key, pol);
}

int dp_prefix(struct dp *dp, __u32 gen, __u32 svc, const char *cidr, __u32 rule_mask)
{
	struct ls_prefix_key k;
	char text[64];
	char *slash;
	int bits, err;

	if (strlen(cidr) >= sizeof(text))
		return -EINVAL;
	strcpy(text, cidr);
	slash = strchr(text, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	bits = atoi(slash + 1);

	memset(&k, 0, sizeof(k));
	err = parse_addr16(text, k.addr);
	if (err)
		return err;
	/* An IPv4 prefix sits behind the 96 bits of the ::ffff:0:0/96 map. */
	if (!strchr(text, ':'))
		bits += 96;
	if (bits < 0 || bits > 128)
		return -EINVAL;
	k.prefixlen = LS_PREFIX_KEY_FIXED_BITS + bits;
	k.gen = (__u8)gen;
	k.svc = (__u8)svc;
	return update(dp->skel->maps.ls_src_prefixes, &k, &rule_mask);
}

int dp_limits(struct dp *dp, __u32 svc, const struct ls_limits *lim)
{
	return update(dp->skel->maps.ls_limits, &svc, lim);
}

int dp_state(struct dp *dp, __u32 active_gen, __u64 heartbeat_ns, __u64 failopen_after_ns)
{
	struct ls_state s;
	__u32 key = 0;

	memset(&s, 0, sizeof(s));
	s.active_gen = active_gen;
	s.heartbeat_ns = heartbeat_ns;
	s.failopen_after_ns = failopen_after_ns;
	return update(dp->skel->maps.ls_state, &key, &s);
}

void dp_policy_init(struct ls_service_policy *pol, __u32 flags, __u8 default_class)
{
	memset(pol, 0, sizeof(*pol));
	pol->flags = flags;
	pol->default_class = default_class;
	pol->classes[default_class].in_use = 1;
}

void dp_policy_class(struct ls_service_policy *pol, __u8 cls, __u8 action)
{
	pol->classes[cls].in_use = 1;
	pol->classes[cls].action = action;
}

void dp_policy_req_action(struct ls_service_policy *pol, __u8 cls, __u8 req_action)
{
	pol->classes[cls].in_use = 1;
	pol->classes[cls].req_action = req_action;
}

void dp_policy_rule(struct ls_service_policy *pol, __u8 cls, int has_prefix, __u16 port_lo,
		    __u16 port_hi, __u8 dscp)
{
	struct ls_rule *r;

	if (pol->nr_rules >= LS_MAX_RULES)
		return;
	r = &pol->rules[pol->nr_rules++];
	r->cls = cls;
	r->has_prefix = has_prefix ? 1 : 0;
	r->port_lo = port_lo;
	r->port_hi = port_hi;
	r->dscp = dscp;
	if (has_prefix)
		pol->flags |= LS_SVC_PREFIX_RULES;
}

__u64 dp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

int dp_run(int prog_fd, const void *frame, size_t len, __u32 repeat, struct dp_run *r)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (__u32)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .repeat = (int)repeat);

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	r->retval = opts.retval;
	r->len = opts.data_size_out;
	r->duration_ns = opts.duration;
	return 0;
}

int dp_tick(struct dp *dp, struct ls_tick *t)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = t, .ctx_size_in = sizeof(*t));

	if (bpf_prog_test_run_opts(dp->tick_fd, &opts))
		return -errno;
	return (int)opts.retval;
}

int dp_xdp(struct dp *dp, const void *frame, size_t len, struct dp_run *r)
{
	return dp_run(dp->xdp_fd, frame, len, 1, r);
}

int dp_tc(struct dp *dp, const void *frame, size_t len, struct dp_run *r)
{
	return dp_run(dp->tc_fd, frame, len, 1, r);
}

/* Sums a per-CPU value made of __u64 fields only. */
static int percpu_sum(struct dp *dp, struct bpf_map *map, __u32 key, __u64 *out, size_t n)
{
	size_t stride = (n * sizeof(__u64) + 7) & ~(size_t)7;
	__u64 *vals;
	int cpu;
	size_t i;

	vals = calloc(dp->nr_cpus, stride);
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd_of(map), &key, vals)) {
		int err = -errno;

		free(vals);
		return err;
	}
	memset(out, 0, n * sizeof(__u64));
	for (cpu = 0; cpu < dp->nr_cpus; cpu++)
		for (i = 0; i < n; i++)
			out[i] += vals[cpu * (stride / sizeof(__u64)) + i];
	free(vals);
	return 0;
}

int dp_class_stats(struct dp *dp, __u32 svc, __u32 cls, struct ls_class_stats *out)
{
	return percpu_sum(dp, dp->skel->maps.ls_class_stats, ls_class_index(svc, cls), (__u64 *)out,
			  sizeof(*out) / sizeof(__u64));
}

int dp_iface_stats(struct dp *dp, struct ls_iface_stats *out)
{
	return percpu_sum(dp, dp->skel->maps.ls_iface_stats, 0, (__u64 *)out,
			  sizeof(*out) / sizeof(__u64));
}

int dp_probe_set(struct dp *dp, __u32 svc, __u64 epoch_ns)
{
	struct ls_probe *vals = calloc(dp->nr_cpus, sizeof(*vals));
	int cpu, err;

	if (!vals)
		return -ENOMEM;
	for (cpu = 0; cpu < dp->nr_cpus; cpu++)
		vals[cpu].epoch_ns = epoch_ns;
	err = bpf_map_update_elem(fd_of(dp->skel->maps.ls_probe), &svc, vals, BPF_ANY) ? -errno : 0;
	free(vals);
	return err;
}

int dp_probe_hist(struct dp *dp, __u32 svc, struct ls_latency_hist *out)
{
	struct ls_probe *vals = calloc(dp->nr_cpus, sizeof(*vals));
	int cpu, err = 0;
	__u32 b;

	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd_of(dp->skel->maps.ls_probe), &svc, vals))
		err = -errno;
	memset(out, 0, sizeof(*out));
	for (cpu = 0; !err && cpu < dp->nr_cpus; cpu++) {
		out->count += vals[cpu].hist.count;
		out->sum_ns += vals[cpu].hist.sum_ns;
		for (b = 0; b < LS_HIST_BUCKETS; b++)
			out->buckets[b] += vals[cpu].hist.buckets[b];
	}
	free(vals);
	return err;
}

int dp_latency(struct dp *dp, __u32 svc, __u32 cls, struct ls_latency_hist *out)
{
	struct ls_latency_hist *vals;
	__u32 key = ls_class_index(svc, cls);
	int cpu, b;

	vals = calloc(dp->nr_cpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd_of(dp->skel->maps.ls_latency), &key, vals)) {
		int err = -errno;

		free(vals);
		return err;
	}
	memset(out, 0, sizeof(*out));
	for (cpu = 0; cpu < dp->nr_cpus; cpu++) {
		const struct ls_latency_hist *h = &vals[cpu];

		out->count += h->count;
		out->sum_ns += h->sum_ns;
		if (h->min_ns && (!out->min_ns || h->min_ns < out->min_ns))
			out->min_ns = h->min_ns;
		if (h->max_ns > out->max_ns)
			out->max_ns = h->max_ns;
		for (b = 0; b < (int)LS_HIST_BUCKETS; b++)
			out->buckets[b] += h->buckets[b];
	}
	free(vals);
	return 0;
}

int dp_inflight(struct dp *dp, __u32 svc, struct ls_inflight *out)
{
	return bpf_map_lookup_elem(fd_of(dp->skel->maps.ls_inflight), &svc, out) ? -errno : 0;
}

static long count_keys(int fd)
{
	struct ls_flow_key key, next;
	long n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		n++;
		key = next;
		prev = &key;
	}
	return errno == ENOENT ? n : -errno;
}

long dp_count_flows(struct dp *dp)
{
	return count_keys(fd_of(dp->skel->maps.ls_flows));
}

/* Ways that hold a SYN-ACK, read in batches of sets. */
long dp_count_handshakes(struct dp *dp)
{
	static struct ls_hs_set vals[4096];
	static __u32 keys[4096];
	int fd = fd_of(dp->skel->maps.ls_handshakes);
	__u32 batch, *in = NULL;
	long n = 0;
	int err;

	do {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 count = 4096, i, w;

		err = bpf_map_lookup_batch(fd, in, &batch, keys, vals, &count, &opts);
		if (err && errno != ENOENT)
			return -errno;
		for (i = 0; i < count; i++)
			for (w = 0; w < LS_HS_WAYS; w++)
				n += vals[i].way[w].sent_ms != 0;
		in = &batch;
	} while (!err);
	return n;
}

int dp_flow(struct dp *dp, const struct ls_flow_key *key, struct ls_flow *out)
{
	return bpf_map_lookup_elem(fd_of(dp->skel->maps.ls_flows), key, out) ? -errno : 0;
}

int dp_flow_put(struct dp *dp, const struct ls_flow_key *key, const struct ls_flow *f)
{
	return update(dp->skel->maps.ls_flows, key, f);
}

__u32 dp_hs_set(const struct dp *dp, const struct ls_flow_key *key)
{
	return ls_hs_set_of(ls_hs_hash(key, dp->skel->rodata->ls_hs_seed));
}

/* The SYN-ACK of key in its set; -ENOENT when none of its ways is key's. */
int dp_handshake(struct dp *dp, const struct ls_flow_key *key, struct ls_handshake *out)
{
	__u64 h = ls_hs_hash(key, dp->skel->rodata->ls_hs_seed);
	__u32 idx = ls_hs_set_of(h), w;
	struct ls_hs_set set;

	if (bpf_map_lookup_elem(fd_of(dp->skel->maps.ls_handshakes), &idx, &set))
		return -errno;
	for (w = 0; w < LS_HS_WAYS; w++) {
		if (set.way[w].sent_ms && set.way[w].word >> 16 == ls_hs_tag_of(h)) {
			*out = set.way[w];
			return 0;
		}
	}
	return -ENOENT;
}

int dp_state_get(struct dp *dp, struct ls_state *out)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(fd_of(dp->skel->maps.ls_state), &key, out) ? -errno : 0;
}

struct abort_reader {
	struct ls_flow_key *keys;
	int max;
	int n;
	int bad; /* records of another size */
};

static int on_abort(void *ctx, void *data, size_t len)
{
	struct abort_reader *r = ((struct dp *)ctx)->abort_sink;

	if (len != sizeof(struct ls_flow_key)) {
		r->bad++;
		return 0;
	}
	if (r->n < r->max)
		memcpy(&r->keys[r->n], data, sizeof(struct ls_flow_key));
	r->n++;
	return 0;
}

static int ring_keys(struct dp *dp, struct ring_buffer **rb, struct bpf_map *map,
		     struct ls_flow_key *keys, int max)
{
	struct abort_reader r = {.keys = keys, .max = max};
	int err;

	if (!*rb) {
		*rb = ring_buffer__new(fd_of(map), on_abort, dp, NULL);
		if (!*rb)
			return -errno ? -errno : -EINVAL;
	}
	dp->abort_sink = &r;
	err = ring_buffer__consume(*rb);
	dp->abort_sink = NULL;
	if (err < 0)
		return err;
	return r.bad ? -EPROTO : r.n;
}

int dp_aborts(struct dp *dp, struct ls_flow_key *keys, int max)
{
	return ring_keys(dp, &dp->aborts, dp->skel->maps.ls_aborts, keys, max);
}

int dp_suspects(struct dp *dp, struct ls_flow_key *keys, int max)
{
	return ring_keys(dp, &dp->suspects, dp->skel->maps.ls_suspects, keys, max);
}

int dp_tick_op(struct dp *dp, const struct ls_flow_key *key, __u8 op)
{
	struct ls_tick t = {.op = op};
	int err;

	memcpy(&t.key, key, sizeof(t.key));
	err = dp_tick(dp, &t);
	return err ? err : (int)t.done;
}
