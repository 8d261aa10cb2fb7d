#!/usr/bin/env bash
# Scraping must not slow the control loop (doc/design.md §7.7). On a
# testbed of its own, with the release build and connections at about the
# server's capacity, measures the agent twice for SECONDS (default 10):
# without scrapers, then with SCRAPERS (default 50) concurrent scrapers of
# /metrics (curl --parallel, each connection a scraper, bounded in time and
# count). For each phase: the agent's CPU (utime + stime from
# /proc/PID/stat), the largest heartbeat age `status -j` saw (sampled every
# 50 ms: the heartbeat must never stall past one interval, 100 ms) and the
# scrapes served. Writes results/bench-metrics/RESULTS.md and prints it.
#
# Usage: scripts/bench-metrics.sh        (make bench-metrics; root)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$ROOT/scripts/testbed.sh"

SECONDS_PER_PHASE=${SECONDS_PER_PHASE:-10}
SCRAPERS=${SCRAPERS:-50}
MPORT=9542
OUT=$ROOT/results/bench-metrics
TMP=$(mktemp -d /tmp/ls-bench-metrics.XXXXXX)

tb_names "bm$$"
cleanup() {
	tb_down >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT
tb_up >/dev/null
mkdir -p "$OUT"

cat >"$TMP/m.conf" <<CONF
[agent]
interval = 100ms
metrics = 127.0.0.1:$MPORT

[service web]
listen = *:$TB_PORT

[class web.high]
share = 50%
action = reset
match = src $TB_HIGH_IP/32

[class web.low]
share = 0%
action = reset
match = src $TB_LOW_IP/32
CONF

tb_spawn server srv "$TMP/server.log" "$TB_TOOLS/ls-server" --listen "$TB_SRV_IP:$TB_PORT" \
	--workers 16 --service-ms 40
sleep 0.5
tb_ls attach "$SRV_IF" --config "$TMP/m.conf" >/dev/null
AGENT=$(tb_ls -j status "$SRV_IF" | jq -r .agent.pid)
# About the server's capacity (16 / 40 ms = 400/s), both phases and a little more.
tb_spawn load cli "$TMP/load.log" "$TB_TOOLS/ls-loadgen" --duration $((2 * SECONDS_PER_PHASE + 8)) \
	--class "name=high,src=$TB_HIGH_IP,target=$TB_SRV_IP:$TB_PORT,rate=100,deadline_ms=1000" \
	--class "name=low,src=$TB_LOW_IP,target=$TB_SRV_IP:$TB_PORT,rate=300,deadline_ms=1000"
sleep 3

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$AGENT/stat"; }

# sample_heartbeat SECS: the largest heartbeat age (ms) seen, every 50 ms.
sample_heartbeat() {
	local end=$((SECONDS + $1)) max=0 age n=0
	while [ $SECONDS -lt $end ] && [ $n -lt 100000 ]; do
		age=$(tb_ls -j status "$SRV_IF" | jq -r '.agent.heartbeat_age_ms // 0')
		[ "$age" -gt "$max" ] && max=$age
		n=$((n + 1))
		sleep 0.05
	done
	echo "$max $n"
}

# scrapers SECS: SCRAPERS connections scraping /metrics at once until SECS
# pass; prints the scrapes answered 200. Each round is at most 20 scrapes
# per connection.
scrapers() {
	local end=$((SECONDS + $1)) ok=0 n
	for i in $(seq 20); do echo "url = \"http://127.0.0.1:$MPORT/metrics\""; done >"$TMP/urls"
	for i in $(seq "$SCRAPERS"); do cat "$TMP/urls"; done >"$TMP/urls.all"
	while [ $SECONDS -lt $end ]; do
		n=$(tb_srv curl -s --no-progress-meter -m 5 --parallel --parallel-immediate --parallel-max "$SCRAPERS" \
			-K "$TMP/urls.all" -o /dev/null -w '%{http_code}\n' 2>/dev/null | grep -c '^200$' || true)
		ok=$((ok + n))
	done
	echo "$ok"
}

# phase NAME SCRAPE(0|1): "name cpu_pct max_age_ms samples scrapes"
phase() {
	local t0 t1 hb scraped=0 spid
	t0=$(cpu_ticks)
	if [ "$2" = 1 ]; then
		scrapers "$SECONDS_PER_PHASE" >"$TMP/scraped" &
		spid=$!
	fi
	hb=$(sample_heartbeat "$SECONDS_PER_PHASE")
	if [ "$2" = 1 ]; then
		wait "$spid"
		scraped=$(cat "$TMP/scraped")
	fi
	t1=$(cpu_ticks)
	echo "$1 $(awk -v d=$((t1 - t0)) -v s="$SECONDS_PER_PHASE" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f", 100 * d / hz / s }') $hb $scraped"
}

read -r _ cpu0 age0 n0 _ < <(phase idle 0)
read -r _ cpu1 age1 n1 scraped < <(phase scraped 1)
page=$(tb_srv curl -s "http://127.0.0.1:$MPORT/metrics" | wc -c)

{
	echo "# Metrics endpoint under scraping"
	echo
	echo "$(date -u +%F), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)," \
		"$(nproc) CPUs, release build, interval 100 ms, ~400 connections/s at a server of" \
		"capacity 400/s, page $page bytes; $SECONDS_PER_PHASE s per phase."
	echo
	echo "| phase | agent CPU (% of a core) | max heartbeat age seen | status samples | scrapes served |"
	echo "|---|---:|---:|---:|---:|"
	echo "| no scraper | $cpu0 | $age0 ms | $n0 | 0 |"
	echo "| $SCRAPERS concurrent scrapers | $cpu1 | $age1 ms | $n1 | $scraped ($((scraped / SECONDS_PER_PHASE))/s) |"
} | tee "$OUT/RESULTS.md"
