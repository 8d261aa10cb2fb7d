#!/usr/bin/env bash
# Measures the agent: CPU (% of one core) and RSS at the default 100 ms
# interval with FLOWS tracked flows (default 1 000 000), the time of one
# sweep of them in the kernel, and how long the limit takes to settle after
# the server's service time doubles. Prints a Markdown table.
#
# The flows are synthetic entries of the pinned flow table, written by
# build/tests/bench_fill (a million real connections do not fit this VM's
# two cores): the agent's sweep walks them like any other.
#
# Usage (root): scripts/measure-agent.sh [FLOWS]
set -u
cd "$(dirname "$0")/.." || exit 1
LOADSHED=${LOADSHED:-$PWD/build/loadshed}
# shellcheck source=tests/lib.sh disable=SC1091
. tests/lib.sh

FLOWS=${1:-1000000}
PORT=8080
TMP=$(mktemp -d /tmp/ls-measure.XXXXXX)
trap 'ls_cleanup; rm -rf "$TMP"' EXIT
testbed_up "ma$$" >/dev/null || exit 1

bg_srv "$LS_TOOLS/ls-server" --listen 10.201.0.1:$PORT --workers 16 --service-ms 20 \
	--admin 10.201.0.1:9090 >"$TMP/server.log" 2>&1
wait_for_line "$TMP/server.log" listening 10 || exit 1

cat >"$TMP/measure.conf" <<END
[agent]
interval = 100ms
idle_timeout = 600s
max_flows = $((FLOWS + FLOWS / 4 + 1024))

[service web]
listen = *:$PORT
algorithm = gradient2
initial_limit = 100
min_limit = 2
max_limit = 100000

[class web.all]
share = 0%
action = reset
match = src 10.201.0.0/16
END
in_srv "$LOADSHED" -vv attach "$SRV_IF" --config "$TMP/measure.conf" \
	--agent-log "$TMP/agent.log" 2>/dev/null || exit 1
_register detach "$SRV_IF" "$SRV_NS"
status() { ls_srv -j status "$SRV_IF"; }
pid=$(status | jq -r .agent.pid)

# --- CPU and RSS with FLOWS tracked -----------------------------------------
in_srv "$LS_ROOT/build/tests/bench_fill" "$SRV_IF" "$FLOWS" >/dev/null || exit 1
flows=$(status | jq -r .flows)
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
sleep 20
t1=$(ticks)
cpu_pct=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz / 20 * 100 }')
rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
sweep_ms=$(grep -o "swept $flows flows in [0-9.]* ms" "$TMP/agent.log" | tail -1 | awk '{print $5}')
sweeps=$(grep -c "swept $flows flows" "$TMP/agent.log")

# --- limit settling after the service time doubles ----------------------------
ls_srv detach "$SRV_IF" >/dev/null
ls_attach "$SRV_IF" --config "$TMP/measure.conf" || exit 1
bg_cli "$LS_TOOLS/ls-loadgen" --duration 28 --seed 3 \
	--class name=all,src=10.201.0.2,target=10.201.0.1:$PORT,rate=320@0,2400@3,deadline_ms=2000 \
	>/dev/null 2>&1
LOAD=$!
start=$(date +%s.%N)
: >"$TMP/limits"
doubled_at=
while [ "$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { print (n - s < 27) }')" = 1 ]; do
	t=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - s }')
	echo "$t $(status | jq -r '.services[0].limit')" >>"$TMP/limits"
	if [ -z "$doubled_at" ] && awk -v t="$t" 'BEGIN { exit !(t >= 12) }'; then
		in_cli curl -s "http://10.201.0.1:9090/admin/service-ms?value=40" >/dev/null
		doubled_at=$t
	fi
	sleep 0.1
done
wait "$LOAD"
# Settled: the first time after the change from which every later sample
# stays within 15 % of the mean of the last 5 s.
settle=$(awk -v d="$doubled_at" '
	{ t[NR] = $1; l[NR] = $2; n = NR }
	END {
		for (i = 1; i <= n; i++) if (t[i] >= t[n] - 5) { s += l[i]; c++ }
		m = s / c
		for (i = n; i >= 1 && t[i] >= d; i--)
			if (l[i] > m * 1.15 || l[i] < m * 0.85) break
		before = 0; bc = 0
		for (j = 1; j <= n; j++) if (t[j] >= d - 3 && t[j] < d) { before += l[j]; bc++ }
		printf "%.1f %d %d", t[i + 1] - d, before / bc, m
	}' "$TMP/limits")
read -r settle_s before_limit after_limit <<<"$settle"

echo "| measure | value |"
echo "|---|---|"
echo "| tracked flows | $flows |"
echo "| agent CPU at 100 ms interval | $cpu_pct % of one core |"
echo "| agent RSS | $((rss_kib / 1024)) MiB ($rss_kib KiB) |"
echo "| one sweep of the flow table, in the kernel | ${sweep_ms:-?} ms ($sweeps sweeps of them logged) |"
echo "| limit before the service time doubles (mean of 3 s) | $before_limit |"
echo "| limit after (mean of the last 5 s) | $after_limit |"
echo "| settling time (within 15 % of the final mean) | $settle_s s |"
cp "$TMP/limits" /tmp/ls-measure-limits.txt
