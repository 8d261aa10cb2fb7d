// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Sample windows as Netflix's WindowedLimit forms them. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "window.h"

#define US_NS 1000ull
#define MS_NS 1000000ull
#define S_NS  1000000000ull

static struct ls_window *make(const struct ls_window_config *cfg)
{
	struct ls_window_config def;
	struct ls_window *win = NULL;
	char err[128] = "";

	if (!cfg) {
		ls_window_config_default(&def);
		cfg = &def;
	}
	if (ls_window_create(cfg, &win, err, sizeof(err)))
		fail_msg("creating window: %s", err);
	return win;
}

static bool add(struct ls_window *win, uint64_t start_ns, uint64_t rtt_ns, uint32_t inflight,
		bool did_drop, struct ls_algo_sample *closed)
{
	struct ls_algo_sample s = {
		.start_ns = start_ns, .rtt_ns = rtt_ns, .inflight = inflight, .did_drop = did_drop};

	return ls_window_add(win, &s, closed);
}

/*
 * Whether a window closes when a sample ends at end_ns, observed through
 * ls_window_add() alone: a new window gets the prefix samples, then nine
 * 1 ms fillers starting at filler_ns (none may close anything), then the
 * probe, the tenth sample. The probe closes a window with enough samples
 * (true) exactly when it ends after the open window's end.
 */
static bool probe_closes(const struct ls_window_config *cfg, const uint64_t (*prefix)[2], int n,
			 uint64_t filler_ns, uint64_t end_ns)
{
	struct ls_window *win = make(cfg);
	struct ls_algo_sample closed;
	bool r;

	for (int i = 0; i < n; i++)
		add(win, prefix[i][0], prefix[i][1], 1, false, &closed);
	for (int i = 0; i < 9; i++)
		assert_false(add(win, filler_ns, 1 * MS_NS, 1, false, &closed));
	r = add(win, end_ns - 1 * MS_NS, 1 * MS_NS, 1, false, &closed);
	ls_window_destroy(&win);
	return r;
}

/* After the prefix, the open window ends at end_ns: a sample ending then stays in it. */
static void assert_window_ends_at(const struct ls_window_config *cfg, const uint64_t (*prefix)[2],
				  int n, uint64_t filler_ns, uint64_t end_ns)
{
	assert_false(probe_closes(cfg, prefix, n, filler_ns, end_ns));
	assert_true(probe_closes(cfg, prefix, n, filler_ns, end_ns + 1));
}

static void window_discards_samples_under_100us(void **state)
{
	struct ls_window *win = make(NULL);
	struct ls_algo_sample closed;
	int i;

	(void)state;
	for (i = 0; i < 100; i++)
		assert_false(add(win, (uint64_t)i * 100 * MS_NS, 99 * US_NS, 10, false, &closed));
	ls_window_destroy(&win);
	assert_null(win);
	{
		/* Not even the first window closed: the next real sample is the first. */
		uint64_t prefix[101][2];

		for (i = 0; i < 100; i++) {
			prefix[i][0] = (uint64_t)i * 100 * MS_NS;
			prefix[i][1] = 99 * US_NS;
		}
		prefix[100][0] = 20 * S_NS;
		prefix[100][1] = 1 * MS_NS;
		assert_window_ends_at(NULL, prefix, 101, 20 * S_NS + 10 * MS_NS,
				      20 * S_NS + 1 * MS_NS + 1 * S_NS);
	}
}

static void first_sample_closes_an_empty_window(void **state)
{
	static const uint64_t first[1][2] = {{0, 1 * MS_NS}};
	struct ls_window *win = make(NULL);
	struct ls_algo_sample closed;

	(void)state;
	assert_false(add(win, 0, 1 * MS_NS, 10, false, &closed));
	ls_window_destroy(&win);
	assert_window_ends_at(NULL, first, 1, 10 * MS_NS, 1 * MS_NS + 1 * S_NS);
}

/* Opens a window ending at 1.001 s and fills it with n samples of 1..n ms. */
static struct ls_window *window_with(const struct ls_window_config *cfg, int n)
{
	struct ls_window *win = make(cfg);
	struct ls_algo_sample closed;
	int i;

	add(win, 0, 1 * MS_NS, 1, false, &closed);
	for (i = 1; i <= n; i++)
		assert_false(add(win, (uint64_t)i * 10 * MS_NS, (uint64_t)i * MS_NS, (uint32_t)i,
				 false, &closed));
	return win;
}

static void window_with_nine_samples_is_not_fed(void **state)
{
	struct ls_window *win = window_with(NULL, 8);
	struct ls_algo_sample closed;

	(void)state;
	/* the closing sample is the ninth: too few, not fed, but the window moved on */
	assert_false(add(win, 2 * S_NS, 10 * MS_NS, 1, false, &closed));
	ls_window_destroy(&win);
	{
		uint64_t prefix[10][2] = {{0, 1 * MS_NS}};

		for (int i = 1; i <= 8; i++) {
			prefix[i][0] = (uint64_t)i * 10 * MS_NS;
			prefix[i][1] = (uint64_t)i * MS_NS;
		}
		prefix[9][0] = 2 * S_NS;
		prefix[9][1] = 10 * MS_NS;
		assert_window_ends_at(NULL, prefix, 10, 2 * S_NS + 20 * MS_NS,
				      2 * S_NS + 10 * MS_NS + 1 * S_NS);
	}
}

static void window_of_ten_feeds_integer_mean_max_inflight_and_drop(void **state)
{
	struct ls_window *win = window_with(NULL, 9);
	struct ls_algo_sample closed;

	(void)state;
	assert_true(add(win, 2 * S_NS, 10 * MS_NS + 1, 3, true, &closed));
	assert_int_equal(closed.start_ns, 2 * S_NS);
	assert_int_equal(closed.rtt_ns, (55 * MS_NS + 1) / 10); /* 5500000, truncated */
	assert_int_equal(closed.inflight, 9);
	/* The mean of the ten in-flight counts, 1 to 9 and the closing 3. */
	assert_true(fabs(closed.inflight_mean - 4.8) < 1e-9);
	assert_true(closed.did_drop);
	ls_window_destroy(&win);
}

static void closed_window_starts_empty(void **state)
{
	struct ls_window *win = window_with(NULL, 9);
	struct ls_algo_sample closed;
	int i;

	(void)state;
	assert_true(add(win, 2 * S_NS, 10 * MS_NS, 1, true, &closed));
	for (i = 0; i < 9; i++)
		assert_false(add(win, 2 * S_NS + 20 * MS_NS, 1 * MS_NS, 1, false, &closed));
	assert_true(add(win, 4 * S_NS, 1 * MS_NS, 1, false, &closed));
	assert_int_equal(closed.rtt_ns, 1 * MS_NS);
	assert_false(closed.did_drop);
	assert_int_equal(closed.inflight, 1);
	ls_window_destroy(&win);
}

static void window_length_is_twice_min_rtt_clamped(void **state)
{
	struct ls_window_config cfg;
	struct ls_window *win;
	struct ls_algo_sample closed;

	(void)state;
	static const uint64_t samples[3][2] = {
		{0, 300 * MS_NS}, {1 * S_NS, 10 * MS_NS}, {2 * S_NS, 5 * S_NS}};

	ls_window_config_default(&cfg);
	cfg.min_window_ns = 100 * MS_NS;
	cfg.max_window_ns = 2 * S_NS;
	win = make(&cfg);
	add(win, 0, 300 * MS_NS, 1, false, &closed);
	ls_window_destroy(&win);
	/* 2 x 300 ms after the first sample's end */
	assert_window_ends_at(&cfg, samples, 1, 310 * MS_NS, 900 * MS_NS);
	/* the min RTT is 10 ms: 20 ms, clamped up to 100 ms */
	assert_window_ends_at(&cfg, samples, 2, 1020 * MS_NS, 1010 * MS_NS + 100 * MS_NS);
	/* the window of one 5 s sample: 10 s, clamped down to 2 s */
	assert_window_ends_at(&cfg, samples, 3, 7 * S_NS + 10 * MS_NS, 7 * S_NS + 2 * S_NS);
}

static void percentile_p50_of_three_is_the_middle(void **state)
{
	uint64_t a[] = {5000, 500, 10};
	uint64_t b[] = {10, 5000, 5000};
	uint64_t c[] = {10, 5000, 500};
	uint64_t d[] = {10, 5000, 500};

	(void)state;
	assert_int_equal(ls_window_percentile(a, 3, 0.5), 500);
	assert_int_equal(ls_window_percentile(b, 3, 0.5), 5000);
	assert_int_equal(ls_window_percentile(c, 3, 0.999), 5000);
	assert_int_equal(ls_window_percentile(d, 3, 0.01), 10); /* index clamps at 0 */
}

static void percentile_window_feeds_the_percentile_rtt(void **state)
{
	struct ls_window_config cfg;
	struct ls_window *win;
	struct ls_algo_sample closed;

	(void)state;
	ls_window_config_default(&cfg);
	cfg.percentile = 0.9;
	win = window_with(&cfg, 9); /* 1..9 ms */
	assert_true(add(win, 2 * S_NS, 100 * MS_NS, 1, false, &closed));
	assert_int_equal(closed.rtt_ns, 9 * MS_NS); /* index round(10 * 0.9) - 1 = 8 */
	ls_window_destroy(&win);
}

static void percentile_window_ranks_the_latest_samples(void **state)
{
	struct ls_window_config cfg;
	struct ls_window *win;
	struct ls_algo_sample closed;
	int i;

	(void)state;
	ls_window_config_default(&cfg);
	cfg.percentile = 0.5;
	win = make(&cfg);
	add(win, 0, 1 * MS_NS, 1, false, &closed);
	for (i = 0; i < LS_WINDOW_PCT_SAMPLES; i++)
		add(win, 10 * MS_NS, 50 * MS_NS, 1, false, &closed);
	for (i = 0; i < LS_WINDOW_PCT_SAMPLES / 2 + 1; i++)
		add(win, 10 * MS_NS, 2 * MS_NS, 1, false, &closed);
	assert_true(add(win, 2 * S_NS, 2 * MS_NS, 1, false, &closed));
	assert_int_equal(closed.rtt_ns, 2 * MS_NS);
	ls_window_destroy(&win);
}

static void bad_window_config_is_rejected(void **state)
{
	struct ls_window_config cfg;
	struct ls_window *win = NULL;
	char err[128];

	(void)state;
	ls_window_config_default(&cfg);
	cfg.window_size = 9;
	assert_int_equal(ls_window_create(&cfg, &win, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "window size"));
	ls_window_config_default(&cfg);
	cfg.min_window_ns = 99 * MS_NS;
	assert_int_equal(ls_window_create(&cfg, &win, err, sizeof(err)), -EINVAL);
	ls_window_config_default(&cfg);
	cfg.max_window_ns = 500 * MS_NS; /* below min 1 s */
	assert_int_equal(ls_window_create(&cfg, &win, err, sizeof(err)), -EINVAL);
	ls_window_config_default(&cfg);
	cfg.percentile = 1.0;
	assert_int_equal(ls_window_create(&cfg, &win, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "percentile"));
	assert_null(win);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(window_discards_samples_under_100us),
		cmocka_unit_test(first_sample_closes_an_empty_window),
		cmocka_unit_test(window_with_nine_samples_is_not_fed),
		cmocka_unit_test(window_of_ten_feeds_integer_mean_max_inflight_and_drop),
		cmocka_unit_test(closed_window_starts_empty),
		cmocka_unit_test(window_length_is_twice_min_rtt_clamped),
		cmocka_unit_test(percentile_p50_of_three_is_the_middle),
		cmocka_unit_test(percentile_window_feeds_the_percentile_rtt),
		cmocka_unit_test(percentile_window_ranks_the_latest_samples),
		cmocka_unit_test(bad_window_config_is_rejected),
	};

	return cmocka_run_group_tests_name("window", tests, NULL, NULL);
}
