// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "latency.h"

#include <math.h>
#include <string.h>

static unsigned int bucket_of(uint64_t us)
{
	unsigned int msb, shift, idx;

	if (us < 2 * LAT_SUB)
		return us;
	msb = 63 - __builtin_clzll(us);
	shift = msb - LAT_SUB_BITS;
	idx = (shift + 1) * LAT_SUB + (unsigned int)((us >> shift) - LAT_SUB);
	return idx < LAT_BUCKETS ? idx : LAT_BUCKETS - 1;
}

/* The middle of a bucket's range, in microseconds. */
static double bucket_mid_us(unsigned int idx)
{
	unsigned int shift;
	uint64_t sub;

	if (idx < 2 * LAT_SUB)
		return idx;
	shift = idx / LAT_SUB - 1;
	sub = idx % LAT_SUB + LAT_SUB;
	return ((double)(sub << shift) + (double)((sub + 1) << shift) - 1) / 2;
}

void latency_reset(struct latency *l)
{
	memset(l, 0, sizeof(*l));
}

void latency_add_ns(struct latency *l, uint64_t ns)
{
	uint64_t us = ns / 1000;

	l->count++;
	l->sum_us += us;
	if (us > l->max_us)
		l->max_us = us;
	l->bucket[bucket_of(us)]++;
}

void latency_merge(struct latency *dst, const struct latency *src)
{
	dst->count += src->count;
	dst->sum_us += src->sum_us;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
	for (unsigned int i = 0; i < LAT_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
}

double latency_pct_ms(const struct latency *l, double p)
{
	uint64_t rank, seen = 0;
	double mid;

	if (!l->count)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)l->count);
	if (rank < 1)
		rank = 1;
	for (unsigned int i = 0; i < LAT_BUCKETS; i++) {
		seen += l->bucket[i];
		if (seen >= rank) {
			mid = bucket_mid_us(i);
			/* Never report more than the largest sample seen. */
			if (mid > (double)l->max_us)
				mid = (double)l->max_us;
			return mid / 1000.0;
		}
	}
	return (double)l->max_us / 1000.0;
}

double latency_mean_ms(const struct latency *l)
{
	return l->count ? (double)l->sum_us / (double)l->count / 1000.0 : 0;
}
