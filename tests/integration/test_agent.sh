#!/usr/bin/env bash
# The agent adapts the limit to a real server: under load above capacity the
# limit falls toward the server's concurrency; when the service time doubles
# it falls further; when the service time returns it recovers. Asserts
# directions and wide bounds, never timings. Also: live algorithm change,
# SIGHUP reload, and the agent refusing a second copy of itself.
set -u
. "$(dirname "$0")/../lib.sh"

testbed_up "ag$$" || { not_ok "testbed comes up"; tap_done; exit 1; }
PORT=8080
WORKERS=16
SERVICE_MS=20 # capacity: 16 / 20 ms = 800 requests/s
TMP=$(mktemp -d /tmp/ls-agent.XXXXXX)
trap 'ls_cleanup; rm -rf "$TMP"' EXIT

bg_srv "$LS_TOOLS/ls-server" --listen 10.201.0.1:$PORT --workers $WORKERS --service-ms $SERVICE_MS \
	--admin 10.201.0.1:9090 >"$TMP/server.log" 2>&1
wait_for_line "$TMP/server.log" listening 10 || not_ok "server starts"

cat >"$TMP/agent.conf" <<EOF
[agent]
interval = 100ms

[service web]
listen = *:$PORT
algorithm = gradient2
initial_limit = 100
min_limit = 2
max_limit = 400

[class web.all]
share = 0%
action = reset
match = src 10.201.0.0/24
EOF
check "attach with the gradient2 agent" ls_attach "$SRV_IF" --config "$TMP/agent.conf"

limit() { ls_srv -j status "$SRV_IF" | jq -r '.services[0].limit'; }
set_service_ms() { in_cli curl -s "http://10.201.0.1:9090/admin/service-ms?value=$1" >/dev/null; }

# Samples the limit 4 times a second into $TMP/limits: "t_s limit".
sample_limits() {
	local start=$SECONDS
	while [ $((SECONDS - start)) -lt "$1" ]; do
		echo "$((SECONDS - start)) $(limit)"
		sleep 0.25
	done
}
# mean of the limits sampled in [from, to) seconds
mean_limit() { awk -v a="$1" -v b="$2" '$1 >= a && $1 < b { s += $2; n++ } END { if (n) printf "%d", s / n }' "$TMP/limits"; }

# 3 s at 40 % of capacity (the agent learns the no-load latency), then 3x.
bg_cli "$LS_TOOLS/ls-loadgen" --duration 19 --seed 7 \
	--class name=all,src=10.201.0.2,target=10.201.0.1:$PORT,rate=320@0,2400@3,deadline_ms=2000 \
	--json "$TMP/load.json" >"$TMP/load.out" 2>&1
LOAD=$!
( sleep 9; set_service_ms $((SERVICE_MS * 2)); sleep 5; set_service_ms $SERVICE_MS ) &
LS_PIDS+=($!)
sample_limits 20 >"$TMP/limits"
wait "$LOAD"

overload=$(mean_limit 7 9)
doubled=$(mean_limit 12 14)
recovered=$(mean_limit 17 19)
echo "# limit: initial 100, overload $overload, service time doubled $doubled, recovered $recovered"
check_cmp "under 3x overload the limit falls from its initial 100" "$overload" -lt 80
check_cmp "under overload the limit nears the server's concurrency (<= 3 x $WORKERS)" "$overload" -le $((3 * WORKERS))
check_cmp "the limit stays above the floor" "$overload" -ge 2
check_cmp "when the service time doubles the limit falls" "$doubled" -lt "$overload"
check_cmp "when the service time returns the limit recovers" "$recovered" -gt "$doubled"
lat=$(ls_srv -j status "$SRV_IF" | jq -r '.services[0].classes[0].latency.count')
check_cmp "the dataplane measured latency samples" "$lat" -gt 1000

# Live algorithm change: the agent takes it at its next round, from the current limit.
check "limit algo switches to aimd with parameters" ls_srv limit "$SRV_IF" algo aimd backoff_ratio=0.8
check_eq "status shows the new algorithm" "$(ls_srv -j status "$SRV_IF" | jq -r '.services[0].algorithm')" aimd
ls_srv limit "$SRV_IF" algo aimd backoff_ratio=2 >/dev/null 2>&1
check_eq "a bad parameter is a usage error" "$?" 2
check_eq "and changes nothing" "$(ls_srv -j status "$SRV_IF" | jq -r '.services[0].params')" backoff_ratio=0.8

# SIGHUP reloads the config file attach was given.
sed -i 's/^share = 0%/share = 50%/' "$TMP/agent.conf"
pid=$(ls_srv -j status "$SRV_IF" | jq -r '.agent.pid')
kill -HUP "$pid"
for _ in $(seq 30); do
	[ "$(ls_srv -j status "$SRV_IF" | jq -r '.services[0].classes[0].share_pct')" = 50 ] && break
	sleep 0.1
done
check_eq "SIGHUP reloads the config" "$(ls_srv -j status "$SRV_IF" | jq -r '.services[0].classes[0].share_pct')" 50

ls_srv agent "$SRV_IF" >/dev/null 2>&1
check_eq "a second agent on the same interface is refused" "$?" 1

tap_done
