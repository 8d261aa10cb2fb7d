// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connections and their segments for fuzz_dataplane and its seeds (see
 * frames.h). Frames are built by tests/bpf/lib/pkt.c, as in the dataplane
 * tests, with sequence numbers that follow the connection.
 */
#include <stdio.h>
#include <string.h>

#include "lib/frames.h"

/*
 * Whose service and class each spec lands in is the harness's policy
 * (fuzz_dataplane.c): web on 8080 by source (10.1/16 and 2001:db8:1::/48
 * high, 10.9/16 bypass) and DSCP 10 (low); pool on 5432 by source
 * (10.1/16 app) and DSCP 10 (batch); addr on 192.0.2.10:9000.
 */
const struct fz_conn_spec fz_conn_specs[FZ_NR_CONN_SPECS] = {
	{0, 0, "10.1.0.1", "192.0.2.1", FZ_PORT_WEB, 0, 0},		  /* web high */
	{0, 1, "10.2.0.1", "192.0.2.1", FZ_PORT_WEB, 10, 0},		  /* web low */
	{1, 1, "2001:db8:1::1", "2001:db8:ffff::1", FZ_PORT_WEB, 0, 0},	  /* web high */
	{0, 0, "10.9.0.1", "192.0.2.1", FZ_PORT_WEB, 0, 0},		  /* web bypass */
	{0, 0, "10.2.0.5", "192.0.2.1", FZ_PORT_WEB, 0, 0},		  /* web default */
	{0, 2, "10.1.0.9", "192.0.2.1", FZ_PORT_POOL, 0, 0},		  /* pool app */
	{1, 0, "2001:db8:2::1", "2001:db8:ffff::1", FZ_PORT_POOL, 10, 0}, /* pool batch */
	{0, 0, "10.3.0.1", "192.0.2.10", FZ_PORT_ADDR, 0, 0},		  /* addr default */
	{0, 0, "127.0.0.1", "127.0.0.1", FZ_PORT_POOL, 0, 1},		  /* pool, adoptable */
	{0, 0, "127.0.0.1", "127.0.0.1", FZ_PORT_WEB, 0, 1},		  /* web, adoptable */
};

const uint32_t fz_limits[4] = {0, 1, 2, 4};
const uint64_t fz_idle_ns[4] = {UINT64_MAX >> 1, 0, 1000000, 300000000000ull};
const uint64_t fz_stall_ns[4] = {0, 1, 1000000, 10000000000ull};
const uint64_t fz_suspect_ns[4] = {UINT64_MAX >> 1, 0, 1000000, 3000000000ull};

/* Request and response bytes: what they say does not matter, their length does. */
static const uint8_t payload[1400] = "GET / HTTP/1.1\r\nHost: fuzz\r\n\r\n";

/* The client address of an instance: the spec's with its last byte moved on. */
static void instance_addr(const struct fz_conn_spec *spec, unsigned int instance, char *buf,
			  size_t len)
{
	size_t n = strlen(spec->client);

	snprintf(buf, len, "%s", spec->client);
	if (spec->real || !instance || n + 1 >= len)
		return;
	/* Every spec's address ends in a digit 1..9: it stays one digit or two. */
	snprintf(buf + n - 1, len - (n - 1), "%u",
		 (unsigned int)(spec->client[n - 1] - '0') + instance * 10);
}

void fz_conn_init(struct fz_conn *conn, unsigned int c, const uint16_t *real_ports)
{
	unsigned int s = c % FZ_NR_CONN_SPECS, instance = c / FZ_NR_CONN_SPECS % FZ_CONN_INSTANCES;
	const struct fz_conn_spec *spec = &fz_conn_specs[s];
	uint16_t cport = (uint16_t)(40000 + s * 8 + instance);
	char client[64];

	if (spec->real && real_ports) {
		unsigned int k = 0;

		for (unsigned int i = 0; i < s; i++)
			k += fz_conn_specs[i].real ? FZ_CONN_INSTANCES : 0;
		cport = real_ports[k + instance];
	}
	memset(conn, 0, sizeof(*conn));
	instance_addr(spec, instance, client, sizeof(client));
	pkt_tcp(&conn->syn, spec->ipv6, client, cport, spec->server, spec->port, PKT_SYN);
	if (spec->nr_vlans >= 2)
		pkt_add_vlan(&conn->syn, 0x88a8, 200);
	if (spec->nr_vlans >= 1)
		pkt_add_vlan(&conn->syn, 0x8100, 100);
	conn->syn.tos = (uint8_t)(spec->dscp << 2);
	conn->syn.seq = 0x10000000u + c * 7919u;
	conn->isn = 0x9e370000u + c * 100003u;
	conn->cli_seq = conn->syn.seq + 1;
	conn->srv_seq = conn->isn + 1;
}

static int payload_len(unsigned int arg, int at_least_one)
{
	int len = (int)(arg * FZ_PAYLOAD_UNIT);

	if (len > (int)sizeof(payload))
		len = (int)sizeof(payload);
	return !len && at_least_one ? 1 : len;
}

/* A client segment at the client's next byte, acknowledging the server's. */
static void cli_seg(const struct fz_conn *conn, uint8_t flags, int len, struct pkt_spec *s)
{
	*s = conn->syn;
	s->flags = flags;
	s->seq = conn->cli_seq;
	s->ack = flags & PKT_ACK ? conn->srv_seq : 0;
	s->payload = payload;
	s->payload_len = len;
}

/* A server segment at the server's next byte, acknowledging all the client sent. */
static void srv_seg(const struct fz_conn *conn, uint8_t flags, int len, struct pkt_spec *s)
{
	*s = conn->syn;
	pkt_reverse(s);
	s->tos = 0;
	s->flags = flags;
	s->seq = conn->srv_seq;
	s->ack = conn->cli_seq;
	s->payload = payload;
	s->payload_len = len;
}

size_t fz_segment(struct fz_conn *conn, unsigned int kind, unsigned int arg, uint8_t *buf, int *xdp)
{
	struct pkt_spec s;
	int len;

	*xdp = 1;
	switch (kind % FZ_NR_KINDS) {
	case FZ_SYN:
		s = conn->syn;
		break;
	case FZ_SYNACK_NEW:
		conn->isn += 0x01000193u;
		/* fall through */
	case FZ_SYNACK:
		srv_seg(conn, PKT_SYN | PKT_ACK, 0, &s);
		s.seq = conn->isn;
		s.ack = conn->syn.seq + 1;
		conn->srv_seq = conn->isn + 1;
		*xdp = 0;
		break;
	case FZ_HS_ACK:
	case FZ_HS_ACK_DATA:
		len = kind % FZ_NR_KINDS == FZ_HS_ACK ? 0 : payload_len(arg, 1);
		cli_seg(conn, len ? PKT_PSH | PKT_ACK : PKT_ACK, len, &s);
		s.ack = conn->isn + 1;
		conn->req_seq = conn->cli_seq;
		conn->req_len = len ? len : conn->req_len;
		conn->cli_seq += (uint32_t)len;
		break;
	case FZ_REQUEST:
		len = payload_len(arg, 1);
		cli_seg(conn, PKT_PSH | PKT_ACK, len, &s);
		conn->req_seq = conn->cli_seq;
		conn->req_len = len;
		conn->cli_seq += (uint32_t)len;
		break;
	case FZ_RETRANSMIT:
		len = conn->req_len ? conn->req_len : payload_len(arg, 1);
		cli_seg(conn, PKT_PSH | PKT_ACK, len, &s);
		s.seq = conn->req_len ? conn->req_seq : conn->cli_seq - (uint32_t)len;
		break;
	case FZ_RESPONSE:
	case FZ_RESPONSE_FIN:
		len = payload_len(arg, 1);
		if (kind % FZ_NR_KINDS == FZ_RESPONSE_FIN) {
			srv_seg(conn, PKT_PSH | PKT_ACK | PKT_FIN, len, &s);
			conn->srv_seq += 1;
		} else {
			srv_seg(conn, PKT_PSH | PKT_ACK, len, &s);
		}
		conn->srv_seq += (uint32_t)len;
		*xdp = 0;
		break;
	case FZ_SRV_ACK:
		srv_seg(conn, PKT_ACK, 0, &s);
		*xdp = 0;
		break;
	case FZ_CLI_FIN:
		cli_seg(conn, PKT_FIN | PKT_ACK, 0, &s);
		conn->cli_seq += 1;
		break;
	case FZ_SRV_FIN:
		srv_seg(conn, PKT_FIN | PKT_ACK, 0, &s);
		conn->srv_seq += 1;
		*xdp = 0;
		break;
	case FZ_CLI_RST:
		cli_seg(conn, PKT_RST, 0, &s);
		break;
	case FZ_CLI_RST_NEAR:
		cli_seg(conn, PKT_RST, 0, &s);
		s.seq += 1000 + arg;
		break;
	case FZ_SRV_RST:
		srv_seg(conn, PKT_RST | PKT_ACK, 0, &s);
		*xdp = 0;
		break;
	case FZ_CLI_ACK:
	default:
		cli_seg(conn, PKT_ACK, 0, &s);
		break;
	}
	return pkt_build(&s, buf, FZ_MAX_FRAME, NULL);
}
