// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * delay: a queueing-delay target (design §7.3.1). The no-load latency s0 is
 * measured by probes; the limit is steered so that a window's latency is
 * s0 + T, T the waiting time allowed (`target`, or `target_ratio` * s0):
 *
 *   goal = s0 + T;  g = clamp(goal / rtt, 0.5, 2), and above the goal
 *   g = clamp(min(1, goal * max(1, inflight / e) / rtt), 0.5, 2)
 *   e = (1 - smoothing) * e + smoothing * (e * g + (rtt < goal ? 1 : 0))
 *
 * with no growth while the service uses less than half its limit; such a
 * limit decays, at no queue, towards twice the largest in-flight count of
 * the last 5 to 10 s plus one. inflight in g, and in the busy workers and
 * the steps below, is the window's mean in-flight count, the one its
 * latency queued behind (Little's law; the steps at least half the
 * largest, so that pauses do not pull them down); whether the limit is used or
 * filled, and the decay's peak, take its largest, so that a burst shorter
 * than the window raises only those. A limit the window filled at s0 grows by
 * the whole step (a slow start) up to where the law last cut a used limit
 * (a latency above the goal that the in-flight count explains cuts
 * nothing, and caps nothing). rtt and s0 are the same quantile
 * (`quantile`, the median) of a window and of a probe, so the spread of
 * service times is never read as queueing.
 *
 * s0 comes only from probes once one has succeeded (before, it is the
 * lowest window latency seen): under a held queue every window's latency
 * is s0 plus the wait the limit allows, so any minimum of them would
 * follow the queue up, as gradient2's long average does. A probe pins L to
 * three quarters of the workers the last window kept busy (throughput * s0
 * = inflight * s0 / rtt), at most half of L, so it sees no queue yet
 * collects its samples fast, and ends with the limit that gives the goal
 * at the last window's concurrency and latency, inflight * goal / rtt.
 * Probes come every `probe_interval` (plus up to `probe_jitter` of it),
 * and early when s0 looks stale: latencies well above the goal or well
 * below s0 (two CUSUMs), or a limit that slid under half of what the last
 * probe set (Envoy's rule of a limit at its minimum, generalised). A probe
 * within a quarter of s0 is averaged with it; one further off replaces it.
 * An overload that comes onto a limit the service had not used is no
 * slower service: the first alarm then steps the limit to where a probe
 * would end, with no probe, and the law holds while the queue from before
 * the step drains; until a window comes back to the goal, further alarms
 * probe.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "algo.h"
#include "loadshed.h"

/*
 * s0 looks stale (design §7.3.1): two CUSUMs of ln(rtt / expect), expect =
 * goal * max(1, inflight / e), and, while the limit is used, of
 * ln(s0 / rtt), each less a slack of ln 1.1 per window,
 * alarm at ln 2 and ln 1.25; or the limit stays at or below half of what
 * the last probe set (at least min_limit) for 5 windows, Envoy's rule.
 */
#define DELAY_CUSUM_SLACK 0.09531017980432486 /* ln 1.1 */
#define DELAY_ABOVE_ALARM 0.6931471805599453  /* ln 2 */
#define DELAY_BELOW_ALARM 0.22314355131420976 /* ln 1.25 */
#define DELAY_LOW_SHARE	  0.5
#define DELAY_LOW_WINDOWS 5
/*
 * An alarm within this many windows of the limit's first use is the onset
 * of an overload: the limit steps to the goal's, with no probe.
 */
#define DELAY_ONSET_WINDOWS 5
/* Probes within this factor (ln) of s0 are averaged with it. */
#define DELAY_SAME_S0 0.22314355131420976 /* ln 1.25 */
/* The longest a probe waits for its samples. */
#define DELAY_PROBE_TIMEOUT_MAX_NS 3600e9
/* The auto probe pins this share of the workers the last window kept busy, */
#define DELAY_PROBE_SHARE 0.75
/* and at most this share of the limit. */
#define DELAY_PROBE_LIMIT_SHARE 0.5
/*
 * The in-flight count is read once a round, so a burst shorter than a round
 * shows only in the windows whose round fell inside it: an unused limit
 * decays no lower than twice the largest count of the windows of the last
 * 5 to 10 s (two spans of this length).
 */
#define DELAY_PEAK_SPAN_NS 5000000000ull
/* The gradient's bounds, as Envoy's. */
#define DELAY_GRADIENT_MIN 0.5
#define DELAY_GRADIENT_MAX 2.0

struct delay_state {
	uint32_t initial_limit;
	uint32_t min_limit;
	uint32_t max_limit;
	uint64_t target_ns; /* 0: target_ratio * s0 */
	double target_ratio;
	double smoothing;
	double quantile;
	uint64_t probe_interval_ns; /* 0: only the probes s0's staleness asks for */
	double probe_jitter;
	uint32_t probe_samples;
	uint32_t probe_limit; /* 0: 3/4 of the busy workers, at most half the limit */
	uint32_t probe_seed;

	double estimate;
	double s0_ns;	/* the no-load latency; 0 before any window */
	bool s0_probed; /* s0 comes from a probe, not from the windows */
	double last_rtt_ns;
	uint32_t last_inflight; /* the last window's largest in-flight count */
	double last_mean;	/* and its mean */
	uint64_t windows;
	double above;		/* CUSUM of ln(rtt / expect) */
	double below;		/* CUSUM of ln(s0 / rtt) while the limit is used */
	double probed_estimate; /* what the last probe set; 0: none yet */
	uint32_t low_windows;	/* consecutive windows at or below half of it */
	uint32_t used_run;	/* consecutive windows that used the limit */
	bool stepped;		/* stepped at an onset, no window at the goal since */
	double queued_at;	/* the estimate at the last cut of a used limit; 0: none */
	uint64_t hold_ns;	/* windows that start before this see the queue before a step */
	uint32_t peak[2];	/* the largest in-flight count of this span and the last */
	uint64_t peak_ns;	/* when this span began */
	bool probe_wanted;	/* s0 looks stale */
	double saved_estimate;	/* the estimate when the running probe began */
	uint64_t next_probe_ns; /* 0: none scheduled yet */
	uint64_t rng;
};

static const struct ls_algo_param delay_params[] = {
	{"initial_limit", NULL, LS_PARAM_UINT, offsetof(struct delay_state, initial_limit), "20", 1,
	 LS_MAX_LIMIT, 0, "limit before the first sample"},
	{"min_limit", NULL, LS_PARAM_UINT, offsetof(struct delay_state, min_limit), "3", 1,
	 LS_MAX_LIMIT, 0, "the limit never goes below this"},
	{"max_limit", "max_concurrency", LS_PARAM_UINT, offsetof(struct delay_state, max_limit),
	 "1000", 1, LS_MAX_LIMIT, 0, "the limit never goes above this"},
	{"target", NULL, LS_PARAM_DURATION, offsetof(struct delay_state, target_ns), "0s", 0,
	 3600e9, 0, "waiting time allowed; 0s: target_ratio * no-load latency"},
	{"target_ratio", NULL, LS_PARAM_REAL, offsetof(struct delay_state, target_ratio), "0.25", 0,
	 100, LS_PARAM_MIN_OPEN, "waiting time allowed, times the no-load latency"},
	{"smoothing", NULL, LS_PARAM_REAL, offsetof(struct delay_state, smoothing), "0.25", 0, 1,
	 LS_PARAM_MIN_OPEN, "weight of a new limit against the old one"},
	{"quantile", NULL, LS_PARAM_REAL, offsetof(struct delay_state, quantile), "0.5", 0, 1,
	 LS_PARAM_MIN_OPEN | LS_PARAM_MAX_OPEN,
	 "the quantile of window and probe latencies compared"},
	{"probe_interval", NULL, LS_PARAM_DURATION, offsetof(struct delay_state, probe_interval_ns),
	 "30s", 0, 86400e9, 0, "between no-load probes; 0s: only when s0 looks stale"},
	{"probe_jitter", NULL, LS_PARAM_REAL, offsetof(struct delay_state, probe_jitter), "0.15", 0,
	 1, 0, "up to this share of probe_interval added at random"},
	{"probe_samples", NULL, LS_PARAM_UINT, offsetof(struct delay_state, probe_samples), "20", 1,
	 100000, 0, "requests a probe measures"},
	{"probe_limit", NULL, LS_PARAM_UINT, offsetof(struct delay_state, probe_limit), "0", 0,
	 LS_MAX_LIMIT, 0, "limit while probing; 0: 3/4 of the busy workers, at most L/2"},
	{"probe_seed", NULL, LS_PARAM_UINT, offsetof(struct delay_state, probe_seed), "1", 0,
	 UINT32_MAX, 0, "seed of the probe jitter (deterministic)"},
	{0},
};

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static double delay_bounded(const struct delay_state *d, double e)
{
	return clamp(e, d->min_limit, d->max_limit);
}

static uint32_t delay_start(void *st)
{
	struct delay_state *d = st;

	d->estimate = d->initial_limit;
	d->rng = d->probe_seed;
	return d->initial_limit;
}

/* The waiting time allowed on top of s0. */
static double delay_target_ns(const struct delay_state *d)
{
	return d->target_ns ? (double)d->target_ns : d->target_ratio * d->s0_ns;
}

/* Whether the service used at least half its limit: only then may it grow. */
static bool delay_limit_used(const struct delay_state *d, uint32_t inflight)
{
	return 2.0 * inflight >= d->estimate;
}

/*
 * The step that ends a probe or an onset: the limit that gives the goal at
 * the last window's concurrency and latency, inflight * goal / rtt, with
 * the window's mean in-flight count, and at least half its largest. A
 * window idle most of its rounds has its latencies from its bursts, queued
 * behind their count (a median at s0 says half of them, at least, found a
 * free worker): from the mean alone the step would follow the pauses'
 * length, a client's to choose, down to min_limit, below the workers the
 * bursts kept busy.
 */
static double delay_goal_limit(const struct delay_state *d, double goal)
{
	return fmax(d->last_mean, d->last_inflight / 2.0) * goal / d->last_rtt_ns;
}

/* One step of a CUSUM that looks for a positive drift of x beyond the slack. */
static double cusum(double sum, double x)
{
	return fmax(0, sum + x - DELAY_CUSUM_SLACK);
}

/*
 * Asks for a probe when s0 looks stale. Latencies above the goal that
 * cutting the limit does not bring back mean the service slowed down (or
 * its latency does not follow the load): a big step shows in the CUSUM at
 * once, a small one as the limit sliding under half of what the last probe
 * set. Latencies below s0 under a used limit mean it sped up (under load a
 * window never beats the no-load latency for long).
 */
static void delay_check_stale(struct delay_state *d, const struct ls_algo_sample *s, double goal,
			      double expect, bool used)
{
	double rtt = (double)s->rtt_ns;
	double low = fmax(d->min_limit, DELAY_LOW_SHARE * d->probed_estimate);

	d->used_run = used ? d->used_run + 1 : 0;
	/*
	 * A step proves right when a window comes back to the goal. Windows
	 * that stay above it, used or not, keep the step: otherwise on/off
	 * load onto a slower service would read each burst as an onset and
	 * step again, on a stale s0, without ever probing.
	 */
	if (rtt <= goal)
		d->stepped = false;
	d->above = cusum(d->above, log(rtt / expect));
	d->below = cusum(d->below, used ? log(d->s0_ns / rtt) : 0);
	/* A limit that decayed under a light load (not used) is no slide. */
	d->low_windows = used && (uint32_t)d->estimate <= low ? d->low_windows + 1 : 0;
	if (d->above >= DELAY_ABOVE_ALARM && d->s0_probed && used && !d->stepped &&
	    d->used_run <= DELAY_ONSET_WINDOWS && d->used_run < d->windows) {
		/*
		 * The latency rose as the load came onto a limit the service
		 * had not used a few windows before: the queue of an overload
		 * that began above the limit, not a slower service. The step a
		 * probe would end with, without the probe: the limit that gives
		 * the goal at this window's concurrency and latency. Should the
		 * latency stay, the next alarm finds the limit used and probes.
		 * Requests admitted before the step still wait in the old queue,
		 * the last of them up to about twice this window's median: until
		 * they are answered the windows say nothing of the new limit, and
		 * the law holds. The step counts as a probe's for the rule of a
		 * limit that slid under half of it.
		 */
		d->estimate = delay_bounded(d, delay_goal_limit(d, goal));
		d->probed_estimate = d->estimate;
		d->stepped = true;
		d->above = 0;
		d->hold_ns = s->start_ns + 2 * s->rtt_ns;
		return;
	}
	if (d->above >= DELAY_ABOVE_ALARM && d->s0_probed && used) {
		/*
		 * The latency rose at a limit in use, past what the queue at
		 * this in-flight count explains: the service slowed (or waits
		 * on something shedding cannot shorten). At a held limit the
		 * latency scales with the service time, so until the probe
		 * measures it s0 scales by the latency over what the law
		 * expected. The probe's pin counts the busy workers with it: with
		 * the old s0 a doubled service time would hide half of them, and
		 * the probe would pin a quarter of the workers and refuse the
		 * guaranteed classes' work for its length.
		 */
		d->s0_ns *= rtt / expect;
		d->probe_wanted = true;
		return;
	}
	if (d->above >= DELAY_ABOVE_ALARM || d->below >= DELAY_BELOW_ALARM ||
	    d->low_windows >= DELAY_LOW_WINDOWS)
		d->probe_wanted = true;
}

/* The largest in-flight count of the windows of the last 5 to 10 s, this one's included. */
static uint32_t delay_peak(struct delay_state *d, const struct ls_algo_sample *s)
{
	uint64_t since = s->start_ns - d->peak_ns; /* a clock gone back: a new span */

	if (since >= DELAY_PEAK_SPAN_NS) {
		d->peak[1] = since < 2 * DELAY_PEAK_SPAN_NS ? d->peak[0] : 0;
		d->peak[0] = 0;
		d->peak_ns = s->start_ns;
	}
	if (s->inflight > d->peak[0])
		d->peak[0] = s->inflight;
	return d->peak[0] > d->peak[1] ? d->peak[0] : d->peak[1];
}

static uint32_t delay_update(void *st, const struct ls_algo_sample *s)
{
	struct delay_state *d = st;
	double rtt = (double)s->rtt_ns;
	bool used = delay_limit_used(d, s->inflight);
	double goal, g, next, expect;
	uint32_t peak;

	if (!s->rtt_ns)
		return (uint32_t)d->estimate;
	peak = delay_peak(d, s);
	d->windows++;
	d->last_rtt_ns = rtt;
	d->last_inflight = s->inflight;
	d->last_mean = ls_algo_sample_mean_inflight(s);
	/* Until a probe measures it, s0 is the lowest window latency seen. */
	if (!d->s0_probed && (!d->s0_ns || rtt < d->s0_ns))
		d->s0_ns = rtt;

	if (s->start_ns < d->hold_ns)
		return (uint32_t)d->estimate; /* the queue before an onset's step */
	goal = d->s0_ns + delay_target_ns(d);
	/*
	 * Work a guarantee admitted past the limit queues as well: above it
	 * the law's model (latency proportional to in-flight) expects the
	 * goal times in-flight over the limit. Above the goal L is judged by
	 * the latency beyond that (cutting L would not shorten that queue,
	 * only shut out the classes without a guarantee), and only that
	 * latency says anything of s0.
	 */
	expect = goal * fmax(1, d->last_mean / d->estimate);
	g = clamp(rtt > goal ? fmin(1, expect / rtt) : goal / rtt, DELAY_GRADIENT_MIN,
		  DELAY_GRADIENT_MAX);
	/*
	 * Growth needs a used limit, and a latency not clearly below s0 (by
	 * more than the CUSUM's slack): that says s0 is stale, and growing on
	 * it would build the queue that hides it.
	 */
	if (g < 1 || (used && log(d->s0_ns / rtt) <= DELAY_CUSUM_SLACK)) {
		/*
		 * A limit the window filled whose latency is s0 (within the
		 * slack) has idle workers behind it: the step is taken whole,
		 * as a slow start (only when the limit binds, as TCP grows
		 * only a window it fills), up to the limit the law last cut
		 * (TCP's ssthresh), so that a window that happens to be fast
		 * at a held limit does not jump it. Only a used limit says
		 * where that is: a slow window of a quiet spell does not, nor
		 * one whose latency the in-flight count explains (g = 1).
		 */
		bool slow_start = g > 1 && fabs(log(rtt / d->s0_ns)) <= DELAY_CUSUM_SLACK &&
				  s->inflight >= (uint32_t)d->estimate &&
				  (!d->queued_at || d->estimate < d->queued_at);
		double a = slow_start ? 1 : d->smoothing;

		if (g < 1 && used)
			d->queued_at = d->estimate;
		next = d->estimate * g + (rtt < goal ? 1 : 0);
		if (slow_start && d->queued_at)
			next = fmin(next, d->queued_at);
		d->estimate = delay_bounded(d, (1 - a) * d->estimate + a * next);
	} else if (!used) {
		/*
		 * A limit the service does not use, at no queue, decays
		 * towards just over twice what it used in the last seconds
		 * (TCP's congestion window validation), where the same load
		 * leaves it unused: a surge after a quiet spell comes onto a
		 * limit near the workers, not onto the one an hour before.
		 * It never grows here.
		 */
		d->estimate = delay_bounded(
			d,
			fmin(d->estimate, fmax(2.0 * peak + 1, (1 - d->smoothing) * d->estimate)));
	}
	delay_check_stale(d, s, goal, expect, used);
	return (uint32_t)d->estimate;
}

static bool delay_probe_due(const void *st, uint64_t now_ns)
{
	const struct delay_state *d = st;

	if (!d->windows)
		return false; /* nothing to size the probe with yet */
	if (!d->s0_probed && !d->next_probe_ns)
		return true; /* the first measurement */
	if (d->probe_wanted)
		return true;
	return d->probe_interval_ns && now_ns >= d->next_probe_ns;
}

/*
 * The limit while probing: three quarters of the workers the last window
 * kept busy, inflight * s0 / rtt (the utilisation law: throughput times
 * service time), and at most half the limit. A server that slowed down
 * looks to have fewer busy workers, never more, so the probe stays below
 * the workers and sees no queue; one that sped up looks to have more, and
 * half the limit bounds it. The first probe, before s0 is known, pins
 * min_limit as Envoy does.
 */
static uint32_t delay_probe_pin(const struct delay_state *d)
{
	double busy, pin;

	if (d->probe_limit)
		return d->probe_limit;
	if (!d->s0_probed || d->last_rtt_ns <= 0)
		return d->min_limit;
	busy = d->last_mean * d->s0_ns / d->last_rtt_ns;
	pin = floor(fmin(DELAY_PROBE_SHARE * busy, DELAY_PROBE_LIMIT_SHARE * d->estimate));
	return (uint32_t)clamp(pin, d->min_limit, d->max_limit);
}

/*
 * How long a probe may wait for its samples: four times what it should
 * take (the old queue to drain, then its samples at the pinned
 * concurrency), never less than the generic timeout, never more than an
 * hour (a window of absurd latency must not overflow it).
 */
static uint64_t delay_probe_timeout_ns(const struct delay_state *d, uint32_t pin)
{
	double rtt = fmax(d->last_rtt_ns, d->s0_ns);
	double expect = rtt + rtt * d->probe_samples / pin;

	return (uint64_t)clamp(4 * expect, (double)LS_PROBE_TIMEOUT_NS, DELAY_PROBE_TIMEOUT_MAX_NS);
}

static uint32_t delay_probe_begin(void *st, uint64_t now_ns, struct ls_algo_probe *out)
{
	struct delay_state *d = st;
	uint32_t pin = delay_probe_pin(d);

	(void)now_ns;
	d->saved_estimate = d->estimate;
	d->probe_wanted = false;
	out->pinned = pin;
	out->samples = d->probe_samples;
	out->quantile = d->quantile;
	out->timeout_ns = delay_probe_timeout_ns(d, pin);
	return pin;
}

static void delay_schedule_probe(struct delay_state *d, uint64_t now_ns)
{
	double unit = (double)(ls_splitmix64(&d->rng) >> 11) / 9007199254740992.0;
	double extra = unit * d->probe_jitter * (double)d->probe_interval_ns;
	uint64_t wait = d->probe_interval_ns + (uint64_t)extra;

	/* Saturating: a clock near its end (a replay's) must not wrap to a probe due at once. */
	d->next_probe_ns = now_ns > UINT64_MAX - wait ? UINT64_MAX : now_ns + wait;
}

/*
 * The limit after a probe that measured s0: the one that gives the goal at
 * the last window's concurrency and latency, inflight * goal / rtt (the
 * busy workers inflight * s0 / rtt, times goal / s0). It is the law's step
 * with smoothing 1 and no clamp, taken once with a fresh s0: after a change
 * of service time it lands where the law would end, and it ends the queue
 * left by an overload that began above the limit. An application that used
 * less than half its limit said nothing about it: the limit stays.
 */
static double delay_limit_after_probe(const struct delay_state *d)
{
	double goal = d->s0_ns + delay_target_ns(d);

	if (!delay_limit_used(d, d->last_inflight) || d->last_rtt_ns <= 0)
		return d->estimate;
	return delay_goal_limit(d, goal);
}

/*
 * A probe within a quarter of s0 measured the same service: the two are
 * averaged, so that s0 (and the limit) does not jump with each probe's
 * sampling error (the median of 20 samples is off by 7 % for a spread of
 * service times of sigma 0.25 in ln, by 14 % for 0.5). One further off is
 * a new s0.
 */
static double delay_new_s0(const struct delay_state *d, double measured_ns)
{
	if (d->s0_probed && fabs(log(measured_ns / d->s0_ns)) <= DELAY_SAME_S0)
		return (d->s0_ns + measured_ns) / 2;
	return measured_ns;
}

static uint32_t delay_probe_end(void *st, uint64_t rtt_ns, uint64_t now_ns)
{
	struct delay_state *d = st;

	delay_schedule_probe(d, now_ns);
	d->estimate = d->saved_estimate;
	if (rtt_ns) {
		d->s0_ns = delay_new_s0(d, (double)rtt_ns);
		d->s0_probed = true;
		d->estimate = delay_limit_after_probe(d);
	}
	d->estimate = delay_bounded(d, d->estimate);
	if (rtt_ns)
		d->probed_estimate = d->estimate;
	d->above = 0;
	d->below = 0;
	d->low_windows = 0;
	return (uint32_t)d->estimate;
}

static int delay_check(const void *st, char *err, size_t errlen)
{
	const struct delay_state *d = st;

	if (d->probe_limit && (d->probe_limit < d->min_limit || d->probe_limit > d->max_limit)) {
		snprintf(err, errlen,
			 "delay: probe_limit %u is outside [min_limit %u, max_limit %u]",
			 d->probe_limit, d->min_limit, d->max_limit);
		return -EINVAL;
	}
	return 0;
}

static double delay_estimate(const void *st)
{
	return ((const struct delay_state *)st)->estimate;
}

static double delay_baseline_rtt_ns(const void *st)
{
	return ((const struct delay_state *)st)->s0_ns;
}

static double delay_sample_quantile(const void *st)
{
	return ((const struct delay_state *)st)->quantile;
}

const struct ls_algo_ops ls_algo_delay_ops = {
	.name = "delay",
	.summary = "queueing delay held near a target over the probed no-load latency",
	.state_size = sizeof(struct delay_state),
	.params = delay_params,
	.check = delay_check,
	.start = delay_start,
	.update = delay_update,
	.estimate = delay_estimate,
	.baseline_rtt_ns = delay_baseline_rtt_ns,
	.sample_quantile = delay_sample_quantile,
	.probe_due = delay_probe_due,
	.probe_begin = delay_probe_begin,
	.probe_end = delay_probe_end,
};
