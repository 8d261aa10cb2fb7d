// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* loadshed detach IFACE and loadshed list. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "attach.h"
#include "commands.h"
#include "maps.h"
#include "output.h"
#include "pins.h"

static void print_detached(const char *ifname, bool was_attached, const char *note)
{
	json_object *o;

	if (!ls_json) {
		if (note)
			fprintf(stderr, "loadshed: %s: %s\n", ifname, note);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "ifname", json_object_new_string(ifname));
	json_object_object_add(o, "detached", json_object_new_boolean(was_attached));
	if (note)
		json_object_object_add(o, "note", json_object_new_string(note));
	ls_json_print(o);
}

static int run_detach(const struct ls_call *call)
{
	const char *ifname = call->ifname;
	struct ls_attachment a;
	struct ls_agent_meta am = {};
	char err[512];
	int rc;

	if (call->argc)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed detach IFACE");
	rc = ls_attachment_open(ifname, &a, err, sizeof(err));
	if (rc == -ENOENT) {
		print_detached(ifname, false, "not attached, nothing to do");
		return LS_EXIT_OK;
	}
	if (rc == -EPROTO) {
		/* Pins this build cannot read: take them down by name, as they are. */
		int lock = ls_lock(ifname, false);

		ls_pin_dir(ifname, a.dir, sizeof(a.dir));
		ls_dataplane_teardown(a.dir);
		ls_unlock(&lock);
		print_detached(ifname, true,
			       "pinned by another loadshed layout: links and pins "
			       "removed; its agent stops at its next round");
		return LS_EXIT_OK;
	}
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);
	ls_read_agent(&a.maps, &am);
	/* The agent finishes its round under the lock: stop it without holding it. */
	ls_attachment_close(&a);
	ls_agent_stop((pid_t)am.agent_pid, ifname);
	rc = ls_attachment_open(ifname, &a, err, sizeof(err));
	if (rc == -ENOENT) {
		print_detached(ifname, true, NULL); /* another detach finished it meanwhile */
		return LS_EXIT_OK;
	}
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);
	ls_read_agent(&a.maps, &am);
	ls_maps_close(&a.maps);
	ls_dataplane_detach(a.dir, &am);
	ls_dataplane_unpin(a.dir);
	ls_unlock(&a.lock);
	print_detached(ifname, true, NULL);
	return LS_EXIT_OK;
}

const struct ls_cmd ls_cmd_detach = {
	.name = "detach",
	.flags = LS_CMD_IFACE | LS_CMD_EXACT,
	.summary = "stop the agent, detach the programs, remove every pin",
	.help = "Removes the links, the pins and any clsact qdisc attach created. Safe to run\n"
		"twice. Never abbreviated.\n",
	.run = run_detach,
};

static int run_list(const struct ls_call *call)
{
	char names[64][IF_NAMESIZE];
	json_object *arr;
	int n;

	if (call->argc)
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

const struct ls_cmd ls_cmd_list = {
	.name = "list",
	.summary = "every interface loadshed is attached to",
	.run = run_list,
};
