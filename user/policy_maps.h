/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Writing a compiled policy into an attachment's maps (see policy_maps.c). */
#ifndef LS_POLICY_MAPS_H
#define LS_POLICY_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maps.h"
#include "config.h"
#include "policy.h"

/* Writes generation img->gen: ports, service addresses, prefixes, policy. */
int ls_policy_write_gen(const struct ls_maps *m, const struct ls_policy_image *img);

/*
 * Makes img->gen the active generation, then writes names, limits and the
 * agent's settings. With keep_limits, services that stay keep their L.
 */
int ls_policy_activate(const struct ls_maps *m, const struct ls_policy_image *img,
		       bool keep_limits);

/*
 * Swaps a validated config in on ifname's running attachment, keeping
 * flows, counters and the limits of the services that stay. On error
 * err says why and nothing was switched.
 */
int ls_policy_apply(const char *ifname, const struct ls_config *cfg, char *err, size_t errlen);

/* The same on the maps of an attachment whose lock the caller holds. */
int ls_policy_apply_locked(const struct ls_maps *m, const char *ifname, const struct ls_config *cfg,
			   char *err, size_t errlen);

/* Loads, validates and applies the config file attach was given (the agent's SIGHUP). */
int ls_policy_reload_saved(const char *ifname);

#endif
