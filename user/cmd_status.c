// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed status IFACE: per service and class, the limit, in-flight,
 * admission counters and latency, plus how the dataplane is attached.
 * Text for people, -j for programs; both come from one JSON document.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>

#include "agent.h"
#include "attach.h"
#include "breaker_maps.h"
#include "clock.h"
#include <stddef.h>
#include "cmd_status.h"
#include "commands.h"
#include "config.h"
#include "hist.h"
#include "maps.h"
#include "output.h"
#include "pins.h"

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static json_object *latency_json(const struct ls_latency_hist *h)
{
	json_object *o = json_object_new_object();

	add_u64(o, "count", h->count);
	add_u64(o, "mean_us", h->count ? h->sum_ns / h->count / 1000 : 0);
	add_u64(o, "min_us", h->min_ns / 1000);
	add_u64(o, "max_us", h->max_ns / 1000);
	add_u64(o, "p50_us", ls_hist_quantile_ns(h, 0.50) / 1000);
	add_u64(o, "p99_us", ls_hist_quantile_ns(h, 0.99) / 1000);
	return o;
}

/* The per-class counters, in the order status shows them. */
#define COUNTER(name)                                                                              \
	{                                                                                          \
#name, offsetof(struct ls_class_stats, name)                                       \
	}
static const struct {
	const char *name;
	size_t off;
} class_counters[] = {
	COUNTER(packets),      COUNTER(syns),	      COUNTER(handshakes), COUNTER(admitted),
	COUNTER(adopted),      COUNTER(shed_drop),    COUNTER(shed_reset), COUNTER(would_shed),
	COUNTER(fail_open),    COUNTER(untracked),    COUNTER(requests),   COUNTER(deferred),
	COUNTER(aborted),      COUNTER(abandoned),    COUNTER(expired),	   COUNTER(stalled),
	COUNTER(pipelined),    COUNTER(server_first), COUNTER(ended_fin),  COUNTER(ended_rst),
	COUNTER(ended_reused), COUNTER(ended_idle),   COUNTER(untrusted),
};
_Static_assert(sizeof(class_counters) / sizeof(class_counters[0]) ==
		       sizeof(struct ls_class_stats) / sizeof(__u64),
	       "every class counter is shown");

static json_object *class_json(const struct ls_maps *m, uint32_t svc, uint32_t cls,
			       const struct ls_service_meta *meta,
			       const struct ls_service_policy *pol, const struct ls_limits *lim,
			       const struct ls_inflight *inf, struct ls_latency_hist *hists)
{
	uint32_t idx = ls_class_index(svc, cls);
	struct ls_latency_hist h;
	struct ls_class_stats s;
	json_object *o = json_object_new_object();

	if (ls_read_class_stats(m, idx, &s))
		memset(&s, 0, sizeof(s));
	if (ls_read_latency(m, idx, &h))
		memset(&h, 0, sizeof(h));
	if (hists)
		hists[idx] = h;
	json_object_object_add(o, "name", json_object_new_string(meta->classes[cls].name));
	add_u64(o, "slot", cls);
	json_object_object_add(o, "share_pct",
			       json_object_new_double(meta->classes[cls].share_ppm / 10000.0));
	json_object_object_add(o, "action",
			       json_object_new_string(ls_action_name(pol->classes[cls].action)));
	if (pol->admit == LS_ADMIT_REQUESTS)
		json_object_object_add(o, "request_action",
				       json_object_new_string(ls_request_action_name(
					       pol->classes[cls].req_action)));
	add_u64(o, "guarantee", lim->guarantee[cls]);
	json_object_object_add(o, "inflight", json_object_new_int(inf->cls[cls]));
	add_u64(o, "shed", s.shed_drop + s.shed_reset);
	for (size_t i = 0; i < sizeof(class_counters) / sizeof(class_counters[0]); i++)
		add_u64(o, class_counters[i].name,
			*(const __u64 *)((const char *)&s + class_counters[i].off));
	json_object_object_add(o, "latency", latency_json(&h));
	return o;
}

static json_object *service_json(const struct ls_maps *m, uint32_t svc, uint32_t gen,
				 const struct ls_service_meta *meta, struct ls_latency_hist *hists)
{
	uint32_t key = ls_policy_key(gen, svc);
	struct ls_service_policy pol = {};
	struct ls_limits lim = {};
	struct ls_inflight inf = {};
	json_object *o = json_object_new_object(), *classes = json_object_new_array();

	bpf_map_lookup_elem(m->policy, &key, &pol);
	ls_read_limits(m, svc, &lim);
	ls_read_inflight(m, svc, &inf);
	json_object_object_add(o, "name", json_object_new_string(meta->name));
	add_u64(o, "index", svc);
	json_object_object_add(o, "algorithm", json_object_new_string(meta->algo));
	json_object_object_add(o, "params", json_object_new_string(meta->algo_params));
	add_u64(o, "limit", lim.limit);
	json_object_object_add(o, "pinned", json_object_new_boolean(meta->pinned_limit != 0));
	json_object_object_add(o, "shadow", json_object_new_boolean(pol.flags & LS_SVC_SHADOW));
	json_object_object_add(o, "admit", json_object_new_string(ls_admit_name(pol.admit)));
	json_object_object_add(o, "inflight", json_object_new_int(inf.total));
	json_object_object_add(o, "connections", json_object_new_int(inf.conns));
	add_u64(o, "max_connections", pol.max_connections);
	for (uint32_t c = 0; c < LS_MAX_CLASSES; c++) {
		if (!pol.classes[c].in_use)
			continue;
		json_object_array_add(classes,
				      class_json(m, svc, c, meta, &pol, &lim, &inf, hists));
	}
	json_object_object_add(o, "classes", classes);
	return o;
}

static json_object *status_json(const char *ifname, const char *pin_dir, const struct ls_maps *m,
				long nr_flows, uint64_t kernel_now_ns,
				struct ls_latency_hist *hists)
{
	json_object *o = json_object_new_object(), *svcs = json_object_new_array(), *ag;
	struct ls_agent_meta am = {};
	struct ls_iface_stats is = {};
	struct ls_state st = {};
	uint64_t age_ns;
	bool stale;

	ls_read_state(m, &st);
	ls_read_agent(m, &am);
	ls_read_iface_stats(m, &is);
	json_object_object_add(o, "ifname", json_object_new_string(ifname));
	json_object_object_add(o, "pin_dir", json_object_new_string(pin_dir));
	json_object_object_add(o, "xdp_mode",
			       json_object_new_string(ls_xdp_mode_name(am.xdp_mode)));
	json_object_object_add(o, "tc_mode", json_object_new_string(ls_tc_mode_name(am.tc_mode)));
	ag = json_object_new_object();
	/* The lock's holder, not the pid in the maps: a killed agent leaves that behind. */
	add_u64(ag, "pid", (uint64_t)ls_agent_pid(ifname));
	add_u64(ag, "failopen_after_ms", st.failopen_after_ns / 1000000);
	/*
	 * Both stamps are the dataplane's clock (the tick program's): no
	 * clock of this process's can make the age absurd. A heartbeat from
	 * the future is stale, as the dataplane takes it.
	 */
	age_ns = kernel_now_ns - st.heartbeat_ns;
	stale = st.failopen_after_ns && age_ns > st.failopen_after_ns;
	if (st.heartbeat_ns && st.heartbeat_ns <= kernel_now_ns)
		add_u64(ag, "heartbeat_age_ms", age_ns / LS_NS_PER_MS);
	else
		json_object_object_add(ag, "heartbeat_age_ms", NULL);
	json_object_object_add(ag, "fail_open", json_object_new_boolean(stale));
	json_object_object_add(ag, "enforcing",
			       json_object_new_boolean(!st.failopen_after_ns || !stale));
	json_object_object_add(o, "agent", ag);
	add_u64(o, "flows", (uint64_t)nr_flows);
	add_u64(o, "max_flows", am.max_flows);
	add_u64(o, "parse_errors", is.parse_errors);
	add_u64(o, "untracked_packets", is.untracked_packets);
	add_u64(o, "tx_errors", is.tx_errors);
	add_u64(o, "abort_lost", is.abort_lost);
	add_u64(o, "fragments_dropped", is.fragments_dropped);
	add_u64(o, "undecidable", is.undecidable);
	add_u64(o, "bad_checksums", is.bad_checksums);
	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		struct ls_service_meta meta;

		if (ls_read_meta(m, s, &meta) || !meta.in_use)
			continue;
		json_object_array_add(svcs, service_json(m, s, st.active_gen & 1, &meta, hists));
	}
	json_object_object_add(o, "services", svcs);
	return o;
}

static uint64_t get_u64(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_uint64(v) : 0;
}

static const char *get_str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static void print_text(json_object *o)
{
	json_object *ag, *svcs;

	json_object_object_get_ex(o, "agent", &ag);
	printf("%s: xdp %s, egress %s, ", get_str(o, "ifname"), get_str(o, "xdp_mode"),
	       get_str(o, "tc_mode"));
	if (get_u64(ag, "pid"))
		printf("agent pid %llu, ", (unsigned long long)get_u64(ag, "pid"));
	else
		printf("no agent, ");
	if (json_object_get_boolean(json_object_object_get(ag, "fail_open")))
		printf("FAIL-OPEN: admitting everything (heartbeat %s)\n",
		       json_object_object_get(ag, "heartbeat_age_ms") ? "stale" : "never written");
	else if (!get_u64(ag, "failopen_after_ms"))
		printf("static limits enforced (fail-open off)\n");
	else
		printf("heartbeat %llu ms ago\n",
		       (unsigned long long)get_u64(ag, "heartbeat_age_ms"));
	printf("flows %llu of %llu, parse errors %llu, untracked packets %llu\n",
	       (unsigned long long)get_u64(o, "flows"), (unsigned long long)get_u64(o, "max_flows"),
	       (unsigned long long)get_u64(o, "parse_errors"),
	       (unsigned long long)get_u64(o, "untracked_packets"));
	json_object_object_get_ex(o, "services", &svcs);
	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		json_object *s = json_object_array_get_idx(svcs, i), *classes;
		bool requests;

		printf("\nservice %s: admits %s, limit %llu (%s), in-flight %d (%d connections), "
		       "algorithm %s%s\n",
		       get_str(s, "name"), get_str(s, "admit"),
		       (unsigned long long)get_u64(s, "limit"),
		       json_object_get_boolean(json_object_object_get(s, "pinned")) ? "pinned"
										    : "auto",
		       json_object_get_int(json_object_object_get(s, "inflight")),
		       json_object_get_int(json_object_object_get(s, "connections")),
		       get_str(s, "algorithm"),
		       json_object_get_boolean(json_object_object_get(s, "shadow")) ? ", SHADOW"
										    : "");
		/* Under admit = requests the work is requests: show those, and how they were shed.
		 */
		requests = !strcmp(get_str(s, "admit"), "requests");
		printf("  %-16s %6s %6s %5s %8s %10s %10s %10s %9s %9s %8s %8s\n", "class", "share",
		       requests ? "reqact" : "action", "guar", "inflight",
		       requests ? "requests" : "admitted", requests ? "deferred" : "shed",
		       requests ? "aborted" : "would_shed", "fail_open", "latency_n", "p50_ms",
		       "p99_ms");
		json_object_object_get_ex(s, "classes", &classes);
		for (size_t j = 0; j < json_object_array_length(classes); j++) {
			json_object *c = json_object_array_get_idx(classes, j), *lat;

			json_object_object_get_ex(c, "latency", &lat);
			printf("  %-16s %5.1f%% %6s %5llu %8d %10llu %10llu %10llu %9llu %9llu "
			       "%8.2f %8.2f\n",
			       get_str(c, "name"),
			       json_object_get_double(json_object_object_get(c, "share_pct")),
			       get_str(c, requests && !strcmp(get_str(c, "action"), "bypass")
						  ? "action"
					  : requests ? "request_action"
						     : "action"),
			       (unsigned long long)get_u64(c, "guarantee"),
			       json_object_get_int(json_object_object_get(c, "inflight")),
			       (unsigned long long)get_u64(c, requests ? "requests" : "admitted"),
			       (unsigned long long)get_u64(c, requests ? "deferred" : "shed"),
			       (unsigned long long)get_u64(c, requests ? "aborted" : "would_shed"),
			       (unsigned long long)get_u64(c, "fail_open"),
			       (unsigned long long)get_u64(lat, "count"),
			       get_u64(lat, "p50_us") / 1000.0, get_u64(lat, "p99_us") / 1000.0);
		}
	}
	ls_breaker_print_text(json_object_object_get(o, "upstreams"));
	json_object_put(o);
}

int ls_status_read(const char *ifname, json_object **doc, struct ls_latency_hist *hists, char *err,
		   size_t errlen)
{
	struct ls_attachment a;
	json_object *up;
	uint64_t now;
	long flows;
	int rc;

	*doc = NULL;
	rc = ls_attachment_open(ifname, &a, err, errlen);
	if (rc)
		return rc;
	flows = ls_flows_walk(&a.maps, NULL, NULL);
	if (flows < 0) {
		ls_attachment_close(&a);
		snprintf(err, errlen, "%s: reading the flow table: %s", ifname,
			 strerror((int)-flows));
		return (int)flows;
	}
	rc = ls_kernel_now(a.dir, &now);
	if (rc) {
		ls_attachment_close(&a);
		snprintf(err, errlen, "%s: reading the dataplane's clock: %s", ifname,
			 strerror(-rc));
		return rc;
	}
	*doc = status_json(ifname, a.dir, &a.maps, flows, now, hists);
	up = ls_breaker_json(a.dir, now);
	if (up)
		json_object_object_add(*doc, "upstreams", up);
	ls_attachment_close(&a);
	return 0;
}

static int run_status(const struct ls_call *call)
{
	json_object *o;
	char err[512];

	if (call->argc)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed status IFACE");
	if (ls_status_read(call->ifname, &o, NULL, err, sizeof(err)))
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);
	if (ls_json)
		ls_json_print(o);
	else
		print_text(o);
	return LS_EXIT_OK;
}

const struct ls_cmd ls_cmd_status = {
	.name = "status",
	.flags = LS_CMD_IFACE,
	.summary = "limits, in-flight, counters and latency of every service and class",
	.help = "Per service and class: limit, guarantee, in-flight, admitted, shed,\n"
		"would_shed, fail_open, latency count and p50/p99; and the attach modes.\n",
	.run = run_status,
};
