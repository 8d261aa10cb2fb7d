// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Admission (DESIGN.md section 3): which packets start a flow, the limit,
 * and the partition rule of guarantees under contention: admit if total
 * in-flight < L, else if in-flight(c) < max(1, ceil(L * s_c)), else shed.
 * A SYN retransmit of an admitted flow passes. Needs root.
 */
#include "lib/fixture.h"

static void syn_under_limit_is_admitted_and_tracked(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn;
	struct ls_flow f;
	struct frame fr;
	__u64 before = dp_now_ns();

	one_class_service(t, 2, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	build(&syn, &fr);
	xdp_passes_untouched(t, &fr);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_true(tracked(t, &syn, &f));
	assert_int_equal(f.svc, SVC);
	assert_int_equal(f.cls, CLS_DEFAULT);
	assert_int_equal(f.syn_seq, syn.seq);
	assert_int_equal(f.state, LS_FLOW_HALF_OPEN);
	assert_int_equal(f.req_start_ns, 0);
	assert_true(f.admitted_ns >= before && f.admitted_ns <= dp_now_ns());

	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.packets, 1);
	assert_int_equal(st.syns, 1);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.shed_drop + st.shed_reset + st.would_shed + st.untracked, 0);
}

static void syn_at_limit_minus_one_is_admitted_and_fills_the_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	int i;

	one_class_service(t, 3, LS_ACT_DROP, 0);
	for (i = 0; i < 3; i++) {
		syn_n(t, i, &syn);
		assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	}
	syn_n(t, 3, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_DROP);
	assert_inflight(t, 3, CLS_DEFAULT, 3);
	assert_int_equal(flows(t), 3);
}

static void ecn_setup_syn_is_shed_like_any_syn(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	syn.flags = PKT_SYN | PKT_ECE | PKT_CWR;
	assert_int_equal(xdp(t, &syn, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 1);
}

static void only_syn_without_ack_starts_a_flow(void **state)
{
	static const __u8 not_new[] = {PKT_SYN | PKT_ACK, PKT_ACK, PKT_SYN | PKT_FIN,
				       PKT_SYN | PKT_RST, PKT_PSH | PKT_ACK};
	struct t *t = *state;
	struct pkt_spec s;
	size_t i;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	for (i = 0; i < sizeof(not_new); i++) {
		syn_n(t, (int)i, &s);
		s.flags = not_new[i];
		assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 0);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(iface(t).untracked_packets, sizeof(not_new));
	assert_int_equal(stats(t, CLS_DEFAULT).syns, 0);
}

static void inactive_service_is_not_enforced(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec syn;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	dp_policy_init(&pol, 0, CLS_DEFAULT);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, &pol), 0);
	syn_n(t, 0, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
}

/* ---- the partition rule ------------------------------------------------- */

static void class_under_guarantee_is_admitted_at_the_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	int i;

	dscp_classes_service(t, 4, 2, 1);
	for (i = 0; i < 4; i++) {
		syn_dscp(t, i, DSCP_AF11, &s);
		admit(t, &s);
	}
	assert_inflight(t, 4, CLS_LO, 4);

	/* total == L, but hi holds fewer than its guarantee of 2 */
	syn_dscp(t, 10, DSCP_EF, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	syn_dscp(t, 11, DSCP_EF, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_inflight(t, 6, CLS_HI, 2);
	assert_int_equal(flows(t), 6);
	assert_int_equal(stats(t, CLS_HI).admitted, 2);
	assert_int_equal(stats(t, CLS_HI).shed_drop, 0);
}

static void class_over_guarantee_is_shed_at_the_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	int i;

	dscp_classes_service(t, 4, 2, 1);
	for (i = 0; i < 4; i++) {
		syn_dscp(t, i, DSCP_AF11, &s);
		admit(t, &s);
	}
	for (i = 10; i < 12; i++) {
		syn_dscp(t, i, DSCP_EF, &s);
		admit(t, &s);
	}
	/* hi at its guarantee, lo (4) far over its guarantee of 1 */
	syn_dscp(t, 12, DSCP_EF, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	syn_dscp(t, 13, DSCP_AF11, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);

	assert_inflight(t, 6, CLS_HI, 2);
	assert_int_equal(inflight(t).cls[CLS_LO], 4);
	assert_int_equal(flows(t), 6);
	assert_int_equal(stats(t, CLS_HI).shed_drop, 1);
	assert_int_equal(stats(t, CLS_LO).shed_drop, 1);
}

static void default_class_only_gets_spare_capacity(void **state)
{
	struct t *t = *state;
	struct pkt_spec d0, d1, d2, h, fin;

	dscp_classes_service(t, 2, 1, 0);
	syn_dscp(t, 0, 0, &d0);
	syn_dscp(t, 1, 0, &d1);
	syn_dscp(t, 2, 0, &d2);
	admit(t, &d0);
	admit(t, &d1);
	assert_int_equal(xdp(t, &d2, NULL), XDP_DROP);

	/* hi still gets its guarantee past the limit */
	syn_dscp(t, 3, DSCP_EF, &h);
	assert_int_equal(xdp(t, &h, NULL), XDP_PASS);
	assert_inflight(t, 3, CLS_DEFAULT, 2);

	/* Two flows end: one slot is spare again, and default may take it. */
	client_seg(&d0, PKT_FIN | PKT_ACK, 0, &fin);
	assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	client_seg(&h, PKT_FIN | PKT_ACK, 0, &fin);
	assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(xdp(t, &d2, NULL), XDP_PASS);
	syn_dscp(t, 4, 0, &d2);
	assert_int_equal(xdp(t, &d2, NULL), XDP_DROP);
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 2);
}

static void default_class_is_shed_at_the_limit_even_with_no_flows(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;

	dscp_classes_service(t, 2, 2, 0);
	syn_dscp(t, 0, DSCP_EF, &s);
	admit(t, &s);
	syn_dscp(t, 1, DSCP_EF, &s);
	admit(t, &s);
	syn_dscp(t, 2, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	assert_inflight(t, 2, CLS_DEFAULT, 0);
}

static void bypass_class_is_never_shed_nor_counted(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec s, fin;
	int i;

	dscp_classes_service(t, 0, 0, 0);
	for (i = 0; i < 3; i++) {
		syn_dscp(t, i, DSCP_CS6, &s);
		assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
		client_seg(&s, PKT_FIN | PKT_ACK, 0, &fin);
		assert_int_equal(xdp(t, &fin, NULL), XDP_PASS);
	}
	/* The same limit sheds the default class. */
	syn_dscp(t, 9, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);

	assert_inflight(t, 0, CLS_BYPASS, 0);
	assert_int_equal(flows(t), 0);
	st = stats(t, CLS_BYPASS);
	assert_int_equal(st.syns, 3);
	assert_int_equal(st.admitted, 3);
	assert_int_equal(st.shed_drop + st.shed_reset + st.would_shed, 0);
	assert_int_equal(st.ended_fin + st.ended_rst, 0);
}

/* ---- SYN retransmits ---------------------------------------------------- */

static void syn_retransmit_passes_at_the_limit_and_is_counted_once(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	admit(t, &syn);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(st.syn_retransmits, 2);
	assert_int_equal(st.syns, 3);
	assert_int_equal(st.shed_drop, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ALL_VARIANTS(syn_under_limit_is_admitted_and_tracked),
		TEST(syn_at_limit_minus_one_is_admitted_and_fills_the_limit),
		TEST(ecn_setup_syn_is_shed_like_any_syn),
		TEST(only_syn_without_ack_starts_a_flow),
		TEST(inactive_service_is_not_enforced),

		TEST(class_under_guarantee_is_admitted_at_the_limit),
		TEST(class_over_guarantee_is_shed_at_the_limit),
		TEST(default_class_only_gets_spare_capacity),
		TEST(default_class_is_shed_at_the_limit_even_with_no_flows),
		TEST(bypass_class_is_never_shed_nor_counted),

		TEST_V(syn_retransmit_passes_at_the_limit_and_is_counted_once, V4),
		TEST_V(syn_retransmit_passes_at_the_limit_and_is_counted_once, V6_QINQ),
	};

	return DP_TESTS_MAIN(tests);
}
