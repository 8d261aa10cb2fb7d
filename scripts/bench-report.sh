#!/usr/bin/env bash
# Writes RESULTS.md of a bench.sh run from the data it left in DIR (so the
# report can be rebuilt without running the benchmark again).
#
# Usage: scripts/bench-report.sh DIR [BPF_STATUS]
#        scripts/bench-report.sh --algos DIR     (a `bench.sh --algos` run)
set -euo pipefail

ALGOS_REPORT=0
if [ "${1:-}" = --algos ]; then
	ALGOS_REPORT=1
	shift
fi
DIR=${1:?usage: bench-report.sh [--algos] DIR [BPF_STATUS]}
BPF_STATUS=${2:-}
[ -f "$DIR/machine.env" ] || { echo "bench-report: $DIR/machine.env is missing" >&2; exit 1; }
DIR=$(cd "$DIR" && pwd)

# All run summaries in one array; flood.csv as an array of objects.
# Each run carries the name of its folder (SCENARIO-PROTECTION, or a variant's name).
RUNS=$(find "$DIR" -mindepth 2 -maxdepth 2 -name summary.json -print0 | sort -z |
	while IFS= read -r -d '' f; do
		jq --arg dir "$(basename "$(dirname "$f")")" '. + {dir: $dir}' "$f"
	done | jq -s .)
FLOOD='[]'
if [ -f "$DIR/flood.csv" ]; then
	FLOOD=$(awk -F, 'NR > 1 { printf "{\"method\":\"%s\",\"sent\":%s,\"received\":%s,\"seconds\":%s,\"rx_pps\":%s}\n", $1, $2, $3, $4, $5 }' \
		"$DIR/flood.csv" | jq -s .)
fi
# env_json FILE: a file of KEY=VALUE lines as one JSON object of strings.
env_json() {
	awk -F= '{ printf "%s\t%s\n", $1, substr($0, index($0, "=") + 1) }' "$1" |
		jq -R -s 'split("\n") | map(select(length > 0) | split("\t") | {(.[0]): .[1]}) | add // {}'
}
MACHINE=$(env_json "$DIR/machine.env")

if [ "$ALGOS_REPORT" = 1 ]; then
	[ -f "$DIR/algos.env" ] || { echo "bench-report: $DIR/algos.env is missing" >&2; exit 1; }
	CONF=
	for f in "$DIR"/*-steady-*/loadshed.conf; do
		[ -f "$f" ] && { CONF=$(grep -v '^#' "$f" | sed '/^\[class/,$d' | grep -v '^$'); break; }
	done
	jq -n -r --argjson runs "$RUNS" --argjson m "$MACHINE" --argjson a "$(env_json "$DIR/algos.env")" \
		--arg conf "$CONF" -f "$(dirname "$0")/bench-algos.jq" >"$DIR/RESULTS.md.tmp"
	mv "$DIR/RESULTS.md.tmp" "$DIR/RESULTS.md"
	exit 0
fi
CONF=
for f in "$DIR"/steady-loadshed/loadshed.conf "$DIR"/*-loadshed/loadshed.conf; do
	[ -f "$f" ] && { CONF=$(grep -v '^#' "$f"); break; }
done

jq -n -r --argjson runs "$RUNS" --argjson flood "$FLOOD" --argjson m "$MACHINE" \
	--arg conf "$CONF" --arg bpf_status "$BPF_STATUS" '
def r1: . * 10 | round / 10;
def r2: . * 100 | round / 100;
def pct: if . == null then "–" else "\(r1) %" end;
def ms: if . == null then "–" else "\(round) ms" end;
def num: if . == null then "–" else tostring end;
def run($s; $p): [$runs[] | select(.dir == "\($s)-\($p)")][0];
def named($d): [$runs[] | select(.dir == $d)][0];
def ratio($a; $b): if $a == null or $b == null or $b == 0 then "–" else "\($a / $b | r2)×" end;
def row: "| " + join(" | ") + " |";

(run("unloaded"; "none")) as $u
| ($u.high.p99_ms // null) as $floor
| ([$runs[] | select(.scenario != "unloaded")][0] // $u) as $any
| {steady: "3× capacity for \(run("steady"; "none").seconds // 20) s",
   slowdown: "1.5× capacity; at half-time the service time doubles (so 3×)",
   surge: "0.7× capacity, 2.5× for 5 s from a third of the run on; clients retry (3×, exponential back-off with jitter, 100 ms … 2 s)",
   synflood: "0.7× capacity while ls-xdpflood sends \(run("synflood"; "none").flood_sent // "–") spoofed SYNs from 10.201.0.4/30 (about 50 kpps) for the middle of the run"} as $what
| "# loadshed: benchmark results",
"",
"One run of `make bench` (scripts/bench.sh) on this machine; every ratio compares numbers measured in that same run.",
"",
"| machine | |",
"|---|---|",
"| CPUs | \($m.cpus) × \($m.cpu_model) |",
"| kernel | \($m.kernel) |",
"| memory | \($m.memory_mib) MiB |",
"| loadshed | commit \($m.commit) |",
"| date | \($m.date) |",
"",
"## Setup",
"",
(if $any then
"- **server**: ls-server, \($any.workers) workers × \($any.service_ms) ms of work per request, unbounded accept queue: capacity **\($any.capacity_rps) req/s**. Unloaded (0.3× capacity) high-priority p99: **\($floor | ms)**.",
"- **load**: ls-loadgen, open loop (Poisson arrivals), 20 % high priority (10.201.0.2) and 80 % low (10.201.0.3), a new connection per request, deadline \($any.deadline_ms) ms. *ok* = a 200 answer within the deadline; *goodput* = ok requests per second over the run.",
"- **none**: nothing in front of the server.",
"- **iptables**: `iptables -A INPUT -p tcp --syn --dport 8080 -m connlimit --connlimit-above \(run("steady"; "iptables").limit // "N") --connlimit-mask 0 -j REJECT --reject-with tcp-reset`, the best static cap of a hand sweep (workers × 1.25).",
"- **loadshed**: attached to the server veth (native XDP), adaptive limit, high class guaranteed, low class only what is left, shed with a RST:",
"",
"```ini",
$conf,
"```"
else "no scenario was run" end),
"",
"## Overload scenarios",
(["steady", "slowdown", "surge", "synflood"][] as $s
 | select(run($s; "none") or run($s; "iptables") or run($s; "loadshed"))
 | "",
 "### \($s): \($what[$s])",
 "",
 "| protection | high ok | low ok | goodput | high p99 | high p99 / unloaded | limit (mean) | \(if $s == "surge" then "recovery after the surge¹" elif $s == "slowdown" then "limit settled after¹" else "" end) |",
 "|---|---:|---:|---:|---:|---:|---:|---:|",
 (["none", "iptables", "loadshed"][] as $p | run($s; $p) | select(.)
  | [$p, (.high.ok_pct | pct), (.low.ok_pct | pct),
     "\(.goodput_rps | round) req/s (\(.goodput_pct | round) %)",
     (.high.p99_ms | ms), ratio(.high.p99_ms; $floor),
     (if $p == "none" then "–" else (.mean_limit | num) end),
     (if $s == "surge" then (if .recovery_s == null then "not within the run" else "\(.recovery_s) s" end)
      elif $s == "slowdown" then (if .settle_s == null then "–" else "\(.settle_s) s" end)
      else "" end)] | row),
 "",
 (run($s; "loadshed") as $l | run($s; "iptables") as $i | run($s; "none") as $n
  | select($l)
  | "loadshed vs none: goodput \(ratio($l.goodput_rps; $n.goodput_rps)), high ok \($l.high.ok_pct - ($n.high.ok_pct // 0) | r1 | if . >= 0 then "+\(.)" else tostring end) points. "
  + "loadshed vs iptables: goodput \(ratio($l.goodput_rps; $i.goodput_rps)), high ok \($l.high.ok_pct - ($i.high.ok_pct // 0) | r1 | if . >= 0 then "+\(.)" else tostring end) points, high p99 \(ratio($l.high.p99_ms; $i.high.p99_ms))."),
 "",
 "![\($s)](\($s).png)"),
"",
"¹ surge: seconds after the surge ends until every later second has ≥ 99 % of all requests ok. slowdown: seconds after the service time doubled until loadshed'"'"'s limit stays within 25 % of its final value.",
"",
"## Work that is not a connection per request",
"",
"loadshed runs these with `admit = requests` (in flight = requests outstanding; each request on a keep-alive connection admitted by the partition rule) and `request_action = defer` unless the row says abort; iptables keeps its connection cap, which is all it can see.",
(named("keepalive-none") // named("keepalive-loadshed") | select(.)
 | "",
 "### keepalive: 3× capacity, open-loop clients sending only over a pool of 64 keep-alive connections per class, opened at start",
 "",
 "| protection | high ok | low ok | goodput | high p99 | requests deferred / aborted (low) |",
 "|---|---:|---:|---:|---:|---:|",
 ([["none", "keepalive-none"], ["iptables", "keepalive-iptables"], ["loadshed (defer)", "keepalive-loadshed"], ["loadshed (abort)", "keepalive-loadshed-abort"]][]
  | . as [$nm, $d] | named($d) | select(.)
  | [$nm, (.high.ok_pct | pct), (.low.ok_pct | pct), "\(.goodput_rps | round) req/s (\(.goodput_pct | round) %)",
     (.high.p99_ms | ms),
     (if .loadshed then "\(.loadshed.classes.low.deferred // "–") / \(.loadshed.classes.low.aborted // "–")" else "–" end)] | row)),
(named("keepalive-attach-none") // named("keepalive-attach-loadshed") | select(.)
 | "",
 "### keepalive-attach: the same, the protection put in front 8 s into the overload, every pool already open",
 "",
 "| protection | high ok from 2 s after the attach | low ok from then | high ok, whole run | goodput, whole run |",
 "|---|---:|---:|---:|---:|",
 (["none", "iptables", "loadshed"][] as $p | run("keepalive-attach"; $p) | select(.)
  | [$p, (.after_attach.high.ok_pct | pct), (.after_attach.low.ok_pct | pct), (.high.ok_pct | pct),
     "\(.goodput_rps | round) req/s (\(.goodput_pct | round) %)"] | row)),
(named("wrk-none") // named("wrk-loadshed") | select(.)
 | "",
 "### wrk: Debian'"'"'s wrk (closed loop, 8 keep-alive connections, the high class) next to the low class at 2.4× capacity",
 "",
 "| protection | wrk requests | wrk req/s | socket errors | non-2xx | wrk p50 | wrk p99 | low ok |",
 "|---|---:|---:|---:|---:|---:|---:|---:|",
 (["none", "iptables", "loadshed"][] as $p | run("wrk"; $p) | select(.)
  | [$p] + (if .wrk.error then ["failed: \(.wrk.error)", "–", "–", "–", "–", "–"]
            else [(.wrk.requests | tostring), (.wrk.rps | round | tostring), (.wrk.socket_errors | tostring),
                  (.wrk.errors.status | tostring), (.wrk.p50_ms | ms), (.wrk.p99_ms | ms)] end)
    + [(.low.ok_pct | pct)] | row)),
(named("pgbench-none") // named("pgbench-loadshed") | select(.)
 | "",
 "### pgbench: PostgreSQL 15 at 3× its capacity (\(.capacity_tps) tps: 16 slots × 40 ms), `pgbench -c 32 -j 2 -R` per class, one-statement script, on time = within \(.latency_limit_ms) ms",
 "",
 "| protection | high on time | high done | low on time | low done | every connection opened |",
 "|---|---:|---:|---:|---:|---|",
 (["none", "loadshed"][] as $p | run("pgbench"; $p) | select(.)
  | [$p, (.high.on_time_pct | pct), (.high.processed | tostring), (.low.on_time_pct | pct), (.low.processed | tostring),
     (if .high.connected_all and .low.connected_all then "yes" else "**no**" end)] | row)),
(named("synflood-full-none") // named("synflood-full-loadshed") | select(.)
 | "",
 "### synflood-full: 0.6× capacity (a connection per request) while ls-xdpflood sends spoofed SYNs from 10.201.0.4/30 as fast as it can on every CPU",
 "",
 "| protection | flood | high ok | low ok | goodput | host CPU busy | loadshed flows (max of max_flows) |",
 "|---|---:|---:|---:|---:|---:|---:|",
 ([["none", "synflood-full-none"], ["iptables", "synflood-full-iptables"], ["loadshed", "synflood-full-loadshed"],
   ["none", "synflood-rate-none"], ["loadshed", "synflood-rate-loadshed"]][]
  | . as [$nm, $d] | named($d) | select(.)
  | [$nm, (if (.flood_pps // 0) > 0 then "\(.flood_pps / 1000 | round) kpps" else "full rate" end) + " (\(.flood_sent // 0 | . / 1e6 | r1) M sent)",
     (.high.ok_pct | pct), (.low.ok_pct | pct), "\(.goodput_rps | round) req/s",
     (if .cpu then "\(.cpu.busy_pct) %" else "–" end),
     (if .flows then "\(.flows.max) of \(.flows.max_flows)" else "–" end)] | row)),
"",
"## SYN flood drop rate",
"",
(if ($flood | length) > 0 then
 ([$flood[] | select(.method == "xdp_drop")][0].rx_pps) as $drop
 | ([$flood[] | select(.method == "iptables_raw")][0].rx_pps) as $ipt
 | "ls-xdpflood sends SYNs with random source ports and addresses (10.201.0.4/30) out of the client veth with BPF_PROG_RUN live frames, one sending thread per CPU, for a fixed time; the rate is what the server veth received (its rx counter) per second. Sending and receiving share the CPUs, so ns/packet is the whole path, generator included.",
 "",
 "| drop on the server veth | received | ns per packet | vs XDP_DROP | vs iptables raw |",
 "|---|---:|---:|---:|---:|",
 ($flood[] | [
   ({xdp_drop: "trivial XDP_DROP (bench_ref.bpf.o)", loadshed: "loadshed (limit reached, shed by drop)",
     iptables_raw: "iptables raw PREROUTING DROP (+ XDP_PASS)", none_kernel: "nothing: kernel SYN cookies (+ XDP_PASS)"}[.method] // .method),
   "\(.rx_pps / 1e6 | r2) Mpps", "\(1e9 / .rx_pps * ($m.cpus | tonumber) | round)",
   ratio(.rx_pps; $drop), ratio(.rx_pps; $ipt)] | row)
 else "not run" end),
"",
"## Per-packet BPF cost",
"",
(if $bpf_status == "ok" then "The output of scripts/bench-bpf.sh (BPF_PROG_TEST_RUN of the dataplane against reference programs), as it printed it:" else "scripts/bench-bpf.sh: \($bpf_status)" end)
' >"$DIR/RESULTS.md.tmp"

# The BPF benchmark's output goes in verbatim.
if [ "$BPF_STATUS" = ok ] && [ -f "$DIR/bpf.txt" ]; then
	# Its headings go one level down, under this section's.
	{ echo; sed 's/^#/###/' "$DIR/bpf.txt"; } >>"$DIR/RESULTS.md.tmp"
fi

# Targets of doc/design.md §13, measured, and where loadshed loses.
jq -n -r --argjson runs "$RUNS" --argjson flood "$FLOOD" '
def run($s; $p): [$runs[] | select(.dir == "\($s)-\($p)")][0];
def named($d): [$runs[] | select(.dir == $d)][0];
def r1: . * 10 | round / 10;
def yes($c): if $c == null then "–" elif $c then "yes" else "**no**" end;
def row: "| " + join(" | ") + " |";
(run("unloaded"; "none").high.p99_ms) as $floor
| (run("steady"; "loadshed")) as $l
| ([$flood[] | select(.method == "xdp_drop")][0].rx_pps) as $drop
| ([$flood[] | select(.method == "iptables_raw")][0].rx_pps) as $ipt
| ([$flood[] | select(.method == "loadshed")][0].rx_pps) as $lsf
| "",
"## Targets (design.md §13)",
"",
"| target | measured | met |",
"|---|---|---|",
(if $l then
 (["steady 3×: high success ≥ 99.5 %", "\($l.high.ok_pct | r1) %", yes($l.high.ok_pct >= 99.5)] | row),
 (["steady 3×: high p99 ≤ 2× unloaded p99", "\($l.high.p99_ms | round) ms vs \($floor // 0 | round) ms", yes(if $floor then $l.high.p99_ms <= 2 * $floor else null end)] | row),
 (["steady 3×: goodput ≥ 95 % of capacity", "\($l.goodput_pct | round) %", yes($l.goodput_pct >= 95)] | row)
 else empty end),
(run("slowdown"; "loadshed") | select(.) | ["capacity halves: limit settles within 2 s", (if .settle_s == null then "did not settle" else "\(.settle_s) s" end), yes(if .settle_s == null then false else .settle_s <= 2 end)] | row),
(run("surge"; "loadshed") | select(.) | ["surge with retries: ≥ 99 % ok within 2 s after it", (if .recovery_s == null then "not within the run" else "\(.recovery_s) s" end), yes(if .recovery_s == null then false else .recovery_s <= 2 end)] | row),
(if $lsf and $drop then ["SYN flood: ≥ 80 % of a trivial XDP_DROP", "\($lsf / $drop * 100 | round) %", yes($lsf >= 0.8 * $drop)] | row else empty end),
(if $lsf and $ipt then ["SYN flood: ≥ 2× iptables raw DROP", "\($lsf / $ipt | . * 100 | round / 100)×", yes($lsf >= 2 * $ipt)] | row else empty end),
(named("keepalive-loadshed") | select(.) | ["keep-alive pools, 3×, defer: high success ≥ 99 %", "\(.high.ok_pct | r1) %", yes(.high.ok_pct >= 99)] | row),
(named("keepalive-loadshed") | select(.) | ["keep-alive pools, 3×, defer: goodput ≥ 90 % of capacity", "\(.goodput_pct | round) %", yes(.goodput_pct >= 90)] | row),
(named("keepalive-loadshed-abort") | select(.) | ["keep-alive pools, 3×, abort: high success ≥ 99 %", "\(.high.ok_pct | r1) %", yes(.high.ok_pct >= 99)] | row),
(named("keepalive-loadshed-abort") | select(.) | ["keep-alive pools, 3×, abort: goodput ≥ 90 % of capacity", "\(.goodput_pct | round) %", yes(.goodput_pct >= 90)] | row),
(named("keepalive-attach-loadshed") | select(.) | ["pools opened before attach: high ≥ 99 % from 2 s after it", "\(.after_attach.high.ok_pct | r1) %", yes(.after_attach.high.ok_pct >= 99)] | row),
(named("wrk-loadshed") | select(.) | ["wrk through request mode: no errors", "\(.wrk.socket_errors // "–") socket errors, \(.wrk.errors.status // "–") non-2xx", yes(.wrk.socket_errors == 0 and .wrk.errors.status == 0)] | row),
(named("pgbench-loadshed") | select(.) | ["pgbench -R at 3×: high ≥ 95 % on time, every connection opened", "\(.high.on_time_pct | r1) %, \(if .high.connected_all and .low.connected_all then "all opened" else "not all opened" end)", yes(.high.on_time_pct >= 95 and .high.connected_all and .low.connected_all)] | row),
(named("synflood-full-loadshed") as $l | named("synflood-full-none") as $n | select($l and $n)
 | ["full-rate SYN flood: every class ≥ 95 % of the unprotected success", "high \($l.high.ok_pct | r1) % vs \($n.high.ok_pct | r1) %, low \($l.low.ok_pct | r1) % vs \($n.low.ok_pct | r1) %",
    yes($l.high.ok_pct >= 0.95 * $n.high.ok_pct and $l.low.ok_pct >= 0.95 * $n.low.ok_pct)] | row),
(named("synflood-full-loadshed") | select(.flows) | ["full-rate SYN flood: the flow table never full", "at most \(.flows.max) of \(.flows.max_flows)", yes(.flows.max < .flows.max_flows)] | row),
(named("synflood-rate-loadshed") as $l | named("synflood-rate-none") as $n | select($l.cpu and $n.cpu)
 | ["SYN flood with CPU headroom (\($l.flood_pps / 1000 | round) kpps): host CPU ≤ 1.05× none", "\($l.cpu.busy_pct) % vs \($n.cpu.busy_pct) %: \($l.cpu.busy_pct / $n.cpu.busy_pct | . * 100 | round / 100)×", yes($l.cpu.busy_pct <= 1.05 * $n.cpu.busy_pct)] | row),
"",
"## Where loadshed loses",
"",
([["steady", "slowdown", "surge", "synflood", "keepalive", "keepalive-attach", "synflood-full"][] as $s
  | run($s; "loadshed") as $L | select($L)
  | (["none", "iptables"][] as $p | run($s; $p) as $o | select($o)
     | (if $o.high.ok_pct > $L.high.ok_pct + 0.5 then "- \($s): \($p) has the higher high-priority success (\($o.high.ok_pct | r1) % vs \($L.high.ok_pct | r1) %)." else empty end),
       (if $o.goodput_rps > $L.goodput_rps * 1.02 then "- \($s): \($p) has the higher goodput (\($o.goodput_rps | round) vs \($L.goodput_rps | round) req/s)." else empty end),
       (if $o.high.p99_ms < $L.high.p99_ms * 0.9 then "- \($s): \($p) has the lower high-priority p99 (\($o.high.p99_ms | round) vs \($L.high.p99_ms | round) ms), over the \($o.high.ok_pct | r1) % of requests it served." else empty end),
       (if $o.low.ok_pct > $L.low.ok_pct + 5 then "- \($s): \($p) serves more of the low class (\($o.low.ok_pct | r1) % vs \($L.low.ok_pct | r1) %)." else empty end))]
 | if length == 0 then "Nowhere in this run." else .[] end)
' >>"$DIR/RESULTS.md.tmp"
mv "$DIR/RESULTS.md.tmp" "$DIR/RESULTS.md"
