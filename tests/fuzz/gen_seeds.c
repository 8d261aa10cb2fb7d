// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Writes the seed corpus of fuzz_dataplane (`make fuzz-seeds`): inputs in
 * the format of lib/frames.h, each a small story the dataplane tests tell
 * too. Some carry raw frames built here byte by byte (tests/bpf/lib/pkt.c):
 * the well-formed segments of a connection, VLAN and QinQ tags, IPv6
 * extension headers, IPv4 options, fragments, truncated and non-TCP frames;
 * others are records of connection segments that the harness builds from
 * each connection's state, with ticks, sleeps, limit changes and
 * generation switches, so that the fuzzer starts from traffic that reaches
 * every path: admission, shedding, requests, adoption, sweeps, a full
 * flow table.
 *
 * Usage: gen_seeds DIR   (the files in DIR are overwritten)
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/frames.h"

/* Header bits: the limit index of each service, class 1 guarantees, shadow. */
#define LIMITS(web, pool, addr) ((uint8_t)((web) | (pool) << 2 | (addr) << 4))
#define G1			(1u << 6)
#define SHADOW			(1u << 7)

/* Tick flags */
#define BEAT	     0x80
#define SWEEP	     0x40
#define IDLE_0	     0x01
#define STALL_1NS    (1 << 2)
#define SUSPECT_0    (1 << 4)
#define SUSPECT_NONE 0

struct seed {
	uint8_t buf[16384];
	size_t len;
	struct fz_conn conns[FZ_NR_CONNS];
	uint8_t used[FZ_NR_CONNS];
};

static const char *dir;
static int written;

static void put(struct seed *s, const void *p, size_t n)
{
	if (s->len + n > sizeof(s->buf)) {
		fprintf(stderr, "gen_seeds: a seed outgrew its buffer\n");
		exit(1);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void put8(struct seed *s, unsigned int v)
{
	uint8_t b = (uint8_t)v;

	put(s, &b, 1);
}

static void begin(struct seed *s, uint8_t header)
{
	memset(s, 0, sizeof(*s));
	put8(s, header);
}

static void raw(struct seed *s, int xdp, const uint8_t *frame, size_t len)
{
	put8(s, xdp ? FZ_XDP : FZ_TC);
	put8(s, len & 0xff);
	put8(s, len >> 8);
	put(s, frame, len);
}

static void raw_spec(struct seed *s, int xdp, const struct pkt_spec *spec)
{
	uint8_t frame[FZ_MAX_FRAME];
	size_t len = pkt_build(spec, frame, sizeof(frame), NULL);

	if (!len) {
		fprintf(stderr, "gen_seeds: a frame did not build\n");
		exit(1);
	}
	raw(s, xdp, frame, len);
}

/* Connection c's segment as raw bytes, built here with made-up client ports for real specs. */
static void raw_seg(struct seed *s, unsigned int c, unsigned int kind, unsigned int arg)
{
	uint8_t frame[FZ_MAX_FRAME];
	size_t len;
	int xdp;

	if (!s->used[c]) {
		fz_conn_init(&s->conns[c], c, NULL);
		s->used[c] = 1;
	}
	len = fz_segment(&s->conns[c], kind, arg, frame, &xdp);
	raw(s, xdp, frame, len);
}

static void seg(struct seed *s, unsigned int c, unsigned int kind, unsigned int arg)
{
	put8(s, FZ_SEGMENT);
	put8(s, c);
	put8(s, kind);
	put8(s, arg);
}

static void mutated(struct seed *s, unsigned int c, unsigned int kind, unsigned int arg,
		    unsigned int off, unsigned int x)
{
	put8(s, FZ_MUTATED);
	put8(s, c);
	put8(s, kind);
	put8(s, arg);
	put8(s, 1);
	put8(s, off & 0xff);
	put8(s, off >> 8);
	put8(s, x);
}

static void op1(struct seed *s, unsigned int op, unsigned int arg)
{
	put8(s, op);
	put8(s, arg);
}

/* SYN, SYN-ACK, and the ACK that completes the handshake. */
static void handshake(struct seed *s, unsigned int c)
{
	seg(s, c, FZ_SYN, 0);
	seg(s, c, FZ_SYNACK, 0);
	seg(s, c, FZ_HS_ACK, 0);
}

static void save(const struct seed *s, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f)) {
		fprintf(stderr, "gen_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	written++;
}

/* ---- raw frames ------------------------------------------------------------- */

static void raw_connection(struct seed *s, unsigned int c, int requests)
{
	raw_seg(s, c, FZ_SYN, 0);
	raw_seg(s, c, FZ_SYNACK, 0);
	raw_seg(s, c, FZ_HS_ACK, 0);
	for (int i = 0; i < requests; i++) {
		raw_seg(s, c, FZ_REQUEST, 10);
		raw_seg(s, c, FZ_RESPONSE, 40);
	}
	raw_seg(s, c, FZ_CLI_FIN, 0);
	raw_seg(s, c, FZ_SRV_FIN, 0);
}

static void syn_v4(struct pkt_spec *p)
{
	pkt_tcp(p, 0, "10.1.0.1", 40000, "192.0.2.1", FZ_PORT_WEB, PKT_SYN);
}

static void syn_v6(struct pkt_spec *p)
{
	pkt_tcp(p, 1, "2001:db8:1::1", 40000, "2001:db8:ffff::1", FZ_PORT_WEB, PKT_SYN);
}

static void raw_frames(void)
{
	struct seed s;
	struct pkt_spec p;
	uint8_t arp[64];

	begin(&s, LIMITS(2, 2, 2));
	raw_connection(&s, 0, 1);
	save(&s, "raw-connection-v4");

	begin(&s, LIMITS(2, 2, 2));
	raw_connection(&s, 2, 2);
	save(&s, "raw-connection-v6-vlan");

	begin(&s, LIMITS(2, 1, 2));
	raw_connection(&s, 5, 3);
	save(&s, "raw-requests-qinq");

	begin(&s, LIMITS(1, 1, 1));
	raw_seg(&s, 0, FZ_SYN, 0);
	raw_seg(&s, 0, FZ_SYNACK, 0);
	raw_seg(&s, 0, FZ_HS_ACK_DATA, 8);
	raw_seg(&s, 0, FZ_CLI_RST, 0);
	save(&s, "raw-handshake-data-then-rst");

	begin(&s, LIMITS(0, 0, 0));
	syn_v4(&p);
	raw_spec(&s, 1, &p);
	save(&s, "raw-syn-v4");

	begin(&s, LIMITS(0, 0, 0));
	syn_v4(&p);
	pkt_add_vlan(&p, 0x8100, 7);
	p.tos = 10 << 2;
	raw_spec(&s, 1, &p);
	save(&s, "raw-syn-vlan-dscp");

	begin(&s, LIMITS(0, 0, 0));
	syn_v6(&p);
	pkt_add_vlan(&p, 0x88a8, 200);
	pkt_add_vlan(&p, 0x8100, 100);
	pkt_add_ext(&p, IPPROTO_HOPOPTS, 0);
	pkt_add_ext(&p, IPPROTO_ROUTING, 1);
	pkt_add_ext(&p, IPPROTO_DSTOPTS, 0);
	raw_spec(&s, 1, &p);
	save(&s, "raw-syn-v6-qinq-ext-headers");

	begin(&s, LIMITS(0, 0, 0));
	syn_v6(&p);
	for (int i = 0; i < 7; i++)
		pkt_add_ext(&p, IPPROTO_DSTOPTS, 0);
	raw_spec(&s, 1, &p);
	save(&s, "raw-syn-v6-too-many-ext-headers");

	begin(&s, LIMITS(0, 0, 0));
	syn_v6(&p);
	pkt_add_ext(&p, IPPROTO_FRAGMENT, 0);
	p.ext[0].frag = 1; /* offset 0, more fragments */
	raw_spec(&s, 1, &p);
	p.ext[0].frag = 185 << 3;
	raw_spec(&s, 1, &p);
	save(&s, "raw-v6-fragments");

	begin(&s, LIMITS(0, 0, 0));
	syn_v4(&p);
	p.frag_off = 0x2000; /* MF at offset 0: a first fragment */
	raw_spec(&s, 1, &p);
	p.frag_off = 0x0010;
	raw_spec(&s, 1, &p);
	p.frag_off = 0x2000;
	p.truncate = 14 + 20 + 2; /* too short to show the ports */
	raw_spec(&s, 1, &p);
	save(&s, "raw-v4-fragments");

	begin(&s, LIMITS(0, 0, 0));
	syn_v4(&p);
	p.ip_opts_len = 8;
	p.ip_opts[0] = 1; /* NOPs, then an end of options */
	p.tcp_opts_len = 4;
	p.tcp_opts[0] = 2; /* MSS 1460 */
	p.tcp_opts[1] = 4;
	p.tcp_opts[2] = 0x05;
	p.tcp_opts[3] = 0xb4;
	raw_spec(&s, 1, &p);
	save(&s, "raw-syn-v4-options");

	begin(&s, LIMITS(0, 0, 0));
	syn_v4(&p);
	p.truncate = 40;
	raw_spec(&s, 1, &p);
	syn_v4(&p);
	p.ihl = 4;
	raw_spec(&s, 1, &p);
	syn_v4(&p);
	p.doff = 15;
	raw_spec(&s, 1, &p);
	syn_v4(&p);
	p.tot_len = 1000;
	raw_spec(&s, 0, &p);
	save(&s, "raw-malformed");

	begin(&s, LIMITS(0, 0, 0));
	pkt_tcp(&p, 1, "::ffff:10.1.0.1", 40000, "2001:db8:ffff::1", FZ_PORT_WEB, PKT_SYN);
	raw_spec(&s, 1, &p);
	save(&s, "raw-v6-v4-mapped-source");

	begin(&s, LIMITS(0, 0, 0));
	syn_v4(&p);
	p.l4proto = IPPROTO_UDP;
	raw_spec(&s, 1, &p);
	raw(&s, 1, arp, pkt_arp(arp, sizeof(arp)));
	syn_v4(&p);
	p.dport = 8081;
	raw_spec(&s, 1, &p);
	save(&s, "raw-not-ours");

	begin(&s, LIMITS(1, 1, 1));
	pkt_tcp(&p, 0, "10.3.0.1", 40000, "192.0.2.10", FZ_PORT_ADDR, PKT_SYN);
	raw_spec(&s, 1, &p);
	pkt_tcp(&p, 0, "10.3.0.1", 40000, "192.0.2.11", FZ_PORT_ADDR, PKT_SYN);
	raw_spec(&s, 1, &p);
	save(&s, "raw-addr-service");
}

/* ---- connection records ------------------------------------------------------- */

static void records(void)
{
	struct seed s;

	begin(&s, LIMITS(2, 2, 2));
	handshake(&s, 0);
	seg(&s, 0, FZ_REQUEST, 4);
	seg(&s, 0, FZ_RESPONSE, 20);
	seg(&s, 0, FZ_CLI_FIN, 0);
	seg(&s, 0, FZ_SRV_FIN, 0);
	save(&s, "seg-connection");

	/* web at L = 1: the second and third connections are shed at their ACK or SYN. */
	begin(&s, LIMITS(1, 2, 2));
	handshake(&s, 4);
	handshake(&s, 1);
	handshake(&s, 0);
	handshake(&s, 3);
	seg(&s, 0, FZ_REQUEST, 2);
	seg(&s, 4, FZ_SRV_RST, 0);
	handshake(&s, 0);
	save(&s, "seg-shed-over-limit");

	/* pool at L = 1: a second request is deferred, then retried once the first is answered. */
	begin(&s, LIMITS(2, 1, 2));
	handshake(&s, 5);
	handshake(&s, 5 + FZ_NR_CONN_SPECS);
	seg(&s, 5, FZ_REQUEST, 3);
	seg(&s, 5 + FZ_NR_CONN_SPECS, FZ_REQUEST, 3);
	seg(&s, 5 + FZ_NR_CONN_SPECS, FZ_RETRANSMIT, 0);
	seg(&s, 5, FZ_RESPONSE, 30);
	seg(&s, 5 + FZ_NR_CONN_SPECS, FZ_RETRANSMIT, 0);
	seg(&s, 5 + FZ_NR_CONN_SPECS, FZ_RESPONSE, 30);
	seg(&s, 5 + FZ_NR_CONN_SPECS, FZ_CLI_FIN, 0);
	seg(&s, 5, FZ_SRV_FIN, 0);
	save(&s, "seg-requests-defer");

	/* A deferred request whose client closes: abandoned; one past max_defer: expired. */
	begin(&s, LIMITS(2, 0, 2));
	handshake(&s, 5);
	handshake(&s, 15);
	seg(&s, 5, FZ_REQUEST, 3);
	seg(&s, 5, FZ_CLI_FIN, 0);
	seg(&s, 15, FZ_REQUEST, 3);
	op1(&s, FZ_SLEEP, 4);
	seg(&s, 15, FZ_RETRANSMIT, 0);
	seg(&s, 15, FZ_CLI_RST, 0);
	save(&s, "seg-requests-abandoned-expired");

	begin(&s, LIMITS(2, 0, 2));
	handshake(&s, 6);
	seg(&s, 6, FZ_REQUEST, 5);
	seg(&s, 6, FZ_REQUEST, 5);
	seg(&s, 6, FZ_SRV_RST, 0);
	save(&s, "seg-requests-abort");

	/* More connections than the table holds: the rest are admitted untracked. */
	begin(&s, LIMITS(3, 3, 3) | G1);
	for (unsigned int c = 0; c < FZ_NR_CONNS; c++)
		if (c % FZ_NR_CONN_SPECS != 3)
			handshake(&s, c);
	op1(&s, FZ_TICK, SWEEP | IDLE_0);
	save(&s, "seg-table-full");

	/* Connections of the harness's own: their requests are adopted. */
	begin(&s, LIMITS(1, 1, 1));
	seg(&s, 8, FZ_REQUEST, 3);
	seg(&s, 9, FZ_REQUEST, 3);
	seg(&s, 8 + FZ_NR_CONN_SPECS, FZ_REQUEST, 3);
	seg(&s, 8, FZ_RESPONSE, 3);
	seg(&s, 8, FZ_REQUEST, 3);
	seg(&s, 9, FZ_SRV_FIN, 0);
	save(&s, "seg-adopt");

	begin(&s, LIMITS(2, 2, 2));
	handshake(&s, 0);
	handshake(&s, 5);
	seg(&s, 5, FZ_REQUEST, 3);
	op1(&s, FZ_TICK, SWEEP | STALL_1NS);
	seg(&s, 5, FZ_REQUEST, 3);
	seg(&s, 5, FZ_RESPONSE, 3);
	seg(&s, 0, FZ_CLI_RST_NEAR, 1);
	op1(&s, FZ_TICK, SWEEP | SUSPECT_0);
	op1(&s, FZ_TICK, SWEEP | IDLE_0);
	save(&s, "seg-sweeps");

	/* A heartbeat that goes stale: admitted without a check, counted. */
	begin(&s, LIMITS(0, 0, 0));
	op1(&s, FZ_TICK, BEAT);
	handshake(&s, 0);
	handshake(&s, 5);
	seg(&s, 5, FZ_REQUEST, 1);
	handshake(&s, 7);
	save(&s, "seg-fail-open");

	/* A flow admitted under one generation, its requests under the other. */
	begin(&s, LIMITS(2, 2, 2));
	handshake(&s, 0);
	handshake(&s, 5);
	put8(&s, FZ_GEN);
	seg(&s, 0, FZ_REQUEST, 2);
	seg(&s, 5, FZ_REQUEST, 2);
	handshake(&s, 1);
	seg(&s, 1, FZ_REQUEST, 2);
	put8(&s, FZ_GEN);
	seg(&s, 0, FZ_RESPONSE, 2);
	seg(&s, 1, FZ_RESPONSE_FIN, 2);
	save(&s, "seg-generations");

	/* The tuple reused by a new handshake; a retransmitted SYN-ACK. */
	begin(&s, LIMITS(2, 2, 2));
	handshake(&s, 0);
	seg(&s, 0, FZ_SYNACK, 0);
	seg(&s, 0, FZ_SYNACK_NEW, 0);
	seg(&s, 0, FZ_HS_ACK, 0);
	seg(&s, 0, FZ_SRV_ACK, 0);
	seg(&s, 0, FZ_CLI_ACK, 0);
	save(&s, "seg-reuse");

	/* addr caps its connections at 3; then the same in shadow mode. */
	begin(&s, LIMITS(3, 3, 3));
	for (unsigned int i = 0; i < FZ_CONN_INSTANCES; i++)
		handshake(&s, 7 + i * FZ_NR_CONN_SPECS);
	save(&s, "seg-max-connections");
	begin(&s, LIMITS(3, 3, 1) | SHADOW);
	for (unsigned int i = 0; i < FZ_CONN_INSTANCES; i++)
		handshake(&s, 7 + i * FZ_NR_CONN_SPECS);
	save(&s, "seg-shadow");

	/* Limits moved under traffic, and a few flipped bytes. */
	begin(&s, LIMITS(2, 2, 2));
	handshake(&s, 0);
	op1(&s, FZ_LIMIT, 0);
	handshake(&s, 1);
	op1(&s, FZ_LIMIT, 3 << 2 | 1);
	handshake(&s, 5);
	mutated(&s, 5, FZ_REQUEST, 2, 47, 0x01);
	mutated(&s, 0, FZ_REQUEST, 2, 13, 0x02);
	mutated(&s, 1, FZ_HS_ACK, 0, 60, 0x80);
	save(&s, "seg-limits-and-mutations");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	raw_frames();
	records();
	printf("%d seeds in %s\n", written, dir);
	return 0;
}
