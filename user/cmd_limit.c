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

#include "algo.h"
#include "commands.h"
#include "config.h"
#include "output.h"
#include "pins.h"
#include "policy_maps.h"
#include "service.h"

enum { OPT_SERVICE = 1, OPT_CLASS };

static const struct ls_opt service_opts[] = {
	{"service", 0, true, OPT_SERVICE, "S", "the service (needed when there are several)"},
	{NULL},
};

static const struct ls_opt class_opts[] = {
	{"service", 0, true, OPT_SERVICE, "S", "the service (needed when there are several)"},
	{"class", 0, true, OPT_CLASS, "C", "a class's guarantee instead of the service's limit"},
	{NULL},
};

/* What a limit or policy command acts on, and its arguments. */
struct target {
	const char *service; /* NULL: the only one */
	const char *cls;     /* NULL: the service */
	char *pos[32];
	int nr_pos;
};

static int on_target_opt(void *ctx, int id, const char *v, char *err, size_t errlen)
{
	struct target *t = ctx;

	(void)err;
	(void)errlen;
	if (id == OPT_SERVICE)
		t->service = v;
	else
		t->cls = v;
	return 0;
}

/* An open attachment with the service (and class) a command names. */
struct on_service {
	struct ls_attachment a;
	struct ls_service_meta meta;
	uint32_t svc;
	int cls; /* -1: none named */
};

/*
 * Parses a limit/policy command's options; a mistake is a usage error. On
 * success t holds the arguments; returns -1 to go on, else the exit code.
 */
static int parse_target(const struct ls_call *call, struct target *t)
{
	char err[256];
	int n;

	n = ls_opts_parse(call->argc, call->argv, call->cmd->opts, on_target_opt, t, t->pos,
			  (int)(sizeof(t->pos) / sizeof(t->pos[0])), err, sizeof(err));
	if (n < 0)
		return ls_fail(LS_EXIT_USAGE, "%s", err);
	t->nr_pos = n;
	return -1;
}

/* Opens the attachment and finds the target; returns -1 to go on, else the exit code. */
static int open_target(const struct ls_call *call, const struct target *t, struct on_service *o)
{
	char err[512];
	int rc;

	rc = ls_attachment_open(call->ifname, &o->a, err, sizeof(err));
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);
	rc = ls_service_find(&o->a.maps, t->service, &o->meta);
	if (rc < 0) {
		ls_attachment_close(&o->a);
		if (rc == -ENOTUNIQ)
			return ls_fail(LS_EXIT_USAGE,
				       "%s has several services: name one with --service",
				       call->ifname);
		return ls_fail(LS_EXIT_USAGE, "%s: no service %s", call->ifname,
			       t->service ? t->service : "");
	}
	o->svc = (uint32_t)rc;
	o->cls = -1;
	if (t->cls) {
		o->cls = ls_service_class(&o->meta, t->cls);
		if (o->cls < 0) {
			ls_attachment_close(&o->a);
			return ls_fail(LS_EXIT_USAGE, "service %s has no class %s", o->meta.name,
				       t->cls);
		}
	}
	return -1;
}

/* Writes the changed record and closes; the exit code. */
static int commit(const struct ls_call *call, struct on_service *o)
{
	int rc = ls_service_update(&o->a.maps, o->svc, &o->meta);

	ls_attachment_close(&o->a);
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s: writing the limits: %s", call->ifname,
			       strerror(-rc));
	if (ls_json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "ifname", json_object_new_string(call->ifname));
		json_object_object_add(j, "service", json_object_new_string(o->meta.name));
		if (o->cls >= 0) {
			json_object_object_add(
				j, "class", json_object_new_string(o->meta.classes[o->cls].name));
			json_object_object_add(
				j, "pinned_guarantee",
				json_object_new_int64(o->meta.classes[o->cls].pinned_guarantee));
		} else {
			json_object_object_add(j, "pinned_limit",
					       json_object_new_int64(o->meta.pinned_limit));
			json_object_object_add(j, "algorithm",
					       json_object_new_string(o->meta.algo));
			json_object_object_add(j, "params",
					       json_object_new_string(o->meta.algo_params));
		}
		ls_json_print(j);
	}
	return LS_EXIT_OK;
}

static int run_set(const struct ls_call *call)
{
	struct target t = {};
	struct on_service o;
	uint32_t n;
	int rc;

	if ((rc = parse_target(call, &t)) >= 0)
		return rc;
	if (t.nr_pos != 1 || ls_parse_u32(t.pos[0], &n) || !n || n > LS_MAX_LIMIT)
		return ls_fail(LS_EXIT_USAGE, "limit set takes one number, 1..%u", LS_MAX_LIMIT);
	if ((rc = open_target(call, &t, &o)) >= 0)
		return rc;
	if (o.cls >= 0)
		o.meta.classes[o.cls].pinned_guarantee = n;
	else
		o.meta.pinned_limit = n;
	return commit(call, &o);
}

static int run_auto(const struct ls_call *call)
{
	struct target t = {};
	struct on_service o;
	int rc;

	if ((rc = parse_target(call, &t)) >= 0)
		return rc;
	if (t.nr_pos)
		return ls_fail(LS_EXIT_USAGE, "limit auto takes no argument");
	if ((rc = open_target(call, &t, &o)) >= 0)
		return rc;
	if (o.cls >= 0)
		o.meta.classes[o.cls].pinned_guarantee = 0;
	else
		o.meta.pinned_limit = 0;
	return commit(call, &o);
}

/* limit IFACE algo NAME [K=V...]: checked here, taken up by the agent's next round. */
static int run_algo(const struct ls_call *call)
{
	char params[LS_ALGO_PARAMS_LEN] = "", err[512];
	struct target t = {};
	struct on_service o;
	struct ls_algo *a;
	int rc;

	if ((rc = parse_target(call, &t)) >= 0)
		return rc;
	if (t.nr_pos < 1)
		return ls_fail(LS_EXIT_USAGE, "limit algo takes NAME [K=V...]");
	for (int i = 1; i < t.nr_pos; i++) {
		if (strlen(params) + strlen(t.pos[i]) + 2 > sizeof(params))
			return ls_fail(LS_EXIT_USAGE, "parameters too long");
		if (params[0])
			strcat(params, ",");
		strcat(params, t.pos[i]);
	}
	if (ls_algo_create(t.pos[0], params, &a, err, sizeof(err)))
		return ls_fail(LS_EXIT_USAGE, "%s", err);
	ls_algo_destroy(&a);
	if ((rc = open_target(call, &t, &o)) >= 0)
		return rc;
	snprintf(o.meta.algo, sizeof(o.meta.algo), "%s", t.pos[0]);
	snprintf(o.meta.algo_params, sizeof(o.meta.algo_params), "%s", params);
	o.meta.pinned_limit = 0;
	/* As the agent will run it: with the service's limits. */
	if (ls_service_algo(&o.meta, 0, &a, err, sizeof(err))) {
		ls_attachment_close(&o.a);
		return ls_fail(LS_EXIT_USAGE, "service %s: %s", o.meta.name, err);
	}
	ls_algo_destroy(&a);
	return commit(call, &o);
}

static void print_algos(FILE *out)
{
	ls_algo_print_help(out);
}

static const struct ls_cmd limit_set = {
	.name = "set",
	.args = "[--service S] [--class C] N",
	.summary = "pin the service's limit L (or, with --class, the class's guarantee) to N",
	.opts = class_opts,
	.run = run_set,
};

static const struct ls_cmd limit_auto = {
	.name = "auto",
	.args = "[--service S] [--class C]",
	.summary = "hand the limit back to the algorithm (or the guarantee to the class's share)",
	.opts = class_opts,
	.run = run_auto,
};

static const struct ls_cmd limit_algo = {
	.name = "algo",
	.args = "[--service S] NAME [K=V...]",
	.summary = "change the algorithm or its parameters on the running agent",
	.opts = service_opts,
	.complete_args = "fixed aimd vegas gradient2 envoy delay",
	.run = run_algo,
	.more_help = print_algos,
};

static const struct ls_cmd *const limit_sub[] = {&limit_set, &limit_auto, &limit_algo, NULL};

const struct ls_cmd ls_cmd_limit = {
	.name = "limit",
	.flags = LS_CMD_IFACE,
	.summary = "pin a limit or a class's guarantee, or change the algorithm",
	.sub = limit_sub,
	.more_help = print_algos,
};

static int run_reload(const struct ls_call *call)
{
	struct ls_config *cfg = NULL;
	struct target t = {};
	char err[768];
	int rc;

	if ((rc = parse_target(call, &t)) >= 0)
		return rc;
	if (t.nr_pos != 1)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed policy IFACE reload FILE");
	/* The file is the user's input: refused whole before anything is written. */
	if (ls_config_load_file(t.pos[0], &cfg, err, sizeof(err)))
		return ls_fail(LS_EXIT_USAGE, "%s", err);
	rc = ls_policy_apply(call->ifname, cfg, err, sizeof(err));
	ls_config_free(&cfg);
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);
	if (ls_json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "ifname", json_object_new_string(call->ifname));
		json_object_object_add(j, "reloaded", json_object_new_string(t.pos[0]));
		ls_json_print(j);
	}
	return LS_EXIT_OK;
}

static int run_shadow(const struct ls_call *call)
{
	struct target t = {};
	struct on_service o;
	bool on;
	int rc;

	if ((rc = parse_target(call, &t)) >= 0)
		return rc;
	if (t.nr_pos != 1 || (strcmp(t.pos[0], "on") && strcmp(t.pos[0], "off")))
		return ls_fail(LS_EXIT_USAGE, "policy shadow takes on or off");
	on = !strcmp(t.pos[0], "on");
	if ((rc = open_target(call, &t, &o)) >= 0)
		return rc;
	rc = ls_service_set_shadow(&o.a.maps, o.svc, on);
	ls_attachment_close(&o.a);
	if (rc)
		return ls_fail(LS_EXIT_RUNTIME, "%s: writing the policy: %s", call->ifname,
			       strerror(-rc));
	if (ls_json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "ifname", json_object_new_string(call->ifname));
		json_object_object_add(j, "service", json_object_new_string(o.meta.name));
		json_object_object_add(j, "shadow", json_object_new_boolean(on));
		ls_json_print(j);
	}
	return LS_EXIT_OK;
}

static const struct ls_cmd policy_reload = {
	.name = "reload",
	.args = "FILE",
	.summary = "validate FILE whole and swap it in, keeping flows, counters and limits",
	.help = "On any error nothing changes. The file rewrites runtime overrides (limit\n"
		"set, limit algo, policy shadow): it is the source of truth.\n",
	.complete_args = "file",
	.run = run_reload,
};

static const struct ls_cmd policy_shadow = {
	.name = "shadow",
	.args = "[--service S] on|off",
	.summary = "turn enforcement off (decide, count would_shed, admit) or back on",
	.opts = service_opts,
	.complete_args = "on off",
	.run = run_shadow,
};

static const struct ls_cmd *const policy_sub[] = {&policy_reload, &policy_shadow, NULL};

const struct ls_cmd ls_cmd_policy = {
	.name = "policy",
	.flags = LS_CMD_IFACE,
	.summary = "reload the policy file, or switch shadow mode",
	.sub = policy_sub,
};
