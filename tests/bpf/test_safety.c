// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What keeps loadshed from becoming an outage (DESIGN.md sections 3 and 4):
 * shadow mode decides and counts but admits; a stale agent heartbeat makes
 * the dataplane fail open (and counts it) while a fresh one or a zero
 * timeout enforces; a full flow table admits untracked without leaking an
 * in-flight count. Needs root.
 */
#include "lib/fixture.h"

/* ---- shadow mode and fail-open ------------------------------------------ */

static void shadow_mode_admits_and_counts_would_shed(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec a, b;
	struct frame f;

	one_class_service(t, 1, LS_ACT_RESET, LS_SVC_SHADOW);
	syn_n(t, 0, &a);
	syn_n(t, 1, &b);
	admit(t, &a);
	build(&b, &f);
	xdp_passes_untouched(t, &f);

	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_int_equal(flows(t), 2);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.would_shed, 1);
	assert_int_equal(st.admitted, 2);
	assert_int_equal(st.shed_drop + st.shed_reset, 0);
}

static void stale_heartbeat_fails_open_and_counts_fail_open(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn, fin;
	__u64 now = dp_now_ns();

	one_class_service(t, 0, LS_ACT_DROP, 0);
	assert_int_equal(
		dp_state(&t->dp, 0, now > 10000000000ull ? now - 10000000000ull : 0, 1000000000ull),
		0);
	syn_n(t, 0, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.fail_open, 1);
	assert_int_equal(st.shed_drop, 0);
	/* Still tracked, so its end still balances the count. */
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_true(tracked(t, &syn, NULL));
	client_seg(&syn, PKT_FIN | PKT_ACK, 0, &fin);
	assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
}

static void fresh_heartbeat_enforces_the_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	assert_int_equal(dp_state(&t->dp, 0, dp_now_ns(), 10000000000ull), 0);
	syn_n(t, 0, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).fail_open, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 1);
}

static void zero_failopen_timeout_enforces_regardless_of_heartbeat(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	assert_int_equal(dp_state(&t->dp, 0, 1, 0), 0);
	syn_n(t, 0, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).fail_open, 0);
}

/* ---- a full flow table -------------------------------------------------- */

static void full_flow_table_admits_untracked_without_leaking(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn[6], fin;
	int i;

	one_class_service(t, 100, LS_ACT_DROP, 0);
	for (i = 0; i < 6; i++) {
		syn_n(t, i, &syn[i]);
		assert_int_equal(xdp(t, &syn[i], NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 4);
	assert_inflight(t, 4, CLS_DEFAULT, 4);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.admitted, 6);
	assert_int_equal(st.untracked, 2);

	for (i = 0; i < 6; i++) {
		client_seg(&syn[i], PKT_FIN | PKT_ACK, 0, &fin);
		assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	}
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(flows(t), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).ended_fin, 4);
	assert_int_equal(iface(t).untracked_packets, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(shadow_mode_admits_and_counts_would_shed),
		TEST(stale_heartbeat_fails_open_and_counts_fail_open),
		TEST(fresh_heartbeat_enforces_the_limit),
		TEST(zero_failopen_timeout_enforces_regardless_of_heartbeat),
		{"full_flow_table_admits_untracked_without_leaking",
		 full_flow_table_admits_untracked_without_leaking, setup_small_table, teardown,
		 NULL},
	};

	return DP_TESTS_MAIN(tests);
}
