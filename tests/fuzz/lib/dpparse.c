// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bpf/parse.h in userspace (see dpparse.h). In a file of its own: the
 * kernel's network headers it uses and glibc's cannot meet in one file.
 */
#include <string.h>

#include "parse.h"
#include "lib/dpparse.h"

int fz_parse(const uint8_t *frame, size_t len, int ingress, struct fz_pkt *out)
{
	/* 2 bytes in, as the kernel aligns IP headers (NET_IP_ALIGN): aligned word loads. */
	static union {
		uint32_t align;
		uint8_t b[2 + FZ_PARSE_MAX_FRAME];
	} buf;
	struct ls_pkt p = {0};
	uint8_t *data = buf.b + 2;
	enum ls_parse_result r;

	if (len > FZ_PARSE_MAX_FRAME)
		return LS_PARSE_MALFORMED;
	memcpy(data, frame, len);
	r = ls_parse(data, data + len, (__u32)len, ingress ? LS_DIR_INGRESS : LS_DIR_EGRESS, &p);
	if (r != LS_PARSE_TCP)
		return r;
	out->key = p.key;
	out->l3_off = p.l3_off;
	out->payload_len = p.payload_len;
	out->seq = p.seq;
	out->ack_seq = p.ack_seq;
	out->tcp_flags = p.tcp_flags;
	out->ipv6 = p.ipv6;
	return r;
}
