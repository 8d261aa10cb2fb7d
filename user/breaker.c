// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The circuit breaker's state machine (breaker.h, doc/design.md §15.3). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"

#define NS_PER_S 1000000000ull
#define PPM	 1000000ull

#define OUT_FAILED 1u
#define OUT_SLOW   2u

void ls_brk_conf_default(struct ls_brk_conf *c)
{
	*c = (struct ls_brk_conf){
		.time_based = false,
		.window_size = 100,
		.minimum_calls = 100,
		.failure_rate_ppm = 500000,
		.slow_rate_ppm = 1000000,
		.slow_ns = 60 * NS_PER_S,
		.open_wait_ns = 60 * NS_PER_S,
		.half_open_permits = 10,
		.half_open_max_wait_ns = 0,
	};
}

const char *ls_brk_state_name(uint32_t state)
{
	switch (state) {
	case LS_BRK_CLOSED:
		return "closed";
	case LS_BRK_OPEN:
		return "open";
	case LS_BRK_HALF_OPEN:
		return "half_open";
	}
	return "unknown";
}

static void window_clear(struct ls_brk *b)
{
	b->ring_head = b->ring_len = 0;
	b->expired_sec = 0;
	if (b->buckets)
		memset(b->buckets, 0, b->conf.window_size * sizeof(*b->buckets));
	b->window = (struct ls_brk_counts){0};
	b->trials = (struct ls_brk_counts){0};
}

int ls_brk_init(struct ls_brk *b, const struct ls_brk_conf *c, uint64_t now_ns, char *err,
		size_t errlen)
{
	uint32_t max = c->time_based ? LS_BRK_MAX_WINDOW_S : LS_BRK_MAX_WINDOW_CALLS;

	memset(b, 0, sizeof(*b));
	if (!c->window_size || c->window_size > max) {
		snprintf(err, errlen, "sliding_window_size must be 1..%u", max);
		return -EINVAL;
	}
	if (!c->minimum_calls || !c->half_open_permits ||
	    c->half_open_permits > LS_BRK_MAX_PERMITS) {
		snprintf(err, errlen,
			 "minimum_number_of_calls and the half-open permits must be > 0");
		return -EINVAL;
	}
	if (!c->failure_rate_ppm || c->failure_rate_ppm > PPM || !c->slow_rate_ppm ||
	    c->slow_rate_ppm > PPM) {
		snprintf(err, errlen, "rate thresholds must be in (0, 100%%]");
		return -EINVAL;
	}
	b->conf = *c;
	/* resilience4j: a count-based window never needs more calls than it holds. */
	if (!c->time_based && b->conf.minimum_calls > c->window_size)
		b->conf.minimum_calls = c->window_size;
	if (c->time_based)
		b->buckets = calloc(c->window_size, sizeof(*b->buckets));
	else
		b->ring = calloc(c->window_size, 1);
	if (!b->buckets && !b->ring) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b->state = LS_BRK_CLOSED;
	b->since_ns = now_ns;
	return 0;
}

void ls_brk_free(struct ls_brk *b)
{
	free(b->ring);
	free(b->buckets);
	b->ring = NULL;
	b->buckets = NULL;
}

void ls_brk_transition(struct ls_brk *b, enum ls_brk_state state, uint64_t now_ns)
{
	if (state == LS_BRK_OPEN)
		b->to_open++;
	else if (state == LS_BRK_HALF_OPEN)
		b->to_half_open++;
	else
		b->to_closed++;
	b->state = state;
	b->since_ns = now_ns;
	window_clear(b);
}

static void counts_add(struct ls_brk_counts *n, unsigned int out, int sign)
{
	n->calls += (uint64_t)sign;
	if (out & OUT_FAILED)
		n->failures += (uint64_t)sign;
	if (out & OUT_SLOW)
		n->slow += (uint64_t)sign;
}

/* Buckets older than the window leave it: the last window_size seconds, this one included. */
static void buckets_expire(struct ls_brk *b, uint64_t sec)
{
	/* Once a second: per outcome it would cost window_size (up to 3600) each. */
	if (sec == b->expired_sec)
		return;
	b->expired_sec = sec;
	for (uint32_t i = 0; i < b->conf.window_size; i++) {
		struct ls_brk_bucket *k = &b->buckets[i];

		if (k->n.calls && k->sec + b->conf.window_size <= sec) {
			b->window.calls -= k->n.calls;
			b->window.failures -= k->n.failures;
			b->window.slow -= k->n.slow;
			memset(k, 0, sizeof(*k));
		}
	}
}

static void window_add(struct ls_brk *b, uint64_t now_ns, unsigned int out)
{
	if (b->conf.time_based) {
		uint64_t sec = now_ns / NS_PER_S;
		struct ls_brk_bucket *k = &b->buckets[sec % b->conf.window_size];

		buckets_expire(b, sec);
		k->sec = sec;
		counts_add(&k->n, out, 1);
	} else {
		uint32_t size = b->conf.window_size;

		if (b->ring_len == size) {
			/* The oldest outcome leaves the window; the new one takes its place. */
			counts_add(&b->window, b->ring[b->ring_head], -1);
			b->ring[b->ring_head] = (uint8_t)out;
			b->ring_head = (b->ring_head + 1) % size;
		} else {
			b->ring[(b->ring_head + b->ring_len) % size] = (uint8_t)out;
			b->ring_len++;
		}
	}
	counts_add(&b->window, out, 1);
}

static int64_t rate_ppm(uint64_t part, uint64_t calls, uint64_t minimum)
{
	if (!calls || calls < minimum)
		return -1;
	return (int64_t)(part * PPM / calls);
}

int64_t ls_brk_failure_rate_ppm(const struct ls_brk *b)
{
	if (b->state == LS_BRK_HALF_OPEN)
		return rate_ppm(b->trials.failures, b->trials.calls, b->conf.half_open_permits);
	return rate_ppm(b->window.failures, b->window.calls, b->conf.minimum_calls);
}

int64_t ls_brk_slow_rate_ppm(const struct ls_brk *b)
{
	if (b->state == LS_BRK_HALF_OPEN)
		return rate_ppm(b->trials.slow, b->trials.calls, b->conf.half_open_permits);
	return rate_ppm(b->window.slow, b->window.calls, b->conf.minimum_calls);
}

/* Whether the rates (each -1 when too few calls) call for OPEN. */
static bool over_threshold(const struct ls_brk *b)
{
	int64_t f = ls_brk_failure_rate_ppm(b), s = ls_brk_slow_rate_ppm(b);

	return (f >= 0 && f >= b->conf.failure_rate_ppm) || (s >= 0 && s >= b->conf.slow_rate_ppm);
}

static void record_one(struct ls_brk *b, uint64_t now_ns, unsigned int out)
{
	switch (b->state) {
	case LS_BRK_CLOSED:
		window_add(b, now_ns, out);
		if (over_threshold(b))
			ls_brk_transition(b, LS_BRK_OPEN, now_ns);
		break;
	case LS_BRK_HALF_OPEN:
		counts_add(&b->trials, out, 1);
		if (b->trials.calls >= b->conf.half_open_permits)
			ls_brk_transition(b, over_threshold(b) ? LS_BRK_OPEN : LS_BRK_CLOSED,
					  now_ns);
		break;
	case LS_BRK_OPEN:
		/* Calls that started before it opened: nothing to decide. */
		break;
	}
}

enum ls_brk_state ls_brk_record(struct ls_brk *b, uint64_t now_ns, uint64_t calls,
				uint64_t failures, uint64_t slow)
{
	uint64_t ok, slow_ok, slow_failed;

	if (failures > calls)
		failures = calls;
	if (slow > calls)
		slow = calls;
	ok = calls - failures;
	slow_ok = slow < ok ? slow : ok;
	slow_failed = slow - slow_ok;
	for (uint64_t i = 0; i < calls; i++) {
		unsigned int out;

		if (i < ok - slow_ok)
			out = 0;
		else if (i < ok)
			out = OUT_SLOW;
		else if (i < ok + slow_failed)
			out = OUT_FAILED | OUT_SLOW;
		else
			out = OUT_FAILED;
		record_one(b, now_ns, out);
		/* Opened: the rest started before, nothing to decide (and 2^64 of them is no loop).
		 */
		if (b->state == LS_BRK_OPEN)
			break;
	}
	return b->state;
}

enum ls_brk_state ls_brk_tick(struct ls_brk *b, uint64_t now_ns)
{
	uint64_t age = now_ns - b->since_ns;

	if (b->state == LS_BRK_OPEN && age >= b->conf.open_wait_ns)
		ls_brk_transition(b, LS_BRK_HALF_OPEN, now_ns);
	else if (b->state == LS_BRK_HALF_OPEN && b->conf.half_open_max_wait_ns &&
		 age >= b->conf.half_open_max_wait_ns)
		ls_brk_transition(b, LS_BRK_OPEN, now_ns);
	else if (b->state == LS_BRK_CLOSED && b->conf.time_based)
		buckets_expire(b, now_ns / NS_PER_S);
	return b->state;
}
