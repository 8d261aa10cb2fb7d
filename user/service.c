// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>

#include "algo.h"
#include "service.h"

int ls_service_find(const struct ls_maps *m, const char *name, struct ls_service_meta *meta)
{
	int found = -ENOENT;

	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		struct ls_service_meta cur;

		if (ls_read_meta(m, s, &cur) || !cur.in_use)
			continue;
		if (name && strcmp(cur.name, name))
			continue;
		if (found >= 0)
			return -ENOTUNIQ;
		found = (int)s;
		*meta = cur;
	}
	return found;
}

int ls_service_class(const struct ls_service_meta *meta, const char *name)
{
	for (uint32_t c = 0; c < LS_MAX_CLASSES && c < meta->nr_classes; c++)
		if (!strcmp(meta->classes[c].name, name))
			return (int)c;
	return -ENOENT;
}

/* ceil(limit * share) in integers: exact for every ppm, no float rounding. */
static uint32_t guarantee_of(uint32_t limit, uint32_t share_ppm)
{
	uint64_t g;

	if (!share_ppm)
		return 0;
	g = ((uint64_t)limit * share_ppm + LS_PPM - 1) / LS_PPM;
	return g ? (uint32_t)g : 1;
}

/*
 * The share's guarantee g, or the cover of a class's bursts when its demand
 * fits the share (service.h).
 */
static uint32_t cover_of(uint32_t g, uint32_t limit, uint32_t share_ppm,
			 const struct ls_class_load *load)
{
	double share = (double)limit * share_ppm / LS_PPM, cover, cap;

	if (!share_ppm || !(load->demand > 0) || load->demand > share || !(load->bursts >= 0))
		return g;
	cover = floor(load->bursts);
	cap = ceil(share + LS_COVER_SIGMAS * sqrt(share));
	if (cover > cap)
		cover = cap;
	if (cover <= g)
		return g;
	return cover >= (double)INT32_MAX ? INT32_MAX : (uint32_t)cover;
}

/* The dataplane compares the s32 in-flight counts with L and guarantees as s32. */
static uint32_t s32_range(uint32_t v)
{
	return v > INT32_MAX ? INT32_MAX : v;
}

void ls_service_limits(uint32_t limit, const struct ls_service_meta *meta,
		       const struct ls_class_load *load, struct ls_limits *out)
{
	uint32_t n = meta->nr_classes < LS_MAX_CLASSES ? meta->nr_classes : LS_MAX_CLASSES;

	memset(out, 0, sizeof(*out));
	out->limit = s32_range(limit);
	for (uint32_t c = 0; c < n; c++) {
		const struct ls_class_meta *cm = &meta->classes[c];
		uint32_t g = guarantee_of(limit, cm->share_ppm);

		if (cm->pinned_guarantee)
			g = cm->pinned_guarantee;
		else if (load)
			g = cover_of(g, limit, cm->share_ppm, &load[c]);
		out->guarantee[c] = s32_range(g);
	}
}

int ls_service_write_limits(const struct ls_maps *m, uint32_t svc, uint32_t limit,
			    const struct ls_service_meta *meta, const struct ls_class_load *load)
{
	struct ls_limits l;

	ls_service_limits(limit, meta, load, &l);
	return bpf_map_update_elem(m->limits, &svc, &l, BPF_ANY) ? -errno : 0;
}

int ls_service_update(const struct ls_maps *m, uint32_t svc, const struct ls_service_meta *meta)
{
	struct ls_limits lim = {};
	int err;

	if (bpf_map_update_elem(m->config, &svc, meta, BPF_ANY))
		return -errno;
	err = ls_read_limits(m, svc, &lim);
	if (err)
		return err;
	return ls_service_write_limits(m, svc, meta->pinned_limit ? meta->pinned_limit : lim.limit,
				       meta, NULL);
}

int ls_service_set_shadow(const struct ls_maps *m, uint32_t svc, bool on)
{
	/*
	 * Both generations alike. A later reload rewrites the flag from its
	 * file, as it does every runtime override (limit set, limit algo).
	 */
	for (uint32_t g = 0; g < LS_NR_GENS; g++) {
		struct ls_service_policy pol;
		__u32 key = ls_policy_key(g, svc);

		if (bpf_map_lookup_elem(m->policy, &key, &pol))
			return -errno;
		pol.flags = on ? pol.flags | LS_SVC_SHADOW : pol.flags & ~LS_SVC_SHADOW;
		if (bpf_map_update_elem(m->policy, &key, &pol, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* Appends k=v to params unless the user's params set k already, by any of its names. */
static void add_default_param(char *params, size_t len, const char *algo, const char *k, uint32_t v)
{
	char kv[64];
	size_t n = strlen(params);

	if (!v || !ls_algo_has_param(algo, k) || ls_params_set_param(algo, params, k))
		return;
	snprintf(kv, sizeof(kv), "%s%s=%u", n ? "," : "", k, v);
	if (n + strlen(kv) < len)
		strcat(params, kv);
}

int ls_service_algo(const struct ls_service_meta *meta, uint32_t current, struct ls_algo **out,
		    char *err, size_t errlen)
{
	char params[LS_ALGO_PARAMS_LEN * 2];

	snprintf(params, sizeof(params), "%s", meta->algo_params);
	add_default_param(params, sizeof(params), meta->algo, "initial_limit", meta->initial_limit);
	add_default_param(params, sizeof(params), meta->algo, "min_limit", meta->min_limit);
	add_default_param(params, sizeof(params), meta->algo, "max_limit", meta->max_limit);
	return ls_algo_create_at(meta->algo, params, current, out, err, errlen);
}

uint32_t ls_service_initial_limit(const struct ls_service_meta *meta)
{
	struct ls_algo *a;
	uint32_t limit = 20;
	char err[256];

	if (meta->pinned_limit)
		return meta->pinned_limit;
	if (!ls_service_algo(meta, 0, &a, err, sizeof(err))) {
		limit = ls_algo_limit(a);
		ls_algo_destroy(&a);
	}
	return limit;
}
