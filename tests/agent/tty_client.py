"""tty_client.py - one POST /exec?tty=1 session with banger-vsock-agent on a
Unix socket (or, with --http PATH, through bangerd's API socket).

usage: tty_client.py SOCKET [--query RAW] [--path PATH] [--body JSON]
                     [--no-upgrade] [--do ACTION]... [-- ARG...]

Sends the request (with "Connection: Upgrade" and "Upgrade: tcp" unless
--no-upgrade; the arguments as arg=..., tty=1 added, or --query as it is),
reads the head and, after a 101, runs the actions in order while it reads
the terminal's output frames:

  send:TEXT      a stdin frame (type 0); \\n, \\r, \\x03 and such decoded
  fill:N:C       N bytes of character C, in stdin frames of 64 KiB
  wait:REGEX     until the output so far matches (10 s at most)
  resize:RxC     a resize frame (type 4)
  signal:N       a signal frame (type 5)
  eof            an end-of-input frame (type 6)
  raw:HEX        these bytes as they are (a bad frame)
  sleep:S        wait S seconds
  leave          close the connection at once and stop

then reads until the exit frame and the agent's close.  Prints one JSON
object: status, error (the JSON error of a refusal), output (text), frames
(their types in order), exit (the exit frame's fields), closed (the agent
closed the connection), elapsed_s.
"""
import argparse
import codecs
import json
import re
import select
import socket
import struct
import sys
import time
import urllib.parse


def read_head(s, buf):
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("EOF before the reply's head")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


class Session:
    def __init__(self, s, rest):
        self.s = s
        self.data = rest
        self.output = bytearray()
        self.frames = []
        self.exit = None
        self.closed = False

    def frame(self, typ, payload=b""):
        self.s.sendall(struct.pack(">B3xI", typ, len(payload)) + payload)

    def parse(self):
        while len(self.data) >= 8:
            typ, n = struct.unpack(">B3xI", self.data[:8])
            if len(self.data) < 8 + n:
                break
            payload, self.data = self.data[8:8 + n], self.data[8 + n:]
            self.frames.append(typ)
            if typ == 1:
                self.output += payload
            elif typ == 3:
                self.exit = dict(ln.split("=", 1) for ln in
                                 payload.decode().splitlines())

    def pump(self, timeout):
        """Read what comes within timeout; False once the agent closed."""
        if self.closed:
            return False
        r, _, _ = select.select([self.s], [], [], timeout)
        if not r:
            return True
        try:
            d = self.s.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            self.closed = True
            return False
        self.data += d
        self.parse()
        return True

    def wait_for(self, regex, limit=10.0):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if re.search(regex, self.output.decode("utf-8", "replace")):
                return True
            if not self.pump(0.05):
                break
        return bool(re.search(regex, self.output.decode("utf-8", "replace")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--query")
    ap.add_argument("--path", help="the request's path, default /exec")
    ap.add_argument("--body", help="a JSON body (bangerd's route)")
    ap.add_argument("--no-upgrade", action="store_true")
    ap.add_argument("--do", action="append", default=[])
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    args = argv[cut + 1:]

    if a.query is not None:
        query = a.query
    else:
        query = urllib.parse.urlencode([("arg", x) for x in args] +
                                       [("tty", "1")])
    path = a.path if a.path is not None else "/exec?" + query
    body = a.body.encode() if a.body is not None else b""
    head = "POST %s HTTP/1.1\r\nHost: agent\r\n" % path
    if not a.no_upgrade:
        head += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    head += "Content-Length: %d\r\n\r\n" % len(body)

    out = {"error": None, "frames": [], "output": "", "exit": None,
           "closed": False}
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(a.socket)
    s.sendall(head.encode() + body)
    status, headers, rest = read_head(s, b"")
    out["status"] = status
    if status != 101:
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            d = s.recv(65536)
            if not d:
                break
            rest += d
        err = json.loads(rest[:n]) if n else None
        out["error"] = err.get("error", err) if isinstance(err, dict) else err
        print(json.dumps(out))
        return 0
    ss = Session(s, rest)
    ss.parse()
    left = False
    for act in a.do:
        verb, _, arg = act.partition(":")
        if verb == "send":
            ss.frame(0, codecs.escape_decode(arg.encode())[0])
        elif verb == "fill":
            count, _, ch = arg.partition(":")
            left = int(count)
            while left > 0:
                k = min(left, 65536)
                ss.frame(0, ch.encode() * k)
                left -= k
        elif verb == "wait":
            ss.wait_for(arg)
        elif verb == "resize":
            r, c = arg.split("x")
            ss.frame(4, struct.pack(">HH", int(r), int(c)))
        elif verb == "signal":
            ss.frame(5, bytes([int(arg)]))
        elif verb == "eof":
            ss.frame(6)
        elif verb == "raw":
            s.sendall(bytes.fromhex(arg))
        elif verb == "sleep":
            end = time.monotonic() + float(arg)
            while time.monotonic() < end and ss.pump(end - time.monotonic()):
                pass
        elif verb == "leave":
            s.close()
            left = True
            break
        else:
            raise SystemExit("unknown action " + act)
    if not left:
        end = time.monotonic() + 30
        while time.monotonic() < end and ss.pump(0.5):
            pass
        s.close()
    out["output"] = ss.output.decode("utf-8", "replace")
    out["frames"] = ss.frames
    out["exit"] = ss.exit
    out["closed"] = ss.closed
    out["elapsed_s"] = time.monotonic() - t0
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
