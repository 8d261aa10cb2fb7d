// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `loadshed replay` (user/replay.h) on any options and any CSV. The first
 * bytes choose the options as the command line would set them:
 *
 *   byte 0   algorithm: fixed, aimd, vegas, gradient2, envoy, delay, or none (the default)
 *   byte 1   bit 0 --windowed, bit 1 --interval, bit 2 --percentile,
 *            bits 3-4 --window-size, bits 5-7 which --interval
 *   byte 2   the percentile, in (0, 1.2): some are refused
 *   byte 3   --min-window (bits 0-2) and --max-window (bits 3-5)
 *   byte 4   n, then n bytes of parameters ("k=v,k=v")
 *   rest     the samples, CSV
 *
 * Whatever they are: no crash, leak or undefined behaviour; an error is
 * one of those replay.h lists, with a sentence; and a run that returns 0
 * printed the header and then only well-formed lines, start_ns,limit,
 * estimate, with 1 <= limit <= 10^6 and a finite estimate in range, the
 * same lines on a second run (replay is deterministic).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "loadshed.h"
#include "replay.h"
#include "lib/fuzz.h"

#define HEADER_BYTES 5
#define MAX_CSV	     (256 * 1024)

static const char *const algos[] = {"fixed", "aimd", "vegas", "gradient2", "envoy", "delay", NULL};
static const uint32_t window_sizes[] = {LS_WINDOW_SIZE, 11, 100, 9};
static const uint64_t intervals_ns[] = {
	100000000ull, 1000000000ull, 1, 1000, 1000000, 10000000000ull, 37000000, UINT64_MAX / 3,
};
static const uint64_t windows_ns[] = {
	LS_WINDOW_SHORTEST_NS,
	1000000000ull,
	50000000ull,
	250000000ull,
	60000000000ull,
	0,
	UINT64_MAX,
	LS_WINDOW_SHORTEST_NS + 1,
};

struct run {
	int rc;
	char err[512];
	char *out;
	size_t out_len;
};

static void replay(const struct ls_replay_opts *opts, const uint8_t *csv, size_t csv_len,
		   struct run *r)
{
	static const char blank[] = "\n";
	FILE *in, *out;

	/* fmemopen refuses an empty buffer; a blank line is read as nothing. */
	in = csv_len ? fmemopen((void *)csv, csv_len, "r") : fmemopen((void *)blank, 1, "r");
	out = open_memstream(&r->out, &r->out_len);
	FUZZ_CHECK(in && out, "memory streams: %s", strerror(errno));
	r->err[0] = '\0';
	r->rc = ls_replay_run(in, out, opts, r->err, sizeof(r->err));
	fclose(in);
	fclose(out);
}

/* "digits," at *p: the number in *v, p past the comma (or the end). */
static int take_u64(const char **p, char end, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (*s != end)
		return -1;
	*v = n;
	*p = s + 1;
	return 0;
}

/* One output line: start_ns,limit,estimate (estimate with three decimals). */
static void check_line(const char *line, size_t lineno)
{
	const char *p = line, *dot;
	uint64_t start, limit, whole, frac;
	double estimate;

	FUZZ_CHECK(!take_u64(&p, ',', &start) && !take_u64(&p, ',', &limit),
		   "output line %zu is not start_ns,limit,estimate: '%s'", lineno, line);
	dot = strchr(p, '.');
	FUZZ_CHECK(dot && !take_u64(&p, '.', &whole) && strlen(dot + 1) == 3 &&
			   !take_u64(&p, '\0', &frac),
		   "output line %zu: estimate is not a number with three decimals: '%s'", lineno,
		   line);
	FUZZ_CHECK(limit >= 1 && limit <= LS_MAX_LIMIT, "output line %zu: limit %" PRIu64, lineno,
		   limit);
	estimate = (double)whole + (double)frac / 1000;
	FUZZ_CHECK(isfinite(estimate) && estimate <= LS_MAX_LIMIT,
		   "output line %zu: estimate %s out of range", lineno, line);
}

static void check_output(const struct run *r)
{
	static const char header[] = "start_ns,limit,estimate\n";
	char *copy, *line, *rest;
	size_t n = 0;

	FUZZ_CHECK(r->out_len == strlen(r->out), "a NUL byte in the output");
	FUZZ_CHECK(!strncmp(r->out, header, strlen(header)), "the output has no header");
	FUZZ_CHECK(r->out[r->out_len - 1] == '\n', "the output's last line is cut");
	copy = strdup(r->out + strlen(header));
	FUZZ_CHECK(copy, "out of memory");
	for (rest = copy; (line = strsep(&rest, "\n"));) {
		if (!rest && !*line)
			break; /* after the last newline */
		check_line(line, ++n);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ls_replay_opts opts;
	struct run first = {0}, second = {0};
	char params[256];
	size_t n;

	if (size < HEADER_BYTES || size > MAX_CSV)
		return -1;
	ls_replay_opts_default(&opts);
	opts.algo = algos[data[0] % (sizeof(algos) / sizeof(algos[0]))];
	opts.windowed = data[1] & 1;
	if (data[1] & 2)
		opts.interval_ns = intervals_ns[data[1] >> 5];
	if (data[1] & 4)
		opts.window.percentile = (data[2] + 1) * 1.2 / 257;
	opts.window.window_size = window_sizes[(data[1] >> 3) & 3];
	opts.window.min_window_ns = windows_ns[data[3] & 7];
	opts.window.max_window_ns = windows_ns[(data[3] >> 3) & 7];
	n = data[4] % 128;
	if (n > size - HEADER_BYTES)
		n = size - HEADER_BYTES;
	memcpy(params, data + HEADER_BYTES, n);
	params[n] = '\0';
	opts.params = n ? params : NULL;
	data += HEADER_BYTES + n;
	size -= HEADER_BYTES + n;

	replay(&opts, data, size, &first);
	FUZZ_CHECK(!first.rc || first.rc == -ENOENT || first.rc == -EINVAL ||
			   first.rc == -EBADMSG || first.rc == -EIO || first.rc == -ENOMEM,
		   "replay returned %d, which replay.h does not list", first.rc);
	fuzz_check_error_contract("ls_replay_run", first.rc, first.err);
	if (!first.rc) {
		check_output(&first);
		replay(&opts, data, size, &second);
		FUZZ_CHECK(!second.rc && second.out_len == first.out_len &&
				   !memcmp(first.out, second.out, first.out_len),
			   "the same input replayed twice gives other output");
	}
	free(first.out);
	free(second.out);
	return 0;
}
