"""forward_server.py - the guest services behind test_forward.sh: TCP
servers on the loopback, one port per behaviour, a thread per connection.

usage: forward_server.py PORTFILE

Writes {"echo": PORT, ...} to PORTFILE (renamed into place once all
listen) and serves until killed:

  echo    sends back what it reads; closes after the client's EOF
  digest  reads to EOF, then answers {"bytes": N, "sha256": HEX} and
          closes (a client that shuts its side still gets the answer)
  bye     sends "bye" and closes at once, reading nothing
  flood   sends bytes until the connection breaks
  echo6   echo, on [::1] only (absent when there is no IPv6 loopback)
"""
import hashlib
import json
import os
import socket
import sys
import threading


def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)


def digest(c):
    h, n = hashlib.sha256(), 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        h.update(d)
        n += len(d)
    c.sendall(json.dumps({"bytes": n, "sha256": h.hexdigest()}).encode())


def bye(c):
    c.sendall(b"bye")


def flood(c):
    block = b"x" * 65536
    while True:
        c.sendall(block)


def serve(lsock, fn):
    while True:
        c, _ = lsock.accept()

        def one(c=c):
            try:
                fn(c)
            except OSError:
                pass
            finally:
                c.close()
        threading.Thread(target=one, daemon=True).start()


def listen(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 0))
    s.listen(512)
    return s


def main():
    modes = {"echo": echo, "digest": digest, "bye": bye, "flood": flood}
    ports, threads = {}, []
    for name, fn in modes.items():
        s = listen(socket.AF_INET, "127.0.0.1")
        ports[name] = s.getsockname()[1]
        threads.append(threading.Thread(target=serve, args=(s, fn),
                                        daemon=True))
    try:
        s = listen(socket.AF_INET6, "::1")
        ports["echo6"] = s.getsockname()[1]
        threads.append(threading.Thread(target=serve, args=(s, echo),
                                        daemon=True))
    except OSError:
        pass
    for t in threads:
        t.start()
    with open(sys.argv[1] + ".tmp", "w") as f:
        json.dump(ports, f)
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    threading.Event().wait()


if __name__ == "__main__":
    main()
