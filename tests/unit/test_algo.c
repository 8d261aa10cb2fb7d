// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The limit algorithms against hand-checked numbers, including every case
 * of Netflix concurrency-limits' own test suite that applies.
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

#define MS_NS 1000000ull
#define S_NS  1000000000ull

static struct ls_algo *make(const char *name, const char *params)
{
	struct ls_algo *algo = NULL;
	char err[256] = "";
	int ret = ls_algo_create(name, params, &algo, err, sizeof(err));

	if (ret)
		fail_msg("creating %s with '%s': %s", name, params ? params : "", err);
	return algo;
}

static uint32_t feed(struct ls_algo *algo, uint64_t rtt_ns, uint32_t inflight, bool did_drop)
{
	struct ls_algo_sample s = {
		.start_ns = 0, .rtt_ns = rtt_ns, .inflight = inflight, .did_drop = did_drop};

	return ls_algo_update(algo, &s);
}

/* Creation must fail with -EINVAL and an error naming `needle`. */
static void expect_param_error(const char *name, const char *params, const char *needle)
{
	struct ls_algo *algo = (struct ls_algo *)0x1;
	char err[256] = "";

	assert_int_equal(ls_algo_create(name, params, &algo, err, sizeof(err)), -EINVAL);
	assert_null(algo);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

/* ---- fixed ---------------------------------------------------------------- */

static void fixed_limit_ignores_samples(void **state)
{
	struct ls_algo *a = make("fixed", "limit=7");

	(void)state;
	assert_int_equal(ls_algo_limit(a), 7);
	assert_int_equal(feed(a, 10 * S_NS, 1000, true), 7);
	assert_int_equal(feed(a, 1 * MS_NS, 0, false), 7);
	ls_algo_destroy(&a);
	assert_null(a);
}

static void fixed_retune_changes_limit_at_once(void **state)
{
	struct ls_algo *a = make("fixed", "limit=10");
	char err[128];

	(void)state;
	assert_int_equal(ls_algo_retune(a, "limit=20", err, sizeof(err)), 0);
	assert_int_equal(ls_algo_limit(a), 20);
	ls_algo_destroy(&a);
}

/* ---- aimd ------------------------------------------------------------------ */

static void aimd_initial_limit_is_reported_before_any_sample(void **state)
{
	struct ls_algo *a = make("aimd", "initial_limit=10,min_limit=10");

	(void)state;
	assert_int_equal(ls_algo_limit(a), 10);
	ls_algo_destroy(&a);
}

static void aimd_success_with_half_inflight_grows_by_one(void **state)
{
	struct ls_algo *a = make("aimd", "initial_limit=20");

	(void)state;
	assert_int_equal(feed(a, 1 * MS_NS, 10, false), 21);
	ls_algo_destroy(&a);
}

static void aimd_drop_backs_off_by_ratio(void **state)
{
	struct ls_algo *a = make("aimd", "initial_limit=30");

	(void)state;
	assert_int_equal(feed(a, 1 * MS_NS, 0, true), 27);
	ls_algo_destroy(&a);
}

static void aimd_success_at_max_stays_at_max(void **state)
{
	struct ls_algo *a = make("aimd", "initial_limit=21,max_limit=21,min_limit=1");

	(void)state;
	assert_int_equal(feed(a, 1 * MS_NS, 10, false), 21);
	assert_int_equal(feed(a, 1 * MS_NS, 21, false), 21);
	ls_algo_destroy(&a);
}

static void aimd_rtt_above_timeout_counts_as_drop(void **state)
{
	struct ls_algo *a = make("aimd", "initial_limit=100,timeout=500ms");

	(void)state;
	assert_int_equal(feed(a, 500 * MS_NS, 100, false), 101); /* not above */
	assert_int_equal(feed(a, 501 * MS_NS, 100, false), 90);	 /* (int)(101 * 0.9) */
	ls_algo_destroy(&a);
}

static void aimd_app_limited_sample_changes_nothing(void **state)
{
	struct ls_algo *a = make("aimd", "initial_limit=50");

	(void)state;
	assert_int_equal(feed(a, 1 * MS_NS, 24, false), 50); /* 48 < 50 */
	assert_int_equal(feed(a, 1 * MS_NS, 25, false), 51); /* 50 >= 50 */
	ls_algo_destroy(&a);
}

static void aimd_drop_at_default_min_stays_at_min(void **state)
{
	struct ls_algo *a = make("aimd", NULL);

	(void)state;
	assert_int_equal(feed(a, 1 * MS_NS, 20, true), 20);
	ls_algo_destroy(&a);
}

static void aimd_backoff_truncates_toward_zero(void **state)
{
	struct ls_algo *a = make("aimd", "initial_limit=15,min_limit=1,backoff_ratio=0.5");

	(void)state;
	assert_int_equal(feed(a, 1 * MS_NS, 0, true), 7);
	assert_int_equal(feed(a, 1 * MS_NS, 0, true), 3);
	assert_int_equal(feed(a, 1 * MS_NS, 0, true), 1);
	assert_int_equal(feed(a, 1 * MS_NS, 0, true), 1); /* (int)0.5 = 0, clamped */
	ls_algo_destroy(&a);
}

/* ---- vegas ----------------------------------------------------------------- */

#define VEGAS_HELPER "alpha=3,beta=6,smoothing=1.0,initial_limit=10,max_limit=20"

static void vegas_first_sample_only_sets_noload_rtt(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER);

	(void)state;
	assert_int_equal(feed(a, 10 * MS_NS, 10, false), 10);
	assert_true(ls_algo_baseline_rtt_ns(a) == 10.0 * MS_NS);
	ls_algo_destroy(&a);
}

static void vegas_no_queue_grows_by_beta(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER);

	(void)state;
	assert_int_equal(feed(a, 10 * MS_NS, 10, false), 10);
	assert_int_equal(feed(a, 10 * MS_NS, 11, false), 16);
	ls_algo_destroy(&a);
}

static void vegas_long_queue_decreases_by_log10(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER);

	(void)state;
	assert_int_equal(feed(a, 10 * MS_NS, 10, false), 10);
	assert_int_equal(feed(a, 50 * MS_NS, 11, false), 9);
	ls_algo_destroy(&a);
}

static void vegas_queue_between_alpha_and_beta_keeps_limit(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER);

	(void)state;
	assert_int_equal(feed(a, 10 * MS_NS, 10, false), 10);
	assert_int_equal(feed(a, 14 * MS_NS, 14, false), 10);
	ls_algo_destroy(&a);
}

static void vegas_defaults_grow_by_six_log10(void **state)
{
	struct ls_algo *a = make("vegas", "initial_limit=10000,max_limit=20000");

	(void)state;
	assert_int_equal(feed(a, 10 * S_NS, 5000, false), 10000);
	assert_int_equal(feed(a, 10 * S_NS, 6000, false), 10024);
	ls_algo_destroy(&a);
}

static void vegas_new_minimum_only_sets_noload_rtt(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER);

	(void)state;
	feed(a, 10 * MS_NS, 10, false);
	assert_int_equal(feed(a, 5 * MS_NS, 10, true), 10); /* even a drop is ignored */
	assert_true(ls_algo_baseline_rtt_ns(a) == 5.0 * MS_NS);
	ls_algo_destroy(&a);
}

static void vegas_drop_decreases_by_log10(void **state)
{
	struct ls_algo *a = make("vegas", "initial_limit=100,max_limit=200");

	(void)state;
	feed(a, 10 * MS_NS, 100, false);
	assert_int_equal(feed(a, 10 * MS_NS, 0, true), 98); /* LOG10(100) = 2 */
	ls_algo_destroy(&a);
}

static void vegas_app_limited_sample_changes_nothing(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER);

	(void)state;
	feed(a, 10 * MS_NS, 10, false);
	assert_int_equal(feed(a, 10 * MS_NS, 4, false), 10); /* 8 < 10 */
	ls_algo_destroy(&a);
}

static void vegas_growth_is_clamped_at_max(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER);

	(void)state;
	feed(a, 10 * MS_NS, 10, false);
	assert_int_equal(feed(a, 10 * MS_NS, 20, false), 16);
	assert_int_equal(feed(a, 10 * MS_NS, 20, false), 20);
	assert_int_equal(feed(a, 10 * MS_NS, 20, false), 20);
	ls_algo_destroy(&a);
}

static void vegas_smoothing_moves_part_way(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER ",smoothing=0.5");

	(void)state;
	feed(a, 10 * MS_NS, 10, false);
	assert_int_equal(feed(a, 10 * MS_NS, 10, false), 13); /* 10 + 0.5 * 6 */
	assert_true(fabs(ls_algo_estimate(a) - 13.0) < 1e-9);
	ls_algo_destroy(&a);
}

static void vegas_probe_relearns_noload_rtt_within_multiplier_times_limit(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER ",probe_multiplier=1");
	int i;

	(void)state;
	feed(a, 10 * MS_NS, 10, false);
	/* jitter >= 0.5: no probe before 0.5 * 1 * 10 = 5 samples */
	for (i = 0; i < 3; i++)
		feed(a, 50 * MS_NS, 0, false);
	assert_true(ls_algo_baseline_rtt_ns(a) == 10.0 * MS_NS);
	/* jitter < 1: a probe by the 10th sample */
	for (i = 0; i < 6; i++)
		feed(a, 50 * MS_NS, 0, false);
	assert_true(ls_algo_baseline_rtt_ns(a) == 50.0 * MS_NS);
	assert_int_equal(ls_algo_limit(a), 10);
	ls_algo_destroy(&a);
}

static void vegas_same_seed_gives_same_limits(void **state)
{
	struct ls_algo *a = make("vegas", "probe_multiplier=1,probe_seed=42");
	struct ls_algo *b = make("vegas", "probe_multiplier=1,probe_seed=42");
	uint64_t rtt_ns;
	int i;

	(void)state;
	for (i = 0; i < 2000; i++) {
		rtt_ns = (uint64_t)(5 + (i * 7919) % 50) * MS_NS;
		assert_int_equal(feed(a, rtt_ns, 1000, i % 97 == 0),
				 feed(b, rtt_ns, 1000, i % 97 == 0));
		assert_true(ls_algo_baseline_rtt_ns(a) == ls_algo_baseline_rtt_ns(b));
	}
	ls_algo_destroy(&a);
	ls_algo_destroy(&b);
}

static void vegas_zero_rtt_is_ignored(void **state)
{
	struct ls_algo *a = make("vegas", VEGAS_HELPER);

	(void)state;
	assert_int_equal(feed(a, 0, 10, true), 10);
	assert_true(ls_algo_baseline_rtt_ns(a) == 0);
	ls_algo_destroy(&a);
}

static void log10_root_matches_upstream_function(void **state)
{
	(void)state;
	assert_int_equal(ls_log10_root(0), 1);
	assert_int_equal(ls_log10_root(9), 1);
	assert_int_equal(ls_log10_root(100), 2);
	assert_int_equal(ls_log10_root(999), 2);
	assert_int_equal(ls_log10_root(1000), 3);
	assert_int_equal(ls_log10_root(10000), 4);
}

/* ---- expavg ---------------------------------------------------------------- */

static void expavg_warmup_is_plain_mean_then_exponential(void **state)
{
	struct ls_expavg m;
	int i;

	(void)state;
	ls_expavg_init(&m, 100, 10);
	for (i = 0; i < 10; i++)
		assert_true(fabs(ls_expavg_add(&m, 10 + i) - (10.0 + 0.5 * i)) < 1e-12);
	assert_true(fabs(ls_expavg_add(&m, 100) - 16.2) < 0.1);
	assert_true(fabs(m.value - (14.5 * 99.0 / 101.0 + 100.0 * 2.0 / 101.0)) < 1e-9);
}

/* ---- gradient2 ------------------------------------------------------------- */

static void gradient2_steady_rtt_grows_by_smoothing_times_queue(void **state)
{
	struct ls_algo *a = make("gradient2", NULL);
	static const uint32_t limits[] = {20, 21, 22, 23, 24, 24, 25};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		assert_int_equal(feed(a, 10 * MS_NS, 200, false), limits[i]);
		assert_true(fabs(ls_algo_estimate(a) - (20.0 + 0.8 * (i + 1))) < 1e-9);
	}
	ls_algo_destroy(&a);
}

static void gradient2_ignores_drops(void **state)
{
	struct ls_algo *with = make("gradient2", NULL);
	struct ls_algo *without = make("gradient2", NULL);
	int i;

	(void)state;
	for (i = 0; i < 50; i++) {
		uint64_t rtt_ns = (uint64_t)(10 + (i * 13) % 40) * MS_NS;

		assert_int_equal(feed(with, rtt_ns, 100, true), feed(without, rtt_ns, 100, false));
		assert_true(ls_algo_estimate(with) == ls_algo_estimate(without));
	}
	ls_algo_destroy(&with);
	ls_algo_destroy(&without);
}

static void gradient2_app_limited_changes_limit_not_long_rtt(void **state)
{
	struct ls_algo *a = make("gradient2", "initial_limit=100");

	(void)state;
	assert_int_equal(feed(a, 10 * MS_NS, 49, false), 100); /* 49 < 50 */
	assert_true(ls_algo_estimate(a) == 100.0);
	assert_true(ls_algo_baseline_rtt_ns(a) == 10.0 * MS_NS);
	assert_int_equal(feed(a, 30 * MS_NS, 49, false), 100);
	assert_true(ls_algo_baseline_rtt_ns(a) == 20.0 * MS_NS); /* warm-up mean */
	ls_algo_destroy(&a);
}

static void gradient2_shrinks_when_rtt_rises(void **state)
{
	struct ls_algo *a = make("gradient2", "initial_limit=100");

	(void)state;
	assert_int_equal(feed(a, 10 * MS_NS, 100, false), 100); /* 100.8 */
	/* long = 55 ms; gradient = 1.5 * 55 / 100 = 0.825;
	 * 0.8 * 100.8 + 0.2 * (100.8 * 0.825 + 4) = 98.072 */
	assert_int_equal(feed(a, 100 * MS_NS, 100, false), 98);
	assert_true(fabs(ls_algo_estimate(a) - 98.072) < 1e-9);
	ls_algo_destroy(&a);
}

static void gradient2_shrink_per_update_is_at_most_a_tenth(void **state)
{
	struct ls_algo *a = make("gradient2", "initial_limit=100,min_limit=1");
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		feed(a, 1 * MS_NS, 200, false); /* warm the long RTT at 1 ms: 108 */
	/* gradient clamps at 0.5: 0.9 * 108 + 0.8 = 98 */
	assert_int_equal(feed(a, 1 * S_NS, 200, false), 98);
	assert_true(fabs(ls_algo_estimate(a) - 98.0) < 1e-9);
	ls_algo_destroy(&a);
}

static void gradient2_is_clamped_at_max(void **state)
{
	struct ls_algo *a = make("gradient2", "initial_limit=199");

	(void)state;
	assert_int_equal(feed(a, 10 * MS_NS, 200, false), 199); /* 199.8 */
	assert_int_equal(feed(a, 10 * MS_NS, 200, false), 200); /* 200.6 -> 200 */
	assert_true(ls_algo_estimate(a) == 200.0);
	ls_algo_destroy(&a);
}

static void gradient2_is_clamped_at_min(void **state)
{
	struct ls_algo *a = make("gradient2", "min_limit=25,initial_limit=30");
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		feed(a, 1 * MS_NS, 200, false);
	for (i = 0; i < 50; i++)
		feed(a, 1 * S_NS, 200, false);
	assert_int_equal(ls_algo_limit(a), 25);
	assert_true(ls_algo_estimate(a) == 25.0);
	ls_algo_destroy(&a);
}

static void gradient2_long_rtt_decays_when_twice_the_short(void **state)
{
	struct ls_algo *a = make("gradient2", NULL);
	double expect_ns;
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		feed(a, 100 * MS_NS, 0, false);
	assert_true(ls_algo_baseline_rtt_ns(a) == 100.0 * MS_NS);
	feed(a, 10 * MS_NS, 0, false);
	expect_ns = (100.0 * MS_NS * 599.0 / 601.0 + 10.0 * MS_NS * 2.0 / 601.0) * 0.95;
	assert_true(fabs(ls_algo_baseline_rtt_ns(a) - expect_ns) < 1e-3);
	ls_algo_destroy(&a);
}

static void gradient2_decay_does_not_change_this_update(void **state)
{
	struct ls_algo *a = make("gradient2", NULL);
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		feed(a, 100 * MS_NS, 0, false);
	/* pre-decay long/short ~ 9.97: gradient 1, so the usual +0.8 */
	assert_int_equal(feed(a, 10 * MS_NS, 200, false), 20);
	assert_true(fabs(ls_algo_estimate(a) - 20.8) < 1e-9);
	ls_algo_destroy(&a);
}

/* ---- parameters ------------------------------------------------------------ */

static void unknown_algorithm_is_rejected_with_enoent(void **state)
{
	struct ls_algo *a = NULL;
	char err[256] = "";

	(void)state;
	assert_int_equal(ls_algo_create("bbr", NULL, &a, err, sizeof(err)), -ENOENT);
	assert_null(a);
	assert_non_null(strstr(err, "bbr"));
	assert_non_null(strstr(err, "gradient2"));
}

static void unknown_parameter_is_rejected(void **state)
{
	(void)state;
	expect_param_error("aimd", "smoothing=0.5", "unknown parameter 'smoothing'");
	expect_param_error("fixed", "min_limit=3", "unknown parameter 'min_limit'");
}

static void backoff_ratio_outside_half_to_one_is_rejected(void **state)
{
	(void)state;
	expect_param_error("aimd", "backoff_ratio=1.0", "backoff_ratio");
	expect_param_error("aimd", "backoff_ratio=0.49", "backoff_ratio");
	struct ls_algo *a = make("aimd", "backoff_ratio=0.5");
	ls_algo_destroy(&a);
}

static void min_above_max_is_rejected(void **state)
{
	(void)state;
	expect_param_error("aimd", "min_limit=50,max_limit=40", "min_limit");
	expect_param_error("gradient2", "min_limit=300", "min_limit");
	expect_param_error("vegas", "min_limit=5,max_limit=4", "min_limit");
}

static void timeout_needs_a_unit(void **state)
{
	struct ls_algo *a;
	char text[256];

	(void)state;
	expect_param_error("aimd", "timeout=5", "timeout");
	expect_param_error("aimd", "timeout=5parsecs", "timeout");
	a = make("aimd", "timeout=500ms");
	assert_int_equal(ls_algo_params_text(a, text, sizeof(text)), 0);
	assert_non_null(strstr(text, "timeout=500ms"));
	ls_algo_destroy(&a);
}

static void malformed_values_are_rejected(void **state)
{
	(void)state;
	expect_param_error("gradient2", "initial_limit=abc", "initial_limit");
	expect_param_error("gradient2", "initial_limit=-5", "initial_limit");
	expect_param_error("gradient2", "initial_limit=0", "initial_limit");
	expect_param_error("gradient2", "smoothing=0", "smoothing");
	expect_param_error("gradient2", "smoothing=1.5", "smoothing");
	expect_param_error("gradient2", "rtt_tolerance=0.9", "rtt_tolerance");
	expect_param_error("gradient2", "queue_size", "key=value");
	expect_param_error("gradient2", "=4", "key=value");
	expect_param_error("gradient2", "queue_size=", "key=value");
}

static void netflix_alias_and_spaces_are_accepted(void **state)
{
	struct ls_algo *a = make("gradient2", " max_concurrency = 300 , initial_limit=290,,");
	char text[256];

	(void)state;
	assert_int_equal(ls_algo_params_text(a, text, sizeof(text)), 0);
	assert_string_equal(text, "initial_limit=290,min_limit=20,max_limit=300,smoothing=0.2,"
				  "queue_size=4,long_window=600,rtt_tolerance=1.5");
	ls_algo_destroy(&a);
}

static void retune_is_all_or_nothing(void **state)
{
	struct ls_algo *a = make("aimd", "initial_limit=50");
	char err[256], text[256];

	(void)state;
	assert_int_equal(ls_algo_retune(a, "max_limit=60,min_limit=70", err, sizeof(err)), -EINVAL);
	assert_int_equal(ls_algo_params_text(a, text, sizeof(text)), 0);
	assert_non_null(strstr(text, "min_limit=20,max_limit=200"));
	assert_int_equal(ls_algo_retune(a, "max_limit=50", err, sizeof(err)), 0);
	assert_int_equal(feed(a, 1 * MS_NS, 50, false), 50);
	ls_algo_destroy(&a);
}

static void registry_lists_every_algorithm_with_params(void **state)
{
	(void)state;
	assert_int_equal(ls_algo_count(), 6);
	assert_string_equal(ls_algo_at(0)->name, "fixed");
	assert_string_equal(ls_algo_at(4)->name, "envoy");
	assert_string_equal(ls_algo_at(5)->name, "delay");
	assert_null(ls_algo_at(6));
	assert_true(ls_algo_has_param("gradient2", "rtt_tolerance"));
	assert_true(ls_algo_has_param("vegas", "max_concurrency"));
	assert_true(ls_algo_has_param("delay", "target"));
	assert_false(ls_algo_has_param("fixed", "min_limit"));
	assert_false(ls_algo_has_param("nope", "limit"));
	assert_non_null(ls_algo_find(LS_ALGO_DEFAULT));
}

static void duration_parser_understands_units(void **state)
{
	uint64_t ns = 0;

	(void)state;
	assert_int_equal(ls_parse_duration_ns("5s", &ns), 0);
	assert_int_equal(ns, 5 * S_NS);
	assert_int_equal(ls_parse_duration_ns("500ms", &ns), 0);
	assert_int_equal(ns, 500 * MS_NS);
	assert_int_equal(ls_parse_duration_ns("1.5s", &ns), 0);
	assert_int_equal(ns, 1500 * MS_NS);
	assert_int_equal(ls_parse_duration_ns("100us", &ns), 0);
	assert_int_equal(ns, 100000);
	assert_int_equal(ls_parse_duration_ns("2m", &ns), 0);
	assert_int_equal(ns, 120 * S_NS);
	assert_int_equal(ls_parse_duration_ns("24h", &ns), 0);
	assert_int_equal(ns, 24 * 3600 * S_NS);
	assert_int_equal(ls_parse_duration_ns("5d", &ns), -EINVAL);
	assert_int_equal(ls_parse_duration_ns("5", &ns), -EINVAL);
	assert_int_equal(ls_parse_duration_ns("-5s", &ns), -EINVAL);
	assert_int_equal(ls_parse_duration_ns("s", &ns), -EINVAL);
	assert_int_equal(ls_parse_duration_ns("5 s", &ns), -EINVAL);
}

static void params_have_key_matches_whole_keys_only(void **state)
{
	(void)state;
	assert_true(ls_params_have_key("smoothing=0.2,queue_size=4", "queue_size"));
	assert_true(ls_params_have_key(" smoothing = 0.2", "smoothing"));
	assert_false(ls_params_have_key("min_limit=5", "limit"));
	assert_false(ls_params_have_key("initial_limit=5", "min_limit"));
	assert_false(ls_params_have_key("", "limit"));
}

/* The same bounds in every algorithm: 1 <= min_limit <= initial_limit <= max_limit <= 10^6. */
static void limits_outside_their_bounds_are_refused(void **state)
{
	static const char *const bad[][2] = {
		{"gradient2", "min_limit=0"},
		{"gradient2", "min_limit=0,queue_size=0"},
		{"gradient2", "queue_size=0"},
		{"gradient2", "initial_limit=10"},  /* below the default min_limit 20 */
		{"gradient2", "initial_limit=300"}, /* above the default max_limit 200 */
		{"gradient2", "min_limit=50,max_limit=40"},
		{"gradient2", "max_limit=1000001"},
		{"aimd", "min_limit=0"},
		{"aimd", "initial_limit=201"},
		{"vegas", "initial_limit=2000"},
		{"vegas", "min_limit=0"},
		{"fixed", "limit=0"},
		{"fixed", "limit=1000001"},
	};
	struct ls_algo *a;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (ls_algo_create(bad[i][0], bad[i][1], &a, err, sizeof(err)) != -EINVAL)
			fail_msg("%s with '%s' was accepted", bad[i][0], bad[i][1]);
		assert_null(a);
		assert_true(strlen(err) > 0);
	}
}

/* A default initial limit follows raised bounds instead of refusing them. */
static void default_initial_limit_moves_inside_the_bounds(void **state)
{
	struct ls_algo *a = make("gradient2", "min_limit=50");

	(void)state;
	assert_int_equal(ls_algo_limit(a), 50);
	ls_algo_destroy(&a);
	a = make("aimd", "max_limit=10,min_limit=5");
	assert_int_equal(ls_algo_limit(a), 10);
	ls_algo_destroy(&a);
}

/* A service's limit resumed by a new instance is brought inside the algorithm's bounds. */
static void resumed_limit_is_brought_inside_the_bounds(void **state)
{
	struct ls_algo *a;
	char err[256];

	(void)state;
	assert_int_equal(ls_algo_create_at("gradient2", NULL, 1000000, &a, err, sizeof(err)), 0);
	assert_int_equal(ls_algo_limit(a), 200);
	ls_algo_destroy(&a);
	assert_int_equal(ls_algo_create_at("gradient2", "min_limit=16", 3, &a, err, sizeof(err)),
			 0);
	assert_int_equal(ls_algo_limit(a), 16);
	ls_algo_destroy(&a);
	assert_int_equal(ls_algo_create_at("vegas", NULL, 77, &a, err, sizeof(err)), 0);
	assert_int_equal(ls_algo_limit(a), 77);
	ls_algo_destroy(&a);
	/* A resumed limit wins over a configured initial one: it is where the service is. */
	assert_int_equal(
		ls_algo_create_at("gradient2", "initial_limit=30", 100, &a, err, sizeof(err)), 0);
	assert_int_equal(ls_algo_limit(a), 100);
	ls_algo_destroy(&a);
	/* fixed's limit is its parameter: nothing resumes it. */
	assert_int_equal(ls_algo_create_at("fixed", "limit=50", 500, &a, err, sizeof(err)), 0);
	assert_int_equal(ls_algo_limit(a), 50);
	ls_algo_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(params_have_key_matches_whole_keys_only),
		cmocka_unit_test(fixed_limit_ignores_samples),
		cmocka_unit_test(fixed_retune_changes_limit_at_once),
		cmocka_unit_test(limits_outside_their_bounds_are_refused),
		cmocka_unit_test(default_initial_limit_moves_inside_the_bounds),
		cmocka_unit_test(resumed_limit_is_brought_inside_the_bounds),
		cmocka_unit_test(aimd_initial_limit_is_reported_before_any_sample),
		cmocka_unit_test(aimd_success_with_half_inflight_grows_by_one),
		cmocka_unit_test(aimd_drop_backs_off_by_ratio),
		cmocka_unit_test(aimd_success_at_max_stays_at_max),
		cmocka_unit_test(aimd_rtt_above_timeout_counts_as_drop),
		cmocka_unit_test(aimd_app_limited_sample_changes_nothing),
		cmocka_unit_test(aimd_drop_at_default_min_stays_at_min),
		cmocka_unit_test(aimd_backoff_truncates_toward_zero),
		cmocka_unit_test(vegas_first_sample_only_sets_noload_rtt),
		cmocka_unit_test(vegas_no_queue_grows_by_beta),
		cmocka_unit_test(vegas_long_queue_decreases_by_log10),
		cmocka_unit_test(vegas_queue_between_alpha_and_beta_keeps_limit),
		cmocka_unit_test(vegas_defaults_grow_by_six_log10),
		cmocka_unit_test(vegas_new_minimum_only_sets_noload_rtt),
		cmocka_unit_test(vegas_drop_decreases_by_log10),
		cmocka_unit_test(vegas_app_limited_sample_changes_nothing),
		cmocka_unit_test(vegas_growth_is_clamped_at_max),
		cmocka_unit_test(vegas_smoothing_moves_part_way),
		cmocka_unit_test(vegas_probe_relearns_noload_rtt_within_multiplier_times_limit),
		cmocka_unit_test(vegas_same_seed_gives_same_limits),
		cmocka_unit_test(vegas_zero_rtt_is_ignored),
		cmocka_unit_test(log10_root_matches_upstream_function),
		cmocka_unit_test(expavg_warmup_is_plain_mean_then_exponential),
		cmocka_unit_test(gradient2_steady_rtt_grows_by_smoothing_times_queue),
		cmocka_unit_test(gradient2_ignores_drops),
		cmocka_unit_test(gradient2_app_limited_changes_limit_not_long_rtt),
		cmocka_unit_test(gradient2_shrinks_when_rtt_rises),
		cmocka_unit_test(gradient2_shrink_per_update_is_at_most_a_tenth),
		cmocka_unit_test(gradient2_is_clamped_at_max),
		cmocka_unit_test(gradient2_is_clamped_at_min),
		cmocka_unit_test(gradient2_long_rtt_decays_when_twice_the_short),
		cmocka_unit_test(gradient2_decay_does_not_change_this_update),
		cmocka_unit_test(unknown_algorithm_is_rejected_with_enoent),
		cmocka_unit_test(unknown_parameter_is_rejected),
		cmocka_unit_test(backoff_ratio_outside_half_to_one_is_rejected),
		cmocka_unit_test(min_above_max_is_rejected),
		cmocka_unit_test(timeout_needs_a_unit),
		cmocka_unit_test(malformed_values_are_rejected),
		cmocka_unit_test(netflix_alias_and_spaces_are_accepted),
		cmocka_unit_test(retune_is_all_or_nothing),
		cmocka_unit_test(registry_lists_every_algorithm_with_params),
		cmocka_unit_test(duration_parser_understands_units),
	};

	return cmocka_run_group_tests_name("algo", tests, NULL, NULL);
}
