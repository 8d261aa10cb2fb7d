// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What keeps loadshed from becoming an outage (issue 9): shadow mode
 * decides and counts but admits; a stale agent heartbeat, or one from the
 * future, makes the dataplane fail open (admitted unchecked and counted)
 * while a fresh one or a zero delay enforces; a full flow table sheds a
 * new connection (passes it failing open or in shadow mode) and gives the
 * slot it took back, so nothing leaks. Needs root.
 */
#include "lib/fixture.h"

/* ---- shadow mode ------------------------------------------------------------ */

static void shadow_mode_admits_a_handshake_over_the_limit_and_counts_would_shed(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec ack;
	struct frame f;
	struct conn a, b;

	one_class_service(t, 1, LS_ACT_RESET, LS_SVC_SHADOW);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	connect_ok(t, &a);
	assert_int_equal(send_syn(t, &b, NULL), XDP_PASS);
	send_synack(t, &b);
	cli_seg(&b, PKT_ACK, 0, &ack);
	build(&ack, &f);
	xdp_passes_untouched(t, &f);

	assert_true(tracked(t, &b, NULL));
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_conns(t, 2);
	assert_int_equal(flows(t), 2);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.would_shed, 1);
	assert_int_equal(st.admitted, 2);
	assert_int_equal(st.shed_drop + st.shed_reset, 0);

	srv_send(t, &a, PKT_FIN | PKT_ACK, 0);
	srv_send(t, &b, PKT_FIN | PKT_ACK, 0);
	assert_nothing_in_flight(t);
}

/* ---- fail-open -------------------------------------------------------------- */

/* At limit 0 with a heartbeat that says no agent keeps the limits true. */
static void fails_open(struct t *t)
{
	struct ls_class_stats st;
	struct conn c;

	conn_n(t, 0, &c);
	assert_int_equal(handshake(t, &c, NULL), XDP_PASS);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.fail_open, 1);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.shed_drop, 0);
	/* Still tracked, so its end still balances the count. */
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_true(tracked(t, &c, NULL));
	srv_send(t, &c, PKT_FIN | PKT_ACK, 0);
	assert_nothing_in_flight(t);
}

static void stale_heartbeat_fails_open_and_counts_fail_open(void **state)
{
	struct t *t = *state;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	stale_heartbeat(t);
	fails_open(t);
}

/* The heartbeat is the dataplane's own clock: one ahead of it is no fresher than a stale one. */
static void heartbeat_from_the_future_fails_open(void **state)
{
	struct t *t = *state;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	future_heartbeat(t);
	fails_open(t);
}

static void fresh_heartbeat_enforces_the_limit(void **state)
{
	struct t *t = *state;
	struct conn a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	assert_int_equal(dp_state(&t->dp, 0, dp_now_ns(), 10 * NS_PER_S), 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	assert_int_equal(send_syn(t, &b, NULL), XDP_PASS);
	send_synack(t, &b);
	connect_ok(t, &a);
	assert_int_equal(send_ack(t, &b, 0, NULL), XDP_DROP);
	conn_n(t, 2, &b);
	assert_int_equal(send_syn(t, &b, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).fail_open, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 2);
}

static void zero_failopen_delay_enforces_regardless_of_heartbeat(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	assert_int_equal(dp_state(&t->dp, 0, 1, 0), 0);
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).fail_open, 0);
}

/* ---- a full flow table ------------------------------------------------------ */

/*
 * A new connection the full table cannot track is shed by its class's
 * action (untracked, none of its work could be counted or decided), and
 * the slot it took is given back: nothing leaks.
 */
static void full_flow_table_sheds_a_new_connection_without_leaking(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct conn c[6];
	int i;

	one_class_service(t, 100, LS_ACT_DROP, 0);
	for (i = 0; i < 6; i++) {
		conn_n(t, i, &c[i]);
		assert_int_equal(handshake(t, &c[i], NULL), i < 4 ? XDP_PASS : XDP_DROP);
	}
	assert_int_equal(flows(t), 4);
	assert_inflight(t, 4, CLS_DEFAULT, 4);
	assert_conns(t, 4);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.handshakes, 6);
	assert_int_equal(st.admitted, 4);
	assert_int_equal(st.untracked, 2);
	assert_int_equal(st.shed_drop, 2);

	for (i = 0; i < 4; i++) {
		assert_int_equal(request(t, &c[i], 10, NULL), XDP_PASS);
		srv_send(t, &c[i], PKT_FIN | PKT_ACK, 0);
	}
	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, 4);
}

/* Failing open, or in shadow mode, the connection the full table cannot track passes. */
static void full_table_passes(struct t *t, __u32 flags, int stale)
{
	struct conn c[5];
	int i;

	one_class_service(t, 100, LS_ACT_RESET, flags);
	if (stale)
		stale_heartbeat(t);
	for (i = 0; i < 5; i++) {
		conn_n(t, i, &c[i]);
		assert_int_equal(handshake(t, &c[i], NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 4);
	assert_int_equal(stats(t, CLS_DEFAULT).untracked, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_reset, 0);
	for (i = 0; i < 4; i++)
		srv_send(t, &c[i], PKT_RST | PKT_ACK, 0);
	assert_nothing_in_flight(t);
}

static void full_flow_table_passes_untracked_when_failing_open(void **state)
{
	full_table_passes(*state, 0, 1);
}

static void full_flow_table_passes_untracked_in_shadow_mode(void **state)
{
	full_table_passes(*state, LS_SVC_SHADOW, 0);
}

static void full_flow_table_under_admit_requests_gives_the_connection_back(void **state)
{
	struct t *t = *state;
	struct conn c[5];
	int i;

	request_service(t, 100, LS_REQ_DEFER, 0);
	for (i = 0; i < 5; i++) {
		conn_n(t, i, &c[i]);
		assert_int_equal(handshake(t, &c[i], NULL), i < 4 ? XDP_PASS : XDP_DROP);
	}
	assert_conns(t, 4);
	assert_int_equal(stats(t, CLS_DEFAULT).untracked, 1);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	for (i = 0; i < 4; i++)
		srv_send(t, &c[i], PKT_RST | PKT_ACK, 0);
	assert_nothing_in_flight(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(shadow_mode_admits_a_handshake_over_the_limit_and_counts_would_shed),
		TEST(stale_heartbeat_fails_open_and_counts_fail_open),
		TEST_V(heartbeat_from_the_future_fails_open, V4),
		TEST_V(heartbeat_from_the_future_fails_open, V6_VLAN),
		TEST(fresh_heartbeat_enforces_the_limit),
		TEST(zero_failopen_delay_enforces_regardless_of_heartbeat),
		{"full_flow_table_sheds_a_new_connection_without_leaking",
		 full_flow_table_sheds_a_new_connection_without_leaking, setup_small_table,
		 teardown, NULL},
		{"full_flow_table_passes_untracked_when_failing_open",
		 full_flow_table_passes_untracked_when_failing_open, setup_small_table, teardown,
		 NULL},
		{"full_flow_table_passes_untracked_in_shadow_mode",
		 full_flow_table_passes_untracked_in_shadow_mode, setup_small_table, teardown,
		 NULL},
		{"full_flow_table_under_admit_requests_gives_the_connection_back",
		 full_flow_table_under_admit_requests_gives_the_connection_back, setup_small_table,
		 teardown, NULL},
	};

	return DP_TESTS_MAIN(tests);
}
