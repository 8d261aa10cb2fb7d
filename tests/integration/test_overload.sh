#!/usr/bin/env bash
# Overload, end to end: a server offered three times its capacity (20 % high,
# 80 % low priority, a connection per request) collapses without protection;
# with loadshed the high class keeps succeeding and the server keeps serving
# near its capacity. Outcomes only, with wide margins, never timings: it must
# hold on a busy 2-core VM. About 20 s. Needs root.
#
# The suite's fixture is the pair of runs, on one testbed one after the
# other, so that the comparisons hold on the same machine at the same time;
# each test then judges one property of their results and changes nothing.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib.sh disable=SC1091
. "$ROOT/tests/lib.sh"

SECS=6
export LOADSHED # build/san/loadshed under scripts/run-tests.sh

# run_scenario PROTECTION NAME: one steady 3x overload run, checked as NAME;
# its results in $RUNS/PROTECTION.
run_scenario() {
	if "$ROOT/scripts/scenario.sh" steady "$1" --id "$TB_ID" --seconds $SECS --seed 42 \
		--out "$RUNS/$1" >"$RUNS/$1.log" 2>&1; then
		ok "$2"
	else
		not_ok "$2" "$(tail -n 5 "$RUNS/$1.log")"
	fi
	sed 's/^/# /' "$RUNS/$1.log"
}

setup_suite() {
	RUNS=$LS_TMP
	testbed_up "ov$$" >/dev/null || return 1
	run_scenario none "3x overload without protection runs"
	run_scenario loadshed "3x overload with loadshed runs"
}

field() { jq -r "$2" "$RUNS/$1/summary.json" 2>/dev/null; }
# int X: a number rounded to an integer (empty when X is not a number).
int() { awk -v x="$1" 'BEGIN { if (x ~ /^-?[0-9.]+$/) printf "%d", x + 0.5 }'; }
# class_shed CLASS: what loadshed shed of CLASS in the run.
class_shed() {
	jq -r --arg c "$1" '.services[0].classes[] | select(.name == $c) | .shed' \
		"$RUNS/loadshed/status-end.json" 2>/dev/null
}

# scenario.sh's LOAD is checked before the run makes anything.
test_scenario_refuses_a_bad_load_before_anything() {
	local load out
	for load in 0 -1 abc 10.5 1e3; do
		out="$LS_TMP/load-$load"
		LOAD=$load "$ROOT/scripts/scenario.sh" unloaded none --id "$TB_ID" --out "$out" \
			>"$LS_TMP/load.log" 2>&1
		check_eq "LOAD=$load: scenario.sh exits 2" "$?" 2
		check_cmp "LOAD=$load: said why" "$(grep -c 'LOAD wants' "$LS_TMP/load.log")" -ge 1
		check_cmp "LOAD=$load: no output directory" "$([ -e "$out" ] && echo 1 || echo 0)" -eq 0
	done
	LOAD=1 "$ROOT/scripts/scenario.sh" surge none --id "$TB_ID" --out "$LS_TMP/load-surge" \
		>"$LS_TMP/load.log" 2>&1
	check_eq "LOAD with surge: exits 2" "$?" 2
}

test_unprotected_server_collapses() {
	check_cmp "unprotected, the server collapses: high success under 50 %" \
		"$(int "$(field none .high.ok_pct)")" -lt 50
}

test_loadshed_keeps_the_high_class_succeeding() {
	local none_high ls_high
	none_high=$(int "$(field none .high.ok_pct)")
	ls_high=$(int "$(field loadshed .high.ok_pct)")
	check_cmp "with loadshed the high class succeeds: over 90 %" "$ls_high" -ge 90
	check_cmp "with loadshed high success is 40 points above unprotected" \
		"$ls_high" -ge "$((${none_high:-100} + 40))"
}

test_loadshed_keeps_goodput_near_capacity() {
	local none_goodput ls_goodput
	none_goodput=$(int "$(field none .goodput_pct)")
	ls_goodput=$(int "$(field loadshed .goodput_pct)")
	check_cmp "with loadshed goodput stays over 70 % of capacity" "$ls_goodput" -ge 70
	check_cmp "with loadshed goodput is at least twice the unprotected one" \
		"$ls_goodput" -ge "$((${none_goodput:-100} * 2))"
}

test_loadshed_sheds_low_far_more_than_high() {
	local low_shed high_shed
	low_shed=$(class_shed low)
	high_shed=$(class_shed high)
	check_cmp "loadshed sheds the low class" "${low_shed:-}" -gt 0
	check_cmp "loadshed sheds low far more than high" "${low_shed:-}" -gt "$((${high_shed:-0} * 10))"
}

test_loadshed_leaves_nothing_behind() {
	check_eq "in-flight is back to 0 after the load" \
		"$(jq -r '.services[0].inflight' "$RUNS/loadshed/status-end.json" 2>/dev/null)" 0
	check "the run leaves no pins behind" test ! -e "$(pin_dir "$SRV_IF")"
}

require_root
require_cmds jq nsenter ip
suite_setup setup_suite
run_test "unprotected, the server collapses" test_unprotected_server_collapses
run_test "loadshed keeps the high class succeeding" test_loadshed_keeps_the_high_class_succeeding
run_test "loadshed keeps goodput near capacity" test_loadshed_keeps_goodput_near_capacity
run_test "loadshed sheds low far more than high" test_loadshed_sheds_low_far_more_than_high
run_test "loadshed leaves nothing behind" test_loadshed_leaves_nothing_behind
run_test "scenario.sh refuses a bad LOAD before anything" test_scenario_refuses_a_bad_load_before_anything
tap_done
