// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Invariants of a compiled policy (see fuzz.h), for the config and the
 * class-spec harnesses. Everything is checked against the config and the
 * dataplane's own rules (include/loadshed.h), never against the compiler's
 * helpers, except ls_prefix_contains(), which user/addr.c owns.
 */
#include <errno.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "policy.h"
#include "lib/fuzz.h"

void fuzz_check_error_contract(const char *what, int rc, const char *err)
{
	FUZZ_CHECK(rc <= 0, "%s returned %d, not 0 or a negative errno", what, rc);
	FUZZ_CHECK(rc > -4096, "%s returned %d, not an errno", what, rc);
	FUZZ_CHECK(!rc || err[0], "%s failed (%d) without saying why", what, rc);
}

static int active(const struct ls_policy_image *img, uint32_t svc)
{
	return svc < LS_MAX_SERVICES && (img->svc[svc].flags & LS_SVC_ACTIVE);
}

static void check_service(const struct ls_policy_image *img, uint32_t k)
{
	static const struct ls_service_policy zero_pol;
	static const struct ls_service_meta zero_meta;
	const struct ls_service_policy *p = &img->svc[k];
	const struct ls_service_meta *m = &img->meta[k];

	if (!active(img, k)) {
		FUZZ_CHECK(!memcmp(p, &zero_pol, sizeof(*p)), "unused service slot %u has a policy",
			   k);
		FUZZ_CHECK(!memcmp(m, &zero_meta, sizeof(*m)),
			   "unused service slot %u has a record", k);
		return;
	}
	FUZZ_CHECK(m->in_use && m->name[0], "service slot %u is active without a named record", k);
	FUZZ_CHECK(memchr(m->name, 0, sizeof(m->name)), "service %u: name not terminated", k);
	FUZZ_CHECK(p->admit <= LS_ADMIT_REQUESTS, "service %s: admit %u", m->name, p->admit);
	FUZZ_CHECK(p->admit == LS_ADMIT_REQUESTS || !p->max_defer_ms,
		   "service %s: max_defer without admit = requests", m->name);
	FUZZ_CHECK(p->nr_rules <= LS_MAX_RULES, "service %s: %u rules", m->name, p->nr_rules);
	FUZZ_CHECK(p->default_class < LS_MAX_CLASSES && p->classes[p->default_class].in_use,
		   "service %s: default class %u not in use", m->name, p->default_class);
	for (uint32_t r = 0; r < p->nr_rules && r < LS_MAX_RULES; r++) {
		const struct ls_rule *rule = &p->rules[r];

		FUZZ_CHECK(rule->cls < LS_MAX_CLASSES && p->classes[rule->cls].in_use,
			   "service %s: rule %u selects class %u, not in use", m->name, r,
			   rule->cls);
		FUZZ_CHECK(!rule->port_hi || rule->port_lo <= rule->port_hi,
			   "service %s: rule %u: port range %u-%u", m->name, r, rule->port_lo,
			   rule->port_hi);
		FUZZ_CHECK(rule->dscp == LS_DSCP_ANY || rule->dscp < 64,
			   "service %s: rule %u: dscp %u", m->name, r, rule->dscp);
		FUZZ_CHECK(!rule->has_prefix || (p->flags & LS_SVC_PREFIX_RULES),
			   "service %s: rule %u has prefixes, the service no prefix flag", m->name,
			   r);
	}
	for (uint32_t c = 0; c < LS_MAX_CLASSES; c++) {
		const struct ls_class_policy *cp = &p->classes[c];

		FUZZ_CHECK(cp->action <= LS_ACT_BYPASS && cp->req_action <= LS_REQ_ABORT,
			   "service %s class %u: action %u, request action %u", m->name, c,
			   cp->action, cp->req_action);
		FUZZ_CHECK(!cp->in_use || m->classes[c].name[0],
			   "service %s: class slot %u in use without a name", m->name, c);
		FUZZ_CHECK(m->classes[c].share_ppm <= LS_PPM, "service %s class %u: share %u ppm",
			   m->name, c, m->classes[c].share_ppm);
		for (uint32_t d = 0; d < c && cp->in_use; d++)
			FUZZ_CHECK(!p->classes[d].in_use ||
					   strncmp(m->classes[c].name, m->classes[d].name,
						   LS_NAME_LEN),
				   "service %s: class %.32s in slots %u and %u", m->name,
				   m->classes[c].name, d, c);
	}
	for (uint32_t j = 0; j < k; j++)
		FUZZ_CHECK(!active(img, j) || strncmp(img->meta[j].name, m->name, LS_NAME_LEN),
			   "service %.32s in slots %u and %u", m->name, j, k);
}

static void check_ports(const struct ls_policy_image *img)
{
	uint32_t g = img->gen;

	for (uint32_t i = 0; i < img->nr_ports; i++) {
		const struct ls_port_entry *e = &img->ports[i];
		int addr_found = 0;

		FUZZ_CHECK(!i || img->ports[i - 1].port < e->port, "ports not sorted or repeated");
		FUZZ_CHECK(e->port, "port 0 listed");
		FUZZ_CHECK(!e->val.any_svc[!g] && !e->val.by_addr[!g],
			   "port %u: an entry in the other generation", e->port);
		FUZZ_CHECK(e->val.any_svc[g] || e->val.by_addr[g], "port %u: no service", e->port);
		FUZZ_CHECK(!e->val.any_svc[g] || active(img, e->val.any_svc[g] - 1u),
			   "port %u: any-address service %u is not active", e->port,
			   e->val.any_svc[g]);
		FUZZ_CHECK(e->val.by_addr[g] <= 1, "port %u: by_addr %u", e->port,
			   e->val.by_addr[g]);
		for (uint32_t a = 0; a < img->nr_svc_addrs; a++)
			addr_found |= img->svc_addrs[a].key.port == e->port;
		FUZZ_CHECK(addr_found == e->val.by_addr[g],
			   "port %u: by_addr %u but %s address entry", e->port, e->val.by_addr[g],
			   addr_found ? "an" : "no");
	}
	for (uint32_t a = 0; a < img->nr_svc_addrs; a++) {
		const struct ls_svc_addr_entry *e = &img->svc_addrs[a], *prev = e - 1;

		FUZZ_CHECK(e->key.gen == g && !e->key.pad, "address entry %u: gen %u pad %u", a,
			   e->key.gen, e->key.pad);
		FUZZ_CHECK(active(img, e->svc), "address entry %u: service %u not active", a,
			   e->svc);
		FUZZ_CHECK(!a || prev->key.port < e->key.port ||
				   (prev->key.port == e->key.port &&
				    memcmp(prev->key.addr, e->key.addr, 16) < 0),
			   "address entries not sorted or repeated (port %u)", e->key.port);
	}
}

/* The longest of the service's prefixes that holds addr, as the LPM trie would find it. */
static const struct ls_prefix_entry *longest_match(const struct ls_policy_image *img, uint32_t svc,
						   const uint8_t addr[16])
{
	const struct ls_prefix_entry *best = NULL;
	struct ls_prefix host = {.len_bits = 128};

	memcpy(host.addr, addr, 16);
	for (uint32_t i = 0; i < img->nr_prefixes; i++) {
		const struct ls_prefix_entry *e = &img->prefixes[i];
		struct ls_prefix p = {
			.len_bits = (uint8_t)(e->key.prefixlen - LS_PREFIX_KEY_FIXED_BITS)};

		if (e->key.svc != svc)
			continue;
		memcpy(p.addr, e->key.addr, 16);
		if (ls_prefix_contains(&p, &host) &&
		    (!best || e->key.prefixlen > best->key.prefixlen))
			best = e;
	}
	return best;
}

/* The rules of a service some source prefix of which holds addr: what the lookup must give. */
static uint32_t rules_holding(const struct ls_service_conf *s, const uint8_t addr[16])
{
	struct ls_prefix host = {.len_bits = 128};
	uint32_t mask = 0;

	memcpy(host.addr, addr, 16);
	for (uint32_t r = 0; r < s->nr_rules; r++)
		for (uint32_t i = 0; i < s->rules[r].nr_src; i++)
			if (ls_prefix_contains(&s->rules[r].src[i], &host))
				mask |= 1u << r;
	return mask;
}

/* Probes around each stored prefix: its first address, its last, and just past it. */
static void check_prefix_lookups(const struct ls_config *c, const struct ls_policy_image *img,
				 const uint8_t *svc_slot)
{
	for (uint32_t i = 0; i < img->nr_prefixes; i++) {
		const struct ls_prefix_entry *e = &img->prefixes[i];
		uint32_t bits = e->key.prefixlen - LS_PREFIX_KEY_FIXED_BITS;
		const struct ls_service_conf *s = NULL;

		for (uint32_t k = 0; k < c->nr_services; k++)
			if (svc_slot[k] == e->key.svc)
				s = &c->svc[k];
		FUZZ_CHECK(s, "prefix entry %u: service slot %u has no service", i, e->key.svc);
		for (int probe = 0; probe < 3; probe++) {
			const struct ls_prefix_entry *hit;
			uint8_t addr[16];
			uint32_t want;

			memcpy(addr, e->key.addr, 16);
			if (probe >= 1)
				for (uint32_t b = bits; b < 128; b++)
					addr[b / 8] |= (uint8_t)(0x80u >> (b % 8));
			if (probe == 2) {
				/* The address after the prefix's last: carry upwards. */
				for (int byte = 15; byte >= 0 && !++addr[byte]; byte--)
					;
			}
			hit = longest_match(img, e->key.svc, addr);
			want = rules_holding(s, addr);
			FUZZ_CHECK((hit ? hit->rule_mask : 0) == want,
				   "service %s: prefix entry %u probe %d: the lookup gives rules "
				   "%#x, the config %#x",
				   s->name, i, probe, hit ? hit->rule_mask : 0, want);
		}
	}
}

static void check_prefixes(const struct ls_config *c, const struct ls_policy_image *img,
			   const uint8_t *svc_slot)
{
	FUZZ_CHECK(img->nr_prefixes <= LS_MAX_PREFIX_ENTRIES, "%u prefix entries",
		   img->nr_prefixes);
	for (uint32_t i = 0; i < img->nr_prefixes; i++) {
		const struct ls_prefix_entry *e = &img->prefixes[i];
		const struct ls_service_policy *p = &img->svc[e->key.svc];

		FUZZ_CHECK(e->key.gen == img->gen, "prefix entry %u: gen %u", i, e->key.gen);
		FUZZ_CHECK(active(img, e->key.svc), "prefix entry %u: service %u not active", i,
			   e->key.svc);
		FUZZ_CHECK(e->key.prefixlen >= LS_PREFIX_KEY_FIXED_BITS &&
				   e->key.prefixlen <= LS_PREFIX_KEY_FIXED_BITS + 128,
			   "prefix entry %u: prefixlen %u", i, e->key.prefixlen);
		FUZZ_CHECK(p->flags & LS_SVC_PREFIX_RULES,
			   "prefix entry %u: service %u has no prefix flag", i, e->key.svc);
		FUZZ_CHECK(e->rule_mask, "prefix entry %u: no rule", i);
		for (uint32_t r = 0; r < 32; r++)
			FUZZ_CHECK(!(e->rule_mask & (1u << r)) ||
					   (r < p->nr_rules && p->rules[r].has_prefix),
				   "prefix entry %u: rule %u has no prefix", i, r);
		for (uint32_t j = 0; j < i; j++)
			FUZZ_CHECK(memcmp(&img->prefixes[j].key, &e->key, sizeof(e->key)),
				   "prefix entries %u and %u are the same key", j, i);
	}
	check_prefix_lookups(c, img, svc_slot);
}

/* The class slot whose record has the name of the config's class cls. */
static uint32_t class_slot(const struct ls_service_conf *s, const struct ls_service_meta *m,
			   uint32_t cls)
{
	for (uint32_t k = 0; k < LS_MAX_CLASSES; k++)
		if (!strncmp(m->classes[k].name, s->classes[cls].name, LS_NAME_LEN))
			return k;
	FUZZ_CHECK(0, "service %s: class %s has no slot", s->name, s->classes[cls].name);
	return 0;
}

/* The service's classes, rules and default class mean what the config says. */
static void check_classes(const struct ls_service_conf *s, const struct ls_service_policy *p,
			  const struct ls_service_meta *m)
{
	for (uint32_t c = 0; c < s->nr_classes; c++) {
		uint32_t k = class_slot(s, m, c);

		FUZZ_CHECK(p->classes[k].in_use && p->classes[k].action == s->classes[c].action &&
				   p->classes[k].req_action == s->classes[c].req_action &&
				   m->classes[k].share_ppm == s->classes[c].share_ppm,
			   "service %s: class %s compiled with other settings", s->name,
			   s->classes[c].name);
	}
	FUZZ_CHECK(p->default_class == class_slot(s, m, s->default_class),
		   "service %s: the default class moved", s->name);
	for (uint32_t r = 0; r < s->nr_rules; r++) {
		const struct ls_rule_conf *rc = &s->rules[r];
		const struct ls_rule *rule = &p->rules[r];

		FUZZ_CHECK(rule->cls == class_slot(s, m, rc->cls) && rule->port_lo == rc->port_lo &&
				   rule->port_hi == rc->port_hi && rule->dscp == rc->dscp &&
				   rule->has_prefix == (rc->nr_src ? 1 : 0),
			   "service %s: rule %u compiled into another rule", s->name, r);
	}
}

/* Every listen entry of the config reaches its own service's slot (design.md §3.2). */
static void check_listens(const struct ls_config *c, const struct ls_policy_image *img,
			  const uint8_t *slot)
{
	uint32_t g = img->gen;

	for (uint32_t s = 0; s < c->nr_services; s++) {
		for (uint32_t l = 0; l < c->svc[s].nr_listen; l++) {
			const struct ls_listen_conf *lc = &c->svc[s].listen[l];
			const struct ls_port_entry *pe = NULL;
			int found = 0;

			for (uint32_t i = 0; i < img->nr_ports; i++)
				if (img->ports[i].port == lc->port)
					pe = &img->ports[i];
			FUZZ_CHECK(pe, "service %s: port %u not listed", c->svc[s].name, lc->port);
			if (lc->any) {
				FUZZ_CHECK(pe->val.any_svc[g] == slot[s] + 1u,
					   "service %s: *:%u goes to service slot %d",
					   c->svc[s].name, lc->port, pe->val.any_svc[g] - 1);
				continue;
			}
			for (uint32_t a = 0; a < img->nr_svc_addrs; a++) {
				const struct ls_svc_addr_entry *e = &img->svc_addrs[a];

				if (e->key.port == lc->port && !memcmp(e->key.addr, lc->addr, 16)) {
					FUZZ_CHECK(e->svc == slot[s],
						   "service %s: an address on port %u goes to "
						   "service slot %u",
						   c->svc[s].name, lc->port, e->svc);
					found = 1;
				}
			}
			FUZZ_CHECK(found, "service %s: an address on port %u is not listed",
				   c->svc[s].name, lc->port);
		}
	}
}

/* Slots of the config's services in img: the record whose name is theirs. */
static void service_slots(const struct ls_config *c, const struct ls_policy_image *img,
			  uint8_t *slot)
{
	for (uint32_t s = 0; s < c->nr_services; s++) {
		int found = -1;

		for (uint32_t k = 0; k < LS_MAX_SERVICES; k++)
			if (active(img, k) &&
			    !strncmp(img->meta[k].name, c->svc[s].name, LS_NAME_LEN))
				found = (int)k;
		FUZZ_CHECK(found >= 0, "service %s has no slot", c->svc[s].name);
		slot[s] = (uint8_t)found;
	}
}

static void check_image(const struct ls_config *c, const struct ls_policy_image *img, uint32_t gen)
{
	uint8_t slot[LS_MAX_SERVICES];
	uint32_t n = 0;

	FUZZ_CHECK(img->gen == gen, "image of generation %u says %u", gen, img->gen);
	FUZZ_CHECK(img->nr_services == c->nr_services && c->nr_services <= LS_MAX_SERVICES,
		   "%u services compiled of %u", img->nr_services, c->nr_services);
	for (uint32_t k = 0; k < LS_MAX_SERVICES; k++) {
		check_service(img, k);
		n += active(img, k) ? 1 : 0;
	}
	FUZZ_CHECK(n == c->nr_services, "%u services active of %u", n, c->nr_services);
	service_slots(c, img, slot);
	for (uint32_t s = 0; s < c->nr_services; s++) {
		const struct ls_service_policy *p = &img->svc[slot[s]];

		FUZZ_CHECK(p->nr_rules == c->svc[s].nr_rules, "service %s: %u rules of %u",
			   c->svc[s].name, p->nr_rules, c->svc[s].nr_rules);
		FUZZ_CHECK(!!(p->flags & LS_SVC_SHADOW) == c->svc[s].shadow,
			   "service %s: shadow lost", c->svc[s].name);
		check_classes(&c->svc[s], p, &img->meta[slot[s]]);
	}
	check_ports(img);
	check_listens(c, img, slot);
	check_prefixes(c, img, slot);
}

/* Generation 1's image with its generation fields moved to 0: generation 0's. */
static void move_to_gen0(struct ls_policy_image *img)
{
	img->gen = 0;
	for (uint32_t i = 0; i < img->nr_ports; i++) {
		struct ls_port *v = &img->ports[i].val;

		v->any_svc[0] = v->any_svc[1];
		v->by_addr[0] = v->by_addr[1];
		v->any_svc[1] = v->by_addr[1] = 0;
	}
	for (uint32_t i = 0; i < img->nr_svc_addrs; i++)
		img->svc_addrs[i].key.gen = 0;
	for (uint32_t i = 0; i < img->nr_prefixes; i++)
		img->prefixes[i].key.gen = 0;
}

void fuzz_check_config_compiles(const struct ls_config *c)
{
	struct ls_policy_image *img0 = NULL, *img1 = NULL, *again = NULL;
	char err[512] = "";
	int rc;

	rc = ls_policy_compile(c, 0, &img0, err, sizeof(err));
	FUZZ_CHECK(!rc, "a validated config does not compile (%d): %s", rc, err);
	check_image(c, img0, 0);

	rc = ls_policy_compile(c, 1, &img1, err, sizeof(err));
	FUZZ_CHECK(!rc, "a validated config does not compile in generation 1 (%d): %s", rc, err);
	check_image(c, img1, 1);
	move_to_gen0(img1);
	FUZZ_CHECK(!memcmp(img0, img1, sizeof(*img0)),
		   "generations 0 and 1 compile to different entries");

	/* A reload of the same config keeps every service and class where it was. */
	rc = ls_policy_compile_onto(c, 0, img0->meta, &again, err, sizeof(err));
	FUZZ_CHECK(!rc, "the config does not compile onto its own records (%d): %s", rc, err);
	FUZZ_CHECK(!memcmp(img0, again, sizeof(*img0)),
		   "compiled onto its own records, the config moves slots");

	ls_policy_image_free(&img0);
	ls_policy_image_free(&img1);
	ls_policy_image_free(&again);
}
