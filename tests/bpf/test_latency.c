// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Latency observation (DESIGN.md section 5): a request starts with the
 * first client payload of an admitted flow that has none outstanding (XDP)
 * and ends with the first server payload (TC egress); one sample per
 * request goes into the class's histogram, count, sum, min and max. The
 * samples are checked against a sleep as a lower bound only, never as a
 * timing figure. Needs root.
 */
#include <errno.h>
#include <time.h>
#include "lib/fixture.h"

#define SLEEP_NS 5000000ull

static void sleep_ns(__u64 ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Opens a hi flow and completes the handshake. */
static void open_hi_flow(struct t *t, struct pkt_spec *syn)
{
	struct pkt_spec s;

	dscp_classes_service(t, 10, 1, 0);
	syn_dscp(t, 0, DSCP_EF, syn);
	admit(t, syn);
	server_seg(syn, PKT_SYN | PKT_ACK, 0, &s);
	s.seq = 5000;
	assert_int_equal(tc(t, &s), TC_ACT_OK);
	client_seg(syn, PKT_ACK, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
}

static void request(struct t *t, const struct pkt_spec *syn)
{
	struct pkt_spec s;

	client_seg(syn, PKT_PSH | PKT_ACK, 100, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
}

static void response(struct t *t, const struct pkt_spec *syn)
{
	struct pkt_spec s;

	server_seg(syn, PKT_PSH | PKT_ACK, 1000, &s);
	assert_int_equal(tc(t, &s), TC_ACT_OK);
}

static struct ls_latency_hist *latency(struct t *t, __u32 cls)
{
	static struct ls_latency_hist h;

	assert_int_equal(dp_latency(&t->dp, SVC, cls, &h), 0);
	return &h;
}

static __u64 bucket_total(const struct ls_latency_hist *h)
{
	__u64 n = 0;
	__u32 b;

	for (b = 0; b < LS_HIST_BUCKETS; b++)
		n += h->buckets[b];
	return n;
}

static void request_response_records_one_latency_sample(void **state)
{
	struct t *t = *state;
	struct ls_latency_hist *h;
	struct pkt_spec syn;
	struct ls_flow f;
	__u32 b;

	open_hi_flow(t, &syn);
	request(t, &syn);
	assert_true(tracked(t, &syn, &f));
	assert_int_not_equal(f.req_start_ns, 0);
	assert_int_equal(f.state, LS_FLOW_ESTABLISHED);
	assert_int_equal(stats(t, CLS_HI).requests, 1);
	sleep_ns(SLEEP_NS);
	response(t, &syn);

	h = latency(t, CLS_HI);
	assert_int_equal(h->count, 1);
	assert_true(h->sum_ns >= SLEEP_NS);
	assert_true(h->sum_ns < 10 * 1000000000ull);
	assert_int_equal(h->min_ns, h->sum_ns);
	assert_int_equal(h->max_ns, h->sum_ns);
	b = ls_hist_bucket(h->sum_ns);
	assert_true(b >= ls_hist_bucket(SLEEP_NS));
	assert_int_equal(h->buckets[b], 1);
	assert_int_equal(bucket_total(h), 1);
	assert_int_equal(latency(t, CLS_DEFAULT)->count, 0);
	assert_true(tracked(t, &syn, &f));
	assert_int_equal(f.req_start_ns, 0);
}

static void server_payload_without_request_adds_no_sample(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	open_hi_flow(t, &syn);
	response(t, &syn); /* server speaks first: no request to end */
	assert_int_equal(latency(t, CLS_HI)->count, 0);
	request(t, &syn);
	response(t, &syn);
	response(t, &syn); /* second chunk of the same response */
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_int_equal(bucket_total(latency(t, CLS_HI)), 1);
}

static void request_while_one_is_outstanding_keeps_the_first_start(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	open_hi_flow(t, &syn);
	request(t, &syn);
	sleep_ns(SLEEP_NS);
	request(t, &syn); /* pipelined: the clock keeps running from the first */
	response(t, &syn);
	assert_int_equal(stats(t, CLS_HI).requests, 1);
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_true(latency(t, CLS_HI)->min_ns >= SLEEP_NS);
}

static void each_request_after_a_response_gets_its_own_sample(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	int i;

	open_hi_flow(t, &syn);
	for (i = 0; i < 3; i++) {
		request(t, &syn);
		response(t, &syn);
	}
	assert_int_equal(stats(t, CLS_HI).requests, 3);
	assert_int_equal(latency(t, CLS_HI)->count, 3);
	assert_int_equal(bucket_total(latency(t, CLS_HI)), 3);
}

/*
 * A small response often leaves in one segment with the FIN (the server
 * writes and closes at once, the typical one-request connection): it is the
 * response's first byte and the flow's end, and both must count.
 */
static void server_response_with_fin_records_sample_and_ends_flow(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn, s;

	open_hi_flow(t, &syn);
	request(t, &syn);
	sleep_ns(SLEEP_NS);
	server_seg(&syn, PKT_FIN | PKT_PSH | PKT_ACK, 300, &s);
	assert_int_equal(tc(t, &s), TC_ACT_OK);
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_true(latency(t, CLS_HI)->min_ns >= SLEEP_NS);
	assert_int_equal(stats(t, CLS_HI).ended_fin, 1);
	assert_int_equal(inflight(t).total, 0);
	assert_int_equal(flows(t), 0);
}

static void client_ack_without_payload_starts_no_request(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn, s;

	open_hi_flow(t, &syn);
	client_seg(&syn, PKT_ACK, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	response(t, &syn);
	assert_int_equal(stats(t, CLS_HI).requests, 0);
	assert_int_equal(latency(t, CLS_HI)->count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_V(request_response_records_one_latency_sample, V4),
		TEST_V(request_response_records_one_latency_sample, V6_QINQ),
		TEST(server_payload_without_request_adds_no_sample),
		TEST(request_while_one_is_outstanding_keeps_the_first_start),
		TEST(each_request_after_a_response_gets_its_own_sample),
		TEST(client_ack_without_payload_starts_no_request),
		TEST_V(server_response_with_fin_records_sample_and_ends_flow, V4),
		TEST_V(server_response_with_fin_records_sample_and_ends_flow, V6_VLAN),
	};

	return DP_TESTS_MAIN(tests);
}
