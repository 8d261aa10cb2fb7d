// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's tick (issue 9): a SYSCALL program the agent runs each round
 * through BPF_PROG_RUN, here with a struct ls_tick as its context. With
 * beat it stamps the heartbeat with the dataplane's own clock (and the
 * fail-open delay), which ends a fail-open. With sweep it walks the flow
 * table in the kernel: flows idle past idle_timeout end (ended_idle),
 * suspect flows silent past suspect_ns are handed to the agent (the
 * ring ls_suspects), which ends them (ended_rst) or clears them by what
 * the kernel says, requests
 * outstanding past stall_timeout give their slot back (stalled), entries
 * whose slot was taken are deleted; each exactly once, so in-flight
 * returns to exactly 0. Timeouts are set around sleeps with wide margins
 * (the flow's clock is the coarse one). Needs root.
 */
#include <string.h>
#include "lib/fixture.h"

#define IDLE_NEVER (3600 * NS_PER_S)
#define QUIET	   (60 * NS_PER_MS) /* slept before a sweep */
#define SHORT	   (20 * NS_PER_MS) /* a timeout QUIET is past */

static struct ls_state state_now(struct t *t)
{
	struct ls_state s;

	assert_int_equal(dp_state_get(&t->dp, &s), 0);
	return s;
}

static void beat_stamps_the_heartbeat_with_the_dataplane_clock(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct ls_state s;
	__u64 before, after;

	assert_int_equal(dp_state(&t->dp, 1, 0, 0), 0);
	memset(&k, 0, sizeof(k));
	k.beat = 1;
	k.failopen_after_ns = 7 * NS_PER_S;
	before = dp_now_ns();
	assert_int_equal(dp_tick(&t->dp, &k), 0);
	after = dp_now_ns();
	assert_true(k.now_ns >= before && k.now_ns <= after);
	s = state_now(t);
	assert_int_equal(s.heartbeat_ns, k.now_ns);
	assert_int_equal(s.failopen_after_ns, 7 * NS_PER_S);
	assert_int_equal(s.active_gen, 1);
	assert_int_equal(k.flows + k.ended + k.stalled, 0);
}

static void tick_without_beat_writes_no_state(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct ls_state s;

	assert_int_equal(dp_state(&t->dp, 0, 12345, 6 * NS_PER_S), 0);
	memset(&k, 0, sizeof(k));
	k.failopen_after_ns = NS_PER_S;
	assert_int_equal(dp_tick(&t->dp, &k), 0);
	assert_true(k.now_ns > 0);
	s = state_now(t);
	assert_int_equal(s.heartbeat_ns, 12345);
	assert_int_equal(s.failopen_after_ns, 6 * NS_PER_S);
}

/* A stale heartbeat, or one from the future, fails open; the agent's next beat ends that. */
static void beat_ends_a_fail_open(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn c;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	memset(&k, 0, sizeof(k));
	k.beat = 1;
	k.failopen_after_ns = 10 * NS_PER_S;

	stale_heartbeat(t);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	assert_int_equal(dp_tick(&t->dp, &k), 0);
	assert_int_equal(send_syn(t, &c, NULL), XDP_DROP);

	future_heartbeat(t);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	assert_int_equal(dp_tick(&t->dp, &k), 0);
	assert_int_equal(send_syn(t, &c, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 2);
}

/* Three flows go quiet; two are heard of again, from either side; the third ends. */
static void sweep_ends_flows_idle_past_the_timeout(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn c[3];
	int i;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	for (i = 0; i < 3; i++) {
		conn_n(t, i, &c[i]);
		connect_ok(t, &c[i]);
	}
	sleep_ns(QUIET);
	assert_int_equal(cli_send(t, &c[0], PKT_ACK, 0, NULL), XDP_PASS);
	srv_ack(t, &c[1]);
	k = sweep(t, QUIET - SHORT, 0, IDLE_NEVER);
	assert_int_equal(k.flows, 3);
	assert_int_equal(k.ended, 1);
	assert_int_equal(k.stalled, 0);
	assert_true(tracked(t, &c[0], NULL));
	assert_true(tracked(t, &c[1], NULL));
	assert_false(tracked(t, &c[2], NULL));
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_conns(t, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_idle, 1);

	/* Swept again at once: nothing more ends. */
	k = sweep(t, QUIET - SHORT, 0, IDLE_NEVER);
	assert_int_equal(k.flows, 2);
	assert_int_equal(k.ended, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_idle, 1);
}

static void sweep_keeps_flows_idle_less_than_the_timeout(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn c;
	int i;

	one_class_service(t, 100, LS_ACT_DROP, 0);
	for (i = 0; i < 50; i++) {
		conn_n(t, i, &c);
		connect_ok(t, &c);
	}
	sleep_ns(SHORT);
	k = sweep(t, 60 * NS_PER_S, NS_PER_MS, IDLE_NEVER);
	assert_int_equal(k.flows, 50);
	assert_int_equal(k.ended, 0);
	assert_int_equal(flows(t), 50);
	assert_inflight(t, 50, CLS_DEFAULT, 50);
}

/*
 * A suspect silent past the suspect time is handed to the agent, once, and
 * stays until the kernel has been asked: gone, the flow ends (ended_rst);
 * alive, it is no suspect any more.
 */
static void sweep_hands_a_suspect_silent_past_the_suspect_time_to_the_agent(void **state)
{
	struct t *t = *state;
	struct ls_flow_key keys[4], ka, kb;
	struct ls_tick k;
	struct conn a, b, c;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	conn_n(t, 2, &c);
	connect_ok(t, &a);
	connect_ok(t, &b);
	connect_ok(t, &c);
	assert_int_equal(cli_rst_at(t, &a, a.cli_seq + 1000), XDP_PASS);
	assert_int_equal(cli_rst_at(t, &b, b.cli_seq + 1000), XDP_PASS);
	sleep_ns(QUIET);
	k = sweep(t, IDLE_NEVER, 0, QUIET - SHORT);
	assert_int_equal(k.ended, 0);
	assert_int_equal(dp_suspects(&t->dp, keys, 4), 2);
	conn_key(&a, &ka);
	conn_key(&b, &kb);
	assert_true(!memcmp(&keys[0], &ka, sizeof(ka)) || !memcmp(&keys[1], &ka, sizeof(ka)));
	assert_true(!memcmp(&keys[0], &kb, sizeof(kb)) || !memcmp(&keys[1], &kb, sizeof(kb)));
	assert_true(flow_of(t, &a).flags & LS_FLOW_SUSPECT_SENT);
	/* Handed over once. */
	sweep(t, IDLE_NEVER, 0, QUIET - SHORT);
	assert_int_equal(dp_suspects(&t->dp, keys, 4), 0);
	assert_inflight(t, 3, CLS_DEFAULT, 3);

	/* The kernel has no socket of a: its flow ends; b's lives: no suspect any more. */
	assert_int_equal(dp_tick_op(&t->dp, &ka, LS_TICK_END_SUSPECT), 1);
	assert_int_equal(dp_tick_op(&t->dp, &kb, LS_TICK_CLEAR_SUSPECT), 1);
	assert_false(tracked(t, &a, NULL));
	assert_true(tracked(t, &b, NULL));
	assert_false(flow_of(t, &b).flags & (LS_FLOW_RST_SUSPECT | LS_FLOW_SUSPECT_SENT));
	assert_true(tracked(t, &c, NULL)); /* as quiet, but not suspect */
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_rst, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_idle, 0);
	/* Again: nothing (a's flow is gone, b is no suspect). */
	assert_int_equal(dp_tick_op(&t->dp, &ka, LS_TICK_END_SUSPECT), 0);
	assert_int_equal(dp_tick_op(&t->dp, &kb, LS_TICK_END_SUSPECT), 0);
	assert_true(tracked(t, &b, NULL));
}

static void sweep_keeps_a_suspect_flow_within_the_suspect_time(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn a;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(cli_rst_at(t, &a, a.cli_seq + 1000), XDP_PASS);
	sleep_ns(SHORT);
	k = sweep(t, IDLE_NEVER, 0, 60 * NS_PER_S);
	assert_int_equal(k.ended, 0);
	assert_true(tracked(t, &a, NULL));
}

/* The server spoke after the untrusted RST: the flow is not suspect any more. */
static void sweep_keeps_a_flow_the_server_cleared_of_suspicion(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn a;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	connect_ok(t, &a);
	assert_int_equal(cli_rst_at(t, &a, a.cli_seq + 1000), XDP_PASS);
	srv_ack(t, &a);
	sleep_ns(QUIET);
	k = sweep(t, IDLE_NEVER, 0, QUIET - SHORT);
	assert_int_equal(k.ended, 0);
	assert_true(tracked(t, &a, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

/*
 * A client that sends half a request and stalls: its slot goes back, once;
 * the connection stays, and a late answer releases nothing again.
 */
static void sweep_releases_a_stalled_request_slot_once(void **state)
{
	struct t *t = *state;
	struct ls_latency_hist h;
	struct ls_tick k;
	struct ls_flow f;
	struct conn c, d;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &c);
	conn_n(t, 1, &d);
	connect_ok(t, &c);
	connect_ok(t, &d);
	assert_int_equal(request(t, &c, 50, NULL), XDP_PASS);
	assert_int_equal(request(t, &d, 50, NULL), XDP_DROP);
	sleep_ns(QUIET);
	k = sweep(t, IDLE_NEVER, QUIET - SHORT, IDLE_NEVER);
	assert_int_equal(k.stalled, 1);
	assert_int_equal(k.ended, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).stalled, 1);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_conns(t, 2);
	assert_true(tracked(t, &c, &f));
	assert_int_equal(f.req, 0);

	/* Swept again: nothing more to release. */
	k = sweep(t, IDLE_NEVER, QUIET - SHORT, IDLE_NEVER);
	assert_int_equal(k.stalled, 0);
	/* The late answer ends no request and gives back nothing. */
	respond(t, &c, 100);
	assert_int_equal(dp_latency(&t->dp, SVC, CLS_DEFAULT, &h), 0);
	assert_int_equal(h.count, 0);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	/* The freed slot admits the deferred request. */
	assert_int_equal(cli_data_at(t, &d, d.cli_seq - 50, 50, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

static void sweep_keeps_a_request_younger_than_the_stall_timeout(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn c;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 50, NULL), XDP_PASS);
	sleep_ns(SHORT);
	k = sweep(t, IDLE_NEVER, 60 * NS_PER_S, IDLE_NEVER);
	assert_int_equal(k.stalled, 0);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

static void zero_stall_timeout_releases_nothing(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn c;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 50, NULL), XDP_PASS);
	sleep_ns(SHORT);
	k = sweep(t, IDLE_NEVER, 0, IDLE_NEVER);
	assert_int_equal(k.stalled, 0);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).stalled, 0);
}

/* An idle flow with a request outstanding: both slots go back, once each. */
static void sweep_of_an_idle_flow_releases_its_request_and_connection(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn c;

	request_service(t, 1, LS_REQ_DEFER, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 50, NULL), XDP_PASS);
	sleep_ns(QUIET);
	k = sweep(t, QUIET - SHORT, QUIET - SHORT, IDLE_NEVER);
	assert_int_equal(k.ended, 1);
	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_idle, 1);
	respond(t, &c, 10);
	srv_send(t, &c, PKT_FIN | PKT_ACK, 0);
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, 0);
}

/*
 * An entry whose slot word a racing end already took (a preallocated entry
 * reused under a reader): nobody else deletes it, the sweep does, and
 * gives back nothing.
 */
static void sweep_deletes_an_entry_whose_slot_was_taken(void **state)
{
	struct t *t = *state;
	struct ls_flow_key key;
	struct ls_flow f;
	struct ls_tick k;
	struct conn c, orphan;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	conn_n(t, 1, &orphan);
	memset(&f, 0, sizeof(f));
	f.last_seen_ns = dp_now_ns();
	f.cls = CLS_DEFAULT;
	conn_key(&orphan, &key);
	assert_int_equal(dp_flow_put(&t->dp, &key, &f), 0);
	assert_int_equal(flows(t), 2);

	k = sweep(t, IDLE_NEVER, 0, IDLE_NEVER);
	assert_int_equal(k.flows, 2);
	assert_int_equal(k.ended, 0);
	assert_int_equal(flows(t), 1);
	assert_false(tracked(t, &orphan, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_idle + stats(t, CLS_DEFAULT).ended_rst, 0);
}

/* Swept from the ends: every count back to exactly zero. */
static void sweep_of_every_flow_leaves_nothing_in_flight(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn c;
	int i;

	dscp_classes_service(t, 200, 10, 10);
	for (i = 0; i < 90; i++) {
		conn_dscp(t, i, i % 3 == 0 ? DSCP_EF : i % 3 == 1 ? DSCP_AF11 : 0, &c);
		connect_ok(t, &c);
		if (i % 2)
			assert_int_equal(request(t, &c, 10, NULL), XDP_PASS);
	}
	sleep_ns(QUIET);
	k = sweep(t, QUIET - SHORT, QUIET - SHORT, IDLE_NEVER);
	assert_int_equal(k.flows, 90);
	assert_int_equal(k.ended, 90);
	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_HI).ended_idle, 30);
	assert_int_equal(stats(t, CLS_LO).ended_idle, 30);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_idle, 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(beat_stamps_the_heartbeat_with_the_dataplane_clock),
		TEST(tick_without_beat_writes_no_state),
		TEST(beat_ends_a_fail_open),
		TEST_V(sweep_ends_flows_idle_past_the_timeout, V4),
		TEST_V(sweep_ends_flows_idle_past_the_timeout, V6_VLAN),
		TEST(sweep_keeps_flows_idle_less_than_the_timeout),
		TEST(sweep_hands_a_suspect_silent_past_the_suspect_time_to_the_agent),
		TEST(sweep_keeps_a_suspect_flow_within_the_suspect_time),
		TEST(sweep_keeps_a_flow_the_server_cleared_of_suspicion),
		TEST_V(sweep_releases_a_stalled_request_slot_once, V4),
		TEST_V(sweep_releases_a_stalled_request_slot_once, V6_QINQ),
		TEST(sweep_keeps_a_request_younger_than_the_stall_timeout),
		TEST(zero_stall_timeout_releases_nothing),
		TEST(sweep_of_an_idle_flow_releases_its_request_and_connection),
		TEST(sweep_deletes_an_entry_whose_slot_was_taken),
		TEST(sweep_of_every_flow_leaves_nothing_in_flight),
	};

	return DP_TESTS_MAIN(tests);
}
