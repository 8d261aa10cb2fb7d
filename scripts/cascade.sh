#!/usr/bin/env bash
# A cascading failure on the namespace testbed, and what stops it.
#
# Usage: scripts/cascade.sh [--out DIR] [--no-build] [--only MODE[,MODE...]]
#                           [--calls pool|per-call|both]        (as root; `make bench-cascade`)
#
#   A  ls-cascade-a in the server namespace (10.201.0.1:8080), W workers: GET
#      /local is its own work (LOCAL_MS), GET /remote calls B and waits for it
#   B  ls-server in the client namespace (10.201.0.9:9000), B_WORKERS workers of
#      B_MS ms: A's calls cross the veth like calls to another host
#   clients  ls-loadgen in the client namespace, open loop, a connection per
#      request: local from 10.201.0.2 at LOCAL_RPS, remote from 10.201.0.3 at
#      REMOTE_RPS, 1 s deadline
#
# Each run: STEADY_S s steady, then B's service time ×SLOW_X for SLOW_S s (t1),
# then back (t2) for RECOVER_S s. The same load, in the same run of this
# script, against three modes, each with A calling B over a pool of POOL
# keep-alive connections and over a connection per call:
#
#   none     no protection: A's per-call timeout is NONE_TIMEOUT_MS (10 s)
#   timeout  a well-tuned client timeout alone: TIMEOUT_MS (40 ms, 4x B's time)
#   breaker  NONE_TIMEOUT_MS again, and loadshed's outbound circuit breaker on
#            A's host ([upstream b] in the attach config, A in its own cgroup)
#
# Reported per run (RESULTS.md, and summary.json in each run's folder): A's
# local goodput during the slow phase as a % of its goodput before t1; the
# remote calls of the slow phase (ok/s, errors/s, client timeouts, latency of
# every answer: the median over the phase's seconds of each second's p50 and
# p99); how long after t2 the remote goodput was back to 90 % of its steady
# value; with the breaker, the time from t2 to the circuit closing (from
# `loadshed -j breaker IFACE status`, polled every 100 ms). DIR defaults to
# results/cascade. The testbed is CASCADE_ID (default cascade), torn down at
# the end.
#
# Sourced (CASCADE_SOURCED=1), it only defines its functions (the tests use
# cascade_breaker_conf).


CASCADE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$CASCADE_ROOT/scripts/testbed.sh"

WORKERS=${WORKERS:-16}
LOCAL_MS=${LOCAL_MS:-5}
B_WORKERS=${B_WORKERS:-64}
B_MS=${B_MS:-10}
SLOW_X=${SLOW_X:-20}
LOCAL_RPS=${LOCAL_RPS:-200}
REMOTE_RPS=${REMOTE_RPS:-200}
POOL=${POOL:-8}
TIMEOUT_MS=${TIMEOUT_MS:-40}
NONE_TIMEOUT_MS=${NONE_TIMEOUT_MS:-10000}
STEADY_S=${STEADY_S:-10}
SLOW_S=${SLOW_S:-15}
RECOVER_S=${RECOVER_S:-10}
WARM_S=${WARM_S:-2}
SEED=${SEED:-13}
A_PORT=8080
B_IP=10.201.0.9
B_PORT=9000
B_ADMIN_PORT=9091

# cascade_cgroup_mount: where cgroup v2 is mounted (/sys/fs/cgroup, or
# /sys/fs/cgroup/unified on a hybrid host).
cascade_cgroup_mount() {
	findmnt -n -t cgroup2 -o TARGET | head -n1
}

# cascade_breaker_conf FILE CGROUP: the attach config of the breaker mode: a
# shadowed service on A's port (admits everything) and the upstream B, for
# the processes of CGROUP (relative to the cgroup2 mount).
cascade_breaker_conf() {
	cat >"$1" <<EOF
# scripts/cascade.sh: loadshed's outbound circuit breaker in front of B.
[service a]
listen = *:$A_PORT
shadow = true               ; A's own traffic is counted, never shed

[upstream b]
dest = $B_IP:$B_PORT
cgroup = $2
sliding_window_type = count_based
sliding_window_size = 20
minimum_number_of_calls = 10
failure_rate_threshold = 50%
slow_call_rate_threshold = 50%
slow_call_duration_threshold = 100ms
wait_duration_in_open_state = 2s
permitted_number_of_calls_in_half_open_state = 3
EOF
}

# b_admin PATH: one GET to B's admin listener (client namespace).
b_admin() {
	tb_cli curl -sf --max-time 3 "http://127.0.0.1:$B_ADMIN_PORT$1"
}

# breaker_state: the state of upstream b from `loadshed -j breaker IFACE
# status` (the first "state" of an object named b, else the first at all).
breaker_state() {
	tb_ls -j breaker "$SRV_IF" status 2>/dev/null |
		jq -r '([.. | objects | select(.name? == "b") | .state?] + [.. | objects | .state? // empty])
			| map(select(. != null)) | first // empty' 2>/dev/null
}

# now_ms: milliseconds since the run's clock was set (T0_US).
now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $(((t - T0_US) / 1000))
}

# summarize DIR: summary.json of one run from its loadgen.csv and logs.
summarize() {
	local dir=$1 t1=$STEADY_S t2=$((STEADY_S + SLOW_S)) end closed=null astats
	end=$((t2 + RECOVER_S))
	if [ -s "$dir/breaker.log" ]; then
		# The first "closed" at or after t2 that follows a state other than closed.
		closed=$(awk -v t2="$t2" '
			$2 != "closed" { seen = 1 }
			$1 >= t2 * 1000 && $2 == "closed" && seen { printf "%.1f", ($1 - t2 * 1000) / 1000; exit }
		' "$dir/breaker.log")
		closed=${closed:-null}
	fi
	astats=$(grep '^stats ' "$dir/a.log" | tail -n1 || true)
	awk -F, -v warm="$WARM_S" -v t1="$t1" -v t2="$t2" -v end="$end" '
		function median(a, n,   i, j, t) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : "null"
		}
		NR == 1 { next }
		$1 >= warm && $1 < t1 { pre_ok[$2] += $4 }
		$1 >= t1 && $1 < t2 {
			slow_ok[$2] += $4; slow_err[$2] += $12; slow_to[$2] += $7 + $6 + $5 + $14
			if ($4 + $12 > 0) { n[$2]++; p50[$2, n[$2]] = $17; p99[$2, n[$2]] = $18 }
		}
		$1 >= t2 && $1 < end && $2 == "remote" { rec[$1] = $4 }
		END {
			for (c in pre_ok) pre[c] = pre_ok[c] / (t1 - warm)
			for (c in n) {
				for (i = 1; i <= n[c]; i++) { x[i] = p50[c, i]; y[i] = p99[c, i] }
				m50[c] = median(x, n[c]); m99[c] = median(y, n[c])
			}
			back = "null"
			for (s = t2; s < end; s++) if (s in rec && rec[s] >= 0.9 * pre["remote"]) { back = s - t2; break }
			printf "{\"local_pre_rps\":%.1f,\"local_slow_rps\":%.1f,\"local_slow_pct\":%.1f,", \
				pre["local"], slow_ok["local"] / (t2 - t1), \
				pre["local"] ? 100 * slow_ok["local"] / (t2 - t1) / pre["local"] : 0
			printf "\"local_slow_p99_ms\":%s,", m99["local"] == "" ? "null" : m99["local"]
			printf "\"remote_pre_rps\":%.1f,\"remote_slow_ok_rps\":%.1f,\"remote_slow_err_rps\":%.1f,", \
				pre["remote"], slow_ok["remote"] / (t2 - t1), slow_err["remote"] / (t2 - t1)
			printf "\"remote_slow_unanswered\":%d,", slow_to["remote"]
			printf "\"remote_slow_ans_p50_ms\":%s,\"remote_slow_ans_p99_ms\":%s,", \
				m50["remote"] == "" ? "null" : m50["remote"], m99["remote"] == "" ? "null" : m99["remote"]
			printf "\"remote_back_after_s\":%s}\n", back
		}' "$dir/loadgen.csv" |
		jq --argjson closed "$closed" --arg astats "$astats" --arg mode "$(cat "$dir/mode")" \
			--arg calls "$(cat "$dir/calls")" \
			'. + {mode: $mode, calls: $calls, circuit_closed_after_s: $closed, a_stats: $astats}' \
			>"$dir/summary.json"
}

# started DIR: A and B printed their ready lines.
started() { grep -q '^listening' "$1/a.log" 2>/dev/null && grep -q '^listening' "$1/b.log" 2>/dev/null; }

# run_one CALLS MODE DIR: one run.
run_one() {
	local calls=$1 mode=$2 dir=$3 timeout=$NONE_TIMEOUT_MS callopt lg_pid now t1 t2
	local dur=$((STEADY_S + SLOW_S + RECOVER_S))
	mkdir -p "$dir"
	rm -f "$dir"/{loadgen.csv,loadgen.json,breaker.log,summary.json,a.log,b.log,attach.err}
	echo "$mode" >"$dir/mode"
	echo "$calls" >"$dir/calls"
	[ "$mode" = timeout ] && timeout=$TIMEOUT_MS
	if [ "$calls" = pool ]; then callopt=(--pool "$POOL"); else callopt=(--per-call); fi

	tb_spawn b cli "$dir/b.log" "$TB_TOOLS/ls-server" --listen "$B_IP:$B_PORT" \
		--workers "$B_WORKERS" --service-ms "$B_MS" --admin "127.0.0.1:$B_ADMIN_PORT"
	# A runs in its own cgroup, the one the breaker watches.
	# shellcheck disable=SC2016 # expanded by the inner sh
	tb_spawn a srv "$dir/a.log" sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ \
		"$CGROUP_DIR" "$TB_TOOLS/ls-cascade-a" --listen "$TB_SRV_IP:$A_PORT" \
		--upstream "$B_IP:$B_PORT" --workers "$WORKERS" --local-ms "$LOCAL_MS" \
		--timeout-ms "$timeout" "${callopt[@]}"
	for _ in $(seq 50); do
		started "$dir" && break
		sleep 0.1
	done
	if ! started "$dir"; then
		echo "cascade: A or B did not start:" >&2
		cat "$dir/a.log" "$dir/b.log" >&2
		return 1
	fi
	if [ "$mode" = breaker ]; then
		cascade_breaker_conf "$dir/loadshed.conf" "$CGROUP_REL"
		if ! nsenter --net="/run/netns/$SRV_NS" "$TB_LOADSHED" attach "$SRV_IF" \
			--config "$dir/loadshed.conf" >/dev/null 2>"$dir/attach.err"; then
			tb_kill a
			tb_kill b
			echo "cascade: loadshed attach failed:" >&2
			cat "$dir/attach.err" >&2
			return 1
		fi
	fi

	T0_US=${EPOCHREALTIME/./}
	tb_spawn loadgen cli "$dir/loadgen.out" "$TB_TOOLS/ls-loadgen" --duration "$dur" \
		--seed "$SEED" --csv "$dir/loadgen.csv" --json "$dir/loadgen.json" \
		--class "name=local,src=$TB_HIGH_IP,target=$TB_SRV_IP:$A_PORT,rate=$LOCAL_RPS,path=/local,deadline_ms=1000" \
		--class "name=remote,src=$TB_LOW_IP,target=$TB_SRV_IP:$A_PORT,rate=$REMOTE_RPS,path=/remote,deadline_ms=1000"
	lg_pid=$TB_PID
	t1=$((STEADY_S * 1000))
	t2=$(((STEADY_S + SLOW_S) * 1000))
	while kill -0 "$lg_pid" 2>/dev/null; do
		now=$(now_ms)
		if [ -n "$t1" ] && [ "$now" -ge "$t1" ]; then
			b_admin "/admin/service-ms?value=$((B_MS * SLOW_X))" >/dev/null || echo "cascade: B did not slow down" >&2
			echo "$now" >"$dir/t1_ms"
			t1=
		elif [ -z "$t1" ] && [ -n "$t2" ] && [ "$now" -ge "$t2" ]; then
			b_admin "/admin/service-ms?value=$B_MS" >/dev/null || echo "cascade: B did not recover" >&2
			echo "$now" >"$dir/t2_ms"
			t2=
		fi
		if [ "$mode" = breaker ]; then
			echo "$now $(breaker_state)" >>"$dir/breaker.log"
		fi
		sleep 0.1
	done
	wait "$lg_pid" 2>/dev/null || true
	[ "$mode" = breaker ] && tb_detach
	tb_kill a
	tb_kill b
	summarize "$dir"
}

# report DIR: RESULTS.md from every run's summary.json.
report() {
	local dir=$1 runs
	runs=$(find "$dir" -mindepth 2 -maxdepth 2 -name summary.json -print0 | sort -z | xargs -0 -r cat | jq -s .)
	jq -n -r --argjson runs "$runs" \
		--arg params "A: $WORKERS workers, local ${LOCAL_MS} ms; B: $B_WORKERS workers x ${B_MS} ms, x$SLOW_X from ${STEADY_S} s for ${SLOW_S} s, then ${RECOVER_S} s recovered; load: $LOCAL_RPS local + $REMOTE_RPS remote req/s, open loop, 1 s deadline; pool $POOL; timeout mode ${TIMEOUT_MS} ms, otherwise ${NONE_TIMEOUT_MS} ms" '
def n1: if . == null then "–" else (. * 10 | round / 10 | tostring) end;
def ms: if . == null then "–" else "\(n1) ms" end;
def s: if . == null then "–" else "\(n1) s" end;
"## Cascading failure: A calls a B that slows down ×20\n",
$params + "\n",
"| calls to B | mode | local ok, slow / before | remote ok/s, slow | remote errors/s | remote unanswered | remote answer p50 / p99 | remote back after | circuit closed after |",
"|---|---|---:|---:|---:|---:|---:|---:|---:|",
($runs | sort_by(.calls, (.mode | {none: 0, timeout: 1, breaker: 2}[.])) | .[] |
	"| \(.calls) | \(.mode) | **\(.local_slow_pct | n1) %** (\(.local_slow_rps | n1) / \(.local_pre_rps | n1) req/s) | \(.remote_slow_ok_rps | n1) | \(.remote_slow_err_rps | n1) | \(.remote_slow_unanswered) | \(.remote_slow_ans_p50_ms | ms) / \(.remote_slow_ans_p99_ms | ms) | \(.remote_back_after_s | s) | \(.circuit_closed_after_s | s) |"),
"\nslow: the seconds [t1, t2) of B at ×20; latencies: the median over those seconds of each second'"'"'s p50 and p99 of every full answer (200 or error); unanswered: client timeouts, resets and refusals; back after: the first second after t2 whose remote goodput reached 90 % of the steady one."
' >"$dir/RESULTS.md"
}

cascade_cleanup() {
	tb_down
	[ -n "${CGROUP_DIR:-}" ] && [ -d "$CGROUP_DIR" ] && rmdir "$CGROUP_DIR" 2>/dev/null
	return 0
}

cascade_main() {
	local out='' build=1 only=(none timeout breaker) calls=(pool per-call) mode c cgmount
	while [ $# -gt 0 ]; do
		case $1 in
		--out) out=${2:?--out wants a directory}; shift 2 ;;
		--no-build) build=0; shift ;;
		--only) IFS=, read -r -a only <<<"${2:?--only wants modes}"; shift 2 ;;
		--calls)
			case ${2:-} in
			pool | per-call) calls=("$2") ;;
			both) calls=(pool per-call) ;;
			*) echo "cascade: --calls is pool, per-call or both" >&2; return 2 ;;
			esac
			shift 2
			;;
		-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; return 0 ;;
		*) echo "cascade: unknown argument '$1'" >&2; return 2 ;;
		esac
	done
	for mode in "${only[@]}"; do
		case $mode in none | timeout | breaker) ;; *) echo "cascade: unknown mode '$mode' (none, timeout, breaker)" >&2; return 2 ;; esac
	done
	out=${out:-$CASCADE_ROOT/results/cascade}
	tb_preflight bench-cascade "$build"
	TB_LOADSHED=${LOADSHED:-$TB_LOADSHED}
	cgmount=$(cascade_cgroup_mount)
	[ -n "$cgmount" ] || { echo "cascade: no cgroup v2 mount" >&2; return 1; }
	tb_names "${CASCADE_ID:-cascade}"
	CGROUP_REL=/loadshed-cascade-$TB_ID
	CGROUP_DIR=$cgmount$CGROUP_REL
	trap cascade_cleanup EXIT
	mkdir -p "$out" "$CGROUP_DIR"
	tb_up || return 1
	for c in "${calls[@]}"; do
		for mode in "${only[@]}"; do
			echo "cascade: $c $mode ($((STEADY_S + SLOW_S + RECOVER_S)) s)"
			run_one "$c" "$mode" "$out/$c-$mode" || return
		done
	done
	report "$out"
	cat "$out/RESULTS.md"
	echo "cascade: $out/RESULTS.md"
}

if [ "${CASCADE_SOURCED:-0}" != 1 ]; then
	set -euo pipefail
	cascade_main "$@"
fi
