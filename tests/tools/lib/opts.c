// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "opts.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Where the help text of an option starts, at most. */
#define HELP_COL_MAX 32
/* getopt_long's value of an option without a short letter: LONG_ONLY + index. */
#define LONG_ONLY 256

static const struct opt help_opt = {
	.name = "help",
	.short_name = 'h',
	.type = OPT_FLAG,
	.help = "this text",
};

static size_t count_opts(const struct opt *opts)
{
	size_t n = 0;

	while (opts[n].name)
		n++;
	return n;
}

/* "  -t, --target ADDR:PORT" or "      --seed N"; returns its length. */
static int left_part(const struct opt *o, char *buf, size_t len)
{
	char sh[8] = "    ";

	if (o->short_name)
		snprintf(sh, sizeof(sh), "-%c, ", o->short_name);
	return snprintf(buf, len, "  %s--%s%s%s", sh, o->name, o->arg ? " " : "",
			o->arg ? o->arg : "");
}

static void print_opt(FILE *f, const struct opt *o, int col)
{
	const char *help = o->help ? o->help : "";
	char left[128];
	int n = left_part(o, left, sizeof(left));

	fputs(left, f);
	if (n + 2 > col)
		fprintf(f, "\n%*s", col, "");
	else
		fprintf(f, "%*s", col - n, "");
	for (const char *p = help; *p; p++) {
		fputc(*p, f);
		if (*p == '\n' && p[1])
			fprintf(f, "%*s", col, "");
	}
	fputc('\n', f);
}

void opts_usage(const struct opt_tool *tool, FILE *f)
{
	char left[128];
	int col = 0, n;
	size_t i;

	for (i = 0; tool->opts[i].name; i++) {
		n = left_part(&tool->opts[i], left, sizeof(left)) + 2;
		if (n > col && n <= HELP_COL_MAX)
			col = n;
	}
	fprintf(f, "Usage: %s %s\n\n", tool->name, tool->synopsis);
	if (tool->about)
		fprintf(f, "%s\n\n", tool->about);
	for (i = 0; tool->opts[i].name; i++)
		print_opt(f, &tool->opts[i], col);
	print_opt(f, &help_opt, col);
	if (tool->epilog)
		fprintf(f, "\n%s", tool->epilog);
}

/* Stores value as o says. 0, or -EINVAL after saying why. */
static int apply(const struct opt_tool *tool, const struct opt *o, const char *value)
{
	uint64_t v;
	double d;
	int i;

	switch (o->type) {
	case OPT_FLAG:
		*(bool *)o->dest = true;
		return 0;
	case OPT_STRING:
		*(const char **)o->dest = value;
		return 0;
	case OPT_U64:
	case OPT_UINT:
		if (parse_u64(value, o->min, o->max, &v)) {
			if (o->max == UINT64_MAX)
				fprintf(stderr,
					"%s: --%s wants a whole number from %llu, not '%s'\n",
					tool->name, o->name, (unsigned long long)o->min, value);
			else
				fprintf(stderr,
					"%s: --%s wants a whole number in %llu..%llu, not '%s'\n",
					tool->name, o->name, (unsigned long long)o->min,
					(unsigned long long)o->max, value);
			return -EINVAL;
		}
		if (o->type == OPT_U64)
			*(uint64_t *)o->dest = v;
		else
			*(unsigned int *)o->dest = (unsigned int)v;
		return 0;
	case OPT_DOUBLE:
		if (parse_double(value, o->dmin, o->dmax, &d)) {
			fprintf(stderr, "%s: --%s wants a number in %g..%g, not '%s'\n", tool->name,
				o->name, o->dmin, o->dmax, value);
			return -EINVAL;
		}
		*(double *)o->dest = d;
		return 0;
	case OPT_CHOICE:
		for (i = 0; o->choices[i]; i++) {
			if (!strcmp(value, o->choices[i])) {
				*(int *)o->dest = i;
				return 0;
			}
		}
		fprintf(stderr, "%s: --%s wants one of", tool->name, o->name);
		for (i = 0; o->choices[i]; i++)
			fprintf(stderr, "%s%s", i ? "|" : " ", o->choices[i]);
		fprintf(stderr, ", not '%s'\n", value);
		return -EINVAL;
	case OPT_CALL:
		if (o->parse(value, o->dest)) {
			fprintf(stderr, "%s: bad --%s '%s'\n", tool->name, o->name, value);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

/* The table entry getopt_long's return value c stands for. */
static const struct opt *entry_of(const struct opt *opts, size_t n, int c)
{
	size_t i;

	if (c >= LONG_ONLY && (size_t)(c - LONG_ONLY) < n)
		return &opts[c - LONG_ONLY];
	for (i = 0; i < n; i++)
		if (opts[i].short_name && opts[i].short_name == c)
			return &opts[i];
	return NULL;
}

int opts_parse(const struct opt_tool *tool, int argc, char **argv)
{
	size_t n = count_opts(tool->opts), i, s = 0;
	struct option *longopts = calloc(n + 2, sizeof(*longopts));
	char *shorts = calloc(2 * n + 3, 1);
	bool *given = calloc(n + 1, sizeof(*given));
	const struct opt *o;
	int c, err = 0;

	if (!longopts || !shorts || !given) {
		fprintf(stderr, "%s: out of memory\n", tool->name);
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		o = &tool->opts[i];
		longopts[i].name = o->name;
		longopts[i].has_arg = o->type == OPT_FLAG ? no_argument : required_argument;
		longopts[i].val = o->short_name ? o->short_name : LONG_ONLY + (int)i;
		if (o->short_name) {
			shorts[s++] = o->short_name;
			if (o->type != OPT_FLAG)
				shorts[s++] = ':';
		}
	}
	longopts[n].name = help_opt.name;
	longopts[n].has_arg = no_argument;
	longopts[n].val = help_opt.short_name;
	shorts[s++] = help_opt.short_name;

	while ((c = getopt_long(argc, argv, shorts, longopts, NULL)) != -1) {
		if (c == help_opt.short_name) {
			opts_usage(tool, stdout);
			free(longopts);
			free(shorts);
			free(given);
			exit(EXIT_OK);
		}
		o = entry_of(tool->opts, n, c);
		if (!o) { /* getopt_long said what was wrong */
			opts_usage(tool, stderr);
			err = -EINVAL;
			goto out;
		}
		err = apply(tool, o, optarg);
		if (err)
			goto out;
		given[o - tool->opts] = true;
		if (o->seen)
			*o->seen = true;
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", tool->name, argv[optind]);
		err = -EINVAL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((tool->opts[i].flags & OPT_REQUIRED) && !given[i]) {
			fprintf(stderr, "%s: --%s is required\n", tool->name, tool->opts[i].name);
			opts_usage(tool, stderr);
			err = -EINVAL;
			goto out;
		}
	}
out:
	free(longopts);
	free(shorts);
	free(given);
	return err ? -EINVAL : 0;
}
