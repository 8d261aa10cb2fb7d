# shellcheck shell=bash
# Helpers for the shell test suites: TAP output, a two-host testbed in
# network namespaces, and cleanup of everything a suite made (trap on exit).
#
# The loadshed CLI runs in the server namespace through `nsenter --net`, not
# `ip netns exec`: the latter remounts /sys, so every call would see a new,
# empty bpffs and the attachment's pins would vanish between calls.

LOADSHED=${LOADSHED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/san/loadshed}
LS_TOOLS=${LS_TOOLS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/tools}
LS_BPF_DIR=${LS_BPF_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/bpf}

TAP_N=0
TAP_FAILED=0
LS_PIDS=()
LS_NETNS=()
LS_ATTACHED=()

ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $1"
}

not_ok() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $1"
	shift
	for line in "$@"; do echo "# $line"; done
}

# check NAME CMD...: ok when CMD exits 0.
check() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		not_ok "$name" "command: $*" "${out:0:2000}"
	fi
}

# check_eq NAME ACTUAL EXPECTED
check_eq() {
	if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "expected '$3', got '$2'"; fi
}

# check_cmp NAME A OP B: numeric comparison, OP one of -lt -le -eq -ge -gt -ne
check_cmp() {
	if [ -n "$2" ] && [ -n "$4" ] && [ "$2" "$3" "$4" ]; then
		ok "$1"
	else
		not_ok "$1" "expected $2 $3 $4"
	fi
}

tap_done() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}

# Runs a command in the server namespace, sharing the root mount namespace.
in_srv() { nsenter --net="/run/netns/$SRV_NS" "$@"; }
in_cli() { ip netns exec "$CLI_NS" "$@"; }
ls_srv() { in_srv "$LOADSHED" "$@"; }

# bg_srv/bg_cli CMD...: start CMD in the background in a namespace; its
# PID is in $! and it is killed on exit.
# (nsenter and ip netns exec exec the command: $! is the command itself.)
bg_srv() {
	nsenter --net="/run/netns/$SRV_NS" "$@" &
	LS_PIDS+=($!)
}
bg_cli() {
	ip netns exec "$CLI_NS" "$@" &
	LS_PIDS+=($!)
}

ls_cleanup() {
	local pid ifc ns
	for ifc in "${LS_ATTACHED[@]}"; do
		in_srv "$LOADSHED" detach "$ifc" >/dev/null 2>&1
	done
	for pid in "${LS_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${LS_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for ns in "${LS_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	for ifc in "${LS_ATTACHED[@]}"; do
		rm -rf "/sys/fs/bpf/loadshed/$ifc"
	done
}

# testbed_up: a server and a client namespace joined by a veth pair.
#   server: $SRV_IF, 10.201.0.1/24, fd00:201::1/64
#   client: $CLI_IF, 10.201.0.2-9/24, fd00:201::2-9/64 (one source per class)
# The client end gets an XDP_PASS program so that RSTs sent with XDP_TX on
# the server's veth are delivered (a veth rule; real NICs need nothing).
testbed_up() {
	local id=${1:-$$}
	SRV_NS=lss$id
	CLI_NS=lsc$id
	SRV_IF=lsvs$id
	CLI_IF=lsvc$id
	trap ls_cleanup EXIT
	# Detached on exit whatever happens: an attach may run in a subshell
	# (a command substitution) that cannot register it.
	LS_ATTACHED+=("$SRV_IF")
	ip netns add "$SRV_NS" || return 1
	LS_NETNS+=("$SRV_NS")
	ip netns add "$CLI_NS" || return 1
	LS_NETNS+=("$CLI_NS")
	ip link add "$SRV_IF" netns "$SRV_NS" type veth peer name "$CLI_IF" netns "$CLI_NS" || return 1
	ip -n "$SRV_NS" link set lo up
	ip -n "$CLI_NS" link set lo up
	ip -n "$SRV_NS" addr add 10.201.0.1/24 dev "$SRV_IF"
	ip -n "$SRV_NS" addr add fd00:201::1/64 dev "$SRV_IF" nodad
	for i in 2 3 4 5 6 7 8 9; do
		ip -n "$CLI_NS" addr add "10.201.0.$i/24" dev "$CLI_IF"
		ip -n "$CLI_NS" addr add "fd00:201::$i/64" dev "$CLI_IF" nodad
	done
	ip -n "$SRV_NS" link set "$SRV_IF" up
	ip -n "$CLI_NS" link set "$CLI_IF" up
	ip -n "$CLI_NS" link set dev "$CLI_IF" xdp obj "$LS_BPF_DIR/xdp_pass.bpf.o" sec xdp ||
		return 1
	# Large backlogs so that the kernel, not a full queue, is what we measure.
	in_srv sysctl -qw net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192
	in_cli sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
	# Wait for the link (and IPv6 addresses) to be usable.
	for _ in $(seq 50); do
		in_cli ping -c1 -W1 10.201.0.1 >/dev/null 2>&1 && break
		sleep 0.1
	done
}

# attach IFACE ARGS...: loadshed attach in the server namespace.
ls_attach() { ls_srv attach "$@"; }

# wait_for_line FILE PATTERN [TIMEOUT_S]
wait_for_line() {
	local i
	for i in $(seq $((${3:-10} * 10))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# jqr JSON FILTER: one value out of a JSON document.
jqr() { jq -r "$2" <<<"$1"; }
