// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The handshake as proof (issue 9): TC egress notes each SYN-ACK's ISN in
 * a way of its tuple's set in the table ls_handshakes; only an ACK
 * (no SYN, no RST) on a tuple with no flow that acknowledges ISN + 1
 * completes it, once (the entry is then used), so a spoofed source, which
 * never sees the ISN, can complete nothing. A retransmitted SYN-ACK keeps
 * its entry; one with a new ISN replaces it and ends a flow left on the
 * tuple. The table is bounded: a SYN-ACK into a full set pushes out its
 * oldest handshake (whose ACK, or an ACK of the newer ISN from the older
 * tuple, then completes nothing), and the handshake noted last still
 * completes. Needs root.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/fixture.h"

static void synack_is_noted_with_its_isn(void **state)
{
	struct t *t = *state;
	struct ls_handshake h;
	struct conn c;
	__u64 before = dp_now_ns();

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	assert_int_equal(handshakes(t), 0);
	send_synack(t, &c);
	assert_int_equal(handshakes(t), 1);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(h.isn, c.isn);
	assert_int_equal(ls_hs_state(h.word), 0);
	/* The coarse clock in ms: at most a few ticks behind. */
	assert_true(h.sent_ms <= ((__u32)(dp_now_ns() / NS_PER_MS) | 1));
	assert_true(h.sent_ms + 100 >= (__u32)(before / NS_PER_MS));
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
}

static void ack_of_the_isn_completes_the_handshake(void **state)
{
	struct t *t = *state;
	struct ls_handshake h;
	struct ls_flow f;
	struct conn c;
	__u32 ack_seq;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	ack_seq = c.cli_seq;
	assert_int_equal(handshake(t, &c, NULL), XDP_PASS);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(ls_hs_state(h.word), 1);
	assert_int_equal(h.isn, c.isn);
	assert_true(tracked(t, &c, &f));
	assert_int_equal(f.srv_next, c.isn + 1);
	assert_int_equal(f.cli_next, ack_seq);
	assert_int_equal(f.cli_acked, ack_seq);
	assert_int_equal(f.state, LS_FLOW_IDLE);
	assert_int_equal(f.flags, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 1);
}

/*
 * An ACK whose checksum is left for the device, as a local peer's over a
 * veth with checksum offload (CHECKSUM_PARTIAL): the kernel takes it, so
 * it completes the handshake; a wrong checksum does not.
 */
static void ack_with_a_partial_checksum_completes_the_handshake(void **state)
{
	struct t *t = *state;
	struct pkt_spec ack;
	struct frame f;
	struct conn c, d;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	send_synack(t, &c);
	cli_seg(&c, PKT_ACK, 0, &ack);
	ack.csum_partial = 1;
	build(&ack, &f);
	xdp_passes_untouched(t, &f);
	assert_true(tracked(t, &c, NULL));
	assert_int_equal(iface(t).bad_checksums, 0);

	conn_n(t, 1, &d);
	assert_int_equal(send_syn(t, &d, NULL), XDP_PASS);
	send_synack(t, &d);
	cli_seg(&d, PKT_ACK, 0, &ack);
	ack.csum_partial = 1;
	build(&ack, &f);
	f.buf[f.lay.l4_off + 16] ^= 0x5a;
	xdp_passes_untouched(t, &f);
	assert_false(tracked(t, &d, NULL));
	assert_int_equal(iface(t).bad_checksums, 1);
}

/* Anything but ISN + 1 proves nothing: the entry stays unused, nothing is tracked. */
static void ack_of_another_number_completes_nothing(void **state)
{
	struct t *t = *state;
	struct ls_handshake h;
	struct conn c;
	const __u32 wrong[] = {0, 2, 0x80000001u, 0x12345u}; /* added to the ISN: never 1 */
	size_t i;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	send_synack(t, &c);
	for (i = 0; i < ARRAY_LEN(wrong); i++) {
		struct pkt_spec ack;

		cli_seg(&c, PKT_ACK, 0, &ack);
		ack.ack = c.isn + wrong[i];
		assert_int_equal(xdp(t, &ack, NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(ls_hs_state(h.word), 0);
	assert_int_equal(iface(t).untracked_packets, ARRAY_LEN(wrong));
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 0);
	assert_int_equal(stats(t, CLS_DEFAULT).packets, 1); /* the SYN */

	/* The right one still completes it. */
	assert_int_equal(send_ack(t, &c, 0, NULL), XDP_PASS);
	assert_true(tracked(t, &c, NULL));
}

/* A blind ACK (no SYN-ACK was ever sent on the tuple) completes nothing. */
static void ack_without_a_synack_completes_nothing(void **state)
{
	struct t *t = *state;
	struct conn c;
	int i;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	for (i = 0; i < 10; i++) {
		conn_n(t, i, &c);
		if (i & 1)
			assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
		assert_int_equal(send_ack(t, &c, i < 5 ? 0 : 100, NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 0);
	assert_int_equal(handshakes(t), 0);
	assert_nothing_in_flight(t);
	assert_int_equal(iface(t).untracked_packets, 10);
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 0);
}

/* Only a plain ACK completes: RST|ACK or SYN|ACK acknowledging the ISN do not. */
static void ack_with_syn_or_rst_completes_nothing(void **state)
{
	static const __u8 flags[] = {PKT_RST | PKT_ACK, PKT_SYN | PKT_ACK,
				     PKT_SYN | PKT_RST | PKT_ACK};
	struct t *t = *state;
	struct ls_handshake h;
	struct conn c;
	size_t i;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	send_synack(t, &c);
	for (i = 0; i < ARRAY_LEN(flags); i++) {
		struct pkt_spec s;

		cli_seg(&c, flags[i], 0, &s);
		assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	}
	assert_int_equal(flows(t), 0);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(ls_hs_state(h.word), 0);
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 0);
}

/* An ACK replayed after its flow ended does not complete the used handshake again. */
static void handshake_is_completed_once(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec ack;
	struct conn c;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	srv_send(t, &c, PKT_RST | PKT_ACK, 0);
	assert_int_equal(flows(t), 0);
	cli_seg(&c, PKT_ACK, 0, &ack);
	ack.ack = c.isn + 1;
	assert_int_equal(xdp(t, &ack, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.handshakes, 1);
	assert_int_equal(st.admitted, 1);
	assert_int_equal(iface(t).untracked_packets, 1);
}

static void retransmitted_synack_keeps_the_entry(void **state)
{
	struct t *t = *state;
	struct ls_handshake h;
	struct conn c;
	int i;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	for (i = 0; i < 3; i++)
		send_synack(t, &c);
	assert_int_equal(handshakes(t), 1);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(h.isn, c.isn);
	assert_int_equal(ls_hs_state(h.word), 0);
	assert_int_equal(send_ack(t, &c, 0, NULL), XDP_PASS);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 1);
}

/*
 * The SYN-ACK of a used handshake's ISN on a tuple whose flow has ended:
 * the server sends it only for a new handshake (SYN cookies repeat an ISN
 * for the same tuple and client ISN within their minute), so the way opens
 * again and its ACK is decided, not passed as an old one's.
 */
static void synack_of_a_used_isn_with_no_flow_opens_its_way_again(void **state)
{
	struct t *t = *state;
	struct ls_handshake h;
	struct conn c;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	srv_send(t, &c, PKT_RST | PKT_ACK, 0);
	assert_nothing_in_flight(t);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(ls_hs_state(h.word), LS_HS_USED);
	send_synack(t, &c);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(h.isn, c.isn);
	assert_int_equal(ls_hs_state(h.word), LS_HS_OPEN);
	assert_int_equal(send_ack(t, &c, 0, NULL), XDP_PASS);
	assert_int_equal(flows(t), 1);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 2);
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 2);
}

/* A handshake shed with drop, its SYN-ACK retransmitted: still decided again. */
static void retransmitted_synack_of_a_dropped_handshake_keeps_it_open(void **state)
{
	struct t *t = *state;
	struct ls_handshake h;
	struct conn a, b;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	conn_n(t, 0, &a);
	conn_n(t, 1, &b);
	assert_int_equal(send_syn(t, &b, NULL), XDP_PASS);
	send_synack(t, &b);
	connect_ok(t, &a);
	assert_int_equal(send_ack(t, &b, 0, NULL), XDP_DROP);
	send_synack(t, &b);
	assert_true(hs_entry(t, &b, &h));
	assert_int_equal(ls_hs_state(h.word), 0);
	srv_send(t, &a, PKT_FIN | PKT_ACK, 0);
	assert_int_equal(send_ack(t, &b, 0, NULL), XDP_PASS);
	assert_true(tracked(t, &b, NULL));
}

/*
 * The server retransmits its SYN-ACK, same ISN, after the ACK that
 * completed the handshake passed XDP and was admitted: Linux does so when
 * it drops that ACK because the listener's accept queue is full, i.e.
 * under overload. The same ISN is the same handshake: the flow stays, its
 * slot held, and the client's next ACK belongs to it.
 */
static void retransmitted_synack_of_an_admitted_handshake_keeps_its_flow(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct ls_handshake h;
	struct conn c;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	send_synack(t, &c);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(ls_hs_state(h.word), 1);
	st = stats(t, CLS_DEFAULT);
	if (st.ended_reused || !tracked(t, &c, NULL))
		fail_because("a retransmitted SYN-ACK (same ISN) ended the flow its handshake "
			     "admitted (ended_reused %llu)",
			     (unsigned long long)st.ended_reused);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_conns(t, 1);
}

/* A new ISN is a new handshake: the old ISN proves nothing any more. */
static void synack_with_a_new_isn_replaces_the_entry(void **state)
{
	struct t *t = *state;
	struct ls_handshake h;
	struct pkt_spec ack;
	struct conn c;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	send_synack(t, &c);
	cli_seg(&c, PKT_ACK, 0, &ack); /* acknowledges the first ISN */
	c.isn += 0x10000;
	send_synack(t, &c);
	assert_int_equal(handshakes(t), 1);
	assert_true(hs_entry(t, &c, &h));
	assert_int_equal(h.isn, c.isn);
	assert_int_equal(xdp(t, &ack, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_int_equal(send_ack(t, &c, 0, NULL), XDP_PASS);
	assert_true(tracked(t, &c, NULL));
}

/* The kernel let the old connection go and starts a new one on the tuple. */
static void synack_with_a_new_isn_ends_the_flow_of_its_tuple(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct conn c;

	one_class_service(t, 2, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);

	/* A SYN on the live tuple ends nothing by itself. */
	c.syn.seq += 1000000;
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	assert_true(tracked(t, &c, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);

	c.isn += 0x10000;
	c.cli_seq = c.syn.seq + 1;
	send_synack(t, &c);
	assert_false(tracked(t, &c, NULL));
	assert_nothing_in_flight(t);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.ended_reused, 1);
	assert_int_equal(st.ended_fin + st.ended_rst + st.ended_idle, 0);

	assert_int_equal(send_ack(t, &c, 0, NULL), XDP_PASS);
	assert_true(tracked(t, &c, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 2);
}

static void handshake_whose_isn_wraps_completes(void **state)
{
	struct t *t = *state;
	struct ls_flow f;
	struct conn c;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	c.isn = 0xffffffff;
	c.srv_seq = 0;
	assert_int_equal(handshake(t, &c, NULL), XDP_PASS);
	assert_true(tracked(t, &c, &f));
	assert_int_equal(f.srv_next, 0);
}

static void synack_of_a_port_of_no_service_is_not_noted(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn c;
	char client[64];

	one_class_service(t, 10, LS_ACT_DROP, 0);
	client_addr(t->v, 0, client, sizeof(client));
	syn_from(t->v, &s, client, 40000, 9999);
	conn_of_syn(&s, 5000, &c);
	send_synack(t, &c);
	assert_int_equal(handshakes(t), 0);
	assert_int_equal(send_ack(t, &c, 0, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_no_class_counted(t);
}

/* The handshake's ACK carries the request: both count, the request starts. */
static void handshake_ack_carrying_a_request_starts_it(void **state)
{
	struct t *t = *state;
	struct ls_flow f;
	struct conn c;
	__u32 seq;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	send_synack(t, &c);
	seq = c.cli_seq;
	assert_int_equal(send_ack(t, &c, 120, NULL), XDP_PASS);
	assert_true(tracked(t, &c, &f));
	assert_int_equal(f.state, LS_FLOW_REQUEST);
	assert_int_not_equal(f.req, 0);
	assert_int_equal(f.cli_next, seq + 120);
	assert_int_equal(stats(t, CLS_DEFAULT).requests, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).admitted, 1);
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

/* ---- a bounded table -------------------------------------------------------- */

#define CHURN (LS_MAX_HANDSHAKES + LS_MAX_HANDSHAKES / 8)

/*
 * SYN-ACKs the server sends under a SYN flood (cookies, answering every
 * spoofed SYN) churn the table: it pushes handshakes out, never refuses, so
 * the handshake noted last still completes.
 */
static void churned_handshake_table_still_completes_the_newest(void **state)
{
	struct t *t = *state;
	struct dp_run *r = malloc(sizeof(*r));
	struct pkt_spec s;
	struct frame f;
	struct conn c, last;
	__u32 i;
	long n;

	assert_non_null(r);
	one_class_service(t, 10, LS_ACT_DROP, 0);
	pkt_tcp(&s, 0, "10.0.0.0", 1, "192.0.2.1", PORT, PKT_SYN);
	conn_of_syn(&s, 7000, &c);
	synack_of(&c, &s);
	build(&s, &f);
	/* The client address is the IPv4 destination: bytes 30..33. TC checks no sum. */
	for (i = 0; i < CHURN; i++) {
		f.buf[f.lay.l3_off + 16] = 10;
		f.buf[f.lay.l3_off + 17] = (__u8)(i >> 16);
		f.buf[f.lay.l3_off + 18] = (__u8)(i >> 8);
		f.buf[f.lay.l3_off + 19] = (__u8)i;
		assert_int_equal(dp_tc(&t->dp, f.buf, f.len, r), 0);
		assert_int_equal(r->retval, TC_ACT_OK);
	}
	free(r);

	/* One SYN-ACK per way at most; 1.125 x ways at random fill most of them. */
	n = handshakes(t);
	assert_true(n <= LS_MAX_HANDSHAKES);
	assert_true(n > LS_MAX_HANDSHAKES / 2);
	{
		char a[32];

		i = CHURN - 1;
		snprintf(a, sizeof(a), "10.%u.%u.%u", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
		pkt_tcp(&s, 0, a, 1, "192.0.2.1", PORT, PKT_SYN);
	}
	conn_of_syn(&s, 7000, &last);
	assert_true(hs_entry(t, &last, NULL));
	assert_int_equal(send_ack(t, &last, 0, NULL), XDP_PASS);
	assert_true(tracked(t, &last, NULL));
	assert_inflight(t, 1, CLS_DEFAULT, 1);
}

/*
 * LS_HS_WAYS + 1 tuples in one set, their SYN-ACKs a few clock ticks
 * apart: the last pushes out the oldest. The oldest handshake's ACK then
 * completes nothing (it passes untracked: its connection is adopted at its
 * first request), nor does an ACK of the newest ISN sent from the oldest
 * tuple; the others complete.
 */
static void synack_into_a_full_set_pushes_out_the_oldest(void **state)
{
	struct t *t = *state;
	struct conn c[LS_HS_WAYS + 1], forged;
	struct ls_handshake h;
	int i;

	one_class_service(t, 10, LS_ACT_DROP, 0);
	conn_n(t, 0, &c[0]);
	for (i = 1; i <= LS_HS_WAYS; i++)
		conn_in_same_set(t, &c[0], c[0].isn + 77777u * (__u32)i, &c[i]);
	for (i = 0; i <= LS_HS_WAYS; i++) {
		assert_int_equal(send_syn(t, &c[i], NULL), XDP_PASS);
		send_synack(t, &c[i]);
		assert_true(hs_entry(t, &c[i], NULL));
		usleep(20 * 1000); /* the coarse clock in ms must tell them apart */
	}
	assert_false(hs_entry(t, &c[0], NULL));
	for (i = 1; i <= LS_HS_WAYS; i++) {
		assert_true(hs_entry(t, &c[i], &h));
		assert_int_equal(h.isn, c[i].isn);
		assert_int_equal(ls_hs_state(h.word), LS_HS_OPEN);
	}
	assert_int_equal(handshakes(t), LS_HS_WAYS);

	assert_int_equal(send_ack(t, &c[0], 0, NULL), XDP_PASS);
	assert_false(tracked(t, &c[0], NULL));
	forged = c[0];
	forged.srv_seq = c[LS_HS_WAYS].isn + 1;
	assert_int_equal(send_ack(t, &forged, 0, NULL), XDP_PASS);
	assert_false(tracked(t, &c[0], NULL));
	assert_true(hs_entry(t, &c[LS_HS_WAYS], &h));
	assert_int_equal(ls_hs_state(h.word), LS_HS_OPEN);
	assert_nothing_in_flight(t);

	for (i = 1; i <= LS_HS_WAYS; i++) {
		assert_int_equal(send_ack(t, &c[i], 0, NULL), XDP_PASS);
		assert_true(tracked(t, &c[i], NULL));
	}
	assert_inflight(t, LS_HS_WAYS, CLS_DEFAULT, LS_HS_WAYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ALL_VARIANTS(synack_is_noted_with_its_isn),
		TEST_ALL_VARIANTS(ack_of_the_isn_completes_the_handshake),
		TEST_ALL_VARIANTS(ack_with_a_partial_checksum_completes_the_handshake),
		TEST_V(ack_of_another_number_completes_nothing, V4),
		TEST_V(ack_of_another_number_completes_nothing, V6_QINQ),
		TEST(ack_without_a_synack_completes_nothing),
		TEST(ack_with_syn_or_rst_completes_nothing),
		TEST(handshake_is_completed_once),
		TEST(retransmitted_synack_keeps_the_entry),
		TEST(synack_of_a_used_isn_with_no_flow_opens_its_way_again),
		TEST(retransmitted_synack_of_a_dropped_handshake_keeps_it_open),
		TEST_V(retransmitted_synack_of_an_admitted_handshake_keeps_its_flow, V4),
		TEST(synack_with_a_new_isn_replaces_the_entry),
		TEST_V(synack_with_a_new_isn_ends_the_flow_of_its_tuple, V4),
		TEST_V(synack_with_a_new_isn_ends_the_flow_of_its_tuple, V6_VLAN),
		TEST(handshake_whose_isn_wraps_completes),
		TEST(synack_of_a_port_of_no_service_is_not_noted),
		TEST(handshake_ack_carrying_a_request_starts_it),
		TEST(churned_handshake_table_still_completes_the_newest),
		TEST_V(synack_into_a_full_set_pushes_out_the_oldest, V4),
		TEST_V(synack_into_a_full_set_pushes_out_the_oldest, V6_VLAN),
	};

	return DP_TESTS_MAIN(tests);
}
