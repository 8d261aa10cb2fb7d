/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The CLI's commands, one file each, as entries of the command table in
 * main.c. A command parses its arguments (a mistake there is a usage
 * error, exit 2), calls library functions that return 0 or a negative
 * errno with a sentence in err, and turns a failure into its exit code
 * (1, a runtime error) through ls_fail(), the only place that does.
 */
#ifndef LS_COMMANDS_H
#define LS_COMMANDS_H

#include "cli.h"

extern const struct ls_cmd ls_cmd_attach;
extern const struct ls_cmd ls_cmd_detach;
extern const struct ls_cmd ls_cmd_status;
extern const struct ls_cmd ls_cmd_top;
extern const struct ls_cmd ls_cmd_list;
extern const struct ls_cmd ls_cmd_limit;
extern const struct ls_cmd ls_cmd_policy;
extern const struct ls_cmd ls_cmd_agent;
extern const struct ls_cmd ls_cmd_replay;
extern const struct ls_cmd ls_cmd_breaker;
extern const struct ls_cmd ls_cmd_version;
extern const struct ls_cmd ls_cmd_completion;
extern const struct ls_cmd ls_cmd_help;

/* Prints the version line (or JSON): loadshed's and the libbpf it runs with. */
void ls_print_version(void);

#endif /* LS_COMMANDS_H */
