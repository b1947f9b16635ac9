"""exec_client.py - one POST /exec to banger-vsock-agent on a Unix socket.

usage: exec_client.py SOCKET [--env K=V] [--cwd DIR] [--user NAME]
                      [--timeout-s N] [--query RAW] [--stdin-file F]
                      [--leave-after S] [-- ARG...]

Sends the request (the arguments percent-encoded as the agent reads them,
or --query as it is), keeps its write side open as a client must, reads the
chunked reply and decodes the exec-stream frames.  Prints one JSON object:
status, content_type, frames (their types in order), stdout and stderr
(text; their byte counts too), exit (the exit frame's fields), elapsed_s,
and error (the body of a non-200 reply).  With --leave-after S it closes
the connection S seconds after the reply's head and prints what it had.
"""
import argparse
import json
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


def dechunk(s, buf):
    """Yields the chunks' bytes as they arrive; ends at the 0 chunk."""
    while True:
        while b"\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise EOFError("EOF inside the chunked body")
            buf += d
        line, _, buf = buf.partition(b"\r\n")
        n = int(line, 16)
        while len(buf) < n + 2:
            d = s.recv(65536)
            if not d:
                raise EOFError("EOF inside a chunk")
            buf += d
        if n == 0:
            return
        yield buf[:n]
        buf = buf[n + 2:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--cwd")
    ap.add_argument("--user")
    ap.add_argument("--timeout-s")
    ap.add_argument("--query")
    ap.add_argument("--stdin-file")
    ap.add_argument("--leave-after", type=float)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    a.args = argv[cut + 1:]

    if a.query is not None:
        query = a.query
    else:
        pairs = [("arg", x) for x in a.args] + [("env", x) for x in a.env]
        for k, v in (("cwd", a.cwd), ("user", a.user),
                     ("timeout_s", a.timeout_s)):
            if v is not None:
                pairs.append((k, v))
        query = urllib.parse.urlencode(pairs)
    body = open(a.stdin_file, "rb").read() if a.stdin_file else b""
    req = ("POST /exec?%s HTTP/1.1\r\nHost: agent\r\nContent-Length: %d\r\n"
           "\r\n" % (query, len(body))).encode() + body

    out = {"frames": [], "stdout": "", "stderr": "", "stdout_bytes": 0,
           "stderr_bytes": 0, "exit": None, "error": None}
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(a.socket)
    s.sendall(req)
    status, headers, rest = read_head(s, b"")
    out["status"] = status
    out["content_type"] = headers.get("content-type")
    if a.leave_after is not None:
        time.sleep(a.leave_after)
        s.close()
        out["elapsed_s"] = time.monotonic() - t0
        print(json.dumps(out))
        return 0
    if status != 200:
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            d = s.recv(65536)
            if not d:
                break
            rest += d
        out["error"] = json.loads(rest[:n]).get("error")
    else:
        data = b""
        stdout, stderr = bytearray(), bytearray()
        for chunk in dechunk(s, rest):
            data += chunk
            while len(data) >= 8:
                typ, n = struct.unpack(">B3xI", data[:8])
                if len(data) < 8 + n:
                    break
                payload, data = data[8:8 + n], data[8 + n:]
                out["frames"].append(typ)
                if typ == 1:
                    stdout += payload
                elif typ == 2:
                    stderr += payload
                elif typ == 3:
                    out["exit"] = dict(ln.split("=", 1) for ln in
                                       payload.decode().splitlines())
        out["trailing_bytes"] = len(data)
        out["stdout"] = stdout.decode("utf-8", "replace")
        out["stderr"] = stderr.decode("utf-8", "replace")
        out["stdout_bytes"] = len(stdout)
        out["stderr_bytes"] = len(stderr)
        if a.stdin_file:
            out["stdout_is_stdin"] = bytes(stdout) == body
    s.close()
    out["elapsed_s"] = time.monotonic() - t0
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
