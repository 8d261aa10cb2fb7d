// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed [GLOBAL_OPTIONS] COMMAND ...   (global options may also follow the command)
 *
 * The command table, and the commands about the CLI itself: help,
 * version, completion.
 */
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "cli.h"
#include "commands.h"
#include "loadshed.h"
#include "log.h"
#include "output.h"

const struct ls_cmd *const ls_commands[] = {
	&ls_cmd_attach,	 &ls_cmd_detach,     &ls_cmd_status, &ls_cmd_top,    &ls_cmd_list,
	&ls_cmd_limit,	 &ls_cmd_policy,     &ls_cmd_agent,  &ls_cmd_replay, &ls_cmd_breaker,
	&ls_cmd_version, &ls_cmd_completion, &ls_cmd_help,   NULL,
};

void ls_print_version(void)
{
	json_object *o;

	if (!ls_json) {
		printf("loadshed %s (libbpf %s, pinned layout %u)\n", LS_VERSION,
		       libbpf_version_string(), LS_LAYOUT_VERSION);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_string(LS_VERSION));
	json_object_object_add(o, "libbpf", json_object_new_string(libbpf_version_string()));
	json_object_object_add(o, "layout", json_object_new_int(LS_LAYOUT_VERSION));
	ls_json_print(o);
}

static int run_version(const struct ls_call *call)
{
	if (call->argc)
		return ls_fail(LS_EXIT_USAGE, "version takes no argument");
	ls_print_version();
	return LS_EXIT_OK;
}

const struct ls_cmd ls_cmd_version = {
	.name = "version",
	.summary = "print loadshed's version and the libbpf it runs with",
	.run = run_version,
};

static int run_completion(const struct ls_call *call)
{
	if (call->argc != 1 || strcmp(call->argv[0], "bash"))
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed completion bash");
	ls_cli_print_bash_completion(stdout, ls_commands);
	return LS_EXIT_OK;
}

const struct ls_cmd ls_cmd_completion = {
	.name = "completion",
	.args = "bash",
	.summary = "print the bash completion script, generated from this command table",
	.help = "Install it as /usr/share/bash-completion/completions/loadshed, or\n"
		"source it: source <(loadshed completion bash)\n",
	.complete_args = "bash",
	.run = run_completion,
};

static void print_usage(FILE *out)
{
	fprintf(out, "Usage: loadshed [-j|--json] [-p|--pretty] [-v|--verbose] COMMAND ...\n\n"
		     "Adaptive load shedding of TCP services at XDP.\n\nCommands:\n");
	for (const struct ls_cmd *const *pc = ls_commands, *c = *pc; c; c = *++pc) {
		char head[64];

		snprintf(head, sizeof(head), "%s%s", c->name,
			 c->flags & LS_CMD_IFACE ? " IFACE" : "");
		fprintf(out, "  %-20s %s\n", head, c->summary);
	}
	fprintf(out, "\nCommands may be abbreviated where that is unambiguous ('st' for status),\n"
		     "except detach. 'loadshed COMMAND help' tells more.\n"
		     "Exit codes: 0 ok, 1 runtime error, 2 usage error. See loadshed(8).\n");
}

static int run_help(const struct ls_call *call)
{
	if (!call->argc) {
		print_usage(stdout);
		return LS_EXIT_OK;
	}
	if (call->argc > 1)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed help [COMMAND]");
	{
		char *argv[] = {call->argv[0], "help", NULL};

		return ls_cli_dispatch(ls_commands, 2, argv);
	}
}

const struct ls_cmd ls_cmd_help = {
	.name = "help",
	.args = "[COMMAND]",
	.summary = "list the commands, or tell more about one",
	.run = run_help,
};

/*
 * Takes the global options out of argv, wherever they stand before "--",
 * with the same matcher the commands' parser uses.
 */
static int take_global_options(int argc, char **argv, bool *version)
{
	enum ls_log_level level = LS_LOG_WARN;
	int out = 1;

	for (int i = 1; i < argc; i++) {
		const struct ls_opt *o;
		const char *value;

		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		o = ls_opt_match(ls_global_opts, argv[i], &value);
		/* -vv is -v twice; any other inline value is not a global option. */
		if (!o || (value && !(o->id == LS_GOPT_VERBOSE && !strcmp(value, "v")))) {
			argv[out++] = argv[i];
			continue;
		}
		switch (o->id) {
		case LS_GOPT_JSON:
			ls_json = true;
			break;
		case LS_GOPT_PRETTY:
			ls_json = ls_pretty = true;
			break;
		case LS_GOPT_VERBOSE:
			level = value || level >= LS_LOG_INFO ? LS_LOG_DEBUG : LS_LOG_INFO;
			break;
		case LS_GOPT_VERSION:
			*version = true;
			break;
		}
	}
	argv[out] = NULL;
	ls_log_init(level);
	return out;
}

int main(int argc, char **argv)
{
	bool version = false;

	argc = take_global_options(argc, argv, &version);
	if (version) {
		ls_print_version();
		return LS_EXIT_OK;
	}
	if (argc < 2) {
		if (ls_json)
			return ls_fail(LS_EXIT_USAGE, "a command is missing (try 'loadshed help')");
		print_usage(stderr);
		return LS_EXIT_USAGE;
	}
	/* -h and --help answer at the top level too: as `loadshed help`. */
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		argv[1] = "help";
	return ls_cli_dispatch(ls_commands, argc - 1, argv + 1);
}
