"""Run a program on a pseudo-terminal (stdin, stdout and stderr), for CLI
behaviour that depends on a TTY: the progress line, the ssh reminder."""
import os
import pty
import select
import signal
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
