// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Latency observation (issue 9): a request starts with client payload the
 * server has not acknowledged while none is outstanding (XDP) and ends with
 * the first server payload after it (TC egress); its sample runs from the
 * request's last client payload (what the server controls) to that first
 * answer, and goes into its class's histogram: count, sum, min, max and a
 * bucket. Server payload with no request ever is counted as server_first.
 * Samples are checked against sleeps and clock readings around the runs,
 * never as timing figures. Needs root.
 */
#include "lib/fixture.h"

#define SLEEP_NS (20 * NS_PER_MS)

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

/* A hi connection, its handshake admitted. */
static void open_hi(struct t *t, struct conn *c)
{
	dscp_classes_service(t, 10, 1, 0);
	conn_dscp(t, 0, DSCP_EF, c);
	connect_ok(t, c);
}

static void request_response_records_one_latency_sample(void **state)
{
	struct t *t = *state;
	struct ls_latency_hist *h;
	struct ls_flow f;
	struct conn c;
	__u64 before, after;
	__u32 b;

	open_hi(t, &c);
	before = dp_now_ns();
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	assert_true(tracked(t, &c, &f));
	assert_int_equal(f.state, LS_FLOW_REQUEST);
	assert_true(f.req_last_ns >= before && f.req_last_ns <= dp_now_ns());
	assert_int_equal(stats(t, CLS_HI).requests, 1);
	sleep_ns(SLEEP_NS);
	respond(t, &c, 1000);
	after = dp_now_ns();

	h = latency(t, CLS_HI);
	assert_int_equal(h->count, 1);
	assert_true(h->sum_ns >= SLEEP_NS);
	assert_true(h->sum_ns <= after - before);
	assert_int_equal(h->min_ns, h->sum_ns);
	assert_int_equal(h->max_ns, h->sum_ns);
	b = ls_hist_bucket(h->sum_ns);
	assert_int_equal(h->buckets[b], 1);
	assert_int_equal(bucket_total(h), 1);
	assert_int_equal(latency(t, CLS_DEFAULT)->count, 0);
	assert_true(tracked(t, &c, &f));
	assert_int_equal(f.req, 0);
	assert_int_equal(f.state, LS_FLOW_RESPONSE);
}

/* A request in two segments with a pause: the sample starts at the second. */
static void latency_runs_from_the_last_client_payload(void **state)
{
	struct t *t = *state;
	struct ls_latency_hist *h;
	struct conn c;
	__u64 t_a, t_b;

	open_hi(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	sleep_ns(SLEEP_NS);
	t_a = dp_now_ns();
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	respond(t, &c, 1000);
	t_b = dp_now_ns();

	h = latency(t, CLS_HI);
	assert_int_equal(h->count, 1);
	assert_true(h->sum_ns <= t_b - t_a);
	assert_true(h->sum_ns < SLEEP_NS);
	assert_int_equal(stats(t, CLS_HI).requests, 1);
}

static void server_payload_without_request_is_server_first_and_no_sample(void **state)
{
	struct t *t = *state;
	struct conn c;

	open_hi(t, &c);
	respond(t, &c, 100); /* a greeting: nobody asked */
	respond(t, &c, 100);
	assert_int_equal(latency(t, CLS_HI)->count, 0);
	assert_int_equal(stats(t, CLS_HI).server_first, 1);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	respond(t, &c, 100);
	respond(t, &c, 100); /* second chunk of the same response */
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_int_equal(bucket_total(latency(t, CLS_HI)), 1);
	assert_int_equal(stats(t, CLS_HI).server_first, 1);
	assert_int_equal(stats(t, CLS_HI).requests, 1);
}

static void each_request_after_a_response_gets_its_own_sample(void **state)
{
	struct t *t = *state;
	struct conn c;
	int i;

	open_hi(t, &c);
	for (i = 0; i < 3; i++) {
		assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
		respond(t, &c, 100);
	}
	assert_int_equal(stats(t, CLS_HI).requests, 3);
	assert_int_equal(latency(t, CLS_HI)->count, 3);
	assert_int_equal(bucket_total(latency(t, CLS_HI)), 3);
}

/* Samples go to the class of their flow, not another. */
static void each_class_gets_its_own_samples(void **state)
{
	struct t *t = *state;
	struct conn h, l;

	open_hi(t, &h);
	conn_dscp(t, 1, DSCP_AF11, &l);
	connect_ok(t, &l);
	assert_int_equal(request(t, &l, 100, NULL), XDP_PASS);
	respond(t, &l, 100);
	assert_int_equal(request(t, &l, 100, NULL), XDP_PASS);
	respond(t, &l, 100);
	assert_int_equal(request(t, &h, 100, NULL), XDP_PASS);
	respond(t, &h, 100);
	assert_int_equal(latency(t, CLS_LO)->count, 2);
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_int_equal(latency(t, CLS_DEFAULT)->count, 0);
}

/*
 * A small response often leaves in one segment with the FIN (the server
 * writes and closes at once, the typical one-request connection): it is the
 * response's first byte and the flow's end, and both must count.
 */
static void server_response_with_fin_records_sample_and_ends_flow(void **state)
{
	struct t *t = *state;
	struct conn c;

	open_hi(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	sleep_ns(SLEEP_NS);
	srv_send(t, &c, PKT_FIN | PKT_PSH | PKT_ACK, 300);
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_true(latency(t, CLS_HI)->min_ns >= SLEEP_NS);
	assert_int_equal(stats(t, CLS_HI).ended_fin, 1);
	assert_nothing_in_flight(t);
	assert_int_equal(flows(t), 0);
}

static void client_ack_without_payload_starts_no_request(void **state)
{
	struct t *t = *state;
	struct conn c;

	open_hi(t, &c);
	assert_int_equal(cli_send(t, &c, PKT_ACK, 0, NULL), XDP_PASS);
	respond(t, &c, 100);
	assert_int_equal(stats(t, CLS_HI).requests, 0);
	assert_int_equal(latency(t, CLS_HI)->count, 0);
}

/*
 * The stall timeout is an admit = requests setting: under admit =
 * connections the request's word holds no slot, so the sweep leaves the
 * request alone, and a response slower than the stall timeout still gives
 * its sample (the overload signal the limit is computed from).
 */
static void slow_request_under_admit_connections_keeps_its_sample_through_a_sweep(void **state)
{
	struct t *t = *state;
	struct ls_tick k;
	struct conn c;

	open_hi(t, &c);
	assert_int_equal(request(t, &c, 100, NULL), XDP_PASS);
	sleep_ns(SLEEP_NS);
	/* The agent's sweep, with a stall timeout the request has outlived. */
	k = sweep(t, 300 * NS_PER_S, SLEEP_NS / 4, 3 * NS_PER_S);
	assert_int_equal(k.ended, 0);
	respond(t, &c, 100);
	if (latency(t, CLS_HI)->count != 1)
		fail_because("a sweep's stall timeout took the latency sample of a request under "
			     "admit = connections (stalled %llu)",
			     (unsigned long long)stats(t, CLS_HI).stalled);
	assert_int_equal(stats(t, CLS_HI).stalled, 0);
	assert_inflight(t, 1, CLS_HI, 1);
}

static __u64 probe_count(struct t *t)
{
	struct ls_latency_hist h;

	assert_int_equal(dp_probe_hist(&t->dp, SVC, &h), 0);
	return h.count;
}

/*
 * The probe histogram (design §7.4) takes only requests admitted at or
 * after its epoch: one admitted before it saw the limit the probe
 * replaced. Without a probe (epoch 0) it takes nothing.
 */
static void probe_takes_only_requests_admitted_since_its_epoch(void **state)
{
	struct t *t = *state;
	struct ls_latency_hist h;
	struct conn old, young;
	__u64 epoch;

	dscp_classes_service(t, 10, 1, 0);
	conn_dscp(t, 0, DSCP_EF, &old);
	conn_dscp(t, 1, DSCP_EF, &young);
	connect_ok(t, &old);
	connect_ok(t, &young);

	/* No probe: a request's sample goes to its class only. */
	assert_int_equal(request(t, &old, 100, NULL), XDP_PASS);
	respond(t, &old, 100);
	assert_int_equal(latency(t, CLS_HI)->count, 1);
	assert_int_equal(probe_count(t), 0);

	/* A request admitted before the epoch, answered after it: not the probe's. */
	assert_int_equal(request(t, &old, 100, NULL), XDP_PASS);
	sleep_ns(2 * NS_PER_MS);
	epoch = dp_now_ns();
	assert_int_equal(dp_probe_set(&t->dp, SVC, epoch), 0);
	respond(t, &old, 100);
	assert_int_equal(probe_count(t), 0);

	/* One admitted after it: the probe's too. */
	sleep_ns(2 * NS_PER_MS);
	assert_int_equal(request(t, &young, 100, NULL), XDP_PASS);
	sleep_ns(SLEEP_NS);
	respond(t, &young, 100);
	assert_int_equal(dp_probe_hist(&t->dp, SVC, &h), 0);
	assert_int_equal(h.count, 1);
	assert_true(h.sum_ns >= SLEEP_NS);
	assert_int_equal(h.buckets[ls_hist_bucket(h.sum_ns)], 1);
	assert_int_equal(latency(t, CLS_HI)->count, 3);

	/* Ended: nothing more. */
	assert_int_equal(dp_probe_set(&t->dp, SVC, 0), 0);
	assert_int_equal(request(t, &young, 100, NULL), XDP_PASS);
	respond(t, &young, 100);
	assert_int_equal(probe_count(t), 0);
	assert_int_equal(latency(t, CLS_HI)->count, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_V(request_response_records_one_latency_sample, V4),
		TEST_V(request_response_records_one_latency_sample, V6_QINQ),
		TEST(latency_runs_from_the_last_client_payload),
		TEST(server_payload_without_request_is_server_first_and_no_sample),
		TEST(each_request_after_a_response_gets_its_own_sample),
		TEST(each_class_gets_its_own_samples),
		TEST(client_ack_without_payload_starts_no_request),
		TEST_V(server_response_with_fin_records_sample_and_ends_flow, V4),
		TEST_V(server_response_with_fin_records_sample_and_ends_flow, V6_VLAN),
		TEST(slow_request_under_admit_connections_keeps_its_sample_through_a_sweep),
		TEST_V(probe_takes_only_requests_admitted_since_its_epoch, V4),
		TEST_V(probe_takes_only_requests_admitted_since_its_epoch, V6_VLAN),
	};

	return DP_TESTS_MAIN(tests);
}
