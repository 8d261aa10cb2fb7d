#!/usr/bin/env bash
# Accounting survives clients that never finish or never say goodbye, and
# the agent's death: half-open flows and abandoned connections leave
# in-flight at exactly 0 after their timeouts; a killed agent makes the
# dataplane fail open; a restarted one resumes from the pinned maps.
# Needs root. The testbed and a holding server are shared; each test
# attaches with short timeouts of its own.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

PORT=8080

setup_suite() {
	testbed_up "sw$$" || return 1
	bg_srv "$LS_TOOLS/ls-server" --listen 10.201.0.1:$PORT --hold >"$LS_TMP/server.log" 2>&1
	wait_for_line "$LS_TMP/server.log" listening 10
}

# attach_short_timeouts: half-open 1 s, idle 2 s, fail-open after 1 s; one
# class for every client.
attach_short_timeouts() {
	cat >"$LS_TMP/sweep.conf" <<END
[agent]
interval = 100ms
half_open_timeout = 1s
idle_timeout = 2s
fail_open_after = 1s

[service web]
listen = *:$PORT
limit = 100

[class web.low]
share = 0%
action = drop
match = src 10.201.0.0/16
END
	check "attach with short timeouts" ls_attach "$SRV_IF" --config "$LS_TMP/sweep.conf"
}

status() { ls_srv -j status "$SRV_IF"; }
inflight() { status | jq -r '.services[0].inflight'; }
wait_inflight() { # wait_inflight N TIMEOUT_S
	for _ in $(seq $(($2 * 10))); do
		[ "$(inflight)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
# Only pure SYNs leave the client: handshakes never complete at the server,
# and FINs and RSTs of killed clients never arrive. Undone when the test ends.
silence_client() {
	in_cli iptables -A OUTPUT -p tcp ! --syn -j DROP
	defer unsilence_client
}
unsilence_client() { in_cli iptables -D OUTPUT -p tcp ! --syn -j DROP 2>/dev/null; }
conns() { # conns COUNT HOLD_S OUTFILE: background holder
	bg_cli "$LS_TOOLS/ls-conn" --target 10.201.0.1:$PORT --src 10.201.0.2 --count "$1" \
		--connect-timeout-ms 1500 --hold-s "$2" >"$3" </dev/null
}

test_half_open_flows_are_swept() {
	local js
	attach_short_timeouts
	silence_client
	conns 10 30 "$LS_TMP/half.out"
	wait_for_line "$LS_TMP/half.out" "^ok=" 15
	check_eq "10 half-open flows are in flight" "$(inflight)" 10
	check "the agent sweeps them within the half-open timeout" wait_inflight 0 6
	js=$(status)
	check_eq "each was ended once, as half-open" "$(jq -r '.services[0].classes[0].ended_half_open' <<<"$js")" 10
	check_eq "the flow table is empty" "$(jq -r '.flows' <<<"$js")" 0
}

# Half-open flows from a raw-socket sender, from addresses no host owns (so
# no RST ever answers the server's SYN-ACKs).
test_raw_syn_half_open_flows_are_swept() {
	attach_short_timeouts
	in_cli "$LS_TOOLS/ls-synflood" --src 10.201.1.0/24 --dst 10.201.0.1:$PORT --count 12 \
		--rate 1000 --duration 5 >/dev/null 2>&1
	check_eq "12 raw SYNs make 12 half-open flows" "$(inflight)" 12
	check "the agent sweeps those too" wait_inflight 0 6
	check_eq "12 flows ended as half-open" \
		"$(status | jq -r '.services[0].classes[0].ended_half_open')" 12
}

# Established flows whose clients die silently.
test_dead_clients_flows_are_swept_when_idle() {
	local js idle
	attach_short_timeouts
	conns 8 30 "$LS_TMP/idle.out"
	idle=$!
	wait_for_line "$LS_TMP/idle.out" "^ok=" 15
	check_eq "8 established flows are in flight" "$(inflight)" 8
	silence_client
	kill -9 "$idle"
	wait "$idle" 2>/dev/null
	sleep 1
	check_eq "a killed client's flows stay in flight while not idle long" "$(inflight)" 8
	check "the agent sweeps them after the idle timeout" wait_inflight 0 8
	js=$(status)
	check_eq "each was ended once, as idle" "$(jq -r '.services[0].classes[0].ended_idle' <<<"$js")" 8
	check_eq "no flow ended twice (FIN/RST counts 0)" \
		"$(jq -r '.services[0].classes[0] | .ended_fin + .ended_rst' <<<"$js")" 0
}

test_dead_agent_fails_open_and_a_new_one_resumes() {
	local js one agent_pid admitted_before
	# A held, silent connection must outlive this test: lengthen the idle timeout.
	attach_short_timeouts
	sed -i 's/^idle_timeout = 2s/idle_timeout = 60s/' "$LS_TMP/sweep.conf"
	check "policy reload lengthens the idle timeout" ls_srv policy "$SRV_IF" reload "$LS_TMP/sweep.conf"
	check "limit set 1" ls_srv limit "$SRV_IF" set 1
	conns 1 60 "$LS_TMP/one.out"
	one=$!
	wait_for_line "$LS_TMP/one.out" "^ok=" 15
	check_eq "one connection holds the only slot" "$(grep '^ok=' "$LS_TMP/one.out" | cut -d' ' -f1)" ok=1
	once() {
		in_cli "$LS_TOOLS/ls-conn" --target 10.201.0.1:$PORT --src 10.201.0.3 --count 1 \
			--connect-timeout-ms 1200 --hold-s 0 </dev/null | grep '^ok=' | cut -d' ' -f1-3
	}
	check_eq "the next is shed (dropped)" "$(once)" "ok=0 refused=0 timeout=1"

	agent_pid=$(status | jq -r '.agent.pid')
	admitted_before=$(status | jq -r '.services[0].classes[0].admitted')
	kill -9 "$agent_pid"
	sleep 1.5
	js=$(status)
	check_eq "with the agent dead, status says fail-open" "$(jq -r '.agent.fail_open' <<<"$js")" true
	check_eq "a stale heartbeat admits past the limit" "$(once)" "ok=1 refused=0 timeout=0"
	check_cmp "fail_open is counted" "$(status | jq -r '.services[0].classes[0].fail_open')" -ge 1

	bg_srv "$LOADSHED" -v agent "$SRV_IF" 2>"$LS_TMP/agent.log"
	for _ in $(seq 30); do
		[ "$(status | jq -r '.agent.fail_open')" = false ] && break
		sleep 0.1
	done
	js=$(status)
	check_eq "a restarted agent refreshes the heartbeat" "$(jq -r '.agent.fail_open' <<<"$js")" false
	check_eq "and keeps the pinned limit" "$(jq -r '.services[0].limit' <<<"$js")" 1
	check_cmp "and the counters" "$(jq -r '.services[0].classes[0].admitted' <<<"$js")" -ge "$admitted_before"
	check_eq "enforcement resumes" "$(once)" "ok=0 refused=0 timeout=1"
	kill "$one"
	wait "$one" 2>/dev/null
	check "closing the last connection brings in-flight to 0" wait_inflight 0 5
}

require_root
require_cmds jq iptables nsenter ip
suite_setup setup_suite
run_test "half-open flows are swept" test_half_open_flows_are_swept
run_test "raw-SYN half-open flows are swept" test_raw_syn_half_open_flows_are_swept
run_test "dead clients' flows are swept when idle" test_dead_clients_flows_are_swept_when_idle
run_test "a dead agent fails open and a new one resumes" test_dead_agent_fails_open_and_a_new_one_resumes
tap_done
