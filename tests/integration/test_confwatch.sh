#!/usr/bin/env bash
# The agent follows the config file given to attach (design §7.8): a valid
# change is applied, an invalid one is logged and changes nothing, and a
# Kubernetes ConfigMap update (a new timestamped directory, a new ..data
# symlink renamed over the old one, the old directory deleted, as the
# kubelet does it) is followed; attach records the path as given, not its
# realpath. Waits are bounded polls (WAIT_S), never timing assertions; the
# time each change took is printed as a figure.
# Needs root.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

PORT=8080
# Longer than any round, shorter than the 10 s periodic read: a change seen
# within it was seen through inotify.
WAIT_S=5

# conf LIMIT [EXTRA_AGENT_LINE]: a policy whose one service pins LIMIT.
conf() {
	printf '[agent]\ninterval = 100ms\n%s\n\n[service web]\nlisten = *:%s\nlimit = %s\n' \
		"${2:-}" "$PORT" "$1"
}

limit() { ls_srv -j status "$SRV_IF" | jq -r '.services[0].limit'; }

# wait_limit WANT: polls status up to WAIT_S; prints the milliseconds it took.
wait_limit() {
	local start i
	start=$(date +%s%N)
	for i in $(seq $((WAIT_S * 20))); do
		if [ "$(limit)" = "$1" ]; then
			echo "# limit $1 after $((($(date +%s%N) - start) / 1000000)) ms"
			return 0
		fi
		sleep 0.05
	done
	: "$i"
	return 1
}

# attach_watched PATH: attach from PATH with the agent logging to $LS_TMP/agent.log.
attach_watched() {
	check "attach --config $1" ls_attach "$SRV_IF" --config "$1" -v \
		--agent-log "$LS_TMP/agent.log"
	wait_for_line "$LS_TMP/agent.log" "following " 5 ||
		not_ok "the agent follows the file" "$(cat "$LS_TMP/agent.log")"
}

t_valid_change_is_applied() {
	conf 10 >"$LS_TMP/web.conf"
	attach_watched "$LS_TMP/web.conf"
	check_eq "the limit is the file's" "$(limit)" 10
	conf 20 >"$LS_TMP/web.conf" # in place: IN_CLOSE_WRITE
	check "a change written in place is applied (limit 20)" wait_limit 20
	check "the agent says why it reloaded" grep -q "web.conf changed: reloading" "$LS_TMP/agent.log"
	# An editor's way: a new file renamed over the old one.
	conf 30 >"$LS_TMP/web.conf.new" && mv "$LS_TMP/web.conf.new" "$LS_TMP/web.conf"
	check "a new file renamed over it is applied (limit 30)" wait_limit 30
	# Same bytes, or another file in the directory: nothing to reload.
	n=$(grep -c "changed: reloading" "$LS_TMP/agent.log")
	conf 30 >"$LS_TMP/web.conf"
	echo x >"$LS_TMP/other-file"
	conf 40 >"$LS_TMP/web.conf"
	check "then limit 40" wait_limit 40
	check_eq "the same bytes rewritten and another file's change reloaded nothing" \
		"$(grep -c "changed: reloading" "$LS_TMP/agent.log")" $((n + 1))
}

t_invalid_change_is_refused() {
	conf 10 >"$LS_TMP/web.conf"
	attach_watched "$LS_TMP/web.conf"
	# A value out of range, then a file that parses but does not validate.
	conf banana >"$LS_TMP/web.conf"
	check "an invalid file is logged" wait_for_line "$LS_TMP/agent.log" "limit.*banana" "$WAIT_S"
	check_eq "and changes nothing: the limit stays 10" "$(limit)" 10
	printf '[service web]\nlimit = 12\n' >"$LS_TMP/web.conf" # no listen
	check "a file without a listen is logged" wait_for_line "$LS_TMP/agent.log" "listen" "$WAIT_S"
	check_eq "and changes nothing either" "$(limit)" 10
	check "the agent still runs" test "$(ls_srv -j status "$SRV_IF" | jq -r .agent.pid)" -gt 0
	conf 15 >"$LS_TMP/web.conf"
	check "the next valid file is applied (limit 15)" wait_limit 15
}

# A writer that rewrites the file in place and pauses between two writes for
# much longer than a round: the first half (limit = 5, the second half adds
# "0") validates, and must never be applied — only the whole file (limit 50).
t_half_written_file_is_not_applied() {
	local text half seen=""
	conf 10 >"$LS_TMP/web.conf"
	attach_watched "$LS_TMP/web.conf"
	text=$(conf 50)
	half=${text%0}
	n=$(grep -c "changed: reloading" "$LS_TMP/agent.log")
	# 1.5 s between the halves: 15 rounds of 100 ms, 7 times the two the agent waits.
	{
		printf '%s' "$half"
		sleep 1.5
		printf '0\n'
	} >"$LS_TMP/web.conf" &
	local writer=$!
	while kill -0 "$writer" 2>/dev/null; do
		seen+=" $(limit)"
		sleep 0.05
	done
	wait "$writer"
	check "the whole file is applied (limit 50)" wait_limit 50
	seen+=" $(limit)"
	check "the half file's limit 5 was never applied" bash -c "! grep -qw 5 <<<'$seen'"
	check_eq "the file was reloaded once" "$(grep -c "changed: reloading" "$LS_TMP/agent.log")" \
		$((n + 1))
	# What it would have done: the half file is a valid policy of limit 5.
	printf '%s\n' "$half" >"$LS_TMP/half.conf"
	check "the half file on its own validates" ls_srv policy "$SRV_IF" reload "$LS_TMP/half.conf"
	check_eq "and sets limit 5" "$(limit)" 5
}

# kubelet_update DIR NAME TEXT: what the kubelet does to a ConfigMap volume.
kubelet_update() {
	local dir=$1 new old
	new="..$(date +%Y_%m_%d_%H_%M_%S).$RANDOM$RANDOM"
	old=$(readlink "$dir/..data" 2>/dev/null || true)
	mkdir "$dir/$new"
	printf '%s\n' "$3" >"$dir/$new/$2"
	ln -s "$new" "$dir/..data_tmp"
	mv -T "$dir/..data_tmp" "$dir/..data" # rename(2) over the old symlink
	[ -e "$dir/$2" ] || ln -s "..data/$2" "$dir/$2"
	if [ -n "$old" ]; then rm -rf "${dir:?}/$old"; fi
}

t_configmap_swap_is_followed() {
	local cm=$LS_TMP/cm
	mkdir -p "$cm"
	kubelet_update "$cm" web.conf "$(conf 10)"
	attach_watched "$cm/web.conf"
	check_eq "the limit is the ConfigMap's" "$(limit)" 10
	kubelet_update "$cm" web.conf "$(conf 21)"
	check "a ConfigMap update is followed (limit 21)" wait_limit 21
	kubelet_update "$cm" web.conf "$(conf 22)"
	check "and the next one, after the old directory was deleted (limit 22)" wait_limit 22
	kubelet_update "$cm" web.conf "$(conf nope)"
	check "a bad update is logged" wait_for_line "$LS_TMP/agent.log" "nope" "$WAIT_S"
	check_eq "and changes nothing" "$(limit)" 22
	kubelet_update "$cm" web.conf "$(conf 23)"
	check "and a good one after it is applied (limit 23)" wait_limit 23
}

t_attach_keeps_the_path_given() {
	local cm=$LS_TMP/cm
	mkdir -p "$cm"
	kubelet_update "$cm" web.conf "$(conf 10)"
	# Relative, through symlinks: recorded absolute, and not resolved.
	(cd "$LS_TMP" && ls_attach "$SRV_IF" --config cm/web.conf -v --agent-log "$LS_TMP/agent.log") >/dev/null 2>&1
	check "attach with a relative path through symlinks" test "$(limit)" = 10
	check "the agent follows the path as given, made absolute" \
		wait_for_line "$LS_TMP/agent.log" "following $cm/web.conf\$" 5
	check "not its realpath" bash -c "! grep -q 'following .*\.\.20' '$LS_TMP/agent.log'"
	kill -HUP "$(ls_srv -j status "$SRV_IF" | jq -r .agent.pid)"
	check "SIGHUP reloads by that path" wait_for_line "$LS_TMP/agent.log" "reloaded $cm/web.conf" 5
}

t_watch_config_false_is_not_followed() {
	conf 10 "watch_config = false" >"$LS_TMP/web.conf"
	check "attach with watch_config = false" ls_attach "$SRV_IF" --config "$LS_TMP/web.conf" -v \
		--agent-log "$LS_TMP/agent.log"
	conf 11 "watch_config = false" >"$LS_TMP/web.conf"
	# A bounded wait for something that must not happen: twice what a change took above.
	sleep 2
	check_eq "a change is not applied" "$(limit)" 10
	check "nor followed" bash -c "! grep -q 'following\|changed: reloading' '$LS_TMP/agent.log'"
	kill -HUP "$(ls_srv -j status "$SRV_IF" | jq -r .agent.pid)"
	check "SIGHUP applies it" wait_limit 11
	conf 12 >"$LS_TMP/web.conf" # watch_config back to its default, true
	ls_srv policy "$SRV_IF" reload "$LS_TMP/web.conf" >/dev/null
	check "a reload that turns watch_config on starts following" \
		wait_for_line "$LS_TMP/agent.log" "following $LS_TMP/web.conf" 5
	conf 13 >"$LS_TMP/web.conf"
	check "and the next change is applied (limit 13)" wait_limit 13
}

require_root
require_cmds jq nsenter ip
suite_setup testbed_up "cw$$"
run_test "a valid change of the file is applied" t_valid_change_is_applied
run_test "an invalid change is logged and changes nothing" t_invalid_change_is_refused
run_test "a file written in two parts is applied whole, never half" t_half_written_file_is_not_applied
run_test "a ConfigMap's symlink swap is followed" t_configmap_swap_is_followed
run_test "attach keeps the config path as given, not its realpath" t_attach_keeps_the_path_given
run_test "watch_config = false: only SIGHUP and policy reload apply the file" t_watch_config_false_is_not_followed
tap_done
