"""upload.py - one request with a body to banger-vsock-agent on a Unix
socket, the body sent while the reply is read (as a client of a streamed
body must: the agent may answer before it has read everything).

usage: upload.py SOCKET METHOD TARGET [--file F | --zeros N | --data S]
                 [--chunked N] [--tar-of DIR] [--expect-continue]

The body is F's bytes, N zero bytes or the text S, or (--tar-of) a tar of
DIR's contents made on the fly with tarfile (names relative to DIR),
never held whole in memory.  It goes with a Content-Length, or with
--chunked N as chunks of N bytes (the first with an extension, and a
trailer at the end).  Prints one JSON object: status, body (parsed JSON,
or text) and sent (bytes of body written before the agent answered or
the body ended).
"""
import argparse
import json
import os
import socket
import sys
import tarfile
import threading


class ChunkSink:
    """A file-like object that sends what is written as chunks (or raw)."""

    def __init__(self, sock, chunk):
        self.sock = sock
        self.chunk = chunk
        self.sent = 0
        self.first = True

    def write(self, data):
        data = bytes(data)
        if not self.chunk:
            self.sock.sendall(data)
            self.sent += len(data)
            return len(data)
        for i in range(0, len(data), self.chunk):
            piece = data[i:i + self.chunk]
            ext = b";note=first" if self.first else b""
            self.first = False
            self.sock.sendall(b"%x%s\r\n%s\r\n" % (len(piece), ext, piece))
            self.sent += len(piece)
        return len(data)

    def end(self):
        if self.chunk:
            self.sock.sendall(b"0\r\nX-Trailer: yes\r\n\r\n")


def body_pieces(args):
    if args.file:
        with open(args.file, "rb") as f:
            while True:
                d = f.read(1 << 20)
                if not d:
                    return
                yield d
    elif args.zeros is not None:
        left = args.zeros
        block = bytes(1 << 20)
        while left > 0:
            n = min(left, len(block))
            yield block[:n]
            left -= n
    elif args.data is not None:
        yield args.data.encode()


def send_body(sock, args, sink, state):
    try:
        if args.tar_of:
            with tarfile.open(fileobj=sink, mode="w|",
                              format=tarfile.PAX_FORMAT) as t:
                for name in sorted(os.listdir(args.tar_of)):
                    t.add(os.path.join(args.tar_of, name), arcname=name)
        else:
            for d in body_pieces(args):
                sink.write(d)
        sink.end()
    except (BrokenPipeError, ConnectionResetError):
        state["broken"] = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("method")
    ap.add_argument("target")
    ap.add_argument("--file")
    ap.add_argument("--zeros", type=int)
    ap.add_argument("--data")
    ap.add_argument("--tar-of")
    ap.add_argument("--chunked", type=int, default=0)
    ap.add_argument("--expect-continue", action="store_true")
    args = ap.parse_args()
    if args.tar_of and not args.chunked:
        ap.error("--tar-of needs --chunked (its size is not known before)")

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(args.socket)
    head = "%s %s HTTP/1.1\r\nHost: agent\r\n" % (args.method, args.target)
    if args.chunked:
        head += "Transfer-Encoding: chunked\r\n"
    else:
        if args.file:
            n = os.path.getsize(args.file)
        elif args.zeros is not None:
            n = args.zeros
        else:
            n = len((args.data or "").encode())
        head += "Content-Length: %d\r\n" % n
    if args.expect_continue:
        head += "Expect: 100-continue\r\n"
    s.sendall((head + "\r\n").encode())

    buf = b""
    if args.expect_continue:
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        if not buf.startswith(b"HTTP/1.1 100 "):
            print(json.dumps({"status": None, "error": "no 100 Continue",
                              "got": buf.decode("latin-1")}))
            return 1
        buf = buf.partition(b"\r\n\r\n")[2]

    sink = ChunkSink(s, args.chunked)
    state = {}
    t = threading.Thread(target=send_body, args=(s, args, sink, state),
                         daemon=True)
    t.start()
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except ConnectionResetError:
        pass
    t.join(timeout=5)
    head, _, body = buf.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ")[1])
    except (IndexError, ValueError):
        status = None
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body.decode("utf-8", "replace")
    print(json.dumps({"status": status, "body": parsed, "sent": sink.sent,
                      "broken": state.get("broken", False)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
