// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed attach IFACE: validate the policy whole, load the dataplane
 * with its maps pinned, fill the maps, attach, start the agent. Any
 * failure takes back everything this command made.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "algo.h"
#include "attach.h"
#include "breaker_maps.h"
#include "cli.h"
#include "commands.h"
#include "config.h"
#include "loadshed.skel.h"
#include "log.h"
#include "maps.h"
#include "output.h"
#include "pins.h"
#include "policy.h"
#include "policy_maps.h"

#define ONE_LINE_SERVICE "main"

struct attach_opts {
	const char *ifname;
	const char *config_path;
	const char *agent_log;
	int xdp_mode;
	bool no_agent;
	bool foreground;   /* the agent runs in this process (systemd's main process) */
	bool adopted;	   /* the interface was attached already: its dataplane was kept */
	bool service_opts; /* any option that builds the policy from the command line */
};

enum {
	OPT_CONFIG = 1,
	OPT_PORT,
	OPT_ADDR,
	OPT_LIMIT,
	OPT_ALGO,
	OPT_PARAM,
	OPT_MIN_LIMIT,
	OPT_MAX_LIMIT,
	OPT_INITIAL_LIMIT,
	OPT_CLASS,
	OPT_DEFAULT_CLASS,
	OPT_SHADOW,
	OPT_ADMIT,
	OPT_MAX_CONNECTIONS,
	OPT_XDP_MODE,
	OPT_MAX_FLOWS,
	OPT_FAIL_OPEN,
	OPT_NO_AGENT,
	OPT_AGENT_LOG,
	OPT_FOREGROUND,
};

static const struct ls_opt attach_opts[] = {
	{"config", 0, true, OPT_CONFIG, "FILE",
	 "INI policy (loadshed.conf(5)); excludes the service options", "file"},
	{"port", 0, true, OPT_PORT, "PORT", "protected TCP port (repeatable)"},
	{"addr", 0, true, OPT_ADDR, "ADDR", "only this destination address (default: any)"},
	{"limit", 0, true, OPT_LIMIT, "N|auto", "pin the limit, or let the algorithm set it",
	 "auto"},
	{"algo", 0, true, OPT_ALGO, "NAME", "fixed, aimd, vegas, gradient2, envoy, delay (default)",
	 "fixed aimd vegas gradient2 envoy delay"},
	{"param", 0, true, OPT_PARAM, "K=V", "algorithm parameter (repeatable)"},
	{"min-limit", 0, true, OPT_MIN_LIMIT, "N", "lowest limit the algorithm may set"},
	{"max-limit", 0, true, OPT_MAX_LIMIT, "N", "highest limit the algorithm may set"},
	{"initial-limit", 0, true, OPT_INITIAL_LIMIT, "N", "the algorithm's first limit"},
	{"class", 0, true, OPT_CLASS, "SPEC",
	 "NAME=SHARE[,drop|reset|bypass][,defer|abort][,src=P[+P...]][,dport=N[-M]][,dscp=N] "
	 "(repeatable, in rule order)"},
	{"default-class", 0, true, OPT_DEFAULT_CLASS, "NAME",
	 "class of unmatched traffic (default: an implicit \"default\", share 0, drop)"},
	{"shadow", 0, false, OPT_SHADOW, NULL, "decide and count would_shed, but admit everything"},
	{"admit", 0, true, OPT_ADMIT, "UNIT",
	 "what the limit counts: connections (default) or requests", "connections requests"},
	{"max-connections", 0, true, OPT_MAX_CONNECTIONS, "N",
	 "cap on the service's connections, at the SYN and the handshake"},
	{"xdp-mode", 0, true, OPT_XDP_MODE, "MODE",
	 "native (no fallback) or generic; default native, else generic", "native generic"},
	{"max-flows", 0, true, OPT_MAX_FLOWS, "N", "flow table size"},
	{"fail-open-after", 0, true, OPT_FAIL_OPEN, "DUR",
	 "heartbeat age after which everything is admitted, or off"},
	{"no-agent", 0, false, OPT_NO_AGENT, NULL, "static limits, no control loop"},
	{"agent-log", 0, true, OPT_AGENT_LOG, "FILE",
	 "the agent's log (default /run/loadshed/netN/IFACE.log)", "file"},
	{"foreground", 0, false, OPT_FOREGROUND, NULL,
	 "run the agent in this process, logging to stderr, until SIGTERM (systemd)"},
	{NULL},
};

/* Appends "item" to a comma-separated list. */
static int list_add(char *list, size_t len, const char *item)
{
	size_t n = strlen(list);

	if (n + strlen(item) + 2 > len)
		return -ENOSPC;
	if (n)
		strcat(list, ",");
	strcat(list, item);
	return 0;
}

/* Turns --port/--addr into the service's listen list. */
static int set_listen(struct ls_config *cfg, const char *ports, const char *addr, char *err,
		      size_t errlen)
{
	char buf[1024], *save = NULL, listen[2048] = "";

	snprintf(buf, sizeof(buf), "%s", ports);
	for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		char item[128];

		if (!addr)
			snprintf(item, sizeof(item), "*:%s", p);
		else if (strchr(addr, ':'))
			snprintf(item, sizeof(item), "[%s]:%s", addr, p);
		else
			snprintf(item, sizeof(item), "%s:%s", addr, p);
		if (list_add(listen, sizeof(listen), item))
			return -ENOSPC;
	}
	return ls_config_set(cfg, "service " ONE_LINE_SERVICE, "listen", listen, 0, err, errlen);
}

/* The options as given, before they become a config. */
struct attach_args {
	struct attach_opts *o;
	struct ls_config *cfg;
	char ports[1024];
	char params[LS_ALGO_PARAMS_LEN];
	const char *addr;
	const char *classes[LS_MAX_CLASSES];
	int nr_classes;
	const char *kv[16][2]; /* service keys, in the order given */
	int nr_kv;
};

static const char *service_key_of(int id)
{
	switch (id) {
	case OPT_LIMIT:
		return "limit";
	case OPT_ALGO:
		return "algorithm";
	case OPT_MIN_LIMIT:
		return "min_limit";
	case OPT_MAX_LIMIT:
		return "max_limit";
	case OPT_INITIAL_LIMIT:
		return "initial_limit";
	case OPT_SHADOW:
		return "shadow";
	case OPT_ADMIT:
		return "admit";
	case OPT_MAX_CONNECTIONS:
		return "max_connections";
	case OPT_DEFAULT_CLASS:
		return "default_class";
	}
	return NULL;
}

static int on_attach_opt(void *ctx, int id, const char *v, char *err, size_t errlen)
{
	struct attach_args *a = ctx;
	struct attach_opts *o = a->o;

	if (id != OPT_CONFIG && id != OPT_XDP_MODE && id != OPT_MAX_FLOWS && id != OPT_FAIL_OPEN &&
	    id != OPT_NO_AGENT && id != OPT_AGENT_LOG && id != OPT_FOREGROUND)
		o->service_opts = true;
	switch (id) {
	case OPT_CONFIG:
		o->config_path = v;
		return 0;
	case OPT_PORT:
		if (list_add(a->ports, sizeof(a->ports), v))
			goto too_many;
		return 0;
	case OPT_ADDR:
		a->addr = v;
		return 0;
	case OPT_PARAM:
		if (list_add(a->params, sizeof(a->params), v))
			goto too_many;
		return 0;
	case OPT_CLASS:
		if (a->nr_classes == LS_MAX_CLASSES)
			goto too_many;
		a->classes[a->nr_classes++] = v;
		return 0;
	case OPT_XDP_MODE:
		if (!strcmp(v, "native"))
			o->xdp_mode = LS_XDP_NATIVE;
		else if (!strcmp(v, "generic"))
			o->xdp_mode = LS_XDP_GENERIC;
		else
			return ls_errf(err, errlen, -EINVAL, "--xdp-mode is native or generic");
		return 0;
	case OPT_MAX_FLOWS:
	case OPT_FAIL_OPEN:
		return ls_config_set(a->cfg, "agent",
				     id == OPT_MAX_FLOWS ? "max_flows" : "fail_open_after", v, 0,
				     err, errlen);
	case OPT_NO_AGENT:
		o->no_agent = true;
		return 0;
	case OPT_AGENT_LOG:
		o->agent_log = v;
		return 0;
	case OPT_FOREGROUND:
		o->foreground = true;
		return 0;
	}
	if (a->nr_kv == 16)
		goto too_many;
	a->kv[a->nr_kv][0] = service_key_of(id);
	a->kv[a->nr_kv++][1] = id == OPT_SHADOW ? "true" : v;
	return 0;
too_many:
	return ls_errf(err, errlen, -EINVAL, "too many values for '%s'", v);
}

/*
 * Builds the config from the command line through the same setters the
 * file parser uses, so one validation serves both forms.
 */
static int parse_attach(const struct ls_call *call, struct attach_opts *o, struct ls_config *cfg,
			char *err, size_t errlen)
{
	struct attach_args a = {.o = o, .cfg = cfg};
	const char *svc = "service " ONE_LINE_SERVICE;
	int rc;

	o->ifname = call->ifname;
	rc = ls_opts_parse(call->argc, call->argv, attach_opts, on_attach_opt, &a, NULL, 0, err,
			   errlen);
	if (rc < 0)
		return rc;
	if (o->config_path && o->service_opts)
		return ls_errf(err, errlen, -EINVAL, "--config excludes the service options");
	if (o->foreground && (o->no_agent || o->agent_log))
		return ls_errf(err, errlen, -EINVAL,
			       "--foreground runs the agent, logging to stderr: it excludes "
			       "--no-agent and --agent-log");
	if (o->config_path)
		return ls_config_parse_file(cfg, o->config_path, err, errlen);
	if (!a.ports[0])
		return ls_errf(err, errlen, -EINVAL, "give --config FILE or --port PORT");
	rc = set_listen(cfg, a.ports, a.addr, err, errlen);
	for (int i = 0; !rc && i < a.nr_kv; i++)
		rc = ls_config_set(cfg, svc, a.kv[i][0], a.kv[i][1], 0, err, errlen);
	if (!rc && a.params[0])
		rc = ls_config_set(cfg, svc, "params", a.params, 0, err, errlen);
	for (int i = 0; !rc && i < a.nr_classes; i++)
		rc = ls_config_add_class_spec(cfg, ONE_LINE_SERVICE, a.classes[i], err, errlen);
	return rc;
}

/*
 * A directory that holds any pin belongs to an attachment, whole or not:
 * loading over it would reuse its maps and, on failure, unpin its links.
 */
static bool attached(const char *dir)
{
	struct dirent *de;
	bool any = false;
	DIR *d = opendir(dir);

	while (d && !any && (de = readdir(d)))
		any = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	if (d)
		closedir(d);
	return any;
}

/*
 * An attachment whose interface is gone, or was deleted and made again
 * (with another ifindex or its old one: the kernel detached the programs
 * with the old device): its pins are left over. Its maps say which ifindex it was made
 * on; a directory whose maps cannot be read is not judged stale.
 */
static bool stale(const char *dir, const char *ifname)
{
	struct ls_agent_meta am = {};
	struct ls_maps m;

	if (ls_maps_open(dir, &m, NULL))
		return false;
	ls_read_agent(&m, &am);
	ls_maps_close(&m);
	return am.ifindex && !ls_dataplane_on(dir, &am, ifname);
}

/* Fills the maps, attaches, records the attachment. Lock held. */
static int attach_locked(const char *dir, const struct attach_opts *o, const struct ls_config *cfg,
			 const struct ls_policy_image *img, struct ls_agent_meta *am, char *errbuf,
			 size_t errlen)
{
	struct ls_attach_req req = {
		.ifname = o->ifname,
		.ifindex = (int)if_nametoindex(o->ifname),
		.xdp_mode = o->xdp_mode,
		.max_flows = cfg->agent.max_flows,
	};
	struct loadshed_bpf *skel = NULL;
	struct ls_maps m;
	int err;

	err = ls_dataplane_load(dir, &req, &skel, &m);
	if (err) {
		snprintf(errbuf, errlen, "loading the dataplane: %s", strerror(-err));
		return err;
	}
	err = ls_policy_write_gen(&m, img);
	if (!err)
		err = ls_policy_activate(&m, img, false);
	if (err)
		snprintf(errbuf, errlen, "writing the policy: %s", strerror(-err));
	if (!err) {
		err = ls_dataplane_attach(dir, &req, skel, am, errbuf, errlen);
	}
	if (!err) {
		struct ls_agent_meta cur = {};

		ls_read_agent(&m, &cur);
		am->interval_ns = cur.interval_ns;
		am->idle_timeout_ns = cur.idle_timeout_ns;
		am->stall_timeout_ns = cur.stall_timeout_ns;
		am->failopen_after_ns = cur.failopen_after_ns;
		am->log_change_ppm = cur.log_change_ppm;
		am->metrics = cur.metrics;
		am->config_unwatched = cur.config_unwatched;
		am->max_flows = cfg->agent.max_flows;
		err = ls_write_agent(&m, am);
		if (err) {
			snprintf(errbuf, errlen, "recording the attachment: %s", strerror(-err));
			ls_dataplane_detach(dir, am);
		}
	}
	if (!err) {
		err = ls_breaker_attach(dir, cfg, errbuf, errlen);
		if (err)
			ls_dataplane_detach(dir, am);
	}
	ls_maps_close(&m);
	loadshed_bpf__destroy(skel);
	return err;
}

/*
 * attach on an interface loadshed has attached already, whose agent is
 * gone (systemd restarting it after a crash; the dataplane failed open
 * meanwhile): the dataplane stays — maps, flows, counters, limits — the
 * policy is reloaded from this command's config with the whole validation
 * of `policy reload` (done already), and the caller starts the agent,
 * which resumes from the pins. Refused while an agent runs (it owns the
 * attachment: `policy reload` changes its policy) and for pins that are
 * not a whole attachment of this build's layout. Lock held; *am is the
 * attachment's record after.
 */
static int adopt_locked(const char *dir, const struct attach_opts *o, const struct ls_config *cfg,
			struct ls_agent_meta *am, char *errbuf, size_t errlen)
{
	pid_t pid = ls_agent_pid(o->ifname);
	struct ls_maps m;
	char path[sizeof(am->config_path)];
	int err;

	if (pid > 0)
		return ls_errf(errbuf, errlen, -EBUSY,
			       "%s: already attached and its agent runs (pid %d): "
			       "`loadshed policy %s reload FILE` changes its policy",
			       o->ifname, (int)pid, o->ifname);
	if (ls_maps_open(dir, &m, NULL))
		return ls_errf(errbuf, errlen, -EEXIST,
			       "%s: already attached (loadshed detach %s first)", o->ifname,
			       o->ifname);
	snprintf(path, sizeof(path), "%s", am->config_path);
	err = ls_policy_apply_locked(&m, o->ifname, cfg, errbuf, errlen);
	if (!err)
		err = ls_breaker_apply(dir, cfg, errbuf, errlen);
	if (!err)
		err = ls_read_agent(&m, am);
	if (!err) {
		memcpy(am->config_path, path, sizeof(path));
		am->agent_pid = 0;
		err = ls_write_agent(&m, am);
		if (err)
			snprintf(errbuf, errlen, "%s: recording the config path: %s", o->ifname,
				 strerror(-err));
	}
	ls_maps_close(&m);
	if (err)
		return err;
	if (cfg->agent.max_flows != am->max_flows)
		pr_warn("%s: the flow table keeps its %u flows until detach and attach", o->ifname,
			am->max_flows);
	if (o->xdp_mode && o->xdp_mode != am->xdp_mode)
		pr_warn("%s: XDP stays in %s mode until detach and attach", o->ifname,
			ls_xdp_mode_name(am->xdp_mode));
	return 0;
}

static void print_attached(const struct attach_opts *o, const struct ls_agent_meta *am)
{
	json_object *j;

	if (!ls_json) {
		pr_info("%s: %s: xdp %s, egress %s", o->ifname,
			o->adopted ? "adopted (flows and counters kept)" : "attached",
			ls_xdp_mode_name(am->xdp_mode), ls_tc_mode_name(am->tc_mode));
		return;
	}
	j = json_object_new_object();
	json_object_object_add(j, "ifname", json_object_new_string(o->ifname));
	json_object_object_add(j, "xdp_mode",
			       json_object_new_string(ls_xdp_mode_name(am->xdp_mode)));
	json_object_object_add(j, "tc_mode", json_object_new_string(ls_tc_mode_name(am->tc_mode)));
	json_object_object_add(j, "agent", json_object_new_boolean(!o->no_agent));
	json_object_object_add(j, "adopted", json_object_new_boolean(o->adopted));
	ls_json_print(j);
}

static int run_attach(const struct ls_call *call)
{
	struct attach_opts o = {};
	struct ls_policy_image *img = NULL;
	struct ls_config *cfg = NULL;
	struct ls_agent_meta am = {};
	char err[512] = "", dir[128];
	int lock = -1, rc;

	if (ls_config_new(&cfg))
		return ls_fail(LS_EXIT_RUNTIME, "out of memory");
	/* Everything about the input is checked before the system is touched. */
	rc = parse_attach(call, &o, cfg, err, sizeof(err));
	if (!rc)
		rc = ls_config_validate(cfg, err, sizeof(err));
	if (!rc)
		rc = ls_policy_compile(cfg, 0, &img, err, sizeof(err));
	if (rc) {
		ls_config_free(&cfg);
		return ls_fail(LS_EXIT_USAGE, "%s", err);
	}
	/*
	 * SIGHUP and the agent's watch reload the file by the path recorded
	 * with the attachment: the path as given, made absolute but never
	 * resolved, so that a symlink swapped later (a Kubernetes ConfigMap's
	 * ..data) is followed.
	 */
	if (o.config_path) {
		char cwd[PATH_MAX] = "";

		if (o.config_path[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
			rc = ls_fail(LS_EXIT_RUNTIME, "getcwd: %s", strerror(errno));
			goto out;
		}
		if ((size_t)snprintf(am.config_path, sizeof(am.config_path), "%s%s%s", cwd,
				     cwd[0] ? "/" : "", o.config_path) >= sizeof(am.config_path)) {
			rc = ls_fail(LS_EXIT_USAGE,
				     "%s: a path over %zu bytes cannot be recorded for reload",
				     o.config_path, sizeof(am.config_path) - 1);
			goto out;
		}
	}
	ls_pin_dir(o.ifname, dir, sizeof(dir));
	if (!if_nametoindex(o.ifname)) {
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: no such interface", o.ifname);
		goto out;
	}

	lock = ls_lock(o.ifname, true);
	if (lock < 0) {
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: %s", dir, strerror(-lock));
		goto out;
	}
	if (attached(dir) && stale(dir, o.ifname)) {
		pr_warn("%s: the interface of the last attachment is gone: removing its pins",
			o.ifname);
		ls_dataplane_teardown(dir);
		/* Its agent, if one is left, stops at its next round: the directory is gone. */
		ls_unlock(&lock);
		ls_agent_stop(o.ifname);
		lock = ls_lock(o.ifname, true);
		if (lock < 0) {
			rc = ls_fail(LS_EXIT_RUNTIME, "%s: %s", dir, strerror(-lock));
			goto out;
		}
	}
	o.adopted = attached(dir);
	if (o.adopted) {
		rc = adopt_locked(dir, &o, cfg, &am, err, sizeof(err));
		if (rc) {
			rc = ls_fail(LS_EXIT_RUNTIME, "%s", err);
			goto out;
		}
	} else {
		rc = attach_locked(dir, &o, cfg, img, &am, err, sizeof(err));
	}
	if (rc) {
		ls_dataplane_unpin(dir);
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: attach failed, nothing was left behind: %s",
			     o.ifname, err);
		goto out;
	}
	ls_unlock(&lock);
	if (o.foreground) {
		print_attached(&o, &am);
		rc = ls_agent_run(o.ifname, ls_policy_reload_saved);
		if (rc == -EEXIST)
			snprintf(err, sizeof(err), "an agent already runs (pid %d)",
				 (int)ls_agent_pid(o.ifname));
		else if (rc)
			snprintf(err, sizeof(err), "%s", strerror(-rc));
	} else if (!o.no_agent) {
		rc = ls_agent_spawn(o.ifname, o.agent_log, err, sizeof(err));
	}
	if (rc && o.adopted) {
		/* Not this command's dataplane to take away: it keeps failing open. */
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: the agent did not start (%s)", o.ifname, err);
		goto out;
	}
	if (rc) {
		lock = ls_lock(o.ifname, false);
		ls_dataplane_detach(dir, &am);
		ls_dataplane_unpin(dir);
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: the agent did not start (%s); detached",
			     o.ifname, err);
		goto out;
	}
	if (!o.foreground)
		print_attached(&o, &am);
	rc = LS_EXIT_OK;
out:
	ls_unlock(&lock);
	ls_policy_image_free(&img);
	ls_config_free(&cfg);
	return rc;
}

const struct ls_cmd ls_cmd_attach = {
	.name = "attach",
	.flags = LS_CMD_IFACE,
	.args = "{--config FILE | --port PORT [SERVICE_OPTIONS]} [ATTACH_OPTIONS]",
	.summary = "load and attach the dataplane, pin its maps, start the agent",
	.help = "Loads the dataplane on IFACE (XDP ingress, TC egress), pins its maps under\n"
		"/sys/fs/bpf/loadshed/netN/IFACE and starts the agent that adapts the limits.\n"
		"The service options build one service named \"" ONE_LINE_SERVICE "\" from the\n"
		"command line; --config reads services and classes from a file instead.\n"
		"Everything is validated before anything is written; on any failure\n"
		"nothing is left behind.\n"
		"On an interface attached already whose agent is gone (a crash, a\n"
		"restart under systemd), attach adopts the attachment: flows, counters\n"
		"and limits are kept, the policy is reloaded from the options or file\n"
		"given, and a new agent starts. While an agent runs it is refused.\n"
		"--foreground runs that agent in this process until SIGTERM (systemd's\n"
		"loadshed@.service).\n",
	.opts = attach_opts,
	.run = run_attach,
};
