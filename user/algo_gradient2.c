// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * gradient2: Netflix Gradient2Limit. It compares the current
 * RTT with a long-term average of RTTs (an exponential average over
 * long_window samples, the first 10 a plain mean):
 *
 *   gradient = clamp(rtt_tolerance * long / rtt, 0.5, 1)
 *   estimate = (1 - smoothing) * estimate + smoothing * (estimate * gradient + queue_size)
 *
 * Without queueing the estimate grows by smoothing * queue_size per update;
 * with it, it shrinks by at most ~10 % per update. When the long average is
 * more than twice the current RTT (latency recovered after a long overload)
 * the stored average is cut by 5 % each update so it catches up sooner.
 *
 * As upstream, did_drop is ignored: drops act only through their RTT. A
 * sample with rtt 0 carries no information and is ignored (upstream would
 * divide by zero).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include "algo.h"
#include "loadshed.h"

/* Upstream's fixed warm-up of the long RTT average, in samples. */
#define GRADIENT2_WARMUP_SAMPLES 10
/* Cut applied to the long RTT while it exceeds twice the current RTT. */
#define GRADIENT2_LONG_RTT_DECAY 0.95

struct gradient2_state {
	uint32_t initial_limit;
	uint32_t min_limit;
	uint32_t max_limit;
	double smoothing;
	uint32_t queue_size;
	uint32_t long_window;
	double rtt_tolerance;

	double estimate;
	struct ls_expavg long_rtt_ns;
};

static const struct ls_algo_param gradient2_params[] = {
	{"initial_limit", NULL, LS_PARAM_UINT, offsetof(struct gradient2_state, initial_limit),
	 "20", 1, LS_MAX_LIMIT, 0, "limit before the first sample"},
	{"min_limit", NULL, LS_PARAM_UINT, offsetof(struct gradient2_state, min_limit), "20", 1,
	 LS_MAX_LIMIT, 0, "the limit never goes below this"},
	{"max_limit", "max_concurrency", LS_PARAM_UINT, offsetof(struct gradient2_state, max_limit),
	 "200", 1, LS_MAX_LIMIT, 0, "the limit never goes above this"},
	{"smoothing", NULL, LS_PARAM_REAL, offsetof(struct gradient2_state, smoothing), "0.2", 0, 1,
	 LS_PARAM_MIN_OPEN, "weight of a new limit against the old one"},
	{"queue_size", NULL, LS_PARAM_UINT, offsetof(struct gradient2_state, queue_size), "4", 1,
	 1e6, 0, "headroom added to the limit each update"},
	{"long_window", NULL, LS_PARAM_UINT, offsetof(struct gradient2_state, long_window), "600",
	 1, 1e9, 0, "samples in the long-term RTT average"},
	{"rtt_tolerance", NULL, LS_PARAM_REAL, offsetof(struct gradient2_state, rtt_tolerance),
	 "1.5", 1, 1e6, 0, "RTT growth over the long average tolerated before shrinking"},
	{0},
};

static uint32_t gradient2_start(void *st)
{
	struct gradient2_state *g = st;

	g->estimate = g->initial_limit;
	ls_expavg_init(&g->long_rtt_ns, g->long_window, GRADIENT2_WARMUP_SAMPLES);
	return g->initial_limit;
}

static bool gradient2_is_app_limited(const struct gradient2_state *g, uint32_t inflight)
{
	return inflight < g->estimate / 2;
}

static double gradient2_gradient(const struct gradient2_state *g, double long_ns, double short_ns)
{
	double gradient = g->rtt_tolerance * long_ns / short_ns;

	if (gradient > 1.0)
		return 1.0;
	return gradient < 0.5 ? 0.5 : gradient;
}

static uint32_t gradient2_update(void *st, const struct ls_algo_sample *s)
{
	struct gradient2_state *g = st;
	double short_ns = (double)s->rtt_ns;
	double long_ns, target;

	if (!s->rtt_ns)
		return (uint32_t)g->estimate;

	long_ns = ls_expavg_add(&g->long_rtt_ns, short_ns);
	/* Decays the stored average only; this update still uses long_ns. */
	if (long_ns / short_ns > 2)
		g->long_rtt_ns.value *= GRADIENT2_LONG_RTT_DECAY;

	if (gradient2_is_app_limited(g, s->inflight))
		return (uint32_t)g->estimate;

	target = g->estimate * gradient2_gradient(g, long_ns, short_ns) + g->queue_size;
	target = g->estimate * (1 - g->smoothing) + target * g->smoothing;
	if (target > g->max_limit)
		target = g->max_limit;
	if (target < g->min_limit)
		target = g->min_limit;
	g->estimate = target;
	return (uint32_t)g->estimate;
}

static double gradient2_estimate(const void *st)
{
	return ((const struct gradient2_state *)st)->estimate;
}

static double gradient2_baseline_rtt_ns(const void *st)
{
	return ((const struct gradient2_state *)st)->long_rtt_ns.value;
}

/* A new long_window applies to the running average from now on. */
static uint32_t gradient2_retune(void *st, uint32_t limit)
{
	struct gradient2_state *g = st;

	g->long_rtt_ns.window = g->long_window;
	return limit;
}

const struct ls_algo_ops ls_algo_gradient2_ops = {
	.name = "gradient2",
	.summary = "RTT gradient against a long-term average (Netflix Gradient2Limit)",
	.state_size = sizeof(struct gradient2_state),
	.params = gradient2_params,
	.start = gradient2_start,
	.update = gradient2_update,
	.estimate = gradient2_estimate,
	.baseline_rtt_ns = gradient2_baseline_rtt_ns,
	.retune = gradient2_retune,
};
