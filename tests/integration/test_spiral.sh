#!/usr/bin/env bash
# The spiral testbed of scripts/spiral.sh (three replicas behind HAProxy),
# checked for what makes its benchmark mean something, without timings:
# HAProxy's configuration is valid; with replica 1's limit pinned at 1 and
# that slot held, its health checks (class health, bypass) are answered and
# counted as bypass, never shed, while a check from another source is not
# bypassed; a request over the limit is refused with a RST, which HAProxy
# redispatches to another replica (its wredis), so the client still gets
# its 200, and with no other replica left answers 503 after connection
# errors (econ) while the full replica stays UP; and sp_down leaves no
# namespace, pin, agent or process behind. About 15 s. Needs root.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib.sh disable=SC1091
. "$ROOT/tests/lib.sh"
# shellcheck source=scripts/spiral.sh disable=SC1091
. "$ROOT/scripts/spiral.sh"

# The second address of the balancer on replica 1's link: not the balancer's.
STRANGER_IP=10.213.1.3

setup_suite() {
	sp_names "s$$" || return 1
	defer sp_down
	sp_up || return 1
	ip -n "$SP_HAP_NS" addr add "$STRANGER_IP/24" dev "$(sp_back_if 1)" || return 1
	# Replica 1: one worker, the limit pinned at 1 (SP_LS_EXTRA goes into its service).
	sp_replica_start 1 "$LS_TMP/replica1.log" 1 20 || return 1
	sp_replica_start 2 "$LS_TMP/replica2.log" 4 10 || return 1
	sp_replica_start 3 "$LS_TMP/replica3.log" 4 10 || return 1
	SP_LS_EXTRA="limit = 1" sp_loadshed_conf 1 "$LS_TMP/loadshed-r1.conf"
	sp_attach 1 "$LS_TMP/loadshed-r1.conf" "$LS_TMP/attach-r1.log" || return 1
	# The service's only slot, held by a connection from the balancer's address.
	bg_host nsenter --net="/run/netns/$SP_HAP_NS" "$LS_TOOLS/ls-conn" \
		--target "$(sp_rep_ip 1):$SP_PORT" --count 1 --hold-s 600 >"$LS_TMP/holder.log" 2>&1
	wait_for_line "$LS_TMP/holder.log" "^ok=1 " 10 || return 1
	sp_haproxy_conf "$LS_TMP/haproxy.cfg"
	sp_haproxy_start "$LS_TMP/haproxy.cfg" "$LS_TMP/haproxy.log"
}

# r1_status: replica 1's loadshed status (JSON).
r1_status() { sp_ls 1 -j status "$(sp_rep_if 1)"; }
# cls JSON CLASS FIELD: a counter of one class.
cls() { jq -r --arg c "$2" --arg f "$3" '.services[0].classes[] | select(.name == $c) | .[$f]' <<<"$1"; }
# http_code NS URL [CURL_ARGS...]: the HTTP status curl gets (000: none).
http_code() {
	sp_in "$1" curl -s -o /dev/null -w '%{http_code}' --max-time 3 "${@:3}" "$2" || true
}

test_haproxy_config_is_valid() {
	local cfg=$LS_TMP/haproxy.cfg
	sp_haproxy_conf "$cfg"
	check "haproxy -c accepts the spiral's configuration" haproxy -c -q -f "$cfg"
	echo "    server broken" >>"$cfg"
	if haproxy -c -q -f "$cfg" >/dev/null 2>&1; then
		not_ok "haproxy -c refuses a broken configuration" "it accepted: $(tail -n 1 "$cfg")"
	else
		ok "haproxy -c refuses a broken configuration"
	fi
}

test_health_checks_bypass_a_full_service() {
	local js h0 h i
	js=$(r1_status)
	check_eq "replica 1's limit is pinned at 1" "$(jqr "$js" '.services[0].limit') $(jqr "$js" '.services[0].pinned')" "1 true"
	check_eq "the held connection fills it" "$(jqr "$js" '.services[0].inflight')" 1
	# shellcheck disable=SC2016 # expanded by the inner bash
	check "a new connection from the balancer is refused" \
		bash -c 'nsenter --net="/run/netns/$1" "$2" --target "$3" --count 1 --hold-s 1 | grep -q "refused=1"' \
		_ "$SP_HAP_NS" "$LS_TOOLS/ls-conn" "$(sp_rep_ip 1):$SP_PORT"
	h0=$(cls "$js" health handshakes)
	# HAProxy checks every second; two more checks are enough to judge.
	for i in $(seq 100); do
		h=$(cls "$(r1_status)" health handshakes)
		[ "${h:-0}" -ge $((h0 + 2)) ] && break
		sleep 0.1
	done
	: "$i"
	check_cmp "HAProxy's checks reach replica 1 in class health" "${h:-0}" -ge $((h0 + 2))
	check_eq "HAProxy's last check of replica 1 passed" "$(sp_stat_field replicas r1 check_status)" L7OK
	check_eq "no check of replica 1 failed" "$(sp_stat_field replicas r1 chkfail)" 0
	check_eq "HAProxy has replica 1 UP" "$(sp_stat_field replicas r1 status)" UP
	check_eq "a check by hand is answered 200" \
		"$(http_code "$SP_HAP_NS" "http://$(sp_rep_ip 1):$SP_CHECK_PORT/healthz")" 200
	js=$(r1_status)
	check_eq "class health sheds nothing" \
		"$(cls "$js" health shed_drop) $(cls "$js" health shed_reset) $(cls "$js" health shed)" "0 0 0"
	check_eq "class health's connections are not counted in flight" "$(jqr "$js" '.services[0].inflight')" 1
	check_eq "another source on the check port is not bypassed (dropped)" \
		"$(http_code "$SP_HAP_NS" "http://$(sp_rep_ip 1):$SP_CHECK_PORT/healthz" --interface "$STRANGER_IP" --max-time 2)" 000
	check_cmp "it is shed by the default class" "$(cls "$(r1_status)" default shed_drop)" -ge 1
}

test_shed_connections_are_reset_and_redispatched() {
	local js reset0 redis0 wredis0 i codes=""
	js=$(r1_status)
	reset0=$(cls "$js" lb shed_reset)
	redis0=$(sp_stat_field replicas r1 wredis)
	wredis0=$(sp_stat_field replicas BACKEND wredis)
	# Round robin: of 9 requests, 3 are for replica 1.
	for i in $(seq 9); do
		codes+="$(http_code "$SP_CLI_NS" "http://$SP_FRONT_IP:$SP_FRONT_PORT/") "
	done
	: "$i"
	check_eq "every request through HAProxy is answered 200" "$codes" "$(printf '200 %.0s' $(seq 9))"
	js=$(r1_status)
	check_cmp "loadshed refused HAProxy's connections to replica 1 with a RST" \
		"$(cls "$js" lb shed_reset)" -gt "${reset0:-0}"
	check_eq "and dropped none" "$(cls "$js" lb shed_drop)" 0
	check_cmp "HAProxy redispatched them away from replica 1 (its wredis)" \
		"$(sp_stat_field replicas r1 wredis)" -gt "${redis0:-0}"
	check_cmp "the backend counts the redispatches (wredis)" \
		"$(sp_stat_field replicas BACKEND wredis)" -gt "${wredis0:-0}"
	check_eq "no answer was a server error (eresp)" "$(sp_stat_field replicas BACKEND eresp)" 0
}

test_with_every_replica_full_haproxy_answers_503() {
	local econ0 code n
	econ0=$(sp_stat_field replicas r1 econ)
	# Only replica 1, full, is left to HAProxy.
	for n in 2 3; do
		sp_haproxy_cmd "disable server replicas/r$n" >/dev/null
		defer sp_haproxy_cmd "enable server replicas/r$n"
	done
	check_eq "replicas 2 and 3 are in maintenance" \
		"$(sp_stat_field replicas r2 status) $(sp_stat_field replicas r3 status)" "MAINT MAINT"
	code=$(http_code "$SP_CLI_NS" "http://$SP_FRONT_IP:$SP_FRONT_PORT/" --max-time 15)
	check_eq "a request is answered 503 by HAProxy" "$code" 503
	check_cmp "after connection errors on replica 1 (econ)" "$(sp_stat_field replicas r1 econ)" -gt "${econ0:-0}"
	check_eq "replica 1 is still UP: its checks pass" "$(sp_stat_field replicas r1 status)" UP
}

test_cleanup_leaves_nothing() {
	local pin agent pids=() pid st name n left=""
	pin=$(sp_pin_dir 1)
	agent=$(jqr "$(r1_status)" '.agent.pid // empty')
	check "replica 1 has its pins" test -d "$pin"
	check "replica 1 has its agent" test -d "/proc/${agent:-0}"
	while read -r pid st name; do
		pids+=("$pid:$st:$name")
	done <"$SP_STATE/pids"
	check_cmp "the testbed tracks its processes" "${#pids[@]}" -ge 4
	sp_down
	for n in "$SP_CLI_NS" "$SP_HAP_NS" "$(sp_rep_ns 1)" "$(sp_rep_ns 2)" "$(sp_rep_ns 3)"; do
		[ -e "/run/netns/$n" ] && left+="$n "
	done
	check_eq "no namespace is left" "$left" ""
	check "no pin is left" test ! -e "$pin"
	for n in $(seq 50); do
		[ -d "/proc/$agent" ] || break
		sleep 0.1
	done
	check "the agent is gone" test ! -d "/proc/$agent"
	left=""
	for n in "${pids[@]}"; do
		IFS=: read -r pid st name <<<"$n"
		tb_alive "$pid" "$st" && left+="$name "
	done
	check_eq "no process of the testbed is left" "$left" ""
	check "its state directory is gone" test ! -e "$SP_STATE"
}

require_root
require_cmds jq nsenter ip haproxy curl
suite_setup setup_suite
run_test "HAProxy's configuration is valid" test_haproxy_config_is_valid
run_test "health checks bypass a full service" test_health_checks_bypass_a_full_service
run_test "shed connections are reset and redispatched" test_shed_connections_are_reset_and_redispatched
run_test "with every replica full, HAProxy answers 503" test_with_every_replica_full_haproxy_answers_503
run_test "cleanup leaves nothing" test_cleanup_leaves_nothing
tap_done
