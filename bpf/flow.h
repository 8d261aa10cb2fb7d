/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Flow accounting shared by the XDP and TC programs: counters of a class,
 * and the one way a flow ends. Whoever deletes a flow's entry decrements
 * its in-flight counts; bpf_map_delete_elem() succeeds for exactly one
 * deleter, so a flow ends once however many FINs, RSTs and sweeps race.
 */
#ifndef LS_BPF_FLOW_H
#define LS_BPF_FLOW_H

#include <linux/errno.h>
#include "maps.h"

/* A plain load or store the compiler may neither merge, tear nor elide. */
#ifndef READ_ONCE
#define READ_ONCE(x) (*(const volatile typeof(x) *)&(x))
#endif
#ifndef WRITE_ONCE
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#endif

enum ls_end_reason {
	LS_END_FIN,
	LS_END_RST,
	LS_END_REUSED,
};

static __always_inline struct ls_class_stats *ls_stats_of(__u32 svc, __u32 cls)
{
	__u32 idx = ls_class_index(svc, cls);

	return bpf_map_lookup_elem(&ls_class_stats, &idx);
}

static __always_inline struct ls_iface_stats *ls_iface_counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ls_iface_stats, &zero);
}

static __always_inline void ls_inflight_count(struct ls_inflight *inf, __u32 cls, int delta)
{
	if (cls >= LS_MAX_CLASSES)
		return;
	__sync_fetch_and_add(&inf->cls[cls], delta);
	__sync_fetch_and_add(&inf->total, delta);
}

static __always_inline void ls_inflight_add(__u32 svc, __u32 cls, int delta)
{
	struct ls_inflight *inf = bpf_map_lookup_elem(&ls_inflight, &svc);

	if (inf)
		ls_inflight_count(inf, cls, delta);
}

/*
 * Ends the flow of key, whose entry the caller looked up as f. Reads what
 * it needs before the delete: a deleted preallocated entry may be reused
 * at once by another CPU.
 */
static __always_inline void ls_flow_end(const struct ls_flow_key *key, const struct ls_flow *f,
					enum ls_end_reason why)
{
	__u32 svc = f->svc, cls = f->cls;
	struct ls_class_stats *st;

	if (bpf_map_delete_elem(&ls_flows, key))
		return; /* someone else ended it */
	ls_inflight_add(svc, cls, -1);
	st = ls_stats_of(svc, cls);
	if (!st)
		return;
	if (why == LS_END_FIN)
		st->ended_fin++;
	else if (why == LS_END_RST)
		st->ended_rst++;
	else
		st->ended_reused++;
}

#endif /* LS_BPF_FLOW_H */
