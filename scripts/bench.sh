#!/usr/bin/env bash
# Every overload scenario against every protection, the per-packet BPF
# benchmark and the SYN-flood drop rate, in one run on this machine.
#
# Usage: scripts/bench.sh [--out DIR] [--only SCENARIO[,SCENARIO...]] [--no-build]
#                         [--no-scenarios] [--no-flood] [--no-spiral] [--flood-seconds S]
#                                                                          (as root; `make bench`)
#        scripts/bench.sh --algos [--out DIR] [--no-build]                 (as root; `make bench-algos`)
#
#   scenarios    unloaded (the latency floor), then steady, slowdown, surge and
#                synflood (a connection per request), each against none, iptables
#                (hand-tuned connlimit) and loadshed; then the work that is not a
#                connection per request: keepalive (also loadshed with
#                request_action abort), keepalive-attach, wrk, pgbench (none and
#                loadshed) and synflood-full (also at FLOOD_RATE_PPS, 100000, none
#                and loadshed, for the host CPU with headroom): scripts/scenario.sh,
#                about 15 minutes in all
#   bpf          scripts/bench-bpf.sh (per-packet cost with BPF_PROG_TEST_RUN),
#                when present
#   cascade      scripts/cascade.sh: a middle tier whose upstream slows x20, without
#                protection, with a client timeout and with loadshed's breaker (about
#                4 minutes), its table appended to RESULTS.md
#   flood        a live-frame SYN flood (ls-xdpflood, from the client namespace at
#                full speed) dropped on the server's veth by: a trivial XDP_DROP
#                program, loadshed (every SYN over its limit), iptables' raw table
#                (DROP in PREROUTING), and for reference nothing at all (XDP_PASS
#                and the kernel's SYN cookies); packets per second received
#   spiral       three replicas behind HAProxy, one killed at 0.8x of the three's
#                capacity, without and with loadshed on each (scripts/spiral.sh,
#                `make bench-spiral` alone; about 2 minutes); its table ends RESULTS.md
#
# Writes DIR (default results/bench)/RESULTS.md with the tables, the ratios
# against the baselines of the same run and the machine it ran on, a PNG per
# scenario, and every run's raw data in a folder of its own.
#
# --algos: what a user gets from each limit algorithm with its defaults (no
# limits, no parameters in loadshed's file), on several server shapes. For
# each shape in SHAPES ("16x40 32x10 4x100": workers x service ms, a
# connection per request): an unloaded run (0.3x capacity, no protection,
# after 3 s at 0.5x that show whether generator and server keep up), then
# for each algorithm in ALGOS (default gradient2 vegas aimd envoy delay, those
# this loadshed knows: `loadshed replay --algo NAME` accepts them) steady
# (3x capacity, ALGO_STEADY_S s, 15) and doubling (1.5x capacity, the service
# time doubled for the middle third of ALGO_DOUBLING_S s, 21); each run after
# 3 s of unmeasured warm-up at 0.5x. For reference, the same two runs with
# a limit tuned by hand for the shape, `fixed` at ceil(1.25 x W) (what the
# queueing-delay target aims at; REFERENCE=0 leaves them out). About 15
# minutes for five algorithms and the reference.
# The client veth keeps the kernel's checksum offload (the server side gets
# CHECKSUM_PARTIAL segments, as from a container's peer) unless TB_TX_CSUM=off
# (see testbed.sh) says it computes them, as a real NIC's sender. Writes DIR (default results/bench-algos)/
# RESULTS.md (scripts/bench-report.sh --algos) with one row per algorithm,
# scenario and shape next to the targets, a PNG per scenario and shape, and
# every run's data in SHAPE-SCENARIO-ALGORITHM/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=
BUILD=1
ALGOS_RUN=0
SCENARIOS=(steady slowdown surge synflood keepalive keepalive-attach wrk pgbench synflood-full)
PROTECTIONS=(none iptables loadshed)
DO_SCENARIOS=1
DO_FLOOD=1
DO_SPIRAL=1
FLOOD_SECONDS=5
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=${2:?--out wants a directory}; shift 2 ;;
	--algos) ALGOS_RUN=1; shift ;;
	--only) IFS=, read -r -a SCENARIOS <<<"${2:?--only wants scenarios}"; shift 2 ;;
	--no-build) BUILD=0; shift ;;
	--no-scenarios) DO_SCENARIOS=0; shift ;;
	--no-flood) DO_FLOOD=0; shift ;;
	--no-spiral) DO_SPIRAL=0; shift ;;
	--flood-seconds) FLOOD_SECONDS=${2:?--flood-seconds wants a number}; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) echo "bench: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$ROOT/scripts/testbed.sh"
BENCH_ID=bench
if [ "$ALGOS_RUN" = 1 ]; then
	OUT=${OUT:-$ROOT/results/bench-algos}
	BENCH_ID=algos
	export TB_TX_CSUM=${TB_TX_CSUM:-}
fi
OUT=${OUT:-$ROOT/results/bench}
tb_preflight bench "$BUILD"
TB_LOADSHED=${LOADSHED:-$TB_LOADSHED}
tb_names "$BENCH_ID"
FLOOD_PIN=$TB_PIN_ROOT/bench-ref-$$
bench_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	tb_down
	rm -rf "$FLOOD_PIN"
	exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
tb_up >/dev/null || { echo "bench: the testbed does not come up" >&2; exit 1; }
eval "$(tb_env)"
mkdir -p "$OUT"

# --- machine ------------------------------------------------------------------------
{
	echo "cpus=$(nproc)"
	echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	echo "kernel=$(uname -r)"
	echo "memory_mib=$(awk '/MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo)"
	echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo +changes)"
	echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
	# The machine may be shared: how busy it was when the run began.
	echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.env"

run() { # run SCENARIO PROTECTION [NAME] [ARGS...]: into OUT/NAME (default SCENARIO-PROTECTION)
	local name=${3:-$1-$2}
	echo "bench: $name"
	"$ROOT/scripts/scenario.sh" "$1" "$2" --id "$BENCH_ID" --out "$OUT/$name" "${@:4}" | sed 's/^/       /'
}

# --- the algorithms, with their defaults, on several server shapes ----------------------
if [ "$ALGOS_RUN" = 1 ]; then
	SHAPES=${SHAPES:-16x40 32x10 4x100}
	ALGOS=${ALGOS:-gradient2 vegas aimd envoy delay}
	ALGO_STEADY_S=${ALGO_STEADY_S:-15}
	ALGO_DOUBLING_S=${ALGO_DOUBLING_S:-21}
	ALGO_UNLOADED_S=${ALGO_UNLOADED_S:-8}
	known=() unknown=()
	for a in $ALGOS; do
		if "$TB_LOADSHED" replay --algo "$a" </dev/null >/dev/null 2>&1; then known+=("$a"); else unknown+=("$a"); fi
	done
	[ ${#known[@]} -gt 0 ] || { echo "bench: no algorithm of '$ALGOS' is known to $TB_LOADSHED" >&2; exit 1; }
	[ ${#unknown[@]} -gt 0 ] && echo "bench: $TB_LOADSHED does not know ${unknown[*]}: left out"
	{
		echo "algos=${known[*]}"
		echo "algos_unknown=${unknown[*]}"
		echo "shapes=$SHAPES"
		echo "steady_s=$ALGO_STEADY_S"
		echo "doubling_s=$ALGO_DOUBLING_S"
		echo "unloaded_s=$ALGO_UNLOADED_S"
		[ "${REFERENCE:-1}" = 0 ] || echo "reference=tuned"
		echo "tx_csum=${TB_TX_CSUM:-offload}"
		# Anything a user would have to know: set only for experiments.
		for v in LS_PARAMS LS_MIN_LIMIT LS_MAX_LIMIT LS_INITIAL_LIMIT; do
			[ -n "${!v:-}" ] && echo "override_$v=${!v}"
		done
	} >"$OUT/algos.env"
	START_S=$SECONDS
	for shape in $SHAPES; do
		if ! [[ $shape =~ ^([0-9]+)x([0-9]+)$ ]]; then
			echo "bench: bad shape '$shape' (WORKERSxSERVICE_MS)" >&2
			continue
		fi
		export WORKERS=${BASH_REMATCH[1]} SERVICE_MS=${BASH_REMATCH[2]}
		run unloaded none "$shape-unloaded-none" --seconds "$ALGO_UNLOADED_S" ||
			echo "bench: $shape unloaded failed" >&2
		for a in "${known[@]}"; do
			LS_ALGO=$a run steady loadshed "$shape-steady-$a" --seconds "$ALGO_STEADY_S" ||
				echo "bench: $shape steady with $a failed" >&2
			LS_ALGO=$a run doubling loadshed "$shape-doubling-$a" --seconds "$ALGO_DOUBLING_S" ||
				echo "bench: $shape doubling with $a failed" >&2
		done
		if [ "${REFERENCE:-1}" != 0 ]; then
			tuned="limit=$(((5 * WORKERS + 3) / 4))"
			LS_ALGO=fixed LS_PARAMS=$tuned run steady loadshed "$shape-steady-tuned" \
				--seconds "$ALGO_STEADY_S" || echo "bench: $shape steady tuned failed" >&2
			LS_ALGO=fixed LS_PARAMS=$tuned run doubling loadshed "$shape-doubling-tuned" \
				--seconds "$ALGO_DOUBLING_S" || echo "bench: $shape doubling tuned failed" >&2
		fi
		for s in steady doubling; do
			args=()
			for a in "${known[@]}" tuned; do
				[ -f "$OUT/$shape-$s-$a/summary.json" ] && args+=("$a=$OUT/$shape-$s-$a")
			done
			[ ${#args[@]} -gt 0 ] || continue
			"$ROOT/scripts/plot.sh" "$OUT/$s-$shape.png" "$s: $WORKERS workers x $SERVICE_MS ms, capacity $((WORKERS * 1000 / SERVICE_MS)) req/s" "${args[@]}" \
				>/dev/null || echo "bench: no plot for $s $shape" >&2
		done
	done
	unset WORKERS SERVICE_MS
	{
		echo "seconds=$((SECONDS - START_S))"
		echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
	} >>"$OUT/algos.env"
	"$ROOT/scripts/bench-report.sh" --algos "$OUT"
	echo "bench: $OUT/RESULTS.md ($(((SECONDS - START_S) / 60)) min $(((SECONDS - START_S) % 60)) s)"
	exit 0
fi
FLOOD_RATE_PPS=${FLOOD_RATE_PPS:-100000}

# --- scenarios ------------------------------------------------------------------------
if [ "$DO_SCENARIOS" = 1 ]; then
	run unloaded none
	for s in "${SCENARIOS[@]}"; do
		prots=("${PROTECTIONS[@]}")
		[ "$s" = pgbench ] && prots=(none loadshed) # iptables cannot tell pgbench's classes apart
		for p in "${prots[@]}"; do
			run "$s" "$p" || echo "bench: $s against $p failed" >&2
		done
		case $s in
		keepalive)
			LS_REQUEST_ACTION=abort run keepalive loadshed keepalive-loadshed-abort ||
				echo "bench: keepalive against loadshed (abort) failed" >&2
			;;
		synflood-full)
			for p in none loadshed; do
				FLOOD_PPS=$FLOOD_RATE_PPS FLOOD_THREADS=1 run synflood-full "$p" "synflood-rate-$p" ||
					echo "bench: synflood-full at $FLOOD_RATE_PPS pps against $p failed" >&2
			done
			;;
		esac
		[ "$s" = pgbench ] && continue # no ls-loadgen rows to plot
		args=()
		for p in "${PROTECTIONS[@]}"; do
			[ -f "$OUT/$s-$p/summary.json" ] && args+=("$p=$OUT/$s-$p")
		done
		if [ ${#args[@]} -gt 0 ]; then
			"$ROOT/scripts/plot.sh" "$OUT/$s.png" "$s: $(jq -r '"\(.workers) workers x \(.service_ms) ms, capacity \(.capacity_rps) req/s"' "${args[0]#*=}/summary.json")" "${args[@]}" ||
				echo "bench: no plot for $s" >&2
		fi
	done
fi

# --- per-packet BPF benchmark -----------------------------------------------------------
BPF_STATUS="not run: scripts/bench-bpf.sh is missing"
if [ -x "$ROOT/scripts/bench-bpf.sh" ]; then
	echo "bench: per-packet BPF benchmark (scripts/bench-bpf.sh)"
	if "$ROOT/scripts/bench-bpf.sh" >"$OUT/bpf.txt" 2>&1; then
		BPF_STATUS=ok
	else
		BPF_STATUS="failed (exit $?), output in bpf.txt"
	fi
fi

# --- SYN flood drop rate ------------------------------------------------------------------
# flood_once METHOD: floods for FLOOD_SECONDS; appends METHOD's row to flood-rounds.csv.
flood_once() {
	local method=$1 before after gen sent secs
	before=$(ip -n "$SRV_NS" -j -s link show dev "$SRV_IF" | jq '.[0].stats64.rx.packets')
	gen=$(tb_cli "$TB_TOOLS/ls-xdpflood" --dev "$CLI_IF" --dst-mac "$SRV_MAC" --src 10.201.0.4/30 \
		--dst "$TB_SRV_IP:$TB_PORT" --duration "$FLOOD_SECONDS" --threads "$FLOOD_THREADS" 2>&1) || {
		echo "bench: ls-xdpflood failed: $gen" >&2
		return 1
	}
	after=$(ip -n "$SRV_NS" -j -s link show dev "$SRV_IF" | jq '.[0].stats64.rx.packets')
	sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<<"$gen")
	secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$gen")
	echo "$method,$sent,$((after - before)),$secs,$(awk -v d=$((after - before)) -v s="$secs" \
		'BEGIN { printf "%.0f", d / s }')" >>"$OUT/flood-rounds.csv"
}
srv_xdp() { ip -n "$SRV_NS" link set dev "$SRV_IF" xdp "$@"; }

# flood_method METHOD: puts METHOD in front of the server, floods, takes it away.
flood_method() {
	case $1 in
	xdp_drop)
		srv_xdp object "$TB_BPF/bench_ref.bpf.o" program ref_xdp_drop
		flood_once "$1" || true
		srv_xdp off
		;;
	loadshed)
		# A static limit and no agent, with the classes of the scenarios in the
		# rule table. A SYN writes nothing and is shed only when the service is
		# full already: one real connection holds the only slot, so every flood
		# SYN (the default class, share 0, drop) takes the shed path.
		if tb_ls attach "$SRV_IF" --port "$TB_PORT" --limit 1 --no-agent \
			--class "high=50%,reset,src=$TB_HIGH_IP/32" --class "low=0%,reset,src=$TB_LOW_IP/32" \
			>"$OUT/flood-attach.log" 2>&1; then
			tb_spawn floodholder cli "$OUT/flood-holder.log" "$TB_TOOLS/ls-conn" \
				--target "$TB_SRV_IP:$TB_PORT" --src "$TB_LOW_IP" --count 1 --hold-s 600
			sleep 0.5
			flood_once "$1" || true
			tb_ls -j status "$SRV_IF" >"$OUT/flood-loadshed-status.json" 2>/dev/null || true
			tb_kill floodholder
			tb_detach
		else
			echo "bench: loadshed attach failed: $(cat "$OUT/flood-attach.log")" >&2
		fi
		;;
	iptables_raw)
		# Live frames reach a veth only when it has an XDP program: XDP_PASS.
		srv_xdp object "$TB_BPF/xdp_pass.bpf.o" section xdp
		tb_srv iptables -t raw -A PREROUTING -p tcp --dport "$TB_PORT" --syn -j DROP
		flood_once "$1" || true
		tb_srv iptables -t raw -L PREROUTING -v -x -n >"$OUT/flood-iptables.txt" 2>&1 || true
		tb_srv iptables -t raw -F PREROUTING
		srv_xdp off
		;;
	none_kernel)
		# For reference: nothing in front; the kernel answers with SYN cookies.
		srv_xdp object "$TB_BPF/xdp_pass.bpf.o" section xdp
		flood_once "$1" || true
		srv_xdp off
		;;
	esac
}

FLOOD_THREADS=$(nproc)
FLOOD_ROUNDS=${FLOOD_ROUNDS:-3}
if [ "$DO_FLOOD" = 1 ]; then
	echo "bench: SYN flood drop rate ($FLOOD_ROUNDS rounds of $FLOOD_SECONDS s per method, $FLOOD_THREADS sending threads)"
	echo "method,sent,received,seconds,rx_pps" >"$OUT/flood-rounds.csv"
	# The flood's sources answer nothing, like spoofed ones.
	tb_cli iptables -t raw -A PREROUTING -d 10.201.0.4/30 -p tcp --tcp-flags "SYN,ACK" "SYN,ACK" -j DROP
	# A listening server behind every filter, as in real life.
	tb_spawn floodsrv srv "$OUT/flood-server.log" "$TB_TOOLS/ls-server" --listen "$TB_SRV_IP:$TB_PORT" \
		--workers 4 --service-ms 1
	sleep 0.3
	# Round-robin, so that a noisy moment hits every method alike; the median counts.
	for round in $(seq "$FLOOD_ROUNDS"); do
		for method in xdp_drop loadshed iptables_raw none_kernel; do
			flood_method "$method"
		done
		echo "       round $round: $(awk -F, -v n="$round" 'NR > 1 { c[$1]++; if (c[$1] == n) printf "%s %.2f Mpps  ", $1, $5 / 1e6 }' "$OUT/flood-rounds.csv")"
	done
	tb_kill floodsrv
	tb_cli iptables -t raw -F PREROUTING
	# flood.csv: per method, the round with the median rate.
	{
		echo "method,sent,received,seconds,rx_pps"
		for method in xdp_drop loadshed iptables_raw none_kernel; do
			grep "^$method," "$OUT/flood-rounds.csv" | sort -t, -k5,5n | awk '{ r[NR] = $0 } END { if (NR) print r[int((NR + 1) / 2)] }'
		done
	} >"$OUT/flood.csv"
fi

# --- the death spiral behind HAProxy (scripts/spiral.sh) ---------------------------------------
if [ "$DO_SPIRAL" = 1 ]; then
	echo "bench: death spiral behind HAProxy (scripts/spiral.sh)"
	"$ROOT/scripts/spiral.sh" --no-build --id bench --out "$OUT/spiral" | sed 's/^/       /' ||
		echo "bench: the spiral run failed" >&2
fi

# --- RESULTS.md ------------------------------------------------------------------------------
"$ROOT/scripts/bench-report.sh" "$OUT" "$BPF_STATUS"
if [ -f "$OUT/spiral/RESULTS.md" ]; then
	{ echo; sed 's/^# /## /' "$OUT/spiral/RESULTS.md"; } >>"$OUT/RESULTS.md"
fi
# The cascading-failure comparison (scripts/cascade.sh, its own testbed), appended.
if [ "$DO_SCENARIOS" = 1 ]; then
	if "$ROOT/scripts/cascade.sh" --no-build --out "$OUT/cascade" >"$OUT/cascade.log" 2>&1; then
		printf '\n' >>"$OUT/RESULTS.md"
		cat "$OUT/cascade/RESULTS.md" >>"$OUT/RESULTS.md"
	else
		echo "bench: scripts/cascade.sh failed (see $OUT/cascade.log)" >&2
	fi
fi
echo "bench: $OUT/RESULTS.md"
