# shellcheck shell=bash
# Helpers for the shell test suites: TAP output, the two-host testbed of
# scripts/testbed.sh, and cleanup of everything a suite made (trap on exit).
#
# The loadshed CLI runs in the server namespace through `nsenter --net`, not
# `ip netns exec`: the latter remounts /sys, so every call would see a new,
# empty bpffs and the attachment's pins would vanish between calls.

LS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOADSHED=${LOADSHED:-$LS_ROOT/build/san/loadshed}
LS_TOOLS=${LS_TOOLS:-$LS_ROOT/build/tools}

TAP_N=0
TAP_FAILED=0
LS_PIDS=()
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
	local holds=1
	if [[ $2 =~ ^-?[0-9]+$ && $4 =~ ^-?[0-9]+$ ]]; then
		case $3 in
		-lt) ((${2} < ${4})) && holds=0 ;;
		-le) ((${2} <= ${4})) && holds=0 ;;
		-eq) ((${2} == ${4})) && holds=0 ;;
		-ge) ((${2} >= ${4})) && holds=0 ;;
		-gt) ((${2} > ${4})) && holds=0 ;;
		-ne) ((${2} != ${4})) && holds=0 ;;
		esac
	fi
	if [ "$holds" = 0 ]; then
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
	local pid ifc
	for ifc in "${LS_ATTACHED[@]}"; do
		in_srv "$LOADSHED" detach "$ifc" >/dev/null 2>&1
	done
	for pid in "${LS_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${LS_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	[ -n "${TB_ID:-}" ] && tb_down
}

# testbed_up [ID]: scripts/testbed.sh's server and client namespaces, torn
# down on exit (see there for the addresses: server 10.201.0.1, clients
# 10.201.0.2-9, fd00:201::/64). The server interface is detached on exit
# whatever happens: an attach may run in a subshell (a command
# substitution) that cannot register it.
testbed_up() {
	# shellcheck source=scripts/testbed.sh disable=SC1091
	. "$LS_ROOT/scripts/testbed.sh"
	tb_names "${1:-t$$}" || return 1
	trap ls_cleanup EXIT
	LS_ATTACHED+=("$SRV_IF")
	tb_up
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
