// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench_fill IFACE N: enters N synthetic flows into the pinned flow table
 * of IFACE's attachment, for scripts/measure-agent.sh to measure the
 * agent (its sweep walks the whole table) and the dataplane's per-packet
 * cost with a full table. The flows are connections of class 0 of service
 * 0 from 10.250.0.0/16 addresses, last seen now, holding an uncounted slot
 * (so that what in-flight shows is not moved by them). Needs root.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "addr.h"
#include "clock.h"
#include "maps.h"
#include "pins.h"

#define BATCH 4096

int main(int argc, char **argv)
{
	static struct ls_flow_key keys[BATCH];
	static struct ls_flow vals[BATCH];
	struct ls_attachment a;
	char err[512];
	unsigned long n, done = 0;
	uint64_t now;

	if (argc != 3 || !(n = strtoul(argv[2], NULL, 10))) {
		fprintf(stderr, "usage: bench_fill IFACE N\n");
		return 2;
	}
	if (ls_attachment_open(argv[1], &a, err, sizeof(err))) {
		fprintf(stderr, "bench_fill: %s\n", err);
		return 1;
	}
	now = ls_clock_ns(CLOCK_MONOTONIC_COARSE);
	while (done < n) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 count = 0;

		for (; count < BATCH && done + count < n; count++) {
			unsigned long i = done + count;
			struct ls_flow_key *k = &keys[count];
			struct ls_flow *f = &vals[count];

			memset(k, 0, sizeof(*k));
			memset(f, 0, sizeof(*f));
			/* 10.250.x.y:port -> 10.201.0.1:8080, unique per i. */
			ls_addr_v4_mapped(k->client,
					  htonl(0x0afa0000u | (unsigned)(i >> 14 & 0xffff)));
			ls_addr_v4_mapped(k->server, htonl(0x0ac90001u));
			k->client_port = htons((unsigned short)(1024 + (i & 0x3fff)));
			k->server_port = htons(8080);
			f->slot = ls_slot_word(now, 0, 0, 0);
			f->last_seen_ns = now;
		}
		if (bpf_map_update_batch(a.maps.flows, keys, vals, &count, &opts)) {
			fprintf(stderr, "bench_fill: after %lu flows: %s\n", done + count,
				strerror(errno));
			ls_attachment_close(&a);
			return 1;
		}
		done += count;
	}
	ls_attachment_close(&a);
	printf("filled %lu flows\n", done);
	return 0;
}
