#!/usr/bin/env bash
# The overload testbed: a server and a client network namespace joined by a
# veth pair, with the client side ready to receive loadshed's RSTs.
#
#   server namespace ls-srv-ID   interface lss-ID   10.201.0.1/24   fd00:201::1/64
#   client namespace ls-cli-ID   interface lsc-ID   10.201.0.2-9/24 fd00:201::2-9/64
#     10.201.0.2 high priority, 10.201.0.3 low priority, 10.201.0.4-9 extra and flood sources
#
# Usage: scripts/testbed.sh up|down|env|status [--id ID]   (ID: 1-10 of [a-z0-9], default tb)
#
# Clients that cannot bind a source address (libpq, wrk) get one by policy
# routing on their user id: after tb_src_route 10.201.0.N, processes of uid
# 64200+N in the client namespace connect from 10.201.0.N (tb_cli_as runs
# one so). A throwaway PostgreSQL cluster can run in the server namespace
# (tb_pg_start, tb_pg_stop): initdb into a temporary directory as the
# postgres user, listening on 10.201.0.1:TB_PG_PORT (5432) with trust
# authentication for 10.201.0.0/24 and its Unix socket in that directory; no
# systemd, and the system's own clusters are not touched.
#
# `up` is idempotent and prints the names as KEY=VALUE lines (eval-able);
# `down` removes everything `up` and the scripts using it made: processes
# started through tb_spawn (tracked by PID and start time, never by name),
# loadshed's attachment and pins on the server interface, the namespaces
# (and with them the veth pair and any iptables rules inside).
#
# Sourced, it defines the tb_* functions used by scenario.sh, demo.sh,
# bench.sh and the integration test.
#
# The loadshed CLI must run in the server namespace through `nsenter --net`
# (tb_srv), not `ip netns exec`: the latter remounts /sys, so each call would
# see a fresh, empty bpffs and the pins would vanish between calls. On veth a
# frame sent with XDP_TX (loadshed's RST) is delivered only when the peer has
# an XDP program, so the client side gets an XDP_PASS one.
#
# TB_TX_CSUM=off has the client veth compute every checksum itself (ethtool
# -K tx off), so that the server side receives full checksums as from a real
# NIC; the default, on, is the kernel's: a veth passes a segment on with its
# checksum left to offload (only the pseudo-header's sum in the field).

TB_ROOT=${TB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
TB_LOADSHED=${TB_LOADSHED:-$TB_ROOT/build/loadshed}
TB_TOOLS=${TB_TOOLS:-$TB_ROOT/build/tools}
TB_BPF=${TB_BPF:-$TB_ROOT/build/bpf}
TB_STATE_ROOT=${TB_STATE_ROOT:-/run/loadshed-testbed}
TB_PIN_ROOT=/sys/fs/bpf/loadshed

TB_SRV_IP=10.201.0.1
# shellcheck disable=SC2034 # used by the scripts that source this one
TB_HIGH_IP=10.201.0.2
# shellcheck disable=SC2034
TB_LOW_IP=10.201.0.3
TB_PORT=${TB_PORT:-8080}
TB_ADMIN_PORT=${TB_ADMIN_PORT:-9090}
TB_PG_PORT=${TB_PG_PORT:-5432}
TB_UID_BASE=64200

# tb_names ID: sets the names of testbed ID.
tb_names() {
	local id=${1:-tb}
	if ! [[ $id =~ ^[a-z0-9]{1,10}$ ]]; then
		echo "testbed: bad id '$id' (1-10 of [a-z0-9])" >&2
		return 2
	fi
	TB_ID=$id
	SRV_NS=ls-srv-$id
	CLI_NS=ls-cli-$id
	SRV_IF=lss-$id
	CLI_IF=lsc-$id
	TB_STATE=$TB_STATE_ROOT/$id
}

# tb_preflight WHO BUILD: root, the tools the runs use, and (BUILD=1) a build.
tb_preflight() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$1: needs root (network namespaces, XDP); try: sudo make $1" >&2
		exit 1
	fi
	for tool in jq gnuplot iptables nsenter; do
		command -v "$tool" >/dev/null || { echo "$1: $tool is missing; run scripts/install-deps.sh" >&2; exit 1; }
	done
	if [ "$2" = 1 ]; then
		echo "$1: building"
		make -C "$TB_ROOT" -s -j"$(nproc)" >/dev/null
	fi
}

tb_srv() { nsenter --net="/run/netns/$SRV_NS" "$@"; }
tb_cli() { nsenter --net="/run/netns/$CLI_NS" "$@"; }
tb_ls() { tb_srv "$TB_LOADSHED" "$@"; }

tb_exists() { [ -e "/run/netns/$SRV_NS" ] && [ -e "/run/netns/$CLI_NS" ]; }

# The start time of a process in clock ticks since boot (field 22 of
# /proc/PID/stat): with the PID it names one process, never a later one
# that got the same PID.
tb_starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086 # split the fields after "(comm) "
	set -- $stat
	echo "${20}"
}

# tb_track NAME PID: remember a process to stop on down.
tb_track() {
	local st
	st=$(tb_starttime "$2") || return 0
	mkdir -p "$TB_STATE"
	echo "$2 $st $1" >>"$TB_STATE/pids"
}

# tb_spawn NAME srv|cli|host LOGFILE CMD...: starts CMD in the background in
# a namespace (through nsenter, which execs it: the PID is CMD's own),
# tracked for tb_kill and down. Sets TB_PID.
tb_spawn() {
	local name=$1 where=$2 log=$3
	shift 3
	case $where in
	srv) nsenter --net="/run/netns/$SRV_NS" "$@" >"$log" 2>&1 </dev/null & ;;
	cli) nsenter --net="/run/netns/$CLI_NS" "$@" >"$log" 2>&1 </dev/null & ;;
	host) "$@" >"$log" 2>&1 </dev/null & ;;
	*) return 2 ;;
	esac
	TB_PID=$!
	tb_track "$name" "$TB_PID"
}

# tb_alive PID STARTTIME: the same process still runs.
tb_alive() { [ "$(tb_starttime "$1" 2>/dev/null)" = "$2" ]; }

# tb_stop_pid PID STARTTIME: SIGTERM, up to 3 s, then SIGKILL.
tb_stop_pid() {
	local pid=$1 st=$2 i
	tb_alive "$pid" "$st" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 30); do
		tb_alive "$pid" "$st" || return 0
		sleep 0.1
	done
	tb_alive "$pid" "$st" && kill -KILL "$pid" 2>/dev/null
	: "$i"
	return 0
}

# tb_kill NAME: stops every tracked process called NAME.
tb_kill() {
	local pid st name rest=()
	[ -f "$TB_STATE/pids" ] || return 0
	while read -r pid st name; do
		if [ "$name" = "$1" ]; then
			tb_stop_pid "$pid" "$st"
			wait "$pid" 2>/dev/null || true
		else
			rest+=("$pid $st $name")
		fi
	done <"$TB_STATE/pids"
	if [ ${#rest[@]} -gt 0 ]; then
		printf '%s\n' "${rest[@]}" >"$TB_STATE/pids"
	else
		: >"$TB_STATE/pids"
	fi
}

# tb_pin_dir: the server interface's pin directory (attachments are kept per
# network namespace, by its cookie); empty when the namespace is gone.
tb_pin_dir() {
	local ns
	tb_exists || return 0
	ns=$(tb_ls -j list 2>/dev/null | jq -r '.netns // empty' 2>/dev/null) || ns=
	[ -n "$ns" ] && echo "$TB_PIN_ROOT/net$ns/$SRV_IF"
}

# tb_detach: removes loadshed from the server interface (and its agent).
tb_detach() {
	local js pid dir
	dir=$(tb_pin_dir)
	[ -n "$dir" ] && [ -e "$dir" ] || return 0
	js=$(tb_ls -j status "$SRV_IF" 2>/dev/null) || js=
	pid=$(jq -r '.agent.pid // empty' <<<"$js" 2>/dev/null) || pid=
	tb_exists && tb_ls detach "$SRV_IF" >/dev/null 2>&1
	if [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] && [ -d "/proc/$pid" ] &&
		grep -q loadshed "/proc/$pid/cmdline" 2>/dev/null; then
		# The agent of this attachment, named by loadshed itself.
		kill -TERM "$pid" 2>/dev/null || true
	fi
	rm -rf "${dir:?}"
}

# tb_admin PATH: one GET to the test server's admin listener (server
# namespace, 127.0.0.1:TB_ADMIN_PORT); prints the body.
tb_admin() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	tb_srv timeout 3 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "GET %s HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n" "$2" >&3
		sed "1,/^\r$/d" <&3' _ "$TB_ADMIN_PORT" "$1"
}

tb_down() {
	local pid st name
	tb_pg_stop
	if [ -f "$TB_STATE/pids" ]; then
		while read -r pid st name; do
			tb_stop_pid "$pid" "$st"
			: "$name"
		done <"$TB_STATE/pids"
	fi
	tb_detach
	ip netns del "$SRV_NS" 2>/dev/null || true
	ip netns del "$CLI_NS" 2>/dev/null || true
	rm -rf "${TB_STATE:?}"
}

# --- clients from a chosen source address -----------------------------------------

# tb_uid_of ADDR: the uid whose connections leave from 10.201.0.N (64200+N).
tb_uid_of() {
	local n=${1##*.}
	[[ $1 =~ ^10\.201\.0\.[2-9]$ ]] || { echo "testbed: no client address $1" >&2; return 2; }
	echo $((TB_UID_BASE + n))
}

# tb_src_route ADDR: processes of uid tb_uid_of(ADDR) in the client namespace
# connect from ADDR (a uid rule and a routing table of their own). Idempotent.
tb_src_route() {
	local uid table
	uid=$(tb_uid_of "$1") || return 2
	table=$uid
	tb_cli ip route replace 10.201.0.0/24 dev "$CLI_IF" src "$1" table "$table" || return 1
	tb_cli ip rule show uidrange "$uid-$uid" 2>/dev/null | grep -q "lookup $table" ||
		tb_cli ip rule add uidrange "$uid-$uid" lookup "$table" priority $((uid - TB_UID_BASE + 1000))
}

# tb_src_unroute ADDR: undoes tb_src_route.
tb_src_unroute() {
	local uid
	uid=$(tb_uid_of "$1") || return 2
	tb_cli ip rule del uidrange "$uid-$uid" lookup "$uid" 2>/dev/null
	tb_cli ip route flush table "$uid" 2>/dev/null
	return 0
}

# tb_cli_as ADDR CMD...: CMD in the client namespace as the uid of ADDR
# (tb_src_route first), without privileges or supplementary groups.
tb_cli_as() {
	local uid
	uid=$(tb_uid_of "$1") || return 2
	shift
	tb_cli setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
}

# --- wrk -------------------------------------------------------------------------------

# tb_wrk JSON ARGS...: Debian's wrk in the client namespace (connecting from
# the primary client address, 10.201.0.2), with wrk's text report on stdout
# and its totals in JSON (scripts/wrk-report.lua): requests, duration_us,
# bytes, errors {connect, read, write, status, timeout}, latency_us {min,
# mean, max, p50, p90, p99}. Returns wrk's exit status; wrk is stopped after
# TB_WRK_TIMEOUT (120) s whatever its -d.
tb_wrk() {
	local json=$1
	shift
	rm -f "$json"
	WRK_JSON=$json tb_cli timeout "${TB_WRK_TIMEOUT:-120}" wrk -s "$TB_ROOT/scripts/wrk-report.lua" "$@"
}

# --- PostgreSQL in the server namespace --------------------------------------------------

# tb_pg_bin: the programs of the newest installed PostgreSQL (TB_PG_BIN overrides).
tb_pg_bin() {
	local d
	if [ -n "${TB_PG_BIN:-}" ]; then
		echo "$TB_PG_BIN"
		return 0
	fi
	d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)
	[ -n "$d" ] && [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && echo "$d"
}

# tb_psql ARGS...: psql as postgres over the cluster's Unix socket.
tb_psql() {
	"$TB_PG_BIN_DIR/psql" -h "$TB_PG_DIR" -p "$TB_PG_PORT" -U postgres -d postgres -X -q -A -t \
		-v ON_ERROR_STOP=1 "$@"
}

# tb_pg_start LOG [MAX_CONNECTIONS] [-c NAME=VALUE ...]: a new cluster in a
# temporary directory, started in the server namespace; the server's log goes
# to LOG. Sets TB_PG_DIR (the data and socket directory) and TB_PG_BIN_DIR;
# tb_pg_stop (and tb_down) stop it and remove the directory.
tb_pg_start() {
	local log=$1 maxc=${2:-100} dir pid i
	shift 2 || shift $#
	TB_PG_BIN_DIR=$(tb_pg_bin) || { echo "testbed: PostgreSQL is missing (scripts/install-deps.sh)" >&2; return 1; }
	id postgres >/dev/null 2>&1 || { echo "testbed: no postgres user" >&2; return 1; }
	tb_pg_stop
	mkdir -p "$TB_STATE"
	dir=$(mktemp -d /tmp/ls-pg-"$TB_ID".XXXXXX) || return 1
	TB_PG_DIR=$dir
	# Recorded before anything can fail, so that tb_pg_stop removes it.
	echo "0 0 $dir" >"$TB_STATE/pg"
	chown postgres:postgres "$dir"
	chmod 0700 "$dir"
	if ! setpriv --reuid=postgres --regid=postgres --init-groups "$TB_PG_BIN_DIR/initdb" \
		-D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
		echo "testbed: initdb failed:" >&2
		cat "$dir/initdb.log" >&2
		return 1
	fi
	echo "host all all 10.201.0.0/24 trust" >>"$dir/data/pg_hba.conf"
	# A throwaway cluster: nothing is made durable.
	nsenter --net="/run/netns/$SRV_NS" setpriv --reuid=postgres --regid=postgres --init-groups \
		"$TB_PG_BIN_DIR/postgres" -D "$dir/data" -c listen_addresses="$TB_SRV_IP" \
		-c port="$TB_PG_PORT" -c unix_socket_directories="$dir" -c max_connections="$maxc" \
		-c shared_buffers=32MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
		-c huge_pages=off "$@" >"$log" 2>&1 </dev/null &
	pid=$!
	echo "$pid $(tb_starttime "$pid" || echo 0) $dir" >"$TB_STATE/pg"
	for i in $(seq 100); do
		"$TB_PG_BIN_DIR/pg_isready" -q -h "$dir" -p "$TB_PG_PORT" && return 0
		tb_alive "$pid" "$(cut -d' ' -f2 "$TB_STATE/pg")" || break
		sleep 0.1
	done
	: "$i"
	echo "testbed: PostgreSQL did not start:" >&2
	tail -n 20 "$log" >&2
	return 1
}

# tb_pg_stop: a fast shutdown (SIGINT: sessions are ended), up to 10 s, then
# SIGKILL; removes the cluster's directory.
tb_pg_stop() {
	local pid st dir i
	[ -f "$TB_STATE/pg" ] || return 0
	read -r pid st dir <"$TB_STATE/pg"
	if [ "${pid:-0}" -gt 1 ] && tb_alive "$pid" "$st"; then
		kill -INT "$pid" 2>/dev/null
		for i in $(seq 100); do
			tb_alive "$pid" "$st" || break
			sleep 0.1
		done
		: "$i"
		tb_alive "$pid" "$st" && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	case $dir in /tmp/ls-pg-*) rm -rf "$dir" ;; esac
	rm -f "$TB_STATE/pg"
	return 0
}

tb_env() {
	echo "TB_ID=$TB_ID"
	echo "SRV_NS=$SRV_NS"
	echo "CLI_NS=$CLI_NS"
	echo "SRV_IF=$SRV_IF"
	echo "CLI_IF=$CLI_IF"
	echo "SRV_IP=$TB_SRV_IP"
	echo "SRV_MAC=$(ip -n "$SRV_NS" -j link show dev "$SRV_IF" 2>/dev/null | jq -r '.[0].address')"
}

# tb_reachable: the server address answers from the client namespace (a TCP
# connect to a closed port is refused at once; no ping needed).
tb_reachable() {
	local out
	out=$(tb_cli timeout 2 bash -c "exec 3<>/dev/tcp/$TB_SRV_IP/1" 2>&1) && return 0
	[[ $out == *refused* ]]
}

tb_healthy() {
	tb_exists || return 1
	ip -n "$SRV_NS" link show dev "$SRV_IF" 2>/dev/null | grep -q 'state UP' || return 1
	ip -n "$CLI_NS" link show dev "$CLI_IF" 2>/dev/null | grep -q xdp || return 1
	tb_reachable
}

# tb_tx_csum: the client veth's checksum offload as TB_TX_CSUM says (unset:
# left alone).
tb_tx_csum() {
	[ -n "${TB_TX_CSUM:-}" ] || return 0
	case $TB_TX_CSUM in on | off) ;; *) echo "testbed: TB_TX_CSUM is on or off" >&2; return 2 ;; esac
	command -v ethtool >/dev/null || { echo "testbed: TB_TX_CSUM needs ethtool (scripts/install-deps.sh)" >&2; return 1; }
	tb_cli ethtool -K "$CLI_IF" tx "$TB_TX_CSUM" >/dev/null 2>&1 ||
		{ echo "testbed: ethtool -K $CLI_IF tx $TB_TX_CSUM failed" >&2; return 1; }
}

tb_up() {
	local i q
	if tb_healthy; then
		tb_tx_csum
		return
	fi
	tb_down
	if [ ! -f "$TB_BPF/xdp_pass.bpf.o" ]; then
		echo "testbed: $TB_BPF/xdp_pass.bpf.o is missing (run make)" >&2
		return 1
	fi
	mkdir -p "$TB_STATE"
	ip netns add "$SRV_NS" || return 1
	ip netns add "$CLI_NS" || return 1
	# One queue per CPU: the live-frame flooder sends from every CPU into its own ring.
	q=$(nproc)
	ip link add "$SRV_IF" numtxqueues "$q" numrxqueues "$q" netns "$SRV_NS" type veth \
		peer name "$CLI_IF" numtxqueues "$q" numrxqueues "$q" netns "$CLI_NS" || return 1
	ip -n "$SRV_NS" link set lo up
	ip -n "$CLI_NS" link set lo up
	ip -n "$SRV_NS" addr add "$TB_SRV_IP/24" dev "$SRV_IF"
	ip -n "$SRV_NS" addr add fd00:201::1/64 dev "$SRV_IF" nodad
	for i in 2 3 4 5 6 7 8 9; do
		ip -n "$CLI_NS" addr add "10.201.0.$i/24" dev "$CLI_IF"
		ip -n "$CLI_NS" addr add "fd00:201::$i/64" dev "$CLI_IF" nodad
	done
	ip -n "$SRV_NS" link set "$SRV_IF" up
	ip -n "$CLI_NS" link set "$CLI_IF" up
	ip -n "$CLI_NS" link set dev "$CLI_IF" xdp obj "$TB_BPF/xdp_pass.bpf.o" sec xdp || return 1
	tb_tx_csum || return 1
	# Large queues so that the server, not a full kernel queue, is what overloads;
	# a wide port range so that thousands of connections a second never run out.
	tb_srv sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 \
		net.ipv4.tcp_syncookies=1
	tb_cli sysctl -qw net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.tcp_syn_retries=3
	for i in $(seq 50); do
		tb_reachable && return 0
		sleep 0.1
	done
	echo "testbed: $TB_SRV_IP unreachable from $CLI_NS" >&2
	return 1
}

tb_main() {
	local cmd=${1:-} id=tb
	shift || true
	while [ $# -gt 0 ]; do
		case $1 in
		--id)
			id=${2:-}
			shift 2 || { echo "testbed: --id wants a value" >&2; return 2; }
			;;
		-h | --help)
			sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
			return 0
			;;
		*)
			echo "testbed: unknown argument '$1'" >&2
			return 2
			;;
		esac
	done
	tb_names "$id" || return 2
	case $cmd in
	up)
		[ "$(id -u)" -eq 0 ] || { echo "testbed: needs root" >&2; return 1; }
		tb_up || { tb_down; return 1; }
		tb_env
		;;
	down)
		[ "$(id -u)" -eq 0 ] || { echo "testbed: needs root" >&2; return 1; }
		tb_down
		;;
	env) tb_exists && tb_env ;;
	status)
		if tb_healthy; then echo "testbed $TB_ID: up"; else echo "testbed $TB_ID: down"; return 1; fi
		;;
	-h | --help | help | '')
		sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		[ -n "$cmd" ]
		;;
	*)
		echo "testbed: unknown command '$cmd' (up|down|env|status)" >&2
		return 2
		;;
	esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	tb_main "$@"
fi
