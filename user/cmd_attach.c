// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed attach IFACE: validate the policy whole, load the dataplane
 * with its maps pinned, fill the maps, attach, start the agent. Any
 * failure takes back everything this command made.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "algo.h"
#include "attach.h"
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
	bool service_opts; /* any option that builds the policy from the command line */
};

static void attach_usage(FILE *f)
{
	fprintf(f,
		"Usage: loadshed attach IFACE --config FILE [ATTACH_OPTIONS]\n"
		"       loadshed attach IFACE --port PORT [SERVICE_OPTIONS] [ATTACH_OPTIONS]\n\n"
		"Loads the dataplane on IFACE (XDP ingress, TC egress), pins its maps under\n"
		"/sys/fs/bpf/loadshed/IFACE and starts the agent that adapts the limits.\n\n"
		"Service options (one service named \"" ONE_LINE_SERVICE "\"):\n"
		"  --port PORT           protected TCP port (repeatable)\n"
		"  --addr ADDR           only this destination address (default: any)\n"
		"  --limit N|auto        pin the limit, or let the algorithm set it (default)\n"
		"  --algo NAME           fixed, aimd, vegas, gradient2 (default)\n"
		"  --param K=V           algorithm parameter (repeatable)\n"
		"  --min-limit N, --max-limit N, --initial-limit N\n"
		"  --class SPEC          NAME=SHARE[,drop|reset|bypass][,src=P[+P...]]\n"
		"                        [,dport=N[-M]][,dscp=N]   (repeatable, in rule order)\n"
		"  --default-class NAME  class of unmatched traffic (default: an implicit\n"
		"                        \"default\" class with share 0, action drop)\n"
		"  --shadow              decide and count would_shed, but admit everything\n"
		"Attach options:\n"
		"  --config FILE         INI policy (see loadshed.conf(5)); excludes service "
		"options\n"
		"  --xdp-mode MODE       native (no fallback) or generic; default native,\n"
		"                        falling back to generic where the driver has none\n"
		"  --max-flows N         flow table size (default %u)\n"
		"  --fail-open-after DUR heartbeat age after which everything is admitted\n"
		"  --no-agent            static limits, no control loop\n"
		"  --agent-log FILE      the agent's log (default /run/loadshed/IFACE.log)\n",
		LS_DEFAULT_MAX_FLOWS);
}

enum {
	OPT_CONFIG = 256,
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
	OPT_XDP_MODE,
	OPT_MAX_FLOWS,
	OPT_FAIL_OPEN,
	OPT_NO_AGENT,
	OPT_AGENT_LOG,
};

static const struct option attach_options[] = {
	{"config", required_argument, NULL, OPT_CONFIG},
	{"port", required_argument, NULL, OPT_PORT},
	{"addr", required_argument, NULL, OPT_ADDR},
	{"limit", required_argument, NULL, OPT_LIMIT},
	{"algo", required_argument, NULL, OPT_ALGO},
	{"param", required_argument, NULL, OPT_PARAM},
	{"min-limit", required_argument, NULL, OPT_MIN_LIMIT},
	{"max-limit", required_argument, NULL, OPT_MAX_LIMIT},
	{"initial-limit", required_argument, NULL, OPT_INITIAL_LIMIT},
	{"class", required_argument, NULL, OPT_CLASS},
	{"default-class", required_argument, NULL, OPT_DEFAULT_CLASS},
	{"shadow", no_argument, NULL, OPT_SHADOW},
	{"xdp-mode", required_argument, NULL, OPT_XDP_MODE},
	{"max-flows", required_argument, NULL, OPT_MAX_FLOWS},
	{"fail-open-after", required_argument, NULL, OPT_FAIL_OPEN},
	{"no-agent", no_argument, NULL, OPT_NO_AGENT},
	{"agent-log", required_argument, NULL, OPT_AGENT_LOG},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
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

/*
 * Builds the config from the command line through the same setters the
 * file parser uses, so one validation serves both forms.
 */
static int parse_attach(int argc, char **argv, struct attach_opts *o, struct ls_config *cfg,
			char *err, size_t errlen)
{
	char ports[1024] = "", params[LS_ALGO_PARAMS_LEN] = "", *classes[LS_MAX_CLASSES];
	const char *addr = NULL, *svc = "service " ONE_LINE_SERVICE;
	const char *kv[8][2];
	int nr_classes = 0, nr_kv = 0, c, rc;

	if (argc < 2 || argv[1][0] == '-')
		return snprintf(err, errlen, "usage: loadshed attach IFACE [OPTIONS]"), -EINVAL;
	o->ifname = argv[1];
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", attach_options, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG:
			o->config_path = optarg;
			break;
		case OPT_PORT:
			if (list_add(ports, sizeof(ports), optarg))
				goto too_many;
			o->service_opts = true;
			break;
		case OPT_ADDR:
			addr = optarg;
			o->service_opts = true;
			break;
		case OPT_PARAM:
			if (list_add(params, sizeof(params), optarg))
				goto too_many;
			o->service_opts = true;
			break;
		case OPT_CLASS:
			if (nr_classes == LS_MAX_CLASSES)
				goto too_many;
			classes[nr_classes++] = optarg;
			o->service_opts = true;
			break;
		case OPT_LIMIT:
		case OPT_ALGO:
		case OPT_MIN_LIMIT:
		case OPT_MAX_LIMIT:
		case OPT_INITIAL_LIMIT:
		case OPT_DEFAULT_CLASS:
		case OPT_SHADOW:
			if (nr_kv == 8)
				goto too_many;
			kv[nr_kv][0] = c == OPT_LIMIT		? "limit"
				       : c == OPT_ALGO		? "algorithm"
				       : c == OPT_MIN_LIMIT	? "min_limit"
				       : c == OPT_MAX_LIMIT	? "max_limit"
				       : c == OPT_INITIAL_LIMIT ? "initial_limit"
				       : c == OPT_SHADOW	? "shadow"
								: "default_class";
			kv[nr_kv++][1] = c == OPT_SHADOW ? "true" : optarg;
			o->service_opts = true;
			break;
		case OPT_XDP_MODE:
			if (!strcmp(optarg, "native"))
				o->xdp_mode = LS_XDP_NATIVE;
			else if (!strcmp(optarg, "generic"))
				o->xdp_mode = LS_XDP_GENERIC;
			else
				return snprintf(err, errlen, "--xdp-mode is native or generic"),
				       -EINVAL;
			break;
		case OPT_MAX_FLOWS:
		case OPT_FAIL_OPEN:
			rc = ls_config_set(cfg, "agent",
					   c == OPT_MAX_FLOWS ? "max_flows" : "fail_open_after",
					   optarg, 0, err, errlen);
			if (rc)
				return rc;
			break;
		case OPT_NO_AGENT:
			o->no_agent = true;
			break;
		case OPT_AGENT_LOG:
			o->agent_log = optarg;
			break;
		case 'h':
			attach_usage(stdout);
			exit(LS_EXIT_OK);
		default:
			snprintf(err, errlen, "unknown or incomplete option '%s'",
				 argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind != argc)
		return snprintf(err, errlen, "unexpected argument '%s'", argv[optind]), -EINVAL;

	if (o->config_path && o->service_opts)
		return snprintf(err, errlen, "--config excludes the service options"), -EINVAL;
	if (o->config_path)
		return ls_config_parse_file(cfg, o->config_path, err, errlen);
	if (!ports[0])
		return snprintf(err, errlen, "give --config FILE or --port PORT"), -EINVAL;
	rc = set_listen(cfg, ports, addr, err, errlen);
	for (int i = 0; !rc && i < nr_kv; i++)
		rc = ls_config_set(cfg, svc, kv[i][0], kv[i][1], 0, err, errlen);
	if (!rc && params[0])
		rc = ls_config_set(cfg, svc, "params", params, 0, err, errlen);
	for (int i = 0; !rc && i < nr_classes; i++)
		rc = ls_config_add_class_spec(cfg, ONE_LINE_SERVICE, classes[i], err, errlen);
	return rc;
too_many:
	snprintf(err, errlen, "too many values for '%s'", argv[optind - 1]);
	return -EINVAL;
}

/* A directory that already holds our pins belongs to a live attachment. */
static bool attached(const char *dir)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/state", dir);
	return !stat(path, &st);
}

/* Fills the maps, attaches, records the attachment. Lock held. */
static int attach_locked(const char *dir, const struct attach_opts *o, const struct ls_config *cfg,
			 const struct ls_policy_image *img, struct ls_agent_meta *am)
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
		pr_err("%s: loading the dataplane: %s", o->ifname, strerror(-err));
		return err;
	}
	err = ls_policy_write_gen(&m, img);
	if (!err)
		err = ls_policy_activate(&m, img, false);
	if (err)
		pr_err("%s: writing the policy: %s", o->ifname, strerror(-err));
	if (!err)
		err = ls_dataplane_attach(dir, &req, skel, am);
	if (!err) {
		struct ls_agent_meta cur = {};

		ls_read_agent(&m, &cur);
		am->interval_ns = cur.interval_ns;
		am->idle_timeout_ns = cur.idle_timeout_ns;
		am->half_open_timeout_ns = cur.half_open_timeout_ns;
		am->failopen_after_ns = cur.failopen_after_ns;
		am->log_change_ppm = cur.log_change_ppm;
		am->max_flows = cfg->agent.max_flows;
		if (o->config_path && !realpath(o->config_path, am->config_path))
			am->config_path[0] = 0;
		err = ls_write_agent(&m, am);
		if (err)
			ls_dataplane_detach(dir, am);
	}
	ls_maps_close(&m);
	loadshed_bpf__destroy(skel);
	return err;
}

static void print_attached(const struct attach_opts *o, const struct ls_agent_meta *am)
{
	json_object *j;

	if (!ls_json) {
		pr_info("%s: attached: xdp %s, egress %s", o->ifname,
			ls_xdp_mode_name(am->xdp_mode), ls_tc_mode_name(am->tc_mode));
		return;
	}
	j = json_object_new_object();
	json_object_object_add(j, "ifname", json_object_new_string(o->ifname));
	json_object_object_add(j, "xdp_mode",
			       json_object_new_string(ls_xdp_mode_name(am->xdp_mode)));
	json_object_object_add(j, "tc_mode", json_object_new_string(ls_tc_mode_name(am->tc_mode)));
	json_object_object_add(j, "agent", json_object_new_boolean(!o->no_agent));
	ls_json_print(j);
}

int cmd_attach(int argc, char **argv)
{
	struct attach_opts o = {};
	struct ls_policy_image *img = NULL;
	struct ls_config *cfg = NULL;
	struct ls_agent_meta am = {};
	char err[512] = "", dir[128];
	int lock = -1, rc;

	if (argc >= 2 && ls_is_help(argv[1])) {
		attach_usage(stdout);
		return LS_EXIT_OK;
	}
	if (ls_config_new(&cfg))
		return ls_fail(LS_EXIT_RUNTIME, "out of memory");
	/* Everything about the input is checked before the system is touched. */
	rc = parse_attach(argc, argv, &o, cfg, err, sizeof(err));
	if (!rc)
		rc = ls_config_validate(cfg, err, sizeof(err));
	if (!rc)
		rc = ls_policy_compile(cfg, 0, &img, err, sizeof(err));
	if (!rc && ls_pin_dir(o.ifname, dir, sizeof(dir)))
		rc = -EINVAL, snprintf(err, sizeof(err), "'%s' is not an interface name", o.ifname);
	if (rc) {
		ls_config_free(&cfg);
		return ls_fail(LS_EXIT_USAGE, "%s", err);
	}
	if (!if_nametoindex(o.ifname)) {
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: no such interface", o.ifname);
		goto out;
	}

	lock = ls_lock(o.ifname, true);
	if (lock < 0) {
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: %s", dir, strerror(-lock));
		goto out;
	}
	if (attached(dir)) {
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: already attached (loadshed detach %s first)",
			     o.ifname, o.ifname);
		goto out;
	}
	if (attach_locked(dir, &o, cfg, img, &am)) {
		ls_dataplane_unpin(dir);
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: attach failed; nothing was left behind",
			     o.ifname);
		goto out;
	}
	ls_unlock(&lock);
	if (!o.no_agent && ls_agent_spawn(o.ifname, o.agent_log)) {
		lock = ls_lock(o.ifname, false);
		ls_dataplane_detach(dir, &am);
		ls_dataplane_unpin(dir);
		rc = ls_fail(LS_EXIT_RUNTIME, "%s: the agent did not start; detached", o.ifname);
		goto out;
	}
	print_attached(&o, &am);
	rc = LS_EXIT_OK;
out:
	ls_unlock(&lock);
	ls_policy_image_free(&img);
	ls_config_free(&cfg);
	return rc;
}
