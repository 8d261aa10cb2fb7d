#!/usr/bin/env bash
# The libFuzzer harnesses of tests/fuzz/, briefly: each replays its
# checked-in corpus, then fuzzes for FUZZ_TEST_SECONDS (default 3) on a
# scratch copy of it. A crash, leak, sanitizer report or broken invariant
# fails the test; the input is saved under build/fuzz/crashes/HARNESS/.
# `make fuzz` runs them longer (README, Tests). fuzz_dataplane loads BPF
# programs: without root it is skipped.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

FUZZ_BUILD=$LS_ROOT/build/fuzz
FUZZ_TEST_SECONDS=${FUZZ_TEST_SECONDS:-3}

# fuzz_report NAME LOG STATUS: one TAP line for a harness run.
fuzz_report() {
	local why
	if [ "$3" -eq 0 ]; then
		ok "$1"
		return
	fi
	why=$(grep -m1 -E 'fuzz: invariant broken|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|cannot' "$2")
	not_ok "$1" "exit status $3: ${why:-no report}" \
		"$(grep -oE 'Test unit written to [^ ]+' "$2" | tail -1)" "log: $(tail -5 "$2" | tr '\n' ' ')"
}

# t_harness NAME: the corpus replays clean, then a short run finds nothing.
t_harness() {
	local h=$1 bin=$FUZZ_BUILD/$1 seeds=$LS_ROOT/tests/fuzz/corpus/$1
	local crashes=$FUZZ_BUILD/crashes/$1/ log=$LS_TMP/fuzz.log
	[ -x "$bin" ] || {
		not_ok "$h is built" "$bin: not built (make tests)"
		return 0
	}
	if [ "$h" = fuzz_dataplane ] && [ "$(id -u)" -ne 0 ]; then
		skip_this_test "needs root to load BPF programs"
	fi
	mkdir -p "$crashes" "$LS_TMP/corpus"
	cp "$seeds"/* "$LS_TMP/corpus/"
	"$bin" -runs=0 -artifact_prefix="$crashes" "$LS_TMP/corpus" >"$log" 2>&1
	fuzz_report "${h}_runs_its_corpus_clean ($(find "$seeds" -type f | wc -l) seeds)" "$log" $?
	"$bin" -max_total_time="$FUZZ_TEST_SECONDS" -timeout=30 -artifact_prefix="$crashes" \
		"$LS_TMP/corpus" >"$log" 2>&1
	fuzz_report "${h}_finds_nothing_in_${FUZZ_TEST_SECONDS}s" "$log" $?
}

for src in "$LS_ROOT"/tests/fuzz/fuzz_*.c; do
	h=$(basename "$src" .c)
	run_test "$h" t_harness "$h"
done
tap_done
