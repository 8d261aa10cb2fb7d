#!/usr/bin/env bash
# The fleet files, without a cluster (none runs here): the Kubernetes
# manifests' structure (kinds, hostNetwork, capabilities as the systemd
# unit's, the bpffs and ConfigMap mounts, the metrics port,
# the probe, the interface from the environment), the ConfigMap's
# loadshed.conf accepted by loadshed's own parser, the HPA and its adapter
# rule, and the Grafana dashboard: valid JSON whose queries name only the
# metrics (and labels) loadshed exports — those user/metrics.c and
# user/metrics_breaker.c emit too. Needs neither root nor a cluster.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

DEPLOY=$LS_ROOT/deploy
UNIT=$DEPLOY/systemd/loadshed@.service

# py_checks SCRIPT: runs a python3 check script that prints one line per
# check, "ok NAME" or "not_ok NAME<TAB>WHY", and reports each.
py_checks() {
	local verdict rest out
	out=$(python3 - "$@" 2>&1) || {
		not_ok "the check script ran" "$out"
		return 1
	}
	while read -r verdict rest; do
		case $verdict in
		ok) ok "$rest" ;;
		not_ok) not_ok "${rest%%$'\t'*}" "${rest#*$'\t'}" ;;
		*) echo "$verdict $rest" ;;
		esac
	done <<<"$out"
}

t_daemonset() {
	py_checks "$DEPLOY/kubernetes/daemonset.yaml" "$UNIT" "$LS_TMP/loadshed.conf" <<'EOF'
import re, sys, yaml
path, unit, conf_out = sys.argv[1:4]
def check(name, cond, why=""):
    print(("ok " if cond else "not_ok ") + name + ("" if cond else "\t" + why))
docs = [d for d in yaml.safe_load_all(open(path)) if d]
kinds = sorted(d["kind"] for d in docs)
check("the manifest holds a Namespace, a ConfigMap and a DaemonSet",
      kinds == ["ConfigMap", "DaemonSet", "Namespace"], str(kinds))
ds = next(d for d in docs if d["kind"] == "DaemonSet")
cm = next(d for d in docs if d["kind"] == "ConfigMap")
check("they share a namespace", ds["metadata"]["namespace"] == cm["metadata"]["namespace"],
      "DaemonSet in %s, ConfigMap in %s" % (ds["metadata"]["namespace"], cm["metadata"]["namespace"]))
pod = ds["spec"]["template"]["spec"]
check("the selector matches the pod's labels", all(
    ds["spec"]["template"]["metadata"]["labels"].get(k) == v
    for k, v in ds["spec"]["selector"]["matchLabels"].items()), "labels differ")
check("hostNetwork: the pod is in the node's network namespace", pod.get("hostNetwork") is True,
      repr(pod.get("hostNetwork")))
[c] = pod["containers"]
sc = c.get("securityContext", {})
caps = sorted(sc.get("capabilities", {}).get("add", []))
want = ["BPF", "NET_ADMIN", "PERFMON"]
check("capabilities added: CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON", caps == want, str(caps))
check("every other capability dropped, not privileged",
      sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("privileged"), str(sc))
try:
    text = open(unit).read()
except OSError as e:
    text = None
    check("the systemd unit is there to compare with", False, str(e))
if text is not None:
    m = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M) or \
        re.search(r"^AmbientCapabilities=(.*)$", text, re.M)
    unit_caps = sorted(w[4:] if w.startswith("CAP_") else w for w in m.group(1).split()) if m else None
    check("the capabilities are the systemd unit's", unit_caps == caps,
          "unit %s, DaemonSet %s" % (unit_caps, caps))
vols = {v["name"]: v for v in pod["volumes"]}
mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
bpf = mounts.get("/sys/fs/bpf")
check("the node's bpffs (hostPath /sys/fs/bpf) is mounted at /sys/fs/bpf",
      bpf is not None and vols[bpf["name"]].get("hostPath", {}).get("path") == "/sys/fs/bpf",
      str(bpf))
cfg = mounts.get("/etc/loadshed")
check("the ConfigMap is mounted at /etc/loadshed",
      cfg is not None and vols[cfg["name"]].get("configMap", {}).get("name") == cm["metadata"]["name"],
      str(cfg))
script = "\n".join(c.get("command", []) + c.get("args", []))
check("the config the command reads is a key of the ConfigMap",
      any("/etc/loadshed/" + k in script for k in cm["data"]), "keys %s" % list(cm["data"]))
open(conf_out, "w").write(cm["data"]["loadshed.conf"])
env = {e["name"]: e for e in c.get("env", [])}
check("the interface comes from an env var the command uses",
      "LOADSHED_IFACE" in env and "$LOADSHED_IFACE" in script, str(list(env)))
ports = {p["containerPort"]: p for p in c.get("ports", [])}
check("the metrics port 9542 is declared", 9542 in ports, str(list(ports)))
ann = ds["spec"]["template"]["metadata"].get("annotations", {})
check("Prometheus scrape annotations name port 9542 and /metrics",
      ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9542"
      and ann.get("prometheus.io/path", "/metrics") == "/metrics", str(ann))
probe = c.get("livenessProbe", {}).get("httpGet", {})
port = probe.get("port")
port = next((p["containerPort"] for p in ports.values() if p.get("name") == port), port)
check("the liveness probe gets /metrics on 9542", probe.get("path") == "/metrics" and port == 9542,
      str(probe))
EOF
	# The parser validates a config before it looks at the interface: a
	# valid file gets as far as "no such interface" (exit 1), a bad one exit 2.
	"$LOADSHED" -j attach "nosuch$$" --config "$LS_TMP/loadshed.conf" >"$LS_TMP/attach.out"
	check_eq "loadshed's parser accepts the ConfigMap's loadshed.conf (it gets to the interface)" \
		"$?:$(jq -r .error "$LS_TMP/attach.out")" "1:nosuch$$: no such interface"
	printf '[service web]\nlisten = *:8080\nbogus = 1\n' >"$LS_TMP/bad.conf"
	"$LOADSHED" -j attach "nosuch$$" --config "$LS_TMP/bad.conf" >/dev/null
	check_eq "(the same check refuses a bad file: exit 2)" "$?" 2
}

t_hpa() {
	py_checks "$DEPLOY/kubernetes/hpa.yaml" <<'EOF'
import sys, yaml
def check(name, cond, why=""):
    print(("ok " if cond else "not_ok ") + name + ("" if cond else "\t" + why))
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
hpa = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
check("one HorizontalPodAutoscaler, autoscaling/v2",
      len(hpa) == 1 and hpa[0]["apiVersion"] == "autoscaling/v2", str([d["kind"] for d in docs]))
m = hpa[0]["spec"]["metrics"][0]
check("it scales on the external metric loadshed_demand_ratio of a service",
      m["type"] == "External" and m["external"]["metric"]["name"] == "loadshed_demand_ratio"
      and "service" in m["external"]["metric"]["selector"]["matchLabels"], str(m))
cms = [d for d in docs if d["kind"] == "ConfigMap"]
rules = yaml.safe_load(cms[0]["data"]["config.yaml"]) if cms else {}
ext = rules.get("externalRules", [])
check("prometheus-adapter's rule serves loadshed_demand_ratio under that name",
      any("loadshed_demand_ratio" in r["seriesQuery"] and r["name"]["as"] == "loadshed_demand_ratio"
          for r in ext), str(ext))
EOF
}

t_dashboard() {
	py_checks "$DEPLOY/grafana/loadshed.json" "$LS_ROOT/user/metrics.c" \
		"$LS_ROOT/user/metrics_breaker.c" <<'EOF'
import json, re, sys
def check(name, cond, why=""):
    print(("ok " if cond else "not_ok ") + name + ("" if cond else "\t" + why))
# The metric names and labels loadshed exports (fixed for the fleet).
METRICS = {
    "loadshed_info": {"iface", "service", "algorithm", "admit"},
    "loadshed_admitted_total": {"iface", "service", "class"},
    "loadshed_shed_total": {"iface", "service", "class", "action"},
    "loadshed_would_shed_total": {"iface", "service", "class"},
    "loadshed_fail_open_total": {"iface", "service", "class"},
    "loadshed_limit": {"iface", "service"},
    "loadshed_inflight": {"iface", "service", "class"},
    "loadshed_latency_seconds_bucket": {"iface", "service", "le"},
    "loadshed_agent_heartbeat_age_seconds": {"iface"},
    "loadshed_flows": {"iface"},
    "loadshed_flows_max": {"iface"},
    "loadshed_parse_errors_total": {"iface"},
    "loadshed_demand_ratio": {"iface", "service"},
}
try:
    dash = json.load(open(sys.argv[1]))
except ValueError as e:
    check("the dashboard is valid JSON", False, str(e))
    sys.exit(0)
check("the dashboard is valid JSON", True)
exprs = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("expr", "definition") and isinstance(v, str):
                exprs.append(v)
            elif k == "query" and isinstance(v, str):
                exprs.append(v)
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(dash)
names = set()
bad_labels = []
for e in exprs:
    for m in re.finditer(r"\b(loadshed_[a-z0-9_]+)\b(\{[^}]*\})?", e):
        names.add(m.group(1))
        for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", m.group(2) or ""):
            if m.group(1) in METRICS and label not in METRICS[m.group(1)]:
                bad_labels.append("%s{%s}" % (m.group(1), label))
unknown = sorted(names - set(METRICS))
check("every metric its queries use is one loadshed exports (%d names)" % len(names),
      names and not unknown, "unknown: %s" % unknown)
check("every label its selectors use is one of that metric's", not bad_labels, str(bad_labels))
titles = " | ".join(p.get("title", "") for p in dash.get("panels", [])).lower()
for want, words in [("admitted vs shed", ["admitted", "shed"]), ("limit vs in-flight", ["limit", "in-flight"]),
                    ("p50/p99", ["p50", "p99"]), ("demand ratio", ["demand"]),
                    ("heartbeat age", ["heartbeat"]), ("flow table fill", ["flow table"])]:
    check("a panel shows " + want, all(w in titles for w in words), titles)
q = [e for e in exprs if "histogram_quantile" in e]
check("p50 and p99 come from histogram_quantile over the buckets",
      any("0.5," in e for e in q) and any("0.99," in e for e in q)
      and all("loadshed_latency_seconds_bucket" in e for e in q), str(q))
ids = [p["id"] for p in dash["panels"]]
check("panel ids are unique", len(ids) == len(set(ids)), str(ids))
# The names must be the exporter's names too (a histogram's _bucket series
# from its base name): user/metrics.c and user/metrics_breaker.c.
src = ""
for f in sys.argv[2:]:
    try:
        src += open(f).read()
    except OSError as e:
        check("the exporter's source %s is there" % f, False, str(e))
        sys.exit(0)
emitted = set(re.findall(r"loadshed_[a-z0-9_]+", src))
missing = sorted(n for n in names
                 if n not in emitted and re.sub(r"_(bucket|sum|count)$", "", n) not in emitted)
check("every metric the dashboard uses is one user/metrics.c or user/metrics_breaker.c exports",
      not missing, str(missing))
EOF
}

require_cmds python3 jq
python3 -c 'import yaml' 2>/dev/null || LS_SKIP=${LS_SKIP:-python3-yaml is not installed}
# The adapter's query, run by promtool on a node whose loadshed sheds everything
# (ratio +Inf, design §7.7) beside one at 2: prometheus-adapter hands the HPA
# int64(value * 1000), and Go turns +Inf into the most negative int64, so an
# unclamped +Inf would read as "no demand" and scale the service in. The
# answer must be finite and still above 1.
t_hpa_query_is_finite_when_a_node_sheds_everything() {
	local q
	q=$(python3 -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = next(d for d in docs if d["kind"] == "ConfigMap")
[r] = [r for r in yaml.safe_load(cm["data"]["config.yaml"])["externalRules"]
       if r["name"]["as"] == "loadshed_demand_ratio"]
print(r["metricsQuery"].replace("<<.Series>>", "loadshed_demand_ratio")
      .replace("<<.LabelMatchers>>", "service=\"web\""))' "$DEPLOY/kubernetes/hpa.yaml") || {
		not_ok "the adapter's metricsQuery is read"
		return 1
	}
	cat >"$LS_TMP/hpa_test.yml" <<EOF
rule_files: []
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'loadshed_demand_ratio{service="web",instance="node-a"}'
        values: '+Inf +Inf'
      - series: 'loadshed_demand_ratio{service="web",instance="node-b"}'
        values: '2 2'
    promql_expr_test:
      - expr: '(($q) > bool 1) * (($q) < bool +Inf)'
        eval_time: 1m
        exp_samples:
          - labels: '{service="web"}'
            value: 1
EOF
	check "the HPA's value is finite and above 1 when one node's ratio is +Inf" \
		promtool test rules "$LS_TMP/hpa_test.yml"
}

run_test "the DaemonSet and its ConfigMap" t_daemonset
run_test "the HPA on loadshed_demand_ratio and its adapter rule" t_hpa
run_test "the adapter's query is finite and asks for more when a node sheds everything" \
	t_hpa_query_is_finite_when_a_node_sheds_everything
run_test "the Grafana dashboard's queries use loadshed's metrics" t_dashboard
tap_done
