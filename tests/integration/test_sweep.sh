#!/usr/bin/env bash
# Accounting survives clients that never finish or never say goodbye, and
# the agent's death: handshakes that never complete and spoofed SYNs hold
# nothing at all; abandoned connections leave in-flight at exactly 0 after
# the idle timeout, and a request whose client stalls gives its slot back
# after the stall timeout (both swept in the kernel by the agent's tick); a
# killed agent makes the dataplane fail open; a restarted one resumes from
# the pinned maps.
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

# attach_short_timeouts [ADMIT]: idle 2 s, stall 1 s, fail-open after 1 s;
# one class for every client.
attach_short_timeouts() {
	cat >"$LS_TMP/sweep.conf" <<END
[agent]
interval = 100ms
idle_timeout = 2s
stall_timeout = 1s
fail_open_after = 1s

[service web]
listen = *:$PORT
limit = 100
admit = ${1:-connections}

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

# Connections whose handshake never completes: the client's ACKs never
# leave, so the server only ever saw SYNs.
test_handshakes_that_never_complete_hold_nothing() {
	local js
	attach_short_timeouts
	silence_client
	conns 10 30 "$LS_TMP/half.out"
	wait_for_line "$LS_TMP/half.out" "^ok=" 15
	js=$(status)
	check_eq "10 SYNs were seen" "$(jq -r '.services[0].classes[0].syns' <<<"$js")" 10
	check_eq "none holds a slot" "$(jq -r '.services[0].inflight' <<<"$js")" 0
	check_eq "none is in the flow table" "$(jq -r '.flows' <<<"$js")" 0
	check_eq "no handshake completed" "$(jq -r '.services[0].classes[0].handshakes' <<<"$js")" 0
}

# SYNs from a raw-socket sender, from addresses no host owns (spoofed: no
# ACK ever answers the server's SYN-ACKs).
test_spoofed_syns_hold_nothing() {
	local js
	attach_short_timeouts
	in_cli "$LS_TOOLS/ls-synflood" --src 10.201.1.0/24 --dst 10.201.0.1:$PORT --count 200 \
		--rate 1000 --duration 5 >/dev/null 2>&1
	js=$(status)
	check_eq "200 spoofed SYNs were seen" "$(jq -r '.services[0].classes[0].syns' <<<"$js")" 200
	check_eq "they hold no slot" "$(jq -r '.services[0].inflight' <<<"$js")" 0
	check_eq "and no flow" "$(jq -r '.flows' <<<"$js")" 0
}

# A request whose client sends half of it and stalls (admit = requests).
test_a_stalled_request_gives_its_slot_back() {
	local js
	attach_short_timeouts requests
	# The sweep runs every second or more, so a stall is released 1-2 s
	# after it began: an idle timeout of 2 s would race it.
	sed -i 's/^idle_timeout = 2s/idle_timeout = 60s/' "$LS_TMP/sweep.conf"
	check "policy reload lengthens the idle timeout" ls_srv policy "$SRV_IF" reload "$LS_TMP/sweep.conf"
	# Half a request line, then nothing: the server waits for the rest.
	bg_cli bash -c "exec 3<>/dev/tcp/10.201.0.1/$PORT; printf 'GET / HTTP/1.1\r\n' >&3; sleep 20"
	for _ in $(seq 30); do
		[ "$(inflight)" = 1 ] && break
		sleep 0.1
	done
	check_eq "the half request holds a slot" "$(inflight)" 1
	check "the sweep releases it after the stall timeout" wait_inflight 0 5
	js=$(status)
	check_eq "counted as stalled" "$(jq -r '.services[0].classes[0].stalled' <<<"$js")" 1
	check_eq "the connection is still tracked" "$(jq -r '.services[0].connections' <<<"$js")" 1
}

# Established flows whose clients die silently.
test_dead_clients_flows_are_swept_when_idle() {
	local js idle
	attach_short_timeouts
	# Long enough that a slow machine checks the flows before they are idle.
	sed -i 's/^idle_timeout = 2s/idle_timeout = 5s/' "$LS_TMP/sweep.conf"
	check "policy reload sets a 5 s idle timeout" ls_srv policy "$SRV_IF" reload "$LS_TMP/sweep.conf"
	conns 8 30 "$LS_TMP/idle.out"
	idle=$!
	wait_for_line "$LS_TMP/idle.out" "^ok=" 15
	check_eq "8 established flows are in flight" "$(inflight)" 8
	silence_client
	kill -9 "$idle"
	wait "$idle" 2>/dev/null
	sleep 1
	check_eq "a killed client's flows stay in flight while not idle long" "$(inflight)" 8
	check "the agent sweeps them after the idle timeout" wait_inflight 0 12
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
run_test "handshakes that never complete hold nothing" test_handshakes_that_never_complete_hold_nothing
run_test "spoofed SYNs hold nothing" test_spoofed_syns_hold_nothing
run_test "a stalled request gives its slot back" test_a_stalled_request_gives_its_slot_back
run_test "dead clients' flows are swept when idle" test_dead_clients_flows_are_swept_when_idle
run_test "a dead agent fails open and a new one resumes" test_dead_agent_fails_open_and_a_new_one_resumes
tap_done
