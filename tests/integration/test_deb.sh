#!/usr/bin/env bash
# `make deb` builds a Debian package whose contents are where the README says,
# whose Depends name the package of every library the binary links, and which
# installs into a scratch root (dpkg --root: never onto this host), runs, is
# removed down to its conffile, and purged down to nothing.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

VERSION=$(cat "$LS_ROOT/VERSION")

# build_deb OUTDIR [UNITS_DIR]: make deb into OUTDIR; prints the package's path.
build_deb() {
	make -s -C "$LS_ROOT" deb DEB_OUT="$1" | tail -n1
}

# A dpkg database of its own in a scratch root.
new_root() {
	mkdir -p "$1/var/lib/dpkg/info" "$1/var/lib/dpkg/updates" && touch "$1/var/lib/dpkg/status"
}

# Files and links in ROOT, outside dpkg's database.
files_in() { (cd "$1" && find . ! -type d ! -path './var/lib/dpkg/*' | sort | tr '\n' ' '); }

t_contents() {
	local deb lib path pkg missing=() want
	deb=$(build_deb "$LS_TMP/out")
	check "make deb builds loadshed_${VERSION}_$(dpkg --print-architecture).deb" test -f "$deb" ||
		return 1
	check_eq "the package's version is the project's" "$(dpkg-deb -f "$deb" Package Version | tr '\n' ' ')" \
		"Package: loadshed Version: $VERSION "
	dpkg-deb -c "$deb" | awk '{ print $6 }' >"$LS_TMP/list"
	for want in ./usr/sbin/loadshed ./usr/share/man/man8/loadshed.8.gz \
		./usr/share/man/man5/loadshed.conf.5.gz ./usr/share/bash-completion/completions/loadshed \
		./usr/share/doc/loadshed/copyright ./usr/share/doc/loadshed/loadshed.conf.example \
		./etc/loadshed/example.conf ./usr/lib/systemd/system/loadshed@.service \
		./usr/libexec/loadshed/loadshed-stop; do
		grep -qxF "$want" "$LS_TMP/list" || missing+=("$want")
	done
	check_eq "the binary, man pages, completion, example config, unit and its stop script are in it" \
		"${missing[*]}" ""
	check_eq "each file is in it once (/lib is /usr/lib on a merged /usr)" \
		"$(sed 's|^\./lib/|./usr/lib/|' "$LS_TMP/list" | grep -v '/$' | sort | uniq -d)" ""
	check_eq "the example config is its only conffile" \
		"$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)" /etc/loadshed/example.conf
	check_eq "it has no maintainer script (nothing runs at install)" \
		"$(dpkg-deb --ctrl-tarfile "$deb" | tar -tf - | grep -cE 'inst$|rm$')" 0
	# Every library the binary needs is its package's dependency.
	for lib in $(readelf -d "$LS_ROOT/build/loadshed" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		path=$(ldd "$LS_ROOT/build/loadshed" | awk -v l="$lib" '$1 == l { print $3 }')
		pkg=$({ dpkg -S "$path" || dpkg -S "$(realpath "$path")"; } 2>/dev/null | head -n1 | cut -d: -f1)
		dpkg-deb -f "$deb" Depends | grep -qE "(^|, )$pkg( |,|$)" || missing+=("$lib ($pkg)")
	done
	check_eq "Depends names the package of every library the binary links" "${missing[*]}" ""
	missing=()
	# The brief's list, as far as the binary links them.
	for pkg in libbpf1 libinih1 libjson-c5; do
		dpkg-deb -f "$deb" Depends | grep -qE "(^|, )$pkg " || missing+=("$pkg")
	done
	check_eq "Depends has libbpf1, libinih1, libjson-c5" "${missing[*]}" ""
}

t_unit_runs_the_packaged_binary() {
	local deb
	deb=$(build_deb "$LS_TMP/out")
	dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/lib/systemd/system/loadshed@.service \
		>"$LS_TMP/unit"
	check "the unit's ExecStart is /usr/sbin/loadshed" \
		grep -q '^ExecStart=/usr/sbin/loadshed attach %i ' "$LS_TMP/unit"
	check "its ExecStopPost is the packaged stop script" \
		grep -q '^ExecStopPost=/usr/libexec/loadshed/loadshed-stop %i$' "$LS_TMP/unit"
}

t_install_remove_purge() {
	local deb root=$LS_TMP/root host_before
	deb=$(build_deb "$LS_TMP/out")
	new_root "$root"
	host_before=$(dpkg-query -W -f='${Status}' loadshed 2>&1)
	# The scratch root has no libc to depend on: the dependencies are the host's.
	check "dpkg --root installs it into a scratch root" \
		dpkg --root="$root" --force-depends -i "$deb"
	check_eq "dpkg lists it installed there" \
		"$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status} ${Version}' loadshed)" \
		"install ok installed $VERSION"
	check_eq "the installed binary's version is the package's" \
		"$("$root/usr/sbin/loadshed" version | cut -d' ' -f1-2)" "loadshed $VERSION"
	check "its man page renders" man -l "$root/usr/share/man/man8/loadshed.8.gz"
	# A conffile the admin edited is kept by remove too.
	echo "# edited" >>"$root/etc/loadshed/example.conf"
	check "dpkg -r removes it" dpkg --root="$root" -r loadshed
	check_eq "remove leaves only the conffile" "$(files_in "$root")" "./etc/loadshed/example.conf "
	check_eq "dpkg lists it as config-files" \
		"$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' loadshed)" \
		"deinstall ok config-files"
	check "dpkg -P purges it" dpkg --root="$root" -P loadshed
	check_eq "purge leaves no file" "$(files_in "$root")" ""
	check "purge removes /etc/loadshed" test ! -e "$root/etc/loadshed"
	check_eq "the host's dpkg database is untouched" \
		"$(dpkg-query -W -f='${Status}' loadshed 2>&1)" "$host_before"
}

require_cmds make dpkg dpkg-deb dpkg-shlibdeps readelf man
run_test "the package's contents, version and dependencies" t_contents
run_test "the packaged unit runs the packaged binary and stop script" t_unit_runs_the_packaged_binary
run_test "install into a scratch root, run, remove to the conffile, purge" t_install_remove_purge
tap_done
