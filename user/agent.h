/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The control loop that adapts the limits (see agent.c). */
#ifndef LS_AGENT_H
#define LS_AGENT_H

#include <stdbool.h>
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

/* Writes L and the class guarantees (shares, or pinned ones) of a service. */
int ls_agent_write_limits(const struct ls_maps *m, uint32_t svc, uint32_t limit,
			  const struct ls_service_meta *meta);

/* pid is a live (not zombie) `loadshed agent IFNAME` process. */
bool ls_agent_alive(pid_t pid, const char *ifname);

struct ls_algo;

/*
 * Creates the algorithm a service record names, with its parameters and
 * its initial/min/max limits (current, when not 0, as the initial limit).
 */
int ls_algo_from_meta(const struct ls_service_meta *meta, uint32_t current, struct ls_algo **out,
		      char *err, size_t errlen);

#endif
