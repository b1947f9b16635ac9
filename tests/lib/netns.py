"""Sockets in another process's network namespace (bangerd runs in one of
its own in the tests).  A network namespace belongs to a thread, and a
socket to the namespace it was made in: a short-lived thread enters the
namespace, makes the socket and leaves; the socket stays there."""
import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ns_socket(pid, family=socket.AF_INET):
    """A TCP socket in the network namespace of process pid (None: this
    process's own)."""
    out = {}
    if pid is None:
        return socket.socket(family, socket.SOCK_STREAM)

    def make():
        fd = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                out["err"] = OSError(ctypes.get_errno(), "setns")
                return
            out["sock"] = socket.socket(family, socket.SOCK_STREAM)
        finally:
            os.close(fd)

    t = threading.Thread(target=make)
    t.start()
    t.join()
    if "err" in out:
        raise out["err"]
    return out["sock"]


def ns_connect(pid, port, host="127.0.0.1", timeout=10):
    s = ns_socket(pid, socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


class EchoServer:
    """Echoes every connection on port (in pid's namespace) until EOF,
    then closes its side: a guest service for the forwards to reach."""

    def __init__(self, pid, port, host="127.0.0.1"):
        self.sock = ns_socket(pid)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        with c:
            while True:
                try:
                    b = c.recv(65536)
                except OSError:
                    return
                if not b:
                    return
                c.sendall(b)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def roundtrip(s, data):
    """Send data and read as many bytes back, with no half-close on the
    way: through Firecracker's vsock a host-side EOF ends the whole
    connection (the test double does the same)."""
    sender = threading.Thread(target=s.sendall, args=(data,))
    sender.start()
    got = bytearray()
    while len(got) < len(data):
        b = s.recv(1 << 16)
        if not b:
            break
        got += b
    sender.join()
    return bytes(got)
