/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reading the dataplane's log-linear latency histograms. */
#ifndef LS_HIST_H
#define LS_HIST_H

#include <stdint.h>
#include "loadshed.h"

/*
 * The latency below which a fraction q (0..1) of the samples lie,
 * interpolated linearly inside the bucket that holds it; 0 when empty.
 */
uint64_t ls_hist_quantile_ns(const struct ls_latency_hist *h, double q);

/*
 * out = a - b, bucket by bucket (a window's delta); min/max are the
 * window's, to its buckets' resolution (a's lifetime extremes where they
 * are closer).
 */
void ls_hist_delta(const struct ls_latency_hist *a, const struct ls_latency_hist *b,
		   struct ls_latency_hist *out);

/*
 * Outliers of a window: samples beyond both Tukey's outer fence, Q3 +
 * 3 (Q3 - Q1), and 4 times the median, as long as they are at most 1 in 20
 * of the window's samples (more are a slow part of the service, not
 * outliers).
 */
#define LS_HIST_FENCE_IQR	 3
#define LS_HIST_FENCE_MEDIAN	 4
#define LS_HIST_OUTLIERS_MAX_DIV 20

/*
 * The window's mean without its outliers (then from its buckets' middles);
 * the exact mean when it has none. A client that stalls or a request the
 * server parks is one sample among many: it must not move the limit.
 */
uint64_t ls_hist_robust_mean_ns(const struct ls_latency_hist *h);

/*
 * A window's RTT as the agent feeds it to the algorithm: the quantile
 * quantile_ppm / 10^6 of its samples, or with 0 the robust mean.
 */
uint64_t ls_hist_window_rtt_ns(const struct ls_latency_hist *h, uint32_t quantile_ppm);

#endif
