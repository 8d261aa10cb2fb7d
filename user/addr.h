/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Addresses and source prefixes in the one form every map key uses: 16
 * bytes, IPv4 as its IPv4-mapped IPv6 address (::ffff:a.b.c.d). A prefix
 * length always counts bits of those 16 bytes (an IPv4 /24 is 120).
 */
#ifndef LS_ADDR_H
#define LS_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loadshed.h"

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

/*
 * The text form of a metrics address as the config takes it: A.B.C.D:PORT,
 * [IPV6]:PORT or *:PORT; "off" when its port is 0. buf of 64 is enough.
 */
void ls_metrics_addr_format(const struct ls_metrics_addr *m, char *buf, size_t len);

#endif /* LS_ADDR_H */
