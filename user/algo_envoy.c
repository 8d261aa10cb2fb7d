// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * envoy: Envoy's adaptive concurrency gradient controller. It compares each
 * window's RTT (its sample_aggregate_percentile) with a no-load RTT,
 * minRTT, measured by a probe that pins the limit low:
 *
 *   gradient = clamp((minRTT + minRTT * buffer) / sampleRTT, 0.5, 2)
 *   L' = L * gradient;  L = clamp((uint)(L' + sqrt(L')), min, max)
 *
 * A probe (Envoy's minRTT window) saves L, pins the limit to
 * min_concurrency, and takes the percentile of the first request_count
 * requests admitted after it began as minRTT; then L is restored. Probes
 * come at start, every interval plus a jitter of 0 to jitter % of it, and at
 * once when the limit was set to the minimum five windows running (Envoy
 * PR #10647): a service whose own latency changed, say doubled, would
 * otherwise read the change as queueing and sit at the minimum until the
 * next interval. interval 0 turns probes off; fixed_value is then minRTT.
 * Parameter names, defaults and percentages are Envoy's, so a filter
 * config carries over; max_limit and min_limit are aliases, as in the
 * other algorithms.
 *
 * Where loadshed differs from Envoy:
 * - A sample is the time to the response's first byte (Envoy: until the
 *   whole response is sent).
 * - The class guarantees are shares of the pinned limit while a probe
 *   runs (loadshed's classes; Envoy has none).
 * - Only samples of requests admitted after the probe began count, as in
 *   Envoy since PR #11579.
 * - A probe that gets too few samples ends after its timeout
 *   (LS_PROBE_TIMEOUT_NS, from its start or its last new sample: while a
 *   slow service's samples come it waits, up to an hour) with none,
 *   keeping the old minRTT; Envoy waits for them for ever. Without any minRTT yet (the first probe
 * timed out: no traffic), the choice made here is the safe one: windows leave the limit where it
 * was, neither shedding nor growing on a guess, since there is no gradient to compute, and the next
 * probe is due at once. The service then alternates between probes at min_concurrency and windows
 * at the limit it had, the nearest to Envoy, which stays pinned at min_concurrency until its first
 * minRTT.
 * - The limit may resume from the one a service already has
 *   (initial_limit, default 3 = Envoy's start at min_concurrency).
 * - min_concurrency_limit defaults to 3, not to whatever min_concurrency is,
 *   and probes always pin (Envoy's newer API stops pinning when
 *   min_concurrency_limit is set apart).
 * - With interval > 0, a fixed_value is minRTT until the first probe, which
 *   then comes an interval (and jitter) after the first window instead of
 *   at start (Envoy's API gives fixed_value a use only with interval 0).
 * - The jitter is drawn from a splitmix64 generator seeded by probe_seed, so
 *   a replay always probes at the same times, and in nanoseconds (Envoy:
 *   milliseconds).
 * - sample_aggregate_percentile must be above 0.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "algo.h"
#include "loadshed.h"

/* Windows that set the limit to the minimum in a row before a probe starts at once. */
#define ENVOY_WINDOWS_AT_MIN_TO_PROBE 5
/* The gradient's bounds: a window at most halves or doubles L (before the headroom). */
#define ENVOY_GRADIENT_MIN 0.5
#define ENVOY_GRADIENT_MAX 2.0
/* Envoy's interval, when set, is at least this long. */
#define ENVOY_INTERVAL_MIN_NS 1000000ull

struct envoy_state {
	double sample_aggregate_percentile;
	uint32_t max_concurrency_limit;
	uint32_t min_concurrency;
	uint32_t min_concurrency_limit;
	uint64_t interval_ns;
	uint32_t request_count;
	double jitter;
	double buffer;
	uint64_t fixed_value_ns;
	uint32_t initial_limit;
	uint32_t probe_seed;

	uint32_t limit;		 /* L; while a probe runs, the pinned one */
	uint32_t saved_limit;	 /* L before the probe that runs */
	uint64_t min_rtt_ns;	 /* 0: none yet */
	uint32_t windows_at_min; /* windows in a row that left L at the minimum */
	uint64_t next_probe_ns;	 /* 0: not scheduled yet */
	uint64_t rng;
};

static const struct ls_algo_param envoy_params[] = {
	{"sample_aggregate_percentile", NULL, LS_PARAM_REAL,
	 offsetof(struct envoy_state, sample_aggregate_percentile), "50", 0, 100, LS_PARAM_MIN_OPEN,
	 "percentile of a window's latencies taken as its RTT"},
	{"max_concurrency_limit", "max_limit", LS_PARAM_UINT,
	 offsetof(struct envoy_state, max_concurrency_limit), "1000", 1, LS_MAX_LIMIT, 0,
	 "the limit never goes above this"},
	{"min_concurrency", NULL, LS_PARAM_UINT, offsetof(struct envoy_state, min_concurrency), "3",
	 1, LS_MAX_LIMIT, 0, "the limit while a probe measures minRTT"},
	{"min_concurrency_limit", "min_limit", LS_PARAM_UINT,
	 offsetof(struct envoy_state, min_concurrency_limit), "3", 1, LS_MAX_LIMIT, 0,
	 "the limit never goes below this"},
	{"interval", NULL, LS_PARAM_DURATION, offsetof(struct envoy_state, interval_ns), "60s", 0,
	 24 * 3600e9, 0, "between minRTT probes; 0: none, fixed_value is minRTT"},
	{"request_count", NULL, LS_PARAM_UINT, offsetof(struct envoy_state, request_count), "50", 1,
	 1e6, 0, "requests a probe measures"},
	{"jitter", NULL, LS_PARAM_REAL, offsetof(struct envoy_state, jitter), "15", 0, 100, 0,
	 "adds 0 to this % of interval to each wait for a probe"},
	{"buffer", NULL, LS_PARAM_REAL, offsetof(struct envoy_state, buffer), "25", 0, 100, 0,
	 "% of minRTT a window's RTT may exceed it by without shrinking the limit"},
	{"fixed_value", NULL, LS_PARAM_DURATION, offsetof(struct envoy_state, fixed_value_ns), "0s",
	 0, 3600e9, 0, "minRTT when interval is 0 (0: unset)"},
	{"initial_limit", NULL, LS_PARAM_UINT, offsetof(struct envoy_state, initial_limit), "3", 1,
	 LS_MAX_LIMIT, 0, "limit before the first window"},
	{"probe_seed", NULL, LS_PARAM_UINT, offsetof(struct envoy_state, probe_seed), "1", 0,
	 UINT32_MAX, 0, "seed of the probe jitter (deterministic)"},
	{0},
};

static int envoy_refuse(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int envoy_refuse(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || !errlen)
		return -EINVAL;
	n = snprintf(err, errlen, "envoy: ");
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int envoy_check(const void *st, char *err, size_t errlen)
{
	const struct envoy_state *e = st;

	if (!e->interval_ns && !e->fixed_value_ns)
		return envoy_refuse(err, errlen,
				    "interval=0 turns the minRTT probes off, so fixed_value must "
				    "give minRTT");
	if (e->interval_ns && e->interval_ns < ENVOY_INTERVAL_MIN_NS)
		return envoy_refuse(err, errlen, "interval must be 0 or at least 1ms, got %lluns",
				    (unsigned long long)e->interval_ns);
	if (e->min_concurrency > e->max_concurrency_limit)
		return envoy_refuse(err, errlen,
				    "min_concurrency %u is above max_concurrency_limit %u: a probe "
				    "would raise the limit",
				    e->min_concurrency, e->max_concurrency_limit);
	return 0;
}

static uint32_t envoy_start(void *st)
{
	struct envoy_state *e = st;

	e->limit = e->initial_limit;
	e->saved_limit = 0;
	e->min_rtt_ns = e->fixed_value_ns;
	e->windows_at_min = 0;
	e->next_probe_ns = 0;
	e->rng = e->probe_seed;
	return e->limit;
}

static uint64_t add_saturating(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* interval plus U[0, ceil(interval * jitter)), as Envoy's applyJitter. */
static uint64_t envoy_wait_ns(struct envoy_state *e)
{
	uint64_t range = (uint64_t)ceil((double)e->interval_ns * e->jitter / 100);

	if (!range)
		return e->interval_ns;
	return e->interval_ns + ls_splitmix64(&e->rng) % range;
}

static void envoy_schedule_probe(struct envoy_state *e, uint64_t now_ns)
{
	e->next_probe_ns = add_saturating(now_ns, envoy_wait_ns(e));
	if (!e->next_probe_ns)
		e->next_probe_ns = 1; /* 0 means unscheduled */
}

static double envoy_gradient(const struct envoy_state *e, uint64_t sample_rtt_ns)
{
	double buffered = (double)e->min_rtt_ns + (double)e->min_rtt_ns * e->buffer / 100;

	return fmax(ENVOY_GRADIENT_MIN, fmin(ENVOY_GRADIENT_MAX, buffered / (double)sample_rtt_ns));
}

static uint32_t envoy_update(void *st, const struct ls_algo_sample *s)
{
	struct envoy_state *e = st;
	uint32_t old = e->limit, limit;
	double scaled;

	/* Envoy skips a window without samples; without minRTT there is no gradient. */
	if (!s->rtt_ns || !e->min_rtt_ns)
		return e->limit;
	/* A fixed_value with probes: the first comes an interval after the first window. */
	if (e->interval_ns && !e->next_probe_ns)
		envoy_schedule_probe(e, s->start_ns);

	scaled = (double)e->limit * envoy_gradient(e, s->rtt_ns);
	limit = (uint32_t)(scaled + sqrt(scaled));
	if (limit > e->max_concurrency_limit)
		limit = e->max_concurrency_limit;
	if (limit < e->min_concurrency_limit)
		limit = e->min_concurrency_limit;
	e->limit = limit;

	/* As Envoy's updateConcurrencyLimit: set to the minimum from the minimum. */
	if (old == e->min_concurrency_limit && limit == e->min_concurrency_limit)
		e->windows_at_min++;
	else
		e->windows_at_min = 0;
	return e->limit;
}

static bool envoy_probe_due(const void *st, uint64_t now_ns)
{
	const struct envoy_state *e = st;

	if (!e->interval_ns)
		return false;
	if (!e->min_rtt_ns || e->windows_at_min >= ENVOY_WINDOWS_AT_MIN_TO_PROBE)
		return true;
	return e->next_probe_ns && now_ns >= e->next_probe_ns;
}

static uint32_t envoy_probe_begin(void *st, uint64_t now_ns, struct ls_algo_probe *out)
{
	struct envoy_state *e = st;

	(void)now_ns;
	e->saved_limit = e->limit;
	e->limit = e->min_concurrency;
	out->pinned = e->min_concurrency;
	out->samples = e->request_count;
	out->quantile = e->sample_aggregate_percentile / 100;
	out->timeout_ns = 0; /* LS_PROBE_TIMEOUT_NS */
	return e->limit;
}

static uint32_t envoy_probe_end(void *st, uint64_t rtt_ns, uint64_t now_ns)
{
	struct envoy_state *e = st;

	/* Probes turned off while it ran (a retune): fixed_value stays minRTT. */
	if (rtt_ns && e->interval_ns)
		e->min_rtt_ns = rtt_ns;
	/* Inside bounds a retune may have moved while it ran. */
	e->limit = e->saved_limit;
	if (e->limit > e->max_concurrency_limit)
		e->limit = e->max_concurrency_limit;
	if (e->limit < e->min_concurrency_limit)
		e->limit = e->min_concurrency_limit;
	e->windows_at_min = 0;
	envoy_schedule_probe(e, now_ns);
	return e->limit;
}

static double envoy_sample_quantile(const void *st)
{
	return ((const struct envoy_state *)st)->sample_aggregate_percentile / 100;
}

static double envoy_baseline_rtt_ns(const void *st)
{
	return (double)((const struct envoy_state *)st)->min_rtt_ns;
}

/*
 * New parameters apply from the next window, and a new interval or jitter
 * from the next wait for a probe; with probes off, a new fixed_value is
 * minRTT at once.
 */
static uint32_t envoy_retune(void *st, uint32_t limit)
{
	struct envoy_state *e = st;

	if (!e->interval_ns)
		e->min_rtt_ns = e->fixed_value_ns;
	return limit;
}

const struct ls_algo_ops ls_algo_envoy_ops = {
	.name = "envoy",
	.summary = "RTT gradient against a probed no-load RTT (Envoy's adaptive concurrency)",
	.state_size = sizeof(struct envoy_state),
	.params = envoy_params,
	.check = envoy_check,
	.start = envoy_start,
	.update = envoy_update,
	.baseline_rtt_ns = envoy_baseline_rtt_ns,
	.retune = envoy_retune,
	.sample_quantile = envoy_sample_quantile,
	.probe_due = envoy_probe_due,
	.probe_begin = envoy_probe_begin,
	.probe_end = envoy_probe_end,
};
