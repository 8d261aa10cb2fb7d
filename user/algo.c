// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The algorithm registry and everything the algorithms share: parameter
 * parsing against each algorithm's table, the instance lifecycle, and the
 * small numeric helpers Netflix's algorithms are built from.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "algo.h"
#include "hist.h"

/* Adding an algorithm: one file with its ops, one line here (kept one per line). */
/* clang-format off */
static const struct ls_algo_ops *const registry[] = {
	&ls_algo_fixed_ops,	/* Netflix FixedLimit */
	&ls_algo_aimd_ops,	/* Netflix AIMDLimit */
	&ls_algo_vegas_ops,	/* Netflix VegasLimit */
	&ls_algo_gradient2_ops, /* Netflix Gradient2Limit */
	&ls_algo_envoy_ops,	/* Envoy's adaptive concurrency gradient controller */
	&ls_algo_delay_ops,	/* a queueing-delay target over a probed no-load latency */
};
/* clang-format on */

#define REGISTRY_LEN (sizeof(registry) / sizeof(registry[0]))

/* Longest "k=v,k=v" text accepted; config and CLI strings are far shorter. */
#define PARAMS_MAX_LEN 4096

struct ls_algo {
	const struct ls_algo_ops *ops;
	uint32_t limit;
	void *state;
	bool probing;
	struct ls_algo_probe probe;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const struct ls_algo_ops *ls_algo_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < REGISTRY_LEN; i++)
		if (!strcmp(registry[i]->name, name))
			return registry[i];
	return NULL;
}

size_t ls_algo_count(void)
{
	return REGISTRY_LEN;
}

const struct ls_algo_ops *ls_algo_at(size_t i)
{
	return i < REGISTRY_LEN ? registry[i] : NULL;
}

static const struct ls_algo_param *param_find(const struct ls_algo_ops *ops, const char *name)
{
	const struct ls_algo_param *p;

	for (p = ops->params; p->name; p++)
		if (!strcmp(p->name, name) || (p->alias && !strcmp(p->alias, name)))
			return p;
	return NULL;
}

bool ls_algo_has_param(const char *algo, const char *param)
{
	const struct ls_algo_ops *ops = ls_algo_find(algo);

	return ops && param && param_find(ops, param);
}

bool ls_params_have_key(const char *params, const char *key)
{
	size_t n = strlen(key);
	const char *p = params;

	while (p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!strncmp(p, key, n) && (p[n] == '=' || p[n] == ' '))
			return true;
		p = strchr(p, ',');
	}
	return false;
}

bool ls_params_set_param(const char *algo, const char *params, const char *param)
{
	const struct ls_algo_ops *ops = ls_algo_find(algo);
	const struct ls_algo_param *p = ops && param ? param_find(ops, param) : NULL;

	if (!p || !params)
		return false;
	return ls_params_have_key(params, p->name) ||
	       (p->alias && ls_params_have_key(params, p->alias));
}

/* ---- value parsers ---------------------------------------------------- */

int ls_parse_u32(const char *text, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!text || !isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int ls_parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; text && i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(text, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(text, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int ls_parse_real(const char *text, double *out)
{
	double v;
	char *end;

	if (!text || !*text || isspace((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	v = strtod(text, &end);
	if (errno || *end || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

static const struct {
	const char *suffix;
	double ns;
} duration_units[] = {
	{"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
};

/* A non-negative number followed by a unit: 5s, 500ms, 1.5s, 100us, 5m, 24h. */
int ls_parse_duration_ns(const char *text, uint64_t *out_ns)
{
	const char *unit;
	char num[64];
	double v;
	size_t i, len;

	if (!text || !isdigit((unsigned char)*text))
		return -EINVAL;
	for (unit = text; isdigit((unsigned char)*unit) || *unit == '.'; unit++)
		;
	len = (size_t)(unit - text);
	if (len >= sizeof(num))
		return -EINVAL;
	memcpy(num, text, len);
	num[len] = '\0';
	if (ls_parse_real(num, &v))
		return -EINVAL;
	for (i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
		if (strcmp(unit, duration_units[i].suffix))
			continue;
		v *= duration_units[i].ns;
		if (v >= 18e18)
			return -EINVAL;
		*out_ns = (uint64_t)llround(v);
		return 0;
	}
	return -EINVAL;
}

/* ---- parameters against an algorithm's table ------------------------------ */

static bool in_range(const struct ls_algo_param *p, double v)
{
	if (p->flags & LS_PARAM_MIN_OPEN ? v <= p->min : v < p->min)
		return false;
	if (p->flags & LS_PARAM_MAX_OPEN ? v >= p->max : v > p->max)
		return false;
	return true;
}

static void describe_range(const struct ls_algo_param *p, char *buf, size_t len)
{
	double scale = p->kind == LS_PARAM_DURATION ? 1e6 : 1.0;
	const char *unit = p->kind == LS_PARAM_DURATION ? "ms" : "";

	snprintf(buf, len, "%c%g%s, %g%s%c", p->flags & LS_PARAM_MIN_OPEN ? '(' : '[',
		 p->min / scale, unit, p->max / scale, unit,
		 p->flags & LS_PARAM_MAX_OPEN ? ')' : ']');
}

static int parse_value(const struct ls_algo_param *p, const char *text, double *v, uint64_t *ns,
		       uint32_t *u)
{
	switch (p->kind) {
	case LS_PARAM_UINT:
		if (ls_parse_u32(text, u))
			return -EINVAL;
		*v = *u;
		return 0;
	case LS_PARAM_REAL:
		return ls_parse_real(text, v);
	case LS_PARAM_DURATION:
		if (ls_parse_duration_ns(text, ns))
			return -EINVAL;
		*v = (double)*ns;
		return 0;
	}
	return -EINVAL;
}

static const char *kind_hint(enum ls_param_kind kind)
{
	switch (kind) {
	case LS_PARAM_UINT:
		return "a whole number";
	case LS_PARAM_REAL:
		return "a number";
	case LS_PARAM_DURATION:
		return "a duration with a unit (ns, us, ms, s, m)";
	}
	return "a value";
}

static int param_store(const struct ls_algo_ops *ops, const struct ls_algo_param *p, void *st,
		       const char *text, char *err, size_t errlen)
{
	char range[96];
	uint64_t ns = 0;
	uint32_t u = 0;
	double v = 0;
	char *field = (char *)st + p->offset;

	if (parse_value(p, text, &v, &ns, &u)) {
		set_err(err, errlen, "%s: %s must be %s, got '%s'", ops->name, p->name,
			kind_hint(p->kind), text);
		return -EINVAL;
	}
	if (!in_range(p, v)) {
		describe_range(p, range, sizeof(range));
		set_err(err, errlen, "%s: %s must be in %s, got '%s'", ops->name, p->name, range,
			text);
		return -EINVAL;
	}
	switch (p->kind) {
	case LS_PARAM_UINT:
		memcpy(field, &u, sizeof(u));
		break;
	case LS_PARAM_REAL:
		memcpy(field, &v, sizeof(v));
		break;
	case LS_PARAM_DURATION:
		memcpy(field, &ns, sizeof(ns));
		break;
	}
	return 0;
}

static void known_params(const struct ls_algo_ops *ops, char *buf, size_t len)
{
	const struct ls_algo_param *p;
	size_t used = 0;

	buf[0] = '\0';
	for (p = ops->params; p->name && used < len; p++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", p->name);
}

char *ls_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int apply_one(const struct ls_algo_ops *ops, void *st, char *item, char *err, size_t errlen)
{
	const struct ls_algo_param *p;
	char known[256];
	char *eq = strchr(item, '=');
	char *key, *value;

	if (!eq) {
		set_err(err, errlen, "%s: expected key=value, got '%s'", ops->name, item);
		return -EINVAL;
	}
	*eq = '\0';
	key = ls_trim(item);
	value = ls_trim(eq + 1);
	if (!*key || !*value) {
		set_err(err, errlen, "%s: expected key=value, got '%s=%s'", ops->name, key, value);
		return -EINVAL;
	}
	p = param_find(ops, key);
	if (!p) {
		known_params(ops, known, sizeof(known));
		set_err(err, errlen, "%s: unknown parameter '%s' (known: %s)", ops->name, key,
			*known ? known : "none");
		return -EINVAL;
	}
	return param_store(ops, p, st, value, err, errlen);
}

/* Applies "k=v,k=v" onto st; stops at the first bad item. */
static int apply_params(const struct ls_algo_ops *ops, void *st, const char *params, char *err,
			size_t errlen)
{
	char buf[PARAMS_MAX_LEN];
	char *item, *save = NULL;
	int ret;

	if (!params)
		return 0;
	if (strlen(params) >= sizeof(buf)) {
		set_err(err, errlen, "%s: parameter list too long", ops->name);
		return -EINVAL;
	}
	strcpy(buf, params);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		item = ls_trim(item);
		if (!*item)
			continue;
		ret = apply_one(ops, st, item, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

static int apply_defaults(const struct ls_algo_ops *ops, void *st, char *err, size_t errlen)
{
	const struct ls_algo_param *p;
	int ret;

	for (p = ops->params; p->name; p++) {
		ret = param_store(ops, p, st, p->default_text, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* The parameter of ops named exactly name (an alias does not count), or NULL. */
static const struct ls_algo_param *param_exact(const struct ls_algo_ops *ops, const char *name)
{
	const struct ls_algo_param *p;

	for (p = ops->params; p->name; p++)
		if (!strcmp(p->name, name))
			return p;
	return NULL;
}

static uint32_t *u32_field(void *st, const struct ls_algo_param *p)
{
	return p && p->kind == LS_PARAM_UINT ? (uint32_t *)((char *)st + p->offset) : NULL;
}

/*
 * The bounds every algorithm shares: min_limit <= initial_limit <=
 * max_limit where it has them. Each algorithm checks the rest.
 */
static int check_limits(const struct ls_algo_ops *ops, void *st, char *err, size_t errlen)
{
	uint32_t *init = u32_field(st, param_exact(ops, "initial_limit"));
	uint32_t *min = u32_field(st, param_find(ops, "min_limit"));
	uint32_t *max = u32_field(st, param_find(ops, "max_limit"));

	if (min && max && *min > *max) {
		set_err(err, errlen, "%s: min_limit %u is above max_limit %u", ops->name, *min,
			*max);
		return -EINVAL;
	}
	if (init && min && *init < *min) {
		set_err(err, errlen, "%s: initial_limit %u is below min_limit %u", ops->name, *init,
			*min);
		return -EINVAL;
	}
	if (init && max && *init > *max) {
		set_err(err, errlen, "%s: initial_limit %u is above max_limit %u", ops->name, *init,
			*max);
		return -EINVAL;
	}
	return 0;
}

/*
 * The initial limit, when no parameter names it: a limit the service
 * already has, to resume from (else the default), brought inside the
 * algorithm's bounds. An algorithm whose limit is a parameter (fixed)
 * keeps its own.
 */
static void start_inside(const struct ls_algo_ops *ops, void *st, const char *params,
			 uint32_t current)
{
	uint32_t *init = u32_field(st, param_exact(ops, "initial_limit"));
	uint32_t *min = u32_field(st, param_find(ops, "min_limit"));
	uint32_t *max = u32_field(st, param_find(ops, "max_limit"));

	if (!init)
		return;
	if (current)
		*init = current;
	else if (params && ls_params_have_key(params, "initial_limit"))
		return; /* the user's: checked, not moved */
	if (min && *init < *min)
		*init = *min;
	if (max && *init > *max)
		*init = *max;
}

static int configure(const struct ls_algo_ops *ops, void *st, const char *params, uint32_t current,
		     char *err, size_t errlen)
{
	int ret = apply_params(ops, st, params, err, errlen);

	if (!ret)
		start_inside(ops, st, params, current);
	if (!ret)
		ret = check_limits(ops, st, err, errlen);
	if (!ret && ops->check)
		ret = ops->check(st, err, errlen);
	return ret;
}

static void known_algos(char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < REGISTRY_LEN && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 registry[i]->name);
}

/* ---- instances ----------------------------------------------------------- */

int ls_algo_create(const char *name, const char *params, struct ls_algo **out, char *err,
		   size_t errlen)
{
	return ls_algo_create_at(name, params, 0, out, err, errlen);
}

int ls_algo_create_at(const char *name, const char *params, uint32_t current, struct ls_algo **out,
		      char *err, size_t errlen)
{
	const struct ls_algo_ops *ops = ls_algo_find(name);
	struct ls_algo *algo;
	char known[128];
	int ret;

	*out = NULL;
	if (!ops) {
		known_algos(known, sizeof(known));
		set_err(err, errlen, "unknown algorithm '%s' (known: %s)", name ? name : "", known);
		return -ENOENT;
	}
	algo = calloc(1, sizeof(*algo));
	if (!algo || !(algo->state = calloc(1, ops->state_size))) {
		free(algo);
		set_err(err, errlen, "%s: out of memory", ops->name);
		return -ENOMEM;
	}
	algo->ops = ops;
	ret = apply_defaults(ops, algo->state, err, errlen);
	if (!ret)
		ret = configure(ops, algo->state, params, current, err, errlen);
	if (ret) {
		ls_algo_destroy(&algo);
		return ret;
	}
	algo->limit = ops->start(algo->state);
	*out = algo;
	return 0;
}

void ls_algo_destroy(struct ls_algo **algo)
{
	if (!algo || !*algo)
		return;
	free((*algo)->state);
	free(*algo);
	*algo = NULL;
}

int ls_algo_retune(struct ls_algo *algo, const char *params, char *err, size_t errlen)
{
	const struct ls_algo_ops *ops = algo->ops;
	void *copy = malloc(ops->state_size);
	int ret;

	if (!copy) {
		set_err(err, errlen, "%s: out of memory", ops->name);
		return -ENOMEM;
	}
	memcpy(copy, algo->state, ops->state_size);
	ret = configure(ops, copy, params, 0, err, errlen);
	if (!ret) {
		memcpy(algo->state, copy, ops->state_size);
		if (ops->retune)
			algo->limit = ops->retune(algo->state, algo->limit);
	}
	free(copy);
	return ret;
}

uint32_t ls_algo_update(struct ls_algo *algo, const struct ls_algo_sample *s)
{
	if (!algo->probing)
		algo->limit = algo->ops->update(algo->state, s);
	return algo->limit;
}

double ls_algo_sample_quantile(const struct ls_algo *algo)
{
	return algo->ops->sample_quantile ? algo->ops->sample_quantile(algo->state) : -1;
}

bool ls_algo_probes(const struct ls_algo *algo)
{
	return algo->ops->probe_due != NULL;
}

bool ls_algo_probing(const struct ls_algo *algo, struct ls_algo_probe *probe)
{
	if (algo->probing && probe)
		*probe = algo->probe;
	return algo->probing;
}

bool ls_algo_probe_due(const struct ls_algo *algo, uint64_t now_ns)
{
	return algo->ops->probe_due && !algo->probing && algo->ops->probe_due(algo->state, now_ns);
}

uint32_t ls_algo_probe_begin(struct ls_algo *algo, uint64_t now_ns)
{
	uint32_t before = algo->limit;

	if (!algo->ops->probe_begin || algo->probing)
		return algo->limit;
	memset(&algo->probe, 0, sizeof(algo->probe));
	algo->limit = algo->ops->probe_begin(algo->state, now_ns, &algo->probe);
	algo->probe.began_ns = now_ns;
	algo->probe.before = before;
	algo->probing = true;
	return algo->limit;
}

uint32_t ls_algo_probe_end(struct ls_algo *algo, uint64_t rtt_ns, uint64_t now_ns)
{
	if (!algo->probing)
		return algo->limit;
	algo->limit = algo->ops->probe_end(algo->state, rtt_ns, now_ns);
	algo->probing = false;
	return algo->limit;
}

enum ls_probe_step ls_algo_probe_step(struct ls_algo *algo, uint64_t now_ns,
				      const struct ls_latency_hist *probe)
{
	struct ls_algo_probe *p = &algo->probe;
	uint64_t timeout, since;

	if (!algo->probing) {
		if (!ls_algo_probe_due(algo, now_ns))
			return LS_PROBE_NONE;
		ls_algo_probe_begin(algo, now_ns);
		return LS_PROBE_BEGAN;
	}
	if (probe && probe->count && probe->count >= p->samples) {
		uint64_t rtt = ls_hist_quantile_ns(probe, p->quantile);

		ls_algo_probe_end(algo, rtt >= LS_PROBE_MIN_RTT_NS ? rtt : 0, now_ns);
		return LS_PROBE_ENDED;
	}
	if (probe && probe->count > p->seen) {
		p->seen = probe->count;
		p->last_ns = now_ns;
	}
	timeout = p->timeout_ns ? p->timeout_ns : LS_PROBE_TIMEOUT_NS;
	since = p->last_ns > p->began_ns ? p->last_ns : p->began_ns;
	/* A time before it began (replay's sample ends come out of order) times nothing out. */
	if (now_ns >= since &&
	    (now_ns - since >= timeout || now_ns - p->began_ns >= LS_PROBE_WAIT_MAX_NS)) {
		ls_algo_probe_end(algo, 0, now_ns);
		return LS_PROBE_ENDED;
	}
	return LS_PROBE_NONE;
}

uint32_t ls_algo_limit(const struct ls_algo *algo)
{
	return algo->limit;
}

uint32_t ls_algo_resume_limit(const struct ls_algo *algo)
{
	return algo->probing ? algo->probe.before : algo->limit;
}

double ls_algo_estimate(const struct ls_algo *algo)
{
	if (algo->ops->estimate)
		return algo->ops->estimate(algo->state);
	return algo->limit;
}

double ls_algo_baseline_rtt_ns(const struct ls_algo *algo)
{
	if (algo->ops->baseline_rtt_ns)
		return algo->ops->baseline_rtt_ns(algo->state);
	return 0;
}

static void format_value(const struct ls_algo_param *p, const void *st, char *buf, size_t len)
{
	const char *field = (const char *)st + p->offset;
	uint64_t ns;
	uint32_t u;
	double v;

	switch (p->kind) {
	case LS_PARAM_UINT:
		memcpy(&u, field, sizeof(u));
		snprintf(buf, len, "%u", u);
		break;
	case LS_PARAM_REAL:
		memcpy(&v, field, sizeof(v));
		snprintf(buf, len, "%g", v);
		break;
	case LS_PARAM_DURATION:
		memcpy(&ns, field, sizeof(ns));
		if (ns % 1000000000ull == 0)
			snprintf(buf, len, "%llus", (unsigned long long)(ns / 1000000000ull));
		else if (ns % 1000000ull == 0)
			snprintf(buf, len, "%llums", (unsigned long long)(ns / 1000000ull));
		else
			snprintf(buf, len, "%lluns", (unsigned long long)ns);
		break;
	}
}

int ls_algo_params_text(const struct ls_algo *algo, char *buf, size_t len)
{
	const struct ls_algo_param *p;
	char value[64];
	size_t used = 0;
	int n;

	if (!len)
		return -ENOSPC;
	buf[0] = '\0';
	for (p = algo->ops->params; p->name; p++) {
		format_value(p, algo->state, value, sizeof(value));
		n = snprintf(buf + used, len - used, "%s%s=%s", used ? "," : "", p->name, value);
		if (n < 0 || (size_t)n >= len - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	return 0;
}

void ls_algo_print_help(FILE *out)
{
	const struct ls_algo_param *p;
	size_t i;

	for (i = 0; i < REGISTRY_LEN; i++) {
		fprintf(out, "  %s%s: %s\n", registry[i]->name,
			strcmp(registry[i]->name, LS_ALGO_DEFAULT) ? "" : " (default)",
			registry[i]->summary);
		for (p = registry[i]->params; p->name; p++)
			fprintf(out, "      %-18s default %-6s %s\n", p->name, p->default_text,
				p->help);
	}
}

/* ---- numeric helpers ------------------------------------------------------- */

void ls_expavg_init(struct ls_expavg *m, uint32_t window, uint32_t warmup)
{
	memset(m, 0, sizeof(*m));
	m->window = window;
	m->warmup = warmup;
}

double ls_expavg_add(struct ls_expavg *m, double sample)
{
	double factor;

	if (m->count < m->warmup) {
		m->count++;
		m->sum += sample;
		m->value = m->sum / m->count;
	} else {
		factor = 2.0 / (m->window + 1.0);
		m->value = m->value * (1 - factor) + sample * factor;
	}
	return m->value;
}

uint64_t ls_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint32_t ls_log10_root(uint32_t n)
{
	uint32_t digits = 0;

	/* Counting digits instead of calling log10() keeps 1000 -> 3 exact. */
	while (n >= 10) {
		n /= 10;
		digits++;
	}
	return digits ? digits : 1;
}
