#!/usr/bin/env bash
# Accounting survives clients that never finish or never say goodbye, and
# the agent's death: half-open flows and abandoned connections leave
# in-flight at exactly 0 after their timeouts; a killed agent makes the
# dataplane fail open; a restarted one resumes from the pinned maps.
set -u
. "$(dirname "$0")/../lib.sh"

testbed_up "sw$$" || { not_ok "testbed comes up"; tap_done; exit 1; }
PORT=8080
TMP=$(mktemp -d /tmp/ls-sweep.XXXXXX)
cleanup() {
	in_cli iptables -D OUTPUT -p tcp ! --syn -j DROP 2>/dev/null
	ls_cleanup
	rm -rf "$TMP"
}
trap cleanup EXIT

bg_srv "$LS_TOOLS/ls-server" --listen 10.201.0.1:$PORT --hold >"$TMP/server.log" 2>&1
wait_for_line "$TMP/server.log" listening 10 || not_ok "server starts"

cat >"$TMP/sweep.conf" <<END
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
check "attach with short timeouts" ls_attach "$SRV_IF" --config "$TMP/sweep.conf"

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
# and FINs and RSTs of killed clients never arrive.
silence_client() { in_cli iptables -A OUTPUT -p tcp ! --syn -j DROP; }
unsilence_client() { in_cli iptables -D OUTPUT -p tcp ! --syn -j DROP; }
conns() { # conns COUNT HOLD_S OUTFILE: background holder
	bg_cli "$LS_TOOLS/ls-conn" --target 10.201.0.1:$PORT --src 10.201.0.2 --count "$1" \
		--connect-timeout-ms 1500 --hold-s "$2" >"$3" </dev/null
}

# --- half-open flows --------------------------------------------------------
silence_client
conns 10 30 "$TMP/half.out"
HALF=$!
wait_for_line "$TMP/half.out" "^ok=" 15
check_eq "10 half-open flows are in flight" "$(inflight)" 10
check "the agent sweeps them within the half-open timeout" wait_inflight 0 6
js=$(status)
check_eq "each was ended once, as half-open" "$(jq -r '.services[0].classes[0].ended_half_open' <<<"$js")" 10
check_eq "the flow table is empty" "$(jq -r '.flows' <<<"$js")" 0
kill -9 "$HALF" 2>/dev/null
wait "$HALF" 2>/dev/null
unsilence_client

# Half-open flows from a raw-socket sender, from addresses no host owns (so
# no RST ever answers the server's SYN-ACKs).
in_cli "$LS_TOOLS/ls-synflood" --src 10.201.1.0/24 --dst 10.201.0.1:$PORT --count 12 \
	--rate 1000 --duration 5 >/dev/null 2>&1
check_eq "12 raw SYNs make 12 half-open flows" "$(inflight)" 12
check "the agent sweeps those too" wait_inflight 0 6
check_eq "22 flows ended as half-open in all" \
	"$(status | jq -r '.services[0].classes[0].ended_half_open')" 22

# --- established flows whose clients die silently ---------------------------
conns 8 30 "$TMP/idle.out"
IDLE=$!
wait_for_line "$TMP/idle.out" "^ok=" 15
check_eq "8 established flows are in flight" "$(inflight)" 8
silence_client
kill -9 "$IDLE"
wait "$IDLE" 2>/dev/null
sleep 1
check_eq "a killed client's flows stay in flight while not idle long" "$(inflight)" 8
check "the agent sweeps them after the idle timeout" wait_inflight 0 8
js=$(status)
check_eq "each was ended once, as idle" "$(jq -r '.services[0].classes[0].ended_idle' <<<"$js")" 8
check_eq "no flow ended twice (FIN/RST counts 0)" \
	"$(jq -r '.services[0].classes[0] | .ended_fin + .ended_rst' <<<"$js")" 0
unsilence_client

# --- fail-open and restart ----------------------------------------------------
# A held, silent connection must outlive this part: lengthen the idle timeout.
sed -i 's/^idle_timeout = 2s/idle_timeout = 60s/' "$TMP/sweep.conf"
check "policy reload lengthens the idle timeout" ls_srv policy "$SRV_IF" reload "$TMP/sweep.conf"
check "limit set 1" ls_srv limit "$SRV_IF" set 1
conns 1 60 "$TMP/one.out"
ONE=$!
wait_for_line "$TMP/one.out" "^ok=" 15
check_eq "one connection holds the only slot" "$(grep '^ok=' "$TMP/one.out" | cut -d' ' -f1)" ok=1
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

bg_srv "$LOADSHED" -v agent "$SRV_IF" 2>"$TMP/agent.log"
for _ in $(seq 30); do
	[ "$(status | jq -r '.agent.fail_open')" = false ] && break
	sleep 0.1
done
js=$(status)
check_eq "a restarted agent refreshes the heartbeat" "$(jq -r '.agent.fail_open' <<<"$js")" false
check_eq "and keeps the pinned limit" "$(jq -r '.services[0].limit' <<<"$js")" 1
check_cmp "and the counters" "$(jq -r '.services[0].classes[0].admitted' <<<"$js")" -ge "$admitted_before"
check_eq "enforcement resumes" "$(once)" "ok=0 refused=0 timeout=1"
kill "$ONE"
wait "$ONE" 2>/dev/null
check "closing the last connection brings in-flight to 0" wait_inflight 0 5

tap_done
