#!/usr/bin/env bash
# test_agent.sh - black-box tests of banger-vsock-agent over --listen unix:.
#
# Uses curl --unix-socket for HTTP, /usr/bin/python3 for raw socket I/O and
# JSON checks (POST /exec through exec_client.py, which decodes the
# frames), and file(1) for the static-link check.  Prints TAP.
# The binary is $BANGER_AGENT, default runtime/banger-vsock-agent (relative
# to the repository root).
set -euo pipefail

test_name=agent
# shellcheck source=tests/agent/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Raw request over a Unix socket, then half-close; prints the whole reply.
raw() { # raw SOCKET PAYLOAD(python bytes literal)
	"$py" - "$1" "$2" <<'EOF'
import ast, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
s.connect(sys.argv[1])
s.sendall(ast.literal_eval(sys.argv[2]))
s.shutdown(socket.SHUT_WR)  # the agent sees EOF after the payload
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode("utf-8", "replace"))
EOF
}

json_ok() { "$py" -m json.tool "$1" >/dev/null; }

reply_starts() { # reply_starts SOCKET PAYLOAD PREFIX
	local r
	r=$(raw "$1" "$2")
	[[ $r == "$3"* ]]
}

start_agent() { # start_agent NAME WORKDISK [ARGS...] -> sets sock
	sock=$tmp/$1.sock
	"$agent" --listen "unix:$sock" --workdisk "$2" --workdev /dev/test-vdb \
		--layout-state "$tmp/$1.layout" "${@:3}" 2>>"$tmp/agent.log" &
	pids+=($!)
	agent_answers
}

# --- binary ---
check "statically linked" bash -c "file -L '$agent' | grep -q 'statically linked'"
check "--version" bash -c "'$agent' --version | grep -qx 'banger-vsock-agent 0.7.0'"
check "--help mentions --listen" bash -c "'$agent' --help | grep -q -- '--listen'"
rc=0
"$agent" --bogus >/dev/null 2>&1 || rc=$?
check "unknown argument exits 2" test "$rc" -eq 2
rc=0
"$agent" --listen tcp:1 >/dev/null 2>&1 || rc=$?
check "bad --listen exits 2" test "$rc" -eq 2
rc=0
"$agent" --ready sshd,bogus >/dev/null 2>&1 || rc=$?
check "unknown --ready check exits 2" test "$rc" -eq 2
rc=0
"$agent" --poweroff-cmd relative/path >/dev/null 2>&1 || rc=$?
check "relative --poweroff-cmd exits 2" test "$rc" -eq 2

# --- a healthy agent (workdisk = /, always a mount point) ---
start_agent good /
good=$sock
echo "ok" >"$tmp/good.layout"

code=$(curl -sS --unix-socket "$good" -o "$tmp/h.json" -D "$tmp/h.hdr" \
	-w '%{http_code}' http://agent/healthz)
check "GET /healthz is 200" test "$code" = 200
check "valid JSON" json_ok "$tmp/h.json"
check "Content-Type json" grep -qi '^content-type: application/json' "$tmp/h.hdr"
check "Connection: close" grep -qi '^connection: close' "$tmp/h.hdr"
len=$(tr -d '\r' <"$tmp/h.hdr" | awk -F': ' 'tolower($1)=="content-length"{print $2}')
check "Content-Length matches body" test "$len" -eq "$(wc -c <"$tmp/h.json")"
check "status ok" test "$(jget "$tmp/h.json" status)" = ok
check "agent_version" test "$(jget "$tmp/h.json" agent_version)" = 0.7.0
check "protocol 7" test "$(jget "$tmp/h.json" protocol)" = 7
check "capabilities from the route table" test \
	"$(jget "$tmp/h.json" capabilities)" = '["health", "power", "clock", "identity", "exec", "files", "forward", "exec_tty"]'
check "readiness has all three checks by default" test \
	"$(jget "$tmp/h.json" checks | "$py" -c 'import json,sys; print(",".join(sorted(json.load(sys.stdin))))')" = network,sshd,workdisk
check "hostname is uname -n" test "$(jget "$tmp/h.json" hostname)" = "$(uname -n)"
check "boot_id" test "$(jget "$tmp/h.json" boot_id)" = "$(tr -d '[:space:]' </proc/sys/kernel/random/boot_id)"
check "load has 3 numbers" test "$(jget "$tmp/h.json" load | tr -cd ',' | wc -c)" -eq 2
check "memory total > 0" test "$(jget "$tmp/h.json" memory.total_bytes)" -gt 0
check "rootfs total > 0" test "$(jget "$tmp/h.json" rootfs.total_bytes)" -gt 0
check "workdisk mounted" test "$(jget "$tmp/h.json" workdisk.mounted)" = true
check "workdisk path" test "$(jget "$tmp/h.json" workdisk.path)" = /
check "layout ok" test "$(jget "$tmp/h.json" workdisk.layout)" = ok

layout_is() { # layout_is FILE-CONTENT EXPECTED
	if [[ $1 == "<missing>" ]]; then
		rm -f "$tmp/good.layout"
	else
		printf '%b' "$1" >"$tmp/good.layout"
	fi
	curl -sS --unix-socket "$good" http://agent/healthz >"$tmp/l.json"
	[[ $(jget "$tmp/l.json" workdisk.layout) == "$2" ]]
}
check "layout repaired" layout_is 'repaired\n' repaired
check "layout conflicts + detail" layout_is '  conflicts 3 files\n' conflicts
check "layout garbage -> unknown" layout_is 'okay\n' unknown
check "layout empty -> unknown" layout_is '' unknown
check "layout missing -> unknown" layout_is '<missing>' unknown

# Shared folders: mount-shares's state file sits next to the layout state
# (here $tmp/shares-state, read by every agent of this test: removed after).
check "no shares state: shares ok" test \
	"$(jget "$tmp/h.json" shares)" = '{"ok": true, "mounted": 0, "failed": 0, "detail": null}'
shares_are() { # shares_are FILE-CONTENT|<missing> STATUS SHARES-JSON
	if [[ $1 == "<missing>" ]]; then
		rm -f "$tmp/shares-state"
	else
		printf '%b' "$1" >"$tmp/shares-state"
	fi
	curl -sS --unix-socket "$good" http://agent/healthz >"$tmp/s.json"
	[[ $(jget "$tmp/s.json" status) == "$2" && $(jget "$tmp/s.json" shares) == "$3" ]]
}
check "shares all ok -> status ok" shares_are \
	'ok banger0 /mnt/src\nok banger1 /root/proj\n' ok \
	'{"ok": true, "mounted": 2, "failed": 0, "detail": null}'
check "shares empty file -> ok" shares_are '' ok \
	'{"ok": true, "mounted": 0, "failed": 0, "detail": null}'
check "a failed share -> degraded, first failure as detail" shares_are \
	'ok banger0 /mnt/src\nfailed banger1 /root/proj mount exited 32: mount: wrong fs type\nfailed banger2 /etc the guest path is a system directory of the guest\n' \
	degraded \
	'{"ok": false, "mounted": 1, "failed": 2, "detail": "banger1 on /root/proj: mount exited 32: mount: wrong fs type"}'
check "readiness is not changed by a failed share" \
	test "$(jget "$tmp/s.json" ready) $(jget "$tmp/s.json" not_ready)" = \
	"$(jget "$tmp/h.json" ready) $(jget "$tmp/h.json" not_ready)"
check "a failed share with empty fields" shares_are "failed - - bad tag ''\n" degraded \
	'{"ok": false, "mounted": 0, "failed": 1, "detail": "- on -: bad tag '"''"'"}'
check "an unexpected line -> degraded" shares_are 'ok banger0 /a\nmounting banger1\n' degraded \
	"{\"ok\": false, \"mounted\": 1, \"failed\": 1, \"detail\": \"unexpected line in $tmp/shares-state: mounting banger1\"}"
printf 'failed banger0 /a say "no"\t\\ done\n' >"$tmp/shares-state"
curl -sS --unix-socket "$good" http://agent/healthz >"$tmp/s.json"
check "a failure's reason is passed on whole, JSON-escaped" \
	test "$(jget "$tmp/s.json" shares.detail)" = $'banger0 on /a: say "no"\t\\ done'
check "shares state removed -> ok again" shares_are '<missing>' ok \
	'{"ok": true, "mounted": 0, "failed": 0, "detail": null}'

code=$(curl -sS --unix-socket "$good" -o "$tmp/b" -w '%{http_code}' http://agent/)
check "GET / is 404" test "$code" = 404
check "404 body" test "$(cat "$tmp/b")" = '{"error":"not found"}'
code=$(curl -sS --unix-socket "$good" -o "$tmp/b" -w '%{http_code}' http://agent/nope)
check "GET /nope is 404" test "$code" = 404
code=$(curl -sS --unix-socket "$good" -o "$tmp/b" -D "$tmp/b.hdr" -w '%{http_code}' \
	-X POST -d x=1 http://agent/healthz)
check "POST /healthz is 405" test "$code" = 405
check "405 has Allow" grep -qi '^allow: GET, HEAD' "$tmp/b.hdr"
code=$(curl -sS --unix-socket "$good" -o /dev/null -w '%{http_code}' -I http://agent/healthz)
check "HEAD /healthz is 200" test "$code" = 200
code=$(curl -sS --http1.0 --unix-socket "$good" -o /dev/null -w '%{http_code}' http://agent/healthz)
check "HTTP/1.0 works" test "$code" = 200

check "malformed is 400" reply_starts "$good" "b'hello world\\r\\n\\r\\n'" "HTTP/1.1 400 "
check "bad header is 400" reply_starts "$good" \
	"b'GET /healthz HTTP/1.1\\r\\nno colon\\r\\n\\r\\n'" "HTTP/1.1 400 "
check "HTTP/2.0 is 505" reply_starts "$good" "b'GET /healthz HTTP/2.0\\r\\n\\r\\n'" "HTTP/1.1 505 "
check "truncated head at EOF is 400" reply_starts "$good" "b'GET /healthz HTTP/1.1\\r\\n'" "HTTP/1.1 400 "
check "Content-Length too large is 413" reply_starts "$good" \
	"b'POST /poweroff HTTP/1.1\\r\\nContent-Length: 70000\\r\\n\\r\\n'" "HTTP/1.1 413 "
check "a huge Content-Length is 413 too" reply_starts "$good" \
	"b'POST /poweroff HTTP/1.1\\r\\nContent-Length: 99999999999999\\r\\n\\r\\n'" "HTTP/1.1 413 "
check "a bad Content-Length is 400" reply_starts "$good" \
	"b'POST /poweroff HTTP/1.1\\r\\nContent-Length: 1x\\r\\n\\r\\n'" "HTTP/1.1 400 "
check "two different Content-Lengths are 400" reply_starts "$good" \
	"b'POST /poweroff HTTP/1.1\\r\\nContent-Length: 1\\r\\nContent-Length: 2\\r\\n\\r\\nab'" "HTTP/1.1 400 "
check "a chunked request body is 501" reply_starts "$good" \
	"b'POST /poweroff HTTP/1.1\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n'" "HTTP/1.1 501 "
# The body is read (split over writes) before the handler answers.
check "a request with a body gets its handler's answer" reply_starts "$good" \
	"b'POST /poweroff HTTP/1.1\\r\\nContent-Length: 20000\\r\\n\\r\\n$(printf 'x%.0s' {1..20000})'" "HTTP/1.1 403 "
check "a body cut short gets no answer" test -z "$(raw "$good" \
	"b'POST /poweroff HTTP/1.1\\r\\nContent-Length: 10\\r\\n\\r\\nabc'")"
# A client that says nothing holds only its own connection.
"$py" - "$good" "$tmp/silent.ok" <<'EOF2' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"GET /healthz HTTP/1.1\r\n")   # and nothing more
open(sys.argv[2], "w").close()
time.sleep(3)
EOF2
silent=$!
for ((i = 0; i < 100; i++)); do [[ -e $tmp/silent.ok ]] && break; sleep 0.02; done
t0=$(date +%s%N)
code=$(curl -sS --max-time 2 --unix-socket "$good" -o /dev/null -w '%{http_code}' http://agent/healthz)
t1=$(date +%s%N)
check "another client is answered while one is silent" test "$code" = 200 -a $(((t1 - t0) / 1000000)) -lt 1500
wait "$silent" || true
check "PING -> PONG" test "$(raw "$good" "b'PING\\n'")" = PONG
check "PING CRLF -> PONG" test "$(raw "$good" "b'PING\\r\\n'")" = PONG

# --- streamed replies: POST /echo (only with --test-routes) ---
code=$(curl -sS --unix-socket "$good" -o /dev/null -w '%{http_code}' -X POST -d x http://agent/echo)
check "no /echo without --test-routes" test "$code" = 404
check "no echo capability without --test-routes" test \
	"$(jget "$tmp/h.json" capabilities)" = '["health", "power", "clock", "identity", "exec", "files", "forward", "exec_tty"]'
start_agent echo / --test-routes
echo_sock=$sock
head -c 50000 /dev/urandom >"$tmp/in.bin"
curl -sS --unix-socket "$echo_sock" --data-binary @"$tmp/in.bin" -D "$tmp/e.hdr" \
	-o "$tmp/out.bin" 'http://agent/echo?chunk=7000'
check "a stream brings the body back whole" cmp -s "$tmp/in.bin" "$tmp/out.bin"
check "a stream is chunked" grep -qi '^transfer-encoding: chunked' "$tmp/e.hdr"
check "a stream has no Content-Length" bash -c "! grep -qi '^content-length' '$tmp/e.hdr'"
curl -0 -sS --unix-socket "$echo_sock" --data-binary @"$tmp/in.bin" -D "$tmp/e0.hdr" \
	-o "$tmp/out0.bin" 'http://agent/echo?chunk=7000'
check "to HTTP/1.0 the stream is unframed and whole" bash -c \
	"cmp -s '$tmp/in.bin' '$tmp/out0.bin' && ! grep -qi '^transfer-encoding' '$tmp/e0.hdr'"
r=$(raw "$echo_sock" "b'POST /echo?chunk=3 HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\nabcdefg'")
# ($(...) drops the final newline.)
check "chunk framing on the wire" test "${r#*$'\r\n\r\n'}" = $'3\r\nabc\r\n3\r\ndef\r\n1\r\ng\r\n0\r\n\r'
code=$(curl -sS --unix-socket "$echo_sock" -o /dev/null -w '%{http_code}' -d x 'http://agent/echo?chunk=0')
check "a bad chunk size is 400" test "$code" = 400
check "the echo capability is listed with --test-routes" bash -c \
	"curl -s --unix-socket '$echo_sock' http://agent/healthz | grep -q '\"echo\"'"
# A slow stream (10 chunks, 200 ms apart) does not hold up /healthz.
curl -sS --unix-socket "$echo_sock" -d 0123456789 -o "$tmp/slow.out" \
	'http://agent/echo?chunk=1&delay_ms=200' &
slow=$!
sleep 0.3
t0=$(date +%s%N)
curl -sS --unix-socket "$echo_sock" -o /dev/null http://agent/healthz
t1=$(date +%s%N)
check "/healthz answers while a stream is slow" test $(((t1 - t0) / 1000000)) -lt 1000
check "the slow stream was still going" kill -0 "$slow"
wait "$slow"
check "the slow stream ends whole" test "$(cat "$tmp/slow.out")" = 0123456789
# A client that leaves mid-stream leaves the agent serving.
timeout 0.5 curl -sS --unix-socket "$echo_sock" -d 0123456789 -o /dev/null \
	'http://agent/echo?chunk=1&delay_ms=200' || true
sleep 0.5
code=$(curl -sS --unix-socket "$echo_sock" -o /dev/null -w '%{http_code}' http://agent/healthz)
check "a client gone mid-stream leaves the agent serving" test "$code" = 200

# --- streamed request bodies: POST /sink (a stream_body test route) ---
up() { # up SOCKET OUTFILE METHOD TARGET [upload.py ARGS...]
	"$py" "$root/tests/agent/upload.py" "$1" "${@:3}" >"$2"
}
fnv() { # the 64-bit FNV-1a of a file, as /sink reports it
	"$py" -c 'import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
print("%016x" % h)' "$1"
}
head -c 300000 /dev/urandom >"$tmp/sink.bin"
up "$echo_sock" "$tmp/s1.json" POST /sink --file "$tmp/sink.bin"
check "a streamed body with a Content-Length above 64 KiB is read whole" test \
	"$(jget "$tmp/s1.json" status) $(jget "$tmp/s1.json" body.bytes) $(jget "$tmp/s1.json" body.fnv1a)" = \
	"200 300000 $(fnv "$tmp/sink.bin")"
up "$echo_sock" "$tmp/s2.json" POST /sink --file "$tmp/sink.bin" --chunked 7001
check "a chunked body (an extension, a trailer) is read whole" test \
	"$(jget "$tmp/s2.json" status) $(jget "$tmp/s2.json" body.bytes) $(jget "$tmp/s2.json" body.fnv1a)" = \
	"200 300000 $(fnv "$tmp/sink.bin")"
up "$echo_sock" "$tmp/s3.json" POST /sink --file "$tmp/sink.bin" --expect-continue
check "Expect: 100-continue gets 100 Continue before the body" test "$(jget "$tmp/s3.json" body.bytes)" = 300000
check "a chunked body split across writes" reply_starts "$echo_sock" \
	"b'POST /sink HTTP/1.1\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n3\\r\\nabc\\r\\nA;x=1\\r\\n0123456789\\r\\n0\\r\\n\\r\\n'" \
	"HTTP/1.1 200 "
up "$echo_sock" "$tmp/s4.json" POST /sink --data "" --chunked 5
check "an empty chunked body" test "$(jget "$tmp/s4.json" body.bytes)" = 0
for bad in 'x\\r\\nabc\\r\\n0\\r\\n\\r\\n' '3\\r\\nabcd\\r\\n0\\r\\n\\r\\n' \
	'1000000000000000\\r\\n' '3\\r\\nab' '3\\r\\nabc\\r\\n'; do
	check "a bad chunked body ($bad) is 400" reply_starts "$echo_sock" \
		"b'POST /sink HTTP/1.1\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n$bad'" "HTTP/1.1 400 "
done
check "a Transfer-Encoding other than chunked is 501" reply_starts "$echo_sock" \
	"b'POST /sink HTTP/1.1\\r\\nTransfer-Encoding: gzip\\r\\n\\r\\n'" "HTTP/1.1 501 "
check "Content-Length with Transfer-Encoding is 400" reply_starts "$echo_sock" \
	"b'POST /sink HTTP/1.1\\r\\nContent-Length: 3\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n'" "HTTP/1.1 400 "
check "a streamed body above 64 GiB is 413" reply_starts "$echo_sock" \
	"b'POST /sink HTTP/1.1\\r\\nContent-Length: 68719476737\\r\\n\\r\\n'" "HTTP/1.1 413 "
check "a streamed body cut short is 400" reply_starts "$echo_sock" \
	"b'POST /sink HTTP/1.1\\r\\nContent-Length: 10\\r\\n\\r\\nabc'" "HTTP/1.1 400 "

# --- a degraded agent: work disk not mounted ---
mkdir -p "$tmp/wd"
start_agent deg "$tmp/wd"
curl -sS --unix-socket "$sock" http://agent/healthz >"$tmp/d.json"
check "degraded: valid JSON" json_ok "$tmp/d.json"
check "degraded: status" test "$(jget "$tmp/d.json" status)" = degraded
check "degraded: not mounted" test "$(jget "$tmp/d.json" workdisk.mounted)" = false
check "degraded: device is --workdev" test "$(jget "$tmp/d.json" workdisk.device)" = /dev/test-vdb
check "degraded: layout unknown" test "$(jget "$tmp/d.json" workdisk.layout)" = unknown

# --- readiness: sshd (a port we control), the work disk, the network ---
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_agent ready / --ready sshd,workdisk,network --ssh-port "$port"
rdy=$sock
curl -sS --unix-socket "$rdy" http://agent/healthz >"$tmp/r1.json"
check "not ready while nothing listens on the ssh port" test "$(jget "$tmp/r1.json" ready)" = false
check "not_ready names sshd and the port" test "$(jget "$tmp/r1.json" not_ready)" = "sshd: nothing listens on port $port"
check "sshd check failed" test "$(jget "$tmp/r1.json" checks.sshd.ok)" = false
check "workdisk check passed" test "$(jget "$tmp/r1.json" checks.workdisk.ok)" = true
check "status stays ok (readiness is separate)" test "$(jget "$tmp/r1.json" status)" = ok
# ?wait_ms=N: not ready for the whole wait, the answer comes after it.
t=$(curl -sS --unix-socket "$rdy" -o "$tmp/rw.json" -w '%{time_total}' \
	'http://agent/healthz?wait_ms=400')
check "wait_ms: still not ready after the wait" test "$(jget "$tmp/rw.json" ready)" = false
check "wait_ms: answered after the wait ($t s)" "$py" -c 'import sys; sys.exit(not 0.38 <= float(sys.argv[1]) < 3)' "$t"
for q in 'wait_ms=5001' 'wait_ms=-1' 'wait_ms=1x' 'wait_ms='; do
	code=$(curl -sS --unix-socket "$rdy" -o /dev/null -w '%{http_code}' "http://agent/healthz?$q")
	check "healthz?$q is 400" test "$code" = 400
done
# A wait ends the moment the guest is ready: sshd listening 0.3 s in.
curl -sS --unix-socket "$rdy" -o "$tmp/rw2.json" -w '%{time_total}' \
	'http://agent/healthz?wait_ms=5000' >"$tmp/rw2.time" &
waiter=$!
sleep 0.3
"$py" -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("up", flush=True); time.sleep(30)' "$port" >"$tmp/listener.out" &
listener=$!
pids+=("$listener")
for ((i = 0; i < 100; i++)); do [[ -s $tmp/listener.out ]] && break; sleep 0.05; done
wait "$waiter"
check "wait_ms: ready within the wait" test "$(jget "$tmp/rw2.json" ready)" = true
check "wait_ms: answered once ready, not at the end ($(cat "$tmp/rw2.time") s)" \
	"$py" -c 'import sys; sys.exit(not 0.25 <= float(open(sys.argv[1]).read()) < 4.5)' "$tmp/rw2.time"
curl -sS --unix-socket "$rdy" http://agent/healthz >"$tmp/r2.json"
check "ready once the port listens" test "$(jget "$tmp/r2.json" ready)" = true
check "not_ready is null when ready" test "$(jget "$tmp/r2.json" not_ready)" = null
t=$(curl -sS --unix-socket "$rdy" -o /dev/null -w '%{time_total}' 'http://agent/healthz?wait_ms=5000')
check "wait_ms: a ready guest answers at once ($t s)" "$py" -c 'import sys; sys.exit(not float(sys.argv[1]) < 1)' "$t"
kill "$listener"
mkdir -p "$tmp/wd2"
start_agent unready "$tmp/wd2" --ready workdisk
curl -sS --unix-socket "$sock" http://agent/healthz >"$tmp/r3.json"
check "an unmounted work disk is not ready" test "$(jget "$tmp/r3.json" not_ready)" = "workdisk: $tmp/wd2 is not mounted"
start_agent noready "$tmp/wd2" --ready none
curl -sS --unix-socket "$sock" http://agent/healthz >"$tmp/r4.json"
check "--ready none: ready, no checks" test "$(jget "$tmp/r4.json" ready),$(jget "$tmp/r4.json" checks)" = "true,{}"

# --- POST /poweroff ---
code=$(curl -sS --unix-socket "$good" -o "$tmp/p0.json" -w '%{http_code}' -X POST http://agent/poweroff)
check "poweroff refused on a Unix socket without --poweroff-cmd (403)" test "$code" = 403
# shellcheck disable=SC2016 # $1 is the stand-in's own argument
printf '#!/bin/sh\necho "$1" >"%s/power.out"\n' "$tmp" >"$tmp/power.sh"
chmod +x "$tmp/power.sh"
start_agent power / --poweroff-cmd "$tmp/power.sh"
pw=$sock
code=$(curl -sS --unix-socket "$pw" -o /dev/null -w '%{http_code}' -X POST 'http://agent/poweroff?mode=halt')
check "poweroff with an unknown mode is 400" test "$code" = 400
code=$(curl -sS --unix-socket "$pw" -o /dev/null -w '%{http_code}' http://agent/poweroff)
check "GET /poweroff is 405" test "$code" = 405
check "nothing ran yet" test ! -e "$tmp/power.out"
code=$(curl -sS --unix-socket "$pw" -o "$tmp/p1.json" -w '%{http_code}' -X POST 'http://agent/poweroff?mode=reboot')
check "POST /poweroff?mode=reboot is 202" test "$code" = 202
check "the reply says the mode" test "$(jget "$tmp/p1.json" mode)" = reboot
for ((i = 0; i < 100; i++)); do [[ -s $tmp/power.out ]] && break; sleep 0.05; done
check "--poweroff-cmd ran with the mode" test "$(cat "$tmp/power.out" 2>/dev/null)" = reboot

# --- POST /clock ---
code=$(curl -sS --unix-socket "$good" -o "$tmp/c.json" -w '%{http_code}' \
	-d '{"realtime_ns": 1700000000000000000}' http://agent/clock)
check "POST /clock on a host socket without --clock-file is 403" test "$code" = 403
start_agent clock / --clock-file "$tmp/clock.out"
clock_sock=$sock
code=$(curl -sS --unix-socket "$clock_sock" -o "$tmp/c.json" -w '%{http_code}' \
	-d '{"realtime_ns": 1700000000123456789}' http://agent/clock)
check "POST /clock is 200" test "$code" = 200
check "the time asked for reaches --clock-file" test "$(cat "$tmp/clock.out")" = 1700000000123456789
check "the reply says the step (back to 2023: negative)" test "$(jget "$tmp/c.json" step_ms)" -lt 0
for body in '' '{}' '{"realtime_ns": -5}' '{"realtime_ns": "1"}' \
	'{"realtime_ns": 1, "x": 2}' '{"realtime_ns": 99999999999999999999}' \
	'{"realtime_ns": 1}x'; do
	code=$(curl -sS --unix-socket "$clock_sock" -o /dev/null -w '%{http_code}' \
		-d "$body" http://agent/clock)
	check "POST /clock with body '$body' is 400" test "$code" = 400
done
code=$(curl -sS --unix-socket "$clock_sock" -o /dev/null -w '%{http_code}' http://agent/clock)
check "GET /clock is 405" test "$code" = 405

# --- POST /identity ---
idbody='hostname=clone-b&mac=02:fc:00:00:00:0b&address=172.30.0.9/24&gateway=172.30.0.1&machine_id=0123456789abcdef0123456789abcdef&seed=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'
code=$(curl -sS --unix-socket "$good" -o /dev/null -w '%{http_code}' -d "$idbody" http://agent/identity)
check "POST /identity on a host socket without --identity-file is 403" test "$code" = 403
start_agent ident / --identity-file "$tmp/identity.out"
ident_sock=$sock
code=$(curl -sS --unix-socket "$ident_sock" -o "$tmp/i.json" -w '%{http_code}' -d "$idbody" http://agent/identity)
check "POST /identity is 200" test "$code" = 200
check "what it would set reaches --identity-file" grep -qx 'address=172.30.0.9/24' "$tmp/identity.out"
check "the seed is read as bytes" grep -qx 'seed_bytes=32' "$tmp/identity.out"
check "the reply names the new host" test "$(jget "$tmp/i.json" hostname)" = clone-b
for bad in 'hostname=Clone' 'mac=02:FC:00:00:00:0b' 'mac=02-fc-00-00-00-0b' \
	'address=172.30.0.9' 'address=300.1.1.1/24' 'gateway=1.2.3' \
	'machine_id=0123' 'seed=abc' 'seed=zz' 'hostname=a%20b'; do
	key=${bad%%=*}
	body=$(printf '%s' "$idbody" | sed "s|$key=[^&]*|$bad|")
	code=$(curl -sS --unix-socket "$ident_sock" -o /dev/null -w '%{http_code}' -d "$body" http://agent/identity)
	check "POST /identity with $bad is 400" test "$code" = 400
done

# --- POST /exec ---
# exec_client.py prints the reply as JSON: status, frames (types in
# order), stdout, stderr, exit.{exit_code,signal,timed_out}, elapsed_s.
exe() { # exe SOCKET OUTFILE [CLIENT ARGS...] [-- ARG...]
	"$py" "$root/tests/agent/exec_client.py" "$1" "${@:3}" >"$2"
}
code=$(curl -sS --unix-socket "$good" -o "$tmp/x.json" -w '%{http_code}' -X POST 'http://agent/exec?arg=true')
check "POST /exec on a host socket without --allow-exec is 403" test "$code" = 403
check "the 403 says why" grep -q -- '--allow-exec' "$tmp/x.json"
start_agent exec / --allow-exec
ex=$sock
expid=${pids[-1]}
exe "$ex" "$tmp/x1.json" -- echo hi
check "exec: 200, the exec-stream type" test \
	"$(jget "$tmp/x1.json" status) $(jget "$tmp/x1.json" content_type)" = "200 application/vnd.banger.exec-stream"
check "exec echo hi: a stdout frame, then the exit frame" test "$(jget "$tmp/x1.json" frames)" = "[1, 3]"
check "exec echo hi: stdout is hi\\n" test "$(jget "$tmp/x1.json" stdout)" = hi
check "exec echo hi: exit_code=0 signal=0 timed_out=0" test \
	"$(jget "$tmp/x1.json" exit.exit_code)/$(jget "$tmp/x1.json" exit.signal)/$(jget "$tmp/x1.json" exit.timed_out)" = 0/0/0
# (curl removes the chunks, and unlike raw it does not half-close: a
# client's EOF would be taken for it leaving, and the command killed.)
curl -sS --unix-socket "$ex" -X POST -o "$tmp/x1.bin" 'http://agent/exec?arg=echo&arg=hi'
check "exec frames on the wire: type, 3 zero bytes, big-endian length, payload" test \
	"$(od -An -tx1 "$tmp/x1.bin" | tr -d ' \n')" = \
	"$(printf '\001\000\000\000\000\000\000\003hi\n\003\000\000\000\000\000\000\041exit_code=0\nsignal=0\ntimed_out=0\n' | od -An -tx1 | tr -d ' \n')"
exe "$ex" "$tmp/x2.json" -- sh -c 'echo oops >&2; exit 7'
check "exec: stderr comes in a type 2 frame" test \
	"$(jget "$tmp/x2.json" frames) $(jget "$tmp/x2.json" stderr)" = "[2, 3] oops"
check "exec sh -c 'exit 7': exit_code=7" test "$(jget "$tmp/x2.json" exit.exit_code)" = 7
# shellcheck disable=SC2016 # $$ is the command's own shell
exe "$ex" "$tmp/x3.json" -- sh -c 'kill -TERM $$'
check "exec killed by SIGTERM: signal=15, exit_code=-1" test \
	"$(jget "$tmp/x3.json" exit.signal)/$(jget "$tmp/x3.json" exit.exit_code)" = 15/-1
printf 'line one\nline two\n' >"$tmp/stdin.txt"
head -c 60000 /dev/urandom >>"$tmp/stdin.txt"
exe "$ex" "$tmp/x4.json" --stdin-file "$tmp/stdin.txt" -- cat
check "exec: the body is the command's stdin (cat echoes 60 KB back)" test \
	"$(jget "$tmp/x4.json" stdout_is_stdin)" = true
exe "$ex" "$tmp/x4b.json" --stdin-file "$tmp/stdin.txt" -- true
check "exec: a command that reads no stdin still ends" test "$(jget "$tmp/x4b.json" exit.exit_code)" = 0
exe "$ex" "$tmp/x5.json" --env FOO=b%r+z --env TERM=xterm --cwd /tmp -- sh -c 'pwd; env'
check "exec: cwd is applied" test "$(jget "$tmp/x5.json" stdout | sed -n 1p)" = /tmp
check "exec: env is added, decoded" grep -q 'FOO=b%r+z\\n' "$tmp/x5.json"
check "exec: env overrides a default (TERM)" grep -q 'TERM=xterm\\n' "$tmp/x5.json"
check "exec: the default PATH" grep -q 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\\n' "$tmp/x5.json"
check "exec: USER and LOGNAME are root by default" bash -c "grep -q 'USER=root\\\\n' '$tmp/x5.json' && grep -q 'LOGNAME=root\\\\n' '$tmp/x5.json'"
exe "$ex" "$tmp/x5b.json" -- env
check "exec: TERM=dumb unless given, and nothing of the agent's own" bash -c \
	"grep -q 'TERM=dumb' '$tmp/x5b.json' && ! grep -q 'BANGER_AGENT=' '$tmp/x5b.json'"
if [[ $(id -u) -eq 0 ]] && getent passwd nobody >/dev/null; then
	# shellcheck disable=SC2016 # the command's own USER and HOME
	exe "$ex" "$tmp/x6.json" --user nobody -- sh -c 'id -un; echo "$USER $HOME"'
	check "exec user=nobody runs as nobody, with its USER and HOME" test \
		"$(jget "$tmp/x6.json" stdout)" = "nobody
nobody $(getent passwd nobody | cut -d: -f6)"
else
	echo "# skipped exec user=nobody: needs root and a user nobody"
fi
exe "$ex" "$tmp/x7.json" -- no-such-command-banger
check "exec of a missing command: exit_code 127" test "$(jget "$tmp/x7.json" exit.exit_code)" = 127
check "exec of a missing command: a stderr frame says why" test \
	"$(jget "$tmp/x7.json" frames) $(jget "$tmp/x7.json" stderr)" = \
	"[2, 3] banger-vsock-agent: exec no-such-command-banger: No such file or directory"
exe "$ex" "$tmp/x7b.json" -- /etc/passwd
check "exec of a file that is not executable: 126" test "$(jget "$tmp/x7b.json" exit.exit_code)" = 126
exe "$ex" "$tmp/x8.json" --timeout-s 1 -- sleep 30.4242001
check "exec timeout_s=1 on sleep 30: timed_out=1, SIGTERM" test \
	"$(jget "$tmp/x8.json" exit.timed_out)/$(jget "$tmp/x8.json" exit.signal)" = 1/15
check "exec timeout: over within 3 s" "$py" -c 'import json,sys; sys.exit(not 0.9 < json.load(open(sys.argv[1]))["elapsed_s"] < 3)' "$tmp/x8.json"
check "exec timeout: no sleep left" bash -c "! pgrep -f '^sleep 30.4242001'"
exe "$ex" "$tmp/x9.json" --leave-after 0.3 -- sh -c 'sleep 30.4242002; true'
gone=0
for ((i = 0; i < 100; i++)); do
	pgrep -f '^(sh -c )?sleep 30.4242002' >/dev/null || { gone=1; break; }
	sleep 0.02
done
check "exec: a client that leaves mid-run has the process group killed" test "$gone" = 1
exe "$ex" "$tmp/x10.json" -- sh -c 'sleep 300.4242003 & echo started'
check "exec: a background grandchild holding stdout ends the request in ~1 s" \
	"$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not (d["elapsed_s"] < 2.5 and d["stdout"] == "started\n" and d["exit"]["exit_code"] == "0"))' "$tmp/x10.json"
check "exec: and the grandchild is killed" bash -c "! pgrep -f '^sleep 300.4242003'"
exe "$ex" "$tmp/x11.json" -- sleep 2 &
slow=$!
sleep 0.3
t0=$(date +%s%N)
curl -sS --unix-socket "$ex" -o "$tmp/xh.json" http://agent/healthz
t1=$(date +%s%N)
check "/healthz answers while an exec runs" test $(((t1 - t0) / 1000000)) -lt 1000
check "the exec was still running" kill -0 "$slow"
wait "$slow"
check "/healthz lists exec, files, forward and exec_tty, protocol 7" test \
	"$(jget "$tmp/xh.json" capabilities) $(jget "$tmp/xh.json" protocol)" = '["health", "power", "clock", "identity", "exec", "files", "forward", "exec_tty"] 7'
exe "$ex" "$tmp/x12.json" -- head -c 5000000 /dev/zero
check "exec: 5 MB of output arrives whole, over many frames" "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not (d["stdout_bytes"] == 5000000 and len(d["frames"]) > 2 and d["frames"][-1] == 3 and d["trailing_bytes"] == 0))' "$tmp/x12.json"
for q in '' 'arg=true&bogus=1' 'arg=true&cwd=tmp' 'arg=true&timeout_s=abc' \
	'arg=true&timeout_s=86401' 'arg=true&timeout_s=-1' 'arg=true&user=no-such-user-x' \
	'arg=true&env=NOEQUALS' 'arg=%zz' 'arg=a%00b' 'arg=true&cwd=/a&cwd=/b' 'arg'; do
	exe "$ex" "$tmp/xq.json" --query "$q"
	check "exec with query '$q' is 400" test "$(jget "$tmp/xq.json" status)" = 400
done
check "a 400 names the unknown key" bash -c \
	"$py '$root/tests/agent/exec_client.py' '$ex' --query 'arg=true&bogus=1' | grep \"unknown query key 'bogus'\" >/dev/null"
sleep 0.2
check "exec leaves no child of the agent behind (no zombies)" test -z "$(ps -o pid= --ppid "$expid")"

# --- socket path handling ---
rc=0
"$agent" --listen "unix:$good" 2>/dev/null || rc=$?
check "refuses a live socket" test "$rc" -ne 0
"$py" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$tmp/stale.sock"
start_agent stale / && stale_ok=1 || stale_ok=0
check "replaces a stale socket" test "$stale_ok" -eq 1 -a "$(raw "$tmp/stale.sock" "b'PING\\n'")" = PONG
: >"$tmp/regular"
rc=0
"$agent" --listen "unix:$tmp/regular" 2>/dev/null || rc=$?
check "refuses a regular file" test "$rc" -ne 0 -a -f "$tmp/regular"

# --- SIGTERM removes the socket ---
kill "${pids[0]}"
wait "${pids[0]}" && rc=0 || rc=$?
check "SIGTERM exits 0" test "$rc" -eq 0
check "socket unlinked on exit" test ! -e "$good"

finish
