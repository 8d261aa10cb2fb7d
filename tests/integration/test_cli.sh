#!/usr/bin/env bash
# The CLI on a real interface with real traffic: attach, limits, shedding by
# class (drop and reset), status against bpftool, reload, detach, IPv6.
# Needs root. The testbed and a holding server are shared; each test makes
# its own attachment and connections, and its cleanup removes them.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

PORT=8080
HIGH=10.201.0.2
LOW=10.201.0.3

conn() { # conn SRC TARGET COUNT: opens COUNT connections, prints the summary line
	in_cli "$LS_TOOLS/ls-conn" --target "$2" --src "$1" --count "$3" --connect-timeout-ms 1500 \
		--hold-s 0 </dev/null | grep '^ok=' | sed 's/ error=0$//'
}

# Holds COUNT connections from SRC open in the background until killed.
hold() { # hold SRC TARGET COUNT OUTFILE
	bg_cli "$LS_TOOLS/ls-conn" --target "$2" --src "$1" --count "$3" \
		--connect-timeout-ms 1500 --hold-s 60 >"$4" </dev/null
}
# The summary line of a holder's output.
summary() { grep '^ok=' "$1" | sed 's/ error=0$//'; }

status_json() { ls_srv -j status "$SRV_IF"; }
class_field() { # class_field JSON CLASS FIELD
	jq -r --arg c "$2" ".services[0].classes[] | select(.name == \$c) | .$3" <<<"$1"
}
no_xdp_on_server_if() { ! ip -n "$SRV_NS" link show dev "$SRV_IF" | grep -q xdp; }

# Limit 4; high has a guarantee of 2 and is reset, low has none and is dropped.
attach_two_classes() {
	check "attach with a pinned limit and two classes" ls_attach "$SRV_IF" --port $PORT --limit 4 \
		--class high=50%,reset,src=$HIGH/32+fd00:201::2/128 \
		--class low=0%,drop,src=$LOW/32+fd00:201::3/128
}

# Holds 4 low connections (the whole limit); $LOW_PID is the holder.
hold_four_low() {
	hold $LOW 10.201.0.1:$PORT 4 "$LS_TMP/low.out"
	LOW_PID=$!
	wait_for_line "$LS_TMP/low.out" "ok=" 15
	check_eq "4 low connections are admitted under limit 4" "$(summary "$LS_TMP/low.out")" \
		"ok=4 refused=0 timeout=0"
}

# Holds 2 high connections (its guarantee) past the limit; $HIGH_PID is the holder.
hold_two_high() {
	hold $HIGH 10.201.0.1:$PORT 2 "$LS_TMP/high.out"
	HIGH_PID=$!
	wait_for_line "$LS_TMP/high.out" "ok=" 15
	check_eq "high (guarantee 2) is admitted while the total is at the limit" \
		"$(summary "$LS_TMP/high.out")" "ok=2 refused=0 timeout=0"
}

setup_suite() {
	testbed_up "cli$$" || return 1
	bg_srv "$LS_TOOLS/ls-server" --listen 0.0.0.0:$PORT --listen "[::]:$PORT" --hold \
		>"$LS_TMP/server.log" 2>&1
	wait_for_line "$LS_TMP/server.log" listening 10
}

test_rejected_attaches_change_nothing() {
	ls_attach nosuchif0 --port $PORT --limit 4 >/dev/null 2>&1
	check_eq "attach to a missing interface fails with a runtime error" "$?" 1
	check "a failed attach leaves no pin directory" test ! -e "$(pin_dir nosuchif0)"

	ls_attach "$SRV_IF" --port $PORT --limit 4 --class high=20%,drop,src=10.1.0.0/33 >/dev/null 2>&1
	check_eq "a bad prefix is a usage error" "$?" 2
	ls_attach "$SRV_IF" --port $PORT --limit 4 --class a=60% --class b=50% >/dev/null 2>&1
	check_eq "shares over 100 % are a usage error" "$?" 2
	ls_attach "$SRV_IF" --port $PORT --frobnicate >/dev/null 2>&1
	check_eq "an unknown option is a usage error" "$?" 2
	ls_attach "$SRV_IF" --port 70000 >/dev/null 2>&1
	check_eq "a port out of range is a usage error" "$?" 2
	check "rejected attaches leave nothing on the interface" test ! -e "$(pin_dir "$SRV_IF")"
	check "no XDP program after rejected attaches" no_xdp_on_server_if
}

test_fixed_limit_sheds_each_class_its_way() {
	local js dump low_slot bt_admitted
	attach_two_classes
	check "the pin directory is private (0700)" test "$(stat -c %a "$(pin_dir "$SRV_IF")")" = 700
	ls_srv attach "$SRV_IF" --port $PORT --limit 4 >/dev/null 2>&1
	check_eq "attaching twice is an error" "$?" 1
	check "list shows the interface, in this namespace" \
		bash -c "nsenter --net=/run/netns/$SRV_NS $LOADSHED -j list | jq -e '.attachments[] | select(.ifname == \"$SRV_IF\" and .here and (.stale | not))'"

	hold_four_low
	check_eq "the 5th low connection is dropped: connect times out" "$(conn $LOW 10.201.0.1:$PORT 1)" \
		"ok=0 refused=0 timeout=1"
	hold_two_high
	check_eq "high over its guarantee is reset: ECONNREFUSED at once" \
		"$(conn $HIGH 10.201.0.1:$PORT 1)" "ok=0 refused=1 timeout=0"

	js=$(status_json)
	check_eq "status: service in-flight is 6" "$(jq -r '.services[0].inflight' <<<"$js")" 6
	check_eq "status: low in-flight 4" "$(class_field "$js" low inflight)" 4
	check_eq "status: high in-flight 2" "$(class_field "$js" high inflight)" 2
	check_cmp "status: low shed by drop (SYN retransmits pass as retransmits)" \
		"$(class_field "$js" low shed_drop)" -ge 1
	check_eq "status: high shed by reset once" "$(class_field "$js" high shed_reset)" 1
	check_eq "status: limit 4, pinned" \
		"$(jq -r '.services[0].limit,.services[0].pinned' <<<"$js" | tr '\n' ' ')" "4 true "

	# The same numbers through bpftool, from the BTF-typed pinned maps.
	dump=$(bpftool -j map dump pinned "$(pin_dir "$SRV_IF")/class_stats")
	low_slot=$(class_field "$js" low slot)
	bt_admitted=$(jq -r --argjson k "$low_slot" \
		'[.[] | select(.formatted.key == $k) | .formatted.values[].value.admitted] | add' <<<"$dump")
	check_eq "bpftool's class_stats dump names fields and matches status" \
		"$bt_admitted" "$(class_field "$js" low admitted)"
	check "bpftool shows the inflight map with field names" \
		bash -c "bpftool map dump pinned $(pin_dir "$SRV_IF")/inflight | grep -q '\"total\": 6'"
}

# Live policy reload keeps the flows and counters: shares change, in-flight stays.
test_policy_reload_keeps_flows_and_counters() {
	local js
	attach_two_classes
	hold_four_low
	hold_two_high
	check_eq "high over its guarantee is reset before the reload" \
		"$(conn $HIGH 10.201.0.1:$PORT 1)" "ok=0 refused=1 timeout=0"
	cat >"$LS_TMP/reload.conf" <<EOF
[service main]
listen = *:$PORT
limit = 4

[class main.low]
share = 0%
action = drop
match = src $LOW/32,fd00:201::3/128

[class main.high]
share = 75%
action = reset
match = src $HIGH/32,fd00:201::2/128
EOF
	check "policy reload swaps the policy" ls_srv policy "$SRV_IF" reload "$LS_TMP/reload.conf"
	js=$(status_json)
	check_eq "after reload: in-flight kept" "$(jq -r '.services[0].inflight' <<<"$js")" 6
	check_eq "after a reload that reorders classes, in-flight stays with the names" \
		"$(class_field "$js" high inflight) $(class_field "$js" low inflight)" "2 4"
	check_eq "after reload: high guarantee is ceil(4 * 0.75) = 3" "$(class_field "$js" high guarantee)" 3
	check_eq "after reload: counters kept" "$(class_field "$js" high shed_reset)" 1
	check_eq "a 3rd high connection is now admitted" "$(conn $HIGH 10.201.0.1:$PORT 1)" \
		"ok=1 refused=0 timeout=0"
}

test_bad_policy_reload_changes_nothing() {
	local before
	attach_two_classes
	before=$(class_field "$(status_json)" high guarantee)
	check_eq "high's guarantee is ceil(4 * 0.5) = 2" "$before" 2
	cat >"$LS_TMP/bad.conf" <<EOF
[service main]
listen = *:$PORT
[class main.x]
share = 150%
EOF
	ls_srv policy "$SRV_IF" reload "$LS_TMP/bad.conf" >/dev/null 2>&1
	check_eq "a bad reload is a usage error" "$?" 2
	check_eq "a bad reload changes nothing" "$(class_field "$(status_json)" high guarantee)" "$before"
}

test_limit_set_changes_the_limit() {
	attach_two_classes
	check "limit set changes the limit" ls_srv limit "$SRV_IF" set 10
	check_eq "status shows the new limit" "$(status_json | jq -r '.services[0].limit')" 10
}

# Closing every connection ends every flow: in-flight back to 0.
test_closing_connections_ends_every_flow() {
	local js
	attach_two_classes
	hold_four_low
	hold_two_high
	check_eq "status: service in-flight is 6 while held" "$(status_json | jq -r '.services[0].inflight')" 6
	kill "$LOW_PID" "$HIGH_PID" 2>/dev/null
	wait "$LOW_PID" "$HIGH_PID" 2>/dev/null
	for _ in $(seq 30); do
		[ "$(status_json | jq -r '.services[0].inflight')" = 0 ] && break
		sleep 0.1
	done
	js=$(status_json)
	check_eq "after closing, in-flight is 0" "$(jq -r '.services[0].inflight' <<<"$js")" 0
	check_eq "after closing, the flow table is empty" "$(jq -r '.flows' <<<"$js")" 0
}

test_ipv6_is_limited_and_classified() {
	attach_two_classes
	check "limit set 1" ls_srv limit "$SRV_IF" set 1
	hold fd00:201::3 "[fd00:201::1]:$PORT" 1 "$LS_TMP/v6.out"
	wait_for_line "$LS_TMP/v6.out" "ok=" 15
	check_eq "IPv6: one low connection admitted under limit 1" "$(summary "$LS_TMP/v6.out")" \
		"ok=1 refused=0 timeout=0"
	check_eq "IPv6: the next low connection is dropped" "$(conn fd00:201::3 "[fd00:201::1]:$PORT" 1)" \
		"ok=0 refused=0 timeout=1"
	check_eq "IPv6: high gets its guarantee" "$(conn fd00:201::2 "[fd00:201::1]:$PORT" 1)" \
		"ok=1 refused=0 timeout=0"
}

test_detach_leaves_nothing_and_reattach_works() {
	local prog_ids progs id
	attach_two_classes
	# The programs attach loaded, by id, must be gone once detach returns.
	prog_ids=$(for l in link_xdp link_tc; do
		bpftool -j link show pinned "$(pin_dir "$SRV_IF")/$l" | jq -r .prog_id
	done)
	check_cmp "the links name their programs" "$(wc -w <<<"$prog_ids")" -eq 2
	check "detach" ls_srv detach "$SRV_IF"
	check "detach leaves no pins" test ! -e "$(pin_dir "$SRV_IF")"
	progs=1
	for _ in $(seq 40); do
		progs=0
		for id in $prog_ids; do
			bpftool prog show id "$id" >/dev/null 2>&1 && progs=$((progs + 1))
		done
		[ "$progs" = 0 ] && break
		sleep 0.1
	done
	check_eq "detach leaves no links or programs loaded" "$progs" 0
	check "detach removes the XDP program" no_xdp_on_server_if
	check_eq "detach leaves no clsact qdisc" "$(tc -n "$SRV_NS" qdisc show dev "$SRV_IF" | grep -c clsact)" 0
	check "detach twice is harmless" ls_srv detach "$SRV_IF"
	check "re-attach works" ls_attach "$SRV_IF" --port $PORT --limit 2
	check_eq "after re-attach a connection is admitted" "$(conn $LOW 10.201.0.1:$PORT 1)" \
		"ok=1 refused=0 timeout=0"
	check "detach again" ls_srv detach "$SRV_IF"
}

require_root
require_cmds jq bpftool nsenter ip tc
suite_setup setup_suite
# Pins of another layout version are never read, only taken down.
test_pins_of_another_layout_are_refused() {
	local out rc dir=$(pin_dir "$SRV_IF")
	check "attach" ls_attach "$SRV_IF" --port $PORT --limit 4
	check "the layout version is pinned with the maps" \
		bash -c "bpftool -j map dump pinned $dir/layout | jq -e '.[0].formatted.value.version == $("$LOADSHED" -j version | jq .layout)'"
	bpftool map update pinned "$dir/layout" key 0 0 0 0 value 99 0 0 0 0 0 0 0
	out=$(ls_srv status "$SRV_IF" 2>&1)
	rc=$?
	check_eq "status refuses pins of layout 99, naming both versions" "$rc:$out" \
		"1:loadshed: $SRV_IF: pinned by a loadshed of layout 99, this one reads layout $("$LOADSHED" -j version | jq .layout): detach, then attach again"
	ls_srv limit "$SRV_IF" set 3 >/dev/null 2>&1
	check_eq "limit set refuses them too" "$?" 1
	check "detach still takes them down" ls_srv detach "$SRV_IF"
	check "and leaves no pins" test ! -e "$dir"
	check "nor an XDP program" no_xdp_on_server_if
}

# An agent log that cannot be opened fails the attach: the agent never keeps
# the caller's stderr instead (a $(loadshed attach ... 2>&1) would not return).
test_agent_log_that_cannot_be_opened() {
	local rc
	ls_attach "$SRV_IF" --port $PORT --agent-log "$LS_TMP/no/such/dir/agent.log" \
		>"$LS_TMP/out" 2>&1
	rc=$?
	check_eq "an agent log that cannot be opened fails the attach" "$rc" 1
	check "and the error names it" \
		grep -q "no/such/dir/agent.log: No such file or directory" "$LS_TMP/out"
	check "nothing is left attached" test ! -e "$(pin_dir "$SRV_IF")"
	check "nor an XDP program" no_xdp_on_server_if
}

# Each pinned map is checked for its type, key and value size before it is
# read: a lookup writes value_size bytes per CPU, a walk key_size per key.
# A map of another shape is another layout's, refused, and detach removes it.
refused_then_detached() { # refused_then_detached WHAT MAP CREATE_ARGS...
	local what=$1 map=$2 out rc dir=$(pin_dir "$SRV_IF")
	shift 2
	ls_attach "$SRV_IF" --port $PORT --limit 4 --no-agent || return 1
	rm "$dir/$map"
	bpftool map create "$dir/$map" "$@" name "ls_$map"
	# shellcheck disable=SC2046 # one word per byte of the value
	[ "$map" != layout ] || bpftool map update pinned "$dir/layout" key 0 0 0 0 \
		value 99 0 0 0 $(printf '0 %.0s' $(seq 4092))
	out=$(ls_srv status "$SRV_IF" 2>&1)
	rc=$?
	check_eq "status refuses $what" "$rc:$out" "1:loadshed: $SRV_IF: $EXPECTED"
	ls_srv limit "$SRV_IF" set 3 >/dev/null 2>&1
	check_eq "limit set refuses $what" "$?" 1
	check "detach removes $what" ls_srv detach "$SRV_IF"
	check "and leaves no pins" test ! -e "$dir"
	check "nor an XDP program" no_xdp_on_server_if
}

test_maps_of_another_shape_are_refused() {
	local layout
	layout=$("$LOADSHED" -j version | jq .layout)
	EXPECTED="pinned by a loadshed of layout 99, this one reads layout $layout: detach, then attach again"
	refused_then_detached "a larger layout map of layout 99" layout \
		type array key 4 value 4096 entries 1
	EXPECTED="a pinned map is missing or not of the type or size layout $layout has: detach, then attach again"
	refused_then_detached "a state map of the right value size but per-CPU" state \
		type percpu_array key 4 value 24 entries 1
	refused_then_detached "a flow table with keys of another size" flows \
		type hash key 64 value 32 entries 1024
}

# An attachment with a map pin missing is not one this build can read:
# every command refuses it, and detach still takes it down.
test_a_missing_map_is_refused_and_detached() {
	local out rc pid layout dir=$(pin_dir "$SRV_IF")
	layout=$("$LOADSHED" -j version | jq .layout)
	check "attach" ls_attach "$SRV_IF" --port $PORT --limit 4
	pid=$(ls_srv -j status "$SRV_IF" | jq -r .agent.pid)
	rm "$dir/limits"
	out=$(ls_srv status "$SRV_IF" 2>&1)
	rc=$?
	check_eq "status refuses an attachment with a map missing" "$rc:$out" \
		"1:loadshed: $SRV_IF: a pinned map is missing or not of the type or size layout $layout has: detach, then attach again"
	out=$(ls_srv -j detach "$SRV_IF")
	check_eq "detach takes it down" "$(jq -r .detached <<<"$out")" true
	check "and leaves no pins" test ! -e "$dir"
	check "nor an XDP program" no_xdp_on_server_if
	for _ in $(seq 30); do
		[ -d "/proc/$pid" ] || break
		sleep 0.1
	done
	check "its agent stops" test ! -d "/proc/$pid"
}

# A pin directory that holds any pin is an attachment, whole or not: attach
# refuses it (rather than load over its maps and, failing, unpin its links).
test_attach_over_a_partial_attachment_is_refused() {
	local out rc dir=$(pin_dir "$SRV_IF")
	check "attach" ls_attach "$SRV_IF" --port $PORT --limit 4 --no-agent
	rm "$dir/state"
	out=$(ls_attach "$SRV_IF" --port $PORT --limit 4 --no-agent 2>&1)
	rc=$?
	check_eq "attach over a pin directory with a map missing is refused" "$rc:$out" \
		"1:loadshed: $SRV_IF: already attached (loadshed detach $SRV_IF first)"
	check "the links it holds stay pinned" test -e "$dir/link_xdp"
	check "detach removes it" ls_srv detach "$SRV_IF"
	check "and leaves no pins" test ! -e "$dir"
	check "nor an XDP program" no_xdp_on_server_if
}

# The strings of a map value (names, parameters, the config path) are read
# as ending inside it, whatever bytes another writer left there.
test_status_on_a_record_of_garbage() {
	local out rc dir=$(pin_dir "$SRV_IF")
	check "attach" ls_attach "$SRV_IF" --port $PORT --limit 4 --no-agent
	# shellcheck disable=SC2046 # one word per byte of the value
	bpftool map update pinned "$dir/config" key 0 0 0 0 \
		value $(printf '0xff %.0s' $(seq "$(bpftool -j map show pinned "$dir/config" | jq .bytes_value)"))
	out=$(ls_srv -j status "$SRV_IF" 2>"$LS_TMP/err")
	rc=$?
	check_eq "status reads a service record of 0xff bytes, its name cut at 31" \
		"$rc:$(jq -r '.services[0].name | length' <<<"$out")" "0:31"
	check "without a sanitizer report" test ! -s "$LS_TMP/err"
	check "detach" ls_srv detach "$SRV_IF"
}

# limit algo is checked as the agent will run it: with the service's limits.
test_limit_algo_is_checked_with_the_service_limits() {
	local out rc
	check "attach with min_limit 50" ls_attach "$SRV_IF" --port $PORT --min-limit 50 --no-agent
	out=$(ls_srv limit "$SRV_IF" algo aimd max_limit=30 2>&1)
	rc=$?
	check_eq "limit algo refuses a max_limit below the service's min_limit" "$rc:$out" \
		"2:loadshed: service main: aimd: min_limit 50 is above max_limit 30"
	check_eq "and changes nothing" \
		"$(ls_srv -j status "$SRV_IF" | jq -r '.services[0].algorithm')" delay
}

# The pin directory is loadshed's: detach removes it whole, a pin it did not
# make included, so that attach finds it free again.
test_detach_removes_a_foreign_pin_too() {
	local out dir=$(pin_dir "$SRV_IF")
	check "attach" ls_attach "$SRV_IF" --port $PORT --limit 4 --no-agent
	bpftool map create "$dir/foreign" type array key 4 value 4 entries 1 name foreign
	out=$(ls_srv -j detach "$SRV_IF")
	check_eq "detach" "$(jq -r .detached <<<"$out")" true
	check "leaves no pin directory" test ! -e "$dir"
	check "attach works again at once" ls_attach "$SRV_IF" --port $PORT --limit 4 --no-agent
}

# SIGHUP reloads the config file by the absolute path recorded at attach; a
# path too long for that record is refused before anything is attached.
test_config_path_too_long_to_record() {
	local d out rc name
	name=$(printf 'd%.0s' $(seq 60))
	d=$LS_TMP/$name/$name/$name/$name/$name
	mkdir -p "$d"
	printf '[service main]\nlisten = *:%s\n' $PORT >"$d/p.conf"
	out=$(ls_attach "$SRV_IF" --config "$d/p.conf" --no-agent 2>&1)
	rc=$?
	check_eq "a config path over 255 bytes is a usage error, said so" "$rc:${out##*: }" \
		"2:a path over 255 bytes cannot be recorded for reload"
	check "and nothing is attached" test ! -e "$(pin_dir "$SRV_IF")"
	check "nor an XDP program" no_xdp_on_server_if
}

run_test "rejected attaches change nothing" test_rejected_attaches_change_nothing
run_test "a fixed limit sheds each class its way" test_fixed_limit_sheds_each_class_its_way
run_test "a policy reload keeps flows and counters" test_policy_reload_keeps_flows_and_counters
run_test "a bad policy reload changes nothing" test_bad_policy_reload_changes_nothing
run_test "limit set changes the limit" test_limit_set_changes_the_limit
run_test "closing connections ends every flow" test_closing_connections_ends_every_flow
run_test "IPv6 is limited and classified" test_ipv6_is_limited_and_classified
run_test "detach leaves nothing and re-attach works" test_detach_leaves_nothing_and_reattach_works
run_test "pins of another layout are refused, and detach removes them" test_pins_of_another_layout_are_refused
run_test "maps of another type or size are refused, and detach removes them" test_maps_of_another_shape_are_refused
run_test "a map missing is refused, and detach removes the rest" test_a_missing_map_is_refused_and_detached
run_test "attach over a partial attachment is refused" test_attach_over_a_partial_attachment_is_refused
run_test "status reads a service record of garbage bytes" test_status_on_a_record_of_garbage
run_test "limit algo is checked with the service's limits" test_limit_algo_is_checked_with_the_service_limits
run_test "detach removes a pin it did not make too" test_detach_removes_a_foreign_pin_too
run_test "a config path too long to record is refused up front" test_config_path_too_long_to_record
run_test "an agent log that cannot be opened fails the attach" test_agent_log_that_cannot_be_opened
tap_done
