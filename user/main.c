// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed [-j] [-p] [-v] COMMAND ...   (global options may also follow the command)
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log.h"
#include "output.h"
#include "replay.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
} commands[] = {
	{"attach", cmd_attach,
	 "attach IFACE [--config FILE | OPTIONS]   load, attach, start adapting"},
	{"detach", cmd_detach,
	 "detach IFACE                             remove everything attach made"},
	{"status", cmd_status,
	 "status IFACE                             limits, in-flight, counters, latency"},
	{"limit", cmd_limit, "limit IFACE {set [--class C] N | auto | algo NAME [K=V...]}"},
	{"policy", cmd_policy, "policy IFACE {reload FILE | shadow on|off}"},
	{"agent", cmd_agent,
	 "agent IFACE                              run the control loop in the foreground"},
	{"list", cmd_list, "list                                     every attached interface"},
	{"replay", cmd_replay,
	 "replay --algo NAME [k=v...] < CSV        run recorded samples offline"},
};
#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: loadshed [-j|--json] [-p|--pretty] [-v|--verbose] COMMAND ...\n\n"
		   "Adaptive load shedding of new TCP connections at XDP.\n\nCommands:\n");
	for (size_t i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fprintf(f, "\n'loadshed COMMAND help' tells more. Exit codes: 0 ok, 1 runtime error, "
		   "2 usage error.\nSee loadshed(8).\n");
}

/* Takes the global options out of argv, wherever they stand before "--". */
static int strip_global_options(int argc, char **argv)
{
	enum ls_log_level level = LS_LOG_WARN;
	int out = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(a, "-j") || !strcmp(a, "--json")) {
			ls_json = true;
		} else if (!strcmp(a, "-p") || !strcmp(a, "--pretty")) {
			ls_json = ls_pretty = true;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			level = level < LS_LOG_INFO ? LS_LOG_INFO : LS_LOG_DEBUG;
		} else if (!strcmp(a, "-vv")) {
			level = LS_LOG_DEBUG;
		} else {
			argv[out++] = argv[i];
		}
	}
	argv[out] = NULL;
	ls_log_init(level);
	return out;
}

int main(int argc, char **argv)
{
	const char *cmd;
	int match = -1;

	argc = strip_global_options(argc, argv);
	if (argc < 2 || ls_is_help(argv[1])) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? LS_EXIT_USAGE : LS_EXIT_OK;
	}
	cmd = argv[1];
	for (size_t i = 0; i < NR_COMMANDS; i++) {
		if (!ls_is_prefix(cmd, commands[i].name))
			continue;
		if (!strcmp(cmd, commands[i].name)) {
			match = (int)i;
			break;
		}
		if (match >= 0)
			return ls_fail(LS_EXIT_USAGE, "'%s' is ambiguous", cmd);
		match = (int)i;
	}
	if (match < 0)
		return ls_fail(LS_EXIT_USAGE, "unknown command '%s' (try 'loadshed help')", cmd);
	return commands[match].fn(argc - 1, argv + 1);
}
