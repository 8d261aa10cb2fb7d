// SPDX-License-Identifier: GPL-2.0-only
/*
 * The agent's tick (doc/design.md §7.5): a BPF_PROG_TYPE_SYSCALL program
 * the agent runs each round through BPF_PROG_RUN.
 *  - The heartbeat is stamped with bpf_ktime_get_ns(), the clock the
 *    dataplane compares it with: the agent's own clock (a time namespace,
 *    say) cannot make it fresh or stale.
 *  - When asked, it sweeps the flow table in the kernel, with the same
 *    exchanges the dataplane uses (flow.h), so a flow ends once whoever
 *    gets there first: flows idle past the idle timeout end; flows silent
 *    since a client RST we could not trust end sooner; requests
 *    outstanding past the stall timeout give their slot back (a client
 *    that sends half a request and stalls holds nothing for long). One
 *    walk in the kernel replaces a read of the table into userspace and a
 *    delete per flow, and nothing can end between a read and a delete.
 */
#include "flow.h"

struct bpf_map;

struct ls_sweep {
	__u64 now;
	__u64 idle_ns, stall_ns, suspect_ns;
	__u64 flows, ended, stalled;
};

/* What the kernel said of a suspect flow's socket, for the agent (LS_TICK_*). */
static __always_inline __u32 ls_tick_op(struct ls_tick *t)
{
	struct ls_flow_key key;
	struct ls_flow *f;

	__builtin_memcpy(&key, &t->key, sizeof(key));
	f = bpf_map_lookup_elem(&ls_flows, &key);
	if (!f || !(READ_ONCE(f->flags) & LS_FLOW_SUSPECT_SENT))
		return 0;
	if (t->op == LS_TICK_END_SUSPECT)
		return ls_flow_end(&key, f, LS_END_RST) ? 1 : 0;
	__sync_fetch_and_and(&f->flags, ~(LS_FLOW_RST_SUSPECT | LS_FLOW_SUSPECT_SENT));
	return 1;
}

static long ls_sweep_one(struct bpf_map *map, struct ls_flow_key *key, struct ls_flow *f,
			 struct ls_sweep *sw)
{
	struct ls_class_stats *st;
	__u64 idle, r;

	sw->flows++;
	/* An entry whose slot a racing end took from a reused element: nobody else deletes it. */
	if (!READ_ONCE(f->slot)) {
		bpf_map_delete_elem(map, key);
		return 0;
	}
	idle = sw->now - READ_ONCE(f->last_seen_ns);
	if ((__s64)idle > (__s64)sw->idle_ns) {
		if (ls_flow_end(key, f, LS_END_IDLE))
			sw->ended++;
		return 0;
	}
	/*
	 * Silent since an untrusted RST: the kernel's silence proves nothing
	 * (it answers an out-of-window RST with nothing, and a second one in
	 * window within 500 ms with nothing either), so the agent asks the
	 * kernel whether the socket lives, once.
	 */
	if ((READ_ONCE(f->flags) & (LS_FLOW_RST_SUSPECT | LS_FLOW_SUSPECT_SENT)) ==
		    LS_FLOW_RST_SUSPECT &&
	    (__s64)idle > (__s64)sw->suspect_ns &&
	    !bpf_ringbuf_output(&ls_suspects, key, sizeof(*key), 0)) {
		__sync_fetch_and_or(&f->flags, LS_FLOW_SUSPECT_SENT);
	}
	/* Only a request that holds a slot (admit = requests) stalls: others are measured. */
	r = READ_ONCE(f->req);
	if ((r & LS_SLOT_COUNTED) && sw->stall_ns &&
	    ls_slot_age_us(r, sw->now) > sw->stall_ns / 1000) {
		r = ls_req_release(f);
		if (r) {
			sw->stalled++;
			st = ls_stats_of(ls_slot_svc(r), ls_slot_cls(r));
			if (st)
				st->stalled++;
		}
	}
	return 0;
}

SEC("syscall")
int ls_tick(struct ls_tick *t)
{
	struct ls_sweep sw = {};
	struct ls_state *s;
	__u32 zero = 0;

	sw.now = bpf_ktime_get_ns();
	s = bpf_map_lookup_elem(&ls_state, &zero);
	if (s && t->beat) {
		s->failopen_after_ns = t->failopen_after_ns;
		WRITE_ONCE(s->heartbeat_ns, sw.now);
	}
	t->now_ns = sw.now;
	if (t->op) {
		t->done = ls_tick_op(t);
		return 0;
	}
	if (t->sweep) {
		sw.idle_ns = t->idle_timeout_ns;
		sw.stall_ns = t->stall_timeout_ns;
		sw.suspect_ns = t->suspect_ns;
		bpf_for_each_map_elem(&ls_flows, ls_sweep_one, &sw, 0);
	}
	t->flows = sw.flows;
	t->ended = sw.ended;
	t->stalled = sw.stalled;
	return 0;
}
