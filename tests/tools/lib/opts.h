/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The test tools' one option parser. A tool describes its options in a
 * table: long name, short letter, what the value is and where it goes, a
 * line of help; opts_parse() does the rest on top of getopt_long, the same
 * way for every tool:
 *
 *   -h, --help        the usage on stdout, exit 0 (EXIT_OK), wherever it
 *                     comes; options before it are parsed first
 *   unknown option, missing value, stray argument
 *                     the usage on stderr, returns -EINVAL
 *   bad value         why on stderr, returns -EINVAL
 *   required option missing
 *                     why and the usage on stderr, returns -EINVAL
 *
 * and the tool exits EXIT_USAGE (2) on -EINVAL. Checks between options
 * (two addresses of one family, say) stay in the tool, after the parse.
 */
#ifndef LS_TOOLS_OPTS_H
#define LS_TOOLS_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* A number in a help string: "at most " OPT_STR(MAX_COUNT). */
#define OPT_STR_(x) #x
#define OPT_STR(x)  OPT_STR_(x)

enum opt_type {
	OPT_FLAG,   /* no value: *(bool *)dest = true */
	OPT_STRING, /* *(const char **)dest = the value, as given */
	OPT_U64,    /* *(uint64_t *)dest, a whole number in [min, max] */
	OPT_UINT,   /* *(unsigned int *)dest, a whole number in [min, max] */
	OPT_DOUBLE, /* *(double *)dest, a number in [dmin, dmax] */
	OPT_CHOICE, /* *(int *)dest = the index of the value in choices */
	OPT_CALL,   /* parse(value, dest): 0, or -errno for a bad value */
};

/* Flags of an option. */
#define OPT_REQUIRED 0x1

struct opt {
	const char *name; /* the long name, without the dashes */
	char short_name;  /* a letter, or 0 for none */
	enum opt_type type;
	void *dest;
	const char *arg;  /* the value's name in the usage ("ADDR:PORT"); none for a flag */
	const char *help; /* the usage text; a '\n' continues it on the next line */
	unsigned int flags;
	bool *seen; /* if set: made true when the option is given */
	uint64_t min, max;
	double dmin, dmax;
	const char *const *choices; /* NULL-terminated */
	int (*parse)(const char *value, void *dest);
};

struct opt_tool {
	const char *name;	/* "ls-conn" */
	const char *synopsis;	/* after "Usage: NAME " */
	const char *about;	/* a paragraph before the options, or NULL */
	const char *epilog;	/* text after the options, or NULL */
	const struct opt *opts; /* ends with an entry whose name is NULL */
};

/*
 * Parses argv by the table. Returns 0, or -EINVAL after saying why on
 * stderr. --help prints the usage and exits 0.
 */
int opts_parse(const struct opt_tool *tool, int argc, char **argv);

/* The usage text: synopsis, about, one line per option, epilog. */
void opts_usage(const struct opt_tool *tool, FILE *f);

#endif
