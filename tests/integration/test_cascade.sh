#!/usr/bin/env bash
# The cascading-failure harness (scripts/cascade.sh) and its middle tier,
# ls-cascade-a, on the testbed: A in the server namespace, its upstream B
# (ls-server) on 10.201.0.9 in the client namespace, requests from the
# client namespace. A answers local and remote requests over a pool and
# per call; a remote call that B refuses, resets or does not answer in
# time becomes an "error" answer (with a timeout far longer than the test,
# so an answer at all proves the refusal made it); a pool outlives a
# restart of B; the harness tells a loadshed without [upstream] from one
# with it, or from a failing one. Outcomes only, no timing thresholds.
# Needs root.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"
# shellcheck source=scripts/cascade.sh disable=SC1091
CASCADE_SOURCED=1 . "$LS_ROOT/scripts/cascade.sh"

require_root
require_cmds curl jq

A_LONG_MS=600000 # A's per-call timeout where the test wants no timeout at all
B_ADDR=10.201.0.9:9000

# start_b [ARGS...]: B in the client namespace; waits for its ready line.
start_b() {
	bg_cli "$LS_TOOLS/ls-server" --listen "$B_ADDR" "$@" >"$LS_TMP/b.out" 2>&1
	B_PID=$!
	wait_for_line "$LS_TMP/b.out" '^listening'
}

declare -A A_PIDS # A's PID by port

# start_a PORT ARGS...: A in the server namespace on 10.201.0.1:PORT, calling B.
start_a() {
	local port=$1
	shift
	bg_srv "$LS_TOOLS/ls-cascade-a" --listen "10.201.0.1:$port" --upstream "$B_ADDR" \
		--workers 4 --local-ms 1 "$@" >"$LS_TMP/a-$port.out" 2>&1
	A_PIDS[$port]=$!
	wait_for_line "$LS_TMP/a-$port.out" '^listening'
}

# get PORT PATH: one request to A from the client namespace: "STATUS BODY".
get() {
	local body code
	code=$(in_cli curl -s -o "$LS_TMP/body" -w '%{http_code}' --max-time 30 \
		"http://10.201.0.1:$1$2") || code="curl-failed:$code"
	body=$(tr -d '\n' <"$LS_TMP/body" 2>/dev/null)
	echo "$code $body"
}

# stop_a PORT: SIGTERM to A; prints its stats line.
stop_a() {
	kill -TERM "${A_PIDS[$1]}"
	wait_for_line "$LS_TMP/a-$1.out" '^stats ' && grep '^stats ' "$LS_TMP/a-$1.out"
}

test_a_answers_local_and_remote() {
	testbed_up || return 1
	start_b --workers 4 --service-ms 1 || return 1
	start_a 8081 --pool 2 || return 1
	start_a 8082 --per-call || return 1
	check_eq "pool: local is answered ok" "$(get 8081 /local)" "200 ok"
	check_eq "pool: remote is answered ok through B" "$(get 8081 /remote)" "200 ok"
	check_eq "pool: a second remote call reuses the pool" "$(get 8081 /remote)" "200 ok"
	check_eq "per-call: local is answered ok" "$(get 8082 /local)" "200 ok"
	check_eq "per-call: remote is answered ok through B" "$(get 8082 /remote)" "200 ok"
	check_eq "anything else is 404" "$(get 8082 /x)" "404 not found"
	check "per-call: one connect per call (stats)" \
		grep -q 'remote_ok=1 .*connects=1$' <<<"$(stop_a 8082)"
	check "pool: two calls, one connection" grep -q 'remote_ok=2 .*connects=1$' <<<"$(stop_a 8081)"
}

test_remote_fails_with_error_when_b_refuses() {
	testbed_up || return 1
	# No B: the connect is refused, far before A's timeout.
	start_a 8081 --pool 2 --timeout-ms "$A_LONG_MS" || return 1
	start_a 8082 --per-call --timeout-ms "$A_LONG_MS" || return 1
	check_eq "pool: remote answers error ECONNREFUSED" "$(get 8081 /remote)" "503 error ECONNREFUSED"
	check_eq "per-call: remote answers error ECONNREFUSED" "$(get 8082 /remote)" \
		"503 error ECONNREFUSED"
	check_eq "local is still answered" "$(get 8082 /local)" "200 ok"
	check "the refusal is counted" grep -q 'remote_refused=1 ' <<<"$(stop_a 8082)"
}

test_pool_survives_a_restart_of_b() {
	local out
	testbed_up || return 1
	start_b --workers 2 --service-ms 1 || return 1
	start_a 8081 --pool 1 --timeout-ms "$A_LONG_MS" || return 1
	check_eq "remote ok over the pooled connection" "$(get 8081 /remote)" "200 ok"
	kill -TERM "$B_PID"
	wait "$B_PID" 2>/dev/null
	out=$(get 8081 /remote)
	check "with B gone the pooled call answers error at once" grep -qE '^503 error E[A-Z]+$' <<<"$out"
	start_b --workers 2 --service-ms 1 || return 1
	check_eq "with B back the pool reconnects" "$(get 8081 /remote)" "200 ok"
}

test_a_slow_b_is_a_timeout_error() {
	testbed_up || return 1
	start_b --workers 2 --service-ms 20000 || return 1
	start_a 8081 --pool 2 --timeout-ms 100 || return 1
	start_a 8082 --per-call --timeout-ms 100 || return 1
	check_eq "pool: a call past the timeout answers error ETIMEDOUT" "$(get 8081 /remote)" \
		"503 error ETIMEDOUT"
	check_eq "per-call: likewise" "$(get 8082 /remote)" "503 error ETIMEDOUT"
	check "the timeout is counted" grep -q 'remote_timeout=1 ' <<<"$(stop_a 8082)"
}

test_a_rejects_pool_with_per_call() {
	local rc=0
	"$LS_TOOLS/ls-cascade-a" --listen 127.0.0.1:0 --upstream 127.0.0.1:1 --pool 2 --per-call \
		2>"$LS_TMP/err" || rc=$?
	check_eq "--pool with --per-call is a usage error" "$rc" 2
	check "it says why" grep -q 'exclude each other' "$LS_TMP/err"
}

# A stand-in for loadshed: prints $STUB_ERR on stderr and exits $STUB_RC.
write_stub() {
	cat >"$LS_TMP/stub" <<'EOF'
#!/bin/sh
[ -n "$STUB_ERR" ] && echo "$STUB_ERR" >&2
exit "$STUB_RC"
EOF
	chmod +x "$LS_TMP/stub"
}

test_breaker_mode_is_detected() {
	local rc cg_dir conf=$LS_TMP/breaker.conf
	write_stub
	cascade_breaker_conf "$conf" /loadshed-cascade-test
	check "the breaker config names the upstream and the cgroup" \
		grep -qzE '\[upstream b\].*dest = 10\.201\.0\.9:9000.*cgroup = /loadshed-cascade-test' "$conf"
	rc=0
	STUB_RC=2 STUB_ERR="loadshed: $conf:7: [upstream b]: unknown section (expected [agent], [service NAME] or [class SERVICE.CLASS])" \
		cascade_breaker_attach "$LS_TMP/stub" lo "$conf" "$LS_TMP/err" || rc=$?
	check_eq "a loadshed without [upstream]: not available (3)" "$rc" 3
	rc=0
	STUB_RC=0 STUB_ERR= cascade_breaker_attach "$LS_TMP/stub" lo "$conf" "$LS_TMP/err" || rc=$?
	check_eq "an attach that works: available (0)" "$rc" 0
	rc=0
	STUB_RC=1 STUB_ERR="loadshed: attach lo: Operation not permitted" \
		cascade_breaker_attach "$LS_TMP/stub" lo "$conf" "$LS_TMP/err" || rc=$?
	check_eq "another failure is a failure (1), not 'not available'" "$rc" 1

	# The real loadshed, on the testbed: available, or not and nothing attached.
	# Its upstream's cgroup must exist: one of this run's.
	cg_dir=$(awk '{ for (i = 1; i < NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") print $5; break } }' \
		/proc/self/mountinfo | head -1)/ls-cascade-$$
	mkdir -p "$cg_dir" || return 1
	defer rmdir "$cg_dir"
	cascade_breaker_conf "$conf" "/ls-cascade-$$"
	testbed_up || return 1
	_register detach "$SRV_IF" "$SRV_NS"
	rc=0
	cascade_breaker_attach "nsenter --net=/run/netns/$SRV_NS $LOADSHED" "$SRV_IF" "$conf" \
		"$LS_TMP/err" || rc=$?
	if [ "$rc" = 3 ]; then
		check "this loadshed has no [upstream]: nothing was attached" \
			bash -c "! nsenter --net=/run/netns/$SRV_NS $LOADSHED -j list | jq -e '.. | strings | select(. == \"$SRV_IF\")'"
	else
		check_eq "this loadshed takes the breaker config" "$rc:$(cat "$LS_TMP/err")" "0:"
	fi
}

test_cascade_sh_rejects_bad_arguments() {
	local rc=0
	"$LS_ROOT/scripts/cascade.sh" --only nothing >/dev/null 2>"$LS_TMP/err" || rc=$?
	check_eq "an unknown mode is a usage error" "$rc" 2
	rc=0
	"$LS_ROOT/scripts/cascade.sh" --calls sometimes >/dev/null 2>"$LS_TMP/err" || rc=$?
	check_eq "an unknown --calls is a usage error" "$rc" 2
	check "--help prints the usage" grep -q '^Usage: scripts/cascade.sh' \
		<("$LS_ROOT/scripts/cascade.sh" --help)
}

run_test "A answers local and remote, pooled and per call" test_a_answers_local_and_remote
run_test "a remote call B refuses is an error answer, not a wait" test_remote_fails_with_error_when_b_refuses
run_test "the pool survives a restart of B" test_pool_survives_a_restart_of_b
run_test "a call past A's timeout is an error answer" test_a_slow_b_is_a_timeout_error
run_test "ls-cascade-a: --pool and --per-call exclude each other" test_a_rejects_pool_with_per_call
run_test "cascade.sh tells whether loadshed has the breaker" test_breaker_mode_is_detected
run_test "cascade.sh rejects bad arguments" test_cascade_sh_rejects_bad_arguments
tap_done
