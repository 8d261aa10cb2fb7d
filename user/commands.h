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

#include "maps.h"

/* An attachment opened by a command: its pin directory, locked, and maps. */
struct ls_attachment {
	char dir[128];
	int lock;
	struct ls_maps maps;
};

/*
 * Locks ifname's pin directory and opens its maps. On failure prints why
 * and returns the exit code (2: not an interface name; 1: not attached or
 * another error); 0 on success.
 */
int ls_attachment_open(const char *ifname, struct ls_attachment *a);
void ls_attachment_close(struct ls_attachment *a);

/* True when arg asks for help: "help", "-h" or "--help". */
int ls_is_help(const char *arg);
/* True when arg is a non-empty prefix of word (bpftool's abbreviations). */
int ls_is_prefix(const char *arg, const char *word);

#endif
