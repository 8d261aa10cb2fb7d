// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The autoscaling signal: offered work over the capacity Little's law gives (user/demand.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "demand.h"

#define MS 1000000ull
#define S  (1000 * MS)

/* A service run for secs at fixed rates, one round every round_ns. */
struct run {
	struct ls_demand d;
	uint64_t now_ns;
	double offered, admitted; /* cumulative, fractional: exact rates */
};

static void run_for(struct run *r, double secs, uint64_t round_ns, double offered_per_s,
		    double admitted_per_s, double inflight, double limit)
{
	uint64_t end = r->now_ns + (uint64_t)(secs * S);

	while (r->now_ns < end) {
		struct ls_demand_sample s;

		r->now_ns += round_ns;
		r->offered += offered_per_s * round_ns / S;
		r->admitted += admitted_per_s * round_ns / S;
		s = (struct ls_demand_sample){
			.now_ns = r->now_ns,
			.offered = (uint64_t)r->offered,
			.admitted = (uint64_t)r->admitted,
			.inflight = inflight,
			.limit = limit,
		};
		ls_demand_update(&r->d, &s);
	}
}

static void assert_near(double got, double want, double rel)
{
	if (fabs(got - want) > rel * fabs(want))
		fail_msg("%f is not within %.1f %% of %f", got, rel * 100, want);
}

/* Nothing offered: ratio 0, capacity unknown (NaN), never a division by zero. */
static void idle_service_has_ratio_zero_and_unknown_capacity(void **state)
{
	struct run r = {.now_ns = 1000 * S};

	(void)state;
	run_for(&r, 30, 100 * MS, 0, 0, 0, 20);
	assert_true(ls_demand_ratio(&r.d) == 0);
	assert_true(isnan(ls_demand_capacity_per_s(&r.d)));
	assert_true(ls_demand_offered_per_s(&r.d) == 0);
}

/* 3x overload: L = 10 full, 100/s served, 300/s offered: the ratio is 3, capacity 100/s. */
static void overload_while_shedding_is_offered_over_served(void **state)
{
	struct run r = {.now_ns = 1000 * S};

	(void)state;
	run_for(&r, 60, 100 * MS, 300, 100, 10, 10);
	assert_near(ls_demand_offered_per_s(&r.d), 300, 0.02);
	assert_near(ls_demand_capacity_per_s(&r.d), 100, 0.02);
	assert_near(ls_demand_ratio(&r.d), 3, 0.02);
}

/*
 * Half load: nothing shed, 5 of L = 10 in flight at 50/s: each unit spends
 * 100 ms in flight, so the limit serves 100/s and the ratio is 0.5.
 */
static void underload_is_the_fill_of_the_limit(void **state)
{
	struct run r = {.now_ns = 1000 * S};

	(void)state;
	run_for(&r, 60, 100 * MS, 50, 50, 5, 10);
	assert_near(ls_demand_capacity_per_s(&r.d), 100, 0.02);
	assert_near(ls_demand_ratio(&r.d), 0.5, 0.02);
}

/* An agent started on counters of millions sees rates, not one huge first delta. */
static void first_sample_is_a_baseline(void **state)
{
	struct run r = {.now_ns = 1000 * S, .offered = 5e9, .admitted = 4e9};

	(void)state;
	run_for(&r, 0.1, 100 * MS, 0, 0, 0, 10);
	run_for(&r, 1, 100 * MS, 10, 10, 1, 10);
	assert_true(ls_demand_offered_per_s(&r.d) < 10);
	assert_true(ls_demand_offered_per_s(&r.d) > 0);
}

/* Counters that go back (a re-attach) take a new baseline: no negative or wrapped rate. */
static void counters_going_back_take_a_new_baseline(void **state)
{
	struct run r = {.now_ns = 1000 * S};

	(void)state;
	run_for(&r, 30, 100 * MS, 200, 100, 10, 10);
	r.offered = 0;
	r.admitted = 0;
	run_for(&r, 0.1, 100 * MS, 0, 0, 10, 10);
	assert_near(ls_demand_offered_per_s(&r.d), 200, 0.05);
	run_for(&r, 30, 100 * MS, 200, 100, 10, 10);
	assert_near(ls_demand_ratio(&r.d), 2, 0.02);
}

/*
 * Smoothed over LS_DEMAND_TAU_NS: a step from 1x to 3x shows 63 % of the
 * step after one time constant, all of it after five; a one-round burst
 * moves it little.
 */
static void a_step_shows_after_the_time_constant(void **state)
{
	struct run r = {.now_ns = 1000 * S};
	double tau = LS_DEMAND_TAU_NS / (double)S;

	(void)state;
	run_for(&r, 60, 100 * MS, 100, 100, 10, 10);
	assert_near(ls_demand_ratio(&r.d), 1, 0.02);
	run_for(&r, tau, 100 * MS, 300, 100, 10, 10);
	assert_near(ls_demand_ratio(&r.d), 1 + 2 * (1 - exp(-1)), 0.03);
	run_for(&r, 4 * tau, 100 * MS, 300, 100, 10, 10);
	assert_near(ls_demand_ratio(&r.d), 3, 0.03);

	memset(&r, 0, sizeof(r));
	r.now_ns = 1000 * S;
	run_for(&r, 60, 100 * MS, 100, 100, 10, 10);
	run_for(&r, 0.1, 100 * MS, 5000, 100, 10, 10); /* 500 attempts in one round */
	run_for(&r, 0.1, 100 * MS, 100, 100, 10, 10);
	assert_true(ls_demand_ratio(&r.d) < 2);
}

/* The same load read every 100 ms or every second gives the same signal. */
static void round_length_does_not_change_the_signal(void **state)
{
	struct run fast = {.now_ns = 1000 * S}, slow = {.now_ns = 1000 * S};

	(void)state;
	run_for(&fast, 20, 100 * MS, 100, 100, 10, 10);
	run_for(&slow, 20, 1000 * MS, 100, 100, 10, 10);
	run_for(&fast, 3, 100 * MS, 400, 100, 10, 10);
	run_for(&slow, 3, 1000 * MS, 400, 100, 10, 10);
	assert_near(ls_demand_ratio(&fast.d), ls_demand_ratio(&slow.d), 0.02);
}

/*
 * Work admitted and nothing ever seen in flight (each unit done within a
 * round): capacity has no measurable bound, +Inf, and the ratio is the fill
 * of the limit, 0 — not NaN.
 */
static void work_never_in_flight_has_infinite_capacity_and_ratio_zero(void **state)
{
	struct run r = {.now_ns = 1000 * S};

	(void)state;
	run_for(&r, 30, 100 * MS, 500, 500, 0, 20);
	assert_true(isinf(ls_demand_capacity_per_s(&r.d)) && ls_demand_capacity_per_s(&r.d) > 0);
	assert_true(ls_demand_ratio(&r.d) == 0);
	assert_near(ls_demand_offered_per_s(&r.d), 500, 0.01);
}

/* All work shed and none completing (a hung service, L full): +Inf, not a finite guess. */
static void nothing_served_is_infinite(void **state)
{
	struct run r = {.now_ns = 1000 * S};

	(void)state;
	run_for(&r, 120, 100 * MS, 100, 0, 10, 10);
	assert_true(ls_demand_capacity_per_s(&r.d) < 1e-3);
	assert_true(isinf(ls_demand_ratio(&r.d)));
}

/* Shadow mode admits everything: 20 in flight against L = 10 is a ratio of 2. */
static void shadow_mode_shows_inflight_over_the_limit(void **state)
{
	struct run r = {.now_ns = 1000 * S};

	(void)state;
	run_for(&r, 60, 100 * MS, 200, 200, 20, 10);
	assert_near(ls_demand_ratio(&r.d), 2, 0.02);
}

/*
 * A class's demand in flight: what it holds scaled by offered over admitted
 * (the shed work would stay as long); what it holds when nothing new comes;
 * +Inf when none is admitted.
 */
static void demand_in_flight_scales_what_is_held_by_offered_over_admitted(void **state)
{
	struct run r = {.now_ns = 1000 * S};

	(void)state;
	run_for(&r, 1, 100 * MS, 0, 0, 0, 20);
	assert_true(ls_demand_inflight(&r.d) == 0);
	/* Long-lived connections, nothing new: what they hold. */
	run_for(&r, 60, 100 * MS, 0, 0, 3, 20);
	assert_near(ls_demand_inflight(&r.d), 3, 0.02);
	/* 300 offered, 100 admitted, 8 held: the offered work would hold 24. */
	run_for(&r, 60, 100 * MS, 300, 100, 8, 20);
	assert_near(ls_demand_inflight(&r.d), 24, 0.02);
	/* Nothing shed: what it holds. */
	run_for(&r, 60, 100 * MS, 100, 100, 13, 20);
	assert_near(ls_demand_inflight(&r.d), 13, 0.02);
	/* Offered and none admitted: unknown how long it would stay. */
	run_for(&r, 120, 100 * MS, 100, 0, 0, 20);
	assert_true(isinf(ls_demand_inflight(&r.d)));
}

/*
 * 600 rounds of 100 ms from now, in-flight alternating between a (odd
 * rounds) and b; returns the last round's time.
 */
static uint64_t alternate(struct ls_demand *d, uint64_t now, double a, double b)
{
	for (int i = 0; i < 600; i++) {
		struct ls_demand_sample s = {.now_ns = now += 100 * MS, .inflight = i % 2 ? a : b};

		ls_demand_update(d, &s);
	}
	return now;
}

/*
 * Jitter: in-flight alternating between 10 and 16 moves by 6 each sample,
 * an Allan deviation of sqrt(36 / 2) = 4.24 (its standard deviation is 3);
 * a held count has none, and a step counts in its own sample only.
 */
static void jitter_is_the_change_between_samples(void **state)
{
	struct ls_demand d = {0};
	uint64_t now = 1000 * S;

	(void)state;
	now = alternate(&d, now, 16, 10);
	assert_near(ls_demand_jitter(&d), sqrt(18), 0.02);
	assert_near(d.inflight, 13, 0.05);
	for (int i = 0; i < 600; i++) {
		struct ls_demand_sample s = {.now_ns = now += 100 * MS, .inflight = 40};

		ls_demand_update(&d, &s);
	}
	assert_true(ls_demand_jitter(&d) < 0.05); /* e^-6 of the 4.24 and of the step */
	/* A shorter time constant forgets faster: after 1 s at a step of 20. */
	struct ls_demand fast = {.tau_ns = 500 * MS}, slow = {0};
	for (int i = 0; i < 20; i++) {
		struct ls_demand_sample s = {.now_ns = now += 100 * MS,
					     .inflight = i < 10 ? 0 : 20};

		ls_demand_update(&fast, &s);
		ls_demand_update(&slow, &s);
	}
	assert_near(fast.inflight, 20 * (1 - exp(-2)), 0.02);
	assert_near(slow.inflight, 20 * (1 - exp(-0.2)), 0.02);
}

/*
 * The in-flight counters are s32 and briefly negative when a slot is given
 * back before the take is seen: a negative count is none, in the average
 * and in the jitter (10 then -5 moves by 10, not 15). Counters that go back
 * (a re-attach) restart the rates' baseline and add no step to the jitter.
 */
static void negative_in_flight_is_none_and_a_reset_adds_no_jitter(void **state)
{
	struct ls_demand d = {0};
	uint64_t now = 1000 * S;

	(void)state;
	now = alternate(&d, now, -5, 10);
	assert_near(ls_demand_jitter(&d), sqrt(50), 0.02);
	assert_near(d.inflight, 5, 0.05);
	assert_true(ls_demand_inflight(&d) >= 0);

	d = (struct ls_demand){0};
	for (int i = 0; i < 100; i++) {
		struct ls_demand_sample s = {.now_ns = now += 100 * MS,
					     .offered = 1000 + 10 * i,
					     .admitted = 1000 + 10 * i,
					     .inflight = 4};

		ls_demand_update(&d, &s);
	}
	/* Counters back to 0 and in-flight at 30 in the same sample: a new baseline. */
	struct ls_demand_sample back = {.now_ns = now += 100 * MS, .inflight = 30};
	double jitter = ls_demand_jitter(&d), rate = d.offered_per_s;

	ls_demand_update(&d, &back);
	assert_true(ls_demand_jitter(&d) == jitter);
	assert_true(d.offered_per_s == rate);
	/* The next sample measures from it: no step of 26 (4 to 30), no rate from the reset. */
	back.now_ns = now += 100 * MS;
	back.offered = back.admitted = 10;
	ls_demand_update(&d, &back);
	assert_true(ls_demand_jitter(&d) == 0);
	assert_near(d.offered_per_s, rate, 0.05); /* on towards 100/s, as before */
	assert_true(d.offered_per_s > rate);
}

/*
 * Which counters are offered work. Connections: admitted and both sheds
 * (requests measured on them are not the unit). Requests: starts, aborted,
 * expired, abandoned; `deferred` counts every retransmission of a deferred
 * request, which is offered once, when it starts, expires or is abandoned.
 */
static void counts_take_the_service_unit_and_unique_attempts(void **state)
{
	struct ls_class_stats s = {
		.admitted = 10,
		.adopted = 1000,
		.shed_drop = 3,
		.shed_reset = 4,
		.would_shed = 2,
		.requests = 100,
		.deferred = 70,
		.aborted = 5,
		.expired = 6,
		.abandoned = 7,
		.syns = 9999,
	};
	uint64_t off, adm;

	(void)state;
	ls_demand_counts(&s, LS_ADMIT_CONNECTIONS, &off, &adm);
	assert_int_equal(adm, 10);
	assert_int_equal(off, 17);
	ls_demand_counts(&s, LS_ADMIT_REQUESTS, &off, &adm);
	assert_int_equal(adm, 100);
	assert_int_equal(off, 118);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(idle_service_has_ratio_zero_and_unknown_capacity),
		cmocka_unit_test(work_never_in_flight_has_infinite_capacity_and_ratio_zero),
		cmocka_unit_test(overload_while_shedding_is_offered_over_served),
		cmocka_unit_test(underload_is_the_fill_of_the_limit),
		cmocka_unit_test(first_sample_is_a_baseline),
		cmocka_unit_test(counters_going_back_take_a_new_baseline),
		cmocka_unit_test(a_step_shows_after_the_time_constant),
		cmocka_unit_test(round_length_does_not_change_the_signal),
		cmocka_unit_test(nothing_served_is_infinite),
		cmocka_unit_test(shadow_mode_shows_inflight_over_the_limit),
		cmocka_unit_test(demand_in_flight_scales_what_is_held_by_offered_over_admitted),
		cmocka_unit_test(jitter_is_the_change_between_samples),
		cmocka_unit_test(negative_in_flight_is_none_and_a_reset_adds_no_jitter),
		cmocka_unit_test(counts_take_the_service_unit_and_unique_attempts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
