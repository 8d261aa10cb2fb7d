#!/usr/bin/env bash
# A soak of loadshed's accounting: about 100 000 connections of every kind a
# shedder meets, from several classes, to a service that admits connections
# and one that admits requests, while the agent is killed and restarted and
# the policy is reloaded back and forth. Afterwards, once the sweep has had
# its idle and stall timeouts, every in-flight counter must be exactly 0 and
# the flow table empty (doc/design.md §5.1). Not a pass/fail test of the
# suite: a benchmark with one verdict, which is also its exit status.
#
# Usage: scripts/soak.sh [--seconds S] [--id ID] [--out DIR] [--seed N]
#
# On the testbed of testbed.sh (ID, default soak), two ls-server processes
# (WORKERS workers, SERVICE_MS ms a request, a request head still incomplete
# after 2 s dropped) in the server namespace: 10.201.0.1:8080 for service
# "conns" (admit = connections), 10.201.0.1:8081 for service "reqs" (admit =
# requests). For S (60) seconds, from the client namespace:
#
#   completed   ls-loadgen, a connection per request, the answer read; and on
#               reqs two keep-alive pools of 16 (requests, few connections)
#   reset       the client resets its connection right after the request
#               (ls-loadgen end=reset: SO_LINGER 0)
#   abandoned   the client sends half a request head and closes (end=abandon);
#               from 10.201.0.7 its FIN and RST never leave (an iptables rule
#               in the client namespace), so the server gives up on the head
#               after 2 s and the request's slot is released by the stall
#               sweep first; and three batches of 100 connections per service
#               held idle from 10.201.0.7 and then killed (ls-conn, kill -9):
#               their flows end only by the idle sweep
#   half-closed the client shuts its side down after the request and reads the
#               answer (end=halfclose)
#   half-open   spoofed SYNs from 10.201.0.8/31 (ls-synflood), whose SYN-ACKs
#               are dropped on arrival in the client namespace: handshakes
#               that never complete
#
# loadshed's classes: gold = 10.201.0.2, silver = 10.201.0.3, lead =
# 10.201.0.4/30, and the default class for the rest (the flood). Policy A
# (gradient2, silver present) and policy B (pinned low limits that make it
# shed, silver retired, other shares and actions, request_action abort) are
# reloaded alternately every 3 s (`loadshed policy IFACE reload FILE`); A is
# reloaded last. The agent is restarted every 10 s: kill -9 and `loadshed
# agent` at once, or SIGTERM and a new agent 3 s later (fail-open in between:
# fail_open_after is 1 s). idle_timeout is 4 s, stall_timeout 1 s. Once a
# second the servers' listening sockets are checked: a server whose listener
# has disappeared (its process still running) is started again, and each
# such loss is reported (not part of the verdict).
#
# Then, polling `loadshed -j status` for up to 30 s: the zero check holds when
# every service's in-flight and connections, every class's in-flight and the
# flow table count are 0, and so is every counter of the pinned inflight map
# (bpftool: retired class slots included).
#
# Writes DIR (default results/soak): RESULT.md (connections by kind, duration,
# the counters at the end, the verdict), status-end.json, inflight-map.json,
# loadgen-conns.json, loadgen-reqs.json and the logs; prints one summary line;
# exits 0 when the zero check holds, 1 when it does not (2: usage). Takes S
# plus about 20 s. Tunables (environment): WORKERS (64), SERVICE_MS (1),
# LOADSHED (build/loadshed).
#
# Everything it starts is stopped on exit, also on failure or ^C: its
# processes (by PID), loadshed's attachment, its iptables rules, and the
# testbed when this run brought it up.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$HERE/testbed.sh"
TB_LOADSHED=${LOADSHED:-$TB_LOADSHED}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; }

SECONDS_RUN=60
ID=soak
OUT=
SEED=${SEED:-$((RANDOM * 32768 + RANDOM))}
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) SECONDS_RUN=${2:?--seconds wants a number}; shift 2 ;;
	--id) ID=${2:?--id wants a value}; shift 2 ;;
	--out) OUT=${2:?--out wants a directory}; shift 2 ;;
	--seed) SEED=${2:?--seed wants a number}; shift 2 ;;
	-h | --help | help) usage; exit 0 ;;
	*) echo "soak: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
if ! [[ $SECONDS_RUN =~ ^[0-9]+$ ]] || [ "$SECONDS_RUN" -lt 20 ] || [ "$SECONDS_RUN" -gt 150 ]; then
	echo "soak: --seconds wants 20..150" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "soak: needs root (network namespaces, XDP)" >&2
	exit 1
fi
for tool in jq iptables nsenter bpftool; do
	command -v "$tool" >/dev/null || { echo "soak: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
done
for f in "$TB_TOOLS/ls-server" "$TB_TOOLS/ls-loadgen" "$TB_TOOLS/ls-conn" "$TB_TOOLS/ls-synflood" "$TB_LOADSHED"; do
	[ -x "$f" ] || { echo "soak: $f is missing (run make)" >&2; exit 1; }
done
"$TB_TOOLS/ls-loadgen" --help | grep -q 'end=answer' ||
	{ echo "soak: $TB_TOOLS/ls-loadgen has no end= (run make)" >&2; exit 1; }

WORKERS=${WORKERS:-64}
SERVICE_MS=${SERVICE_MS:-1}
IDLE_S=4
OUT=${OUT:-$TB_ROOT/results/soak}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/*.out "$OUT"/*.conf "$OUT"/RESULT.md

tb_names "$ID"
OWN_TESTBED=0
tb_healthy || OWN_TESTBED=1

SRV=$TB_SRV_IP
SILENT=10.201.0.7
FLOOD_SRC=10.201.0.8/31
# Clients from SILENT never say goodbye; the flood's SYN-ACKs are never answered.
SILENT_RULES=("OUTPUT -s $SILENT -p tcp --tcp-flags FIN FIN -j DROP"
	"OUTPUT -s $SILENT -p tcp --tcp-flags RST RST -j DROP")
FLOOD_RULE="PREROUTING -d $FLOOD_SRC -p tcp --tcp-flags SYN,ACK SYN,ACK -j DROP"
RULES_ADDED=0
PROCS=(conns reqs holder flood agent srv8080 srv8081)

cleanup() {
	local rc=$? p r
	trap - EXIT INT TERM
	for p in "${PROCS[@]}"; do tb_kill "$p"; done
	if tb_exists; then
		tb_detach
		if [ "$RULES_ADDED" = 1 ]; then
			for r in "${SILENT_RULES[@]}"; do
				# shellcheck disable=SC2086 # a rule is its words
				tb_cli iptables -D $r 2>/dev/null || true
			done
			# shellcheck disable=SC2086
			tb_cli iptables -t raw -D $FLOOD_RULE 2>/dev/null || true
		fi
	fi
	[ "$OWN_TESTBED" = 1 ] && tb_down
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$OWN_TESTBED" = 1 ]; then
	tb_up >/dev/null || { echo "soak: the testbed does not come up" >&2; exit 1; }
fi
# Leftovers of an interrupted run on the same testbed (tracked by PID).
for p in "${PROCS[@]}"; do tb_kill "$p"; done
tb_detach
RULES_ADDED=1
for r in "${SILENT_RULES[@]}"; do
	# shellcheck disable=SC2086
	tb_cli iptables -A $r
done
# shellcheck disable=SC2086
tb_cli iptables -t raw -A $FLOOD_RULE

# --- the servers ---------------------------------------------------------------------
# listening: the ports of the two servers that listen, as "8080 8081 ".
listening() {
	tb_srv ss -Hltn '( sport = :8080 or sport = :8081 )' | awk '{ sub(/.*:/, "", $4); print $4 }' |
		sort -u | tr '\n' ' '
}
# start_server PORT: (again) the server of PORT; waits until it listens.
SERVER_STARTS=0
start_server() {
	local i
	tb_kill "srv$1"
	SERVER_STARTS=$((SERVER_STARTS + 1))
	tb_spawn "srv$1" srv "$OUT/server-$1-$SERVER_STARTS.log" "$TB_TOOLS/ls-server" --listen "$SRV:$1" \
		--workers "$WORKERS" --service-ms "$SERVICE_MS" --idle-s 2 --backlog 65535
	for i in $(seq 50); do
		grep -q listening "$OUT/server-$1-$SERVER_STARTS.log" 2>/dev/null && return 0
		sleep 0.1
	done
	: "$i"
	echo "soak: the server of :$1 did not start:" >&2
	cat "$OUT/server-$1-$SERVER_STARTS.log" >&2
	return 1
}
start_server 8080
start_server 8081

# --- the two policies ------------------------------------------------------------------
# policy FILE A|B
policy() {
	local svc_conns svc_reqs silver_conns="" silver_reqs=""
	if [ "$2" = A ]; then
		svc_conns=$'algorithm = gradient2\nmin_limit = 20\nmax_limit = 400\ninitial_limit = 64'
		svc_reqs=$'algorithm = gradient2\nmin_limit = 20\nmax_limit = 400\ninitial_limit = 64'
		silver_conns=$'[class conns.silver]\nshare = 20%\naction = drop\nmatch = src 10.201.0.3/32'
		silver_reqs=$'[class reqs.silver]\nshare = 20%\naction = drop\nrequest_action = defer\nmatch = src 10.201.0.3/32'
		set -- "$1" 50% reset defer 0% reset defer
	else
		svc_conns=$'algorithm = aimd\nmin_limit = 1\nlimit = 12'
		svc_reqs=$'algorithm = vegas\nmin_limit = 1\nlimit = 6'
		set -- "$1" 30% drop abort 10% drop abort
	fi
	cat >"$1" <<-EOF
		# soak policy (scripts/soak.sh)
		[agent]
		interval = 100ms
		idle_timeout = ${IDLE_S}s
		stall_timeout = 1s
		fail_open_after = 1s

		[service conns]
		listen = *:8080
		admit = connections
		$svc_conns

		[class conns.gold]
		share = $2
		action = $3
		match = src 10.201.0.2/32

		$silver_conns

		[class conns.lead]
		share = $5
		action = $6
		match = src 10.201.0.4/30

		[service reqs]
		listen = *:8081
		admit = requests
		max_defer = 500ms
		$svc_reqs

		[class reqs.gold]
		share = $2
		action = $3
		request_action = $4
		match = src 10.201.0.2/32

		$silver_reqs

		[class reqs.lead]
		share = $5
		action = $6
		request_action = $7
		match = src 10.201.0.4/30
	EOF
}
policy "$OUT/policy-a.conf" A
policy "$OUT/policy-b.conf" B
if ! tb_ls -v attach "$SRV_IF" --config "$OUT/policy-a.conf" --agent-log "$OUT/agent-0.log" \
	>"$OUT/attach.log" 2>&1; then
	echo "soak: loadshed attach failed:" >&2
	cat "$OUT/attach.log" >&2
	exit 1
fi

# --- the clients -------------------------------------------------------------------------
# cls NAME SRC PORT RATE [KEY=VALUE...]: one ls-loadgen class.
cls() {
	local name=$1 src=$2 port=$3 rate=$4
	shift 4
	local spec="name=$name,src=$src,target=$SRV:$port,rate=$rate,deadline_ms=1000"
	[ $# -gt 0 ] && spec+=$(printf ',%s' "$@")
	printf -- '--class\n%s\n' "$spec"
}
mapfile -t CONNS < <(
	cls done-gold 10.201.0.2 8080 220
	cls done-silver 10.201.0.3 8080 220
	cls done-lead 10.201.0.5 8080 120
	cls reset-silver 10.201.0.3 8080 70 end=reset
	cls reset-lead 10.201.0.4 8080 70 end=reset
	cls abandon-gold 10.201.0.2 8080 50 end=abandon
	cls abandon-lead 10.201.0.5 8080 50 end=abandon
	cls halfclose-gold 10.201.0.2 8080 70 end=halfclose
	cls halfclose-lead 10.201.0.6 8080 70 end=halfclose
	cls silent-lead $SILENT 8080 6 end=abandon
)
mapfile -t REQS < <(
	cls done-gold 10.201.0.2 8081 120
	cls done-silver 10.201.0.3 8081 120
	cls reset-gold 10.201.0.2 8081 50 end=reset
	cls reset-lead 10.201.0.4 8081 50 end=reset
	cls abandon-silver 10.201.0.3 8081 40 end=abandon
	cls abandon-lead 10.201.0.5 8081 40 end=abandon
	cls halfclose-silver 10.201.0.3 8081 60 end=halfclose
	cls halfclose-lead 10.201.0.6 8081 60 end=halfclose
	cls silent-lead $SILENT 8081 6 end=abandon
	cls pool-gold 10.201.0.2 8081 150 mode=keepalive conns=16 prewarm=1
	cls pool-lead 10.201.0.4 8081 150 mode=keepalive conns=16 prewarm=1
)

T0=$SECONDS
tb_spawn conns cli "$OUT/loadgen-conns.out" "$TB_TOOLS/ls-loadgen" --duration "$SECONDS_RUN" \
	--seed "$SEED" --timeout-close rst --json "$OUT/loadgen-conns.json" "${CONNS[@]}"
LOAD_PIDS=("$TB_PID")
tb_spawn reqs cli "$OUT/loadgen-reqs.out" "$TB_TOOLS/ls-loadgen" --duration "$SECONDS_RUN" \
	--seed $((SEED + 1)) --json "$OUT/loadgen-reqs.json" "${REQS[@]}"
LOAD_PIDS+=("$TB_PID")
FLOOD_PPS=75
for port in 8080 8081; do
	tb_spawn flood cli "$OUT/flood-$port.out" "$TB_TOOLS/ls-synflood" --src "$FLOOD_SRC" \
		--dst "$SRV:$port" --rate "$FLOOD_PPS" --duration "$SECONDS_RUN" \
		--count $((FLOOD_PPS * SECONDS_RUN))
	LOAD_PIDS+=("$TB_PID")
done

# --- faults while it runs ---------------------------------------------------------------
agent_pid() { tb_ls -j status "$SRV_IF" 2>/dev/null | jq -r '.agent.pid // 0' || echo 0; }
# running PID: the process exists and is no zombie.
running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}
AGENTS=0
KILLS=0
STOPS=0
RELOADS=0
RELOAD_FAILS=0
HOLD_BATCHES=0
HELD=0
NEXT_POLICY=b
HOLDERS=()

# restart_agent kill|term: the agent goes; a new `loadshed agent` takes over,
# at once after a kill, 3 s later (failing open meanwhile) after a SIGTERM.
restart_agent() {
	local pid i
	pid=$(agent_pid)
	if [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ]; then
		if [ "$1" = kill ]; then
			kill -KILL "$pid" 2>/dev/null || true
			KILLS=$((KILLS + 1))
		else
			kill -TERM "$pid" 2>/dev/null || true
			STOPS=$((STOPS + 1))
		fi
		# Reaped here, quietly, when this script started it; else waited for.
		{ wait "$pid"; } 2>/dev/null || true
		for i in $(seq 50); do
			running "$pid" || break
			sleep 0.1
		done
		: "$i"
	fi
	[ "$1" = term ] && sleep 3
	AGENTS=$((AGENTS + 1))
	tb_spawn agent srv "$OUT/agent-$AGENTS.log" "$TB_LOADSHED" -v agent "$SRV_IF"
}

reload() {
	RELOADS=$((RELOADS + 1))
	tb_ls policy "$SRV_IF" reload "$OUT/policy-$1.conf" >>"$OUT/reload.log" 2>&1 ||
		RELOAD_FAILS=$((RELOAD_FAILS + 1))
}

# hold_batch: 100 idle connections to each service from the silent address.
hold_batch() {
	local port
	HOLD_BATCHES=$((HOLD_BATCHES + 1))
	for port in 8080 8081; do
		tb_spawn holder cli "$OUT/held-$HOLD_BATCHES-$port.out" "$TB_TOOLS/ls-conn" \
			--target "$SRV:$port" --src "$SILENT" --count 100 --connect-timeout-ms 1000 --hold-s 60
		HOLDERS+=("$TB_PID")
	done
}

# kill_holders: the held connections' clients die without a word (their FIN
# and RST are dropped): only the idle sweep ends their flows.
kill_holders() {
	local p
	for p in "${HOLDERS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${HOLDERS[@]}"; do { wait "$p"; } 2>/dev/null || true; done
	HOLDERS=()
}

# A server whose listener is gone (its process still runs) is started again:
# the soak is about accounting, and a dead listener would leave its service
# without traffic. Each loss is reported.
LISTENER_LOST=()
check_listeners() {
	local port now
	now=$(listening)
	for port in 8080 8081; do
		case " $now" in *" $port "*) continue ;; esac
		LISTENER_LOST+=("$port@${1}s")
		start_server "$port"
	done
}

for t in $(seq 1 "$SECONDS_RUN"); do
	while [ $((SECONDS - T0)) -lt "$t" ]; do sleep 0.2; done
	check_listeners "$t"
	case $((t % 20)) in
	5) hold_batch ;;
	13) kill_holders ;;
	esac
	if [ $((t % 10)) = 0 ] && [ "$t" -lt "$SECONDS_RUN" ]; then
		if [ $((t % 30)) = 0 ]; then restart_agent term; else restart_agent kill; fi
	fi
	if [ $((t % 3)) = 0 ] && [ "$t" -le $((SECONDS_RUN - 3)) ]; then
		reload "$NEXT_POLICY"
		if [ "$NEXT_POLICY" = b ]; then NEXT_POLICY=a; else NEXT_POLICY=b; fi
	fi
done
kill_holders
for p in "${LOAD_PIDS[@]}"; do wait "$p" || true; done
LOAD_END=$SECONDS
reload a

# --- the zero check ---------------------------------------------------------------------
PIN_DIR=$(tb_pin_dir)
ZERO=0
STATUS=null
for i in $(seq 60); do
	STATUS=$(tb_ls -j status "$SRV_IF")
	MAP=$(bpftool -j map dump pinned "$PIN_DIR/inflight")
	if [ "$(jq '[.flows, (.services[] | .inflight, .connections, (.classes[] | .inflight))]
		| all(. == 0)' <<<"$STATUS")" = true ] &&
		[ "$(jq '[.[] | (.formatted.value // .value) | .total, .conns, .cls[]] | all(. == 0)' \
			<<<"$MAP")" = true ]; then
		ZERO=1
		break
	fi
	sleep 0.5
done
: "$i"
ZERO_AFTER=$((SECONDS - LOAD_END))
printf '%s\n' "$STATUS" >"$OUT/status-end.json"
printf '%s\n' "$MAP" >"$OUT/inflight-map.json"
AGENT_NOW=$(jq -r .agent.pid <<<"$STATUS")

# --- the report -------------------------------------------------------------------------
lg() { jq -r "$2" "$OUT/loadgen-$1.json"; }
# kind_sum SERVICE PREFIX EXPR: EXPR of a class summed over the classes of one kind.
kind_sum() { lg "$1" "[.classes | to_entries[] | select(.key | startswith(\"$2\")) | .value | $3] | add // 0"; }
FLOOD_SENT=0
for port in 8080 8081; do
	n=$(sed -n 's/^sent=\([0-9]*\).*/\1/p' "$OUT/flood-$port.out")
	FLOOD_SENT=$((FLOOD_SENT + ${n:-0}))
done
for f in "$OUT"/held-*.out; do
	[ -f "$f" ] || continue
	n=$(sed -n 's/^ok=\([0-9]*\).*/\1/p' "$f")
	HELD=$((HELD + ${n:-0}))
done
POOL_CONNS=$(lg reqs '[.classes[] | .pool.connects // 0] | add')
POOL_REQS=$(kind_sum reqs pool- .offered)

TOTAL=$((FLOOD_SENT + HELD + POOL_CONNS))
ROWS=""
for kind in 'done' reset abandon halfclose silent; do
	for svc in conns reqs; do
		off=$(kind_sum $svc "$kind-" .offered)
		TOTAL=$((TOTAL + off))
		ROWS+="| $kind | $svc | $off | $(kind_sum $svc "$kind-" .ok) | $(kind_sum $svc "$kind-" .refused) |"
		ROWS+=" $(kind_sum $svc "$kind-" .reset) | $(kind_sum $svc "$kind-" .timeout) |"
		ROWS+=" $(kind_sum $svc "$kind-" .left) | $(kind_sum $svc "$kind-" '.bad_status + .overflow + .error') |"$'\n'
	done
done
VERDICT=FAIL
[ "$ZERO" = 1 ] && VERDICT=PASS
{
	echo "# Soak: loadshed's accounting under mixed connections"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$TB_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
		"Linux $(uname -r), $(nproc) CPUs; \`scripts/soak.sh --seconds $SECONDS_RUN --seed $SEED\`."
	echo
	if [ "$ZERO" = 1 ]; then
		echo "**Zero check: PASS** — $((ZERO_AFTER)) s after the last client: every in-flight counter"
		echo "(status and the pinned inflight map, retired slots included) is 0 and the flow table is empty."
	else
		echo "**Zero check: FAIL** — 30 s after the last client some in-flight counter or the flow"
		echo "table is not 0 (below; status-end.json, inflight-map.json)."
	fi
	echo
	echo "Load: $SECONDS_RUN s ($((LOAD_END - T0)) s with the drain); $TOTAL connections in all."
	echo "During it: $AGENTS agent restarts ($KILLS after kill -9, $STOPS after SIGTERM and 3 s"
	echo "without an agent), $RELOADS policy reloads alternating A and B ($RELOAD_FAILS failed), A last;"
	echo "$HOLD_BATCHES batches of held connections. Servers: $WORKERS workers, $SERVICE_MS ms a request."
	echo
	if [ ${#LISTENER_LOST[@]} = 0 ]; then
		echo "Both servers listened to the end."
	else
		echo "**A server's listening socket disappeared ${#LISTENER_LOST[@]} times**, its process still"
		echo "running; each time the server was started again. Connections refused in between count as"
		echo "refused below. When (port@second, checked every second):"
		echo
		echo "    ${LISTENER_LOST[*]}"
	fi
	echo
	echo "## Connections by kind"
	echo
	echo "| kind | service | connections | ok | refused | reset | timeout | left | other |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s' "$ROWS"
	echo "| keep-alive pools | reqs | $POOL_CONNS ($POOL_REQS requests) | $(kind_sum reqs pool- .ok) |" \
		"$(kind_sum reqs pool- .refused) | $(kind_sum reqs pool- .reset) | $(kind_sum reqs pool- .timeout) | | |"
	echo "| half-open (spoofed SYNs) | both | $FLOOD_SENT | | | | | | |"
	echo "| held, then gone silently | both | $HELD | | | | | | |"
	echo
	echo "done: the answer read; reset: RST right after the request; abandon: half a request head,"
	echo "then a FIN; halfclose: shutdown(SHUT_WR) after the request; silent: half a request head from"
	echo "$SILENT, whose FIN and RST never leave. ok/refused/reset/timeout/left as ls-loadgen counts"
	echo "them (left: the client went away on purpose)."
	echo
	echo "## Counters at the end"
	echo
	echo "flows $(jq -r .flows <<<"$STATUS") of $(jq -r .max_flows <<<"$STATUS"); agent pid $AGENT_NOW;" \
		"untracked packets $(jq -r .untracked_packets <<<"$STATUS"), tx errors $(jq -r .tx_errors <<<"$STATUS")," \
		"lost aborts $(jq -r .abort_lost <<<"$STATUS")."
	echo "Every tracked flow ended once (admitted + adopted = ended by FIN, RST, reuse or idle; a flow"
	echo "a client's RST ends behind a deferred request counts as abandoned instead):" \
		"$(jq -r '[.services[] | "\(.name) \([.classes[] | .admitted + .adopted] | add) tracked," +
			" \([.classes[] | .ended_fin + .ended_rst + .ended_reused + .ended_idle] | add) ended"] |
			join("; ")' <<<"$STATUS")."
	echo "Nonzero counters in the pinned inflight map (16 services: total, 18 classes, connections):" \
		"$(jq '[.[] | (.formatted.value // .value) | .total, .conns, .cls[] | select(. != 0)] | length' <<<"$MAP")."
	echo
	echo "| service | in-flight | connections | class | in-flight | admitted | adopted | shed | fail_open | untracked | requests | deferred | aborted | abandoned | expired | stalled | ended fin/rst/reused/idle | untrusted |"
	echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
	jq -r '.services[] | . as $s | .classes[] |
		"| \($s.name) | \($s.inflight) | \($s.connections) | \(.name) | \(.inflight) | \(.admitted) | \(.adopted) | \(.shed) | \(.fail_open) | \(.untracked) | \(.requests) | \(.deferred) | \(.aborted) | \(.abandoned) | \(.expired) | \(.stalled) | \(.ended_fin)/\(.ended_rst)/\(.ended_reused)/\(.ended_idle) | \(.untrusted) |"' <<<"$STATUS"
} >"$OUT/RESULT.md"

echo "soak: $VERDICT: $TOTAL connections in $SECONDS_RUN s ($AGENTS agent restarts, $RELOADS reloads);" \
	"$(jq -r '"in-flight \([.services[].inflight] | add), connections \([.services[].connections] | add), flows \(.flows)"' <<<"$STATUS")" \
	"$([ "$ZERO" = 1 ] && echo "$ZERO_AFTER s after the last client" || echo "30 s after the last client")" \
	"$([ ${#LISTENER_LOST[@]} = 0 ] || echo "(a listener disappeared ${#LISTENER_LOST[@]} times: ${LISTENER_LOST[*]})")" \
	"($OUT/RESULT.md)"
[ "$ZERO" = 1 ]
