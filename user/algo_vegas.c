// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * vegas: Netflix VegasLimit, TCP Vegas applied to concurrency. It keeps the
 * lowest RTT seen (rtt_noload) and estimates the queue as
 * ceil(estimate * (1 - rtt_noload / rtt)): a short queue grows the limit,
 * a long one shrinks it. All steps scale with LOG10(L) = max(1, floor(log10 L)).
 *
 * Probing: upstream re-learns rtt_noload after probe_multiplier * L * jitter
 * samples, with jitter drawn from ThreadLocalRandom in [0.5, 1). Here the
 * jitter comes from a splitmix64 generator seeded by the `probe_seed`
 * parameter, so the same samples always produce the same limits (replay is
 * deterministic) while two instances with different seeds still probe at
 * different times. Everything else follows upstream to the letter: the first
 * sample and any new minimum only set rtt_noload; min_limit (default 1)
 * replaces upstream's fixed floor of 1; `alpha`/`beta` > 0 replace the
 * LOG10-based functions with constants, as upstream's builder allows.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "algo.h"
#include "loadshed.h"

struct vegas_state {
	uint32_t initial_limit;
	uint32_t min_limit;
	uint32_t max_limit;
	double smoothing;
	uint32_t probe_multiplier;
	uint32_t probe_seed;
	uint32_t alpha; /* 0: 3 * LOG10(L) */
	uint32_t beta;	/* 0: 6 * LOG10(L) */

	double estimate;
	uint64_t rtt_noload_ns; /* 0 until the first sample */
	uint64_t probe_count;
	double probe_jitter;
	uint64_t rng;
};

static const struct ls_algo_param vegas_params[] = {
	{"initial_limit", NULL, LS_PARAM_UINT, offsetof(struct vegas_state, initial_limit), "20", 1,
	 LS_MAX_LIMIT, 0, "limit before the first sample"},
	{"min_limit", NULL, LS_PARAM_UINT, offsetof(struct vegas_state, min_limit), "1", 1,
	 LS_MAX_LIMIT, 0, "the limit never goes below this"},
	{"max_limit", "max_concurrency", LS_PARAM_UINT, offsetof(struct vegas_state, max_limit),
	 "1000", 1, LS_MAX_LIMIT, 0, "the limit never goes above this"},
	{"smoothing", NULL, LS_PARAM_REAL, offsetof(struct vegas_state, smoothing), "1.0", 0, 1,
	 LS_PARAM_MIN_OPEN, "weight of a new limit against the old one"},
	{"probe_multiplier", NULL, LS_PARAM_UINT, offsetof(struct vegas_state, probe_multiplier),
	 "30", 1, 1e6, 0, "re-learn rtt_noload every ~multiplier * L samples"},
	{"probe_seed", NULL, LS_PARAM_UINT, offsetof(struct vegas_state, probe_seed), "1", 0,
	 UINT32_MAX, 0, "seed of the probe jitter (deterministic)"},
	{"alpha", NULL, LS_PARAM_UINT, offsetof(struct vegas_state, alpha), "0", 0, 1e6, 0,
	 "queue below this grows the limit; 0: 3*LOG10(L)"},
	{"beta", NULL, LS_PARAM_UINT, offsetof(struct vegas_state, beta), "0", 0, 1e6, 0,
	 "queue above this shrinks the limit; 0: 6*LOG10(L)"},
	{0},
};

/* Uniform in [0.5, 1), as upstream's nextDouble(0.5, 1). */
static void vegas_reset_probe_jitter(struct vegas_state *v)
{
	double unit = (double)(ls_splitmix64(&v->rng) >> 11) / 9007199254740992.0;

	v->probe_jitter = 0.5 + 0.5 * unit;
}

static uint32_t vegas_start(void *st)
{
	struct vegas_state *v = st;

	v->estimate = v->initial_limit;
	v->rtt_noload_ns = 0;
	v->probe_count = 0;
	v->rng = v->probe_seed;
	vegas_reset_probe_jitter(v);
	return v->initial_limit;
}

static bool vegas_should_probe(const struct vegas_state *v)
{
	return v->probe_jitter * v->probe_multiplier * v->estimate <= (double)v->probe_count;
}

static uint32_t vegas_alpha(const struct vegas_state *v, uint32_t limit)
{
	return v->alpha ? v->alpha : 3 * ls_log10_root(limit);
}

static uint32_t vegas_beta(const struct vegas_state *v, uint32_t limit)
{
	return v->beta ? v->beta : 6 * ls_log10_root(limit);
}

static double vegas_decrease(double estimate)
{
	return estimate - ls_log10_root((uint32_t)estimate);
}

/*
 * The limit Vegas aims for given the queue it sees, or NAN when the queue
 * is in the sweet spot [alpha, beta] and nothing should change.
 */
static double vegas_target(const struct vegas_state *v, int64_t queue)
{
	uint32_t limit = (uint32_t)v->estimate;
	int64_t threshold = ls_log10_root(limit);

	if (queue <= threshold)
		return v->estimate + vegas_beta(v, limit); /* no queueing: grow fast */
	if (queue < vegas_alpha(v, limit))
		return v->estimate + ls_log10_root(limit);
	if (queue > vegas_beta(v, limit))
		return vegas_decrease(v->estimate);
	return NAN;
}

static uint32_t vegas_update_estimate(struct vegas_state *v, const struct ls_algo_sample *s)
{
	double ratio = (double)v->rtt_noload_ns / (double)s->rtt_ns;
	int64_t queue = (int64_t)ceil(v->estimate * (1 - ratio));
	double target;

	if (s->did_drop)
		target = vegas_decrease(v->estimate);
	else if ((double)s->inflight * 2 < v->estimate)
		return (uint32_t)v->estimate; /* app-limited: no upward drift */
	else
		target = vegas_target(v, queue);
	if (isnan(target))
		return (uint32_t)v->estimate;

	target = fmax(v->min_limit, fmin(v->max_limit, target));
	v->estimate = (1 - v->smoothing) * v->estimate + v->smoothing * target;
	return (uint32_t)v->estimate;
}

static uint32_t vegas_update(void *st, const struct ls_algo_sample *s)
{
	struct vegas_state *v = st;

	/* Upstream rejects rtt 0; a sample without a duration says nothing. */
	if (!s->rtt_ns)
		return (uint32_t)v->estimate;

	v->probe_count++;
	if (vegas_should_probe(v)) {
		vegas_reset_probe_jitter(v);
		v->probe_count = 0;
		v->rtt_noload_ns = s->rtt_ns;
		return (uint32_t)v->estimate;
	}
	if (!v->rtt_noload_ns || s->rtt_ns < v->rtt_noload_ns) {
		v->rtt_noload_ns = s->rtt_ns;
		return (uint32_t)v->estimate;
	}
	return vegas_update_estimate(v, s);
}

static double vegas_estimate(const void *st)
{
	return ((const struct vegas_state *)st)->estimate;
}

static double vegas_baseline_rtt_ns(const void *st)
{
	return (double)((const struct vegas_state *)st)->rtt_noload_ns;
}

const struct ls_algo_ops ls_algo_vegas_ops = {
	.name = "vegas",
	.summary = "TCP Vegas on the queue estimated from the no-load RTT (Netflix VegasLimit)",
	.state_size = sizeof(struct vegas_state),
	.params = vegas_params,
	.start = vegas_start,
	.update = vegas_update,
	.estimate = vegas_estimate,
	.baseline_rtt_ns = vegas_baseline_rtt_ns,
};
