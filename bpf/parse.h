/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Bounded parsing of Ethernet (up to two VLAN tags), IPv4 (with options),
 * IPv6 (a bounded chain of extension headers) and TCP, shared by the XDP
 * and TC programs. Every read is checked against data_end; every length a
 * header claims is checked against the packet's real length, so a
 * malformed packet is reported as such and never misparsed.
 */
#ifndef LS_BPF_PARSE_H
#define LS_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "loadshed.h"

#define LS_MAX_VLAN_TAGS 2
#define LS_MAX_EXT_HDRS	 6
/* No header we parse starts further in than this. */
#define LS_MAX_L4_OFF 512

#define LS_TCP_FIN 0x01
#define LS_TCP_SYN 0x02
#define LS_TCP_RST 0x04
#define LS_TCP_ACK 0x10

/* a - b > 0 in TCP sequence space */
#define LS_SEQ_AFTER(a, b) ((__s32)((__u32)(a) - (__u32)(b)) > 0)

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

enum ls_parse_result {
	LS_PARSE_TCP = 0,	/* a TCP segment: every field of ls_pkt is valid */
	LS_PARSE_NOT_TCP = 1,	/* well formed, but not TCP over IP: not ours */
	LS_PARSE_MALFORMED = 2, /* truncated, inconsistent, or a later fragment */
	/*
	 * The first fragment of a TCP segment: its ports are in key when
	 * LS_PKT_PORTS is set. Reassembled, it would reach the listener
	 * undecided, so to a service it must not pass.
	 */
	LS_PARSE_FIRST_FRAGMENT = 3,
	/*
	 * Could not be decided and must not pass: an IPv6 header chain longer
	 * than we follow (what it carries is unknown), an IPv6 address in the
	 * IPv4-mapped range (it would share an IPv4 flow's key).
	 */
	LS_PARSE_UNDECIDABLE = 4,
};

/* ls_pkt.flags */
#define LS_PKT_PORTS (1u << 0) /* a first fragment whose TCP ports were read */
/* IPv4 options, or an IPv6 Hop-by-Hop, Destination Options or Routing header. */
#define LS_PKT_OPTIONS (1u << 1)

enum ls_dir {
	LS_DIR_INGRESS, /* source is the client */
	LS_DIR_EGRESS,	/* source is the server */
};

struct ls_pkt {
	struct ls_flow_key key;
	__u32 l3_off;
	__u32 payload_len; /* TCP payload bytes, from the IP lengths */
	__u32 seq;	   /* host order */
	__u32 ack_seq;	   /* host order */
	__u16 l4_off;	   /* the TCP header's offset in the frame */
	__u16 l4_len;	   /* the TCP segment's length, header and payload */
	__u16 window;	   /* host order, unscaled */
	__u8 tcp_flags;
	__u8 dscp;
	__u8 ipv6;
	__u8 flags; /* LS_PKT_* */
};

/* ::ffff:0:0/96, which on the wire is no IPv6 address at all (RFC 4291 2.5.5.2). */
static __always_inline int ls_v4_mapped(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;

	return !w[0] && !w[1] && w[2] == bpf_htonl(0xffff);
}

/* IPv6 extension headers we step over; anything else ends the chain. */
static __always_inline int ls_is_ipv6_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_AH || nexthdr == IPPROTO_FRAGMENT;
}

static __always_inline int ls_ipv6_ext_len(__u8 nexthdr, const __u8 *hdr)
{
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
		return (hdr[1] + 1) * 8;
	case IPPROTO_AH:
		return (hdr[1] + 2) * 4;
	case IPPROTO_FRAGMENT:
		return 8;
	default:
		return 0;
	}
}

static __always_inline void ls_put_addr(struct ls_pkt *p, enum ls_dir dir, int src, const void *a,
					int v6)
{
	__u8 *dst;

	if ((dir == LS_DIR_INGRESS) == !!src)
		dst = p->key.client;
	else
		dst = p->key.server;
	if (v6) {
		__builtin_memcpy(dst, a, 16);
	} else {
		__u32 *w = (__u32 *)dst;

		w[0] = 0;
		w[1] = 0;
		w[2] = bpf_htonl(0xffff);
		w[3] = *(const __u32 *)a;
	}
}

/*
 * Parses the frame in [data, data_end). pkt_len is the frame's full length
 * (for a TC skb it may exceed what is linear at data). On LS_PARSE_TCP the
 * flow key is filled in the direction given: ingress puts the source in
 * key.client, egress in key.server.
 */
static __always_inline enum ls_parse_result ls_parse(void *data, void *data_end, __u32 pkt_len,
						     enum ls_dir dir, struct ls_pkt *p)
{
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	__u32 off = sizeof(*eth);
	__u32 l4_off, l4_end; /* TCP header start; end of the IP payload */
	__u16 proto;
	int i, first_fragment = 0;
	__u8 risky = 0;

	if ((void *)(eth + 1) > data_end)
		return LS_PARSE_MALFORMED;
	proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < LS_MAX_VLAN_TAGS; i++) {
		__be16 *tag;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		tag = data + off;
		if ((void *)(tag + 2) > data_end)
			return LS_PARSE_MALFORMED;
		proto = tag[1];
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return LS_PARSE_MALFORMED; /* a third tag: more than we parse */
	p->l3_off = off;

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = data + off;
		__u32 ihl, tot;

		if ((void *)(iph + 1) > data_end || iph->version != 4)
			return LS_PARSE_MALFORMED;
		ihl = iph->ihl * 4;
		tot = bpf_ntohs(iph->tot_len);
		if (ihl < sizeof(*iph) || tot < ihl || off + tot > pkt_len)
			return LS_PARSE_MALFORMED;
		if (ihl > sizeof(*iph))
			risky = LS_PKT_OPTIONS;
		if (iph->frag_off & bpf_htons(0x1fff)) /* a later fragment: no ports in it */
			return LS_PARSE_MALFORMED;
		if (iph->protocol != IPPROTO_TCP)
			return LS_PARSE_NOT_TCP;
		first_fragment = !!(iph->frag_off & bpf_htons(0x2000)); /* MF at offset 0 */
		ls_put_addr(p, dir, 1, &iph->saddr, 0);
		ls_put_addr(p, dir, 0, &iph->daddr, 0);
		p->dscp = iph->tos >> 2;
		p->ipv6 = 0;
		l4_off = off + ihl;
		l4_end = off + tot;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;
		__u8 nexthdr;

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return LS_PARSE_MALFORMED;
		l4_end = off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		if (l4_end > pkt_len)
			return LS_PARSE_MALFORMED;
		nexthdr = ip6->nexthdr;
		l4_off = off + sizeof(*ip6);
		if (ls_v4_mapped(ip6->saddr.in6_u.u6_addr8) ||
		    ls_v4_mapped(ip6->daddr.in6_u.u6_addr8))
			return LS_PARSE_UNDECIDABLE;
		ls_put_addr(p, dir, 1, &ip6->saddr, 1);
		ls_put_addr(p, dir, 0, &ip6->daddr, 1);
		p->dscp = ((ip6->priority << 4) | (ip6->flow_lbl[0] >> 4)) >> 2;
		p->ipv6 = 1;

		for (i = 0; i < LS_MAX_EXT_HDRS; i++) {
			__u8 *hdr = data + l4_off;
			int len;

			if (nexthdr == IPPROTO_TCP)
				break;
			if (!ls_is_ipv6_ext(nexthdr))
				return LS_PARSE_NOT_TCP;
			if ((void *)(hdr + 8) > data_end)
				return LS_PARSE_MALFORMED;
			len = ls_ipv6_ext_len(nexthdr, hdr);
			if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_DSTOPTS ||
			    nexthdr == IPPROTO_ROUTING)
				risky = LS_PKT_OPTIONS;
			if (nexthdr == IPPROTO_FRAGMENT) {
				__be16 frag = *(__be16 *)(hdr + 2);

				/* A later fragment carries no ports; the first is decided below. */
				if (frag & bpf_htons(0xfff8))
					return LS_PARSE_MALFORMED;
				if (frag & bpf_htons(1))
					first_fragment = 1;
			}
			nexthdr = hdr[0];
			l4_off += len;
			if (l4_off > l4_end)
				return LS_PARSE_MALFORMED;
			if (l4_off > LS_MAX_L4_OFF)
				return LS_PARSE_UNDECIDABLE;
		}
		if (nexthdr != IPPROTO_TCP) /* longer than we follow, or another protocol */
			return ls_is_ipv6_ext(nexthdr) ? LS_PARSE_UNDECIDABLE : LS_PARSE_NOT_TCP;
	} else {
		return LS_PARSE_NOT_TCP;
	}

	p->flags = risky;
	if (l4_off > LS_MAX_L4_OFF)
		return LS_PARSE_MALFORMED;
	tcp = data + l4_off;
	if (first_fragment) {
		/* The ports, if the fragment holds them: all a first fragment is judged by. */
		if ((void *)(tcp + 1) > data_end || l4_off + sizeof(*tcp) > l4_end)
			return LS_PARSE_FIRST_FRAGMENT;
		p->key.client_port = dir == LS_DIR_INGRESS ? tcp->source : tcp->dest;
		p->key.server_port = dir == LS_DIR_INGRESS ? tcp->dest : tcp->source;
		p->flags |= LS_PKT_PORTS;
		return LS_PARSE_FIRST_FRAGMENT;
	}
	if ((void *)(tcp + 1) > data_end)
		return LS_PARSE_MALFORMED;
	if (tcp->doff < 5 || l4_off + tcp->doff * 4 > l4_end)
		return LS_PARSE_MALFORMED;
	p->payload_len = l4_end - l4_off - tcp->doff * 4;
	p->l4_off = l4_off;
	p->l4_len = l4_end - l4_off;
	p->window = bpf_ntohs(tcp->window);
	p->seq = bpf_ntohl(tcp->seq);
	p->ack_seq = bpf_ntohl(tcp->ack_seq);
	p->tcp_flags = ((__u8 *)tcp)[13];
	if (dir == LS_DIR_INGRESS) {
		p->key.client_port = tcp->source;
		p->key.server_port = tcp->dest;
	} else {
		p->key.client_port = tcp->dest;
		p->key.server_port = tcp->source;
	}
	return LS_PARSE_TCP;
}

#endif /* LS_BPF_PARSE_H */
