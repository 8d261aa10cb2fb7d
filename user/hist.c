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
	out->min_ns = 0;
	out->max_ns = 0;
	for (uint32_t i = 0; i < LS_HIST_BUCKETS; i++) {
		out->buckets[i] = a->buckets[i] - b->buckets[i];
		if (!out->buckets[i])
			continue;
		if (!out->min_ns)
			out->min_ns = ls_hist_bucket_lo_us(i) * 1000;
		out->max_ns = ls_hist_bucket_hi_us(i) * 1000;
	}
	/* The lifetime extremes bound the window's where they fall inside it. */
	if (out->min_ns && a->min_ns > out->min_ns)
		out->min_ns = a->min_ns;
	if (out->max_ns && a->max_ns && a->max_ns < out->max_ns)
		out->max_ns = a->max_ns;
}

uint64_t ls_hist_robust_mean_ns(const struct ls_latency_hist *h)
{
	uint64_t total = 0, out_n = 0, q1, q3, med, fence;
	double kept_sum = 0;

	for (uint32_t i = 0; i < LS_HIST_BUCKETS; i++)
		total += h->buckets[i];
	if (!h->count || total != h->count)
		return h->count ? h->sum_ns / h->count : 0;
	q1 = ls_hist_quantile_ns(h, 0.25);
	med = ls_hist_quantile_ns(h, 0.5);
	q3 = ls_hist_quantile_ns(h, 0.75);
	fence = q3 + LS_HIST_FENCE_IQR * (q3 - q1);
	if (fence < LS_HIST_FENCE_MEDIAN * med)
		fence = LS_HIST_FENCE_MEDIAN * med;
	for (uint32_t i = 0; i < LS_HIST_BUCKETS; i++) {
		double lo = (double)ls_hist_bucket_lo_us(i) * 1000;
		double hi = (double)ls_hist_bucket_hi_us(i) * 1000;

		if (lo > (double)fence)
			out_n += h->buckets[i];
		else
			kept_sum += (double)h->buckets[i] * (lo + hi) / 2;
	}
	/* Many of them are no outliers: a part of the service that is slow. */
	if (!out_n || out_n * LS_HIST_OUTLIERS_MAX_DIV > h->count)
		return h->sum_ns / h->count;
	/*
	 * The outliers' exact sum is not known, only their buckets: the rest's
	 * mean from its buckets' middles (a few per cent off the exact mean,
	 * where taking an estimate of a 10 s outlier off the exact sum would be
	 * off by more than a whole 10 ms request).
	 */
	return (uint64_t)(kept_sum / (double)(h->count - out_n));
}

uint64_t ls_hist_window_rtt_ns(const struct ls_latency_hist *h, uint32_t quantile_ppm)
{
	if (!h->count)
		return 0;
	return quantile_ppm ? ls_hist_quantile_ns(h, quantile_ppm / 1e6)
			    : ls_hist_robust_mean_ns(h);
}
