#!/usr/bin/env bash
# One overload scenario against one protection, on the testbed of testbed.sh.
#
# Usage: scripts/scenario.sh SCENARIO PROTECTION [--out DIR] [--seconds S] [--id ID] [--seed N]
#
#   SCENARIO    unloaded   0.3x capacity: the latency floor the others are compared with
#               steady     3x capacity, 20 % high / 80 % low, a connection per request
#               slowdown   1.5x capacity; half-way the service time doubles (3x)
#               doubling   1.5x capacity; the service time doubles for the middle third
#                          of the run (3x), then returns; reports how long loadshed's
#                          limit takes to settle after each change (within SETTLE_PCT,
#                          15 %, of the median of the phase's last 3 s, and at least
#                          within 1: the limit is an integer) and each phase's success
#               surge      0.7x capacity, 2.5x for 5 s from a third of the run on, with
#                          clients that retry with exponential back-off (metastable failure)
#               synflood   0.7x capacity while a SYN flood comes from 10.201.0.4/30
#               synflood-full
#                          0.6x capacity (a connection per request) while a SYN flood at
#                          the generator's full rate (FLOOD_PPS=0, every CPU) comes from
#                          10.201.0.4/30, sources that never answer, in the default
#                          class; also reports loadshed's flow table fill (flows of
#                          max_flows, from `loadshed -j status` at 10 Hz) and the host's
#                          CPU use (/proc/stat) over the flood
#               keepalive  3x capacity, 20 % high / 80 % low, open-loop keep-alive clients:
#                          each class sends only over a pool of POOL (64) connections
#                          opened at start and kept open (ls-loadgen prewarm=1)
#               keepalive-attach
#                          the same, but the protection is put in front ATTACH_AT (8) s
#                          into the overload, with every pool already open; also reports
#                          each class's success from 2 s after the attach on
#               wrk        Debian's wrk (closed loop, HTTP/1.1 keep-alive, WRK_CONNS (8)
#                          connections from 10.201.0.2: the high class) next to the low
#                          class at 2.4x capacity over a prewarmed pool of POOL; reports
#                          wrk's requests, socket errors (connect, read, write, timeout),
#                          non-2xx answers and latency
#               pgbench    PostgreSQL (a throwaway cluster in the server namespace) under
#                          3x its capacity from two pgbench runs, high from 10.201.0.2 and
#                          low from 10.201.0.3, each -c PGB_CLIENTS (32) -j 2 -R RATE
#                          --latency-limit PG_LATENCY_MS; reports per class transactions
#                          done, on time, late and skipped, and whether every connection
#                          opened at start (protections: none, loadshed)
#   PROTECTION  none       nothing in front of the server
#               iptables   a hand-tuned connlimit: SYNs over IPT_LIMIT established
#                          connections get a TCP reset (the best static cap we found)
#               loadshed   loadshed attached with an adaptive limit: the algorithm's
#                          own defaults unless LS_* below say otherwise
#
# The server is ls-server with WORKERS workers and SERVICE_MS ms of work per
# request: capacity = WORKERS * 1000 / SERVICE_MS requests/s. Load comes from
# ls-loadgen (open loop, Poisson arrivals) in the client namespace: class high
# from 10.201.0.2, class low from 10.201.0.3, every request with a deadline of
# DEADLINE_MS; ok means a 200 answer within the deadline.
#
# Keep-alive and iptables: iptables judges SYNs and counts connections; it
# cannot see a request on an open connection, so with keep-alive connlimit
# caps connections, which bounds the server's concurrent requests (one per
# HTTP/1.1 connection) but shares the cap first come, first served among the
# pools' connects, whatever their class; and it never counts connections
# opened before the rule (keepalive-attach): they keep running until they end.
# The scenarios use the same total cap as the others (IPT_LIMIT); a per-class
# cap would need each class's rate known in advance.
#
# PostgreSQL's capacity (pgbench): WORKERS (16) slots of SERVICE_MS (40) ms.
# Each transaction is one statement, SELECT work(SERVICE_MS, WORKERS): a
# PL/pgSQL function that queues FIFO on an advisory lock (the gate), takes one
# of WORKERS advisory-lock slots, releases the gate and sleeps SERVICE_MS ms
# holding its slot to the end of the transaction. So the server runs at most
# WORKERS transactions at once, queues the rest in arrival order and does
# WORKERS * 1000 / SERVICE_MS transactions/s (400), as ls-server does requests:
# the bound is the slots, not the 2 CPUs (the work is a sleep).
# max_connections (PG_MAX_CONNECTIONS, 100) leaves room for both pools. Each
# run first measures it: PG_PROBE_S (3) s of closed-loop pgbench with
# 2 * PGB_CLIENTS clients, before any protection (measured_capacity_tps).
# pgbench cannot bind a source address: each class runs as its own uid, whose
# connections leave from its address by policy routing (testbed.sh,
# tb_src_route).
#
# Writes to DIR (default results/scenario/SCENARIO-PROTECTION):
#   loadgen.csv, loadgen.json   the load generator's per-second rows and totals
#   samples.csv                 10 Hz: t_s,limit,inflight,high_inflight,low_inflight,
#                               shed,queue_len,busy_workers,flows,high_guarantee (limit:
#                               loadshed's, or the static cap of iptables)
#   summary.json                the numbers the demo and bench tables are made of; among
#                               them the server's queue (queue_len: accepted, waiting for
#                               a worker) per second, its median second (server_queue),
#                               and the warm-up's offered and served rates (warmup)
#   warmup.json                 the warm-up's totals
#   loadshed.conf, status-end.json, server.log, ...; wrk.json, wrk.txt (wrk);
#   pgbench-high.log, pgbench-low.log, pg-conns.csv, postgres.log (pgbench)
# and prints one summary line. A run takes SECONDS plus a few seconds (default 20;
# the surge scenario at least 24, doubling 24 by default and at least 12,
# keepalive-attach at least ATTACH_AT + 6).
#
# Tunables (environment): WORKERS (16), SERVICE_MS (40), DEADLINE_MS (1000),
# IPT_LIMIT (WORKERS*5/4), SETTLE_PCT (15), WARMUP_S (3: unmeasured load at
# half capacity first, so the agent learns the unloaded latency as in a
# service that ran before the overload; 0 for keepalive-attach, where nothing
# is attached yet),
# LOAD (unset: each scenario's own; a multiple of the capacity for the whole
# run of unloaded, steady, slowdown or doubling),
# HIGH_SHARE (100), LOW_SHARE (0), LS_ACTION (reset), FLOOD_PPS (50000; 0 for
# synflood-full: as fast as the generator goes), FLOOD_THREADS (1; every CPU
# for synflood-full), FLOODER (xdp: ls-xdpflood; raw: ls-synflood), LOADSHED
# (build/loadshed), LS_AGENT (foreground: `attach --no-agent` plus `loadshed
# agent` as our child; attach: the agent `attach` starts in the background),
# SERVER (ls-server, or nginx: nginx-light answering every request itself, for
# a check that loadshed works in front of a real server; it is too fast to be
# overloaded here), POOL (64), ATTACH_AT (8), WRK_CONNS (8), WRK_THREADS (2),
# PGB_CLIENTS (32), PG_LATENCY_MS (100), PG_MAX_CONNECTIONS (100),
# PG_PROBE_S (3), TB_TX_CSUM (unset; off: the client veth sends full
# checksums, see testbed.sh).
#
# loadshed runs with what a user gets without tuning: no `algorithm`, no
# `params`, no limits in its file, so the project's default algorithm with
# its own defaults. For experiments: LS_ALGO (an algorithm by name),
# LS_PARAMS (k=v,k=v), LS_MIN_LIMIT, LS_MAX_LIMIT, LS_INITIAL_LIMIT (each
# unset: not written).
#
# Request mode: LS_ADMIT=requests|connections is loadshed's `admit` (in-flight
# counts outstanding requests on keep-alive connections, or connections).
# It defaults to requests for keepalive, keepalive-attach, wrk and pgbench when
# this loadshed has it (`attach help` lists --admit), else to connections;
# with requests, LS_REQUEST_ACTION (defer) is both classes' request_action and
# LS_MAX_CONNECTIONS (unset) the service's max_connections.
#
# Everything the run starts is stopped on exit, also on failure or ^C: the
# processes it started (by PID), loadshed's attachment, its iptables rules,
# the server-side XDP_PASS it adds for the live-frame flood, the PostgreSQL
# cluster and its directory, the uid routes; and the testbed itself when this
# run brought it up.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$HERE/testbed.sh"
TB_LOADSHED=${LOADSHED:-$TB_LOADSHED}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; }

SCENARIOS="unloaded|steady|slowdown|doubling|surge|synflood|synflood-full|keepalive|keepalive-attach|wrk|pgbench"
SCENARIO=${1:-}
PROTECTION=${2:-}
case $SCENARIO in -h | --help | help | '')
	usage
	[ -n "$SCENARIO" ]
	exit
	;;
esac
shift 2 || { usage >&2; exit 2; }
OUT=
SECONDS_RUN=
ID=tb
SEED=${SEED:-}
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=${2:?--out wants a directory}; shift 2 ;;
	--seconds) SECONDS_RUN=${2:?--seconds wants a number}; shift 2 ;;
	--id) ID=${2:?--id wants a value}; shift 2 ;;
	--seed) SEED=${2:?--seed wants a number}; shift 2 ;;
	*) echo "scenario: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
case "|$SCENARIOS|" in *"|$SCENARIO|"*) ;; *)
	echo "scenario: unknown scenario '$SCENARIO' ($SCENARIOS)" >&2
	exit 2
	;;
esac
case $PROTECTION in none | iptables | loadshed) ;; *)
	echo "scenario: unknown protection '$PROTECTION' (none|iptables|loadshed)" >&2
	exit 2
	;;
esac
if [ "$SCENARIO" = pgbench ] && [ "$PROTECTION" = iptables ]; then
	# A connection cap under the pools' 64 connections only makes pgbench
	# fail at start; above it, it does nothing.
	echo "scenario: pgbench runs against none or loadshed" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "scenario: needs root (network namespaces, XDP)" >&2
	exit 1
fi

# What kind of load: ls-loadgen alone, wrk next to it, or pgbench.
case $SCENARIO in
wrk) KIND=wrk ;;
pgbench) KIND=pgbench ;;
*) KIND=loadgen ;;
esac
case $SCENARIO in
keepalive | keepalive-attach | wrk | pgbench) REQUEST_SCENARIO=1 ;;
*) REQUEST_SCENARIO=0 ;;
esac

WORKERS=${WORKERS:-16}
SERVICE_MS=${SERVICE_MS:-40}
DEADLINE_MS=${DEADLINE_MS:-1000}
IPT_LIMIT=${IPT_LIMIT:-$((WORKERS * 5 / 4))}
LS_MIN_LIMIT=${LS_MIN_LIMIT:-}
LS_MAX_LIMIT=${LS_MAX_LIMIT:-}
LS_INITIAL_LIMIT=${LS_INITIAL_LIMIT:-}
LS_ALGO=${LS_ALGO:-}
LS_PARAMS=${LS_PARAMS:-}
SETTLE_PCT=${SETTLE_PCT:-15}
LS_ACTION=${LS_ACTION:-reset}
LS_REQUEST_ACTION=${LS_REQUEST_ACTION:-defer}
LS_MAX_CONNECTIONS=${LS_MAX_CONNECTIONS:-}
HIGH_SHARE=${HIGH_SHARE:-100}
LOW_SHARE=${LOW_SHARE:-0}
if [ "$SCENARIO" = synflood-full ]; then
	FLOOD_PPS=${FLOOD_PPS:-0}
	FLOOD_THREADS=${FLOOD_THREADS:-$(nproc)}
else
	FLOOD_PPS=${FLOOD_PPS:-50000}
	FLOOD_THREADS=${FLOOD_THREADS:-1}
fi
FLOODER=${FLOODER:-xdp}
LS_AGENT=${LS_AGENT:-attach}
SERVER=${SERVER:-ls-server}
case $SERVER in ls-server | nginx) ;; *) echo "scenario: SERVER is ls-server or nginx" >&2; exit 2 ;; esac
POOL=${POOL:-64}
ATTACH_AT=${ATTACH_AT:-8}
WRK_CONNS=${WRK_CONNS:-8}
WRK_THREADS=${WRK_THREADS:-2}
PGB_CLIENTS=${PGB_CLIENTS:-32}
PG_LATENCY_MS=${PG_LATENCY_MS:-100}
PG_MAX_CONNECTIONS=${PG_MAX_CONNECTIONS:-100}
PG_PROBE_S=${PG_PROBE_S:-3}
SEED=${SEED:-$((RANDOM * 32768 + RANDOM))}
if [ "$SCENARIO" = keepalive-attach ]; then
	WARMUP_S=${WARMUP_S:-0}
else
	WARMUP_S=${WARMUP_S:-3}
fi

# loadshed's admission unit. Request mode is the default of the keep-alive
# scenarios as soon as this loadshed has it.
LS_HAS_REQUESTS=0
if [ -x "$TB_LOADSHED" ] && "$TB_LOADSHED" attach help 2>/dev/null | grep -q -- '--admit'; then
	LS_HAS_REQUESTS=1
fi
if [ -z "${LS_ADMIT:-}" ]; then
	LS_ADMIT=connections
	[ "$REQUEST_SCENARIO" = 1 ] && [ "$LS_HAS_REQUESTS" = 1 ] && LS_ADMIT=requests
fi
case $LS_ADMIT in
connections) ;;
requests)
	if [ "$PROTECTION" = loadshed ] && [ "$LS_HAS_REQUESTS" = 0 ]; then
		echo "scenario: LS_ADMIT=requests, but $TB_LOADSHED has no request mode (attach has no --admit)" >&2
		exit 2
	fi
	;;
*) echo "scenario: LS_ADMIT is requests or connections" >&2; exit 2 ;;
esac

if [ -z "$SECONDS_RUN" ]; then
	case $SCENARIO in
	unloaded) SECONDS_RUN=5 ;;
	surge) SECONDS_RUN=30 ;;
	doubling) SECONDS_RUN=24 ;;
	*) SECONDS_RUN=20 ;;
	esac
fi
if ! [[ $SECONDS_RUN =~ ^[0-9]+$ ]] || [ "$SECONDS_RUN" -lt 3 ] || [ "$SECONDS_RUN" -gt 40 ]; then
	echo "scenario: --seconds wants 3..40" >&2
	exit 2
fi
if [ "$SCENARIO" = surge ] && [ "$SECONDS_RUN" -lt 24 ]; then
	SECONDS_RUN=24
fi
if [ "$SCENARIO" = keepalive-attach ] && [ "$SECONDS_RUN" -lt $((ATTACH_AT + 6)) ]; then
	SECONDS_RUN=$((ATTACH_AT + 6))
fi
if [ "$SCENARIO" = synflood-full ] && [ "$SECONDS_RUN" -lt 8 ]; then
	SECONDS_RUN=8
fi
# doubling: three phases of at least 4 s, each with its last 3 s as its final value.
if [ "$SCENARIO" = doubling ] && [ "$SECONDS_RUN" -lt 12 ]; then
	SECONDS_RUN=12
fi
OUT=${OUT:-$TB_ROOT/results/scenario/$SCENARIO-$PROTECTION}
# LOAD: the whole run at this multiple of the capacity instead (unloaded,
# steady, slowdown, doubling), e.g. the latency of a FIFO server that runs
# the high class's share of the steady load and nothing else: LOAD=0.6 unloaded.
if [ -n "${LOAD:-}" ]; then
	case $SCENARIO in
	unloaded | steady | slowdown | doubling) ;;
	*)
		echo "scenario: LOAD applies to unloaded, steady, slowdown and doubling" >&2
		exit 2
		;;
	esac
	if ! [[ $LOAD =~ ^[0-9]+(\.[0-9]+)?$ ]] || awk -v l="$LOAD" 'BEGIN { exit !(l <= 0 || l > 10) }'; then
		echo "scenario: LOAD wants a multiple of the capacity in (0, 10]" >&2
		exit 2
	fi
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/{loadgen.csv,loadgen.json,samples.csv,samples.jsonl,summary.json,status-end.json} \
	"$OUT"/{wrk.json,wrk.txt,pgbench-high.log,pgbench-low.log,pg-conns.csv,cpu.txt} \
	"$OUT"/{warmup.json,slowdown.log,doubling.log}

for f in "$TB_TOOLS/ls-server" "$TB_TOOLS/ls-loadgen"; do
	[ -x "$f" ] || { echo "scenario: $f is missing (run make)" >&2; exit 1; }
done
if [ "$PROTECTION" = loadshed ] && [ ! -x "$TB_LOADSHED" ]; then
	echo "scenario: $TB_LOADSHED is missing (run make)" >&2
	exit 1
fi
if [ "$KIND" = wrk ]; then
	command -v wrk >/dev/null || { echo "scenario: wrk is missing (scripts/install-deps.sh)" >&2; exit 1; }
fi
if [ "$KIND" = pgbench ]; then
	PG_BIN=$(tb_pg_bin) || { echo "scenario: PostgreSQL is missing (scripts/install-deps.sh)" >&2; exit 1; }
fi

tb_names "$ID"
OWN_TESTBED=0
if ! tb_healthy; then
	OWN_TESTBED=1
fi

SERVICE_PORT=$TB_PORT
[ "$KIND" = pgbench ] && SERVICE_PORT=$TB_PG_PORT
IPT_RULE=(INPUT -p tcp --syn --dport "$SERVICE_PORT" -m connlimit --connlimit-above "$IPT_LIMIT"
	--connlimit-mask 0 -j REJECT --reject-with tcp-reset)
# The flood's sources answer nothing, like spoofed ones: their SYN-ACKs are
# dropped on arrival in the client namespace (not by the server under test).
FLOOD_SRC=10.201.0.4/30
FLOOD_RULE=(PREROUTING -d "$FLOOD_SRC" -p tcp --tcp-flags "SYN,ACK" "SYN,ACK" -j DROP)
IPT_ADDED=0
FLOOD_RULE_ADDED=0
SRV_XDP_ADDED=0
SRC_ROUTES=()
PGB_DIR=
RUN_PROCS=(loadgen sampler pgsampler flood agent wrk pgbench_high pgbench_low server)

cleanup() {
	local rc=$? p a
	trap - EXIT INT TERM
	for p in "${RUN_PROCS[@]}"; do tb_kill "$p"; done
	if tb_exists; then
		if [ "$PROTECTION" = loadshed ]; then tb_detach; fi
		[ "$IPT_ADDED" = 1 ] && tb_srv iptables -D "${IPT_RULE[@]}" 2>/dev/null
		[ "$FLOOD_RULE_ADDED" = 1 ] && tb_cli iptables -t raw -D "${FLOOD_RULE[@]}" 2>/dev/null
		[ "$SRV_XDP_ADDED" = 1 ] && ip -n "$SRV_NS" link set dev "$SRV_IF" xdp off 2>/dev/null
		for a in "${SRC_ROUTES[@]}"; do tb_src_unroute "$a"; done
	fi
	if [ "$KIND" = pgbench ]; then
		tb_pg_stop
		[ -n "$PGB_DIR" ] && rm -rf "$PGB_DIR"
	fi
	[ "$OWN_TESTBED" = 1 ] && tb_down
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$OWN_TESTBED" = 1 ]; then
	tb_up >/dev/null || { echo "scenario: the testbed does not come up" >&2; exit 1; }
fi
eval "$(tb_env)"
tb_tx_csum || exit 1
# The client veth's checksum offload, as it is for this run (see testbed.sh).
TX_CSUM=$(tb_cli ethtool -k "$CLI_IF" 2>/dev/null | awk '/^tx-checksumming:/ { print $2 }') || TX_CSUM=
# Leftovers of an interrupted run on the same testbed (tracked by PID).
for p in "${RUN_PROCS[@]}"; do tb_kill "$p"; done
tb_detach
ip -n "$SRV_NS" link set dev "$SRV_IF" xdp off 2>/dev/null || true

CAPACITY=$(awk -v w="$WORKERS" -v s="$SERVICE_MS" 'BEGIN { printf "%.0f", w * 1000 / s }')
# rate X: X times capacity, in requests/s.
rate() { awk -v c="$CAPACITY" -v x="$1" 'BEGIN { printf "%.0f", c * x }'; }

# --- the load: every class is 20 % high, 80 % low ------------------------------
HALF=$((SECONDS_RUN / 2))
DOUBLE_AT=$((SECONDS_RUN / 3))
RETURN_AT=$((SECONDS_RUN * 2 / 3))
SURGE_AT=$((SECONDS_RUN / 3))
SURGE_END=$((SURGE_AT + 5))
RETRY=none
MODE=mode=close
case $SCENARIO in
unloaded) SCHED_TOTAL=("0.3@0") ;;
steady | pgbench) SCHED_TOTAL=("3@0") ;;
slowdown | doubling) SCHED_TOTAL=("1.5@0") ;;
surge)
	SCHED_TOTAL=("0.7@0" "2.5@$SURGE_AT" "0.7@$SURGE_END")
	RETRY=backoff:3:100:2000
	;;
synflood) SCHED_TOTAL=("0.7@0") ;;
synflood-full) SCHED_TOTAL=("0.6@0") ;;
keepalive | keepalive-attach | wrk)
	SCHED_TOTAL=("3@0")
	MODE="mode=keepalive,conns=$POOL,prewarm=1"
	;;
esac
# LOAD (checked above): the whole run at this multiple of the capacity.
if [ -n "${LOAD:-}" ]; then SCHED_TOTAL=("$LOAD@0"); fi
# schedule SHARE: the class's rate schedule, SHARE of the total.
schedule() {
	local out="" item x t
	for item in "${SCHED_TOTAL[@]}"; do
		x=${item%@*}
		t=${item#*@}
		out+="${out:+,}$(awk -v x="$x" -v s="$1" -v c="$CAPACITY" 'BEGIN { printf "%.0f", c * x * s }')@$t"
	done
	echo "$out"
}
TARGET="$TB_SRV_IP:$TB_PORT"
CLASS_HIGH="name=high,src=$TB_HIGH_IP,target=$TARGET,rate=$(schedule 0.2),deadline_ms=$DEADLINE_MS,retry=$RETRY,$MODE"
CLASS_LOW="name=low,src=$TB_LOW_IP,target=$TARGET,rate=$(schedule 0.8),deadline_ms=$DEADLINE_MS,retry=$RETRY,$MODE"

# --- the server ------------------------------------------------------------------
if [ "$KIND" = pgbench ]; then
	# A throwaway cluster in the server namespace and the function that gives
	# it WORKERS slots of SERVICE_MS ms (see above).
	tb_pg_start "$OUT/postgres.log" "$PG_MAX_CONNECTIONS" ||
		{ echo "scenario: PostgreSQL did not start" >&2; exit 1; }
	tb_psql -f - <<-'EOF' || { echo "scenario: could not create work()" >&2; exit 1; }
		CREATE FUNCTION work(ms float8, slots int) RETURNS int LANGUAGE plpgsql AS $$
		DECLARE k int;
		BEGIN
			PERFORM pg_advisory_lock(20100, 0);
			LOOP
				FOR k IN 1..slots LOOP
					IF pg_try_advisory_xact_lock(20100, k) THEN
						PERFORM pg_advisory_unlock(20100, 0);
						PERFORM pg_sleep(ms / 1000.0);
						RETURN k;
					END IF;
				END LOOP;
				PERFORM pg_sleep(0.0005);
			END LOOP;
		END $$;
	EOF
	# The clients' files, readable by their uids.
	PGB_DIR=$(mktemp -d /tmp/ls-pgbench.XXXXXX)
	chmod 0755 "$PGB_DIR"
	echo "SELECT work(:ms, :slots);" >"$PGB_DIR/work.sql"
	chmod 0644 "$PGB_DIR/work.sql"
	for a in "$TB_HIGH_IP" "$TB_LOW_IP"; do
		SRC_ROUTES+=("$a")
		tb_src_route "$a" || { echo "scenario: no source route for $a" >&2; exit 1; }
	done
elif [ "$SERVER" = nginx ]; then
	# A real Debian server: nginx answering every request itself. Far faster
	# than ls-server, so the load here does not overload it; this checks that
	# loadshed works in front of it (capacity figures then mean ls-server's).
	command -v nginx >/dev/null || { echo "scenario: nginx is missing (LS_WITH_NGINX=1 scripts/install-deps.sh)" >&2; exit 1; }
	mkdir -p "$OUT/nginx"
	cat >"$OUT/nginx/nginx.conf" <<-EOF
		worker_processes 1;
		pid $OUT/nginx/nginx.pid;
		error_log $OUT/nginx/error.log;
		events { worker_connections 8192; }
		http {
			access_log off;
			client_body_temp_path $OUT/nginx;
			proxy_temp_path $OUT/nginx;
			fastcgi_temp_path $OUT/nginx;
			uwsgi_temp_path $OUT/nginx;
			scgi_temp_path $OUT/nginx;
			server {
				listen $TARGET backlog=65535;
				location / { return 200 "ok\n"; }
			}
		}
	EOF
	tb_spawn server srv "$OUT/server.log" nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" \
		-g "daemon off;"
	for _ in $(seq 50); do
		tb_srv bash -c "exec 3<>/dev/tcp/$TB_SRV_IP/$TB_PORT" 2>/dev/null && break
		sleep 0.1
	done
else
	tb_spawn server srv "$OUT/server.log" "$TB_TOOLS/ls-server" --listen "$TARGET" \
		--listen "[fd00:201::1]:$TB_PORT" --workers "$WORKERS" --service-ms "$SERVICE_MS" \
		--admin "127.0.0.1:$TB_ADMIN_PORT"
	for _ in $(seq 50); do
		grep -q listening "$OUT/server.log" && break
		sleep 0.1
	done
	grep -q listening "$OUT/server.log" || { echo "scenario: ls-server did not start:" >&2; cat "$OUT/server.log" >&2; exit 1; }
fi

# pgbench_cmd ADDR CLIENTS ARGS...: pgbench of the class at ADDR (its uid,
# its source address) against the cluster, with the work script.
pgbench_cmd() {
	local uid
	uid=$(tb_uid_of "$1")
	PGBENCH=(setpriv --reuid="$uid" --regid="$uid" --clear-groups "$PG_BIN/pgbench"
		-h "$TB_SRV_IP" -p "$TB_PG_PORT" -U postgres -n -f "$PGB_DIR/work.sql"
		-D ms="$SERVICE_MS" -D slots="$WORKERS" -c "$2" -j 2 "${@:3}" postgres)
}

# --- PostgreSQL's capacity, measured before anything is in front ------------------
MEASURED_TPS=null
if [ "$KIND" = pgbench ] && [ "$PG_PROBE_S" -gt 0 ]; then
	pgbench_cmd "$TB_HIGH_IP" $((2 * PGB_CLIENTS)) -T "$PG_PROBE_S"
	tb_cli "${PGBENCH[@]}" >"$OUT/pgbench-capacity.log" 2>&1 || true
	MEASURED_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/pgbench-capacity.log")
	MEASURED_TPS=${MEASURED_TPS:-null}
fi

# --- the protection --------------------------------------------------------------
STATIC_LIMIT=
ATTACHED_MS=
# protect: puts the protection in front of the server.
protect() {
	local agent_opt=() admit_svc="" admit_cls="" tuning=""
	case $PROTECTION in
	none) ;;
	iptables)
		tb_srv iptables -A "${IPT_RULE[@]}"
		IPT_ADDED=1
		STATIC_LIMIT=$IPT_LIMIT
		;;
	loadshed)
		if [ "$LS_ADMIT" = requests ]; then
			admit_svc="admit = requests"
			[ -n "$LS_MAX_CONNECTIONS" ] && admit_svc+=$'\n'"max_connections = $LS_MAX_CONNECTIONS"
			[ -n "${LS_MAX_DEFER:-}" ] && admit_svc+=$'\n'"max_defer = $LS_MAX_DEFER"
			admit_cls="request_action = $LS_REQUEST_ACTION"
		fi
		# Only what the run was told: the rest is loadshed's defaults.
		[ -n "$LS_ALGO" ] && tuning+="algorithm = $LS_ALGO"$'\n'
		[ -n "$LS_PARAMS" ] && tuning+="params = $LS_PARAMS"$'\n'
		[ -n "$LS_MIN_LIMIT" ] && tuning+="min_limit = $LS_MIN_LIMIT"$'\n'
		[ -n "$LS_MAX_LIMIT" ] && tuning+="max_limit = $LS_MAX_LIMIT"$'\n'
		[ -n "$LS_INITIAL_LIMIT" ] && tuning+="initial_limit = $LS_INITIAL_LIMIT"$'\n'
		cat >"$OUT/loadshed.conf" <<-EOF
			# loadshed for the $SCENARIO scenario ($WORKERS workers, $SERVICE_MS ms a request)
			[agent]
			interval = 100ms

			[service web]
			listen = *:$SERVICE_PORT
			$tuning$admit_svc

			[class web.high]
			share = $HIGH_SHARE%
			action = $LS_ACTION
			match = src $TB_HIGH_IP/32
			$admit_cls

			[class web.low]
			share = $LOW_SHARE%
			action = $LS_ACTION
			match = src $TB_LOW_IP/32
			$admit_cls
		EOF
		# The agent runs in the foreground as our child (systemd-style) unless
		# LS_AGENT=attach: stopping it is then immediate and its log is kept.
		[ "$LS_AGENT" = foreground ] && agent_opt=(--no-agent)
		if ! tb_ls attach "$SRV_IF" --config "$OUT/loadshed.conf" "${agent_opt[@]}" >"$OUT/attach.log" 2>&1; then
			echo "scenario: loadshed attach failed:" >&2
			cat "$OUT/attach.log" >&2
			exit 1
		fi
		if [ "$LS_AGENT" = foreground ]; then
			tb_spawn agent srv "$OUT/agent.log" "$TB_LOADSHED" agent "$SRV_IF"
		fi
		;;
	esac
}
[ "$SCENARIO" = keepalive-attach ] || protect

# --- warm-up: the service at half its capacity before the measured run --------------
# A protected service normally runs for a while before an overload arrives:
# the agent learns its unloaded latency then. Same for every protection; not
# measured. WARMUP_S=0 skips it.
if [ "$WARMUP_S" -gt 0 ]; then
	if [ "$KIND" = pgbench ]; then
		pgbench_cmd "$TB_HIGH_IP" 4 -T "$WARMUP_S" -R $((CAPACITY / 2))
		tb_cli "${PGBENCH[@]}" >"$OUT/warmup.log" 2>&1 || true
	else
		tb_cli "$TB_TOOLS/ls-loadgen" --duration "$WARMUP_S" --seed "$SEED" --drain-s 2 \
			--json "$OUT/warmup.json" \
			--class "name=warmup,src=$TB_HIGH_IP,target=$TARGET,rate=$((CAPACITY / 2)),deadline_ms=$DEADLINE_MS,mode=close" \
			>"$OUT/warmup.log" 2>&1 || true
	fi
fi

# --- the flood ---------------------------------------------------------------------
FLOOD_FROM=3
FLOOD_S=$((SECONDS_RUN - 6))
if [ "$SCENARIO" = synflood ] || [ "$SCENARIO" = synflood-full ]; then
	tb_cli iptables -t raw -A "${FLOOD_RULE[@]}"
	FLOOD_RULE_ADDED=1
	if [ "$FLOODER" = xdp ]; then
		[ -x "$TB_TOOLS/ls-xdpflood" ] || { echo "scenario: $TB_TOOLS/ls-xdpflood is missing" >&2; exit 1; }
		# Live frames reach the server's veth only when it has an XDP program.
		if [ "$PROTECTION" != loadshed ]; then
			ip -n "$SRV_NS" link set dev "$SRV_IF" xdp obj "$TB_BPF/xdp_pass.bpf.o" sec xdp
			SRV_XDP_ADDED=1
		fi
		FLOOD_CMD=("$TB_TOOLS/ls-xdpflood" --dev "$CLI_IF" --dst-mac "$SRV_MAC" --src "$FLOOD_SRC"
			--dst "$TARGET" --rate "$FLOOD_PPS" --duration "$FLOOD_S" --threads "$FLOOD_THREADS")
	else
		[ -x "$TB_TOOLS/ls-synflood" ] || { echo "scenario: $TB_TOOLS/ls-synflood is missing" >&2; exit 1; }
		FLOOD_CMD=("$TB_TOOLS/ls-synflood" --src "$FLOOD_SRC" --dst "$TARGET" --rate "$FLOOD_PPS"
			--duration "$FLOOD_S")
		[ "$FLOOD_PPS" -gt 0 ] && FLOOD_CMD+=(--count $((FLOOD_PPS * FLOOD_S)))
	fi
fi

# --- the 10 Hz sampler: loadshed's limit and in-flight, the server's queue ----------
# One shell in the server namespace; each line is epoch ms, status JSON, stats JSON.
# shellcheck disable=SC2016 # expanded by the inner bash
SAMPLER='
	ls=$1 ifc=$2 port=$3 end=$(( ${EPOCHSECONDS} + $4 ))
	while [ "${EPOCHSECONDS}" -lt "$end" ]; do
		t=${EPOCHREALTIME/./}
		st=null
		if [ "$ls" != - ]; then st=$("$ls" -j status "$ifc" 2>/dev/null | tr -d "\n") || st=null; fi
		sv=null
		if [ "$port" != - ] && exec 3<>"/dev/tcp/127.0.0.1/$port"; then
			printf "GET /admin/stats HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" >&3
			sv=$(sed "1,/^\r$/d" <&3 | tr -d "\n")
			exec 3<&-
		fi
		printf "%s\t%s\t%s\n" "$((t / 1000))" "${st:-null}" "${sv:-null}"
		sleep 0.1
	done'
LS_FOR_SAMPLER=-
[ "$PROTECTION" = loadshed ] && LS_FOR_SAMPLER=$TB_LOADSHED
ADMIN_FOR_SAMPLER=$TB_ADMIN_PORT
[ "$KIND" = pgbench ] && ADMIN_FOR_SAMPLER=-
tb_spawn sampler srv "$OUT/samples.raw" bash -c "$SAMPLER" _ "$LS_FOR_SAMPLER" "$SRV_IF" \
	"$ADMIN_FOR_SAMPLER" $((SECONDS_RUN + 70))
if [ "$KIND" = pgbench ]; then
	# 2 Hz: the cluster's client connections from each class (over its Unix socket).
	# shellcheck disable=SC2016 # expanded by the inner bash
	tb_spawn pgsampler host "$OUT/pg-conns.raw" bash -c '
		end=$(( ${EPOCHSECONDS} + $1 )); shift
		while [ "${EPOCHSECONDS}" -lt "$end" ]; do
			t=${EPOCHREALTIME/./}
			c=$("$@" -F, -c "SELECT count(*) FILTER (WHERE client_addr = '"'$TB_HIGH_IP'"'),
				count(*) FILTER (WHERE client_addr = '"'$TB_LOW_IP'"')
				FROM pg_stat_activity WHERE backend_type = '"'client backend'"'" 2>/dev/null) &&
				echo "$((t / 1000)),$c"
			sleep 0.5
		done' _ $((SECONDS_RUN + 30)) "$PG_BIN/psql" -h "$TB_PG_DIR" -p "$TB_PG_PORT" -U postgres \
		-d postgres -X -q -A -t
fi

# --- the run -------------------------------------------------------------------------
# sleep_until S: sleeps until S seconds after the load generator started.
sleep_until() {
	local now_ms
	now_ms=$(($(date +%s%N) / 1000000))
	if [ $((T0_MS + $1 * 1000)) -gt "$now_ms" ]; then
		sleep "$(awk -v ms=$((T0_MS + $1 * 1000 - now_ms)) 'BEGIN { printf "%.3f", ms / 1000 }')"
	fi
}
# cpu_snap: the host's CPU time counters (the first line of /proc/stat).
cpu_snap() { head -n1 /proc/stat; }

T0_MS=$(($(date +%s%N) / 1000000))
case $KIND in
loadgen)
	tb_spawn loadgen cli "$OUT/loadgen.log" "$TB_TOOLS/ls-loadgen" --duration "$SECONDS_RUN" \
		--csv "$OUT/loadgen.csv" --json "$OUT/loadgen.json" --seed "$SEED" \
		--class "$CLASS_HIGH" --class "$CLASS_LOW"
	WAIT_PIDS=("$TB_PID")
	;;
wrk)
	# The low class's pool opens first; wrk's connections come half a second
	# later and it runs SECONDS_RUN s, inside the low class's load.
	tb_spawn loadgen cli "$OUT/loadgen.log" "$TB_TOOLS/ls-loadgen" --duration $((SECONDS_RUN + 1)) \
		--csv "$OUT/loadgen.csv" --json "$OUT/loadgen.json" --seed "$SEED" --class "$CLASS_LOW"
	WAIT_PIDS=("$TB_PID")
	sleep 0.5
	tb_spawn wrk cli "$OUT/wrk.txt" env WRK_JSON="$OUT/wrk.json" wrk -s "$TB_ROOT/scripts/wrk-report.lua" \
		-t "$WRK_THREADS" -c "$WRK_CONNS" -d "${SECONDS_RUN}s" --timeout 10s --latency "http://$TARGET/"
	WAIT_PIDS+=("$TB_PID")
	;;
pgbench)
	PGB_HIGH_RATE=$(awk -v c="$CAPACITY" 'BEGIN { printf "%.0f", c * 3 * 0.2 }')
	PGB_LOW_RATE=$(awk -v c="$CAPACITY" 'BEGIN { printf "%.0f", c * 3 * 0.8 }')
	pgbench_cmd "$TB_HIGH_IP" "$PGB_CLIENTS" -T "$SECONDS_RUN" -R "$PGB_HIGH_RATE" \
		--latency-limit "$PG_LATENCY_MS" -P 1
	tb_spawn pgbench_high cli "$OUT/pgbench-high.log" "${PGBENCH[@]}"
	WAIT_PIDS=("$TB_PID")
	pgbench_cmd "$TB_LOW_IP" "$PGB_CLIENTS" -T "$SECONDS_RUN" -R "$PGB_LOW_RATE" \
		--latency-limit "$PG_LATENCY_MS" -P 1
	tb_spawn pgbench_low cli "$OUT/pgbench-low.log" "${PGBENCH[@]}"
	WAIT_PIDS+=("$TB_PID")
	;;
esac
if [ "$SCENARIO" = keepalive-attach ]; then
	sleep_until "$ATTACH_AT"
	protect
	ATTACHED_MS=$(($(date +%s%N) / 1000000 - T0_MS))
fi
if [ "$SCENARIO" = synflood ] || [ "$SCENARIO" = synflood-full ]; then
	sleep_until "$FLOOD_FROM"
	cpu_snap >"$OUT/cpu.txt"
	tb_spawn flood cli "$OUT/flood.log" "${FLOOD_CMD[@]}"
	sleep_until $((FLOOD_FROM + FLOOD_S))
	cpu_snap >>"$OUT/cpu.txt"
fi
# set_service_ms MS LOG: the server's service time from now on.
set_service_ms() {
	tb_admin "/admin/service-ms?value=$1" >>"$2" 2>&1 ||
		echo "scenario: could not change the service time" >&2
}
if [ "$SCENARIO" = slowdown ]; then
	sleep_until "$HALF"
	set_service_ms $((SERVICE_MS * 2)) "$OUT/slowdown.log"
fi
DOUBLED_MS=
RETURNED_MS=
if [ "$SCENARIO" = doubling ]; then
	: >"$OUT/doubling.log"
	sleep_until "$DOUBLE_AT"
	DOUBLED_MS=$(($(date +%s%N) / 1000000 - T0_MS))
	set_service_ms $((SERVICE_MS * 2)) "$OUT/doubling.log"
	sleep_until "$RETURN_AT"
	RETURNED_MS=$(($(date +%s%N) / 1000000 - T0_MS))
	set_service_ms "$SERVICE_MS" "$OUT/doubling.log"
fi
# Every load process. A failed pgbench or wrk is a result (its log says why:
# say, a connection refused at start), not a failed run; ls-loadgen is not.
LOAD_RC=()
for pid in "${WAIT_PIDS[@]}"; do
	rc=0
	wait "$pid" || rc=$?
	LOAD_RC+=("$rc")
	if [ "$rc" -ne 0 ] && [ "$KIND" != pgbench ] && [ "${#LOAD_RC[@]}" = 1 ]; then
		echo "scenario: ls-loadgen failed (exit status $rc):" >&2
		tail -n 20 "$OUT/loadgen.log" >&2
		exit 1
	fi
done
for p in loadgen wrk pgbench_high pgbench_low; do tb_kill "$p"; done
if [ "$PROTECTION" = loadshed ]; then
	# Every request has ended: give the last FINs a moment to pass, then keep
	# loadshed's final counters (in-flight should be back to 0).
	for _ in $(seq 30); do
		tb_ls -j status "$SRV_IF" >"$OUT/status-end.json" 2>/dev/null || true
		[ "$(jq -r '.services[0].inflight' "$OUT/status-end.json" 2>/dev/null)" = 0 ] && break
		sleep 0.1
	done
fi
tb_kill sampler
tb_kill pgsampler
tb_kill flood

# --- the numbers ---------------------------------------------------------------------
# samples.csv: one row per sample, t_s from the load generator's start.
# (The static cap only from when it was put in front: keepalive-attach.)
awk -F'\t' -v t0="$T0_MS" -v lim="$STATIC_LIMIT" -v att="${ATTACHED_MS:-0}" 'BEGIN { OFS = "\t" }
	NF == 3 { t = $1 - t0; print t / 1000, (t >= att ? lim : ""), $2, $3 }' "$OUT/samples.raw" |
	jq -R -r 'split("\t") as $f
		| (try ($f[2] | fromjson) catch null) as $ls
		| (try ($f[3] | fromjson) catch null) as $sv
		| ($ls.services[0]? // null) as $s
		| def cls($n): ($s.classes[]? | select(.name == $n or (.name | endswith("." + $n)))) // null;
		[ ($f[0] | tonumber), (if $s then $s.limit else ($f[1] | if . == "" then null else tonumber end) end),
		  $s.inflight, cls("high").inflight, cls("low").inflight,
		  (if $s then ([$s.classes[]?.shed] | add) else null end),
		  $sv.queue_len, $sv.busy_workers, $ls.flows, cls("high").guarantee ]
		| map(if . == null then "" else tostring end) | join(",")' |
	{ echo "t_s,limit,inflight,high_inflight,low_inflight,shed,queue_len,busy_workers,flows,high_guarantee"; sort -t, -k1,1g; } \
		>"$OUT/samples.csv"

# Per-second success of all classes: ok / outcomes (in the second they happened).
RECOVERY_S=null
if [ "$SCENARIO" = surge ]; then
	RECOVERY_S=$(awk -F, -v from="$SURGE_END" -v until="$SECONDS_RUN" '
		NR > 1 && $1 >= from && $1 < until {
			ok[$1] += $4; n[$1] += $4 + $5 + $6 + $7 + $12 + $13 + $14
		}
		END {
			# the first second from which every later one has >= 99 % success
			rec = "null"
			for (t = until - 1; t >= from; t--) {
				if (n[t] > 0 && ok[t] / n[t] < 0.99) break
				rec = t - from
			}
			print rec
		}' "$OUT/loadgen.csv")
fi
# final_limit UNTIL_S: loadshed's limit at the end of a phase, the median of
# its samples in the last 3 s before UNTIL_S; null without samples.
final_limit() {
	awk -F, -v end="$1" '
		NR > 1 && $2 != "" && $1 >= end - 3 && $1 < end { v[m++] = $2 }
		END {
			if (m == 0) { print "null"; exit }
			for (i = 1; i < m; i++)  # insertion sort: mawk has no asort
				for (j = i; j > 0 && v[j - 1] > v[j]; j--) { x = v[j]; v[j] = v[j - 1]; v[j - 1] = x }
			print v[int((m - 1) / 2)]
		}' "$OUT/samples.csv"
}
# settle FROM_S UNTIL_S PCT: seconds from FROM_S until loadshed's limit stays
# for good (up to UNTIL_S) within PCT % of final_limit UNTIL_S, and at least
# within 1 (the limit is an integer); null when it never does, or when it
# still drifts in those last 3 s (their least-squares line moves by more).
settle() {
	awk -F, -v at="$1" -v end="$2" -v pct="$3" -v fin="$(final_limit "$2")" '
		NR > 1 && $2 != "" && $1 >= at && $1 < end { t[n] = $1; l[n] = $2; n++ }
		END {
			if (fin == "null") { print "null"; exit }
			band = fin * pct / 100
			if (band < 1) band = 1
			for (i = 0; i < n; i++)
				if (t[i] >= end - 3) { k++; st += t[i]; sl += l[i]; stt += t[i] * t[i]; stl += t[i] * l[i] }
			if (k > 1 && k * stt - st * st > 0) {
				slope = (k * stl - st * sl) / (k * stt - st * st)
				if ((slope < 0 ? -slope : slope) * 3 > band) { print "null"; exit }
			}
			s = "null"
			for (i = n - 1; i >= 0; i--) {
				if (l[i] > fin + band || l[i] < fin - band) break
				s = t[i] - at
			}
			if (s != "null") s = sprintf("%.1f", s < 0 ? 0 : s)
			print s
		}' "$OUT/samples.csv"
}
# second_stat median|max COL FROM_S UNTIL_S: the median (or the largest) over
# the seconds in [FROM_S, UNTIL_S) of each second's mean of samples.csv's
# column COL; null without samples.
second_stat() {
	awk -F, -v c="$2" -v from="$3" -v until="$4" -v what="$1" '
		NR > 1 && $c != "" && $1 >= from && $1 < until { s = int($1); sum[s] += $c; n[s]++ }
		END {
			m = 0
			for (s in n) v[m++] = sum[s] / n[s]
			if (m == 0) { print "null"; exit }
			for (i = 1; i < m; i++)
				for (j = i; j > 0 && v[j - 1] > v[j]; j--) { x = v[j]; v[j] = v[j - 1]; v[j - 1] = x }
			printf "%.2f\n", what == "max" ? v[m - 1] : (m % 2 ? v[(m - 1) / 2] : (v[m / 2 - 1] + v[m / 2]) / 2)
		}' "$OUT/samples.csv"
}
second_median() { second_stat median "$@"; }
second_max() { second_stat max "$@"; }
# class_ok FROM_S UNTIL_S: each class's ok and ended requests in [FROM_S, UNTIL_S),
# as JSON ({"high": {...}, ...}).
class_ok() {
	awk -F, -v from="$1" -v until="$2" '
		NR > 1 && $1 >= from && $1 < until {
			ok[$2] += $4; n[$2] += $4 + $5 + $6 + $7 + $12 + $13 + $14
		}
		END {
			printf "{"
			sep = ""
			for (c in n) {
				printf "%s\"%s\": {\"ok\": %d, \"ended\": %d, \"ok_pct\": %.2f}", sep, c, ok[c], n[c],
					n[c] ? 100 * ok[c] / n[c] : 0
				sep = ", "
			}
			print "}"
		}' "$OUT/loadgen.csv"
}

SETTLE_S=null
if [ "$SCENARIO" = slowdown ] && [ "$PROTECTION" = loadshed ]; then
	SETTLE_S=$(settle "$HALF" "$SECONDS_RUN" 25)
fi
# doubling: per phase (before, doubled, back), loadshed's limit at the end
# of the phase and how long it took to settle there, and each class's success.
DOUBLING_JSON=null
if [ "$SCENARIO" = doubling ]; then
	DOUBLING_JSON=$(jq -n -c --argjson d_ms "$DOUBLED_MS" --argjson r_ms "$RETURNED_MS" \
		--argjson pct "$SETTLE_PCT" \
		--argjson lim_before "$(final_limit "$DOUBLE_AT")" \
		--argjson lim_doubled "$(final_limit "$RETURN_AT")" \
		--argjson lim_back "$(final_limit "$SECONDS_RUN")" \
		--argjson settle_doubled "$(settle "$(awk -v ms="$DOUBLED_MS" 'BEGIN { print ms / 1000 }')" "$RETURN_AT" "$SETTLE_PCT")" \
		--argjson settle_back "$(settle "$(awk -v ms="$RETURNED_MS" 'BEGIN { print ms / 1000 }')" "$SECONDS_RUN" "$SETTLE_PCT")" \
		--argjson ok_before "$(class_ok 0 "$DOUBLE_AT")" \
		--argjson ok_doubled "$(class_ok "$DOUBLE_AT" "$RETURN_AT")" \
		--argjson ok_back "$(class_ok "$RETURN_AT" "$SECONDS_RUN")" \
		'{doubled_at_s: ($d_ms / 1000), returned_at_s: ($r_ms / 1000), settle_pct: $pct,
		  before: {limit_final: $lim_before, success: $ok_before},
		  doubled: {limit_final: $lim_doubled, settle_s: $settle_doubled, success: $ok_doubled},
		  back: {limit_final: $lim_back, settle_s: $settle_back, success: $ok_back}}')
fi
# The server's queue (requests accepted and waiting for a worker: in-flight
# minus busy workers, as ls-server counts them) and loadshed's limit, per
# second of the run; the median second.
QUEUE_JSON=$(jq -n -c --argjson w "$WORKERS" \
	--argjson med "$(second_median 7 0 "$SECONDS_RUN")" --argjson max "$(second_max 7 0 "$SECONDS_RUN")" \
	--argjson busy "$(second_median 8 0 "$SECONDS_RUN")" \
	'{median_s: $med, per_worker: (if $med == null then null else $med / $w end),
	  max_s: $max, busy_workers_median_s: $busy}')
LIMIT_MEDIAN=$(second_median 2 0 "$SECONDS_RUN")
# Mean of loadshed's limit (or the static cap) over the run.
MEAN_LIMIT=$(awk -F, 'NR > 1 && $2 != "" { s += $2; n++ } END { if (n) printf "%.1f", s / n; else print "null" }' "$OUT/samples.csv")
FLOOD_SENT=null
if [ -f "$OUT/flood.log" ]; then
	FLOOD_SENT=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' "$OUT/flood.log" | tail -n1)
	FLOOD_SENT=${FLOOD_SENT:-null}
fi

# The flood window: the host's CPU use and loadshed's flow table.
CPU_JSON=null
FLOWS_JSON=null
if [ -f "$OUT/cpu.txt" ] && [ "$(wc -l <"$OUT/cpu.txt")" -eq 2 ]; then
	# user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
	CPU_JSON=$(awk -v s="$FLOOD_S" '
		{ for (i = 2; i <= 9; i++) v[NR, i] = $i }
		END {
			for (i = 2; i <= 9; i++) { d[i] = v[2, i] - v[1, i]; tot += d[i] }
			if (tot <= 0) { print "null"; exit }
			printf "{\"seconds\": %d, \"busy_pct\": %.1f, \"softirq_pct\": %.1f, \"system_pct\": %.1f, \"user_pct\": %.1f}\n",
				s, 100 * (tot - d[5] - d[6]) / tot, 100 * d[8] / tot, 100 * d[4] / tot,
				100 * (d[2] + d[3]) / tot
		}' "$OUT/cpu.txt")
	if [ "$PROTECTION" = loadshed ]; then
		MAX_FLOWS=$(jq -r '.max_flows // empty' "$OUT/status-end.json" 2>/dev/null || true)
		FLOWS_JSON=$(awk -F, -v from="$FLOOD_FROM" -v until=$((FLOOD_FROM + FLOOD_S)) -v mf="${MAX_FLOWS:-null}" '
			NR > 1 && $9 != "" && $1 >= from && $1 < until { s += $9; n++; if ($9 > m) m = $9 }
			END {
				if (!n) { print "null"; exit }
				printf "{\"samples\": %d, \"max\": %d, \"mean\": %.1f, \"max_flows\": %s, \"max_fill_pct\": %s}\n",
					n, m, s / n, mf, (mf == "null" ? "null" : sprintf("%.2f", 100 * m / mf))
			}' "$OUT/samples.csv")
	fi
fi

# Success per class from FROM_S s on (keepalive-attach: 2 s after the attach).
AFTER_JSON=null
if [ "$SCENARIO" = keepalive-attach ]; then
	AFTER_FROM=$(((ATTACHED_MS + 999) / 1000 + 2))
	AFTER_JSON=$(jq -n -c --argjson at_ms "$ATTACHED_MS" --argjson from "$AFTER_FROM" \
		--argjson until "$SECONDS_RUN" --argjson ok "$(class_ok "$AFTER_FROM" "$SECONDS_RUN")" \
		'{attached_at_s: ($at_ms / 1000), from_s: $from, until_s: $until} + $ok')
fi

# loadshed's counters per class at the end (those this loadshed has; null otherwise).
LS_JSON=null
if [ "$PROTECTION" = loadshed ] && [ -s "$OUT/status-end.json" ]; then
	LS_JSON=$(jq -c '.services[0] as $s
		| {admit: ($s.admit // null), limit: $s.limit,
		   classes: ([$s.classes[] | {key: (.name | sub("^.*\\."; "")), value:
			{admitted, shed, syns, requests, deferred: (.deferred // null), aborted: (.aborted // null),
			 stalled: (.stalled // null), adopted: (.adopted // null)}}] | from_entries)}' \
		"$OUT/status-end.json" 2>/dev/null || echo null)
fi

# The algorithm and parameters loadshed ran with: its own defaults unless the
# run named them.
ALGO_USED=$LS_ALGO
PARAMS_USED=$LS_PARAMS
if [ "$PROTECTION" = loadshed ] && [ -s "$OUT/status-end.json" ]; then
	ALGO_USED=$(jq -r '.services[0].algorithm // empty' "$OUT/status-end.json" 2>/dev/null || true)
	ALGO_USED=${ALGO_USED:-$LS_ALGO}
	PARAMS_USED=$(jq -r '.services[0].params // empty' "$OUT/status-end.json" 2>/dev/null || true)
fi
# The mean capacity over the run, for goodput: lower while the service time
# is doubled (slowdown, doubling).
case $SCENARIO in
slowdown) SLOW_S=$((SECONDS_RUN - HALF)) ;;
doubling) SLOW_S=$((RETURN_AT - DOUBLE_AT)) ;;
*) SLOW_S=0 ;;
esac
CAPACITY_MEAN=$(awk -v c="$CAPACITY" -v s="$SLOW_S" -v t="$SECONDS_RUN" 'BEGIN { printf "%.1f", c * (1 - s / (2 * t)) }')
# Goodput within the run: ok answers that came in its seconds, per second.
# (goodput_rps also counts the answers of its last requests that came after
# it, which a short run with long latencies overstates.)
GOODPUT_IN_RUN=null
if [ -s "$OUT/loadgen.csv" ]; then
	GOODPUT_IN_RUN=$(awk -F, -v end="$SECONDS_RUN" 'NR > 1 && $1 < end { ok += $4 } END { printf "%.1f", ok / end }' "$OUT/loadgen.csv")
fi
# The warm-up at half capacity: whether the generator and the server kept up.
WARMUP_JSON=null
if [ -s "$OUT/warmup.json" ]; then
	WARMUP_JSON=$(jq -c --argjson s "$WARMUP_S" '{seconds: $s, offered_rps: (.total.offered / $s),
		goodput_rps: .total.goodput_rps, ok_pct: (.classes.warmup.ok_pct // null)}' "$OUT/warmup.json" 2>/dev/null || echo null)
fi

# pgbench_class LOG RC RATE ADDR: one class's pgbench results as JSON.
pgbench_class() {
	local log=$1 rc=$2 rate=$3 addr=$4 conns_max
	conns_max=$(awk -F, -v col="$([ "$addr" = "$TB_HIGH_IP" ] && echo 2 || echo 3)" \
		'$col + 0 > m { m = $col + 0 } END { print m + 0 }' "$OUT/pg-conns.raw" 2>/dev/null || echo 0)
	awk -v rc="$rc" -v rate="$rate" -v clients="$PGB_CLIENTS" -v cm="$conns_max" '
		/^number of transactions actually processed:/ { processed = $6 }
		/^number of failed transactions:/ { failed = $5 }
		/^number of transactions skipped:/ { skipped = $5 }
		/^number of transactions above the .* latency limit:/ { split($(NF - 1), a, "/"); late = a[1] }
		/^latency average = / { lat = $4 }
		/^tps = / { tps = $3 }
		/^initial connection time = / { connected = 1 }
		/could not create connection/ { connfail++ }
		END {
			processed += 0; skipped += 0; late += 0; failed += 0
			ontime = processed - late
			sched = processed + skipped
			printf "{\"rate_tps\": %d, \"clients\": %d, \"exit_status\": %d, ", rate, clients, rc
			printf "\"connected_all\": %s, \"server_conns_max\": %d, ", (connected && !connfail && cm >= clients) ? "true" : "false", cm
			printf "\"processed\": %d, \"failed\": %d, \"skipped\": %d, \"late\": %d, \"on_time\": %d, ", processed, failed, skipped, late, ontime
			printf "\"on_time_pct\": %.2f, \"latency_avg_ms\": %s, \"tps\": %s}\n", sched ? 100 * ontime / sched : 0,
				lat == "" ? "null" : lat, tps == "" ? "null" : tps
		}' "$log"
}

if [ "$KIND" = pgbench ]; then
	tr -d ' ' <"$OUT/pg-conns.raw" 2>/dev/null | awk -F, -v t0="$T0_MS" 'NF == 3 { printf "%.1f,%s,%s\n", ($1 - t0) / 1000, $2, $3 }' |
		{ echo "t_s,high_conns,low_conns"; cat; } >"$OUT/pg-conns.csv"
	jq -n --arg scenario "$SCENARIO" --arg protection "$PROTECTION" \
		--argjson seconds "$SECONDS_RUN" --argjson workers "$WORKERS" \
		--argjson service_ms "$SERVICE_MS" --argjson capacity "$CAPACITY" \
		--argjson measured "$MEASURED_TPS" --argjson latency_limit_ms "$PG_LATENCY_MS" \
		--argjson high "$(pgbench_class "$OUT/pgbench-high.log" "${LOAD_RC[0]}" "$PGB_HIGH_RATE" "$TB_HIGH_IP")" \
		--argjson low "$(pgbench_class "$OUT/pgbench-low.log" "${LOAD_RC[1]}" "$PGB_LOW_RATE" "$TB_LOW_IP")" \
		--argjson ls "$LS_JSON" --argjson mean_limit "$MEAN_LIMIT" --arg algo "$ALGO_USED" \
		--arg admit "$LS_ADMIT" --arg version "$("$PG_BIN/postgres" --version)" \
		'{scenario: $scenario, protection: $protection, seconds: $seconds,
		  server: $version, workers: $workers, service_ms: $service_ms,
		  capacity_tps: $capacity, measured_capacity_tps: $measured,
		  latency_limit_ms: $latency_limit_ms,
		  limit: (if $protection == "loadshed" then $algo else null end),
		  admit: (if $protection == "loadshed" then $admit else null end),
		  mean_limit: $mean_limit, high: $high, low: $low, loadshed: $ls}' >"$OUT/summary.json"
	jq -r '"\(.scenario)/\(.protection)\(if .admit then " (" + .admit + ")" else "" end): capacity \(.capacity_tps) tps (measured \(.measured_capacity_tps | if . then round else "-" end)); "
		+ ([("high", "low") as $c | .[$c] | "\($c) \(.processed) done, \(.on_time) on time (\(.on_time_pct | round)%), \(.late) late, \(.skipped) skipped, connections \(if .connected_all then "all open" else "NOT all open (exit \(.exit_status))" end)"] | join("; "))' \
		"$OUT/summary.json"
	exit 0
fi

WRK_JSON=null
if [ "$KIND" = wrk ]; then
	WRK_JSON=$(jq -c --argjson rc "${LOAD_RC[1]}" '{exit_status: $rc, requests, seconds: (.duration_us / 1e6),
		rps: (.requests / (.duration_us / 1e6)), errors,
		socket_errors: (.errors.connect + .errors.read + .errors.write + .errors.timeout),
		p50_ms: (.latency_us.p50 / 1000), p90_ms: (.latency_us.p90 / 1000),
		p99_ms: (.latency_us.p99 / 1000), mean_ms: (.latency_us.mean / 1000),
		max_ms: (.latency_us.max / 1000)}' "$OUT/wrk.json" 2>/dev/null) ||
		WRK_JSON=$(jq -n -c --argjson rc "${LOAD_RC[1]}" --arg why "$(head -n1 "$OUT/wrk.txt")" \
			'{exit_status: $rc, requests: 0, error: $why}')
fi

jq -n --slurpfile lg "$OUT/loadgen.json" \
	--arg scenario "$SCENARIO" --arg protection "$PROTECTION" \
	--argjson seconds "$SECONDS_RUN" --argjson workers "$WORKERS" \
	--argjson service_ms "$SERVICE_MS" --argjson capacity_rps "$CAPACITY" \
	--argjson deadline_ms "$DEADLINE_MS" --argjson seed "$SEED" \
	--argjson recovery_s "$RECOVERY_S" --argjson settle_s "$SETTLE_S" \
	--argjson mean_limit "$MEAN_LIMIT" --argjson flood_sent "$FLOOD_SENT" \
	--argjson flood_pps "${FLOOD_PPS:-null}" --arg request_action "$LS_REQUEST_ACTION" \
	--arg static_limit "$STATIC_LIMIT" --arg algo "$ALGO_USED" --arg admit "$LS_ADMIT" \
	--arg params "$PARAMS_USED" \
	--argjson cpu "$CPU_JSON" --argjson flows "$FLOWS_JSON" --argjson after "$AFTER_JSON" \
	--argjson ls "$LS_JSON" --argjson wrk "$WRK_JSON" \
	--argjson capacity_mean_rps "$CAPACITY_MEAN" --argjson doubling "$DOUBLING_JSON" \
	--argjson queue "$QUEUE_JSON" --argjson limit_median "$LIMIT_MEDIAN" \
	--argjson warmup "$WARMUP_JSON" --arg tx_csum "$TX_CSUM" \
	--argjson goodput_in_run "$GOODPUT_IN_RUN" \
	'$lg[0] as $l
	| def c($n): $l.classes[$n] | if . == null then null else {offered, ok, ok_pct, refused, reset,
		timeout, retries, p50_ms, p90_ms, p99_ms, goodput_rps, pool: (.pool // null)} end;
	{scenario: $scenario, protection: $protection, seconds: $seconds, seed: $seed,
	 workers: $workers, service_ms: $service_ms, capacity_rps: $capacity_rps,
	 capacity_mean_rps: $capacity_mean_rps, deadline_ms: $deadline_ms,
	 client_tx_csum: (if $tx_csum == "" then null else $tx_csum end),
	 limit: (if $protection == "iptables" then ($static_limit | tonumber)
		elif $protection == "loadshed" then $algo else null end),
	 params: (if $protection == "loadshed" then $params else null end),
	 admit: (if $protection == "loadshed" then $admit else null end),
	 request_action: (if $protection == "loadshed" and $admit == "requests" then $request_action else null end),
	 mean_limit: $mean_limit, limit_median: $limit_median,
	 server_queue: $queue, warmup: $warmup,
	 high: c("high"), low: c("low"),
	 offered_rps: ($l.total.offered / $seconds),
	 goodput_rps: $l.total.goodput_rps,
	 goodput_pct: ($l.total.goodput_rps * 100 / $capacity_mean_rps),
	 goodput_in_run_rps: $goodput_in_run,
	 goodput_in_run_pct: (if $goodput_in_run == null then null else $goodput_in_run * 100 / $capacity_mean_rps end),
	 recovery_s: $recovery_s, settle_s: $settle_s, doubling: $doubling, flood_sent: $flood_sent,
	 flood_pps: (if $flood_sent == null then null else $flood_pps end),
	 after_attach: $after, flows: $flows, cpu: $cpu, wrk: $wrk, loadshed: $ls}' >"$OUT/summary.json"

if [ "$KIND" = wrk ]; then
	jq -r '"\(.scenario)/\(.protection)\(if .admit then " (" + .admit + ")" else "" end): "
		+ (.wrk | if .error then "wrk failed (exit \(.exit_status)): \(.error)" else "wrk \(.requests) requests (\(.rps | round) rps), socket errors \(.socket_errors) (connect \(.errors.connect), read \(.errors.read), write \(.errors.write), timeout \(.errors.timeout)), non-2xx \(.errors.status), p50 \(.p50_ms | round) ms p99 \(.p99_ms | round) ms" end)
		+ ", low ok \(.low.ok_pct | . * 10 | round / 10)%"' "$OUT/summary.json"
	exit 0
fi
jq -r '"\(.scenario)/\(.protection)\(if .admit != null and (.scenario | test("keepalive")) then " (" + .admit + ")" else "" end): high ok \(.high.ok_pct | . * 10 | round / 10)% p99 \(.high.p99_ms | round) ms, low ok \(.low.ok_pct | . * 10 | round / 10)%, goodput \(.goodput_rps | round) rps (\(.goodput_pct | round)% of \(.capacity_mean_rps))"
	+ (if .recovery_s != null then ", recovered in \(.recovery_s) s" elif .scenario == "surge" then ", not recovered" else "" end)
	+ (if .settle_s != null then ", limit settled in \(.settle_s) s" else "" end)
	+ (if .doubling != null and .protection == "loadshed" then ", limit \(.doubling.before.limit_final) -> \(.doubling.doubled.limit_final) (settled in \(.doubling.doubled.settle_s // "-") s) -> \(.doubling.back.limit_final) (in \(.doubling.back.settle_s // "-") s)" else "" end)
	+ (if .server_queue.median_s != null then ", server queue \(.server_queue.median_s) (median second)" else "" end)
	+ (if .after_attach != null then ", from \(.after_attach.from_s) s (attached at \(.after_attach.attached_at_s) s): high ok \(.after_attach.high.ok_pct // 0 | . * 10 | round / 10)%, low ok \(.after_attach.low.ok_pct // 0 | . * 10 | round / 10)%" else "" end)
	+ (if .flows != null then ", flows max \(.flows.max) of \(.flows.max_flows)" else "" end)
	+ (if .cpu != null then ", host CPU \(.cpu.busy_pct)% busy (softirq \(.cpu.softirq_pct)%)" else "" end)' "$OUT/summary.json"
