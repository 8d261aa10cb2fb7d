// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>

#include "breaker_agent.h"
#include "breaker_maps.h"
#include "log.h"

void ls_brk_agent_free(struct ls_brk_agent *a)
{
	for (int i = 0; i < LS_MAX_UPSTREAMS; i++) {
		if (a->live[i])
			ls_brk_free(&a->brk[i]);
		a->live[i] = false;
	}
}

/* Whether meta's name and settings are those brk was made from. */
static bool same_upstream(const struct ls_upstream_meta *a, const struct ls_upstream_meta *b)
{
	return !strcmp(a->name, b->name) && a->window_time_based == b->window_time_based &&
	       a->window_size == b->window_size && a->minimum_calls == b->minimum_calls &&
	       a->failure_rate_ppm == b->failure_rate_ppm && a->slow_rate_ppm == b->slow_rate_ppm &&
	       a->half_open_permits == b->half_open_permits && a->slow_ns == b->slow_ns &&
	       a->open_wait_ns == b->open_wait_ns &&
	       a->half_open_max_wait_ns == b->half_open_max_wait_ns;
}

/* A state machine for meta, resuming from the pinned state (an agent restarted). */
static int start(struct ls_brk_agent *a, uint32_t i, const struct ls_upstream_meta *meta,
		 const struct ls_brk_ctl *ctl, const struct ls_brk_stats *cur, uint64_t now)
{
	struct ls_brk_conf c = {
		.time_based = meta->window_time_based,
		.window_size = meta->window_size,
		.minimum_calls = meta->minimum_calls,
		.failure_rate_ppm = meta->failure_rate_ppm,
		.slow_rate_ppm = meta->slow_rate_ppm,
		.slow_ns = meta->slow_ns,
		.open_wait_ns = meta->open_wait_ns,
		.half_open_permits = meta->half_open_permits,
		.half_open_max_wait_ns = meta->half_open_max_wait_ns,
	};
	struct ls_brk *b = &a->brk[i];
	char err[128];
	int rc;

	if (a->live[i])
		ls_brk_free(b);
	a->live[i] = false;
	rc = ls_brk_init(b, &c, now, err, sizeof(err));
	if (rc) {
		pr_warn("upstream %s: %s", meta->name, err);
		return rc;
	}
	b->state = ctl->state <= LS_BRK_HALF_OPEN ? ctl->state : LS_BRK_CLOSED;
	b->since_ns =
		meta->state_since_ns && meta->state_since_ns <= now ? meta->state_since_ns : now;
	b->to_open = meta->to_open;
	b->to_half_open = meta->to_half_open;
	b->to_closed = meta->to_closed;
	a->conf[i] = *meta;
	a->prev[i] = *cur; /* outcomes before this agent are history */
	a->live[i] = true;
	return 0;
}

static int upstream_round(struct ls_brk_agent *a, const struct ls_brk_maps *m, uint32_t i,
			  uint64_t now)
{
	struct ls_upstream_meta meta;
	struct ls_brk_stats cur;
	struct ls_brk_ctl ctl;
	struct ls_brk *b = &a->brk[i];
	uint32_t before;
	bool fresh = false;
	int rc;

	if (bpf_map_lookup_elem(m->meta, &i, &meta) || bpf_map_lookup_elem(m->ctl, &i, &ctl))
		return -errno;
	if (!meta.active) {
		if (a->live[i])
			ls_brk_free(b);
		a->live[i] = false;
		return 0;
	}
	rc = ls_brk_read_stats(m, i, &cur);
	if (rc)
		return rc;
	if (!a->live[i] || !same_upstream(&a->conf[i], &meta)) {
		rc = start(a, i, &meta, &ctl, &cur, now);
		if (rc)
			return rc;
		/*
		 * Resumed half open: the trials of the phase it was in are lost
		 * (they lived in the memory of the agent before, or ended while
		 * none ran), so that phase could never end. A fresh one: all
		 * permits, a new gen (permits held from before do not come back
		 * into it), no trials.
		 */
		fresh = b->state == LS_BRK_HALF_OPEN;
	} else if (ctl.gen != a->gen[i] && ctl.state == LS_BRK_HALF_OPEN &&
		   b->state == LS_BRK_HALF_OPEN) {
		/* A reload started a fresh half-open phase (breaker_restore): no trials yet. */
		b->trials = (struct ls_brk_counts){0};
	}
	a->gen[i] = ctl.gen;
	/* Counters that went back (maps made anew) are history, not 2^64 outcomes. */
	if (cur.calls < a->prev[i].calls || cur.failures < a->prev[i].failures ||
	    cur.slow < a->prev[i].slow)
		a->prev[i] = cur;
	before = b->state;
	/* The operator wrote another state (loadshed breaker open/close): adopt it. */
	if (ctl.state != b->state && ctl.state <= LS_BRK_HALF_OPEN)
		ls_brk_transition(b, ctl.state, now);
	if (meta.mode == LS_BRK_FORCED_OPEN && b->state != LS_BRK_OPEN)
		ls_brk_transition(b, LS_BRK_OPEN, now);
	else if (meta.mode == LS_BRK_FORCED_CLOSED && b->state != LS_BRK_CLOSED)
		ls_brk_transition(b, LS_BRK_CLOSED, now);
	if (meta.mode == LS_BRK_AUTO) {
		ls_brk_record(b, now, cur.calls - a->prev[i].calls,
			      cur.failures - a->prev[i].failures, cur.slow - a->prev[i].slow);
		ls_brk_tick(b, now);
	}
	a->prev[i] = cur;
	if (!fresh && b->state == ctl.state && b->state == before && meta.to_open == b->to_open &&
	    meta.to_half_open == b->to_half_open && meta.to_closed == b->to_closed)
		return 0;
	if (fresh || b->state != ctl.state || b->state != before) {
		ctl.state = b->state;
		ctl.permits = b->state == LS_BRK_HALF_OPEN ? (int32_t)meta.half_open_permits : 0;
		ctl.gen++; /* permits held from before are no longer this state's */
		if (bpf_map_update_elem(m->ctl, &i, &ctl, BPF_ANY))
			return -errno;
		a->gen[i] = ctl.gen;
		pr_info("upstream %s: %s%s", meta.name, ls_brk_state_name(b->state),
			fresh && b->state == LS_BRK_HALF_OPEN ? " (a fresh half-open phase)" : "");
	}
	meta.to_open = b->to_open;
	meta.to_half_open = b->to_half_open;
	meta.to_closed = b->to_closed;
	meta.state_since_ns = b->since_ns;
	if (bpf_map_update_elem(m->meta, &i, &meta, BPF_ANY))
		return -errno;
	a->conf[i] = meta;
	return 0;
}

/*
 * A reload may give an upstream another index: its state machine (and its
 * window) follows its name and settings there; one no upstream has any more
 * is freed.
 */
static void follow_reindexing(struct ls_brk_agent *a, const struct ls_brk_maps *m)
{
	struct ls_brk_agent next = {0};
	bool taken[LS_MAX_UPSTREAMS] = {0};

	for (uint32_t i = 0; i < LS_MAX_UPSTREAMS; i++) {
		struct ls_upstream_meta meta;

		if (bpf_map_lookup_elem(m->meta, &i, &meta) || !meta.active)
			continue;
		for (uint32_t j = 0; j < LS_MAX_UPSTREAMS; j++) {
			if (!a->live[j] || taken[j] || !same_upstream(&a->conf[j], &meta))
				continue;
			next.brk[i] = a->brk[j];
			next.conf[i] = a->conf[j];
			next.prev[i] = a->prev[j];
			next.gen[i] = a->gen[j];
			next.live[i] = true;
			taken[j] = true;
			break;
		}
	}
	for (uint32_t j = 0; j < LS_MAX_UPSTREAMS; j++)
		if (a->live[j] && !taken[j])
			ls_brk_free(&a->brk[j]);
	*a = next;
}

int ls_brk_agent_round(struct ls_brk_agent *a, const char *dir, uint64_t now_ns)
{
	struct ls_brk_maps m;
	int rc, first = 0;

	/*
	 * No breaker: detached, or between a reload's unpinning and pinning;
	 * the state machines wait for the pins (a reload keeps them by name).
	 */
	rc = ls_brk_maps_open(dir, &m);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	follow_reindexing(a, &m);
	for (uint32_t i = 0; i < LS_MAX_UPSTREAMS; i++) {
		rc = upstream_round(a, &m, i, now_ns);
		if (rc && !first)
			first = rc;
	}
	ls_brk_maps_close(&m);
	return first;
}
