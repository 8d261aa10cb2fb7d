#!/usr/bin/env bash
# loadshed top on an attached testbed with real traffic: plain frames off a
# terminal, JSON frames whose rates are the counters' deltas, and on a
# terminal (a pty from script(1)) q, Ctrl-C and SIGTERM each end it with
# status 0 and the terminal as it was. Bad -n/-d are usage errors.
# Needs root.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

PORT=8080
HIGH=10.201.0.2
LOW=10.201.0.3

setup_suite() {
	testbed_up "top$$" || return 1
	bg_srv "$LS_TOOLS/ls-server" --listen 0.0.0.0:$PORT --workers 4 --service-ms 5 \
		>"$LS_TMP/server.log" 2>&1
	wait_for_line "$LS_TMP/server.log" listening 10 || return 1
	# A pinned limit of 3 under far more load: both classes are admitted and shed.
	ls_attach "$SRV_IF" --port $PORT --limit 3 --class high=50%,reset,src=$HIGH/32 \
		--class low=0%,drop,src=$LOW/32 >/dev/null
}

# Open-loop load on both classes for at most 30 s, stopped with the test.
start_traffic() {
	bg_cli "$LS_TOOLS/ls-loadgen" --duration 30 \
		--class name=high,src=$HIGH,target=10.201.0.1:$PORT,rate=100,deadline_ms=500 \
		--class name=low,src=$LOW,target=10.201.0.1:$PORT,rate=600,deadline_ms=500 \
		>"$LS_TMP/loadgen.out" 2>&1 </dev/null
	# Traffic is flowing once status counts an admitted connection.
	for _ in $(seq 100); do
		[ "$(ls_srv -j status "$SRV_IF" | jq '[.services[0].classes[].admitted] | add')" -gt 0 ] &&
			return 0
		sleep 0.1
	done
	return 1
}

# The class lines of one class in plain frames: "  NAME  inflight guar rate rate rate p50 p99".
class_lines() { grep -E "^  $2 +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ " "$1"; }

test_batch_prints_count_frames_with_classes_and_rates() {
	local out=$LS_TMP/top.out rc shed
	start_traffic || {
		not_ok "traffic reaches the attachment"
		return 1
	}
	ls_srv top "$SRV_IF" -n 3 -d 0.2 >"$out" 2>"$LS_TMP/top.err"
	rc=$?
	check_eq "top -n 3 off a terminal exits 0" "$rc" 0
	check_eq "it prints 3 frames" "$(grep -c "^loadshed top $SRV_IF - " "$out")" 3
	check_eq "each frame has the service line" "$(grep -c '^service main: admits connections' "$out")" 3
	check_eq "each frame has the class header" "$(grep -c '^  class .*admitted/s .*shed/s' "$out")" 3
	check_eq "each frame has a row of rates for high" "$(class_lines "$out" high | wc -l)" 3
	check_eq "each frame has a row of rates for low" "$(class_lines "$out" low | wc -l)" 3
	# Under 2x its capacity with a limit of 3, low is shed in some frame.
	shed=$(class_lines "$out" low | awk '{ s += $5 } END { print (s > 0) }')
	check_eq "the low class's shed/s is above 0 under overload" "$shed" 1
	check "no escape sequence off a terminal" bash -c "! grep -q $'\033' '$out'"
	check_eq "nothing on stderr" "$(cat "$LS_TMP/top.err")" ""
}

test_json_frames_are_counter_deltas() {
	local out=$LS_TMP/top.json before after
	start_traffic || {
		not_ok "traffic reaches the attachment"
		return 1
	}
	before=$(ls_srv -j status "$SRV_IF")
	ls_srv -j top "$SRV_IF" -n 3 -d 0.2 >"$out"
	check_eq "top -j -n 3 exits 0" "$?" 0
	after=$(ls_srv -j status "$SRV_IF")
	check_eq "3 JSON objects, one per line" "$(jq -c . "$out" | wc -l) $(wc -l <"$out")" "3 3"
	check_eq "frames are numbered 1..3" "$(jq -r .frame "$out" | tr '\n' ' ')" "1 2 3 "
	check_eq "every rate is a number >= 0" \
		"$(jq '[.services[].classes[] | .admitted_per_s, .shed_per_s, .would_shed_per_s |
			select(type != "number" or . < 0)] | length' "$out" | sort -u)" 0
	# Each frame's rate times its interval is the delta of the counters it prints.
	check_eq "rates are the counter deltas over the interval" "$(jq -s '
		[range(1; length) as $i | .[$i] as $f | .[$i - 1] as $p |
		 $f.services[0].classes[] as $c |
		 ($p.services[0].classes[] | select(.name == $c.name)) as $q |
		 (($c.admitted - $q.admitted) - $c.admitted_per_s * $f.interval_s),
		 (($c.shed - $q.shed) - $c.shed_per_s * $f.interval_s) |
		 select(. > 0.001 or . < -0.001)] | length' "$out")" 0
	check_cmp "some admitted in frames 2-3" \
		"$(jq -s '[.[1:][] | .services[0].classes[].admitted_per_s * .interval_s] | add | round' "$out")" -gt 0
	# status before and after bracket what top read.
	check_eq "top's counters lie between status before and after it" "$(jq -n \
		--argjson b "$before" --argjson a "$after" --slurpfile f "$out" '
		[$b.services[0].classes[] as $bc | ($f[] | .services[0].classes[] |
		 select(.name == $bc.name)) as $fc |
		 ($a.services[0].classes[] | select(.name == $bc.name)) as $ac |
		 select($fc.admitted < $bc.admitted or $fc.admitted > $ac.admitted or
			$fc.shed < $bc.shed or $fc.shed > $ac.shed)] | length')" 0
	check_eq "latency quantiles are null or p50 <= p99" "$(jq '[.services[].classes[] |
		select(.p50_us != null and .p50_us > .p99_us)] | length' "$out" | sort -u)" 0
}

# on_pty NAME KEYS: runs top in a pty under script(1), between two `stty -a`;
# once its first frame is on the screen, KEYS are typed (or, for "TERM",
# SIGTERM is sent). Leaves $LS_TMP/NAME.{out,rc,before,after}.
on_pty() {
	local d=$LS_TMP/$1 keys=$2 cmd
	cmd="stty -a >$d.before; sh -c 'echo \$\$ >$d.pid; exec nsenter --net=/run/netns/$SRV_NS \
$LOADSHED top $SRV_IF -d 0.2'; echo \$? >$d.rc; stty -a >$d.after"
	# shellcheck disable=SC2094 # the writer waits for what script writes: that is the point
	{
		wait_for_line "$d.out" "frame 1" 20
		if [ "$keys" = TERM ]; then
			kill -TERM "$(cat "$d.pid")"
		else
			printf '%b' "$keys"
		fi
		# Keeps script's input open while top reads the keys.
		sleep 2
	} | SHELL=/bin/bash timeout 30 script -qfec "$cmd" /dev/null >"$d.out" 2>&1
}

# check_pty_exit NAME HOW: the checks of one on_pty run.
check_pty_exit() {
	local d=$LS_TMP/$1
	check "on a terminal it draws frames ($2)" grep -qa "^  high " "$d.out"
	check_eq "$2 exits top with status 0" "$(cat "$d.rc" 2>/dev/null)" 0
	check "$2: the alternate screen is left and the cursor shown" \
		grep -qa $'\033\\[?25h\033\\[?1049l' "$d.out"
	check "$2: the terminal's settings are as before (stty -a)" diff "$d.before" "$d.after"
}

test_on_a_terminal_q_exits_and_restores_it() {
	on_pty q q
	check "top entered the alternate screen" grep -qa $'\033\\[?1049h' "$LS_TMP/q.out"
	check_pty_exit q "q"
}

test_on_a_terminal_ctrl_c_exits_0_and_restores_it() {
	on_pty intr '\003'
	check_pty_exit intr "Ctrl-C"
}

test_sigterm_exits_0_and_restores_the_terminal() {
	on_pty term TERM
	check_pty_exit term "SIGTERM"
}

test_sigint_ends_batch_mode_with_0() {
	local pid
	bg_srv "$LOADSHED" top "$SRV_IF" -d 0.2 >"$LS_TMP/batch.out" 2>&1
	pid=$!
	wait_for_line "$LS_TMP/batch.out" "frame 1" 20
	kill -INT "$pid"
	wait "$pid"
	check_eq "SIGINT ends top off a terminal with status 0" "$?" 0
}

test_bad_arguments_are_usage_errors() {
	local a
	for a in "-n 0" "-n -1" "-n abc" "-n 1x" "-n 99999999999" "-d 0" "-d -1" "-d nan" \
		"-d inf" "-d 1e9" "-d 0.2s" "-d ''" "extra"; do
		eval "ls_srv top $SRV_IF $a" >"$LS_TMP/out" 2>"$LS_TMP/err"
		check_eq "top $a is a usage error (exit 2)" "$?" 2
		check "top $a says why on stderr" test -s "$LS_TMP/err"
	done
	ls_srv -j top "$SRV_IF" -n 0 >"$LS_TMP/out"
	check "with -j the error is a JSON object" jq -e .error "$LS_TMP/out"
	ls_srv top nosuchif0 -n 1 >/dev/null 2>&1
	check_eq "top of an interface not attached is a runtime error (exit 1)" "$?" 1
}

require_root
require_cmds jq script stty
suite_setup setup_suite
run_test "off a terminal, -n 3 prints 3 frames with classes and rates" \
	test_batch_prints_count_frames_with_classes_and_rates
run_test "-j frames parse, and their rates are the counters' deltas" test_json_frames_are_counter_deltas
run_test "on a terminal, q exits 0 and restores it" test_on_a_terminal_q_exits_and_restores_it
run_test "on a terminal, Ctrl-C exits 0 and restores it" test_on_a_terminal_ctrl_c_exits_0_and_restores_it
run_test "on a terminal, SIGTERM exits 0 and restores it" test_sigterm_exits_0_and_restores_the_terminal
run_test "off a terminal, SIGINT exits 0" test_sigint_ends_batch_mode_with_0
run_test "bad -n and -d are usage errors" test_bad_arguments_are_usage_errors
tap_done
