/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Accounting shared by the XDP, TC and tick programs: counters of a class,
 * in-flight slots, and the one way a flow ends (doc/design.md §5).
 *
 * A slot is held by a slot word (include/loadshed.h) in the flow: the
 * flow's own (its connection) and its outstanding request's. Whoever
 * exchanges a word for 0 owns it and gives its slot back, exactly once,
 * to the class the word names: the word carries the class, so a flow
 * entry reused under a reader (a preallocated hash recycles a deleted
 * entry at once) can never make a release land on the wrong class.
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
	LS_END_IDLE,
	LS_END_ABORT,
};

static __always_inline struct ls_class_stats *ls_stats_of(__u32 svc, __u32 cls)
{
	__u32 idx = ls_class_index(svc, cls);

	if (svc >= LS_MAX_SERVICES || cls >= LS_MAX_CLASSES)
		return NULL;
	return bpf_map_lookup_elem(&ls_class_stats, &idx);
}

static __always_inline struct ls_iface_stats *ls_iface_counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ls_iface_stats, &zero);
}

/* Counts a slot taken: in total and cls when limited, in conns for a connection. */
static __always_inline void ls_slot_take(struct ls_inflight *inf, __u32 cls, int limited, int conn)
{
	if (cls >= LS_MAX_CLASSES)
		return;
	if (limited) {
		__sync_fetch_and_add(&inf->cls[cls], 1);
		__sync_fetch_and_add(&inf->total, 1);
	}
	if (conn)
		__sync_fetch_and_add(&inf->conns, 1);
}

/* Gives back the slot of word w (a connection's when conn). */
static __always_inline void ls_slot_release(__u64 w, int conn)
{
	__u32 svc = ls_slot_svc(w), cls = ls_slot_cls(w);
	struct ls_inflight *inf;

	if (!w || svc >= LS_MAX_SERVICES || cls >= LS_MAX_CLASSES)
		return;
	inf = bpf_map_lookup_elem(&ls_inflight, &svc);
	if (!inf)
		return;
	if (w & LS_SLOT_COUNTED) {
		__sync_fetch_and_add(&inf->cls[cls], -1);
		__sync_fetch_and_add(&inf->total, -1);
	}
	if (conn)
		__sync_fetch_and_add(&inf->conns, -1);
}

/* Takes the outstanding request's slot word and gives its slot back; returns the word. */
static __always_inline __u64 ls_req_release(struct ls_flow *f)
{
	__u64 r = __sync_lock_test_and_set(&f->req, 0);

	if (r)
		ls_slot_release(r, 0);
	return r;
}

/*
 * Records w as the flow's outstanding request. Fails (0) when one is
 * outstanding already, or when the flow ended meanwhile: then the caller
 * still owns w (a flow's ender takes the connection's word before the
 * request's, so one of the two sees the other and w is given back once).
 */
static __always_inline int ls_req_begin(struct ls_flow *f, __u64 w)
{
	if (__sync_val_compare_and_swap(&f->req, 0, w))
		return 0;
	if (!READ_ONCE(f->slot)) {
		__u64 r = __sync_lock_test_and_set(&f->req, 0);

		/* If the ender took it first, it gave it back: nothing is ours. */
		if (r && r != w)
			ls_slot_release(r, 0);
		return r != w ? 1 : 0;
	}
	return 1;
}

/*
 * Ends the flow of key, whose entry the caller holds as f: the one caller
 * whose exchange takes the connection's word gives the connection's slot
 * back, counts the end and deletes the entry; an outstanding request is
 * given back by whoever takes its word. Returns the connection's word, 0
 * when another party ended the flow.
 */
static __always_inline __u64 ls_flow_end(const struct ls_flow_key *key, struct ls_flow *f,
					 enum ls_end_reason why)
{
	__u64 slot = __sync_lock_test_and_set(&f->slot, 0);
	struct ls_class_stats *st;

	ls_req_release(f);
	if (!slot)
		return 0;
	ls_slot_release(slot, 1);
	bpf_map_delete_elem(&ls_flows, key);
	st = ls_stats_of(ls_slot_svc(slot), ls_slot_cls(slot));
	if (!st)
		return slot;
	if (why == LS_END_FIN)
		st->ended_fin++;
	else if (why == LS_END_RST)
		st->ended_rst++;
	else if (why == LS_END_REUSED)
		st->ended_reused++;
	else if (why == LS_END_IDLE)
		st->ended_idle++;
	return slot;
}

/* The handshake set of a tuple, its tag in *tag; NULL only if the verifier's view says so. */
static __always_inline struct ls_hs_set *ls_hs_set_for(const struct ls_flow_key *key, __u32 *tag)
{
	__u64 h = ls_hs_hash(key, ls_hs_seed);
	__u32 idx = ls_hs_set_of(h);

	*tag = ls_hs_tag_of(h);
	return bpf_map_lookup_elem(&ls_handshakes, &idx);
}

/* The way of set holding the handshake of tag whose ISN is isn, or NULL. */
static __always_inline struct ls_handshake *ls_hs_find(struct ls_hs_set *set, __u32 tag, __u32 isn)
{
	int i;

#pragma unroll
	for (i = 0; i < LS_HS_WAYS; i++) {
		struct ls_handshake *w = &set->way[i];

		if (READ_ONCE(w->word) >> 16 == tag && READ_ONCE(w->isn) == isn &&
		    READ_ONCE(w->sent_ms))
			return w;
	}
	return NULL;
}

#endif /* LS_BPF_FLOW_H */
