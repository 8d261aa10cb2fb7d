#!/usr/bin/env bash
# The userspace modules form layers (doc/design.md §14.1): data flows one way,
# so a module includes only headers of its own layer or a lower one. This
# test reads every #include in user/ and fails on one that runs upwards, or
# on a module missing from the table (a new file must be given its layer).
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

# module -> layer; a module is a .c/.h pair (algo_*.c belong to algo, cmd_*.c to commands)
declare -A LAYER=(
	[loadshed]=0 [loadshed_breaker]=0 [log]=0 [output]=0 [clock]=0 [addr]=0 [hist]=0
	[confwatch]=0 [notify]=0
	[algo]=1 [window]=1 [demand]=1 [breaker]=1
	[replay]=2 [config]=2 [upstream]=2
	[policy]=3 [maps]=3 [sockdiag]=3
	[pins]=4 [service]=4
	[policy_maps]=5 [attach]=5 [agent]=5 [metrics]=5 [metrics_breaker]=5 [breaker_maps]=5 [breaker_agent]=5
	[cli]=6
	[commands]=7
	[main]=8
)

module_of() {
	local b
	b=$(basename "$1")
	b=${b%.c}
	b=${b%.h}
	case $b in
	algo_*) echo algo ;;
	cmd_*) echo commands ;;
	*) echo "$b" ;;
	esac
}

t_layers() {
	local f m inc im bad
	local -a up=() unknown=()
	for f in "$LS_ROOT"/user/*.c "$LS_ROOT"/user/*.h; do
		m=$(module_of "$f")
		if [ -z "${LAYER[$m]+x}" ]; then
			unknown+=("$m")
			continue
		fi
		while read -r inc; do
			case $inc in *.skel.h) continue ;; esac # generated from bpf/, below everything
			im=$(module_of "$inc")
			if [ -z "${LAYER[$im]+x}" ]; then
				unknown+=("$im (included by $(basename "$f"))")
			elif [ "${LAYER[$im]}" -gt "${LAYER[$m]}" ]; then
				up+=("$(basename "$f") (layer ${LAYER[$m]}) includes $inc (layer ${LAYER[$im]})")
			fi
		done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
	done

	if [ ${#unknown[@]} -eq 0 ]; then
		ok "every userspace module has a layer"
	else
		not_ok "every userspace module has a layer" "${unknown[@]}"
	fi
	if [ ${#up[@]} -eq 0 ]; then
		ok "no include runs from a lower layer to a higher one"
	else
		not_ok "no include runs from a lower layer to a higher one" "${up[@]}"
	fi

	# bpf/ reaches userspace only through include/loadshed.h.
	bad=$(grep -l '#include "\(\.\./\)*user/' "$LS_ROOT"/bpf/* 2>/dev/null)
	if [ -z "$bad" ]; then
		ok "bpf/ includes nothing from user/"
	else
		not_ok "bpf/ includes nothing from user/" "$bad"
	fi
}

run_test "includes run from higher layers to lower ones only" t_layers
tap_done
