// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loadshed.skel.h"
#include "maps.h"

/*
 * Every pinned map: the file name under the pin directory (what users
 * script against), the kernel-side name (ls_ prefixed) and the value size
 * this build expects. The layout map comes first: its version is checked
 * before any other map is trusted.
 */
#define MAP(name, value)                                                                           \
	{                                                                                          \
#name, "ls_" #name, offsetof(struct ls_maps, name), sizeof(value)                  \
	}
static const struct {
	const char *pin;
	const char *kname;
	size_t off;
	size_t value_size;
} map_table[] = {
	MAP(layout, struct ls_layout),
	MAP(ports, struct ls_port),
	MAP(svc_addrs, __u32),
	MAP(src_prefixes, __u32),
	MAP(policy, struct ls_service_policy),
	MAP(limits, struct ls_limits),
	MAP(inflight, struct ls_inflight),
	MAP(flows, struct ls_flow),
	MAP(handshakes, struct ls_handshake),
	MAP(aborts, char),
	MAP(state, struct ls_state),
	MAP(class_stats, struct ls_class_stats),
	MAP(latency, struct ls_latency_hist),
	MAP(iface_stats, struct ls_iface_stats),
	MAP(config, struct ls_service_meta),
	MAP(agent, struct ls_agent_meta),
};
#define NR_MAPS (sizeof(map_table) / sizeof(map_table[0]))

static int lookup(int fd, uint32_t key, void *val)
{
	return bpf_map_lookup_elem(fd, &key, val) ? -errno : 0;
}

static int update(int fd, uint32_t key, const void *val)
{
	return bpf_map_update_elem(fd, &key, val, BPF_ANY) ? -errno : 0;
}

static int *fd_of(struct ls_maps *m, size_t i)
{
	return (int *)((char *)m + map_table[i].off);
}

static void maps_reset(struct ls_maps *m)
{
	for (size_t i = 0; i < NR_MAPS; i++)
		*fd_of(m, i) = -1;
}

static bool value_size_ok(int fd, size_t want)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;
	/* A ring buffer has no value; its table entry says so with a size of 1. */
	return info.type == BPF_MAP_TYPE_RINGBUF ? want == 1 : info.value_size == want;
}

int ls_maps_open(const char *dir, struct ls_maps *m, uint32_t *found_version)
{
	struct ls_layout layout = {};
	char path[256];

	maps_reset(m);
	if (found_version)
		*found_version = 0;
	for (size_t i = 0; i < NR_MAPS; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_table[i].pin);
		*fd_of(m, i) = bpf_obj_get(path);
		if (*fd_of(m, i) < 0) {
			int err = errno == ENOENT && i == 0 ? -EPROTO : -errno;

			ls_maps_close(m);
			return err; /* no layout map: pinned before layouts had versions */
		}
		if (i == 0 && !lookup(m->layout, 0, &layout) && found_version)
			*found_version = layout.version;
		if ((i == 0 && layout.version != LS_LAYOUT_VERSION) ||
		    !value_size_ok(*fd_of(m, i), map_table[i].value_size)) {
			/* Pinned by another build whose structs differ: never misread it. */
			ls_maps_close(m);
			return -EPROTO;
		}
	}
	return 0;
}

int ls_maps_set_pins(struct loadshed_bpf *skel, const char *dir)
{
	char path[256];

	for (size_t i = 0; i < NR_MAPS; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(skel->obj, map_table[i].kname);
		int err;

		if (!map)
			return -ENOENT;
		snprintf(path, sizeof(path), "%s/%s", dir, map_table[i].pin);
		err = bpf_map__set_pin_path(map, path);
		if (err)
			return err;
	}
	return 0;
}

int ls_maps_write_layout(const struct ls_maps *m)
{
	struct ls_layout layout = {.version = LS_LAYOUT_VERSION};

	return update(m->layout, 0, &layout);
}

int ls_maps_from_skel(struct loadshed_bpf *skel, struct ls_maps *m)
{
	maps_reset(m);
	for (size_t i = 0; i < NR_MAPS; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(skel->obj, map_table[i].kname);

		*fd_of(m, i) = map ? dup(bpf_map__fd(map)) : -1;
		if (*fd_of(m, i) < 0) {
			ls_maps_close(m);
			return -ENOENT;
		}
	}
	return 0;
}

void ls_maps_close(struct ls_maps *m)
{
	for (size_t i = 0; i < NR_MAPS; i++) {
		if (*fd_of(m, i) >= 0)
			close(*fd_of(m, i));
		*fd_of(m, i) = -1;
	}
}

void ls_maps_unpin(const char *dir)
{
	char path[256];

	for (size_t i = 0; i < NR_MAPS; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_table[i].pin);
		unlink(path);
	}
}

int ls_read_state(const struct ls_maps *m, struct ls_state *s)
{
	return lookup(m->state, 0, s);
}

int ls_write_state(const struct ls_maps *m, const struct ls_state *s)
{
	return update(m->state, 0, s);
}

int ls_read_agent(const struct ls_maps *m, struct ls_agent_meta *a)
{
	return lookup(m->agent, 0, a);
}

int ls_write_agent(const struct ls_maps *m, const struct ls_agent_meta *a)
{
	return update(m->agent, 0, a);
}

int ls_read_meta(const struct ls_maps *m, uint32_t svc, struct ls_service_meta *meta)
{
	return lookup(m->config, svc, meta);
}

int ls_read_limits(const struct ls_maps *m, uint32_t svc, struct ls_limits *l)
{
	return lookup(m->limits, svc, l);
}

int ls_read_inflight(const struct ls_maps *m, uint32_t svc, struct ls_inflight *in)
{
	return lookup(m->inflight, svc, in);
}

/*
 * Reads the per-CPU values of key and sums them as arrays of __u64. The
 * kernel hands out one slot per possible CPU, each rounded up to 8 bytes.
 */
static int sum_percpu(int fd, uint32_t key, __u64 *out, size_t nr_u64)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;
	int err;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu * nr_u64, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	err = lookup(fd, key, vals);
	memset(out, 0, nr_u64 * sizeof(*out));
	for (int c = 0; !err && c < ncpu; c++)
		for (size_t i = 0; i < nr_u64; i++)
			out[i] += vals[(size_t)c * nr_u64 + i];
	free(vals);
	return err;
}

int ls_read_class_stats(const struct ls_maps *m, uint32_t idx, struct ls_class_stats *out)
{
	return sum_percpu(m->class_stats, idx, (__u64 *)out, sizeof(*out) / sizeof(__u64));
}

int ls_read_iface_stats(const struct ls_maps *m, struct ls_iface_stats *out)
{
	return sum_percpu(m->iface_stats, 0, (__u64 *)out, sizeof(*out) / sizeof(__u64));
}

/* min and max do not sum: take the least non-zero minimum and the greatest maximum. */
int ls_read_latency(const struct ls_maps *m, uint32_t idx, struct ls_latency_hist *out)
{
	const size_t n = sizeof(*out) / sizeof(__u64);
	int ncpu = libbpf_num_possible_cpus();
	struct ls_latency_hist *vals;
	int err;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	err = lookup(m->latency, idx, vals);
	memset(out, 0, sizeof(*out));
	for (int c = 0; !err && c < ncpu; c++) {
		const __u64 *v = (const __u64 *)&vals[c];
		__u64 *o = (__u64 *)out;

		for (size_t i = 0; i < n; i++)
			o[i] += v[i];
	}
	if (!err) {
		out->min_ns = 0;
		out->max_ns = 0;
		for (int c = 0; c < ncpu; c++) {
			if (vals[c].min_ns && (!out->min_ns || vals[c].min_ns < out->min_ns))
				out->min_ns = vals[c].min_ns;
			if (vals[c].max_ns > out->max_ns)
				out->max_ns = vals[c].max_ns;
		}
	}
	free(vals);
	return err;
}

#define FLOW_BATCH 1024

long ls_flows_walk(const struct ls_maps *m, ls_flow_fn fn, void *ctx)
{
	static struct ls_flow_key keys[FLOW_BATCH];
	static struct ls_flow vals[FLOW_BATCH];
	struct ls_flow_key cursor;
	bool first = true;
	long seen = 0;

	for (;;) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 n = FLOW_BATCH;
		int err;

		/* The cursor is opaque to us (a bucket for a hash); key-sized is enough. */
		err = bpf_map_lookup_batch(m->flows, first ? NULL : &cursor, &cursor, keys, vals,
					   &n, &opts);
		if (err && errno != ENOENT)
			return -errno;
		first = false;
		for (__u32 i = 0; fn && i < n; i++)
			fn(&keys[i], &vals[i], ctx);
		seen += n;
		if (err)
			return seen; /* ENOENT: that was the last batch */
	}
}
