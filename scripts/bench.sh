#!/usr/bin/env bash
# Every overload scenario against every protection, the per-packet BPF
# benchmark and the SYN-flood drop rate, in one run on this machine.
#
# Usage: scripts/bench.sh [--out DIR] [--only SCENARIO[,SCENARIO...]] [--no-build]
#                         [--no-scenarios] [--no-flood] [--flood-seconds S]   (as root; `make bench`)
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
#   flood        a live-frame SYN flood (ls-xdpflood, from the client namespace at
#                full speed) dropped on the server's veth by: a trivial XDP_DROP
#                program, loadshed (every SYN over its limit), iptables' raw table
#                (DROP in PREROUTING), and for reference nothing at all (XDP_PASS
#                and the kernel's SYN cookies); packets per second received
#
# Writes DIR (default results/bench)/RESULTS.md with the tables, the ratios
# against the baselines of the same run and the machine it ran on, a PNG per
# scenario, and every run's raw data in a folder of its own.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/results/bench
BUILD=1
SCENARIOS=(steady slowdown surge synflood keepalive keepalive-attach wrk pgbench synflood-full)
PROTECTIONS=(none iptables loadshed)
DO_SCENARIOS=1
DO_FLOOD=1
FLOOD_SECONDS=5
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=${2:?--out wants a directory}; shift 2 ;;
	--only) IFS=, read -r -a SCENARIOS <<<"${2:?--only wants scenarios}"; shift 2 ;;
	--no-build) BUILD=0; shift ;;
	--no-scenarios) DO_SCENARIOS=0; shift ;;
	--no-flood) DO_FLOOD=0; shift ;;
	--flood-seconds) FLOOD_SECONDS=${2:?--flood-seconds wants a number}; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
	*) echo "bench: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$ROOT/scripts/testbed.sh"
tb_preflight bench "$BUILD"
TB_LOADSHED=${LOADSHED:-$TB_LOADSHED}
tb_names bench
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
} >"$OUT/machine.env"

run() { # run SCENARIO PROTECTION [NAME]: into OUT/NAME (default SCENARIO-PROTECTION)
	local name=${3:-$1-$2}
	echo "bench: $name"
	"$ROOT/scripts/scenario.sh" "$1" "$2" --id bench --out "$OUT/$name" | sed 's/^/       /'
}
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

# --- RESULTS.md ------------------------------------------------------------------------------
"$ROOT/scripts/bench-report.sh" "$OUT" "$BPF_STATUS"
echo "bench: $OUT/RESULTS.md"
