// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ending flows (issue 9, "only trustworthy segments end a flow"): what the
 * local stack sends is trusted, so the server's FIN or RST (TC egress)
 * ends its flow, once. A client's FIN is a half-close and ends nothing. A
 * client's RST ends the flow only at the exact next byte of the client's
 * data seen (cli_next, advanced by contiguous segments only); any other
 * marks the flow suspect and counts as untrusted, and a server segment
 * clears the mark. So an off-path forger who guesses the ports frees no
 * slot, and a client cannot escape the limit. Needs root.
 */
#include "lib/fixture.h"

static void assert_ended_once(struct t *t, __u64 fin, __u64 rst)
{
	struct ls_class_stats st = stats(t, CLS_DEFAULT);

	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	assert_int_equal(st.ended_fin, fin);
	assert_int_equal(st.ended_rst, rst);
	assert_int_equal(st.ended_reused + st.ended_idle, 0);
}

/* Every later ending segment, from both sides: none may count again. */
static void send_every_ending_again(struct t *t, struct conn *c)
{
	int i;

	for (i = 0; i < 3; i++) {
		srv_send(t, c, PKT_FIN | PKT_ACK, 0);
		srv_send(t, c, PKT_RST | PKT_ACK, 0);
		assert_int_equal(cli_send(t, c, PKT_FIN | PKT_ACK, 0, NULL), XDP_PASS);
		assert_int_equal(cli_rst_at(t, c, c->cli_seq), XDP_PASS);
	}
}

static void server_fin_ends_the_flow_once(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	srv_send(t, &c, PKT_FIN | PKT_ACK, 0);
	assert_ended_once(t, 1, 0);
	send_every_ending_again(t, &c);
	assert_ended_once(t, 1, 0);
}

static void server_rst_ends_the_flow_once(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	srv_send(t, &c, PKT_RST, 0);
	assert_ended_once(t, 0, 1);
	send_every_ending_again(t, &c);
	assert_ended_once(t, 0, 1);
}

static void client_rst_in_sequence_ends_the_flow(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(cli_rst_at(t, &c, c.cli_seq), XDP_PASS);
	assert_ended_once(t, 0, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).untrusted, 0);
	send_every_ending_again(t, &c);
	assert_ended_once(t, 0, 1);
}

/* cli_next follows the client's contiguous data, and its FIN. */
static void client_rst_in_sequence_after_data_and_fin_ends_the_flow(void **state)
{
	struct t *t = *state;
	struct pkt_spec rst;
	struct conn c;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_int_equal(request(t, &c, 200, NULL), XDP_PASS);
	assert_int_equal(cli_send(t, &c, PKT_FIN | PKT_ACK, 0, NULL), XDP_PASS);
	assert_int_equal(flow_of(t, &c).cli_next, c.cli_seq);
	/* Not yet acknowledged by the server: the kernel may not have those bytes. */
	cli_seg(&c, PKT_RST | PKT_ACK, 0, &rst);
	assert_int_equal(xdp(t, &rst, NULL), XDP_PASS);
	assert_true(tracked(t, &c, NULL));
	assert_true(flow_of(t, &c).flags & LS_FLOW_RST_SUSPECT);
	srv_send(t, &c, PKT_ACK, 0);
	assert_int_equal(flow_of(t, &c).cli_acked, c.cli_seq);
	assert_int_equal(xdp(t, &rst, NULL), XDP_PASS);
	assert_ended_once(t, 0, 1);
}

/* A RST within the window of the client's next byte, not at it: a suspect, nothing ends. */
static void rst_near_the_next_byte_makes_the_flow_a_suspect(void **state)
{
	struct t *t = *state;
	struct ls_flow f;
	struct conn a;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(cli_rst_at(t, &a, a.cli_seq + 1000), XDP_PASS);
	f = flow_of(t, &a);
	assert_true(f.flags & LS_FLOW_RST_SUSPECT);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).untrusted, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_rst, 0);
}

/*
 * The escape: at limit 1 an out-of-window RST (seq 0xdead0000)
 * freed the slot and let a second connection in. It ends nothing now, not
 * even a suspicion (it is far from the client's next byte), and the limit
 * holds.
 */
static void out_of_window_rst_ends_nothing_and_the_limit_holds(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct ls_flow f;
	struct conn a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(cli_rst_at(t, &a, 0xdead0000u), XDP_PASS);
	f = flow_of(t, &a);
	assert_false(f.flags & LS_FLOW_RST_SUSPECT);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.untrusted, 1);
	assert_int_equal(st.ended_rst, 0);

	conn_n(t, 1, &b);
	assert_int_equal(send_syn(t, &b, NULL), XDP_DROP);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
}

/* The same with a FIN: a client's FIN never ends a flow, in window or not. */
static void out_of_window_fin_ends_nothing_and_the_limit_holds(void **state)
{
	struct t *t = *state;
	struct pkt_spec fin;
	struct conn a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	cli_seg(&a, PKT_FIN | PKT_ACK, 0, &fin);
	fin.seq = 0xdead0000u;
	assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	assert_true(tracked(t, &a, NULL));
	assert_int_equal(flow_of(t, &a).cli_next, a.cli_seq);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, 0);

	conn_n(t, 1, &b);
	assert_int_equal(send_syn(t, &b, NULL), XDP_DROP);
	assert_int_equal(flows(t), 1);
}

/*
 * A client that half-closes after its request (HTTP/1.0, a shell pipe):
 * the server still works, and its response still gives a latency sample.
 */
static void client_fin_is_a_half_close_and_ends_nothing(void **state)
{
	struct t *t = *state;
	struct ls_latency_hist h;
	struct ls_flow f;
	struct conn c;
	__u32 fin_seq;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	fin_seq = c.cli_seq;
	assert_int_equal(cli_send(t, &c, PKT_FIN | PKT_ACK, 0, NULL), XDP_PASS);
	f = flow_of(t, &c);
	assert_true(f.flags & LS_FLOW_CLIENT_FIN);
	assert_int_equal(f.cli_next, fin_seq + 1);
	assert_int_equal(f.state, LS_FLOW_REQUEST);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, 0);

	respond(t, &c, 500);
	assert_int_equal(dp_latency(&t->dp, SVC, CLS_DEFAULT, &h), 0);
	assert_int_equal(h.count, 1);
	srv_send(t, &c, PKT_FIN | PKT_ACK, 0);
	assert_ended_once(t, 1, 0);
}

/* Sequence numbers before the client's data seen: a stale or forged RST. */
static void rst_before_the_data_seen_ends_nothing(void **state)
{
	struct t *t = *state;
	struct conn c;
	__u32 start;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	start = c.cli_seq;
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_int_equal(cli_rst_at(t, &c, start), XDP_PASS);
	assert_int_equal(cli_rst_at(t, &c, c.cli_seq - 1), XDP_PASS);
	assert_int_equal(cli_rst_at(t, &c, c.cli_seq + 1), XDP_PASS);
	assert_true(flow_of(t, &c).flags & LS_FLOW_RST_SUSPECT);
	assert_int_equal(stats(t, CLS_DEFAULT).untrusted, 3);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	srv_send(t, &c, PKT_ACK, 0);
	assert_int_equal(cli_rst_at(t, &c, c.cli_seq), XDP_PASS);
	assert_ended_once(t, 0, 1);
}

/*
 * A segment far ahead (a gap, or a forgery) does not move cli_next: a RST
 * at its end is not in sequence; one at the contiguous end is.
 */
static void segment_beyond_a_gap_does_not_move_the_sequence(void **state)
{
	struct t *t = *state;
	struct conn c;
	__u32 next;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	next = c.cli_seq;
	assert_int_equal(cli_data_at(t, &c, next + 1000, 100, NULL), XDP_PASS);
	assert_int_equal(cli_data_at(t, &c, next + 0x40000000u, 100, NULL), XDP_PASS);
	assert_int_equal(flow_of(t, &c).cli_next, next);
	assert_int_equal(cli_rst_at(t, &c, next + 1100), XDP_PASS);
	assert_true(tracked(t, &c, NULL));

	/* A segment overlapping the end moves it to its own end, which the server then
	 * acknowledges. */
	assert_int_equal(cli_data_at(t, &c, next - 10, 60, NULL), XDP_PASS);
	assert_int_equal(flow_of(t, &c).cli_next, next + 50);
	c.cli_seq = next + 50;
	srv_send(t, &c, PKT_ACK, 0);
	assert_int_equal(cli_rst_at(t, &c, next + 50), XDP_PASS);
	assert_ended_once(t, 0, 1);
}

/* The server still talks on the flow: the RST it got was not taken. */
static void server_segment_clears_the_suspect_mark(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(cli_rst_at(t, &c, c.cli_seq + 1000), XDP_PASS);
	assert_true(flow_of(t, &c).flags & LS_FLOW_RST_SUSPECT);
	srv_ack(t, &c);
	assert_false(flow_of(t, &c).flags & LS_FLOW_RST_SUSPECT);
	assert_int_equal(cli_rst_at(t, &c, 0xdead0000u), XDP_PASS);
	respond(t, &c, 100);
	assert_false(flow_of(t, &c).flags & LS_FLOW_RST_SUSPECT);
	assert_int_equal(stats(t, CLS_DEFAULT).untrusted, 2);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

/* A SYN on a live tuple (spoofed, or a client's reuse) ends nothing by itself. */
static void syn_on_a_live_tuple_ends_nothing(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	c.syn.seq += 777777;
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	c.syn.flags = PKT_SYN | PKT_FIN;
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	assert_true(tracked(t, &c, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_reused, 0);
}

static void ended_flow_frees_its_slot(void **state)
{
	struct t *t = *state;
	struct conn a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	assert_int_equal(send_syn(t, &b, NULL), XDP_DROP);
	srv_send(t, &a, PKT_RST | PKT_ACK, 0);
	connect_ok(t, &b);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

/* Both sides close: the server's FIN ends the flow, once, whatever the order. */
static void fins_from_both_sides_end_the_flow_once(void **state)
{
	struct t *t = *state;
	struct conn a, b;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	assert_int_equal(cli_send(t, &a, PKT_FIN | PKT_ACK, 0, NULL), XDP_PASS);
	srv_send(t, &a, PKT_FIN | PKT_ACK, 0);
	assert_int_equal(cli_send(t, &a, PKT_ACK, 0, NULL), XDP_PASS);
	srv_send(t, &b, PKT_FIN | PKT_ACK, 0);
	assert_int_equal(cli_send(t, &b, PKT_FIN | PKT_ACK, 0, NULL), XDP_PASS);
	srv_ack(t, &b);
	assert_ended_once(t, 2, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_V(server_fin_ends_the_flow_once, V4),
		TEST_V(server_fin_ends_the_flow_once, V6_QINQ),
		TEST_V(server_rst_ends_the_flow_once, V4_VLAN),
		TEST_V(server_rst_ends_the_flow_once, V6),
		TEST_ALL_VARIANTS(client_rst_in_sequence_ends_the_flow),
		TEST(client_rst_in_sequence_after_data_and_fin_ends_the_flow),
		TEST_ALL_VARIANTS(out_of_window_rst_ends_nothing_and_the_limit_holds),
		TEST(rst_near_the_next_byte_makes_the_flow_a_suspect),
		TEST_V(out_of_window_fin_ends_nothing_and_the_limit_holds, V4),
		TEST_V(out_of_window_fin_ends_nothing_and_the_limit_holds, V6_VLAN),
		TEST(client_fin_is_a_half_close_and_ends_nothing),
		TEST(rst_before_the_data_seen_ends_nothing),
		TEST(segment_beyond_a_gap_does_not_move_the_sequence),
		TEST(server_segment_clears_the_suspect_mark),
		TEST(syn_on_a_live_tuple_ends_nothing),
		TEST(ended_flow_frees_its_slot),
		TEST(fins_from_both_sides_end_the_flow_once),
	};

	return DP_TESTS_MAIN(tests);
}
