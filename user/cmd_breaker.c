// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed breaker IFACE {list | status | open NAME | close NAME | auto NAME}
 * The outbound circuit breakers of an attachment (doc/design.md §15):
 * their states and counters; open and close force a state, auto hands it
 * back to the state machine.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>

#include "breaker.h"
#include "breaker_maps.h"
#include "commands.h"
#include "output.h"
#include "pins.h"

static const char *mode_name(uint32_t mode)
{
	return mode == LS_BRK_FORCED_OPEN     ? "forced_open"
	       : mode == LS_BRK_FORCED_CLOSED ? "forced_closed"
					      : "auto";
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

json_object *ls_breaker_json(const char *dir, uint64_t now_ns)
{
	struct ls_brk_maps m;
	json_object *arr;

	if (ls_brk_maps_open(dir, &m))
		return NULL;
	arr = json_object_new_array();
	for (uint32_t i = 0; i < LS_MAX_UPSTREAMS; i++) {
		struct ls_upstream_meta meta;
		struct ls_latency_hist h;
		struct ls_brk_stats st;
		struct ls_brk_ctl ctl;
		json_object *u;

		if (bpf_map_lookup_elem(m.meta, &i, &meta) || !meta.active ||
		    bpf_map_lookup_elem(m.ctl, &i, &ctl) || ls_brk_read_stats(&m, i, &st) ||
		    ls_brk_read_latency(&m, i, &h))
			continue;
		u = json_object_new_object();
		json_object_object_add(u, "name", json_object_new_string(meta.name));
		json_object_object_add(u, "state",
				       json_object_new_string(ls_brk_state_name(ctl.state)));
		json_object_object_add(u, "mode", json_object_new_string(mode_name(meta.mode)));
		json_object_object_add(u, "cgroup", json_object_new_string(meta.cgroup));
		add_u64(u, "state_age_ms",
			meta.state_since_ns && now_ns > meta.state_since_ns
				? (now_ns - meta.state_since_ns) / 1000000
				: 0);
		json_object_object_add(
			u, "half_open_permits_left",
			json_object_new_int(ctl.state == LS_BRK_HALF_OPEN && ctl.permits > 0
						    ? ctl.permits
						    : 0));
		add_u64(u, "calls", st.calls);
		add_u64(u, "failures", st.failures);
		add_u64(u, "slow", st.slow);
		add_u64(u, "refused", st.refused);
		add_u64(u, "connect_timeouts", st.connect_timeouts);
		add_u64(u, "resets", st.resets);
		add_u64(u, "no_answer", st.no_answer);
		add_u64(u, "connects", st.connects);
		add_u64(u, "rejected_connect", st.rejected_connect);
		add_u64(u, "rejected_send", st.rejected_send);
		add_u64(u, "trials", st.trials);
		add_u64(u, "to_open", meta.to_open);
		add_u64(u, "to_half_open", meta.to_half_open);
		add_u64(u, "to_closed", meta.to_closed);
		add_u64(u, "latency_count", h.count);
		add_u64(u, "latency_mean_us", h.count ? h.sum_ns / h.count / 1000 : 0);
		add_u64(u, "latency_max_us", h.max_ns / 1000);
		json_object_array_add(arr, u);
	}
	ls_brk_maps_close(&m);
	return arr;
}

static uint64_t get(json_object *o, const char *k)
{
	return (uint64_t)json_object_get_int64(json_object_object_get(o, k));
}

void ls_breaker_print_text(json_object *arr)
{
	if (!arr || !json_object_array_length(arr))
		return;
	printf("\n  %-16s %-9s %-13s %8s %8s %6s %8s %8s %6s %6s %6s\n", "upstream", "state",
	       "mode", "calls", "failures", "slow", "rej_conn", "rej_send", "trials", "opened",
	       "mean_ms");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *u = json_object_array_get_idx(arr, i);

		printf("  %-16s %-9s %-13s %8llu %8llu %6llu %8llu %8llu %6llu %6llu %6.1f\n",
		       json_object_get_string(json_object_object_get(u, "name")),
		       json_object_get_string(json_object_object_get(u, "state")),
		       json_object_get_string(json_object_object_get(u, "mode")),
		       (unsigned long long)get(u, "calls"), (unsigned long long)get(u, "failures"),
		       (unsigned long long)get(u, "slow"),
		       (unsigned long long)get(u, "rejected_connect"),
		       (unsigned long long)get(u, "rejected_send"),
		       (unsigned long long)get(u, "trials"), (unsigned long long)get(u, "to_open"),
		       get(u, "latency_mean_us") / 1000.0);
	}
}

static int run_show(const struct ls_call *call, bool brief)
{
	struct ls_attachment a;
	json_object *arr;
	char err[512];
	int rc;

	if (call->argc)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed breaker IFACE %s",
			       brief ? "list" : "status");
	rc = ls_attachment_open(call->ifname, &a, err, sizeof(err));
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		arr = ls_breaker_json(a.dir,
				      (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
	}
	ls_attachment_close(&a);
	if (!arr)
		arr = json_object_new_array();
	if (ls_json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "ifname", json_object_new_string(call->ifname));
		json_object_object_add(o, "upstreams", arr);
		ls_json_print(o);
		return LS_EXIT_OK;
	}
	if (brief) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *u = json_object_array_get_idx(arr, i);

			printf("%s %s %s\n",
			       json_object_get_string(json_object_object_get(u, "name")),
			       json_object_get_string(json_object_object_get(u, "state")),
			       json_object_get_string(json_object_object_get(u, "mode")));
		}
	} else {
		size_t n = json_object_array_length(arr);

		/* The table starts with the newline that ends this line. */
		printf("%s: %zu upstreams%s", call->ifname, n, n ? "" : "\n");
		ls_breaker_print_text(arr);
	}
	json_object_put(arr);
	return LS_EXIT_OK;
}

static int run_list(const struct ls_call *call)
{
	return run_show(call, true);
}

static int run_status(const struct ls_call *call)
{
	return run_show(call, false);
}

/* Sets an upstream's mode, and with a forced one its state at once. */
static int set_mode(const struct ls_call *call, uint32_t mode)
{
	struct ls_upstream_meta meta;
	struct ls_attachment a;
	struct ls_brk_maps m;
	struct ls_brk_ctl ctl;
	char err[512];
	uint32_t i;
	int rc;

	if (call->argc != 1)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed breaker IFACE %s NAME",
			       call->cmd->name);
	rc = ls_attachment_open(call->ifname, &a, err, sizeof(err));
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);
	rc = ls_brk_maps_open(a.dir, &m);
	if (rc) {
		ls_attachment_close(&a);
		return ls_fail(LS_EXIT_USAGE, "%s has no upstream", call->ifname);
	}
	rc = ls_brk_find(&m, call->argv[0], &meta);
	if (rc < 0) {
		ls_brk_maps_close(&m);
		ls_attachment_close(&a);
		return ls_fail(LS_EXIT_USAGE, "%s: no upstream %s", call->ifname, call->argv[0]);
	}
	i = (uint32_t)rc;
	meta.mode = mode;
	rc = bpf_map_update_elem(m.meta, &i, &meta, BPF_ANY) ? -errno : 0;
	if (!rc && mode != LS_BRK_AUTO && !bpf_map_lookup_elem(m.ctl, &i, &ctl)) {
		/* The dataplane enforces it now; the agent counts the transition. */
		ctl.state = mode == LS_BRK_FORCED_OPEN ? LS_BRK_OPEN : LS_BRK_CLOSED;
		ctl.permits = 0;
		ctl.gen++;
		rc = bpf_map_update_elem(m.ctl, &i, &ctl, BPF_ANY) ? -errno : 0;
	}
	ls_brk_maps_close(&m);
	ls_attachment_close(&a);
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s: upstream %s: %s", call->ifname, call->argv[0],
			       strerror(-rc));
	if (ls_json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "ifname", json_object_new_string(call->ifname));
		json_object_object_add(o, "upstream", json_object_new_string(meta.name));
		json_object_object_add(o, "mode", json_object_new_string(mode_name(mode)));
		ls_json_print(o);
	}
	return LS_EXIT_OK;
}

static int run_open(const struct ls_call *call)
{
	return set_mode(call, LS_BRK_FORCED_OPEN);
}

static int run_close(const struct ls_call *call)
{
	return set_mode(call, LS_BRK_FORCED_CLOSED);
}

static int run_auto(const struct ls_call *call)
{
	return set_mode(call, LS_BRK_AUTO);
}

static const struct ls_cmd brk_list = {
	.name = "list",
	.summary = "each upstream's name, state and mode",
	.run = run_list,
};

static const struct ls_cmd brk_status = {
	.name = "status",
	.summary = "each upstream's state, counters and time to first byte",
	.run = run_status,
};

static const struct ls_cmd brk_open = {
	.name = "open",
	.args = "NAME",
	.summary = "force the circuit open: calls to the upstream fail at once",
	.run = run_open,
};

static const struct ls_cmd brk_close = {
	.name = "close",
	.args = "NAME",
	.summary = "force the circuit closed: every call passes",
	.run = run_close,
};

static const struct ls_cmd brk_auto = {
	.name = "auto",
	.args = "NAME",
	.summary = "hand the circuit back to the state machine",
	.run = run_auto,
};

static const struct ls_cmd *const brk_sub[] = {&brk_list,  &brk_status, &brk_open,
					       &brk_close, &brk_auto,	NULL};

const struct ls_cmd ls_cmd_breaker = {
	.name = "breaker",
	.flags = LS_CMD_IFACE,
	.summary = "the outbound circuit breakers of [upstream] sections: state, counters, force",
	.help = "An upstream's circuit (resilience4j's CircuitBreaker) opens when the failure or\n"
		"slow-call rate of its callers' calls reaches its threshold: connect() to it\n"
		"fails with ECONNREFUSED and a new request's first send with EACCES. After\n"
		"wait_duration_in_open_state it lets permitted trial calls through (half open).\n"
		"A dead agent leaves every circuit closed. See loadshed.conf(5).\n",
	.sub = brk_sub,
};
