// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Prometheus endpoint. The control loop reads the maps once per round
 * and writes the whole exposition into a buffer of its own, then swaps it
 * with the published one under a mutex; libmicrohttpd's thread copies the
 * published buffer under the same mutex and answers from its copy. A
 * round therefore waits at most for one copy of a few kilobytes, however
 * many scrapers there are, and a scrape never reads a half-built page.
 *
 * The one number computed at scrape time is the heartbeat's age: a
 * stalled control loop publishes nothing, and its page must still show
 * the heartbeat ageing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <bpf/bpf.h>
#include <microhttpd.h>

#include "addr.h"
#include "attach.h"
#include "demand.h"
#include "log.h"
#include "metrics.h"
#include "metrics_breaker.h"

/* A growable text buffer; on allocation failure it stops growing and says so. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 16384;
		char *p;

		while (cap <= b->len + (size_t)n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

/* A label value as the exposition format wants it: \, " and newline escaped. */
static void escape_label(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = 0;
}

/* A float as the exposition format writes it: NaN, +Inf, -Inf or a number. */
static void fmt_float(double v, char *buf, size_t len)
{
	if (isnan(v))
		snprintf(buf, len, "NaN");
	else if (isinf(v))
		snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
	else
		snprintf(buf, len, "%.6g", v);
}

/*
 * The histogram's bounds: every power of two from 128 us to 4.19 s. Each
 * is an edge of the dataplane's log-linear buckets (a bucket never
 * straddles a power of two), so each cumulative count is exact: a sample
 * counted under le="0.008192" took less than 8192 us.
 */
#define LS_METRICS_LE_FIRST_LOG2 7
#define LS_METRICS_LE_LAST_LOG2	 22
#define LS_METRICS_NR_LE	 (LS_METRICS_LE_LAST_LOG2 - LS_METRICS_LE_FIRST_LOG2 + 1)

/* What one round read of one service. */
struct svc_read {
	bool in_use;
	char name[2 * LS_NAME_LEN];
	struct ls_service_meta meta;
	struct ls_service_policy pol;
	struct ls_limits lim;
	struct ls_inflight inf;
	char cls_name[LS_MAX_CLASSES][2 * LS_NAME_LEN];
	struct ls_class_stats stats[LS_MAX_CLASSES];
	uint64_t le[LS_METRICS_NR_LE]; /* cumulative */
	uint64_t count, sum_ns;
};

struct ls_metrics {
	char iface[64]; /* escaped */
	const char *ifname;
	const char *dir; /* the pin directory */
	const struct ls_maps *maps;
	int tick_fd;
	struct MHD_Daemon *daemon;
	struct ls_metrics_addr want; /* what the agent map asks for */
	uint64_t retry_ns;	     /* when a failed bind is tried again */
	bool failed_logged;
	/* libmicrohttpd's messages in this minute (clients can cause them at will). */
	uint64_t log_window_ns;
	unsigned int log_lines;
	pthread_mutex_t lock; /* guards page */
	struct sbuf page;     /* published: what a scrape copies */
	struct sbuf next;     /* the round's, swapped in when built */
	struct ls_demand demand[LS_MAX_SERVICES];
	char demand_of[LS_MAX_SERVICES][LS_NAME_LEN]; /* the service each demand belongs to */
	struct svc_read svc[LS_MAX_SERVICES];
};

int ls_metrics_new(const char *ifname, const char *dir, const struct ls_maps *maps, int tick_fd,
		   struct ls_metrics **out)
{
	struct ls_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->ifname = ifname;
	m->dir = dir;
	escape_label(ifname, m->iface, sizeof(m->iface));
	m->maps = maps;
	m->tick_fd = tick_fd;
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

static void metrics_stop(struct ls_metrics *m)
{
	if (!m->daemon)
		return;
	MHD_stop_daemon(m->daemon);
	m->daemon = NULL;
}

void ls_metrics_free(struct ls_metrics **pm)
{
	struct ls_metrics *m = *pm;

	if (!m)
		return;
	metrics_stop(m);
	pthread_mutex_destroy(&m->lock);
	free(m->page.p);
	free(m->next.p);
	free(m);
	*pm = NULL;
}

/* ---- the scrape, on libmicrohttpd's thread -------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *text)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* The heartbeat's age now, in the dataplane's clock (as status reads it). */
static void heartbeat_lines(struct ls_metrics *m, struct sbuf *b)
{
	struct ls_tick t = {}; /* no beat: only the clock */
	struct ls_state st = {};
	char v[32] = "NaN";

	if (!ls_tick_run(m->tick_fd, &t) && !ls_read_state(m->maps, &st) && st.heartbeat_ns &&
	    st.heartbeat_ns <= t.now_ns)
		fmt_float((double)(t.now_ns - st.heartbeat_ns) / 1e9, v, sizeof(v));
	sb_printf(b,
		  "# HELP loadshed_agent_heartbeat_age_seconds Time since the agent's last "
		  "round stamped the heartbeat, at scrape time (NaN: never stamped).\n"
		  "# TYPE loadshed_agent_heartbeat_age_seconds gauge\n"
		  "loadshed_agent_heartbeat_age_seconds{iface=\"%s\"} %s\n",
		  m->iface, v);
}

static void free_page(void *p)
{
	free(p);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **req)
{
	struct ls_metrics *m = cls;
	struct MHD_Response *r;
	struct sbuf b = {};
	enum MHD_Result rc;

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)req;
	/* HEAD too, as HTTP asks of every GET resource: libmicrohttpd sends no body. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n");
	pthread_mutex_lock(&m->lock);
	if (m->page.len)
		sb_printf(&b, "%.*s", (int)m->page.len, m->page.p);
	pthread_mutex_unlock(&m->lock);
	heartbeat_lines(m, &b);
	if (b.failed) {
		free(b.p);
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	r = MHD_create_response_from_buffer_with_free_callback(b.len, b.p, free_page);
	if (!r) {
		free(b.p);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	rc = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

/*
 * libmicrohttpd's messages: why a listen failed, but also one per client
 * that misbehaves (a request cut short, a limit reached), which a client
 * can cause at will. At most LS_METRICS_LOG_PER_MIN a minute, then one
 * line saying the rest of the minute's are dropped.
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct ls_metrics *m = cls;
	struct timespec ts;
	uint64_t now_ns;
	unsigned int nth;
	char msg[256];
	size_t n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	pthread_mutex_lock(&m->lock);
	if (now_ns - m->log_window_ns >= 60 * 1000000000ull) {
		m->log_window_ns = now_ns;
		m->log_lines = 0;
	}
	nth = ++m->log_lines;
	pthread_mutex_unlock(&m->lock);
	if (nth > LS_METRICS_LOG_PER_MIN + 1)
		return;
	if (nth == LS_METRICS_LOG_PER_MIN + 1) {
		pr_warn("%s: metrics: more messages from the HTTP server this minute, not logged",
			m->ifname);
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	pr_warn("%s: metrics: %s", m->ifname, msg);
}

/* Listens on m->want: 0 or a negative errno (the reason is logged by libmicrohttpd). */
static int metrics_start(struct ls_metrics *m)
{
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6};
	struct sockaddr_in sa4 = {.sin_family = AF_INET};
	const struct sockaddr *sa = NULL;
	sigset_t block, old;

	switch (m->want.family) {
	case LS_METRICS_V4:
		memcpy(&sa4.sin_addr, m->want.addr + 12, 4);
		sa4.sin_port = htons(m->want.port);
		sa = (const struct sockaddr *)&sa4;
		break;
	case LS_METRICS_V6:
		flags |= MHD_USE_IPv6; /* IPv6 only: [::] is not IPv4's any */
		memcpy(&sa6.sin6_addr, m->want.addr, 16);
		sa6.sin6_port = htons(m->want.port);
		sa = (const struct sockaddr *)&sa6;
		break;
	default:
		flags |= MHD_USE_DUAL_STACK;
		break;
	}
	/*
	 * The server's thread inherits this mask: the agent's signals (stop,
	 * reload) must reach the control loop, whose wait they interrupt.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	errno = 0;
	m->daemon = MHD_start_daemon(
		flags, m->want.port, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
		m, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)LS_METRICS_MAX_CONNECTIONS,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)LS_METRICS_MAX_CONNECTIONS_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)LS_METRICS_TIMEOUT_S,
		sa ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, sa, MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return m->daemon ? 0 : errno ? -errno : -EIO;
}

/* ---- the round, on the control loop's thread ------------------------------ */

static void read_service(struct ls_metrics *m, uint32_t s, uint32_t gen, struct svc_read *r)
{
	uint32_t key = ls_policy_key(gen, s);
	struct ls_latency_hist h;

	memset(r, 0, sizeof(*r));
	if (ls_read_meta(m->maps, s, &r->meta) || !r->meta.in_use ||
	    bpf_map_lookup_elem(m->maps->policy, &key, &r->pol))
		return;
	r->in_use = true;
	escape_label(r->meta.name, r->name, sizeof(r->name));
	ls_read_limits(m->maps, s, &r->lim);
	for (uint32_t c = 0; c < LS_MAX_CLASSES; c++) {
		/* Every slot's histogram, as the agent sums them (design §7.2). */
		if (!ls_read_latency(m->maps, ls_class_index(s, c), &h)) {
			uint64_t seen = 0;
			uint32_t le = 0;

			for (uint32_t i = 0; i < LS_HIST_BUCKETS; i++) {
				while (le < LS_METRICS_NR_LE &&
				       ls_hist_bucket_lo_us(i) >=
					       1ull << (LS_METRICS_LE_FIRST_LOG2 + le))
					r->le[le++] += seen;
				seen += h.buckets[i];
			}
			while (le < LS_METRICS_NR_LE)
				r->le[le++] += seen;
			r->count += seen;
			r->sum_ns += h.sum_ns;
		}
		if (!r->pol.classes[c].in_use)
			continue;
		escape_label(r->meta.classes[c].name, r->cls_name[c], sizeof(r->cls_name[c]));
		if (ls_read_class_stats(m->maps, ls_class_index(s, c), &r->stats[c]))
			memset(&r->stats[c], 0, sizeof(r->stats[c]));
	}
}

static void update_demand(struct ls_metrics *m, uint32_t s, const struct svc_read *r,
			  const struct ls_inflight *inf, uint64_t now_ns)
{
	struct ls_demand_sample d = {.now_ns = now_ns, .limit = r->lim.limit};

	if (strcmp(m->demand_of[s], r->meta.name)) { /* another service in the slot */
		memset(&m->demand[s], 0, sizeof(m->demand[s]));
		snprintf(m->demand_of[s], sizeof(m->demand_of[s]), "%s", r->meta.name);
	}
	for (uint32_t c = 0; c < LS_MAX_CLASSES; c++) {
		uint64_t off, adm;

		if (!r->pol.classes[c].in_use)
			continue;
		ls_demand_counts(&r->stats[c], r->pol.admit, &off, &adm);
		d.offered += off;
		d.admitted += adm;
	}
	d.inflight = inf->total;
	ls_demand_update(&m->demand[s], &d);
}

static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A gauge per service. */
static void per_service(struct ls_metrics *m, struct sbuf *b, const char *name, const char *help,
			double (*value)(struct ls_metrics *m, uint32_t s))
{
	char v[32];

	family(b, name, "gauge", help);
	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		if (!m->svc[s].in_use)
			continue;
		fmt_float(value(m, s), v, sizeof(v));
		sb_printf(b, "%s{iface=\"%s\",service=\"%s\"} %s\n", name, m->iface, m->svc[s].name,
			  v);
	}
}

static double v_limit(struct ls_metrics *m, uint32_t s)
{
	return m->svc[s].lim.limit;
}

static double v_svc_inflight(struct ls_metrics *m, uint32_t s)
{
	return m->svc[s].inf.total;
}

static double v_connections(struct ls_metrics *m, uint32_t s)
{
	return m->svc[s].inf.conns;
}

static double v_ratio(struct ls_metrics *m, uint32_t s)
{
	return ls_demand_ratio(&m->demand[s]);
}

static double v_offered(struct ls_metrics *m, uint32_t s)
{
	return ls_demand_offered_per_s(&m->demand[s]);
}

static double v_capacity(struct ls_metrics *m, uint32_t s)
{
	return ls_demand_capacity_per_s(&m->demand[s]);
}

/* What a class's sample is: a counter at offset off of its stats, or another number. */
typedef long long (*class_value)(const struct svc_read *r, uint32_t c, size_t off);

static long long v_counter(const struct svc_read *r, uint32_t c, size_t off)
{
	return (long long)*(const __u64 *)((const char *)&r->stats[c] + off);
}

static long long v_cls_inflight(const struct svc_read *r, uint32_t c, size_t off)
{
	(void)off;
	return r->inf.cls[c];
}

static long long v_guarantee(const struct svc_read *r, uint32_t c, size_t off)
{
	(void)off;
	return r->lim.guarantee[c];
}

/* The service's unit: connections admitted at their handshake, or request starts. */
static long long v_admitted(const struct svc_read *r, uint32_t c, size_t off)
{
	(void)off;
	return (long long)(r->pol.admit == LS_ADMIT_REQUESTS ? r->stats[c].requests
							     : r->stats[c].admitted);
}

/* A counter or gauge per class. */
static void per_class(struct ls_metrics *m, struct sbuf *b, const char *name, const char *type,
		      const char *help, class_value value, size_t off)
{
	family(b, name, type, help);
	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		const struct svc_read *r = &m->svc[s];

		for (uint32_t c = 0; r->in_use && c < LS_MAX_CLASSES; c++)
			if (r->pol.classes[c].in_use)
				sb_printf(b, "%s{iface=\"%s\",service=\"%s\",class=\"%s\"} %lld\n",
					  name, m->iface, r->name, r->cls_name[c],
					  value(r, c, off));
	}
}

static void shed_family(struct ls_metrics *m, struct sbuf *b)
{
	static const struct {
		const char *action;
		size_t off;
	} actions[] = {
		{"drop", offsetof(struct ls_class_stats, shed_drop)},
		{"reset", offsetof(struct ls_class_stats, shed_reset)},
		{"defer", offsetof(struct ls_class_stats, deferred)},
		{"abort", offsetof(struct ls_class_stats, aborted)},
		{"expire", offsetof(struct ls_class_stats, expired)},
	};

	family(b, "loadshed_shed_total", "counter",
	       "Work shed, by action: connections dropped or reset (a SYN or a handshake's ACK), "
	       "requests deferred (each retransmission again), aborted, or expired after "
	       "max_defer.");
	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		const struct svc_read *r = &m->svc[s];

		for (uint32_t c = 0; r->in_use && c < LS_MAX_CLASSES; c++) {
			if (!r->pol.classes[c].in_use)
				continue;
			for (size_t a = 0; a < sizeof(actions) / sizeof(actions[0]); a++)
				sb_printf(b,
					  "loadshed_shed_total{iface=\"%s\",service=\"%s\","
					  "class=\"%s\",action=\"%s\"} %lld\n",
					  m->iface, r->name, r->cls_name[c], actions[a].action,
					  v_counter(r, c, actions[a].off));
		}
	}
}

static void latency_family(struct ls_metrics *m, struct sbuf *b)
{
	family(b, "loadshed_latency_seconds", "histogram",
	       "Requests' time to first byte at the interface (TC egress), every class of the "
	       "service; bounds are edges of the dataplane's buckets, so counts are exact.");
	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		const struct svc_read *r = &m->svc[s];

		if (!r->in_use)
			continue;
		for (uint32_t i = 0; i < LS_METRICS_NR_LE; i++) {
			/* Whole microseconds, written exactly: %g would round 1.048576 s. */
			unsigned long long us = 1ull << (LS_METRICS_LE_FIRST_LOG2 + i);

			sb_printf(b,
				  "loadshed_latency_seconds_bucket{iface=\"%s\",service=\"%s\","
				  "le=\"%llu.%06llu\"} %llu\n",
				  m->iface, r->name, us / 1000000, us % 1000000,
				  (unsigned long long)r->le[i]);
		}
		sb_printf(
			b,
			"loadshed_latency_seconds_bucket{iface=\"%s\",service=\"%s\",le=\"+Inf\"} "
			"%llu\n",
			m->iface, r->name, (unsigned long long)r->count);
		sb_printf(b, "loadshed_latency_seconds_sum{iface=\"%s\",service=\"%s\"} %.9f\n",
			  m->iface, r->name, (double)r->sum_ns / 1e9);
		sb_printf(b, "loadshed_latency_seconds_count{iface=\"%s\",service=\"%s\"} %llu\n",
			  m->iface, r->name, (unsigned long long)r->count);
	}
}

static void iface_counter(struct ls_metrics *m, struct sbuf *b, const char *name, const char *help,
			  uint64_t v)
{
	family(b, name, "counter", help);
	sb_printf(b, "%s{iface=\"%s\"} %llu\n", name, m->iface, (unsigned long long)v);
}

/* The outbound circuit breakers' families (metrics_breaker.c), when there are upstreams. */
static void breaker_families(struct ls_metrics *m, struct sbuf *b)
{
	char *text = ls_metrics_breaker(m->dir, m->iface);

	if (text)
		sb_printf(b, "%s", text);
	free(text);
}

static void build_page(struct ls_metrics *m, struct sbuf *b, const struct ls_agent_meta *am,
		       uint64_t flows)
{
	struct ls_iface_stats is = {};

	b->len = 0;
	b->failed = false;
	family(b, "loadshed_info", "gauge",
	       "A protected service: its limit algorithm and what it admits (connections or "
	       "requests).");
	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		char algo[2 * LS_NAME_LEN];

		if (!m->svc[s].in_use)
			continue;
		escape_label(m->svc[s].meta.algo, algo, sizeof(algo));
		sb_printf(b,
			  "loadshed_info{iface=\"%s\",service=\"%s\",algorithm=\"%s\","
			  "admit=\"%s\"} 1\n",
			  m->iface, m->svc[s].name, algo,
			  m->svc[s].pol.admit == LS_ADMIT_REQUESTS ? "requests" : "connections");
	}
	per_service(m, b, "loadshed_limit", "The concurrency limit L in force.", v_limit);
	per_service(m, b, "loadshed_service_inflight",
		    "Work in flight in the service (what L bounds).", v_svc_inflight);
	per_service(m, b, "loadshed_connections", "Tracked connections of the service.",
		    v_connections);
	per_class(m, b, "loadshed_inflight", "gauge", "Work in flight of the class.",
		  v_cls_inflight, 0);
	per_class(m, b, "loadshed_guarantee", "gauge",
		  "The class's guaranteed in-flight under contention.", v_guarantee, 0);
	per_class(m, b, "loadshed_admitted_total", "counter",
		  "Work admitted, in the service's unit: connections (at their handshake) or "
		  "request starts.",
		  v_admitted, 0);
	shed_family(m, b);
	per_class(m, b, "loadshed_would_shed_total", "counter",
		  "Shadow mode: work that would have been shed, admitted.", v_counter,
		  offsetof(struct ls_class_stats, would_shed));
	per_class(m, b, "loadshed_fail_open_total", "counter",
		  "Work admitted unchecked because the agent's heartbeat was stale.", v_counter,
		  offsetof(struct ls_class_stats, fail_open));
	per_class(m, b, "loadshed_untracked_total", "counter",
		  "Connections admitted unchecked because the flow table was full.", v_counter,
		  offsetof(struct ls_class_stats, untracked));
	per_class(m, b, "loadshed_requests_total", "counter",
		  "Request starts on tracked connections (in either admit mode).", v_counter,
		  offsetof(struct ls_class_stats, requests));
	latency_family(m, b);
	per_service(m, b, "loadshed_demand_ratio",
		    "Offered work over capacity, smoothed over 5 s: above 1, scale out "
		    "(0: nothing offered; +Inf: nothing completes).",
		    v_ratio);
	per_service(m, b, "loadshed_offered_per_second",
		    "Unique attempts per second (admitted plus shed new work), smoothed over 5 s.",
		    v_offered);
	per_service(m, b, "loadshed_capacity_per_second",
		    "Work per second the service completes at L in flight (L x admitted / "
		    "in-flight), smoothed over 5 s; NaN when idle, +Inf when work is admitted "
		    "and in-flight is ~0.",
		    v_capacity);
	family(b, "loadshed_flows", "gauge", "Tracked flows in the flow table, at the last sweep.");
	sb_printf(b, "loadshed_flows{iface=\"%s\"} %llu\n", m->iface, (unsigned long long)flows);
	family(b, "loadshed_flows_max", "gauge", "The flow table's size (max_flows).");
	sb_printf(b, "loadshed_flows_max{iface=\"%s\"} %u\n", m->iface, am->max_flows);
	ls_read_iface_stats(m->maps, &is);
	iface_counter(m, b, "loadshed_parse_errors_total", "Malformed or unparseable packets.",
		      is.parse_errors);
	iface_counter(m, b, "loadshed_bad_checksums_total",
		      "Segments that would have changed a count, with a wrong TCP checksum.",
		      is.bad_checksums);
	iface_counter(m, b, "loadshed_untracked_packets_total",
		      "Service packets of no tracked flow, passed.", is.untracked_packets);
	iface_counter(m, b, "loadshed_tx_errors_total",
		      "RSTs that could not be built (dropped instead).", is.tx_errors);
	iface_counter(m, b, "loadshed_abort_lost_total",
		      "Aborts the agent could not be told of (ring buffer full).", is.abort_lost);
	iface_counter(m, b, "loadshed_fragments_dropped_total",
		      "First fragments of TCP to a service, dropped.", is.fragments_dropped);
	iface_counter(m, b, "loadshed_undecidable_total",
		      "IPv6 packets that could not be decided, dropped.", is.undecidable);
	breaker_families(m, b);
}

void ls_metrics_round(struct ls_metrics *m, const struct ls_agent_meta *am,
		      const struct ls_inflight *inflight, uint64_t flows, uint64_t now_ns)
{
	struct ls_state st = {};
	char where[64];
	struct sbuf t;
	int err;

	if (memcmp(&am->metrics, &m->want, sizeof(m->want))) {
		metrics_stop(m);
		if (m->want.port && !am->metrics.port)
			pr_info("%s: metrics off", m->ifname);
		m->want = am->metrics;
		m->retry_ns = 0;
		m->failed_logged = false;
		memset(m->demand_of, 0, sizeof(m->demand_of)); /* a fresh start */
	}
	if (!m->want.port)
		return;
	ls_metrics_addr_format(&m->want, where, sizeof(where));
	if (!m->daemon && now_ns >= m->retry_ns) {
		err = metrics_start(m);
		if (err) {
			if (!m->failed_logged)
				pr_warn("%s: metrics: cannot listen on %s: %s; trying again every "
					"%llu s",
					m->ifname, where, strerror(-err),
					LS_METRICS_RETRY_NS / 1000000000ull);
			m->failed_logged = true;
			m->retry_ns = now_ns + LS_METRICS_RETRY_NS;
		} else {
			pr_info("%s: metrics at http://%s/metrics", m->ifname, where);
		}
	}
	ls_read_state(m->maps, &st);
	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		read_service(m, s, st.active_gen & 1, &m->svc[s]);
		if (!m->svc[s].in_use)
			continue;
		m->svc[s].inf = inflight[s];
		update_demand(m, s, &m->svc[s], &inflight[s], now_ns);
	}
	if (!m->daemon)
		return;
	build_page(m, &m->next, am, flows);
	if (m->next.failed) {
		pr_warn("%s: metrics: out of memory building the page; the last one stays",
			m->ifname);
		return;
	}
	pthread_mutex_lock(&m->lock);
	t = m->page;
	m->page = m->next;
	m->next = t;
	pthread_mutex_unlock(&m->lock);
}
