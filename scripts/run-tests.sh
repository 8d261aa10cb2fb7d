#!/usr/bin/env bash
# Runs every test suite and ends with one line "P passed, F failed, S skipped".
#
# Each suite prints TAP lines ("ok N - name" / "not ok N - name"): the
# cmocka binaries through CMOCKA_MESSAGE_OUTPUT=TAP, the shell suites
# through tests/lib.sh. A test line with a "# SKIP" directive is a skip,
# whether it says "ok" (tests/lib.sh, tests/bpf/lib) or "not ok" (cmocka
# 1.1's skip() prints "not ok N # SKIP name"); a plan "1..0 # SKIP why"
# skips a whole suite. A suite that exits non-zero without reporting a
# failure (a crash, a sanitizer report) counts as one failure, as does a
# test binary that was not built.
#
# The exit status is non-zero when anything failed, and also when anything
# was skipped: a run that skipped tests proved nothing about them, so CI
# must not go green that way. LS_ALLOW_SKIP=1 accepts skips (a developer
# without root, say).
#
# Usage: scripts/run-tests.sh [SUITE_PATTERN]   e.g. scripts/run-tests.sh integration
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

pattern=${1:-}
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LOADSHED=${LOADSHED:-$PWD/build/san/loadshed}
export LS_TOOLS=${LS_TOOLS:-$PWD/build/tools}

passed=0
failed=0
skipped=0
log_dir=$(mktemp -d /tmp/loadshed-tests.XXXXXX)

# A TAP test line ("ok 3 - x", "not ok 4 # SKIP y") carrying a SKIP directive.
skip_re='^(not )?ok [0-9]+([^#]*)#[[:space:]]*[Ss][Kk][Ii][Pp]'

# exec_suite NAME CMD...: runs a suite into its log, with its exit status
# and duration beside it (LOG.rc), for report_suite.
exec_suite() {
	local name=$1
	shift
	local out start=$SECONDS rc
	out="$log_dir/$(echo "$name" | tr '/' '_').log"
	if [ -x "$1" ] || [ "$1" = bash ]; then
		"$@" >"$out" 2>&1
		rc=$?
	else
		echo "$1: not built (make tests)" >"$out"
		rc=1
	fi
	echo "$rc $((SECONDS - start))" >"$out.rc"
}

# report_suite NAME: counts and prints what exec_suite left.
report_suite() {
	local name=$1
	local out rc took ok notok skip
	out="$log_dir/$(echo "$name" | tr '/' '_').log"
	read -r rc took <"$out.rc"
	skip=$(grep -cE "$skip_re" "$out")
	ok=$(grep -E '^ok [0-9]+' "$out" | grep -cvE "$skip_re")
	notok=$(grep -E '^not ok [0-9]+' "$out" | grep -cvE "$skip_re")
	if [ "$ok$notok$skip" = 000 ] && grep -qiE '^1\.\.0[[:space:]]*#[[:space:]]*skip' "$out"; then
		skip=1
	fi
	if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
		notok=1
		echo "not ok - $name exited with status $rc without reporting a failure" >>"$out"
	fi
	passed=$((passed + ok))
	failed=$((failed + notok))
	skipped=$((skipped + skip))
	printf '%-40s %3d passed, %3d failed, %3d skipped (%ds)\n' "$name" "$ok" "$notok" "$skip" \
		"$took"
	if [ "$notok" -ne 0 ]; then
		grep -E '^not ok|^#' "$out" | grep -vE "$skip_re" | head -40 | sed 's/^/    /'
	fi
	if [ "$skip" -ne 0 ]; then
		grep -iE "$skip_re|^1\.\.0" "$out" | head -5 | sed 's/^/    /'
	fi
	if [ "$notok" -ne 0 ] || [ "$skip" -ne 0 ]; then
		echo "    full log: $out"
	fi
}

run_suite() {
	exec_suite "$@"
	report_suite "$1"
}

# The suites are named by their sources, so a binary left in build/ by a
# test file that no longer exists is never run.
for src in tests/unit/test_*.c; do
	[ -f "$src" ] || continue
	t=build/san/tests/$(basename "$src" .c)
	case "$t" in *"$pattern"*) ;; *) [ -n "$pattern" ] && continue ;; esac
	run_suite "$(basename "$t")" "$t"
done
# The BPF suites spend their time in the verifier, one load per test, and
# share nothing (maps of their own, no pins, anonymous namespaces): they run
# LS_TEST_JOBS at a time (default: the CPUs), reported in order. test_races
# runs alone: its threads race on every CPU.
jobs=${LS_TEST_JOBS:-$(nproc)}
bpf_suites=()
for src in tests/bpf/test_*.c; do
	[ -f "$src" ] || continue
	t=build/san/tests/$(basename "$src" .c)
	case "$t" in *"$pattern"*) ;; *) [ -n "$pattern" ] && continue ;; esac
	bpf_suites+=("$t")
done
running=0
for t in "${bpf_suites[@]}"; do
	[ "$(basename "$t")" = test_races ] && continue
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	exec_suite "$(basename "$t")" "$t" &
	running=$((running + 1))
done
wait
for t in "${bpf_suites[@]}"; do
	if [ "$(basename "$t")" = test_races ]; then
		run_suite test_races "$t"
	else
		report_suite "$(basename "$t")"
	fi
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	case "$t" in *"$pattern"*) ;; *) [ -n "$pattern" ] && continue ;; esac
	run_suite "$t" bash "$t"
done

if [ "$skipped" -ne 0 ] && [ "${LS_ALLOW_SKIP:-0}" != 1 ]; then
	echo "# $skipped skipped: the run fails (LS_ALLOW_SKIP=1 accepts skips)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
[ "$skipped" -eq 0 ] || [ "${LS_ALLOW_SKIP:-0}" = 1 ] || exit 1
exit 0
