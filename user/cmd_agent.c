// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed agent IFACE: the control loop in the foreground (for systemd,
 * or to restart a dead agent).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "commands.h"
#include "output.h"
#include "pins.h"
#include "policy_maps.h"

static int run_agent(const struct ls_call *call)
{
	struct ls_agent_meta am = {};
	struct ls_attachment a;
	char err[512];
	int rc;

	if (call->argc)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed agent IFACE");
	rc = ls_attachment_open(call->ifname, &a, err, sizeof(err));
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);
	ls_read_agent(&a.maps, &am);
	ls_attachment_close(&a);
	rc = ls_agent_run(call->ifname, ls_policy_reload_saved);
	if (rc == -EEXIST)
		return ls_fail(LS_EXIT_RUNTIME, "%s: an agent already runs (pid %d)", call->ifname,
			       (int)ls_agent_pid(call->ifname));
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s: agent: %s", call->ifname, strerror(-rc));
	return LS_EXIT_OK;
}

const struct ls_cmd ls_cmd_agent = {
	.name = "agent",
	.flags = LS_CMD_IFACE,
	.summary = "run the control loop of an attachment in the foreground",
	.help = "Adapts the limits from the measured latency, sweeps idle flows, keeps the\n"
		"heartbeat. SIGTERM/SIGINT stop it; SIGHUP reloads the config file, and so\n"
		"does a change of its content ([agent] watch_config). Under systemd it\n"
		"reports readiness and feeds the watchdog (sd_notify).\n"
		"attach starts one in the background; run this to restart a dead one.\n"
		"With [agent] metrics = ADDR:PORT it serves Prometheus metrics at\n"
		"http://ADDR:PORT/metrics (loadshed.conf(5)).\n",
	.run = run_agent,
};
