/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The dataplane's maps. bpf/maps.bpf.c defines them (LS_MAPS_DEFINE); the
 * programs see them as extern declarations, and `bpftool gen object` links
 * all into one object, so the XDP and TC programs share every map.
 * Value and key types come from include/loadshed.h.
 *
 * Kernel-side names carry an ls_ prefix, so `bpftool map list` on a busy
 * host says whose they are; the loader pins each map under its name without
 * the prefix (ls_flows as .../flows), the names users script against.
 * Which maps are pinned is the loader's table (user/maps.c), not libbpf's
 * pinning attribute: ls_admit_lock is internal and never pinned.
 */
#ifndef LS_BPF_MAPS_H
#define LS_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "loadshed.h"

#ifdef LS_MAPS_DEFINE
#define LS_MAP
#else
#define LS_MAP extern
#endif

/* The key of the handshake table's hash (ls_hs_hash), random per load. */
#ifdef LS_MAPS_DEFINE
const volatile __u64 ls_hs_seed = 0;
#else
extern const volatile __u64 ls_hs_seed;
#endif

/*
 * Destination port -> services on that port, per policy generation. An
 * array so that the test every TCP packet pays is one bounds-checked load:
 * non-service traffic leaves here.
 */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_port);
	__uint(max_entries, 65536);
} ls_ports SEC(".maps");

/* (gen, port, address) -> service, for services bound to one address. */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct ls_svc_addr_key);
	__type(value, __u32);
	__uint(max_entries, LS_NR_SVC_ADDRS);
} ls_svc_addrs SEC(".maps");

/*
 * (gen, service, source prefix) -> mask of the rules whose prefix holds
 * it. LPM trie: the one map type that answers "longest prefix containing
 * this address" in one lookup. BPF_F_NO_PREALLOC is required by the type.
 */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ls_prefix_key);
	__type(value, __u32);
	__uint(max_entries, LS_NR_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} ls_src_prefixes SEC(".maps");

/* ls_policy_key(gen, svc) -> rules, classes and flags of a service. */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_service_policy);
	__uint(max_entries, LS_NR_POLICY_SLOTS);
} ls_policy SEC(".maps");

/* svc -> limit L and class guarantees; the agent rewrites it each round. */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_limits);
	__uint(max_entries, LS_MAX_SERVICES);
} ls_limits SEC(".maps");

/*
 * svc -> in-flight counts. Shared (not per-CPU): admission must see one
 * total. Only atomic adds change it (the agent's sweep is a BPF program
 * too); mmapable so that the agent reads it without a syscall.
 */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_inflight);
	__uint(max_entries, LS_MAX_SERVICES);
	__uint(map_flags, BPF_F_MMAPABLE);
} ls_inflight SEC(".maps");

/*
 * svc -> the lock that makes admission's check-and-increment one step.
 * The counts live in the mmapable inflight map, which cannot hold a lock.
 * Internal to the XDP program: not pinned, never read by the agent.
 */
struct ls_admit_lock {
	struct bpf_spin_lock lock;
};

LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_admit_lock);
	__uint(max_entries, LS_MAX_SERVICES);
} ls_admit_lock SEC(".maps");

/*
 * Tracked connections. A plain preallocated hash with explicit deletes:
 * LRU would evict live flows silently and leak in-flight counts. An entry
 * is made only for a handshake the server completed (its ISN acknowledged)
 * or a connection the kernel holds established, never for a bare SYN, so
 * a spoofed SYN flood cannot fill it. Exactly one party ends a flow: the
 * one whose exchange takes its slot word (flow.h). The agent sets
 * max_entries before load.
 */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct ls_flow_key);
	__type(value, struct ls_flow);
	__uint(max_entries, LS_DEFAULT_MAX_FLOWS);
} ls_flows SEC(".maps");

/*
 * SYN-ACKs the server sent, until their ACK: a set-associative table, one
 * 64-byte set of LS_HS_WAYS ways per hash (ls_hs_hash, keyed with
 * ls_hs_seed), a way holding a tuple's tag, its ISN and when it was sent.
 * A SYN-ACK takes its tuple's way, else an empty one, else the oldest: no
 * insert, no lock, no allocation, one cache line read and written, the
 * cheapest write the flood path can make. It holds no accounting: a
 * handshake pushed out before its ACK came leaves that connection to be
 * adopted at its first request (§4.6). Under a spoofed SYN flood the
 * kernel's SYN-ACKs (or cookies) keep every set full; at 340 k SYN-ACKs/s,
 * the kernel's own cookie rate here, a real handshake is pushed out within
 * a 100 ms round trip with probability 0.2 % (four newer ones in its set).
 */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_hs_set);
	__uint(max_entries, LS_HS_SETS);
} ls_handshakes SEC(".maps");

/*
 * Requests shed by abort: the tuple, for the agent to destroy the server's
 * socket with sock_diag (XDP can send the client one RST, not two).
 */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, LS_ABORT_RING_BYTES);
} ls_aborts SEC(".maps");

/*
 * Flows silent since a client RST we could not trust: the tuple, for the
 * agent to ask the kernel whether the connection still lives (§5.3).
 */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, LS_SUSPECT_RING_BYTES);
} ls_suspects SEC(".maps");

/* One entry: active policy generation and the agent's heartbeat. */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_state);
	__uint(max_entries, 1);
} ls_state SEC(".maps");

/* Per-class counters; per-CPU so that counting needs no atomics. */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_class_stats);
	__uint(max_entries, LS_NR_CLASS_SLOTS);
} ls_class_stats SEC(".maps");

/* Per-class latency histograms; the agent reads deltas each round. */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_latency_hist);
	__uint(max_entries, LS_NR_CLASS_SLOTS);
} ls_latency SEC(".maps");

/* Per-service latencies of requests admitted since a probe began (ls_probe). */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_probe);
	__uint(max_entries, LS_MAX_SERVICES);
} ls_probe SEC(".maps");

/* Counters that belong to no class (parse errors, stray packets). */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_iface_stats);
	__uint(max_entries, 1);
} ls_iface_stats SEC(".maps");

/* Names, shares and algorithms, for the CLI and a restarted agent. */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_service_meta);
	__uint(max_entries, LS_MAX_SERVICES);
} ls_config SEC(".maps");

/* One entry: LS_LAYOUT_VERSION of the build that pinned all of these. */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_layout);
	__uint(max_entries, 1);
} ls_layout SEC(".maps");

/* The control loop's settings, for a restarted agent. */
LS_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ls_agent_meta);
	__uint(max_entries, 1);
} ls_agent SEC(".maps");

#endif /* LS_BPF_MAPS_H */
