// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control loop. Every interval, under the pin directory's lock:
 *  1. per service, the latency histogram delta since the last window and
 *     the in-flight count form one sample, fed to the service's algorithm;
 *  2. the new limit L (or the pinned one) and the class guarantees are
 *     written to the limits map;
 *  3. about once a second, idle and half-open flows are swept from the
 *     flow table, each decrement of in-flight made exactly once;
 *  4. the heartbeat is refreshed, so the dataplane keeps enforcing.
 * Between rounds it reloads the config file on SIGHUP or when the file's
 * content changed (confwatch.c), and tells a service manager it is ready,
 * alive, reloading or stopping (notify.c).
 * All state the loop needs lives in the pinned maps: a restarted agent
 * carries on with the limits and counters it finds there.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "attach.h"
#include "breaker_agent.h"
#include "algo.h"
#include "clock.h"
#include "confwatch.h"
#include "demand.h"
#include "hist.h"
#include "log.h"
#include "maps.h"
#include "metrics.h"
#include "notify.h"
#include "pins.h"
#include "window.h"
#include "service.h"
#include "sockdiag.h"

struct svc_ctl {
	struct ls_algo *algo;
	char name[LS_NAME_LEN]; /* the service this slot held last round */
	char algo_name[LS_NAME_LEN];
	char algo_params[LS_ALGO_PARAMS_LEN];
	uint32_t bounds[3];	     /* initial, min and max limit the algorithm started with */
	struct ls_latency_hist prev; /* histogram at the start of the open window */
	uint32_t limit;
	int32_t max_inflight; /* over the open window's rounds */
	/*
	 * The open window's in-flight readings (each at least 0), each
	 * weighted by the requests answered in its round, and those requests:
	 * the count the window's latencies saw, whatever the idle rounds.
	 */
	double inflight_wsum;
	uint64_t inflight_wn;
	uint64_t round_count; /* the latency histogram's count at the last round */
	uint64_t last_rtt_ns; /* of the last window fed to the algorithm */
	uint32_t written;     /* the limit written last round */
	/*
	 * Each class's work offered, admitted and in flight, averaged over
	 * LS_COVER_FAST_NS and over LS_DEMAND_TAU_NS: its load, whose bursts
	 * its guarantee covers (svc_load).
	 */
	struct ls_demand fast[LS_MAX_CLASSES], slow[LS_MAX_CLASSES];
};

/* A rise in a class's load shows in its cover within about this long. */
#define LS_COVER_FAST_NS (500 * LS_NS_PER_MS)

struct agent {
	const char *ifname;
	char dir[128];
	struct ls_maps maps;
	struct ls_inflight *inflight; /* the mmapped inflight map */
	size_t inflight_len;
	struct svc_ctl svc[LS_MAX_SERVICES];
	int tick_fd;   /* the pinned tick program */
	int life_lock; /* held for the agent's life: its liveness */
	struct ring_buffer
		*aborts; /* aborted requests and suspect flows, to settle with the kernel */
	uint64_t next_sweep_ns;
	double log_change;	    /* log a limit change larger than this fraction */
	struct ls_metrics *metrics; /* the Prometheus endpoint, when [agent] metrics asks */
	uint64_t flows;		    /* in the flow table at the last sweep */
	struct ls_brk_agent brk;    /* the upstreams' circuit breakers */
	struct ls_confwatch *watch; /* the config file followed, when it is (confwatch.c) */
	bool beat_ok;		    /* the last round wrote its heartbeat */
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_requested = 1;
}

/*
 * (Re)creates the algorithm of a service from its record. A running
 * limit becomes the initial one, so a restart or an algorithm change
 * continues from where the service is rather than from a cold start.
 */
static int svc_start_algo(struct svc_ctl *c, const struct ls_service_meta *meta, uint32_t current)
{
	struct ls_algo *a;
	char err[256], params[256];
	int rc;

	rc = ls_service_algo(meta, current, &a, err, sizeof(err));
	if (rc) {
		pr_err("service %s: algorithm %s: %s", meta->name, meta->algo, err);
		return rc;
	}
	ls_algo_destroy(&c->algo);
	c->algo = a;
	c->limit = ls_algo_limit(a);
	snprintf(c->algo_name, sizeof(c->algo_name), "%s", meta->algo);
	snprintf(c->algo_params, sizeof(c->algo_params), "%s", meta->algo_params);
	c->bounds[0] = meta->initial_limit;
	c->bounds[1] = meta->min_limit;
	c->bounds[2] = meta->max_limit;
	if (ls_algo_params_text(a, params, sizeof(params)))
		params[0] = 0;
	pr_info("service %s: algorithm %s (%s), limit %u", meta->name, meta->algo, params,
		c->limit);
	return 0;
}

static bool same_bounds(const struct svc_ctl *c, const struct ls_service_meta *m)
{
	return c->bounds[0] == m->initial_limit && c->bounds[1] == m->min_limit &&
	       c->bounds[2] == m->max_limit;
}

/* Every key the running parameters set is set again: a retune can only change values. */
static bool retunable(const struct svc_ctl *c, const struct ls_service_meta *m)
{
	char old[LS_ALGO_PARAMS_LEN], *save = NULL;

	if (!same_bounds(c, m))
		return false;
	snprintf(old, sizeof(old), "%s", c->algo_params);
	for (char *kv = strtok_r(old, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');

		if (eq)
			*eq = 0;
		if (!ls_params_have_key(m->algo_params, ls_trim(kv)))
			return false;
	}
	return true;
}

/*
 * New values for the same parameters keep the algorithm's state (the
 * estimate, the RTT baselines): a live tweak is not a cold start. A
 * parameter taken away, or new limit bounds, restart it instead.
 */
static void svc_retune_algo(struct svc_ctl *c, const struct ls_service_meta *meta)
{
	char err[256];

	if (ls_algo_retune(c->algo, meta->algo_params, err, sizeof(err))) {
		pr_warn("service %s: %s; restarting the algorithm", meta->name, err);
		c->algo_name[0] = 0; /* forces a restart */
		return;
	}
	snprintf(c->algo_params, sizeof(c->algo_params), "%s", meta->algo_params);
	pr_info("service %s: algorithm %s retuned (%s)", meta->name, meta->algo, meta->algo_params);
}

/*
 * The service's histogram: the sum over every class slot, used or not, so
 * that a reload that removes a class never makes the sum go backwards.
 * (Bypass classes have no tracked flows, hence no samples.)
 */
static void svc_histogram(struct agent *ag, uint32_t svc, struct ls_latency_hist *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t c = 0; c < LS_MAX_CLASSES; c++) {
		struct ls_latency_hist h;

		if (ls_read_latency(&ag->maps, ls_class_index(svc, c), &h))
			continue;
		out->count += h.count;
		out->sum_ns += h.sum_ns;
		for (uint32_t b = 0; b < LS_HIST_BUCKETS; b++)
			out->buckets[b] += h.buckets[b];
	}
}

/*
 * The probe's part of a round, for an algorithm that probes the no-load
 * latency (envoy, delay; design §7.4): begins one when due — the limit is
 * pinned and the dataplane records the latencies of requests admitted from
 * now, in the kernel's clock — and ends one once it has its samples or
 * timed out. A pinned limit runs no probe. Returns whether a probe began
 * or ended (the open window then starts afresh).
 */
static bool svc_probe(struct agent *ag, uint32_t svc, const struct ls_service_meta *meta,
		      uint64_t now_ns)
{
	struct svc_ctl *c = &ag->svc[svc];
	struct ls_latency_hist probe;
	struct ls_algo_probe how;
	bool probing = ls_algo_probing(c->algo, &how), have = false;
	struct ls_tick tick = {}; /* run without a heartbeat: the dataplane's clock */
	int err;

	if (!ls_algo_probes(c->algo))
		return false;
	if (meta->pinned_limit) {
		if (!probing)
			return false;
		ls_algo_probe_end(c->algo, 0, now_ns);
		ls_probe_set(&ag->maps, svc, 0);
		c->limit = ls_algo_limit(c->algo);
		return true;
	}
	if (probing) {
		err = ls_read_probe(&ag->maps, svc, &probe);
		if (err)
			pr_warn("service %s: reading the probe's latencies: %s", meta->name,
				strerror(-err));
		have = !err;
	}
	switch (ls_algo_probe_step(c->algo, now_ns, have ? &probe : NULL)) {
	case LS_PROBE_BEGAN:
		ls_algo_probing(c->algo, &how);
		err = ls_tick_run(ag->tick_fd, &tick);
		if (!err) /* the epoch in the dataplane's clock, as its slot words */
			err = ls_probe_set(&ag->maps, svc, tick.now_ns);
		if (err) {
			pr_warn("service %s: starting a probe: %s; it ends without samples",
				meta->name, strerror(-err));
			ls_algo_probe_end(c->algo, 0, now_ns);
			return false;
		}
		c->limit = ls_algo_limit(c->algo);
		pr_info("service %s: probing the no-load latency: limit %u for %u requests",
			meta->name, how.pinned, how.samples);
		return true;
	case LS_PROBE_ENDED:
		ls_probe_set(&ag->maps, svc, 0);
		c->limit = ls_algo_limit(c->algo);
		pr_info("service %s: probe done (%s): no-load latency %.2f ms, limit %u",
			meta->name, have && probe.count >= how.samples ? "measured" : "timed out",
			ls_algo_baseline_rtt_ns(c->algo) / 1e6, c->limit);
		return true;
	default:
		return false;
	}
}

/*
 * Feeds each class's counters and in-flight count to its averages and puts
 * its load in out (service.h): its demand over seconds, and its bursts from
 * the larger of the fast and the slow reading of each measure, so that a
 * rise shows at once and a fall only when it lasts (a class whose counters
 * cannot be read has none: it gets its share).
 */
static void svc_load(struct agent *ag, uint32_t svc, const struct ls_service_meta *meta,
		     uint64_t now_ns, struct ls_class_load *out)
{
	struct svc_ctl *c = &ag->svc[svc];
	uint32_t n = meta->nr_classes < LS_MAX_CLASSES ? meta->nr_classes : LS_MAX_CLASSES;

	for (uint32_t cls = 0; cls < n; cls++) {
		struct ls_class_stats st;
		struct ls_demand_sample d = {.now_ns = now_ns};

		out[cls] = (struct ls_class_load){0};
		if (ls_read_class_stats(&ag->maps, ls_class_index(svc, cls), &st))
			continue;
		ls_demand_counts(&st, meta->admit, &d.offered, &d.admitted);
		d.inflight = atomic_load((_Atomic int32_t *)&ag->inflight[svc].cls[cls]);
		c->fast[cls].tau_ns = LS_COVER_FAST_NS; /* also after the slot was cleared */
		ls_demand_update(&c->fast[cls], &d);
		ls_demand_update(&c->slow[cls], &d);
		out[cls].demand = ls_demand_inflight(&c->slow[cls]);
		out[cls].bursts = fmax(out[cls].demand, ls_demand_inflight(&c->fast[cls])) +
				  LS_COVER_SIGMAS * fmax(ls_demand_jitter(&c->fast[cls]),
							 ls_demand_jitter(&c->slow[cls]));
	}
}

/* A new window of in-flight readings, from this round's. */
static void svc_window_restart(struct svc_ctl *c, int32_t now_inflight)
{
	c->max_inflight = now_inflight;
	c->inflight_wsum = 0;
	c->inflight_wn = 0;
}

/* One round of one service: sample, algorithm, limits. 0 or a negative errno, logged. */
static int svc_round(struct agent *ag, uint32_t svc, uint64_t now_ns)
{
	struct svc_ctl *c = &ag->svc[svc];
	struct ls_service_meta meta;
	struct ls_latency_hist cur, win;
	struct ls_inflight *inf = &ag->inflight[svc];
	struct ls_limits lim = {};
	uint32_t old, limit, quantile_ppm;
	struct ls_class_load load[LS_MAX_CLASSES] = {};
	int32_t now_inflight;
	double quantile;
	int err;

	err = ls_read_meta(&ag->maps, svc, &meta);
	if (err || !meta.in_use) {
		ls_algo_destroy(&c->algo);
		memset(c, 0, sizeof(*c));
		if (err)
			pr_err("%s: reading service %u's record: %s", ag->ifname, svc,
			       strerror(-err));
		return err;
	}
	err = ls_read_limits(&ag->maps, svc, &lim);
	if (err) {
		pr_err("service %s: reading its limits: %s", meta.name, strerror(-err));
		return err;
	}
	if (strcmp(c->name, meta.name)) { /* another service in this slot: start afresh */
		ls_algo_destroy(&c->algo);
		memset(c, 0, sizeof(*c));
		snprintf(c->name, sizeof(c->name), "%s", meta.name);
	}
	if (c->algo && !strcmp(c->algo_name, meta.algo) &&
	    strcmp(c->algo_params, meta.algo_params) && retunable(c, &meta))
		svc_retune_algo(c, &meta);
	else if (c->algo && (strcmp(c->algo_params, meta.algo_params) || !same_bounds(c, &meta)))
		c->algo_name[0] = 0; /* restart below, from the current limit */
	if (!c->algo || strcmp(c->algo_name, meta.algo)) {
		/* During a probe, from the limit before it: the pinned one is the probe's. */
		err = svc_start_algo(c, &meta, c->algo ? ls_algo_resume_limit(c->algo) : lim.limit);
		if (err)
			return err;
		ls_probe_set(&ag->maps, svc, 0); /* a probe the last algorithm left running */
		svc_histogram(ag, svc, &c->prev);
		c->round_count = c->prev.count;
	}

	svc_load(ag, svc, &meta, now_ns, load);
	now_inflight = atomic_load((_Atomic int32_t *)&inf->total);
	if (now_inflight > c->max_inflight)
		c->max_inflight = now_inflight;
	svc_histogram(ag, svc, &cur);
	if (cur.count < c->prev.count) /* the counters were reset under us */
		c->prev = cur;
	if (cur.count > c->round_count) {
		uint64_t answered = cur.count - c->round_count;

		c->inflight_wsum += (now_inflight > 0 ? now_inflight : 0) * (double)answered;
		c->inflight_wn += answered;
	}
	c->round_count = cur.count;
	ls_hist_delta(&cur, &c->prev, &win);
	old = c->limit;
	if (svc_probe(ag, svc, &meta, now_ns)) {
		/* Latencies under the limit before (or during) the probe: not this window's. */
		c->prev = cur;
		svc_window_restart(c, now_inflight);
		win.count = 0;
	}
	/* The algorithm's own quantile (envoy, delay), else the service's rtt statistic. */
	quantile = ls_algo_sample_quantile(c->algo);
	quantile_ppm = quantile >= 0 ? (uint32_t)(quantile * LS_PPM + 0.5) : meta.rtt_quantile_ppm;
	/* As WindowedLimit: enough samples, and RTTs that are service time. */
	if (win.count >= LS_INTERVAL_MIN_SAMPLES) {
		struct ls_algo_sample s = {
			.start_ns = now_ns,
			.rtt_ns = ls_hist_window_rtt_ns(&win, quantile_ppm),
			.inflight = c->max_inflight > 0 ? (uint32_t)c->max_inflight : 0,
			.inflight_mean =
				c->inflight_wn ? c->inflight_wsum / (double)c->inflight_wn : 0,
			/*
			 * Shedding is not a drop: Netflix's limiters give rejected
			 * requests no sample at all, and counting them as drops
			 * would drive AIMD and Vegas to their minimum under any
			 * sustained overload.
			 */
			.did_drop = false,
		};

		if (s.rtt_ns >= LS_INTERVAL_MIN_RTT_NS) {
			c->limit = ls_algo_update(c->algo, &s);
			c->last_rtt_ns = s.rtt_ns;
		}
		c->prev = cur;
		svc_window_restart(c, now_inflight);
	}
	limit = meta.pinned_limit ? meta.pinned_limit : c->limit;
	if (old && fabs((double)c->limit - old) > ag->log_change * old)
		pr_info("service %s: limit %u -> %u (window rtt %.2f ms, baseline %.2f ms)",
			meta.name, old, c->limit, c->last_rtt_ns / 1e6,
			ls_algo_baseline_rtt_ns(c->algo) / 1e6);
	/*
	 * Written every round: a policy reload may have changed the shares,
	 * and the classes' demand moves their cover. While a probe runs the
	 * guarantees are the shares of the pinned limit, with no cover:
	 * guaranteed load during a probe would be measured as no-load latency.
	 */
	c->written = limit;
	err = ls_service_write_limits(&ag->maps, svc, limit, &meta,
				      ls_algo_probing(c->algo, NULL) ? NULL : load);
	if (err)
		pr_err("service %s: writing limit %u: %s; the dataplane keeps enforcing the last "
		       "one written",
		       meta.name, limit, strerror(-err));
	return err;
}

/*
 * How often the flow table is swept: a walk of a million flows takes tens
 * of milliseconds, so the period grows with the walk (100 times its
 * length: the sweep costs at most 1 % of a core) between 1 s and 10 s.
 * Idle timeouts are minutes; stalls are released up to a period late.
 */
#define LS_SWEEP_MIN_NS	  (1 * LS_NS_PER_S)
#define LS_SWEEP_MAX_NS	  (10 * LS_NS_PER_S)
#define LS_SWEEP_COST_MUL 100
/* A flow silent this long since a client RST we could not trust has ended. */
#define LS_SUSPECT_NS (3 * LS_NS_PER_S)

/*
 * Runs the tick program: the heartbeat in the dataplane's clock and, when
 * due, the sweep (bpf/tick.bpf.c). 0 or a negative errno.
 */
static int agent_tick(struct agent *ag, const struct ls_agent_meta *am, uint64_t now)
{
	struct ls_tick t = {
		.failopen_after_ns = am->failopen_after_ns,
		.idle_timeout_ns = am->idle_timeout_ns,
		.stall_timeout_ns = am->stall_timeout_ns,
		.suspect_ns = LS_SUSPECT_NS,
		.beat = 1,
		.sweep = now >= ag->next_sweep_ns,
	};
	uint64_t took, period;
	int err;

	err = ls_tick_run(ag->tick_fd, &t);
	if (err)
		return err;
	if (!t.sweep)
		return 0;
	ag->flows = t.flows;
	took = ls_clock_ns(CLOCK_MONOTONIC) - now;
	period = took * LS_SWEEP_COST_MUL;
	period = period < LS_SWEEP_MIN_NS   ? LS_SWEEP_MIN_NS
		 : period > LS_SWEEP_MAX_NS ? LS_SWEEP_MAX_NS
					    : period;
	ag->next_sweep_ns = now + period;
	pr_debug("%s: swept %llu flows in %.1f ms: %llu ended, %llu stalled requests released; "
		 "next sweep in %.1f s",
		 ag->ifname, (unsigned long long)t.flows, took / 1e6, (unsigned long long)t.ended,
		 (unsigned long long)t.stalled, period / 1e9);
	return 0;
}

/* An aborted request: its server socket goes, so that the server never works on it. */
static int on_abort(void *ctx, void *data, size_t len)
{
	struct agent *ag = ctx;
	int err;

	if (len < sizeof(struct ls_flow_key))
		return 0;
	err = ls_sock_destroy(data);
	if (err && err != -ENOENT)
		pr_warn("%s: closing an aborted request's socket: %s", ag->ifname, strerror(-err));
	return 0;
}

/*
 * A flow silent since a client RST the dataplane could not trust: the
 * kernel says whether the connection lives. Gone, the flow ends; alive, it
 * is no suspect any more. The tick program does either, with the
 * dataplane's own exchanges (§5.3).
 */
static int on_suspect(void *ctx, void *data, size_t len)
{
	struct agent *ag = ctx;
	struct ls_tick t = {};
	int alive, err;

	if (len < sizeof(struct ls_flow_key))
		return 0;
	alive = ls_sock_alive(data);
	if (alive < 0) {
		pr_warn("%s: asking the kernel about a suspect flow: %s", ag->ifname,
			strerror(-alive));
		return 0;
	}
	memcpy(&t.key, data, sizeof(t.key));
	t.op = alive ? LS_TICK_CLEAR_SUSPECT : LS_TICK_END_SUSPECT;
	err = ls_tick_run(ag->tick_fd, &t);
	if (err)
		pr_warn("%s: settling a suspect flow: %s", ag->ifname, strerror(-err));
	else if (t.done && !alive)
		pr_debug("%s: a flow whose client reset it ended (the kernel has no socket)",
			 ag->ifname);
	return 0;
}

/*
 * One round under the lock. Returns -ENOENT when the attachment is gone,
 * else 0 or the first error, every one of which it has logged: a control
 * loop that cannot read or write its maps says so each round.
 */
static int agent_round(struct agent *ag)
{
	struct ls_agent_meta am = {};
	uint64_t now;
	int lock, err, first = 0;

	lock = ls_lock(ag->ifname, false);
	if (lock < 0) {
		if (lock != -ENOENT) /* -ENOENT: detached under us */
			pr_err("%s: locking: %s", ag->ifname, strerror(-lock));
		return lock;
	}
	now = ls_clock_ns(CLOCK_MONOTONIC);
	err = ls_read_agent(&ag->maps, &am);
	if (err) {
		pr_err("%s: reading the agent settings: %s", ag->ifname, strerror(-err));
		ls_unlock(&lock);
		return err;
	}
	ag->log_change = am.log_change_ppm / 1e6;
	if (am.ifindex && !ls_dataplane_on(ag->dir, &am, ag->ifname)) {
		/* The kernel detached the programs with the device: what is left is pins. */
		pr_warn("%s: the interface is gone (the device of ifindex %u was deleted): "
			"detaching",
			ag->ifname, am.ifindex);
		ls_dataplane_detach(ag->dir, &am);
		ls_dataplane_unpin(ag->dir);
		ls_unlock(&lock);
		return -ENOENT;
	}
	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		err = svc_round(ag, s, now);
		if (err && !first)
			first = err;
	}
	err = ls_brk_agent_round(&ag->brk, ag->dir, now);
	if (err && !first) {
		pr_err("%s: the circuit breakers: %s", ag->ifname, strerror(-err));
		first = err;
	}
	err = agent_tick(ag, &am, now);
	ag->beat_ok = !err;
	if (err) {
		pr_err("%s: the heartbeat and sweep: %s; the dataplane fails open when the "
		       "heartbeat is stale",
		       ag->ifname, strerror(-err));
		if (!first)
			first = err;
	}
	ls_metrics_round(ag->metrics, &am, ag->inflight, ag->flows, now);
	ls_unlock(&lock);
	return first;
}

/*
 * A stopping agent ends the probes it runs: the epochs cleared, and L back
 * to the limit before each probe, so that neither a stopped agent (with
 * fail_open_after off the dataplane keeps enforcing L) nor the next one,
 * which starts from L, is left with the pinned limit.
 */
static void agent_end_probes(struct agent *ag)
{
	uint64_t now = ls_clock_ns(CLOCK_MONOTONIC);
	int lock = -1;

	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		struct svc_ctl *c = &ag->svc[s];
		struct ls_service_meta meta;
		int err;

		if (!c->algo || !ls_algo_probing(c->algo, NULL))
			continue;
		if (lock < 0) {
			lock = ls_lock(ag->ifname, false);
			if (lock < 0)
				return;
		}
		ls_algo_probe_end(c->algo, 0, now);
		c->limit = ls_algo_limit(c->algo);
		ls_probe_set(&ag->maps, s, 0);
		if (ls_read_meta(&ag->maps, s, &meta) || !meta.in_use || strcmp(meta.name, c->name))
			continue;
		err = ls_service_write_limits(&ag->maps, s,
					      meta.pinned_limit ? meta.pinned_limit : c->limit,
					      &meta, NULL);
		if (err)
			pr_warn("service %s: ending its probe: %s", meta.name, strerror(-err));
		else
			pr_info("service %s: probe ended by the agent's stop: limit %u", meta.name,
				c->limit);
	}
	ls_unlock(&lock);
}

static void agent_close(struct agent *ag);

static int agent_open(struct agent *ag, const char *ifname)
{
	int lock, err;

	ag->ifname = ifname;
	err = ls_pin_dir(ifname, ag->dir, sizeof(ag->dir));
	if (err)
		return err;
	lock = ls_lock(ifname, false);
	if (lock < 0)
		return lock;
	ag->tick_fd = -1;
	err = ls_maps_open(ag->dir, &ag->maps, NULL);
	if (!err) {
		ag->tick_fd = ls_tick_prog_open(ag->dir);
		if (ag->tick_fd < 0)
			err = ag->tick_fd;
	}
	ls_unlock(&lock);
	if (err)
		goto fail;
	/* An array map's stride is its value size rounded up to 8 bytes. */
	ag->inflight_len = LS_MAX_SERVICES * sizeof(struct ls_inflight);
	ag->inflight = mmap(NULL, ag->inflight_len, PROT_READ, MAP_SHARED, ag->maps.inflight, 0);
	if (ag->inflight == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	ag->aborts = ring_buffer__new(ag->maps.aborts, on_abort, ag, NULL);
	if (!ag->aborts) {
		err = -errno;
		goto fail;
	}
	err = ring_buffer__add(ag->aborts, ag->maps.suspects, on_suspect, ag);
	if (!err)
		err = ls_metrics_new(ifname, ag->dir, &ag->maps, ag->tick_fd, &ag->metrics);
	if (err)
		goto fail;
	return 0;
fail:
	agent_close(ag);
	return err;
}

static void agent_close(struct agent *ag)
{
	ls_metrics_free(&ag->metrics); /* first: its thread reads the maps */
	for (int s = 0; s < LS_MAX_SERVICES; s++)
		ls_algo_destroy(&ag->svc[s].algo);
	ls_brk_agent_free(&ag->brk);
	ls_confwatch_close(&ag->watch);
	ring_buffer__free(ag->aborts);
	ag->aborts = NULL;
	if (ag->inflight && ag->inflight != MAP_FAILED)
		munmap(ag->inflight, ag->inflight_len);
	ag->inflight = NULL;
	if (ag->tick_fd >= 0)
		close(ag->tick_fd);
	ag->tick_fd = -1;
	ls_maps_close(&ag->maps);
}

/*
 * The agent holds an exclusive flock on /run/loadshed/netN/IFACE.agent for
 * its whole life, with its pid in the file: liveness is the lock, so no
 * recorded pid, reused or stale, and no command line can mislead it, and a
 * second agent of the interface cannot start.
 */
static int agent_lock_open(const char *ifname, int flags)
{
	char path[256];
	int err, fd;

	err = ls_run_path(ifname, ".agent", path, sizeof(path));
	if (err)
		return err;
	fd = open(path, flags | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* Takes the agent lock of ifname and writes our pid in it: its fd, -EEXIST, or -errno. */
static int agent_lock_take(const char *ifname)
{
	char buf[32];
	int fd, n;

	fd = agent_lock_open(ifname, O_RDWR | O_CREAT);
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = errno == EWOULDBLOCK ? -EEXIST : -errno;

		close(fd);
		return err;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)n, 0) != n) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

pid_t ls_agent_pid(const char *ifname)
{
	char buf[32] = "";
	ssize_t n;
	int fd;

	fd = agent_lock_open(ifname, O_RDONLY);
	if (fd < 0)
		return 0; /* never ran here */
	if (!flock(fd, LOCK_SH | LOCK_NB)) {
		close(fd); /* nobody holds it: no agent */
		return 0;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	return n > 0 ? (pid_t)atoi(buf) : 0;
}

/* Records this agent's pid in the maps (for status), or clears it. */
static int agent_set_pid(struct agent *ag, pid_t pid)
{
	struct ls_agent_meta am = {};
	int lock = ls_lock(ag->ifname, false), err;

	if (lock < 0)
		return lock;
	err = ls_read_agent(&ag->maps, &am);
	if (!err) {
		am.agent_pid = (__u32)pid;
		err = ls_write_agent(&ag->maps, &am);
	}
	ls_unlock(&lock);
	return err;
}

/*
 * Whether the config file attach recorded has new content (design §7.8).
 * It is followed by the path as recorded, unless [agent] watch_config =
 * false; a path followed anew (the agent's start, attach adopting the
 * attachment with another file) starts from its content then.
 */
static bool agent_config_changed(struct agent *ag, const struct ls_agent_meta *am)
{
	int err;

	if (!am->config_path[0] || am->config_unwatched) {
		if (ag->watch)
			pr_info("%s: no longer following %s", ag->ifname,
				ls_confwatch_path(ag->watch));
		ls_confwatch_close(&ag->watch);
		return false;
	}
	if (ag->watch && !strcmp(ls_confwatch_path(ag->watch), am->config_path))
		return ls_confwatch_check(ag->watch, ls_clock_ns(CLOCK_MONOTONIC)) > 0;
	ls_confwatch_close(&ag->watch);
	err = ls_confwatch_open(&ag->watch, am->config_path);
	if (err)
		pr_warn("%s: cannot follow %s: %s", ag->ifname, am->config_path, strerror(-err));
	else
		pr_info("%s: following %s", ag->ifname, am->config_path);
	return false;
}

/* The STATUS= line: each service's limit and in-flight count. */
static void agent_status(const struct agent *ag, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "heartbeat ok");

	for (uint32_t s = 0; s < LS_MAX_SERVICES && n < len; s++) {
		const struct svc_ctl *c = &ag->svc[s];

		if (!c->algo)
			continue;
		n += (size_t)snprintf(buf + n, len - n, "; %s: limit %u, in-flight %d", c->name,
				      c->written,
				      (int)atomic_load((_Atomic int32_t *)&ag->inflight[s].total));
	}
}

int ls_agent_run(const char *ifname, int (*reload)(const char *ifname))
{
	struct agent *ag = calloc(1, sizeof(*ag));
	/* SA_RESTART: a signal must not fail the flock an agent round waits on. */
	struct sigaction sa = {.sa_handler = on_stop, .sa_flags = SA_RESTART};
	struct ls_agent_meta am = {};
	char status[256];
	bool ready = false;
	uint64_t watchdog_usec;
	int err;

	if (!ag)
		return -ENOMEM;
	ag->life_lock = agent_lock_take(ifname);
	if (ag->life_lock < 0) {
		err = ag->life_lock;
		free(ag);
		return err;
	}
	err = agent_open(ag, ifname);
	if (!err)
		err = agent_set_pid(ag, getpid());
	if (err) {
		agent_close(ag);
		close(ag->life_lock);
		free(ag);
		return err;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	pr_info("%s: agent running, pid %d", ifname, (int)getpid());
	if (ls_notify_init(&watchdog_usec))
		pr_info("%s: the service manager's watchdog expects a heartbeat every %.1f s",
			ifname, watchdog_usec / 1e6);

	while (!stop_requested) {
		uint64_t round_end;
		bool hup = reload_requested;

		if (hup || agent_config_changed(ag, &am)) {
			reload_requested = 0;
			if (!hup)
				pr_info("%s: %s changed: reloading", ifname, am.config_path);
			ls_notify_reloading();
			if (reload && reload(ifname))
				pr_warn("%s: reload failed", ifname);
			if (hup) /* follow on from the content SIGHUP loaded */
				ls_confwatch_close(&ag->watch);
			if (ready)
				ls_notify_ready(status);
		}
		err = agent_round(ag);
		if (err == -ENOENT) {
			pr_warn("%s: detached; agent stopping", ifname);
			break;
		}
		if (ag->beat_ok) {
			agent_status(ag, status, sizeof(status));
			if (ready) {
				ls_notify_beat(status);
			} else {
				ls_notify_ready(status);
				ready = true;
			}
		}
		/* A failed round has logged why; the next one tries again. */
		ls_read_agent(&ag->maps, &am);
		if (!am.interval_ns)
			am.interval_ns = 100 * LS_NS_PER_MS;
		/*
		 * Between rounds, aborted requests' sockets are closed and
		 * suspect flows settled as they come.
		 */
		round_end = ls_clock_ns(CLOCK_MONOTONIC) + am.interval_ns;
		while (!stop_requested && !reload_requested) {
			uint64_t now = ls_clock_ns(CLOCK_MONOTONIC);
			int n;

			if (now >= round_end)
				break;
			n = ring_buffer__poll(
				ag->aborts,
				(int)((round_end - now + LS_NS_PER_MS - 1) / LS_NS_PER_MS));
			if (n < 0 && n != -EINTR) {
				pr_err("%s: reading aborted requests and suspects: %s", ifname,
				       strerror(-n));
				break;
			}
		}
	}
	ls_notify_stopping();
	if (err != -ENOENT) {
		agent_end_probes(ag);
		agent_set_pid(ag, 0);
	}
	pr_info("%s: agent stopped", ifname);
	agent_close(ag);
	close(ag->life_lock); /* last: until here, this is the interface's agent */
	free(ag);
	return 0;
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Asks ifname's agent to stop and waits for it (up to 5 s), then kills it. */
void ls_agent_stop(const char *ifname)
{
	struct timespec tick = {.tv_nsec = 20 * 1000 * 1000};
	pid_t pid = ls_agent_pid(ifname);
	int pidfd;

	if (pid <= 0)
		return;
	/*
	 * The pidfd names the process for good; the lock, checked again after
	 * it is open, says that process is still the agent: no signal can
	 * reach a process that took the pid since.
	 */
	pidfd = pidfd_open_(pid);
	if (pidfd < 0 || ls_agent_pid(ifname) != pid) {
		if (pidfd >= 0)
			close(pidfd);
		return;
	}
	syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0);
	for (int i = 0; i < 250 && ls_agent_pid(ifname) == pid; i++)
		nanosleep(&tick, NULL);
	if (ls_agent_pid(ifname) == pid)
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	close(pidfd);
}

/* Waits (up to 3 s) until the agent has written its first heartbeat. */
static int wait_heartbeat(const char *ifname, pid_t pid)
{
	struct timespec tick = {.tv_nsec = 20 * 1000 * 1000};
	char dir[128];
	struct ls_maps m;

	if (ls_pin_dir(ifname, dir, sizeof(dir)) || ls_maps_open(dir, &m, NULL))
		return -ENOENT;
	for (int i = 0; i < 150; i++) {
		struct ls_state st = {};
		struct ls_agent_meta am = {};

		ls_read_state(&m, &st);
		ls_read_agent(&m, &am);
		if (am.agent_pid == (__u32)pid && st.heartbeat_ns) {
			ls_maps_close(&m);
			return 0;
		}
		if (kill(pid, 0))
			break;
		nanosleep(&tick, NULL);
	}
	ls_maps_close(&m);
	return -ETIMEDOUT;
}

int ls_agent_spawn(const char *ifname, const char *log_path, char *err, size_t errlen)
{
	char path[256];
	pid_t pid;
	int fd, log_fd, e;

	if (!log_path) {
		e = -ls_run_path(ifname, ".log", path, sizeof(path));
		if (e) {
			snprintf(err, errlen, "%s/...: %s", LS_RUN_ROOT, strerror(e));
			return -e;
		}
		log_path = path;
	}
	/* Opened here: an agent without its log would keep the caller's stderr open. */
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", log_path, strerror(e));
		return -e;
	}
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(log_fd);
		snprintf(err, errlen, "fork: %s", strerror(e));
		return -e;
	}
	if (pid == 0) {
		const char *verbose = ls_log_level >= LS_LOG_DEBUG  ? "-vv"
				      : ls_log_level >= LS_LOG_INFO ? "-v"
								    : NULL;

		setsid();
		/* Not the service's main process: the service manager hears the caller. */
		unsetenv("NOTIFY_SOCKET");
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		dup2(log_fd, STDERR_FILENO);
		if (verbose)
			execl("/proc/self/exe", "loadshed", verbose, "agent", ifname, (char *)NULL);
		else
			execl("/proc/self/exe", "loadshed", "agent", ifname, (char *)NULL);
		_exit(127);
	}
	close(log_fd);
	if (wait_heartbeat(ifname, pid)) {
		snprintf(err, errlen, "no heartbeat within 3 s; see %s", log_path);
		return -ECHILD;
	}
	pr_info("%s: agent pid %d, log %s", ifname, (int)pid, log_path);
	return 0;
}
