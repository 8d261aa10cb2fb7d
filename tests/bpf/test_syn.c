// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The SYN check (issue 9, "count work, not connections"): a SYN to a
 * protected service is classified and checked read-only. It passes unless
 * its class is already over both bounds of the partition rule (admit =
 * connections: total >= L and class >= its guarantee) or the service holds
 * max_connections; a shed SYN gets the class's action. Either way it writes
 * no flow, no in-flight count and no handshake entry, only per-CPU
 * counters, so a spoofed SYN flood, however large and from whatever prefix,
 * holds no capacity and takes nothing from a guarantee. Needs root.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "lib/fixture.h"

/* Nothing but the SYN counters: no flow, no handshake, nothing in flight. */
static void assert_syns_wrote_nothing(struct t *t)
{
	assert_int_equal(flows(t), 0);
	assert_int_equal(handshakes(t), 0);
	assert_nothing_in_flight(t);
}

static void syn_under_the_limit_passes_and_writes_nothing(void **state)
{
	static const struct ls_iface_stats no_iface;
	struct t *t = *state;
	struct ls_class_stats st, want;
	struct ls_iface_stats is;
	struct pkt_spec syn;
	struct frame f;

	one_class_service(t, 2, LS_ACT_RESET, 0);
	syn_n(t, 0, &syn);
	build(&syn, &f);
	xdp_passes_untouched(t, &f);

	assert_syns_wrote_nothing(t);
	st = stats(t, CLS_DEFAULT);
	memset(&want, 0, sizeof(want));
	want.packets = 1;
	want.syns = 1;
	assert_memory_equal(&st, &want, sizeof(want));
	is = iface(t);
	assert_memory_equal(&is, &no_iface, sizeof(no_iface));
}

/* A retransmitted SYN is one more SYN: checked again, still writing nothing. */
static void retransmitted_syns_write_nothing(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	int i;

	one_class_service(t, 1, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	for (i = 0; i < 5; i++)
		assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	assert_syns_wrote_nothing(t);
	assert_int_equal(stats(t, CLS_DEFAULT).syns, 5);
}

static void syn_of_a_class_over_both_bounds_is_shed(void **state)
{
	struct t *t = *state;
	struct ls_inflight before;
	struct pkt_spec s;
	struct conn c;
	int i;

	dscp_classes_service(t, 2, 1, 0);
	for (i = 0; i < 2; i++) {
		conn_dscp(t, i, DSCP_AF11, &c);
		connect_ok(t, &c);
	}
	before = inflight(t);

	/* total == L; lo holds 2, over its guarantee of 0; so is the default class */
	syn_dscp(t, 10, DSCP_AF11, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	syn_dscp(t, 11, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);

	{
		struct ls_inflight after = inflight(t);

		assert_memory_equal(&after, &before, sizeof(before));
	}
	assert_inflight(t, 2, CLS_LO, 2);
	assert_int_equal(flows(t), 2);
	assert_int_equal(handshakes(t), 2);
	assert_int_equal(stats(t, CLS_LO).shed_drop, 1);
	assert_int_equal(stats(t, CLS_LO).syns, 3);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 1);
}

/* Both bounds: a class under its guarantee passes past L, then not at it. */
static void syn_of_a_class_under_its_guarantee_passes_at_a_full_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn c;
	int i;

	dscp_classes_service(t, 2, 1, 0);
	for (i = 0; i < 2; i++) {
		conn_dscp(t, i, DSCP_AF11, &c);
		connect_ok(t, &c);
	}
	syn_dscp(t, 10, DSCP_EF, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_int_equal(inflight(t).cls[CLS_HI], 0);

	/* hi at its guarantee of 1, total over L: its next SYN is shed */
	conn_dscp(t, 11, DSCP_EF, &c);
	connect_ok(t, &c);
	syn_dscp(t, 12, DSCP_EF, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	assert_inflight(t, 3, CLS_HI, 1);
	assert_int_equal(stats(t, CLS_HI).syns, 4);
	assert_int_equal(stats(t, CLS_HI).shed_drop, 1);
}

/* Total under L: any class passes, also one with no guarantee. */
static void syn_passes_under_the_limit_whatever_its_guarantee(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn c;

	dscp_classes_service(t, 2, 1, 0);
	conn_dscp(t, 0, DSCP_AF11, &c);
	connect_ok(t, &c);
	syn_dscp(t, 1, DSCP_AF11, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	syn_dscp(t, 2, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_inflight(t, 1, CLS_LO, 1);
}

static void syn_at_max_connections_is_shed(void **state)
{
	struct t *t = *state;
	struct dp_run r;
	struct pkt_spec s;
	struct conn c;
	int i;

	one_class_service(t, 100, LS_ACT_RESET, 0);
	t->pol.max_connections = 2;
	write_policy(t);
	for (i = 0; i < 2; i++) {
		conn_n(t, i, &c);
		connect_ok(t, &c);
	}
	syn_n(t, 2, &s);
	assert_int_equal(xdp(t, &s, &r), XDP_TX);
	assert_rst_answers(&s, &r);
	assert_inflight(t, 2, CLS_DEFAULT, 2);
	assert_conns(t, 2);
	assert_int_equal(flows(t), 2);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_reset, 1);
}

/* Under admit = requests, L counts requests: a SYN is only held to max_connections. */
static void syn_under_admit_requests_is_not_shed_by_the_request_limit(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct conn c;

	request_service(t, 0, LS_REQ_DEFER, 0);
	conn_n(t, 0, &c);
	connect_ok(t, &c);
	syn_n(t, 1, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_PASS);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 0);

	t->pol.max_connections = 1;
	write_policy(t);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 1);
	assert_inflight(t, 0, CLS_DEFAULT, 0);
	assert_conns(t, 1);
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
	assert_syns_wrote_nothing(t);
}

/* Shadow mode decides at the handshake: every SYN passes, unchanged and uncounted as shed. */
static void syn_in_shadow_mode_always_passes(void **state)
{
	struct t *t = *state;
	struct ls_class_stats st;
	struct pkt_spec syn;
	struct frame f;

	one_class_service(t, 0, LS_ACT_RESET, LS_SVC_SHADOW);
	t->pol.max_connections = 1;
	write_policy(t);
	syn_n(t, 0, &syn);
	build(&syn, &f);
	xdp_passes_untouched(t, &f);
	st = stats(t, CLS_DEFAULT);
	assert_int_equal(st.syns, 1);
	assert_int_equal(st.shed_drop + st.shed_reset + st.would_shed, 0);
	assert_syns_wrote_nothing(t);
}

static void syn_of_a_bypass_class_always_passes(void **state)
{
	struct t *t = *state;
	struct pkt_spec s;
	struct frame f;

	dscp_classes_service(t, 0, 0, 0);
	syn_dscp(t, 0, DSCP_CS6, &s);
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	syn_dscp(t, 1, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	assert_int_equal(stats(t, CLS_BYPASS).syns, 1);
	assert_int_equal(stats(t, CLS_BYPASS).shed_drop, 0);
	assert_syns_wrote_nothing(t);
}

static void syn_passes_while_failing_open(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	syn_n(t, 0, &syn);
	stale_heartbeat(t);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	future_heartbeat(t);
	assert_int_equal(xdp(t, &syn, NULL), XDP_PASS);
	no_agent(t);
	assert_int_equal(xdp(t, &syn, NULL), XDP_DROP);
	assert_syns_wrote_nothing(t);
	assert_int_equal(stats(t, CLS_DEFAULT).shed_drop, 1);
}

static void syn_of_an_inactive_service_passes_uncounted(void **state)
{
	struct t *t = *state;
	struct pkt_spec syn;
	struct frame f;

	one_class_service(t, 0, LS_ACT_DROP, 0);
	t->pol.flags &= ~LS_SVC_ACTIVE;
	write_policy(t);
	syn_n(t, 0, &syn);
	build(&syn, &f);
	xdp_passes_untouched(t, &f);
	assert_no_class_counted(t);
	assert_syns_wrote_nothing(t);
}

/* ---- a spoofed SYN flood -------------------------------------------------- */

#define FLOOD_REPEAT	 1000000u
#define FLOOD_SOURCES	 4096
#define FLOOD_HI_SOURCES 100

static __u32 next_rand(__u32 *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* A SYN from a spoofed source: random address (outside every rule), port and ISN. */
static void spoofed_syn(const struct variant *v, __u32 *rnd, struct pkt_spec *s)
{
	char src[64];
	__u32 a = next_rand(rnd);

	if (v->ipv6)
		snprintf(src, sizeof(src), "2001:db8:dead:%x::%x", a >> 16, a & 0xffff);
	else
		snprintf(src, sizeof(src), "100.%u.%u.%u", 64 + (a >> 24) % 64, (a >> 16) & 0xff,
			 a & 0xff);
	syn_from(v, s, src, (__u16)(1024 + next_rand(rnd) % 60000), PORT);
	s->seq = next_rand(rnd);
}

/* A SYN from host n of the hi class's prefix (10.9.9.0/24 or 2001:db8:9:9::/64). */
static void hi_prefix_syn(const struct variant *v, int n, struct pkt_spec *s)
{
	char src[64];

	if (v->ipv6)
		snprintf(src, sizeof(src), "2001:db8:9:9::%x", n + 1);
	else
		snprintf(src, sizeof(src), "10.9.9.%d", n % 254 + 1);
	syn_from(v, s, src, (__u16)(20000 + n), PORT);
	s->seq = 77000u + (__u32)n;
}

static void assert_not_in_any_table(struct t *t, const struct pkt_spec *syn)
{
	struct ls_flow_key key;
	struct ls_handshake h;
	struct ls_flow f;

	pkt_flow_key(syn, 1, &key);
	assert_int_equal(dp_flow(&t->dp, &key, &f), -ENOENT);
	assert_int_equal(dp_handshake(&t->dp, &key, &h), -ENOENT);
}

/*
 * The measurement, in the dataplane: the limit is full (the
 * default class has no guarantee; hi, matched by a source /24, is
 * guaranteed all of L). A million spoofed SYNs of the default class (one
 * frame repeated, then thousands of distinct sources) are shed; a hundred
 * spoofed SYNs from hi's prefix pass, as hi is under its guarantee. In
 * flight, the flow table and the handshake table are exactly as before,
 * and real hi clients still get every slot of their guarantee.
 */
static void a_million_spoofed_syns_at_a_full_limit_hold_nothing(void **state)
{
	struct t *t = *state;
	const int v6 = t->v->ipv6;
	struct ls_class_stats st_def, st_hi;
	struct ls_inflight before;
	struct pkt_spec *spoofed, s;
	struct dp_run *r = malloc(sizeof(*r));
	struct frame f;
	struct conn c;
	__u32 rnd = 0x2545f491u;
	int i;

	assert_non_null(r);
	dp_policy_init(&t->pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_class(&t->pol, CLS_DEFAULT, LS_ACT_DROP);
	dp_policy_class(&t->pol, CLS_HI, LS_ACT_DROP);
	dp_policy_rule(&t->pol, CLS_HI, 1, 0, 0, LS_DSCP_ANY);
	assert_int_equal(dp_port_any(&t->dp, 0, PORT, SVC), 0);
	write_policy(t);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, v6 ? "2001:db8:9:9::/64" : "10.9.9.0/24", 1), 0);
	set_limits(t, 4, 4, 0);
	no_agent(t);

	for (i = 0; i < 4; i++) {
		conn_n(t, i, &c);
		connect_ok(t, &c);
	}
	hi_prefix_syn(t->v, 200, &s);
	conn_of_syn(&s, SRV_ISN(200), &c);
	connect_ok(t, &c);
	before = inflight(t);
	assert_int_equal(before.total, 5);
	assert_int_equal(before.cls[CLS_HI], 1);

	/* The bulk: one spoofed SYN, a million times. */
	spoofed = calloc(FLOOD_SOURCES, sizeof(*spoofed));
	assert_non_null(spoofed);
	spoofed_syn(t->v, &rnd, &s);
	build(&s, &f);
	assert_int_equal(dp_run(t->dp.xdp_fd, f.buf, f.len, FLOOD_REPEAT, r), 0);
	assert_int_equal(r->retval, XDP_DROP);
	assert_not_in_any_table(t, &s);
	/* Thousands of distinct sources, each shed. */
	for (i = 0; i < FLOOD_SOURCES; i++) {
		spoofed_syn(t->v, &rnd, &spoofed[i]);
		if (xdp(t, &spoofed[i], r) != XDP_DROP)
			fail_because("spoofed SYN %d: verdict %u, expected XDP_DROP", i, r->retval);
	}
	/* A hundred from the guaranteed class's prefix: they pass, and hold nothing. */
	for (i = 0; i < FLOOD_HI_SOURCES; i++) {
		hi_prefix_syn(t->v, i, &s);
		assert_int_equal(xdp(t, &s, r), XDP_PASS);
		assert_not_in_any_table(t, &s);
	}

	{
		struct ls_inflight after = inflight(t);

		assert_memory_equal(&after, &before, sizeof(before));
	}
	assert_int_equal(flows(t), 5);
	assert_int_equal(handshakes(t), 5);
	for (i = 0; i < FLOOD_SOURCES; i++)
		assert_not_in_any_table(t, &spoofed[i]);
	free(spoofed);
	st_def = stats(t, CLS_DEFAULT);
	assert_int_equal(st_def.syns, 4 + FLOOD_REPEAT + FLOOD_SOURCES);
	assert_int_equal(st_def.shed_drop, FLOOD_REPEAT + FLOOD_SOURCES);
	assert_int_equal(st_def.handshakes, 4);
	assert_int_equal(st_def.admitted, 4);
	st_hi = stats(t, CLS_HI);
	assert_int_equal(st_hi.syns, 1 + FLOOD_HI_SOURCES);
	assert_int_equal(st_hi.shed_drop, 0);
	assert_int_equal(st_hi.admitted, 1);

	/* Real hi clients: the rest of the guarantee is theirs, and no more. */
	for (i = 0; i < 3; i++) {
		hi_prefix_syn(t->v, 201 + i, &s);
		conn_of_syn(&s, SRV_ISN(201 + i), &c);
		connect_ok(t, &c);
	}
	assert_inflight(t, 8, CLS_HI, 4);
	hi_prefix_syn(t->v, 250, &s);
	assert_int_equal(xdp(t, &s, r), XDP_DROP);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ALL_VARIANTS(syn_under_the_limit_passes_and_writes_nothing),
		TEST(retransmitted_syns_write_nothing),
		TEST(syn_of_a_class_over_both_bounds_is_shed),
		TEST(syn_of_a_class_under_its_guarantee_passes_at_a_full_limit),
		TEST(syn_passes_under_the_limit_whatever_its_guarantee),
		TEST_V(syn_at_max_connections_is_shed, V4),
		TEST_V(syn_at_max_connections_is_shed, V6_VLAN),
		TEST(syn_under_admit_requests_is_not_shed_by_the_request_limit),
		TEST(ecn_setup_syn_is_shed_like_any_syn),
		TEST(syn_in_shadow_mode_always_passes),
		TEST(syn_of_a_bypass_class_always_passes),
		TEST(syn_passes_while_failing_open),
		TEST(syn_of_an_inactive_service_passes_uncounted),
		TEST_V(a_million_spoofed_syns_at_a_full_limit_hold_nothing, V4),
		TEST_V(a_million_spoofed_syns_at_a_full_limit_hold_nothing, V6_VLAN),
	};

	return DP_TESTS_MAIN(tests);
}
