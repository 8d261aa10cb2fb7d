#!/usr/bin/env bash
# `make install` puts the binary, both man pages, the example config and the
# bash completion under DESTDIR/PREFIX, and `make uninstall` takes them away.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

t_install() {
	local root=$LS_TMP/root files
	check "make install into a DESTDIR" make -s -C "$LS_ROOT" install DESTDIR="$root" PREFIX=/usr
	files=$(cd "$root" && find . -type f | sort | tr '\n' ' ')
	check_eq "the installed files" "$files" "./usr/lib/systemd/system/loadshed@.service ./usr/libexec/loadshed/loadshed-stop ./usr/sbin/loadshed ./usr/share/bash-completion/completions/loadshed ./usr/share/doc/loadshed/loadshed.conf.example ./usr/share/man/man5/loadshed.conf.5 ./usr/share/man/man8/loadshed.8 "
	check "the installed binary runs" "$root/usr/sbin/loadshed" version
	check "the installed man page renders" man -l "$root/usr/share/man/man5/loadshed.conf.5"
	check "the installed unit runs the installed binary" \
		grep -q '^ExecStart=/usr/sbin/loadshed attach' "$root/usr/lib/systemd/system/loadshed@.service"
	check "and stops with the installed loadshed-stop, which detaches with it" \
		grep -q '^LOADSHED=${LOADSHED:-/usr/sbin/loadshed}' "$root/usr/libexec/loadshed/loadshed-stop"
	check "make uninstall" make -s -C "$LS_ROOT" uninstall DESTDIR="$root" PREFIX=/usr
	check_eq "uninstall leaves no file" "$(find "$root" -type f | wc -l)" 0
}

require_cmds make man
run_test "make install and uninstall" t_install
tap_done
