// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <math.h>
#include <string.h>

#include "demand.h"

/* Below this, a smoothed rate or in-flight count is taken as none. */
#define LS_DEMAND_EPSILON 1e-6

void ls_demand_counts(const struct ls_class_stats *s, uint32_t admit, uint64_t *offered,
		      uint64_t *admitted)
{
	if (admit == LS_ADMIT_REQUESTS) {
		*admitted = s->requests;
		*offered = s->requests + s->aborted + s->expired + s->abandoned;
	} else {
		*admitted = s->admitted;
		*offered = s->admitted + s->shed_drop + s->shed_reset;
	}
}

static double ewma(double avg, double v, double w)
{
	return avg + w * (v - avg);
}

void ls_demand_update(struct ls_demand *d, const struct ls_demand_sample *s)
{
	double dt, w;

	double inflight = s->inflight > 0 ? s->inflight : 0, step;

	if (!d->primed || s->now_ns <= d->last_ns || s->offered < d->offered ||
	    s->admitted < d->admitted) {
		bool was = d->primed;

		d->primed = true;
		d->last_ns = s->now_ns;
		d->offered = s->offered;
		d->admitted = s->admitted;
		d->last_inflight = inflight;
		if (!was) {
			d->inflight = inflight;
			d->limit = s->limit;
		}
		return;
	}
	dt = (double)(s->now_ns - d->last_ns) / 1e9;
	/* Exact for any round length: a late round weighs what its time weighs. */
	w = 1.0 - exp(-(double)(s->now_ns - d->last_ns) /
		      (double)(d->tau_ns ? d->tau_ns : LS_DEMAND_TAU_NS));
	step = inflight - d->last_inflight;
	d->offered_per_s = ewma(d->offered_per_s, (double)(s->offered - d->offered) / dt, w);
	d->admitted_per_s = ewma(d->admitted_per_s, (double)(s->admitted - d->admitted) / dt, w);
	d->inflight = ewma(d->inflight, inflight, w);
	d->jitter = ewma(d->jitter, step * step / 2, w);
	d->limit = ewma(d->limit, s->limit, w);
	d->last_inflight = inflight;
	d->last_ns = s->now_ns;
	d->offered = s->offered;
	d->admitted = s->admitted;
}

double ls_demand_offered_per_s(const struct ls_demand *d)
{
	return d->offered_per_s;
}

double ls_demand_capacity_per_s(const struct ls_demand *d)
{
	if (d->inflight < LS_DEMAND_EPSILON)
		return d->admitted_per_s < LS_DEMAND_EPSILON ? NAN : INFINITY;
	return d->limit * d->admitted_per_s / d->inflight;
}

double ls_demand_ratio(const struct ls_demand *d)
{
	double cap = ls_demand_capacity_per_s(d);

	if (d->offered_per_s < LS_DEMAND_EPSILON)
		return 0;
	if (isnan(cap) || cap < LS_DEMAND_EPSILON)
		return INFINITY;
	return d->offered_per_s / cap;
}

double ls_demand_inflight(const struct ls_demand *d)
{
	if (d->offered_per_s < LS_DEMAND_EPSILON)
		return d->inflight;
	if (d->admitted_per_s < LS_DEMAND_EPSILON)
		return INFINITY;
	return d->inflight * d->offered_per_s / d->admitted_per_s;
}

double ls_demand_jitter(const struct ls_demand *d)
{
	return sqrt(d->jitter);
}
