#!/usr/bin/env bash
# Plots runs of scenario.sh side by side over time: goodput, the high class's
# success and p99 latency, and the concurrency limit (loadshed's adaptive one,
# iptables' static cap) with loadshed's in-flight count.
#
# Usage: scripts/plot.sh OUT.png TITLE LABEL=RUN_DIR [LABEL=RUN_DIR ...]
set -euo pipefail

if [ $# -lt 3 ]; then
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0" >&2
	exit 2
fi
PNG=$1
TITLE=$2
shift 2
command -v gnuplot >/dev/null || { echo "plot: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/loadshed-plot.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

CAPACITY=
WORKERS=
SECONDS_RUN=0
GOODPUT=() HIGH_OK=() HIGH_P99=() LIMIT=()
i=0
for arg in "$@"; do
	label=${arg%%=*}
	dir=${arg#*=}
	[ -f "$dir/loadgen.csv" ] || { echo "plot: $dir/loadgen.csv is missing" >&2; exit 1; }
	if [ -f "$dir/summary.json" ]; then
		CAPACITY=$(jq -r .capacity_rps "$dir/summary.json")
		WORKERS=$(jq -r .workers "$dir/summary.json")
		s=$(jq -r .seconds "$dir/summary.json")
		[ "$s" -gt "$SECONDS_RUN" ] && SECONDS_RUN=$s
	fi
	# Per second: total ok (goodput), high success % and p99 (NaN when nothing ended).
	awk -F, -v end="$(jq -r '.seconds // 1000' "$dir/summary.json" 2>/dev/null || echo 1000)" 'NR > 1 && $1 < end {
			t = $1; ok[t] += $4
			if ($2 == "high") {
				hn[t] = $4 + $5 + $6 + $7 + $12 + $13 + $14; hok[t] = $4; hp[t] = $11
			}
			if (t > max) max = t
		}
		END {
			for (t = 0; t <= max; t++)
				printf "%d %d %s %s\n", t, ok[t],
					(hn[t] > 0 ? sprintf("%.2f", 100 * hok[t] / hn[t]) : "NaN"),
					(hok[t] > 0 ? hp[t] : "NaN")
		}' "$dir/loadgen.csv" >"$TMP/$i.sec"
	awk -F, 'NR > 1 { printf "%s %s %s\n", $1, ($2 == "" ? "NaN" : $2), ($3 == "" ? "NaN" : $3) }' \
		"$dir/samples.csv" >"$TMP/$i.lim" 2>/dev/null || : >"$TMP/$i.lim"
	lc="lc $((i + 1))"
	GOODPUT+=("'$TMP/$i.sec' using (\$1+0.5):2 with linespoints pt 7 ps 0.4 lw 2 $lc title '$label'")
	HIGH_OK+=("'$TMP/$i.sec' using (\$1+0.5):3 with linespoints pt 7 ps 0.4 lw 2 $lc title '$label'")
	HIGH_P99+=("'$TMP/$i.sec' using (\$1+0.5):4 with linespoints pt 7 ps 0.4 lw 2 $lc title '$label'")
	if grep -q '[0-9] [0-9]' "$TMP/$i.lim"; then
		LIMIT+=("'$TMP/$i.lim' using 1:2 with lines lw 2 $lc title '$label limit'")
		if awk '$3 != "NaN" { f = 1 } END { exit !f }' "$TMP/$i.lim"; then
			LIMIT+=("'$TMP/$i.lim' using 1:3 with lines lw 1 dt 2 $lc title '$label in-flight'")
		fi
	fi
	i=$((i + 1))
done
[ "$SECONDS_RUN" -gt 0 ] || SECONDS_RUN=20

join() {
	local IFS=,
	echo "$*"
}
cap_line=""
goodput_max="*"
if [ -n "$CAPACITY" ]; then
	cap_line=", $CAPACITY with lines lc rgb 'black' dt 3 title 'capacity'"
	goodput_max=$((CAPACITY * 6 / 5))
fi
workers_line=""
[ -n "$WORKERS" ] && workers_line=", $WORKERS with lines lc rgb 'black' dt 3 title 'workers'"
[ ${#LIMIT[@]} -gt 0 ] || LIMIT=("NaN notitle")

cat >"$TMP/plot.gp" <<EOF
set terminal pngcairo size 1000,1100 font ",10" noenhanced
set output '$PNG'
set multiplot layout 4,1 title "$TITLE"
set grid
set key outside right top
set xrange [0:$SECONDS_RUN]
set lmargin 10
set rmargin 26
set ylabel 'goodput (ok req/s)'
set yrange [0:$goodput_max]
plot $(join "${GOODPUT[@]}")$cap_line
set ylabel 'high success (%)'
set yrange [0:105]
plot $(join "${HIGH_OK[@]}")
set ylabel 'high p99 (ms)'
set yrange [*:*]
set logscale y
plot $(join "${HIGH_P99[@]}")
unset logscale y
set ylabel 'concurrency'
set yrange [0:*]
set xlabel 'time (s)'
plot $(join "${LIMIT[@]}")$workers_line
unset multiplot
EOF
gnuplot "$TMP/plot.gp"
