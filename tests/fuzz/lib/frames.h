/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The input of fuzz_dataplane, shared with the seed generator that writes
 * its corpus (tests/fuzz/gen_seeds.c).
 *
 * An input is one header byte, then records, each starting with an op
 * byte (taken modulo FZ_NR_OPS, so that every byte string is an input):
 *
 *   header          bits 0-1, 2-3, 4-5: the limit L of services 0, 1, 2,
 *                   one of fz_limits; bit 6: class 1 of each service has a
 *                   guarantee of 1; bit 7: service 2 is in shadow mode
 *   FZ_XDP  lo hi   a raw frame of lo | hi << 8 bytes (at most
 *   FZ_TC   lo hi   FZ_MAX_FRAME) follows, run through XDP or TC
 *   FZ_SEGMENT c k a   segment kind k (enum fz_kind) of connection c, built
 *                   from the connection's state (sequence numbers, the
 *                   server's ISN), a its argument (payload length / 8)
 *   FZ_MUTATED c k a n (lo hi x)*n   the same segment with n (0..4) bytes
 *                   xored with x at offset lo | hi << 8 (modulo its length)
 *   FZ_TICK f       the agent's tick: f bit 7 stamps a heartbeat that fails
 *                   open 1 ns later; bit 6 sweeps, with the idle timeout
 *                   fz_idle[f & 3], the stall timeout fz_stall[f >> 2 & 3]
 *                   and the suspect timeout fz_suspect[f >> 4 & 3]
 *   FZ_SLEEP m      sleeps m % 5 + 1 ms (once per input: timeouts, max_defer)
 *   FZ_GEN          switches the active policy generation
 *   FZ_LIMIT b      sets the limit of service b % 3 to fz_limits[b >> 2 & 3],
 *                   with a guarantee of b >> 4 & 1 for its class 1
 *
 * A record cut short by the end of the input is not run.
 *
 * Connections: c % FZ_NR_CONN_SPECS chooses one of fz_conn_specs (family,
 * tags, client and server address, port, DSCP: so its service and class),
 * c / FZ_NR_CONN_SPECS % FZ_CONN_INSTANCES one of its client ports. The
 * specs marked `real` are loopback connections the harness holds open in
 * its own network namespace, whose client ports it learns at start: their
 * segments can be adopted (design.md §4.6).
 */
#ifndef LS_FUZZ_FRAMES_H
#define LS_FUZZ_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/pkt.h"

enum fz_op {
	FZ_XDP,
	FZ_TC,
	FZ_SEGMENT,
	FZ_MUTATED,
	FZ_TICK,
	FZ_SLEEP,
	FZ_GEN,
	FZ_LIMIT,
	FZ_NR_OPS,
};

/* Segments of a connection; those marked (TC) are the server's. */
enum fz_kind {
	FZ_SYN,		 /* the client's SYN (seq = its ISN) */
	FZ_SYNACK,	 /* (TC) the server's SYN-ACK with the connection's ISN */
	FZ_HS_ACK,	 /* the ACK that completes the handshake */
	FZ_HS_ACK_DATA,	 /* the same carrying a request */
	FZ_REQUEST,	 /* PSH|ACK with payload: a request */
	FZ_RESPONSE,	 /* (TC) PSH|ACK with payload, acknowledging all the client sent */
	FZ_SRV_ACK,	 /* (TC) a pure ACK of all the client sent */
	FZ_CLI_FIN,	 /* FIN|ACK: the client half-closes */
	FZ_SRV_FIN,	 /* (TC) FIN|ACK: the server closes */
	FZ_CLI_RST,	 /* RST at the client's next byte: trusted */
	FZ_CLI_RST_NEAR, /* RST within the window, not at the next byte: a suspect */
	FZ_SRV_RST,	 /* (TC) the server's RST */
	FZ_RETRANSMIT,	 /* the last request again, at its own sequence number */
	FZ_CLI_ACK,	 /* a pure ACK */
	FZ_SYNACK_NEW,	 /* (TC) a SYN-ACK with a new ISN: the tuple reused */
	FZ_RESPONSE_FIN, /* (TC) the response carrying the FIN */
	FZ_NR_KINDS,
};

#define FZ_MAX_FRAME	  1600
#define FZ_NR_CONN_SPECS  10
#define FZ_CONN_INSTANCES 4
#define FZ_NR_CONNS	  (FZ_NR_CONN_SPECS * FZ_CONN_INSTANCES)
#define FZ_MAX_MUTATIONS  4
#define FZ_PAYLOAD_UNIT	  8
#define FZ_NR_SERVICES	  3

/* Ports of the services: web (connections), pool (requests), addr (one address, capped). */
#define FZ_PORT_WEB  8080
#define FZ_PORT_POOL 5432
#define FZ_PORT_ADDR 9000

struct fz_conn_spec {
	int ipv6;
	int nr_vlans;
	const char *client; /* an instance adds its number to the last byte */
	const char *server;
	uint16_t port;
	uint8_t dscp;
	int real; /* a loopback connection the harness holds open */
};

extern const struct fz_conn_spec fz_conn_specs[FZ_NR_CONN_SPECS];
extern const uint32_t fz_limits[4];
extern const uint64_t fz_idle_ns[4], fz_stall_ns[4], fz_suspect_ns[4];

/* One connection as the segments have played it so far. */
struct fz_conn {
	struct pkt_spec syn; /* the client's SYN: addresses, ports, tags, DSCP, ISN */
	uint32_t isn;	     /* the server's ISN (FZ_SYNACK_NEW moves it on) */
	uint32_t cli_seq;    /* the client's next sequence number */
	uint32_t srv_seq;    /* the server's next sequence number */
	uint32_t req_seq;    /* the last request's first byte and length */
	int req_len;
};

/*
 * Sets up connection number c (see above) as not yet begun. real_ports
 * gives the client ports of the real connections of each real spec
 * (FZ_CONN_INSTANCES each, in spec order), or NULL for made-up ones.
 */
void fz_conn_init(struct fz_conn *conn, unsigned int c, const uint16_t *real_ports);

/*
 * Builds segment kind of conn into buf (FZ_MAX_FRAME bytes) and moves the
 * connection's state past it. Returns the frame's length; *xdp says
 * whether the client sends it (XDP) or the server (TC).
 */
size_t fz_segment(struct fz_conn *conn, unsigned int kind, unsigned int arg, uint8_t *buf,
		  int *xdp);

#endif /* LS_FUZZ_FRAMES_H */
