#!/usr/bin/env bash
# The command line itself (doc/design.md §14.3): every command's errors are
# one JSON document under -j, with the right exit code; prefixes that are
# ambiguous are refused at every level and detach is never abbreviated;
# help answers at every level; the bash completion comes from the same table.
# Needs root only because some error paths look for pins under /sys/fs/bpf.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

NOIF=lsnoif0 # an interface that exists nowhere

setup_suite() {
	TMP=$LS_TMP
	printf '[service main]\nlisten = *:8080\n' >"$TMP/good.conf"
	printf '[service main]\nlisten = *:70000\n' >"$TMP/bad.conf"
	printf 'start_ns,rtt_ns,inflight,did_drop\n1,x,2,0\n' >"$TMP/bad.csv"
	head -c 100000 /dev/zero >"$TMP/zeros.csv" # one endless line, as /dev/zero
}

# jerr EXPECTED_RC ARGS...: under -j, ARGS fails with EXPECTED_RC and prints
# exactly one JSON object whose "error" is a non-empty string.
declare -A COVERED=()
jerr() {
	local want=$1 out rc
	shift
	COVERED[${1:-none}]=1
	out=$("$LOADSHED" -j "$@" <"${STDIN:-/dev/null}" 2>/dev/null)
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		not_ok "-j $* exits $want" "exit $rc, stdout: ${out:0:300}"
		return
	fi
	if [ "$(jq -s 'length' <<<"$out" 2>/dev/null)" = 1 ] &&
		jq -e '(.error | type == "string") and (.error | length > 0)' <<<"$out" >/dev/null 2>&1; then
		ok "-j $* is one JSON error, exit $want"
	else
		not_ok "-j $* is one JSON error, exit $want" "stdout: ${out:0:300}"
	fi
}

t_json_errors() {
	jerr 2 bogus
	jerr 2 a "$NOIF"
	jerr 2 de "$NOIF"
	jerr 2 attach
	jerr 2 attach "$NOIF"
	jerr 2 attach "$NOIF" --port 8080 --bogus
	jerr 2 attach "$NOIF" --port 8080 --limit
	jerr 2 attach "$NOIF" --config "$TMP/missing.conf"
	jerr 2 attach "$NOIF" --config "$TMP/bad.conf"
	jerr 2 attach "$NOIF" --config /dev/zero
	jerr 2 attach "$NOIF" --config "$TMP/good.conf" --port 1
	jerr 2 attach "a/b" --port 8080
	jerr 1 attach "$NOIF" --port 8080
	jerr 2 detach
	jerr 2 detach "$NOIF" extra
	jerr 2 status
	jerr 2 status "$NOIF" extra
	jerr 1 status "$NOIF"
	jerr 2 top
	jerr 2 top "$NOIF" extra
	jerr 2 top "$NOIF" -n 0
	jerr 2 top "$NOIF" -d nan
	jerr 2 top "$NOIF" -d 0.05 # each frame holds the lock for a flow-table walk: at least 0.1 s
	jerr 1 top "$NOIF" -n 1 -d 0.1
	jerr 1 top "$NOIF" -n 1
	jerr 2 list extra
	jerr 2 limit "$NOIF"
	jerr 2 limit "$NOIF" a
	jerr 2 limit "$NOIF" frob
	jerr 2 limit "$NOIF" set
	jerr 2 limit "$NOIF" set 0
	jerr 2 limit "$NOIF" set 1000001
	jerr 2 limit "$NOIF" set --class
	jerr 1 limit "$NOIF" set 5
	jerr 2 limit "$NOIF" auto x
	jerr 1 limit "$NOIF" auto
	jerr 2 limit "$NOIF" algo
	jerr 2 limit "$NOIF" algo nope
	jerr 2 limit "$NOIF" algo aimd backoff_ratio=7
	jerr 1 limit "$NOIF" algo aimd
	jerr 2 breaker "$NOIF" open
	jerr 1 breaker "$NOIF" status
	jerr 2 policy "$NOIF"
	jerr 2 policy "$NOIF" reload
	jerr 2 policy "$NOIF" reload "$TMP/missing.conf"
	jerr 2 policy "$NOIF" reload "$TMP/bad.conf"
	jerr 1 policy "$NOIF" reload "$TMP/good.conf"
	jerr 2 policy "$NOIF" shadow maybe
	jerr 1 policy "$NOIF" shadow on
	jerr 2 agent
	jerr 1 agent "$NOIF"
	jerr 2 replay --bogus
	jerr 2 replay --algo
	jerr 2 replay --algo nope
	jerr 2 replay --window-size 9
	jerr 2 replay notaparam
	STDIN=$TMP/bad.csv jerr 2 replay --algo aimd
	STDIN=$TMP/zeros.csv jerr 2 replay --algo aimd
	jerr 2 version extra
	jerr 2 completion
	jerr 2 completion zsh
	jerr 2 help nope
	jerr 2 help limit extra

	# The walk covers every command of the table.
	local cmd missing=()
	for cmd in $("$LOADSHED" help | sed -n '/^Commands:/,/^$/p' | awk 'NF && !/Commands:/ {print $1}'); do
		[ -n "${COVERED[$cmd]:-}" ] || missing+=("$cmd")
	done
	check_eq "the -j error walk covers every command" "${missing[*]}" ""

	local out
	out=$("$LOADSHED" -j detach "$NOIF")
	check_eq "-j detach of an unattached interface says so in JSON, exit 0" \
		"$(jq -c '{detached, ifname}' <<<"$out" 2>&1)" "{\"detached\":false,\"ifname\":\"$NOIF\"}"
	out=$("$LOADSHED" -j)
	check_eq "-j with no command is a JSON error" "$(jq -r '.error | length > 0' <<<"$out" 2>&1)" true
}

# utf8_json NAME ARGS...: under -j, ARGS prints one JSON document, and it is UTF-8.
utf8_json() {
	local name=$1 out
	shift
	out=$("$LOADSHED" -j "$@" 2>/dev/null </dev/null)
	if iconv -f UTF-8 -t UTF-8 <<<"$out" >/dev/null 2>&1 &&
		[ "$(jq -s 'length' <<<"$out" 2>/dev/null)" = 1 ]; then
		ok "$name"
	else
		not_ok "$name" "stdout: ${out:0:300}"
	fi
}

# JSON is UTF-8 (RFC 8259), whatever bytes the arguments carry.
t_json_is_utf8() {
	local e
	e=$(printf 'é%.0s' $(seq 600))
	utf8_json "-j: a command word that is not UTF-8" $'\xff'
	utf8_json "-j: an interface name that is not UTF-8" status $'\xff\xfe'
	utf8_json "-j: detach of an interface name that is not UTF-8" detach $'\xc3'
	utf8_json "-j: a file name that is not UTF-8" policy "$NOIF" reload "$TMP/"$'\xe2\x82'
	# One of the two is cut inside a character by the message's bound.
	utf8_json "-j: a long message cut (1)" policy "$NOIF" reload "$TMP/a$e"
	utf8_json "-j: a long message cut (2)" policy "$NOIF" reload "$TMP/aa$e"
	check_eq "-j: a byte that is not UTF-8 becomes U+FFFD" \
		"$("$LOADSHED" -j status $'x\xffy')" '{"error":"x�y: not attached"}'
}

t_prefixes() {
	local out rc
	out=$("$LOADSHED" st "$NOIF" 2>&1)
	rc=$?
	check_eq "an unambiguous prefix runs its command (st = status)" "$rc:$out" \
		"1:loadshed: $NOIF: not attached"
	out=$("$LOADSHED" li 2>&1)
	check_eq "an ambiguous prefix is refused and names the candidates" "$out" \
		"loadshed: command 'li' is ambiguous: list, limit"
	out=$("$LOADSHED" limit "$NOIF" a 2>&1)
	check_eq "an ambiguous subcommand is refused too" "$out" \
		"loadshed: limit command 'a' is ambiguous: auto, algo"
	out=$("$LOADSHED" detac "$NOIF" 2>&1)
	rc=$?
	check_eq "detach is never abbreviated" "$rc:$out" \
		"2:loadshed: 'detac' is not abbreviated: type 'detach' in full"
	out=$("$LOADSHED" limit "$NOIF" al nope 2>&1)
	check_eq "a subcommand prefix runs it (al = algo)" "$out" \
		"loadshed: unknown algorithm 'nope' (known: fixed, aimd, vegas, gradient2, envoy, delay)"
	"$LOADSHED" status "$NOIF" -j >"$TMP/late-j" 2>/dev/null
	check "global options may follow the command" jq -e .error "$TMP/late-j"
}

t_help_everywhere() {
	local path out bad=()
	while read -r path; do
		# shellcheck disable=SC2086 # word splitting of the command path is wanted
		if ! "$LOADSHED" $path help 2>&1 | grep -q '^Usage: loadshed'; then
			bad+=("$path help")
		fi
		# shellcheck disable=SC2086
		if ! "$LOADSHED" $path --help 2>&1 | grep -q '^Usage: loadshed'; then
			bad+=("$path --help")
		fi
	done <<EOF
attach eth0
detach eth0
status eth0
top eth0
list
limit
limit eth0
limit eth0 set
limit eth0 auto
limit eth0 algo
policy eth0
policy eth0 reload
policy eth0 shadow
agent eth0
replay
version
completion
EOF
	check_eq "help and --help answer at every level" "${bad[*]}" ""
	for path in -h --help; do
		if ! out=$("$LOADSHED" "$path" 2>&1) || ! grep -q '^Usage: loadshed \[-j' <<<"$out"; then
			bad+=("$path")
		fi
	done
	check_eq "-h and --help answer at the top level too, exit 0" "${bad[*]}" ""
	check "'loadshed help limit' is the limit command's help" \
		bash -c "'$LOADSHED' help limit | grep -q 'Usage: loadshed limit IFACE {set|auto|algo}'"
}

t_version() {
	local v
	v=$("$LOADSHED" version)
	check "version names loadshed's version and libbpf's" \
		grep -Eq "^loadshed $(cat "$LS_ROOT/VERSION") \(libbpf v[0-9]+\.[0-9]+, pinned layout [0-9]+\)$" <<<"$v"
	check_eq "-V prints the same" "$("$LOADSHED" -V)" "$v"
	check_eq "-j version is JSON with the libbpf version" \
		"$("$LOADSHED" -j version | jq -r '.libbpf | test("^v[0-9]+\\.[0-9]+$")')" true
}

# complete WORDS...: what the generated completion offers after WORDS
# (the last word is the one being completed).
complete_words() {
	bash -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_loadshed
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "
	' _ "$TMP/completion" "$@"
}

t_completion() {
	"$LOADSHED" completion bash >"$TMP/completion"
	check "the completion script is valid bash" bash -n "$TMP/completion"
	check_eq "commands complete from the table" "$(complete_words loadshed li)" "limit list "
	check_eq "global options are skipped" "$(complete_words loadshed -j de)" "detach "
	check_eq "subcommands complete after IFACE" "$(complete_words loadshed limit lo '')" \
		"algo auto set "
	check_eq "an abbreviated command still completes its subcommands" \
		"$(complete_words loadshed pol lo s)" "shadow "
	check_eq "options complete from the command's table" \
		"$(complete_words loadshed limit lo set --c)" "--class "
	check_eq "option values complete from the table" \
		"$(complete_words loadshed attach lo --xdp-mode '')" "generic native "
	check_eq "IFACE completes from the interfaces" "$(complete_words loadshed status l)" "lo "
	touch "$TMP/a.conf"
	check_eq "policy reload completes a file" "$(complete_words loadshed policy lo reload "$TMP/a.c")" \
		"$TMP/a.conf "
	local cmd missing=()
	for cmd in $("$LOADSHED" help | sed -n '/^Commands:/,/^$/p' | awk 'NF && !/Commands:/ {print $1}'); do
		grep -q "|$cmd)\$\|^	$cmd)\$" "$TMP/completion" || missing+=("$cmd")
	done
	check_eq "every command of 'help' has a completion branch" "${missing[*]}" ""
}

require_root
require_cmds jq iconv
suite_setup setup_suite
run_test "every command's errors are JSON under -j" t_json_errors
run_test "-j prints UTF-8, whatever bytes the arguments carry" t_json_is_utf8
run_test "prefixes: unambiguous ones run, others are refused" t_prefixes
run_test "help answers at every level" t_help_everywhere
run_test "version names loadshed's and libbpf's" t_version
run_test "the bash completion comes from the command table" t_completion
tap_done
