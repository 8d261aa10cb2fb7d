/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pinned maps of an attachment as file descriptors, and the reads the
 * CLI and the agent make of them (per-CPU values summed).
 */
#ifndef LS_MAPS_H
#define LS_MAPS_H

#include <stdint.h>
#include "loadshed.h"

struct loadshed_bpf;

struct ls_maps {
	int layout;
	int ports;
	int svc_addrs;
	int src_prefixes;
	int policy;
	int limits;
	int inflight;
	int flows;
	int handshakes;
	int aborts;
	int suspects;
	int state;
	int class_stats;
	int latency;
	int probe;
	int iface_stats;
	int config;
	int agent;
};

/*
 * Opens every map pinned in dir; on error none is left open. -EPROTO: the
 * maps were pinned by a build of another layout (LS_LAYOUT_VERSION), whose
 * version is then in *found_version (0: older than versions; may be NULL),
 * or a map is missing or not of the type, key or value size this build reads.
 */
int ls_maps_open(const char *dir, struct ls_maps *m, uint32_t *found_version);
/* Before load: every pinned map of the skeleton gets its path in dir. */
int ls_maps_set_pins(struct loadshed_bpf *skel, const char *dir);
/* After load: records this build's LS_LAYOUT_VERSION with the pins. */
int ls_maps_write_layout(const struct ls_maps *m);
/* Duplicates the map fds of a loaded skeleton, so both can be closed apart. */
int ls_maps_from_skel(struct loadshed_bpf *skel, struct ls_maps *m);
void ls_maps_close(struct ls_maps *m);
/* Removes every map pin from dir; missing pins are fine. */
void ls_maps_unpin(const char *dir);

int ls_read_state(const struct ls_maps *m, struct ls_state *s);
int ls_write_state(const struct ls_maps *m, const struct ls_state *s);
int ls_read_agent(const struct ls_maps *m, struct ls_agent_meta *a);
int ls_write_agent(const struct ls_maps *m, const struct ls_agent_meta *a);
int ls_read_meta(const struct ls_maps *m, uint32_t svc, struct ls_service_meta *meta);
int ls_read_limits(const struct ls_maps *m, uint32_t svc, struct ls_limits *l);
int ls_read_inflight(const struct ls_maps *m, uint32_t svc, struct ls_inflight *in);

/* Sums of the per-CPU values of one class slot. */
int ls_read_class_stats(const struct ls_maps *m, uint32_t idx, struct ls_class_stats *out);
int ls_read_latency(const struct ls_maps *m, uint32_t idx, struct ls_latency_hist *out);
/*
 * Any per-CPU map's entry key summed over the CPUs: as nr_u64 counters, or
 * as a struct ls_latency_hist (min and max taken, not summed).
 */
int ls_map_sum_percpu(int fd, uint32_t key, __u64 *out, size_t nr_u64);
int ls_map_read_hist(int fd, uint32_t key, struct ls_latency_hist *out);
/*
 * A service's probe (design §7.4): ls_probe_set starts one at epoch_ns (the
 * dataplane's clock) with an empty histogram on every CPU, or with 0 ends
 * it; ls_read_probe sums what the dataplane recorded since.
 */
int ls_probe_set(const struct ls_maps *m, uint32_t svc, uint64_t epoch_ns);
int ls_read_probe(const struct ls_maps *m, uint32_t svc, struct ls_latency_hist *out);
int ls_read_iface_stats(const struct ls_maps *m, struct ls_iface_stats *out);

typedef void (*ls_flow_fn)(const struct ls_flow_key *key, const struct ls_flow *flow, void *ctx);

/*
 * Calls fn (when not NULL) on every flow, read in batches: a few syscalls
 * for thousands of flows. fn may delete the flow it is given. Returns the
 * number of flows visited, or a negative errno.
 */
long ls_flows_walk(const struct ls_maps *m, ls_flow_fn fn, void *ctx);

#endif
