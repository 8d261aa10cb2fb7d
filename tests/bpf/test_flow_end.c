// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ending flows (DESIGN.md section 4): a FIN or RST in either direction
 * ends a flow, exactly once, whatever else follows; the ended flow's slot
 * is free at once; a SYN with a new ISN on the same 5-tuple ends the old
 * flow and starts a new one. Needs root.
 */
#include "lib/fixture.h"

struct ending {
	int from_server;
	__u8 flags;
};

/* Sends the ending segment; the XDP verdict must be pass, TC's OK. */
static void send_end(struct t *t, const struct pkt_spec *syn, const struct ending *e)
{
	struct pkt_spec s;

	if (e->from_server) {
		server_seg(syn, e->flags, 0, &s);
		assert_int_equal(tc(t, &s), TC_ACT_OK);
	} else {
		client_seg(syn, e->flags, 0, &s);
		assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	}
}

static void assert_ended_once(struct t *t, __u64 fin, __u64 rst)
{
	struct ls_class_stats st = stats(t, CLS_DEFAULT);

	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_int_equal(flows(t), 0);
	assert_int_equal(st.ended_fin, fin);
	assert_int_equal(st.ended_rst, rst);
	assert_int_equal(st.ended_reused, 0);
}

/* Opens one flow, sends the endings in order, three times over. */
static void end_flow(void **state, const struct ending *ends, int n, __u64 fin, __u64 rst)
{
	struct t *t = *state;
	struct pkt_spec syn;
	int round, i;

	one_class_service(t, 4, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	admit(t, &syn);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	for (round = 0; round < 3; round++)
		for (i = 0; i < n; i++)
			send_end(t, &syn, &ends[i]);
	assert_ended_once(t, fin, rst);
}

static void client_fin_ends_flow_once(void **state)
{
	static const struct ending e[] = {{0, PKT_FIN | PKT_ACK}};

	end_flow(state, e, 1, 1, 0);
}

static void server_fin_ends_flow_once(void **state)
{
	static const struct ending e[] = {{1, PKT_FIN | PKT_ACK}};

	end_flow(state, e, 1, 1, 0);
}

static void client_rst_ends_flow_once(void **state)
{
	static const struct ending e[] = {{0, PKT_RST}};

	end_flow(state, e, 1, 0, 1);
}

static void server_rst_ends_flow_once(void **state)
{
	static const struct ending e[] = {{1, PKT_RST | PKT_ACK}};

	end_flow(state, e, 1, 0, 1);
}

static void fins_from_both_sides_end_flow_once(void **state)
{
	static const struct ending e[] = {
		{0, PKT_FIN | PKT_ACK}, {1, PKT_FIN | PKT_ACK}, {0, PKT_ACK}};

	end_flow(state, e, 3, 1, 0);
}

static void server_fin_then_client_fin_end_flow_once(void **state)
{
	static const struct ending e[] = {
		{1, PKT_FIN | PKT_ACK}, {0, PKT_FIN | PKT_ACK}, {1, PKT_ACK}};

	end_flow(state, e, 3, 1, 0);
}

static void rst_after_fin_does_not_end_flow_again(void **state)
{
	static const struct ending e[] = {{0, PKT_FIN | PKT_ACK}, {1, PKT_RST}, {0, PKT_RST}};

	end_flow(state, e, 3, 1, 0);
}

static void ended_flow_frees_its_slot(void **state)
{
	struct t *t = *state;
	struct pkt_spec a, b, fin;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	syn_n(t, 0, &a);
	syn_n(t, 1, &b);
	admit(t, &a);
	assert_int_equal(xdp(t, &b, NULL), XDP_DROP);
	server_seg(&a, PKT_RST | PKT_ACK, 0, &fin);
	assert_int_equal(tc(t, &fin), TC_ACT_OK);
	assert_int_equal(xdp(t, &b, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_true(tracked(t, &b, NULL));
}

/* ---- tuple reuse -------------------------------------------------------- */

static void syn_with_new_isn_ends_old_flow_and_is_admitted_anew(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn;
	struct ls_flow f;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	admit(t, &syn);
	syn.seq += 1000000;
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);

	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(flows(t), 1);
	assert_true(tracked(t, &syn, &f));
	assert_int_equal(f.syn_seq, syn.seq);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.ended_reused, 1);
	assert_int_equal(st.admitted, 2);
	assert_int_equal(st.syn_retransmits, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_V(client_fin_ends_flow_once, V4),
		TEST_V(client_fin_ends_flow_once, V6_QINQ),
		TEST_V(server_fin_ends_flow_once, V4),
		TEST_V(server_fin_ends_flow_once, V6_QINQ),
		TEST_V(client_rst_ends_flow_once, V4_VLAN),
		TEST_V(server_rst_ends_flow_once, V6),
		TEST_V(fins_from_both_sides_end_flow_once, V4),
		TEST_V(fins_from_both_sides_end_flow_once, V6_VLAN),
		TEST(server_fin_then_client_fin_end_flow_once),
		TEST(rst_after_fin_does_not_end_flow_again),
		TEST(ended_flow_frees_its_slot),
		TEST(syn_with_new_isn_ends_old_flow_and_is_admitted_anew),
	};

	return DP_TESTS_MAIN(tests);
}
