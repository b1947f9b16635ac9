"""Run a program on a pseudo-terminal (stdin, stdout and stderr), for CLI
behaviour that depends on a TTY: the progress line, the ssh reminder,
banger vm exec -it."""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import time


def run_pty(argv, env, timeout=60, on_output=None):
    """Run argv with env on a new pty; returns (exit status, output).

    on_output(text_so_far, pid) is called as output arrives (to send
    signals at the right moment)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child and its children are gone
                break
            if not data:
                break
            out += data
            if on_output is not None:
                on_output(out.decode(errors="replace"), pid)
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("%s did not end within %ds:\n%s" % (
                argv, timeout, out.decode(errors="replace")))
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def run_pty_typing(argv, env, actions, rows=24, cols=80, timeout=60):
    """Run argv with env on a new pty of rows x cols, typing as it goes:
    actions are (regex, bytes) pairs, and once the output so far matches
    regex, bytes are written to the terminal (in order).  Returns (exit
    status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ,
                        struct.pack("HHHH", rows, cols, 0, 0))
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    todo = list(actions)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            while todo and re.search(todo[0][0], out.decode(errors="replace")):
                os.write(fd, todo.pop(0)[1])
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child and its children are gone
                break
            if not data:
                break
            out += data
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("%s did not end within %ds:\n%s" % (
                argv, timeout, out.decode(errors="replace")))
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")
