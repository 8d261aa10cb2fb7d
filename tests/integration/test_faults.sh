#!/usr/bin/env bash
# Faults around an attachment: the same interface name in two network
# namespaces (attachments are kept per namespace and never reached from
# another), an interface deleted and made again while attached, also between
# two rounds of the agent and with its old ifindex (the agent notices,
# detaches and logs it; attach works again), and agent liveness (the agent
# holds a lock for its life: a second one never starts, whatever its command
# line). Needs root.
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

require_root
require_cmds jq ip nsenter
run_test "one interface name in two namespaces: two attachments" t_one_name_two_namespaces
run_test "nothing acts across namespaces" t_no_action_across_namespaces
run_test "a deleted interface is noticed; attach works again" t_deleted_interface_is_noticed
run_test "an interface made again at once is noticed" t_interface_made_again_at_once_is_noticed
run_test "an interface made again with its old ifindex is noticed" \
	t_interface_made_again_with_its_index_is_noticed
run_test "stale pins are replaced at attach" t_stale_pins_are_replaced_at_attach
run_test "the agent's liveness is its lock" t_agent_liveness_is_its_lock
tap_done
