// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Readiness, watchdog and status for systemd (Type=notify, WatchdogSec=),
 * with libsystemd's sd_notify: the agent is ready once its first heartbeat
 * is in the dataplane, and feeds the watchdog with every heartbeat it
 * writes, so a loop that hangs, or runs without managing to write one, is
 * restarted. sd_notify does nothing without NOTIFY_SOCKET, so the agent
 * calls these under any supervisor or none.
 */
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "log.h"
#include "notify.h"

static bool watchdog;
static char last_status[256];

static void notify_send(const char *msg)
{
	int rc = sd_notify(0, msg);

	if (rc < 0)
		pr_debug("sd_notify: %s", strerror(-rc));
}

bool ls_notify_init(uint64_t *watchdog_usec)
{
	uint64_t usec = 0;

	watchdog = sd_watchdog_enabled(0, &usec) > 0;
	if (watchdog_usec)
		*watchdog_usec = watchdog ? usec : 0;
	return watchdog;
}

void ls_notify_ready(const char *status)
{
	char msg[300];

	snprintf(last_status, sizeof(last_status), "%s", status);
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	notify_send(msg);
}

void ls_notify_beat(const char *status)
{
	char msg[300];
	bool changed = strcmp(status, last_status) != 0;

	if (!watchdog && !changed)
		return;
	snprintf(last_status, sizeof(last_status), "%s", status);
	if (!changed)
		snprintf(msg, sizeof(msg), "WATCHDOG=1");
	else
		snprintf(msg, sizeof(msg), "%sSTATUS=%s", watchdog ? "WATCHDOG=1\n" : "", status);
	notify_send(msg);
}

void ls_notify_reloading(void)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)(ls_clock_ns(CLOCK_MONOTONIC) / LS_NS_PER_US));
	notify_send(msg);
}

void ls_notify_stopping(void)
{
	notify_send("STOPPING=1\nSTATUS=stopping");
}
