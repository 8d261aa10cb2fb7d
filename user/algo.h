/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Limit algorithms: given one latency sample at a time, each computes the
 * concurrency limit L of a service. The semantics, defaults and parameter
 * names are those of Netflix concurrency-limits (FixedLimit, AIMDLimit,
 * VegasLimit, Gradient2Limit), in snake_case, so a user's existing tuning
 * carries over.
 *
 * An algorithm is one file: a struct ls_algo_ops with a table of its
 * parameters and an update function, listed once in algo.c's registry.
 * Parameters are parsed, range-checked and defaulted here from that table,
 * so every algorithm reports errors the same way.
 *
 * Everything here is pure: no clocks, no I/O, no global state. The only
 * randomness (Vegas's probe jitter) comes from a per-instance seeded PRNG,
 * so a replay of the same samples always gives the same limits.
 */
#ifndef LS_ALGO_H
#define LS_ALGO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The algorithm used when a service names none. */
#define LS_ALGO_DEFAULT "delay"

/*
 * One observation, as Netflix's Limit.onSample(): when the request (or the
 * window) started, how long it took, how many were in flight when it was
 * admitted (itself included), and whether it was dropped or timed out. A
 * window's inflight is the largest count it saw (Netflix's), and
 * inflight_mean the mean its requests saw (the agent weighs each round's
 * reading by the requests answered in it): the count that queues behind
 * its latency (Little's law); 0 when not measured, and inflight stands
 * for it.
 */
struct ls_algo_sample {
	uint64_t start_ns;
	uint64_t rtt_ns;
	uint32_t inflight;
	double inflight_mean;
	bool did_drop;
};

/* A sample's mean in-flight count: inflight_mean, or inflight without one. */
static inline double ls_algo_sample_mean_inflight(const struct ls_algo_sample *s)
{
	return s->inflight_mean > 0 ? s->inflight_mean : (double)s->inflight;
}

enum ls_param_kind {
	LS_PARAM_UINT,	   /* uint32_t, decimal */
	LS_PARAM_REAL,	   /* double */
	LS_PARAM_DURATION, /* uint64_t nanoseconds, written with a unit: 5s, 500ms */
};

/* The bounds of a parameter are inclusive unless one of these says not. */
#define LS_PARAM_MIN_OPEN (1u << 0)
#define LS_PARAM_MAX_OPEN (1u << 1)

/* One tunable of an algorithm: the single place its default is written. */
struct ls_algo_param {
	const char *name;
	const char *alias; /* another accepted name (Netflix's), or NULL */
	enum ls_param_kind kind;
	size_t offset; /* of the field inside the algorithm's state */
	const char *default_text;
	double min, max; /* accepted range; durations in nanoseconds */
	unsigned int flags;
	const char *help;
};

/*
 * A probe of the no-load RTT (Envoy's minRTT window): while it runs the
 * limit is `pinned`, and the RTT is the `quantile` of the latencies of the
 * first `samples` requests admitted after it began.
 */
struct ls_algo_probe {
	uint32_t pinned;  /* the service's shared limit L while it runs */
	uint32_t samples; /* requests admitted since it began, to measure */
	double quantile;  /* of their latencies (0..1): the no-load RTT */
	/*
	 * It ends with no RTT once this long passed (0: LS_PROBE_TIMEOUT_NS)
	 * since it began or since its last new sample, whichever is later: a
	 * slow service's samples may take longer than that, and while they
	 * come it waits, up to LS_PROBE_WAIT_MAX_NS.
	 */
	uint64_t timeout_ns;
	uint64_t began_ns; /* set by ls_algo_probe_begin */
	uint32_t before;   /* the limit when it began; set by ls_algo_probe_begin */
	uint64_t seen;	   /* samples at the last step that brought new ones */
	uint64_t last_ns;  /* that step's time (0: none yet) */
};

/*
 * A probe's RTT below this is no measurement: no real service answers in
 * less, and it is what a client that answers its own request with a
 * stray byte, or a cheap endpoint, would make a probe see (design §12).
 */
#define LS_PROBE_MIN_RTT_NS 100000ull

/* How long a probe may wait for its samples when the algorithm says nothing. */
#define LS_PROBE_TIMEOUT_NS (5 * 1000000000ull)
/* The longest a probe runs, however its samples trickle in. */
#define LS_PROBE_WAIT_MAX_NS (3600 * 1000000000ull)

struct ls_algo_ops {
	const char *name;
	const char *summary;
	size_t state_size;
	/* terminated by an entry whose name is NULL */
	const struct ls_algo_param *params;
	/* Checks that need several parameters (min <= max); 0 or -EINVAL. */
	int (*check)(const void *st, char *err, size_t errlen);
	/* Sets the running state from the parameters; returns the first limit. */
	uint32_t (*start)(void *st);
	/* Feeds one sample; returns the new integer limit. */
	uint32_t (*update)(void *st, const struct ls_algo_sample *s);
	/* The unrounded internal estimate; NULL when it is the limit itself. */
	double (*estimate)(const void *st);
	/* The no-load RTT the algorithm compares against; NULL when none. */
	double (*baseline_rtt_ns)(const void *st);
	/* After a live parameter change; NULL when nothing needs redoing. */
	uint32_t (*retune)(void *st, uint32_t limit);
	/*
	 * The quantile (0..1) of a window's samples the algorithm takes as
	 * the window's RTT; NULL: the caller's choice (the mean by default).
	 */
	double (*sample_quantile)(const void *st);
	/*
	 * Algorithms that measure the no-load RTT with a probe (envoy, delay);
	 * NULL for the others. probe_due: whether one should begin at now_ns.
	 * probe_begin: it begins; fills in how (ls_algo_probe) and returns the
	 * pinned limit. probe_end: it ends with the no-load RTT measured (0:
	 * none could be); returns the limit to go on with.
	 */
	bool (*probe_due)(const void *st, uint64_t now_ns);
	uint32_t (*probe_begin)(void *st, uint64_t now_ns, struct ls_algo_probe *out);
	uint32_t (*probe_end)(void *st, uint64_t rtt_ns, uint64_t now_ns);
};

struct ls_algo;

/*
 * Creates an instance of algorithm `name` with the parameters `params`
 * ("k=v,k=v"; NULL or "" for all defaults). Returns 0, -ENOENT for an
 * unknown algorithm, -EINVAL for a bad parameter, -ENOMEM; on error a
 * sentence saying what is wrong is written to err.
 */
int ls_algo_create(const char *name, const char *params, struct ls_algo **out, char *err,
		   size_t errlen);
/*
 * The same, resuming from the limit a service already has (0: none): its
 * initial limit is current brought inside [min_limit, max_limit], as is a
 * default initial limit; one params name is refused outside them. An
 * algorithm whose limit is a parameter (fixed) keeps its own.
 */
int ls_algo_create_at(const char *name, const char *params, uint32_t current, struct ls_algo **out,
		      char *err, size_t errlen);
void ls_algo_destroy(struct ls_algo **algo);

/* Feeds one sample; returns the new limit (also kept for ls_algo_limit). */
uint32_t ls_algo_update(struct ls_algo *algo, const struct ls_algo_sample *s);
uint32_t ls_algo_limit(const struct ls_algo *algo);
/*
 * The limit another instance should resume from (an algorithm restarted or
 * replaced): the limit, or while a probe runs the one before it, not the
 * pinned one.
 */
uint32_t ls_algo_resume_limit(const struct ls_algo *algo);
double ls_algo_estimate(const struct ls_algo *algo);
/* Vegas's rtt_noload, Gradient2's long RTT, the probed no-load RTT; 0 when none. */
double ls_algo_baseline_rtt_ns(const struct ls_algo *algo);
/* The window quantile the algorithm wants (0..1), or -1: the caller's choice. */
double ls_algo_sample_quantile(const struct ls_algo *algo);

/*
 * Probes (see struct ls_algo_ops): whether the algorithm probes at all,
 * whether one runs now (then *probe says how), and the calls that begin
 * and end one. While one runs ls_algo_update() changes nothing.
 */
bool ls_algo_probes(const struct ls_algo *algo);
bool ls_algo_probing(const struct ls_algo *algo, struct ls_algo_probe *probe);
bool ls_algo_probe_due(const struct ls_algo *algo, uint64_t now_ns);
uint32_t ls_algo_probe_begin(struct ls_algo *algo, uint64_t now_ns);
uint32_t ls_algo_probe_end(struct ls_algo *algo, uint64_t rtt_ns, uint64_t now_ns);

struct ls_latency_hist;

/* What ls_algo_probe_step did. */
enum ls_probe_step {
	LS_PROBE_NONE,	/* nothing: no probe, or one still waiting for samples */
	LS_PROBE_BEGAN, /* a probe began: record latencies of requests admitted from now */
	LS_PROBE_ENDED, /* a probe ended: stop recording; the limit is the algorithm's again */
};

/*
 * The probe's part of a window, for the agent and replay alike: ends a
 * running probe once `probe` (the latencies of requests admitted since it
 * began) holds its samples — its RTT the quantile, interpolated inside a
 * bucket — or once it timed out with none; else begins one when due.
 * NULL probe: no samples yet.
 */
enum ls_probe_step ls_algo_probe_step(struct ls_algo *algo, uint64_t now_ns,
				      const struct ls_latency_hist *probe);

/*
 * Changes parameters of a running instance ("k=v,k=v"), keeping its state
 * (the estimate, the RTT baselines). All or nothing: on error nothing
 * changes. New bounds apply from the next update; a fixed limit at once.
 */
int ls_algo_retune(struct ls_algo *algo, const char *params, char *err, size_t errlen);

/* Writes the effective parameters as "k=v,k=v" (for status); 0 or -ENOSPC. */
int ls_algo_params_text(const struct ls_algo *algo, char *buf, size_t len);

/* The registry, for --help, docs and config checks. */
const struct ls_algo_ops *ls_algo_find(const char *name);
size_t ls_algo_count(void);
const struct ls_algo_ops *ls_algo_at(size_t i);
bool ls_algo_has_param(const char *algo, const char *param);
/* Whether "k=v,k=v" text sets key (spaces around keys allowed). */
bool ls_params_have_key(const char *params, const char *key);
/* Whether params set algorithm algo's parameter `param`, by its name or its alias. */
bool ls_params_set_param(const char *algo, const char *params, const char *param);
/* Prints every algorithm with its parameters and defaults. */
void ls_algo_print_help(FILE *out);

/* Parsers shared with the CLI; 0 or -EINVAL. */
/* Cuts white space off both ends of s, in place; returns the start. */
char *ls_trim(char *s);
int ls_parse_duration_ns(const char *text, uint64_t *out_ns);
int ls_parse_u32(const char *text, uint32_t *out);
int ls_parse_real(const char *text, double *out);
/* true/yes/on/1 or false/no/off/0, any case. */
int ls_parse_bool(const char *text, bool *out);

/*
 * Netflix's ExpAvgMeasurement: the first `warmup` samples give their plain
 * mean, later ones an exponential average with factor 2 / (window + 1).
 */
struct ls_expavg {
	double value;
	double sum;
	uint32_t window;
	uint32_t warmup;
	uint32_t count;
};

void ls_expavg_init(struct ls_expavg *m, uint32_t window, uint32_t warmup);
/* Adds a sample and returns the new value. */
double ls_expavg_add(struct ls_expavg *m, double sample);

/* Netflix's Log10RootIntFunction: max(1, floor(log10(n))), exact for integers. */
uint32_t ls_log10_root(uint32_t n);

/* splitmix64: a tiny seedable generator for probe jitter (replays stay deterministic). */
uint64_t ls_splitmix64(uint64_t *state);

/* The registered algorithms, one file each. */
extern const struct ls_algo_ops ls_algo_fixed_ops;
extern const struct ls_algo_ops ls_algo_aimd_ops;
extern const struct ls_algo_ops ls_algo_vegas_ops;
extern const struct ls_algo_ops ls_algo_gradient2_ops;
extern const struct ls_algo_ops ls_algo_envoy_ops;
extern const struct ls_algo_ops ls_algo_delay_ops;

#endif /* LS_ALGO_H */
