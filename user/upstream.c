// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * [upstream NAME]
 *   dest = 10.0.0.0/24:9000, 10.1.0.5:9000-9010, [2001:db8::/64]:443
 *                                  required; may repeat; at most 16 per upstream
 *   cgroup = /path                 the callers' cgroup v2, relative to the cgroup2
 *                                  mount; default its root (every process)
 *   sliding_window_type = count_based | time_based
 *   sliding_window_size = 100      calls (1..100000) or seconds (1..3600)
 *   minimum_number_of_calls = 100
 *   failure_rate_threshold = 50%   (0, 100]; "50" is 50 % as in resilience4j
 *   slow_call_rate_threshold = 100%
 *   slow_call_duration_threshold = 60s
 *   wait_duration_in_open_state = 60s
 *   permitted_number_of_calls_in_half_open_state = 10
 *   max_wait_duration_in_half_open_state = 0    0: wait for every trial call
 *   automatic_transition_from_open_to_half_open_enabled = true
 *                                  the agent's round makes it: only true is accepted
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "clock.h"
#include "upstream.h"

#define MAX_DURATION_NS (24 * 3600 * LS_NS_PER_S)

struct up_ctx {
	struct ls_upstream_conf *u;
	const char *key;
	char *err;
	size_t errlen;
};

static int __attribute__((format(printf, 2, 3))) bad(const struct up_ctx *x, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(x->err, x->errlen, "[upstream %s] %s: %s", x->u->name, x->key, msg);
	return -EINVAL;
}

static int parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint32_t n;

	if (ls_parse_u32(v, &n) || n < lo || n > hi)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_port_range(char *v, uint16_t *lo, uint16_t *hi)
{
	char *dash = strchr(v, '-');
	uint32_t a, b;

	if (dash)
		*dash = '\0';
	if (parse_u32(v, 1, 65535, &a))
		return -EINVAL;
	b = a;
	if (dash && parse_u32(dash + 1, 1, 65535, &b))
		return -EINVAL;
	if (b < a)
		return -EINVAL;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

/* ADDR[/LEN]:PORT[-PORT] or [ADDR6[/LEN]]:PORT[-PORT] */
static int parse_dest(const struct up_ctx *x, char *item, struct ls_upstream_dest *d)
{
	char *addr = item, *port, shown[512];
	bool masked;

	if (*item == '[') {
		char *close = strchr(item, ']');

		if (!close || close[1] != ':')
			return bad(x, "'%s' is not [IPV6[/LEN]]:PORT", item);
		*close = '\0';
		addr = item + 1;
		port = close + 2;
	} else {
		port = strrchr(item, ':');
		if (!port || strchr(item, ':') != port)
			return bad(x, "'%s' is not ADDR[/LEN]:PORT[-PORT] (IPv6 in brackets)",
				   item);
		*port++ = '\0';
	}
	if (ls_parse_prefix(addr, &d->pfx, &masked))
		return bad(x, "'%s' is not an address or prefix", addr);
	/* IPv4 is kept IPv4-mapped: [::ffff:A.B.C.D] would silently be A.B.C.D. */
	if (*item == '[' && ls_addr_is_v4_mapped(d->pfx.addr) && d->pfx.len_bits >= 96)
		return bad(x, "'%s' is an IPv4-mapped address: write the IPv4 address", addr);
	strcpy(shown, port); /* parse_port_range cuts it at the dash */
	if (parse_port_range(port, &d->port_lo, &d->port_hi))
		return bad(x, "'%s' is not a port or a range LO-HI in 1..65535", shown);
	return 0;
}

static int set_dest(struct up_ctx *x, const char *v)
{
	struct ls_upstream_conf *u = x->u, save = *u;
	char buf[512], *item, *next;

	if (strlen(v) >= sizeof(buf))
		return bad(x, "too long");
	strcpy(buf, v);
	for (item = buf; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		item = ls_trim(item);
		if (u->nr_dest == LS_MAX_UPSTREAM_DESTS) {
			*u = save;
			return bad(x, "more than %d destinations", LS_MAX_UPSTREAM_DESTS);
		}
		if (parse_dest(x, item, &u->dest[u->nr_dest])) {
			*u = save;
			return -EINVAL;
		}
		u->nr_dest++;
	}
	return 0;
}

static int set_cgroup(struct up_ctx *x, const char *v)
{
	const char *p = v;

	if (strlen(v) >= LS_CGROUP_PATH_LEN)
		return bad(x, "longer than %d characters", LS_CGROUP_PATH_LEN - 1);
	/* A path inside the hierarchy: no "..", nothing that is not a plain name. */
	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return bad(x, "'%s': '.' and '..' are not allowed", v);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
				return bad(x, "'%s' has a control character", v);
		p += n;
	}
	snprintf(x->u->cgroup, sizeof(x->u->cgroup), "%s", v);
	return 0;
}

static int set_window_type(struct up_ctx *x, const char *v)
{
	if (!strcmp(v, "count_based"))
		x->u->brk.time_based = false;
	else if (!strcmp(v, "time_based"))
		x->u->brk.time_based = true;
	else
		return bad(x, "'%s' is not count_based or time_based", v);
	return 0;
}

static int set_window_size(struct up_ctx *x, const char *v)
{
	if (parse_u32(v, 1, LS_BRK_MAX_WINDOW_CALLS, &x->u->brk.window_size))
		return bad(x, "'%s' is not a number of calls (or seconds) in 1..%u", v,
			   LS_BRK_MAX_WINDOW_CALLS);
	return 0;
}

static int set_minimum_calls(struct up_ctx *x, const char *v)
{
	if (parse_u32(v, 1, LS_BRK_MAX_WINDOW_CALLS, &x->u->brk.minimum_calls))
		return bad(x, "'%s' is not a number in 1..%u", v, LS_BRK_MAX_WINDOW_CALLS);
	return 0;
}

/* 50%, 50 or 12.5% (resilience4j's thresholds are percentages): (0, 100]. */
static int parse_rate(const struct up_ctx *x, const char *v, uint32_t *ppm)
{
	char buf[32];
	size_t n = strlen(v);
	double d;

	if (!n || n >= sizeof(buf))
		return bad(x, "'%s' is not a percentage", v);
	strcpy(buf, v);
	if (buf[n - 1] == '%')
		buf[n - 1] = '\0';
	if (ls_parse_real(buf, &d) || !(d > 0) || d > 100)
		return bad(x, "'%s' is not a percentage in (0, 100]", v);
	*ppm = (uint32_t)(d * 10000 + 0.5);
	if (!*ppm)
		return bad(x, "'%s' is too small", v);
	return 0;
}

static int set_failure_rate(struct up_ctx *x, const char *v)
{
	return parse_rate(x, v, &x->u->brk.failure_rate_ppm);
}

static int set_slow_rate(struct up_ctx *x, const char *v)
{
	return parse_rate(x, v, &x->u->brk.slow_rate_ppm);
}

static int parse_duration(const struct up_ctx *x, const char *v, uint64_t lo, uint64_t *out)
{
	uint64_t ns;

	if (!strcmp(v, "0") && !lo) {
		*out = 0;
		return 0;
	}
	if (ls_parse_duration_ns(v, &ns))
		return bad(x, "'%s' is not a duration with a unit (ns, us, ms, s, m)", v);
	if (ns < lo || ns > MAX_DURATION_NS)
		return bad(x, "%s is out of range (%llums..24h)", v,
			   (unsigned long long)(lo / LS_NS_PER_MS));
	*out = ns;
	return 0;
}

static int set_slow_duration(struct up_ctx *x, const char *v)
{
	return parse_duration(x, v, 1 * LS_NS_PER_MS, &x->u->brk.slow_ns);
}

static int set_open_wait(struct up_ctx *x, const char *v)
{
	return parse_duration(x, v, 1 * LS_NS_PER_MS, &x->u->brk.open_wait_ns);
}

static int set_half_open_permits(struct up_ctx *x, const char *v)
{
	if (parse_u32(v, 1, LS_BRK_MAX_PERMITS, &x->u->brk.half_open_permits))
		return bad(x, "'%s' is not a number in 1..%u", v, LS_BRK_MAX_PERMITS);
	return 0;
}

static int set_half_open_max_wait(struct up_ctx *x, const char *v)
{
	return parse_duration(x, v, 0, &x->u->brk.half_open_max_wait_ns);
}

static int set_automatic(struct up_ctx *x, const char *v)
{
	bool on;

	if (!ls_parse_bool(v, &on) && on)
		return 0;
	return bad(x, "the agent's round moves OPEN to HALF_OPEN itself: only true is possible");
}

struct up_key {
	const char *name;
	int (*set)(struct up_ctx *x, const char *v);
	bool repeatable;
};

static const struct up_key up_keys[LS_UPSTREAM_KEYS + 1] = {
	{"dest", set_dest, true},
	{"cgroup", set_cgroup},
	{"sliding_window_type", set_window_type},
	{"sliding_window_size", set_window_size},
	{"minimum_number_of_calls", set_minimum_calls},
	{"failure_rate_threshold", set_failure_rate},
	{"slow_call_rate_threshold", set_slow_rate},
	{"slow_call_duration_threshold", set_slow_duration},
	{"wait_duration_in_open_state", set_open_wait},
	{"permitted_number_of_calls_in_half_open_state", set_half_open_permits},
	{"max_wait_duration_in_half_open_state", set_half_open_max_wait},
	{"automatic_transition_from_open_to_half_open_enabled", set_automatic},
	{NULL},
};

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 31)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

int ls_upstream_set(struct ls_upstreams *u, const char *name, const char *key, const char *value,
		    int line, char *err, size_t errlen)
{
	struct up_ctx x = {.key = key, .err = err, .errlen = errlen};
	bool made = false;
	uint32_t i, k;

	for (i = 0; i < u->nr && strcmp(u->up[i].name, name); i++)
		;
	if (i == u->nr) {
		if (!name_ok(name)) {
			snprintf(err, errlen,
				 "[upstream %.40s]: not an upstream name ([A-Za-z0-9_.-], 1..31)",
				 name);
			return -EINVAL;
		}
		if (u->nr == LS_MAX_UPSTREAMS) {
			snprintf(err, errlen, "[upstream %s]: more than %d upstreams", name,
				 LS_MAX_UPSTREAMS);
			return -EINVAL;
		}
		memset(&u->up[i], 0, sizeof(u->up[i]));
		snprintf(u->up[i].name, sizeof(u->up[i].name), "%s", name);
		ls_brk_conf_default(&u->up[i].brk);
		u->up[i].line = line;
		made = true;
	}
	x.u = &u->up[i];
	for (k = 0; up_keys[k].name && strcmp(up_keys[k].name, key); k++)
		;
	if (!up_keys[k].name) {
		snprintf(err, errlen,
			 "[upstream %s] %s: unknown key (expected dest, cgroup or one of "
			 "resilience4j's CircuitBreaker settings in snake_case, see "
			 "loadshed.conf(5))",
			 name, key);
		return -EINVAL;
	}
	if (!up_keys[k].repeatable && (x.u->keys_seen & (1u << k))) {
		bad(&x, "given twice (first on line %d)", x.u->key_line[k]);
		return -EINVAL;
	}
	if (!*value) {
		bad(&x, "empty value");
		return -EINVAL;
	}
	if (up_keys[k].set(&x, value))
		return -EINVAL;
	if (made)
		u->nr++;
	x.u->keys_seen |= 1u << k;
	if (!x.u->key_line[k])
		x.u->key_line[k] = line;
	return 0;
}

static bool ranges_meet(const struct ls_upstream_dest *a, const struct ls_upstream_dest *b)
{
	return a->port_lo <= b->port_hi && b->port_lo <= a->port_hi;
}

int ls_upstreams_validate(const struct ls_upstreams *u, int *line, char *err, size_t errlen)
{
	uint32_t total = 0;

	for (uint32_t i = 0; i < u->nr; i++) {
		const struct ls_upstream_conf *a = &u->up[i];
		struct ls_brk b;

		*line = a->line;
		if (!a->nr_dest) {
			snprintf(err, errlen, "[upstream %s]: no dest (ADDR[/LEN]:PORT[-PORT])",
				 a->name);
			return -EINVAL;
		}
		if (a->brk.time_based && a->brk.window_size > LS_BRK_MAX_WINDOW_S) {
			snprintf(
				err, errlen,
				"[upstream %s] sliding_window_size: a time-based window is at most "
				"%u seconds",
				a->name, LS_BRK_MAX_WINDOW_S);
			return -EINVAL;
		}
		if (ls_brk_init(&b, &a->brk, 0, err, errlen))
			return -EINVAL;
		ls_brk_free(&b);
		total += a->nr_dest;
		for (uint32_t d = 0; d < a->nr_dest; d++) {
			uint32_t holders = 0;

			for (uint32_t j = 0; j < u->nr; j++) {
				const struct ls_upstream_conf *o = &u->up[j];

				for (uint32_t e = 0; e < o->nr_dest; e++) {
					if (!ls_prefix_contains(&o->dest[e].pfx, &a->dest[d].pfx))
						continue;
					holders++;
					/* The same destination in two upstreams: whose call is it?
					 */
					if (j != i &&
					    ls_prefix_contains(&a->dest[d].pfx, &o->dest[e].pfx) &&
					    ranges_meet(&a->dest[d], &o->dest[e])) {
						char p[64];

						ls_prefix_format(&a->dest[d].pfx, p, sizeof(p));
						snprintf(err, errlen,
							 "[upstream %s] dest: %s ports %u-%u are "
							 "also upstream %s's",
							 a->name, p, a->dest[d].port_lo,
							 a->dest[d].port_hi, o->name);
						return -EINVAL;
					}
				}
			}
			if (holders > LS_BRK_DEST_WAYS) {
				snprintf(err, errlen,
					 "[upstream %s] dest: an address is in more than %d dest "
					 "entries",
					 a->name, LS_BRK_DEST_WAYS);
				return -EINVAL;
			}
		}
	}
	if (total > LS_MAX_DESTS) {
		snprintf(err, errlen, "more than %d dest entries over all upstreams", LS_MAX_DESTS);
		return -EINVAL;
	}
	*line = 0;
	return 0;
}
