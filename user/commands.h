/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The CLI's commands. Each takes argv from its own name on and returns an
 * exit code: 0 ok, 1 runtime error, 2 usage error.
 */
#ifndef LS_COMMANDS_H
#define LS_COMMANDS_H

int cmd_attach(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_limit(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_agent(int argc, char **argv);

/* Starts the agent of ifname in the background; waits for its first heartbeat. */
int ls_agent_spawn(const char *ifname, const char *log_path);

/* True when arg asks for help: "help", "-h" or "--help". */
int ls_is_help(const char *arg);
/* True when arg is a non-empty prefix of word (bpftool's abbreviations). */
int ls_is_prefix(const char *arg, const char *word);

#endif
