// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "hist.h"

uint64_t ls_hist_quantile_ns(const struct ls_latency_hist *h, double q)
{
	uint64_t total = 0, seen = 0;
	double rank;

	for (uint32_t i = 0; i < LS_HIST_BUCKETS; i++)
		total += h->buckets[i];
	if (!total)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	rank = q * (double)total;
	for (uint32_t i = 0; i < LS_HIST_BUCKETS; i++) {
		uint64_t n = h->buckets[i];
		double lo, hi;

		if (!n || (double)(seen + n) < rank) {
			seen += n;
			continue;
		}
		lo = (double)ls_hist_bucket_lo_us(i) * 1000.0;
		hi = (double)ls_hist_bucket_hi_us(i) * 1000.0;
		return (uint64_t)(lo + (hi - lo) * ((rank - (double)seen) / (double)n));
	}
	return ls_hist_bucket_hi_us(LS_HIST_BUCKETS - 1) * 1000;
}

void ls_hist_delta(const struct ls_latency_hist *a, const struct ls_latency_hist *b,
		   struct ls_latency_hist *out)
{
	out->count = a->count - b->count;
	out->sum_ns = a->sum_ns - b->sum_ns;
	out->min_ns = a->min_ns;
	out->max_ns = a->max_ns;
	for (uint32_t i = 0; i < LS_HIST_BUCKETS; i++)
		out->buckets[i] = a->buckets[i] - b->buckets[i];
}
