// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Writing a compiled policy into the maps. A generation the dataplane does
 * not read is filled first (ports, service addresses, source prefixes and
 * the per-service policy), and the limits and records of its services;
 * then one write of state.active_gen switches every packet to it at once.
 * Retired services and the agent settings follow.
 * Callers hold the pin directory's lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "config.h"
#include "log.h"
#include "maps.h"
#include "pins.h"
#include "policy.h"
#include "breaker_maps.h"
#include "policy_maps.h"
#include "service.h"

#define NR_PORTS 65536

/* Clears gen in every port, sets the image's ports; writes only what changed. */
static int write_ports(const struct ls_maps *m, const struct ls_policy_image *img)
{
	struct ls_port *live = calloc(NR_PORTS, sizeof(*live));
	struct ls_port *want = calloc(NR_PORTS, sizeof(*want));
	int err = 0;

	if (!live || !want) {
		err = -ENOMEM;
		goto out;
	}
	for (__u32 p = 0; p < NR_PORTS; p++) {
		if (bpf_map_lookup_elem(m->ports, &p, &live[p])) {
			err = -errno;
			goto out;
		}
		want[p] = live[p];
		want[p].any_svc[img->gen] = 0;
		want[p].by_addr[img->gen] = 0;
	}
	for (__u32 i = 0; i < img->nr_ports; i++)
		ls_port_set_gen(&want[img->ports[i].port], &img->ports[i].val, img->gen);
	for (__u32 p = 0; p < NR_PORTS && !err; p++)
		if (memcmp(&live[p], &want[p], sizeof(want[p])) &&
		    bpf_map_update_elem(m->ports, &p, &want[p], BPF_ANY))
			err = -errno;
out:
	free(live);
	free(want);
	return err;
}

/* Deletes every key of a hash or trie whose generation is gen. */
static int delete_gen(int fd, size_t key_size, bool (*of_gen)(const void *key, __u32 gen),
		      __u32 gen)
{
	char key[64], next[64];
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		if (of_gen(key, gen)) {
			if (bpf_map_delete_elem(fd, key))
				return -errno;
			prev = NULL; /* restart: the walk's cursor is gone */
			continue;
		}
		prev = key;
	}
	return 0;
}

static bool svc_addr_of_gen(const void *key, __u32 gen)
{
	return ((const struct ls_svc_addr_key *)key)->gen == gen;
}

static bool prefix_of_gen(const void *key, __u32 gen)
{
	return ((const struct ls_prefix_key *)key)->gen == gen;
}

int ls_policy_write_gen(const struct ls_maps *m, const struct ls_policy_image *img)
{
	int err;

	err = write_ports(m, img);
	if (!err)
		err = delete_gen(m->svc_addrs, sizeof(struct ls_svc_addr_key), svc_addr_of_gen,
				 img->gen);
	for (__u32 i = 0; !err && i < img->nr_svc_addrs; i++)
		if (bpf_map_update_elem(m->svc_addrs, &img->svc_addrs[i].key,
					&img->svc_addrs[i].svc, BPF_ANY))
			err = -errno;
	if (!err)
		err = delete_gen(m->src_prefixes, sizeof(struct ls_prefix_key), prefix_of_gen,
				 img->gen);
	for (__u32 i = 0; !err && i < img->nr_prefixes; i++)
		if (bpf_map_update_elem(m->src_prefixes, &img->prefixes[i].key,
					&img->prefixes[i].rule_mask, BPF_ANY))
			err = -errno;
	for (__u32 s = 0; !err && s < LS_MAX_SERVICES; s++) {
		__u32 key = ls_policy_key(img->gen, s);

		if (bpf_map_update_elem(m->policy, &key, &img->svc[s], BPF_ANY))
			err = -errno;
	}
	return err;
}

int ls_policy_activate(const struct ls_maps *m, const struct ls_policy_image *img, bool keep_limits)
{
	struct ls_agent_meta am = {};
	struct ls_state st = {};
	int err;

	/*
	 * Limits and records of the services the new generation has go in
	 * first: the switch must never show a service a limit of 0. A service
	 * that keeps its name (and so its slot) keeps its L.
	 */
	for (__u32 s = 0; s < LS_MAX_SERVICES; s++) {
		const struct ls_service_meta *meta = &img->meta[s];
		struct ls_service_meta old = {};
		struct ls_limits lim = {};
		uint32_t limit;

		if (!meta->in_use)
			continue;
		ls_read_meta(m, s, &old);
		ls_read_limits(m, s, &lim);
		limit = keep_limits && old.in_use && !strcmp(old.name, meta->name) && lim.limit &&
					!meta->pinned_limit
				? lim.limit
				: ls_service_initial_limit(meta);
		err = ls_service_write_limits(m, s, limit, meta, NULL);
		if (!err && bpf_map_update_elem(m->config, &s, meta, BPF_ANY))
			err = -errno;
		if (err)
			return err;
	}
	err = ls_read_state(m, &st);
	if (err)
		return err;
	st.active_gen = img->gen;
	err = ls_write_state(m, &st);
	if (err)
		return err;
	/*
	 * Services the new generation no longer has: retired after the switch.
	 * The record keeps its names, so the slot is not handed to a new name.
	 */
	for (__u32 s = 0; s < LS_MAX_SERVICES; s++) {
		struct ls_service_meta retired = {};
		struct ls_limits zero = {};

		if (img->meta[s].in_use)
			continue;
		ls_read_meta(m, s, &retired);
		retired.in_use = 0;
		if (bpf_map_update_elem(m->config, &s, &retired, BPF_ANY) ||
		    bpf_map_update_elem(m->limits, &s, &zero, BPF_ANY))
			return -errno;
	}
	ls_read_agent(m, &am);
	am.interval_ns = img->agent.interval_ns;
	am.idle_timeout_ns = img->agent.idle_timeout_ns;
	am.stall_timeout_ns = img->agent.stall_timeout_ns;
	am.failopen_after_ns = img->agent.failopen_after_ns;
	am.log_change_ppm = img->agent.log_change_ppm;
	am.metrics = img->agent.metrics;
	am.config_unwatched = img->agent.config_unwatched;
	return ls_write_agent(m, &am);
}

/* The service records in use now, so a reload keeps slots by name. */
static void read_all_meta(const struct ls_maps *m, struct ls_service_meta *prev)
{
	for (__u32 s = 0; s < LS_MAX_SERVICES; s++)
		if (ls_read_meta(m, s, &prev[s]))
			memset(&prev[s], 0, sizeof(prev[s]));
}

int ls_policy_apply_locked(const struct ls_maps *m, const char *ifname, const struct ls_config *cfg,
			   char *err, size_t errlen)
{
	struct ls_service_meta prev[LS_MAX_SERVICES];
	struct ls_policy_image *img = NULL;
	struct ls_state st = {};
	int rc;

	/* A reload that fails changes nothing: the breaker's cgroups are checked first. */
	rc = ls_breaker_check(cfg, err, errlen);
	if (rc)
		return rc;
	rc = ls_read_state(m, &st);
	if (!rc) {
		read_all_meta(m, prev);
		rc = ls_policy_compile_onto(cfg, !(st.active_gen & 1), prev, &img, err, errlen);
		if (rc)
			return rc;
		rc = ls_policy_write_gen(m, img);
	}
	if (!rc)
		rc = ls_policy_activate(m, img, true);
	if (rc)
		snprintf(err, errlen, "%s: writing the policy: %s", ifname, strerror(-rc));
	ls_policy_image_free(&img);
	return rc;
}

int ls_policy_apply(const char *ifname, const struct ls_config *cfg, char *err, size_t errlen)
{
	struct ls_attachment a;
	int rc;

	rc = ls_attachment_open(ifname, &a, err, errlen);
	if (rc)
		return rc;
	rc = ls_policy_apply_locked(&a.maps, ifname, cfg, err, errlen);
	if (!rc) {
		char why[512];

		rc = ls_breaker_apply(a.dir, cfg, why, sizeof(why));
		if (rc)
			snprintf(err, errlen,
				 "%s: the policy is in force, but its breaker could not be made "
				 "(every "
				 "upstream call passes): %s",
				 ifname, why);
	}
	ls_attachment_close(&a);
	return rc;
}

int ls_policy_reload_saved(const char *ifname)
{
	struct ls_agent_meta am = {};
	struct ls_attachment a;
	struct ls_config *cfg = NULL;
	char err[768];
	int rc;

	rc = ls_attachment_open(ifname, &a, err, sizeof(err));
	if (rc) {
		pr_err("%s", err);
		return rc;
	}
	rc = ls_read_agent(&a.maps, &am);
	ls_attachment_close(&a);
	if (rc) {
		pr_err("%s: reading the agent settings: %s", ifname, strerror(-rc));
		return rc;
	}
	if (!am.config_path[0]) {
		pr_warn("%s: attached from options, no config file to reload", ifname);
		return 0;
	}
	rc = ls_config_load_file(am.config_path, &cfg, err, sizeof(err));
	if (!rc)
		rc = ls_policy_apply(ifname, cfg, err, sizeof(err));
	ls_config_free(&cfg);
	if (rc)
		pr_err("%s", err);
	else
		pr_info("%s: reloaded %s", ifname, am.config_path);
	return rc;
}
