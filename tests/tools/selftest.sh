#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of the test tools on loopback (127.0.0.1 and ::1), in under 20 s.
# Prints TAP. Asserts only wide-margin outcomes, never absolute timings.
# The raw-socket checks run in a private network namespace and are skipped
# without root.
#
# Usage: tests/tools/selftest.sh [TOOLS_DIR]   (default build/tools)

set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${1:-$ROOT/build/tools}
TMP=$(mktemp -d /tmp/ls-tools-selftest.XXXXXX)
PIDS=()
N=0
FAILED=0

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

tap() { # tap NAME CONDITION-STATUS [DIAG]
	N=$((N + 1))
	if [ "$2" -eq 0 ]; then
		echo "ok $N - $1"
	else
		echo "not ok $N - $1"
		FAILED=$((FAILED + 1))
		[ -n "${3:-}" ] && echo "# $3"
	fi
}

skip() {
	N=$((N + 1))
	echo "ok $N - $1 # SKIP $2"
}

# jqv FILE FILTER: one value from a JSON file.
jqv() { jq -r "$2" "$1"; }

# ge A B: A >= B, as numbers.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# start_server NAME ARGS...: starts ls-server, waits for its listening line.
start_server() {
	local name=$1
	shift
	# The background job opens its output file only once it has forked:
	# create it first, or the first grep below may not find it.
	: >"$TMP/$name.out"
	"$TOOLS/ls-server" "$@" >"$TMP/$name.out" 2>&1 &
	PIDS+=($!)
	eval "${name}_PID=$!"
	for _ in $(seq 50); do
		grep -q '^listening' "$TMP/$name.out" && return 0
		sleep 0.1
	done
	return 1
}

# port_of NAME FAMILY: the port of the first listener of that family (4 or 6).
port_of() {
	if [ "$2" = 4 ]; then
		head -1 "$TMP/$1.out" | grep -o '127\.0\.0\.1:[0-9]*' | head -1 | cut -d: -f2
	else
		head -1 "$TMP/$1.out" | grep -o '\[::1\]:[0-9]*' | head -1 | sed 's/.*://'
	fi
}

stop_server() { # stop_server NAME: SIGTERM and wait; returns its exit status
	local pid
	eval "pid=\$${1}_PID"
	kill "$pid" 2>/dev/null
	wait "$pid"
}

# http_get HOST:PORT PATH: the body of a GET, without curl.
http_get() {
	local body
	exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || return 1
	printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$2" >&3
	body=$(timeout 2 cat <&3)
	exec 3<&-
	printf '%s' "${body#*$'\r\n\r\n'}"
}

loadgen() { timeout 30 "$TOOLS/ls-loadgen" --seed 7 "$@" >>"$TMP/loadgen.log" 2>&1; }

echo "1..14"

for t in ls-server ls-loadgen ls-conn ls-synflood; do
	if [ ! -x "$TOOLS/$t" ]; then
		echo "Bail out! $TOOLS/$t missing (make build/tools/$t)"
		exit 1
	fi
done
command -v jq >/dev/null || {
	echo "Bail out! jq is required"
	exit 1
}

# --- ls-server (W=4, S=10 ms: capacity 400 requests/s) ---
start_server srv -l 127.0.0.1:0 -l '[::1]:0' -w 4 -s 10 -a 127.0.0.1:0
tap "server_prints_listening_line" $?
P4=$(port_of srv 4)
P6=$(port_of srv 6)
ADMIN=$(head -1 "$TMP/srv.out" | sed -n 's/.*admin=\([^ ]*\).*/\1/p')

# --- ls-loadgen against it ---
loadgen --class "name=u,target=127.0.0.1:$P4,rate=100,deadline_ms=1000" --duration 3 \
	--json "$TMP/under.json" --csv "$TMP/under.csv"
OKP=$(jqv "$TMP/under.json" '.classes.u.ok_pct')
ge "$OKP" 95
tap "underload_100rps_is_at_least_95pct_ok" $? "ok_pct=$OKP"

ROWS=$(awk -F, 'NR > 1 && $2 == "u"' "$TMP/under.csv" | wc -l)
head -1 "$TMP/under.csv" | grep -q '^t_s,class,offered,ok,refused,reset,timeout,retries,p50_ms,p90_ms,p99_ms'
[ $? -eq 0 ] && [ "$ROWS" -ge 3 ]
tap "csv_has_header_and_a_row_per_second" $? "rows=$ROWS"

loadgen --class "name=o,target=127.0.0.1:$P4,rate=1200,deadline_ms=500" --duration 2 \
	--json "$TMP/over.json"
OKP=$(jqv "$TMP/over.json" '.classes.o.ok_pct')
TMO=$(jqv "$TMP/over.json" '.classes.o.timeout')
! ge "$OKP" 70 && ge "$TMO" 1
tap "overload_3x_unprotected_server_times_out" $? "ok_pct=$OKP timeout=$TMO"
stop_server srv
tap "server_exits_0_on_sigterm" $? "$(tail -1 "$TMP/srv.out")"

start_server srv2 -l 127.0.0.1:0 -l '[::1]:0' -w 4 -s 10 -a 127.0.0.1:0
P4=$(port_of srv2 4)
P6=$(port_of srv2 6)
ADMIN=$(head -1 "$TMP/srv2.out" | sed -n 's/.*admin=\([^ ]*\).*/\1/p')

RESP=$(http_get "$ADMIN" "/admin/service-ms?value=40" | tr -d '\n')
loadgen --class "name=s,target=127.0.0.1:$P4,rate=20,deadline_ms=2000" --duration 2 \
	--json "$TMP/slow.json"
P50=$(jqv "$TMP/slow.json" '.classes.s.p50_ms')
[ "$RESP" = "service_ms=40.000" ] && ge "$P50" 35
tap "admin_service_ms_changes_latency_at_run_time" $? "resp=$RESP p50_ms=$P50"
http_get "$ADMIN" "/admin/service-ms?value=10" >/dev/null
ACC0=$(http_get "$ADMIN" /admin/stats | jq -r .accepted)

loadgen --class "name=k,target=[::1]:$P6,src=::1,rate=200,mode=keepalive,conns=8" \
	--duration 2 --json "$TMP/ka.json"
OKP=$(jqv "$TMP/ka.json" '.classes.k.ok_pct')
ACC=$(($(http_get "$ADMIN" /admin/stats | jq -r .accepted) - ACC0))
ge "$OKP" 95 && ! ge "$ACC" 50
tap "keepalive_ipv6_reuses_connections" $? "ok_pct=$OKP accepted=$ACC"
stop_server srv2

# The server is gone: every connect is answered with a RST.
loadgen --class "name=r,target=127.0.0.1:$P4,rate=100,retry=immediate:2" \
	--class "name=b,target=[::1]:$P6,rate=50,retry=backoff:2:10:50" --duration 1 \
	--json "$TMP/refused.json"
OFF=$(jqv "$TMP/refused.json" '.classes.r.offered')
REF=$(jqv "$TMP/refused.json" '.classes.r.refused')
[ "$OFF" -gt 0 ] && [ "$REF" -eq "$OFF" ]
tap "stopped_server_gives_refused" $? "offered=$OFF refused=$REF"
RET=$(jqv "$TMP/refused.json" '.classes.r.retries')
RETB=$(jqv "$TMP/refused.json" '.classes.b.retries')
OFFB=$(jqv "$TMP/refused.json" '.classes.b.offered')
[ "$RET" -eq $((2 * OFF)) ] && [ "$RETB" -eq $((2 * OFFB)) ]
tap "retries_counted_per_attempt_and_failed_once" $? "retries=$RET/$OFF backoff=$RETB/$OFFB"

# --- ls-conn against a --hold server ---
start_server hold -l 127.0.0.1:0 --hold
HP=$(port_of hold 4)
timeout 10 "$TOOLS/ls-conn" --target "127.0.0.1:$HP" --src 127.0.0.1 --count 5 --hold-s 1 \
	>"$TMP/conn.out"
grep -q '^ok=5 refused=0 timeout=0 error=0$' "$TMP/conn.out" &&
	[ "$(grep -c '^conn [0-9]* ok ms=' "$TMP/conn.out")" -eq 5 ] &&
	grep -q '^released 5$' "$TMP/conn.out"
tap "conn_opens_and_holds_n_connections" $? "$(tr '\n' ' ' <"$TMP/conn.out")"
sleep 0.2
stop_server hold
grep -q '^hold current=0 total=5 max=5' "$TMP/hold.out"
tap "hold_server_counts_connections_and_sees_them_closed" $? "$(tail -1 "$TMP/hold.out")"

timeout 10 "$TOOLS/ls-conn" --target "127.0.0.1:$HP" --count 2 --hold-s 0 >"$TMP/conn2.out"
grep -q '^ok=0 refused=2 timeout=0' "$TMP/conn2.out"
tap "conn_reports_refused_on_closed_port" $? "$(tr '\n' ' ' <"$TMP/conn2.out")"

# --- raw sockets, in a private network namespace ---
if [ "$(id -u)" -ne 0 ] || ! unshare -n true 2>/dev/null; then
	skip "conn_reports_timeout_on_dropped_syn" "needs root and unshare"
	skip "synflood_creates_half_open_flows_v4_v6" "needs root and unshare"
else
	timeout 15 unshare -n bash -c '
		T=$1
		ip link set lo up
		ip link add v0 type veth peer name v1 || exit 1
		ip link set v0 up; ip link set v1 up
		ip addr add 10.9.0.1/24 dev v0
		ip -6 addr add fd09::1/64 dev v0 nodad
		"$T/ls-conn" --target 10.9.0.77:80 --count 1 --connect-timeout-ms 300 --hold-s 0
		"$T/ls-server" -l 10.9.0.1:8080 -l "[fd09::1]:8080" --hold >/dev/null &
		S=$!
		sleep 0.3
		"$T/ls-synflood" --src 10.9.0.128/25 --dst 10.9.0.1:8080 --count 20 --rate 1000
		"$T/ls-synflood" --src fd09::8000/113 --dst "[fd09::1]:8080" --count 10 --rate 1000
		sleep 0.3
		echo "syn_recv4=$(ss -Htn state syn-recv "( sport = :8080 )" | grep -c 10.9.0.)"
		echo "syn_recv6=$(ss -Htn state syn-recv "( sport = :8080 )" | grep -c fd09)"
		kill $S
		wait $S
	' _ "$TOOLS" >"$TMP/ns.out" 2>&1
	grep -q '^ok=0 refused=0 timeout=1' "$TMP/ns.out"
	tap "conn_reports_timeout_on_dropped_syn" $? "$(tr '\n' ' ' <"$TMP/ns.out")"
	grep -q '^sent=20 ' "$TMP/ns.out" && grep -q '^syn_recv4=20$' "$TMP/ns.out" &&
		grep -q '^sent=10 ' "$TMP/ns.out" && grep -q '^syn_recv6=10$' "$TMP/ns.out"
	tap "synflood_creates_half_open_flows_v4_v6" $? "$(tr '\n' ' ' <"$TMP/ns.out")"
fi

[ "$FAILED" -eq 0 ]
