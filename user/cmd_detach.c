// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* loadshed detach IFACE and loadshed list. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>

#include "agent.h"
#include "attach.h"
#include "breaker_maps.h"
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
	ls_agent_stop(ifname);
	rc = ls_attachment_open(ifname, &a, err, sizeof(err));
	if (rc == -ENOENT) {
		print_detached(ifname, true, NULL); /* another detach finished it meanwhile */
		return LS_EXIT_OK;
	}
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);
	ls_read_agent(&a.maps, &am);
	ls_maps_close(&a.maps);
	ls_breaker_detach(a.dir);
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

/*
 * The interface an attachment of this namespace was made on: its ifindex
 * recorded at attach against the name's now, and its XDP link still on a
 * device. 1: the same; 0: gone or replaced (a stale attachment); -1:
 * unknown (pins unreadable).
 */
static int same_interface(const char *ifname, uint32_t *ifindex)
{
	struct ls_agent_meta am = {};
	struct ls_maps m;
	char dir[128];
	int on;

	*ifindex = 0;
	if (ls_pin_dir(ifname, dir, sizeof(dir)) || ls_maps_open(dir, &m, NULL))
		return -1;
	ls_read_agent(&m, &am);
	ls_maps_close(&m);
	*ifindex = am.ifindex;
	on = ls_dataplane_on(dir, &am, ifname);
	return on < 0 ? -1 : on;
}

static int run_list(const struct ls_call *call)
{
	struct ls_listed l[256];
	json_object *arr;
	int n;

	if (call->argc)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed list");
	n = ls_list(l, 256);
	arr = json_object_new_array();
	for (int i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		uint32_t ifindex = 0;
		int same = l[i].here ? same_interface(l[i].ifname, &ifindex) : -1;

		json_object_object_add(o, "ifname", json_object_new_string(l[i].ifname));
		json_object_object_add(o, "netns", json_object_new_uint64(l[i].netns));
		json_object_object_add(o, "here", json_object_new_boolean(l[i].here));
		if (l[i].here) {
			json_object_object_add(o, "ifindex", json_object_new_uint64(ifindex));
			json_object_object_add(o, "stale", json_object_new_boolean(same == 0));
		}
		json_object_array_add(arr, o);
		if (ls_json)
			continue;
		printf("%-16s netns %llu%s%s\n", l[i].ifname, (unsigned long long)l[i].netns,
		       l[i].here ? " (this namespace)" : "",
		       same == 0 ? ": stale, the interface is gone (detach it)" : "");
	}
	if (ls_json) {
		json_object *o = json_object_new_object();
		uint64_t here = 0;

		ls_netns_cookie(&here);
		json_object_object_add(o, "netns", json_object_new_uint64(here));
		json_object_object_add(o, "attachments", arr);
		ls_json_print(o);
	} else {
		json_object_put(arr);
	}
	return LS_EXIT_OK;
}

const struct ls_cmd ls_cmd_list = {
	.name = "list",
	.summary = "every attachment, of every network namespace",
	.help = "Attachments are kept per network namespace (an interface name means\n"
		"something only in its own); commands act on those of the namespace they\n"
		"run in. An attachment whose interface was deleted is marked stale.\n",
	.run = run_list,
};
