// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The policy config: INI parsing, whole-config validation, the CLI form. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "algo.h"
#include "config.h"
#include "service.h"
#include "config_fixture.h"

#define SVC_WEB "[service web]\nlisten = *:8080\n"
/* The same, with gradient2 named (the default algorithm is delay). */
#define SVC_G2 SVC_WEB "algorithm = gradient2\n"

static void rtt_is_the_mean_or_a_percentile(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB "rtt = p99.9\n[service b]\nlisten = *:1\n");

	(void)state;
	assert_int_equal(c->svc[0].rtt_quantile_ppm, 999000);
	assert_int_equal(c->svc[1].rtt_quantile_ppm, 0); /* the default: the mean */
	ls_config_free(&c);
	c = load_ok(SVC_WEB "rtt = mean\n");
	assert_int_equal(c->svc[0].rtt_quantile_ppm, 0);
	ls_config_free(&c);
	load_fails_with(SVC_WEB "rtt = p100\n", "t.conf:3: [service web] rtt:");
	load_fails_with(SVC_WEB "rtt = median\n", "t.conf:3: [service web] rtt:");
	load_fails_with(SVC_WEB "rtt = pnan\n", "t.conf:3: [service web] rtt:");
	load_fails_with(SVC_WEB "rtt = p0x10\n", "t.conf:3: [service web] rtt:");
	load_fails_with(SVC_WEB "rtt = p99.99\n", "t.conf:3: [service web] rtt:");
}

static void agent_defaults_apply_when_the_section_is_absent(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB);

	(void)state;
	assert_int_equal(c->agent.interval_ns, 100000000ull);
	assert_int_equal(c->agent.idle_timeout_ns, 300000000000ull);
	assert_int_equal(c->agent.stall_timeout_ns, 10000000000ull);
	assert_int_equal(c->agent.failopen_after_ns, 3000000000ull);
	assert_int_equal(c->agent.max_flows, LS_DEFAULT_MAX_FLOWS);
	assert_string_equal(c->svc[0].algo, "delay");
	assert_int_equal(c->svc[0].pinned_limit, 0);
	assert_int_equal(c->svc[0].min_limit, 0);
	assert_false(c->svc[0].shadow);
	assert_int_equal(c->svc[0].admit, LS_ADMIT_CONNECTIONS);
	assert_int_equal(c->svc[0].max_connections, 0);
	ls_config_free(&c);
	assert_null(c);
}

static void agent_durations_take_their_units(void **state)
{
	struct ls_config *c = load_ok("[agent]\ninterval = 250ms\nidle_timeout = 2m\n"
				      "stall_timeout = 1500ms\nfail_open_after = off\n"
				      "max_flows = 4096\n" SVC_WEB);

	(void)state;
	assert_int_equal(c->agent.interval_ns, 250000000ull);
	assert_int_equal(c->agent.idle_timeout_ns, 120000000000ull);
	assert_int_equal(c->agent.stall_timeout_ns, 1500000000ull);
	assert_int_equal(c->agent.failopen_after_ns, 0);
	assert_int_equal(c->agent.max_flows, 4096);
	ls_config_free(&c);
}

/* The metrics address: off by default; a wildcard only when written, each in its family. */
static void metrics_address_is_numeric_and_a_wildcard_only_when_written(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB);
	char text[64];

	(void)state;
	assert_int_equal(c->agent.metrics.port, 0);
	ls_config_free(&c);
	c = load_ok("[agent]\nmetrics = 127.0.0.1:9542\n" SVC_WEB);
	assert_int_equal(c->agent.metrics.family, LS_METRICS_V4);
	assert_int_equal(c->agent.metrics.port, 9542);
	ls_metrics_addr_format(&c->agent.metrics, text, sizeof(text));
	assert_string_equal(text, "127.0.0.1:9542");
	ls_config_free(&c);
	c = load_ok("[agent]\nmetrics = [::1]:9542\n" SVC_WEB);
	assert_int_equal(c->agent.metrics.family, LS_METRICS_V6);
	ls_metrics_addr_format(&c->agent.metrics, text, sizeof(text));
	assert_string_equal(text, "[::1]:9542");
	ls_config_free(&c);
	c = load_ok("[agent]\nmetrics = *:9542\n" SVC_WEB);
	assert_int_equal(c->agent.metrics.family, LS_METRICS_DUAL);
	ls_config_free(&c);
	c = load_ok("[agent]\nmetrics = 0.0.0.0:1\n" SVC_WEB);
	assert_int_equal(c->agent.metrics.family, LS_METRICS_V4);
	ls_config_free(&c);
	c = load_ok("[agent]\nmetrics = off\n" SVC_WEB);
	assert_int_equal(c->agent.metrics.port, 0);
	ls_config_free(&c);

	load_fails("[agent]\nmetrics = 9542\n" SVC_WEB,
		   "t.conf:2: [agent] metrics: '9542' has no address: write ADDR:PORT, e.g. "
		   "127.0.0.1:9542 (*:9542 for every address)");
	load_fails_with("[agent]\nmetrics = localhost:9542\n" SVC_WEB,
			"t.conf:2: [agent] metrics: 'localhost' is not a numeric");
	load_fails_with("[agent]\nmetrics = 127.0.0.1:0\n" SVC_WEB,
			"t.conf:2: [agent] metrics: '0' is not a port");
	load_fails_with("[agent]\nmetrics = 127.0.0.1:\n" SVC_WEB,
			"t.conf:2: [agent] metrics: '' is not a port");
	load_fails_with("[agent]\nmetrics = ::1:9542\n" SVC_WEB,
			"t.conf:2: [agent] metrics: an IPv6 address goes in brackets");
	load_fails_with("[agent]\nmetrics = [::ffff:127.0.0.1]:9542\n" SVC_WEB,
			"t.conf:2: [agent] metrics: '::ffff:127.0.0.1' is an IPv4-mapped");
	load_fails_with("[agent]\nmetrics = [127.0.0.1]:9542\n" SVC_WEB,
			"t.conf:2: [agent] metrics: '127.0.0.1' in brackets");
	load_fails_with("[agent]\nmetrics = 127.0.0.1:9542\nmetrics = 127.0.0.1:9543\n" SVC_WEB,
			"t.conf:3: [agent] metrics");
}

static void interval_outside_100ms_to_1s_is_rejected(void **state)
{
	(void)state;
	load_fails("[agent]\ninterval = 50ms\n" SVC_WEB,
		   "t.conf:2: [agent] interval: 50ms is out of range (100ms..1000ms)");
	load_fails("[agent]\ninterval = 2s\n" SVC_WEB,
		   "t.conf:2: [agent] interval: 2s is out of range (100ms..1000ms)");
	load_fails("[agent]\ninterval = 100\n" SVC_WEB,
		   "t.conf:2: [agent] interval: '100' is not a duration with a unit (ns, us, "
		   "ms, s, m)");
}

static void fail_open_after_shorter_than_two_intervals_is_rejected(void **state)
{
	(void)state;
	load_fails("[agent]\ninterval = 1s\nfail_open_after = 1500ms\n" SVC_WEB,
		   "t.conf:3: [agent] fail_open_after (1500ms) must be at least two intervals "
		   "(2000ms): a live agent would look dead");
}

static void half_open_timeout_is_refused_as_no_longer_used(void **state)
{
	(void)state;
	load_fails("[agent]\nidle_timeout = 2s\nhalf_open_timeout = 5s\n" SVC_WEB,
		   "t.conf:3: [agent] half_open_timeout: no longer used: a connection counts "
		   "from its completed handshake, so no half-open one is tracked (remove the "
		   "line)");
}

static void stall_timeout_takes_off_and_a_range(void **state)
{
	struct ls_config *c = load_ok("[agent]\nstall_timeout = off\n" SVC_WEB);

	(void)state;
	assert_int_equal(c->agent.stall_timeout_ns, 0);
	ls_config_free(&c);
	load_fails("[agent]\nstall_timeout = 500ms\n" SVC_WEB,
		   "t.conf:2: [agent] stall_timeout: 500ms is out of range (1000ms..3600000ms)");
}

static void admit_and_max_connections_are_parsed_and_checked(void **state)
{
	struct ls_config *c =
		load_ok(SVC_WEB "admit = requests\nmax_connections = 64\n"
				"[class web.hi]\nshare = 50%\nrequest_action = abort\n"
				"[class web.lo]\naction = reset\n");

	(void)state;
	assert_int_equal(c->svc[0].admit, LS_ADMIT_REQUESTS);
	assert_int_equal(c->svc[0].max_connections, 64);
	assert_int_equal(c->svc[0].classes[0].req_action, LS_REQ_ABORT);
	assert_int_equal(c->svc[0].classes[1].req_action, LS_REQ_DEFER);
	assert_int_equal(c->svc[0].max_defer_ms, 1000); /* the default */
	ls_config_free(&c);
	c = load_ok(SVC_WEB "admit = requests\nmax_defer = 250ms\n");
	assert_int_equal(c->svc[0].max_defer_ms, 250);
	ls_config_free(&c);
	c = load_ok(SVC_WEB "admit = requests\nmax_defer = off\n");
	assert_int_equal(c->svc[0].max_defer_ms, 0);
	ls_config_free(&c);
	load_fails(SVC_WEB "max_defer = 2s\n",
		   "t.conf:3: service web: max_defer applies only to admit = requests");
	load_fails(SVC_WEB "admit = requests\nmax_defer = 5ms\n",
		   "t.conf:4: [service web] max_defer: 5ms is out of range (10ms..3600000ms)");
	load_fails(SVC_WEB "admit = streams\n",
		   "t.conf:3: [service web] admit: 'streams' is neither connections nor requests");
	load_fails(SVC_WEB "max_connections = 0\n",
		   "t.conf:3: [service web] max_connections: '0' is not a number in 1..16777216");
	load_fails(SVC_WEB "[class web.hi]\nrequest_action = abort\n",
		   "t.conf:4: class web.hi: request_action applies only to a service with admit = "
		   "requests");
	load_fails(SVC_WEB "admit = requests\n[class web.hc]\naction = bypass\n"
			   "request_action = defer\n",
		   "t.conf:5: class web.hc: a bypass class sheds no request, so it cannot have a "
		   "request_action");
	load_fails(SVC_WEB "admit = requests\n[class web.hi]\nrequest_action = later\n",
		   "t.conf:5: [class web.hi] request_action: 'later' is not defer or abort");
}

static void shares_parse_exactly_in_ppm(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB "[class web.a]\nshare = 20%\n"
					      "[class web.b]\nshare = 12.5%\n"
					      "[class web.c]\nshare = 0.2\n"
					      "[class web.d]\nshare = 33.3333%\n"
					      "[class web.e]\nshare = 0.000001\n"
					      "[class web.f]\nshare = 0%\n");
	const struct ls_service_conf *s = &c->svc[0];

	(void)state;
	assert_int_equal(s->nr_classes, 7); /* + implicit default */
	assert_int_equal(s->classes[0].share_ppm, 200000);
	assert_int_equal(s->classes[1].share_ppm, 125000);
	assert_int_equal(s->classes[2].share_ppm, 200000);
	assert_int_equal(s->classes[3].share_ppm, 333333);
	assert_int_equal(s->classes[4].share_ppm, 1);
	assert_int_equal(s->classes[5].share_ppm, 0);
	ls_config_free(&c);
}

static void share_sum_over_100_percent_is_rejected(void **state)
{
	(void)state;
	load_fails(SVC_WEB "[class web.a]\nshare = 60%\n[class web.b]\nshare = 40.0001%\n",
		   "t.conf:2: service web: the class shares add up to 100.0001%, over 100%");
}

static void share_sum_of_exactly_100_percent_is_accepted(void **state)
{
	struct ls_config *c =
		load_ok(SVC_WEB "[class web.a]\nshare = 60%\n[class web.b]\nshare = 0.4\n");

	(void)state;
	ls_config_free(&c);
}

static void share_over_100_percent_or_too_precise_is_rejected(void **state)
{
	(void)state;
	load_fails(SVC_WEB "[class web.a]\nshare = 101%\n",
		   "t.conf:4: [class web.a] share: 101% is more than 100%");
	load_fails(SVC_WEB "[class web.a]\nshare = 1.5\n",
		   "t.conf:4: [class web.a] share: 1.5 is more than 100%");
	load_fails(SVC_WEB "[class web.a]\nshare = 12.34567%\n",
		   "t.conf:4: [class web.a] share: '12.34567%' is not a share (20%, 12.5% or "
		   "0.2; at most 1 ppm precise)");
	load_fails_with(SVC_WEB "[class web.a]\nshare = -1%\n",
			"t.conf:4: [class web.a] share: '-1%' is not a share");
	load_fails_with(SVC_WEB "[class web.a]\nshare = 20 %\n",
			"t.conf:4: [class web.a] share: '20 %' is not a share");
}

static void unknown_key_is_rejected_with_file_and_line(void **state)
{
	(void)state;
	load_fails(SVC_WEB "\n\nlimt = 5\n",
		   "t.conf:5: [service web] limt: unknown key (expected one of: listen, "
		   "algorithm, params, limit, initial_limit, min_limit, max_limit, shadow, "
		   "rtt, admit, max_connections, max_defer, default_class)");
}

static void unknown_section_is_rejected(void **state)
{
	(void)state;
	load_fails(SVC_WEB "[services api]\nlisten = *:9000\n",
		   "t.conf:4: [services api]: unknown section (expected [agent], [service NAME], "
		   "[class SERVICE.CLASS] or [upstream NAME])");
	load_fails("[agent x]\ninterval = 1s\n" SVC_WEB,
		   "t.conf:2: [agent x]: unknown section (expected [agent], [service NAME], "
		   "[class SERVICE.CLASS] or [upstream NAME])");
}

static void key_outside_a_section_is_rejected(void **state)
{
	(void)state;
	load_fails("interval = 1s\n" SVC_WEB, "t.conf:1: interval: key outside any [section]");
}

static void key_given_twice_is_rejected_naming_the_first_line(void **state)
{
	(void)state;
	load_fails(SVC_WEB "limit = 5\nlimit = 6\n",
		   "t.conf:4: [service web] limit: given twice (first on line 3)");
}

static void file_value_for_a_key_the_command_line_set_is_a_conflict(void **state)
{
	struct ls_config *c = NULL;

	(void)state;
	assert_int_equal(ls_config_new(&c), 0);
	assert_int_equal(ls_config_set(c, "agent", "max_flows", "4096", 0, err, sizeof(err)), 0);
	assert_int_equal(ls_config_parse_string(c, "[agent]\nmax_flows = 2048\n", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "config:2: [agent] max_flows: given twice (also on the command "
				 "line)");
	assert_int_equal(c->agent.max_flows, 4096);
	ls_config_free(&c);
}

static void syntax_error_names_its_line(void **state)
{
	(void)state;
	load_fails(SVC_WEB "limit 5\n",
		   "t.conf:3: not a 'key = value' line or a '[section]' header");
	load_fails(SVC_WEB "[class web.a\n",
		   "t.conf:3: not a 'key = value' line or a '[section]' header");
}

static void indented_line_never_continues_the_previous_value(void **state)
{
	struct ls_config *c;

	(void)state;
	load_fails(SVC_WEB "[class web.a]\nmatch = src 10.0.0.0/8\n   dport 8080\n",
		   "t.conf:5: not a 'key = value' line or a '[section]' header");
	c = load_ok("  [service web]\n\tlisten = *:8080\n    limit = 5\n");
	assert_int_equal(c->svc[0].pinned_limit, 5);
	ls_config_free(&c);
}

static void line_too_long_is_rejected_with_its_line(void **state)
{
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text), SVC_WEB "[class web.a]\nmatch = src 10.0.0.0/8");
	while (strlen(text) < 400)
		strcat(text, ",10.0.0.0/8");
	strcat(text, "\nshare = 5%\n");
	load_fails(text, "t.conf:4: line longer than 198 characters; split it (another match "
			 "line adds another rule)");
}

static void comments_are_ignored(void **state)
{
	struct ls_config *c = load_ok("; a comment\n# another\n[service web] ; trailing\n"
				      "listen = *:8080 ; the port\nlimit = 7 ; pinned\n");

	(void)state;
	assert_int_equal(c->svc[0].pinned_limit, 7);
	ls_config_free(&c);
}

static void listen_forms_all_parse(void **state)
{
	struct ls_config *c = load_ok("[service a]\nlisten = *:1, 2, [::]:3\n"
				      "listen = 0.0.0.0:4,10.0.0.1:5,[2001:db8::1]:6\n");
	const struct ls_service_conf *s = &c->svc[0];
	const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
	const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	const uint8_t zero[16] = {0};

	(void)state;
	assert_int_equal(s->nr_listen, 6);
	for (int i = 0; i < 4; i++) {
		assert_true(s->listen[i].any);
		assert_int_equal(s->listen[i].port, i + 1);
		assert_memory_equal(s->listen[i].addr, zero, 16);
	}
	assert_false(s->listen[4].any);
	assert_int_equal(s->listen[4].port, 5);
	assert_memory_equal(s->listen[4].addr, v4, 16);
	assert_false(s->listen[5].any);
	assert_int_equal(s->listen[5].port, 6);
	assert_memory_equal(s->listen[5].addr, v6, 16);
	assert_int_equal(s->listen[5].line, 3);
	ls_config_free(&c);
}

static void bad_listen_values_are_rejected(void **state)
{
	(void)state;
	load_fails("[service a]\nlisten = 2001:db8::1:8080\n",
		   "t.conf:2: [service a] listen: an IPv6 address goes in brackets: [ADDR]:PORT");
	load_fails("[service a]\nlisten = *:0\n",
		   "t.conf:2: [service a] listen: '0' is not a port (1..65535)");
	load_fails("[service a]\nlisten = *:65536\n",
		   "t.conf:2: [service a] listen: '65536' is not a port (1..65535)");
	load_fails("[service a]\nlisten = 10.0.0.300:80\n",
		   "t.conf:2: [service a] listen: '10.0.0.300' is not an address (or * for any)");
	load_fails("[service a]\nlisten = *:80,,*:81\n",
		   "t.conf:2: [service a] listen: empty item in the list");
}

static void duplicate_listen_port_and_address_across_services_is_rejected(void **state)
{
	(void)state;
	load_fails("[service a]\nlisten = *:80\n[service b]\nlisten = [::]:80\n",
		   "t.conf:4: service b: listen *:80 is already service a's");
	load_fails("[service a]\nlisten = 10.0.0.1:80\n[service b]\nlisten = *:81,10.0.0.1:80\n",
		   "t.conf:4: service b: listen 10.0.0.1:80 is already service a's");
	load_fails("[service a]\nlisten = [2001:db8::1]:80, [2001:db8::1]:80\n",
		   "t.conf:2: service a: listen [2001:db8::1]:80 is already service a's");
}

static void any_address_and_one_address_may_share_a_port(void **state)
{
	struct ls_config *c =
		load_ok("[service a]\nlisten = *:80\n[service b]\nlisten = 10.0.0.1:80\n");

	(void)state;
	assert_int_equal(c->nr_services, 2);
	ls_config_free(&c);
}

static void no_service_is_rejected(void **state)
{
	(void)state;
	load_fails("[agent]\ninterval = 1s\n",
		   "t.conf: no service configured (a [service NAME] with listen = *:PORT)");
}

static void service_without_listen_is_rejected(void **state)
{
	(void)state;
	load_fails("[service web]\nlimit = 5\n",
		   "t.conf:2: service web: no listen address (listen = *:PORT)");
}

static void bad_service_and_class_names_are_rejected(void **state)
{
	(void)state;
	load_fails("[service we/b]\nlisten = *:80\n",
		   "t.conf:2: [service we/b]: 'we/b' is not a service name ([A-Za-z0-9_.-], "
		   "1..31)");
	load_fails(SVC_WEB "[class web.h!]\nshare = 1%\n",
		   "t.conf:4: [class web.h!]: 'h!' is not a class name ([A-Za-z0-9_-], 1..31)");
}

static void class_before_its_service_is_rejected(void **state)
{
	(void)state;
	load_fails("[class web.a]\nshare = 5%\n" SVC_WEB,
		   "t.conf:2: [class web.a]: no [service web] before this class");
}

static void service_name_with_dots_keeps_its_classes_apart(void **state)
{
	struct ls_config *c = load_ok("[service api.v2]\nlisten = *:80\n"
				      "[class api.v2.gold]\nshare = 10%\n");

	(void)state;
	assert_string_equal(c->svc[0].name, "api.v2");
	assert_string_equal(c->svc[0].classes[0].name, "gold");
	ls_config_free(&c);
}

static void match_rule_fields_are_parsed(void **state)
{
	struct ls_config *c = load_ok("[service web]\nlisten = *:8080,*:8443\n"
				      "[class web.high]\nshare = 20%\naction = reset\n"
				      "match = src 10.1.0.0/16, 10.2.0.0/16 dport 8443 dscp 46\n"
				      "match = src 2001:db8:1::/48\n"
				      "match = dport 8000-8100\n");
	const struct ls_service_conf *s = &c->svc[0];
	const struct ls_rule_conf *r = s->rules;
	const uint8_t p0[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 0};
	const uint8_t p1[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 2, 0, 0};
	const uint8_t p2[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1};

	(void)state;
	assert_int_equal(s->nr_rules, 3);
	assert_int_equal(s->classes[0].action, LS_ACT_RESET);
	assert_int_equal(r[0].nr_src, 2);
	assert_memory_equal(r[0].src[0].addr, p0, 16);
	assert_int_equal(r[0].src[0].len_bits, 96 + 16);
	assert_memory_equal(r[0].src[1].addr, p1, 16);
	assert_int_equal(r[0].port_lo, 8443);
	assert_int_equal(r[0].port_hi, 8443);
	assert_int_equal(r[0].dscp, 46);
	assert_int_equal(r[0].cls, 0);
	assert_int_equal(r[0].line, 6);
	assert_int_equal(r[1].nr_src, 1);
	assert_memory_equal(r[1].src[0].addr, p2, 16);
	assert_int_equal(r[1].src[0].len_bits, 48);
	assert_int_equal(r[1].port_lo, 0);
	assert_int_equal(r[1].port_hi, 0);
	assert_int_equal(r[1].dscp, LS_DSCP_ANY);
	assert_int_equal(r[2].nr_src, 0);
	assert_int_equal(r[2].port_lo, 8000);
	assert_int_equal(r[2].port_hi, 8100);
	ls_config_free(&c);
}

static void rules_keep_file_order_across_classes(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB "[class web.low]\nmatch = dscp 0\n"
					      "[class web.high]\nmatch = dscp 46\n"
					      "[class web.low]\nmatch = dscp 8\n");
	const struct ls_service_conf *s = &c->svc[0];

	(void)state;
	assert_int_equal(s->nr_rules, 3);
	assert_int_equal(s->rules[0].cls, 0);
	assert_int_equal(s->rules[0].dscp, 0);
	assert_int_equal(s->rules[1].cls, 1);
	assert_int_equal(s->rules[1].dscp, 46);
	assert_int_equal(s->rules[2].cls, 0);
	assert_int_equal(s->rules[2].dscp, 8);
	ls_config_free(&c);
}

static void match_dport_outside_the_listen_ports_is_rejected(void **state)
{
	(void)state;
	load_fails(SVC_WEB "[class web.a]\nmatch = dport 8443\n",
		   "t.conf:4: class web.a: dport 8443-8443 holds none of the service's listen "
		   "ports, so the rule could never match");
	load_fails(SVC_WEB "[class web.a]\nmatch = dport 9000-9100\n",
		   "t.conf:4: class web.a: dport 9000-9100 holds none of the service's listen "
		   "ports, so the rule could never match");
}

static void bad_match_conditions_are_rejected(void **state)
{
	(void)state;
	load_fails(SVC_WEB "[class web.a]\nmatch = dport 8090-8080\n",
		   "t.conf:4: [class web.a] match: dport range 8090-8080 runs backwards");
	load_fails(SVC_WEB "[class web.a]\nmatch = dscp 64\n",
		   "t.conf:4: [class web.a] match: dscp '64' is not a number in 0..63");
	load_fails(SVC_WEB "[class web.a]\nmatch = sport 80\n",
		   "t.conf:4: [class web.a] match: unknown condition 'sport' (src, dport or "
		   "dscp)");
	load_fails(SVC_WEB "[class web.a]\nmatch = dscp 1 dscp 2\n",
		   "t.conf:4: [class web.a] match: dscp given twice in one rule");
	load_fails(SVC_WEB "[class web.a]\nmatch = src\n",
		   "t.conf:4: [class web.a] match: src needs a value");
}

static void bad_prefixes_are_rejected(void **state)
{
	static const char *const bad[] = {"10.0.0.0/33", "2001:db8::/129", "10.0.0.0/",
					  "10.0.0.0/x",	 "10.0.0/8",	   "10.0.0.0/-1"};
	char text[256], want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), SVC_WEB "[class web.a]\nmatch = src %s\n", bad[i]);
		snprintf(want, sizeof(want),
			 "t.conf:4: [class web.a] match: '%s' is not a prefix (ADDR/LEN, LEN up "
			 "to 32 for IPv4, 128 for IPv6)",
			 bad[i]);
		load_fails(text, want);
	}
}

static void prefix_host_bits_are_cleared(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB "[class web.a]\nmatch = src 10.1.2.3/16,"
					      "2001:db8::ff/32,192.0.2.7\n");
	const struct ls_rule_conf *r = &c->svc[0].rules[0];
	const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 0};
	const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
	const uint8_t host[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7};

	(void)state;
	assert_memory_equal(r->src[0].addr, v4, 16);
	assert_int_equal(r->src[0].len_bits, 112);
	assert_memory_equal(r->src[1].addr, v6, 16);
	assert_int_equal(r->src[1].len_bits, 32);
	assert_memory_equal(r->src[2].addr, host, 16);
	assert_int_equal(r->src[2].len_bits, 128);
	ls_config_free(&c);
}

static void implicit_default_class_comes_last_with_no_share_and_drop(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB "[class web.high]\nshare = 20%\naction = reset\n");
	const struct ls_service_conf *s = &c->svc[0];

	(void)state;
	assert_int_equal(s->nr_classes, 2);
	assert_string_equal(s->classes[1].name, "default");
	assert_true(s->classes[1].implicit);
	assert_int_equal(s->classes[1].share_ppm, 0);
	assert_int_equal(s->classes[1].action, LS_ACT_DROP);
	assert_int_equal(s->default_class, 1);
	ls_config_free(&c);
}

static void default_class_names_a_configured_class(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB "default_class = batch\n"
					      "[class web.high]\nshare = 20%\n"
					      "[class web.batch]\nshare = 10%\n");

	(void)state;
	assert_int_equal(c->svc[0].nr_classes, 2);
	assert_int_equal(c->svc[0].default_class, 1);
	ls_config_free(&c);
}

static void class_named_default_is_the_default_without_an_implicit_one(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB "[class web.default]\nshare = 5%\n"
					      "[class web.high]\nshare = 20%\n");

	(void)state;
	assert_int_equal(c->svc[0].nr_classes, 2);
	assert_int_equal(c->svc[0].default_class, 0);
	assert_false(c->svc[0].classes[0].implicit);
	ls_config_free(&c);
}

static void unknown_default_class_is_rejected(void **state)
{
	(void)state;
	load_fails(SVC_WEB "default_class = batch\n[class web.high]\nshare = 1%\n",
		   "t.conf:3: service web: default_class batch is not one of its classes");
}

static void bypass_class_with_a_share_is_rejected(void **state)
{
	(void)state;
	load_fails(SVC_WEB "[class web.health]\naction = bypass\nshare = 5%\n",
		   "t.conf:4: class web.health: a bypass class is never counted, so it cannot "
		   "have a share");
}

static void bypass_classes_do_not_count_toward_shares_or_the_16(void **state)
{
	char text[4096] = SVC_WEB;
	struct ls_config *c;

	(void)state;
	for (int i = 0; i < 16; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "[class web.c%d]\nshare = 6.25%%\n", i);
	strcat(text, "[class web.health]\naction = bypass\n");
	c = load_ok(text);
	assert_int_equal(c->svc[0].nr_classes, 18);
	assert_int_equal(c->svc[0].default_class, 17);
	ls_config_free(&c);
}

static void seventeen_classes_with_shares_are_rejected(void **state)
{
	char text[4096] = SVC_WEB;

	(void)state;
	for (int i = 0; i < 17; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "[class web.c%d]\nshare = 1%%\n", i);
	load_fails(text, "t.conf:2: service web: 17 classes with a share; at most 16 (bypass "
			 "aside)");
}

static void more_than_32_rules_are_rejected(void **state)
{
	char text[4096] = SVC_WEB "[class web.a]\n";

	(void)state;
	for (int i = 0; i < 33; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "match = dscp %d\n", i);
	load_fails(text, "t.conf:36: [class web.a] match: service web has more than 32 rules");
}

static void limits_must_be_ordered_min_initial_max(void **state)
{
	(void)state;
	load_fails(SVC_WEB "min_limit = 50\nmax_limit = 10\n",
		   "t.conf:3: service web: min_limit 50 is above max_limit 10");
	load_fails(SVC_WEB "min_limit = 5\ninitial_limit = 4\n",
		   "t.conf:4: service web: initial_limit 4 is below min_limit 5");
	load_fails(SVC_WEB "initial_limit = 40\nmax_limit = 30\n",
		   "t.conf:3: service web: initial_limit 40 is above max_limit 30");
	load_fails(SVC_WEB "limit = lots\n",
		   "t.conf:3: [service web] limit: 'lots' is neither auto nor a number in "
		   "1..1000000");
	load_fails(SVC_WEB "min_limit = 0\n",
		   "t.conf:3: [service web] min_limit: '0' is not a number in 1..1000000");
}

static void limit_is_auto_or_pinned(void **state)
{
	struct ls_config *c =
		load_ok("[service a]\nlisten = *:1\nlimit = auto\ninitial_limit = 20\n"
			"min_limit = 1\nmax_limit = 1000\n"
			"[service b]\nlisten = *:2\nlimit = 100\n");

	(void)state;
	assert_int_equal(c->svc[0].pinned_limit, 0);
	assert_int_equal(c->svc[0].initial_limit, 20);
	assert_int_equal(c->svc[0].min_limit, 1);
	assert_int_equal(c->svc[0].max_limit, 1000);
	assert_int_equal(c->svc[1].pinned_limit, 100);
	ls_config_free(&c);
}

static void unknown_algorithm_is_rejected(void **state)
{
	(void)state;
	load_fails(SVC_WEB "algorithm = bbr\n",
		   "t.conf:3: [service web] algorithm: unknown algorithm 'bbr' (one of: fixed, "
		   "aimd, vegas, gradient2, envoy, delay)");
}

static void params_are_checked_for_syntax_and_by_the_algorithm(void **state)
{
	struct ls_config *c = load_ok(SVC_WEB "algorithm = gradient2\n"
					      "params = smoothing=0.2,queue_size=4\n");

	(void)state;
	assert_string_equal(c->svc[0].algo_params, "smoothing=0.2,queue_size=4");
	ls_config_free(&c);
	load_fails(SVC_WEB "params = smoothing\n",
		   "t.conf:3: [service web] params: 'smoothing' is not name=value");
	load_fails(SVC_WEB "params = smoothing=0.2,\n",
		   "t.conf:3: [service web] params: '' is not name=value");
	load_fails(SVC_WEB "params = a=1,B=2\n",
		   "t.conf:3: [service web] params: 'B=2' is not name=value");
	load_fails_with(SVC_G2 "params = no_such_param=1\n",
			"t.conf:4: service web: params for gradient2: ");
	load_fails(SVC_WEB "min_limit = 5\nparams = min_limit=3\n",
		   "t.conf:4: service web: min_limit is given both as a key and in params");
	/* A limit that could never grow again, or that starts outside its bounds. */
	load_fails_with(SVC_G2 "params = min_limit=0,queue_size=0\n",
			"t.conf:4: service web: params for gradient2: gradient2: min_limit must be "
			"in [1, 1e+06]");
	load_fails_with(
		SVC_G2 "params = queue_size=0\n",
		"t.conf:4: service web: params for gradient2: gradient2: queue_size must be");
	load_fails(SVC_G2 "initial_limit = 500\n",
		   "t.conf:4: service web: limits for gradient2: gradient2: initial_limit 500 is "
		   "above max_limit 200");
}

/* The agent runs the algorithm with the service's limits in its params: so is it checked. */
static void limit_keys_are_checked_with_the_algorithm(void **state)
{
	struct ls_config *c =
		load_ok(SVC_WEB "algorithm = aimd\nmin_limit = 50\nmax_limit = 500\n");

	(void)state;
	ls_config_free(&c);
	load_fails(SVC_WEB "algorithm = aimd\nmin_limit = 500\n",
		   "t.conf:4: service web: limits for aimd: aimd: min_limit 500 is above max_limit "
		   "200");
	load_fails(SVC_G2 "min_limit = 50\nparams = max_limit=30\n",
		   "t.conf:4: service web: limits for gradient2: gradient2: min_limit 50 is above "
		   "max_limit 30");
}

/*
 * A limit key and the same parameter under its other name in params (envoy's
 * max_concurrency_limit is max_limit, gradient2's max_concurrency too): the
 * agent added the key after params, so the key won and the params' value was
 * ignored without a word. The file is refused; `limit algo` params, checked
 * against the service's keys, win as they do under the key's own name.
 */
static void a_limit_key_and_its_alias_in_params_are_not_both_taken(void **state)
{
	struct ls_service_meta meta = {.algo = "envoy", .max_limit = 500, .min_limit = 5};
	struct ls_algo *a = NULL;
	char text[256];

	(void)state;
	load_fails(SVC_WEB
		   "algorithm = envoy\nmax_limit = 500\nparams = max_concurrency_limit=50\n",
		   "t.conf:5: service web: max_limit is given both as a key and in params");
	load_fails(SVC_WEB "algorithm = envoy\nmin_limit = 5\nparams = min_concurrency_limit=4\n",
		   "t.conf:5: service web: min_limit is given both as a key and in params");
	load_fails(SVC_WEB "max_limit = 500\nparams = max_concurrency=50\n",
		   "t.conf:4: service web: max_limit is given both as a key and in params");

	snprintf(meta.algo_params, sizeof(meta.algo_params), "max_concurrency_limit=50");
	assert_int_equal(ls_service_algo(&meta, 0, &a, err, sizeof(err)), 0);
	assert_int_equal(ls_algo_params_text(a, text, sizeof(text)), 0);
	if (!strstr(text, "max_concurrency_limit=50,") || !strstr(text, "min_concurrency_limit=5,"))
		fail_msg("params of the service's envoy: %s", text);
	ls_algo_destroy(&a);
}

static void booleans_take_every_documented_spelling(void **state)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "TRUE"};
	static const char *const no[] = {"false", "no", "off", "0"};
	char text[128];
	struct ls_config *c;

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), SVC_WEB "shadow = %s\n", yes[i]);
		c = load_ok(text);
		assert_true(c->svc[0].shadow);
		ls_config_free(&c);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		snprintf(text, sizeof(text), SVC_WEB "shadow = %s\n", no[i]);
		c = load_ok(text);
		assert_false(c->svc[0].shadow);
		ls_config_free(&c);
	}
	load_fails(SVC_WEB "shadow = maybe\n",
		   "t.conf:3: [service web] shadow: 'maybe' is not true or false");
}

static void empty_value_is_rejected(void **state)
{
	(void)state;
	load_fails(SVC_WEB "limit =\n", "t.conf:3: [service web] limit: empty value");
}

static void first_error_in_the_file_is_the_one_reported(void **state)
{
	(void)state;
	load_fails(SVC_WEB "limit = x\nshadow = maybe\n",
		   "t.conf:3: [service web] limit: 'x' is neither auto nor a number in "
		   "1..1000000");
}

static void missing_file_is_reported_with_errno(void **state)
{
	struct ls_config *c = NULL;

	(void)state;
	assert_int_equal(ls_config_load_file("/nonexistent/x.conf", &c, err, sizeof(err)), -ENOENT);
	assert_null(c);
	assert_string_equal(err, "/nonexistent/x.conf: No such file or directory");
}

static void file_errors_name_the_file_path(void **state)
{
	char path[] = "/tmp/ls-test-XXXXXX";
	struct ls_config *c = NULL;
	int fd = mkstemp(path);
	char want[128];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[service web]\nlisten = *:0\n", 27), 27);
	close(fd);
	assert_int_equal(ls_config_load_file(path, &c, err, sizeof(err)), -EINVAL);
	unlink(path);
	assert_null(c);
	snprintf(want, sizeof(want), "%s:2: [service web] listen: '0' is not a port (1..65535)",
		 path);
	assert_string_equal(err, want);
}

static void example_config_loads(void **state)
{
	char path[512], *slash;
	struct ls_config *c = NULL;
	const struct ls_service_conf *web;

	(void)state;
	snprintf(path, sizeof(path), "%s", __FILE__);
	slash = strrchr(path, '/');
	snprintf(slash ? slash + 1 : path, sizeof(path) - (size_t)(slash ? slash + 1 - path : 0),
		 "../../doc/loadshed.conf.example");
	if (ls_config_load_file(path, &c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c->nr_services, 2);
	web = &c->svc[0];
	assert_string_equal(web->name, "web");
	assert_int_equal(web->nr_listen, 2);
	assert_int_equal(web->nr_classes, 3);
	assert_int_equal(web->nr_rules, 3);
	assert_int_equal(web->default_class, 2); /* batch */
	assert_string_equal(c->svc[1].name, "api");
	assert_int_equal(c->svc[1].pinned_limit, 200);
	assert_int_equal(c->svc[1].nr_classes, 1); /* the implicit default */
	ls_config_free(&c);
}

/* ---- the CLI form ---------------------------------------------------------- */

static struct ls_config *cli_config(void)
{
	struct ls_config *c = NULL;

	assert_int_equal(ls_config_new(&c), 0);
	assert_int_equal(ls_config_set(c, "service web", "listen", "*:8080", 0, err, sizeof(err)),
			 0);
	return c;
}

static void class_spec_builds_what_the_file_form_builds(void **state)
{
	struct ls_config *cli = cli_config();
	struct ls_config *file;
	const struct ls_service_conf *a, *b;

	(void)state;
	assert_int_equal(ls_config_set(cli, "service web", "limit", "100", 0, err, sizeof(err)), 0);
	assert_int_equal(ls_config_add_class_spec(cli, "web",
						  "high=20%,reset,src=10.1.0.0/16+2001:db8::/32,"
						  "dport=8080,dscp=46",
						  err, sizeof(err)),
			 0);
	assert_int_equal(ls_config_add_class_spec(cli, "web", "low=0%", err, sizeof(err)), 0);
	assert_int_equal(ls_config_add_class_spec(cli, "web", "health=bypass,src=10.9.9.9", err,
						  sizeof(err)),
			 0);
	assert_int_equal(ls_config_validate(cli, err, sizeof(err)), 0);
	file = load_ok(SVC_WEB "limit = 100\n[class web.high]\nshare = 20%\naction = reset\n"
			       "match = src 10.1.0.0/16,2001:db8::/32 dport 8080 dscp 46\n"
			       "[class web.low]\nshare = 0%\n"
			       "[class web.health]\naction = bypass\nmatch = src 10.9.9.9\n");
	a = &cli->svc[0];
	b = &file->svc[0];
	assert_int_equal(a->pinned_limit, b->pinned_limit);
	assert_int_equal(a->nr_classes, 4);
	assert_int_equal(a->nr_classes, b->nr_classes);
	for (uint32_t i = 0; i < a->nr_classes; i++) {
		assert_string_equal(a->classes[i].name, b->classes[i].name);
		assert_int_equal(a->classes[i].share_ppm, b->classes[i].share_ppm);
		assert_int_equal(a->classes[i].action, b->classes[i].action);
	}
	assert_int_equal(a->nr_rules, 2);
	assert_int_equal(a->nr_rules, b->nr_rules);
	for (uint32_t i = 0; i < a->nr_rules; i++) {
		assert_int_equal(a->rules[i].nr_src, b->rules[i].nr_src);
		assert_memory_equal(a->rules[i].src, b->rules[i].src, sizeof(a->rules[i].src));
		assert_int_equal(a->rules[i].port_lo, b->rules[i].port_lo);
		assert_int_equal(a->rules[i].port_hi, b->rules[i].port_hi);
		assert_int_equal(a->rules[i].dscp, b->rules[i].dscp);
		assert_int_equal(a->rules[i].cls, b->rules[i].cls);
	}
	assert_int_equal(a->default_class, 3);
	assert_int_equal(a->default_class, b->default_class);
	ls_config_free(&cli);
	ls_config_free(&file);
}

static void class_spec_with_a_bad_prefix_leaves_the_service_unchanged(void **state)
{
	struct ls_config *c = cli_config();

	(void)state;
	assert_int_equal(ls_config_add_class_spec(c, "web", "high=20%,reset,src=10.1.0.0/33", err,
						  sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "--class high=20%,reset,src=10.1.0.0/33: [class web.high] match: "
				 "'10.1.0.0/33' is not a prefix (ADDR/LEN, LEN up to 32 for IPv4, "
				 "128 for IPv6)");
	assert_int_equal(c->svc[0].nr_classes, 0);
	assert_int_equal(c->svc[0].nr_rules, 0);
	/* the same name is free again */
	assert_int_equal(ls_config_add_class_spec(c, "web", "high=20%", err, sizeof(err)), 0);
	ls_config_free(&c);
}

static void class_spec_errors_say_what_is_wrong(void **state)
{
	struct ls_config *c = cli_config();

	(void)state;
	assert_int_equal(ls_config_add_class_spec(c, "web", "high", err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "--class high: expected NAME=SHARE[,ACTION][,REQUEST_ACTION][,src=P["
			    "+P...]][,dport=N[-M]][,dscp=N]");
	assert_int_equal(ls_config_add_class_spec(c, "web", "high=5%,sport=80", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(
		err, "--class high=5%,sport=80: 'sport=80' is not understood; "
		     "expected NAME=SHARE[,ACTION][,REQUEST_ACTION][,src=P[+P...]][,dport=N[-M]][,"
		     "dscp=N]");
	assert_int_equal(ls_config_add_class_spec(c, "web", "high=150%", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "--class high=150%: [class web.high] share: 150% is more than "
				 "100%");
	assert_int_equal(ls_config_add_class_spec(c, "api", "high=5%", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--class high=5%: no service api");
	assert_int_equal(ls_config_add_class_spec(c, "web", "high=5%", err, sizeof(err)), 0);
	assert_int_equal(ls_config_add_class_spec(c, "web", "high=6%", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--class high=6%: class high given twice");
	ls_config_free(&c);
}

static void cli_share_sum_is_checked_by_the_same_validation(void **state)
{
	struct ls_config *c = cli_config();

	(void)state;
	assert_int_equal(ls_config_add_class_spec(c, "web", "a=70%", err, sizeof(err)), 0);
	assert_int_equal(ls_config_add_class_spec(c, "web", "b=40%", err, sizeof(err)), 0);
	assert_int_equal(ls_config_validate(c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "service web: the class shares add up to 110.0000%, over 100%");
	assert_false(c->validated);
	ls_config_free(&c);
}

static void failed_set_changes_nothing(void **state)
{
	struct ls_config *c = cli_config();

	(void)state;
	assert_int_equal(ls_config_set(c, "service api", "limt", "5", 0, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(c->nr_services, 1);
	assert_int_equal(ls_config_set(c, "class web.a", "share", "x", 0, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(c->svc[0].nr_classes, 0);
	assert_int_equal(ls_config_set(c, "service web", "listen", "*:81,*:0", 0, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(c->svc[0].nr_listen, 1);
	assert_int_equal(ls_config_set(c, "class web.a", "share", "5%", 0, err, sizeof(err)), 0);
	assert_int_equal(ls_config_set(c, "class web.a", "match", "dscp 99", 0, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(c->svc[0].nr_classes, 1);
	assert_int_equal(c->svc[0].nr_rules, 0);
	ls_config_free(&c);
}

static void set_after_validation_is_refused(void **state)
{
	struct ls_config *c = cli_config();

	(void)state;
	assert_int_equal(ls_config_validate(c, err, sizeof(err)), 0);
	assert_true(c->validated);
	assert_int_equal(ls_config_set(c, "service web", "limit", "5", 0, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "the config is already validated and frozen");
	/* validating again changes nothing: still one implicit default class */
	assert_int_equal(ls_config_validate(c, err, sizeof(err)), 0);
	assert_int_equal(c->svc[0].nr_classes, 1);
	ls_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(agent_defaults_apply_when_the_section_is_absent),
		cmocka_unit_test(agent_durations_take_their_units),
		cmocka_unit_test(metrics_address_is_numeric_and_a_wildcard_only_when_written),
		cmocka_unit_test(interval_outside_100ms_to_1s_is_rejected),
		cmocka_unit_test(fail_open_after_shorter_than_two_intervals_is_rejected),
		cmocka_unit_test(half_open_timeout_is_refused_as_no_longer_used),
		cmocka_unit_test(stall_timeout_takes_off_and_a_range),
		cmocka_unit_test(admit_and_max_connections_are_parsed_and_checked),
		cmocka_unit_test(shares_parse_exactly_in_ppm),
		cmocka_unit_test(rtt_is_the_mean_or_a_percentile),
		cmocka_unit_test(share_sum_over_100_percent_is_rejected),
		cmocka_unit_test(share_sum_of_exactly_100_percent_is_accepted),
		cmocka_unit_test(share_over_100_percent_or_too_precise_is_rejected),
		cmocka_unit_test(unknown_key_is_rejected_with_file_and_line),
		cmocka_unit_test(unknown_section_is_rejected),
		cmocka_unit_test(key_outside_a_section_is_rejected),
		cmocka_unit_test(key_given_twice_is_rejected_naming_the_first_line),
		cmocka_unit_test(file_value_for_a_key_the_command_line_set_is_a_conflict),
		cmocka_unit_test(syntax_error_names_its_line),
		cmocka_unit_test(indented_line_never_continues_the_previous_value),
		cmocka_unit_test(line_too_long_is_rejected_with_its_line),
		cmocka_unit_test(comments_are_ignored),
		cmocka_unit_test(listen_forms_all_parse),
		cmocka_unit_test(bad_listen_values_are_rejected),
		cmocka_unit_test(duplicate_listen_port_and_address_across_services_is_rejected),
		cmocka_unit_test(any_address_and_one_address_may_share_a_port),
		cmocka_unit_test(no_service_is_rejected),
		cmocka_unit_test(service_without_listen_is_rejected),
		cmocka_unit_test(bad_service_and_class_names_are_rejected),
		cmocka_unit_test(class_before_its_service_is_rejected),
		cmocka_unit_test(service_name_with_dots_keeps_its_classes_apart),
		cmocka_unit_test(match_rule_fields_are_parsed),
		cmocka_unit_test(rules_keep_file_order_across_classes),
		cmocka_unit_test(match_dport_outside_the_listen_ports_is_rejected),
		cmocka_unit_test(bad_match_conditions_are_rejected),
		cmocka_unit_test(bad_prefixes_are_rejected),
		cmocka_unit_test(prefix_host_bits_are_cleared),
		cmocka_unit_test(implicit_default_class_comes_last_with_no_share_and_drop),
		cmocka_unit_test(default_class_names_a_configured_class),
		cmocka_unit_test(class_named_default_is_the_default_without_an_implicit_one),
		cmocka_unit_test(unknown_default_class_is_rejected),
		cmocka_unit_test(bypass_class_with_a_share_is_rejected),
		cmocka_unit_test(bypass_classes_do_not_count_toward_shares_or_the_16),
		cmocka_unit_test(seventeen_classes_with_shares_are_rejected),
		cmocka_unit_test(more_than_32_rules_are_rejected),
		cmocka_unit_test(limits_must_be_ordered_min_initial_max),
		cmocka_unit_test(limit_is_auto_or_pinned),
		cmocka_unit_test(limit_keys_are_checked_with_the_algorithm),
		cmocka_unit_test(a_limit_key_and_its_alias_in_params_are_not_both_taken),
		cmocka_unit_test(unknown_algorithm_is_rejected),
		cmocka_unit_test(params_are_checked_for_syntax_and_by_the_algorithm),
		cmocka_unit_test(booleans_take_every_documented_spelling),
		cmocka_unit_test(empty_value_is_rejected),
		cmocka_unit_test(first_error_in_the_file_is_the_one_reported),
		cmocka_unit_test(missing_file_is_reported_with_errno),
		cmocka_unit_test(file_errors_name_the_file_path),
		cmocka_unit_test(example_config_loads),
		cmocka_unit_test(class_spec_builds_what_the_file_form_builds),
		cmocka_unit_test(class_spec_with_a_bad_prefix_leaves_the_service_unchanged),
		cmocka_unit_test(class_spec_errors_say_what_is_wrong),
		cmocka_unit_test(cli_share_sum_is_checked_by_the_same_validation),
		cmocka_unit_test(failed_set_changes_nothing),
		cmocka_unit_test(set_after_validation_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
