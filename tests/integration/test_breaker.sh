#!/usr/bin/env bash
# The outbound circuit breaker (doc/design.md §15) with real sockets: client
# processes in a test cgroup of their own call an upstream in the testbed's
# server namespace; the breaker is attached to that cgroup only. Each way a
# call fails (refused, timed out — about 7 s —, reset, slow), both windows,
# half-open permits, forged segments, reload, detach and the metrics.
# About 90 s. Needs root, iptables, bpftool, promtool.
set -u
# shellcheck source=tests/lib.sh disable=SC1091
. "$(dirname "$0")/../lib.sh"

UP_PORT=9400

# A client: `call HOST PORT [hold]` prints ok or the errno name of the first
# failing step; with hold it keeps the connection after one answered request,
# waits for the file FLAG, then sends the next request (a pooled connection);
# `call HOST PORT FLAG first` waits for FLAG before its first request.
write_client() {
	cat >"$LS_TMP/client.py" <<'EOF'
import errno, os, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
hold = len(sys.argv) > 3
try:
    if os.environ.get("SYNCNT"):  # give up the connect after that many SYN retransmissions
        c = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, int(os.environ["SYNCNT"]))
        c.connect((host, port))
    else:
        c = socket.create_connection((host, port), timeout=5)
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno)); sys.exit(0)
try:
    if len(sys.argv) > 4:  # a trial: hold the connection (and its permit) until told
        print("connected", flush=True)
        while not os.path.exists(sys.argv[3]): time.sleep(0.05)
    c.sendall(b"ping\n"); c.recv(16)
    if hold and len(sys.argv) == 4:
        print("held", flush=True)
        while not os.path.exists(sys.argv[3]): time.sleep(0.05)
        c.sendall(b"ping\n"); c.recv(16)
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
EOF
	cat >"$LS_TMP/server.py" <<'EOF'
import socket, struct, sys, threading, time
# server.py ADDR PORT [DELAY_S] [RESET_AFTER]: answers each request after
# DELAY_S; with RESET_AFTER = N, resets the connection (SO_LINGER 0) after
# its Nth answer (0: at its first request, unanswered).
delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0
reset_after = int(sys.argv[4]) if len(sys.argv) > 4 else -1
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
print("listening", flush=True)
def reset(c):
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
def serve(c):
    n = 0
    while c.recv(64):
        if n == reset_after:
            return reset(c)
        time.sleep(delay)
        c.sendall(b"pong\n")
        n += 1
        if n == reset_after:
            time.sleep(0.2)
            return reset(c)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
EOF
}

write_forger() {
	cat >"$LS_TMP/forge.py" <<'EOF'
# forge.py IFACE UPSTREAM_IP PORT: in the upstream's namespace, watches IFACE
# and, as a forger posing as the upstream, answers the caller's first request
# with a segment far outside its window (off-path: the sequence not known),
# then its second request with a copy of the first answer (a retransmission,
# or an on-path replay of old data). Prints forged1 and forged2 when sent.
import socket, struct, sys

ifname, up_ip, up_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
v6 = ":" in up_ip
fam = socket.AF_INET6 if v6 else socket.AF_INET
up_bin = socket.inet_pton(fam, up_ip)
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
sniff.bind((ifname, 0))
sniff.settimeout(10)
raw = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
raw.bind((up_ip, 0))
print("ready", flush=True)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def segment():
    """The next TCP segment of the upstream's port: (from_upstream, peer, seq, ack, flags, payload)."""
    while True:
        f = sniff.recv(65536)
        if v6:
            if len(f) < 54 or f[12:14] != b"\x86\xdd" or f[20] != 6:
                continue
            src, dst, t = f[22:38], f[38:54], f[54:]
            end = 54 + struct.unpack("!H", f[18:20])[0]
        else:
            if len(f) < 34 or f[12:14] != b"\x08\x00" or f[23] != 6:
                continue
            src, dst, t = f[26:30], f[30:34], f[14 + (f[14] & 0xF) * 4:]
            end = 14 + struct.unpack("!H", f[16:18])[0]
        sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", t[:14])
        payload = t[(off >> 4) * 4:len(t) - (len(f) - end)]
        if src == up_bin and sport == up_port:
            return True, (dst, dport), seq, ack, flags, payload
        if dst == up_bin and dport == up_port:
            return False, (src, sport), seq, ack, flags, payload


def forge(peer, seq, ack, payload):
    hdr = struct.pack("!HHIIBBHHH", up_port, peer[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      5 << 4, 0x18, 65535, 0, 0)
    n = len(hdr) + len(payload)
    pseudo = up_bin + peer[0] + (struct.pack("!IxxxB", n, 6) if v6 else struct.pack("!BBH", 0, 6, n))
    c = csum(pseudo + hdr + payload)
    raw.sendto(hdr[:16] + struct.pack("!H", c) + hdr[18:] + payload,
               (socket.inet_ntop(fam, peer[0]), 0))


def wait(from_up, want_payload, flags=None):
    while True:
        up, peer, seq, ack, fl, payload = segment()
        if up == from_up and (not want_payload or payload) and (flags is None or fl & flags == flags):
            return peer, seq, ack, payload


peer, isn, _, _ = wait(True, False, 0x12)  # SYN-ACK
_, seq, _, req = wait(False, True)  # request 1
forge(peer, isn + 1 + 0x80000000, seq + len(req), b"pong\n")
print("forged1", flush=True)
_, aseq, _, answer = wait(True, True)  # answer 1
_, seq, _, req = wait(False, True)  # request 2
forge(peer, aseq, seq + len(req), answer)
print("forged2", flush=True)
EOF
}

cg_mount() { awk '{ for (i = 1; i < NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -1; }

# in_cg CMD...: CMD in the client namespace, inside the test cgroup.
in_cg() { nsenter --net="/run/netns/$CLI_NS" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG_DIR" "$@"; }
call() { in_cg python3 "$LS_TMP/client.py" "$@"; }
call_outside() { nsenter --net="/run/netns/$CLI_NS" python3 "$LS_TMP/client.py" "$@"; }

# start_server ADDR PORT [DELAY_S] [RESET_AFTER]: server.py in the server
# namespace, once it listens (a loaded machine may take seconds to start it).
SRV_N=0
start_server() {
	local log=$LS_TMP/server$((SRV_N += 1)).out
	bg_srv python3 "$LS_TMP/server.py" "$@" >"$log"
	wait_for_line "$log" listening 10 || not_ok "server.py $* listens"
}

# hb: the agent's last heartbeat (the dataplane's clock).
hb() {
	bpftool -j map lookup pinned "$(pin_dir "$SRV_IF")/state" key 0 0 0 0 |
		jq .formatted.value.heartbeat_ns
}
# agent_rounds: waits (up to 10 s) for two heartbeats after the current one:
# the round that writes the second began after this call, so the agent has
# seen every outcome counted before it.
agent_rounds() {
	local i n=0 h h0
	h0=$(hb)
	for i in $(seq 200); do
		h=$(hb)
		if [ "$h" != "$h0" ]; then
			h0=$h
			n=$((n + 1))
			[ "$n" -ge 2 ] && return 0
		fi
		sleep 0.05
	done
	: "$i"
	return 1
}

# ctl_permits INDEX: brk_ctl's raw permits (BTF-typed) of upstream INDEX.
ctl_permits() {
	in_srv bpftool -j map lookup pinned "$(pin_dir "$SRV_IF")/brk_ctl" key "$1" 0 0 0 |
		jq .formatted.value.permits
}
up() { ls_srv -j breaker "$SRV_IF" status | jq -r ".upstreams[] | select(.name == \"$1\") | .$2"; }

# wait_gone PID: up to 5 s for PID to exit (a zombie has exited: its locks are gone).
wait_gone() {
	local i
	for i in $(seq 100); do
		[ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null || return 0
		sleep 0.05
	done
	: "$i"
	return 1
}

# wait_state NAME STATE [SECONDS]
wait_state() {
	local i
	for i in $(seq $((${3:-10} * 20))); do
		[ "$(up "$1" state)" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

attach_breaker() {
	write_client
	CG_DIR=$(cg_mount)/ls-brk-$$
	mkdir -p "$CG_DIR" || return 1
	defer rmdir "$CG_DIR"
	if [ -n "${BRK_SUBCG:-}" ]; then
		mkdir -p "$CG_DIR/$BRK_SUBCG" || return 1
		defer rmdir "$CG_DIR/$BRK_SUBCG"
	fi
	cat >"$LS_TMP/brk.conf" <<EOF
${BRK_HEAD:-}[service web]
listen = *:8080

[upstream db]
dest = 10.201.0.1:$UP_PORT, [fd00:201::1]:$UP_PORT${BRK_DEST_EXTRA:-}
cgroup = ${CG_DIR#"$(cg_mount)"}
sliding_window_size = 4
minimum_number_of_calls = 4
failure_rate_threshold = 50%
slow_call_duration_threshold = 300ms
wait_duration_in_open_state = 2s
permitted_number_of_calls_in_half_open_state = 2
${BRK_TAIL:-}
EOF
	ls_attach "$SRV_IF" --config "$LS_TMP/brk.conf" >/dev/null
}

test_refused_upstream_opens_and_recovers() {
	local host=$1 r i
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	for i in 1 2 3 4; do
		r=$(call "$host" "$UP_PORT")
		[ "$r" = ECONNREFUSED ] || break
	done
	check_eq "refused by the upstream itself" "$r" ECONNREFUSED
	wait_state db open
	check_eq "4 refused calls open the circuit" "$(up db state)" open
	check_eq "failures counted" "$(up db failures)" 4
	check_eq "refused counted" "$(up db refused)" 4
	check_eq "connect fails with ECONNREFUSED at once" "$(call "$host" "$UP_PORT")" ECONNREFUSED
	check_eq "counted as rejected_connect" "$(up db rejected_connect)" 1
	check_eq "refused by the circuit, not counted as a call" "$(up db calls)" 4
	# A process outside the test cgroup is never affected: it reaches the upstream.
	call_outside "$host" "$UP_PORT" >/dev/null
	check_eq "a caller outside the cgroup is not rejected" "$(up db rejected_connect)" 1
	start_server "$host" "$UP_PORT"
	wait_state db half_open 5
	check_eq "HALF_OPEN after wait_duration_in_open_state" "$(up db state)" half_open
	# Two trials connect and hold their permits; the third call finds none left.
	for i in 1 2; do
		in_cg python3 "$LS_TMP/client.py" "$host" "$UP_PORT" "$LS_TMP/go$i" first \
			>"$LS_TMP/trial$i" &
		track_pid $!
		wait_for_line "$LS_TMP/trial$i" 'connected\|^E' 5
	done
	r="$(head -1 "$LS_TMP/trial1") $(head -1 "$LS_TMP/trial2") $(call "$host" "$UP_PORT")"
	check_eq "exactly 2 trial calls pass, the third fails fast" "$r" \
		"connected connected ECONNREFUSED"
	check_eq "2 trials counted" "$(up db trials)" 2
	# Refused attempts leave the count at 0: were each to take it lower, 2^31
	# of them would wrap it around to permits.
	check_eq "brk_ctl's permits at 0, not below" "$(ctl_permits 0)" 0
	check_eq "still half open while the trials are outstanding" "$(up db state)" half_open
	touch "$LS_TMP/go1" "$LS_TMP/go2"
	wait_for_line "$LS_TMP/trial1" '^ok' 5
	wait_for_line "$LS_TMP/trial2" '^ok' 5
	wait_state db closed
	check_eq "successful trials close the circuit" "$(up db state)" closed
	check_eq "transitions" "$(up db to_open) $(up db to_half_open) $(up db to_closed)" "1 1 1"
	check_eq "calls flow again" "$(call "$host" "$UP_PORT")" ok
}

test_slow_upstream_opens_by_slow_call_rate() {
	local i r
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	# Answers after 0.5 s, past slow_call_duration_threshold (300 ms).
	start_server 10.201.0.1 "$UP_PORT" 0.5
	for i in 1 2 3 4; do
		r=$(call 10.201.0.1 "$UP_PORT")
	done
	check_eq "slow calls are answered" "$r" ok
	wait_state db open
	check_eq "4 slow calls of 4 open the circuit (slow_call_rate_threshold 100%)" \
		"$(up db state)" open
	check_eq "counted: calls, failures, slow" \
		"$(up db calls) $(up db failures) $(up db slow)" "4 0 4"
	check_eq "a connect then fails at once" "$(call 10.201.0.1 "$UP_PORT")" ECONNREFUSED
}

test_open_circuit_refuses_a_pooled_request() {
	local out
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	start_server 10.201.0.1 "$UP_PORT"
	out=$LS_TMP/pooled.out
	in_cg python3 "$LS_TMP/client.py" 10.201.0.1 "$UP_PORT" "$LS_TMP/go" >"$out" &
	track_pid $!
	wait_for_line "$out" held 5
	ls_srv breaker "$SRV_IF" open db
	check_eq "breaker open forces the state" "$(up db state) $(up db mode)" "open forced_open"
	touch "$LS_TMP/go"
	wait_for_line "$out" '^E\|^ok' 5
	check_eq "the next request on a pooled connection fails at once" "$(tail -1 "$out")" EACCES
	check_eq "counted as rejected_send" "$(up db rejected_send)" 1
	ls_srv breaker "$SRV_IF" close db
	check_eq "breaker close" "$(call 10.201.0.1 "$UP_PORT")" ok
	ls_srv breaker "$SRV_IF" auto db
	check_eq "breaker auto hands it back" "$(up db mode)" auto
}

# brk_conf FILE [FIRST_UPSTREAM_SECTION]: the suite's config, with another
# section before [upstream db] (the same upstream at another index).
brk_conf() {
	sed -n '1,/^\[upstream db\]/p' "$LS_TMP/brk.conf" | sed '$d' >"$1"
	[ -n "${2:-}" ] && printf '%s\n\n' "$2" >>"$1"
	sed -n '/^\[upstream db\]/,$p' "$LS_TMP/brk.conf" >>"$1"
}

# An SRE reloading a policy during an incident must not see the open circuit
# close: a reload keeps each upstream's state, window and counters by name.
test_reload_keeps_state_window_and_counters() {
	local i
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	brk_conf "$LS_TMP/same.conf"
	brk_conf "$LS_TMP/moved.conf" "$(printf '[upstream cache]\ndest = 10.201.0.1:9401\ncgroup = %s' \
		"${CG_DIR#"$(cg_mount)"}")"
	brk_conf "$LS_TMP/bad.conf" "$(printf '[upstream cache]\ndest = 10.201.0.1:9401\ncgroup = /ls-brk-none-%s' $$)"
	for i in 1 2 3; do call 10.201.0.1 "$UP_PORT" >/dev/null; done
	check "reload with the same config" ls_srv policy "$SRV_IF" reload "$LS_TMP/same.conf"
	check_eq "counters kept" "$(up db calls) $(up db refused)" "3 3"
	check "reload with db at another index" ls_srv policy "$SRV_IF" reload "$LS_TMP/moved.conf"
	check_eq "counters kept, still closed" "$(up db calls) $(up db state)" "3 closed"
	call 10.201.0.1 "$UP_PORT" >/dev/null
	wait_state db open
	check_eq "the window was kept: a 4th refused call opens the circuit" "$(up db state)" open
	check "reload while open" ls_srv policy "$SRV_IF" reload "$LS_TMP/moved.conf"
	check_eq "still open, transitions kept" "$(up db state) $(up db to_open) $(up db calls)" \
		"open 1 4"
	check_eq "still refused by the circuit" \
		"$(call 10.201.0.1 "$UP_PORT") $(up db rejected_connect)" "ECONNREFUSED 1"
	ls_srv policy "$SRV_IF" reload "$LS_TMP/bad.conf" >"$LS_TMP/bad.out" 2>&1
	check "a reload with a missing cgroup is refused" grep -q "ls-brk-none-$$" "$LS_TMP/bad.out"
	check_eq "and changes nothing" "$(up db state) $(up db calls) $(up cache name)" "open 4 cache"
	check_eq "the agent keeps its heartbeat" "$(ls_srv -j status "$SRV_IF" | jq -r .agent.fail_open)" \
		false
}

# A half-open trial permit that no call uses goes back, or the circuit would
# wait for trials that never come (max_wait_duration_in_half_open_state = 0):
# a connect that fails before its SYN (no route), a connection closed
# without a request.
test_unused_trial_permits_go_back() {
	local i
	# 10.209.0.1: no route from the client namespace.
	BRK_DEST_EXTRA=", 10.209.0.1:$UP_PORT" attach_breaker ||
		{ not_ok "attach with an upstream"; return 1; }
	for i in 1 2 3 4; do call 10.201.0.1 "$UP_PORT" >/dev/null; done
	wait_state db open
	start_server 10.201.0.1 "$UP_PORT"
	wait_state db half_open 5
	check_eq "half open with its 2 permits" "$(up db state) $(up db half_open_permits_left)" \
		"half_open 2"
	check_eq "a trial connect with no route fails" "$(call 10.209.0.1 "$UP_PORT")" ENETUNREACH
	check "a trial connection closed without a request" in_cg python3 -c \
		"import socket; socket.create_connection(('10.201.0.1', $UP_PORT), timeout=5).close()"
	check_eq "both permits were taken and are back" \
		"$(up db trials) $(up db half_open_permits_left) $(up db calls)" "2 2 4"
	check_eq "two trial calls pass" "$(call 10.201.0.1 "$UP_PORT") $(call 10.201.0.1 "$UP_PORT")" \
		"ok ok"
	wait_state db closed
	check_eq "and close the circuit" "$(up db state)" closed
}

# Each upstream applies to the processes of its own cgroup (and of the
# cgroups below it), once: with db on the test cgroup and inner on a cgroup
# inside it, a caller in the inner cgroup calling db counts one call, and a
# caller outside the inner cgroup calling inner's upstream is not its caller.
in_inner() { nsenter --net="/run/netns/$CLI_NS" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG_DIR/inner" "$@"; }

test_each_upstream_applies_to_its_cgroup_only() {
	local i inner_port=$((UP_PORT + 2))
	BRK_SUBCG=inner BRK_TAIL="[upstream inner]
dest = 10.201.0.1:$inner_port
cgroup = /ls-brk-$$/inner
minimum_number_of_calls = 1" attach_breaker || { not_ok "attach with nested upstreams"; return 1; }
	check_eq "a caller in the inner cgroup calls db: refused" \
		"$(in_inner python3 "$LS_TMP/client.py" 10.201.0.1 "$UP_PORT")" ECONNREFUSED
	check_eq "counted once, as db's" "$(up db calls) $(up db refused)" "1 1"
	for i in 2 3 4; do in_inner python3 "$LS_TMP/client.py" 10.201.0.1 "$UP_PORT" >/dev/null; done
	wait_state db open
	wait_state db half_open 5
	in_inner python3 "$LS_TMP/client.py" 10.201.0.1 "$UP_PORT" >/dev/null
	check_eq "a half-open call from the inner cgroup takes one permit" \
		"$(up db trials) $(up db half_open_permits_left)" "1 1"
	check_eq "a caller of db's cgroup calls inner's upstream" \
		"$(call 10.201.0.1 "$inner_port")" ECONNREFUSED
	check_eq "which is not inner's call" "$(up inner calls) $(up inner state)" "0 closed"
}

# A connect whose SYNs go unanswered is one failed call, at the third SYN
# retransmission timeout (LS_BRK_SYN_RTOS): about 7 s.
test_connect_timeout_is_one_failed_call() {
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	in_srv iptables -A INPUT -p tcp --dport "$UP_PORT" --syn -j DROP ||
		{ not_ok "iptables drops the SYNs"; return 1; }
	defer in_srv iptables -D INPUT -p tcp --dport "$UP_PORT" --syn -j DROP
	check_eq "the connect times out (TCP_SYNCNT 2)" \
		"$(SYNCNT=2 call 10.201.0.1 "$UP_PORT")" ETIMEDOUT
	check_eq "one failed call, counted as a connect timeout, not as refused" \
		"$(up db calls) $(up db failures) $(up db connect_timeouts) $(up db refused)" "1 1 1 0"
}

# A reset from the upstream fails the call it interrupts, or the connection's
# next one when it was idle.
test_upstream_reset_is_a_failure() {
	local out=$LS_TMP/pooled.out i
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	start_server 10.201.0.1 "$UP_PORT" 0 0
	check_eq "reset with the request outstanding" "$(call 10.201.0.1 "$UP_PORT")" ECONNRESET
	check_eq "one failed call, a reset" \
		"$(up db calls) $(up db failures) $(up db resets) $(up db no_answer)" "1 1 1 0"
	start_server 10.201.0.1 $((UP_PORT + 1)) 0 1
	sed -i "s/^dest = .*/&, 10.201.0.1:$((UP_PORT + 1))/" "$LS_TMP/brk.conf"
	ls_srv policy "$SRV_IF" reload "$LS_TMP/brk.conf"
	in_cg python3 "$LS_TMP/client.py" 10.201.0.1 $((UP_PORT + 1)) "$LS_TMP/go" >"$out" &
	track_pid $!
	wait_for_line "$out" held 5
	for i in $(seq 50); do [ "$(up db resets)" = 2 ] && break; sleep 0.1; done
	check_eq "an idle pooled connection reset: a failed call" \
		"$(up db calls) $(up db failures) $(up db resets)" "3 2 2"
	touch "$LS_TMP/go"
	wait_for_line "$out" '^E\|^ok' 5
	check "the caller's next send fails" grep -q '^E' "$out"
}

# sliding_window_type = time_based: outcomes older than the window leave it.
test_time_based_window_forgets_old_calls() {
	local i
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	sed -i 's/^sliding_window_size = 4/sliding_window_type = time_based\nsliding_window_size = 2/;
		s/^minimum_number_of_calls = 4/minimum_number_of_calls = 3/' "$LS_TMP/brk.conf"
	check "reload with a 2 s time-based window" ls_srv policy "$SRV_IF" reload "$LS_TMP/brk.conf"
	for i in 1 2; do call 10.201.0.1 "$UP_PORT" >/dev/null; done
	sleep 3.2 # past the window: those two leave it
	for i in 1 2; do call 10.201.0.1 "$UP_PORT" >/dev/null; done
	agent_rounds || not_ok "the agent runs its rounds"
	check_eq "4 refused calls, 2 of them in the window: still closed" \
		"$(up db calls) $(up db state)" "4 closed"
	call 10.201.0.1 "$UP_PORT" >/dev/null
	wait_state db open
	check_eq "a 3rd in the window opens the circuit" "$(up db state)" open
}

# A trial connect that fails is a trial's outcome: failed trials open again.
test_failed_trial_connects_open_again() {
	local i
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	for i in 1 2 3 4; do call 10.201.0.1 "$UP_PORT" >/dev/null; done
	wait_state db open
	wait_state db half_open 5
	check_eq "trial connects refused by the upstream" \
		"$(call 10.201.0.1 "$UP_PORT") $(call 10.201.0.1 "$UP_PORT")" "ECONNREFUSED ECONNREFUSED"
	wait_state db open
	check_eq "two failed trials: open again" \
		"$(up db state) $(up db trials) $(up db to_open) $(up db to_half_open)" "open 2 2 1"
}

# Detach leaves no breaker pin and no program on the test cgroup.
test_detach_removes_every_pin_and_link() {
	local dir
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	dir=$(pin_dir "$SRV_IF")
	check "brk_ pins while attached" test -e "$dir/brk_ctl"
	check "programs on the test cgroup while attached" \
		bash -c "bpftool cgroup show '$CG_DIR' | grep -q ls_brk"
	check "detach" ls_srv detach "$SRV_IF"
	check_eq "no brk_ pin left" "$(find "$dir" -maxdepth 1 -name 'brk_*' 2>/dev/null | wc -l)" 0
	check_eq "no program left on the test cgroup" "$(bpftool cgroup show "$CG_DIR" | grep -c ls_brk)" 0
}

# Without upstreams, status says so on a line of its own.
test_status_without_upstreams() {
	printf '[service web]\nlisten = *:8080\n' >"$LS_TMP/plain.conf"
	ls_attach "$SRV_IF" --config "$LS_TMP/plain.conf" >/dev/null ||
		{ not_ok "attach without upstreams"; return 1; }
	check_eq "breaker status ends its line" "$(ls_srv breaker "$SRV_IF" status | od -An -c | tr -s ' ')" \
		"$(printf '%s: 0 upstreams\n' "$SRV_IF" | od -An -c | tr -s ' ')"
}

MPORT=9102
scrape() { in_srv curl -s -m 5 "http://127.0.0.1:$MPORT/metrics"; }
# sample NAME{LABELS}: its value on the last page scraped to $LS_TMP/page.
sample() { awk -v k="$1" '$1 == k { print $2 }' "$LS_TMP/page"; }

# The metrics endpoint's breaker families say what `breaker status` says.
test_metrics_match_breaker_status() {
	local i st l='iface="'$SRV_IF'",upstream="db"'
	BRK_HEAD="[agent]"$'\n'"metrics = 127.0.0.1:$MPORT"$'\n\n' attach_breaker ||
		{ not_ok "attach with an upstream and metrics"; return 1; }
	for i in 1 2 3 4; do call 10.201.0.1 "$UP_PORT" >/dev/null; done
	wait_state db open
	call 10.201.0.1 "$UP_PORT" >/dev/null # refused by the circuit
	# The page is built each round: wait for the one after the rejection.
	for i in $(seq 50); do
		scrape >"$LS_TMP/page"
		[ "$(sample "loadshed_breaker_rejected_total{$l,where=\"connect\"}")" = 1 ] && break
		sleep 0.1
	done
	st=$(ls_srv -j breaker "$SRV_IF" status | jq '.upstreams[] | select(.name == "db")')
	check_eq "state: 1 for open, 0 for the others" \
		"$(sample "loadshed_breaker_state{$l,state=\"closed\"}") $(sample "loadshed_breaker_state{$l,state=\"open\"}") $(sample "loadshed_breaker_state{$l,state=\"half_open\"}")" \
		"0 1 0"
	check_eq "calls by outcome are status's" \
		"$(sample "loadshed_breaker_calls_total{$l,outcome=\"ok\"}") $(sample "loadshed_breaker_calls_total{$l,outcome=\"refused\"}") $(sample "loadshed_breaker_calls_total{$l,outcome=\"reset\"}")" \
		"$(jqr "$st" '"\(.calls - .failures) \(.refused) \(.resets)"')"
	check_eq "refused calls: 4" "$(jqr "$st" .refused)" 4
	check_eq "rejections by where are status's" \
		"$(sample "loadshed_breaker_rejected_total{$l,where=\"connect\"}") $(sample "loadshed_breaker_rejected_total{$l,where=\"send\"}")" \
		"$(jqr "$st" '"\(.rejected_connect) \(.rejected_send)"')"
	check_eq "transitions are status's" \
		"$(sample "loadshed_breaker_transitions_total{$l,to=\"open\"}") $(sample "loadshed_breaker_transitions_total{$l,to=\"half_open\"}") $(sample "loadshed_breaker_transitions_total{$l,to=\"closed\"}")" \
		"$(jqr "$st" '"\(.to_open) \(.to_half_open) \(.to_closed)"')"
	check "the page passes promtool check metrics" promtool check metrics <"$LS_TMP/page"
}

# The ingress program runs before TCP validates a segment: a forged or
# retransmitted segment with a payload must not end a call as answered
# (it would hide a slow upstream and keep its circuit closed).
test_forged_or_old_answer_ends_no_call() {
	local host=$1 out=$LS_TMP/pooled.out forger=$LS_TMP/forger.out
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	write_forger
	# Every answer after 1 s: slow (slow_call_duration_threshold 300ms).
	start_server "$host" "$UP_PORT" 1
	bg_srv python3 "$LS_TMP/forge.py" "$SRV_IF" "$host" "$UP_PORT" >"$forger"
	wait_for_line "$forger" ready 10 || not_ok "forge.py watches $SRV_IF"
	touch "$LS_TMP/go" # two requests back to back on one connection
	call "$host" "$UP_PORT" "$LS_TMP/go" >"$out"
	check_eq "both requests answered" "$(tail -1 "$out")" ok
	check_eq "a forged segment and a copy of an old answer were sent" \
		"$(grep forged "$forger" | tr '\n' ' ')" "forged1 forged2 "
	check_eq "both calls end at their real, slow answer" \
		"$(up db calls) $(up db failures) $(up db slow)" "2 0 2"
}

test_dead_agent_leaves_circuits_closed() {
	local pid
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	start_server 10.201.0.1 "$UP_PORT"
	ls_srv breaker "$SRV_IF" open db
	check_eq "open" "$(call 10.201.0.1 "$UP_PORT")" ECONNREFUSED
	pid=$(ls_srv -j status "$SRV_IF" | jq -r .agent.pid)
	kill -KILL "$pid"
	sleep 3.5 # fail_open_after, 3 s by default
	check_eq "with the agent dead, calls flow" "$(call 10.201.0.1 "$UP_PORT")" ok
}

# restart_agent: kills the interface's agent, starts another once the
# killed one is gone (its lock goes with it: a new agent started before then
# refuses to run), and waits until the new one holds the lock (AGENT_PID).
restart_agent() {
	local i pid
	pid=$(ls_srv -j status "$SRV_IF" | jq -r .agent.pid)
	kill -KILL "$pid"
	wait_gone "$pid" || { not_ok "the killed agent $pid is gone"; return 1; }
	bg_srv "$LOADSHED" agent "$SRV_IF"
	AGENT_PID=$!
	for i in $(seq 100); do
		[ "$(ls_srv -j status "$SRV_IF" | jq -r .agent.pid)" = "$AGENT_PID" ] && return 0
		sleep 0.05
	done
	: "$i"
	not_ok "the new agent $AGENT_PID runs"
	return 1
}

# wait_permits N: up to 5 s for half_open_permits_left to be N.
wait_permits() {
	local i
	for i in $(seq 100); do
		[ "$(up db half_open_permits_left)" = "$1" ] && return 0
		sleep 0.05
	done
	: "$i"
	return 1
}

# half_open_with_trials_held N: the circuit of db opened by 4 refused calls,
# then half open with a server, and N trial connections that hold their
# permits (trialI.out; they send once goI exists).
half_open_with_trials_held() {
	local i
	for i in 1 2 3 4; do call 10.201.0.1 "$UP_PORT" >/dev/null; done
	wait_state db open || { not_ok "4 refused calls open the circuit"; return 1; }
	start_server 10.201.0.1 "$UP_PORT"
	wait_state db half_open 5 || { not_ok "half open after the wait"; return 1; }
	for i in $(seq "$1"); do
		in_cg python3 "$LS_TMP/client.py" 10.201.0.1 "$UP_PORT" "$LS_TMP/go$i" first \
			>"$LS_TMP/trial$i.out" &
		track_pid $!
		wait_for_line "$LS_TMP/trial$i.out" 'connected\|^E' 5
	done
}

# The trials of a half-open phase live in the agent's memory: an agent
# restarted while the permits are held by connections that never send
# starts a fresh phase (all permits, no trials) rather than refuse every
# call forever.
test_restarted_agent_in_half_open_starts_a_fresh_phase() {
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	half_open_with_trials_held 2 || return 1
	check_eq "both permits held" "$(up db half_open_permits_left) $(ctl_permits 0)" "0 0"
	restart_agent || return 1
	check "the new agent gives a fresh phase all its permits" wait_permits 2
	check_eq "still half open" "$(up db state)" half_open
	check_eq "new trial calls pass" "$(call 10.201.0.1 "$UP_PORT") $(call 10.201.0.1 "$UP_PORT")" \
		"ok ok"
	wait_state db closed
	check_eq "and close the circuit" "$(up db state)" closed
	touch "$LS_TMP/go1" "$LS_TMP/go2"
	wait_for_line "$LS_TMP/trial1.out" '^ok\|^E' 5
	check_eq "an old trial connection's request passes the closed circuit" \
		"$(tail -1 "$LS_TMP/trial1.out")" ok
}

# A reload gives the held permits' sockets a socket storage the new breaker
# does not see: they can neither give them back nor end a trial. A reload
# in half open starts a fresh phase: all permits, and the agent counts its
# trials from 0.
test_reload_in_half_open_starts_a_fresh_phase() {
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	half_open_with_trials_held 1 || return 1
	check_eq "one trial answered" "$(call 10.201.0.1 "$UP_PORT")" ok
	agent_rounds || not_ok "the agent runs its rounds"
	check_eq "half open, both permits taken" \
		"$(up db state) $(up db half_open_permits_left)" "half_open 0"
	check "reload" ls_srv policy "$SRV_IF" reload "$LS_TMP/brk.conf"
	check_eq "half open with all its permits" \
		"$(up db state) $(up db half_open_permits_left)" "half_open 2"
	check_eq "a trial of the fresh phase" "$(call 10.201.0.1 "$UP_PORT")" ok
	agent_rounds || not_ok "the agent runs its rounds"
	check_eq "one trial of two: still half open" "$(up db state)" half_open
	check_eq "the second" "$(call 10.201.0.1 "$UP_PORT")" ok
	wait_state db closed
	check_eq "closes the circuit" "$(up db state)" closed
	touch "$LS_TMP/go1"
	wait_for_line "$LS_TMP/trial1.out" '^ok\|^E' 5
}

# A permit taken at connect is only good in the half-open phase it came
# from: the connection's first request after the circuit opened again is
# refused.
test_trial_permit_of_an_ended_phase_is_refused() {
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	half_open_with_trials_held 1 || return 1
	check_eq "the trial connected" "$(head -1 "$LS_TMP/trial1.out")" connected
	ls_srv breaker "$SRV_IF" open db
	touch "$LS_TMP/go1"
	wait_for_line "$LS_TMP/trial1.out" '^ok\|^E' 5
	check_eq "its first request, the circuit open, fails at once" \
		"$(tail -1 "$LS_TMP/trial1.out") $(up db rejected_send)" "EACCES 1"
}

# An agent killed and started again resumes each circuit where it was.
test_restarted_agent_resumes() {
	local i
	attach_breaker || { not_ok "attach with an upstream"; return 1; }
	for i in 1 2 3 4; do call 10.201.0.1 "$UP_PORT" >/dev/null; done
	wait_state db open
	restart_agent || return 1
	ok "a new agent runs"
	agent_rounds || not_ok "the new agent runs its rounds"
	check_eq "still open under the new agent" "$(up db state) $(up db to_open)" "open 1"
	wait_state db half_open 5
	check_eq "which moves it to half open after the wait, counting on" \
		"$(up db state) $(up db to_open) $(up db to_half_open) $(up db calls)" "half_open 1 1 4"
}

require_root
require_cmds jq nsenter ip python3 curl promtool iptables bpftool
suite_setup testbed_up "bk$$"
run_test "a refusing upstream opens the circuit, which recovers (IPv4)" \
	test_refused_upstream_opens_and_recovers 10.201.0.1
run_test "a refusing upstream opens the circuit, which recovers (IPv6)" \
	test_refused_upstream_opens_and_recovers fd00:201::1
run_test "a slow upstream opens the circuit by its slow-call rate" \
	test_slow_upstream_opens_by_slow_call_rate
run_test "an open circuit refuses the next request of a pooled connection" \
	test_open_circuit_refuses_a_pooled_request
run_test "a forged or retransmitted answer ends no call (IPv4)" \
	test_forged_or_old_answer_ends_no_call 10.201.0.1
run_test "a forged or retransmitted answer ends no call (IPv6)" \
	test_forged_or_old_answer_ends_no_call fd00:201::1
run_test "a reload keeps each upstream's state, window and counters" \
	test_reload_keeps_state_window_and_counters
run_test "an unused half-open permit goes back" test_unused_trial_permits_go_back
run_test "each upstream applies to its own cgroup, once" test_each_upstream_applies_to_its_cgroup_only
run_test "a connect timeout is one failed call" test_connect_timeout_is_one_failed_call
run_test "a reset from the upstream is a failure" test_upstream_reset_is_a_failure
run_test "a time-based window forgets old calls" test_time_based_window_forgets_old_calls
run_test "failed trial connects open the circuit again" test_failed_trial_connects_open_again
run_test "detach removes every breaker pin and link" test_detach_removes_every_pin_and_link
run_test "breaker status without upstreams ends its line" test_status_without_upstreams
run_test "the metrics' breaker families match breaker status" test_metrics_match_breaker_status
run_test "a trial permit of an ended half-open phase is refused" \
	test_trial_permit_of_an_ended_phase_is_refused
run_test "a restarted agent resumes each circuit" test_restarted_agent_resumes
run_test "a restarted agent in half open starts a fresh phase" \
	test_restarted_agent_in_half_open_starts_a_fresh_phase
run_test "a reload in half open starts a fresh phase" test_reload_in_half_open_starts_a_fresh_phase
run_test "a dead agent leaves every circuit closed" test_dead_agent_leaves_circuits_closed
tap_done
