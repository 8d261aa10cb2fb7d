#!/usr/bin/env bash
# Real request workloads through loadshed: PostgreSQL with pgbench's pooled
# connections, and Debian's wrk (HTTP/1.1 keep-alive). The testbed is shared;
# each test starts its own servers and attachment, and its cleanup removes
# them (the cluster and its directory too). Outcomes and counts only, never
# timings. About 25 s. Needs root, PostgreSQL and wrk
# (scripts/install-deps.sh installs both).
#
# Everything runs in request mode (`admit = requests`), with the default
# limits: the point is that a pool opens whole and its requests are decided.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

HTTP_PORT=8080
HIGH=10.201.0.2
LOW=10.201.0.3

setup_suite() {
	testbed_up "rq$$" >/dev/null
}

status_json() { ls_srv -j status "$SRV_IF"; }
class_field() { # class_field JSON CLASS FIELD
	jq -r --arg c "$2" ".services[0].classes[] | select(.name == \$c) | .$3 // empty" <<<"$1"
}

# wait_inflight_zero: loadshed's in-flight back to 0 (up to 5 s); prints the last value.
wait_inflight_zero() {
	local v i
	for i in $(seq 50); do
		v=$(status_json | jq -r '.services[0].inflight')
		[ "$v" = 0 ] && break
		sleep 0.1
	done
	: "$i"
	echo "$v"
}

# pgbench_field LOG WHAT: a number from pgbench's report.
pgbench_field() {
	case $2 in
	processed) sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1" ;;
	failed) sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$1" ;;
	esac
}

# pg_conns ADDR: the cluster's client connections from ADDR.
pg_conns() {
	tb_psql -c "SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND client_addr = '$1'"
}

# PostgreSQL in the server namespace; pgbench's two pools of 32 connections,
# one per class, open through loadshed and run with no connection error.
test_postgres_pools_through_loadshed() {
	local bin dir cdir pid st h l i v max_h=0 max_l=0 rc_h rc_l js
	bin=$(tb_pg_bin) || skip_this_test "PostgreSQL is not installed (scripts/install-deps.sh)"
	defer tb_pg_stop
	if tb_pg_start "$LS_TMP/postgres.log" 100; then
		ok "a throwaway cluster starts in the server namespace"
	else
		not_ok "a throwaway cluster starts in the server namespace" "$(tail -n 5 "$LS_TMP/postgres.log")"
		return 1
	fi
	dir=$TB_PG_DIR
	check "it listens on the server's address" \
		bash -c "nsenter --net=/run/netns/$SRV_NS ss -Hltn 'sport = :$TB_PG_PORT' | grep -q '$TB_SRV_IP:$TB_PG_PORT'"
	check_eq "a client in the client namespace reaches it over TCP" \
		"$(tb_cli "$bin/psql" -h "$TB_SRV_IP" -p "$TB_PG_PORT" -U postgres -d postgres -X -A -t -c 'SELECT 40 + 2')" 42
	tb_psql -c "CREATE FUNCTION work(ms float8) RETURNS void LANGUAGE sql AS 'SELECT pg_sleep(ms / 1000.0)'"
	# The script, where the classes' uids can read it.
	cdir=$(mktemp -d /tmp/ls-pgbench.XXXXXX)
	defer rm -rf "$cdir"
	chmod 0755 "$cdir"
	echo "SELECT work(:ms);" >"$cdir/work.sql"
	chmod 0644 "$cdir/work.sql"

	# Request mode with the algorithm's defaults (initial limit 20): connection
	# admission at this limit refused pgbench's 22nd connection at start-up.
	check "loadshed attaches in front of it (request mode, default limits)" ls_attach "$SRV_IF" \
		--port "$TB_PG_PORT" --admit requests --class "high=50%,reset,src=$HIGH/32" \
		--class "low=0%,reset,src=$LOW/32"
	defer tb_src_unroute "$HIGH"
	defer tb_src_unroute "$LOW"
	if ! tb_src_route "$HIGH" || ! tb_src_route "$LOW"; then
		not_ok "uid source routes"
		return 1
	fi

	# pgbench as each class's uid, so that its connections leave from its address.
	tb_cli_as "$HIGH" timeout 30 "$bin/pgbench" -h "$TB_SRV_IP" -p "$TB_PG_PORT" -U postgres -n \
		-f "$cdir/work.sql" -D ms=5 -c 32 -j 2 -T 4 -R 100 --latency-limit 1000 postgres \
		>"$LS_TMP/high.log" 2>&1 &
	track_pid $!
	h=$!
	tb_cli_as "$LOW" timeout 30 "$bin/pgbench" -h "$TB_SRV_IP" -p "$TB_PG_PORT" -U postgres -n \
		-f "$cdir/work.sql" -D ms=5 -c 32 -j 2 -T 4 -R 100 --latency-limit 1000 postgres \
		>"$LS_TMP/low.log" 2>&1 &
	track_pid $!
	l=$!
	# The cluster's view of the pools while they run.
	for i in $(seq 30); do
		v=$(pg_conns "$HIGH") && [ "$v" -gt "$max_h" ] && max_h=$v
		v=$(pg_conns "$LOW") && [ "$v" -gt "$max_l" ] && max_l=$v
		[ "$max_h" -ge 32 ] && [ "$max_l" -ge 32 ] && break
		sleep 0.1
	done
	: "$i"
	rc_h=0
	wait "$h" || rc_h=$?
	rc_l=0
	wait "$l" || rc_l=$?
	check_eq "pgbench high exits 0" "$rc_h" 0
	check_eq "pgbench low exits 0" "$rc_l" 0
	check "pgbench high opened every connection" grep -q '^initial connection time' "$LS_TMP/high.log"
	check "pgbench low opened every connection" grep -q '^initial connection time' "$LS_TMP/low.log"
	check "pgbench reports no error (connections, transactions)" \
		bash -c "! grep -hiE 'error|abort|fail' '$LS_TMP/high.log' '$LS_TMP/low.log' | grep -qv '^number of failed transactions: 0 '"
	check_eq "the cluster saw 32 connections from each class" "$max_h $max_l" "32 32"
	check_cmp "pgbench high ran transactions" "$(pgbench_field "$LS_TMP/high.log" processed)" -gt 0
	check_cmp "pgbench low ran transactions" "$(pgbench_field "$LS_TMP/low.log" processed)" -gt 0
	check_eq "no transaction failed" \
		"$(pgbench_field "$LS_TMP/high.log" failed) $(pgbench_field "$LS_TMP/low.log" failed)" "0 0"

	js=$(status_json)
	check_cmp "loadshed admitted the high pool" "$(class_field "$js" high admitted)" -ge 32
	check_cmp "loadshed admitted the low pool" "$(class_field "$js" low admitted)" -ge 32
	check_eq "loadshed shed no connection under its limit" \
		"$(class_field "$js" high shed) $(class_field "$js" low shed)" "0 0"
	# A probe of the no-load latency (delay, the default) pins the limit for a
	# moment, and a request of a burst may then be deferred (a retransmission,
	# no failure: checked above). How many depends on the machine's load, so it
	# is measured by `make bench` (the pgbench scenario), not asserted here.
	check_cmp "loadshed saw PostgreSQL requests of high" "$(class_field "$js" high requests)" -gt 0
	check_cmp "loadshed saw PostgreSQL requests of low" "$(class_field "$js" low requests)" -gt 0
	check_eq "in-flight is back to 0 once pgbench has closed its pools" "$(wait_inflight_zero)" 0

	read -r pid st _ <"$TB_STATE/pg"
	tb_pg_stop
	check "the cluster is stopped" bash -c "! [ \"\$(cut -d' ' -f22 /proc/$pid/stat 2>/dev/null)\" = '$st' ]"
	check "its directory is removed" test ! -e "$dir"
}

# wrk's keep-alive requests (the high class) are served with no socket error
# while the low class, an open-loop keep-alive load at 2.4x capacity over a
# prewarmed pool of 64, is deferred (request mode) or shed (connection mode).
test_wrk_served_while_low_is_shed() {
	local rc js lg
	bg_srv "$LS_TOOLS/ls-server" --listen "$TB_SRV_IP:$HTTP_PORT" --workers 16 --service-ms 40 \
		>"$LS_TMP/server.out" 2>&1
	wait_for_line "$LS_TMP/server.out" '^listening' 5 || { not_ok "ls-server starts"; return 1; }
	check "loadshed attaches (request mode, limit 16, high 100 %, low 0 % deferred)" \
		ls_attach "$SRV_IF" --port "$HTTP_PORT" --limit 16 --admit requests \
		--class "high=100%,reset,src=$HIGH/32" --class "low=0%,reset,defer,src=$LOW/32"
	bg_cli "$LS_TOOLS/ls-loadgen" --duration 6 --seed 9 --json "$LS_TMP/low.json" \
		--class "name=low,src=$LOW,target=$TB_SRV_IP:$HTTP_PORT,rate=960,mode=keepalive,conns=64,prewarm=1" \
		>"$LS_TMP/low.out" 2>&1
	lg=$!
	sleep 0.5
	rc=0
	tb_wrk "$LS_TMP/wrk.json" -t 2 -c 8 -d 4s --timeout 10s "http://$TB_SRV_IP:$HTTP_PORT/" \
		>"$LS_TMP/wrk.txt" 2>&1 || rc=$?
	wait "$lg"
	check_eq "wrk exits 0" "$rc" 0
	check "wrk reports its totals" test -s "$LS_TMP/wrk.json"
	check_cmp "wrk's requests are served" "$(jq -r .requests "$LS_TMP/wrk.json")" -gt 0
	check_eq "wrk has no socket error (connect read write timeout)" \
		"$(jq -r '.errors | "\(.connect) \(.read) \(.write) \(.timeout)"' "$LS_TMP/wrk.json")" "0 0 0 0"
	check_eq "wrk has no answer other than 2xx or 3xx" "$(jq -r .errors.status "$LS_TMP/wrk.json")" 0
	js=$(status_json)
	check_cmp "loadshed admitted wrk's connections" "$(class_field "$js" high admitted)" -ge 8
	check_eq "loadshed shed nothing of the high class" "$(class_field "$js" high shed)" 0
	check_cmp "low requests were deferred while wrk ran" "$(class_field "$js" low deferred)" -gt 0
	check_cmp "the low class was overloaded (some timed out)" \
		"$(jq -r .classes.low.timeout "$LS_TMP/low.json")" -gt 0
}

# A pool opened before loadshed: its connections are adopted at their next
# request and their requests decided at once; an aborted request's server
# socket is closed by the agent (sock_diag), so the server holds nothing for it.
test_pools_opened_before_attach_are_adopted_and_aborts_close_sockets() {
	local js lg established
	bg_srv "$LS_TOOLS/ls-server" --listen "$TB_SRV_IP:$HTTP_PORT" --workers 4 --service-ms 20 \
		>"$LS_TMP/server.out" 2>&1
	wait_for_line "$LS_TMP/server.out" '^listening' 5 || { not_ok "ls-server starts"; return 1; }
	bg_cli "$LS_TOOLS/ls-loadgen" --duration 5 --seed 3 --json "$LS_TMP/low.json" \
		--class "name=low,src=$LOW,target=$TB_SRV_IP:$HTTP_PORT,rate=600,mode=keepalive,conns=16,prewarm=1" \
		>"$LS_TMP/low.out" 2>&1
	lg=$!
	sleep 1
	check "loadshed attaches while the pool is open (request mode, limit 2, abort)" \
		ls_attach "$SRV_IF" --port "$HTTP_PORT" --limit 2 --admit requests \
		--class "low=0%,abort,src=$LOW/32"
	wait "$lg"
	js=$(status_json)
	check_cmp "the pool's connections were adopted" "$(class_field "$js" low adopted)" -ge 16
	check_cmp "its requests were decided: some aborted" "$(class_field "$js" low aborted)" -gt 0
	check_eq "no abort was lost" "$(jq -r .abort_lost <<<"$js")" 0
	check_cmp "the clients saw resets" "$(jq -r .classes.low.reset "$LS_TMP/low.json")" -gt 0
	sleep 1
	# Every connection still established at the server is one loadshed tracks.
	established=$(in_srv ss -Htn state established "( sport = :$HTTP_PORT )" | wc -l)
	check_eq "the server holds no socket of an aborted request" \
		"$established" "$(status_json | jq -r '.services[0].connections')"
	check_eq "in-flight is back to 0" "$(wait_inflight_zero)" 0
}

require_root
require_cmds jq nsenter ip wrk setpriv timeout ss
suite_setup setup_suite
run_test "PostgreSQL's pooled pgbench connections run through loadshed" \
	test_postgres_pools_through_loadshed
run_test "wrk is served with no socket error while low is deferred" test_wrk_served_while_low_is_shed
run_test "pools opened before attach are adopted; aborts close the server's sockets" \
	test_pools_opened_before_attach_are_adopted_and_aborts_close_sockets
tap_done
