// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * envoy, Envoy's adaptive concurrency gradient controller, through the
 * public ls_algo_* API. The scenarios are those of Envoy's own
 * gradient_controller_test.cc (named in each test's comment), with their
 * inputs; where upstream checks a bound (the limit grows, at most doubles)
 * the limits here are the exact ones the formulas give, checked by hand.
 *
 * Upstream's timers become window ends and probe steps: a sample window is
 * one ls_algo_update(), a minRTT window one probe (ls_algo_probe_step with
 * a histogram of the probe's samples, or ls_algo_probe_begin/end with an
 * exact RTT where the numbers matter).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "algo.h"
#include "hist.h"

#define MS_NS 1000000ull
#define S_NS  1000000000ull

static struct ls_algo *make(const char *params)
{
	struct ls_algo *algo = NULL;
	char err[256] = "";

	if (ls_algo_create("envoy", params, &algo, err, sizeof(err)))
		fail_msg("creating envoy with '%s': %s", params ? params : "", err);
	return algo;
}

/* One sample window ending at now_ns whose RTT (its percentile) is rtt_ns. */
static uint32_t window(struct ls_algo *a, uint64_t rtt_ns, uint64_t now_ns)
{
	struct ls_algo_sample s = {.start_ns = now_ns, .rtt_ns = rtt_ns, .inflight = 1000};

	return ls_algo_update(a, &s);
}

/* A probe that is due at now_ns and measures exactly rtt_ns; returns the limit after it. */
static uint32_t probe(struct ls_algo *a, uint64_t now_ns, uint64_t rtt_ns)
{
	if (!ls_algo_probe_due(a, now_ns))
		fail_msg("no probe is due at %llu ns", (unsigned long long)now_ns);
	ls_algo_probe_begin(a, now_ns);
	return ls_algo_probe_end(a, rtt_ns, now_ns);
}

static void expect_param_error(const char *params, const char *needle)
{
	struct ls_algo *a = (struct ls_algo *)0x1;
	char err[256] = "";

	assert_int_equal(ls_algo_create("envoy", params, &a, err, sizeof(err)), -EINVAL);
	assert_null(a);
	if (!strstr(err, needle))
		fail_msg("error '%s' for '%s' does not mention '%s'", err, params, needle);
}

/* The time from `after_ns` at which the next probe is due (binary search on probe_due). */
static uint64_t next_probe_at(const struct ls_algo *a, uint64_t after_ns, uint64_t bound_ns)
{
	uint64_t lo = after_ns, hi = bound_ns;

	assert_true(ls_algo_probe_due(a, hi));
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (ls_algo_probe_due(a, mid))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* ---- configuration (GradientControllerConfigTest) ------------------------- */

/* DefaultValuesTest: max 1000, request_count 50, p50, jitter 15 %, min_concurrency 3, buffer 25 %.
 */
static void defaults_are_envoys(void **state)
{
	struct ls_algo *a = make(NULL);
	struct ls_algo_probe p;
	char text[512];

	(void)state;
	assert_int_equal(ls_algo_params_text(a, text, sizeof(text)), 0);
	assert_string_equal(text,
			    "sample_aggregate_percentile=50,max_concurrency_limit=1000,"
			    "min_concurrency=3,min_concurrency_limit=3,interval=60s,"
			    "request_count=50,jitter=15,buffer=25,fixed_value=0s,initial_limit=3,"
			    "probe_seed=1");
	assert_true(ls_algo_sample_quantile(a) == 0.5);
	assert_int_equal(ls_algo_limit(a), 3);
	assert_true(ls_algo_probes(a));
	assert_true(ls_algo_baseline_rtt_ns(a) == 0);
	assert_int_equal(ls_algo_probe_step(a, 0, NULL), LS_PROBE_BEGAN);
	assert_true(ls_algo_probing(a, &p));
	assert_int_equal(p.pinned, 3);
	assert_int_equal(p.samples, 50);
	assert_true(p.quantile == 0.5);
	ls_algo_destroy(&a);
}

/* BasicTest: p42.5, max 1337, interval 31 s, request_count 52, jitter 13.2 %, min_concurrency 8. */
static void an_envoy_config_carries_over(void **state)
{
	struct ls_algo *a = make("sample_aggregate_percentile=42.5,max_concurrency_limit=1337,"
				 "interval=31s,request_count=52,jitter=13.2,min_concurrency=8");
	struct ls_algo_probe p;
	uint64_t at;
	char text[512];

	(void)state;
	assert_true(ls_algo_sample_quantile(a) == 0.425);
	assert_int_equal(ls_algo_params_text(a, text, sizeof(text)), 0);
	assert_non_null(strstr(text, "max_concurrency_limit=1337,min_concurrency=8,"));
	assert_non_null(strstr(text, "interval=31s,request_count=52,jitter=13.2,"));
	assert_int_equal(ls_algo_probe_begin(a, 0), 8);
	assert_true(ls_algo_probing(a, &p));
	assert_int_equal(p.samples, 52);
	assert_true(p.quantile == 0.425);
	ls_algo_probe_end(a, 5 * MS_NS, 0);
	/* The next one: 31 s plus up to ceil(31 s * 13.2 %) = 4.092 s. */
	at = next_probe_at(a, 0, 40 * S_NS);
	assert_true(at >= 31 * S_NS);
	assert_true(at < 31 * S_NS + 4092 * MS_NS);
	ls_algo_destroy(&a);
}

/* proto validation: interval 0 needs fixed_value; interval >= 1 ms; percentages in range. */
static void bad_parameters_are_refused(void **state)
{
	(void)state;
	expect_param_error("interval=0s", "fixed_value");
	expect_param_error("interval=500us", "interval must be 0 or at least 1ms");
	expect_param_error("interval=60", "interval");
	expect_param_error("fixed_value=5", "fixed_value");
	expect_param_error("sample_aggregate_percentile=0", "sample_aggregate_percentile");
	expect_param_error("sample_aggregate_percentile=100.5", "sample_aggregate_percentile");
	expect_param_error("jitter=101", "jitter");
	expect_param_error("buffer=-1", "buffer");
	expect_param_error("request_count=0", "request_count");
	expect_param_error("min_concurrency=0", "min_concurrency");
	expect_param_error("min_concurrency=20,max_concurrency_limit=10",
			   "min_concurrency 20 is above max_concurrency_limit 10");
	expect_param_error("concurrency_update_interval=100ms", "unknown parameter");
}

/* The limit bounds every algorithm shares work through the aliases min_limit and max_limit. */
static void limit_bounds_are_the_shared_ones(void **state)
{
	struct ls_algo *a = make("min_limit=5,max_limit=50,initial_limit=10");
	char text[512], err[256];

	(void)state;
	assert_int_equal(ls_algo_params_text(a, text, sizeof(text)), 0);
	assert_non_null(strstr(text, "max_concurrency_limit=50,"));
	assert_non_null(strstr(text, "min_concurrency_limit=5,"));
	ls_algo_destroy(&a);
	expect_param_error("initial_limit=2000", "initial_limit 2000 is above max_limit 1000");
	expect_param_error("min_concurrency_limit=5,initial_limit=4", "initial_limit 4 is below");
	expect_param_error("min_limit=60,max_concurrency_limit=50", "min_limit 60 is above");
	/* A resumed limit is brought inside the bounds; a default initial one follows them. */
	assert_int_equal(ls_algo_create_at("envoy", NULL, 5000, &a, err, sizeof(err)), 0);
	assert_int_equal(ls_algo_limit(a), 1000);
	ls_algo_destroy(&a);
	assert_int_equal(ls_algo_create_at("envoy", "max_limit=40", 77, &a, err, sizeof(err)), 0);
	assert_int_equal(ls_algo_limit(a), 40);
	ls_algo_destroy(&a);
	a = make("min_concurrency_limit=10");
	assert_int_equal(ls_algo_limit(a), 10);
	ls_algo_destroy(&a);
}

/* ---- the minRTT probe (GradientControllerTest) ------------------------------ */

/*
 * MinRTTLogicTest: min_concurrency 7, request_count 50: the controller
 * starts measuring at 7 and ends with the 50th sample of 13 ms.
 */
static void first_probe_pins_min_concurrency_until_its_samples(void **state)
{
	struct ls_algo *a = make("min_concurrency=7,initial_limit=7,min_concurrency_limit=7");
	struct ls_latency_hist h = {0};

	(void)state;
	assert_true(ls_algo_probe_due(a, 0));
	assert_int_equal(ls_algo_probe_step(a, 0, NULL), LS_PROBE_BEGAN);
	assert_int_equal(ls_algo_limit(a), 7);
	for (int i = 0; i < 49; i++)
		ls_hist_add(&h, 13 * MS_NS);
	assert_int_equal(ls_algo_probe_step(a, 100 * MS_NS, &h), LS_PROBE_NONE);
	assert_true(ls_algo_probing(a, NULL));
	assert_int_equal(ls_algo_limit(a), 7);
	ls_hist_add(&h, 13 * MS_NS);
	assert_int_equal(ls_algo_probe_step(a, 200 * MS_NS, &h), LS_PROBE_ENDED);
	assert_false(ls_algo_probing(a, NULL));
	/* 13 ms, to the histogram's bucket: [12.288, 13.312) ms. */
	assert_true(ls_algo_baseline_rtt_ns(a) >= 12288000 &&
		    ls_algo_baseline_rtt_ns(a) < 13312000);
	assert_int_equal(ls_algo_limit(a), 7);
	ls_algo_destroy(&a);
}

/* CancelLatencySample: request_count 5, samples of 1..5 ms: minRTT is their p50, 3 ms. */
static void probe_rtt_is_the_percentile_of_its_samples(void **state)
{
	struct ls_algo *a = make("request_count=5");
	struct ls_latency_hist h = {0};

	(void)state;
	assert_int_equal(ls_algo_probe_step(a, 0, NULL), LS_PROBE_BEGAN);
	for (uint64_t ms = 1; ms <= 5; ms++)
		ls_hist_add(&h, ms * MS_NS);
	assert_int_equal(ls_algo_probe_step(a, 100 * MS_NS, &h), LS_PROBE_ENDED);
	/* 3 ms, to its bucket [2.816, 3.072) ms. */
	assert_true(ls_algo_baseline_rtt_ns(a) >= 2816000 && ls_algo_baseline_rtt_ns(a) < 3072000);
	ls_algo_destroy(&a);
}

/*
 * MinRTTReturnToPreviousLimit: interval 30 s, no jitter, request_count 5,
 * minRTT 5 ms; five windows of 4 ms grow the limit; the probe at 31 s pins
 * it to 3, and its 5 samples of 13 ms give it back.
 */
static void probe_gives_back_the_limit_it_saved(void **state)
{
	static const uint32_t growth[] = {6, 12, 23, 41, 72};
	struct ls_algo *a = make("interval=30s,jitter=0,request_count=5");
	struct ls_latency_hist h = {0};

	(void)state;
	assert_int_equal(probe(a, 0, 5 * MS_NS), 3);
	for (int i = 0; i < 5; i++)
		assert_int_equal(window(a, 4 * MS_NS, (uint64_t)(i + 1) * 100 * MS_NS), growth[i]);
	assert_int_equal(ls_algo_probe_step(a, 31 * S_NS, &h), LS_PROBE_BEGAN);
	assert_int_equal(ls_algo_limit(a), 3);
	for (int i = 0; i < 5; i++)
		ls_hist_add(&h, 13 * MS_NS);
	assert_int_equal(ls_algo_probe_step(a, 32 * S_NS, &h), LS_PROBE_ENDED);
	assert_int_equal(ls_algo_limit(a), 72);
	assert_true(ls_algo_baseline_rtt_ns(a) >= 12288000 &&
		    ls_algo_baseline_rtt_ns(a) < 13312000);
	ls_algo_destroy(&a);
}

/* MinRTTRescheduleTest: no sample window changes the limit while a probe runs. */
static void windows_during_a_probe_change_nothing(void **state)
{
	struct ls_algo *a = make("interval=30s,jitter=0,request_count=5");

	(void)state;
	probe(a, 0, 5 * MS_NS);
	window(a, 4 * MS_NS, 100 * MS_NS);
	assert_int_equal(ls_algo_probe_step(a, 31 * S_NS, NULL), LS_PROBE_BEGAN);
	assert_int_equal(window(a, 1 * MS_NS, 31 * S_NS + 101 * MS_NS), 3);
	assert_int_equal(window(a, 100 * MS_NS, 31 * S_NS + 202 * MS_NS), 3);
	assert_true(ls_algo_probing(a, NULL));
	ls_algo_destroy(&a);
}

/* NoSamplesTest: a window without samples (RTT 0) leaves the limit where it is. */
static void window_without_samples_changes_nothing(void **state)
{
	struct ls_algo *a = make("request_count=5");

	(void)state;
	probe(a, 0, 5 * MS_NS);
	assert_int_equal(window(a, 4 * MS_NS, 100 * MS_NS), 6);
	for (int i = 0; i < 5; i++)
		assert_int_equal(window(a, 0, (uint64_t)(i + 2) * 100 * MS_NS), 6);
	ls_algo_destroy(&a);
}

/*
 * TimerAccuracyTest: interval 100 s, jitter 10 %: the next probe comes
 * 100 s plus U[0, 10 s) after the last ended (upstream feeds random() =
 * 15000 ms and expects 105 s: 15000 % 10000). Here the draws are
 * splitmix64's: every wait in [100 s, 110 s), and spread across that range.
 */
static void next_probe_waits_interval_plus_up_to_jitter(void **state)
{
	struct ls_algo *a = make("interval=100s,jitter=10,request_count=5");
	uint64_t now = 0, wait, shortest = UINT64_MAX, longest = 0;

	(void)state;
	probe(a, now, 5 * MS_NS);
	for (int i = 0; i < 200; i++) {
		wait = next_probe_at(a, now, now + 110 * S_NS) - now;
		if (wait < 100 * S_NS || wait >= 110 * S_NS)
			fail_msg("probe %d waited %llu ns", i, (unsigned long long)wait);
		shortest = wait < shortest ? wait : shortest;
		longest = wait > longest ? wait : longest;
		now += wait;
		probe(a, now, 5 * MS_NS);
	}
	/* 200 uniform draws leave no gap of a second at either end. */
	assert_true(shortest < 101 * S_NS);
	assert_true(longest >= 109 * S_NS);
	ls_algo_destroy(&a);
}

/* TimerAccuracyTestNoJitter: interval 45 s, jitter 0: exactly 45 s. */
static void without_jitter_the_next_probe_is_interval_away(void **state)
{
	struct ls_algo *a = make("interval=45s,jitter=0,request_count=5");

	(void)state;
	probe(a, 7 * S_NS, 5 * MS_NS);
	assert_false(ls_algo_probe_due(a, 52 * S_NS - 1));
	assert_true(ls_algo_probe_due(a, 52 * S_NS));
	ls_algo_destroy(&a);
}

/* The same probe_seed probes at the same times (replays are deterministic); another does not. */
static void probe_times_follow_the_seed(void **state)
{
	struct ls_algo *a = make("interval=10s"), *b = make("interval=10s"),
		       *c = make("interval=10s,probe_seed=2");

	(void)state;
	probe(a, 0, 5 * MS_NS);
	probe(b, 0, 5 * MS_NS);
	probe(c, 0, 5 * MS_NS);
	assert_int_equal(next_probe_at(a, 0, 12 * S_NS), next_probe_at(b, 0, 12 * S_NS));
	assert_int_not_equal(next_probe_at(a, 0, 12 * S_NS), next_probe_at(c, 0, 12 * S_NS));
	ls_algo_destroy(&a);
	ls_algo_destroy(&b);
	ls_algo_destroy(&c);
}

/* ---- the limit (GradientControllerTest) ----------------------------------- */

/*
 * MinRTTBufferTest: buffer 50 %, minRTT 5 ms: windows of 6 ms are within
 * the buffer (gradient 7.5 / 6 = 1.25), so the limit grows every time.
 */
static void buffer_lets_a_slightly_slower_window_grow_the_limit(void **state)
{
	static const uint32_t want[] = {5, 8, 13, 20, 30, 43, 61, 84, 115, 155};
	struct ls_algo *a = make("buffer=50,request_count=5");

	(void)state;
	probe(a, 0, 5 * MS_NS);
	for (int i = 0; i < 10; i++)
		assert_int_equal(window(a, 6 * MS_NS, (uint64_t)(i + 1) * 100 * MS_NS), want[i]);
	ls_algo_destroy(&a);
}

/*
 * ConcurrencyLimitBehaviorTestBasic: min_concurrency 7, buffer 10 %,
 * minRTT 5 ms. A window at minRTT grows 7 to 10 by the headroom alone
 * (7 * 1.1 + sqrt(7.7)); windows of 4 ms grow it by less than twice each;
 * windows of 6 ms shrink it every time, never below 7.
 */
static void limit_follows_the_gradient_both_ways(void **state)
{
	static const uint32_t faster[] = {17, 28, 44, 68, 103, 153, 224, 325, 468, 668};
	static const uint32_t slower[] = {637, 608, 580, 554, 530, 507, 486, 466, 447, 429};
	struct ls_algo *a =
		make("min_concurrency=7,min_concurrency_limit=7,initial_limit=7,buffer=10");
	uint64_t now = 0;
	uint32_t last;

	(void)state;
	assert_int_equal(probe(a, now, 5 * MS_NS), 7);
	assert_int_equal(last = window(a, 5 * MS_NS, now += 100 * MS_NS), 10);
	for (int i = 0; i < 10; i++) {
		uint32_t l = window(a, 4 * MS_NS, now += 100 * MS_NS);

		assert_int_equal(l, faster[i]);
		assert_true(l > last && l <= 2 * last);
		last = l;
	}
	for (int i = 0; i < 10; i++) {
		uint32_t l = window(a, 6 * MS_NS, now += 100 * MS_NS);

		assert_int_equal(l, slower[i]);
		assert_true(l < last && l >= 7);
		last = l;
	}
	ls_algo_destroy(&a);
}

/*
 * The gradient's clamps and the headroom, at minRTT 10 ms and no buffer:
 * 1 ms (10x faster) doubles, 100 ms (10x slower) halves, then + sqrt;
 * max_concurrency_limit and min_concurrency_limit bound the result.
 */
static void gradient_is_clamped_to_half_and_double(void **state)
{
	struct ls_algo *a = make("buffer=0,initial_limit=100");

	(void)state;
	probe(a, 0, 10 * MS_NS);
	assert_int_equal(window(a, 1 * MS_NS, 1 * S_NS), 214); /* 200 + sqrt(200) */
	ls_algo_destroy(&a);
	a = make("buffer=0,initial_limit=100");
	probe(a, 0, 10 * MS_NS);
	assert_int_equal(window(a, 100 * MS_NS, 1 * S_NS), 57); /* 50 + sqrt(50) */
	ls_algo_destroy(&a);
	a = make("buffer=0,initial_limit=900");
	probe(a, 0, 10 * MS_NS);
	assert_int_equal(window(a, 1 * MS_NS, 1 * S_NS), 1000); /* 1842, at the max */
	ls_algo_destroy(&a);
	a = make("buffer=0,initial_limit=40,max_concurrency_limit=50");
	probe(a, 0, 10 * MS_NS);
	assert_int_equal(window(a, 1 * MS_NS, 1 * S_NS), 50);
	ls_algo_destroy(&a);
	a = make("buffer=0");
	probe(a, 0, 10 * MS_NS);
	assert_int_equal(window(a, 100 * MS_NS, 1 * S_NS), 3); /* 1.5 + 1.22 = 2 */
	ls_algo_destroy(&a);
}

/*
 * ConsecutiveMinConcurrencyReset: min_concurrency 7, no buffer, interval
 * 1 h, minRTT 5 ms. Windows of 10 ms bring the limit down to 7; the fifth
 * window that finds it at 7 and leaves it there makes a probe due at once;
 * the probe measures 10 ms, and the limit grows again from 7.
 */
static void five_windows_at_the_minimum_start_a_probe(void **state)
{
	static const uint32_t regrowth[] = {9, 12, 15, 18, 22, 26, 31, 36, 42, 48};
	struct ls_algo *a = make("min_concurrency=7,min_concurrency_limit=7,initial_limit=7,"
				 "buffer=0,interval=3600s,request_count=5");
	uint64_t now = 0;

	(void)state;
	probe(a, now, 5 * MS_NS);
	assert_int_equal(window(a, 5 * MS_NS, now += 100 * MS_NS), 9);
	assert_int_equal(window(a, 10 * MS_NS, now += 100 * MS_NS), 7); /* from 9: not counted */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(window(a, 10 * MS_NS, now += 100 * MS_NS), 7);
		assert_false(ls_algo_probe_due(a, now));
	}
	assert_int_equal(window(a, 10 * MS_NS, now += 100 * MS_NS), 7);
	assert_true(ls_algo_probe_due(a, now));
	assert_int_equal(probe(a, now, 10 * MS_NS), 7);
	assert_false(ls_algo_probe_due(a, now + 100 * MS_NS));
	for (int i = 0; i < 10; i++)
		assert_int_equal(window(a, 10 * MS_NS, now += 100 * MS_NS), regrowth[i]);
	ls_algo_destroy(&a);
}

/* A window that leaves the minimum starts the count of windows at it afresh. */
static void count_at_the_minimum_restarts_when_the_limit_leaves_it(void **state)
{
	struct ls_algo *a = make("buffer=0,interval=3600s,min_concurrency_limit=5,initial_limit=5");
	uint64_t now = 0;

	(void)state;
	probe(a, now, 10 * MS_NS);
	for (int i = 0; i < 4; i++)
		assert_int_equal(window(a, 30 * MS_NS, now += 100 * MS_NS), 5);
	assert_int_equal(window(a, 10 * MS_NS, now += 100 * MS_NS), 7); /* 5 + sqrt(5) */
	assert_int_equal(window(a, 30 * MS_NS, now += 100 * MS_NS), 5);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(window(a, 30 * MS_NS, now += 100 * MS_NS), 5);
		assert_false(ls_algo_probe_due(a, now));
	}
	assert_int_equal(window(a, 30 * MS_NS, now += 100 * MS_NS), 5);
	assert_true(ls_algo_probe_due(a, now));
	ls_algo_destroy(&a);
}

/* ---- where loadshed decides what Envoy leaves open ---------------------------- */

/* A probe that times out with no samples keeps the minRTT it had; the next waits an interval. */
static void timed_out_probe_keeps_the_old_min_rtt(void **state)
{
	struct ls_algo *a = make("interval=30s,jitter=0");

	(void)state;
	probe(a, 0, 5 * MS_NS);
	assert_int_equal(window(a, 4 * MS_NS, 100 * MS_NS), 6);
	assert_int_equal(ls_algo_probe_step(a, 30 * S_NS + 100 * MS_NS, NULL), LS_PROBE_BEGAN);
	assert_int_equal(ls_algo_limit(a), 3);
	assert_int_equal(
		ls_algo_probe_step(a, 30 * S_NS + 100 * MS_NS + LS_PROBE_TIMEOUT_NS - 1, NULL),
		LS_PROBE_NONE);
	assert_int_equal(ls_algo_probe_step(a, 30 * S_NS + 100 * MS_NS + LS_PROBE_TIMEOUT_NS, NULL),
			 LS_PROBE_ENDED);
	assert_int_equal(ls_algo_limit(a), 6);
	assert_true(ls_algo_baseline_rtt_ns(a) == 5 * MS_NS);
	assert_false(ls_algo_probe_due(a, 65 * S_NS));
	assert_true(ls_algo_probe_due(a, 65 * S_NS + 100 * MS_NS));
	ls_algo_destroy(&a);
}

/* A probe whose samples say under 100 us measured nothing: minRTT stays. */
static void probe_faster_than_any_service_measures_nothing(void **state)
{
	struct ls_algo *a = make("interval=30s,jitter=0");
	struct ls_latency_hist h = {};

	(void)state;
	probe(a, 0, 5 * MS_NS);
	assert_int_equal(ls_algo_probe_step(a, 30 * S_NS + 100 * MS_NS, NULL), LS_PROBE_BEGAN);
	for (int i = 0; i < 50; i++)
		ls_hist_add(&h, 20000); /* 20 us */
	assert_int_equal(ls_algo_probe_step(a, 30 * S_NS + 200 * MS_NS, &h), LS_PROBE_ENDED);
	assert_true(ls_algo_baseline_rtt_ns(a) == 5 * MS_NS);
	ls_algo_destroy(&a);
}

/*
 * A clock behind the probe's start (replay's sample ends are not in order:
 * a short request that started later ends earlier) has not timed it out.
 */
static void a_time_before_the_probe_began_times_nothing_out(void **state)
{
	struct ls_algo *a = make("initial_limit=40,request_count=3");

	(void)state;
	assert_int_equal(ls_algo_probe_step(a, 10 * S_NS, NULL), LS_PROBE_BEGAN);
	assert_int_equal(ls_algo_probe_step(a, 10 * S_NS - 1, NULL), LS_PROBE_NONE);
	assert_int_equal(ls_algo_probe_step(a, 0, NULL), LS_PROBE_NONE);
	assert_true(ls_algo_probing(a, NULL));
	assert_int_equal(ls_algo_limit(a), 3);
	assert_int_equal(ls_algo_probe_step(a, 10 * S_NS + LS_PROBE_TIMEOUT_NS, NULL),
			 LS_PROBE_ENDED);
	ls_algo_destroy(&a);
}

/*
 * An algorithm restarted or replaced during a probe (the agent: another
 * algorithm, or parameters taken away) resumes from the limit before the
 * probe, not from the pinned one.
 */
static void a_probe_resumes_from_the_limit_before_it(void **state)
{
	struct ls_algo *a = make("initial_limit=40"), *b = NULL;
	struct ls_algo_probe p;
	char err[256];

	(void)state;
	assert_int_equal(ls_algo_resume_limit(a), 40);
	assert_int_equal(ls_algo_probe_step(a, 0, NULL), LS_PROBE_BEGAN);
	assert_true(ls_algo_probing(a, &p));
	assert_int_equal(p.before, 40);
	assert_int_equal(ls_algo_limit(a), 3);
	assert_int_equal(ls_algo_resume_limit(a), 40);
	assert_int_equal(
		ls_algo_create_at("vegas", NULL, ls_algo_resume_limit(a), &b, err, sizeof(err)), 0);
	assert_int_equal(ls_algo_limit(b), 40);
	assert_int_equal(ls_algo_probe_step(a, LS_PROBE_TIMEOUT_NS, NULL), LS_PROBE_ENDED);
	assert_int_equal(ls_algo_resume_limit(a), 40);
	ls_algo_destroy(&b);
	ls_algo_destroy(&a);
}

/*
 * A slow service: at 3 in flight a 1 s latency gives 3 samples a second,
 * and 50 take about 17 s. A probe waits while its samples come (its timeout
 * runs from the last new one), so it measures minRTT; with 5 s from its
 * start it timed out every time, and envoy stayed pinned at 3 for good
 * with no minRTT.
 */
static void a_probe_waits_while_its_samples_come(void **state)
{
	struct ls_algo *a = make("initial_limit=40");
	struct ls_latency_hist h = {0};
	uint64_t now = 0;

	(void)state;
	assert_int_equal(ls_algo_probe_step(a, now, NULL), LS_PROBE_BEGAN);
	for (int i = 1; i < 50; i++) {
		if (i % 3 == 0) {
			now += S_NS;
			assert_int_equal(ls_algo_probe_step(a, now, &h), LS_PROBE_NONE);
		}
		ls_hist_add(&h, S_NS);
	}
	assert_int_equal(ls_algo_limit(a), 3);
	ls_hist_add(&h, S_NS);
	assert_int_equal(ls_algo_probe_step(a, now + 100 * MS_NS, &h), LS_PROBE_ENDED);
	assert_int_equal(ls_algo_limit(a), 40);
	assert_true(fabs(ls_algo_baseline_rtt_ns(a) - 1.0 * S_NS) < 0.07 * S_NS);

	/* The next, with 10 samples and none for a timeout after the last: none measured. */
	now = 200 * S_NS;
	assert_int_equal(ls_algo_probe_step(a, now, NULL), LS_PROBE_BEGAN);
	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 10; i++)
		ls_hist_add(&h, 2 * S_NS);
	assert_int_equal(ls_algo_probe_step(a, now + 4 * S_NS, &h), LS_PROBE_NONE);
	assert_int_equal(ls_algo_probe_step(a, now + 4 * S_NS + LS_PROBE_TIMEOUT_NS - 1, &h),
			 LS_PROBE_NONE);
	assert_int_equal(ls_algo_probe_step(a, now + 4 * S_NS + LS_PROBE_TIMEOUT_NS, &h),
			 LS_PROBE_ENDED);
	assert_true(fabs(ls_algo_baseline_rtt_ns(a) - 1.0 * S_NS) < 0.07 * S_NS);
	ls_algo_destroy(&a);
}

/* Without any minRTT (the first probe timed out) windows hold the limit and a probe is due. */
static void without_min_rtt_the_limit_holds_and_a_probe_is_due(void **state)
{
	struct ls_algo *a = make("initial_limit=40");

	(void)state;
	assert_int_equal(window(a, 4 * MS_NS, 0), 40); /* before the first probe step */
	assert_int_equal(ls_algo_probe_step(a, 0, NULL), LS_PROBE_BEGAN);
	assert_int_equal(ls_algo_limit(a), 3);
	assert_int_equal(ls_algo_probe_step(a, LS_PROBE_TIMEOUT_NS, NULL), LS_PROBE_ENDED);
	assert_int_equal(ls_algo_limit(a), 40);
	assert_int_equal(window(a, 4 * MS_NS, LS_PROBE_TIMEOUT_NS + 100 * MS_NS), 40);
	assert_int_equal(window(a, 400 * MS_NS, LS_PROBE_TIMEOUT_NS + 200 * MS_NS), 40);
	assert_true(ls_algo_probe_due(a, LS_PROBE_TIMEOUT_NS + 200 * MS_NS));
	ls_algo_destroy(&a);
}

/* interval=0 turns probes off: fixed_value is minRTT from the first window. */
static void fixed_value_without_interval_never_probes(void **state)
{
	struct ls_algo *a = make("interval=0s,fixed_value=5ms,buffer=0");
	char err[256];

	(void)state;
	assert_true(ls_algo_baseline_rtt_ns(a) == 5 * MS_NS);
	assert_false(ls_algo_probe_due(a, 0));
	assert_int_equal(window(a, 5 * MS_NS, 100 * MS_NS), 4); /* 3 + sqrt(3) */
	for (int i = 0; i < 10; i++)
		window(a, 50 * MS_NS, (uint64_t)(i + 2) * 100 * MS_NS);
	assert_int_equal(ls_algo_limit(a), 3);
	assert_false(ls_algo_probe_due(a, 3600 * S_NS));
	/* A new fixed_value applies at once. */
	assert_int_equal(
		ls_algo_retune(a, "interval=0s,fixed_value=20ms,buffer=0", err, sizeof(err)), 0);
	assert_true(ls_algo_baseline_rtt_ns(a) == 20 * MS_NS);
	ls_algo_destroy(&a);
}

/*
 * Probes turned off (interval=0, a fixed_value) while one runs: the probe's
 * measurement does not replace fixed_value as minRTT when it ends.
 */
static void a_probe_ending_after_probes_were_turned_off_keeps_fixed_value(void **state)
{
	struct ls_algo *a = make("initial_limit=40,request_count=3");
	struct ls_latency_hist h = {0};
	char err[256];

	(void)state;
	assert_int_equal(ls_algo_probe_step(a, 0, NULL), LS_PROBE_BEGAN);
	assert_int_equal(ls_algo_retune(a,
					"initial_limit=40,request_count=3,interval=0s,"
					"fixed_value=5ms",
					err, sizeof(err)),
			 0);
	for (int i = 0; i < 3; i++)
		ls_hist_add(&h, 20 * MS_NS);
	assert_int_equal(ls_algo_probe_step(a, 100 * MS_NS, &h), LS_PROBE_ENDED);
	assert_int_equal(ls_algo_limit(a), 40);
	assert_true(ls_algo_baseline_rtt_ns(a) == 5 * MS_NS);
	assert_false(ls_algo_probe_due(a, 3600 * S_NS));
	ls_algo_destroy(&a);
}

/* The limit a probe gives back is inside the bounds retuned while it ran. */
static void a_probe_gives_back_a_limit_inside_the_bounds_retuned_meanwhile(void **state)
{
	struct ls_algo *a = make("initial_limit=400,max_limit=1000");
	char err[256];

	(void)state;
	assert_int_equal(ls_algo_probe_step(a, 0, NULL), LS_PROBE_BEGAN);
	assert_int_equal(ls_algo_retune(a, "initial_limit=50,max_limit=100", err, sizeof(err)), 0);
	assert_int_equal(ls_algo_probe_step(a, LS_PROBE_TIMEOUT_NS, NULL), LS_PROBE_ENDED);
	assert_int_equal(ls_algo_limit(a), 100);
	ls_algo_destroy(&a);
}

/* With probes, a fixed_value is minRTT until the first, an interval after the first window. */
static void fixed_value_with_interval_holds_until_the_first_probe(void **state)
{
	struct ls_algo *a = make("interval=30s,jitter=0,fixed_value=5ms,buffer=0");

	(void)state;
	assert_false(ls_algo_probe_due(a, 0));
	assert_int_equal(window(a, 5 * MS_NS, 2 * S_NS), 4);
	assert_false(ls_algo_probe_due(a, 32 * S_NS - 1));
	assert_true(ls_algo_probe_due(a, 32 * S_NS));
	ls_algo_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_envoys),
		cmocka_unit_test(an_envoy_config_carries_over),
		cmocka_unit_test(bad_parameters_are_refused),
		cmocka_unit_test(limit_bounds_are_the_shared_ones),
		cmocka_unit_test(first_probe_pins_min_concurrency_until_its_samples),
		cmocka_unit_test(probe_rtt_is_the_percentile_of_its_samples),
		cmocka_unit_test(probe_gives_back_the_limit_it_saved),
		cmocka_unit_test(windows_during_a_probe_change_nothing),
		cmocka_unit_test(window_without_samples_changes_nothing),
		cmocka_unit_test(next_probe_waits_interval_plus_up_to_jitter),
		cmocka_unit_test(without_jitter_the_next_probe_is_interval_away),
		cmocka_unit_test(probe_times_follow_the_seed),
		cmocka_unit_test(buffer_lets_a_slightly_slower_window_grow_the_limit),
		cmocka_unit_test(limit_follows_the_gradient_both_ways),
		cmocka_unit_test(gradient_is_clamped_to_half_and_double),
		cmocka_unit_test(five_windows_at_the_minimum_start_a_probe),
		cmocka_unit_test(count_at_the_minimum_restarts_when_the_limit_leaves_it),
		cmocka_unit_test(timed_out_probe_keeps_the_old_min_rtt),
		cmocka_unit_test(probe_faster_than_any_service_measures_nothing),
		cmocka_unit_test(a_time_before_the_probe_began_times_nothing_out),
		cmocka_unit_test(a_probe_resumes_from_the_limit_before_it),
		cmocka_unit_test(a_probe_waits_while_its_samples_come),
		cmocka_unit_test(without_min_rtt_the_limit_holds_and_a_probe_is_due),
		cmocka_unit_test(fixed_value_without_interval_never_probes),
		cmocka_unit_test(fixed_value_with_interval_holds_until_the_first_probe),
		cmocka_unit_test(a_probe_ending_after_probes_were_turned_off_keeps_fixed_value),
		cmocka_unit_test(a_probe_gives_back_a_limit_inside_the_bounds_retuned_meanwhile),
	};

	return cmocka_run_group_tests_name("algo_envoy", tests, NULL, NULL);
}
