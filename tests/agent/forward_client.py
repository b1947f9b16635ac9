"""forward_client.py - POST /forward to banger-vsock-agent on a Unix
socket, for test_forward.sh.  Each command prints one JSON object.

usage: forward_client.py SOCKET COMMAND [ARGS]

  request QUERY [--header 'K: V']... [--no-upgrade] [--http10] [--body B]
          one request (with Connection: Upgrade and Upgrade: tcp unless
          --no-upgrade); status, headers, error (of a JSON body), and
          "after" (the bytes that followed a 101 in the first read)
  echo PORT       upgrade, send "ping", read it back, shut, read the EOF
  idle PORT S FILE
                  the same, S seconds after the upgrade and once FILE
                  exists
  digest PORT N [--early]
                  send N random bytes (with --early in the same write as
                  the request head), shut the write side, read the answer
                  of the digest service; ok when it matches what was sent
  bulk PORT N     N random bytes to the echo service while reading them
                  back; the sha256 of each way
  bye PORT        send nothing, read to EOF (the service speaks first)
  many PORT N     N forwards upgraded at once, then a round trip on each
  hold PORT N     forwards held open until one is refused (at most N),
                  then a /healthz (its status), then all closed
  leave PORT K    read K bytes of the flood service, then close at once
  leave-send PORT K
                  send K bytes to the digest service, then close at once
                  (before its answer)
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    return s


def head_of(query, headers=(), upgrade=True, http10=False, body=None):
    lines = ["POST /forward?%s HTTP/1.%d" % (query, 0 if http10 else 1),
             "Host: agent"]
    if upgrade:
        lines += ["Connection: Upgrade", "Upgrade: tcp"]
    lines += list(headers)
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def read_reply(s):
    """The reply's status and headers, and the bytes read past them."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("EOF before the reply's head: %r" % buf)
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, rest, lines[0]


def read_all(s, have=b""):
    out = bytearray(have)
    while True:
        d = s.recv(65536)
        if not d:
            return bytes(out)
        out += d


def upgrade(path, port, extra=b""):
    s = connect(path)
    s.sendall(head_of("port=%d" % port) + extra)
    status, headers, rest, line = read_reply(s)
    if status != 101:
        raise RuntimeError("no upgrade: %s %r" % (line, read_all(s, rest)))
    return s, rest


def cmd_request(a):
    s = connect(a.socket)
    body = a.body.encode() if a.body is not None else None
    s.sendall(head_of(a.query, a.header, not a.no_upgrade, a.http10, body))
    status, headers, rest, line = read_reply(s)
    out = {"status": status, "line": line, "headers": headers}
    if status == 101:
        s.settimeout(0.3)
        try:
            out["after"] = s.recv(65536).decode("latin-1")
        except socket.timeout:
            out["after"] = rest.decode("latin-1")
        return out
    body = read_all(s, rest)
    n = int(headers.get("content-length", len(body)))
    out["error"] = json.loads(body[:n]).get("error")
    return out


def cmd_echo(a):
    s, rest = upgrade(a.socket, int(a.args[0]))
    if a.command == "idle":
        time.sleep(float(a.args[1]))
        while not os.path.exists(a.args[2]):
            time.sleep(0.02)
    s.sendall(b"ping")
    got = rest
    while len(got) < 4:
        d = s.recv(4 - len(got))
        if not d:
            break
        got += d
    s.shutdown(socket.SHUT_WR)
    tail = read_all(s)
    return {"reply": got.decode("latin-1"), "eof_after": tail.decode()}


def cmd_digest(a):
    port, n = int(a.args[0]), int(a.args[1])
    data = os.urandom(n)
    if a.early:
        s, rest = upgrade(a.socket, port, data)
    else:
        s, rest = upgrade(a.socket, port)
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = json.loads(read_all(s, rest))
    want = {"bytes": n, "sha256": hashlib.sha256(data).hexdigest()}
    return {"ok": got == want, "got": got, "want": want}


def cmd_bulk(a):
    port, n = int(a.args[0]), int(a.args[1])
    data = os.urandom(n)
    s, rest = upgrade(a.socket, port)
    t0 = time.monotonic()

    def send():
        view = memoryview(data)
        for off in range(0, n, 100000):
            s.sendall(view[off:off + 100000])
        s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send)
    t.start()
    h, count = hashlib.sha256(rest), len(rest)
    while True:
        d = s.recv(65536)
        if not d:
            break
        h.update(d)
        count += len(d)
    t.join()
    return {"sent_sha256": hashlib.sha256(data).hexdigest(),
            "got_sha256": h.hexdigest(), "got_bytes": count,
            "elapsed_s": time.monotonic() - t0}


def cmd_bye(a):
    s, rest = upgrade(a.socket, int(a.args[0]))
    got = read_all(s, rest)
    return {"reply": got.decode("latin-1")}


def cmd_many(a):
    port, n = int(a.args[0]), int(a.args[1])
    socks, errors = [], []
    for i in range(n):
        try:
            socks.append(upgrade(a.socket, port)[0])
        except (OSError, RuntimeError, EOFError) as e:
            errors.append("upgrade %d: %s" % (i, e))
    ok = [0]
    lock = threading.Lock()

    def one(i, s):
        try:
            msg = ("connection %d " % i).encode() * 100
            s.sendall(msg)
            s.shutdown(socket.SHUT_WR)
            if read_all(s) == msg:
                with lock:
                    ok[0] += 1
        except OSError as e:
            with lock:
                errors.append("connection %d: %s" % (i, e))
    ts = [threading.Thread(target=one, args=(i, s))
          for i, s in enumerate(socks)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"upgraded": len(socks), "ok": ok[0], "errors": errors[:5]}


def cmd_hold(a):
    port, n = int(a.args[0]), int(a.args[1])
    socks, refused, error = [], None, None
    while len(socks) < n:
        s = connect(a.socket)
        s.sendall(head_of("port=%d" % port))
        status, _, rest, _ = read_reply(s)
        if status != 101:
            refused = status
            error = json.loads(read_all(s, rest)).get("error")
            break
        socks.append(s)
    h = connect(a.socket)
    h.sendall(b"GET /healthz HTTP/1.1\r\nHost: agent\r\n\r\n")
    health = read_reply(h)[0]
    for x in socks:
        x.close()
    return {"held": len(socks), "refused": refused, "error": error,
            "healthz": health}


def cmd_leave(a):
    s, rest = upgrade(a.socket, int(a.args[0]))
    got = len(rest)
    while got < int(a.args[1]):
        got += len(s.recv(65536))
    s.close()
    return {"read": got}


def cmd_leave_send(a):
    s, _ = upgrade(a.socket, int(a.args[0]))
    s.sendall(os.urandom(int(a.args[1])))
    s.close()
    return {"sent": int(a.args[1])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("command")
    ap.add_argument("args", nargs="*")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--no-upgrade", action="store_true")
    ap.add_argument("--http10", action="store_true")
    ap.add_argument("--body")
    ap.add_argument("--early", action="store_true")
    a = ap.parse_args()
    if a.command == "request":
        a.query = a.args[0]
    fn = cmd_echo if a.command == "idle" else \
        globals()["cmd_" + a.command.replace("-", "_")]
    print(json.dumps(fn(a)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
