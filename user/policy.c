// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Compiles a validated config into the map entries of one policy
 * generation. Nothing here touches a map: the writer copies the image, so
 * the meaning of a config is testable byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "policy.h"

/* ---- one service --------------------------------------------------------- */

static bool has_prefix_rules(const struct ls_service_conf *s)
{
	for (uint32_t r = 0; r < s->nr_rules; r++)
		if (s->rules[r].nr_src)
			return true;
	return false;
}

/*
 * Slots: where each service of the config, and each class of a service,
 * sits in the maps. Without a previous policy, file order. With one, a
 * name keeps the slot it had, so that a reload never hands a service's or
 * a class's in-flight counts, flows, counters and limit to another. The
 * records keep the names of retired services and classes too, so new
 * names take slots no name ever held; only when every slot has had a
 * name does a new one take a retired name's slot (and whatever of it is
 * still in flight).
 */
struct ls_slots {
	uint8_t svc[LS_MAX_SERVICES];
	uint8_t cls[LS_MAX_SERVICES][LS_MAX_CLASSES];
};

/* Assigns n names to slots, keeping those found in prev_names (NULL: none). */
static void assign_slots(uint32_t n, const char *(*name_of)(const void *, uint32_t),
			 const void *ctx, const char (*prev_names)[LS_NAME_LEN], uint32_t nr_slots,
			 uint8_t *slot)
{
	bool taken[LS_MAX_CLASSES > LS_MAX_SERVICES ? LS_MAX_CLASSES : LS_MAX_SERVICES] = {};
	bool placed[LS_MAX_CLASSES > LS_MAX_SERVICES ? LS_MAX_CLASSES : LS_MAX_SERVICES] = {};

	for (uint32_t i = 0; prev_names && i < n; i++)
		for (uint32_t k = 0; k < nr_slots; k++)
			if (!taken[k] && prev_names[k][0] &&
			    !strcmp(prev_names[k], name_of(ctx, i))) {
				slot[i] = (uint8_t)k;
				taken[k] = placed[i] = true;
				break;
			}
	/* New names: first slots nobody held, then slots of names now gone. */
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < n; i++)
			for (uint32_t k = 0; !placed[i] && k < nr_slots; k++)
				if (!taken[k] && (pass || !prev_names || !prev_names[k][0])) {
					slot[i] = (uint8_t)k;
					taken[k] = placed[i] = true;
				}
}

static const char *service_name(const void *ctx, uint32_t i)
{
	return ((const struct ls_config *)ctx)->svc[i].name;
}

static const char *class_name(const void *ctx, uint32_t i)
{
	return ((const struct ls_service_conf *)ctx)->classes[i].name;
}

static void assign_all_slots(const struct ls_config *c, const struct ls_service_meta *prev,
			     struct ls_slots *sl)
{
	char svc_names[LS_MAX_SERVICES][LS_NAME_LEN] = {};

	/* Retired services keep their names in their records: their slots stay theirs. */
	for (uint32_t k = 0; prev && k < LS_MAX_SERVICES; k++)
		memcpy(svc_names[k], prev[k].name, LS_NAME_LEN);
	assign_slots(c->nr_services, service_name, c, prev ? svc_names : NULL, LS_MAX_SERVICES,
		     sl->svc);
	for (uint32_t i = 0; i < c->nr_services; i++) {
		const struct ls_service_meta *old = prev ? &prev[sl->svc[i]] : NULL;
		char cls_names[LS_MAX_CLASSES][LS_NAME_LEN] = {};
		bool same = old && !strcmp(old->name, c->svc[i].name);

		for (uint32_t k = 0; same && k < LS_MAX_CLASSES; k++)
			memcpy(cls_names[k], old->classes[k].name, LS_NAME_LEN);
		assign_slots(c->svc[i].nr_classes, class_name, &c->svc[i], same ? cls_names : NULL,
			     LS_MAX_CLASSES, sl->cls[i]);
	}
}

/* Names of the service's classes that a reload removed stay in their slots, share 0. */
static void keep_retired_class_names(const struct ls_service_meta *old, struct ls_service_meta *m)
{
	if (strcmp(old->name, m->name))
		return;
	for (uint32_t k = 0; k < LS_MAX_CLASSES; k++)
		if (!m->classes[k].name[0] && old->classes[k].name[0])
			memcpy(m->classes[k].name, old->classes[k].name, LS_NAME_LEN);
}

static void compile_service_policy(const struct ls_service_conf *s, const uint8_t *cls_slot,
				   struct ls_service_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->flags = LS_SVC_ACTIVE;
	if (s->shadow)
		p->flags |= LS_SVC_SHADOW;
	if (has_prefix_rules(s))
		p->flags |= LS_SVC_PREFIX_RULES;
	p->nr_rules = (__u16)s->nr_rules;
	p->default_class = cls_slot[s->default_class];
	p->admit = s->admit;
	p->max_connections = s->max_connections;
	p->max_defer_ms = s->admit == LS_ADMIT_REQUESTS ? s->max_defer_ms : 0;
	for (uint32_t r = 0; r < s->nr_rules; r++) {
		const struct ls_rule_conf *rc = &s->rules[r];

		p->rules[r].port_lo = rc->port_lo;
		p->rules[r].port_hi = rc->port_hi;
		p->rules[r].dscp = rc->dscp;
		p->rules[r].has_prefix = rc->nr_src ? 1 : 0;
		p->rules[r].cls = cls_slot[rc->cls];
	}
	for (uint32_t c = 0; c < s->nr_classes; c++) {
		p->classes[cls_slot[c]].action = s->classes[c].action;
		p->classes[cls_slot[c]].req_action = s->classes[c].req_action;
		p->classes[cls_slot[c]].in_use = 1;
	}
}

static void compile_service_meta(const struct ls_service_conf *s, const uint8_t *cls_slot,
				 struct ls_service_meta *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", s->name);
	snprintf(m->algo, sizeof(m->algo), "%s", s->algo);
	snprintf(m->algo_params, sizeof(m->algo_params), "%s", s->algo_params);
	m->in_use = 1;
	m->pinned_limit = s->pinned_limit;
	m->min_limit = s->min_limit;
	m->max_limit = s->max_limit;
	m->initial_limit = s->initial_limit;
	m->rtt_quantile_ppm = s->rtt_quantile_ppm;
	m->admit = s->admit;
	for (uint32_t c = 0; c < s->nr_classes; c++) {
		struct ls_class_meta *cm = &m->classes[cls_slot[c]];

		snprintf(cm->name, sizeof(cm->name), "%s", s->classes[c].name);
		cm->share_ppm = s->classes[c].share_ppm;
		if (cls_slot[c] >= m->nr_classes)
			m->nr_classes = cls_slot[c] + 1u; /* slots below may be free */
	}
}

/* ---- ports and addresses ------------------------------------------------- */

static struct ls_port_entry *port_entry(struct ls_policy_image *img, uint16_t port)
{
	struct ls_port_entry *e;

	for (uint32_t i = 0; i < img->nr_ports; i++)
		if (img->ports[i].port == port)
			return &img->ports[i];
	e = &img->ports[img->nr_ports++];
	memset(e, 0, sizeof(*e));
	e->port = port;
	return e;
}

static void add_listen(struct ls_policy_image *img, uint32_t svc, const struct ls_listen_conf *l)
{
	struct ls_port_entry *e = port_entry(img, l->port);
	struct ls_svc_addr_entry *a;

	if (l->any) {
		e->val.any_svc[img->gen] = (__u8)(svc + 1);
		return;
	}
	e->val.by_addr[img->gen] = 1;
	a = &img->svc_addrs[img->nr_svc_addrs++];
	memset(a, 0, sizeof(*a));
	a->key.gen = img->gen;
	a->key.port = l->port;
	memcpy(a->key.addr, l->addr, sizeof(a->key.addr));
	a->svc = svc;
}

static int cmp_port_entry(const void *a, const void *b)
{
	const struct ls_port_entry *x = a, *y = b;

	return (int)x->port - (int)y->port;
}

static int cmp_svc_addr_entry(const void *a, const void *b)
{
	const struct ls_svc_addr_entry *x = a, *y = b;

	if (x->key.port != y->key.port)
		return (int)x->key.port - (int)y->key.port;
	return memcmp(x->key.addr, y->key.addr, sizeof(x->key.addr));
}

static void compile_ports(const struct ls_config *c, const struct ls_slots *sl,
			  struct ls_policy_image *img)
{
	for (uint32_t s = 0; s < c->nr_services; s++)
		for (uint32_t l = 0; l < c->svc[s].nr_listen; l++)
			add_listen(img, sl->svc[s], &c->svc[s].listen[l]);
	qsort(img->ports, img->nr_ports, sizeof(img->ports[0]), cmp_port_entry);
	qsort(img->svc_addrs, img->nr_svc_addrs, sizeof(img->svc_addrs[0]), cmp_svc_addr_entry);
}

void ls_port_set_gen(struct ls_port *live, const struct ls_port *img, uint32_t gen)
{
	live->any_svc[gen] = img->any_svc[gen];
	live->by_addr[gen] = img->by_addr[gen];
}

/* ---- source prefixes ----------------------------------------------------- */

static int cmp_prefix(const void *a, const void *b)
{
	const struct ls_prefix *x = a, *y = b;

	if (x->len_bits != y->len_bits)
		return (int)x->len_bits - (int)y->len_bits;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/*
 * The rules whose source list holds prefix p. The trie returns only the
 * longest stored prefix of an address, so that entry must carry the bits
 * of every shorter prefix around it too, from any rule.
 */
static uint32_t rule_mask_of(const struct ls_service_conf *s, const struct ls_prefix *p)
{
	uint32_t mask = 0;

	for (uint32_t r = 0; r < s->nr_rules; r++)
		for (uint32_t i = 0; i < s->rules[r].nr_src; i++)
			if (ls_prefix_contains(&s->rules[r].src[i], p)) {
				mask |= 1u << r;
				break;
			}
	return mask;
}

/* The distinct prefixes of a service's rules, sorted; returns how many. */
static uint32_t distinct_prefixes(const struct ls_service_conf *s, struct ls_prefix *out)
{
	uint32_t n = 0, k = 0;

	for (uint32_t r = 0; r < s->nr_rules; r++)
		for (uint32_t i = 0; i < s->rules[r].nr_src; i++)
			out[n++] = s->rules[r].src[i];
	qsort(out, n, sizeof(out[0]), cmp_prefix);
	for (uint32_t i = 0; i < n; i++)
		if (!k || cmp_prefix(&out[k - 1], &out[i]))
			out[k++] = out[i];
	return k;
}

static void compile_prefixes(const struct ls_service_conf *s, uint32_t svc,
			     struct ls_policy_image *img)
{
	struct ls_prefix all[LS_MAX_RULES * LS_MAX_RULE_PREFIXES];
	uint32_t n = distinct_prefixes(s, all);

	for (uint32_t i = 0; i < n; i++) {
		struct ls_prefix_entry *e = &img->prefixes[img->nr_prefixes++];

		memset(e, 0, sizeof(*e));
		e->key.prefixlen = LS_PREFIX_KEY_FIXED_BITS + all[i].len_bits;
		e->key.gen = (__u8)img->gen;
		e->key.svc = (__u8)svc;
		memcpy(e->key.addr, all[i].addr, sizeof(e->key.addr));
		e->rule_mask = rule_mask_of(s, &all[i]);
	}
}

/* ---- the image ----------------------------------------------------------- */

static void compile_agent(const struct ls_agent_conf *a, struct ls_agent_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->interval_ns = a->interval_ns;
	m->idle_timeout_ns = a->idle_timeout_ns;
	m->stall_timeout_ns = a->stall_timeout_ns;
	m->failopen_after_ns = a->failopen_after_ns;
	m->max_flows = a->max_flows;
	m->log_change_ppm = a->log_change_ppm;
	m->metrics = a->metrics;
	m->config_unwatched = !a->watch_config;
}

int ls_policy_compile(const struct ls_config *c, uint32_t gen, struct ls_policy_image **out,
		      char *err, size_t errlen)
{
	return ls_policy_compile_onto(c, gen, NULL, out, err, errlen);
}

int ls_policy_compile_onto(const struct ls_config *c, uint32_t gen,
			   const struct ls_service_meta *prev, struct ls_policy_image **out,
			   char *err, size_t errlen)
{
	struct ls_policy_image *img;
	struct ls_slots sl;

	if (!c->validated) {
		snprintf(err, errlen, "the config must be validated before it is compiled");
		return -EINVAL;
	}
	if (gen >= LS_NR_GENS) {
		snprintf(err, errlen, "policy generation %u does not exist (0 or 1)", gen);
		return -EINVAL;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		snprintf(err, errlen, "out of memory compiling the policy");
		return -ENOMEM;
	}
	img->gen = gen;
	img->nr_services = c->nr_services;
	compile_agent(&c->agent, &img->agent);
	assign_all_slots(c, prev, &sl);
	for (uint32_t s = 0; s < c->nr_services; s++) {
		compile_service_policy(&c->svc[s], sl.cls[s], &img->svc[sl.svc[s]]);
		compile_service_meta(&c->svc[s], sl.cls[s], &img->meta[sl.svc[s]]);
		if (prev)
			keep_retired_class_names(&prev[sl.svc[s]], &img->meta[sl.svc[s]]);
		compile_prefixes(&c->svc[s], sl.svc[s], img);
	}
	compile_ports(c, &sl, img);
	*out = img;
	return 0;
}

void ls_policy_image_free(struct ls_policy_image **img)
{
	if (!img)
		return;
	free(*img);
	*img = NULL;
}
