/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The autoscaling signal: the demand a service sees over what it can
 * serve, smoothed over a few seconds. Pure arithmetic on counters the
 * agent reads each round; no I/O (design.md §7.7).
 *
 *   offered   unique attempts per second: work admitted plus new work shed
 *   capacity  L x admitted / in-flight (Little's law: the rate at which the
 *             service completes work when L of it is in flight, from the
 *             time each unit spends in flight now)
 *   ratio     offered / capacity = (offered / admitted) x (in-flight / L):
 *             while shedding, in-flight is L and the ratio is offered over
 *             admitted; while not, it is how full the limit is. > 1: scale out.
 */
#ifndef LS_DEMAND_H
#define LS_DEMAND_H

#include <stdbool.h>
#include <stdint.h>

#include "loadshed.h"

/* The smoothing's time constant: a step in load shows 63 % of its size after it. */
#define LS_DEMAND_TAU_NS (5ull * 1000 * 1000 * 1000)

/* One round's reading of a service. */
struct ls_demand_sample {
	uint64_t now_ns;
	uint64_t offered;  /* cumulative: unique attempts (ls_demand_counts) */
	uint64_t admitted; /* cumulative: work that took a slot */
	double inflight;   /* what L bounds, now */
	double limit;	   /* L, now */
};

struct ls_demand {
	uint64_t tau_ns; /* the averages' time constant; 0: LS_DEMAND_TAU_NS */
	bool primed;	 /* a first sample taken: the counters' baseline */
	uint64_t last_ns;
	uint64_t offered, admitted;
	double last_inflight; /* the last sample's */
	/* Exponentially weighted averages over tau_ns. */
	double offered_per_s, admitted_per_s, inflight, limit;
	double jitter; /* of half the squared change of in-flight between samples */
};

/*
 * A class's counters in the service's unit: offered and admitted work.
 * admit = connections: admitted, and offered = admitted + shed (drop and
 * reset; a dropped SYN or ACK that the client sends again counts again).
 * admit = requests: admitted = request starts, and offered = starts +
 * aborted + expired + abandoned (a deferred request counts once: when it
 * starts at last, expires or its client leaves; its retransmissions,
 * `deferred`, do not count). Work admitted unchecked (fail-open, shadow)
 * is in admitted: it took a slot.
 */
void ls_demand_counts(const struct ls_class_stats *s, uint32_t admit, uint64_t *offered,
		      uint64_t *admitted);

/*
 * Feeds one round. The first sample, a sample whose counters went back (a
 * re-attach), or one not later than the last, only sets the baseline.
 */
void ls_demand_update(struct ls_demand *d, const struct ls_demand_sample *s);

/* Per second, smoothed; 0 before two samples. */
double ls_demand_offered_per_s(const struct ls_demand *d);

/*
 * Per second, smoothed: L x admitted / in-flight. NaN when unknown (nothing
 * admitted and nothing in flight: an idle service); +Inf when work is
 * admitted but in-flight averages ~0 (each unit completes too fast to be
 * seen in flight: no bound measurable); 0 when the service holds work and
 * completes none.
 */
double ls_demand_capacity_per_s(const struct ls_demand *d);

/*
 * offered / capacity: 0 when nothing is offered, and when capacity is +Inf;
 * +Inf when work is offered and the capacity is 0 or unknown (all of it
 * shed, none served).
 */
double ls_demand_ratio(const struct ls_demand *d);

/*
 * How much in-flight moves from one sample to the next: the square root of
 * the average of half its squared change (the Allan deviation). For
 * samples further apart than the work lasts it is in-flight's standard
 * deviation; a slow trend or a step counts only in the sample it happens.
 */
double ls_demand_jitter(const struct ls_demand *d);

/*
 * The in-flight count the work offered would hold, smoothed: in-flight x
 * offered / admitted (each unit offered would stay as long as the admitted
 * ones do). What is in flight when nothing new is offered (long-lived
 * connections, or none); +Inf when work is offered and none admitted (how
 * long it would stay is unknown).
 */
double ls_demand_inflight(const struct ls_demand *d);

#endif
