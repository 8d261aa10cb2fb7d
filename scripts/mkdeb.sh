#!/usr/bin/env bash
# Builds build/loadshed_VERSION_ARCH.deb from the tree (`make deb`): what
# `make install` installs under /usr (the binary, man pages, completion,
# the systemd unit in /usr/lib/systemd/system and its ExecStopPost in
# /usr/libexec/loadshed, their paths rewritten for /usr), and the example config as
# the conffile /etc/loadshed/example.conf. The control file is generated:
# the version is the project's (VERSION, as `loadshed version` prints it),
# Depends is what dpkg-shlibdeps finds the binary linked against. Built
# with dpkg-deb --root-owner-group: no fakeroot, no debian/ directory.
# Prints the path of the package (a relative OUTDIR is the caller's).
#
# Usage: scripts/mkdeb.sh [OUTDIR]   (default build/)
set -euo pipefail
OUT=$(realpath -m "${1:-$(dirname "$0")/../build}")
cd "$(dirname "$0")/.."
VERSION=$(cat VERSION)
ARCH=$(dpkg --print-architecture)
MAINTAINER=${DEB_MAINTAINER:-loadshed developers <loadshed@localhost>}
DEB=$OUT/loadshed_${VERSION}_${ARCH}.deb

case $VERSION in
[0-9]*) ;;
*)
	echo "mkdeb: VERSION '$VERSION' is not a Debian version" >&2
	exit 1
	;;
esac

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
mkdir -p "$ROOT/DEBIAN"
make -s install DESTDIR="$ROOT" PREFIX=/usr >/dev/null

# Stripped as dh_strip does; the BPF objects are data inside it and stay.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$ROOT/usr/sbin/loadshed"

# Debian ships man pages compressed, reproducibly (no name, no time stamp).
find "$ROOT/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9n {} +

install -d -m 0755 "$ROOT/etc/loadshed"
install -m 0644 doc/loadshed.conf.example "$ROOT/etc/loadshed/example.conf"
echo /etc/loadshed/example.conf >"$ROOT/DEBIAN/conffiles"

cat >"$ROOT/usr/share/doc/loadshed/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: loadshed

Files: *
Copyright: the loadshed authors
License: GPL-2.0-only or BSD-2-Clause
 On Debian systems the GNU General Public License version 2 is in
 /usr/share/common-licenses/GPL-2, and the BSD 2-clause license in
 /usr/share/common-licenses/BSD.
EOF

# dpkg-shlibdeps wants a debian/control of a source package to read; a
# scratch one does.
mkdir -p "$WORK/src/debian"
printf 'Source: loadshed\n\nPackage: loadshed\nArchitecture: any\n' >"$WORK/src/debian/control"
depends=$(cd "$WORK/src" && dpkg-shlibdeps -O -e"$ROOT/usr/sbin/loadshed" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
if [ -z "$depends" ]; then
	echo "mkdeb: dpkg-shlibdeps found no dependency of the binary" >&2
	exit 1
fi

cat >"$ROOT/DEBIAN/control" <<EOF
Package: loadshed
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: adaptive load shedding of TCP services at XDP
 An XDP program admits or sheds each new connection, or each request on
 keep-alive connections, against the service's adaptive concurrency limit,
 lowest priority first; a TC program measures the server's latency; an
 agent adapts the limit with the algorithms of Netflix concurrency-limits.
EOF

dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
