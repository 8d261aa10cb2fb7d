// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Sample windows (see window.h). The percentile window keeps the latest
 * LS_WINDOW_PCT_SAMPLES (or window_size, if larger) RTTs in a ring: upstream
 * stores only window_size and fails beyond that, which a busy service hits
 * every window; ranking the most recent ones keeps memory bounded instead.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

struct ls_window {
	struct ls_window_config cfg;
	uint64_t next_update_ns;

	/* the open window */
	uint64_t min_rtt_ns; /* UINT64_MAX while empty */
	uint64_t sum_rtt_ns;
	uint32_t max_inflight;
	double sum_inflight;
	uint32_t count;
	bool did_drop;

	/* percentile windows only */
	uint64_t *rtts_ns;
	uint32_t capacity;
};

void ls_window_config_default(struct ls_window_config *cfg)
{
	cfg->min_window_ns = LS_WINDOW_MIN_WINDOW_NS;
	cfg->max_window_ns = LS_WINDOW_MAX_WINDOW_NS;
	cfg->min_rtt_threshold_ns = LS_WINDOW_MIN_RTT_THRESHOLD_NS;
	cfg->window_size = LS_WINDOW_SIZE;
	cfg->percentile = 0;
}

static int window_check(const struct ls_window_config *cfg, char *err, size_t errlen)
{
	const char *why = NULL;

	if (cfg->min_window_ns < LS_WINDOW_SHORTEST_NS)
		why = "min window time must be at least 100ms";
	else if (cfg->max_window_ns < LS_WINDOW_SHORTEST_NS)
		why = "max window time must be at least 100ms";
	else if (cfg->min_window_ns > cfg->max_window_ns)
		why = "min window time is above max window time";
	else if (cfg->window_size < LS_WINDOW_SIZE || cfg->window_size > LS_WINDOW_MAX_SIZE)
		why = "window size must be in [10, 1000000]";
	else if (cfg->percentile != 0 && !(cfg->percentile > 0 && cfg->percentile < 1))
		why = "percentile must be in (0, 1)";
	if (!why)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "window: %s", why);
	return -EINVAL;
}

static void window_reset(struct ls_window *win)
{
	win->min_rtt_ns = UINT64_MAX;
	win->sum_rtt_ns = 0;
	win->max_inflight = 0;
	win->sum_inflight = 0;
	win->count = 0;
	win->did_drop = false;
}

int ls_window_create(const struct ls_window_config *cfg, struct ls_window **out, char *err,
		     size_t errlen)
{
	struct ls_window *win;
	int ret;

	*out = NULL;
	ret = window_check(cfg, err, errlen);
	if (ret)
		return ret;
	win = calloc(1, sizeof(*win));
	if (!win)
		return -ENOMEM;
	win->cfg = *cfg;
	if (cfg->percentile > 0) {
		win->capacity = cfg->window_size > LS_WINDOW_PCT_SAMPLES ? cfg->window_size
									 : LS_WINDOW_PCT_SAMPLES;
		win->rtts_ns = calloc(win->capacity, sizeof(*win->rtts_ns));
		if (!win->rtts_ns) {
			free(win);
			return -ENOMEM;
		}
	}
	window_reset(win);
	*out = win;
	return 0;
}

void ls_window_destroy(struct ls_window **win)
{
	if (!win || !*win)
		return;
	free((*win)->rtts_ns);
	free(*win);
	*win = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

uint64_t ls_window_percentile(uint64_t *rtts, size_t n, double p)
{
	/* Java's Math.round: floor(x + 0.5). */
	long idx = (long)floor((double)n * p + 0.5) - 1;

	qsort(rtts, n, sizeof(*rtts), cmp_u64);
	if (idx < 0)
		idx = 0;
	if ((size_t)idx >= n)
		idx = (long)n - 1;
	return rtts[idx];
}

static void window_collect(struct ls_window *win, const struct ls_algo_sample *s)
{
	if (s->rtt_ns < win->min_rtt_ns)
		win->min_rtt_ns = s->rtt_ns;
	win->sum_rtt_ns += s->rtt_ns;
	if (s->inflight > win->max_inflight)
		win->max_inflight = s->inflight;
	win->sum_inflight += ls_algo_sample_mean_inflight(s);
	win->did_drop |= s->did_drop;
	if (win->rtts_ns)
		win->rtts_ns[win->count % win->capacity] = s->rtt_ns;
	win->count++;
}

static uint64_t window_tracked_rtt_ns(struct ls_window *win)
{
	uint32_t n = win->count < win->capacity ? win->count : win->capacity;

	if (!win->rtts_ns)
		return win->sum_rtt_ns / win->count;
	return ls_window_percentile(win->rtts_ns, n, win->cfg.percentile);
}

static uint64_t window_length_ns(const struct ls_window *win)
{
	uint64_t len_ns = win->min_rtt_ns > UINT64_MAX / 2 ? UINT64_MAX : 2 * win->min_rtt_ns;

	if (len_ns < win->cfg.min_window_ns)
		len_ns = win->cfg.min_window_ns;
	if (len_ns > win->cfg.max_window_ns)
		len_ns = win->cfg.max_window_ns;
	return len_ns;
}

static bool window_is_ready(const struct ls_window *win)
{
	return win->min_rtt_ns != UINT64_MAX && win->count >= win->cfg.window_size;
}

bool ls_window_add(struct ls_window *win, const struct ls_algo_sample *s,
		   struct ls_algo_sample *closed)
{
	uint64_t end_ns = s->start_ns + s->rtt_ns;
	bool ready;

	if (s->rtt_ns < win->cfg.min_rtt_threshold_ns)
		return false;
	window_collect(win, s);
	if (end_ns <= win->next_update_ns)
		return false;

	win->next_update_ns = end_ns + window_length_ns(win);
	ready = window_is_ready(win);
	if (ready) {
		closed->start_ns = s->start_ns;
		closed->rtt_ns = window_tracked_rtt_ns(win);
		closed->inflight = win->max_inflight;
		closed->inflight_mean = win->sum_inflight / win->count;
		closed->did_drop = win->did_drop;
	}
	window_reset(win);
	return ready;
}
