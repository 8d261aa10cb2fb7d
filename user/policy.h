/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A validated config compiled into exactly the entries the dataplane maps
 * get for one policy generation. Pure: no BPF calls, so that what a config
 * means can be tested byte for byte; the map writer only copies.
 */
#ifndef LS_POLICY_H
#define LS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loadshed.h"

struct ls_config;

/* One ports map entry: only the image's gen byte of val is meaningful. */
struct ls_port_entry {
	uint16_t port;
	struct ls_port val;
};

struct ls_svc_addr_entry {
	struct ls_svc_addr_key key;
	uint32_t svc;
};

struct ls_prefix_entry {
	struct ls_prefix_key key;
	uint32_t rule_mask; /* bit r: rule r's source prefixes hold this prefix */
};

/*
 * Everything one generation of the policy writes into the maps. svc and
 * meta have all LS_MAX_SERVICES slots: the unused ones are zero (inactive),
 * so writing all of them also retires services a reload removed. ports,
 * svc_addrs and src_prefixes list only what exists, sorted (port; port and
 * address; service, length, address).
 */
struct ls_policy_image {
	uint32_t gen;
	uint32_t nr_services;
	struct ls_service_policy svc[LS_MAX_SERVICES]; /* policy[ls_policy_key(gen, i)] */
	struct ls_service_meta meta[LS_MAX_SERVICES];  /* config map, key i */
	struct ls_agent_meta agent; /* control-loop fields only; attach fills the rest */
	uint32_t nr_ports;
	struct ls_port_entry ports[LS_MAX_SERVICES * LS_MAX_LISTEN];
	uint32_t nr_svc_addrs;
	struct ls_svc_addr_entry svc_addrs[LS_MAX_SERVICES * LS_MAX_LISTEN];
	uint32_t nr_prefixes;
	struct ls_prefix_entry prefixes[LS_MAX_PREFIX_ENTRIES];
};

/*
 * Compiles a config that ls_config_validate() accepted into the entries
 * of generation gen (0 or 1). Returns 0 and a new image in *out, or a
 * negative errno with err filled and *out untouched.
 */
int ls_policy_compile(const struct ls_config *c, uint32_t gen, struct ls_policy_image **out,
		      char *err, size_t errlen);
void ls_policy_image_free(struct ls_policy_image **img);

/*
 * The same, for a reload onto a running policy whose service records are
 * prev[LS_MAX_SERVICES]: a service or class keeps its slot when its name
 * stays, and new names take slots no name held.
 */
int ls_policy_compile_onto(const struct ls_config *c, uint32_t gen,
			   const struct ls_service_meta *prev, struct ls_policy_image **out,
			   char *err, size_t errlen);

/*
 * Copies generation gen of an image's port entry into the live value,
 * leaving the other generation (the one the dataplane reads) as it is.
 * Ports that gen used before and the image lacks must be cleared by the
 * writer with a zero img.
 */
void ls_port_set_gen(struct ls_port *live, const struct ls_port *img, uint32_t gen);

#endif /* LS_POLICY_H */
