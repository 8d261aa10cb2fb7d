#!/usr/bin/env bash
# The test tools themselves (server, load generator, connection holder,
# SYN sender) on loopback and a private veth pair.
exec bash "$(dirname "$0")/../tools/selftest.sh" "${LS_TOOLS:-$(dirname "$0")/../../build/tools}"
