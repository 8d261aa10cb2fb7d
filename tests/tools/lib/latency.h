/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A latency recorder with log-linear buckets: values in microseconds, exact
 * below 64 us, then 32 buckets per power of two (relative error under 3 %).
 * Fixed size, no allocation, cheap to reset once per second.
 */
#ifndef LS_TOOLS_LATENCY_H
#define LS_TOOLS_LATENCY_H

#include <stdint.h>

#define LAT_SUB_BITS 5
#define LAT_SUB	     (1U << LAT_SUB_BITS)
#define LAT_BUCKETS  (64U * LAT_SUB)

struct latency {
	uint64_t count;
	uint64_t sum_us;
	uint64_t max_us;
	uint64_t bucket[LAT_BUCKETS];
};

void latency_reset(struct latency *l);
void latency_add_ns(struct latency *l, uint64_t ns);
/* Adds every sample of src to dst. */
void latency_merge(struct latency *dst, const struct latency *src);
/* The p-th percentile (0 < p <= 100) in milliseconds; 0 when empty. */
double latency_pct_ms(const struct latency *l, double p);
double latency_mean_ms(const struct latency *l);

#endif
