#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of the test tools on loopback (127.0.0.1 and ::1), in under 20 s.
# Prints TAP through tests/lib.sh: one function per test, each starting its
# own servers, stopped by its cleanup however it ends. Asserts only
# wide-margin outcomes, never absolute timings. The raw-socket test runs in
# a private network namespace and is skipped without root.
#
# Usage: tests/tools/selftest.sh [TOOLS_DIR]   (default build/tools)

set -u

LS_TOOLS=${1:-${LS_TOOLS:-$(cd "$(dirname "$0")/../.." && pwd)/build/tools}}
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"
TOOLS=$LS_TOOLS
ALL_TOOLS="ls-server ls-loadgen ls-conn ls-synflood ls-xdpflood ls-cascade-a"

# jqv FILE FILTER: one value from a JSON file.
jqv() { jq -r "$2" "$1"; }

# ge A B: A >= B, as numbers (fractions too).
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# csv_has_rows FILE N: the per-second CSV header, and at least N rows of class u.
csv_has_rows() {
	head -1 "$1" | grep -q '^t_s,class,offered,ok,refused,reset,timeout,retries,p50_ms,p90_ms,p99_ms' &&
		[ "$(awk -F, 'NR > 1 && $2 == "u"' "$1" | wc -l)" -ge "$2" ]
}

# overloaded OK_PCT TIMEOUTS: under 70 % ok, and some timed out.
overloaded() { ! ge "$1" 70 && ge "$2" 1; }

# conn_held FILE N: ls-conn opened N connections, held and released them.
conn_held() {
	grep -q "^ok=$2 refused=0 timeout=0 error=0$" "$1" &&
		[ "$(grep -c '^conn [0-9]* ok ms=' "$1")" -eq "$2" ] &&
		grep -q "^released $2$" "$1"
}

# half_open NS_OUT: both SYN floods made their half-open connections.
half_open() {
	grep -q '^sent=20 ' "$1" && grep -q '^syn_recv4=20$' "$1" &&
		grep -q '^sent=10 ' "$1" && grep -q '^syn_recv6=10$' "$1"
}

# start_server NAME ARGS...: starts ls-server (output in $LS_TMP/NAME.out,
# PID in SERVER_PID) and waits for its listening line.
start_server() {
	local name=$1
	shift
	# The background job opens its output file only once it has forked:
	# create it first, or the first grep below may not find it.
	: >"$LS_TMP/$name.out"
	bg_host "$TOOLS/ls-server" "$@" >"$LS_TMP/$name.out" 2>&1
	SERVER_PID=$!
	for _ in $(seq 50); do
		grep -q '^listening' "$LS_TMP/$name.out" && return 0
		sleep 0.1
	done
	return 1
}

# port_of NAME FAMILY: the port of the first listener of that family (4 or 6).
port_of() {
	if [ "$2" = 4 ]; then
		head -1 "$LS_TMP/$1.out" | grep -o '127\.0\.0\.1:[0-9]*' | head -1 | cut -d: -f2
	else
		head -1 "$LS_TMP/$1.out" | grep -o '\[::1\]:[0-9]*' | head -1 | sed 's/.*://'
	fi
}

# admin_of NAME: the admin listener's ADDR:PORT.
admin_of() { head -1 "$LS_TMP/$1.out" | sed -n 's/.*admin=\([^ ]*\).*/\1/p'; }

stop_server() { # stop_server: SIGTERM and wait; returns its exit status
	kill "$SERVER_PID" 2>/dev/null
	wait "$SERVER_PID"
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

loadgen() { timeout 30 "$TOOLS/ls-loadgen" --seed 7 "$@" >>"$LS_TMP/loadgen.log" 2>&1; }

# W=4, S=10 ms: capacity 400 requests/s.
start_queue_server() {
	start_server srv -l 127.0.0.1:0 -l '[::1]:0' -w 4 -s 10 -a 127.0.0.1:0 ||
		{ not_ok "the server starts" "$(cat "$LS_TMP/srv.out")"; return 1; }
}

tools_are_built() {
	local t
	for t in $ALL_TOOLS; do
		[ -x "$TOOLS/$t" ] || { echo "$TOOLS/$t is missing (make build/tools/$t)"; return 1; }
	done
}

# --- the option conventions every tool shares (lib/opts.c) ---------------------------

# matches TEXT ERE: TEXT matches ERE; an empty ERE wants an empty TEXT.
matches() {
	if [ -z "$2" ]; then [ -z "$1" ]; else grep -qE -- "$2" <<<"$1"; fi
}

# expect RC OUT_ERE ERR_ERE CMD...: CMD exits RC, and its stdout and stderr
# match the EREs ('' for nothing at all). At most 10 s: a tool that took a
# usage error for a valid command line would run on.
expect() {
	local rc=$1 out_re=$2 err_re=$3 got out err
	shift 3
	out=$(timeout 10 "$@" 2>"$LS_TMP/stderr")
	got=$?
	err=$(cat "$LS_TMP/stderr")
	if [ "$got" != "$rc" ]; then
		echo "exit status $got, expected $rc; stderr: ${err:0:300}"
		return 1
	fi
	matches "$out" "$out_re" || { echo "stdout does not match '$out_re': ${out:0:300}"; return 1; }
	matches "$err" "$err_re" || { echo "stderr does not match '$err_re': ${err:0:300}"; return 1; }
}

# every_option TOOL long|short: every option of TOOL with a valid value.
every_option() {
	case $1-$2 in
	ls-server-long) echo "--listen 127.0.0.1:0 --workers 2 --service-ms 1.5 --service-dist exp" \
		"--admin 127.0.0.1:0 --control 127.0.0.1:0 --hold --backlog 16 --idle-s 5" ;;
	ls-server-short) echo "-l 127.0.0.1:0 -w 2 -s 1.5 -a 127.0.0.1:0" ;;
	ls-loadgen-long) echo "--class name=a,target=127.0.0.1:1,rate=1,mode=keepalive,conns=2,prewarm=1" \
		"--duration 1 --drain-s 1" \
		"--csv /dev/null --json /dev/null --max-sockets 10 --timeout-close rst --seed 1" \
		"--progress" ;;
	ls-loadgen-short) echo "-c name=a,target=127.0.0.1:1,rate=1 -d 1" ;;
	ls-conn-long) echo "--target 127.0.0.1:1 --src 127.0.0.1 --count 2 --connect-timeout-ms 10" \
		"--hold-s 0 --interval-ms 0" ;;
	ls-conn-short) echo "-t 127.0.0.1:1 -s 127.0.0.1 -n 2 -T 10 -H 0 -i 0" ;;
	ls-synflood-long) echo "--src 10.0.0.0/24 --dst 10.0.0.1:80 --rate 10 --duration 1 --count 5" \
		"--src-port 99 --dev lo --seed 3" ;;
	ls-synflood-short) echo "-s 10.0.0.0/24 -d 10.0.0.1:80 -r 10 -t 1 -n 5 -p 99 -i lo" ;;
	ls-xdpflood-long) echo "--dev lo --dst-mac 02:00:00:00:00:01 --src-mac 02:00:00:00:00:02" \
		"--src 10.0.0.0/24 --dst 10.0.0.1:80 --duration 0.5 --count 5 --rate 10 --threads 1" \
		"--batch 8" ;;
	ls-xdpflood-short) echo "-i lo -s 10.0.0.0/24 -d 10.0.0.1:80 -t 0.5 -n 5 -r 10 -T 1 -b 8" ;;
	ls-cascade-a-long) echo "--listen 127.0.0.1:0 --upstream 127.0.0.1:1 --workers 2 --local-ms 1.5" \
		"--timeout-ms 50 --pool 2 --path /x --backlog 16" ;;
	ls-cascade-a-short) echo "-l 127.0.0.1:0 -u 127.0.0.1:1 -w 2 -s 1.5 -t 50 -p 2" ;;
	esac
}

# bad_value TOOL: one option with a value out of its range or form.
bad_value() {
	case $1 in
	ls-server) echo "--workers 0" ;;
	ls-loadgen) echo "--duration 0" ;;
	ls-conn) echo "--count 0" ;;
	ls-synflood) echo "--rate fast" ;;
	ls-xdpflood) echo "--batch 999" ;;
	ls-cascade-a) echo "--timeout-ms 0" ;;
	esac
}

# runtime_error TOOL: a command line that parses but cannot run here.
runtime_error() {
	case $1 in
	ls-server) echo "--listen 192.0.2.1:1" ;; # not an address of this host
	ls-loadgen) echo "--class target=127.0.0.1:1,rate=1 --duration 1 --csv /nonexistent/x.csv" ;;
	ls-conn) echo "--target 127.0.0.1:1 --count 100000" ;; # run with RLIMIT_NOFILE 100
	ls-synflood) echo "--src 10.0.0.1 --dst 10.0.0.2:80 --count 1 --dev nosuchif0" ;;
	ls-xdpflood) echo "--dev nosuchif0 --dst-mac 02:00:00:00:00:01 --src 10.0.0.1" \
		"--dst 10.0.0.2:80 --duration 1" ;;
	ls-cascade-a) echo "--listen 192.0.2.1:1 --upstream 127.0.0.1:1" ;; # not an address of this host
	esac
}

test_help_prints_the_usage_and_exits_0() {
	local t
	for t in $ALL_TOOLS; do
		check "$t --help prints the usage on stdout and exits 0" \
			expect 0 "^Usage: $t " '' "$TOOLS/$t" --help
		check "$t -h is --help" expect 0 "^Usage: $t " '' "$TOOLS/$t" -h
	done
}

# Every option is still there: with all of them before --help, all must parse.
test_every_option_is_accepted() {
	local t args
	for t in $ALL_TOOLS; do
		read -ra args <<<"$(every_option "$t" long)"
		check "$t takes every long option" expect 0 "^Usage: $t " '' "$TOOLS/$t" "${args[@]}" --help
		read -ra args <<<"$(every_option "$t" short)"
		check "$t takes every short option" expect 0 "^Usage: $t " '' "$TOOLS/$t" "${args[@]}" -h
	done
}

test_usage_errors_exit_2() {
	local t args
	for t in $ALL_TOOLS; do
		check "$t: an unknown option is a usage error" \
			expect 2 '' 'Usage:' "$TOOLS/$t" --no-such-option
		check "$t: a stray argument is a usage error" \
			expect 2 '' 'unexpected argument' "$TOOLS/$t" stray
		check "$t: a missing required option is a usage error" \
			expect 2 '' 'is required' "$TOOLS/$t"
		read -ra args <<<"$(bad_value "$t")"
		check "$t: a bad value is a usage error" \
			expect 2 '' "${args[0]}" "$TOOLS/$t" "${args[@]}"
	done
}

test_runtime_errors_exit_1() {
	local t args
	for t in $ALL_TOOLS; do
		read -ra args <<<"$(runtime_error "$t")"
		check "$t: a runtime error exits 1" expect 1 '' . \
			bash -c 'ulimit -n 100 && exec "$@"' _ "$TOOLS/$t" "${args[@]}"
	done
}

# --- ls-server and ls-loadgen -------------------------------------------------------

test_underload_is_served_and_the_server_exits_cleanly() {
	local okp
	start_server srv -l 127.0.0.1:0 -l '[::1]:0' -w 4 -s 10 -a 127.0.0.1:0
	check_eq "server_prints_listening_line" "$?" 0
	loadgen --class "name=u,target=127.0.0.1:$(port_of srv 4),rate=100,deadline_ms=1000" \
		--duration 3 --json "$LS_TMP/under.json" --csv "$LS_TMP/under.csv"
	okp=$(jqv "$LS_TMP/under.json" '.classes.u.ok_pct')
	check "underload_100rps_is_at_least_95pct_ok" ge "$okp" 95
	check "csv_has_header_and_a_row_per_second" csv_has_rows "$LS_TMP/under.csv" 3
	stop_server
	check_eq "server_exits_0_on_sigterm" "$?" 0
}

test_unprotected_server_times_out_under_overload() {
	local okp tmo
	start_queue_server || return 1
	loadgen --class "name=o,target=127.0.0.1:$(port_of srv 4),rate=1200,deadline_ms=500" \
		--duration 2 --json "$LS_TMP/over.json"
	okp=$(jqv "$LS_TMP/over.json" '.classes.o.ok_pct')
	tmo=$(jqv "$LS_TMP/over.json" '.classes.o.timeout')
	check "overload_3x_unprotected_server_times_out" overloaded "$okp" "$tmo"
}

test_admin_service_ms_changes_latency() {
	local resp p50
	start_queue_server || return 1
	resp=$(http_get "$(admin_of srv)" "/admin/service-ms?value=40" | tr -d '\n')
	loadgen --class "name=s,target=127.0.0.1:$(port_of srv 4),rate=20,deadline_ms=2000" \
		--duration 2 --json "$LS_TMP/slow.json"
	p50=$(jqv "$LS_TMP/slow.json" '.classes.s.p50_ms')
	check_eq "admin_service_ms_answers_the_new_value" "$resp" "service_ms=40.000"
	check "admin_service_ms_changes_latency_at_run_time" ge "$p50" 35
}

test_keepalive_ipv6_reuses_connections() {
	local acc0 acc okp
	start_queue_server || return 1
	acc0=$(http_get "$(admin_of srv)" /admin/stats | jq -r .accepted)
	loadgen --class "name=k,target=[::1]:$(port_of srv 6),src=::1,rate=200,mode=keepalive,conns=8" \
		--duration 2 --json "$LS_TMP/ka.json"
	okp=$(jqv "$LS_TMP/ka.json" '.classes.k.ok_pct')
	acc=$(($(http_get "$(admin_of srv)" /admin/stats | jq -r .accepted) - acc0))
	check "keepalive_ipv6_is_at_least_95pct_ok" ge "$okp" 95
	check_cmp "keepalive_ipv6_reuses_connections" "$acc" -lt 50
}

# stats_of NAME FIELD: one field of the server's /admin/stats.
stats_of() { http_get "$(admin_of "$1")" /admin/stats | jq -r ".$2"; }

# prewarm=1 opens the whole pool at start, even at a rate that on demand
# would need one or two connections, and sends every request on it.
test_prewarm_opens_the_whole_pool_at_start() {
	local acc0 acc okp
	start_queue_server || return 1
	acc0=$(stats_of srv accepted)
	loadgen --class "name=p,target=127.0.0.1:$(port_of srv 4),rate=20,mode=keepalive,conns=12,prewarm=1" \
		--duration 2 --json "$LS_TMP/pw.json" --csv "$LS_TMP/pw.csv"
	acc=$(($(stats_of srv accepted) - acc0))
	okp=$(jqv "$LS_TMP/pw.json" '.classes.p.ok_pct')
	check "prewarm: at least 95 % ok" ge "$okp" 95
	check_eq "prewarm: the server accepted exactly the pool" "$acc" 12
	check_eq "prewarm: every connection opened at start" \
		"$(jqv "$LS_TMP/pw.json" '.classes.p.pool | "\(.opened_at_start) \(.all_opened_at_start)"')" "12 true"
	check_eq "prewarm: no reconnect, no failed connect, none lost" \
		"$(jqv "$LS_TMP/pw.json" '.classes.p.pool | "\(.reconnects) \(.connect_failed.total) \(.lost)"')" "0 0 0"
	check_eq "prewarm: the csv's conns column shows the pool open" \
		"$(awk -F, 'NR == 2 { print $16 }' "$LS_TMP/pw.csv")" 12
}

# Under overload the pool stays what it is: a request that times out leaves
# its connection open (its late answer is dropped), and requests wait for
# idle connections rather than open new ones.
test_prewarm_keeps_the_pool_open_under_overload() {
	local acc0 acc pool
	start_queue_server || return 1
	acc0=$(stats_of srv accepted)
	loadgen --class "name=o,target=127.0.0.1:$(port_of srv 4),rate=1200,deadline_ms=300,mode=keepalive,conns=8,prewarm=1" \
		--duration 2 --json "$LS_TMP/pwo.json"
	acc=$(($(stats_of srv accepted) - acc0))
	pool=$(jqv "$LS_TMP/pwo.json" '.classes.o.pool')
	check_cmp "prewarm overload: requests timed out" "$(jqv "$LS_TMP/pwo.json" '.classes.o.timeout')" -gt 0
	check_cmp "prewarm overload: some timed out on a busy connection" "$(jqr "$pool" .timed_out_busy)" -gt 0
	check_cmp "prewarm overload: late answers were read on the kept connections" \
		"$(jqr "$pool" .late_answers)" -gt 0
	check_eq "prewarm overload: no connection replaced, none lost" \
		"$(jqr "$pool" '"\(.reconnects) \(.lost)"')" "0 0"
	check_eq "prewarm overload: the server accepted exactly the pool" "$acc" 8
	check_cmp "prewarm overload: never more sockets than the pool" \
		"$(jqv "$LS_TMP/pwo.json" .max_open_sockets)" -le 8
}

# The server goes away and comes back on the same port: the pool loses every
# connection, retries, and is whole again once the server is back.
test_prewarm_replaces_lost_connections() {
	local port pool
	start_server hold -l 127.0.0.1:0 --hold || { not_ok "the hold server starts"; return 1; }
	port=$(port_of hold 4)
	"$TOOLS/ls-loadgen" --seed 7 --duration 3 --json "$LS_TMP/pwl.json" --csv "$LS_TMP/pwl.csv" \
		--class "name=l,target=127.0.0.1:$port,rate=50,deadline_ms=200,mode=keepalive,conns=6,prewarm=1" \
		>"$LS_TMP/pwl.out" 2>&1 &
	track_pid $!
	local lg=$!
	sleep 0.8
	stop_server
	sleep 0.5
	start_server hold2 -l "127.0.0.1:$port" --hold || { not_ok "the hold server restarts on $port"; return 1; }
	wait "$lg"
	pool=$(jqv "$LS_TMP/pwl.json" '.classes.l.pool')
	# (More than 6 when a replacement got in while the dying server still listened.)
	check_cmp "prewarm lost: every connection was lost with the server" "$(jqr "$pool" .lost)" -ge 6
	check_cmp "prewarm lost: connects were refused while it was gone" \
		"$(jqr "$pool" .connect_failed.refused)" -gt 0
	check_cmp "prewarm lost: the pool was opened again" "$(jqr "$pool" .reconnects)" -ge 6
	check_eq "prewarm lost: the pool is whole at the last full second" \
		"$(awk -F, 'NR > 1 && $1 == 2 { print $16 }' "$LS_TMP/pwl.csv")" 6
}

# A pool whose connects are refused retries after a pause, not in a loop,
# and its requests wait (and time out) rather than open connections.
test_prewarm_paces_failed_connects() {
	local p4
	start_queue_server || return 1
	p4=$(port_of srv 4)
	stop_server
	loadgen --class "name=r,target=127.0.0.1:$p4,rate=50,mode=keepalive,conns=4,prewarm=1" \
		--duration 1 --json "$LS_TMP/pwr.json"
	check_eq "prewarm refused: nothing opened at start" \
		"$(jqv "$LS_TMP/pwr.json" '.classes.r.pool.all_opened_at_start')" false
	check_cmp "prewarm refused: refused connects counted" \
		"$(jqv "$LS_TMP/pwr.json" '.classes.r.pool.connect_failed.refused')" -ge 4
	check_cmp "prewarm refused: retried after a pause (at most 4 x 12 opens in 1 s)" \
		"$(jqv "$LS_TMP/pwr.json" '.classes.r.pool.opens')" -le 48
	check_eq "prewarm refused: every request timed out waiting" \
		"$(jqv "$LS_TMP/pwr.json" '.classes.r | .timeout == .offered and .refused == 0')" true
}

test_prewarm_needs_a_keepalive_pool() {
	check "prewarm without mode=keepalive is a usage error" expect 2 '' 'prewarm=1 needs' \
		"$TOOLS/ls-loadgen" --duration 1 --class target=127.0.0.1:1,rate=1,conns=4,prewarm=1
	check "prewarm without conns is a usage error" expect 2 '' 'prewarm=1 needs' \
		"$TOOLS/ls-loadgen" --duration 1 --class target=127.0.0.1:1,rate=1,mode=keepalive,prewarm=1
}

# end=: clients that reset after their request, abandon half a request, or
# half-close after it; the server sees every connection end.
test_end_ends_connections_as_asked() {
	local p4 js i open
	start_queue_server || return 1
	p4=$(port_of srv 4)
	loadgen --class "name=r,target=127.0.0.1:$p4,rate=50,end=reset" \
		--class "name=a,target=127.0.0.1:$p4,rate=50,end=abandon" \
		--class "name=h,target=127.0.0.1:$p4,rate=50,end=halfclose" \
		--duration 2 --json "$LS_TMP/end.json"
	js=$(cat "$LS_TMP/end.json")
	check_cmp "end: every class offered requests" \
		"$(jqr "$js" '[.classes[].offered] | min')" -gt 0
	check_eq "end=reset: every request left" "$(jqr "$js" '.classes.r | .left == .offered')" true
	check_eq "end=abandon: every request left" "$(jqr "$js" '.classes.a | .left == .offered')" true
	check_eq "end=halfclose: every request answered" "$(jqr "$js" '.classes.h | .ok == .offered')" true
	check_eq "end=: none retried" "$(jqr "$js" '.total.retries')" 0
	for i in $(seq 30); do
		open=$(stats_of srv open_conns)
		[ "$open" = 0 ] && break
		sleep 0.1
	done
	: "$i"
	check_eq "end=: the server saw every connection end" "$open" 0
	check "end= without mode=close is a usage error" expect 2 '' 'end= needs mode=close' \
		"$TOOLS/ls-loadgen" --duration 1 --class target=127.0.0.1:1,rate=1,mode=keepalive,end=reset
	check "an unknown end= is a usage error" expect 2 '' "bad value 'end=later'" \
		"$TOOLS/ls-loadgen" --duration 1 --class target=127.0.0.1:1,rate=1,end=later
}

# The server is gone: every connect is answered with a RST.
test_stopped_server_gives_refused_and_retries_count() {
	local p4 p6 off ref ret retb offb
	start_queue_server || return 1
	p4=$(port_of srv 4)
	p6=$(port_of srv 6)
	stop_server
	loadgen --class "name=r,target=127.0.0.1:$p4,rate=100,retry=immediate:2" \
		--class "name=b,target=[::1]:$p6,rate=50,retry=backoff:2:10:50" --duration 1 \
		--json "$LS_TMP/refused.json"
	off=$(jqv "$LS_TMP/refused.json" '.classes.r.offered')
	ref=$(jqv "$LS_TMP/refused.json" '.classes.r.refused')
	check_cmp "stopped_server_gives_refused: some offered" "$off" -gt 0
	check_eq "stopped_server_gives_refused" "$ref" "$off"
	ret=$(jqv "$LS_TMP/refused.json" '.classes.r.retries')
	retb=$(jqv "$LS_TMP/refused.json" '.classes.b.retries')
	offb=$(jqv "$LS_TMP/refused.json" '.classes.b.offered')
	check_eq "retries_counted_per_attempt_and_failed_once (immediate)" "$ret" $((2 * off))
	check_eq "retries_counted_per_attempt_and_failed_once (backoff)" "$retb" $((2 * offb))
}

# --- ls-conn --------------------------------------------------------------------------

test_conn_holds_connections_on_a_hold_server() {
	local hp
	start_server hold -l 127.0.0.1:0 --hold || { not_ok "the hold server starts"; return 1; }
	hp=$(port_of hold 4)
	timeout 10 "$TOOLS/ls-conn" --target "127.0.0.1:$hp" --src 127.0.0.1 --count 5 --hold-s 1 \
		>"$LS_TMP/conn.out"
	check "conn_opens_and_holds_n_connections" conn_held "$LS_TMP/conn.out" 5
	sleep 0.2
	stop_server
	check "hold_server_counts_connections_and_sees_them_closed" \
		grep -q '^hold current=0 total=5 max=5' "$LS_TMP/hold.out"
}

test_conn_reports_refused_on_closed_port() {
	local hp
	start_server hold -l 127.0.0.1:0 --hold || { not_ok "the hold server starts"; return 1; }
	hp=$(port_of hold 4)
	stop_server
	timeout 10 "$TOOLS/ls-conn" --target "127.0.0.1:$hp" --count 2 --hold-s 0 >"$LS_TMP/conn2.out"
	check "conn_reports_refused_on_closed_port" grep -q '^ok=0 refused=2 timeout=0' "$LS_TMP/conn2.out"
}

# --- raw sockets, in a private network namespace ---------------------------------------

test_raw_socket_tools_in_a_private_namespace() {
	if [ "$(id -u)" -ne 0 ] || ! unshare -n true 2>/dev/null; then
		skip_this_test "needs root and unshare"
	fi
	# shellcheck disable=SC2016 # expanded by the inner bash
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
	' _ "$TOOLS" >"$LS_TMP/ns.out" 2>&1
	check "conn_reports_timeout_on_dropped_syn" grep -q '^ok=0 refused=0 timeout=1' "$LS_TMP/ns.out"
	check "synflood_creates_half_open_flows_v4_v6" half_open "$LS_TMP/ns.out"
}

require_cmds jq awk timeout
suite_setup tools_are_built
run_test "--help prints the usage and exits 0" test_help_prints_the_usage_and_exits_0
run_test "every option is accepted" test_every_option_is_accepted
run_test "usage errors exit 2" test_usage_errors_exit_2
run_test "runtime errors exit 1" test_runtime_errors_exit_1
run_test "underload is served and the server exits cleanly" \
	test_underload_is_served_and_the_server_exits_cleanly
run_test "an unprotected server times out under overload" \
	test_unprotected_server_times_out_under_overload
run_test "the admin listener changes the service time" test_admin_service_ms_changes_latency
run_test "keep-alive over IPv6 reuses connections" test_keepalive_ipv6_reuses_connections
run_test "prewarm opens the whole pool at start" test_prewarm_opens_the_whole_pool_at_start
run_test "prewarm keeps the pool open under overload" test_prewarm_keeps_the_pool_open_under_overload
run_test "prewarm replaces lost connections" test_prewarm_replaces_lost_connections
run_test "prewarm paces failed connects" test_prewarm_paces_failed_connects
run_test "prewarm needs a keep-alive pool" test_prewarm_needs_a_keepalive_pool
run_test "end= ends connections as asked" test_end_ends_connections_as_asked
run_test "a stopped server gives refused, and retries count" \
	test_stopped_server_gives_refused_and_retries_count
run_test "ls-conn holds connections on a hold server" test_conn_holds_connections_on_a_hold_server
run_test "ls-conn reports refused on a closed port" test_conn_reports_refused_on_closed_port
run_test "the raw-socket tools work in a private namespace" \
	test_raw_socket_tools_in_a_private_namespace
tap_done
