// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The outbound circuit breakers' families on the metrics page
 * (doc/design.md §7.7, §15): each upstream's state as an enum (a state
 * label, 1 for the current one), its calls by outcome, its slow calls,
 * its rejections by where and its transitions by target state. The same
 * maps `loadshed breaker IFACE status` reads.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <bpf/bpf.h>

#include "breaker.h"
#include "breaker_maps.h"
#include "metrics_breaker.h"

struct up_read {
	struct ls_upstream_meta meta;
	struct ls_brk_ctl ctl;
	struct ls_brk_stats st;
};

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(FILE *f, const char *name, const char *iface, const struct up_read *u,
		    const char *label, const char *value, uint64_t v)
{
	fprintf(f, "%s{iface=\"%s\",upstream=\"%s\",%s=\"%s\"} %llu\n", name, iface, u->meta.name,
		label, value, (unsigned long long)v);
}

static void write_families(FILE *f, const char *iface, const struct up_read *up, uint32_t nr)
{
	static const uint32_t states[] = {LS_BRK_CLOSED, LS_BRK_OPEN, LS_BRK_HALF_OPEN};

	family(f, "loadshed_breaker_state", "gauge",
	       "The upstream's circuit: 1 for its current state (closed, open, half_open).");
	for (uint32_t i = 0; i < nr; i++)
		for (size_t s = 0; s < 3; s++)
			counter(f, "loadshed_breaker_state", iface, &up[i], "state",
				ls_brk_state_name(states[s]), up[i].ctl.state == states[s]);
	family(f, "loadshed_breaker_calls_total", "counter",
	       "Calls to the upstream with an outcome: ok (answered) or the failure "
	       "(refused, connect_timeout, reset, no_answer).");
	for (uint32_t i = 0; i < nr; i++) {
		const struct ls_brk_stats *st = &up[i].st;
		const char *f_names[] = {"refused", "connect_timeout", "reset", "no_answer"};
		uint64_t f_vals[] = {st->refused, st->connect_timeouts, st->resets, st->no_answer};

		counter(f, "loadshed_breaker_calls_total", iface, &up[i], "outcome", "ok",
			st->calls > st->failures ? st->calls - st->failures : 0);
		for (size_t k = 0; k < 4; k++)
			counter(f, "loadshed_breaker_calls_total", iface, &up[i], "outcome",
				f_names[k], f_vals[k]);
	}
	family(f, "loadshed_breaker_slow_calls_total", "counter",
	       "Calls (answered or failed) that took slow_call_duration_threshold or more.");
	for (uint32_t i = 0; i < nr; i++)
		fprintf(f, "loadshed_breaker_slow_calls_total{iface=\"%s\",upstream=\"%s\"} %llu\n",
			iface, up[i].meta.name, (unsigned long long)up[i].st.slow);
	family(f, "loadshed_breaker_rejected_total", "counter",
	       "Calls refused by the circuit: a connect() (ECONNREFUSED) or a request's first "
	       "send (EACCES).");
	for (uint32_t i = 0; i < nr; i++) {
		counter(f, "loadshed_breaker_rejected_total", iface, &up[i], "where", "connect",
			up[i].st.rejected_connect);
		counter(f, "loadshed_breaker_rejected_total", iface, &up[i], "where", "send",
			up[i].st.rejected_send);
	}
	family(f, "loadshed_breaker_transitions_total", "counter",
	       "Transitions of the upstream's circuit, by the state entered.");
	for (uint32_t i = 0; i < nr; i++) {
		counter(f, "loadshed_breaker_transitions_total", iface, &up[i], "to", "open",
			up[i].meta.to_open);
		counter(f, "loadshed_breaker_transitions_total", iface, &up[i], "to", "half_open",
			up[i].meta.to_half_open);
		counter(f, "loadshed_breaker_transitions_total", iface, &up[i], "to", "closed",
			up[i].meta.to_closed);
	}
}

char *ls_metrics_breaker(const char *dir, const char *iface_label)
{
	struct up_read up[LS_MAX_UPSTREAMS];
	struct ls_brk_maps m;
	char *text = NULL;
	uint32_t nr = 0;
	size_t len = 0;
	FILE *f;

	if (ls_brk_maps_open(dir, &m))
		return NULL;
	for (uint32_t i = 0; i < LS_MAX_UPSTREAMS; i++) {
		struct up_read *u = &up[nr];

		if (bpf_map_lookup_elem(m.meta, &i, &u->meta) || !u->meta.active ||
		    bpf_map_lookup_elem(m.ctl, &i, &u->ctl) || ls_brk_read_stats(&m, i, &u->st))
			continue;
		/* Names are [A-Za-z0-9_.-]: nothing to escape in a label. */
		u->meta.name[sizeof(u->meta.name) - 1] = '\0';
		nr++;
	}
	ls_brk_maps_close(&m);
	if (!nr)
		return NULL;
	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	write_families(f, iface_label, up, nr);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}
