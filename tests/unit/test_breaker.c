// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The circuit breaker's state machine, transition by transition, with exact counts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "breaker.h"

#define MS_NS 1000000ull
#define S_NS  1000000000ull

static struct ls_brk_conf small(void)
{
	struct ls_brk_conf c;

	ls_brk_conf_default(&c);
	c.window_size = 10;
	c.minimum_calls = 10;
	c.open_wait_ns = 5 * S_NS;
	c.half_open_permits = 3;
	c.slow_ns = 100 * MS_NS;
	return c;
}

static void make(struct ls_brk *b, const struct ls_brk_conf *c)
{
	char err[128];

	assert_int_equal(ls_brk_init(b, c, 1 * S_NS, err, sizeof(err)), 0);
}

static void defaults_are_resilience4j_s(void **state)
{
	struct ls_brk_conf c;

	(void)state;
	ls_brk_conf_default(&c);
	assert_false(c.time_based);
	assert_int_equal(c.window_size, 100);
	assert_int_equal(c.minimum_calls, 100);
	assert_int_equal(c.failure_rate_ppm, 500000);
	assert_int_equal(c.slow_rate_ppm, 1000000);
	assert_int_equal(c.slow_ns, 60 * S_NS);
	assert_int_equal(c.open_wait_ns, 60 * S_NS);
	assert_int_equal(c.half_open_permits, 10);
	assert_int_equal(c.half_open_max_wait_ns, 0);
}

static void closed_stays_closed_below_minimum_calls(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	make(&b, &c);
	/* Nine failures of nine: no rate until ten calls. */
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 9, 9, 0), LS_BRK_CLOSED);
	assert_int_equal(ls_brk_failure_rate_ppm(&b), -1);
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 1, 0, 0), LS_BRK_OPEN);
	assert_int_equal(b.to_open, 1);
	ls_brk_free(&b);
}

static void closed_opens_at_exactly_the_failure_threshold(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	make(&b, &c);
	/* 5 successes then 4 failures: 9 calls. The 10th, a failure, makes 50 %: open. */
	ls_brk_record(&b, 2 * S_NS, 5, 0, 0);
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 4, 4, 0), LS_BRK_CLOSED);
	assert_int_equal(ls_brk_record(&b, 3 * S_NS, 1, 1, 0), LS_BRK_OPEN);
	assert_int_equal(b.since_ns, 3 * S_NS);
	assert_int_equal(b.to_open, 1);
	assert_int_equal(b.window.calls, 0); /* a new state starts an empty window */
	ls_brk_free(&b);
}

static void closed_stays_closed_just_below_the_threshold(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	make(&b, &c);
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 10, 4, 0), LS_BRK_CLOSED);
	assert_int_equal(ls_brk_failure_rate_ppm(&b), 400000);
	ls_brk_free(&b);
}

static void count_window_forgets_the_oldest_call(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	make(&b, &c);
	/* 4 failures, then 10 successes push them all out of the 10-call window. */
	ls_brk_record(&b, 2 * S_NS, 4, 4, 0);
	ls_brk_record(&b, 2 * S_NS, 10, 0, 0);
	assert_int_equal(b.window.calls, 10);
	assert_int_equal(b.window.failures, 0);
	/* 4 failures: 40 %, closed; the 5th: 50 %, open. */
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 4, 4, 0), LS_BRK_CLOSED);
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 1, 1, 0), LS_BRK_OPEN);
	ls_brk_free(&b);
}

static void closed_opens_on_the_slow_call_rate(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	c.slow_rate_ppm = 800000;
	make(&b, &c);
	/* 10 answered calls, 7 slow: 70 % < 80 %. */
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 10, 0, 7), LS_BRK_CLOSED);
	assert_int_equal(ls_brk_slow_rate_ppm(&b), 700000);
	/* One more slow call replaces a fast one: 80 %. */
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 1, 0, 1), LS_BRK_OPEN);
	ls_brk_free(&b);
}

static void minimum_calls_is_capped_by_a_count_window(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	c.minimum_calls = 1000;
	make(&b, &c);
	assert_int_equal(b.conf.minimum_calls, 10);
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 10, 10, 0), LS_BRK_OPEN);
	ls_brk_free(&b);
}

static void open_waits_then_goes_half_open(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	make(&b, &c);
	ls_brk_record(&b, 2 * S_NS, 10, 10, 0);
	assert_int_equal(ls_brk_tick(&b, 7 * S_NS - 1), LS_BRK_OPEN);
	/* Outcomes of calls begun before it opened decide nothing. */
	assert_int_equal(ls_brk_record(&b, 7 * S_NS - 1, 5, 0, 0), LS_BRK_OPEN);
	assert_int_equal(ls_brk_tick(&b, 7 * S_NS), LS_BRK_HALF_OPEN);
	assert_int_equal(b.to_half_open, 1);
	ls_brk_free(&b);
}

static struct ls_brk half_open(struct ls_brk_conf *c)
{
	struct ls_brk b;

	make(&b, c);
	ls_brk_record(&b, 2 * S_NS, 10, 10, 0);
	ls_brk_tick(&b, 7 * S_NS);
	assert_int_equal(b.state, LS_BRK_HALF_OPEN);
	return b;
}

static void half_open_closes_after_the_permitted_calls_succeed(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b = half_open(&c);

	(void)state;
	assert_int_equal(ls_brk_record(&b, 8 * S_NS, 2, 0, 0), LS_BRK_HALF_OPEN);
	/* The third trial, failed: 1 of 3 is 33 % < 50 %. */
	assert_int_equal(ls_brk_record(&b, 8 * S_NS, 1, 1, 0), LS_BRK_CLOSED);
	assert_int_equal(b.to_closed, 1);
	assert_int_equal(b.window.calls, 0);
	ls_brk_free(&b);
}

static void half_open_reopens_when_trials_fail(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b = half_open(&c);

	(void)state;
	/* 2 failures of 3: 67 % >= 50 %. */
	assert_int_equal(ls_brk_record(&b, 8 * S_NS, 3, 2, 0), LS_BRK_OPEN);
	assert_int_equal(b.to_open, 2);
	assert_int_equal(b.since_ns, 8 * S_NS);
	ls_brk_free(&b);
}

static void half_open_reopens_when_trials_are_slow(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b = half_open(&c);

	(void)state;
	assert_int_equal(ls_brk_record(&b, 8 * S_NS, 3, 0, 3), LS_BRK_OPEN);
	ls_brk_free(&b);
}

static void half_open_reopens_after_its_max_wait(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	c.half_open_max_wait_ns = 2 * S_NS;
	b = half_open(&c);
	ls_brk_record(&b, 8 * S_NS, 1, 0, 0);
	assert_int_equal(ls_brk_tick(&b, 9 * S_NS - 1), LS_BRK_HALF_OPEN);
	assert_int_equal(ls_brk_tick(&b, 9 * S_NS), LS_BRK_OPEN);
	ls_brk_free(&b);
}

static void half_open_waits_for_every_trial_without_max_wait(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b = half_open(&c);

	(void)state;
	assert_int_equal(ls_brk_tick(&b, 3600 * S_NS), LS_BRK_HALF_OPEN);
	ls_brk_free(&b);
}

static void time_window_counts_the_last_seconds(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	c.time_based = true;
	c.window_size = 2; /* seconds */
	c.minimum_calls = 4;
	make(&b, &c);
	/* 3 failures at second 10: below the minimum. */
	assert_int_equal(ls_brk_record(&b, 10 * S_NS, 3, 3, 0), LS_BRK_CLOSED);
	/* At second 12 they have left the window: 1 failure of 4 stays closed. */
	assert_int_equal(ls_brk_record(&b, 12 * S_NS, 4, 1, 0), LS_BRK_CLOSED);
	assert_int_equal(b.window.calls, 4);
	/* Second 13 still sees second 12: 2 more failures, 3 of 6 is 50 %. */
	assert_int_equal(ls_brk_record(&b, 13 * S_NS, 1, 1, 0), LS_BRK_CLOSED);
	assert_int_equal(ls_brk_record(&b, 13 * S_NS, 1, 1, 0), LS_BRK_OPEN);
	ls_brk_free(&b);
}

/* Outcomes after the one that opens the circuit decide nothing: 2^40 of them cost no more. */
static void a_huge_batch_stops_where_it_opens(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	make(&b, &c);
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 1ull << 40, 1ull << 40, 0), LS_BRK_OPEN);
	assert_int_equal(b.to_open, 1);
	ls_brk_free(&b);
	c.time_based = true;
	c.window_size = 3600;
	make(&b, &c);
	assert_int_equal(ls_brk_record(&b, 2 * S_NS, 1ull << 40, 1ull << 40, 0), LS_BRK_OPEN);
	ls_brk_free(&b);
}

static void operator_transition_starts_an_empty_window(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;

	(void)state;
	make(&b, &c);
	ls_brk_record(&b, 2 * S_NS, 9, 9, 0);
	ls_brk_transition(&b, LS_BRK_OPEN, 3 * S_NS);
	ls_brk_transition(&b, LS_BRK_CLOSED, 4 * S_NS);
	assert_int_equal(b.window.calls, 0);
	assert_int_equal(ls_brk_record(&b, 5 * S_NS, 1, 1, 0), LS_BRK_CLOSED);
	assert_int_equal(b.to_open, 1);
	assert_int_equal(b.to_closed, 1);
	ls_brk_free(&b);
}

static void bad_settings_are_refused(void **state)
{
	struct ls_brk_conf c = small();
	struct ls_brk b;
	char err[128];

	(void)state;
	c.window_size = 0;
	assert_int_equal(ls_brk_init(&b, &c, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "sliding_window_size"));
	c = small();
	c.failure_rate_ppm = 0;
	assert_int_equal(ls_brk_init(&b, &c, 0, err, sizeof(err)), -EINVAL);
	c = small();
	c.half_open_permits = 0;
	assert_int_equal(ls_brk_init(&b, &c, 0, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_resilience4j_s),
		cmocka_unit_test(closed_stays_closed_below_minimum_calls),
		cmocka_unit_test(closed_opens_at_exactly_the_failure_threshold),
		cmocka_unit_test(closed_stays_closed_just_below_the_threshold),
		cmocka_unit_test(count_window_forgets_the_oldest_call),
		cmocka_unit_test(closed_opens_on_the_slow_call_rate),
		cmocka_unit_test(minimum_calls_is_capped_by_a_count_window),
		cmocka_unit_test(open_waits_then_goes_half_open),
		cmocka_unit_test(half_open_closes_after_the_permitted_calls_succeed),
		cmocka_unit_test(half_open_reopens_when_trials_fail),
		cmocka_unit_test(half_open_reopens_when_trials_are_slow),
		cmocka_unit_test(half_open_reopens_after_its_max_wait),
		cmocka_unit_test(half_open_waits_for_every_trial_without_max_wait),
		cmocka_unit_test(time_window_counts_the_last_seconds),
		cmocka_unit_test(a_huge_batch_stops_where_it_opens),
		cmocka_unit_test(operator_transition_starts_an_empty_window),
		cmocka_unit_test(bad_settings_are_refused),
	};

	return cmocka_run_group_tests_name("breaker", tests, NULL, NULL);
}
