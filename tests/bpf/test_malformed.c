// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Malformed frames (DESIGN.md section 3: every packet that is not a SYN
 * to a service passes): truncated, inconsistent or fragmented headers
 * pass unchanged through both programs, are counted as parse errors and
 * leave no trace; and the longest headers within the parser's bounds are
 * still parsed. Needs root.
 */
#include <errno.h>
#include <string.h>
#include "lib/fixture.h"

/* What the parser must still accept: the limits of the bounded parsing. */
/* The parser follows six extension headers; what follows them may be UDP. */
static void six_extension_headers_then_udp_is_not_a_parse_error(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct frame f;
	int i;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	syn_n(t, 0, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	for (i = 0; i < 5; i++)
		pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	s.l4proto = IPPROTO_UDP;
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	assert_int_equal(iface(t).parse_errors, 0);
}

static void longest_headers_within_bounds_are_parsed(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;

	one_class_service(t, 0, LS_ACT_DROP, 0);

	/* IPv4 in QinQ: 40 bytes of IP options (IHL 15), 40 of TCP options (doff 15). */
	pkt_tcp(&s, 0, "10.1.0.1", 40000, "192.0.2.1", PORT, PKT_SYN);
	memset(s.ip_opts, 1, sizeof(s.ip_opts));
	s.ip_opts_len = 40;
	memset(s.tcp_opts, 1, sizeof(s.tcp_opts));
	s.tcp_opts_len = 40;
	pkt_add_vlan(&s, 0x88a8, 1);
	pkt_add_vlan(&s, 0x8100, 2);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);

	/* IPv6: six extension headers, an atomic fragment among them. */
	pkt_tcp(&s, 1, "2001:db8:1::1", 40000, "2001:db8:ffff::1", PORT, PKT_SYN);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	pkt_add_ext(&s, IPPROTO_DSTOPTS, 2);
	pkt_add_ext(&s, IPPROTO_ROUTING, 1);
	pkt_add_ext(&s, IPPROTO_FRAGMENT, 0);
	pkt_add_ext(&s, IPPROTO_AH, 4);
	pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);

	assert_int_equal(iface(t).parse_errors, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 2);
}

struct bad_frame {
	const char *what;
	/* Builds the frame from a good SYN of the variant. */
	void (*make)(struct t *t, struct frame *f);
};

static void good_syn(struct t *t, int ipv6, struct pkt_spec *s)
{
	if (ipv6)
		pkt_tcp(s, 1, "2001:db8:1::1", 40000, "2001:db8:ffff::1", PORT, PKT_SYN);
	else
		pkt_tcp(s, 0, "10.1.0.1", 40000, "192.0.2.1", PORT, PKT_SYN);
	(void)t;
}

static void make_vlan_tag_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	pkt_add_vlan(&s, 0x8100, 100);
	s.truncate = 16; /* ends inside the tag */
	build(&s, f);
}

static void make_qinq_inner_tag_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	pkt_add_vlan(&s, 0x88a8, 200);
	pkt_add_vlan(&s, 0x8100, 100);
	s.truncate = 20;
	build(&s, f);
}

static void make_ethernet_header_only(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.truncate = 14;
	build(&s, f);
}

static void make_ipv4_header_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.truncate = 14 + 12;
	build(&s, f);
}

static void make_ipv4_ihl_4(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.ihl = 4;
	build(&s, f);
}

static void make_ipv4_ihl_past_tot_len(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.ihl = 15; /* 60 bytes in a 40-byte datagram */
	build(&s, f);
}

static void make_ipv4_ihl_past_frame(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.ihl = 15;
	s.tot_len = 60 + 20;
	s.truncate = 14 + 60; /* consistent lengths, frame too short */
	build(&s, f);
}

static void make_ipv4_tot_len_past_frame(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.tot_len = 1000;
	build(&s, f);
}

static void make_ipv4_tot_len_inside_tcp_header(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.tot_len = 20 + 12;
	build(&s, f);
}

static void make_ipv4_more_fragments(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.frag_off = 0x2000;
	build(&s, f);
}

static void make_ipv4_fragment_offset(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.frag_off = 0x4000 | 0x0010; /* DF, and an offset: a non-first fragment */
	build(&s, f);
}

static void make_ipv4_ethertype_ipv6_header(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	s.ethertype = 0x0800;
	build(&s, f);
}

static void make_tcp_doff_4(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.doff = 4;
	build(&s, f);
}

static void make_tcp_doff_0_ipv6(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	build(&s, f);
	f->buf[f->lay.l4_off + 12] = 0;
}

static void make_tcp_doff_past_end(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	s.doff = 15;
	build(&s, f);
}

static void make_tcp_header_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	s.truncate = 14 + 40 + 10;
	build(&s, f);
}

static void make_ipv6_header_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	s.truncate = 14 + 30;
	build(&s, f);
}

static void make_ipv6_payload_len_past_frame(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	s.payload_len6 = 500;
	build(&s, f);
}

static void make_ipv6_ext_chain_too_long(struct t *t, struct frame *f)
{
	struct pkt_spec s;
	int i;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	for (i = 0; i < 6; i++)
		pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	build(&s, f);
}

static void make_ipv6_ext_header_cut(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 0);
	s.truncate = 14 + 40 + 4;
	build(&s, f);
}

static void make_ipv6_ext_len_past_payload(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_DSTOPTS, 0);
	build(&s, f);
	f->buf[f->lay.l3_off + 40 + 1] = 40; /* claims 328 bytes */
}

static void make_ipv6_ext_len_past_parse_bound(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_HOPOPTS, 60); /* 488 bytes: TCP starts past 512 */
	build(&s, f);
}

static void make_ipv6_fragment_not_first(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_FRAGMENT, 0);
	s.ext[0].frag = 185 << 3;
	build(&s, f);
}

static void make_ipv6_fragment_more_follow(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	pkt_add_ext(&s, IPPROTO_FRAGMENT, 0);
	s.ext[0].frag = 1; /* M */
	build(&s, f);
}

static void make_ipv6_version_4(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 1, &s);
	build(&s, f);
	f->buf[f->lay.l3_off] = 0x40 | (f->buf[f->lay.l3_off] & 0x0f);
}

static void make_three_vlan_tags(struct t *t, struct frame *f)
{
	struct pkt_spec s;

	good_syn(t, 0, &s);
	pkt_add_vlan(&s, 0x88a8, 300);
	pkt_add_vlan(&s, 0x8100, 200);
	pkt_add_vlan(&s, 0x8100, 100);
	build(&s, f);
}

static const struct bad_frame bad_frames[] = {
	{"vlan_tag_cut", make_vlan_tag_cut},
	{"qinq_inner_tag_cut", make_qinq_inner_tag_cut},
	{"ethernet_header_only", make_ethernet_header_only},
	{"ipv4_header_cut", make_ipv4_header_cut},
	{"ipv4_ihl_4", make_ipv4_ihl_4},
	{"ipv4_ihl_past_tot_len", make_ipv4_ihl_past_tot_len},
	{"ipv4_ihl_past_frame", make_ipv4_ihl_past_frame},
	{"ipv4_tot_len_past_frame", make_ipv4_tot_len_past_frame},
	{"ipv4_tot_len_inside_tcp_header", make_ipv4_tot_len_inside_tcp_header},
	{"ipv4_more_fragments", make_ipv4_more_fragments},
	{"ipv4_fragment_offset", make_ipv4_fragment_offset},
	{"ipv4_ethertype_ipv6_header", make_ipv4_ethertype_ipv6_header},
	{"tcp_doff_4", make_tcp_doff_4},
	{"tcp_doff_0_ipv6", make_tcp_doff_0_ipv6},
	{"tcp_doff_past_end", make_tcp_doff_past_end},
	{"tcp_header_cut", make_tcp_header_cut},
	{"ipv6_header_cut", make_ipv6_header_cut},
	{"ipv6_payload_len_past_frame", make_ipv6_payload_len_past_frame},
	{"ipv6_ext_chain_too_long", make_ipv6_ext_chain_too_long},
	{"ipv6_ext_header_cut", make_ipv6_ext_header_cut},
	{"ipv6_ext_len_past_payload", make_ipv6_ext_len_past_payload},
	{"ipv6_ext_len_past_parse_bound", make_ipv6_ext_len_past_parse_bound},
	{"ipv6_fragment_not_first", make_ipv6_fragment_not_first},
	{"ipv6_fragment_more_follow", make_ipv6_fragment_more_follow},
	{"ipv6_version_4", make_ipv6_version_4},
	{"three_vlan_tags", make_three_vlan_tags},
};

/*
 * Every malformed frame passes unchanged through both programs, with a
 * limit of 0 that would drop any SYN it mistook for well formed, is
 * counted once as a parse error and leaves no trace in the flow table or
 * the class counters.
 */
static void malformed_frame_passes_uncounted_and_is_a_parse_error(void **state)
{
	static struct dp_run r;
	struct t *t = *state;
	size_t i;
	int err;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	for (i = 0; i < sizeof(bad_frames) / sizeof(bad_frames[0]); i++) {
		struct ls_iface_stats before = iface(t), after;
		struct frame f;

		bad_frames[i].make(t, &f);
		xdp_passes_untouched(t, &f);
		after = iface(t);
		if (after.parse_errors != before.parse_errors + 1)
			fail_because("%s: parse_errors %llu -> %llu", bad_frames[i].what,
				     (unsigned long long)before.parse_errors,
				     (unsigned long long)after.parse_errors);
		/*
		 * An skb test run refuses a frame whose IP header is cut (the
		 * kernel checks it before any program runs); XDP covered those.
		 */
		err = dp_tc(&t->dp, f.buf, f.len, &r);
		if (err == -EINVAL && f.len < 14 + 40)
			continue;
		if (err || r.retval != TC_ACT_OK)
			fail_because("%s: TC run %d, verdict %u", bad_frames[i].what, err,
				     r.retval);
		if (flows(t) || inflight(t).total)
			fail_because("%s: tracked", bad_frames[i].what);
	}
	assert_int_equal(iface(t).untracked_packets, 0);
	assert_int_equal(iface(t).tx_errors, 0);
	assert_no_class_counted(t);
}

/* BPF_PROG_TEST_RUN itself refuses frames shorter than an Ethernet header. */
static void frame_shorter_than_ethernet_is_refused_by_test_run(void **state)
{
	struct t *t = *state;
	static struct dp_run r;
	__u8 frame[13] = {0};

	assert_int_equal(dp_xdp(&t->dp, frame, sizeof(frame), &r), -EINVAL);
}

/* A FIN of a malformed frame must not end the tracked flow it resembles. */
static void malformed_fin_does_not_end_a_flow(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn, fin;
	struct frame f;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	admit(t, &syn);
	client_seg(&syn, PKT_FIN | PKT_ACK, 0, &fin);
	fin.doff = 4;
	build(&fin, &f);
	xdp_passes_untouched(t, &f);
	server_seg(&syn, PKT_FIN | PKT_ACK, 0, &fin);
	fin.doff = 4;
	build(&fin, &f);
	assert_int_equal(run_frame(t, 0, &f, NULL), TC_ACT_OK);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_V(six_extension_headers_then_udp_is_not_a_parse_error, V6_QINQ),
		TEST(longest_headers_within_bounds_are_parsed),
		TEST(malformed_frame_passes_uncounted_and_is_a_parse_error),
		TEST(frame_shorter_than_ethernet_is_refused_by_test_run),
		TEST(malformed_fin_does_not_end_a_flow),
	};

	return DP_TESTS_MAIN(tests);
}
