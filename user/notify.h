/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's messages to its service manager, through libsystemd's
 * sd_notify (see notify.c). Each is a no-op when NOTIFY_SOCKET is unset.
 */
#ifndef LS_NOTIFY_H
#define LS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Reads WATCHDOG_USEC/WATCHDOG_PID once: whether WATCHDOG=1 is expected, and how often. */
bool ls_notify_init(uint64_t *watchdog_usec);

/* READY=1 with a STATUS= line: after the first heartbeat, and after a reload. */
void ls_notify_ready(const char *status);

/* One heartbeat written: WATCHDOG=1 (when the manager asked for it), and STATUS= when it changed.
 */
void ls_notify_beat(const char *status);

/* RELOADING=1 (with MONOTONIC_USEC=), before a reload; READY=1 follows it. */
void ls_notify_reloading(void);

/* STOPPING=1. */
void ls_notify_stopping(void);

#endif
