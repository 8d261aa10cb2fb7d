/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Crafted frames for the dataplane tests: Ethernet with up to three VLAN
 * tags, IPv4 (options, and any IHL, total length or fragment field a
 * malformed case needs), IPv6 with extension header chains, TCP or UDP
 * with correct checksums. A frame is described by a struct pkt_spec and
 * built into a buffer; the spec stays the ground truth the checks compare
 * against, so nothing here parses what the dataplane produced with the
 * dataplane's own parser.
 */
#ifndef LS_TEST_PKT_H
#define LS_TEST_PKT_H

#include <stddef.h>
#include <linux/types.h>
#include "loadshed.h"

#define PKT_MAX_VLANS 3
#define PKT_MAX_EXT   10
#define PKT_MAX_LEN   1600

#define PKT_FIN 0x01
#define PKT_SYN 0x02
#define PKT_RST 0x04
#define PKT_PSH 0x08
#define PKT_ACK 0x10
#define PKT_ECE 0x40
#define PKT_CWR 0x80

struct pkt_vlan {
	__u16 tpid; /* 0x8100 or 0x88a8 */
	__u16 tci;
};

/* One IPv6 extension header; its next-header byte is filled in by the chain. */
struct pkt_ext {
	__u8 type;  /* IPPROTO_HOPOPTS, _ROUTING, _DSTOPTS, _FRAGMENT or _AH */
	__u8 len;   /* the header's length field, in the units of its type */
	__u16 frag; /* fragment header: offset << 3 | M, host order */
	/* Other headers: their first six bytes after next header and length (zero: Pad1s). */
	__u8 body[6];
};

struct pkt_spec {
	__u8 src_mac[6];
	__u8 dst_mac[6];
	int nr_vlans;
	struct pkt_vlan vlan[PKT_MAX_VLANS];
	__u16 ethertype; /* after the tags; 0: IPv4 or IPv6 as ipv6 says */

	int ipv6;
	__u8 saddr[16]; /* IPv4: the first 4 bytes */
	__u8 daddr[16];
	__u8 tos; /* IPv4 TOS or IPv6 traffic class: DSCP << 2 | ECN */
	__u8 ttl;
	__u8 l4proto; /* 0: TCP */

	/* IPv4 only */
	__u8 ip_opts[40];
	int ip_opts_len; /* a multiple of 4 */
	int ihl;	 /* 0: from the options; else written as is (0..15) */
	int tot_len;	 /* 0: the real length; else written as is */
	__u16 frag_off;	 /* host order: flags (0x4000 DF, 0x2000 MF) | offset */

	/* IPv6 only */
	struct pkt_ext ext[PKT_MAX_EXT];
	int nr_ext;
	int payload_len6; /* 0: the real length; else written as is */

	/* TCP (sport/dport/payload also for UDP) */
	__u16 sport;
	__u16 dport;
	__u32 seq;
	__u32 ack;
	__u8 flags;
	__u16 window;
	/* 1: the TCP checksum left for the device (CHECKSUM_PARTIAL: the pseudo-header's sum) */
	__u8 csum_partial;
	__u8 tcp_opts[40];
	int tcp_opts_len; /* a multiple of 4 */
	int doff;	  /* 0: from the options; else written as is (0..15) */
	const void *payload;
	int payload_len;

	int truncate; /* > 0: cut the built frame to this many bytes */
};

/* Where the headers of a built frame start. */
struct pkt_layout {
	size_t len;
	size_t l3_off;
	size_t l4_off;
	size_t data_off;
};

/*
 * A TCP segment from (saddr, sport) to (daddr, dport) with the given
 * flags; the addresses are text in the family ipv6 says. MACs, TTL, a
 * window and seq 1000 are filled in; everything else is zero.
 */
void pkt_tcp(struct pkt_spec *s, int ipv6, const char *saddr, __u16 sport, const char *daddr,
	     __u16 dport, __u8 flags);
/* A well-formed ARP request frame (not IP at all). */
size_t pkt_arp(__u8 *buf, size_t cap);

/* The same spec travelling the other way: MACs, addresses and ports swapped. */
void pkt_reverse(struct pkt_spec *s);

/* Adds a VLAN tag (outermost first). */
void pkt_add_vlan(struct pkt_spec *s, __u16 tpid, __u16 vid);
/* Appends an IPv6 extension header to the chain. */
void pkt_add_ext(struct pkt_spec *s, __u8 type, __u8 len);

/* Builds the frame; returns its length, or 0 when it does not fit in cap. */
size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap, struct pkt_layout *lay);

/*
 * The flow key the dataplane files the connection under: client_is_src
 * says whether s travels client -> server (XDP) or server -> client (TC).
 */
void pkt_flow_key(const struct pkt_spec *s, int client_is_src, struct ls_flow_key *key);

/* 16-bit one's complement of the sum of buf (network order words) plus sum. */
__u16 pkt_csum(const void *buf, size_t len, __u32 sum);

/*
 * Checks that frame is the RST|ACK refusing the SYN of spec syn, field by
 * field: MACs swapped, VLAN tags kept, addresses and ports swapped, seq 0,
 * ack = ISN + 1 + SYN payload, flags exactly RST|ACK, doff 5, no options or
 * payload, and both checksums verified by recomputation. Returns 0, or -1
 * with the first mismatch described in why.
 */
int pkt_check_rst(const struct pkt_spec *syn, const void *frame, size_t len, char *why,
		  size_t why_len);

/*
 * The same checks for the RST|ACK answering seg, a segment of a connection
 * the client holds established (a handshake's ACK, a request): seq = the
 * segment's acknowledgment number (what the client expects next, so that
 * it takes the RST) and ack = its seq + payload.
 */
int pkt_check_rst_of_segment(const struct pkt_spec *seg, const void *frame, size_t len, char *why,
			     size_t why_len);

#endif /* LS_TEST_PKT_H */
