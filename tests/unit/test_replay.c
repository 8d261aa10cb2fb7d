// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `loadshed replay`: CSV in, limits out, through memory streams. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "commands.h"
#include "replay.h"

struct run {
	int ret;
	char *out;
	char err[256];
};

static void replay(struct run *r, const char *input, const char *algo, const char *params,
		   bool windowed)
{
	struct ls_replay_opts opts;
	size_t out_len = 0;
	FILE *in, *out;

	ls_replay_opts_default(&opts);
	if (algo)
		opts.algo = algo;
	opts.params = params;
	opts.windowed = windowed;
	in = fmemopen((void *)input, strlen(input), "r");
	out = open_memstream(&r->out, &out_len);
	assert_non_null(in);
	assert_non_null(out);
	r->err[0] = '\0';
	r->ret = ls_replay_run(in, out, &opts, r->err, sizeof(r->err));
	fclose(in);
	fclose(out);
}

static void replay_prints_header_and_limit_after_each_sample(void **state)
{
	struct run r = {0};

	(void)state;
	replay(&r, "0,1000000,15,0\n5,1000000,0,1\n", "aimd", "initial_limit=30", false);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.out, "start_ns,limit,estimate\n"
				   "0,31,31.000\n"
				   "5,27,27.000\n");
	free(r.out);
}

/* A line is read up to a bound, never whole: the input may be /dev/zero. */
static void replay_refuses_a_line_past_its_bound(void **state)
{
	static char zeros[65536], comment[10002];
	struct ls_replay_opts opts;
	struct run r = {0};
	char err[256] = "", *out = NULL;
	size_t out_len = 0;
	FILE *in = fmemopen(zeros, sizeof(zeros), "r"), *o = open_memstream(&out, &out_len);

	(void)state;
	assert_non_null(in);
	assert_non_null(o);
	ls_replay_opts_default(&opts);
	assert_int_equal(ls_replay_run(in, o, &opts, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "line 1: longer than 4096 characters");
	fclose(in);
	fclose(o);
	free(out);
	memset(comment, 'x', sizeof(comment) - 1);
	comment[0] = '#';
	replay(&r, comment, NULL, NULL, false);
	assert_int_equal(r.ret, -EBADMSG);
	assert_string_equal(r.err, "line 1: longer than 4096 characters");
	free(r.out);
}

static void replay_prints_vegas_estimate_next_to_limit(void **state)
{
	struct run r = {0};

	(void)state;
	replay(&r, "0,10000000,10,0\n1,10000000,11,0\n", "vegas",
	       "alpha=3,beta=6,initial_limit=10,max_limit=20,smoothing=0.5", false);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.out, "start_ns,limit,estimate\n"
				   "0,10,10.000\n"
				   "1,13,13.000\n");
	free(r.out);
}

static void replay_skips_header_comments_blank_lines_and_crlf(void **state)
{
	struct run r = {0};

	(void)state;
	replay(&r,
	       "start_ns,rtt_ns,inflight,did_drop\r\n"
	       "# recorded on host a\n"
	       "\n"
	       "  7 , 1000000 , 10 , false \r\n"
	       "8,1000000,10,true\n",
	       "aimd", NULL, false);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.out, "start_ns,limit,estimate\n7,21,21.000\n8,20,20.000\n");
	free(r.out);
}

static void replay_malformed_line_names_its_number(void **state)
{
	struct run r = {0};

	(void)state;
	replay(&r, "0,1000000,10,0\n\n0,1000000,ten,0\n", "aimd", NULL, false);
	assert_int_equal(r.ret, -EBADMSG);
	assert_non_null(strstr(r.err, "line 3"));
	assert_non_null(strstr(r.err, "inflight"));
	free(r.out);
}

static void replay_text_after_data_is_malformed_not_a_header(void **state)
{
	struct run r = {0};

	(void)state;
	replay(&r, "0,1000000,10,0\nstart_ns,rtt_ns,inflight,did_drop\n", "aimd", NULL, false);
	assert_int_equal(r.ret, -EBADMSG);
	assert_non_null(strstr(r.err, "line 2"));
	free(r.out);
}

static void replay_rejects_wrong_field_count_and_drop_value(void **state)
{
	struct run r = {0};

	(void)state;
	replay(&r, "0,1000000,10\n", "aimd", NULL, false);
	assert_int_equal(r.ret, -EBADMSG);
	free(r.out);
	replay(&r, "0,1000000,10,0,9\n", "aimd", NULL, false);
	assert_int_equal(r.ret, -EBADMSG);
	free(r.out);
	replay(&r, "0,1000000,10,2\n", "aimd", NULL, false);
	assert_int_equal(r.ret, -EBADMSG);
	assert_non_null(strstr(r.err, "did_drop"));
	free(r.out);
	replay(&r, "0,1000000,4294967296,0\n", "aimd", NULL, false);
	assert_int_equal(r.ret, -EBADMSG);
	free(r.out);
}

static void replay_bad_parameter_fails_before_any_output(void **state)
{
	struct run r = {0};

	(void)state;
	replay(&r, "0,1000000,10,0\n", "aimd", "backoff_ratio=2", false);
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(r.err, "backoff_ratio"));
	assert_string_equal(r.out, "");
	free(r.out);
	replay(&r, "", "nope", NULL, false);
	assert_int_equal(r.ret, -ENOENT);
	free(r.out);
}

static void replay_windowed_prints_only_full_windows(void **state)
{
	char input[1024];
	size_t used = 0;
	struct run r = {0};
	int i;

	(void)state;
	/* 0: closes the empty first window; 1..9 fill it; 2 s closes it with 10 */
	used += (size_t)snprintf(input + used, sizeof(input) - used, "0,1000000,1,0\n");
	for (i = 1; i <= 9; i++)
		used += (size_t)snprintf(input + used, sizeof(input) - used,
					 "%d0000000,%d000000,%d,0\n", i, i, 20);
	used += (size_t)snprintf(input + used, sizeof(input) - used, "2000000000,10000000,20,0\n");
	replay(&r, input, "aimd", NULL, true);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.out, "start_ns,limit,estimate\n2000000000,21,21.000\n");
	free(r.out);
}

static void replay_interval_groups_samples_as_the_agent_does(void **state)
{
	struct ls_replay_opts opts;
	char *input = malloc(64 * 1000), *out = NULL;
	size_t used = 0, out_len = 0;
	FILE *in, *o;
	char err[256];
	int i, lines = 0;

	(void)state;
	assert_non_null(input);
	/* 1 s of samples 1 ms apart, 1 ms each, 20 in flight: ten 100 ms windows. */
	for (i = 0; i < 1000; i++)
		used += (size_t)sprintf(input + used, "%d,1000000,20,0\n", i * 1000000);
	/* 5 samples in a last window: too few, the agent would not feed it. */
	for (i = 0; i < 5; i++)
		used += (size_t)sprintf(input + used, "%d,1000000,10,0\n", 1500000000 + i);
	ls_replay_opts_default(&opts);
	opts.algo = "aimd";
	opts.interval_ns = 100000000;
	in = fmemopen(input, used, "r");
	o = open_memstream(&out, &out_len);
	assert_int_equal(ls_replay_run(in, o, &opts, err, sizeof(err)), 0);
	fclose(in);
	fclose(o);
	for (char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	/* A header and one line per fed window; AIMD adds 1 per window: 20 -> 30. */
	assert_int_equal(lines, 1 + 10);
	assert_non_null(strstr(out, "\n1000000000,30,30.000\n"));
	free(out);
	free(input);
}

struct trace_sample {
	uint64_t start_ns, rtt_ns;
};

static int by_end(const void *a, const void *b)
{
	const struct trace_sample *x = a, *y = b;
	uint64_t ex = x->start_ns + x->rtt_ns, ey = y->start_ns + y->rtt_ns;

	return ex < ey ? -1 : ex > ey;
}

/*
 * seconds of 1 000 requests/s of 10-12 ms, 150 in flight, in end-time order
 * (as the dataplane records them); with stalls, also one request of 10 s
 * every 500 ms: a client that sent half a request and stalled, were it
 * counted, or a request the server parked. Returns gradient2's lowest limit
 * over the agent's 100 ms windows, from 200.
 */
static unsigned int gradient2_over_trace(int seconds, bool stalls)
{
	size_t n = (size_t)seconds * 1000 + (size_t)seconds * 2, used = 0, i, out_len = 0;
	struct trace_sample *t = calloc(n, sizeof(*t));
	char *input = malloc(n * 48), *out = NULL, *last;
	struct ls_replay_opts opts;
	unsigned int limit = 0;
	char err[256];
	FILE *in, *o;

	assert_non_null(t);
	assert_non_null(input);
	n = 0;
	for (i = 0; i < (size_t)seconds * 1000; i++)
		t[n++] = (struct trace_sample){i * 1000000, 10000000 + (i * 7919 % 2000001)};
	/* Those that end within the trace: the rest had not ended when it did. */
	if (stalls)
		for (i = 0; i < (size_t)(seconds - 10) * 2; i++)
			t[n++] = (struct trace_sample){i * 500000000 + 250000, 10000000000ull};
	qsort(t, n, sizeof(*t), by_end);
	for (i = 0; i < n; i++)
		used += (size_t)sprintf(input + used, "%llu,%llu,150,0\n",
					(unsigned long long)t[i].start_ns,
					(unsigned long long)t[i].rtt_ns);
	ls_replay_opts_default(&opts);
	opts.algo = "gradient2";
	opts.params = "initial_limit=200";
	opts.interval_ns = 100000000;
	in = fmemopen(input, used, "r");
	o = open_memstream(&out, &out_len);
	assert_non_null(in);
	assert_non_null(o);
	assert_int_equal(ls_replay_run(in, o, &opts, err, sizeof(err)), 0);
	fclose(in);
	fclose(o);
	/* The lowest limit of the run: lines of start_ns,limit,estimate after the header. */
	for (last = strchr(out, '\n'); last && last[1]; last = strchr(last + 1, '\n')) {
		unsigned int l;

		assert_int_equal(sscanf(last + 1, "%*u,%u,", &l), 1);
		if (!limit || l < limit)
			limit = l;
	}
	free(out);
	free(input);
	free(t);
	return limit;
}

/*
 * A few outliers do not move the limit: the agent's window statistic (the
 * mean without outliers) gives the same limit with one 10 s request every
 * 500 ms as without (with the plain mean it fell from 200 to 35 in 30 s).
 */
static void replay_interval_limit_ignores_a_few_stalled_requests(void **state)
{
	unsigned int clean, stalled;

	(void)state;
	clean = gradient2_over_trace(30, false);
	stalled = gradient2_over_trace(30, true);
	print_message("lowest limit: %u without the stalls, %u with them\n", clean, stalled);
	assert_true(clean >= 150);
	if (stalled * 10 < clean * 9)
		fail_msg("limit %u with the stalls, %u without", stalled, clean);
}

static void replay_is_deterministic(void **state)
{
	char *input = malloc(64 * 5000);
	struct run a = {0}, b = {0};
	size_t used = 0;
	int i;

	(void)state;
	assert_non_null(input);
	for (i = 0; i < 5000; i++)
		used += (size_t)sprintf(input + used, "%d,%d,%d,%d\n", i * 1000,
					(5 + (i * 7919) % 50) * 1000000, 500, i % 101 == 0);
	replay(&a, input, "vegas", "probe_multiplier=1", false);
	replay(&b, input, "vegas", "probe_multiplier=1", false);
	assert_int_equal(a.ret, 0);
	assert_int_equal(b.ret, 0);
	assert_string_equal(a.out, b.out);
	free(a.out);
	free(b.out);
	free(input);
}

/* One line of replay's output. */
struct limit_line {
	uint64_t at_ns;
	unsigned int limit;
};

/*
 * Replays the trace t (n samples, in end-time order, 20 in flight) with
 * envoy and params in the agent's windows of interval_ns; returns the
 * output lines in *lines (malloc'd) and their number.
 */
static size_t envoy_over_trace(const struct trace_sample *t, size_t n, const char *params,
			       uint64_t interval_ns, struct limit_line **lines)
{
	char *input = malloc(n * 48 + 1), *out = NULL, *line;
	struct ls_replay_opts opts;
	size_t used = 0, out_len = 0, nr = 0;
	char err[256];
	FILE *in, *o;

	assert_non_null(input);
	for (size_t i = 0; i < n; i++)
		used += (size_t)sprintf(input + used, "%llu,%llu,20,0\n",
					(unsigned long long)t[i].start_ns,
					(unsigned long long)t[i].rtt_ns);
	ls_replay_opts_default(&opts);
	opts.algo = "envoy";
	opts.params = params;
	opts.interval_ns = interval_ns;
	in = fmemopen(input, used, "r");
	o = open_memstream(&out, &out_len);
	assert_non_null(in);
	assert_non_null(o);
	if (ls_replay_run(in, o, &opts, err, sizeof(err)))
		fail_msg("replay: %s", err);
	fclose(in);
	fclose(o);
	*lines = calloc(out_len / 4 + 1, sizeof(**lines));
	assert_non_null(*lines);
	for (line = strchr(out, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
		unsigned long long at;

		assert_int_equal(sscanf(line + 1, "%llu,%u,", &at, &(*lines)[nr].limit), 2);
		(*lines)[nr++].at_ns = at;
	}
	free(out);
	free(input);
	return nr;
}

/* 1 000 requests/s, 1 ms apart from start_ns for `ms`, each taking rtt_ns. */
static size_t steady(struct trace_sample *t, uint64_t start_ns, int ms, uint64_t rtt_ns)
{
	for (int i = 0; i < ms; i++)
		t[i] = (struct trace_sample){start_ns + (uint64_t)i * 1000000, rtt_ns};
	return (size_t)ms;
}

/*
 * The service's own latency doubles at 10 s (10 ms to 20 ms, no
 * queueing): envoy reads the doubled RTT as queueing and halves its limit
 * every window (no buffer) down to the minimum, 3; the fifth window that
 * finds it there begins a probe, which measures 20 ms; from the next
 * window the limit grows back to the maximum. With a probe only every
 * interval (here an hour) it would have stayed at 3.
 */
static void replay_envoy_reprobes_at_the_minimum_and_recovers(void **state)
{
	struct trace_sample *t = calloc(30000, sizeof(*t));
	struct limit_line *l;
	size_t n, i, first_min = 0, run = 0;
	unsigned int before = 0;

	(void)state;
	assert_non_null(t);
	n = steady(t, 0, 10000, 10000000);
	n += steady(t + n, 10000000000ull, 20000, 20000000);
	n = envoy_over_trace(t, n, "buffer=0,interval=3600s", 100000000, &l);
	for (i = 0; i < n && l[i].at_ns < 10000000000ull; i++)
		before = l[i].limit;
	assert_int_equal(before, 1000);
	for (; i < n && !first_min; i++)
		if (l[i].limit == 3)
			first_min = i;
	assert_true(first_min > 0);
	/* The window that brought it to 3, five that kept it there, the probe's. */
	for (i = first_min; i < n && l[i].limit == 3; i++)
		run++;
	assert_int_equal(run, 1 + 5 + 1);
	assert_true(l[first_min + run].limit > 3);
	assert_int_equal(l[n - 1].limit, 1000);
	free(l);
	free(t);
}

/*
 * MinRTTEpoch (Envoy's test, in replay's windows): requests admitted
 * before a probe began and ending while it runs are not its samples. The
 * first probe begins at 1.1 s; the requests ending until 2 s all started
 * before it (1 s each), so it runs, the limit pinned at 3, until requests
 * of 10 ms started at 2 s give it its 50 samples; then the limit is 40
 * again and grows.
 */
static void replay_envoy_probe_counts_only_requests_admitted_since(void **state)
{
	struct trace_sample *t = calloc(2000, sizeof(*t));
	struct limit_line *l;
	size_t n, i;

	(void)state;
	assert_non_null(t);
	n = steady(t, 0, 1000, 1000000000);
	n += steady(t + n, 2000000000, 1000, 10000000);
	n = envoy_over_trace(t, n, "initial_limit=40", 100000000, &l);
	assert_true(n > 10);
	assert_int_equal(l[0].at_ns, 1100000000);
	assert_int_equal(l[0].limit, 3);
	for (i = 1; i < n && l[i].at_ns <= 2000000000; i++)
		assert_int_equal(l[i].limit, 3);
	assert_true(i < n && l[i].at_ns == 2100000000);
	assert_int_equal(l[i].limit, 40);
	assert_true(l[n - 1].limit > 40);
	free(l);
	free(t);
}

/*
 * Per sample, a probe begins at the end of the first sample (no minRTT
 * yet), counts only samples that started since (not those of 1 and 2 ms),
 * and ends with the third of them; the limit it saved, 20, comes back.
 */
static void replay_envoy_probes_per_sample_too(void **state)
{
	struct run r = {0};

	(void)state;
	replay(&r,
	       "0,10000000,5,0\n1000000,10000000,5,0\n2000000,10000000,5,0\n"
	       "12000000,10000000,5,0\n13000000,10000000,5,0\n14000000,10000000,5,0\n"
	       "15000000,10000000,5,0\n",
	       "envoy", "initial_limit=20,request_count=3", false);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.out, "start_ns,limit,estimate\n"
				   "0,3,3.000\n1000000,3,3.000\n2000000,3,3.000\n"
				   "12000000,3,3.000\n13000000,3,3.000\n14000000,20,20.000\n"
				   "15000000,29,29.000\n");
	free(r.out);
}

/*
 * Per sample, ends come out of order when latencies differ: a 2 ms request
 * that started 1 ms after a 10 ms one ends 7 ms before it. A probe that
 * began at the long one's end is not timed out by the short ones ending
 * before it began: it gets its samples, and with a minRTT the limit moves
 * off the 20 it saved. (It timed out at each such sample, and without any
 * minRTT the limit went between 3 and 20 for good.)
 */
static void replay_envoy_probe_survives_ends_out_of_order(void **state)
{
	char *input = malloc(40 * 400);
	struct run r = {0};
	size_t used = 0;
	const char *line;
	bool moved = false;

	(void)state;
	assert_non_null(input);
	for (int i = 0; i < 400; i++)
		used += (size_t)sprintf(input + used, "%d,%d,5,0\n", 1000000000 + i * 1000000,
					i % 2 ? 2000000 : 10000000);
	replay(&r, input, "envoy", "initial_limit=20", false);
	assert_int_equal(r.ret, 0);
	for (line = strchr(r.out, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
		unsigned long long at;
		unsigned int limit;

		assert_int_equal(sscanf(line + 1, "%llu,%u,", &at, &limit), 2);
		if (limit != 3 && limit != 20)
			moved = true;
	}
	assert_true(moved);
	free(r.out);
	free(input);
}

static int cmd(int argc, const char **argv)
{
	static const struct ls_cmd *const table[] = {&ls_cmd_replay, NULL};

	return ls_cli_dispatch(table, argc, (char **)argv);
}

static void cmd_usage_errors_exit_two(void **state)
{
	const char *unknown[] = {"replay", "--bogus"};
	const char *no_value[] = {"replay", "--algo"};
	const char *bad_algo[] = {"replay", "--algo", "nope"};
	const char *bad_param[] = {"replay", "--algo=aimd", "--param", "timeout=5"};
	const char *bad_window[] = {"replay", "--window-size", "9"};
	const char *bad_pct[] = {"replay", "--percentile", "high"};

	(void)state;
	assert_int_equal(cmd(2, unknown), 2);
	assert_int_equal(cmd(2, no_value), 2);
	assert_int_equal(cmd(3, bad_algo), 2);
	assert_int_equal(cmd(4, bad_param), 2);
	assert_int_equal(cmd(3, bad_window), 2);
	assert_int_equal(cmd(3, bad_pct), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(replay_prints_header_and_limit_after_each_sample),
		cmocka_unit_test(replay_prints_vegas_estimate_next_to_limit),
		cmocka_unit_test(replay_skips_header_comments_blank_lines_and_crlf),
		cmocka_unit_test(replay_malformed_line_names_its_number),
		cmocka_unit_test(replay_refuses_a_line_past_its_bound),
		cmocka_unit_test(replay_text_after_data_is_malformed_not_a_header),
		cmocka_unit_test(replay_rejects_wrong_field_count_and_drop_value),
		cmocka_unit_test(replay_bad_parameter_fails_before_any_output),
		cmocka_unit_test(replay_windowed_prints_only_full_windows),
		cmocka_unit_test(replay_interval_groups_samples_as_the_agent_does),
		cmocka_unit_test(replay_interval_limit_ignores_a_few_stalled_requests),
		cmocka_unit_test(replay_is_deterministic),
		cmocka_unit_test(replay_envoy_reprobes_at_the_minimum_and_recovers),
		cmocka_unit_test(replay_envoy_probe_counts_only_requests_admitted_since),
		cmocka_unit_test(replay_envoy_probes_per_sample_too),
		cmocka_unit_test(replay_envoy_probe_survives_ends_out_of_order),
		cmocka_unit_test(cmd_usage_errors_exit_two),
	};

	return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
