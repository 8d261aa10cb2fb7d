#!/usr/bin/env bash
# Runs every test suite and ends with one line "N passed, N failed".
#
# Each suite prints TAP lines ("ok N - name" / "not ok N - name"): the
# cmocka binaries through CMOCKA_MESSAGE_OUTPUT=TAP, the shell suites
# through tests/lib.sh. A suite that exits non-zero without reporting a
# failure (a crash, a sanitizer report) counts as one failure.
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
log_dir=$(mktemp -d /tmp/loadshed-tests.XXXXXX)

run_suite() {
	local name=$1
	shift
	local out
	out="$log_dir/$(echo "$name" | tr '/' '_').log"
	local start=$SECONDS
	"$@" >"$out" 2>&1
	local rc=$?
	local ok notok
	ok=$(grep -cE '^ok [0-9]+' "$out")
	notok=$(grep -cE '^not ok [0-9]+' "$out")
	if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
		notok=1
		echo "not ok - $name exited with status $rc without reporting a failure" >>"$out"
	fi
	passed=$((passed + ok))
	failed=$((failed + notok))
	printf '%-40s %3d passed, %3d failed (%ds)\n' "$name" "$ok" "$notok" $((SECONDS - start))
	if [ "$notok" -ne 0 ]; then
		grep -E '^not ok|^#' "$out" | head -40 | sed 's/^/    /'
		echo "    full log: $out"
	fi
}

for t in build/san/tests/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *"$pattern"*) ;; *) [ -n "$pattern" ] && continue ;; esac
	run_suite "$(basename "$t")" "$t"
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	case "$t" in *"$pattern"*) ;; *) [ -n "$pattern" ] && continue ;; esac
	run_suite "$t" bash "$t"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
