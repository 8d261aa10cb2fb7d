// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * aimd: Netflix AIMDLimit. A drop, or an RTT above the timeout, multiplies
 * the limit by backoff_ratio (truncating, as Java's int cast does); a
 * sample taken while at least half the limit was in use adds one. Samples
 * of an application that does not use its limit change nothing, so the
 * limit cannot drift up while idle.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include "algo.h"
#include "loadshed.h"

struct aimd_state {
	uint32_t initial_limit;
	uint32_t min_limit;
	uint32_t max_limit;
	double backoff_ratio;
	uint64_t timeout_ns;
	uint32_t limit;
};

static const struct ls_algo_param aimd_params[] = {
	{"initial_limit", NULL, LS_PARAM_UINT, offsetof(struct aimd_state, initial_limit), "20", 1,
	 LS_MAX_LIMIT, 0, "limit before the first sample"},
	{"min_limit", NULL, LS_PARAM_UINT, offsetof(struct aimd_state, min_limit), "20", 1,
	 LS_MAX_LIMIT, 0, "the limit never goes below this"},
	{"max_limit", NULL, LS_PARAM_UINT, offsetof(struct aimd_state, max_limit), "200", 1,
	 LS_MAX_LIMIT, 0, "the limit never goes above this"},
	{"backoff_ratio", NULL, LS_PARAM_REAL, offsetof(struct aimd_state, backoff_ratio), "0.9",
	 0.5, 1.0, LS_PARAM_MAX_OPEN, "factor applied on a drop or timeout"},
	{"timeout", NULL, LS_PARAM_DURATION, offsetof(struct aimd_state, timeout_ns), "5s", 1e6,
	 3600e9, 0, "an RTT above this counts as a drop"},
	{0},
};

static uint32_t aimd_start(void *st)
{
	struct aimd_state *a = st;

	/* As upstream: the initial limit stands, unclamped, until the first sample. */
	a->limit = a->initial_limit;
	return a->limit;
}

static bool aimd_is_congested(const struct aimd_state *a, const struct ls_algo_sample *s)
{
	return s->did_drop || s->rtt_ns > a->timeout_ns;
}

static uint32_t aimd_update(void *st, const struct ls_algo_sample *s)
{
	struct aimd_state *a = st;
	uint64_t limit = a->limit;

	if (aimd_is_congested(a, s))
		limit = (uint64_t)(limit * a->backoff_ratio);
	else if ((uint64_t)s->inflight * 2 >= limit)
		limit++;
	if (limit < a->min_limit)
		limit = a->min_limit;
	if (limit > a->max_limit)
		limit = a->max_limit;
	a->limit = (uint32_t)limit;
	return a->limit;
}

const struct ls_algo_ops ls_algo_aimd_ops = {
	.name = "aimd",
	.summary = "additive increase, multiplicative decrease on drops (Netflix AIMDLimit)",
	.state_size = sizeof(struct aimd_state),
	.params = aimd_params,
	.start = aimd_start,
	.update = aimd_update,
};
