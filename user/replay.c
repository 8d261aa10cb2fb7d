// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `loadshed replay` (see replay.h). The core, ls_replay_run(), is a pure
 * function of its input stream so that tests drive it with memory streams.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "replay.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

void ls_replay_opts_default(struct ls_replay_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->algo = LS_ALGO_DEFAULT;
	ls_window_config_default(&opts->window);
}

/* ---- input ---------------------------------------------------------------- */

static int parse_u64(const char *text, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_drop(const char *text, bool *out)
{
	if (!strcmp(text, "0") || !strcasecmp(text, "false")) {
		*out = false;
		return 0;
	}
	if (!strcmp(text, "1") || !strcasecmp(text, "true")) {
		*out = true;
		return 0;
	}
	return -EINVAL;
}

static const char *const field_names[] = {"start_ns", "rtt_ns", "inflight", "did_drop"};
#define NR_FIELDS 4

/* Splits line into exactly NR_FIELDS trimmed fields; false if the count differs. */
static bool split_fields(char *line, char **fields)
{
	char *cur = line, *comma;
	int i;

	for (i = 0; i < NR_FIELDS; i++) {
		comma = strchr(cur, ',');
		if (comma)
			*comma = '\0';
		fields[i] = ls_trim(cur);
		if (!comma)
			return i == NR_FIELDS - 1;
		cur = comma + 1;
	}
	return false;
}

static int parse_sample(char *line, unsigned long lineno, struct ls_algo_sample *s, char *err,
			size_t errlen)
{
	char *fields[NR_FIELDS];
	uint64_t start_ns, rtt_ns, inflight;
	int bad = -1;

	if (!split_fields(line, fields)) {
		snprintf(err, errlen,
			 "line %lu: expected 4 fields start_ns,rtt_ns,inflight,did_drop", lineno);
		return -EBADMSG;
	}
	if (parse_u64(fields[0], &start_ns))
		bad = 0;
	else if (parse_u64(fields[1], &rtt_ns))
		bad = 1;
	else if (parse_u64(fields[2], &inflight) || inflight > UINT32_MAX)
		bad = 2;
	else if (parse_drop(fields[3], &s->did_drop))
		bad = 3;
	if (bad >= 0) {
		snprintf(err, errlen, "line %lu: bad %s '%s'", lineno, field_names[bad],
			 fields[bad]);
		return -EBADMSG;
	}
	s->start_ns = start_ns;
	s->rtt_ns = rtt_ns;
	s->inflight = (uint32_t)inflight;
	return 0;
}

/* ---- the run ------------------------------------------------------------ */

struct replay {
	struct ls_algo *algo;
	struct ls_window *window; /* NULL unless windowed */
	uint64_t interval_ns;	  /* not 0: the agent's interval windows */
	struct {
		uint64_t end_ns; /* the open interval ends here */
		uint64_t count, sum_ns;
		uint32_t max_inflight;
		bool did_drop;
	} iv;
	FILE *out;
};

static int replay_print(struct replay *r, uint64_t start_ns)
{
	if (fprintf(r->out, "%llu,%u,%.3f\n", (unsigned long long)start_ns, ls_algo_limit(r->algo),
		    ls_algo_estimate(r->algo)) < 0)
		return -EIO;
	return 0;
}

/*
 * Closes the open interval as the agent's round would: a window with too
 * few samples stays open (the agent keeps its baseline until it has them).
 */
static int interval_close(struct replay *r, uint64_t at_ns)
{
	struct ls_algo_sample s = {
		.start_ns = at_ns,
		.inflight = r->iv.max_inflight,
		.did_drop = r->iv.did_drop,
	};

	if (r->iv.count < LS_AGENT_WINDOW_MIN_SAMPLES)
		return 0;
	s.rtt_ns = r->iv.sum_ns / r->iv.count;
	r->iv.count = 0;
	r->iv.sum_ns = 0;
	r->iv.max_inflight = 0;
	r->iv.did_drop = false;
	if (s.rtt_ns < LS_AGENT_WINDOW_MIN_RTT_NS)
		return 0;
	ls_algo_update(r->algo, &s);
	return replay_print(r, at_ns);
}

static int interval_add(struct replay *r, const struct ls_algo_sample *s)
{
	uint64_t end = s->start_ns + s->rtt_ns;
	int ret = 0;

	if (!r->iv.end_ns)
		r->iv.end_ns = (end / r->interval_ns + 1) * r->interval_ns;
	if (end >= r->iv.end_ns) {
		ret = interval_close(r, r->iv.end_ns);
		r->iv.end_ns = (end / r->interval_ns + 1) * r->interval_ns;
	}
	r->iv.count++;
	r->iv.sum_ns += s->rtt_ns;
	if (s->inflight > r->iv.max_inflight)
		r->iv.max_inflight = s->inflight;
	r->iv.did_drop |= s->did_drop;
	return ret;
}

static int replay_sample(struct replay *r, const struct ls_algo_sample *s)
{
	struct ls_algo_sample closed;

	if (r->interval_ns)
		return interval_add(r, s);
	if (!r->window) {
		ls_algo_update(r->algo, s);
		return replay_print(r, s->start_ns);
	}
	if (!ls_window_add(r->window, s, &closed))
		return 0;
	ls_algo_update(r->algo, &closed);
	return replay_print(r, closed.start_ns);
}

static bool is_skipped(const char *line)
{
	return !*line || *line == '#';
}

static int replay_stream(struct replay *r, FILE *in, char *err, size_t errlen)
{
	struct ls_algo_sample s;
	unsigned long lineno = 0;
	bool seen_data = false;
	char *buf = NULL, *line;
	size_t cap = 0;
	int ret = 0;

	while (getline(&buf, &cap, in) >= 0) {
		lineno++;
		line = ls_trim(buf);
		if (is_skipped(line))
			continue;
		/* An optional header: the first line that cannot be a number. */
		if (!seen_data && !isdigit((unsigned char)*line)) {
			seen_data = true;
			continue;
		}
		seen_data = true;
		ret = parse_sample(line, lineno, &s, err, errlen);
		if (!ret)
			ret = replay_sample(r, &s);
		if (ret)
			break;
	}
	if (!ret && ferror(in)) {
		snprintf(err, errlen, "reading input: %s", strerror(errno));
		ret = -EIO;
	}
	free(buf);
	return ret;
}

int ls_replay_run(FILE *in, FILE *out, const struct ls_replay_opts *opts, char *err, size_t errlen)
{
	struct replay r = {.out = out};
	int ret;

	if (err && errlen)
		err[0] = '\0';
	ret = ls_algo_create(opts->algo ? opts->algo : LS_ALGO_DEFAULT, opts->params, &r.algo, err,
			     errlen);
	if (ret)
		return ret;
	if (opts->windowed) {
		ret = ls_window_create(&opts->window, &r.window, err, errlen);
		if (ret)
			goto cleanup;
	}
	if (fputs("start_ns,limit,estimate\n", out) < 0) {
		ret = -EIO;
		goto cleanup;
	}
	r.interval_ns = opts->interval_ns;
	ret = replay_stream(&r, in, err, errlen);
	if (!ret && r.interval_ns)
		ret = interval_close(&r, r.iv.end_ns); /* the last round */
	if (!ret && fflush(out))
		ret = -EIO;
	if (ret == -EIO && err && errlen && !*err)
		snprintf(err, errlen, "writing output: %s", strerror(errno));
cleanup:
	ls_window_destroy(&r.window);
	ls_algo_destroy(&r.algo);
	return ret;
}

/* ---- the command line ---------------------------------------------------- */

static void replay_usage(FILE *out)
{
	fprintf(out,
		"Usage: loadshed replay [--algo NAME] [--param K=V]... [K=V]... [--windowed]\n"
		"                       [--window-size N] [--percentile P] [--min-window DUR]\n"
		"                       [--max-window DUR] [--min-rtt-threshold DUR] < "
		"samples.csv\n"
		"\n"
		"Feeds recorded samples through a limit algorithm and prints the limit after\n"
		"each update of the algorithm. Deterministic: the same input gives the same "
		"output.\n"
		"\n"
		"Input (CSV on stdin): start_ns,rtt_ns,inflight,did_drop\n"
		"  did_drop is 0/1 (or false/true); an optional header line, blank lines and\n"
		"  '#' comments are skipped.\n"
		"Output (CSV on stdout): start_ns,limit,estimate\n"
		"  estimate is the algorithm's unrounded internal limit.\n"
		"\n"
		"Options:\n"
		"  --algo NAME             algorithm (default %s)\n"
		"  --param K=V, K=V        algorithm parameter; repeat for several\n"
		"  --windowed              group samples into windows as Netflix's WindowedLimit\n"
		"  --interval DUR          group samples as the agent does: intervals of DUR\n"
		"                          (its [agent] interval) of sample end time, each fed\n"
		"                          once it holds 10 samples with a mean RTT >= 100us\n"
		"  --window-size N         samples a window needs to count (default %u, >= 10)\n"
		"  --percentile P          window RTT at percentile P in (0,1) instead of the "
		"mean\n"
		"  --min-window DUR        shortest window (default 1s, >= 100ms)\n"
		"  --max-window DUR        longest window (default 1s, >= 100ms)\n"
		"  --min-rtt-threshold DUR ignore faster samples (default 100us)\n"
		"  The window options imply --windowed. DUR takes a unit: 500ms, 1s, 100us.\n"
		"\n"
		"Algorithms and their parameters:\n",
		LS_ALGO_DEFAULT, LS_WINDOW_SIZE);
	ls_algo_print_help(out);
	fprintf(out, "\nExit status: 0 ok, 1 runtime error, 2 usage or input error.\n");
}

struct replay_args {
	struct ls_replay_opts opts;
	char *params; /* joined "k=v,k=v", owned */
	size_t params_len;
	bool help;
};

static int args_add_param(struct replay_args *a, const char *kv)
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

/*
 * Matches "--name VALUE" and "--name=VALUE". Returns 1 when arg is this
 * option (with *value set, *i advanced), 0 when not, -EINVAL when its value
 * is missing.
 */
static int take_option(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *arg = argv[*i];
	size_t len = strlen(name);

	if (strncmp(arg, name, len))
		return 0;
	if (arg[len] == '=') {
		*value = arg + len + 1;
		return 1;
	}
	if (arg[len])
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "replay: %s needs a value\n", name);
		return -EINVAL;
	}
	*value = argv[++*i];
	return 1;
}

static int parse_window_option(struct ls_window_config *w, const char *name, const char *value)
{
	uint32_t size;

	if (!strcmp(name, "--window-size")) {
		if (ls_parse_u32(value, &size))
			return -EINVAL;
		w->window_size = size;
		return 0;
	}
	if (!strcmp(name, "--percentile"))
		return ls_parse_real(value, &w->percentile);
	if (!strcmp(name, "--min-window"))
		return ls_parse_duration_ns(value, &w->min_window_ns);
	if (!strcmp(name, "--max-window"))
		return ls_parse_duration_ns(value, &w->max_window_ns);
	return ls_parse_duration_ns(value, &w->min_rtt_threshold_ns);
}

static const char *const window_options[] = {
	"--window-size", "--percentile", "--min-window", "--max-window", "--min-rtt-threshold",
};

/* Returns 1 if argv[*i] was a window option, 0 if not, -EINVAL if bad. */
static int take_window_option(struct replay_args *a, int argc, char **argv, int *i)
{
	const char *value;
	size_t k;
	int ret;

	for (k = 0; k < sizeof(window_options) / sizeof(window_options[0]); k++) {
		ret = take_option(argc, argv, i, window_options[k], &value);
		if (ret <= 0) {
			if (ret < 0)
				return ret;
			continue;
		}
		if (parse_window_option(&a->opts.window, window_options[k], value)) {
			fprintf(stderr, "replay: bad value '%s' for %s\n", value,
				window_options[k]);
			return -EINVAL;
		}
		a->opts.windowed = true;
		return 1;
	}
	return 0;
}

static int parse_arg(struct replay_args *a, int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *value;
	int ret;

	if (!strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "help")) {
		a->help = true;
		return 0;
	}
	if (!strcmp(arg, "--windowed")) {
		a->opts.windowed = true;
		return 0;
	}
	ret = take_option(argc, argv, i, "--interval", &value);
	if (ret > 0 &&
	    (ls_parse_duration_ns(value, &a->opts.interval_ns) || !a->opts.interval_ns)) {
		fprintf(stderr, "replay: bad value '%s' for --interval\n", value);
		return -EINVAL;
	}
	if (ret)
		return ret < 0 ? ret : 0;
	ret = take_option(argc, argv, i, "--algo", &value);
	if (ret > 0)
		a->opts.algo = value;
	if (ret)
		return ret < 0 ? ret : 0;
	ret = take_option(argc, argv, i, "--param", &value);
	if (ret)
		return ret < 0 ? ret : args_add_param(a, value);
	ret = take_window_option(a, argc, argv, i);
	if (ret)
		return ret < 0 ? ret : 0;
	if (arg[0] != '-' && strchr(arg, '='))
		return args_add_param(a, arg);
	fprintf(stderr, "replay: unknown argument '%s' (try 'loadshed replay --help')\n", arg);
	return -EINVAL;
}

static int exit_status(int ret)
{
	switch (ret) {
	case 0:
		return 0;
	case -EINVAL:
	case -ENOENT:
	case -EBADMSG:
		return EXIT_USAGE;
	default:
		return EXIT_RUNTIME;
	}
}

int cmd_replay(int argc, char **argv)
{
	struct replay_args a = {0};
	char err[512] = "";
	int i, ret = 0;

	ls_replay_opts_default(&a.opts);
	for (i = 1; i < argc && !ret; i++)
		ret = parse_arg(&a, argc, argv, &i);
	if (ret == -ENOMEM)
		fprintf(stderr, "replay: out of memory\n");
	if (ret)
		goto out;
	if (a.help) {
		replay_usage(stdout);
		goto out;
	}
	a.opts.params = a.params;
	ret = ls_replay_run(stdin, stdout, &a.opts, err, sizeof(err));
	if (ret)
		fprintf(stderr, "replay: %s\n", *err ? err : strerror(-ret));
out:
	free(a.params);
	return exit_status(ret);
}
