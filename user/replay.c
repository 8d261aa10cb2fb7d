// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `loadshed replay` (see replay.h). The core, ls_replay_run(), is a pure
 * function of its input stream so that tests drive it with memory streams.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hist.h"
#include "replay.h"

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
	double quantile;	  /* a window's RTT the algorithm wants, or -1: the mean */
	/* While a probe runs: the latencies of the requests admitted since it began. */
	struct ls_latency_hist probe;
	struct {
		uint64_t end_ns;	    /* the open interval ends here */
		struct ls_latency_hist rtt; /* its samples, as the dataplane's histogram */
		uint32_t max_inflight;
		double sum_inflight; /* of its samples, for their mean */
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
 * A probe of the no-load RTT (envoy's) sees the requests admitted since it
 * began, as the dataplane's probe histogram does: by their start time.
 */
static void probe_add(struct replay *r, const struct ls_algo_sample *s)
{
	struct ls_algo_probe p;

	if (ls_algo_probing(r->algo, &p) && s->start_ns >= p.began_ns)
		ls_hist_add(&r->probe, s->rtt_ns);
}

/*
 * The probe's part of a window, after the window fed the algorithm (which
 * changes nothing while a probe runs), as the agent's round: ends a probe
 * that has its samples or timed out, or begins one that is due. True when
 * it began or ended one: the limit changed.
 */
static bool probe_step(struct replay *r, uint64_t now_ns)
{
	if (ls_algo_probe_step(r->algo, now_ns, &r->probe) == LS_PROBE_NONE)
		return false;
	memset(&r->probe, 0, sizeof(r->probe));
	return true;
}

/* A window's RTT: the algorithm's quantile, else the mean without outliers. */
static uint64_t interval_rtt_ns(const struct replay *r)
{
	if (r->quantile >= 0)
		return ls_hist_quantile_ns(&r->iv.rtt, r->quantile);
	return ls_hist_window_rtt_ns(&r->iv.rtt, 0);
}

/*
 * Closes the open interval as the agent's round would: a window with too
 * few samples stays open (the agent keeps its baseline until it has them).
 * A probe's step runs at every close, and a line is printed when the window
 * fed the algorithm or a probe began or ended.
 */
static int interval_close(struct replay *r, uint64_t at_ns)
{
	struct ls_algo_sample s = {
		.start_ns = at_ns,
		.inflight = r->iv.max_inflight,
		.inflight_mean = r->iv.rtt.count ? r->iv.sum_inflight / r->iv.rtt.count : 0,
		.did_drop = r->iv.did_drop,
	};
	bool fed = false;

	if (r->iv.rtt.count >= LS_INTERVAL_MIN_SAMPLES) {
		s.rtt_ns = interval_rtt_ns(r);
		memset(&r->iv.rtt, 0, sizeof(r->iv.rtt));
		r->iv.max_inflight = 0;
		r->iv.sum_inflight = 0;
		r->iv.did_drop = false;
		if (s.rtt_ns >= LS_INTERVAL_MIN_RTT_NS) {
			ls_algo_update(r->algo, &s);
			fed = true;
		}
	}
	if (probe_step(r, at_ns) || fed)
		return replay_print(r, at_ns);
	return 0;
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
	probe_add(r, s);
	ls_hist_add(&r->iv.rtt, s->rtt_ns);
	if (s->inflight > r->iv.max_inflight)
		r->iv.max_inflight = s->inflight;
	r->iv.sum_inflight += s->inflight;
	r->iv.did_drop |= s->did_drop;
	return ret;
}

/*
 * Per sample, and in --windowed mode per closed window, a probe's step
 * runs after the update, at the end of the sample that made it (the time
 * it was seen); a probe counts the samples that started since it began.
 */
static int replay_sample(struct replay *r, const struct ls_algo_sample *s)
{
	struct ls_algo_sample closed;

	if (r->interval_ns)
		return interval_add(r, s);
	probe_add(r, s);
	if (!r->window) {
		ls_algo_update(r->algo, s);
		probe_step(r, s->start_ns + s->rtt_ns);
		return replay_print(r, s->start_ns);
	}
	if (!ls_window_add(r->window, s, &closed))
		return 0;
	ls_algo_update(r->algo, &closed);
	probe_step(r, s->start_ns + s->rtt_ns);
	return replay_print(r, closed.start_ns);
}

static bool is_skipped(const char *line)
{
	return !*line || *line == '#';
}

/* A sample is under 100 characters; a comment may be long, but not endless. */
#define LINE_MAX_LEN 4096

/*
 * Reads a line, without its newline, into buf (LINE_MAX_LEN + 1 bytes):
 * its length, -1 at the end of the input, or -EMSGSIZE for a longer line,
 * read no further (the input may be /dev/zero).
 */
static int read_line(FILE *in, char *buf)
{
	int c, n = 0;

	while ((c = getc(in)) != EOF && c != '\n') {
		if (n == LINE_MAX_LEN)
			return -EMSGSIZE;
		buf[n++] = (char)c;
	}
	buf[n] = 0;
	return c == EOF && !n ? -1 : n;
}

static int replay_stream(struct replay *r, FILE *in, char *err, size_t errlen)
{
	struct ls_algo_sample s;
	unsigned long lineno = 0;
	bool seen_data = false;
	char buf[LINE_MAX_LEN + 1], *line;
	int n, ret = 0;

	while ((n = read_line(in, buf)) != -1) {
		lineno++;
		if (n < 0) {
			snprintf(err, errlen, "line %lu: longer than %d characters", lineno,
				 LINE_MAX_LEN);
			ret = -EBADMSG;
			break;
		}
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
	return ret;
}

/*
 * --windowed: a window's RTT is the algorithm's quantile when it wants one
 * and --percentile gave none (the window's percentile is below 1: p100 is
 * its largest RTT, the last index).
 */
static void window_for(const struct replay *r, const struct ls_replay_opts *opts,
		       struct ls_window_config *window)
{
	*window = opts->window;
	if (window->percentile == 0 && r->quantile > 0)
		window->percentile = r->quantile < 1 ? r->quantile : nextafter(1.0, 0.0);
}

int ls_replay_run(FILE *in, FILE *out, const struct ls_replay_opts *opts, char *err, size_t errlen)
{
	struct ls_window_config window;
	struct replay r = {.out = out};
	int ret;

	if (err && errlen)
		err[0] = '\0';
	ret = ls_algo_create(opts->algo ? opts->algo : LS_ALGO_DEFAULT, opts->params, &r.algo, err,
			     errlen);
	if (ret)
		return ret;
	r.quantile = ls_algo_sample_quantile(r.algo);
	window_for(&r, opts, &window);
	if (opts->windowed) {
		ret = ls_window_create(&window, &r.window, err, errlen);
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
