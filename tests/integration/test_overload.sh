#!/usr/bin/env bash
# Overload, end to end: a server offered three times its capacity (20 % high,
# 80 % low priority, a connection per request) collapses without protection;
# with loadshed the high class keeps succeeding and the server keeps serving
# near its capacity. Outcomes only, with wide margins, never timings: it must
# hold on a busy 2-core VM. About 20 s. Needs root.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib.sh disable=SC1091
. "$ROOT/tests/lib.sh"
# shellcheck source=scripts/testbed.sh disable=SC1091
. "$ROOT/scripts/testbed.sh"

SECS=6
OUT=$(mktemp -d /tmp/loadshed-overload.XXXXXX)
tb_names "ov$$"
trap 'tb_down; rm -rf "$OUT"' EXIT
export LOADSHED # build/san/loadshed under scripts/run-tests.sh

if ! tb_up >/dev/null; then
	not_ok "the testbed comes up"
	tap_done
	exit 1
fi

scenario() { # scenario PROTECTION
	"$ROOT/scripts/scenario.sh" steady "$1" --id "$TB_ID" --seconds $SECS --seed 42 \
		--out "$OUT/$1" >"$OUT/$1.log" 2>&1
}
field() { jq -r "$2" "$OUT/$1/summary.json" 2>/dev/null; }
# int X: a number rounded to an integer (empty when X is not a number).
int() { awk -v x="$1" 'BEGIN { if (x ~ /^-?[0-9.]+$/) printf "%d", x + 0.5 }'; }

if scenario none; then
	ok "3x overload without protection runs"
else
	not_ok "3x overload without protection runs" "$(tail -n 5 "$OUT/none.log")"
fi
if scenario loadshed; then
	ok "3x overload with loadshed runs"
else
	not_ok "3x overload with loadshed runs" "$(tail -n 5 "$OUT/loadshed.log")"
fi
sed 's/^/# /' "$OUT/none.log" "$OUT/loadshed.log"

none_high=$(int "$(field none .high.ok_pct)")
ls_high=$(int "$(field loadshed .high.ok_pct)")
none_goodput=$(int "$(field none .goodput_pct)")
ls_goodput=$(int "$(field loadshed .goodput_pct)")

check_cmp "unprotected, the server collapses: high success under 50 %" "$none_high" -lt 50
check_cmp "with loadshed the high class succeeds: over 90 %" "$ls_high" -ge 90
check_cmp "with loadshed high success is 40 points above unprotected" \
	"$ls_high" -ge "$((${none_high:-100} + 40))"
check_cmp "with loadshed goodput stays over 70 % of capacity" "$ls_goodput" -ge 70
check_cmp "with loadshed goodput is at least twice the unprotected one" \
	"$ls_goodput" -ge "$((${none_goodput:-100} * 2))"

st=$OUT/loadshed/status-end.json
low_shed=$(jq -r '.services[0].classes[] | select(.name == "low") | .shed' "$st" 2>/dev/null)
high_shed=$(jq -r '.services[0].classes[] | select(.name == "high") | .shed' "$st" 2>/dev/null)
check_cmp "loadshed sheds the low class" "${low_shed:-}" -gt 0
check_cmp "loadshed sheds low far more than high" "${low_shed:-}" -gt "$((${high_shed:-0} * 10))"
check_eq "in-flight is back to 0 after the load" \
	"$(jq -r '.services[0].inflight' "$st" 2>/dev/null)" 0
if [ -e "/sys/fs/bpf/loadshed/$SRV_IF" ]; then
	not_ok "the run leaves no pins behind"
else
	ok "the run leaves no pins behind"
fi
tap_done
