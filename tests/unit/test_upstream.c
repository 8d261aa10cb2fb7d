// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* [upstream NAME] sections (user/upstream.c): what is taken, and every refusal with its message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "upstream.h"
#include "config_fixture.h"

#define SVC "[service web]\nlisten = *:8080\n"

static void defaults_are_resilience4js(void **state)
{
	struct ls_config *c = load_ok(SVC "[upstream db]\ndest = 10.0.0.1:5432\n");
	const struct ls_upstream_conf *u = &c->upstreams.up[0];

	(void)state;
	assert_int_equal(c->upstreams.nr, 1);
	assert_string_equal(u->name, "db");
	assert_string_equal(u->cgroup, "");
	assert_false(u->brk.time_based);
	assert_int_equal(u->brk.window_size, 100);
	assert_int_equal(u->brk.minimum_calls, 100);
	assert_int_equal(u->brk.failure_rate_ppm, 500000);
	assert_int_equal(u->brk.slow_rate_ppm, 1000000);
	assert_int_equal(u->brk.slow_ns, 60000000000ull);
	assert_int_equal(u->brk.open_wait_ns, 60000000000ull);
	assert_int_equal(u->brk.half_open_permits, 10);
	assert_int_equal(u->brk.half_open_max_wait_ns, 0);
	ls_config_free(&c);
}

static void every_setting_is_read(void **state)
{
	struct ls_config *c =
		load_ok(SVC "[upstream db]\n"
			    "dest = 10.0.0.0/24:9000-9010, [2001:db8::/64]:443\n"
			    "dest = 10.1.0.5:80\n"
			    "cgroup = /system.slice/app.service\n"
			    "sliding_window_type = time_based\n"
			    "sliding_window_size = 30\n"
			    "minimum_number_of_calls = 5\n"
			    "failure_rate_threshold = 12.5%\n"
			    "slow_call_rate_threshold = 80\n"
			    "slow_call_duration_threshold = 250ms\n"
			    "wait_duration_in_open_state = 2s\n"
			    "permitted_number_of_calls_in_half_open_state = 3\n"
			    "max_wait_duration_in_half_open_state = 10s\n"
			    "automatic_transition_from_open_to_half_open_enabled = true\n");
	const struct ls_upstream_conf *u = &c->upstreams.up[0];

	(void)state;
	assert_int_equal(u->nr_dest, 3);
	assert_int_equal(u->dest[0].pfx.len_bits, 96 + 24);
	assert_int_equal(u->dest[0].port_lo, 9000);
	assert_int_equal(u->dest[0].port_hi, 9010);
	assert_int_equal(u->dest[1].pfx.len_bits, 64);
	assert_int_equal(u->dest[1].port_lo, 443);
	assert_int_equal(u->dest[1].port_hi, 443);
	assert_int_equal(u->dest[2].pfx.len_bits, 128);
	assert_string_equal(u->cgroup, "/system.slice/app.service");
	assert_true(u->brk.time_based);
	assert_int_equal(u->brk.window_size, 30);
	assert_int_equal(u->brk.minimum_calls, 5);
	assert_int_equal(u->brk.failure_rate_ppm, 125000);
	assert_int_equal(u->brk.slow_rate_ppm, 800000);
	assert_int_equal(u->brk.slow_ns, 250000000ull);
	assert_int_equal(u->brk.open_wait_ns, 2000000000ull);
	assert_int_equal(u->brk.half_open_permits, 3);
	assert_int_equal(u->brk.half_open_max_wait_ns, 10000000000ull);
	ls_config_free(&c);
}

static void bad_destinations_are_refused(void **state)
{
	(void)state;
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1\n",
			"t.conf:4: [upstream db] dest: '10.0.0.1' is not ADDR[/LEN]:PORT[-PORT]");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:9010-9000\n",
			"t.conf:4: [upstream db] dest: '9010-9000' is not a port or a range");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:0\n",
			"t.conf:4: [upstream db] dest: '0' is not a port");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:65536\n",
			"t.conf:4: [upstream db] dest: '65536' is not a port");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:80-\n",
			"t.conf:4: [upstream db] dest: '80-' is not a port");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.0/33:80\n",
			"t.conf:4: [upstream db] dest: '10.0.0.0/33' is not an address or prefix");
	load_fails_with(SVC "[upstream db]\ndest = 2001:db8::1:443\n",
			"t.conf:4: [upstream db] dest: '2001:db8::1:443' is not ADDR[/LEN]:PORT");
	load_fails_with(
		SVC "[upstream db]\ndest = [2001:db8::1:443\n",
		"t.conf:4: [upstream db] dest: '[2001:db8::1:443' is not [IPV6[/LEN]]:PORT");
	load_fails_with(SVC "[upstream db]\ndest = db.example:5432\n",
			"t.conf:4: [upstream db] dest: 'db.example' is not an address or prefix");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:80,\n",
			"t.conf:4: [upstream db] dest: '' is not ADDR[/LEN]:PORT");
	load_fails_with(SVC "[upstream db]\ncgroup = /x\n",
			"t.conf:4: [upstream db]: no dest (ADDR[/LEN]:PORT[-PORT])");
}

/* An IPv4-mapped IPv6 address would silently be the IPv4 one: written as such, or refused. */
static void an_ipv4_mapped_destination_is_refused(void **state)
{
	(void)state;
	load_fails_with(SVC "[upstream db]\ndest = [::ffff:10.0.0.1]:5432\n",
			"t.conf:4: [upstream db] dest: '::ffff:10.0.0.1' is an IPv4-mapped "
			"address: write the IPv4 address");
	load_fails_with(SVC "[upstream db]\ndest = [::ffff:10.0.0.0/120]:5432\n",
			"t.conf:4: [upstream db] dest: '::ffff:10.0.0.0/120' is an IPv4-mapped");
}

static void the_same_destination_in_two_upstreams_is_refused(void **state)
{
	struct ls_config *c;

	(void)state;
	load_fails_with(
		SVC "[upstream a]\ndest = 10.0.0.0/24:80-90\n"
		    "[upstream b]\ndest = 10.0.0.0/24:90-100\n",
		"t.conf:4: [upstream a] dest: 10.0.0.0/24 ports 80-90 are also upstream b's");
	/* A more specific prefix, or other ports, is another destination: the longest match wins.
	 */
	c = load_ok(SVC "[upstream a]\ndest = 10.0.0.0/24:80\n"
			"[upstream b]\ndest = 10.0.0.5:80, 10.0.0.0/24:81\n");
	assert_int_equal(c->upstreams.nr, 2);
	ls_config_free(&c);
}

static void too_many_destinations_are_refused(void **state)
{
	char text[4096] = SVC "[upstream a]\n";

	(void)state;
	for (int i = 1; i <= LS_MAX_UPSTREAM_DESTS + 1; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "dest = 10.0.0.%d:1\n",
			 i);
	load_fails_with(text, "t.conf:20: [upstream a] dest: more than 16 destinations");
	/* An address in more prefixes than a trie entry holds. */
	strcpy(text, SVC "[upstream a]\ndest = 10.0.0.1:1\n");
	for (int len = 31; len >= 23; len--)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "dest = 10.0.0.0/%d:%d\n", len, 33 - len);
	load_fails_with(text, "t.conf:4: [upstream a] dest: an address is in more than 8 dest");
}

static void cgroup_paths_stay_inside_the_hierarchy(void **state)
{
	(void)state;
	load_fails_with(
		SVC "[upstream db]\ndest = 10.0.0.1:1\ncgroup = /a/../../etc\n",
		"t.conf:5: [upstream db] cgroup: '/a/../../etc': '.' and '..' are not allowed");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\ncgroup = ..\n",
			"t.conf:5: [upstream db] cgroup: '..': '.' and '..' are not allowed");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\ncgroup = ./x\n",
			"t.conf:5: [upstream db] cgroup: './x': '.' and '..' are not allowed");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\ncgroup = /a\x01\n",
			"t.conf:5: [upstream db] cgroup: '/a\x01' has a control character");
}

static void bad_settings_are_refused(void **state)
{
	(void)state;
	load_fails_with(
		SVC "[upstream db]\ndest = 10.0.0.1:1\nsliding_window_type = sliding\n",
		"t.conf:5: [upstream db] sliding_window_type: 'sliding' is not count_based");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\nsliding_window_size = 0\n",
			"t.conf:5: [upstream db] sliding_window_size: '0' is not a number");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\nsliding_window_size = -1\n",
			"t.conf:5: [upstream db] sliding_window_size: '-1' is not a number");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\nsliding_window_type = time_based\n"
			    "sliding_window_size = 3601\n",
			"t.conf:4: [upstream db] sliding_window_size: a time-based window is at "
			"most 3600 seconds");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\nfailure_rate_threshold = 0%\n",
			"t.conf:5: [upstream db] failure_rate_threshold: '0%' is not a percentage");
	load_fails_with(
		SVC "[upstream db]\ndest = 10.0.0.1:1\nfailure_rate_threshold = 101\n",
		"t.conf:5: [upstream db] failure_rate_threshold: '101' is not a percentage");
	load_fails_with(
		SVC "[upstream db]\ndest = 10.0.0.1:1\nslow_call_rate_threshold = nan\n",
		"t.conf:5: [upstream db] slow_call_rate_threshold: 'nan' is not a percentage");
	load_fails_with(
		SVC "[upstream db]\ndest = 10.0.0.1:1\nslow_call_duration_threshold = 0\n",
		"t.conf:5: [upstream db] slow_call_duration_threshold: '0' is not a duration");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\nwait_duration_in_open_state = 25h\n",
			"t.conf:5: [upstream db] wait_duration_in_open_state: 25h is out of range "
			"(1ms..24h)");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\n"
			    "permitted_number_of_calls_in_half_open_state = 0\n",
			"t.conf:5: [upstream db] permitted_number_of_calls_in_half_open_state: '0' "
			"is not a number");
	load_fails_with(
		SVC "[upstream db]\ndest = 10.0.0.1:1\n"
		    "automatic_transition_from_open_to_half_open_enabled = false\n",
		"t.conf:5: [upstream db] automatic_transition_from_open_to_half_open_enabled: "
		"the agent's round moves OPEN to HALF_OPEN itself");
	load_fails_with(
		SVC "[upstream db]\ndest = 10.0.0.1:1\nminimum_number_of_calls = 5\n"
		    "minimum_number_of_calls = 6\n",
		"t.conf:6: [upstream db] minimum_number_of_calls: given twice (first on line 5)");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\nfailureRateThreshold = 50\n",
			"t.conf:5: [upstream db] failureRateThreshold: unknown key");
	load_fails_with(SVC "[upstream db]\ndest = 10.0.0.1:1\nminimum_number_of_calls =\n",
			"t.conf:5: [upstream db] minimum_number_of_calls: empty value");
}

static void bad_names_and_too_many_upstreams_are_refused(void **state)
{
	char text[8192] = SVC;

	(void)state;
	load_fails_with(SVC "[upstream d/b]\ndest = 10.0.0.1:1\n",
			"t.conf:4: [upstream d/b]: not an upstream name");
	load_fails_with(
		SVC "[upstream 0123456789012345678901234567890123]\ndest = 10.0.0.1:1\n",
		"t.conf:4: [upstream 0123456789012345678901234567890123]: not an upstream name");
	for (int i = 0; i <= LS_MAX_UPSTREAMS; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "[upstream u%d]\ndest = 10.0.%d.1:1\n", i, i);
	load_fails_with(text, "t.conf:36: [upstream u16]: more than 16 upstreams");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_resilience4js),
		cmocka_unit_test(every_setting_is_read),
		cmocka_unit_test(bad_destinations_are_refused),
		cmocka_unit_test(an_ipv4_mapped_destination_is_refused),
		cmocka_unit_test(the_same_destination_in_two_upstreams_is_refused),
		cmocka_unit_test(too_many_destinations_are_refused),
		cmocka_unit_test(cgroup_paths_stay_inside_the_hierarchy),
		cmocka_unit_test(bad_settings_are_refused),
		cmocka_unit_test(bad_names_and_too_many_upstreams_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
