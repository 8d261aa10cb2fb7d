/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * `loadshed replay`: feeds recorded samples through a limit algorithm and
 * prints the limit after each update, so users can tune offline and the
 * algorithms can be checked against other implementations.
 *
 * Input, CSV:  start_ns,rtt_ns,inflight,did_drop   (did_drop: 0/1/true/false)
 *   an optional header line (first line starting with a non-digit), blank
 *   lines and lines starting with '#' are skipped; a line is at most 4096
 *   characters.
 * Output, CSV: start_ns,limit,estimate   (a header, then one line per update
 *   of the algorithm: every sample, or every closed window with --windowed).
 *
 * An algorithm that probes the no-load RTT (envoy) probes here too: a probe
 * counts the samples that started at or after it began (the requests
 * admitted since), and its step (ls_algo_probe_step) runs after each update
 * — at the end of the sample per sample and with --windowed, at the
 * window's end with --interval — so a probe begins, pins the limit, and
 * ends as in the agent. While one runs, updates change nothing and the
 * lines show the pinned limit. An algorithm that wants a window quantile
 * (envoy's sample_aggregate_percentile) gets it as a window's RTT with
 * --interval, and with --windowed unless --percentile says otherwise.
 */
#ifndef LS_REPLAY_H
#define LS_REPLAY_H

#include <stdbool.h>
#include <stdio.h>

#include "window.h"

struct ls_replay_opts {
	const char *algo;   /* NULL: LS_ALGO_DEFAULT */
	const char *params; /* "k=v,k=v" or NULL */
	bool windowed;
	struct ls_window_config window;
	/*
	 * Not 0: windows as the agent forms them instead: fixed intervals of
	 * sample end time, fed once they hold LS_INTERVAL_MIN_SAMPLES with an
	 * RTT (the mean without outliers, ls_hist_robust_mean_ns, or the
	 * algorithm's quantile) of at least 100 µs, the max in-flight of the
	 * window. A line is also printed at the end of a window where a probe
	 * began or ended.
	 */
	uint64_t interval_ns;
};

void ls_replay_opts_default(struct ls_replay_opts *opts);

/*
 * Runs the replay from in to out. Returns 0; -ENOENT/-EINVAL for a bad
 * algorithm or parameter; -EBADMSG for a malformed input line (err names the
 * line number); -EIO when in or out fails; -ENOMEM.
 */
int ls_replay_run(FILE *in, FILE *out, const struct ls_replay_opts *opts, char *err, size_t errlen);

#endif /* LS_REPLAY_H */
