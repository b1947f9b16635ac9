#!/usr/bin/python3
"""A guest agent from before protocol 2, for the Firecracker test double.

Stands in for banger-vsock-agent in images built before readiness and
POST /poweroff existed: it answers GET /healthz with a protocol 1 document
(no "ready" field) and 404 to every other request, like agent 0.1.0 did.
Takes the agent's command line and uses only --listen unix:PATH.

With OLD_AGENT_PROTOCOL=6 in its environment it is an agent from before
terminal sessions instead: protocol 6, whose capabilities end at
"forward" (no "exec_tty"); it still serves nothing but /healthz.
"""
import json
import os
import signal
import socket
import sys
import threading


def serve(conn):
    conn.settimeout(5)
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < 8192:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        method, target = (line.split(" ") + ["", ""])[:2]
        if method == "GET" and target.split("?")[0] == "/healthz":
            doc = {"status": "ok", "agent_version": "0.1.0", "protocol": 1,
                   "workdisk": {"mounted": True, "path": "/",
                                "layout": "ok"}}
            if os.environ.get("OLD_AGENT_PROTOCOL") == "6":
                doc.update({
                    "agent_version": "0.6.0", "protocol": 6, "ready": True,
                    "capabilities": ["health", "power", "clock", "identity",
                                     "exec", "files", "forward"]})
            status, body = "200 OK", json.dumps(doc)
        else:
            status, body = "404 Not Found", json.dumps({"error": "not found"})
        conn.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                      % (status, len(body), body)).encode())
    except OSError:
        pass
    finally:
        conn.close()


def main():
    path = None
    args = sys.argv[1:]
    for i, a in enumerate(args):
        if a == "--listen" and i + 1 < len(args):
            path = args[i + 1]
    if not path or not path.startswith("unix:"):
        sys.exit("old_agent.py: needs --listen unix:PATH")
    path = path[5:]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
