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
		cmocka_unit_test(cmd_usage_errors_exit_two),
	};

	return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
