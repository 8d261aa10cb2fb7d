// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Request admission on persistent connections (issue 9, admit = requests):
 * L counts requests outstanding, from the first client payload the server
 * has not acknowledged while none is outstanding to the first server
 * payload. A connection is tracked from its handshake but holds no slot;
 * each request start is admitted by the partition rule. A shed request is
 * deferred (its segments dropped, every one at or after its first byte,
 * until the retransmission of that first segment is decided again) or
 * aborted (a RST|ACK to the client, the flow ended, the tuple in the
 * ls_aborts ring for the agent to close the server's socket). Counters
 * are exact and in-flight returns to exactly 0. Needs root.
 */
#include <stdlib.h>
#include <string.h>
#include "lib/fixture.h"

static __u64 latency_count(struct t *t, __u32 cls)
{
	struct ls_latency_hist h;

	assert_int_equal(dp_latency(&t->dp, SVC, cls, &h), 0);
	return h.count;
}

static void request_under_the_limit_is_admitted_until_its_response(void **state)
{
	struct t *t = *state;
	struct ls_flow f;
	struct conn c;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	f = flow_of(t, &c);
	assert_true(f.flags & LS_FLOW_REQUESTS);
	assert_true(f.slot & LS_SLOT_PRESENT);
	assert_false(f.slot & LS_SLOT_COUNTED); /* the connection holds no slot of L */
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_conns(t, 1);

	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	f = flow_of(t, &c);
	assert_int_equal(f.state, LS_FLOW_REQUEST);
	assert_true(f.req & LS_SLOT_PRESENT);
	assert_true(f.req & LS_SLOT_COUNTED);
	assert_int_equal(ls_slot_svc(f.req), SVC);
	assert_int_equal(ls_slot_cls(f.req), CLS_DEFAULT);
	assert_int_equal(f.cli_next, c.cli_seq);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_conns(t, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 1);

	respond(t, &c, 500);
	f = flow_of(t, &c);
	assert_int_equal(f.state, LS_FLOW_RESPONSE);
	assert_int_equal(f.req, 0);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_conns(t, 1);
	assert_int_equal(latency_count(t, CLS_DEFAULT), 1);

	srv_send(t, &c, PKT_FIN | PKT_ACK, 0);
	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
}

/* Pooled connections, idle: all tracked, none holding any of L. */
static void idle_connections_hold_no_request_slot(void **state)
{
	struct t *t = *state;
	struct conn c[5];
	int i;

	request_service(t, 1, LS_REQ_DEFER, 0);
	for (i = 0; i < 5; i++) {
		conn_n(t, i, &c[i]);
		connect_ok(t, &c[i]);
	}
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_conns(t, 5);
	assert_int_equal(request(t, &c[4], 10, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 5);
}

/* a holds the one slot; b's request comes next. */
static void two_connections_one_slot(struct t *t, __u8 req_action, struct conn *a, struct conn *b)
{
	request_service(t, 1, req_action, 0);
	conn_n(t, 0, a);
	conn_n(t, 1, b);
	connect_ok(t, a);
	connect_ok(t, b);
	assert_int_equal(request(t, a, 100, NULL), XDP_PASS);
}

static void request_over_the_limit_is_deferred(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct ls_flow f;
	struct conn a, b;
	__u32 seq;

	two_connections_one_slot(t, LS_REQ_DEFER, &a, &b);
	seq = b.cli_seq;
	assert_int_equal(request(t, &b, 100, NULL), XDP_DROP);
	f = flow_of(t, &b);
	assert_int_equal(f.state, LS_FLOW_DEFERRED);
	assert_int_equal(f.defer_end, seq + 100);
	assert_int_equal(f.req, 0);
	assert_int_equal(f.cli_next, seq); /* a dropped segment is not the client's data seen */
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_conns(t, 2);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.deferred, 1);
	assert_int_equal(st.aborted, 0);
}

static void deferred_request_is_admitted_on_its_retransmission(void **state)
{
	struct t *t = *state;
	struct ls_flow f;
	struct conn a, b;
	__u32 seq;

	two_connections_one_slot(t, LS_REQ_DEFER, &a, &b);
	seq = b.cli_seq;
	assert_int_equal(request(t, &b, 100, NULL), XDP_DROP);
	respond(t, &a, 300);
	assert_inflight(t, 0, CLS_DEFAULT, 0);

	assert_int_equal(cli_data_at(t, &b, seq, 100, NULL), XDP_PASS);
	f = flow_of(t, &b);
	assert_int_equal(f.state, LS_FLOW_REQUEST);
	assert_true(f.req & LS_SLOT_COUNTED);
	assert_int_equal(f.cli_next, seq + 100);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).deferred, 1);

	respond(t, &b, 300);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(latency_count(t, CLS_DEFAULT), 2);
}

static void deferred_request_is_deferred_again_while_the_limit_is_full(void **state)
{
	struct t *t = *state;
	struct ls_flow f;
	struct conn a, b;
	__u32 seq;
	int i;

	two_connections_one_slot(t, LS_REQ_DEFER, &a, &b);
	seq = b.cli_seq;
	for (i = 0; i < 3; i++)
		assert_int_equal(cli_data_at(t, &b, seq, 100, NULL), XDP_DROP);
	f = flow_of(t, &b);
	assert_int_equal(f.state, LS_FLOW_DEFERRED);
	assert_int_equal(f.defer_end, seq + 100);
	assert_int_equal(stats(t, CLS_DEFAULT).deferred, 3);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 1);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

/*
 * All of a deferred request's segments are dropped, or SACK would bring
 * the rest in at once; only its first segment, retransmitted, is decided
 * again. Bytes before it (an earlier request's) pass.
 */
static void later_segments_of_a_deferred_request_are_dropped(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct conn a, b;
	__u32 old, seq;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	old = b.cli_seq;
	assert_int_equal(request(t, &b, 100, NULL), XDP_PASS);
	respond(t, &b, 200);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);

	seq = b.cli_seq;
	assert_int_equal(request(t, &b, 100, NULL), XDP_DROP);
	assert_int_equal(request(t, &b, 100, NULL), XDP_DROP);
	assert_int_equal(request(t, &b, 100, NULL), XDP_DROP);
	/* Covering its first byte, segmented anew: its start again, decided again. */
	assert_int_equal(cli_data_at(t, &b, seq - 50, 100, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).deferred, 2);
	/* The earlier request's bytes, again: they pass. */
	assert_int_equal(cli_data_at(t, &b, old, 100, NULL), XDP_PASS);
	/* A pure ACK carries no request: it passes. */
	cli_seg(&b, PKT_ACK, 0, &ack);
	assert_int_equal(xdp(t, &ack, NULL), XDP_PASS);
	assert_int_equal(stats(t, CLS_DEFAULT).deferred, 2);

	/* The slot frees: a later segment is still dropped, the first decides. */
	respond(t, &a, 100);
	assert_int_equal(cli_data_at(t, &b, seq + 100, 100, NULL), XDP_DROP);
	assert_int_equal(cli_data_at(t, &b, seq, 100, NULL), XDP_PASS);
	assert_int_equal(cli_data_at(t, &b, seq + 100, 100, NULL), XDP_PASS);
	assert_int_equal(cli_data_at(t, &b, seq + 200, 100, NULL), XDP_PASS);
	assert_int_equal(flow_of(t, &b).cli_next, seq + 300);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 3);
	assert_int_equal(stats(t, CLS_DEFAULT).deferred, 2);
	respond(t, &b, 100);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
}

static void request_over_the_limit_is_aborted_with_a_rst(void **state)
{
	struct t *t = *state;
	struct ls_flow_key keys[4], bkey;
	struct ls_class_stats st;
	struct pkt_spec seg;
	struct conn a, b;
	struct dp_run r;

	two_connections_one_slot(t, LS_REQ_ABORT, &a, &b);
	cli_seg(&b, PKT_PSH | PKT_ACK, 100, &seg);
	assert_int_equal(xdp(t, &seg, &r), XDP_TX);
	assert_rst_answers(&seg, &r);

	/* Kept as aborted until the server's socket goes: what follows never reaches it. */
	assert_int_equal(flow_of(t, &b).state, LS_FLOW_ABORTED);
	assert_int_equal(cli_data_at(t, &b, seg.seq + 100, 100, NULL), XDP_DROP);
	assert_int_equal(flows(t), 2);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_conns(t, 2);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.aborted, 1);
	assert_int_equal(st.deferred, 0);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.ended_fin + st.ended_rst + st.ended_reused + st.ended_idle, 0);
	assert_int_equal(iface(t).tx_errors, 0);
	assert_int_equal(iface(t).abort_lost, 0);

	/* The agent is told which server socket to close. */
	assert_int_equal(dp_aborts(&t->dp, keys, 4), 1);
	conn_key(&b, &bkey);
	assert_memory_equal(&keys[0], &bkey, sizeof(bkey));
	assert_int_equal(dp_aborts(&t->dp, keys, 4), 0);

	/* The agent destroyed the server's socket: its RST ends the flow. */
	srv_send(t, &b, PKT_RST | PKT_ACK, 0);
	assert_false(tracked(t, &b, NULL));
	assert_conns(t, 1);
	respond(t, &a, 10);
	srv_send(t, &a, PKT_FIN | PKT_ACK, 0);
	assert_nothing_in_flight(t);
}

/* Every abort counts; those the ring cannot hold are counted as lost. */
static void aborts_the_agent_cannot_read_are_counted_lost(void **state)
{
	enum { N = 2000 };
	struct t *t = *state;
	struct ls_flow_key key;
	struct ls_iface_stats is;
	struct conn c;
	int i, read;

	request_service(t, 0, LS_REQ_ABORT, 0);
	for (i = 0; i < N; i++) {
		conn_n(t, i, &c);
		connect_ok(t, &c);
		assert_int_equal(request(t, &c, 10, NULL), XDP_TX);
	}
	is = iface(t);
	read = dp_aborts(&t->dp, &key, 1);
	assert_true(read > 0);
	assert_true(is.abort_lost > 0);
	assert_int_equal(read + is.abort_lost, N);
	assert_int_equal(stats(t, CLS_DEFAULT).aborted, N);
	/* Each kept, aborted, until its server socket goes. */
	assert_int_equal(flows(t), N);
	for (i = 0; i < N; i++) {
		conn_n(t, i, &c);
		srv_send(t, &c, PKT_RST | PKT_ACK, 0);
	}
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
}

static void requests_of_a_class_under_its_guarantee_are_admitted_at_the_limit(void **state)
{
	struct t *t = *state;
	struct conn d, h, h2, l;

	dscp_classes_service(t, 1, 1, 0);
	t->pol.admit = LS_ADMIT_REQUESTS;
	write_policy(t);
	conn_dscp(t, 0, 0, &d);
	conn_dscp(t, 1, DSCP_EF, &h);
	conn_dscp(t, 2, DSCP_EF, &h2);
	conn_dscp(t, 3, DSCP_AF11, &l);
	connect_ok(t, &d);
	connect_ok(t, &h);
	connect_ok(t, &h2);
	connect_ok(t, &l);

	assert_int_equal(request(t, &d, 10, NULL), XDP_PASS);
	assert_int_equal(request(t, &h, 10, NULL), XDP_PASS);  /* under its guarantee */
	assert_int_equal(request(t, &l, 10, NULL), XDP_DROP);  /* over both bounds */
	assert_int_equal(request(t, &h2, 10, NULL), XDP_DROP); /* hi at its guarantee */
	assert_inflight(t, 2, CLS_HI, 1);
	assert_int_equal(inflight(t).cls[CLS_DEFAULT], 1);
	assert_int_equal(stats(t, CLS_LO).deferred, 1);
	assert_int_equal(stats(t, CLS_HI).deferred, 1);
	assert_int_equal(stats(t, CLS_HI).requests, 1);
}

static void retransmission_of_acknowledged_bytes_starts_no_request(void **state)
{
	struct t *t = *state;
	struct conn c;
	__u32 seq;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	seq = c.cli_seq;
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	srv_ack(t, &c);
	respond(t, &c, 100);
	set_limits(t, 0, 0, 0);
	assert_int_equal(cli_data_at(t, &c, seq, 100, NULL), XDP_PASS);
	assert_int_equal(cli_data_at(t, &c, seq + 50, 50, NULL), XDP_PASS);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).deferred, 0);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(flow_of(t, &c).state, LS_FLOW_RESPONSE);
}

static void more_of_the_outstanding_request_passes_without_a_decision(void **state)
{
	struct t *t = *state;
	struct ls_flow f1, f2;
	struct conn c;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	f1 = flow_of(t, &c);
	set_limits(t, 0, 0, 0);
	sleep_ns(2 * NS_PER_MS);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	f2 = flow_of(t, &c);
	assert_int_equal(f2.req, f1.req); /* the same request */
	assert_true(f2.req_last_ns >= f1.req_last_ns + 2 * NS_PER_MS);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).deferred, 0);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

/* A request sent before the client acknowledged the last answer: pipelined, counted. */
static void request_before_the_last_answer_was_acknowledged_is_pipelined(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn c;

	request_service(t, 10, LS_REQ_DEFER, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	respond(t, &c, 1000);
	cli_seg(&c, PKT_PSH | PKT_ACK, 50, &s);
	s.ack -= 500;
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	c.cli_seq += 50;
	assert_int_equal(stats(t, CLS_DEFAULT).pipelined, 1);
	respond(t, &c, 1000);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_int_equal(stats(t, CLS_DEFAULT).pipelined, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 3);
}

static void shadow_mode_admits_a_request_over_the_limit(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec seg;
	struct frame f;
	struct conn a, b;

	request_service(t, 1, LS_REQ_ABORT, LS_SVC_SHADOW);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	cli_seg(&b, PKT_PSH | PKT_ACK, 100, &seg);
	build(&seg, &f);
	xdp_passes_untouched(t, &f);
	b.cli_seq += 100;
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.would_shed, 1);
	assert_int_equal(st.requests, 2);
	assert_int_equal(st.aborted + st.deferred, 0);
	respond(t, &a, 10);
	respond(t, &b, 10);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
}

static void failing_open_admits_requests_unchecked(void **state)
{
	struct t *t = *state;
	struct conn a, b;

	request_service(t, 0, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	connect_ok(t, &b);
	stale_heartbeat(t);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	future_heartbeat(t);
	assert_int_equal(request(t, &b, 100, NULL), XDP_PASS);
	assert_int_equal(stats(t, CLS_DEFAULT).fail_open, 2);
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	respond(t, &a, 10);
	respond(t, &b, 10);
	assert_inflight(t, 0, CLS_DEFAULT, 0);

	no_agent(t);
	assert_int_equal(request(t, &a, 100, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).fail_open, 2);
}

static void max_connections_caps_connections_in_request_mode(void **state)
{
	struct t *t = *state;
	struct conn c[4];
	int i;

	request_service(t, 0, LS_REQ_DEFER, 0);
	t->pol.max_connections = 2;
	write_policy(t);
	for (i = 0; i < 3; i++) {
		conn_n(t, i, &c[i]);
		assert_int_equal(send_syn(t, &c[i], NULL), XDP_PASS);
		send_synack(t, &c[i]);
	}
	assert_int_equal(send_ack(t, &c[0], 0, NULL), XDP_PASS);
	assert_int_equal(send_ack(t, &c[1], 0, NULL), XDP_PASS);
	assert_int_equal(send_ack(t, &c[2], 0, NULL), XDP_DROP);
	conn_n(t, 3, &c[3]);
	assert_int_equal(send_syn(t, &c[3], NULL), XDP_DROP);
	assert_conns(t, 2);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 2);
}

/* The ACK that completes the handshake carries a request the limit has no room for. */
static void handshake_ack_carrying_a_request_over_the_limit_is_deferred(void **state)
{
	struct t *t = *state;
	struct ls_flow f;
	struct conn a, b;
	__u32 seq;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	conn_n(t, 1, &b);
	assert_int_equal(send_syn(t, &b, NULL), XDP_PASS);
	send_synack(t, &b);
	seq = b.cli_seq;
	assert_int_equal(send_ack(t, &b, 100, NULL), XDP_DROP);
	f = flow_of(t, &b);
	assert_int_equal(f.state, LS_FLOW_DEFERRED);
	assert_int_equal(f.defer_end, seq + 100);
	assert_conns(t, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).deferred, 1);

	respond(t, &a, 10);
	assert_int_equal(cli_data_at(t, &b, seq, 100, NULL), XDP_PASS);
	assert_int_equal(flow_of(t, &b).state, LS_FLOW_REQUEST);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

static void handshake_ack_carrying_a_request_over_the_limit_is_aborted(void **state)
{
	struct t *t = *state;
	struct ls_flow_key key, bkey;
	struct pkt_spec seg;
	struct conn a, b;
	struct dp_run r;

	request_service(t, 1, LS_REQ_ABORT, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(request(t, &a, 100, NULL), XDP_PASS);
	conn_n(t, 1, &b);
	assert_int_equal(send_syn(t, &b, NULL), XDP_PASS);
	send_synack(t, &b);
	cli_seg(&b, PKT_PSH | PKT_ACK, 100, &seg);
	assert_int_equal(xdp(t, &seg, &r), XDP_TX);
	assert_rst_answers(&seg, &r);
	assert_int_equal(flow_of(t, &b).state, LS_FLOW_ABORTED);
	assert_conns(t, 2);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).aborted, 1);
	assert_int_equal(dp_aborts(&t->dp, &key, 1), 1);
	conn_key(&b, &bkey);
	assert_memory_equal(&key, &bkey, sizeof(key));
	srv_send(t, &b, PKT_RST | PKT_ACK, 0);
	assert_false(tracked(t, &b, NULL));
	assert_conns(t, 1);
}

/*
 * A run with everything at once: eight connections, L = 3; each sends a
 * request, the shed ones retransmit until admitted, every request is
 * answered, every connection closed by the server. Each count is exact and
 * nothing stays in flight.
 */
static void exact_counts_after_deferred_requests_are_all_served(void **state)
{
	enum { N = 8, L = 3 };
	struct t *t = *state;
	struct ls_class_stats st;
	struct conn c[N];
	__u32 seq[N];
	int waiting[N], answered[N], i, left = N, deferred = 0, round;

	request_service(t, L, LS_REQ_DEFER, 0);
	for (i = 0; i < N; i++) {
		conn_n(t, i, &c[i]);
		connect_ok(t, &c[i]);
		seq[i] = c[i].cli_seq;
		answered[i] = 0;
		waiting[i] = request(t, &c[i], 100, NULL) == XDP_DROP;
		deferred += waiting[i];
	}
	assert_int_equal(deferred, N - L);
	for (round = 0; left && round < N; round++) {
		int admitted = 0;

		for (i = 0; i < N; i++)
			if (!waiting[i] && !answered[i]) {
				respond(t, &c[i], 200);
				answered[i] = 1;
			}
		assert_inflight(t, 0, CLS_DEFAULT, 0);
		for (i = 0; i < N; i++) {
			if (!waiting[i])
				continue;
			if (cli_data_at(t, &c[i], seq[i], 100, NULL) == XDP_PASS) {
				waiting[i] = 0;
				admitted++;
			} else {
				deferred++;
			}
		}
		assert_true(admitted <= L);
		assert_inflight(t, admitted, CLS_DEFAULT, admitted);
		left = 0;
		for (i = 0; i < N; i++)
			left += waiting[i];
	}
	assert_int_equal(left, 0);
	for (i = 0; i < N; i++) {
		if (!answered[i])
			respond(t, &c[i], 200);
		srv_send(t, &c[i], PKT_FIN | PKT_ACK, 0);
	}

	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.handshakes, N);
	assert_int_equal(st.admitted, N);
	assert_int_equal(st.requests, N);
	assert_int_equal(st.deferred, deferred);
	assert_int_equal(deferred, (N - L) + (N - 2 * L));
	assert_int_equal(st.ended_fin, N);
	assert_int_equal(latency_count(t, CLS_DEFAULT), N);
	assert_int_equal(st.aborted + st.stalled + st.pipelined + st.server_first, 0);
	assert_int_equal(st.untracked + st.fail_open + st.would_shed + st.untrusted, 0);
}

/* Under admit = connections a request is measured, never decided nor counted. */
static void request_under_admit_connections_is_measured_not_counted(void **state)
{
	struct t *t = *state;
	struct ls_flow f;
	struct conn c;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	f = flow_of(t, &c);
	assert_false(f.flags & LS_FLOW_REQUESTS);
	assert_int_equal(f.state, LS_FLOW_REQUEST);
	assert_true(f.req & LS_SLOT_PRESENT);
	assert_false(f.req & LS_SLOT_COUNTED);
	assert_inflight(t, 1, CLS_DEFAULT, 1); /* the connection's slot, nothing more */
	respond(t, &c, 10);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 1);
	assert_int_equal(latency_count(t, CLS_DEFAULT), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ALL_VARIANTS(request_under_the_limit_is_admitted_until_its_response),
		TEST(idle_connections_hold_no_request_slot),
		TEST_ALL_VARIANTS(request_over_the_limit_is_deferred),
		TEST_ALL_VARIANTS(deferred_request_is_admitted_on_its_retransmission),
		TEST(deferred_request_is_deferred_again_while_the_limit_is_full),
		TEST_V(later_segments_of_a_deferred_request_are_dropped, V4),
		TEST_V(later_segments_of_a_deferred_request_are_dropped, V6_VLAN),
		TEST_ALL_VARIANTS(request_over_the_limit_is_aborted_with_a_rst),
		TEST(aborts_the_agent_cannot_read_are_counted_lost),
		TEST(requests_of_a_class_under_its_guarantee_are_admitted_at_the_limit),
		TEST(retransmission_of_acknowledged_bytes_starts_no_request),
		TEST(more_of_the_outstanding_request_passes_without_a_decision),
		TEST(request_before_the_last_answer_was_acknowledged_is_pipelined),
		TEST(shadow_mode_admits_a_request_over_the_limit),
		TEST(failing_open_admits_requests_unchecked),
		TEST(max_connections_caps_connections_in_request_mode),
		TEST_V(handshake_ack_carrying_a_request_over_the_limit_is_deferred, V4),
		TEST_V(handshake_ack_carrying_a_request_over_the_limit_is_deferred, V6_QINQ),
		TEST_V(handshake_ack_carrying_a_request_over_the_limit_is_aborted, V4_VLAN),
		TEST_V(handshake_ack_carrying_a_request_over_the_limit_is_aborted, V6),
		TEST_V(exact_counts_after_deferred_requests_are_all_served, V4),
		TEST_V(exact_counts_after_deferred_requests_are_all_served, V6_QINQ),
		TEST(request_under_admit_connections_is_measured_not_counted),
	};

	return DP_TESTS_MAIN(tests);
}
