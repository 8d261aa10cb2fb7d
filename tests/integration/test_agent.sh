#!/usr/bin/env bash
# The agent adapts the limit to a real server: under load above capacity the
# limit falls toward the server's concurrency; when the service time doubles
# it falls further; when the service time returns it recovers. Asserts
# directions and wide bounds, never timings. Also: live algorithm change,
# SIGHUP reload, and the agent refusing a second copy of itself.
# Needs root. The testbed is shared; each test attaches its own agent.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

PORT=8080
WORKERS=16
SERVICE_MS=20 # capacity: 16 / 20 ms = 800 requests/s

# attach_agent: gradient2 from an initial limit of 100, one class for every
# client; the config is $LS_TMP/agent.conf.
attach_agent() {
	cat >"$LS_TMP/agent.conf" <<EOF
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
	check "attach with the gradient2 agent" ls_attach "$SRV_IF" --config "$LS_TMP/agent.conf"
}

# hi_conf LINE: a config with LINE in [service web] and a class hi, a 50 % share, for 10.201.0.2.
hi_conf() {
	cat <<EOF
[agent]
interval = 100ms

[service web]
listen = *:$PORT
$1

[class web.hi]
share = 50%
action = reset
match = src 10.201.0.2/32
EOF
}

# The test's server: $WORKERS workers of $SERVICE_MS ms, its admin port on 9090.
start_server() {
	bg_srv "$LS_TOOLS/ls-server" --listen 10.201.0.1:$PORT --workers $WORKERS \
		--service-ms $SERVICE_MS --admin 10.201.0.1:9090 >"$LS_TMP/server.log" 2>&1
	wait_for_line "$LS_TMP/server.log" listening 10 || { not_ok "server starts"; return 1; }
}
status_field() { ls_srv -j status "$SRV_IF" | jq -r "$1"; }
limit() { status_field '.services[0].limit'; }
set_service_ms() { in_cli curl -s "http://10.201.0.1:9090/admin/service-ms?value=$1" >/dev/null; }

# Samples the limit 4 times a second: "t_s limit".
sample_limits() {
	local start=$SECONDS
	while [ $((SECONDS - start)) -lt "$1" ]; do
		echo "$((SECONDS - start)) $(limit)"
		sleep 0.25
	done
}
# mean of the limits sampled in [from, to) seconds
mean_limit() { awk -v a="$1" -v b="$2" '$1 >= a && $1 < b { s += $2; n++ } END { if (n) printf "%d", s / n }' "$LS_TMP/limits"; }

# At 9 s the service time doubles; at 14 s it is back.
change_service_time() {
	sleep 9
	set_service_ms $((SERVICE_MS * 2))
	sleep 5
	set_service_ms $SERVICE_MS
}

test_limit_follows_the_servers_capacity() {
	local load overload doubled recovered lat
	start_server || return 1
	attach_agent

	# 3 s at 40 % of capacity (the agent learns the no-load latency), then 3x.
	bg_cli "$LS_TOOLS/ls-loadgen" --duration 19 --seed 7 \
		--class name=all,src=10.201.0.2,target=10.201.0.1:$PORT,rate=320@0,2400@3,deadline_ms=2000 \
		--json "$LS_TMP/load.json" >"$LS_TMP/load.out" 2>&1
	load=$!
	bg_host change_service_time
	sample_limits 20 >"$LS_TMP/limits"
	wait "$load"

	overload=$(mean_limit 7 9)
	doubled=$(mean_limit 12 14)
	recovered=$(mean_limit 17 19)
	echo "# limit: initial 100, overload $overload, service time doubled $doubled, recovered $recovered"
	check_cmp "under 3x overload the limit falls from its initial 100" "$overload" -lt 80
	check_cmp "under overload the limit nears the server's concurrency (<= 3 x $WORKERS)" "$overload" -le $((3 * WORKERS))
	check_cmp "the limit stays above the floor" "$overload" -ge 2
	check_cmp "when the service time doubles the limit falls" "$doubled" -lt "$overload"
	check_cmp "when the service time returns the limit recovers" "$recovered" -gt "$doubled"
	lat=$(status_field '.services[0].classes[0].latency.count')
	check_cmp "the dataplane measured latency samples" "$lat" -gt 1000
}

# An algorithm that probes the no-load latency (envoy, delay), with its
# defaults only: the agent pins the limit for a probe and has the dataplane
# record the requests admitted since, the probe measures, and under 3x
# overload the limit stays near the server's concurrency. $1: the algorithm.
probing_algorithm() {
	local algo=$1 load overload rtt log=$LS_TMP/probe-agent.log
	hi_conf "algorithm = $algo" >"$LS_TMP/probe.conf"
	start_server || return 1
	check "attach with $algo and its defaults, no agent" \
		ls_attach "$SRV_IF" --config "$LS_TMP/probe.conf" --no-agent
	bg_srv "$LOADSHED" -v agent "$SRV_IF" 2>"$log"
	wait_for_line "$log" "agent running" 10 || { not_ok "the agent runs"; return 1; }
	bg_cli "$LS_TOOLS/ls-loadgen" --duration 12 --seed 7 \
		--class name=all,src=10.201.0.2,target=10.201.0.1:$PORT,rate=320@0,2400@3,deadline_ms=2000 \
		--json "$LS_TMP/load.json" >"$LS_TMP/load.out" 2>&1
	load=$!
	sample_limits 12 >"$LS_TMP/limits"
	wait "$load"
	overload=$(mean_limit 8 12)
	echo "# $algo: limit under 3x overload $overload"
	check "a probe began with the limit pinned" \
		grep -q "service web: probing the no-load latency: limit [0-9]* for [0-9]* requests" "$log"
	check "and measured the no-load latency from the requests admitted since" \
		grep -q "service web: probe done (measured)" "$log"
	rtt=$(grep -o "probe done (measured): no-load latency [0-9.]* ms" "$log" | head -n1 |
		awk '{ print int($6) }')
	# The histogram's buckets are 12.5 % wide: the service time, to a bucket.
	check_cmp "the no-load latency is the service time ($SERVICE_MS ms), not less" \
		"${rtt:-0}" -ge $((SERVICE_MS * 7 / 8))
	check_cmp "under 3x overload the limit stays near the server's concurrency (<= 3 x $WORKERS)" \
		"${overload:-0}" -le $((3 * WORKERS))
	check_cmp "and above the floor" "${overload:-0}" -ge 2
}

test_envoy_probes_the_no_load_latency() { probing_algorithm envoy; }
test_delay_probes_the_no_load_latency() { probing_algorithm delay; }

# A class within its share has its bursts covered: with L pinned at 20 and a
# 50 % share (10), short requests at 300/s hold about 6 in flight, moving by
# a few each round, and its guarantee rises above 10 (at most the cap,
# ceil(10 + 3.5 sqrt(10)) = 22). At 1600/s, twice the server's capacity, its
# demand exceeds the share and the guarantee is the share again.
test_guarantee_covers_the_bursts_of_a_class_within_its_share() {
	local load start within over
	hi_conf "limit = 20" >"$LS_TMP/cover.conf"
	start_server || return 1
	check "attach with a pinned limit of 20 and the agent" \
		ls_attach "$SRV_IF" --config "$LS_TMP/cover.conf"
	bg_cli "$LS_TOOLS/ls-loadgen" --duration 14 --seed 5 \
		--class name=hi,src=10.201.0.2,target=10.201.0.1:$PORT,rate=300@0,1600@7,deadline_ms=2000 \
		>"$LS_TMP/load.out" 2>&1
	load=$!
	start=$SECONDS
	while [ $((SECONDS - start)) -lt 14 ]; do
		echo "$((SECONDS - start)) $(status_field '.services[0].classes[] | select(.name == "hi") | .guarantee')"
		sleep 0.25
	done >"$LS_TMP/guarantees"
	wait "$load"
	within=$(awk '$1 >= 2 && $1 < 7 && $2 > m { m = $2 } END { print m + 0 }' "$LS_TMP/guarantees")
	# A sample whose status read failed (empty) says nothing either way.
	over=$(awk '$1 >= 11 && $1 < 14 && NF == 2 { print $2 }' "$LS_TMP/guarantees" |
		sort -u | tr '\n' ' ')
	echo "# guarantee within the share: at most $within; over it: $over"
	check_cmp "within its share the class's bursts are covered: guarantee above the share's 10" \
		"$within" -gt 10
	check_cmp "and no more than the cap of a Poisson stream filling the share (22)" "$within" -le 22
	check_eq "over its share the class is guaranteed its share: 10" "$over" "10 "
}

# Live algorithm change: the agent takes it at its next round, from the current limit.
test_live_algorithm_change() {
	attach_agent
	check "limit algo switches to aimd with parameters" ls_srv limit "$SRV_IF" algo aimd backoff_ratio=0.8
	check_eq "status shows the new algorithm" "$(status_field '.services[0].algorithm')" aimd
	ls_srv limit "$SRV_IF" algo aimd backoff_ratio=2 >/dev/null 2>&1
	check_eq "a bad parameter is a usage error" "$?" 2
	check_eq "and changes nothing" "$(status_field '.services[0].params')" backoff_ratio=0.8
}

# SIGHUP reloads the config file attach was given.
test_sighup_reloads_the_config() {
	local pid
	attach_agent
	check_eq "the class's share is 0 %" "$(status_field '.services[0].classes[0].share_pct')" 0
	sed -i 's/^share = 0%/share = 50%/' "$LS_TMP/agent.conf"
	pid=$(status_field '.agent.pid')
	kill -HUP "$pid"
	for _ in $(seq 30); do
		[ "$(status_field '.services[0].classes[0].share_pct')" = 50 ] && break
		sleep 0.1
	done
	check_eq "SIGHUP reloads the config" "$(status_field '.services[0].classes[0].share_pct')" 50
}

test_second_agent_is_refused() {
	attach_agent
	# Bounded: a second agent that wrongly ran would never return.
	in_srv timeout 10 "$LOADSHED" agent "$SRV_IF" >/dev/null 2>&1
	check_eq "a second agent on the same interface is refused" "$?" 1
}

# An agent started by a prefix of the command ("ag") is recognised as one.
test_abbreviated_agent_is_recognised() {
	local pid
	check "attach without an agent" ls_attach "$SRV_IF" --port $PORT --no-agent
	bg_srv "$LOADSHED" -v ag "$SRV_IF" 2>"$LS_TMP/agent.log"
	pid=$!
	wait_for_line "$LS_TMP/agent.log" "agent running" 10
	in_srv timeout 10 "$LOADSHED" agent "$SRV_IF" >/dev/null 2>&1
	check_eq "a second agent beside 'loadshed -v ag IFACE' is refused" "$?" 1
	check_eq "the first one stays the interface's agent" "$(status_field '.agent.pid')" "$pid"
}

require_root
require_cmds jq curl nsenter ip
suite_setup testbed_up "ag$$"
run_test "the limit follows the server's capacity" test_limit_follows_the_servers_capacity
run_test "envoy probes the no-load latency" test_envoy_probes_the_no_load_latency
run_test "delay probes the no-load latency" test_delay_probes_the_no_load_latency
run_test "a guarantee covers the bursts of a class within its share" \
	test_guarantee_covers_the_bursts_of_a_class_within_its_share
run_test "a live algorithm change takes effect" test_live_algorithm_change
run_test "SIGHUP reloads the config" test_sighup_reloads_the_config
run_test "a second agent is refused" test_second_agent_is_refused
run_test "an agent started by a prefix is recognised" test_abbreviated_agent_is_recognised
tap_done
