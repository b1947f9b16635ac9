#!/usr/bin/env bash
# test_files.sh - black-box tests of banger-vsock-agent's GET and PUT
# /files (file copy as tar streams) over --listen unix:.
#
# Archives are built and read with /usr/bin/python3's tarfile
# (tar_util.py), bodies sent by upload.py.  Prints TAP.  The binary is
# $BANGER_AGENT, default runtime/banger-vsock-agent.  The user= cases need
# root and a user "nobody"; they are skipped otherwise.
set -euo pipefail

test_name=files
# shellcheck source=tests/agent/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tu=$root/tests/agent/tar_util.py
chmod 755 "$tmp"

get() { # get OUTFILE QUERY -> the status
	curl -sS --unix-socket "$sock" -o "$1" -w '%{http_code}' "http://agent/files?$2"
}

up() { # up OUTFILE QUERY [upload.py ARGS...]
	"$py" "$root/tests/agent/upload.py" "$sock" PUT "/files?$2" "${@:3}" >"$1"
}

export py tmp
export -f jget

hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

# --- refused on a host socket without --allow-files ---
start_agent closed
code=$(get "$tmp/c.json" "path=/etc/hostname")
check "GET /files without --allow-files is 403" test "$code" = 403
check "the 403 says why" grep -q -- '--allow-files' "$tmp/c.json"
echo x >"$tmp/c.txt"
mkdir "$tmp/closed-dst"
up "$tmp/c2.json" "path=$tmp/closed-dst" --data x
check "PUT /files without --allow-files is 403, nothing written" test \
	"$(jget "$tmp/c2.json" status)" = 403 -a -z "$(ls -A "$tmp/closed-dst")"

start_agent files --allow-files
fpid=$apid
curl -sS --unix-socket "$sock" -o "$tmp/h.json" http://agent/healthz
check "/healthz lists files and forward, protocol 7" test \
	"$(jget "$tmp/h.json" capabilities) $(jget "$tmp/h.json" protocol)" = \
	'["health", "power", "clock", "identity", "exec", "files", "forward", "exec_tty"] 7'
check "agent_version 0.7.0" test "$(jget "$tmp/h.json" agent_version)" = 0.7.0
code=$(curl -sS --unix-socket "$sock" -o /dev/null -D "$tmp/m.hdr" -w '%{http_code}' \
	-X POST "http://agent/files?path=/")
check "POST /files is 405 and allows GET, HEAD, PUT" bash -c \
	"test $code = 405 && grep -qi '^allow: GET, HEAD, PUT' '$tmp/m.hdr'"

# --- GET ---
"$py" "$tu" make-tree "$tmp/src"
mkfifo "$tmp/src/fifo"
"$py" -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$tmp/src/sock"
code=$(curl -sS --unix-socket "$sock" -D "$tmp/g.hdr" -o "$tmp/g1.tar" -w '%{http_code}' \
	"http://agent/files?path=$tmp/src/top.txt")
check "GET of a file: 200, application/x-tar, chunked" bash -c \
	"test $code = 200 && grep -qi '^content-type: application/x-tar' '$tmp/g.hdr' &&
	grep -qi '^transfer-encoding: chunked' '$tmp/g.hdr'"
"$py" "$tu" list "$tmp/g1.tar" >"$tmp/g1.json"
"$py" "$tu" tree "$tmp/src" >"$tmp/src.json"
check "GET of a file: one entry named by its basename, mode, mtime, contents" \
	"$py" -c 'import json, sys
got, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["./top.txt"]
e = got.pop("top.txt")
ids = (e.pop("uid"), e.pop("gid"))
sys.exit(not (got == {} and e == want and ids == (int(sys.argv[3]), int(sys.argv[4]))))' \
	"$tmp/g1.json" "$tmp/src.json" "$(id -u)" "$(id -g)"
curl -sS --unix-socket "$sock" -o "$tmp/g2.tar" "http://agent/files?path=$tmp/src/"
check "GET of a directory: the tree under its name (nested dirs, symlinks as links, modes, mtimes, long and UTF-8 names)" \
	"$py" "$tu" same "$tmp/g2.tar" "$tmp/src"
"$py" "$tu" list "$tmp/g2.tar" >"$tmp/g2.json"
check "GET: a symlink is an entry with its target, not followed" test \
	"$(jget "$tmp/g2.json" src/nested/link.type) $(jget "$tmp/g2.json" src/nested/link.target)" = \
	"symlink deeper/b.txt"
check "GET: fifos and sockets are left out" bash -c \
	"! grep -q '\"src/fifo\"\\|\"src/sock\"' '$tmp/g2.json'"
check "GET: tar(1) reads it too" bash -c "tar -tf '$tmp/g2.tar' >/dev/null 2>&1"
ln -s src "$tmp/src-link"
curl -sS --unix-socket "$sock" -o "$tmp/g3.tar" "http://agent/files?path=$tmp/src-link"
check "GET of a symlink: the link itself" test \
	"$("$py" "$tu" list "$tmp/g3.tar" | tr -d ' \n')" = '{"src-link":{"gid":0,"mtime":'"$(stat -c %Y "$tmp/src-link")"',"target":"src","type":"symlink","uid":0}}'
check "GET of a path through a symlinked directory follows it (as tar -C)" bash -c \
	"curl -sS --unix-socket '$sock' 'http://agent/files?path=$tmp/src-link/top.txt' | tar -tf - | grep -qx top.txt"

for q in "path=$tmp/src/top.txt/x" "path=$tmp/missing/deeper" "path=$tmp/missing"; do
	code=$(get "$tmp/e.json" "$q")
	check "GET $q is 404" test "$code" = 404
done
check "the 404 names the path" grep -q "$tmp/missing" "$tmp/e.json"
for q in "path=tmp/src" "" "path=" "path=/a&path=/b" "path=/etc&bogus=1" \
	"path=$tmp/src/.." "path=$tmp/src/." "path=/&user=no-such-user-x" "path=%zz"; do
	code=$(get "$tmp/e.json" "$q")
	check "GET with query '$q' is 400" test "$code" = 400
done
code=$(get "$tmp/e.json" "path=$tmp/src/fifo")
check "GET of a fifo is 400" test "$code" = 400

# A big file: streamed, the agent's memory stays small.
truncate -s 200M "$tmp/big"
printf 'end' | dd of="$tmp/big" bs=1 seek=$((200 * 1024 * 1024 - 3)) conv=notrunc status=none
before=$(hwm_kb "$fpid")
curl -sS --unix-socket "$sock" "http://agent/files?path=$tmp/big" | "$py" "$tu" list - >"$tmp/big.json" &
big=$!
sleep 0.2
t0=$(date +%s%N)
code=$(curl -sS --max-time 2 --unix-socket "$sock" -o /dev/null -w '%{http_code}' http://agent/healthz)
t1=$(date +%s%N)
check "/healthz answers during a big transfer" test "$code" = 200 -a $(((t1 - t0) / 1000000)) -lt 1000
wait "$big"
check "GET of a 200 MB file: whole" test \
	"$(jget "$tmp/big.json" big.size) $(jget "$tmp/big.json" big.sha256)" = \
	"209715200 $(sha256sum "$tmp/big" | cut -d' ' -f1)"
after=$(hwm_kb "$fpid")
echo "# GET 200 MB: VmHWM $before kB -> $after kB"
check "GET of a 200 MB file: the agent grew less than 32 MB" test $((after - before)) -lt 32768

# --- PUT ---
rm -f "$tmp/src/fifo" "$tmp/src/sock"   # a fifo would be refused
mkdir "$tmp/dst"
up "$tmp/p1.json" "path=$tmp/dst" --tar-of "$tmp/src" --chunked 30000
check "PUT of a tree (chunked): 200" test "$(jget "$tmp/p1.json" status)" = 200
check "PUT: the summary counts files, dirs, links, bytes" test \
	"$(jget "$tmp/p1.json" body.files)/$(jget "$tmp/p1.json" body.dirs)/$(jget "$tmp/p1.json" body.links)" = 8/4/2
check "PUT: the tree arrives whole (modes, mtimes, symlinks, contents)" bash -c \
	"diff <('$py' '$tu' tree '$tmp/src') <('$py' '$tu' tree '$tmp/dst')"
mkdir "$tmp/dst2"
curl -sS --unix-socket "$sock" -o "$tmp/rt.tar" "http://agent/files?path=$tmp/src"
up "$tmp/p2.json" "path=$tmp/dst2" --file "$tmp/rt.tar"
check "PUT of what GET gave (Content-Length), then GET: the same" bash -c \
	"test \"\$(jget '$tmp/p2.json' status)\" = 200 &&
	curl -sS --unix-socket '$sock' 'http://agent/files?path=$tmp/dst2/src' |
	'$py' '$tu' same - '$tmp/src'"
up "$tmp/p3.json" "path=$tmp/dst" --tar-of "$tmp/src" --chunked 65536
check "PUT over the same tree again: 200, still the same" bash -c \
	"test \"\$(jget '$tmp/p3.json' status)\" = 200 &&
	diff <('$py' '$tu' tree '$tmp/src') <('$py' '$tu' tree '$tmp/dst')"
up "$tmp/p4.json" "path=$tmp/dst" --file "$tmp/rt.tar" --expect-continue
check "PUT with Expect: 100-continue" test "$(jget "$tmp/p4.json" status)" = 200

# A big upload: streamed to the disk, the agent's memory stays small.
mkdir "$tmp/bigsrc" "$tmp/bigdst"
mv "$tmp/big" "$tmp/bigsrc/big"
before=$(hwm_kb "$fpid")
up "$tmp/p5.json" "path=$tmp/bigdst" --tar-of "$tmp/bigsrc" --chunked 1048576
after=$(hwm_kb "$fpid")
echo "# PUT 200 MB: VmHWM $before kB -> $after kB"
check "PUT of a 200 MB file: 200, whole" bash -c \
	"test \"\$(jget '$tmp/p5.json' body.bytes)\" = 209715200 && cmp -s '$tmp/bigsrc/big' '$tmp/bigdst/big'"
check "PUT of a 200 MB file: the agent grew less than 32 MB" test $((after - before)) -lt 32768
rm -rf "$tmp/bigsrc" "$tmp/bigdst"

# setuid and setgid bits are dropped; a read-only directory is filled.
mkdir -p "$tmp/modes/ro"
echo x >"$tmp/modes/suid"
chmod 4755 "$tmp/modes/suid"
echo y >"$tmp/modes/ro/f"
chmod 555 "$tmp/modes/ro"
mkdir "$tmp/dst3"
up "$tmp/p6.json" "path=$tmp/dst3" --tar-of "$tmp/modes" --chunked 4096
check "PUT: setuid dropped (4755 -> 755), a 555 directory filled then 555" test \
	"$(stat -c %a "$tmp/dst3/suid") $(stat -c %a "$tmp/dst3/ro") $(cat "$tmp/dst3/ro/f")" = "755 555 y"

# A hard link to a file inside (tarfile writes the second name as one).
mkdir "$tmp/hl" "$tmp/dst4"
echo shared >"$tmp/hl/one"
ln "$tmp/hl/one" "$tmp/hl/two"
up "$tmp/p7.json" "path=$tmp/dst4" --tar-of "$tmp/hl" --chunked 4096
check "PUT: a hard link inside the archive is made (one inode, two names)" bash -c \
	"test \"\$(jget '$tmp/p7.json' body.files)/\$(jget '$tmp/p7.json' body.links)\" = 1/1 &&
	test \"\$(stat -c %i '$tmp/dst4/one')\" = \"\$(stat -c %i '$tmp/dst4/two')\""

# --- PUT: hostile archives ---
mkdir "$tmp/outside"
echo original >"$tmp/outside/victim"
echo original >"$tmp/outside-file"
sum_outside() { find "$tmp/outside" "$tmp/outside-file" -printf '%p %s %T@\n' | sort | sha256sum; }
export -f sum_outside
want=$(sum_outside)
for kind in dotdot dotdot-inner absolute symlink-dir symlink-file hardlink-out \
	hardlink-dotdot hardlink-absent device blockdev fifo; do
	rm -rf "$tmp/h"
	mkdir "$tmp/h"
	"$py" "$tu" hostile "$kind" "$tmp/h.tar" "$tmp/outside"
	up "$tmp/hx.json" "path=$tmp/h" --file "$tmp/h.tar"
	echo "# $kind: $(jget "$tmp/hx.json" body.error)"
	check "hostile $kind: 400, nothing outside, what came before stays" bash -c \
		"test \"\$(jget '$tmp/hx.json' status)\" = 400 &&
		test \"\$(sum_outside)\" = '$want' && test ! -e '$tmp/evil' &&
		test ! -e /tmp/evil -a ! -e '$tmp/h/passwd' -a -f '$tmp/h/before.txt' &&
		test \"\$(jget '$tmp/hx.json' body.files)\" = 1"
done
# Links already in the directory are not written through either.
rm -rf "$tmp/h" && mkdir -p "$tmp/h" "$tmp/hsrc"
ln -s "$tmp/outside" "$tmp/h/sub"
ln -s "$tmp/outside/victim" "$tmp/h/victim"
ln "$tmp/outside-file" "$tmp/h/hard"
mkdir "$tmp/hsrc/sub" && echo evil >"$tmp/hsrc/sub/evil"
echo evil >"$tmp/hsrc/hard"
up "$tmp/hy.json" "path=$tmp/h" --tar-of "$tmp/hsrc" --chunked 4096
check "an existing symlink to a directory outside: 400, not followed" bash -c \
	"test \"\$(jget '$tmp/hy.json' status)\" = 400 && test ! -e '$tmp/outside/evil'"
rm -rf "$tmp/hsrc" && mkdir "$tmp/hsrc" && echo evil >"$tmp/hsrc/hard"
up "$tmp/hy.json" "path=$tmp/h" --tar-of "$tmp/hsrc" --chunked 4096
check "an existing hard link to a file outside is replaced, not written through" bash -c \
	"test \"\$(jget '$tmp/hy.json' status)\" = 200 && test \"\$(cat '$tmp/h/hard')\" = evil &&
	test \"\$(sum_outside)\" = '$want'"
rm -rf "$tmp/hsrc" && mkdir "$tmp/hsrc" && echo evil >"$tmp/hsrc/victim"
up "$tmp/hy.json" "path=$tmp/h" --tar-of "$tmp/hsrc" --chunked 4096
check "an existing symlink where a file goes: 400, not written through" bash -c \
	"test \"\$(jget '$tmp/hy.json' status)\" = 400 && test \"\$(sum_outside)\" = '$want'"

# --- PUT: errors ---
up "$tmp/e1.json" "path=$tmp/no-such-dir" --data x
check "PUT into a missing directory is 404" test "$(jget "$tmp/e1.json" status)" = 404
up "$tmp/e2.json" "path=$tmp/outside-file" --data x
check "PUT into a file is 400" test "$(jget "$tmp/e2.json" status)" = 400
up "$tmp/e3.json" "path=tmp" --data x
check "PUT with a relative path is 400" test "$(jget "$tmp/e3.json" status)" = 400
mkdir "$tmp/e"
up "$tmp/e4.json" "path=$tmp/e" --data "this is not a tar archive"
check "PUT of something that is not a tar is 400" test "$(jget "$tmp/e4.json" status)" = 400
head -c 3000 "$tmp/rt.tar" >"$tmp/cut.tar"
up "$tmp/e5.json" "path=$tmp/e" --file "$tmp/cut.tar"
check "PUT of a truncated tar is 400" test "$(jget "$tmp/e5.json" status)" = 400
"$py" - "$sock" "$tmp/e" "$tmp/rt.tar" >"$tmp/e6.txt" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
body = open(sys.argv[3], "rb").read()
s.sendall(b"PUT /files?path=%s HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
          % (sys.argv[2].encode(), len(body) + 100) + body)
s.shutdown(socket.SHUT_WR)
print(s.makefile("rb").read().decode().split("\r\n")[0])
EOF
check "PUT whose body ends before its Content-Length is 400" grep -q ' 400 ' "$tmp/e6.txt"

# --- user= ---
if [[ $(id -u) -eq 0 ]] && getent passwd nobody >/dev/null; then
	mkdir -m 700 "$tmp/private"
	echo secret >"$tmp/private/s"
	code=$(get "$tmp/u1.json" "path=$tmp/private&user=nobody")
	check "GET user=nobody of a root-only directory is 403" test "$code" = 403
	mkdir -m 755 "$tmp/pub" "$tmp/pub/sub"
	mkdir -m 700 "$tmp/pub/sub/private"
	echo secret >"$tmp/pub/sub/private/s"
	rc=0
	curl -sS --unix-socket "$sock" -o "$tmp/u2.tar" "http://agent/files?path=$tmp/pub&user=nobody" 2>/dev/null || rc=$?
	check "GET user=nobody: an unreadable directory inside cuts the stream short" \
		bash -c "test $rc -ne 0 && ! '$py' '$tu' list '$tmp/u2.tar' >/dev/null 2>&1"
	up "$tmp/u3.json" "path=$tmp/e&user=nobody" --file "$tmp/rt.tar"
	check "PUT user=nobody into root's directory is 403" test "$(jget "$tmp/u3.json" status)" = 403
	mkdir "$tmp/nob" && chown nobody "$tmp/nob"
	up "$tmp/u4.json" "path=$tmp/nob&user=nobody" --file "$tmp/rt.tar"
	check "PUT user=nobody into its own directory: 200, files are nobody's" bash -c \
		"test \"\$(jget '$tmp/u4.json' status)\" = 200 &&
		test \"\$(stat -c %U '$tmp/nob/src/top.txt')\" = nobody"
	check "the agent's other threads are still root (a GET of root's directory)" \
		test "$(get /dev/null "path=$tmp/private")" = 200
else
	echo "# skipped user= cases: need root and a user nobody"
fi

sleep 0.2
# (user=nobody may not set the mode of root's directory in an archive.)
check "no agent errors but the expected ones" bash -c \
	"! grep -v 'GET /files: \\|PUT /files: src: Operation not permitted' '$tmp/agent.log'"

finish
