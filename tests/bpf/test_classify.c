// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Classification: a connection's class comes from ordered rules on the
 * source prefix (LPM), the destination port and the DSCP; the first rule
 * that matches wins, none gives the default class. The SYN is classified
 * for its read-only check and counters, the ACK that completes the
 * handshake for the admission: both must agree. A policy generation flip
 * takes effect at once; a service bound to an address ignores the others.
 * IPv4 and IPv6, untagged, VLAN and QinQ. Needs root.
 */
#include <string.h>
#include "lib/fixture.h"

/* The handshake of syn was admitted into class cls, and its SYN counted there. */
static void assert_classified(struct t *t, const struct pkt_spec *syn, __u32 cls)
{
	struct ls_class_stats before = stats(t, cls), after;
	struct ls_flow f;
	struct conn c;

	conn_of_syn(syn, SRV_ISN(syn->sport), &c);
	assert_int_equal(handshake(t, &c, NULL), XDP_PASS);
	assert_true(tracked(t, &c, &f));
	assert_int_equal(f.cls, cls);
	assert_int_equal(ls_slot_cls(f.slot), cls);
	after = stats(t, cls);
	assert_int_equal(after.syns, before.syns + 1);
	assert_int_equal(after.handshakes, before.handshakes + 1);
	assert_int_equal(after.admitted, before.admitted + 1);
}

static void write_rules(struct t *t, const struct ls_service_policy *pol)
{
	assert_int_equal(dp_port_any(&t->dp, 0, PORT, SVC), 0);
	assert_int_equal(dp_port_any(&t->dp, 0, OTHER_PORT, SVC), 0);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, pol), 0);
	set_limits(t, 100, 0, 0);
	no_agent(t);
}

static void source_prefix_rule_classifies(void **state)
{
	struct t *t = *state;
	const int v6 = t->v->ipv6;
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, LS_DSCP_ANY);
	write_rules(t, &pol);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, v6 ? "2001:db8:20::/48" : "10.20.0.0/16", 1), 0);

	syn_from(t->v, &s, v6 ? "2001:db8:20:ffff::9" : "10.20.255.9", 40000, PORT);
	assert_classified(t, &s, CLS_HI);
	syn_from(t->v, &s, v6 ? "2001:db8:21::9" : "10.21.0.9", 40000, PORT);
	assert_classified(t, &s, CLS_DEFAULT);
	assert_int_equal(stats(t, CLS_HI).syns, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).syns, 1);
}

static void port_rule_classifies(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;
	char client[64];

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_LO, 0, OTHER_PORT, OTHER_PORT, LS_DSCP_ANY);
	write_rules(t, &pol);
	client_addr(t->v, 0, client, sizeof(client));
	syn_from(t->v, &s, client, 40000, OTHER_PORT);
	assert_classified(t, &s, CLS_LO);
	syn_from(t->v, &s, client, 40000, PORT);
	assert_classified(t, &s, CLS_DEFAULT);
}

static void dscp_rule_classifies_ignoring_ecn(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 0, 0, 0, DSCP_EF);
	write_rules(t, &pol);
	syn_n(t, 0, &s);
	s.tos = DSCP_EF << 2 | 1; /* ECT(1) */
	assert_classified(t, &s, CLS_HI);
	syn_n(t, 1, &s);
	s.tos = DSCP_EF << 2 | 3; /* CE */
	assert_classified(t, &s, CLS_HI);
	syn_n(t, 2, &s);
	s.tos = DSCP_AF11 << 2;
	assert_classified(t, &s, CLS_DEFAULT);
}

/* Conditions of one rule all hold; the first rule that matches wins. */
static void first_matching_rule_wins(void **state)
{
	struct t *t = *state;
	const int v6 = t->v->ipv6;
	const char *in = v6 ? "2001:db8:20::5" : "10.20.0.5";
	const char *out = v6 ? "2001:db8:99::5" : "10.99.0.5";
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, DSCP_EF);			      /* prefix and EF */
	dp_policy_rule(&pol, CLS_LO, 0, 0, 0, DSCP_EF);			      /* EF */
	dp_policy_rule(&pol, CLS_MID, 1, 0, 0, LS_DSCP_ANY);		      /* prefix */
	dp_policy_rule(&pol, CLS_BYPASS, 0, OTHER_PORT, OTHER_PORT, DSCP_EF); /* shadowed */
	write_rules(t, &pol);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, v6 ? "2001:db8:20::/48" : "10.20.0.0/16",
				   1u << 0 | 1u << 2),
			 0);

	syn_from(t->v, &s, in, 40001, PORT);
	s.tos = DSCP_EF << 2;
	assert_classified(t, &s, CLS_HI);
	syn_from(t->v, &s, in, 40002, PORT);
	assert_classified(t, &s, CLS_MID);
	syn_from(t->v, &s, out, 40003, OTHER_PORT);
	s.tos = DSCP_EF << 2;
	assert_classified(t, &s, CLS_LO);
	syn_from(t->v, &s, out, 40004, PORT);
	assert_classified(t, &s, CLS_DEFAULT);
}

/*
 * Nested prefixes: the LPM entry of the inner prefix carries the rules of
 * every prefix that contains it (see struct ls_prefix_key), so the longest
 * match yields all rules that hold the source and rule order decides.
 */
static void nested_prefixes_match_every_enclosing_rule_in_order(void **state)
{
	struct t *t = *state;
	const int v6 = t->v->ipv6;
	const char *inner = v6 ? "2001:db8:20:30::/64" : "10.20.30.0/24";
	const char *outer = v6 ? "2001:db8:20::/48" : "10.20.0.0/16";
	const char *in_inner = v6 ? "2001:db8:20:30::5" : "10.20.30.5";
	const char *in_outer = v6 ? "2001:db8:20:31::5" : "10.20.31.5";
	const char *outside = v6 ? "2001:db8:21::5" : "10.21.0.5";
	struct ls_service_policy pol;
	struct pkt_spec s;

	/* Inner first: the inner prefix wins where it holds. */
	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, LS_DSCP_ANY);
	dp_policy_rule(&pol, CLS_LO, 1, 0, 0, LS_DSCP_ANY);
	write_rules(t, &pol);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, inner, 0x3), 0);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, outer, 0x2), 0);
	syn_from(t->v, &s, in_inner, 40001, PORT);
	assert_classified(t, &s, CLS_HI);
	syn_from(t->v, &s, in_outer, 40002, PORT);
	assert_classified(t, &s, CLS_LO);
	syn_from(t->v, &s, outside, 40003, PORT);
	assert_classified(t, &s, CLS_DEFAULT);

	/* Outer first: it shadows the inner rule. */
	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_LO, 1, 0, 0, LS_DSCP_ANY);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, LS_DSCP_ANY);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, &pol), 0);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, inner, 0x3), 0);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC, outer, 0x1), 0);
	syn_from(t->v, &s, in_inner, 40011, PORT);
	assert_classified(t, &s, CLS_LO);
}

static void prefix_of_another_generation_or_service_does_not_match(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	dp_policy_rule(&pol, CLS_HI, 1, 0, 0, LS_DSCP_ANY);
	write_rules(t, &pol);
	assert_int_equal(dp_prefix(&t->dp, 1, SVC, "10.0.0.0/8", 1), 0);
	assert_int_equal(dp_prefix(&t->dp, 0, SVC + 1, "10.0.0.0/8", 1), 0);
	syn_n(t, 0, &s);
	assert_classified(t, &s, CLS_DEFAULT);
}

static void policy_generation_flip_takes_effect_at_once(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	write_rules(t, &pol);
	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_LO);
	assert_int_equal(dp_policy(&t->dp, 1, SVC, &pol), 0);
	assert_int_equal(dp_port_any(&t->dp, 1, PORT, SVC), 0);

	syn_n(t, 0, &s);
	assert_classified(t, &s, CLS_DEFAULT);
	assert_int_equal(dp_state(&t->dp, 1, 0, 0), 0);
	syn_n(t, 1, &s);
	assert_classified(t, &s, CLS_LO);
}

/* The admission classifies the ACK: a flip between the SYN and the ACK decides by the new rules. */
static void class_is_decided_again_at_the_ack(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct ls_flow f;
	struct conn c;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	write_rules(t, &pol);
	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_LO);
	assert_int_equal(dp_policy(&t->dp, 1, SVC, &pol), 0);
	assert_int_equal(dp_port_any(&t->dp, 1, PORT, SVC), 0);

	conn_n(t, 0, &c);
	assert_int_equal(send_syn(t, &c, NULL), XDP_PASS);
	send_synack(t, &c);
	assert_int_equal(dp_state(&t->dp, 1, 0, 0), 0);
	assert_int_equal(send_ack(t, &c, 0, NULL), XDP_PASS);
	assert_true(tracked(t, &c, &f));
	assert_int_equal(f.cls, CLS_LO);
	assert_inflight(t, 1, CLS_LO, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).syns, 1);
	assert_int_equal(stats(t, CLS_LO).handshakes, 1);
}

static void address_bound_service_ignores_other_addresses(void **state)
{
	struct t *t = *state;
	struct ls_service_policy pol;
	struct pkt_spec s;
	struct frame f;
	struct conn c;

	dp_policy_init(&pol, LS_SVC_ACTIVE, CLS_DEFAULT);
	assert_int_equal(dp_port_addr(&t->dp, 0, PORT, server_addr(t->v), SVC), 0);
	assert_int_equal(dp_policy(&t->dp, 0, SVC, &pol), 0);
	set_limits(t, 0, 0, 0);
	no_agent(t);

	syn_n(t, 0, &s);
	assert_int_equal(xdp(t, &s, NULL), XDP_DROP);
	pkt_tcp(&s, t->v->ipv6, t->v->ipv6 ? "2001:db8:1::1" : "10.1.0.2", 40000,
		t->v->ipv6 ? "2001:db8:ffff::2" : "192.0.2.2", PORT, PKT_SYN);
	tag(t->v, &s);
	build(&s, &f);
	xdp_passes_untouched(t, &f);
	/* Its handshake is no service's either: nothing admitted, nothing counted. */
	conn_of_syn(&s, 5000, &c);
	send_synack(t, &c);
	assert_int_equal(send_ack(t, &c, 10, NULL), XDP_PASS);
	assert_int_equal(flows(t), 0);
	assert_nothing_in_flight(t);
	assert_int_equal(stats(t, CLS_DEFAULT).syns, 1);
	assert_int_equal(stats(t, CLS_DEFAULT).handshakes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST_ALL_VARIANTS(source_prefix_rule_classifies),
		TEST_ALL_VARIANTS(port_rule_classifies),
		TEST_ALL_VARIANTS(dscp_rule_classifies_ignoring_ecn),
		TEST_ALL_VARIANTS(first_matching_rule_wins),
		TEST_ALL_VARIANTS(nested_prefixes_match_every_enclosing_rule_in_order),
		TEST(prefix_of_another_generation_or_service_does_not_match),
		TEST(policy_generation_flip_takes_effect_at_once),
		TEST(class_is_decided_again_at_the_ack),
		TEST_V(address_bound_service_ignores_other_addresses, V4),
		TEST_V(address_bound_service_ignores_other_addresses, V6_VLAN),
	};

	return DP_TESTS_MAIN(tests);
}
