/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An upstream's circuit breaker as resilience4j's CircuitBreaker, pure:
 * no maps, no clock but the one it is given (doc/design.md §15.3).
 *
 *   CLOSED -> OPEN        when the sliding window holds at least
 *                         minimum_number_of_calls and the failure rate or
 *                         the slow-call rate is at or above its threshold
 *   OPEN -> HALF_OPEN     wait_duration_in_open_state after it opened (the
 *                         agent's round asks: the transition is automatic)
 *   HALF_OPEN -> CLOSED   once the permitted trial calls have an outcome and
 *   HALF_OPEN -> OPEN     both rates are below / one is at or above its
 *                         threshold; or to OPEN after
 *                         max_wait_duration_in_half_open_state (0: never)
 * Each transition starts an empty window.
 */
#ifndef LS_USER_BREAKER_H
#define LS_USER_BREAKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loadshed_breaker.h"

/* Bounds of the settings (config.c checks them, ls_brk_init too). */
#define LS_BRK_MAX_WINDOW_CALLS 100000
#define LS_BRK_MAX_WINDOW_S	3600
#define LS_BRK_MAX_PERMITS	100000

struct ls_brk_conf {
	bool time_based;		/* sliding_window_type = time_based */
	uint32_t window_size;		/* calls, or seconds */
	uint32_t minimum_calls;		/* minimum_number_of_calls */
	uint32_t failure_rate_ppm;	/* failure_rate_threshold */
	uint32_t slow_rate_ppm;		/* slow_call_rate_threshold */
	uint64_t slow_ns;		/* slow_call_duration_threshold */
	uint64_t open_wait_ns;		/* wait_duration_in_open_state */
	uint32_t half_open_permits;	/* permitted_number_of_calls_in_half_open_state */
	uint64_t half_open_max_wait_ns; /* max_wait_duration_in_half_open_state; 0: none */
};

/* resilience4j's defaults (design.md §15.3). */
void ls_brk_conf_default(struct ls_brk_conf *c);

/* Outcomes of a window: calls, and of them the failed and the slow ones. */
struct ls_brk_counts {
	uint64_t calls, failures, slow;
};

struct ls_brk_bucket {
	uint64_t sec; /* the second it counts (time-based) */
	struct ls_brk_counts n;
};

struct ls_brk {
	struct ls_brk_conf conf;
	enum ls_brk_state state;
	uint64_t since_ns; /* when it entered state */
	/* count-based: a ring of outcomes, bit 0 failed, bit 1 slow */
	uint8_t *ring;
	uint32_t ring_head, ring_len;
	/* time-based: a bucket per second */
	struct ls_brk_bucket *buckets;
	uint64_t expired_sec;	     /* the second buckets were last expired at */
	struct ls_brk_counts window; /* sums of the ring or of the live buckets */
	struct ls_brk_counts trials; /* HALF_OPEN */
	uint64_t to_open, to_half_open, to_closed;
};

/* 0, or -EINVAL (err says which setting) or -ENOMEM. Starts CLOSED at now_ns. */
int ls_brk_init(struct ls_brk *b, const struct ls_brk_conf *c, uint64_t now_ns, char *err,
		size_t errlen);
void ls_brk_free(struct ls_brk *b);

/*
 * Records outcomes that ended by now_ns: ok calls answered in time, slow
 * of the calls answered or failed late, failed of them failed; one at a
 * time in this order: answered in time, answered late, failed late,
 * failed. Returns the state after them.
 */
enum ls_brk_state ls_brk_record(struct ls_brk *b, uint64_t now_ns, uint64_t calls,
				uint64_t failures, uint64_t slow);

/* Time-driven transitions (OPEN -> HALF_OPEN, HALF_OPEN -> OPEN); the state after. */
enum ls_brk_state ls_brk_tick(struct ls_brk *b, uint64_t now_ns);

/* Moves to state at now_ns with an empty window (the operator's open/close). */
void ls_brk_transition(struct ls_brk *b, enum ls_brk_state state, uint64_t now_ns);

/* The window's rates in ppm, or -1 below the minimum number of calls. */
int64_t ls_brk_failure_rate_ppm(const struct ls_brk *b);
int64_t ls_brk_slow_rate_ppm(const struct ls_brk *b);

const char *ls_brk_state_name(uint32_t state);

#endif /* LS_USER_BREAKER_H */
