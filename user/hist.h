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

/* out = a - b, bucket by bucket (a window's delta); min/max are a's. */
void ls_hist_delta(const struct ls_latency_hist *a, const struct ls_latency_hist *b,
		   struct ls_latency_hist *out);

#endif
