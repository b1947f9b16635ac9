#!/usr/bin/env bash
# test_forward.sh - black-box tests of banger-vsock-agent's POST /forward
# (the connection upgraded to a byte pipe to a TCP port of the loopback)
# over --listen unix:.
#
# The services behind the ports are forward_server.py, the clients
# forward_client.py, both run by /usr/bin/python3.  Prints TAP.  The
# binary is $BANGER_AGENT, default runtime/banger-vsock-agent.
set -euo pipefail

test_name=forward
# shellcheck source=tests/agent/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

fwd() { # fwd OUTFILE COMMAND [ARGS...]: forward_client.py on $sock
	"$py" "$root/tests/agent/forward_client.py" "$sock" "${@:2}" >"$1"
}

nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

fds_back_to() { # fds_back_to PID COUNT: within 3 s
	local i
	for ((i = 0; i < 150; i++)); do
		[[ $(nfds "$1") -eq $2 ]] && return 0
		sleep 0.02
	done
	echo "# $(nfds "$1") descriptors open, $2 before"
	return 1
}

in_log() { # in_log GREP-ARGS...: within 2 s (a line comes once the relay ends)
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q "$@" "$tmp/agent.log" && return 0
		sleep 0.02
	done
	return 1
}

# --- the services ---
"$py" "$root/tests/agent/forward_server.py" "$tmp/ports.json" &
pids+=($!)
for ((i = 0; i < 250; i++)); do
	[[ -e $tmp/ports.json ]] && break
	sleep 0.02
done
if [[ ! -e $tmp/ports.json ]]; then
	echo "Bail out! forward_server.py did not start"
	exit 1
fi
echo_port=$(jget "$tmp/ports.json" echo)
digest_port=$(jget "$tmp/ports.json" digest)
bye_port=$(jget "$tmp/ports.json" bye)
flood_port=$(jget "$tmp/ports.json" flood)
# A port nothing listens on (neither 127.0.0.1 nor ::1, most likely).
free_port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# --- refused on a host socket without --allow-forward ---
start_agent closed
fwd "$tmp/c.json" request "port=$echo_port"
check "POST /forward without --allow-forward is 403" test "$(jget "$tmp/c.json" status)" = 403
check "the 403 says why" grep -q -- '--allow-forward' "$tmp/c.json"

start_agent fwd --allow-forward
fpid=$apid
sleep 0.2   # (the start's /healthz connection closed)
base=$(nfds "$fpid")
check "--help mentions --allow-forward" bash -c "'$agent' --help | grep -q -- '--allow-forward'"
curl -sS --unix-socket "$sock" -o "$tmp/h.json" http://agent/healthz
check "/healthz lists forward, protocol 7" test \
	"$(jget "$tmp/h.json" capabilities) $(jget "$tmp/h.json" protocol)" = \
	'["health", "power", "clock", "identity", "exec", "files", "forward", "exec_tty"] 7'

# A forward idle for longer than AGENT_IO_TIMEOUT_MS (5 s) stays up; it
# speaks once the many below are done ($tmp/idle.go).
fwd "$tmp/idle.json" idle "$echo_port" 6 "$tmp/idle.go" &
idle=$!

# --- the upgrade and the relay ---
fwd "$tmp/u.json" request "port=$echo_port"
check "101 Switching Protocols, Connection: Upgrade, Upgrade: tcp, nothing else" test \
	"$(jget "$tmp/u.json" line)|$(jget "$tmp/u.json" headers)" = \
	'HTTP/1.1 101 Switching Protocols|{"connection": "Upgrade", "upgrade": "tcp"}'
check "nothing follows the 101 before the service speaks" test "$(jget "$tmp/u.json" after)" = ""
fwd "$tmp/e.json" echo "$echo_port"
check "echo round trip, then EOF after the client's" test \
	"$(jget "$tmp/e.json" reply)|$(jget "$tmp/e.json" eof_after)" = "ping|"
fwd "$tmp/u2.json" request "port=$echo_port" --no-upgrade \
	--header 'connection: keep-alive, UPGRADE' --header 'upgrade: TCP'
check "the header tokens are case-insensitive, Connection a list" test "$(jget "$tmp/u2.json" status)" = 101
fwd "$tmp/u3.json" request "port=$echo_port" --no-upgrade \
	--header 'Connection: keep-alive' --header 'Connection: Upgrade' --header 'Upgrade: h2c, tcp'
check "two Connection lines make one list; Upgrade may offer several" test \
	"$(jget "$tmp/u3.json" status)" = 101
fwd "$tmp/d1.json" digest "$digest_port" 3000 --early
check "bytes sent in the same write as the request head reach the service" test \
	"$(jget "$tmp/d1.json" ok)" = true
fwd "$tmp/d2.json" digest "$digest_port" 1048576
check "half-close: the client shuts its side, the service answers after EOF, the client reads it" \
	test "$(jget "$tmp/d2.json" ok)" = true
fwd "$tmp/b.json" bulk "$echo_port" 10485760
echo "# 10 MiB each way in $(jget "$tmp/b.json" elapsed_s) s"
check "10 MiB each way, the same sha256 both ways" test \
	"$(jget "$tmp/b.json" got_bytes) $(jget "$tmp/b.json" got_sha256)" = \
	"10485760 $(jget "$tmp/b.json" sent_sha256)"
fwd "$tmp/y.json" bye "$bye_port"
check "a service that speaks and closes first: its bytes, then EOF" test \
	"$(jget "$tmp/y.json" reply)" = bye
check "a log line per forward: the port, the bytes each way, how it ended" in_log -x \
	"banger-vsock-agent: forward to port $echo_port: 10485760 bytes to it, 10485760 back; both sides ended"
check "a service that closes first: 3 bytes back, both sides ended" in_log -x \
	"banger-vsock-agent: forward to port $bye_port: 0 bytes to it, 3 back; both sides ended"
if [[ $(jget "$tmp/ports.json" echo6 2>/dev/null) =~ ^[0-9]+$ ]]; then
	fwd "$tmp/e6.json" echo "$(jget "$tmp/ports.json" echo6)"
	check "a service on [::1] only is reached too" test "$(jget "$tmp/e6.json" reply)" = ping
else
	echo "# skipped the [::1] service: no IPv6 loopback"
fi

# --- refused before the 101 ---
fwd "$tmp/r.json" request "port=$echo_port" --no-upgrade
check "no Upgrade headers: 400" test "$(jget "$tmp/r.json" status)" = 400
check "the 400 names the headers" grep -q 'Connection: Upgrade and Upgrade: tcp' "$tmp/r.json"
for h in "Connection: Upgrade" "Upgrade: tcp" "Connection: keep-alive|Upgrade: tcp" \
	"Connection: Upgrade|Upgrade: websocket" "Connection: Upgrade|Upgrade: tcp|Upgrade: tcp"; do
	args=()
	IFS='|' read -ra hs <<<"$h"
	for x in "${hs[@]}"; do args+=(--header "$x"); done
	fwd "$tmp/r.json" request "port=$echo_port" --no-upgrade "${args[@]}"
	check "headers '$h' only: 400" test "$(jget "$tmp/r.json" status)" = 400
done
fwd "$tmp/r.json" request "port=$echo_port" --http10
check "HTTP/1.0 (its Upgrade is ignored): 400" test "$(jget "$tmp/r.json" status)" = 400
fwd "$tmp/r.json" request "port=$echo_port" --body x
check "a body: 400" test "$(jget "$tmp/r.json" status)" = 400
for q in "port=0" "port=65536" "port=abc" "" "port=" "port" "port=-1" "port=80x" \
	"port=123456" "port=%38%30" "port=$echo_port&port=$echo_port" \
	"port=$echo_port&bogus=1" "host=127.0.0.1&port=$echo_port"; do
	fwd "$tmp/r.json" request "$q"
	check "query '$q': 400" test "$(jget "$tmp/r.json" status)" = 400
done
check "host= is refused: the guest's loopback only" grep -q "loopback" "$tmp/r.json"
fwd "$tmp/r.json" request "port=$free_port"
check "nothing listening: 502 'guest port N: Connection refused', Connection: close" test \
	"$(jget "$tmp/r.json" status)|$(jget "$tmp/r.json" error)|$(jget "$tmp/r.json" headers.connection)" = \
	"502|guest port $free_port: Connection refused|close"
code=$(curl -sS --unix-socket "$sock" -o /dev/null -D "$tmp/m.hdr" -w '%{http_code}' \
	"http://agent/forward?port=$echo_port")
check "GET /forward is 405 and allows POST" bash -c \
	"test $code = 405 && grep -qi '^allow: POST' '$tmp/m.hdr'"

# --- many at once ---
fwd "$tmp/m.json" many "$echo_port" 100
check "100 forwards open at once, a round trip on each" test \
	"$(jget "$tmp/m.json" upgraded) $(jget "$tmp/m.json" ok)" = "100 100"
# 240 at most (the rest of the 256 connections stays for /healthz), and
# the idle one above is still open: 239 more.
check "the 100 closed: the agent's descriptors back to the idle forward's two" \
	fds_back_to "$fpid" $((base + 2))
fwd "$tmp/hold.json" hold "$echo_port" 300
check "239 more forwards open, the next is 503, and /healthz still answers" test \
	"$(jget "$tmp/hold.json" held) $(jget "$tmp/hold.json" refused) $(jget "$tmp/hold.json" healthz)" = \
	"239 503 200"
check "the 503 says why" test "$(jget "$tmp/hold.json" error)" = "240 forwards are open already"
touch "$tmp/idle.go"
wait "$idle" && rc=0 || rc=$?
check "a forward idle for 6 s (past the request timeout) still relays" test \
	"$rc $(jget "$tmp/idle.json" reply)" = "0 ping"
check "all closed: the agent's descriptors back to $base" fds_back_to "$fpid" "$base"

# --- clients that leave ---
fwd "$tmp/l1.json" leave "$flood_port" 1048576
fwd "$tmp/l2.json" leave-send "$digest_port" 2097152
check "clients gone mid-stream (reading, sending): no descriptor left" fds_back_to "$fpid" "$base"
check "and a log line says the client ended it" in_log \
	"forward to port $flood_port: 0 bytes to it, [0-9]* back; the client"
code=$(curl -sS --unix-socket "$sock" -o /dev/null -w '%{http_code}' http://agent/healthz)
check "the agent keeps serving" test "$code" = 200
fwd "$tmp/e2.json" echo "$echo_port"
check "and forwarding" test "$(jget "$tmp/e2.json" reply)" = ping

sleep 0.2
check "no agent log lines but the forwards' own" bash -c \
	"! grep -v '^banger-vsock-agent: forward to port \\|rejected a request: 400' '$tmp/agent.log'"

finish
