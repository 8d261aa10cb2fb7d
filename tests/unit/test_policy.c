// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A validated config compiled into map entries, and the class guarantees. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "algo.h"
#include "config.h"
#include "policy.h"
#include "service.h"

static char err[1024];

static struct ls_policy_image *compile(const char *text, uint32_t gen)
{
	struct ls_policy_image *img = NULL;
	struct ls_config *c = NULL;

	if (ls_config_load_string(text, "t.conf", &c, err, sizeof(err)))
		fail_msg("config rejected: %s", err);
	if (ls_policy_compile(c, gen, &img, err, sizeof(err)))
		fail_msg("compile failed: %s", err);
	ls_config_free(&c);
	assert_int_equal(img->gen, gen);
	return img;
}

static void v4(uint8_t out[16], const char *text)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, text, &a), 1);
	ls_addr_v4_mapped(out, a.s_addr);
}

static void v6(uint8_t out[16], const char *text)
{
	assert_int_equal(inet_pton(AF_INET6, text, out), 1);
}

/* The expected trie key of an IPv4 prefix of service svc. */
static struct ls_prefix_key v4_key(uint8_t gen, uint8_t svc, const char *addr, uint32_t len)
{
	struct ls_prefix_key k;

	memset(&k, 0, sizeof(k));
	k.prefixlen = LS_PREFIX_KEY_FIXED_BITS + 96 + len;
	k.gen = gen;
	k.svc = svc;
	v4(k.addr, addr);
	return k;
}

static struct ls_prefix_key v6_key(uint8_t gen, uint8_t svc, const char *addr, uint32_t len)
{
	struct ls_prefix_key k;

	memset(&k, 0, sizeof(k));
	k.prefixlen = LS_PREFIX_KEY_FIXED_BITS + len;
	k.gen = gen;
	k.svc = svc;
	v6(k.addr, addr);
	return k;
}

static void assert_prefix(const struct ls_policy_image *img, uint32_t i, struct ls_prefix_key key,
			  uint32_t mask)
{
	assert_true(i < img->nr_prefixes);
	assert_memory_equal(&img->prefixes[i].key, &key, sizeof(key));
	assert_int_equal(img->prefixes[i].rule_mask, mask);
}

static void service_policy_holds_rules_classes_and_default(void **state)
{
	struct ls_policy_image *img =
		compile("[service web]\nlisten = *:8080,*:8443\n"
			"[class web.health]\naction = bypass\nmatch = src 10.0.0.0/28 dport 8080\n"
			"[class web.high]\nshare = 20%\naction = reset\n"
			"match = dport 8443 dscp 46\n"
			"[class web.low]\nshare = 0%\n",
			0);
	struct ls_service_policy want;

	(void)state;
	memset(&want, 0, sizeof(want));
	want.flags = LS_SVC_ACTIVE | LS_SVC_PREFIX_RULES;
	want.nr_rules = 2;
	want.default_class = 3;
	want.rules[0] = (struct ls_rule){
		.port_lo = 8080, .port_hi = 8080, .dscp = LS_DSCP_ANY, .has_prefix = 1, .cls = 0};
	want.rules[1] = (struct ls_rule){.port_lo = 8443, .port_hi = 8443, .dscp = 46, .cls = 1};
	want.classes[0] = (struct ls_class_policy){.action = LS_ACT_BYPASS, .in_use = 1};
	want.classes[1] = (struct ls_class_policy){.action = LS_ACT_RESET, .in_use = 1};
	want.classes[2] = (struct ls_class_policy){.action = LS_ACT_DROP, .in_use = 1};
	want.classes[3] = (struct ls_class_policy){.action = LS_ACT_DROP, .in_use = 1};
	assert_int_equal(img->nr_services, 1);
	assert_memory_equal(&img->svc[0], &want, sizeof(want));
	memset(&want, 0, sizeof(want));
	for (int s = 1; s < LS_MAX_SERVICES; s++)
		assert_memory_equal(&img->svc[s], &want, sizeof(want));
	ls_policy_image_free(&img);
	assert_null(img);
}

static void shadow_service_is_flagged_and_prefix_flag_needs_a_src_rule(void **state)
{
	struct ls_policy_image *img = compile("[service web]\nlisten = *:80\nshadow = yes\n"
					      "[class web.a]\nmatch = dscp 10\n",
					      1);

	(void)state;
	assert_int_equal(img->svc[0].flags, LS_SVC_ACTIVE | LS_SVC_SHADOW);
	assert_int_equal(img->nr_prefixes, 0);
	ls_policy_image_free(&img);
}

static void meta_holds_names_shares_algorithm_and_limits(void **state)
{
	struct ls_policy_image *img =
		compile("[service web]\nlisten = *:80\nalgorithm = vegas\nparams = smoothing=0.5\n"
			"initial_limit = 10\nmin_limit = 2\nmax_limit = 300\n"
			"[class web.high]\nshare = 12.5%\n"
			"[service api]\nlisten = *:81\nlimit = 40\n",
			0);
	struct ls_service_meta want;

	(void)state;
	memset(&want, 0, sizeof(want));
	strcpy(want.name, "web");
	strcpy(want.algo, "vegas");
	strcpy(want.algo_params, "smoothing=0.5");
	want.in_use = 1;
	want.initial_limit = 10;
	want.min_limit = 2;
	want.max_limit = 300;
	want.nr_classes = 2;
	strcpy(want.classes[0].name, "high");
	want.classes[0].share_ppm = 125000;
	strcpy(want.classes[1].name, "default");
	assert_memory_equal(&img->meta[0], &want, sizeof(want));

	memset(&want, 0, sizeof(want));
	strcpy(want.name, "api");
	strcpy(want.algo, LS_ALGO_DEFAULT);
	want.in_use = 1;
	want.pinned_limit = 40;
	want.nr_classes = 1;
	strcpy(want.classes[0].name, "default");
	assert_memory_equal(&img->meta[1], &want, sizeof(want));
	assert_int_equal(img->meta[2].in_use, 0);
	ls_policy_image_free(&img);
}

static void agent_meta_carries_the_control_loop_settings(void **state)
{
	struct ls_policy_image *img =
		compile("[agent]\ninterval = 200ms\nidle_timeout = 60s\nstall_timeout = 2s\n"
			"fail_open_after = 1s\nmax_flows = 2048\nlog_change = 25%\n"
			"[service web]\nlisten = *:80\n",
			0);
	struct ls_agent_meta want;

	(void)state;
	memset(&want, 0, sizeof(want));
	want.interval_ns = 200000000ull;
	want.idle_timeout_ns = 60000000000ull;
	want.stall_timeout_ns = 2000000000ull;
	want.failopen_after_ns = 1000000000ull;
	want.max_flows = 2048;
	want.log_change_ppm = 250000;
	assert_memory_equal(&img->agent, &want, sizeof(want));
	ls_policy_image_free(&img);
}

static void any_address_service_sets_svc_plus_one_in_its_gen_only(void **state)
{
	struct ls_policy_image *img = compile("[service a]\nlisten = *:80\n"
					      "[service b]\nlisten = [::]:443, *:22\n",
					      1);

	(void)state;
	assert_int_equal(img->nr_ports, 3);
	assert_int_equal(img->ports[0].port, 22);
	assert_int_equal(img->ports[0].val.any_svc[1], 2);
	assert_int_equal(img->ports[1].port, 80);
	assert_int_equal(img->ports[1].val.any_svc[1], 1);
	assert_int_equal(img->ports[2].port, 443);
	assert_int_equal(img->ports[2].val.any_svc[1], 2);
	for (uint32_t i = 0; i < img->nr_ports; i++) {
		assert_int_equal(img->ports[i].val.any_svc[0], 0);
		assert_int_equal(img->ports[i].val.by_addr[0], 0);
		assert_int_equal(img->ports[i].val.by_addr[1], 0);
	}
	assert_int_equal(img->nr_svc_addrs, 0);
	ls_policy_image_free(&img);
}

static void address_services_set_by_addr_and_one_svc_addrs_key_each(void **state)
{
	struct ls_policy_image *img =
		compile("[service any]\nlisten = *:80\n"
			"[service one]\nlisten = 192.0.2.10:80, [2001:db8::10]:80, 192.0.2.10:81\n",
			0);
	struct ls_svc_addr_key k;

	(void)state;
	assert_int_equal(img->nr_ports, 2);
	assert_int_equal(img->ports[0].port, 80);
	assert_int_equal(img->ports[0].val.any_svc[0], 1);
	assert_int_equal(img->ports[0].val.by_addr[0], 1);
	assert_int_equal(img->ports[1].port, 81);
	assert_int_equal(img->ports[1].val.any_svc[0], 0);
	assert_int_equal(img->ports[1].val.by_addr[0], 1);

	assert_int_equal(img->nr_svc_addrs, 3);
	memset(&k, 0, sizeof(k));
	k.gen = 0;
	k.port = 80;
	v4(k.addr, "192.0.2.10");
	assert_memory_equal(&img->svc_addrs[0].key, &k, sizeof(k));
	assert_int_equal(img->svc_addrs[0].svc, 1);
	v6(k.addr, "2001:db8::10");
	assert_memory_equal(&img->svc_addrs[1].key, &k, sizeof(k));
	assert_int_equal(img->svc_addrs[1].svc, 1);
	k.port = 81;
	v4(k.addr, "192.0.2.10");
	assert_memory_equal(&img->svc_addrs[2].key, &k, sizeof(k));
	ls_policy_image_free(&img);
}

static void port_set_gen_keeps_the_other_generation(void **state)
{
	struct ls_port live = {.any_svc = {3, 7}, .by_addr = {1, 1}};
	struct ls_port img = {.any_svc = {9, 2}, .by_addr = {1, 0}};

	(void)state;
	ls_port_set_gen(&live, &img, 1);
	assert_int_equal(live.any_svc[0], 3);
	assert_int_equal(live.by_addr[0], 1);
	assert_int_equal(live.any_svc[1], 2);
	assert_int_equal(live.by_addr[1], 0);
}

static void nested_prefixes_give_inner_prefix_both_rule_bits(void **state)
{
	struct ls_policy_image *img = compile("[service web]\nlisten = *:80\n"
					      "[class web.vip]\nmatch = src 10.1.2.0/24\n"
					      "[class web.corp]\nmatch = src 10.0.0.0/8\n",
					      0);

	(void)state;
	assert_int_equal(img->nr_prefixes, 2);
	assert_prefix(img, 0, v4_key(0, 0, "10.0.0.0", 8), 1u << 1);
	assert_prefix(img, 1, v4_key(0, 0, "10.1.2.0", 24), (1u << 0) | (1u << 1));
	ls_policy_image_free(&img);
}

static void three_level_nesting_accumulates_every_outer_rule(void **state)
{
	struct ls_policy_image *img =
		compile("[service web]\nlisten = *:80\n"
			"[class web.a]\nmatch = src 10.0.0.0/8\nmatch = src 10.1.1.1/32 dscp 1\n"
			"[class web.b]\nmatch = src 10.1.0.0/16, 192.168.0.0/16\n"
			"match = src ::/0 dscp 2\n",
			0);

	(void)state;
	/* rules: 0 = /8, 1 = /32, 2 = /16 + 192.168/16, 3 = ::/0 (everything) */
	assert_int_equal(img->nr_prefixes, 5);
	assert_prefix(img, 0, v6_key(0, 0, "::", 0), 1u << 3);
	assert_prefix(img, 1, v4_key(0, 0, "10.0.0.0", 8), (1u << 0) | (1u << 3));
	assert_prefix(img, 2, v4_key(0, 0, "10.1.0.0", 16), (1u << 0) | (1u << 2) | (1u << 3));
	assert_prefix(img, 3, v4_key(0, 0, "192.168.0.0", 16), (1u << 2) | (1u << 3));
	assert_prefix(img, 4, v4_key(0, 0, "10.1.1.1", 32), 0xfu);
	ls_policy_image_free(&img);
}

static void same_prefix_in_two_rules_is_one_entry_with_both_bits(void **state)
{
	struct ls_policy_image *img =
		compile("[service web]\nlisten = *:80,*:81\n"
			"[class web.a]\nmatch = src 10.0.0.0/8 dport 80\n"
			"[class web.b]\nmatch = src 10.0.0.0/8, 10.0.0.0/8 dport 81\n",
			0);

	(void)state;
	assert_int_equal(img->nr_prefixes, 1);
	assert_prefix(img, 0, v4_key(0, 0, "10.0.0.0", 8), 0x3);
	ls_policy_image_free(&img);
}

static void nesting_across_services_stays_apart(void **state)
{
	struct ls_policy_image *img = compile("[service a]\nlisten = *:80\n"
					      "[class a.x]\nmatch = src 10.0.0.0/8\n"
					      "[service b]\nlisten = *:81\n"
					      "[class b.y]\nmatch = dscp 3\n"
					      "[class b.z]\nmatch = src 10.1.0.0/16\n",
					      1);

	(void)state;
	assert_int_equal(img->nr_prefixes, 2);
	assert_prefix(img, 0, v4_key(1, 0, "10.0.0.0", 8), 1u << 0);
	/* b's rule 1 only: a's /8 belongs to another service's trie keys */
	assert_prefix(img, 1, v4_key(1, 1, "10.1.0.0", 16), 1u << 1);
	assert_int_equal(img->svc[0].flags, LS_SVC_ACTIVE | LS_SVC_PREFIX_RULES);
	assert_int_equal(img->svc[1].flags, LS_SVC_ACTIVE | LS_SVC_PREFIX_RULES);
	ls_policy_image_free(&img);
}

static void ipv6_prefixes_do_not_hold_ipv4_unless_they_cover_the_mapping(void **state)
{
	struct ls_policy_image *img = compile("[service web]\nlisten = *:80\n"
					      "[class web.a]\nmatch = src 2001:db8::/32\n"
					      "[class web.b]\nmatch = src 0.0.0.0/0\n"
					      "[class web.c]\nmatch = src 10.0.0.0/8\n",
					      0);

	(void)state;
	assert_int_equal(img->nr_prefixes, 3);
	assert_prefix(img, 0, v6_key(0, 0, "2001:db8::", 32), 1u << 0);
	assert_prefix(img, 1, v4_key(0, 0, "0.0.0.0", 0), 1u << 1);
	assert_prefix(img, 2, v4_key(0, 0, "10.0.0.0", 8), (1u << 1) | (1u << 2));
	ls_policy_image_free(&img);
}

static void compile_refuses_an_unvalidated_config_and_a_bad_gen(void **state)
{
	struct ls_policy_image *img = NULL;
	struct ls_config *c = NULL;

	(void)state;
	assert_int_equal(ls_config_new(&c), 0);
	assert_int_equal(ls_config_set(c, "service web", "listen", "*:80", 0, err, sizeof(err)), 0);
	assert_int_equal(ls_policy_compile(c, 0, &img, err, sizeof(err)), -EINVAL);
	assert_null(img);
	assert_string_equal(err, "the config must be validated before it is compiled");
	assert_int_equal(ls_config_validate(c, err, sizeof(err)), 0);
	assert_int_equal(ls_policy_compile(c, 2, &img, err, sizeof(err)), -EINVAL);
	assert_null(img);
	assert_string_equal(err, "policy generation 2 does not exist (0 or 1)");
	ls_config_free(&c);
}

static void guarantee_is_ceil_of_limit_times_share_and_at_least_one(void **state)
{
	struct ls_service_meta m;
	struct ls_limits l;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.nr_classes = 6;
	m.classes[0].share_ppm = 200000; /* 20 % */
	m.classes[1].share_ppm = 0;
	m.classes[2].share_ppm = 333333; /* 33.3333 % */
	m.classes[3].share_ppm = 1;	 /* 1 ppm */
	m.classes[4].share_ppm = 100000; /* 10 %: exact, no float rounding up */
	m.classes[5].share_ppm = 1000000;
	m.classes[6].share_ppm = 500000; /* past nr_classes: ignored */

	ls_service_limits(100, &m, NULL, &l);
	assert_int_equal(l.limit, 100);
	assert_int_equal(l.guarantee[0], 20);
	assert_int_equal(l.guarantee[1], 0);
	assert_int_equal(l.guarantee[2], 34); /* 33.3333 rounds up */
	assert_int_equal(l.guarantee[3], 1);
	assert_int_equal(l.guarantee[4], 10);
	assert_int_equal(l.guarantee[5], 100);
	for (int c = 6; c < LS_MAX_CLASSES; c++)
		assert_int_equal(l.guarantee[c], 0);

	ls_service_limits(3, &m, NULL, &l);
	assert_int_equal(l.guarantee[0], 1); /* 0.6 -> 1 */
	assert_int_equal(l.guarantee[2], 1); /* 0.999999 -> 1 */
	assert_int_equal(l.guarantee[4], 1);

	ls_service_limits(1000000, &m, NULL, &l);
	assert_int_equal(l.guarantee[2], 333333);
	assert_int_equal(l.guarantee[3], 1);

	/* The dataplane reads L and guarantees as s32: none past INT32_MAX. */
	ls_service_limits(UINT32_MAX, &m, NULL, &l);
	assert_int_equal(l.limit, INT32_MAX);
	assert_int_equal(l.guarantee[5], INT32_MAX);
	assert_int_equal(l.guarantee[4], 429496730u); /* ceil(429496729.5) */
	m.classes[3].pinned_guarantee = UINT32_MAX;
	ls_service_limits(100, &m, NULL, &l);
	assert_int_equal(l.guarantee[3], INT32_MAX);
	m.classes[3].pinned_guarantee = 0;
}

static void guarantees_ignore_a_corrupt_class_count(void **state)
{
	struct ls_service_meta m;
	struct ls_limits l;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.nr_classes = 1000;
	for (int c = 0; c < LS_MAX_CLASSES; c++)
		m.classes[c].share_ppm = 10000;
	ls_service_limits(200, &m, NULL, &l);
	for (int c = 0; c < LS_MAX_CLASSES; c++)
		assert_int_equal(l.guarantee[c], 2);
}

/*
 * A class whose demand d fits its share is guaranteed its bursts too (the
 * agent gives d + 3.5 jitter): floor(bursts) when that is more than the
 * share's, at most ceil(share + 3.5 sqrt(share)); one whose demand exceeds
 * its share, a class without a share and a pinned guarantee are unchanged;
 * no load known (NULL, 0, NaN, +Inf) is the share.
 */
/* The bursts of demand d with a jitter j: d + 3.5 j. */
static double cover(double d, double j)
{
	return d + LS_COVER_SIGMAS * j;
}

static void guarantees_cover_the_bursts_of_a_demand_within_the_share(void **state)
{
	struct ls_service_meta m;
	struct ls_limits l;
	struct ls_class_load d[LS_MAX_CLASSES] = {};

	(void)state;
	memset(&m, 0, sizeof(m));
	m.nr_classes = 6;
	m.classes[0].share_ppm = 1000000; /* 100 %: the bench's high class */
	m.classes[1].share_ppm = 0;	  /* no share: no guarantee, no cover */
	m.classes[2].share_ppm = 500000;
	m.classes[3].share_ppm = 500000;
	m.classes[4].share_ppm = 500000;
	m.classes[4].pinned_guarantee = 7;
	m.classes[5].share_ppm = 250000;

	/* Poisson-like: jitter sqrt(d). 13 + 3.5 * 3.606 = 25.6; cap 20 + 15.65 = 36 */
	d[0] = (struct ls_class_load){13, cover(13, sqrt(13))};
	d[1] = (struct ls_class_load){5, cover(5, 3)};	     /* no share */
	d[2] = (struct ls_class_load){10.5, cover(10.5, 3)}; /* over its share of 10: the share */
	d[3] = (struct ls_class_load){1, cover(1, 1)};	     /* 1 + 3.5 under the share's 10 */
	d[4] = (struct ls_class_load){1, cover(1, 3)};	     /* pinned */
	d[5] = (struct ls_class_load){4, cover(4, 2)}; /* 4 + 7 = 11 over the share's 5; cap 13 */
	ls_service_limits(20, &m, d, &l);
	assert_int_equal(l.limit, 20);
	assert_int_equal(l.guarantee[0], 25);
	assert_int_equal(l.guarantee[1], 0);
	assert_int_equal(l.guarantee[2], 10);
	assert_int_equal(l.guarantee[3], 10);
	assert_int_equal(l.guarantee[4], 7);
	assert_int_equal(l.guarantee[5], 11);

	/* Bursts larger than a Poisson stream filling the share: the cap. */
	d[5] = (struct ls_class_load){4, cover(4, 10)};
	ls_service_limits(20, &m, d, &l);
	assert_int_equal(l.guarantee[5], 13); /* ceil(5 + 3.5 * sqrt(5) = 12.8) */

	/* The bench's 4 workers x 100 ms: L 5, the high class holds 3. */
	d[0] = (struct ls_class_load){3, cover(3, sqrt(3))}; /* 3 + 6.06 */
	ls_service_limits(5, &m, d, &l);
	assert_int_equal(l.guarantee[0], 9);
	/* Exactly the share still fits. */
	d[0] = (struct ls_class_load){5, cover(5, sqrt(5))}; /* 5 + 7.8 */
	ls_service_limits(5, &m, d, &l);
	assert_int_equal(l.guarantee[0], 12);
	/* Long-lived connections that do not move: the share, whatever it holds. */
	d[0] = (struct ls_class_load){5, cover(5, 0)};
	ls_service_limits(5, &m, d, &l);
	assert_int_equal(l.guarantee[0], 5);
	d[0] = (struct ls_class_load){2, cover(2, 0)};
	ls_service_limits(5, &m, d, &l);
	assert_int_equal(l.guarantee[0], 5);

	/* Unknown or absent load: the share's guarantee, as with NULL. */
	d[0] = (struct ls_class_load){NAN, cover(NAN, 1)};
	d[5] = (struct ls_class_load){INFINITY, cover(INFINITY, 1)};
	d[3] = (struct ls_class_load){2, cover(2, NAN)};
	ls_service_limits(20, &m, d, &l);
	assert_int_equal(l.guarantee[0], 20);
	assert_int_equal(l.guarantee[3], 10);
	assert_int_equal(l.guarantee[5], 5);
	d[0] = (struct ls_class_load){0, cover(0, 5)};
	ls_service_limits(20, &m, d, &l);
	assert_int_equal(l.guarantee[0], 20);
	ls_service_limits(20, &m, NULL, &l);
	assert_int_equal(l.guarantee[0], 20);

	/* No overflow at the top of the range. */
	d[0] = (struct ls_class_load){4294967295.0, cover(4294967295.0, 1e9)};
	ls_service_limits(UINT32_MAX, &m, d, &l);
	assert_int_equal(l.guarantee[0], INT32_MAX);
	d[2] = (struct ls_class_load){1e9, cover(1e9, 1e9)}; /* share 2^31: cover past the range */
	ls_service_limits(UINT32_MAX, &m, d, &l);
	assert_int_equal(l.guarantee[2], INT32_MAX);
}

static void prefix_parser_maps_ipv4_and_checks_lengths(void **state)
{
	struct ls_prefix p;
	uint8_t want[16];
	bool masked;
	char text[64];

	(void)state;
	assert_int_equal(ls_parse_prefix("10.1.2.3/16", &p, &masked), 0);
	v4(want, "10.1.0.0");
	assert_memory_equal(p.addr, want, 16);
	assert_int_equal(p.len_bits, 112);
	assert_true(masked);
	ls_prefix_format(&p, text, sizeof(text));
	assert_string_equal(text, "10.1.0.0/16");

	assert_int_equal(ls_parse_prefix("2001:db8:1::/48", &p, &masked), 0);
	v6(want, "2001:db8:1::");
	assert_memory_equal(p.addr, want, 16);
	assert_int_equal(p.len_bits, 48);
	assert_false(masked);
	ls_prefix_format(&p, text, sizeof(text));
	assert_string_equal(text, "2001:db8:1::/48");

	assert_int_equal(ls_parse_prefix("2001:db8::1", &p, &masked), 0);
	assert_int_equal(p.len_bits, 128);
	assert_int_equal(ls_parse_prefix("0.0.0.0/0", &p, &masked), 0);
	assert_int_equal(p.len_bits, 96);
	assert_int_equal(ls_parse_prefix("10.0.0.1/31", &p, &masked), 0);
	v4(want, "10.0.0.0");
	assert_memory_equal(p.addr, want, 16);
	assert_true(masked);

	assert_int_equal(ls_parse_prefix("10.0.0.0/33", &p, &masked), -EINVAL);
	assert_int_equal(ls_parse_prefix("::/129", &p, &masked), -EINVAL);
	assert_int_equal(ls_parse_prefix("::/0128", &p, &masked), -EINVAL);
	assert_int_equal(ls_parse_prefix("10.0.0.0/", &p, &masked), -EINVAL);
	assert_int_equal(ls_parse_prefix("example.com/8", &p, &masked), -EINVAL);
}

static void prefix_contains_is_about_bits_not_bytes(void **state)
{
	struct ls_prefix outer, inner;
	bool masked;

	(void)state;
	assert_int_equal(ls_parse_prefix("10.0.0.0/13", &outer, &masked), 0);
	assert_int_equal(ls_parse_prefix("10.7.0.0/16", &inner, &masked), 0);
	assert_true(ls_prefix_contains(&outer, &inner));
	assert_false(ls_prefix_contains(&inner, &outer));
	assert_int_equal(ls_parse_prefix("10.8.0.0/16", &inner, &masked), 0);
	assert_false(ls_prefix_contains(&outer, &inner));
	assert_true(ls_prefix_contains(&outer, &outer));
}

static void v4_mapped_address_has_the_ffff_marker(void **state)
{
	const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
	uint8_t out[16];

	(void)state;
	ls_addr_v4_mapped(out, htonl(0xc0000201));
	assert_memory_equal(out, want, 16);
	assert_true(ls_addr_is_v4_mapped(out));
	out[10] = 0;
	assert_false(ls_addr_is_v4_mapped(out));
}

static struct ls_policy_image *compile_onto(const char *text, const struct ls_service_meta *prev)
{
	struct ls_policy_image *img = NULL;
	struct ls_config *c = NULL;

	if (ls_config_load_string(text, "t.conf", &c, err, sizeof(err)))
		fail_msg("config rejected: %s", err);
	if (ls_policy_compile_onto(c, 1, prev, &img, err, sizeof(err)))
		fail_msg("compile failed: %s", err);
	ls_config_free(&c);
	return img;
}

static const char two_services[] = "[service a]\nlisten = *:8080\n"
				   "[class a.x]\nshare = 10%\nmatch = src 10.0.0.0/8\n"
				   "[class a.y]\nshare = 20%\n"
				   "[service b]\nlisten = *:9090\nlimit = 10\n";

static void reload_keeps_service_slots_by_name_when_order_changes(void **state)
{
	struct ls_policy_image *before = compile(two_services, 0), *after;

	(void)state;
	assert_string_equal(before->meta[0].name, "a");
	assert_string_equal(before->meta[1].name, "b");
	after = compile_onto("[service b]\nlisten = *:9090\nlimit = 10\n"
			     "[service a]\nlisten = *:8080\n"
			     "[class a.x]\nshare = 10%\nmatch = src 10.0.0.0/8\n"
			     "[class a.y]\nshare = 20%\n",
			     before->meta);
	assert_string_equal(after->meta[0].name, "a");
	assert_string_equal(after->meta[1].name, "b");
	assert_int_equal(after->meta[1].pinned_limit, 10);
	/* The ports and the trie follow the slots, not the file order. */
	for (uint32_t i = 0; i < after->nr_ports; i++)
		assert_int_equal(after->ports[i].val.any_svc[1],
				 after->ports[i].port == 8080 ? 1 : 2);
	assert_int_equal(after->prefixes[0].key.svc, 0);
	ls_policy_image_free(&before);
	ls_policy_image_free(&after);
}

static void reload_keeps_class_slots_and_new_names_take_free_slots(void **state)
{
	struct ls_policy_image *before = compile(two_services, 0), *after;
	uint8_t y_slot = 1, z_slot;

	(void)state;
	assert_string_equal(before->meta[0].classes[y_slot].name, "y");
	/* x removed, z added: y stays where it was, z does not take x's slot. */
	after = compile_onto("[service a]\nlisten = *:8080\n"
			     "[class a.z]\nshare = 30%\nmatch = src 10.0.0.0/8\n"
			     "[class a.y]\nshare = 20%\n"
			     "[service b]\nlisten = *:9090\nlimit = 10\n",
			     before->meta);
	assert_string_equal(after->meta[0].classes[y_slot].name, "y");
	z_slot = after->svc[0].rules[0].cls;
	assert_string_equal(after->meta[0].classes[z_slot].name, "z");
	assert_int_not_equal(z_slot, 0);
	assert_string_equal(after->meta[0].classes[0].name, "x"); /* retired: name kept */
	assert_int_equal(after->meta[0].classes[0].share_ppm, 0);
	assert_int_equal(after->svc[0].classes[0].in_use, 0);
	assert_int_equal(after->svc[0].classes[z_slot].in_use, 1);
	assert_true(after->meta[0].nr_classes > z_slot);
	/* The implicit default class keeps its slot too. */
	assert_string_equal(after->meta[0].classes[after->svc[0].default_class].name, "default");
	assert_int_equal(after->svc[0].default_class, before->svc[0].default_class);
	ls_policy_image_free(&before);
	ls_policy_image_free(&after);
}

static void retired_names_keep_their_slots_across_later_reloads(void **state)
{
	struct ls_policy_image *g1 = compile(two_services, 0), *g2, *g3;
	struct ls_service_meta prev[LS_MAX_SERVICES];
	uint8_t z_slot;

	(void)state;
	/* g2: service a and class... a goes away entirely; b stays. */
	g2 = compile_onto("[service b]\nlisten = *:9090\nlimit = 10\n", g1->meta);
	assert_int_equal(g2->meta[0].in_use, 0);
	assert_string_equal(g2->meta[1].name, "b");
	/* What activation leaves in the config map: a's record, retired, with its names. */
	memcpy(prev, g2->meta, sizeof(prev));
	prev[0] = g1->meta[0];
	prev[0].in_use = 0;
	/* g3: a new service c must not take a's slot, where a's flows may still be. */
	g3 = compile_onto("[service b]\nlisten = *:9090\nlimit = 10\n"
			  "[service c]\nlisten = *:7070\n",
			  prev);
	assert_string_equal(g3->meta[1].name, "b");
	assert_string_equal(g3->meta[2].name, "c");
	assert_int_equal(g3->meta[0].in_use, 0);
	ls_policy_image_free(&g2);
	ls_policy_image_free(&g3);

	/* The same for classes: x removed in one reload, z added in the next. */
	g2 = compile_onto("[service a]\nlisten = *:8080\n[class a.y]\nshare = 20%\n"
			  "[service b]\nlisten = *:9090\nlimit = 10\n",
			  g1->meta);
	assert_string_equal(g2->meta[0].classes[0].name, "x"); /* kept, retired */
	assert_int_equal(g2->meta[0].classes[0].share_ppm, 0);
	assert_int_equal(g2->svc[0].classes[0].in_use, 0);
	g3 = compile_onto("[service a]\nlisten = *:8080\n[class a.y]\nshare = 20%\n"
			  "[class a.z]\nshare = 10%\nmatch = src 10.0.0.0/8\n"
			  "[service b]\nlisten = *:9090\nlimit = 10\n",
			  g2->meta);
	z_slot = g3->svc[0].rules[0].cls;
	assert_string_equal(g3->meta[0].classes[z_slot].name, "z");
	assert_int_not_equal(z_slot, 0);
	ls_policy_image_free(&g1);
	ls_policy_image_free(&g2);
	ls_policy_image_free(&g3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(service_policy_holds_rules_classes_and_default),
		cmocka_unit_test(shadow_service_is_flagged_and_prefix_flag_needs_a_src_rule),
		cmocka_unit_test(meta_holds_names_shares_algorithm_and_limits),
		cmocka_unit_test(agent_meta_carries_the_control_loop_settings),
		cmocka_unit_test(any_address_service_sets_svc_plus_one_in_its_gen_only),
		cmocka_unit_test(address_services_set_by_addr_and_one_svc_addrs_key_each),
		cmocka_unit_test(port_set_gen_keeps_the_other_generation),
		cmocka_unit_test(nested_prefixes_give_inner_prefix_both_rule_bits),
		cmocka_unit_test(three_level_nesting_accumulates_every_outer_rule),
		cmocka_unit_test(same_prefix_in_two_rules_is_one_entry_with_both_bits),
		cmocka_unit_test(nesting_across_services_stays_apart),
		cmocka_unit_test(ipv6_prefixes_do_not_hold_ipv4_unless_they_cover_the_mapping),
		cmocka_unit_test(compile_refuses_an_unvalidated_config_and_a_bad_gen),
		cmocka_unit_test(guarantee_is_ceil_of_limit_times_share_and_at_least_one),
		cmocka_unit_test(guarantees_ignore_a_corrupt_class_count),
		cmocka_unit_test(guarantees_cover_the_bursts_of_a_demand_within_the_share),
		cmocka_unit_test(prefix_parser_maps_ipv4_and_checks_lengths),
		cmocka_unit_test(prefix_contains_is_about_bits_not_bytes),
		cmocka_unit_test(v4_mapped_address_has_the_ffff_marker),
		cmocka_unit_test(reload_keeps_service_slots_by_name_when_order_changes),
		cmocka_unit_test(reload_keeps_class_slots_and_new_names_take_free_slots),
		cmocka_unit_test(retired_names_keep_their_slots_across_later_reloads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
