# shellcheck shell=bash
# Helpers for the shell test suites: TAP output, a runner that gives every
# test its own cleanup, and the two-host testbed of scripts/testbed.sh.
#
# A suite is a set of test functions:
#
#   . tests/lib.sh
#   require_root                  # else every test is reported as skipped
#   require_cmds jq bpftool       # likewise when a tool is missing
#   suite_setup setup_fn          # shared by the tests: the testbed, say
#   run_test "what it proves" test_fn
#   run_test ...
#   tap_done
#
# run_test runs the function in a subshell, so nothing it sets or breaks
# reaches the next test, and then always runs that test's cleanup: the
# processes it started with bg_srv/bg_cli/bg_host are stopped, the
# interfaces it attached with ls_attach are detached, and the commands it
# gave to defer are run, last registered first, however the function ended.
# A function that dies (exit, an unset variable under set -u, a signal)
# is reported as a failure, as is one that returns non-zero without having
# reported one; its checks (check, check_eq, check_cmp, ok, not_ok) are TAP
# lines of their own. Outside run_test the same helpers register with the
# suite, cleaned up on exit. Each test has a private scratch directory,
# $LS_TMP.
#
# The loadshed CLI runs in the server namespace through `nsenter --net`, not
# `ip netns exec`: the latter remounts /sys, so every call would see a new,
# empty bpffs and the attachment's pins would vanish between calls.

LS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOADSHED=${LOADSHED:-$LS_ROOT/build/san/loadshed}
LS_TOOLS=${LS_TOOLS:-$LS_ROOT/build/tools}
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$LS_ROOT/scripts/testbed.sh"

LS_SUITE_DIR=$(mktemp -d /tmp/ls-suite.XXXXXX)
LS_SCOPE=$LS_SUITE_DIR/suite # where the current scope registers its cleanup
LS_TMP=$LS_SCOPE/tmp
mkdir -p "$LS_TMP"
echo "0 0" >"$LS_SUITE_DIR/tap" # tests reported, failures: shared with subshells
LS_SKIP=                        # why every test is skipped
LS_BROKEN=                      # why no test can run (a failed suite setup)
TAP_N=0
trap ls_cleanup EXIT

# --- TAP ------------------------------------------------------------------------

# _tap_next FAILED: counts one more test (and FAILED more failures); sets TAP_N.
_tap_next() {
	local n f
	read -r n f <"$LS_SUITE_DIR/tap"
	TAP_N=$((n + 1))
	echo "$TAP_N $((f + $1))" >"$LS_SUITE_DIR/tap"
}

_tap_counts() { cat "$LS_SUITE_DIR/tap"; }

ok() {
	_tap_next 0
	echo "ok $TAP_N - $1"
}

not_ok() {
	_tap_next 1
	echo "not ok $TAP_N - $1"
	shift
	for line in "$@"; do echo "# $line"; done
}

# skip_test NAME REASON
skip_test() {
	_tap_next 0
	echo "ok $TAP_N - $1 # SKIP $2"
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
	local n f
	read -r n f <"$LS_SUITE_DIR/tap"
	echo "1..$n"
	[ "$f" -eq 0 ]
}

# --- what a suite needs -----------------------------------------------------------

# require_root: without it every test is skipped.
require_root() {
	[ "$(id -u)" -eq 0 ] || LS_SKIP=${LS_SKIP:-needs root (network namespaces, BPF)}
}

# require_cmds CMD...: every test is skipped when one is missing.
require_cmds() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || LS_SKIP=${LS_SKIP:-missing tool: $c}
	done
}

# suite_setup CMD...: runs the suite's shared setup (unless the suite is
# skipped). When it fails, that is reported, and every test after it is
# reported as failed without running.
suite_setup() {
	[ -n "$LS_SKIP" ] && return 0
	if ! "$@"; then
		not_ok "suite setup: $*"
		LS_BROKEN="the suite setup ($1) failed"
	fi
}

# --- scopes and cleanup -------------------------------------------------------------

_register() { echo "$*" >>"$LS_SCOPE/cleanup"; }

# track_pid PID: stop the process when the current scope ends.
track_pid() { _register pid "$1" "$(tb_starttime "$1" || echo 0)"; }

# defer CMD...: run CMD when the current scope ends.
defer() { _register run "$(printf '%q ' "$@")"; }

# _alive PID STARTTIME: the same process still runs (a zombie does not).
_alive() {
	local want=$2 stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086 # split the fields after "(comm) "
	set -- $stat
	[ "$1" != Z ] && [ "${20}" = "$want" ]
}

# _stop_pid PID STARTTIME: SIGTERM, up to 5 s, then SIGKILL.
_stop_pid() {
	local i
	if _alive "$1" "$2"; then
		kill -TERM "$1" 2>/dev/null
		for i in $(seq 250); do
			_alive "$1" "$2" || break
			sleep 0.02
		done
		: "$i"
		_alive "$1" "$2" && kill -KILL "$1" 2>/dev/null
	fi
	# Reaps it when it is this shell's child; returns at once otherwise.
	wait "$1" 2>/dev/null
	return 0
}

# _scope_cleanup DIR: undoes what the scope registered, last first.
_scope_cleanup() {
	local lines line kind a b
	[ -f "$1/cleanup" ] || return 0
	mapfile -t lines < <(tac "$1/cleanup")
	: >"$1/cleanup"
	for line in "${lines[@]}"; do
		read -r kind a b <<<"$line"
		case $kind in
		pid) _stop_pid "$a" "$b" ;;
		detach) nsenter --net="/run/netns/$b" "$LOADSHED" detach "$a" >/dev/null 2>&1 ;;
		testbed) tb_names "$a" && tb_down ;;
		run) eval "${line#run }" >/dev/null ;;
		esac
	done
}

# _enter_scope DIR: what the helpers register goes to DIR from now on.
_enter_scope() {
	LS_SCOPE=$1
	LS_TMP=$1/tmp
}

# run_test NAME FUNC [ARGS...]
run_test() {
	local name=$1 func=$2 scope counts rc
	shift 2
	if [ -n "$LS_SKIP" ]; then
		skip_test "$name" "$LS_SKIP"
		return 0
	fi
	if [ -n "$LS_BROKEN" ]; then
		not_ok "$name" "not run: $LS_BROKEN"
		return 0
	fi
	scope=$(mktemp -d "$LS_SUITE_DIR/test.XXXXXX")
	mkdir "$scope/tmp"
	counts=$(_tap_counts)
	echo "# $name"
	(
		_enter_scope "$scope"
		# Cleaned up here, where its processes can be reaped, however the
		# test ends; again below in case the subshell itself was killed.
		trap '_scope_cleanup "$LS_SCOPE"' EXIT
		"$func" "$@"
		echo "$?" >"$scope/returned"
	)
	rc=$?
	_scope_cleanup "$scope"
	if [ -f "$scope/skipped" ]; then
		skip_test "$name" "$(cat "$scope/skipped")"
	elif [ ! -f "$scope/returned" ]; then
		not_ok "$name: died before it finished (exit status $rc)"
	elif rc=$(cat "$scope/returned") && [ "$rc" -ne 0 ]; then
		if [ "$(_tap_counts | cut -d' ' -f2)" = "$(cut -d' ' -f2 <<<"$counts")" ]; then
			not_ok "$name: returned $rc without reporting a failure"
		else
			echo "# $name: stopped early (returned $rc)"
		fi
	elif [ "$(_tap_counts)" = "$counts" ]; then
		not_ok "$name: reported nothing"
	fi
	rm -rf "$scope"
	return 0
}

# skip_this_test REASON: inside a test, ends it as skipped.
skip_this_test() {
	echo "$1" >"$LS_SCOPE/skipped"
	exit 0
}

ls_cleanup() {
	[ -d "$LS_SUITE_DIR" ] || return 0
	_scope_cleanup "$LS_SUITE_DIR/suite"
	rm -rf "$LS_SUITE_DIR"
}

# --- the testbed --------------------------------------------------------------------

# Runs a command in the server namespace, sharing the root mount namespace.
in_srv() { nsenter --net="/run/netns/$SRV_NS" "$@"; }
in_cli() { ip netns exec "$CLI_NS" "$@"; }
ls_srv() { in_srv "$LOADSHED" "$@"; }

# bg_srv/bg_cli/bg_host CMD...: start CMD in the background (in a
# namespace); its PID is in $! and it is stopped when the scope ends.
# (nsenter and ip netns exec exec the command: $! is the command itself.)
bg_srv() {
	nsenter --net="/run/netns/$SRV_NS" "$@" &
	track_pid $!
}
bg_cli() {
	ip netns exec "$CLI_NS" "$@" &
	track_pid $!
}
bg_host() {
	"$@" &
	track_pid $!
}

# testbed_up [ID]: scripts/testbed.sh's server and client namespaces, torn
# down when the scope ends (see there for the addresses: server 10.201.0.1,
# clients 10.201.0.2-9, fd00:201::/64). The server interface is detached
# then too, whatever attached it.
testbed_up() {
	tb_names "${1:-t$$}" || return 1
	_register testbed "$TB_ID"
	_register detach "$SRV_IF" "$SRV_NS"
	tb_up
}

# ls_attach IFACE ARGS...: loadshed attach in the server namespace, detached
# when the scope ends (also when the attach fails half-way).
ls_attach() {
	_register detach "$1" "$SRV_NS"
	ls_srv attach "$@"
}

# pin_dir IFACE: IFACE's pin directory in the server namespace (attachments
# are kept per network namespace, by its cookie).
pin_dir() { echo "/sys/fs/bpf/loadshed/net$(ls_srv -j list | jq -r .netns)/$1"; }

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
