/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A validated config compiled into exactly the entries the dataplane maps
 * get for one policy generation. Pure: no BPF calls, so that what a config
 * means can be tested byte for byte; the map writer only copies.
 *
 * Also the address helpers the config parser shares: every address is
 * kept as 16 bytes, IPv4 in its IPv4-mapped form (::ffff:a.b.c.d), and a
 * prefix length always counts bits of those 16 bytes (an IPv4 /24 is 120).
 */
#ifndef LS_POLICY_H
#define LS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loadshed.h"

struct ls_config;

/* A source prefix: the address with its host bits cleared. */
struct ls_prefix {
	uint8_t addr[16];
	uint8_t len_bits; /* 0..128 over the 16-byte form */
};

/* ::ffff:a.b.c.d from an IPv4 address in network order. */
void ls_addr_v4_mapped(uint8_t out[16], uint32_t ipv4_be);
bool ls_addr_is_v4_mapped(const uint8_t addr[16]);

/* An IPv4 or IPv6 address in text form; 0 or -EINVAL. */
int ls_parse_addr(const char *text, uint8_t out[16], bool *is_v4);

/*
 * ADDR/LEN or a bare ADDR (a host: /32 or /128), IPv4 or IPv6. A length
 * past the family's width or not a plain number is -EINVAL. Host bits set
 * below the length are cleared and *masked says so: 10.1.2.3/16 is taken
 * as 10.1.0.0/16, as ip(8) and iptables do.
 */
int ls_parse_prefix(const char *text, struct ls_prefix *out, bool *masked);

/* Whether prefix outer holds prefix inner (itself included). */
bool ls_prefix_contains(const struct ls_prefix *outer, const struct ls_prefix *inner);

/* The text form of a prefix (IPv4 for mapped addresses); buf of 64 is enough. */
void ls_prefix_format(const struct ls_prefix *p, char *buf, size_t len);

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

/*
 * The limits map value for limit L: guarantee[c] = max(1, ceil(L * share))
 * for a class with a share, 0 for a class without (and for unused slots).
 */
void ls_guarantees(uint32_t limit, const struct ls_service_meta *m, struct ls_limits *out);

#endif /* LS_POLICY_H */
