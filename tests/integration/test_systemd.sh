#!/usr/bin/env bash
# loadshed under systemd (deploy/systemd, design §9.6), without systemd as
# PID 1: the unit passes `systemd-analyze verify`; its capabilities are
# exactly the ones attach, the agent, status and detach are run with here
# under setpriv (root's other capabilities dropped, no new privileges), and
# attach fails cleanly with any one of them missing; attach on an attached
# interface whose agent died adopts it (flows and counters kept) and is
# refused while an agent runs; the agent's sd_notify messages reach
# NOTIFY_SOCKET; loadshed-stop detaches after a clean stop only.
# Needs root.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

UNIT=$LS_ROOT/deploy/systemd/loadshed@.service
STOP=$LS_ROOT/deploy/systemd/loadshed-stop
PORT=8080
# What the tests run with; t_unit_caps checks the unit names exactly these.
CAPS=(CAP_BPF CAP_NET_ADMIN CAP_PERFMON)

# setpriv_caps CAP...: setpriv's list, "+bpf,+net_admin,..."
setpriv_caps() {
	local c out=
	for c in "$@"; do out+=",+$(tr 'A-Z' 'a-z' <<<"${c#CAP_}")"; done
	echo "${out#,}"
}

# with_caps "CAP..." CMD...: CMD in the server namespace with exactly those
# capabilities (root's others dropped from every set) and no new privileges.
# nsenter and setpriv exec: started with &, $! is CMD itself.
with_caps() (
	local list
	list=$(setpriv_caps $1)
	shift
	exec nsenter --net="/run/netns/$SRV_NS" setpriv --inh-caps=-all,"$list" \
		--ambient-caps=-all,"$list" --bounding-set=-all,"$list" --no-new-privs "$@"
)

conf() { printf '[agent]\ninterval = 100ms\n\n[service web]\nlisten = *:%s\nlimit = %s\n' "$PORT" "$1"; }
status_j() { ls_srv -j status "$SRV_IF" | jq -r "$1"; }
no_xdp() { ! in_srv ip link show dev "$SRV_IF" | grep -q 'prog/xdp'; }
not_attached() { [ ! -e "$(pin_dir "$SRV_IF")" ] && no_xdp; }

# wait_until SECONDS CMD...: polls CMD every 50 ms, up to SECONDS.
wait_until() {
	local i n=$(($1 * 20))
	shift
	for i in $(seq "$n"); do
		"$@" && return 0
		sleep 0.05
	done
	: "$i"
	return 1
}
agent_up() { [ "$(status_j '.agent.pid')" -gt 0 ] 2>/dev/null && [ "$(status_j '.agent.heartbeat_age_ms')" != null ]; }
agent_down() { [ "$(status_j '.agent.pid')" = 0 ]; }

t_unit_verifies() {
	local pfx=$LS_TMP/pfx out
	check "make install into a prefix" make -s -C "$LS_ROOT" install PREFIX="$pfx/usr"
	mkdir -p "$LS_TMP/units"
	# An instance of the template, naming the installed binaries (verify needs them to exist).
	cp "$pfx/usr/lib/systemd/system/loadshed@.service" "$LS_TMP/units/loadshed@lo.service"
	check "the installed unit runs the installed binary" \
		grep -q "^ExecStart=$pfx/usr/sbin/loadshed attach %i" "$LS_TMP/units/loadshed@lo.service"
	# Its Documentation= man pages are looked up with man: the installed ones.
	out=$(MANPATH=$pfx/usr/share/man systemd-analyze verify "$LS_TMP/units/loadshed@lo.service" 2>&1)
	check_eq "systemd-analyze verify passes, silently" "$?:$out" "0:"
	out=$(systemd-analyze security --offline=yes "$LS_TMP/units/loadshed@lo.service" 2>&1 | tail -n1)
	echo "# $out"
}

# The capability names of a unit key, sorted, one line.
unit_caps() { sed -n "s/^$1=//p" "$UNIT" | tr ' ' '\n' | grep . | sort | tr '\n' ' '; }

t_unit_caps() {
	local want
	want=$(printf '%s\n' "${CAPS[@]}" | sort | tr '\n' ' ')
	check_eq "CapabilityBoundingSet is exactly the tested set" "$(unit_caps CapabilityBoundingSet)" "$want"
	check_eq "AmbientCapabilities is exactly the tested set" "$(unit_caps AmbientCapabilities)" "$want"
	check "NoNewPrivileges" grep -q '^NoNewPrivileges=yes' "$UNIT"
	check "ExecStart attaches and runs the agent in the foreground" \
		grep -q '^ExecStart=.*loadshed attach %i --config /etc/loadshed/%i.conf --foreground$' "$UNIT"
	check "ExecStopPost is loadshed-stop" grep -q '^ExecStopPost=.*/loadshed-stop %i$' "$UNIT"
}

# The effective capabilities of PID, by name, sorted.
caps_of() {
	capsh --decode="$(awk '/^CapEff/ { print $2 }' "/proc/$1/status")" |
		sed 's/.*=//' | tr ',' '\n' | tr 'a-z' 'A-Z' | sort | tr '\n' ' '
}

cg_mount() { awk '{ for (i = 1; i < NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1; }

t_runs_with_exactly_those_caps() {
	local pid rc list log=$LS_TMP/agent.log cg
	# With an upstream too: the breaker's cgroup programs attach with the same
	# capabilities (scoped to a cgroup of this test's, never the host's root).
	cg=$(cg_mount)/ls-sd-$$
	mkdir -p "$cg" && defer rmdir "$cg"
	{
		conf 10
		printf '\n[upstream db]\ndest = 10.201.0.1:9\ncgroup = %s\n' "${cg#"$(cg_mount)"}"
	} >"$LS_TMP/web.conf"
	_register detach "$SRV_IF" "$SRV_NS"
	# What ExecStart runs.
	list=$(setpriv_caps "${CAPS[@]}")
	nsenter --net="/run/netns/$SRV_NS" setpriv --inh-caps=-all,"$list" --ambient-caps=-all,"$list" \
		--bounding-set=-all,"$list" --no-new-privs \
		"$LOADSHED" attach "$SRV_IF" --config "$LS_TMP/web.conf" --foreground 2>"$log" &
	pid=$!
	track_pid "$pid"
	check "attach --foreground: the agent runs and beats" wait_until 10 agent_up
	check_eq "status shows it as the agent" "$(status_j .agent.pid)" "$pid"
	check_eq "with exactly the unit's capabilities" "$(caps_of "$pid")" \
		"$(printf '%s\n' "${CAPS[@]}" | sort | tr '\n' ' ')"
	check_eq "no new privileges" "$(awk '/^NoNewPrivs/ { print $2 }' "/proc/$pid/status")" 1
	check "status runs with them" with_caps "${CAPS[*]}" "$LOADSHED" status "$SRV_IF"
	check_eq "the upstream's breaker is attached with them" \
		"$(status_j '[.upstreams[]?.name] | join(",")')" db
	check "its cgroup programs are on the test cgroup" \
		sh -c "bpftool cgroup show '$cg' | grep -q connect4"
	check "policy reload runs with them" \
		with_caps "${CAPS[*]}" "$LOADSHED" policy "$SRV_IF" reload "$LS_TMP/web.conf"
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	check_eq "SIGTERM stops it cleanly (exit 0)" "$rc" 0
	check "what ExecStopPost runs detaches with them" \
		with_caps "${CAPS[*]}" env SERVICE_RESULT=success LOADSHED="$LOADSHED" "$STOP" "$SRV_IF"
	check "nothing is left: no pins, no XDP program" not_attached
	check "nor a program on the test cgroup" sh -c "! bpftool cgroup show '$cg' | grep -q ."
}

t_one_cap_fewer_fails_cleanly() {
	local drop c out rc
	local -a rest
	conf 10 >"$LS_TMP/web.conf"
	for drop in "${CAPS[@]}"; do
		rest=()
		for c in "${CAPS[@]}"; do [ "$c" = "$drop" ] || rest+=("$c"); done
		_register detach "$SRV_IF" "$SRV_NS"
		out=$(with_caps "${rest[*]}" "$LOADSHED" attach "$SRV_IF" --config "$LS_TMP/web.conf" 2>&1)
		rc=$?
		echo "# without $drop: $out"
		check_eq "without $drop attach fails (exit 1)" "$rc" 1
		check "without $drop it says nothing was left behind" \
			grep -q "attach failed, nothing was left behind" <<<"$out"
		check "without $drop nothing is left: no pins, no XDP program" not_attached
	done
}

t_attach_twice_adopts() {
	local old new out rc flows admitted
	bg_srv "$LS_TOOLS/ls-server" --listen 10.201.0.1:$PORT --workers 4 --service-ms 1 \
		>"$LS_TMP/server.log" 2>&1
	wait_for_line "$LS_TMP/server.log" listening 10 || { not_ok "server starts"; return 1; }
	conf 10 >"$LS_TMP/web.conf"
	check "attach" ls_attach "$SRV_IF" --config "$LS_TMP/web.conf"
	bg_cli "$LS_TOOLS/ls-conn" --target 10.201.0.1:$PORT --src 10.201.0.2 --count 5 --hold-s 60 \
		>"$LS_TMP/conn.log" 2>&1
	wait_for_line "$LS_TMP/conn.log" "ok=5" 10 || { not_ok "5 connections open" "$(cat "$LS_TMP/conn.log")"; return 1; }
	flows=$(status_j .flows)
	admitted=$(status_j '[.services[0].classes[].admitted] | add')
	check_cmp "the 5 held connections are flows" "$flows" -ge 5
	old=$(status_j .agent.pid)
	out=$(ls_srv attach "$SRV_IF" --config "$LS_TMP/web.conf" 2>&1)
	rc=$?
	check_eq "attach while its agent runs is refused" "$rc:$out" \
		"1:loadshed: $SRV_IF: already attached and its agent runs (pid $old): \`loadshed policy $SRV_IF reload FILE\` changes its policy"
	kill -KILL "$old"
	check "the agent is dead (a crash)" wait_until 5 agent_down
	conf 20 >"$LS_TMP/web.conf"
	out=$(ls_srv -j attach "$SRV_IF" --config "$LS_TMP/web.conf" 2>&1)
	check_eq "attach again adopts the attachment" "$(jqr "$out" .adopted)" true
	new=$(status_j .agent.pid)
	check "a new agent runs" test "$new" -gt 0 -a "$new" != "$old"
	check_eq "the policy is the file's now" "$(status_j '.services[0].limit')" 20
	check_cmp "the flows are kept" "$(status_j .flows)" -ge "$flows"
	check_cmp "the counters are kept" "$(status_j '[.services[0].classes[].admitted] | add')" -ge "$admitted"
	check_eq "the held connections are still in flight" "$(status_j '.services[0].inflight')" 5
	out=$(ls_srv attach "$SRV_IF" --config "$LS_TMP/nonexistent.conf" 2>&1)
	check_eq "a bad config is refused before the attachment is touched" "$?" 2
	check_eq "the agent stays" "$(status_j .agent.pid)" "$new"
}

# A reader of NOTIFY_SOCKET: every datagram, one per line (newlines as '|').
NOTIFY_READER='
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    print(s.recv(4096).decode().replace("\n", "|"), flush=True)
'

ready_twice() { [ "$(grep -c 'READY=1' "$msgs")" -ge 2 ]; }

t_sd_notify() {
	local pid rc sock=$LS_TMP/notify.sock msgs=$LS_TMP/notify.log
	bg_host python3 -u -c "$NOTIFY_READER" "$sock" >"$msgs"
	wait_until 5 test -S "$sock" || { not_ok "the notify socket is there"; return 1; }
	conf 10 >"$LS_TMP/web.conf"
	_register detach "$SRV_IF" "$SRV_NS"
	NOTIFY_SOCKET=$sock WATCHDOG_USEC=2000000 nsenter --net="/run/netns/$SRV_NS" "$LOADSHED" -v \
		attach "$SRV_IF" --config "$LS_TMP/web.conf" --foreground 2>"$LS_TMP/agent.log" &
	pid=$!
	track_pid "$pid"
	check "READY=1 arrives, with a STATUS= line" wait_for_line "$msgs" "^READY=1|STATUS=heartbeat ok; web: limit 10" 10
	check "WATCHDOG=1 arrives (WATCHDOG_USEC set)" wait_for_line "$msgs" "^WATCHDOG=1" 5
	check "the agent says the watchdog expects it" grep -q "watchdog expects a heartbeat every 2.0 s" "$LS_TMP/agent.log"
	check_eq "READY=1 came once, and after the first heartbeat" "$(grep -c 'READY=1' "$msgs")" 1
	kill -HUP "$pid"
	check "a reload says RELOADING=1" wait_for_line "$msgs" "^RELOADING=1|MONOTONIC_USEC=[0-9]" 5
	check "then READY=1 again" wait_until 5 ready_twice
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	check_eq "SIGTERM: exit 0" "$rc" 0
	check "STOPPING=1 arrives" wait_for_line "$msgs" "^STOPPING=1" 5
	check "stop detaches" env SERVICE_RESULT=success LOADSHED="$LOADSHED" "$STOP" "$SRV_IF"
}

t_stop_detaches_after_success_only() {
	local r out
	conf 10 >"$LS_TMP/web.conf"
	check "attach" ls_attach "$SRV_IF" --config "$LS_TMP/web.conf"
	for r in exit-code signal core-dump watchdog timeout ""; do
		out=$(in_srv env SERVICE_RESULT="$r" LOADSHED="$LOADSHED" "$STOP" "$SRV_IF" 2>&1)
		check_eq "SERVICE_RESULT='$r': exit 0" "$?" 0
		check "SERVICE_RESULT='$r': still attached" ls_srv status "$SRV_IF"
	done
	echo "# $out"
	check "SERVICE_RESULT=success: detached" in_srv env SERVICE_RESULT=success LOADSHED="$LOADSHED" "$STOP" "$SRV_IF"
	check "nothing is left" not_attached
}

require_root
require_cmds jq nsenter ip setpriv capsh systemd-analyze python3 make
suite_setup testbed_up "sd$$"
run_test "systemd-analyze verify passes on the installed unit" t_unit_verifies
run_test "the unit's capabilities are exactly the tested set" t_unit_caps
run_test "attach, the agent, status and detach run with exactly those capabilities" t_runs_with_exactly_those_caps
run_test "with any one capability fewer attach fails and leaves nothing" t_one_cap_fewer_fails_cleanly
run_test "attach on an attachment whose agent died adopts it; with a live agent it is refused" t_attach_twice_adopts
run_test "the agent's sd_notify messages reach NOTIFY_SOCKET" t_sd_notify
run_test "loadshed-stop detaches after a clean stop only" t_stop_detaches_after_success_only
tap_done
