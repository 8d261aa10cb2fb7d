/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The clocks the agent and the CLI read, in nanoseconds. */
#ifndef LS_CLOCK_H
#define LS_CLOCK_H

#include <stdint.h>
#include <time.h>

#define LS_NS_PER_US 1000ull
#define LS_NS_PER_MS 1000000ull
#define LS_NS_PER_S  1000000000ull

/*
 * CLOCK_MONOTONIC is the dataplane's bpf_ktime_get_ns(); the coarse one is
 * its bpf_ktime_get_coarse_ns(), which stamps flows.
 */
static inline uint64_t ls_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * LS_NS_PER_S + (uint64_t)ts.tv_nsec;
}

#endif /* LS_CLOCK_H */
