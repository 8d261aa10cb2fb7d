#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz/ (built by `make fuzzers` into
# build/fuzz/), all at once, each for SECONDS of wall time, and prints one
# line per harness. Each runs on build/fuzz/corpus/HARNESS: the checked-in
# seeds of tests/fuzz/corpus/HARNESS copied in, next to what earlier runs
# found there (new inputs are written there, never into tests/). A crash,
# leak, sanitizer report or broken invariant is saved under
# build/fuzz/crashes/HARNESS/ and makes the run fail; the harness's log is
# build/fuzz/logs/HARNESS.log. fuzz_dataplane loads BPF programs: it needs
# root.
#
# Usage: scripts/fuzz.sh [SECONDS] [HARNESS...]    (default: 60 s, every harness)
# Extra libFuzzer flags: FUZZ_FLAGS="-max_len=4096 ..." scripts/fuzz.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

seconds=${1:-60}
shift || true
build=build/fuzz
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
	for src in tests/fuzz/fuzz_*.c; do
		harnesses+=("$(basename "$src" .c)")
	done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/logs"

# run HARNESS: libFuzzer for $seconds on the harness's corpus; its status is its exit code.
run() {
	local h=$1 corpus=$build/corpus/$1 crashes=$build/crashes/$1/
	mkdir -p "$corpus" "$crashes"
	cp -n tests/fuzz/corpus/"$h"/* "$corpus"/ 2>/dev/null
	# shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
	"$build/$h" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
		-print_final_stats=1 -artifact_prefix="$crashes" ${FUZZ_FLAGS:-} "$corpus" \
		>"$build/logs/$h.log" 2>&1
}

declare -A pid
for h in "${harnesses[@]}"; do
	if [ ! -x "$build/$h" ]; then
		echo "$build/$h: not built (make fuzzers)" >"$build/logs/$h.log"
		continue
	fi
	run "$h" &
	pid[$h]=$!
done

failed=0
for h in "${harnesses[@]}"; do
	log=$build/logs/$h.log
	rc=1
	[ -n "${pid[$h]:-}" ] && { wait "${pid[$h]}"; rc=$?; }
	# libFuzzer's last status line: "#RUNS DONE cov: C ft: F corp: N/SIZE ..."
	stats=$(grep -E '^#[0-9]+' "$log" | tail -1 |
		sed -nE 's/^#([0-9]+).*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/\1 runs, cov \2, ft \3, corpus \4/p')
	if [ "$rc" -eq 0 ]; then
		printf '%-18s ok     %s s, %s\n' "$h" "$seconds" "${stats:-no statistics}"
		continue
	fi
	failed=$((failed + 1))
	artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | cut -d' ' -f5)
	why=$(grep -m1 -E 'fuzz: invariant broken|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|cannot|not built' "$log")
	printf '%-18s FAILED (status %d) %s\n' "$h" "$rc" "${why:-see $log}"
	[ -n "$artifact" ] && printf '%-18s        input: %s\n' "" "$artifact"
	printf '%-18s        log: %s\n' "" "$log"
done
[ "$failed" -eq 0 ]
