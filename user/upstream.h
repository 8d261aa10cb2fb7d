/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * [upstream NAME] sections of the config: the destinations a caller's
 * circuit breaker guards, the caller's cgroup, and resilience4j's
 * CircuitBreaker settings (doc/design.md §15, loadshed.conf(5)). config.c
 * hands these sections here and calls ls_upstreams_validate() with the
 * rest of its checks.
 */
#ifndef LS_UPSTREAM_H
#define LS_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "breaker.h"

#define LS_UPSTREAM_KEYS   12
#define LS_CGROUP_PATH_LEN 128

struct ls_upstream_dest {
	struct ls_prefix pfx;
	uint16_t port_lo, port_hi;
};

struct ls_upstream_conf {
	char name[32];
	struct ls_upstream_dest dest[LS_MAX_UPSTREAM_DESTS];
	uint32_t nr_dest;
	char cgroup[LS_CGROUP_PATH_LEN]; /* relative to the cgroup2 mount; "" its root */
	struct ls_brk_conf brk;
	uint32_t keys_seen;
	int key_line[LS_UPSTREAM_KEYS];
	int line;
};

struct ls_upstreams {
	struct ls_upstream_conf up[LS_MAX_UPSTREAMS];
	uint32_t nr;
};

/*
 * Sets key of [upstream name] (made at its first key). 0, or -EINVAL with
 * "[upstream NAME] key: what" in err (the caller adds file and line). A
 * failed key makes no upstream.
 */
int ls_upstream_set(struct ls_upstreams *u, const char *name, const char *key, const char *value,
		    int line, char *err, size_t errlen);

/* Checks every upstream and all of them together; 0 or -EINVAL, err with the line. */
int ls_upstreams_validate(const struct ls_upstreams *u, int *line, char *err, size_t errlen);

#endif /* LS_UPSTREAM_H */
