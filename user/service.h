/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The state of a service that lives in the maps, for the agent and the
 * commands alike: its record (name, classes and shares, algorithm and its
 * parameters, limit bounds, what the operator pinned) in the config map,
 * and its limits (L and each class's guarantee) in the limits map.
 *
 * Every function returns 0 (or a slot) or a negative errno.
 */
#ifndef LS_SERVICE_H
#define LS_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loadshed.h"
#include "maps.h"

struct ls_algo;

/*
 * The slot of the service named name (NULL: the only one) with its record
 * in *meta. -ENOENT: no such service; -ENOTUNIQ: name is NULL and there
 * are several.
 */
int ls_service_find(const struct ls_maps *m, const char *name, struct ls_service_meta *meta);

/* The slot of a service's class by name, or -ENOENT. */
int ls_service_class(const struct ls_service_meta *meta, const char *name);

/* Deviations of a class's in-flight count its guarantee covers (design.md §4.3). */
#define LS_COVER_SIGMAS 3.5

/*
 * A class's load as the agent measures it (agent.c, svc_load): its demand,
 * the in-flight count its offered work would hold (ls_demand_inflight,
 * averaged over seconds), and the count its bursts reach (demand plus
 * LS_COVER_SIGMAS times how much its in-flight count moves from round to
 * round, ls_demand_jitter, the larger of a fast and a slow reading).
 */
struct ls_class_load {
	double demand;
	double bursts;
};

/*
 * The limits map value for limit L: guarantee[c] = max(1, ceil(L * share))
 * for a class with a share, 0 for a class without (and for unused slots);
 * a guarantee the operator pinned replaces the share's. L and every
 * guarantee are at most INT32_MAX (the dataplane compares them with s32
 * in-flight counts: a larger one would read as negative, and refuse all).
 *
 * load (NULL: none known) covers bursts: a class with a share whose demand
 * fits it (0 < demand <= L * share) is guaranteed floor(bursts) when that
 * is more, at most ceil(L * share + LS_COVER_SIGMAS * sqrt(L * share))
 * (what a Poisson stream filling the share would need). A class whose
 * demand exceeds its share gets the share.
 */
void ls_service_limits(uint32_t limit, const struct ls_service_meta *meta,
		       const struct ls_class_load *load, struct ls_limits *out);

/* Writes L and the class guarantees of service svc (load: as above). */
int ls_service_write_limits(const struct ls_maps *m, uint32_t svc, uint32_t limit,
			    const struct ls_service_meta *meta, const struct ls_class_load *load);

/*
 * Writes a changed record of service svc, then its limits: the pinned L
 * if there is one, else the L in force (the agent's next round adapts it).
 */
int ls_service_update(const struct ls_maps *m, uint32_t svc, const struct ls_service_meta *meta);

/* Sets or clears shadow mode of service svc in both policy generations. */
int ls_service_set_shadow(const struct ls_maps *m, uint32_t svc, bool on);

/*
 * Creates the algorithm a record names, with its parameters and its
 * initial/min/max limits (current, when not 0, as the initial limit).
 * On error err says why.
 */
int ls_service_algo(const struct ls_service_meta *meta, uint32_t current, struct ls_algo **out,
		    char *err, size_t errlen);

/* The limit a service starts with: pinned, or its algorithm's initial one. */
uint32_t ls_service_initial_limit(const struct ls_service_meta *meta);

#endif /* LS_SERVICE_H */
