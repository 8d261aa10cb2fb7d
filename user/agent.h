/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The control loop that adapts the limits (see agent.c). */
#ifndef LS_AGENT_H
#define LS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "loadshed.h"
#include "maps.h"

/*
 * Runs the control loop of the attachment on ifname until SIGTERM/SIGINT
 * or until the attachment goes away. SIGHUP calls reload(ifname).
 * -EEXIST: another agent of ifname runs.
 */
int ls_agent_run(const char *ifname, int (*reload)(const char *ifname));

/* The pid of ifname's running agent (it holds the agent lock), or 0. */
pid_t ls_agent_pid(const char *ifname);

/* Asks ifname's agent, if one runs, to stop; waits for it (up to 5 s), then kills it. */
void ls_agent_stop(const char *ifname);

/*
 * Starts the agent of ifname in the background, its log in log_path (NULL:
 * /run/loadshed/IFNAME.log); waits for its first heartbeat.
 */
int ls_agent_spawn(const char *ifname, const char *log_path, char *err, size_t errlen);

#endif
