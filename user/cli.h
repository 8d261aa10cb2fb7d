/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The command line's one grammar, as bpftool's:
 *
 *   loadshed [GLOBAL_OPTIONS] COMMAND [IFACE] [SUBCOMMAND] [OPTIONS] [ARGS]
 *
 * A table of commands, each with its options and its subcommands, drives
 * the dispatcher, `help` at every level and the bash completion. Commands
 * and subcommands may be abbreviated to any unambiguous prefix, except
 * those that destroy state (LS_CMD_EXACT). Options are parsed by one
 * parser from each command's table; global options may stand anywhere
 * before "--".
 */
#ifndef LS_CLI_H
#define LS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One option of a command. */
struct ls_opt {
	const char *name; /* long name, without "--" */
	char short_name;  /* 0: none */
	bool has_arg;
	int id;		      /* handed back to the command */
	const char *arg;      /* the argument's name in help: "N", "FILE" */
	const char *help;     /* one line */
	const char *complete; /* bash completion of its argument: "file", "iface", a word list */
};

/* Command flags. */
#define LS_CMD_EXACT (1u << 0) /* never abbreviated: it destroys state */
#define LS_CMD_IFACE (1u << 1) /* takes IFACE first (before its subcommand) */

struct ls_cmd;

/* What a command's run() gets: the command itself and what stood after it. */
struct ls_call {
	const struct ls_cmd *cmd;
	const char *ifname; /* with LS_CMD_IFACE; else NULL */
	int argc;	    /* the rest: options and arguments */
	char **argv;
};

struct ls_cmd {
	const char *name;
	unsigned int flags;
	const char *args;	   /* what follows, in usage: "FILE", "[--class C] N" */
	const char *summary;	   /* one line */
	const char *help;	   /* more, shown by `COMMAND help`; may be NULL */
	const struct ls_opt *opts; /* terminated by an entry whose name is NULL; may be NULL */
	const struct ls_cmd *const *sub; /* subcommands, NULL-terminated; may be NULL */
	/* Returns the exit code: 0 ok, 1 runtime error, 2 usage error. */
	int (*run)(const struct ls_call *call);
	/* Bash completion of its arguments: "file", "iface", a word list; NULL: none. */
	const char *complete_args;
	/* Extra help (e.g. the algorithms' parameters), after the options. */
	void (*more_help)(FILE *out);
};

/* The global options every command accepts, anywhere before "--". */
enum {
	LS_GOPT_JSON = 1,
	LS_GOPT_PRETTY,
	LS_GOPT_VERBOSE,
	LS_GOPT_VERSION,
};
extern const struct ls_opt ls_global_opts[];

/* The top-level table (main.c), NULL-terminated. */
extern const struct ls_cmd *const ls_commands[];

/*
 * Dispatches argv (from the command word on) through table. Returns the
 * exit code of the command, or of a usage error it prints.
 */
int ls_cli_dispatch(const struct ls_cmd *const *table, int argc, char **argv);

/* True when arg asks for help: "help", "-h" or "--help". */
bool ls_is_help(const char *arg);

/*
 * The one option parser. Calls on_opt(ctx, id, value) for every option of
 * opts in argv (--name VALUE, --name=VALUE, -s VALUE, -sVALUE); everything
 * else goes, in order, to pos (up to max_pos). "--" ends the options.
 * Returns the number of positionals, or a negative errno with err filled:
 * -EINVAL for an unknown option, a missing value or too many arguments,
 * or what on_opt returned (it fills err too).
 */
int ls_opts_parse(int argc, char **argv, const struct ls_opt *opts,
		  int (*on_opt)(void *ctx, int id, const char *value, char *err, size_t errlen),
		  void *ctx, char **pos, int max_pos, char *err, size_t errlen);

/*
 * Finds the option arg names in opts ("--name", "--name=V", "-s", "-sV"):
 * its entry, or NULL. *value points at an inline value ("=V", "-sV"),
 * else is NULL.
 */
const struct ls_opt *ls_opt_match(const struct ls_opt *opts, const char *arg, const char **value);

/* Prints a command's usage, options and help (`loadshed COMMAND help`). */
void ls_cmd_print_help(FILE *out, const struct ls_cmd *cmd, const char *path);

/* Prints the bash completion script generated from table. */
void ls_cli_print_bash_completion(FILE *out, const struct ls_cmd *const *table);

#endif /* LS_CLI_H */
