#!/usr/bin/env bash
# The first thing to run: a server at three times its capacity, without and
# with loadshed, side by side.
#
# Usage: scripts/demo.sh [--seconds S] [--out DIR] [--no-build]     (as root; `make demo`)
#
# Builds loadshed and the test tools, brings up the testbed (two network
# namespaces joined by veth, scripts/testbed.sh), measures the server's
# unloaded latency, then offers 3x its capacity (20 % high priority, 80 % low,
# a new connection per request, open-loop) once unprotected and once with
# loadshed attached (adaptive limit, high class first). Prints a table and
# writes results/demo/demo.png (goodput, high success and p99, limit over
# time) with every run's raw data beside it. About a minute.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_RUN=20
OUT=$ROOT/results/demo
BUILD=1
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) SECONDS_RUN=${2:?--seconds wants a number}; shift 2 ;;
	--out) OUT=${2:?--out wants a directory}; shift 2 ;;
	--no-build) BUILD=0; shift ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) echo "demo: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$ROOT/scripts/testbed.sh"
tb_preflight demo "$BUILD"
tb_names demo
trap 'tb_down' EXIT
trap 'exit 130' INT TERM
tb_up >/dev/null || { echo "demo: the testbed does not come up" >&2; exit 1; }

mkdir -p "$OUT"
run() { # run SCENARIO PROTECTION SECONDS
	echo "demo: $1 against $2 ($3 s)"
	"$ROOT/scripts/scenario.sh" "$1" "$2" --id demo --seconds "$3" --out "$OUT/$1-$2" | sed 's/^/      /'
}
run unloaded none 5
run steady none "$SECONDS_RUN"
run steady loadshed "$SECONDS_RUN"

"$ROOT/scripts/plot.sh" "$OUT/demo.png" \
	"steady 3x overload: unprotected vs loadshed (unloaded high p99 $(jq -r '.high.p99_ms | round' "$OUT/unloaded-none/summary.json") ms)" \
	unprotected="$OUT/steady-none" loadshed="$OUT/steady-loadshed"

# The table, from the runs' summaries.
jq -n -r --slurpfile u "$OUT/unloaded-none/summary.json" \
	--slurpfile n "$OUT/steady-none/summary.json" \
	--slurpfile l "$OUT/steady-loadshed/summary.json" '
	def pct: (. * 10 | round / 10 | tostring) + " %";
	def ms: (. | round | tostring) + " ms";
	def row($name; f): [$name, ($n[0] | f), ($l[0] | f)];
	$n[0] as $N
	| "",
	"\($N.workers) workers x \($N.service_ms) ms = \($N.capacity_rps) req/s capacity; offered \($N.offered_rps | round) req/s",
	"(3x: 20 % high, 80 % low priority, one connection per request, deadline \($N.deadline_ms) ms)",
	"",
	([["", "unprotected", "loadshed"],
	  row("high success"; .high.ok_pct | pct),
	  row("low success"; .low.ok_pct | pct),
	  row("goodput"; "\(.goodput_rps | round) req/s (\(.goodput_pct | round) %)"),
	  row("high p99"; .high.p99_ms | ms),
	  row("low p99"; .low.p99_ms | ms),
	  ["high p99 unloaded", ($u[0].high.p99_ms | ms), ""]]
	 | .[] | "  \(.[0] + (" " * (20 - (.[0] | length))))\(.[1] + (" " * (26 - (.[1] | length))))\(.[2])")' |
	tee "$OUT/table.txt"
echo
echo "plot: $OUT/demo.png   raw data: $OUT/*/"
