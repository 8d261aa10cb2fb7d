// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The two shed actions of a connection (issue 9): drop (XDP_DROP, silent)
 * and reset (XDP_TX of a RST|ACK to the client), at the SYN (read-only
 * check) and at the ACK that completes a handshake (the admission). The
 * RST is checked field by field whatever the shed segment carried: VLAN
 * tags, IPv4 options, IPv6 extension headers, TCP options, data, Ethernet
 * padding. For a SYN, seq 0 and ack = ISN + 1 + data; for the ACK, seq =
 * its acknowledgment number and ack = its seq + data. A shed leaves no
 * flow and no in-flight count; a dropped ACK is decided again on the
 * client's next one, a reset handshake is not. Needs root.
 */
#include <string.h>
#include "lib/fixture.h"

/* MSS 1460, SACK permitted, window scale 7: options the RST must not copy. */
static void add_syn_options(struct pkt_spec *s)
{
	static const __u8 opts[12] = {2, 4, 0x05, 0xb4, 4, 2, 1, 1, 3, 3, 7, 0};

	memcpy(s->tcp_opts, opts, sizeof(opts));
	s->tcp_opts_len = sizeof(opts);
}

/* ---- at the SYN ----------------------------------------------------------- */

static void syn_over_both_bounds_is_shed_with_drop(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct conn a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	assert_int_equal(send_syn(t, &b, NULL), XDP_DROP);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_int_equal(handshakes(t), 1);
	assert_false(tracked(t, &b, NULL));
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.syns, 2);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.shed_drop, 1);
	assert_int_equal(st.shed_reset, 0);
}

static void syn_over_both_bounds_is_shed_with_reset(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct conn a, b;
	struct dp_run r;

	one_class_service(t, 1, LS_ACT_RESET, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	add_syn_options(&b.syn);
	b.syn.seq = 0x89abcdef;
	connect_ok(t, &a);
	assert_int_equal(send_syn(t, &b, &r), XDP_TX);
	assert_rst_answers(&b.syn, &r);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_int_equal(handshakes(t), 1);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.shed_reset, 1);
	assert_int_equal(st.shed_drop, 0);
	assert_int_equal(iface(t).tx_errors, 0);
}

/* A SYN carrying data (TCP Fast Open) and IPv4 options, ISN about to wrap. */
static void reset_acks_syn_data_and_drops_ip_options(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	syn.ip_opts[0] = 1; /* NOP, NOP, NOP, end of list */
	syn.ip_opts[1] = 1;
	syn.ip_opts[2] = 1;
	syn.ip_opts_len = 4;
	add_syn_options(&syn);
	syn.payload = some_bytes;
	syn.payload_len = 7;
	syn.seq = 0xfffffffe;
	assert_int_equal(xdp(t, &syn, &r), XDP_TX);
	/* ack = 0xfffffffe + 1 + 7, modulo 2^32 */
	assert_rst_answers(&syn, &r);
	assert_int_equal(flows(t), 0);
}

static void reset_drops_ipv6_extension_headers(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	pkt_add_ext(&syn, IPPROTO_HOPOPTS, 0);
	pkt_add_ext(&syn, IPPROTO_DSTOPTS, 0);
	assert_int_equal(xdp(t, &syn, &r), XDP_TX);
	assert_rst_answers(&syn, &r);
}

/* Ethernet pads frames to 60 bytes: the padding must not stay on the RST. */
static void reset_of_padded_frame_is_trimmed(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct dp_run r;
	struct frame f;

	one_class_service(t, 0, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	build(&syn, &f);
	memset(f.buf + f.len, 0, 6);
	f.len += 6;
	assert_int_equal(run_frame(t, 1, &f, &r), XDP_TX);
	assert_rst_answers(&syn, &r);
}

/* ---- at the handshake's ACK ------------------------------------------------ */

/* a is admitted at limit 1; b's SYN passed before, and its ACK comes after. */
static void race_two_handshakes(struct t *t, struct conn *a, struct conn *b)
{
	conn_n(t, 0, a);
	conn_n(t, 1, b);
	assert_int_equal(send_syn(t, a, NULL), XDP_PASS);
	assert_int_equal(send_syn(t, b, NULL), XDP_PASS);
	send_synack(t, a);
	send_synack(t, b);
	assert_int_equal(send_ack(t, a, 0, NULL), XDP_PASS);
}

static void handshake_ack_over_the_limit_is_shed_with_drop(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct ls_handshake h;
	struct conn a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	race_two_handshakes(t, &a, &b);
	assert_int_equal(send_ack(t, &b, 0, NULL), XDP_DROP);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_conns(t, 1);
	assert_false(tracked(t, &b, NULL));
	/* Given back: the client's next ACK is decided again. */
	assert_true(hs_entry(t, &b, &h));
	assert_int_equal(ls_hs_state(h.word), 0);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.handshakes, 2);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.shed_drop, 1);
	assert_int_equal(st.shed_reset, 0);
}

static void handshake_ack_over_the_limit_is_shed_with_reset(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct ls_handshake h;
	struct pkt_spec ack;
	struct conn a, b;
	struct dp_run r;

	one_class_service(t, 1, LS_ACT_RESET, 0);
	race_two_handshakes(t, &a, &b);
	cli_seg(&b, PKT_ACK, 0, &ack);
	assert_int_equal(xdp(t, &ack, &r), XDP_TX);
	/* seq = ISN + 1: the one number the client, now established, takes */
	assert_rst_answers(&ack, &r);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_conns(t, 1);
	assert_false(tracked(t, &b, NULL));
	assert_true(hs_entry(t, &b, &h));
	assert_int_equal(ls_hs_state(h.word), LS_HS_REFUSED);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.handshakes, 2);
	assert_int_equal(st.shed_reset, 1);
	assert_int_equal(st.shed_drop, 0);
	assert_int_equal(iface(t).tx_errors, 0);
}

/* The ACK carries the request: the RST acknowledges it. */
static void reset_of_a_handshake_ack_with_data_acks_the_data(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct conn a, b;
	struct dp_run r;

	one_class_service(t, 1, LS_ACT_RESET, 0);
	race_two_handshakes(t, &a, &b);
	b.isn = 0xffffffff; /* the RST's seq wraps to 0 */
	send_synack(t, &b);
	cli_seg(&b, PKT_PSH | PKT_ACK, 333, &ack);
	ack.tcp_opts[0] = 1; /* NOP, NOP, timestamps would go here */
	ack.tcp_opts[1] = 1;
	ack.tcp_opts[2] = 1;
	ack.tcp_opts[3] = 1;
	ack.tcp_opts_len = 4;
	assert_int_equal(ack.ack, 0);
	assert_int_equal(xdp(t, &ack, &r), XDP_TX);
	assert_rst_answers(&ack, &r);
	assert_int_equal(flows(t), 1);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_reset, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 0);
}

static void dropped_handshake_ack_is_decided_again_on_the_next(void **state)
{
	struct t *t = *state;
	struct conn a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	race_two_handshakes(t, &a, &b);
	assert_int_equal(send_ack(t, &b, 0, NULL), XDP_DROP);
	/* Still full: dropped again, counted again. */
	assert_int_equal(send_ack(t, &b, 0, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 2);
	/* a ends; b's request, acknowledging the ISN, completes b's handshake. */
	srv_send(t, &a, PKT_FIN | PKT_ACK, 0);
	assert_int_equal(send_ack(t, &b, 100, NULL), XDP_PASS);
	assert_true(tracked(t, &b, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 4);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 1);
}

/* The client was told to go: a later ACK of that handshake admits nothing. */
static void reset_handshake_is_not_decided_again(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct conn a, b;
	struct dp_run r;

	one_class_service(t, 1, LS_ACT_RESET, 0);
	race_two_handshakes(t, &a, &b);
	assert_int_equal(send_ack(t, &b, 0, &r), XDP_TX);
	srv_send(t, &a, PKT_FIN | PKT_ACK, 0);
	cli_seg(&b, PKT_ACK, 0, &ack);
	xdp(t, &ack, &r);
	assert_false(tracked(t, &b, NULL));
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 2);
}

/*
 * A client sends its request right behind the ACK that completes the
 * handshake, before any RST can reach it (connect(), then write()). The
 * ACK is shed with reset; the request segment (ack = ISN + 1, payload)
 * must not reach the server, whose kernel would take any ACK of its ISN as
 * the end of the handshake: it gets a RST again, and nothing is in flight.
 */
static void request_behind_a_reset_handshake_ack_does_not_reach_the_server(void **state)
{
	struct t *t = *state;
	struct pkt_spec seg;
	struct conn a, b;
	struct dp_run r;
	__u32 verdict;

	one_class_service(t, 1, LS_ACT_RESET, 0);
	race_two_handshakes(t, &a, &b);
	assert_int_equal(send_ack(t, &b, 0, &r), XDP_TX);
	cli_seg(&b, PKT_PSH | PKT_ACK, 200, &seg);
	verdict = xdp(t, &seg, &r);
	if (verdict == XDP_PASS)
		fail_because("the request behind a handshake shed with reset passed to the server");
	assert_int_equal(verdict, XDP_TX);
	assert_rst_answers(&seg, &r);
	assert_false(tracked(t, &b, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ALL_VARIANTS(syn_over_both_bounds_is_shed_with_drop),
		TEST_ALL_VARIANTS(syn_over_both_bounds_is_shed_with_reset),
		TEST_V(reset_acks_syn_data_and_drops_ip_options, V4_VLAN),
		TEST_V(reset_drops_ipv6_extension_headers, V6_QINQ),
		TEST_V(reset_of_padded_frame_is_trimmed, V4),

		TEST_ALL_VARIANTS(handshake_ack_over_the_limit_is_shed_with_drop),
		TEST_ALL_VARIANTS(handshake_ack_over_the_limit_is_shed_with_reset),
		TEST_V(reset_of_a_handshake_ack_with_data_acks_the_data, V4),
		TEST_V(reset_of_a_handshake_ack_with_data_acks_the_data, V6_QINQ),
		TEST(dropped_handshake_ack_is_decided_again_on_the_next),
		TEST(reset_handshake_is_not_decided_again),
		TEST_V(request_behind_a_reset_handshake_ack_does_not_reach_the_server, V4),
	};

	return DP_TESTS_MAIN(tests);
}
