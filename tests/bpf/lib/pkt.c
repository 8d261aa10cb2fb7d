// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Frame crafting and the RST checker. Headers are written byte by byte
 * from the RFC layouts rather than through the kernel's structs, so that
 * a layout mistake shared with the dataplane cannot cancel itself out.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "lib/pkt.h"

#define ETH_HLEN_ 14
#define IP4_HLEN  20
#define IP6_HLEN  40
#define TCP_HLEN  20
#define UDP_HLEN  8

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(__u8 *p, __u32 v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static __u16 get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static __u32 get32(const __u8 *p)
{
	return (__u32)get16(p) << 16 | get16(p + 2);
}

/* Sum of big-endian 16-bit words; an odd tail byte is padded with zero. */
static __u32 sum_words(const void *buf, size_t len, __u32 sum)
{
	const __u8 *p = buf;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (__u32)p[len - 1] << 8;
	return sum;
}

static __u16 fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

__u16 pkt_csum(const void *buf, size_t len, __u32 sum)
{
	return fold(sum_words(buf, len, sum));
}

/* Pseudo-header sum of RFC 793 (IPv4) or RFC 8200 8.1 (IPv6). */
static __u32 pseudo_sum(int ipv6, const __u8 *saddr, const __u8 *daddr, __u8 proto, __u32 l4_len)
{
	int alen = ipv6 ? 16 : 4;
	__u32 sum = 0;

	sum = sum_words(saddr, alen, sum);
	sum = sum_words(daddr, alen, sum);
	sum += proto;
	sum += l4_len >> 16;
	sum += l4_len & 0xffff;
	return sum;
}

static int parse_addr(int ipv6, const char *text, __u8 *out)
{
	memset(out, 0, 16);
	return inet_pton(ipv6 ? AF_INET6 : AF_INET, text, out) == 1 ? 0 : -1;
}

void pkt_tcp(struct pkt_spec *s, int ipv6, const char *saddr, __u16 sport, const char *daddr,
	     __u16 dport, __u8 flags)
{
	static const __u8 client_mac[6] = {0x02, 0xc1, 0x1e, 0x00, 0x00, 0x01};
	static const __u8 server_mac[6] = {0x02, 0x5e, 0x7e, 0x00, 0x00, 0x02};

	memset(s, 0, sizeof(*s));
	memcpy(s->src_mac, client_mac, 6);
	memcpy(s->dst_mac, server_mac, 6);
	s->ipv6 = ipv6;
	if (parse_addr(ipv6, saddr, s->saddr) || parse_addr(ipv6, daddr, s->daddr))
		fprintf(stderr, "pkt_tcp: bad address %s or %s\n", saddr, daddr);
	s->ttl = 64;
	s->l4proto = IPPROTO_TCP;
	s->sport = sport;
	s->dport = dport;
	s->seq = 1000;
	s->flags = flags;
	s->window = 65535;
}

void pkt_reverse(struct pkt_spec *s)
{
	__u8 mac[6], addr[16];
	__u16 port;

	memcpy(mac, s->src_mac, 6);
	memcpy(s->src_mac, s->dst_mac, 6);
	memcpy(s->dst_mac, mac, 6);
	memcpy(addr, s->saddr, 16);
	memcpy(s->saddr, s->daddr, 16);
	memcpy(s->daddr, addr, 16);
	port = s->sport;
	s->sport = s->dport;
	s->dport = port;
}

void pkt_add_vlan(struct pkt_spec *s, __u16 tpid, __u16 vid)
{
	if (s->nr_vlans >= PKT_MAX_VLANS)
		return;
	s->vlan[s->nr_vlans].tpid = tpid;
	s->vlan[s->nr_vlans].tci = vid & 0x0fff;
	s->nr_vlans++;
}

void pkt_add_ext(struct pkt_spec *s, __u8 type, __u8 len)
{
	if (s->nr_ext >= PKT_MAX_EXT)
		return;
	s->ext[s->nr_ext].type = type;
	s->ext[s->nr_ext].len = len;
	s->ext[s->nr_ext].frag = 0;
	memset(s->ext[s->nr_ext].body, 0, sizeof(s->ext[s->nr_ext].body));
	s->nr_ext++;
}

static size_t ext_bytes(const struct pkt_ext *e)
{
	switch (e->type) {
	case IPPROTO_FRAGMENT:
		return 8;
	case IPPROTO_AH:
		return ((size_t)e->len + 2) * 4;
	default:
		return ((size_t)e->len + 1) * 8;
	}
}

static size_t l4_hdr_bytes(const struct pkt_spec *s)
{
	if (s->l4proto == IPPROTO_UDP)
		return UDP_HLEN;
	return TCP_HLEN + s->tcp_opts_len;
}

size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap, struct pkt_layout *lay)
{
	size_t off = 0, l3_off, l4_off, l4_len, ext_len = 0, total;
	__u8 proto = s->l4proto ? s->l4proto : IPPROTO_TCP;
	int i;

	for (i = 0; i < s->nr_ext; i++)
		ext_len += ext_bytes(&s->ext[i]);
	l4_len = l4_hdr_bytes(s) + s->payload_len;
	total = ETH_HLEN_ + 4 * s->nr_vlans +
		(s->ipv6 ? IP6_HLEN + ext_len : IP4_HLEN + (size_t)s->ip_opts_len) + l4_len;
	if (total > cap)
		return 0;
	memset(buf, 0, total);

	memcpy(buf, s->dst_mac, 6);
	memcpy(buf + 6, s->src_mac, 6);
	off = 12;
	for (i = 0; i < s->nr_vlans; i++) {
		put16(buf + off, s->vlan[i].tpid);
		put16(buf + off + 2, s->vlan[i].tci);
		off += 4;
	}
	put16(buf + off, s->ethertype ? s->ethertype : s->ipv6 ? 0x86dd : 0x0800);
	off += 2;
	l3_off = off;

	if (!s->ipv6) {
		int ihl = s->ihl ? s->ihl : (IP4_HLEN + s->ip_opts_len) / 4;
		size_t tot = IP4_HLEN + s->ip_opts_len + l4_len;

		buf[off] = 0x40 | (ihl & 0x0f);
		buf[off + 1] = s->tos;
		put16(buf + off + 2, s->tot_len ? (__u16)s->tot_len : (__u16)tot);
		put16(buf + off + 4, 0x1234);
		put16(buf + off + 6, s->frag_off);
		buf[off + 8] = s->ttl;
		buf[off + 9] = proto;
		memcpy(buf + off + 12, s->saddr, 4);
		memcpy(buf + off + 16, s->daddr, 4);
		memcpy(buf + off + IP4_HLEN, s->ip_opts, s->ip_opts_len);
		put16(buf + off + 10, pkt_csum(buf + off, IP4_HLEN + s->ip_opts_len, 0));
		off += IP4_HLEN + s->ip_opts_len;
	} else {
		__u8 next;

		buf[off] = 0x60 | (s->tos >> 4);
		buf[off + 1] = (__u8)(s->tos << 4);
		put16(buf + off + 4,
		      s->payload_len6 ? (__u16)s->payload_len6 : (__u16)(ext_len + l4_len));
		buf[off + 6] = s->nr_ext ? s->ext[0].type : proto;
		buf[off + 7] = s->ttl;
		memcpy(buf + off + 8, s->saddr, 16);
		memcpy(buf + off + 24, s->daddr, 16);
		off += IP6_HLEN;
		for (i = 0; i < s->nr_ext; i++) {
			const struct pkt_ext *e = &s->ext[i];

			next = i + 1 < s->nr_ext ? s->ext[i + 1].type : proto;
			buf[off] = next;
			if (e->type == IPPROTO_FRAGMENT) {
				put16(buf + off + 2, e->frag);
				put32(buf + off + 4, 0xfeed0000u + i);
			} else {
				/*
				 * Options are zero, Pad1s, unless body says: Linux takes
				 * at most 7 bytes of padding in a row, so longer
				 * option headers are ones it drops.
				 */
				buf[off + 1] = e->len;
				memcpy(buf + off + 2, e->body, sizeof(e->body));
			}
			off += ext_bytes(e);
		}
	}
	l4_off = off;

	if (proto == IPPROTO_UDP) {
		put16(buf + off, s->sport);
		put16(buf + off + 2, s->dport);
		put16(buf + off + 4, (__u16)l4_len);
		if (s->payload_len)
			memcpy(buf + off + UDP_HLEN, s->payload, s->payload_len);
		put16(buf + off + 6,
		      pkt_csum(buf + off, l4_len,
			       pseudo_sum(s->ipv6, s->saddr, s->daddr, proto, (__u32)l4_len)));
		off += UDP_HLEN;
	} else {
		int doff = s->doff ? s->doff : (TCP_HLEN + s->tcp_opts_len) / 4;

		put16(buf + off, s->sport);
		put16(buf + off + 2, s->dport);
		put32(buf + off + 4, s->seq);
		put32(buf + off + 8, s->ack);
		buf[off + 12] = (__u8)((doff & 0x0f) << 4);
		buf[off + 13] = s->flags;
		put16(buf + off + 14, s->window);
		memcpy(buf + off + TCP_HLEN, s->tcp_opts, s->tcp_opts_len);
		if (s->payload_len)
			memcpy(buf + off + TCP_HLEN + s->tcp_opts_len, s->payload, s->payload_len);
		if (s->csum_partial)
			put16(buf + off + 16,
			      (__u16)~pkt_csum(buf, 0,
					       pseudo_sum(s->ipv6, s->saddr, s->daddr, proto,
							  (__u32)l4_len)));
		else
			put16(buf + off + 16, pkt_csum(buf + off, l4_len,
						       pseudo_sum(s->ipv6, s->saddr, s->daddr,
								  proto, (__u32)l4_len)));
		off += TCP_HLEN + s->tcp_opts_len;
	}
	if (lay) {
		lay->l3_off = l3_off;
		lay->l4_off = l4_off;
		lay->data_off = off;
		lay->len = total;
	}
	if (s->truncate > 0 && (size_t)s->truncate < total) {
		total = s->truncate;
		if (lay)
			lay->len = total;
	}
	return total;
}

size_t pkt_arp(__u8 *buf, size_t cap)
{
	static const __u8 frame[42] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0xc1, 0x1e, 0x00, 0x00, 0x01, 0x08, 0x06,
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0xc1, 0x1e, 0x00, 0x00, 0x01,
		10,   0,    0,	  1,	0,    0,    0,	  0,	0,    0,    10,	  0,	0,    2,
	};

	if (cap < sizeof(frame))
		return 0;
	memcpy(buf, frame, sizeof(frame));
	return sizeof(frame);
}

void pkt_flow_key(const struct pkt_spec *s, int client_is_src, struct ls_flow_key *key)
{
	const __u8 *client = client_is_src ? s->saddr : s->daddr;
	const __u8 *server = client_is_src ? s->daddr : s->saddr;
	__u16 cport = client_is_src ? s->sport : s->dport;
	__u16 sport = client_is_src ? s->dport : s->sport;

	memset(key, 0, sizeof(*key));
	if (s->ipv6) {
		memcpy(key->client, client, 16);
		memcpy(key->server, server, 16);
	} else {
		/* IPv4-mapped IPv6, as include/loadshed.h files every address. */
		key->client[10] = key->client[11] = 0xff;
		key->server[10] = key->server[11] = 0xff;
		memcpy(key->client + 12, client, 4);
		memcpy(key->server + 12, server, 4);
	}
	key->client_port = htons(cport);
	key->server_port = htons(sport);
}

__attribute__((format(printf, 3, 4))) static int mismatch(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* The RST|ACK answering spec syn (a SYN or a later segment), with want_seq and want_ack. */
static int check_rst(const struct pkt_spec *syn, __u32 want_seq, __u32 want_ack, const void *frame,
		     size_t len, char *why, size_t why_len)
{
	const __u8 *f = frame;
	size_t off = 12, l3, l4, want_len;
	__u32 sum;
	__u8 hdr[IP4_HLEN > TCP_HLEN ? IP4_HLEN : TCP_HLEN];
	int i;

	want_len = ETH_HLEN_ + 4 * syn->nr_vlans + (syn->ipv6 ? IP6_HLEN : IP4_HLEN) + TCP_HLEN;
	if (len != want_len)
		return mismatch(why, why_len, "RST is %zu bytes, expected %zu", len, want_len);

	if (memcmp(f, syn->src_mac, 6))
		return mismatch(why, why_len,
				"destination MAC is not the refused segment's source MAC");
	if (memcmp(f + 6, syn->dst_mac, 6))
		return mismatch(why, why_len,
				"source MAC is not the refused segment's destination MAC");
	for (i = 0; i < syn->nr_vlans; i++, off += 4) {
		if (get16(f + off) != syn->vlan[i].tpid || get16(f + off + 2) != syn->vlan[i].tci)
			return mismatch(why, why_len,
					"VLAN tag %d is %04x/%04x, expected %04x/%04x", i,
					get16(f + off), get16(f + off + 2), syn->vlan[i].tpid,
					syn->vlan[i].tci);
	}
	if (get16(f + off) != (syn->ipv6 ? 0x86dd : 0x0800))
		return mismatch(why, why_len, "ethertype %04x", get16(f + off));
	l3 = off + 2;

	if (!syn->ipv6) {
		if (f[l3] != 0x45)
			return mismatch(why, why_len, "IPv4 version/IHL byte %02x, expected 45",
					f[l3]);
		if (get16(f + l3 + 2) != IP4_HLEN + TCP_HLEN)
			return mismatch(why, why_len, "IPv4 total length %u", get16(f + l3 + 2));
		if (get16(f + l3 + 6) & 0x3fff)
			return mismatch(why, why_len, "IPv4 RST is a fragment (%04x)",
					get16(f + l3 + 6));
		if (!f[l3 + 8])
			return mismatch(why, why_len, "IPv4 TTL is 0");
		if (f[l3 + 9] != IPPROTO_TCP)
			return mismatch(why, why_len, "IPv4 protocol %u", f[l3 + 9]);
		if (memcmp(f + l3 + 12, syn->daddr, 4) || memcmp(f + l3 + 16, syn->saddr, 4))
			return mismatch(why, why_len, "IPv4 addresses not swapped");
		memcpy(hdr, f + l3, IP4_HLEN);
		put16(hdr + 10, 0);
		if (get16(f + l3 + 10) != pkt_csum(hdr, IP4_HLEN, 0))
			return mismatch(why, why_len, "IPv4 header checksum %04x, expected %04x",
					get16(f + l3 + 10), pkt_csum(hdr, IP4_HLEN, 0));
		l4 = l3 + IP4_HLEN;
	} else {
		if (f[l3] >> 4 != 6)
			return mismatch(why, why_len, "IPv6 version %u", f[l3] >> 4);
		if (get16(f + l3 + 4) != TCP_HLEN)
			return mismatch(why, why_len, "IPv6 payload length %u", get16(f + l3 + 4));
		if (f[l3 + 6] != IPPROTO_TCP)
			return mismatch(why, why_len, "IPv6 next header %u (extension headers?)",
					f[l3 + 6]);
		if (!f[l3 + 7])
			return mismatch(why, why_len, "IPv6 hop limit is 0");
		if (memcmp(f + l3 + 8, syn->daddr, 16) || memcmp(f + l3 + 24, syn->saddr, 16))
			return mismatch(why, why_len, "IPv6 addresses not swapped");
		l4 = l3 + IP6_HLEN;
	}

	if (get16(f + l4) != syn->dport || get16(f + l4 + 2) != syn->sport)
		return mismatch(why, why_len, "ports %u -> %u, expected %u -> %u", get16(f + l4),
				get16(f + l4 + 2), syn->dport, syn->sport);
	if (get32(f + l4 + 4) != want_seq)
		return mismatch(why, why_len, "seq %u, expected %u", get32(f + l4 + 4), want_seq);
	if (get32(f + l4 + 8) != want_ack)
		return mismatch(why, why_len, "ack %u, expected %u", get32(f + l4 + 8), want_ack);
	if (f[l4 + 12] != 5 << 4)
		return mismatch(why, why_len, "data offset byte %02x, expected 50", f[l4 + 12]);
	if (f[l4 + 13] != (PKT_RST | PKT_ACK))
		return mismatch(why, why_len, "flags %02x, expected RST|ACK (14)", f[l4 + 13]);
	/* The pseudo-header from the refused segment's addresses, not from the RST's own. */
	sum = pseudo_sum(syn->ipv6, syn->daddr, syn->saddr, IPPROTO_TCP, TCP_HLEN);
	memcpy(hdr, f + l4, TCP_HLEN);
	put16(hdr + 16, 0);
	if (get16(f + l4 + 16) != pkt_csum(hdr, TCP_HLEN, sum))
		return mismatch(why, why_len, "TCP checksum %04x, expected %04x",
				get16(f + l4 + 16), pkt_csum(hdr, TCP_HLEN, sum));
	return 0;
}

int pkt_check_rst(const struct pkt_spec *syn, const void *frame, size_t len, char *why,
		  size_t why_len)
{
	/* RFC 9293 3.10.7.1: the SYN and its data each take sequence space. */
	return check_rst(syn, 0, syn->seq + 1 + (__u32)syn->payload_len, frame, len, why, why_len);
}

int pkt_check_rst_of_segment(const struct pkt_spec *seg, const void *frame, size_t len, char *why,
			     size_t why_len)
{
	return check_rst(seg, seg->ack, seg->seq + (__u32)seg->payload_len, frame, len, why,
			 why_len);
}
