/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's part of the breaker: each round, every upstream's new
 * outcomes go to its state machine (breaker.c), and a transition is
 * written to brk_ctl for the dataplane to enforce (doc/design.md §15.4).
 */
#ifndef LS_BREAKER_AGENT_H
#define LS_BREAKER_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "breaker.h"

struct ls_brk_agent {
	struct ls_brk brk[LS_MAX_UPSTREAMS];
	struct ls_upstream_meta conf[LS_MAX_UPSTREAMS]; /* what brk[i] was made from */
	struct ls_brk_stats prev[LS_MAX_UPSTREAMS];
	uint32_t gen[LS_MAX_UPSTREAMS]; /* brk_ctl's gen as this agent last read or wrote it */
	bool live[LS_MAX_UPSTREAMS];
};

/* One round at now_ns (CLOCK_MONOTONIC, the dataplane's clock); 0 or -errno. */
int ls_brk_agent_round(struct ls_brk_agent *a, const char *dir, uint64_t now_ns);
void ls_brk_agent_free(struct ls_brk_agent *a);

#endif /* LS_BREAKER_AGENT_H */
