#!/usr/bin/env bash
# The death spiral behind a real load balancer: three replicas behind
# HAProxy with active health checks; one replica dies while the total load is
# 0.8x the three's capacity, so each survivor is offered 1.2x its own.
# Without protection the survivors queue, their health checks time out, and
# HAProxy marks them down one after the other: a total outage, and each
# replica that comes back up takes the whole load and goes down again. With
# loadshed on every replica (health checks in a bypass class, the rest shed
# with a RST that HAProxy redispatches, or answers 503 at once) the
# survivors stay up and serve their capacity. Both modes run one after the
# other on the same testbed with the same load.
#
# Usage: scripts/spiral.sh [--out DIR] [--id ID] [--modes none,loadshed]
#                          [--seconds S] [--kill-at S] [--no-build]
#
# Topology (namespaces; ID: 1-8 of [a-z0-9], default sp):
#
#   lsp-c-ID   client    lspc-ID   10.213.0.2 ─┐
#   lsp-h-ID   HAProxy   lsph-ID   10.213.0.1 ─┘ frontend 10.213.0.1:8000, stats 127.0.0.1:9999
#                        lspbN-ID  10.213.N.1 ─┐ (N = 1..3; XDP_PASS, to receive loadshed's RSTs)
#   lsp-rN-ID  replica N lsprN-ID  10.213.N.2 ─┘ ls-server on :8080 (traffic) and :8081 (checks)
#
# A replica is ls-server (tests/tools) with WORKERS (8) workers of
# SERVICE_MS (40) ms behind an unbounded FIFO: capacity WORKERS*1000/SERVICE_MS
# (200 req/s). Its health endpoint, on port 8081, is served by the same
# workers through the same queue, so an overloaded replica answers its checks
# late, as a real one does.
#
# HAProxy (Debian's haproxy, mode http, balance roundrobin, a connection per
# request to the replicas: option http-server-close) checks each replica with
# `option httpchk GET /healthz` on port 8081 every CHECK_INTER (1s), a check
# failing after CHECK_TIMEOUT (1s: `timeout check`), down after CHECK_FALL (3)
# failures, up again after CHECK_RISE (2) successes; `retries 3`, `option
# redispatch 1` (every retry goes to another server), `retry-on conn-failure
# empty-response`, `timeout connect 1s`, `timeout server 10s`. No per-server
# maxconn: nothing in HAProxy itself limits what a replica gets.
#
# With loadshed each replica's interface gets its own attachment and agent:
# service web on *:8080 and *:8081, class health (action bypass, match src
# 10.213.N.1/32 dport 8081: only the balancer's checks), class lb (share
# 100 %, action reset, match src 10.213.N.1/32 dport 8080); the limit is the
# default algorithm's with its defaults.
#
# The load is ls-loadgen from the client: open loop, Poisson arrivals at 0.8x
# the three replicas' capacity, a connection per request, a deadline of
# DEADLINE_MS (2000); ok means a 200 within it (a 503 is bad_status). The run
# lasts SECONDS (45); replica 1 is killed (SIGKILL) at KILL_AT (10) s. Before
# it, unmeasured, WARMUP_S (3) s at half that load: the replicas (and
# loadshed's agents) have run before, as in a real service.
#
# Writes DIR (default results/spiral): MODE/loadgen.csv and loadgen.json
# (ls-loadgen's), MODE/samples.csv (per second: HAProxy's view of each server,
# the backend's counters, each replica's queue and loadshed's limit),
# timeseries.csv (both modes, per second: goodput, 503s, other errors,
# latency p50/p99, servers up), RESULTS.md (the table) and spiral.png. About
# two minutes.
#
# Sourced, it defines the sp_* functions test_spiral.sh uses. Everything the
# run makes is removed on exit, also on failure or ^C: the processes (by PID
# and start time), the attachments, their agents and pins, the namespaces.


SP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$SP_ROOT/scripts/testbed.sh"
SP_LOADSHED=${LOADSHED:-$SP_ROOT/build/loadshed}
SP_TOOLS=${LS_TOOLS:-$SP_ROOT/build/tools}
SP_BPF=${TB_BPF:-$SP_ROOT/build/bpf}
SP_STATE_ROOT=/run/loadshed-spiral
SP_PIN_ROOT=/sys/fs/bpf/loadshed

SP_CLI_IP=10.213.0.2
SP_FRONT_IP=10.213.0.1
SP_FRONT_PORT=8000
SP_PORT=8080
SP_CHECK_PORT=8081
SP_STATS_PORT=9999
SP_ADMIN_PORT=9090
SP_REPLICAS=(1 2 3)

WORKERS=${WORKERS:-8}
SERVICE_MS=${SERVICE_MS:-40}
DEADLINE_MS=${DEADLINE_MS:-2000}
CHECK_INTER=${CHECK_INTER:-1s}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-1s}
CHECK_FALL=${CHECK_FALL:-3}
CHECK_RISE=${CHECK_RISE:-2}
WARMUP_S=${WARMUP_S:-3}

# sp_names ID: the names of spiral testbed ID.
sp_names() {
	local id=${1:-sp}
	if ! [[ $id =~ ^[a-z0-9]{1,8}$ ]]; then
		echo "spiral: bad id '$id' (1-8 of [a-z0-9])" >&2
		return 2
	fi
	SP_ID=$id
	SP_CLI_NS=lsp-c-$id
	SP_HAP_NS=lsp-h-$id
	SP_CLI_IF=lspc-$id
	SP_FRONT_IF=lsph-$id
	SP_STATE=$SP_STATE_ROOT/$id
	# testbed.sh's process tracking (tb_track, tb_kill) keeps its list here.
	TB_STATE=$SP_STATE
}
sp_rep_ns() { echo "lsp-r$1-$SP_ID"; }
sp_rep_if() { echo "lspr$1-$SP_ID"; }
sp_back_if() { echo "lspb$1-$SP_ID"; }
sp_rep_ip() { echo "10.213.$1.2"; }
sp_back_ip() { echo "10.213.$1.1"; }

# sp_in NS CMD...: CMD in namespace NS. nsenter --net, not ip netns exec,
# which remounts /sys: loadshed's pins would vanish between calls.
sp_in() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}
sp_ls() { sp_in "$(sp_rep_ns "$1")" "$SP_LOADSHED" "${@:2}"; }

# sp_spawn NAME NS LOG CMD...: CMD in the background in NS, tracked by PID
# and start time (tb_track) for tb_kill and sp_down. Sets SP_PID.
sp_spawn() {
	local name=$1 ns=$2 log=$3
	shift 3
	nsenter --net="/run/netns/$ns" "$@" >"$log" 2>&1 </dev/null &
	SP_PID=$!
	tb_track "$name" "$SP_PID"
}

# sp_pid NAME: the PID of the tracked process NAME, if it still runs.
sp_pid() {
	local pid st name
	[ -f "$SP_STATE/pids" ] || return 1
	while read -r pid st name; do
		[ "$name" = "$1" ] && tb_alive "$pid" "$st" && { echo "$pid"; return 0; }
	done <"$SP_STATE/pids"
	return 1
}

# sp_pin_dir N: replica N's pin directory; empty without an attachment.
sp_pin_dir() {
	local ns
	[ -e "/run/netns/$(sp_rep_ns "$1")" ] || return 0
	ns=$(sp_ls "$1" -j list 2>/dev/null | jq -r '.netns // empty' 2>/dev/null) || ns=
	[ -n "$ns" ] && echo "$SP_PIN_ROOT/net$ns/$(sp_rep_if "$1")"
}

# sp_detach N: loadshed off replica N's interface, its agent stopped.
sp_detach() {
	local dir js pid
	dir=$(sp_pin_dir "$1")
	[ -n "$dir" ] && [ -e "$dir" ] || return 0
	js=$(sp_ls "$1" -j status "$(sp_rep_if "$1")" 2>/dev/null) || js=
	pid=$(jq -r '.agent.pid // empty' <<<"$js" 2>/dev/null) || pid=
	sp_ls "$1" detach "$(sp_rep_if "$1")" >/dev/null 2>&1 || true
	if [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] && grep -q loadshed "/proc/$pid/cmdline" 2>/dev/null; then
		# The agent of this attachment, named by loadshed itself.
		kill -TERM "$pid" 2>/dev/null || true
	fi
	rm -rf "${dir:?}"
}

sp_down() {
	local pid st name n
	if [ -f "$SP_STATE/pids" ]; then
		while read -r pid st name; do
			tb_stop_pid "$pid" "$st"
			: "$name"
		done <"$SP_STATE/pids"
	fi
	for n in "${SP_REPLICAS[@]}"; do
		sp_detach "$n"
		ip netns del "$(sp_rep_ns "$n")" 2>/dev/null || true
	done
	ip netns del "$SP_HAP_NS" 2>/dev/null || true
	ip netns del "$SP_CLI_NS" 2>/dev/null || true
	rm -rf "${SP_STATE:?}"
}

# sp_up: the five namespaces and four veth pairs; the client reaches the
# frontend address and HAProxy every replica. Fails (leaving what it made
# for sp_down) when something cannot be made.
sp_up() {
	local n rns q
	[ -f "$SP_BPF/xdp_pass.bpf.o" ] || { echo "spiral: $SP_BPF/xdp_pass.bpf.o is missing (run make)" >&2; return 1; }
	sp_down
	mkdir -p "$SP_STATE"
	q=$(nproc)
	ip netns add "$SP_CLI_NS" || return 1
	ip netns add "$SP_HAP_NS" || return 1
	ip link add "$SP_CLI_IF" netns "$SP_CLI_NS" type veth peer name "$SP_FRONT_IF" netns "$SP_HAP_NS" || return 1
	ip -n "$SP_CLI_NS" addr add "$SP_CLI_IP/24" dev "$SP_CLI_IF"
	ip -n "$SP_HAP_NS" addr add "$SP_FRONT_IP/24" dev "$SP_FRONT_IF"
	for n in "${SP_REPLICAS[@]}"; do
		rns=$(sp_rep_ns "$n")
		ip netns add "$rns" || return 1
		ip link add "$(sp_back_if "$n")" numtxqueues "$q" numrxqueues "$q" netns "$SP_HAP_NS" type veth \
			peer name "$(sp_rep_if "$n")" numtxqueues "$q" numrxqueues "$q" netns "$rns" || return 1
		ip -n "$SP_HAP_NS" addr add "$(sp_back_ip "$n")/24" dev "$(sp_back_if "$n")"
		ip -n "$rns" addr add "$(sp_rep_ip "$n")/24" dev "$(sp_rep_if "$n")"
		ip -n "$rns" link set lo up
		ip -n "$rns" link set "$(sp_rep_if "$n")" up
		ip -n "$SP_HAP_NS" link set "$(sp_back_if "$n")" up
		# On veth an XDP_TX frame (loadshed's RST) reaches a peer with an XDP program only.
		ip -n "$SP_HAP_NS" link set dev "$(sp_back_if "$n")" xdp obj "$SP_BPF/xdp_pass.bpf.o" sec xdp || return 1
		sp_in "$rns" sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535
	done
	for ns in "$SP_CLI_NS" "$SP_HAP_NS"; do
		ip -n "$ns" link set lo up
		sp_in "$ns" sysctl -qw net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1
	done
	ip -n "$SP_CLI_NS" link set "$SP_CLI_IF" up
	ip -n "$SP_HAP_NS" link set "$SP_FRONT_IF" up
	sp_in "$SP_HAP_NS" sysctl -qw net.core.somaxconn=65535
}

# sp_haproxy_conf FILE: HAProxy's configuration (see the header).
sp_haproxy_conf() {
	local n
	{
		cat <<-EOF
			# HAProxy in front of the spiral's three replicas (scripts/spiral.sh)
			global
			    maxconn 8000
			    stats socket ipv4@127.0.0.1:$SP_STATS_PORT level admin

			defaults
			    mode http
			    maxconn 8000
			    timeout connect 1s
			    timeout client 10s
			    timeout server 10s
			    timeout queue 1s
			    timeout check $CHECK_TIMEOUT
			    # A refused or reset connection is tried again, each time on another server.
			    retries 3
			    option redispatch 1
			    retry-on conn-failure empty-response
			    # A connection per request to the replicas.
			    option http-server-close

			frontend web
			    bind $SP_FRONT_IP:$SP_FRONT_PORT
			    default_backend replicas

			backend replicas
			    balance roundrobin
			    option httpchk GET /healthz
			    http-check expect status 200
			    default-server check port $SP_CHECK_PORT inter $CHECK_INTER fall $CHECK_FALL rise $CHECK_RISE
		EOF
		for n in "${SP_REPLICAS[@]}"; do
			echo "    server r$n $(sp_rep_ip "$n"):$SP_PORT"
		done
	} >"$1"
}

# sp_loadshed_conf N FILE: loadshed's policy on replica N (see the header).
sp_loadshed_conf() {
	local lb
	lb=$(sp_back_ip "$1")
	cat >"$2" <<-EOF
		# loadshed on replica $1 of the spiral (scripts/spiral.sh)
		[agent]
		interval = 100ms

		[service web]
		listen = *:$SP_PORT, *:$SP_CHECK_PORT
		${SP_LS_EXTRA:-}

		; The balancer's health checks: never shed, never counted.
		[class web.health]
		action = bypass
		match = src $lb/32 dport $SP_CHECK_PORT

		; The balancer's traffic: refused with a RST over the limit, so that
		; HAProxy tries another replica at once.
		[class web.lb]
		share = 100%
		action = reset
		match = src $lb/32 dport $SP_PORT
	EOF
}

# sp_replica_start N LOG [WORKERS SERVICE_MS]: ls-server on replica N.
sp_replica_start() {
	local ip i
	ip=$(sp_rep_ip "$1")
	sp_spawn "replica$1" "$(sp_rep_ns "$1")" "$2" "$SP_TOOLS/ls-server" --listen "$ip:$SP_PORT" \
		--listen "$ip:$SP_CHECK_PORT" --workers "${3:-$WORKERS}" --service-ms "${4:-$SERVICE_MS}" \
		--admin "127.0.0.1:$SP_ADMIN_PORT"
	for i in $(seq 50); do
		grep -q listening "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	: "$i"
	echo "spiral: ls-server on replica $1 did not start: $(cat "$2")" >&2
	return 1
}

# sp_attach N CONF LOG: loadshed on replica N's interface, its agent started by attach.
sp_attach() {
	sp_ls "$1" attach "$(sp_rep_if "$1")" --config "$2" >"$3" 2>&1 ||
		{ echo "spiral: loadshed attach on replica $1 failed: $(cat "$3")" >&2; return 1; }
}

# sp_haproxy_start CONF LOG: HAProxy in the foreground (-db) in its namespace.
sp_haproxy_start() {
	local i
	sp_spawn haproxy "$SP_HAP_NS" "$2" haproxy -db -f "$1"
	for i in $(seq 50); do
		sp_stat >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	: "$i"
	echo "spiral: HAProxy did not start: $(cat "$2")" >&2
	return 1
}

# sp_stat: HAProxy's `show stat` (CSV) from its stats socket.
sp_stat() { sp_haproxy_cmd "show stat"; }

# sp_haproxy_cmd CMD: one command to HAProxy's stats socket (level admin); its answer.
sp_haproxy_cmd() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	sp_in "$SP_HAP_NS" timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		echo "$2" >&3
		cat <&3' _ "$SP_STATS_PORT" "$1"
}

# sp_stat_field PROXY SERVER FIELD: one field of `show stat` by its name
# (SERVER: r1, r2, r3 or BACKEND).
sp_stat_field() {
	sp_stat | awk -F, -v px="$1" -v sv="$2" -v f="$3" '
		NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
		$1 == px && $2 == sv { print $col[f]; exit }'
}

# sp_wait_status SERVER STATUS TIMEOUT_S: HAProxy reports SERVER with STATUS.
sp_wait_status() {
	local i
	for i in $(seq $(($3 * 10))); do
		[ "$(sp_stat_field replicas "$1" status 2>/dev/null)" = "$2" ] && return 0
		sleep 0.1
	done
	: "$i"
	return 1
}

# sp_admin N PATH: one GET to replica N's ls-server admin listener.
sp_admin() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	sp_in "$(sp_rep_ns "$1")" timeout 2 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "GET %s HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n" "$2" >&3
		sed "1,/^\r$/d" <&3' _ "$SP_ADMIN_PORT" "$2"
}

# sp_sampler SECONDS MODE: per second, one samples.csv row (see sp_run).
sp_sampler() {
	local end=$((EPOCHSECONDS + $1)) t0=$EPOCHREALTIME t st row n q lim
	echo "t_s,servers_up,r1,r2,r3,queue_r1,queue_r2,queue_r3,limit_r1,limit_r2,limit_r3,econ,eresp,wretr,wredis,hrsp_5xx"
	while [ "$EPOCHSECONDS" -lt "$end" ]; do
		t=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
		st=$(sp_stat 2>/dev/null) || st=
		row=$(awk -F, '
			NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
			$1 != "replicas" { next }
			$2 == "BACKEND" { b = $col["econ"] "," $col["eresp"] "," $col["wretr"] "," $col["wredis"] "," $col["hrsp_5xx"]; next }
			{ s[$2] = $col["status"]; if ($col["status"] ~ /^UP/) up++ }
			END { printf "%d,%s,%s,%s|%s", up, s["r1"], s["r2"], s["r3"], b }' <<<"$st")
		q="" lim=""
		for n in "${SP_REPLICAS[@]}"; do
			q+=,$(sp_admin "$n" /admin/stats 2>/dev/null | jq -r '.queue_len // empty' 2>/dev/null || true)
			if [ "$2" = loadshed ]; then
				lim+=,$(sp_ls "$n" -j status "$(sp_rep_if "$n")" 2>/dev/null |
					jq -r '.services[0].limit // empty' 2>/dev/null || true)
			else
				lim+=,
			fi
		done
		echo "$t,${row%|*}$q$lim,${row#*|}"
		sleep "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { d = 1 - (b - a) % 1; printf "%.3f", d }')"
	done
}

# sp_run MODE DIR: one run (see the header) into DIR.
sp_run() {
	local mode=$1 dir=$2 n t0 rate pid
	mkdir -p "$dir"
	for n in "${SP_REPLICAS[@]}"; do
		sp_replica_start "$n" "$dir/replica$n.log" || return 1
		if [ "$mode" = loadshed ]; then
			sp_loadshed_conf "$n" "$dir/loadshed-r$n.conf"
			sp_attach "$n" "$dir/loadshed-r$n.conf" "$dir/attach-r$n.log" || return 1
		fi
	done
	sp_haproxy_conf "$dir/haproxy.cfg"
	sp_haproxy_start "$dir/haproxy.cfg" "$dir/haproxy.log" || return 1
	for n in "${SP_REPLICAS[@]}"; do
		sp_wait_status "r$n" UP 10 || { echo "spiral: r$n is not UP in HAProxy" >&2; return 1; }
	done
	rate=$(awk -v c="$CAPACITY" 'BEGIN { printf "%.0f", 3 * c * 0.8 }')
	# Unmeasured: the replicas (and loadshed's agents) at half the load first, as a
	# service that ran before; WARMUP_S=0 skips it.
	if [ "$WARMUP_S" -gt 0 ]; then
		sp_in "$SP_CLI_NS" "$SP_TOOLS/ls-loadgen" --duration "$WARMUP_S" --drain-s 2 --seed "$SEED" \
			--class "name=warmup,src=$SP_CLI_IP,target=$SP_FRONT_IP:$SP_FRONT_PORT,rate=$((rate / 2)),deadline_ms=$DEADLINE_MS,mode=close" \
			>"$dir/warmup.log" 2>&1 || true
	fi
	sp_sampler $((SECONDS_RUN + 2)) "$mode" >"$dir/samples.csv" 2>/dev/null &
	tb_track sampler $!
	sp_spawn loadgen "$SP_CLI_NS" "$dir/loadgen.log" "$SP_TOOLS/ls-loadgen" --duration "$SECONDS_RUN" \
		--drain-s 3 --seed "$SEED" --csv "$dir/loadgen.csv" --json "$dir/loadgen.json" \
		--class "name=web,src=$SP_CLI_IP,target=$SP_FRONT_IP:$SP_FRONT_PORT,rate=$rate,deadline_ms=$DEADLINE_MS,mode=close"
	t0=$EPOCHREALTIME
	sleep "$(awk -v a="$t0" -v b="$EPOCHREALTIME" -v k="$KILL_AT" 'BEGIN { printf "%.3f", k - (b - a) }')"
	# The crash: no goodbye, the listening sockets vanish with the process.
	if pid=$(sp_pid replica1); then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
	fi
	echo "killed_at_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" >"$dir/kill.env"
	while sp_pid loadgen >/dev/null; do sleep 0.5; done
	while sp_pid sampler >/dev/null; do sleep 0.2; done
	sp_stat >"$dir/haproxy-stat-end.csv" 2>/dev/null || true
	if [ "$mode" = loadshed ]; then
		for n in "${SP_REPLICAS[@]}"; do
			sp_ls "$n" -j status "$(sp_rep_if "$n")" >"$dir/status-r$n.json" 2>/dev/null || true
			sp_detach "$n"
		done
	fi
	for n in haproxy replica1 replica2 replica3 loadgen sampler; do tb_kill "$n"; done
}

# sp_timeseries MODE DIR: per second of the run, MODE's row of timeseries.csv:
# t_s,mode,offered,ok,bad_status,errors,p50_ms,p99_ms,servers_up.
sp_timeseries() {
	awk -F, -v mode="$1" -v secs="$SECONDS_RUN" '
		FNR == 1 { file++; next }
		file == 1 { t = int($1); if (!(t in up)) up[t] = $2; next }
		$1 < secs {
			t = $1; off[t] += $3; ok[t] += $4; bad[t] += $12
			err[t] += $5 + $6 + $7 + $13 + $14; p50[t] = $9; p99[t] = $11
			if (t > max) max = t
		}
		END {
			for (t = 0; t <= max; t++)
				printf "%d,%s,%d,%d,%d,%d,%s,%s,%s\n", t, mode, off[t], ok[t], bad[t], err[t],
					(ok[t] > 0 ? p50[t] : ""), (ok[t] > 0 ? p99[t] : ""),
					(t in up ? up[t] : "")
		}' "$2/samples.csv" "$2/loadgen.csv"
}

# sp_summary MODE: MODE's row of RESULTS.md from timeseries.csv: before the
# kill (from 2 s on), after it (from KILL_AT + 1 s), and the last 10 s.
sp_summary() {
	awk -F, -v mode="$1" -v k="$KILL_AT" -v secs="$SECONDS_RUN" -v cap="$CAPACITY" '
		function med(a, n,   i, j, x) {
			for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
			return n ? a[int((n + 1) / 2)] : "-"
		}
		$2 != mode { next }
		$1 >= 2 && $1 < k { b_ok += $4; b_n++; if ($8 != "") bp[++nbp] = $8 }
		$1 >= k + 1 {
			a_ok += $4; a_bad += $5; a_err += $6; a_n++
			if ($9 != "" && $9 == 0) zero++
			if ($9 != "" && ($9 < minup || minup == "")) minup = $9
			if ($8 != "") ap[++nap] = $8
			if ($7 != "") a50[++na50] = $7
			if ($1 >= secs - 10) { l_ok += $4; l_n++ }
		}
		END {
			printf "| %s | %.0f | %s | %.0f (%.0f %%) | %.0f | %s | %s | %d | %d | %d | %s | %s |\n",
				mode, b_n ? b_ok / b_n : 0, med(bp, nbp), a_n ? a_ok / a_n : 0,
				a_n ? 100 * a_ok / a_n / (2 * cap) : 0, l_n ? l_ok / l_n : 0,
				minup == "" ? "-" : minup, zero + 0, a_ok, a_bad, a_err, med(a50, na50), med(ap, nap)
		}' "$OUT/timeseries.csv"
}

# sp_plot: spiral.png, goodput and servers up of both modes over time.
sp_plot() {
	local tmp
	tmp=$(mktemp -d /tmp/ls-spiral-plot.XXXXXX)
	awk -F, 'NR > 1 { print $3 " " $1 " " $4 " " ($9 == "" ? "NaN" : $9) " " ($8 == "" ? "NaN" : $8) > (dir "/" $2 ".dat") }' \
		dir="$tmp" "$OUT/timeseries.csv"
	gnuplot <<-EOF || echo "spiral: no plot" >&2
		set terminal pngcairo size 1000,700
		set output "$OUT/spiral.png"
		set multiplot layout 3,1 title "3 replicas x $CAPACITY req/s behind HAProxy, load $RATE req/s, replica 1 killed at $KILL_AT s"
		set xrange [0:$SECONDS_RUN]
		set arrow from $KILL_AT, graph 0 to $KILL_AT, graph 1 nohead dt 2
		set ylabel "ok req/s"
		set key top right
		plot "$tmp/none.dat" using 2:3 with lines lw 2 title "no protection", \
			"$tmp/loadshed.dat" using 2:3 with lines lw 2 title "loadshed"
		set ylabel "servers UP"
		set yrange [0:3.5]
		plot "$tmp/none.dat" using 2:4 with steps lw 2 title "no protection", \
			"$tmp/loadshed.dat" using 2:4 with steps lw 2 title "loadshed"
		set yrange [*:*]
		set logscale y
		set ylabel "p99 ms"
		set xlabel "s"
		plot "$tmp/none.dat" using 2:5 with lines lw 2 title "no protection", \
			"$tmp/loadshed.dat" using 2:5 with lines lw 2 title "loadshed"
		unset multiplot
	EOF
	rm -rf "$tmp"
}

# sp_exit: the EXIT trap of a run: everything it made goes.
sp_exit() {
	local rc=$?
	trap - EXIT INT TERM
	sp_down
	exit "$rc"
}

sp_main() {
	local id=sp modes=none,loadshed build=1 m
	OUT=
	SECONDS_RUN=${SECONDS_RUN:-45}
	KILL_AT=${KILL_AT:-10}
	while [ $# -gt 0 ]; do
		case $1 in
		--out) OUT=${2:?--out wants a directory}; shift 2 ;;
		--id) id=${2:?--id wants a value}; shift 2 ;;
		--modes) modes=${2:?--modes wants none,loadshed}; shift 2 ;;
		--seconds) SECONDS_RUN=${2:?--seconds wants a number}; shift 2 ;;
		--kill-at) KILL_AT=${2:?--kill-at wants a number}; shift 2 ;;
		--no-build) build=0; shift ;;
		-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; return 0 ;;
		*) echo "spiral: unknown argument '$1'" >&2; return 2 ;;
		esac
	done
	IFS=, read -r -a MODES <<<"$modes"
	for m in "${MODES[@]}"; do
		case $m in none | loadshed) ;; *) echo "spiral: unknown mode '$m' (none,loadshed)" >&2; return 2 ;; esac
	done
	if ! [[ $SECONDS_RUN =~ ^[0-9]+$ && $KILL_AT =~ ^[0-9]+$ ]] || [ "$SECONDS_RUN" -gt 120 ] ||
		[ "$KILL_AT" -lt 3 ] || [ "$KILL_AT" -gt $((SECONDS_RUN - 5)) ]; then
		echo "spiral: --seconds wants up to 120 and --kill-at 3..SECONDS-5" >&2
		return 2
	fi
	[[ $WARMUP_S =~ ^[0-9]{1,2}$ ]] || { echo "spiral: WARMUP_S wants 0..99" >&2; return 2; }
	for v in WORKERS SERVICE_MS DEADLINE_MS CHECK_FALL CHECK_RISE; do
		[[ ${!v} =~ ^[1-9][0-9]{0,5}$ ]] || { echo "spiral: $v wants a positive integer" >&2; return 2; }
	done
	for v in CHECK_INTER CHECK_TIMEOUT; do
		[[ ${!v} =~ ^[1-9][0-9]{0,5}(ms|s)$ ]] || { echo "spiral: $v wants a duration like 500ms or 2s" >&2; return 2; }
	done
	tb_preflight spiral "$build"
	command -v haproxy >/dev/null || { echo "spiral: haproxy is missing; run scripts/install-deps.sh" >&2; return 1; }
	for f in "$SP_TOOLS/ls-server" "$SP_TOOLS/ls-loadgen" "$SP_LOADSHED"; do
		[ -x "$f" ] || { echo "spiral: $f is missing (run make)" >&2; return 1; }
	done
	OUT=${OUT:-$SP_ROOT/results/spiral}
	mkdir -p "$OUT"
	OUT=$(cd "$OUT" && pwd)
	sp_names "$id" || return 2
	trap sp_exit EXIT
	trap 'exit 130' INT TERM
	sp_up || { echo "spiral: the testbed does not come up" >&2; return 1; }
	SEED=${SEED:-$((RANDOM * 32768 + RANDOM))}
	CAPACITY=$((WORKERS * 1000 / SERVICE_MS))
	RATE=$(awk -v c="$CAPACITY" 'BEGIN { printf "%.0f", 3 * c * 0.8 }')
	{
		echo "commit=$(git -C "$SP_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$SP_ROOT" diff --quiet HEAD 2>/dev/null || echo +changes)"
		echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
		echo "cpus=$(nproc)"
		echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
		echo "haproxy=$(haproxy -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p')"
		echo "workers=$WORKERS service_ms=$SERVICE_MS capacity_rps=$CAPACITY rate_rps=$RATE"
		echo "seconds=$SECONDS_RUN kill_at_s=$KILL_AT deadline_ms=$DEADLINE_MS seed=$SEED"
		echo "check_inter=$CHECK_INTER check_timeout=$CHECK_TIMEOUT fall=$CHECK_FALL rise=$CHECK_RISE"
	} >"$OUT/run.env"
	echo "t_s,mode,offered,ok,bad_status,errors,p50_ms,p99_ms,servers_up" >"$OUT/timeseries.csv"
	for m in "${MODES[@]}"; do
		echo "spiral: $m (3 x $CAPACITY req/s, $RATE req/s offered, replica 1 killed at $KILL_AT s, $SECONDS_RUN s)"
		sp_run "$m" "$OUT/$m" || { echo "spiral: the $m run failed" >&2; return 1; }
		sp_timeseries "$m" "$OUT/$m" >>"$OUT/timeseries.csv"
	done
	echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/run.env"
	{
		echo "# The death spiral behind HAProxy"
		echo
		echo "3 replicas of $WORKERS workers x $SERVICE_MS ms ($CAPACITY req/s each) behind HAProxy $(sed -n 's/^haproxy=//p' "$OUT/run.env")"
		echo "(checks: inter $CHECK_INTER, timeout check $CHECK_TIMEOUT, fall $CHECK_FALL, rise $CHECK_RISE);"
		echo "$RATE req/s offered (0.8x of the three), replica 1 killed at $KILL_AT s of $SECONDS_RUN s;"
		echo "survivors' capacity $((2 * CAPACITY)) req/s. Per second averages; p50/p99: median second."
		echo
		echo "| mode | ok/s before | p99 ms before | ok/s after (of survivors' capacity) | ok/s last 10 s | fewest servers UP | s with 0 UP | ok after | 503 after | other errors after | p50 ms after | p99 ms after |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
		for m in "${MODES[@]}"; do sp_summary "$m"; done
		echo
		sed 's/^/    /' "$OUT/run.env"
	} >"$OUT/RESULTS.md"
	command -v gnuplot >/dev/null && [ ${#MODES[@]} -eq 2 ] && sp_plot
	cat "$OUT/RESULTS.md"
	echo "spiral: $OUT/RESULTS.md"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	sp_main "$@"
fi
