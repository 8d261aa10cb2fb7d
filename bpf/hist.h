/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The latency histogram of include/loadshed.h, filled from a BPF program. */
#ifndef LS_BPF_HIST_H
#define LS_BPF_HIST_H

#include <bpf/bpf_helpers.h>
#include "loadshed.h"

/* One sample of ns into h; the caller owns h (a per-CPU or per-key value). */
static __always_inline void ls_hist_add(struct ls_latency_hist *h, __u64 ns)
{
	__u32 b;

	h->count++;
	h->sum_ns += ns;
	if (!h->min_ns || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	b = ls_hist_bucket(ns);
	/* The compiler knows b is in range; the verifier must be shown. */
	barrier_var(b);
	if (b < LS_HIST_BUCKETS)
		h->buckets[b]++;
}

#endif
