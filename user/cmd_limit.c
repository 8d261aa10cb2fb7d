// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed limit IFACE {set [--class C] N | auto [--class C] | algo NAME [K=V...]}
 * loadshed policy IFACE {reload FILE | shadow on|off}
 * Both act on a running attachment under its lock; the agent sees the
 * service records they change at its next round.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "agent.h"
#include "algo.h"
#include "commands.h"
#include "maps.h"
#include "output.h"
#include "pins.h"
#include "policy_maps.h"

struct target {
	const char *service; /* NULL: the only one */
	const char *cls;     /* NULL: the service */
};

/* Takes --service S and --class C out of argv; returns the remaining argc. */
static int take_target(int argc, char **argv, struct target *t)
{
	int out = 0;

	for (int i = 0; i < argc; i++) {
		if ((!strcmp(argv[i], "--service") || !strcmp(argv[i], "--class")) &&
		    i + 1 < argc) {
			if (argv[i][2] == 's')
				t->service = argv[++i];
			else
				t->cls = argv[++i];
			continue;
		}
		argv[out++] = argv[i];
	}
	return out;
}

/* Finds the service slot t names; -ENOENT, or -EINVAL when it is ambiguous. */
static int find_service(const struct ls_maps *m, const struct target *t,
			struct ls_service_meta *meta)
{
	int found = -1;

	for (uint32_t s = 0; s < LS_MAX_SERVICES; s++) {
		struct ls_service_meta cur;

		if (ls_read_meta(m, s, &cur) || !cur.in_use)
			continue;
		if (t->service && strcmp(cur.name, t->service))
			continue;
		if (found >= 0)
			return -EINVAL;
		found = (int)s;
		*meta = cur;
	}
	return found < 0 ? -ENOENT : found;
}

static int find_class(const struct ls_service_meta *meta, const char *name)
{
	for (uint32_t c = 0; c < LS_MAX_CLASSES && c < meta->nr_classes; c++)
		if (!strcmp(meta->classes[c].name, name))
			return (int)c;
	return -1;
}

typedef int (*service_fn)(const struct ls_maps *m, uint32_t svc, struct ls_service_meta *meta,
			  const struct target *t, int argc, char **argv, char *err, size_t errlen);

/* Locks ifname, finds the target service and runs fn on it. */
static int on_service(const char *ifname, const struct target *t, service_fn fn, int argc,
		      char **argv)
{
	struct ls_service_meta meta;
	struct ls_attachment a;
	char err[512] = "";
	int svc, rc;

	rc = ls_attachment_open(ifname, &a);
	if (rc)
		return rc;
	svc = find_service(&a.maps, t, &meta);
	if (svc == -EINVAL)
		rc = ls_fail(LS_EXIT_USAGE, "%s has several services: name one with --service",
			     ifname);
	else if (svc < 0)
		rc = ls_fail(LS_EXIT_USAGE, "%s: no service %s", ifname,
			     t->service ? t->service : "");
	else if ((rc = fn(&a.maps, (uint32_t)svc, &meta, t, argc, argv, err, sizeof(err))))
		rc = ls_fail(rc, "%s", err);
	ls_attachment_close(&a);
	return rc;
}

static int write_meta(const struct ls_maps *m, uint32_t svc, const struct ls_service_meta *meta,
		      char *err, size_t errlen)
{
	struct ls_limits lim = {};
	uint32_t limit;

	if (bpf_map_update_elem(m->config, &svc, meta, BPF_ANY))
		goto fail;
	ls_read_limits(m, svc, &lim);
	limit = meta->pinned_limit ? meta->pinned_limit : lim.limit;
	if (ls_agent_write_limits(m, svc, limit, meta))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "writing the limits: %s", strerror(errno));
	return LS_EXIT_RUNTIME;
}

static int parse_limit(const char *text, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(text, &end, 10);

	if (!*text || *end || v == 0 || v > 1000000)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int do_set(const struct ls_maps *m, uint32_t svc, struct ls_service_meta *meta,
		  const struct target *t, int argc, char **argv, char *err, size_t errlen)
{
	uint32_t n;
	int c = -1;

	if (argc != 1 || parse_limit(argv[0], &n)) {
		snprintf(err, errlen, "limit set takes one number, 1..1000000");
		return LS_EXIT_USAGE;
	}
	if (t->cls && (c = find_class(meta, t->cls)) < 0) {
		snprintf(err, errlen, "service %s has no class %s", meta->name, t->cls);
		return LS_EXIT_USAGE;
	}
	if (c >= 0)
		meta->classes[c].pinned_guarantee = n;
	else
		meta->pinned_limit = n;
	return write_meta(m, svc, meta, err, errlen);
}

static int do_auto(const struct ls_maps *m, uint32_t svc, struct ls_service_meta *meta,
		   const struct target *t, int argc, char **argv, char *err, size_t errlen)
{
	int c = -1;

	(void)argv;
	if (argc != 0) {
		snprintf(err, errlen, "limit auto takes no argument");
		return LS_EXIT_USAGE;
	}
	if (t->cls && (c = find_class(meta, t->cls)) < 0) {
		snprintf(err, errlen, "service %s has no class %s", meta->name, t->cls);
		return LS_EXIT_USAGE;
	}
	if (c >= 0)
		meta->classes[c].pinned_guarantee = 0;
	else
		meta->pinned_limit = 0;
	return write_meta(m, svc, meta, err, errlen);
}

/* limit IFACE algo NAME [K=V...]: checked here, taken up by the agent's next round. */
static int do_algo(const struct ls_maps *m, uint32_t svc, struct ls_service_meta *meta,
		   const struct target *t, int argc, char **argv, char *err, size_t errlen)
{
	char params[LS_ALGO_PARAMS_LEN] = "";
	struct ls_algo *a;

	(void)t;
	if (argc < 1) {
		snprintf(err, errlen, "limit algo takes NAME [K=V...]");
		return LS_EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		if (strlen(params) + strlen(argv[i]) + 2 > sizeof(params)) {
			snprintf(err, errlen, "parameters too long");
			return LS_EXIT_USAGE;
		}
		if (params[0])
			strcat(params, ",");
		strcat(params, argv[i]);
	}
	if (ls_algo_create(argv[0], params, &a, err, errlen))
		return LS_EXIT_USAGE;
	ls_algo_destroy(&a);
	snprintf(meta->algo, sizeof(meta->algo), "%s", argv[0]);
	snprintf(meta->algo_params, sizeof(meta->algo_params), "%s", params);
	meta->pinned_limit = 0;
	return write_meta(m, svc, meta, err, errlen);
}

int cmd_limit(int argc, char **argv)
{
	struct target t = {};
	service_fn fn;

	if (argc < 2 || ls_is_help(argv[1]) || (argc >= 3 && ls_is_help(argv[2]))) {
		printf("Usage: loadshed limit IFACE set [--service S] [--class C] N\n"
		       "       loadshed limit IFACE auto [--service S] [--class C]\n"
		       "       loadshed limit IFACE algo [--service S] NAME [K=V...]\n\n"
		       "set pins the service's limit L (or, with --class, the class's guarantee)\n"
		       "to N; auto hands it back to the algorithm (or the class's share); algo\n"
		       "changes the algorithm or its parameters on the running agent.\n\n");
		ls_algo_print_help(stdout);
		return argc < 2 ? LS_EXIT_USAGE : LS_EXIT_OK;
	}
	if (argc < 3)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed limit IFACE {set|auto|algo} ...");
	if (ls_is_prefix(argv[2], "set"))
		fn = do_set;
	else if (ls_is_prefix(argv[2], "auto"))
		fn = do_auto;
	else if (ls_is_prefix(argv[2], "algo"))
		fn = do_algo;
	else
		return ls_fail(LS_EXIT_USAGE, "unknown limit command '%s'", argv[2]);
	argc = take_target(argc - 3, argv + 3, &t);
	return on_service(argv[1], &t, fn, argc, argv + 3);
}

static int do_shadow(const struct ls_maps *m, uint32_t svc, struct ls_service_meta *meta,
		     const struct target *t, int argc, char **argv, char *err, size_t errlen)
{
	bool on;

	(void)meta;
	(void)t;
	if (argc != 1 || (strcmp(argv[0], "on") && strcmp(argv[0], "off"))) {
		snprintf(err, errlen, "policy shadow takes on or off");
		return LS_EXIT_USAGE;
	}
	on = !strcmp(argv[0], "on");
	/*
	 * Both generations alike. A later reload rewrites the flag from its
	 * file, as it does every runtime override (limit set, limit algo).
	 */
	for (uint32_t g = 0; g < LS_NR_GENS; g++) {
		struct ls_service_policy pol;
		__u32 key = ls_policy_key(g, svc);

		if (bpf_map_lookup_elem(m->policy, &key, &pol))
			continue;
		pol.flags = on ? pol.flags | LS_SVC_SHADOW : pol.flags & ~LS_SVC_SHADOW;
		if (bpf_map_update_elem(m->policy, &key, &pol, BPF_ANY)) {
			snprintf(err, errlen, "writing the policy: %s", strerror(errno));
			return LS_EXIT_RUNTIME;
		}
	}
	return 0;
}

int cmd_policy(int argc, char **argv)
{
	struct target t = {};
	char err[512];
	int rc;

	if (argc < 2 || ls_is_help(argv[1]) || (argc >= 3 && ls_is_help(argv[2]))) {
		printf("Usage: loadshed policy IFACE reload FILE\n"
		       "       loadshed policy IFACE shadow [--service S] on|off\n\n"
		       "reload validates FILE whole and swaps it in atomically, keeping tracked\n"
		       "flows, counters and limits; on any error nothing changes. shadow turns\n"
		       "enforcement off (decide, count would_shed, admit) or back on.\n");
		return argc < 2 ? LS_EXIT_USAGE : LS_EXIT_OK;
	}
	if (argc >= 3 && ls_is_prefix(argv[2], "reload")) {
		if (argc != 4)
			return ls_fail(LS_EXIT_USAGE, "usage: loadshed policy IFACE reload FILE");
		rc = ls_policy_reload(argv[1], argv[3], err, sizeof(err));
		if (rc == -EINVAL)
			return ls_fail(LS_EXIT_USAGE, "%s", err);
		if (rc)
			return ls_fail(LS_EXIT_RUNTIME, "%s", err);
		return LS_EXIT_OK;
	}
	if (argc >= 3 && ls_is_prefix(argv[2], "shadow")) {
		argc = take_target(argc - 3, argv + 3, &t);
		return on_service(argv[1], &t, do_shadow, argc, argv + 3);
	}
	return ls_fail(LS_EXIT_USAGE, "usage: loadshed policy IFACE {reload FILE | shadow on|off}");
}
