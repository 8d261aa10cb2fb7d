// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* loadshed replay: recorded samples through a limit algorithm, offline (see replay.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "commands.h"
#include "output.h"
#include "replay.h"

enum {
	OPT_ALGO = 1,
	OPT_PARAM,
	OPT_WINDOWED,
	OPT_INTERVAL,
	OPT_WINDOW_SIZE,
	OPT_PERCENTILE,
	OPT_MIN_WINDOW,
	OPT_MAX_WINDOW,
	OPT_MIN_RTT_THRESHOLD,
};

static const struct ls_opt replay_opts[] = {
	{"algo", 0, true, OPT_ALGO, "NAME", "the algorithm (default " LS_ALGO_DEFAULT ")",
	 "fixed aimd vegas gradient2 envoy delay"},
	{"param", 0, true, OPT_PARAM, "K=V", "an algorithm parameter (repeatable; or K=V alone)"},
	{"windowed", 0, false, OPT_WINDOWED, NULL,
	 "group samples into windows as Netflix's WindowedLimit"},
	{"interval", 0, true, OPT_INTERVAL, "DUR",
	 "group samples as the agent does: intervals of DUR of sample end time, each fed "
	 "once it holds 10 samples with an RTT >= 100us"},
	{"window-size", 0, true, OPT_WINDOW_SIZE, "N",
	 "samples a window needs to count (default 10, >= 10)"},
	{"percentile", 0, true, OPT_PERCENTILE, "P",
	 "a window's RTT at percentile P in (0,1) instead of the mean (or envoy's own)"},
	{"min-window", 0, true, OPT_MIN_WINDOW, "DUR", "shortest window (default 1s, >= 100ms)"},
	{"max-window", 0, true, OPT_MAX_WINDOW, "DUR", "longest window (default 1s, >= 100ms)"},
	{"min-rtt-threshold", 0, true, OPT_MIN_RTT_THRESHOLD, "DUR",
	 "ignore faster samples (default 100us)"},
	{NULL},
};

struct replay_args {
	struct ls_replay_opts opts;
	char *params; /* joined "k=v,k=v", owned */
	size_t params_len;
};

static int add_param(struct replay_args *a, const char *kv)
{
	size_t len = strlen(kv);
	char *grown = realloc(a->params, a->params_len + len + 2);

	if (!grown)
		return -ENOMEM;
	a->params = grown;
	if (a->params_len)
		a->params[a->params_len++] = ',';
	memcpy(a->params + a->params_len, kv, len + 1);
	a->params_len += len;
	return 0;
}

static int on_replay_opt(void *ctx, int id, const char *v, char *err, size_t errlen)
{
	struct replay_args *a = ctx;
	struct ls_window_config *w = &a->opts.window;
	int rc = 0;

	switch (id) {
	case OPT_ALGO:
		a->opts.algo = v;
		return 0;
	case OPT_PARAM:
		rc = add_param(a, v);
		if (rc)
			snprintf(err, errlen, "out of memory");
		return rc;
	case OPT_WINDOWED:
		a->opts.windowed = true;
		return 0;
	case OPT_INTERVAL:
		rc = ls_parse_duration_ns(v, &a->opts.interval_ns) || !a->opts.interval_ns;
		break;
	case OPT_WINDOW_SIZE:
		rc = ls_parse_u32(v, &w->window_size);
		break;
	case OPT_PERCENTILE:
		rc = ls_parse_real(v, &w->percentile);
		break;
	case OPT_MIN_WINDOW:
		rc = ls_parse_duration_ns(v, &w->min_window_ns);
		break;
	case OPT_MAX_WINDOW:
		rc = ls_parse_duration_ns(v, &w->max_window_ns);
		break;
	case OPT_MIN_RTT_THRESHOLD:
		rc = ls_parse_duration_ns(v, &w->min_rtt_threshold_ns);
		break;
	}
	if (rc) {
		snprintf(err, errlen, "bad value '%s' for --%s", v, replay_opts[id - 1].name);
		return -EINVAL;
	}
	if (id != OPT_INTERVAL)
		a->opts.windowed = true; /* a window option implies --windowed */
	return 0;
}

/* Replay's CSV (a header, then start_ns,limit,estimate lines) as a JSON array. */
static void print_csv_as_json(char *csv)
{
	json_object *arr = json_object_new_array();
	char *save = NULL, *line;

	line = strtok_r(csv, "\n", &save); /* the header */
	while ((line = strtok_r(NULL, "\n", &save))) {
		unsigned long long start;
		unsigned int limit;
		double estimate;
		json_object *o;

		if (sscanf(line, "%llu,%u,%lf", &start, &limit, &estimate) != 3)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "start_ns", json_object_new_uint64(start));
		json_object_object_add(o, "limit", json_object_new_uint64(limit));
		json_object_object_add(o, "estimate", json_object_new_double(estimate));
		json_object_array_add(arr, o);
	}
	ls_json_print(arr);
}

static int run_replay(const struct ls_call *call)
{
	struct replay_args a = {0};
	char err[512] = "", *pos[64];
	int n, rc;

	ls_replay_opts_default(&a.opts);
	n = ls_opts_parse(call->argc, call->argv, replay_opts, on_replay_opt, &a, pos,
			  (int)(sizeof(pos) / sizeof(pos[0])), err, sizeof(err));
	for (int i = 0; i < n; i++) {
		if (pos[i][0] == '-' || !strchr(pos[i], '=')) {
			snprintf(err, sizeof(err), "unexpected argument '%s' (K=V is a parameter)",
				 pos[i]);
			n = -EINVAL;
			break;
		}
		if (add_param(&a, pos[i])) {
			snprintf(err, sizeof(err), "out of memory");
			n = -ENOMEM;
			break;
		}
	}
	if (n < 0) {
		free(a.params);
		return ls_fail(n == -ENOMEM ? LS_EXIT_RUNTIME : LS_EXIT_USAGE, "replay: %s", err);
	}
	a.opts.params = a.params;
	if (ls_json) {
		char *csv = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&csv, &len);

		rc = mem ? ls_replay_run(stdin, mem, &a.opts, err, sizeof(err)) : -errno;
		if (mem)
			fclose(mem);
		if (!rc)
			print_csv_as_json(csv);
		free(csv);
	} else {
		rc = ls_replay_run(stdin, stdout, &a.opts, err, sizeof(err));
	}
	free(a.params);
	if (!rc)
		return LS_EXIT_OK;
	/* Bad parameters and bad input lines are the user's; the rest is ours. */
	return ls_fail(rc == -EINVAL || rc == -ENOENT || rc == -EBADMSG ? LS_EXIT_USAGE
									: LS_EXIT_RUNTIME,
		       "replay: %s", *err ? err : strerror(-rc));
}

static void replay_more_help(FILE *out)
{
	fprintf(out, "Input (CSV on stdin): start_ns,rtt_ns,inflight,did_drop\n"
		     "  did_drop is 0/1 (or false/true); an optional header line, blank lines and\n"
		     "  '#' comments are skipped. A line is at most 4096 characters.\n"
		     "Output (CSV on stdout): start_ns,limit,estimate\n"
		     "  estimate is the algorithm's unrounded internal limit. Deterministic: the\n"
		     "  same input gives the same output. DUR takes a unit: 500ms, 1s, 100us.\n\n"
		     "Algorithms and their parameters:\n");
	ls_algo_print_help(out);
}

const struct ls_cmd ls_cmd_replay = {
	.name = "replay",
	.args = "[--algo NAME] [K=V...] [OPTIONS] < samples.csv",
	.summary = "feed recorded samples through a limit algorithm, offline",
	.opts = replay_opts,
	.run = run_replay,
	.more_help = replay_more_help,
};
