// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Admission under admit = connections (issue 9): a connection is admitted
 * when its handshake completes, at the ACK that acknowledges the server's
 * ISN, by the partition rule checked and counted in one step under the
 * service's lock: admit if total in-flight < L, else if in-flight(c) < its
 * guarantee, and the service holds fewer than max_connections; else shed.
 * The SYNs before it decide nothing that counts, so a burst of handshakes
 * admits exactly L and no more. Needs root.
 */
#include <stdlib.h>
#include "lib/fixture.h"

static void handshake_under_the_limit_is_admitted_and_tracked(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct ls_handshake h;
	struct ls_flow f;
	struct conn c;
	__u64 before = dp_now_ns(), after;

	one_class_service(t, 2, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	assert_int_equal(handshake(t, &c, NULL), XDP_PASS);
	after = dp_now_ns();

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_conns(t, 1);
	assert_int_equal(flows(t), 1);
	assert_true(tracked(t, &c, &f));
	assert_int_equal(f.svc, SVC);
	assert_int_equal(f.cls, CLS_DEFAULT);
	assert_int_equal(f.state, LS_FLOW_IDLE);
	assert_int_equal(f.flags, 0);
	assert_int_equal(f.req, 0);
	/* The slot word: present, counted, of this service and class, started now. */
	assert_true(f.slot & LS_SLOT_PRESENT);
	assert_true(f.slot & LS_SLOT_COUNTED);
	assert_int_equal(ls_slot_svc(f.slot), SVC);
	assert_int_equal(ls_slot_cls(f.slot), CLS_DEFAULT);
	assert_true(ls_slot_age_us(f.slot, after) <= (after - before) / 1000 + 1);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(ls_hs_state(h.word), 1);

	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.packets, 2); /* the SYN and the ACK */
	assert_int_equal(st.syns, 1);
	assert_int_equal(st.handshakes, 1);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.shed_drop + st.shed_reset + st.would_shed + st.untracked, 0);
	assert_int_equal(st.fail_open + st.adopted + st.requests, 0);
}

static void handshakes_fill_the_limit_and_the_next_is_shed(void **state)
{
	struct t *t = *state;
	struct conn c[4];
	int i;

	one_class_service(t, 3, LS_ACT_DROP, 0);
	for (i = 0; i < 4; i++) {
		conn_n(t, i, &c[i]);
		assert_int_equal(send_syn(t, &c[i], NULL), XDP_PASS);
		send_synack(t, &c[i]);
	}
	for (i = 0; i < 3; i++)
		assert_int_equal(send_ack(t, &c[i], 0, NULL), XDP_PASS);
	assert_int_equal(send_ack(t, &c[3], 0, NULL), XDP_DROP);
	assert_inflight(t, 3, CLS_DEFAULT, 3);
	assert_conns(t, 3);
	assert_int_equal(flows(t), 3);
	assert_false(tracked(t, &c[3], NULL));
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 3);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 1);
}

/*
 * Every SYN of a burst passes (nothing is admitted yet, and a SYN counts
 * nothing); the ACKs then admit exactly L and shed the rest. Ending the L
 * flows frees their slots: the shed handshakes, decided again on their
 * next ACK, fill L once more, exactly.
 */
static void burst(void **state, __u8 action)
{
	enum { L = 16, N = 10 * L };
	struct t *t = *state;
	__u32 shed_verdict = action == LS_ACT_RESET ? XDP_TX : XDP_DROP;
	struct ls_class_stats st;
	struct conn *c = calloc(N, sizeof(*c));
	int i, admitted = 0, shed = 0;

	assert_non_null(c);
	one_class_service(t, L, action, 0);
	for (i = 0; i < N; i++) {
		conn_n(t, i, &c[i]);
		assert_int_equal(send_syn(t, &c[i], NULL), XDP_PASS);
		send_synack(t, &c[i]);
	}
	assert_nothing_in_flight(t);
	for (i = 0; i < N; i++) {
		__u32 v = send_ack(t, &c[i], 0, NULL);

		if (v == XDP_PASS)
			admitted++;
		else if (v == shed_verdict)
			shed++;
		else
			fail_because("ACK %d: verdict %u", i, v);
	}
	assert_int_equal(admitted, L);
	assert_int_equal(shed, N - L);
	assert_inflight(t, L, CLS_DEFAULT, L);
	assert_conns(t, L);
	assert_int_equal(flows(t), L);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.syns, N);
	assert_int_equal(st.handshakes, N);
	assert_int_equal(st.admitted, L);
	assert_int_equal(action == LS_ACT_RESET ? st.shed_reset : st.shed_drop, N - L);
	if (action == LS_ACT_RESET) {
		free(c);
		return;
	}

	for (i = 0; i < L; i++)
		srv_send(t, &c[i], PKT_FIN | PKT_ACK, 0);
	assert_nothing_in_flight(t);
	admitted = 0;
	for (i = L; i < N; i++) {
		struct pkt_spec ack;

		cli_seg(&c[i], PKT_ACK, 0, &ack);
		admitted += xdp(t, &ack, NULL) == XDP_PASS;
	}
	assert_int_equal(admitted, L);
	assert_inflight(t, L, CLS_DEFAULT, L);
	assert_int_equal(flows(t), L);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 2 * L);
	free(c);
}

static void burst_of_ten_times_l_handshakes_admits_exactly_l(void **state)
{
	burst(state, LS_ACT_DROP);
}

static void burst_of_ten_times_l_handshakes_resets_all_but_l(void **state)
{
	burst(state, LS_ACT_RESET);
}

/* ---- the partition rule ---------------------------------------------------- */

static void class_under_its_guarantee_is_admitted_at_the_limit(void **state)
{
	struct t *t = *state;
	struct conn c;
	int i;

	dscp_classes_service(t, 4, 2, 1);
	for (i = 0; i < 4; i++) {
		conn_dscp(t, i, DSCP_AF11, &c);
		connect_ok(t, &c);
	}
	assert_inflight(t, 4, CLS_LO, 4);

	/* total == L, but hi holds fewer than its guarantee of 2 */
	for (i = 10; i < 12; i++) {
		conn_dscp(t, i, DSCP_EF, &c);
		assert_int_equal(handshake(t, &c, NULL), XDP_PASS);
	}
	assert_inflight(t, 6, CLS_HI, 2);
	assert_int_equal(flows(t), 6);
	assert_int_equal(stats(t, CLS_HI).admitted, 2);
	assert_int_equal(stats(t, CLS_HI).shed_drop, 0);
}

/* Handshakes whose SYNs passed while there was room are decided at their ACK. */
static void class_over_both_bounds_is_shed_at_the_ack(void **state)
{
	struct t *t = *state;
	struct conn lo[5], hi[3];
	int i;

	dscp_classes_service(t, 4, 2, 1);
	for (i = 0; i < 5; i++) {
		conn_dscp(t, i, DSCP_AF11, &lo[i]);
		assert_int_equal(send_syn(t, &lo[i], NULL), XDP_PASS);
		send_synack(t, &lo[i]);
	}
	for (i = 0; i < 3; i++) {
		conn_dscp(t, 10 + i, DSCP_EF, &hi[i]);
		assert_int_equal(send_syn(t, &hi[i], NULL), XDP_PASS);
		send_synack(t, &hi[i]);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(send_ack(t, &lo[i], 0, NULL), XDP_PASS);
	assert_int_equal(send_ack(t, &hi[0], 0, NULL), XDP_PASS);
	assert_int_equal(send_ack(t, &hi[1], 0, NULL), XDP_PASS);
	/* hi at its guarantee, lo (4) far over its guarantee of 1, total over L */
	assert_int_equal(send_ack(t, &hi[2], 0, NULL), XDP_DROP);
	assert_int_equal(send_ack(t, &lo[4], 0, NULL), XDP_DROP);

	assert_inflight(t, 6, CLS_HI, 2);
	assert_int_equal(inflight(t).cls[CLS_LO], 4);
	assert_int_equal(flows(t), 6);
	assert_int_equal(stats(t, CLS_HI).shed_drop, 1);
	assert_int_equal(stats(t, CLS_LO).shed_drop, 1);
}

static void default_class_only_gets_spare_capacity(void **state)
{
	struct t *t = *state;
	struct conn d[4], h;
	int i;

	dscp_classes_service(t, 2, 1, 0);
	for (i = 0; i < 3; i++) {
		conn_dscp(t, i, 0, &d[i]);
		assert_int_equal(send_syn(t, &d[i], NULL), XDP_PASS);
		send_synack(t, &d[i]);
	}
	assert_int_equal(send_ack(t, &d[0], 0, NULL), XDP_PASS);
	assert_int_equal(send_ack(t, &d[1], 0, NULL), XDP_PASS);
	assert_int_equal(send_ack(t, &d[2], 0, NULL), XDP_DROP);

	/* hi still gets its guarantee past the limit */
	conn_dscp(t, 3, DSCP_EF, &h);
	connect_ok(t, &h);
	assert_inflight(t, 3, CLS_DEFAULT, 2);

	/* Two flows end: one slot is spare again, and default may take it. */
	srv_send(t, &d[0], PKT_FIN | PKT_ACK, 0);
	srv_send(t, &h, PKT_FIN | PKT_ACK, 0);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(send_ack(t, &d[2], 0, NULL), XDP_PASS);
	conn_dscp(t, 4, 0, &d[3]);
	assert_int_equal(send_syn(t, &d[3], NULL), XDP_DROP);
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 2);
}

static void default_class_is_shed_at_the_limit_even_with_no_flows(void **state)
{
	struct t *t = *state;
	struct conn c, d;
	int i;

	dscp_classes_service(t, 2, 2, 0);
	conn_dscp(t, 9, 0, &d);
	assert_int_equal(send_syn(t, &d, NULL), XDP_PASS);
	send_synack(t, &d);
	for (i = 0; i < 2; i++) {
		conn_dscp(t, i, DSCP_EF, &c);
		connect_ok(t, &c);
	}
	assert_int_equal(send_ack(t, &d, 0, NULL), XDP_DROP);
	assert_inflight(t, 2, CLS_DEFAULT, 0);
}

static void bypass_class_is_never_shed_nor_counted(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct conn c;
	int i;

	dscp_classes_service(t, 0, 0, 0);
	for (i = 0; i < 3; i++) {
		conn_dscp(t, i, DSCP_CS6, &c);
		assert_int_equal(handshake(t, &c, NULL), XDP_PASS);
		assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
		srv_send(t, &c, PKT_FIN | PKT_ACK, 0);
	}
	/* The same limit sheds the default class. */
	conn_dscp(t, 9, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_DROP);

	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
	st = stats(t, CLS_BYPASS);
	assert_int_equal(st.syns, 3);
	assert_int_equal(st.handshakes, 3);
	assert_int_equal(st.admitted, 0);
	assert_int_equal(st.shed_drop + st.shed_reset + st.would_shed, 0);
	assert_int_equal(st.ended_fin + st.ended_rst, 0);
}

/* max_connections caps tracked connections at the ACK too, whatever L says. */
static void max_connections_caps_connections_at_the_ack(void **state)
{
	struct t *t = *state;
	struct conn c[3];
	int i;

	one_class_service(t, 100, LS_ACT_DROP, 0);
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
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_conns(t, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 1);

	/* One ends: the cap has room again for the shed one's next ACK. */
	srv_send(t, &c[0], PKT_RST | PKT_ACK, 0);
	assert_int_equal(send_ack(t, &c[2], 0, NULL), XDP_PASS);
	assert_conns(t, 2);
}

static void inactive_service_is_not_enforced(void **state)
{
	struct t *t = *state;
	struct conn c;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	t->pol.flags &= ~LS_SVC_ACTIVE;
	write_policy(t);
	conn_n(t, 0, &c);
	assert_int_equal(handshake(t, &c, NULL), XDP_PASS);
	assert_int_equal(request(t, &c, 10, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
	assert_no_class_counted(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ALL_VARIANTS(handshake_under_the_limit_is_admitted_and_tracked),
		TEST(handshakes_fill_the_limit_and_the_next_is_shed),
		TEST_V(burst_of_ten_times_l_handshakes_admits_exactly_l, V4),
		TEST_V(burst_of_ten_times_l_handshakes_admits_exactly_l, V6_VLAN),
		TEST_V(burst_of_ten_times_l_handshakes_resets_all_but_l, V4_QINQ),
		TEST_V(burst_of_ten_times_l_handshakes_resets_all_but_l, V6),

		TEST(class_under_its_guarantee_is_admitted_at_the_limit),
		TEST(class_over_both_bounds_is_shed_at_the_ack),
		TEST(default_class_only_gets_spare_capacity),
		TEST(default_class_is_shed_at_the_limit_even_with_no_flows),
		TEST(bypass_class_is_never_shed_nor_counted),
		TEST(max_connections_caps_connections_at_the_ack),
		TEST(inactive_service_is_not_enforced),
	};

	return DP_TESTS_MAIN(tests);
}
