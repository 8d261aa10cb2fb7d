#!/usr/bin/env bash
# Per-packet cost of the XDP dataplane next to reference programs, with
# BPF_PROG_TEST_RUN (no NIC needed), printed as a Markdown table with the
# targets of doc/design.md §13. Needs root. `make bench-bpf` builds and
# runs it.
#
# Usage: scripts/bench-bpf.sh [-r REPEAT] [-n RUNS] [-s ONE_SHOT_SAMPLES]
#   defaults: 1000000 repetitions, median of 5 runs, 20000 one-shot samples
set -euo pipefail
cd "$(dirname "$0")/.."

bench=build/tests/bench_bpf
if [ ! -x "$bench" ]; then
	echo "bench-bpf: $bench is missing; run 'make tests' first" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-bpf: loading BPF programs needs root" >&2
	exit 1
fi
exec "$bench" "$@"
