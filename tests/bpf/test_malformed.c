// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Malformed frames (a packet loadshed cannot parse passes), as one table:
 * each row a frame builder and what the dataplane must make of the frame,
 * run by one test function and reported as its own test. Truncated, inconsistent or fragmented
 * headers pass unchanged, are counted once as a parse error and leave no trace; next to them, the
 * longest headers within the parser's bounds, which must still be parsed. The service sheds every
 * SYN it parses with a RST (limit 0, action reset), so a malformed frame taken for a SYN shows.
 * Needs root.
 */
#include <string.h>
#include "lib/fixture.h"

/* Does the kernel's skb test run (BPF_PROG_TEST_RUN of TC) take the frame? */
enum skb_run {
	SKB_RUNS,
	SKB_REFUSED, /* the IP header is cut: refused before any program runs */
};

struct frame_case {
	const char *name;
	/* Builds the frame, and the spec it was built from (before any patch). */
	void (*make)(struct frame *f, struct pkt_spec *s);
	__u32 verdict;	    /* XDP_PASS: the frame unchanged; XDP_TX: shed, a RST; XDP_DROP */
	__u64 parse_errors; /* the interface's parse_errors afterwards */
	enum skb_run skb;
	__u64 fragments_dropped; /* the interface's counters afterwards */
	__u64 undecidable;
};

static void good_syn(int ipv6, struct pkt_spec *s)
{
	if (ipv6)
		pkt_tcp(s, 1, "2001:db8:1::1", 40000, "2001:db8:ffff::1", PORT, PKT_SYN);
	else
		pkt_tcp(s, 0, "10.1.0.1", 40000, "192.0.2.1", PORT, PKT_SYN);
}

/* ---- within bounds ------------------------------------------------------ */

/* IPv4 in QinQ: 40 bytes of IP options (IHL 15), 40 of TCP options (doff 15). */
static void make_ipv4_qinq_longest_headers(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	memset(s->ip_opts, 1, sizeof(s->ip_opts));
	s->ip_opts_len = 40;
	memset(s->tcp_opts, 1, sizeof(s->tcp_opts));
	s->tcp_opts_len = 40;
	pkt_add_vlan(s, 0x88a8, 1);
	pkt_add_vlan(s, 0x8100, 2);
	build(s, f);
}

/* IPv6: six extension headers, the most it follows, an atomic fragment among them. */
static void make_ipv6_six_extension_headers(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_HOPOPTS, 0);
	pkt_add_ext(s, IPPROTO_DSTOPTS, 0);
	pkt_add_ext(s, IPPROTO_ROUTING, 1);
	pkt_add_ext(s, IPPROTO_FRAGMENT, 0);
	pkt_add_ext(s, IPPROTO_AH, 4);
	pkt_add_ext(s, IPPROTO_DSTOPTS, 0);
	build(s, f);
}

/*
 * IP options the kernel may drop a packet for, after loadshed decided on
 * it: to a service they are undecidable. An IPv4 loose source route.
 */
static void make_ipv4_source_route(struct frame *f, struct pkt_spec *s)
{
	static const __u8 lsrr[8] = {0x83, 7, 4, 10, 0, 0, 1, 0};

	good_syn(0, s);
	memcpy(s->ip_opts, lsrr, sizeof(lsrr));
	s->ip_opts_len = sizeof(lsrr);
	build(s, f);
}

/* IPv4 options the kernel takes (NOPs, a router alert) change nothing. */
static void make_ipv4_harmless_options(struct frame *f, struct pkt_spec *s)
{
	static const __u8 opts[8] = {1, 1, 1, 1, 0x94, 4, 0, 0};

	good_syn(0, s);
	memcpy(s->ip_opts, opts, sizeof(opts));
	s->ip_opts_len = sizeof(opts);
	build(s, f);
}

/* An IPv6 destination option of an unknown type whose action is "discard". */
static void make_ipv6_option_discard_if_unknown(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_DSTOPTS, 0);
	s->ext[0].body[0] = 0x5e; /* action 01: discard */
	s->ext[0].body[1] = 4;
	build(s, f);
}

/* Eight bytes of padding in a row: Linux drops the header (ip6_parse_tlv). */
static void make_ipv6_padding_over_7_bytes(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_HOPOPTS, 1);
	build(s, f);
}

/* A routing header with segments left: the packet is for another hop first. */
static void make_ipv6_routing_segments_left(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_ROUTING, 2);
	s->ext[0].body[1] = 1; /* segments left */
	build(s, f);
}

/* An unknown option whose action is "skip", with PadN: the kernel takes it. */
static void make_ipv6_skippable_option(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_DSTOPTS, 0);
	s->ext[0].body[0] = 0x1e; /* action 00: skip */
	s->ext[0].body[1] = 0;
	s->ext[0].body[2] = 1; /* PadN of 2 */
	s->ext[0].body[3] = 2;
	build(s, f);
}

/* Six extension headers, then UDP in QinQ: well formed, not ours. */
static void make_ipv6_six_extension_headers_then_udp(struct frame *f, struct pkt_spec *s)
{
	int i;

	good_syn(1, s);
	pkt_add_vlan(s, 0x88a8, 200);
	pkt_add_vlan(s, 0x8100, 100);
	pkt_add_ext(s, IPPROTO_HOPOPTS, 0);
	for (i = 0; i < 5; i++)
		pkt_add_ext(s, IPPROTO_DSTOPTS, 0);
	s->l4proto = IPPROTO_UDP;
	build(s, f);
}

/* ---- malformed ---------------------------------------------------------- */

static void make_vlan_tag_cut(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	pkt_add_vlan(s, 0x8100, 100);
	s->truncate = 16; /* ends inside the tag */
	build(s, f);
}

static void make_qinq_inner_tag_cut(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	pkt_add_vlan(s, 0x88a8, 200);
	pkt_add_vlan(s, 0x8100, 100);
	s->truncate = 20;
	build(s, f);
}

static void make_three_vlan_tags(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	pkt_add_vlan(s, 0x88a8, 300);
	pkt_add_vlan(s, 0x8100, 200);
	pkt_add_vlan(s, 0x8100, 100);
	build(s, f);
}

static void make_ethernet_header_only(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->truncate = 14;
	build(s, f);
}

static void make_ipv4_header_cut(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->truncate = 14 + 12;
	build(s, f);
}

static void make_ipv4_ihl_4(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->ihl = 4;
	build(s, f);
}

static void make_ipv4_ihl_past_tot_len(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->ihl = 15; /* 60 bytes in a 40-byte datagram */
	build(s, f);
}

static void make_ipv4_ihl_past_frame(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->ihl = 15;
	s->tot_len = 60 + 20;
	s->truncate = 14 + 60; /* consistent lengths, frame too short */
	build(s, f);
}

static void make_ipv4_tot_len_past_frame(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->tot_len = 1000;
	build(s, f);
}

static void make_ipv4_tot_len_inside_tcp_header(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->tot_len = 20 + 12;
	build(s, f);
}

static void make_ipv4_more_fragments(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->frag_off = 0x2000;
	build(s, f);
}

static void make_ipv4_fragment_offset(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->frag_off = 0x4000 | 0x0010; /* DF, and an offset: a non-first fragment */
	build(s, f);
}

static void make_ipv4_ethertype_ipv6_header(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	s->ethertype = 0x0800;
	build(s, f);
}

static void make_tcp_doff_4(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->doff = 4;
	build(s, f);
}

static void make_tcp_doff_0_ipv6(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	build(s, f);
	f->buf[f->lay.l4_off + 12] = 0;
}

static void make_tcp_doff_past_end(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->doff = 15;
	build(s, f);
}

static void make_tcp_header_cut(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	s->truncate = 14 + 40 + 10;
	build(s, f);
}

static void make_ipv6_header_cut(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	s->truncate = 14 + 30;
	build(s, f);
}

static void make_ipv6_payload_len_past_frame(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	s->payload_len6 = 500;
	build(s, f);
}

/* One more than make_ipv6_six_extension_headers_then_udp. */
static void make_ipv6_ext_chain_too_long(struct frame *f, struct pkt_spec *s)
{
	int i;

	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_HOPOPTS, 0);
	for (i = 0; i < 6; i++)
		pkt_add_ext(s, IPPROTO_DSTOPTS, 0);
	build(s, f);
}

static void make_ipv6_ext_header_cut(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_HOPOPTS, 0);
	s->truncate = 14 + 40 + 4;
	build(s, f);
}

static void make_ipv6_ext_len_past_payload(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_DSTOPTS, 0);
	build(s, f);
	f->buf[f->lay.l3_off + 40 + 1] = 40; /* claims 328 bytes */
}

static void make_ipv6_ext_len_past_parse_bound(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_HOPOPTS, 60); /* 488 bytes: TCP starts past 512 */
	build(s, f);
}

static void make_ipv6_fragment_not_first(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_FRAGMENT, 0);
	s->ext[0].frag = 185 << 3;
	build(s, f);
}

static void make_ipv6_fragment_more_follow(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	pkt_add_ext(s, IPPROTO_FRAGMENT, 0);
	s->ext[0].frag = 1; /* M */
	build(s, f);
}

/* The first fragment of a segment to another port: not ours, a parse error. */
static void make_ipv4_first_fragment_to_another_port(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->dport = 9999;
	s->frag_off = 0x2000;
	build(s, f);
}

/* A first fragment too short to hold the TCP ports: which port it is for is unknown. */
static void make_ipv4_first_fragment_without_ports(struct frame *f, struct pkt_spec *s)
{
	good_syn(0, s);
	s->frag_off = 0x2000;
	s->tot_len = 20 + 2;
	build(s, f);
}

/* An IPv6 source in ::ffff:0:0/96 would share the key of an IPv4 flow. */
static void make_ipv6_v4_mapped_source(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	build(s, f);
	memset(f->buf + f->lay.l3_off + 8, 0, 10);
	f->buf[f->lay.l3_off + 8 + 10] = 0xff;
	f->buf[f->lay.l3_off + 8 + 11] = 0xff;
}

static void make_ipv6_version_4(struct frame *f, struct pkt_spec *s)
{
	good_syn(1, s);
	build(s, f);
	f->buf[f->lay.l3_off] = 0x40 | (f->buf[f->lay.l3_off] & 0x0f);
}

/* A SYN the parser takes is shed with a RST; a frame it refuses passes as a parse error. */
/* clang-format off */
#define SHED(name)		{#name, make_##name, XDP_TX, 0, SKB_RUNS}
#define NOT_OURS(name)		{#name, make_##name, XDP_PASS, 0, SKB_RUNS}
#define MALFORMED(name)		{#name, make_##name, XDP_PASS, 1, SKB_RUNS}
#define MALFORMED_NO_SKB(name)	{#name, make_##name, XDP_PASS, 1, SKB_REFUSED}
/* Could be a SYN to the service, cannot be decided: never passed. */
#define FRAGMENT_DROPPED(name)	{#name, make_##name, XDP_DROP, 0, SKB_RUNS, 1, 0}
#define UNDECIDABLE(name)	{#name, make_##name, XDP_DROP, 0, SKB_RUNS, 0, 1}
/* clang-format on */

static const struct frame_case cases[] = {
	SHED(ipv4_qinq_longest_headers),
	SHED(ipv6_six_extension_headers),
	NOT_OURS(ipv6_six_extension_headers_then_udp),

	MALFORMED(vlan_tag_cut),
	MALFORMED(qinq_inner_tag_cut),
	MALFORMED(three_vlan_tags),
	MALFORMED_NO_SKB(ethernet_header_only),
	MALFORMED_NO_SKB(ipv4_header_cut),
	MALFORMED(ipv4_ihl_4),
	MALFORMED(ipv4_ihl_past_tot_len),
	MALFORMED(ipv4_ihl_past_frame),
	MALFORMED(ipv4_tot_len_past_frame),
	MALFORMED(ipv4_tot_len_inside_tcp_header),
	FRAGMENT_DROPPED(ipv4_more_fragments),
	FRAGMENT_DROPPED(ipv4_first_fragment_without_ports),
	MALFORMED(ipv4_first_fragment_to_another_port),
	MALFORMED(ipv4_fragment_offset),
	MALFORMED(ipv4_ethertype_ipv6_header),
	MALFORMED(tcp_doff_4),
	MALFORMED(tcp_doff_0_ipv6),
	MALFORMED(tcp_doff_past_end),
	MALFORMED(tcp_header_cut),
	MALFORMED_NO_SKB(ipv6_header_cut),
	MALFORMED(ipv6_payload_len_past_frame),
	UNDECIDABLE(ipv6_ext_chain_too_long),
	MALFORMED(ipv6_ext_header_cut),
	MALFORMED(ipv6_ext_len_past_payload),
	UNDECIDABLE(ipv6_ext_len_past_parse_bound),
	MALFORMED(ipv6_fragment_not_first),
	FRAGMENT_DROPPED(ipv6_fragment_more_follow),
	UNDECIDABLE(ipv6_v4_mapped_source),
	UNDECIDABLE(ipv4_source_route),
	SHED(ipv4_harmless_options),
	UNDECIDABLE(ipv6_option_discard_if_unknown),
	UNDECIDABLE(ipv6_padding_over_7_bytes),
	UNDECIDABLE(ipv6_routing_segments_left),
	SHED(ipv6_skippable_option),
	MALFORMED(ipv6_version_4),
};

/*
 * One row: the frame through XDP, then through TC. A frame that passes
 * must pass unchanged and leave no flow, no in-flight count and no class
 * counter; a SYN that is shed must leave a valid RST and count once.
 */
static void check_frame_case(void **state)
{
	static struct dp_run r;
	struct t *t = *state;
	const struct frame_case *c = t->param;
	struct ls_iface_stats is;
	struct pkt_spec spec;
	struct frame f;
	char why[160] = "";
	__u32 verdict;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	c->make(&f, &spec);
	verdict = run_frame(t, 1, &f, &r);
	if (verdict != c->verdict)
		fail_because("%s: XDP verdict %u, expected %u", c->name, verdict, c->verdict);
	if (verdict == XDP_PASS) {
		assert_int_equal(r.len, f.len);
		assert_memory_equal(r.out, f.buf, f.len);
	} else if (verdict == XDP_TX && pkt_check_rst(&spec, r.out, r.len, why, sizeof(why))) {
		fail_because("%s: not a valid RST for the SYN: %s", c->name, why);
	}
	is = iface(t);
	if (is.parse_errors != c->parse_errors)
		fail_because("%s: parse_errors %llu, expected %llu", c->name,
			     (unsigned long long)is.parse_errors,
			     (unsigned long long)c->parse_errors);
	if (is.fragments_dropped != c->fragments_dropped || is.undecidable != c->undecidable)
		fail_because("%s: fragments_dropped %llu, undecidable %llu; expected %llu, %llu",
			     c->name, (unsigned long long)is.fragments_dropped,
			     (unsigned long long)is.undecidable,
			     (unsigned long long)c->fragments_dropped,
			     (unsigned long long)c->undecidable);

	if (c->skb == SKB_RUNS)
		assert_int_equal(run_frame(t, 0, &f, NULL), TC_ACT_OK);

	assert_int_equal(flows(t), 0);
	assert_int_equal(handshakes(t), 0);
	assert_nothing_in_flight(t);
	is = iface(t);
	assert_int_equal(is.untracked_packets, 0);
	assert_int_equal(is.tx_errors, 0);
	if (verdict == XDP_TX) {
		struct ls_class_stats st = stats(t, CLS_DEFAULT);

		assert_int_equal(st.syns, 1);
		assert_int_equal(st.shed_reset, 1);
		assert_int_equal(st.admitted, 0);
	} else {
		assert_no_class_counted(t);
	}
}

/* A FIN or RST of a malformed frame must not end the tracked flow it resembles. */
static void malformed_fin_or_rst_does_not_end_a_flow(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct frame f;
	struct conn c;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	cli_seg(&c, PKT_RST, 0, &s);
	s.doff = 4;
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	srv_seg(&c, PKT_FIN | PKT_ACK, 0, &s);
	s.doff = 4;
	build(&s, &f);
	assert_int_equal(run_frame(t, 0, &f, NULL), TC_ACT_OK);
	srv_seg(&c, PKT_RST | PKT_ACK, 0, &s);
	s.tot_len = 1000;
	build(&s, &f);
	assert_int_equal(run_frame(t, 0, &f, NULL), TC_ACT_OK);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_int_equal(iface(t).parse_errors, 1); /* counted at XDP only */
}

/* A malformed SYN-ACK notes no ISN; a malformed ACK of a noted one completes nothing. */
static void malformed_handshake_segments_complete_nothing(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct frame f;
	struct conn c;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	synack_of(&c, &s);
	s.doff = 15;
	build(&s, &f);
	assert_int_equal(run_frame(t, 0, &f, NULL), TC_ACT_OK);
	assert_int_equal(handshakes(t), 0);

	send_synack(t, &c);
	cli_seg(&c, PKT_ACK, 0, &s);
	s.frag_off = 0x2000; /* more fragments: the first, to the service: dropped */
	build(&s, &f);
	assert_int_equal(run_frame(t, 1, &f, NULL), XDP_DROP);
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 0);
	assert_int_equal(iface(t).parse_errors, 0);
	assert_int_equal(iface(t).fragments_dropped, 1);
}

/* What a row proves, from what it expects. */
static const char *behaviour(const struct frame_case *c)
{
	if (c->fragments_dropped)
		return "first_fragment_that_could_be_a_service_syn_is_dropped";
	if (c->undecidable)
		return "frame_that_cannot_be_decided_is_dropped";
	if (c->parse_errors)
		return "malformed_frame_passes_untouched_as_a_parse_error";
	if (c->verdict == XDP_TX)
		return "syn_with_headers_at_the_parser_bounds_is_parsed_and_shed";
	return "frame_at_the_parser_bounds_passes_without_parse_error";
}

int main(void)
{
	static struct CMUnitTest tests[2 + ARRAY_LEN(cases)];
	static char names[ARRAY_LEN(cases)][128];
	size_t i, n = 0;

	tests[n++] = (struct CMUnitTest)TEST(malformed_fin_or_rst_does_not_end_a_flow);
	tests[n++] = (struct CMUnitTest)TEST(malformed_handshake_segments_complete_nothing);
	for (i = 0; i < ARRAY_LEN(cases); i++) {
		snprintf(names[i], sizeof(names[i]), "%s/%s", behaviour(&cases[i]), cases[i].name);
		tests[n++] = (struct CMUnitTest){names[i], check_frame_case, setup_param, teardown,
						 (void *)&cases[i]};
	}
	return dp_tests_run(__FILE__, tests, n);
}
