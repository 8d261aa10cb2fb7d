#!/usr/bin/env bash
# Faults around an attachment: the same interface name in two network
# namespaces (attachments are kept per namespace and never reached from
# another), an interface deleted and made again while attached, also between
# two rounds of the agent and with its old ifindex (the agent notices,
# detaches and logs it; attach works again), and agent liveness (the agent
# holds a lock for its life: a second one never starts, whatever its command
# line).
#
# Faults with traffic, each on a testbed of its own (scripts/testbed.sh) with
# a server that holds connections: the agent hung (SIGSTOP) or killed
# (SIGKILL) makes the dataplane fail open after fail_open_after and a new or
# resumed agent brings shedding back (design.md §4.8, §7.6); an agent whose
# clocks are shifted by a time namespace neither fails open early nor late
# (the heartbeat is the kernel's clock, §7.5); a flow table filled while
# failing open is brought back by the sweep (§4.9, §5.3, §7.5); an aborted
# request handled late by the agent closes no other socket (§4.4). And
# reloads that race each other or a SIGHUP end with one file's policy, whole
# (§8). Checks are outcomes and counts; the waits are bounded and wide.
# Needs root.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

IF=lsf0 # the same name in both namespaces

# ns_up NAME: a namespace with a veth pair whose inner end is $IF, up.
ns_up() {
	ip netns add "$1" || return 1
	defer ip netns del "$1"
	ip -n "$1" link add "$IF" type veth peer name "${IF}p" || return 1
	ip -n "$1" link set "$IF" up
	ip -n "$1" link set "${IF}p" up
}
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
ls_ns() { local ns=$1; shift; in_ns "$ns" "$LOADSHED" "$@"; }
# attach_in NS: attaches loadshed to $IF in NS (detached when the test ends).
attach_in() {
	defer nsenter --net="/run/netns/$1" "$LOADSHED" detach "$IF"
	ls_ns "$1" attach "$IF" --port 8080 --limit 7 --agent-log "$LS_TMP/$1-agent.log"
}

t_one_name_two_namespaces() {
	local a=lsfa$$ b=lsfb$$ js
	ns_up "$a" && ns_up "$b" || { not_ok "two namespaces come up"; return; }
	check "attach in the first namespace" attach_in "$a"
	check "attach to the same name in the second" attach_in "$b"
	check "limit set in the first changes only the first" ls_ns "$a" limit "$IF" set 3
	check_eq "the second keeps its limit" "$(ls_ns "$b" -j status "$IF" | jq -r '.services[0].limit')" 7
	check_eq "the first has the new one" "$(ls_ns "$a" -j status "$IF" | jq -r '.services[0].limit')" 3
	js=$(ls_ns "$a" -j list)
	check_eq "list shows both, one here" \
		"$(jq -c "[.attachments[] | select(.ifname == \"$IF\")] | map(.here) | sort" <<<"$js")" \
		"[false,true]"
	check "detach in the first" ls_ns "$a" detach "$IF"
	check_eq "the second is still attached and enforcing" \
		"$(ls_ns "$b" -j status "$IF" | jq -r '.services[0].limit, .agent.enforcing' | tr '\n' ' ')" "7 true "
	check "its XDP program is still there" bash -c "ip -n $b link show dev $IF | grep -q xdp"
}

# From a namespace where the interface does not exist, nothing acts on another's.
t_no_action_across_namespaces() {
	local a=lsfc$$ e=lsfe$$ out rc
	ns_up "$a" || { not_ok "a namespace comes up"; return; }
	ip netns add "$e" && defer ip netns del "$e"
	check "attach" attach_in "$a"
	out=$(ls_ns "$e" status "$IF" 2>&1)
	rc=$?
	check_eq "status from another namespace: not attached" "$rc:$out" "1:loadshed: $IF: not attached"
	out=$(ls_ns "$e" limit "$IF" set 1 2>&1)
	check_eq "limit set from another namespace: not attached" "$out" "loadshed: $IF: not attached"
	out=$(ls_ns "$e" -j detach "$IF")
	check_eq "detach from another namespace detaches nothing" "$(jq -r .detached <<<"$out")" false
	check_eq "the attachment and its agent live on" \
		"$(ls_ns "$a" -j status "$IF" | jq -r '.services[0].limit, (.agent.pid > 0)' | tr '\n' ' ')" \
		"7 true "
}

# here_count NS: attachments of $IF that `list` shows in NS.
here_count() {
	ls_ns "$1" -j list | jq -r "[.attachments[] | select(.here and .ifname == \"$IF\")] | length"
}

# wait_detached NS: until the agent has noticed and detached (up to 5 s).
wait_detached() {
	local i
	for i in $(seq 50); do
		[ "$(here_count "$1")" = 0 ] && return 0
		sleep 0.1
	done
	: "$i"
	return 1
}

# resume PID: SIGCONT for a process this test stopped, if it still runs.
resume() { kill -CONT "$1" 2>/dev/null || true; }

# gone PID: no such process, or a zombie.
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# recreate NS AGENT [INDEX]: $IF deleted and made again (with ifindex INDEX)
# between two rounds of the agent, which is stopped meanwhile.
recreate() {
	local rc=0
	kill -STOP "$2"
	ip -n "$1" link del "$IF" &&
		ip -n "$1" link add name "$IF" ${3:+index "$3"} type veth peer name "${IF}p" &&
		ip -n "$1" link set "$IF" up && ip -n "$1" link set "${IF}p" up || rc=1
	kill -CONT "$2"
	return $rc
}

# check_reattached NS OLD_AGENT: a new attachment on the device of that name, with
# a new agent that keeps the dataplane enforcing and an XDP program on it.
check_reattached() {
	local js
	check "attach works on the interface made again" attach_in "$1"
	js=$(ls_ns "$1" -j status "$IF")
	check_eq "and it is attached to the new device" "$(jq -r '.xdp_mode' <<<"$js")" "native"
	check_eq "with a new agent that keeps it enforcing" \
		"$(jq -r --argjson old "$2" '.agent | .pid > 0 and .pid != $old and .enforcing' <<<"$js")" true
	check "the XDP program is on the new device" bash -c "ip -n $1 link show dev $IF | grep -q xdp"
	check_eq "list shows it, not stale" \
		"$(ls_ns "$1" -j list | jq -r ".attachments[] | select(.here and .ifname == \"$IF\") | .stale")" false
}

t_deleted_interface_is_noticed() {
	local a=lsfd$$ old
	ns_up "$a" || { not_ok "a namespace comes up"; return; }
	check "attach" attach_in "$a"
	old=$(ls_ns "$a" -j status "$IF" | jq -r .agent.pid)
	ip -n "$a" link del "$IF"
	wait_detached "$a"
	check_eq "the agent detaches when the interface is gone" "$(here_count "$a")" 0
	check "and says so in its log" grep -q "the interface is gone" "$LS_TMP/$a-agent.log"
	check "and stops" gone "$old"
	ip -n "$a" link add "$IF" type veth peer name "${IF}p" && ip -n "$a" link set "$IF" up
	check_reattached "$a" "$old"
}

# Deleted and made again under the same name between two rounds of the
# agent (stopped meanwhile, so that no round sees the name missing): the
# name has another ifindex, which the agent notices.
t_interface_made_again_at_once_is_noticed() {
	local a=lsfr$$ old
	ns_up "$a" || { not_ok "a namespace comes up"; return; }
	check "attach" attach_in "$a"
	old=$(ls_ns "$a" -j status "$IF" | jq -r .agent.pid)
	defer resume "$old"
	check "the interface is deleted and made again between two rounds" recreate "$a" "$old"
	check "the agent detaches what is left" wait_detached "$a"
	check "and says so in its log" grep -q "the interface is gone" "$LS_TMP/$a-agent.log"
	check "and stops" gone "$old"
	check_reattached "$a" "$old"
}

# The same, with the old ifindex given to the new device (ip link add ...
# index N): the name and the number are the old ones, the device and its
# programs are not. The agent must not keep reporting an attachment whose
# programs the kernel took down with the old device.
t_interface_made_again_with_its_index_is_noticed() {
	local a=lsfx$$ old idx js
	ns_up "$a" || { not_ok "a namespace comes up"; return; }
	check "attach" attach_in "$a"
	old=$(ls_ns "$a" -j status "$IF" | jq -r .agent.pid)
	idx=$(ip -n "$a" -j link show dev "$IF" | jq -r '.[0].ifindex')
	defer resume "$old"
	check "the interface is made again with its ifindex ($idx) between two rounds" \
		recreate "$a" "$old" "$idx"
	check_eq "the new device has the old ifindex" \
		"$(ip -n "$a" -j link show dev "$IF" | jq -r '.[0].ifindex')" "$idx"
	check "it has no XDP program (the kernel detached it with the old device)" \
		bash -c "! ip -n $a link show dev $IF | grep -q xdp"
	if ! wait_detached "$a"; then
		js=$(ls_ns "$a" -j status "$IF")
		not_ok "the agent notices the device is not the one it attached to" \
			"after 5 s the attachment is still listed and status says: xdp $(jq -r .xdp_mode <<<"$js"), agent pid $(jq -r .agent.pid <<<"$js"), enforcing $(jq -r .agent.enforcing <<<"$js")" \
			"while ip link shows no XDP program on $IF"
		ls_ns "$a" detach "$IF" >/dev/null 2>&1
	else
		ok "the agent notices the device is not the one it attached to"
		check "and stops" gone "$old"
	fi
	check_reattached "$a" "$old"
}

# Pins left by an attachment whose interface was replaced with no agent to notice.
t_stale_pins_are_replaced_at_attach() {
	local a=lsfs$$ out
	ns_up "$a" || { not_ok "a namespace comes up"; return; }
	defer nsenter --net="/run/netns/$a" "$LOADSHED" detach "$IF"
	check "attach without an agent" ls_ns "$a" attach "$IF" --port 8080 --limit 7 --no-agent
	ip -n "$a" link del "$IF"
	ip -n "$a" link add "$IF" type veth peer name "${IF}p" && ip -n "$a" link set "$IF" up
	out=$(ls_ns "$a" list)
	check "list marks the attachment stale" grep -q "stale, the interface is gone" <<<"$out"
	check "attach replaces the stale pins" ls_ns "$a" attach "$IF" --port 8080 --limit 5 --no-agent
	check_eq "with the new policy" "$(ls_ns "$a" -j status "$IF" | jq -r '.services[0].limit')" 5
	out=$(ls_ns "$a" list)
	check "and it is no longer stale" bash -c "! grep -q stale <<<'$out'"
}

# The agent's lock, not its command line or a recorded pid, says it lives.
t_agent_liveness_is_its_lock() {
	local a=lsfl$$ out rc pid
	ns_up "$a" || { not_ok "a namespace comes up"; return; }
	defer nsenter --net="/run/netns/$a" "$LOADSHED" detach "$IF"
	check "attach without an agent" ls_ns "$a" attach "$IF" --port 8080 --limit 7 --no-agent
	nsenter --net="/run/netns/$a" "$LOADSHED" age "$IF" 2>"$LS_TMP/age.log" &
	pid=$!
	track_pid "$pid"
	for _ in $(seq 30); do
		[ "$(ls_ns "$a" -j status "$IF" | jq -r .agent.pid)" = "$pid" ] && break
		sleep 0.1
	done
	check_eq "an agent started as 'age' runs and is recorded" \
		"$(ls_ns "$a" -j status "$IF" | jq -r .agent.pid)" "$pid"
	out=$(ls_ns "$a" agent "$IF" 2>&1)
	rc=$?
	check_eq "a second agent refuses to start" "$rc:$out" \
		"1:loadshed: $IF: an agent already runs (pid $pid)"
	check "detach stops it" ls_ns "$a" detach "$IF"
	check "the agent is gone" bash -c "! kill -0 $pid 2>/dev/null || grep -q Z /proc/$pid/stat"
}

# --- faults with traffic -------------------------------------------------------------

PORT=8080
SRV=10.201.0.1

# traffic_up: a testbed of this test's own (torn down when it ends) with a
# server that holds every connection until its client closes it.
traffic_up() {
	testbed_up "fo$$" >/dev/null || { not_ok "the testbed comes up"; return 1; }
	bg_srv "$LS_TOOLS/ls-server" --listen $SRV:$PORT --hold >"$LS_TMP/server.log" 2>&1
	wait_for_line "$LS_TMP/server.log" listening 10 || { not_ok "the server starts"; return 1; }
}

# write_conf FILE: L pinned at 2, one class for every client, shed by RST at
# the SYN (a shed client sees ECONNREFUSED at once); FAIL_OPEN_AFTER (1s)
# and IDLE (60s) from the environment.
write_conf() {
	cat >"$1" <<END
[agent]
interval = 100ms
idle_timeout = ${IDLE:-60s}
fail_open_after = ${FAIL_OPEN_AFTER:-1s}

[service web]
listen = *:$PORT
limit = 2

[class web.all]
share = 0%
action = reset
match = src 10.201.0.0/24
END
}

status() { ls_srv -j status "$SRV_IF"; }
st() { status | jq -r "$1"; }
text_has() { ls_srv status "$SRV_IF" | grep -q "$1"; }

# wait_status FILTER TIMEOUT_S: until FILTER holds on status.
wait_status() {
	local i
	for i in $(seq $(($2 * 10))); do
		[ "$(st "$1")" = true ] && return 0
		sleep 0.1
	done
	: "$i"
	return 1
}

# truthful JSON: status's agent fields agree with each other: a heartbeat age
# that is a real one (not null, under 10 minutes), fail-open exactly when it
# is older than fail_open_after, enforcing exactly when not failing open.
truthful() {
	jq -e '.agent | .heartbeat_age_ms != null and .heartbeat_age_ms >= 0
		and .heartbeat_age_ms < 600000
		and .fail_open == (.heartbeat_age_ms > .failopen_after_ms)
		and .enforcing == (.fail_open | not)' <<<"$1" >/dev/null || {
		jq -c .agent <<<"$1"
		return 1
	}
}

# once: one connection (closed at once): ok, refused or timeout.
once() {
	in_cli "$LS_TOOLS/ls-conn" --target $SRV:$PORT --src 10.201.0.3 --count 1 \
		--connect-timeout-ms 1500 --hold-s 0 </dev/null | sed -n 's/^conn 1 \([a-z]*\).*/\1/p'
}

# hold N SRC OUT: N connections from SRC held in the background (until the
# test ends); returns once they are all made.
hold() {
	bg_cli "$LS_TOOLS/ls-conn" --target $SRV:$PORT --src "$2" --count "$1" \
		--connect-timeout-ms 1500 --hold-s 120 >"$3" </dev/null
	HOLDER=$!
	wait_for_line "$3" "^ok=" 30
}

attach_faults() {
	check "attach (${WHAT:-limit 2, fail-open after ${FAIL_OPEN_AFTER:-1s}})" \
		ls_attach "$SRV_IF" -v --config "$LS_TMP/f.conf" --agent-log "$LS_TMP/agent.log" "$@"
}

# The agent stops answering (SIGSTOP) while clients keep coming: after
# fail_open_after the dataplane admits everything; SIGCONT and it sheds again.
t_hung_agent_fails_open_and_resumes() {
	local pid js load
	traffic_up || return 1
	write_conf "$LS_TMP/f.conf"
	attach_faults
	hold 2 10.201.0.2 "$LS_TMP/held.out"
	check_eq "two held connections fill the limit" "$(st '.services[0].inflight')" 2
	bg_cli "$LS_TOOLS/ls-loadgen" --duration 6 --seed 3 \
		--class "name=bg,src=10.201.0.4,target=$SRV:$PORT,rate=20,deadline_ms=1000" \
		--json "$LS_TMP/load.json" >"$LS_TMP/load.out" 2>&1
	load=$!
	check_eq "a new client is shed while the agent runs" "$(once)" refused
	js=$(status)
	check "status agrees with itself while the agent runs" truthful "$js"
	pid=$(jqr "$js" .agent.pid)

	kill -STOP "$pid"
	defer resume "$pid"
	check "the dataplane fails open once the heartbeat is older than 1 s" wait_status .agent.fail_open 5
	js=$(status)
	check_eq "status names the hung agent, failing open" \
		"$(jqr "$js" '"\(.agent.pid) \(.agent.fail_open) \(.agent.enforcing)"')" "$pid true false"
	check "and its heartbeat age says why" truthful "$js"
	check "the text says FAIL-OPEN" text_has "FAIL-OPEN: admitting everything (heartbeat stale)"
	check_eq "a new client is admitted while failing open" "$(once)" ok
	check_cmp "counted as fail_open" "$(st '.services[0].classes[0].fail_open')" -ge 1

	kill -CONT "$pid"
	check "after SIGCONT the heartbeat is fresh again" wait_status '.agent.fail_open | not' 5
	js=$(status)
	check_eq "the same agent, enforcing" "$(jqr "$js" '"\(.agent.pid) \(.agent.enforcing)"')" "$pid true"
	check "status agrees with itself" truthful "$js"
	check "the text gives the heartbeat's age" text_has "heartbeat [0-9]* ms ago"
	check_eq "shedding is back" "$(once)" refused
	wait "$load"
	check_cmp "the background clients were shed while the agent ran" \
		"$(jq -r .classes.bg.refused "$LS_TMP/load.json")" -ge 1
	check_cmp "and admitted while it was hung" "$(jq -r .classes.bg.ok "$LS_TMP/load.json")" -ge 1
}

# The agent is killed: the dataplane fails open, its lock is free, and a new
# `loadshed agent` takes over from the pinned maps.
t_killed_agent_fails_open_and_a_new_one_takes_over() {
	local pid js new
	traffic_up || return 1
	write_conf "$LS_TMP/f.conf"
	attach_faults
	hold 2 10.201.0.2 "$LS_TMP/held.out"
	check_eq "a new client is shed while the agent runs" "$(once)" refused
	pid=$(st .agent.pid)
	kill -KILL "$pid"
	check "the dataplane fails open" wait_status .agent.fail_open 5
	js=$(status)
	check "status's heartbeat age says why" truthful "$js"
	check_eq "status names no agent (the killed one holds no lock)" "$(jqr "$js" .agent.pid)" 0
	check_eq "a new client is admitted" "$(once)" ok

	bg_srv "$LOADSHED" -v agent "$SRV_IF" 2>"$LS_TMP/agent2.log"
	new=$!
	check "a new agent starts: the killed one's lock is free" \
		wait_for_line "$LS_TMP/agent2.log" "agent running" 10
	check "it stamps the heartbeat" wait_status '.agent.fail_open | not' 5
	js=$(status)
	check_eq "status names it" "$(jqr "$js" .agent.pid)" "$new"
	check "status agrees with itself" truthful "$js"
	check_eq "it keeps the pinned limit" "$(jqr "$js" '.services[0].limit')" 2
	check_eq "shedding is back" "$(once)" refused
}

# t_clock_shifted_agent OFFSET_S: the agent runs in a time namespace whose
# monotonic and boottime clocks are OFFSET_S off the host's
# (/proc/PID/timens_offsets). The heartbeat is stamped in the kernel's clock,
# so a healthy agent keeps the dataplane enforcing, a killed one makes it fail
# open after fail_open_after, and status's heartbeat age is never absurd.
t_clock_shifted_agent() {
	local off=$1 i pid js ush bad=0 up
	# A time namespace's clocks may not go below 0: -100 s needs 100 s of uptime.
	up=$(cut -d. -f1 /proc/uptime)
	if [ "$off" -lt 0 ] && [ $((up + off)) -lt 10 ]; then
		skip_this_test "the host has been up ${up} s: an offset of $off s is refused"
	fi
	if ! unshare --time --monotonic "$off" --boottime "$off" --fork true 2>"$LS_TMP/unshare.err"; then
		skip_this_test "no time namespace with offset $off s: $(cat "$LS_TMP/unshare.err")"
	fi
	traffic_up || return 1
	FAIL_OPEN_AFTER=2s write_conf "$LS_TMP/f.conf"
	check "attach without an agent" ls_attach "$SRV_IF" --config "$LS_TMP/f.conf" --no-agent
	bg_srv unshare --time --monotonic "$off" --boottime "$off" --fork \
		"$LOADSHED" -v agent "$SRV_IF" 2>"$LS_TMP/agent.log"
	ush=$!
	check "the agent starts in the time namespace" wait_for_line "$LS_TMP/agent.log" "agent running" 10
	pid=$(st .agent.pid)
	check_eq "its monotonic and boottime clocks are $off s off" \
		"$(awk '{ printf "%s %s ", $1, $2 }' "/proc/$pid/timens_offsets")" \
		"monotonic $off boottime $off "
	check "its heartbeat is fresh" wait_status '.agent.fail_open | not' 5
	hold 2 10.201.0.2 "$LS_TMP/held.out"
	# Longer than fail_open_after: a heartbeat in the agent's clock would show.
	for i in $(seq 8); do
		js=$(status)
		truthful "$js" >/dev/null && [ "$(jqr "$js" .agent.enforcing)" = true ] || bad=$((bad + 1))
		sleep 0.4
	done
	check_eq "for 3 s, every status: enforcing, with a true heartbeat age" "$bad" 0
	check "status run with the same shifted clocks says the same" \
		truthful "$(in_srv unshare --time --monotonic "$off" --boottime "$off" --fork \
			"$LOADSHED" -j status "$SRV_IF")"
	check_eq "a new client is shed" "$(once)" refused
	check_eq "nothing was admitted as fail-open" "$(st '.services[0].classes[0].fail_open')" 0

	kill -KILL "$pid"
	wait "$ush" 2>/dev/null
	check "just after the kill, status agrees with itself" truthful "$(status)"
	check "the dataplane fails open after fail_open_after (2 s)" wait_status .agent.fail_open 6
	js=$(status)
	check_eq "status: fail-open, heartbeat at least 2 s old and not absurd" \
		"$(jqr "$js" '.agent | .fail_open and .heartbeat_age_ms >= 2000 and .heartbeat_age_ms < 600000')" true
	check_eq "a new client is admitted" "$(once)" ok
}

# The flow table fills while failing open: what does not fit is admitted
# untracked (§4.9), what fits counts in flight far past L. Back with its
# agent, the dataplane sheds new clients until the sweep ends the idle flows
# (§5.3, §7.5); then it admits again, and a connection left untracked is
# decided and tracked at its first request (§4.6).
t_full_table_during_fail_open() {
	local pid js max n late admitted
	traffic_up || return 1
	IDLE=10s write_conf "$LS_TMP/f.conf"
	attach_faults --max-flows 1024
	max=$(st .max_flows)
	check_eq "the flow table holds 1024 flows" "$max" 1024
	pid=$(st .agent.pid)
	kill -STOP "$pid"
	defer resume "$pid"
	check "the dataplane fails open" wait_status .agent.fail_open 5
	n=1200
	hold $n 10.201.0.2 "$LS_TMP/held.out"
	check_eq "all $n connections are admitted while failing open" \
		"$(grep '^ok=' "$LS_TMP/held.out")" "ok=$n refused=0 timeout=0 error=0"
	# One more, left untracked, which sends a request once told to.
	bg_cli bash -c "exec 3<>/dev/tcp/$SRV/$PORT || exit 1; echo connected
		for i in \$(seq 300); do [ -e '$LS_TMP/go' ] && break; sleep 0.1; done
		printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3; echo sent; sleep 60" >"$LS_TMP/late.out" 2>&1
	late=$!
	wait_for_line "$LS_TMP/late.out" connected 5
	n=$((n + 1))
	js=$(status)
	check_eq "the flow table is full" "$(jqr "$js" .flows)" "$max"
	check_eq "the rest were admitted untracked" "$(jqr "$js" '.services[0].classes[0].untracked')" $((n - max))
	check_eq "only tracked connections count in flight" "$(jqr "$js" '.services[0].inflight')" "$max"
	check_cmp "every one was counted fail_open" "$(jqr "$js" '.services[0].classes[0].fail_open')" -ge $n

	kill -CONT "$pid"
	check "the agent's heartbeat is back" wait_status '.agent.fail_open | not' 5
	check_eq "with $max in flight over a limit of 2, a new client is shed" "$(once)" refused
	check "the sweep ends the idle flows (idle timeout 10 s)" \
		wait_status '.flows == 0 and .services[0].inflight == 0 and .services[0].connections == 0' 25
	js=$(status)
	check_eq "each ended once, as idle" "$(jqr "$js" '.services[0].classes[0].ended_idle')" "$max"
	check_eq "new clients are admitted again" "$(once)" ok
	admitted=$(st '.services[0].classes[0].admitted')
	touch "$LS_TMP/go"
	wait_for_line "$LS_TMP/late.out" sent 5
	# It has received nothing yet: new work, decided as at its handshake (§4.6).
	check "a connection left untracked is tracked and admitted at its first request" \
		wait_status ".flows == 1 and .services[0].classes[0].admitted == $((admitted + 1))" 5
	check_eq "and counts in flight" "$(st '.services[0].inflight')" 1
	kill "$late" "$HOLDER"
	wait "$late" "$HOLDER" 2>/dev/null
	check "when every client has closed, in-flight is 0, never below" \
		wait_status '.flows == 0 and .services[0].inflight == 0 and .services[0].connections == 0' 5
}

# An aborted request's server socket is destroyed by the agent (sock_diag,
# §4.4), by its 4-tuple. When the agent gets to it late (it was stopped, or
# restarted, meanwhile) that socket may be gone already: what it destroys
# then must not be another socket of the server, such as its listener.
# server_conns: the client ports of the server's established connections.
server_conns() { in_srv ss -Htn state established "( sport = :$PORT )" | awk '{ sub(/.*:/, "", $4); print $4 }'; }

t_late_abort_leaves_the_listener_alone() {
	local pid js half aborted
	traffic_up || return 1
	cat >"$LS_TMP/f.conf" <<END
[agent]
interval = 100ms
fail_open_after = off

[service web]
listen = *:$PORT
limit = 1
admit = requests

[class web.all]
share = 0%
request_action = abort
match = src 10.201.0.0/24
END
	WHAT="limit 1 on requests, abort, no fail-open" attach_faults
	# Half a request head: the hold server waits for the rest, the slot stays taken.
	bg_cli bash -c "exec 3<>/dev/tcp/$SRV/$PORT || exit 1; printf 'GET / HTTP/1.1\r\n' >&3
		echo sent; sleep 60" >"$LS_TMP/half.out" 2>&1
	wait_for_line "$LS_TMP/half.out" sent 5
	check "a half request holds the only slot" wait_status '.services[0].inflight == 1' 5
	half=$(server_conns)
	pid=$(st .agent.pid)
	kill -STOP "$pid"
	defer resume "$pid"
	# A full request from another client: over the limit, aborted (a RST to
	# the client; the agent is to close the server's socket).
	in_cli bash -c "exec 3<>/dev/tcp/$SRV/$PORT || exit 1; printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3
		timeout 2 cat <&3 >/dev/null; echo done" >"$LS_TMP/aborted.out" 2>&1
	check_eq "the request is aborted" "$(st '.services[0].classes[0].aborted')" 1
	aborted=$(server_conns | grep -vxF "$half")
	check_eq "the server still has its connection" "$(wc -w <<<"$aborted")" 1
	# The server's socket goes before the agent gets to it.
	in_srv ss -K -tn state established "( sport = :$PORT and dport = :$aborted )" >/dev/null
	check_eq "it is gone" "$(server_conns | grep -cxF "$aborted")" 0
	kill -CONT "$pid"
	sleep 1
	js=$(status)
	check_eq "the agent is running" "$(jqr "$js" '.agent.pid > 0')" true
	check "the server still listens" \
		bash -c "nsenter --net=/run/netns/$SRV_NS ss -Hltn 'sport = :$PORT' | grep -q LISTEN"
	check_eq "a new client connects" "$(once)" ok
}

# --- reloads that race -------------------------------------------------------------------

# reload_conf FILE A|B: two policies that differ in every field status shows.
reload_conf() {
	if [ "$2" = A ]; then
		set -- "$1" 100ms 2s aimd backoff_ratio=0.7 11 false 500 30% reset 0% drop
	else
		set -- "$1" 200ms 3s vegas alpha=3,beta=6 22 true 900 60% drop 10% reset
	fi
	cat >"$1" <<END
[agent]
interval = $2
fail_open_after = $3

[service web]
listen = *:8080
algorithm = $4
params = $5
limit = $6
shadow = $7
max_connections = $8

[class web.gold]
share = $9
action = ${10}
match = src 10.1.0.0/16

[class web.lead]
share = ${11}
action = ${12}
match = src 10.2.0.0/16
END
}

# policy_of NS [agent]: what status shows of the policy, as one line; with
# "agent", also the agent's settings, which its next round takes.
policy_of() {
	ls_ns "$1" -j status "$IF" | jq -c --arg with "${2:-}" '[
		(if $with == "agent" then .agent.failopen_after_ms else null end),
		(.services[] | [.name, .algorithm, .params, .limit, .pinned, .shadow, .admit,
			.max_connections, (.classes[] | [.name, .share_pct, .action, .guarantee])])]'
}

# one_of X A B: X is A or B.
one_of() { [ "$1" = "$2" ] || [ "$1" = "$3" ] || { echo "neither: $1"; return 1; }; }
differ() { [ "$1" != "$2" ]; }
not_in_file() { ! grep -q "$1" "$2"; }
# only_lines FILE A B: every line of FILE is A or B.
only_lines() { ! grep -vxF -e "$2" -e "$3" "$1"; }

# Two `policy reload`s at once, and a reload next to a SIGHUP to the agent:
# the lock serialises them, so every status, during and after, shows one
# file's policy whole, and each command says plainly how it ended.
t_reloads_that_race_end_with_one_policy() {
	local a=lsfp$$ pa pb i p1 p2 rc1 rc2 fa fb fa_core fb_core got pid hups won_a=0 won_b=0
	ns_up "$a" || { not_ok "a namespace comes up"; return; }
	reload_conf "$LS_TMP/a.conf" A
	reload_conf "$LS_TMP/b.conf" B
	sed 's/^share = 30%/share = 300%/' "$LS_TMP/a.conf" >"$LS_TMP/c.conf"
	defer nsenter --net="/run/netns/$a" "$LOADSHED" detach "$IF"
	check "attach with policy A" ls_ns "$a" -v attach "$IF" --config "$LS_TMP/a.conf" \
		--agent-log "$LS_TMP/agent.log"
	check "reload B" ls_ns "$a" policy "$IF" reload "$LS_TMP/b.conf"
	sleep 0.5
	fb=$(policy_of "$a" agent)
	fb_core=$(policy_of "$a")
	check "reload A" ls_ns "$a" policy "$IF" reload "$LS_TMP/a.conf"
	sleep 0.5
	fa=$(policy_of "$a" agent)
	fa_core=$(policy_of "$a")
	check "the two policies look different in status" differ "$fa" "$fb"

	: >"$LS_TMP/rcs"
	: >"$LS_TMP/seen"
	for i in $(seq 12); do
		if [ $((i % 2)) = 0 ]; then pa=a pb=b; else pa=b pb=a; fi
		ls_ns "$a" policy "$IF" reload "$LS_TMP/$pa.conf" >"$LS_TMP/r1.out" 2>&1 &
		p1=$!
		track_pid "$p1"
		ls_ns "$a" policy "$IF" reload "$LS_TMP/$pb.conf" >"$LS_TMP/r2.out" 2>&1 &
		p2=$!
		track_pid "$p2"
		policy_of "$a" >>"$LS_TMP/seen"
		rc1=0
		wait "$p1" || rc1=$?
		rc2=0
		wait "$p2" || rc2=$?
		echo "$rc1 $rc2" >>"$LS_TMP/rcs"
		got=$(policy_of "$a")
		echo "$got" >>"$LS_TMP/seen"
		if [ "$got" = "$fa_core" ]; then won_a=$((won_a + 1)); else won_b=$((won_b + 1)); fi
	done
	echo "# concurrent reloads: A last $won_a times, B last $won_b times"
	check_eq "every concurrent reload exits 0" "$(sort -u "$LS_TMP/rcs" | tr '\n' ' ')" "0 0 "
	check "every status, during and after, shows A or B whole" \
		only_lines "$LS_TMP/seen" "$fa_core" "$fb_core"
	sleep 0.5
	check "and the agent's settings follow the last one" one_of "$(policy_of "$a" agent)" "$fa" "$fb"

	# A file with an error next to a good one: the bad one changes nothing.
	ls_ns "$a" policy "$IF" reload "$LS_TMP/b.conf" >/dev/null
	ls_ns "$a" policy "$IF" reload "$LS_TMP/c.conf" >"$LS_TMP/c.out" 2>&1 &
	p1=$!
	track_pid "$p1"
	ls_ns "$a" policy "$IF" reload "$LS_TMP/a.conf" >"$LS_TMP/a.out" 2>&1 &
	p2=$!
	track_pid "$p2"
	rc1=0
	wait "$p1" || rc1=$?
	rc2=0
	wait "$p2" || rc2=$?
	check_eq "next to a good reload, a bad file is a usage error (2); the good one exits 0" \
		"$rc1 $rc2" "2 0"
	check "the bad one says why" grep -q "share" "$LS_TMP/c.out"
	sleep 0.5
	check_eq "and the policy is the good file's" "$(policy_of "$a" agent)" "$fa"

	# SIGHUP reloads the attach file (A) while `policy reload B` runs; the
	# signal comes at once or 50 ms later, so that either may come last.
	pid=$(ls_ns "$a" -j status "$IF" | jq -r .agent.pid)
	: >"$LS_TMP/seen"
	won_a=0
	won_b=0
	for i in $(seq 8); do
		hups=$(grep -c "reloaded $LS_TMP/a.conf" "$LS_TMP/agent.log")
		ls_ns "$a" policy "$IF" reload "$LS_TMP/b.conf" >"$LS_TMP/r1.out" 2>&1 &
		p1=$!
		track_pid "$p1"
		[ $((i % 2)) = 0 ] && sleep 0.05
		kill -HUP "$pid"
		rc1=0
		wait "$p1" || rc1=$?
		for _ in $(seq 50); do
			[ "$(grep -c "reloaded $LS_TMP/a.conf" "$LS_TMP/agent.log")" -gt "$hups" ] && break
			sleep 0.1
		done
		got=$(policy_of "$a")
		echo "$rc1 $got" >>"$LS_TMP/seen"
		if [ "$got" = "$fa_core" ]; then won_a=$((won_a + 1)); else won_b=$((won_b + 1)); fi
	done
	echo "# SIGHUP next to reload B: A last $won_a times, B last $won_b times"
	check_eq "the agent reloaded on every SIGHUP" \
		"$(grep -c "reloaded $LS_TMP/a.conf" "$LS_TMP/agent.log")" 8
	check "every reload next to a SIGHUP exits 0 and leaves A or B whole" \
		only_lines "$LS_TMP/seen" "0 $fa_core" "0 $fb_core"
	check "the agent logged no failed reload" not_in_file "reload failed" "$LS_TMP/agent.log"
}

require_root
require_cmds jq ip nsenter unshare
run_test "one interface name in two namespaces: two attachments" t_one_name_two_namespaces
run_test "nothing acts across namespaces" t_no_action_across_namespaces
run_test "a deleted interface is noticed; attach works again" t_deleted_interface_is_noticed
run_test "an interface made again at once is noticed" t_interface_made_again_at_once_is_noticed
run_test "an interface made again with its old ifindex is noticed" \
	t_interface_made_again_with_its_index_is_noticed
run_test "stale pins are replaced at attach" t_stale_pins_are_replaced_at_attach
run_test "the agent's liveness is its lock" t_agent_liveness_is_its_lock
run_test "a hung agent fails open; resumed, it sheds again" t_hung_agent_fails_open_and_resumes
run_test "a killed agent fails open; a new one takes over" \
	t_killed_agent_fails_open_and_a_new_one_takes_over
run_test "an agent 10 years ahead: enforcing while it lives, fail-open when killed" \
	t_clock_shifted_agent 315360000
run_test "an agent 100 s behind: enforcing while it lives, fail-open when killed" \
	t_clock_shifted_agent -100
run_test "a table filled while failing open is swept back" t_full_table_during_fail_open
run_test "an abort handled late leaves the server's listener alone" \
	t_late_abort_leaves_the_listener_alone
run_test "reloads that race end with one policy, whole" t_reloads_that_race_end_with_one_policy
tap_done
