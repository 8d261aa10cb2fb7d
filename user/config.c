// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The policy config, parsed with libinih and validated whole.
 *
 * Format (INI; doc/loadshed.conf.example is a commented example):
 *
 *   [agent]                     optional; every key has a default
 *   interval = 100ms            control-loop period, 100ms..1s
 *   idle_timeout = 300s         established flow idle timeout, 1s..24h
 *   stall_timeout = 10s         admit = requests: a request outstanding this long
 *                               gives its slot back (a client that stalls mid-request);
 *                               1s..1h, or off
 *   fail_open_after = 3s        heartbeat age after which the dataplane admits
 *                               everything; at least 2 intervals, at most 1h, or `off`
 *   max_flows = 131072          flow table size, 1024..16777216
 *   log_change = 10%            the agent logs limit changes larger than this
 *   metrics = 127.0.0.1:9542    the agent serves Prometheus metrics at
 *                               http://ADDR/metrics: A.B.C.D:PORT, [IPV6]:PORT, or
 *                               *:PORT (every address); default off
 *   watch_config = true         the agent reloads the config file when it changes
 *
 *   [service NAME]              NAME: [A-Za-z0-9_.-]{1,31}; at most 16 services
 *   listen = *:8080             required; comma-separated, may repeat: *:PORT, PORT,
 *                               [::]:PORT and 0.0.0.0:PORT (all any-address),
 *                               A.B.C.D:PORT, [IPV6]:PORT; at most 16 per service
 *   algorithm = delay           fixed | aimd | vegas | gradient2 | envoy | delay
 *                               (default delay)
 *   params = k=v,k=v            the algorithm's parameters (see `loadshed replay --help`)
 *   limit = auto                auto: the algorithm sets L; N: L pinned at N
 *   initial_limit = 20          optional; default: the algorithm's own
 *   min_limit = 1               optional; min <= initial <= max
 *   max_limit = 1000            optional
 *   shadow = false              true: decide and count would_shed, admit anyway
 *   rtt = mean                  a window's RTT for the algorithm: mean, or a
 *                               percentile of its latencies (p50, p90, p99.9)
 *   admit = connections         what L counts: connections (each admitted when its
 *                               handshake completes), or requests outstanding on
 *                               persistent connections, each admitted when it starts
 *   max_defer = 1s              admit = requests: a request deferred this long is
 *                               aborted, not served late; 10ms..1h, or off
 *   max_connections = N         optional cap on the service's tracked connections,
 *                               enforced at the SYN and the handshake; 1..16777216
 *   default_class = NAME        class of traffic no rule matches. Without it a
 *                               class named "default" is that class, and when
 *                               there is none an implicit "default" (share 0,
 *                               action drop) is added after the configured ones.
 *
 *   [class SERVICE.CLASS]       CLASS: [A-Za-z0-9_-]{1,31}; after its [service]
 *   share = 20%                 guaranteed share of L under contention: 20%,
 *                               12.5%, 0.2; default 0 (spare capacity only)
 *   action = drop               drop | reset | bypass (never shed, never
 *                               counted, no share); default drop
 *   request_action = defer      admit = requests: defer (drop the request's segments;
 *                               the client's TCP retransmits it, decided again) or
 *                               abort (RST to the client, the server's socket closed)
 *   match = src P,P dport N-M dscp N
 *                               one rule per line, conditions ANDed, src
 *                               prefixes ORed; dport must cover one of the
 *                               service's listen ports; dscp 0..63
 *
 * Durations take a unit: ns, us, ms, s or m. Booleans: true/false, yes/no,
 * on/off, 1/0. Comments: a line starting with ; or #, or " ;" after a
 * value. Lines are at most 198 characters; put more prefixes in further
 * match lines. Indentation is ignored: a value never continues on the next
 * line.
 *
 * A service's rules keep their order in the file, whatever class they
 * belong to: first match wins, at most 32 rules per service. At most 16
 * classes with a share per service, bypass classes aside; the shares of a
 * service add up to at most 100 %. A port+address pair belongs to one
 * service; a service on one address and another on the any-address may
 * share a port (the address-specific one takes its address's traffic).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include <ini.h>

#include "algo.h"
#include "addr.h"
#include "config.h"
#include "log.h"

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

#define MIN_INTERVAL_NS	      (100 * NS_PER_MS)
#define MAX_INTERVAL_NS	      (1 * NS_PER_S)
#define MIN_IDLE_TIMEOUT_NS   (1 * NS_PER_S)
#define MAX_IDLE_TIMEOUT_NS   (24 * 3600 * NS_PER_S)
#define MIN_STALL_TIMEOUT_NS  (1 * NS_PER_S)
#define MIN_MAX_DEFER_NS      (10 * NS_PER_MS)
#define MAX_MAX_DEFER_NS      (3600 * NS_PER_S)
#define MAX_STALL_TIMEOUT_NS  (3600 * NS_PER_S)
#define MAX_FAILOPEN_AFTER_NS (3600 * NS_PER_S)
#define MIN_MAX_FLOWS	      1024u
#define MAX_MAX_FLOWS	      (1u << 24)

#define IMPLICIT_DEFAULT_CLASS "default"

/* Room for a CLI rule: 16 IPv6 prefixes and the rest. */
#define MATCH_TEXT_LEN 1024

/* ---- defaults: the one place they are written ----------------------------- */

static void agent_defaults(struct ls_agent_conf *a)
{
	memset(a, 0, sizeof(*a));
	a->interval_ns = 100 * NS_PER_MS;
	a->idle_timeout_ns = 300 * NS_PER_S;
	a->stall_timeout_ns = 10 * NS_PER_S;
	a->failopen_after_ns = 3 * NS_PER_S;
	a->max_flows = LS_DEFAULT_MAX_FLOWS;
	a->log_change_ppm = LS_PPM / 10;
	a->watch_config = true;
}

static void service_defaults(struct ls_service_conf *s, const char *name, int line)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->algo, sizeof(s->algo), "%s", LS_ALGO_DEFAULT);
	s->pinned_limit = 0;  /* auto */
	s->initial_limit = 0; /* the algorithm's defaults */
	s->min_limit = 0;
	s->max_limit = 0;
	s->shadow = false;
	s->max_defer_ms = 1000;
	s->line = line;
}

static void class_defaults(struct ls_class_conf *k, const char *name, int line)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->share_ppm = 0;
	k->action = LS_ACT_DROP;
	k->line = line;
}

void ls_config_init(struct ls_config *c)
{
	memset(c, 0, sizeof(*c));
	agent_defaults(&c->agent);
}

int ls_config_new(struct ls_config **out)
{
	struct ls_config *c = malloc(sizeof(*c));

	if (!c)
		return -ENOMEM;
	ls_config_init(c);
	*out = c;
	return 0;
}

void ls_config_free(struct ls_config **c)
{
	if (!c)
		return;
	free(*c);
	*c = NULL;
}

/* ---- errors -------------------------------------------------------------- */

/* Writes "FILE:LINE: message" (or the message alone without a line). */
static int __attribute__((format(printf, 5, 6)))
errorf(char *err, size_t errlen, const struct ls_config *c, int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(err, errlen, "%s:%d: %s", c->source[0] ? c->source : "config", line, msg);
	else
		snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}

/* ---- small parsers -------------------------------------------------------- */

static bool name_ok(const char *s, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n >= LS_NAME_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
			return false;
	return true;
}

static bool service_name_ok(const char *s)
{
	return name_ok(s, "_.-");
}

static bool class_name_ok(const char *s)
{
	return name_ok(s, "_-");
}

static int parse_u32_range(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint32_t n;

	if (ls_parse_u32(v, &n) || n < lo || n > hi)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_port(const char *v, uint16_t *out)
{
	uint32_t n;

	if (parse_u32_range(v, 1, 65535, &n))
		return -EINVAL;
	*out = (uint16_t)n;
	return 0;
}

/*
 * A share as exact parts per million: "20%", "12.5%" (up to 4 decimals) or
 * a fraction "0.2" (up to 6). Integers all the way, so 33.3333% is exactly
 * 333333 ppm and no share rounds across 100 %.
 */
static int parse_share_ppm(const char *v, uint32_t *out)
{
	size_t n = strlen(v);
	bool pct = n && v[n - 1] == '%';
	uint32_t unit = pct ? 10000 : LS_PPM, max_decimals = pct ? 4 : 6;
	uint64_t whole = 0, frac = 0, frac_unit;
	uint32_t decimals = 0;
	const char *p = v;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > 100)
			return -ERANGE;
	}
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++, decimals++) {
			if (decimals == max_decimals)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*p - '0');
		}
	if (p != v + n - (pct ? 1 : 0))
		return -EINVAL;
	frac_unit = unit;
	for (uint32_t i = 0; i < decimals; i++)
		frac_unit /= 10;
	if (whole * unit + frac * frac_unit > LS_PPM)
		return -ERANGE;
	*out = (uint32_t)(whole * unit + frac * frac_unit);
	return 0;
}

static int parse_action(const char *v, uint8_t *out)
{
	for (uint8_t a = LS_ACT_DROP; a <= LS_ACT_BYPASS; a++)
		if (!strcmp(v, ls_action_name(a))) {
			*out = a;
			return 0;
		}
	return -EINVAL;
}

static int parse_request_action(const char *v, uint8_t *out)
{
	for (uint8_t a = LS_REQ_DEFER; a <= LS_REQ_ABORT; a++)
		if (!strcmp(v, ls_request_action_name(a))) {
			*out = a;
			return 0;
		}
	return -EINVAL;
}

const char *ls_request_action_name(uint8_t action)
{
	return action == LS_REQ_ABORT ? "abort" : action == LS_REQ_DEFER ? "defer" : "?";
}

const char *ls_admit_name(uint8_t admit)
{
	return admit == LS_ADMIT_REQUESTS ? "requests" : "connections";
}

const char *ls_action_name(uint8_t action)
{
	switch (action) {
	case LS_ACT_DROP:
		return "drop";
	case LS_ACT_RESET:
		return "reset";
	case LS_ACT_BYPASS:
		return "bypass";
	}
	return "?";
}

/* ---- the section and key being set ---------------------------------------- */

struct set_ctx {
	struct ls_config *c;
	struct ls_service_conf *svc; /* NULL in [agent] */
	struct ls_class_conf *cls;   /* NULL outside a class */
	const char *section;
	const char *key;
	int line;
	char *err;
	size_t errlen;
};

/* An error about the key being set: "FILE:LINE: [section] key: message". */
static int __attribute__((format(printf, 2, 3))) bad(const struct set_ctx *x, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return errorf(x->err, x->errlen, x->c, x->line, "[%s] %s: %s", x->section, x->key, msg);
}

static int set_duration(const struct set_ctx *x, const char *v, uint64_t lo_ns, uint64_t hi_ns,
			uint64_t *out_ns)
{
	uint64_t ns;

	if (ls_parse_duration_ns(v, &ns))
		return bad(x, "'%s' is not a duration with a unit (ns, us, ms, s, m)", v);
	if (ns < lo_ns || ns > hi_ns)
		return bad(x, "%s is out of range (%llums..%llums)", v,
			   (unsigned long long)(lo_ns / NS_PER_MS),
			   (unsigned long long)(hi_ns / NS_PER_MS));
	*out_ns = ns;
	return 0;
}

/* ---- [agent] --------------------------------------------------------------- */

static int set_interval(struct set_ctx *x, const char *v)
{
	return set_duration(x, v, MIN_INTERVAL_NS, MAX_INTERVAL_NS, &x->c->agent.interval_ns);
}

static int set_idle_timeout(struct set_ctx *x, const char *v)
{
	return set_duration(x, v, MIN_IDLE_TIMEOUT_NS, MAX_IDLE_TIMEOUT_NS,
			    &x->c->agent.idle_timeout_ns);
}

static int set_stall_timeout(struct set_ctx *x, const char *v)
{
	if (!strcmp(v, "off")) {
		x->c->agent.stall_timeout_ns = 0;
		return 0;
	}
	return set_duration(x, v, MIN_STALL_TIMEOUT_NS, MAX_STALL_TIMEOUT_NS,
			    &x->c->agent.stall_timeout_ns);
}

static int set_fail_open_after(struct set_ctx *x, const char *v)
{
	if (!strcmp(v, "off")) {
		x->c->agent.failopen_after_ns = 0;
		return 0;
	}
	return set_duration(x, v, 2 * MIN_INTERVAL_NS, MAX_FAILOPEN_AFTER_NS,
			    &x->c->agent.failopen_after_ns);
}

static int set_max_flows(struct set_ctx *x, const char *v)
{
	if (parse_u32_range(v, MIN_MAX_FLOWS, MAX_MAX_FLOWS, &x->c->agent.max_flows))
		return bad(x, "'%s' is not a number in %u..%u", v, MIN_MAX_FLOWS, MAX_MAX_FLOWS);
	return 0;
}

static int set_log_change(struct set_ctx *x, const char *v)
{
	if (parse_share_ppm(v, &x->c->agent.log_change_ppm))
		return bad(x, "'%s' is not a fraction: 10%% or 0.1", v);
	return 0;
}

/*
 * The host of a HOST:PORT (the colon already cut): an IPv6 address is in
 * brackets, which are taken off in place; one without is refused.
 */
static int unbracket(const struct set_ctx *x, char **host)
{
	char *h = *host;
	size_t n = strlen(h);

	if (h[0] != '[') {
		if (strchr(h, ':'))
			return bad(x, "an IPv6 address goes in brackets: [ADDR]:PORT");
		return 0;
	}
	if (n < 3 || h[n - 1] != ']')
		return bad(x, "'%s' is not an [IPv6] address", h);
	h[n - 1] = '\0';
	h++;
	if (!strchr(h, ':'))
		return bad(x, "'%s' in brackets is not an IPv6 address", h);
	*host = h;
	return 0;
}

/*
 * Where the agent serves metrics. The address is always written: a bare
 * port would listen on every address, and that must be asked for (*:PORT,
 * 0.0.0.0:PORT or [::]:PORT). Numeric only: a name resolved at each reload
 * could move the endpoint without the file changing.
 */
static int set_metrics(struct set_ctx *x, const char *v)
{
	struct ls_metrics_addr *out = &x->c->agent.metrics, m = {};
	char buf[80], *host = buf, *colon;
	uint16_t port;
	bool v4;

	if (!strcmp(v, "off")) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	if (strlen(v) >= sizeof(buf))
		return bad(x, "'%s' is too long for an address", v);
	strcpy(buf, v);
	colon = strrchr(buf, ':');
	if (!colon)
		return bad(x,
			   "'%s' has no address: write ADDR:PORT, e.g. 127.0.0.1:%s "
			   "(*:%s for every address)",
			   v, v, v);
	*colon = '\0';
	if (parse_port(colon + 1, &port))
		return bad(x, "'%s' is not a port (1..65535)", colon + 1);
	if (!strcmp(host, "*")) {
		m.family = LS_METRICS_DUAL;
		m.port = port;
		*out = m;
		return 0;
	}
	if (unbracket(x, &host))
		return -EINVAL;
	if (ls_parse_addr(host, m.addr, &v4))
		return bad(x,
			   "'%s' is not a numeric IPv4 or IPv6 address (or * for every "
			   "address)",
			   host);
	if (!v4 && ls_addr_is_v4_mapped(m.addr))
		return bad(x, "'%s' is an IPv4-mapped address: write the IPv4 address", host);
	m.family = v4 ? LS_METRICS_V4 : LS_METRICS_V6;
	m.port = port;
	*out = m;
	return 0;
}

static int set_watch_config(struct set_ctx *x, const char *v)
{
	if (ls_parse_bool(v, &x->c->agent.watch_config))
		return bad(x, "'%s' is not true or false", v);
	return 0;
}

/* ---- [service NAME] ---------------------------------------------------------- */

/* One listen item: *:P, P, [::]:P, 0.0.0.0:P, A.B.C.D:P, [IPV6]:P. */
static int parse_listen(const struct set_ctx *x, char *item, struct ls_listen_conf *l)
{
	char *colon, *host = item, *port;
	bool v4;

	memset(l, 0, sizeof(*l));
	l->line = x->line;
	colon = strrchr(item, ':');
	if (!colon) {
		host = NULL;
		port = item;
	} else {
		*colon = '\0';
		port = colon + 1;
		if (unbracket(x, &host))
			return -EINVAL;
	}
	if (parse_port(port, &l->port))
		return bad(x, "'%s' is not a port (1..65535)", port);
	if (!host || !strcmp(host, "*")) {
		l->any = true;
		return 0;
	}
	if (ls_parse_addr(host, l->addr, &v4))
		return bad(x, "'%s' is not an address (or * for any)", host);
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
		memset(l->addr, 0, sizeof(l->addr));
		l->any = true;
	}
	return 0;
}

static int set_listen(struct set_ctx *x, const char *v)
{
	struct ls_service_conf *s = x->svc;
	struct ls_listen_conf added[LS_MAX_LISTEN];
	char buf[1024], *item;
	uint32_t n = 0;

	if (strlen(v) >= sizeof(buf))
		return bad(x, "value too long");
	strcpy(buf, v);
	for (char *rest = buf; (item = strsep(&rest, ","));) {
		item = ls_trim(item);
		if (!*item)
			return bad(x, "empty item in the list");
		if (s->nr_listen + n == LS_MAX_LISTEN)
			return bad(x, "more than %d listen addresses", LS_MAX_LISTEN);
		if (parse_listen(x, item, &added[n]))
			return -EINVAL;
		n++;
	}
	/* all or nothing: a bad item adds none of the others */
	memcpy(&s->listen[s->nr_listen], added, n * sizeof(added[0]));
	s->nr_listen += n;
	return 0;
}

static void algo_names(char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ls_algo_count() && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
				 ls_algo_at(i)->name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int set_algorithm(struct set_ctx *x, const char *v)
{
	char names[128];

	if (!ls_algo_find(v)) {
		algo_names(names, sizeof(names));
		return bad(x, "unknown algorithm '%s' (one of: %s)", v, names);
	}
	snprintf(x->svc->algo, sizeof(x->svc->algo), "%s", v);
	return 0;
}

static bool param_key_ok(const char *k, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)k[i]) && !isdigit((unsigned char)k[i]) && k[i] != '_')
			return false;
	return true;
}

static bool param_value_ok(const char *v, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (isspace((unsigned char)v[i]) || v[i] == '=')
			return false;
	return true;
}

/* "k=v,k=v": keys [a-z0-9_], values non-empty and without spaces. */
static int check_params_syntax(const struct set_ctx *x, const char *v)
{
	for (const char *item = v;; item++) {
		size_t n = strcspn(item, ",");
		const char *eq = memchr(item, '=', n);

		if (!eq || !param_key_ok(item, (size_t)(eq - item)) ||
		    !param_value_ok(eq + 1, n - (size_t)(eq - item) - 1))
			return bad(x, "'%.*s' is not name=value", (int)n, item);
		item += n;
		if (!*item)
			return 0;
	}
}

static int set_params(struct set_ctx *x, const char *v)
{
	if (strlen(v) >= sizeof(x->svc->algo_params))
		return bad(x, "longer than %zu characters", sizeof(x->svc->algo_params) - 1);
	if (check_params_syntax(x, v))
		return -EINVAL;
	snprintf(x->svc->algo_params, sizeof(x->svc->algo_params), "%s", v);
	return 0;
}

static int set_a_limit(const struct set_ctx *x, const char *v, uint32_t *out)
{
	if (parse_u32_range(v, 1, LS_MAX_LIMIT, out))
		return bad(x, "'%s' is not a number in 1..%u", v, LS_MAX_LIMIT);
	return 0;
}

static int set_limit(struct set_ctx *x, const char *v)
{
	if (!strcmp(v, "auto")) {
		x->svc->pinned_limit = 0;
		return 0;
	}
	if (parse_u32_range(v, 1, LS_MAX_LIMIT, &x->svc->pinned_limit))
		return bad(x, "'%s' is neither auto nor a number in 1..%u", v, LS_MAX_LIMIT);
	return 0;
}

static int set_initial_limit(struct set_ctx *x, const char *v)
{
	return set_a_limit(x, v, &x->svc->initial_limit);
}

static int set_min_limit(struct set_ctx *x, const char *v)
{
	return set_a_limit(x, v, &x->svc->min_limit);
}

static int set_max_limit(struct set_ctx *x, const char *v)
{
	return set_a_limit(x, v, &x->svc->max_limit);
}

static int set_shadow(struct set_ctx *x, const char *v)
{
	if (ls_parse_bool(v, &x->svc->shadow))
		return bad(x, "'%s' is not true or false", v);
	return 0;
}

/* mean, or pNN / pNN.N: the quantile of a window's latencies fed to the algorithm. */
static int set_rtt(struct set_ctx *x, const char *v)
{
	char *end;
	double p;

	if (!strcmp(v, "mean")) {
		x->svc->rtt_quantile_ppm = 0;
		return 0;
	}
	/* pNN or pNN.N…: digits only, so no nan, inf, hex or exponent slips in. */
	if (v[0] != 'p' || !isdigit((unsigned char)v[1]) ||
	    strspn(v + 1, "0123456789.") != strlen(v + 1))
		return bad(x, "'%s' is not mean or a percentile p1..p99.9", v);
	p = strtod(v + 1, &end);
	if (*end || p < 1 || p > 99.9)
		return bad(x, "'%s' is not mean or a percentile p1..p99.9", v);
	x->svc->rtt_quantile_ppm = (uint32_t)(p * 10000 + 0.5);
	return 0;
}

static int set_admit(struct set_ctx *x, const char *v)
{
	if (!strcmp(v, "connections"))
		x->svc->admit = LS_ADMIT_CONNECTIONS;
	else if (!strcmp(v, "requests"))
		x->svc->admit = LS_ADMIT_REQUESTS;
	else
		return bad(x, "'%s' is neither connections nor requests", v);
	return 0;
}

static int set_max_defer(struct set_ctx *x, const char *v)
{
	uint64_t ns;

	if (!strcmp(v, "off")) {
		ns = 0;
	} else if (set_duration(x, v, MIN_MAX_DEFER_NS, MAX_MAX_DEFER_NS, &ns)) {
		return -EINVAL;
	}
	x->svc->max_defer_ms = (uint32_t)(ns / NS_PER_MS);
	x->svc->max_defer_given = true;
	return 0;
}

static int set_max_connections(struct set_ctx *x, const char *v)
{
	if (parse_u32_range(v, 1, MAX_MAX_FLOWS, &x->svc->max_connections))
		return bad(x, "'%s' is not a number in 1..%u", v, MAX_MAX_FLOWS);
	return 0;
}

static int set_default_class(struct set_ctx *x, const char *v)
{
	if (!class_name_ok(v))
		return bad(x, "'%s' is not a class name ([A-Za-z0-9_-], 1..31)", v);
	snprintf(x->svc->default_class_name, sizeof(x->svc->default_class_name), "%s", v);
	return 0;
}

/* ---- [class SERVICE.CLASS] -------------------------------------------------- */

static int set_share(struct set_ctx *x, const char *v)
{
	int rc = parse_share_ppm(v, &x->cls->share_ppm);

	if (rc == -ERANGE)
		return bad(x, "%s is more than 100%%", v);
	if (rc)
		return bad(x, "'%s' is not a share (20%%, 12.5%% or 0.2; at most 1 ppm precise)",
			   v);
	x->cls->share_given = true;
	return 0;
}

static int set_action(struct set_ctx *x, const char *v)
{
	if (parse_action(v, &x->cls->action))
		return bad(x, "'%s' is not drop, reset or bypass", v);
	return 0;
}

static int set_request_action(struct set_ctx *x, const char *v)
{
	if (parse_request_action(v, &x->cls->req_action))
		return bad(x, "'%s' is not defer or abort", v);
	x->cls->req_action_given = true;
	return 0;
}

static int parse_src_list(const struct set_ctx *x, char *list, struct ls_rule_conf *r)
{
	char *item, shown[64];
	bool masked;

	while ((item = strsep(&list, ","))) {
		struct ls_prefix *p = &r->src[r->nr_src];

		item = ls_trim(item);
		if (!*item)
			return bad(x, "empty prefix in the src list");
		if (r->nr_src == LS_MAX_RULE_PREFIXES)
			return bad(
				x,
				"more than %d source prefixes in one rule; use another match line",
				LS_MAX_RULE_PREFIXES);
		if (ls_parse_prefix(item, p, &masked))
			return bad(x,
				   "'%s' is not a prefix (ADDR/LEN, LEN up to 32 for IPv4, 128 "
				   "for IPv6)",
				   item);
		if (masked) {
			ls_prefix_format(p, shown, sizeof(shown));
			pr_debug("%s:%d: %s has host bits set; taken as %s",
				 x->c->source[0] ? x->c->source : "config", x->line, item, shown);
		}
		r->nr_src++;
	}
	if (!r->nr_src)
		return bad(x, "src needs at least one prefix");
	return 0;
}

static int parse_dport(const struct set_ctx *x, char *v, struct ls_rule_conf *r)
{
	char *dash = strchr(v, '-');

	if (dash)
		*dash = '\0';
	if (parse_port(v, &r->port_lo) || (dash && parse_port(dash + 1, &r->port_hi)))
		return bad(x, "dport needs a port or a range N-M of ports 1..65535");
	if (!dash)
		r->port_hi = r->port_lo;
	if (r->port_lo > r->port_hi)
		return bad(x, "dport range %u-%u runs backwards", r->port_lo, r->port_hi);
	return 0;
}

static int parse_dscp(const struct set_ctx *x, const char *v, struct ls_rule_conf *r)
{
	uint32_t d;

	if (parse_u32_range(v, 0, 63, &d))
		return bad(x, "dscp '%s' is not a number in 0..63", v);
	r->dscp = (uint8_t)d;
	return 0;
}

/*
 * "src P,P dport N-M dscp N": each condition at most once. A src list may
 * have spaces after its commas.
 */
static int parse_match(const struct set_ctx *x, const char *v, struct ls_rule_conf *r)
{
	char buf[MATCH_TEXT_LEN], src[MATCH_TEXT_LEN], *save = NULL, *tok, *val;
	bool seen_src = false, seen_dport = false, seen_dscp = false;

	if (strlen(v) >= sizeof(buf))
		return bad(x, "rule too long");
	strcpy(buf, v);
	r->dscp = LS_DSCP_ANY;
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		bool *seen = !strcmp(tok, "src")     ? &seen_src
			     : !strcmp(tok, "dport") ? &seen_dport
			     : !strcmp(tok, "dscp")  ? &seen_dscp
						     : NULL;

		if (!seen)
			return bad(x, "unknown condition '%s' (src, dport or dscp)", tok);
		if (*seen)
			return bad(x, "%s given twice in one rule", tok);
		*seen = true;
		val = strtok_r(NULL, " \t", &save);
		if (!val)
			return bad(x, "%s needs a value", tok);
		if (seen == &seen_src) {
			snprintf(src, sizeof(src), "%s", val);
			while (src[strlen(src) - 1] == ',' && (val = strtok_r(NULL, " \t", &save)))
				strncat(src, val, sizeof(src) - strlen(src) - 1);
			if (parse_src_list(x, src, r))
				return -EINVAL;
		} else if (seen == &seen_dport) {
			if (parse_dport(x, val, r))
				return -EINVAL;
		} else if (parse_dscp(x, val, r)) {
			return -EINVAL;
		}
	}
	if (!seen_src && !seen_dport && !seen_dscp)
		return bad(x, "a rule needs a condition: src, dport or dscp");
	return 0;
}

static int set_match(struct set_ctx *x, const char *v)
{
	struct ls_service_conf *s = x->svc;
	struct ls_rule_conf *r;

	if (s->nr_rules == LS_MAX_RULES)
		return bad(x, "service %s has more than %d rules", s->name, LS_MAX_RULES);
	r = &s->rules[s->nr_rules];
	memset(r, 0, sizeof(*r));
	r->line = x->line;
	r->cls = (uint8_t)(x->cls - s->classes);
	if (parse_match(x, v, r))
		return -EINVAL;
	s->nr_rules++;
	return 0;
}

/* ---- keys of each section type ------------------------------------------- */

struct key_def {
	const char *name;
	int (*set)(struct set_ctx *x, const char *value);
	bool repeatable; /* adds on each line rather than setting once */
};

static const struct key_def agent_keys[] = {
	{"interval", set_interval},
	{"idle_timeout", set_idle_timeout},
	{"stall_timeout", set_stall_timeout},
	{"fail_open_after", set_fail_open_after},
	{"max_flows", set_max_flows},
	{"log_change", set_log_change},
	{"metrics", set_metrics},
	{"watch_config", set_watch_config},
	{NULL},
};

static const struct key_def service_keys[] = {
	{"listen", set_listen, true},
	{"algorithm", set_algorithm},
	{"params", set_params},
	{"limit", set_limit},
	{"initial_limit", set_initial_limit},
	{"min_limit", set_min_limit},
	{"max_limit", set_max_limit},
	{"shadow", set_shadow},
	{"rtt", set_rtt},
	{"admit", set_admit},
	{"max_connections", set_max_connections},
	{"max_defer", set_max_defer},
	{"default_class", set_default_class},
	{NULL},
};

static const struct key_def class_keys[] = {
	{"share", set_share},
	{"action", set_action},
	{"request_action", set_request_action},
	{"match", set_match, true},
	{NULL},
};

static void key_names(const struct key_def *keys, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; keys[i].name && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", keys[i].name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int apply_key(struct set_ctx *x, const struct key_def *keys, uint32_t *seen, int *lines,
		     const char *value)
{
	char names[256];
	size_t i;

	for (i = 0; keys[i].name && strcmp(keys[i].name, x->key); i++)
		;
	if (!keys[i].name) {
		if (!strcmp(x->key, "half_open_timeout"))
			return bad(
				x,
				"no longer used: a connection counts from its completed handshake, "
				"so no half-open one is tracked (remove the line)");
		key_names(keys, names, sizeof(names));
		return bad(x, "unknown key (expected one of: %s)", names);
	}
	if (!keys[i].repeatable && (*seen & (1u << i))) {
		if (lines[i] > 0)
			return bad(x, "given twice (first on line %d)", lines[i]);
		if (x->line > 0)
			return bad(x, "given twice (also on the command line)");
		return bad(x, "given twice");
	}
	if (!*value)
		return bad(x, "empty value");
	if (keys[i].set(x, value))
		return -EINVAL;
	*seen |= 1u << i;
	if (!lines[i])
		lines[i] = x->line;
	return 0;
}

/* ---- sections ------------------------------------------------------------ */

struct ls_service_conf *ls_config_service(struct ls_config *c, const char *name)
{
	for (uint32_t i = 0; i < c->nr_services; i++)
		if (!strcmp(c->svc[i].name, name))
			return &c->svc[i];
	return NULL;
}

int ls_service_class_slot(const struct ls_service_conf *s, const char *name)
{
	for (uint32_t i = 0; i < s->nr_classes; i++)
		if (!strcmp(s->classes[i].name, name))
			return (int)i;
	return -1;
}

static int service_section(struct set_ctx *x, const char *name)
{
	struct ls_config *c = x->c;

	x->svc = ls_config_service(c, name);
	if (x->svc)
		return 0;
	if (!service_name_ok(name))
		return errorf(x->err, x->errlen, c, x->line,
			      "[%s]: '%s' is not a service name ([A-Za-z0-9_.-], 1..31)",
			      x->section, name);
	if (c->nr_services == LS_MAX_SERVICES)
		return errorf(x->err, x->errlen, c, x->line, "[%s]: more than %d services",
			      x->section, LS_MAX_SERVICES);
	x->svc = &c->svc[c->nr_services++];
	service_defaults(x->svc, name, x->line);
	return 0;
}

/* "SERVICE.CLASS": the class name has no dot, so the last one splits. */
static int class_section(struct set_ctx *x, char *name)
{
	struct ls_config *c = x->c;
	char *dot = strrchr(name, '.');
	struct ls_service_conf *s;
	int slot;

	if (!dot)
		return errorf(x->err, x->errlen, c, x->line,
			      "[%s]: a class section is [class SERVICE.CLASS]", x->section);
	*dot = '\0';
	if (!class_name_ok(dot + 1))
		return errorf(x->err, x->errlen, c, x->line,
			      "[%s]: '%s' is not a class name ([A-Za-z0-9_-], 1..31)", x->section,
			      dot + 1);
	s = ls_config_service(c, name);
	if (!s)
		return errorf(x->err, x->errlen, c, x->line,
			      "[%s]: no [service %s] before this class", x->section, name);
	x->svc = s;
	slot = ls_service_class_slot(s, dot + 1);
	if (slot >= 0) {
		x->cls = &s->classes[slot];
		return 0;
	}
	if (s->nr_classes == LS_MAX_CLASSES)
		return errorf(x->err, x->errlen, c, x->line, "[%s]: more than %d classes in %s",
			      x->section, LS_MAX_CLASSES, s->name);
	x->cls = &s->classes[s->nr_classes++];
	class_defaults(x->cls, dot + 1, x->line);
	return 0;
}

int ls_config_set(struct ls_config *c, const char *section, const char *key, const char *value,
		  int line, char *err, size_t errlen)
{
	struct set_ctx x = {
		.c = c, .section = section, .key = key, .line = line, .err = err, .errlen = errlen};
	char buf[128], *kind, *name;
	uint32_t nr_classes;

	if (c->validated)
		return errorf(err, errlen, c, line, "the config is already validated and frozen");
	if (strlen(section) >= sizeof(buf))
		return errorf(err, errlen, c, line, "[%.40s...]: section name too long", section);
	strcpy(buf, section);
	kind = ls_trim(buf);
	name = kind + strcspn(kind, " \t");
	if (*name)
		*name++ = '\0';
	name = ls_trim(name);
	if (!*kind)
		return errorf(err, errlen, c, line, "%s: key outside any [section]", key);
	if (!strcmp(kind, "agent") && !*name)
		return apply_key(&x, agent_keys, &c->agent.keys_seen, c->agent.key_line, value);
	if (!strcmp(kind, "service") && *name) {
		uint32_t nr_services = c->nr_services;

		if (service_section(&x, name))
			return -EINVAL;
		if (!apply_key(&x, service_keys, &x.svc->keys_seen, x.svc->key_line, value))
			return 0;
		c->nr_services = nr_services; /* a failed key creates no service */
		return -EINVAL;
	}
	if (!strcmp(kind, "class") && *name) {
		if (class_section(&x, name))
			return -EINVAL;
		nr_classes = x.svc->nr_classes;
		if (!apply_key(&x, class_keys, &x.cls->keys_seen, x.cls->key_line, value))
			return 0;
		if (x.cls == &x.svc->classes[nr_classes - 1] && !x.cls->keys_seen)
			x.svc->nr_classes--; /* nor a class */
		return -EINVAL;
	}
	if (!strcmp(kind, "upstream") && *name) {
		char msg[512];

		if (!ls_upstream_set(&c->upstreams, name, key, value, line, msg, sizeof(msg)))
			return 0;
		return errorf(err, errlen, c, line, "%s", msg);
	}
	return errorf(err, errlen, c, line,
		      "[%s]: unknown section (expected [agent], [service NAME], "
		      "[class SERVICE.CLASS] or [upstream NAME])",
		      section);
}

/* ---- the one-line class form of the CLI ---------------------------------- */

struct class_spec {
	char share[32];
	char action[16];
	char req_action[16];
	char match[MATCH_TEXT_LEN];
};

static int spec_item(struct class_spec *cs, char *item, bool first)
{
	uint8_t action;
	size_t used = strlen(cs->match);
	const char *cond = NULL;
	char *eq = strchr(item, '=');

	if (!parse_action(item, &action)) {
		if (cs->action[0])
			return -EINVAL;
		snprintf(cs->action, sizeof(cs->action), "%s", item);
		return 0;
	}
	if (!parse_request_action(item, &action)) {
		if (cs->req_action[0])
			return -EINVAL;
		snprintf(cs->req_action, sizeof(cs->req_action), "%s", item);
		return 0;
	}
	if (first) {
		if (strlen(item) >= sizeof(cs->share))
			return -EINVAL;
		strcpy(cs->share, item);
		return 0;
	}
	if (!eq)
		return -EINVAL;
	*eq = '\0';
	if (!strcmp(item, "src")) {
		cond = "src";
		for (char *p = eq + 1; *p; p++)
			if (*p == '+')
				*p = ',';
	} else if (!strcmp(item, "dport") || !strcmp(item, "dscp")) {
		cond = item;
	} else {
		return -EINVAL;
	}
	if (snprintf(cs->match + used, sizeof(cs->match) - used, "%s%s %s", used ? " " : "", cond,
		     eq + 1) >= (int)(sizeof(cs->match) - used))
		return -EINVAL;
	return 0;
}

int ls_config_add_class_spec(struct ls_config *c, const char *service, const char *spec, char *err,
			     size_t errlen)
{
	static const char usage[] =
		"NAME=SHARE[,ACTION][,REQUEST_ACTION][,src=P[+P...]][,dport=N[-M]][,dscp=N]";
	struct class_spec cs = {};
	struct ls_service_conf *s, saved;
	char buf[MATCH_TEXT_LEN], section[128], inner[512], *eq, *item;
	bool first = true;
	int rc = 0;

	s = ls_config_service(c, service);
	if (!s)
		return errorf(err, errlen, c, 0, "--class %s: no service %s", spec, service);
	if (strlen(spec) >= sizeof(buf) || !(eq = strchr(strcpy(buf, spec), '=')))
		return errorf(err, errlen, c, 0, "--class %s: expected %s", spec, usage);
	*eq = '\0';
	if (!class_name_ok(buf))
		return errorf(err, errlen, c, 0,
			      "--class %s: '%s' is not a class name ([A-Za-z0-9_-], 1..31)", spec,
			      buf);
	if (ls_service_class_slot(s, buf) >= 0)
		return errorf(err, errlen, c, 0, "--class %s: class %s given twice", spec, buf);
	for (char *rest = eq + 1; (item = strsep(&rest, ","));) {
		char shown[MATCH_TEXT_LEN];

		snprintf(shown, sizeof(shown), "%s", ls_trim(item));
		if (spec_item(&cs, ls_trim(item), first))
			return errorf(err, errlen, c, 0,
				      "--class %s: '%s' is not understood; expected %s", spec,
				      shown, usage);
		first = false;
	}
	if (!cs.share[0] && !cs.action[0] && !cs.req_action[0])
		return errorf(err, errlen, c, 0, "--class %s: expected %s", spec, usage);
	snprintf(section, sizeof(section), "class %.31s.%.31s", service, buf);
	/* All or nothing: a bad condition must not leave a half-made class. */
	saved = *s;
	if (cs.share[0])
		rc = ls_config_set(c, section, "share", cs.share, 0, inner, sizeof(inner));
	if (!rc && cs.action[0])
		rc = ls_config_set(c, section, "action", cs.action, 0, inner, sizeof(inner));
	if (!rc && cs.req_action[0])
		rc = ls_config_set(c, section, "request_action", cs.req_action, 0, inner,
				   sizeof(inner));
	if (!rc && cs.match[0])
		rc = ls_config_set(c, section, "match", cs.match, 0, inner, sizeof(inner));
	if (rc) {
		*s = saved;
		return errorf(err, errlen, c, 0, "--class %s: %s", spec, inner);
	}
	return 0;
}

/* ---- validation ------------------------------------------------------------ */

/* The line a key was given on; 0 when it was not (or came from the CLI). */
static int key_line_of(const struct key_def *keys, const int *lines, const char *key)
{
	for (size_t i = 0; keys[i].name; i++)
		if (!strcmp(keys[i].name, key))
			return lines[i];
	return 0;
}

static int check_agent(const struct ls_config *c, char *err, size_t errlen)
{
	const struct ls_agent_conf *a = &c->agent;

	if (a->failopen_after_ns && a->failopen_after_ns < 2 * a->interval_ns)
		return errorf(err, errlen, c,
			      key_line_of(agent_keys, a->key_line, "fail_open_after"),
			      "[agent] fail_open_after (%llums) must be at least two intervals "
			      "(%llums): a live agent would look dead",
			      (unsigned long long)(a->failopen_after_ns / NS_PER_MS),
			      (unsigned long long)(2 * a->interval_ns / NS_PER_MS));
	return 0;
}

/* The line of a service's key, else of the service itself. */
static int service_key_line(const struct ls_service_conf *s, const char *key)
{
	int line = key_line_of(service_keys, s->key_line, key);

	return line ? line : s->line;
}

static int check_limits(const struct ls_config *c, const struct ls_service_conf *s, char *err,
			size_t errlen)
{
	if (s->min_limit && s->max_limit && s->min_limit > s->max_limit)
		return errorf(err, errlen, c, service_key_line(s, "min_limit"),
			      "service %s: min_limit %u is above max_limit %u", s->name,
			      s->min_limit, s->max_limit);
	if (s->initial_limit && s->min_limit && s->initial_limit < s->min_limit)
		return errorf(err, errlen, c, service_key_line(s, "initial_limit"),
			      "service %s: initial_limit %u is below min_limit %u", s->name,
			      s->initial_limit, s->min_limit);
	if (s->initial_limit && s->max_limit && s->initial_limit > s->max_limit)
		return errorf(err, errlen, c, service_key_line(s, "initial_limit"),
			      "service %s: initial_limit %u is above max_limit %u", s->name,
			      s->initial_limit, s->max_limit);
	return 0;
}

/* Whether "k=v,k=v" names key k. */
static bool params_name(const char *params, const char *k)
{
	size_t n = strlen(k);

	for (const char *p = params; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 1 : 0))
		if (!strncmp(p, k, n) && p[n] == '=')
			return true;
	return false;
}

static int check_algorithm(const struct ls_config *c, const struct ls_service_conf *s, char *err,
			   size_t errlen)
{
	static const char *const limit_keys[] = {"initial_limit", "min_limit", "max_limit"};
	const uint32_t values[] = {s->initial_limit, s->min_limit, s->max_limit};
	char why[256], params[LS_ALGO_PARAMS_LEN * 2];
	struct ls_algo *a = NULL;
	int line = 0;

	for (size_t i = 0; i < 3; i++)
		if (values[i] && (params_name(s->algo_params, limit_keys[i]) ||
				  ls_params_set_param(s->algo, s->algo_params, limit_keys[i])))
			return errorf(err, errlen, c, service_key_line(s, "params"),
				      "service %s: %s is given both as a key and in params",
				      s->name, limit_keys[i]);
	if (ls_algo_create(s->algo, s->algo_params, &a, why, sizeof(why)))
		return errorf(err, errlen, c, service_key_line(s, "params"),
			      "service %s: params for %s: %s", s->name, s->algo, why);
	ls_algo_destroy(&a);
	/* And with the service's limits, which the agent adds to params (ls_service_algo()). */
	snprintf(params, sizeof(params), "%s", s->algo_params);
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(params);

		if (!values[i] || !ls_algo_has_param(s->algo, limit_keys[i]))
			continue;
		snprintf(params + n, sizeof(params) - n, "%s%s=%u", n ? "," : "", limit_keys[i],
			 values[i]);
		if (!line)
			line = service_key_line(s, limit_keys[i]);
	}
	if (ls_algo_create(s->algo, params, &a, why, sizeof(why)))
		return errorf(err, errlen, c, line ? line : s->line,
			      "service %s: limits for %s: %s", s->name, s->algo, why);
	ls_algo_destroy(&a);
	return 0;
}

static int check_classes(const struct ls_config *c, const struct ls_service_conf *s, char *err,
			 size_t errlen)
{
	uint32_t shared = 0;
	uint64_t sum_ppm = 0;

	for (uint32_t i = 0; i < s->nr_classes; i++) {
		const struct ls_class_conf *k = &s->classes[i];

		if (k->req_action_given && s->admit != LS_ADMIT_REQUESTS)
			return errorf(err, errlen, c, k->line,
				      "class %s.%s: request_action applies only to a service with "
				      "admit = requests",
				      s->name, k->name);
		if (k->action == LS_ACT_BYPASS) {
			if (k->req_action_given)
				return errorf(err, errlen, c, k->line,
					      "class %s.%s: a bypass class sheds no request, so it "
					      "cannot have a request_action",
					      s->name, k->name);
			if (k->share_given && k->share_ppm)
				return errorf(err, errlen, c, k->line,
					      "class %s.%s: a bypass class is never counted, so it "
					      "cannot have a share",
					      s->name, k->name);
			continue;
		}
		shared++;
		sum_ppm += k->share_ppm;
	}
	if (shared > LS_MAX_SHARED_CLASSES)
		return errorf(err, errlen, c, s->line,
			      "service %s: %u classes with a share; at most %d (bypass aside)",
			      s->name, shared, LS_MAX_SHARED_CLASSES);
	if (sum_ppm > LS_PPM)
		return errorf(err, errlen, c, s->line,
			      "service %s: the class shares add up to %llu.%04llu%%, over 100%%",
			      s->name, (unsigned long long)(sum_ppm / 10000),
			      (unsigned long long)(sum_ppm % 10000));
	return 0;
}

/* The slot unmatched traffic gets; LS_MAX_CLASSES: the implicit one, to add. */
static int default_slot_of(const struct ls_config *c, const struct ls_service_conf *s,
			   uint32_t *slot, char *err, size_t errlen)
{
	int k;

	if (s->default_class_name[0]) {
		k = ls_service_class_slot(s, s->default_class_name);
		if (k < 0)
			return errorf(err, errlen, c, service_key_line(s, "default_class"),
				      "service %s: default_class %s is not one of its classes",
				      s->name, s->default_class_name);
		*slot = (uint32_t)k;
		return 0;
	}
	k = ls_service_class_slot(s, IMPLICIT_DEFAULT_CLASS);
	if (k >= 0) {
		*slot = (uint32_t)k;
		return 0;
	}
	if (s->nr_classes >= LS_MAX_CLASSES)
		return errorf(err, errlen, c, s->line,
			      "service %s: no room for the implicit default class; name one "
			      "with default_class",
			      s->name);
	*slot = LS_MAX_CLASSES;
	return 0;
}

static bool rule_can_match_port(const struct ls_service_conf *s, const struct ls_rule_conf *r)
{
	if (!r->port_lo)
		return true;
	for (uint32_t i = 0; i < s->nr_listen; i++)
		if (s->listen[i].port >= r->port_lo && s->listen[i].port <= r->port_hi)
			return true;
	return false;
}

static int check_rules(const struct ls_config *c, const struct ls_service_conf *s, char *err,
		       size_t errlen)
{
	for (uint32_t i = 0; i < s->nr_rules; i++) {
		const struct ls_rule_conf *r = &s->rules[i];

		if (!rule_can_match_port(s, r))
			return errorf(err, errlen, c, r->line,
				      "class %s.%s: dport %u-%u holds none of the service's listen "
				      "ports, so the rule could never match",
				      s->name, s->classes[r->cls].name, r->port_lo, r->port_hi);
	}
	return 0;
}

static int check_service(const struct ls_config *c, const struct ls_service_conf *s, char *err,
			 size_t errlen)
{
	uint32_t slot;

	if (!s->nr_listen)
		return errorf(err, errlen, c, s->line,
			      "service %s: no listen address (listen = *:PORT)", s->name);
	if (s->max_defer_given && s->admit != LS_ADMIT_REQUESTS)
		return errorf(err, errlen, c, service_key_line(s, "max_defer"),
			      "service %s: max_defer applies only to admit = requests", s->name);
	if (check_classes(c, s, err, errlen) || check_rules(c, s, err, errlen) ||
	    check_limits(c, s, err, errlen) || check_algorithm(c, s, err, errlen))
		return -EINVAL;
	return default_slot_of(c, s, &slot, err, errlen);
}

static bool same_listen(const struct ls_listen_conf *a, const struct ls_listen_conf *b)
{
	return a->port == b->port && a->any == b->any && !memcmp(a->addr, b->addr, sizeof(a->addr));
}

static void listen_format(const struct ls_listen_conf *l, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (l->any) {
		snprintf(buf, len, "*:%u", l->port);
	} else if (ls_addr_is_v4_mapped(l->addr)) {
		inet_ntop(AF_INET, l->addr + 12, addr, sizeof(addr));
		snprintf(buf, len, "%s:%u", addr, l->port);
	} else {
		inet_ntop(AF_INET6, l->addr, addr, sizeof(addr));
		snprintf(buf, len, "[%s]:%u", addr, l->port);
	}
}

/* A port+address pair belongs to one service, once. */
static int check_listen_unique(const struct ls_config *c, char *err, size_t errlen)
{
	char shown[80];

	for (uint32_t s = 0; s < c->nr_services; s++)
		for (uint32_t l = 0; l < c->svc[s].nr_listen; l++)
			for (uint32_t t = 0; t <= s; t++)
				for (uint32_t m = 0; m < (t == s ? l : c->svc[t].nr_listen); m++) {
					const struct ls_listen_conf *a = &c->svc[s].listen[l];

					if (!same_listen(a, &c->svc[t].listen[m]))
						continue;
					listen_format(a, shown, sizeof(shown));
					return errorf(err, errlen, c, a->line,
						      "service %s: listen %s is already service "
						      "%s's",
						      c->svc[s].name, shown, c->svc[t].name);
				}
	return 0;
}

/* Adds the implicit default class where needed and records each default slot. */
static void complete_service(const struct ls_config *c, struct ls_service_conf *s)
{
	uint32_t slot;
	char unused[8];

	default_slot_of(c, s, &slot, unused, sizeof(unused));
	if (slot == LS_MAX_CLASSES) {
		slot = s->nr_classes++;
		class_defaults(&s->classes[slot], IMPLICIT_DEFAULT_CLASS, 0);
		s->classes[slot].implicit = true;
	}
	s->default_class = (uint8_t)slot;
}

int ls_config_validate(struct ls_config *c, char *err, size_t errlen)
{
	if (c->validated)
		return 0;
	if (check_agent(c, err, errlen))
		return -EINVAL;
	if (!c->nr_services)
		return errorf(err, errlen, c, 0,
			      "%s%sno service configured (a [service NAME] with listen = *:PORT)",
			      c->source[0] ? c->source : "", c->source[0] ? ": " : "");
	for (uint32_t s = 0; s < c->nr_services; s++)
		if (check_service(c, &c->svc[s], err, errlen))
			return -EINVAL;
	if (check_listen_unique(c, err, errlen))
		return -EINVAL;
	{
		char msg[512];
		int line;

		if (ls_upstreams_validate(&c->upstreams, &line, msg, sizeof(msg)))
			return errorf(err, errlen, c, line, "%s", msg);
	}
	for (uint32_t s = 0; s < c->nr_services; s++)
		complete_service(c, &c->svc[s]);
	c->validated = true;
	return 0;
}

/* ---- files, through libinih ------------------------------------------------ */

/*
 * libinih does not tell its handler the line number (Debian builds it
 * without INI_HANDLER_LINENO), so a reader of our own counts lines. It
 * also drops leading blanks, so that an indented line is never taken as
 * the continuation of the previous value, and it turns a line too long
 * for libinih's buffer into an error instead of a silent split.
 */
struct reader {
	const char *text; /* advanced as it is read */
	int line;
	int too_long_line; /* first line over the limit; 0: none */
};

static int next_char(struct reader *r)
{
	if (!*r->text)
		return EOF;
	return (unsigned char)*r->text++;
}

static char *read_line(char *buf, int size, void *stream)
{
	struct reader *r = stream;
	int ch, n = 0, max = size - 2; /* room for '\n' and '\0' */
	bool any = false, leading = true, too_long = false;

	while ((ch = next_char(r)) != EOF) {
		any = true;
		if (ch == '\n')
			break;
		if (leading && (ch == ' ' || ch == '\t'))
			continue;
		leading = false;
		if (n == max)
			too_long = true;
		else
			buf[n++] = (char)ch;
	}
	if (!any)
		return NULL;
	r->line++;
	if (too_long) {
		if (!r->too_long_line)
			r->too_long_line = r->line;
		n = 0;
	}
	buf[n++] = '\n';
	buf[n] = '\0';
	return buf;
}

struct parse_ctx {
	struct ls_config *c;
	struct reader r;
	int err_line; /* of the first error a key gave; 0: none */
	char err[768];
};

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *p = user;
	char err[768];

	if (!ls_config_set(p->c, section, name, value, p->r.line, err, sizeof(err)))
		return 1;
	if (!p->err_line) {
		p->err_line = p->r.line;
		snprintf(p->err, sizeof(p->err), "%s", err);
	}
	return 0;
}

static int parse_stream(struct ls_config *c, struct parse_ctx *p, char *err, size_t errlen)
{
	int rc = ini_parse_stream(read_line, &p->r, on_key, p);
	int first = p->err_line;

	if (rc < 0)
		return errorf(err, errlen, c, 0, "%s: out of memory parsing", c->source);
	if (p->r.too_long_line && (!first || p->r.too_long_line < first))
		return errorf(err, errlen, c, p->r.too_long_line,
			      "line longer than %d characters; split it (another match line "
			      "adds another rule)",
			      ini_max_line - 2);
	if (rc > 0 && rc != p->err_line && (!first || rc < first))
		return errorf(err, errlen, c, rc,
			      "not a 'key = value' line or a '[section]' header");
	if (first) {
		snprintf(err, errlen, "%s", p->err);
		return -EINVAL;
	}
	return 0;
}

/*
 * Reads a whole config file into memory: a regular file (not a FIFO that
 * blocks, not /dev/zero that never ends) of at most LS_CONFIG_MAX_BYTES,
 * with no NUL byte in it. *out is a NUL-terminated copy to free.
 */
static int read_config_file(const char *path, char **out, char *err, size_t errlen)
{
	struct stat st;
	size_t len = 0;
	char *buf = NULL;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ls_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		rc = ls_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ls_errf(err, errlen, -EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > LS_CONFIG_MAX_BYTES) {
		rc = ls_errf(err, errlen, -EFBIG, "%s: larger than %d bytes", path,
			     LS_CONFIG_MAX_BYTES);
		goto out;
	}
	buf = malloc(LS_CONFIG_MAX_BYTES + 2);
	if (!buf) {
		rc = ls_errf(err, errlen, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	/* Read to EOF, one byte past the cap: a file that grew is refused too. */
	while (len <= LS_CONFIG_MAX_BYTES) {
		ssize_t n = read(fd, buf + len, LS_CONFIG_MAX_BYTES + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ls_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	if (len > LS_CONFIG_MAX_BYTES) {
		rc = ls_errf(err, errlen, -EFBIG, "%s: larger than %d bytes", path,
			     LS_CONFIG_MAX_BYTES);
		goto out;
	}
	if (memchr(buf, 0, len)) {
		rc = ls_errf(err, errlen, -EINVAL, "%s: a NUL byte: not a text file", path);
		goto out;
	}
	buf[len] = 0;
	*out = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

int ls_config_parse_file(struct ls_config *c, const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	int rc;

	rc = read_config_file(path, &text, err, errlen);
	if (rc)
		return rc;
	snprintf(c->source, sizeof(c->source), "%s", path);
	rc = ls_config_parse_string(c, text, err, errlen);
	free(text);
	return rc;
}

int ls_config_parse_string(struct ls_config *c, const char *text, char *err, size_t errlen)
{
	struct parse_ctx p = {.c = c, .r = {.text = text}};

	return parse_stream(c, &p, err, errlen);
}

static int load(const char *path, const char *text, const char *source, struct ls_config **out,
		char *err, size_t errlen)
{
	struct ls_config *c;
	int rc = ls_config_new(&c);

	if (rc) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	if (path) {
		rc = ls_config_parse_file(c, path, err, errlen);
	} else {
		snprintf(c->source, sizeof(c->source), "%s", source ? source : "");
		rc = ls_config_parse_string(c, text, err, errlen);
	}
	if (!rc)
		rc = ls_config_validate(c, err, errlen);
	if (rc) {
		ls_config_free(&c);
		return rc;
	}
	*out = c;
	return 0;
}

int ls_config_load_file(const char *path, struct ls_config **out, char *err, size_t errlen)
{
	return load(path, NULL, NULL, out, err, errlen);
}

int ls_config_load_string(const char *text, const char *source, struct ls_config **out, char *err,
			  size_t errlen)
{
	return load(NULL, text, source, out, err, errlen);
}
