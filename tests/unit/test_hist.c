// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The latency histograms as the agent reads them: window deltas and the window's RTT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hist.h"

#define MS 1000000ull

static void add_n(struct ls_latency_hist *h, uint64_t ns, int n)
{
	while (n-- > 0)
		ls_hist_add(h, ns);
}

/* Without an outlier the statistic is the exact mean, not a bucket estimate. */
static void robust_mean_without_outliers_is_the_exact_mean(void **state)
{
	struct ls_latency_hist h = {0};

	(void)state;
	add_n(&h, 10 * MS, 50);
	add_n(&h, 13 * MS + 7, 50);
	assert_int_equal(ls_hist_robust_mean_ns(&h), (10 * MS * 50 + (13 * MS + 7) * 50) / 100);
	assert_int_equal(ls_hist_window_rtt_ns(&h, 0), ls_hist_robust_mean_ns(&h));
}

/* One 10 s sample among a hundred of 11 ms: left out, the mean stays near 11 ms. */
static void robust_mean_leaves_out_a_far_outlier(void **state)
{
	struct ls_latency_hist h = {0};
	uint64_t m;

	(void)state;
	add_n(&h, 11 * MS, 100);
	ls_hist_add(&h, 10000 * MS);
	assert_true(h.sum_ns / h.count > 100 * MS);
	m = ls_hist_robust_mean_ns(&h);
	/* The buckets' middles: within their resolution (an eighth of an octave). */
	assert_true(m >= 10 * MS && m <= 12 * MS);
}

/* More than 1 in 20 beyond the fence are a slow part of the service: they count. */
static void robust_mean_keeps_a_slow_mode(void **state)
{
	struct ls_latency_hist h = {0};

	(void)state;
	add_n(&h, 11 * MS, 90);
	add_n(&h, 500 * MS, 10);
	assert_int_equal(ls_hist_robust_mean_ns(&h), h.sum_ns / h.count);
}

/* Within 4 times the median nothing is an outlier, however narrow the rest. */
static void robust_mean_keeps_samples_within_four_medians(void **state)
{
	struct ls_latency_hist h = {0};

	(void)state;
	add_n(&h, 11 * MS, 99);
	ls_hist_add(&h, 40 * MS);
	assert_int_equal(ls_hist_robust_mean_ns(&h), h.sum_ns / h.count);
}

static void window_rtt_takes_the_quantile_when_asked(void **state)
{
	struct ls_latency_hist h = {0};
	uint64_t p90;

	(void)state;
	add_n(&h, 1 * MS, 90);
	add_n(&h, 100 * MS, 10);
	p90 = ls_hist_window_rtt_ns(&h, 900000);
	assert_int_equal(p90, ls_hist_quantile_ns(&h, 0.9));
	assert_true(p90 <= 2 * MS);
	assert_int_equal(ls_hist_window_rtt_ns(&(struct ls_latency_hist){0}, 0), 0);
}

/* A window's delta has the window's extremes, not the lifetime's. */
static void delta_has_the_window_min_and_max(void **state)
{
	struct ls_latency_hist before = {0}, after, win;

	(void)state;
	ls_hist_add(&before, 1 * MS);
	ls_hist_add(&before, 5000 * MS);
	after = before;
	add_n(&after, 20 * MS, 10);
	ls_hist_delta(&after, &before, &win);
	assert_int_equal(win.count, 10);
	assert_int_equal(win.sum_ns, 200 * MS);
	assert_true(win.min_ns > 1 * MS && win.min_ns <= 20 * MS);
	assert_true(win.max_ns >= 20 * MS && win.max_ns < 5000 * MS);
	/* An empty window has neither. */
	ls_hist_delta(&after, &after, &win);
	assert_int_equal(win.min_ns, 0);
	assert_int_equal(win.max_ns, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(robust_mean_without_outliers_is_the_exact_mean),
		cmocka_unit_test(robust_mean_leaves_out_a_far_outlier),
		cmocka_unit_test(robust_mean_keeps_a_slow_mode),
		cmocka_unit_test(robust_mean_keeps_samples_within_four_medians),
		cmocka_unit_test(window_rtt_takes_the_quantile_when_asked),
		cmocka_unit_test(delta_has_the_window_min_and_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
