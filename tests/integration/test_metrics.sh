#!/usr/bin/env bash
# The agent's Prometheus endpoint ([agent] metrics, doc/design.md §7.7): off
# unless asked; a wildcard only when written; bad addresses refused at attach
# and reload, changing nothing; GET /metrics only; a real Prometheus scrapes
# it and its counters are the ones `status -j` shows; promtool accepts the
# page; a reload moves the endpoint, and a port it cannot bind leaves the
# agent running. The agent runs in the server namespace (where attach runs),
# so every scrape and the Prometheus server run there too. Counts and
# outcomes only, never timings. About 40 s. Needs root, prometheus, promtool.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

require_root
require_cmds jq curl ss prometheus promtool python3

PORT=8080
MPORT=9542 # the testbed's server namespace is ours: fixed ports clash with no one
HIGH=10.201.0.2
LOW=10.201.0.3

setup_suite() {
	testbed_up "mt$$" >/dev/null
}

# write_conf FILE METRICS_LINE: a service with a high (reset) and a low (drop)
# class, its limit pinned at 4 so that load sheds.
write_conf() {
	cat >"$1" <<EOF
[agent]
$2

[service web]
listen = *:$PORT
limit = 4

[class web.high]
share = 50%
action = reset
match = src $HIGH/32

[class web.low]
share = 0%
action = drop
match = src $LOW/32
EOF
}

agent_pid() { ls_srv -j status "$SRV_IF" | jq -r .agent.pid; }
# listeners PID: the TCP sockets PID listens on in the server namespace, "ADDR:PORT" a line.
listeners() { in_srv ss -Hltnp | awk -v p="pid=$1," 'index($0, p) { print $4 }'; }
scrape() { in_srv curl -s -m 5 "$@"; }
http_code() { in_srv curl -s -o /dev/null -m 5 -w '%{http_code}' "$@"; }

# wait_listening PID ADDR:PORT: up to 5 s.
wait_listening() {
	local i
	for i in $(seq 50); do
		listeners "$1" | grep -qxF "$2" && return 0
		sleep 0.1
	done
	: "$i"
	return 1
}

# wait_rounds N: up to 10 s for the agent's heartbeat to be written anew N
# times (its age falls), i.e. for N more rounds to have run.
wait_rounds() {
	local i age last="" beats=0
	for i in $(seq 200); do
		age=$(ls_srv -j status "$SRV_IF" | jq -r '.agent.heartbeat_age_ms // empty')
		if [ -n "$age" ] && [ -n "$last" ] && [ "$age" -lt "$last" ]; then
			beats=$((beats + 1))
			[ "$beats" -ge "$1" ] && return 0
		fi
		last=$age
		sleep 0.05
	done
	: "$i"
	return 1
}

test_metrics_are_off_by_default() {
	local pid
	write_conf "$LS_TMP/off.conf" "interval = 100ms"
	check "attach without a metrics address" ls_attach "$SRV_IF" --config "$LS_TMP/off.conf"
	pid=$(agent_pid)
	check "the agent has run rounds since (its heartbeat was written twice)" wait_rounds 2
	check_eq "the agent listens on nothing" "$(listeners "$pid" | wc -l)" 0
	check "its pid is a live agent" kill -0 "$pid"
}

# attach_refused NAME LINE WANT: attach with [agent] LINE fails with a usage
# error naming the key and WANT, and nothing is attached.
attach_refused() {
	local out rc
	write_conf "$LS_TMP/bad.conf" "$2"
	out=$(ls_attach "$SRV_IF" --config "$LS_TMP/bad.conf" 2>&1)
	rc=$?
	check_eq "$1: attach exits 2" "$rc" 2
	check "$1: the error names [agent] metrics and says why" \
		grep -q "\[agent\] metrics: .*$3" <<<"$out"
	check_eq "$1: nothing is attached" "$(ls_srv -j list | jq --arg i "$SRV_IF" '[.attachments[]? | select(.ifname == $i)] | length')" 0
}

test_wildcard_only_when_written_and_bad_addresses_refused() {
	local pid
	attach_refused "a bare port (a wildcard not written)" "metrics = $MPORT" "has no address"
	attach_refused "a host name" "metrics = localhost:$MPORT" "not a numeric"
	attach_refused "a port out of range" "metrics = 127.0.0.1:70000" "not a port"
	attach_refused "an IPv6 address without brackets" "metrics = ::1:$MPORT" "in brackets"
	attach_refused "an empty address" "metrics = :$MPORT" "not a numeric"

	write_conf "$LS_TMP/any.conf" "metrics = *:$MPORT"
	check "attach with metrics = *:$MPORT" ls_attach "$SRV_IF" --config "$LS_TMP/any.conf"
	pid=$(agent_pid)
	check "*:PORT, written, listens on every address (IPv4 and IPv6)" \
		wait_listening "$pid" "*:$MPORT"
	check "and answers on the server's own address" \
		bash -c "$(declare -f scrape in_srv); SRV_NS=$SRV_NS scrape http://$TB_SRV_IP:$MPORT/metrics | grep -q '^loadshed_limit'"
}

test_only_get_metrics_is_served() {
	local pid hdr want
	write_conf "$LS_TMP/m.conf" "metrics = 127.0.0.1:$MPORT"
	check "attach with metrics = 127.0.0.1:$MPORT" ls_attach "$SRV_IF" --config "$LS_TMP/m.conf"
	pid=$(agent_pid)
	check "the agent listens on 127.0.0.1:$MPORT only" wait_listening "$pid" "127.0.0.1:$MPORT"
	check_eq "and on nothing else" "$(listeners "$pid" | wc -l)" 1
	check_eq "GET /metrics is 200" "$(http_code "http://127.0.0.1:$MPORT/metrics")" 200
	hdr=$(in_srv curl -s -o /dev/null -D - -m 5 "http://127.0.0.1:$MPORT/metrics")
	check "in the text exposition format 0.0.4" \
		grep -qi '^content-type: text/plain; version=0.0.4' <<<"$hdr"
	check_eq "GET / is 404" "$(http_code "http://127.0.0.1:$MPORT/")" 404
	check_eq "GET /metrics/x is 404" "$(http_code "http://127.0.0.1:$MPORT/metrics/x")" 404
	check_eq "POST /metrics is 405" "$(http_code -X POST -d x=1 "http://127.0.0.1:$MPORT/metrics")" 405
	check_eq "DELETE /metrics is 405" "$(http_code -X DELETE "http://127.0.0.1:$MPORT/metrics")" 405
	hdr=$(in_srv curl -s -o /dev/null -D - -m 5 -X PUT "http://127.0.0.1:$MPORT/metrics")
	check "a 405 says which methods are allowed" grep -qi '^allow: GET, HEAD' <<<"$hdr"
	check_eq "HEAD /metrics is 200 (HTTP: every GET resource answers HEAD)" \
		"$(http_code -I "http://127.0.0.1:$MPORT/metrics")" 200
	check_eq "with no body" "$(in_srv curl -s -I -m 5 "http://127.0.0.1:$MPORT/metrics" | grep -c '^loadshed_')" 0
	check_eq "after all that, GET /metrics is still 200" \
		"$(http_code "http://127.0.0.1:$MPORT/metrics")" 200
	check "a page of the exposition format passes promtool check metrics" \
		bash -c "$(declare -f scrape in_srv); SRV_NS=$SRV_NS scrape http://127.0.0.1:$MPORT/metrics | promtool check metrics"
	# The bounds are powers of two in microseconds, written exactly: 1.048576, not 1.04858.
	want=$(for k in $(seq 7 22); do printf '%d.%06d\n' $(((1 << k) / 1000000)) $(((1 << k) % 1000000)); done; echo +Inf)
	check_eq "the histogram's le bounds are the powers of two from 128 us to 4.194304 s, exact" \
		"$(scrape "http://127.0.0.1:$MPORT/metrics" | sed -n 's/^loadshed_latency_seconds_bucket{.*le="\([^"]*\)"}.*/\1/p')" "$want"
}

# hold_connections N ADDR:PORT OUT: N connections to ADDR:PORT from the server
# namespace, each a request whose headers never end: a header line every 2 s,
# under the idle timeout, for 12 s; "held" in OUT once all are open.
hold_connections() {
	bg_srv python3 -c '
import socket, sys, time
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
held = [socket.create_connection((host, port), timeout=5) for _ in range(n)]
def send(line):
    for s in held:
        try:
            s.send(line)
        except OSError:  # a connection the server closed
            pass
send(b"GET /metrics HTTP/1.1\r\n")
print("held", flush=True)
for _ in range(6):
    time.sleep(2)
    send(b"X-Slow: 1\r\n")' "$1" "${2%:*}" "${2##*:}" >"$3" 2>&1
}

test_one_client_cannot_take_every_connection() {
	local pid holder log before
	write_conf "$LS_TMP/any.conf" "metrics = *:$MPORT"
	check "attach with metrics = *:$MPORT" ls_attach "$SRV_IF" --config "$LS_TMP/any.conf"
	pid=$(agent_pid)
	wait_listening "$pid" "*:$MPORT" || { not_ok "the agent listens"; return 1; }
	# More half-sent requests than the endpoint takes connections, all from 127.0.0.1.
	log=/run/loadshed/net$(ls_srv -j list | jq -r .netns)/$SRV_IF.log
	before=$(wc -l <"$log")
	hold_connections 80 "127.0.0.1:$MPORT" "$LS_TMP/held"
	holder=$!
	wait_for_line "$LS_TMP/held" held 10 || { not_ok "the connections are open"; return 1; }
	check_eq "a scraper from another address is still served" \
		"$(http_code "http://$TB_SRV_IP:$MPORT/metrics")" 200
	check_eq "and the agent runs on" "$(agent_pid)" "$pid"
	kill "$holder" && wait "$holder" 2>/dev/null
	sleep 0.5
	# Each refused or cut-short connection is a message of the HTTP server: at
	# most LS_METRICS_LOG_PER_MIN (10) reach the log, then one saying so.
	check_cmp "80 misbehaving connections put at most 11 lines in the agent's log" \
		"$(tail -n +$((before + 1)) "$log" | grep -c "$SRV_IF: metrics: ")" -le 11
}

# prom_value QUERY: the value of the single series QUERY selects, from Prometheus's API.
prom_value() {
	scrape "http://127.0.0.1:9090/api/v1/query" --data-urlencode "query=$1" |
		jq -r 'if .data.result | length == 1 then .data.result[0].value[1] else "none" end'
}

# wait_prom_eq QUERY WANT: up to 10 s (10 scrapes) for Prometheus to hold WANT; prints what it holds.
wait_prom_eq() {
	local v i
	for i in $(seq 40); do
		v=$(prom_value "$1")
		[ "$v" = "$2" ] && break
		sleep 0.25
	done
	: "$i"
	echo "$v"
}

test_prometheus_scrapes_what_status_shows() {
	local load pid st cls field metric want got ratio page
	write_conf "$LS_TMP/m.conf" "metrics = 127.0.0.1:$MPORT"
	bg_srv "$LS_TOOLS/ls-server" --listen $TB_SRV_IP:$PORT --workers 4 --service-ms 20 \
		>"$LS_TMP/server.log" 2>&1
	wait_for_line "$LS_TMP/server.log" listening 10 || { not_ok "server starts"; return 1; }
	check "attach with metrics = 127.0.0.1:$MPORT" ls_attach "$SRV_IF" --config "$LS_TMP/m.conf"
	pid=$(agent_pid)
	wait_listening "$pid" "127.0.0.1:$MPORT" || { not_ok "the agent listens"; return 1; }

	cat >"$LS_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: loadshed
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOF
	mkdir -p "$LS_TMP/tsdb"
	bg_srv prometheus --config.file="$LS_TMP/prometheus.yml" \
		--storage.tsdb.path="$LS_TMP/tsdb" --web.listen-address=127.0.0.1:9090 \
		>"$LS_TMP/prometheus.log" 2>&1

	# 200 connections/s per class against a pinned limit of 4 (capacity ~200/s): both shed.
	bg_cli "$LS_TOOLS/ls-loadgen" --duration 8 --seed 3 \
		--class name=high,src=$HIGH,target=$TB_SRV_IP:$PORT,rate=200,deadline_ms=1000 \
		--class name=low,src=$LOW,target=$TB_SRV_IP:$PORT,rate=200,deadline_ms=1000 \
		--json "$LS_TMP/load.json" >"$LS_TMP/load.out" 2>&1
	load=$!
	sleep 7
	page=$(scrape "http://127.0.0.1:$MPORT/metrics")
	ratio=$(awk '/^loadshed_demand_ratio\{/ { print int($2 * 100) }' <<<"$page")
	echo "# demand ratio under load: ${ratio:-none} / 100"
	check_cmp "under 2x load with a pinned limit the demand ratio is above 1" "${ratio:-0}" -gt 100
	wait "$load"
	# The traffic is over: loadgen's sockets are gone with it, so no SYN comes again.
	for _ in $(seq 50); do
		[ "$(ls_srv -j status "$SRV_IF" | jq .services[0].inflight)" = 0 ] && break
		sleep 0.1
	done
	st=$(ls_srv -j status "$SRV_IF")

	check "Prometheus scraped the agent (up == 1)" \
		bash -c "$(declare -f scrape prom_value wait_prom_eq in_srv); SRV_NS=$SRV_NS; [ \"\$(wait_prom_eq 'up{job=\"loadshed\"}' 1)\" = 1 ]"
	for cls in high low; do
		for field in admitted shed_reset shed_drop; do
			case $field in
			admitted) metric="loadshed_admitted_total{class=\"$cls\"}" ;;
			shed_reset) metric="loadshed_shed_total{class=\"$cls\",action=\"reset\"}" ;;
			shed_drop) metric="loadshed_shed_total{class=\"$cls\",action=\"drop\"}" ;;
			esac
			want=$(jq -r --arg c "$cls" ".services[0].classes[] | select(.name == \$c) | .$field" <<<"$st")
			got=$(wait_prom_eq "$metric" "$want")
			check_eq "Prometheus's $metric is status's $cls.$field ($want)" "$got" "$want"
		done
	done
	want=$(jq -r '[.services[0].classes[] | .shed_reset + .shed_drop] | add' <<<"$st")
	check_cmp "both classes were shed" "$want" -gt 0
	check_eq "the latency histogram's count is the samples status counts" \
		"$(wait_prom_eq 'loadshed_latency_seconds_count' "$(jq '[.services[0].classes[].latency.count] | add' <<<"$st")")" \
		"$(jq '[.services[0].classes[].latency.count] | add' <<<"$st")"
	check_eq "histogram_quantile works on its buckets" \
		"$(scrape "http://127.0.0.1:9090/api/v1/query" --data-urlencode 'query=histogram_quantile(0.5, loadshed_latency_seconds_bucket) > 0' | jq '.data.result | length')" 1
	check_eq "loadshed_info names the algorithm and the unit" \
		"$(prom_value 'loadshed_info{service="web",algorithm="delay",admit="connections"}')" 1
	check_eq "loadshed_limit is the pinned limit" "$(prom_value 'loadshed_limit{service="web"}')" 4
	check_eq "loadshed_flows_max is the table's size" "$(prom_value 'loadshed_flows_max')" \
		"$(jq .max_flows <<<"$st")"
}

test_reload_moves_the_endpoint_and_a_busy_port_keeps_the_agent() {
	local pid out rc log
	write_conf "$LS_TMP/m.conf" "metrics = 127.0.0.1:$MPORT"
	check "attach with metrics = 127.0.0.1:$MPORT" ls_attach "$SRV_IF" --config "$LS_TMP/m.conf"
	pid=$(agent_pid)
	wait_listening "$pid" "127.0.0.1:$MPORT" || { not_ok "the agent listens"; return 1; }

	write_conf "$LS_TMP/bad.conf" "metrics = 0:$MPORT"
	out=$(ls_srv policy "$SRV_IF" reload "$LS_TMP/bad.conf" 2>&1)
	rc=$?
	check_eq "a reload with a bad address exits 2" "$rc" 2
	check "and says why" grep -q "\[agent\] metrics: '0' is not a numeric" <<<"$out"
	sleep 0.3
	check_eq "and changes nothing: the agent still serves 127.0.0.1:$MPORT" \
		"$(http_code "http://127.0.0.1:$MPORT/metrics")" 200

	write_conf "$LS_TMP/moved.conf" "metrics = 127.0.0.1:$((MPORT + 1))"
	check "a reload with another port" ls_srv policy "$SRV_IF" reload "$LS_TMP/moved.conf"
	check "the agent moves to it" wait_listening "$pid" "127.0.0.1:$((MPORT + 1))"
	check_eq "and no longer listens on the old one" "$(listeners "$pid" | grep -c ":$MPORT\$")" 0

	# Another process holds the port: the agent logs it and goes on.
	bg_srv "$LS_TOOLS/ls-server" --listen 127.0.0.1:$((MPORT + 2)) --workers 1 --service-ms 1 \
		>"$LS_TMP/squatter.log" 2>&1
	wait_for_line "$LS_TMP/squatter.log" listening 10 || { not_ok "the squatter listens"; return 1; }
	write_conf "$LS_TMP/busy.conf" "metrics = 127.0.0.1:$((MPORT + 2))"
	check "a reload to a port another process holds is accepted" \
		ls_srv policy "$SRV_IF" reload "$LS_TMP/busy.conf"
	log=/run/loadshed/net$(ls_srv -j list | jq -r .netns)/$SRV_IF.log
	check "the agent logs that it cannot listen there" \
		wait_for_line "$log" "metrics: cannot listen on 127.0.0.1:$((MPORT + 2))" 5
	sleep 0.5
	check_eq "the agent runs on: the same pid" "$(agent_pid)" "$pid"
	check_eq "and the dataplane enforces: its heartbeat is not stale" \
		"$(ls_srv -j status "$SRV_IF" | jq .agent.enforcing)" true
	check_eq "and it listens on nothing" "$(listeners "$pid" | wc -l)" 0

	write_conf "$LS_TMP/off.conf" "metrics = off"
	check "metrics = off in a reload" ls_srv policy "$SRV_IF" reload "$LS_TMP/off.conf"
	write_conf "$LS_TMP/m.conf" "metrics = [::1]:$MPORT"
	check "then [::1]:$MPORT" ls_srv policy "$SRV_IF" reload "$LS_TMP/m.conf"
	check "the agent listens on [::1]:$MPORT" wait_listening "$pid" "[::1]:$MPORT"
	check_eq "and serves there" "$(http_code "http://[::1]:$MPORT/metrics")" 200
	ls_srv detach "$SRV_IF" >/dev/null 2>&1
	sleep 0.2
	check_eq "after detach nothing listens on the metrics port" \
		"$(in_srv ss -Hltn "sport = :$MPORT" | wc -l)" 0
}

suite_setup setup_suite
run_test "metrics are off unless configured: the agent listens on nothing" test_metrics_are_off_by_default
run_test "a wildcard only when written; bad addresses refused at attach" test_wildcard_only_when_written_and_bad_addresses_refused
run_test "only GET /metrics is served: 404 elsewhere, 405 for other methods" test_only_get_metrics_is_served
run_test "one client holding half-sent requests cannot lock other scrapers out" test_one_client_cannot_take_every_connection
run_test "a real Prometheus scrapes the counters status shows" test_prometheus_scrapes_what_status_shows
run_test "a reload moves the endpoint; a port it cannot bind leaves the agent running" test_reload_moves_the_endpoint_and_a_busy_port_keeps_the_agent
tap_done
