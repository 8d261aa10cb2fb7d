/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sample windows, as Netflix's WindowedLimit: per-request samples are
 * gathered into a window, and only a closed window with enough samples
 * reaches the limit algorithm, as one sample (mean or percentile RTT, max
 * in-flight, whether anything dropped). This keeps a burst of fast or slow
 * requests from swinging the limit.
 *
 * A window closes when a sample ends (start + rtt) after the window's end
 * time; the closing sample is part of the window. The next window then ends
 * clamp(2 * min RTT of the closed window, min_window, max_window) later.
 * The very first sample closes an empty window, which is discarded.
 */
#ifndef LS_WINDOW_H
#define LS_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "algo.h"

#define LS_WINDOW_MIN_WINDOW_NS	       1000000000ull /* 1 s */
#define LS_WINDOW_MAX_WINDOW_NS	       1000000000ull /* 1 s */
#define LS_WINDOW_SHORTEST_NS	       100000000ull  /* 100 ms: floor of both */
#define LS_WINDOW_MIN_RTT_THRESHOLD_NS 100000ull     /* 100 us */
#define LS_WINDOW_SIZE		       10	     /* also the least allowed */
#define LS_WINDOW_MAX_SIZE	       1000000
/* A percentile window ranks at most this many (the latest) RTTs. */
#define LS_WINDOW_PCT_SAMPLES 4096

/*
 * The agent's windows are fixed intervals (its [agent] interval) of the
 * dataplane's histograms; one reaches the algorithm, as one sample, once it
 * holds this many samples whose RTT (mean or percentile) is at least this
 * long: below that, the "latency" is not service time. Replay's --interval
 * mode forms the same windows from recorded samples.
 */
#define LS_INTERVAL_MIN_SAMPLES 10
#define LS_INTERVAL_MIN_RTT_NS	LS_WINDOW_MIN_RTT_THRESHOLD_NS

struct ls_window_config {
	uint64_t min_window_ns;	       /* >= 100 ms */
	uint64_t max_window_ns;	       /* >= min_window_ns */
	uint64_t min_rtt_threshold_ns; /* faster samples are ignored entirely */
	uint32_t window_size;	       /* samples a window needs to count, >= 10 */
	double percentile;	       /* 0: mean RTT; else in (0, 1) */
};

struct ls_window;

void ls_window_config_default(struct ls_window_config *cfg);
/* 0 or -EINVAL (reason in err) or -ENOMEM. */
int ls_window_create(const struct ls_window_config *cfg, struct ls_window **out, char *err,
		     size_t errlen);
void ls_window_destroy(struct ls_window **win);

/*
 * Adds one sample. Returns true when it closed a window with enough
 * samples; *closed is then the sample to feed the algorithm (start_ns of
 * the closing sample, the window's tracked RTT, max in-flight, any drop).
 */
bool ls_window_add(struct ls_window *win, const struct ls_algo_sample *s,
		   struct ls_algo_sample *closed);

/*
 * The RTT at percentile p (0 < p < 1) of rtts, Netflix's way: sorted,
 * index round(n * p) - 1 (at least 0). Sorts rtts in place; n > 0.
 */
uint64_t ls_window_percentile(uint64_t *rtts, size_t n, double p);

#endif /* LS_WINDOW_H */
