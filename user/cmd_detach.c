// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* loadshed detach IFACE and loadshed list. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "attach.h"
#include "commands.h"
#include "maps.h"
#include "output.h"
#include "pins.h"

/* Asks a running agent to stop and waits for it (up to 5 s), then kills it. */
static void stop_agent(pid_t pid, const char *ifname)
{
	struct timespec tick = {.tv_nsec = 20 * 1000 * 1000};

	/* A stale pid may belong to another process by now: check it is ours. */
	if (!ls_agent_alive(pid, ifname) || kill(pid, SIGTERM))
		return;
	for (int i = 0; i < 250; i++) {
		if (!ls_agent_alive(pid, ifname))
			return;
		nanosleep(&tick, NULL);
	}
	kill(pid, SIGKILL);
}

static void read_agent_meta(const char *dir, struct ls_agent_meta *am)
{
	struct ls_maps m;

	memset(am, 0, sizeof(*am));
	if (!ls_maps_open(dir, &m, NULL)) {
		ls_read_agent(&m, am);
		ls_maps_close(&m);
	}
}

int cmd_detach(int argc, char **argv)
{
	struct ls_agent_meta am;
	char dir[128];
	int lock;

	if (argc >= 2 && ls_is_help(argv[1])) {
		printf("Usage: loadshed detach IFACE\n\n"
		       "Stops the agent, detaches the programs, removes the pins and any\n"
		       "clsact qdisc attach created. Safe to run twice.\n");
		return LS_EXIT_OK;
	}
	if (argc != 2)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed detach IFACE");
	if (ls_pin_dir(argv[1], dir, sizeof(dir)))
		return ls_fail(LS_EXIT_USAGE, "'%s' is not an interface name", argv[1]);
	lock = ls_lock(argv[1], false);
	if (lock == -ENOENT) {
		if (!ls_json)
			fprintf(stderr, "loadshed: %s: not attached, nothing to do\n", argv[1]);
		return LS_EXIT_OK;
	}
	if (lock < 0)
		return ls_fail(LS_EXIT_RUNTIME, "%s: %s", dir, strerror(-lock));
	read_agent_meta(dir, &am);
	/* The agent finishes its round under the lock: stop it without holding it. */
	ls_unlock(&lock);
	stop_agent((pid_t)am.agent_pid, argv[1]);
	lock = ls_lock(argv[1], false);
	if (lock >= 0) {
		read_agent_meta(dir, &am);
		ls_dataplane_detach(dir, &am);
		ls_dataplane_unpin(dir);
		ls_unlock(&lock);
	}
	if (ls_json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "detached", json_object_new_string(argv[1]));
		ls_json_print(o);
	}
	return LS_EXIT_OK;
}

int cmd_list(int argc, char **argv)
{
	char names[64][IF_NAMESIZE];
	json_object *arr;
	int n;

	if (argc >= 2 && ls_is_help(argv[1])) {
		printf("Usage: loadshed list\n\nEvery interface loadshed is attached to.\n");
		return LS_EXIT_OK;
	}
	if (argc != 1)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed list");
	n = ls_list(names, 64);
	if (!ls_json) {
		for (int i = 0; i < n; i++)
			printf("%s\n", names[i]);
		return LS_EXIT_OK;
	}
	arr = json_object_new_array();
	for (int i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(names[i]));
	ls_json_print(arr);
	return LS_EXIT_OK;
}
