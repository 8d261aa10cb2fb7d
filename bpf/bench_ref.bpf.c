// SPDX-License-Identifier: GPL-2.0-only
/*
 * Reference programs for the dataplane benchmark (tests/bpf/bench_bpf.c):
 * the floors loadshed's per-packet cost is compared against in one run.
 * They share loadshed's parser, so a ratio measures what admission and
 * accounting add, not how parsing was written.
 */
#include "parse.h"
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* A flow table of the same key and value types, for the lookup reference. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct ls_flow_key);
	__type(value, struct ls_flow);
	__uint(max_entries, LS_DEFAULT_MAX_FLOWS);
} ref_flows SEC(".maps");

/* The floor: what the test-run harness itself costs. */
SEC("xdp")
int ref_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* The same floor for the egress program. */
SEC("tc")
int ref_tc_pass(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("xdp")
int ref_xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/*
 * Parse only. The verdict depends on the parsed port so that the compiler
 * cannot drop the parse as dead code.
 */
SEC("xdp")
int ref_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ls_pkt p;

	if (ls_parse(data, data_end, data_end - data, LS_DIR_INGRESS, &p) == LS_PARSE_TCP &&
	    p.key.server_port == 0)
		return XDP_DROP;
	return XDP_PASS;
}

/* Parse, then one hash lookup of the flow key: the least a flow tracker does. */
SEC("xdp")
int ref_parse_lookup(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ls_flow *f;
	struct ls_pkt p;

	if (ls_parse(data, data_end, data_end - data, LS_DIR_INGRESS, &p) != LS_PARSE_TCP)
		return XDP_PASS;
	f = bpf_map_lookup_elem(&ref_flows, &p.key);
	if (f && f->state == 0xff)
		return XDP_DROP;
	return XDP_PASS;
}

/*
 * BPF_PROG_TEST_RUN repeats one frame, and a repeated frame cannot measure
 * what happens once per packet: the second run of a SYN is a retransmit,
 * and a SYN shed with a reset has become the RST. This prelude makes each
 * repetition what the case needs, then tail-calls the program under test
 * (next[0]); the bench subtracts the prelude measured in front of
 * ref_xdp_pass. Set from user space through the skeleton's .bss.
 */
#define PRELUDE_SYN_LEN (14 + 20 + 20) /* an IPv4 SYN without options */

enum prelude_mode {
	PRELUDE_NEW_SOURCE = 1, /* add 1 to the IPv4 source: a new tuple each run */
	PRELUDE_RESTORE = 2,	/* copy syn_template over the frame: the SYN again */
};

__u32 prelude_mode;
__u8 syn_template[PRELUDE_SYN_LEN];

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} next SEC(".maps");

SEC("xdp")
int ref_prelude(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + PRELUDE_SYN_LEN > data_end)
		return XDP_ABORTED;
	if (prelude_mode == PRELUDE_NEW_SOURCE) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		struct tcphdr *tcp = (void *)(ip + 1);
		__be32 from = ip->saddr, to = bpf_htonl(bpf_ntohl(from) + 1);
		__u32 sum;

		/* The TCP checksum follows its pseudo-header (RFC 1624): it stays right. */
		sum = bpf_csum_diff(&from, 4, &to, 4, (__u16)~tcp->check);
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		tcp->check = (__u16)~sum;
		ip->saddr = to;
	} else if (prelude_mode == PRELUDE_RESTORE) {
		__builtin_memcpy(data, syn_template, PRELUDE_SYN_LEN);
	}
	bpf_tail_call(ctx, &next, 0);
	return XDP_ABORTED;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} next_tc SEC(".maps");

/*
 * The egress side of a new tuple each repetition: the server's SYN-ACK to
 * the next IPv4 destination, as ref_prelude's PRELUDE_NEW_SOURCE gives the
 * clients' packets the next source.
 */
SEC("tc")
int ref_tc_prelude(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if (data + PRELUDE_SYN_LEN > data_end)
		return TC_ACT_SHOT;
	ip->daddr = bpf_htonl(bpf_ntohl(ip->daddr) + 1);
	bpf_tail_call(skb, &next_tc, 0);
	return TC_ACT_SHOT;
}

/*
 * Insert references, behind the prelude (a new tuple each repetition):
 * parse, then one insert of the tuple into a preallocated hash of the flow
 * table's types (what admitting a connection cannot do without), or into
 * an LRU hash with per-CPU lists (what noting a SYN-ACK would cost in one).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ls_flow_key);
	__type(value, struct ls_flow);
	__uint(max_entries, LS_MAX_HANDSHAKES);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} ref_lru SEC(".maps");

SEC("xdp")
int ref_parse_insert(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ls_flow f = {};
	struct ls_pkt p;

	if (ls_parse(data, data_end, data_end - data, LS_DIR_INGRESS, &p) != LS_PARSE_TCP)
		return XDP_PASS;
	f.cli_next = p.seq;
	bpf_map_update_elem(&ref_flows, &p.key, &f, BPF_NOEXIST);
	return XDP_PASS;
}

SEC("xdp")
int ref_parse_lru_insert(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ls_flow f = {};
	struct ls_pkt p;

	if (ls_parse(data, data_end, data_end - data, LS_DIR_INGRESS, &p) != LS_PARSE_TCP)
		return XDP_PASS;
	f.cli_next = p.seq;
	bpf_map_update_elem(&ref_lru, &p.key, &f, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
