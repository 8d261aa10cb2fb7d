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
 * script against), the kernel-side name (ls_ prefixed), and the type, key
 * and value size this build expects. The layout map comes first: its
 * version is checked before any other map is trusted.
 */
#define MAP(name, type, key, value)                                                                \
	{                                                                                          \
#name, "ls_" #name, offsetof(struct ls_maps, name), BPF_MAP_TYPE_##type,           \
			sizeof(key), sizeof(value)                                                 \
	}
static const struct {
	const char *pin;
	const char *kname;
	size_t off;
	__u32 type;
	size_t key_size;
	size_t value_size;
} map_table[] = {
	MAP(layout, ARRAY, __u32, struct ls_layout),
	MAP(ports, ARRAY, __u32, struct ls_port),
	MAP(svc_addrs, HASH, struct ls_svc_addr_key, __u32),
	MAP(src_prefixes, LPM_TRIE, struct ls_prefix_key, __u32),
	MAP(policy, ARRAY, __u32, struct ls_service_policy),
	MAP(limits, ARRAY, __u32, struct ls_limits),
	MAP(inflight, ARRAY, __u32, struct ls_inflight),
	MAP(flows, HASH, struct ls_flow_key, struct ls_flow),
	MAP(handshakes, ARRAY, __u32, struct ls_hs_set),
	/* A ring buffer has neither key nor value: sizes 0. */
	{"aborts", "ls_aborts", offsetof(struct ls_maps, aborts), BPF_MAP_TYPE_RINGBUF, 0, 0},
	{"suspects", "ls_suspects", offsetof(struct ls_maps, suspects), BPF_MAP_TYPE_RINGBUF, 0, 0},
	MAP(state, ARRAY, __u32, struct ls_state),
	MAP(class_stats, PERCPU_ARRAY, __u32, struct ls_class_stats),
	MAP(latency, PERCPU_ARRAY, __u32, struct ls_latency_hist),
	MAP(probe, PERCPU_ARRAY, __u32, struct ls_probe),
	MAP(iface_stats, PERCPU_ARRAY, __u32, struct ls_iface_stats),
	MAP(config, ARRAY, __u32, struct ls_service_meta),
	MAP(agent, ARRAY, __u32, struct ls_agent_meta),
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

/*
 * The map is the one map_table[i] names: its type, key and value size. A
 * lookup writes value_size bytes (per CPU, for a per-CPU map) and a walk
 * key_size bytes per key: a map of another shape is never read.
 */
static bool map_ok(int fd, size_t i, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return !bpf_obj_get_info_by_fd(fd, info, &len) && info->type == map_table[i].type &&
	       info->key_size == map_table[i].key_size &&
	       info->value_size == map_table[i].value_size;
}

/*
 * The version in a layout map, whatever its value size (that of another
 * build may differ): the first __u32 of entry 0 of an array; 0 if none.
 */
static uint32_t layout_version(int fd, const struct bpf_map_info *info)
{
	uint32_t version = 0;
	void *val;

	if (info->type != BPF_MAP_TYPE_ARRAY || info->key_size != sizeof(__u32) ||
	    info->value_size < sizeof(version))
		return 0;
	val = calloc(1, info->value_size);
	if (val && !lookup(fd, 0, val))
		memcpy(&version, val, sizeof(version));
	free(val);
	return version;
}

int ls_maps_open(const char *dir, struct ls_maps *m, uint32_t *found_version)
{
	struct bpf_map_info info;
	uint32_t version = 0;
	char path[256];

	maps_reset(m);
	if (found_version)
		*found_version = 0;
	for (size_t i = 0; i < NR_MAPS; i++) {
		bool ok;

		snprintf(path, sizeof(path), "%s/%s", dir, map_table[i].pin);
		*fd_of(m, i) = bpf_obj_get(path);
		if (*fd_of(m, i) < 0) {
			/* No layout map: pinned before layouts had versions; others: not ours */
			int err = errno == ENOENT ? -EPROTO : -errno;

			ls_maps_close(m);
			return err;
		}
		ok = map_ok(*fd_of(m, i), i, &info);
		if (i == 0) {
			version = layout_version(m->layout, &info);
			if (found_version)
				*found_version = version;
		}
		if (!ok || version != LS_LAYOUT_VERSION) {
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

/* A string of a map value ends inside it, whatever was written there. */
#define TERMINATE(s) ((s)[sizeof(s) - 1] = 0)

int ls_read_agent(const struct ls_maps *m, struct ls_agent_meta *a)
{
	int err = lookup(m->agent, 0, a);

	if (!err)
		TERMINATE(a->config_path);
	return err;
}

int ls_write_agent(const struct ls_maps *m, const struct ls_agent_meta *a)
{
	return update(m->agent, 0, a);
}

int ls_read_meta(const struct ls_maps *m, uint32_t svc, struct ls_service_meta *meta)
{
	int err = lookup(m->config, svc, meta);

	if (err)
		return err;
	TERMINATE(meta->name);
	TERMINATE(meta->algo);
	TERMINATE(meta->algo_params);
	for (uint32_t c = 0; c < LS_MAX_CLASSES; c++)
		TERMINATE(meta->classes[c].name);
	return 0;
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
int ls_map_sum_percpu(int fd, uint32_t key, __u64 *out, size_t nr_u64)
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
	return ls_map_sum_percpu(m->class_stats, idx, (__u64 *)out, sizeof(*out) / sizeof(__u64));
}

int ls_read_iface_stats(const struct ls_maps *m, struct ls_iface_stats *out)
{
	return ls_map_sum_percpu(m->iface_stats, 0, (__u64 *)out, sizeof(*out) / sizeof(__u64));
}

/* One histogram from per-CPU copies: min and max do not sum (least non-zero, greatest). */
static void sum_hists(const void *vals, size_t stride, int ncpu, struct ls_latency_hist *out)
{
	const size_t n = sizeof(*out) / sizeof(__u64);

	memset(out, 0, sizeof(*out));
	for (int c = 0; c < ncpu; c++) {
		const struct ls_latency_hist *h =
			(const struct ls_latency_hist *)((const char *)vals + (size_t)c * stride);
		const __u64 *v = (const __u64 *)h;
		__u64 *o = (__u64 *)out;

		for (size_t i = 0; i < n; i++)
			if (i != offsetof(struct ls_latency_hist, min_ns) / sizeof(__u64) &&
			    i != offsetof(struct ls_latency_hist, max_ns) / sizeof(__u64))
				o[i] += v[i];
		if (h->min_ns && (!out->min_ns || h->min_ns < out->min_ns))
			out->min_ns = h->min_ns;
		if (h->max_ns > out->max_ns)
			out->max_ns = h->max_ns;
	}
}

/*
 * Sums the histograms of a per-CPU map entry whose values are val_size
 * bytes with a struct ls_latency_hist at hist_off.
 */
static int read_percpu_hist(int fd, uint32_t key, size_t val_size, size_t hist_off,
			    struct ls_latency_hist *out)
{
	int ncpu = libbpf_num_possible_cpus();
	char *vals;
	int err;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, val_size);
	if (!vals)
		return -ENOMEM;
	err = lookup(fd, key, vals);
	if (!err)
		sum_hists(vals + hist_off, val_size, ncpu, out);
	free(vals);
	return err;
}

int ls_map_read_hist(int fd, uint32_t key, struct ls_latency_hist *out)
{
	return read_percpu_hist(fd, key, sizeof(struct ls_latency_hist), 0, out);
}

int ls_read_latency(const struct ls_maps *m, uint32_t idx, struct ls_latency_hist *out)
{
	return ls_map_read_hist(m->latency, idx, out);
}

int ls_probe_set(const struct ls_maps *m, uint32_t svc, uint64_t epoch_ns)
{
	int ncpu = libbpf_num_possible_cpus();
	struct ls_probe *vals;
	int err;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (int c = 0; c < ncpu; c++)
		vals[c].epoch_ns = epoch_ns;
	err = update(m->probe, svc, vals);
	free(vals);
	return err;
}

int ls_read_probe(const struct ls_maps *m, uint32_t svc, struct ls_latency_hist *out)
{
	return read_percpu_hist(m->probe, svc, sizeof(struct ls_probe),
				offsetof(struct ls_probe, hist), out);
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
