#!/usr/bin/env bash
# The documentation must not drift from the code:
#  - both man pages render without a warning (man and groff);
#  - every key of the parser's key tables in user/config.c (agent_keys,
#    service_keys, class_keys) is documented in loadshed.conf(5), in the
#    subsection of its section, and every key documented there is accepted;
#  - doc/design.md has numbered sections, and every citation of one in the
#    tree (a line naming design.md, or "design \(sc" in a man page) resolves.
# Needs neither root nor a build.
set -uo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$LS_ROOT" || exit 1

config_c=user/config.c
conf_page=doc/loadshed.conf.5
design_doc=doc/design.md
pages=(doc/loadshed.8 "$conf_page")

# A locale every Debian system has, so that man's own locale complaints
# cannot pass for page warnings; no seccomp sandbox, which some containers refuse.
export LC_ALL=C.UTF-8 MANWIDTH=80 MAN_DISABLE_SECCOMP=1

skip() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N # SKIP $1"
}

# check_silent NAME CMD...: ok when CMD succeeds and writes nothing to stderr.
check_silent() {
	local name=$1 err
	shift
	if err=$("$@" 2>&1 >/dev/null) && [ -z "$err" ]; then
		ok "$name"
	else
		not_ok "$name" "command: $*" "${err:-exit status not 0}"
	fi
}

# --- (a) the man pages render cleanly ------------------------------------------

for page in "${pages[@]}"; do
	base=$(basename "$page")
	if command -v man >/dev/null; then
		check_silent "man_page_${base}_renders_without_warnings_in_man" \
			man --warnings -l "$page"
	else
		skip "man_page_${base}_renders_without_warnings_in_man: man (man-db) is not installed"
	fi
	if command -v groff >/dev/null; then
		check_silent "man_page_${base}_renders_without_warnings_in_groff" \
			groff -man -ww -z "$page"
	else
		skip "man_page_${base}_renders_without_warnings_in_groff: groff is not installed"
	fi
done

if grep -q '^\.BR loadshed\.conf (5)' doc/loadshed.8; then
	ok "loadshed.8_refers_to_loadshed.conf.5"
else
	not_ok "loadshed.8_refers_to_loadshed.conf.5" "no '.BR loadshed.conf (5)' line in doc/loadshed.8"
fi

# --- (b) every configuration key is documented, and only those -----------------

# The names in one key table of config.c: `static const struct key_def T[] = {`
# up to its `{NULL}` terminator, one `{"name", ...}` entry each.
code_keys() {
	sed -n "/^static const struct key_def $1\[\] = {/,/{NULL}/p" "$config_c" |
		grep -oE '^[[:space:]]*\{"[a-z0-9_]+"' | tr -d '{" \t' | sort -u
}

# The keys loadshed.conf(5) documents in subsection SS: the first word of the
# tag line of every .TP at the subsection's own level (lists nested in
# .RS/.RE are not keys).
page_keys() {
	awk -v want="$1" '
		/^\.SH/ { sec = ""; next }
		/^\.SS/ { sec = $0; sub(/^\.SS[ \t]+"?/, "", sec); sub(/"[ \t]*$/, "", sec); depth = 0; next }
		/^\.RS/ { depth++; next }
		/^\.RE/ { depth--; next }
		/^\.TP/ { tag = 1; next }
		tag { tag = 0; if (sec == want && depth == 0) { k = $2; gsub(/"/, "", k); print k } }
	' "$conf_page" | sort -u
}

for pair in "agent_keys:[agent]" "service_keys:[service NAME]" "class_keys:[class SERVICE.CLASS]"; do
	table=${pair%%:*}
	section=${pair#*:}
	code=$(code_keys "$table")
	documented=$(page_keys "$section")
	name=${section#[}
	name=${name%%[] ]*}
	if [ -z "$code" ]; then
		not_ok "config_${name}_keys_are_found_in_${table}" \
			"no entries found in $config_c's $table: was the table renamed or reshaped?"
		continue
	fi
	if [ -z "$documented" ]; then
		not_ok "config_${name}_keys_have_a_subsection_in_loadshed.conf.5" \
			"no .TP entries under .SS \"$section\" in $conf_page"
		continue
	fi
	missing=$(comm -23 <(echo "$code") <(echo "$documented") | tr '\n' ' ')
	extra=$(comm -13 <(echo "$code") <(echo "$documented") | tr '\n' ' ')
	if [ -z "$missing" ]; then
		ok "every_${name}_key_the_parser_accepts_is_documented ($(echo "$code" | wc -l) keys)"
	else
		not_ok "every_${name}_key_the_parser_accepts_is_documented" \
			"in $table but not under $section in $conf_page: $missing"
	fi
	if [ -z "$extra" ]; then
		ok "every_${name}_key_documented_is_accepted_by_the_parser"
	else
		not_ok "every_${name}_key_documented_is_accepted_by_the_parser" \
			"under $section in $conf_page but not in $table: $extra"
	fi
done

# --- (c) design.md exists and every citation of it resolves ----------------------

if [ ! -s "$design_doc" ]; then
	not_ok "design_md_exists" "$design_doc is missing or empty"
	tap_done
	exit
fi
ok "design_md_exists"

# Sections: "## N. Title" and "### N.M Title".
sections=$(grep -oE '^## [0-9]+\.' "$design_doc" | grep -oE '[0-9]+'
	grep -oE '^### [0-9]+\.[0-9]+ ' "$design_doc" | grep -oE '[0-9]+\.[0-9]+')

# Top-level sections run 1, 2, ... in order; subsections N.1, N.2, ... under N.
numbering=$(awk '
	/^## [0-9]+\./ { n = $2 + 0; if (n != top + 1) printf "section %d follows %d; ", n, top; top = n; sub_n = 0 }
	/^### [0-9]+\.[0-9]+ / { split($2, p, "."); if (p[1] + 0 != top || p[2] + 0 != sub_n + 1) printf "%s follows %d.%d; ", $2, top, sub_n; sub_n = p[2] + 0 }
' "$design_doc")
if [ -n "$sections" ] && [ -z "$numbering" ]; then
	ok "design_md_sections_are_numbered_in_order ($(echo "$sections" | wc -l) sections)"
else
	not_ok "design_md_sections_are_numbered_in_order" "${numbering:-no numbered sections}"
fi

# Citations: on every line that names design.md (or, in a man page, cites
# "design \(sc"), each section sign followed by a number; in design.md
# itself, every such token (its cross-references). Prints the number of
# citations, then the ones that do not resolve.
check_citations() {
	{
		grep -rIn --exclude-dir=.git --exclude-dir=build --exclude-dir=results \
			-e 'design\.md' -e 'design \\(sc' . | grep -v "^\./$design_doc:"
		awk -v f="./$design_doc" '{ print f ":" FNR ":" $0 }' "$design_doc"
	} | awk -v secs="${sections//$'\n'/ }" '
		BEGIN { n = split(secs, s, " "); for (i = 1; i <= n; i++) known[s[i]] = 1 }
		{
			i = index($0, ":"); file = substr($0, 1, i - 1); rest = substr($0, i + 1)
			i = index(rest, ":"); where = file ":" substr(rest, 1, i - 1)
			text = substr(rest, i + 1)
			while (match(text, /(§|\\\(sc)[0-9]+(\.[0-9]+)?/)) {
				tok = substr(text, RSTART, RLENGTH)
				text = substr(text, RSTART + RLENGTH)
				sub(/^(§|\\\(sc)/, "", tok)
				count++
				if (!(tok in known)) bad = bad where " cites §" tok "; "
			}
		}
		END { print count + 0; print bad }'
}
result=$(check_citations)
nr_refs=$(head -n1 <<<"$result")
bad=$(tail -n +2 <<<"$result")
if [ "$nr_refs" -eq 0 ]; then
	not_ok "every_design_md_section_cited_exists" "no citation found at all: the search is broken"
elif [ -z "$bad" ]; then
	ok "every_design_md_section_cited_exists ($nr_refs citations)"
else
	not_ok "every_design_md_section_cited_exists" "$bad"
fi

tap_done
