/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The breaker's dataplane (bpf/breaker.bpf.c): loaded with an attachment
 * that has upstreams, its maps and cgroup links pinned in the attachment's
 * directory as brk_*, and the reads the agent and the CLI make of them.
 */
#ifndef LS_BREAKER_MAPS_H
#define LS_BREAKER_MAPS_H

#include <stddef.h>
#include <stdint.h>

#include "loadshed.h"
#include "loadshed_breaker.h"

struct ls_config;

struct ls_brk_maps {
	int ctl, stats, latency, meta;
};

/*
 * Loads the breaker for cfg's upstreams (nothing without any), fills its
 * maps and attaches it to each upstream's cgroup with pinned bpf_links. On
 * failure nothing of it is left, and err says what failed.
 */
int ls_breaker_attach(const char *dir, const struct ls_config *cfg, char *err, size_t errlen);
/* Detaches and unpins the breaker of the attachment in dir; idempotent. */
void ls_breaker_detach(const char *dir);
/*
 * A reload: the breaker made again for cfg; an upstream whose name it had
 * keeps its state, mode, transitions, permits and counters (and the agent
 * its window, when its settings are the same).
 */
int ls_breaker_apply(const char *dir, const struct ls_config *cfg, char *err, size_t errlen);
/* Whether cfg's upstreams can be attached: their cgroups exist. Changes nothing. */
int ls_breaker_check(const struct ls_config *cfg, char *err, size_t errlen);

/* Opens the pinned maps: 0, -ENOENT without a breaker, or another -errno. */
int ls_brk_maps_open(const char *dir, struct ls_brk_maps *m);
void ls_brk_maps_close(struct ls_brk_maps *m);
int ls_brk_read_stats(const struct ls_brk_maps *m, uint32_t up, struct ls_brk_stats *out);
int ls_brk_read_latency(const struct ls_brk_maps *m, uint32_t up, struct ls_latency_hist *out);
/* The upstream named name: its index, -ENOENT. */
int ls_brk_find(const struct ls_brk_maps *m, const char *name, struct ls_upstream_meta *meta);

/* The upstreams as JSON (status, breaker status); NULL without a breaker. */
#include <json-c/json.h>
json_object *ls_breaker_json(const char *dir, uint64_t now_ns);
/* Their table in status's text form. */
void ls_breaker_print_text(json_object *arr);

/* The cgroup2 mount point, from /proc/self/mountinfo. */
int ls_cgroup2_mount(char *buf, size_t len);

#endif /* LS_BREAKER_MAPS_H */
