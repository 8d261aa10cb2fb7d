/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The dataplane's own frame parser (bpf/parse.h) compiled for userspace,
 * for fuzz_dataplane to know what a frame is to the programs: which
 * handshake set a SYN-ACK may write, and what the RST answering a segment
 * must say. It checks nothing of the parser itself (tests/bpf does).
 */
#ifndef LS_FUZZ_DPPARSE_H
#define LS_FUZZ_DPPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "loadshed.h"

#define FZ_PARSE_MAX_FRAME 4096
#define FZ_PARSE_TCP	   0 /* LS_PARSE_TCP */

/* What ls_parse() found in a TCP segment (struct ls_pkt's fields). */
struct fz_pkt {
	struct ls_flow_key key;
	uint32_t l3_off;
	uint32_t payload_len;
	uint32_t seq;
	uint32_t ack_seq;
	uint8_t tcp_flags;
	uint8_t ipv6;
};

/*
 * ls_parse() of frame as XDP (ingress: the source is the client) or TC
 * sees it: its result (enum ls_parse_result), *p filled on FZ_PARSE_TCP.
 */
int fz_parse(const uint8_t *frame, size_t len, int ingress, struct fz_pkt *p);

#endif /* LS_FUZZ_DPPARSE_H */
