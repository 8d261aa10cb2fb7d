/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Writing a compiled policy into an attachment's maps (see policy_maps.c). */
#ifndef LS_POLICY_MAPS_H
#define LS_POLICY_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maps.h"
#include "policy.h"

/* Writes generation img->gen: ports, service addresses, prefixes, policy. */
int ls_policy_write_gen(const struct ls_maps *m, const struct ls_policy_image *img);

/*
 * Makes img->gen the active generation, then writes names, limits and the
 * agent's settings. With keep_limits, services that stay keep their L.
 */
int ls_policy_activate(const struct ls_maps *m, const struct ls_policy_image *img,
		       bool keep_limits);

/* The limit a service starts with: pinned, or its algorithm's initial one. */
uint32_t ls_initial_limit(const struct ls_service_meta *meta);

/*
 * Validates and compiles the file, then swaps it in on ifname's running
 * attachment, keeping flows, counters and limits. -EINVAL: the file was
 * refused and nothing changed; err says why.
 */
int ls_policy_reload(const char *ifname, const char *path, char *err, size_t errlen);

/* Reloads the config file attach was given (SIGHUP of the agent). */
int ls_policy_reload_saved(const char *ifname);

#endif
