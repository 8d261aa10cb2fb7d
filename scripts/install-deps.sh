#!/usr/bin/env bash
# Installs everything loadshed's build, tests, demo and benchmarks need.
# Idempotent: does nothing when every package is already there.
set -euo pipefail

PKGS=(
	make gcc libc6-dev pkg-config clang
	# clang's sanitizer and libFuzzer runtimes (make fuzz): only a Recommends of clang
	libclang-rt-dev
	libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
	libinih-dev libjson-c-dev libcmocka-dev
	# sd_notify: readiness and watchdog under systemd (deploy/systemd)
	libsystemd-dev
	iproute2 iptables procps jq util-linux curl ethtool
	# the agent's metrics endpoint; a real Prometheus scrapes it in test_metrics.sh
	libmicrohttpd-dev prometheus
	gnuplot-nox man-db groff-base
	# The request workloads (scenario.sh pgbench and wrk, test_requests.sh):
	# each run makes its own throwaway cluster; the system's is not used.
	postgresql-15 wrk
	# make deb (dpkg-shlibdeps) and test_deploy.sh (the manifests' YAML)
	dpkg-dev python3-yaml
	# The load balancer of the death-spiral benchmark (scripts/spiral.sh, test_spiral.sh).
	haproxy
)
# nginx-light is needed only for `SERVER=nginx scripts/scenario.sh …`.
if [ "${LS_WITH_NGINX:-0}" = 1 ]; then
	PKGS+=(nginx-light)
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
