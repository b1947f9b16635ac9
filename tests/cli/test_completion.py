"""banger completion bash|zsh: the scripts load and complete commands,
flags, choices and (from a live bangerd with the test double) VM and image
names.

bash is driven the way readline drives it (COMP_WORDS, COMP_CWORD, then
the completion function, then COMPREPLY).  zsh is driven for real: an
interactive zsh in a pseudo-terminal gets TAB typed after each command
line, with compadd wrapped to record the matches the script offers.
"""
import os
import pty
import re
import select
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def script(daemon, shell):
    r = subprocess.run([daemon.banger, "completion", shell],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


@pytest.fixture(scope="module")
def names(daemon):
    """A registered image and a VM made from it."""
    image = uniq("cimg")
    rootfs, seed = daemon.make_image(image)
    r = daemon.run_banger("image", "register", "--name", image, "--rootfs",
                          rootfs, "--work-seed", seed)
    assert r.returncode == 0, r.stderr
    vm = uniq("cvm")
    r = daemon.run_banger("vm", "create", "--name", vm, "--image", image,
                          "--vcpus", "1", "--memory", "128", "--disk", "1")
    assert r.returncode == 0, r.stderr
    yield {"vm": vm, "image": image}
    daemon.run_banger("vm", "delete", "--force", vm)
    daemon.run_banger("image", "delete", image)


# ------------------------------------------------------------------ bash

def bash_complete(daemon, words, env=None):
    """COMPREPLY for the command line 'words' (the last one is the word
    being completed), with COMP_WORDS split as readline splits it.  The
    command word is banger's path, as if typed: the script runs that
    banger for names."""
    words = [daemon.banger] + list(words[1:])
    e = dict(daemon.env)
    e.update(env or {})
    quoted = " ".join("'%s'" % w.replace("'", "'\\''") for w in words)
    prog = ('source <("$BANGER_BIN" completion bash) || exit 99\n'
            'COMP_WORDS=(%s)\nCOMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n'
            '_banger\nprintf "%%s\\n" "${COMPREPLY[@]}"\n' % quoted)
    e["BANGER_BIN"] = daemon.banger
    r = subprocess.run(["bash", "-c", prog], env=e, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    return [l for l in r.stdout.split("\n") if l]


def test_bash_script_loads(daemon):
    r = subprocess.run(["bash", "-c", 'source <("$0" completion bash) && '
                        'complete -p banger', daemon.banger],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "complete -F _banger banger"
    assert r.stderr == ""


def test_bash_script_passes_shellcheck(daemon, tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (make deps installs it)")
    path = tmp_path / "banger.bash"
    path.write_text(script(daemon, "bash"))
    r = subprocess.run(["shellcheck", "-s", "bash", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("words,want", [
    (["banger", ""], ["vm", "image", "operation", "host", "doctor",
                      "version", "events", "tui", "completion", "help"]),
    (["banger", "vm", ""], ["create", "list", "show", "pause", "resume",
                            "start", "stop",
                            "restart", "delete", "snapshot", "cp", "clone",
                            "set",
                            "ssh", "exec", "port-forward",
                            "health", "console"]),
    (["banger", "vm", "st"], ["start", "stop"]),
    (["banger", "image", ""], ["register", "build", "list", "show",
                               "delete", "warm"]),
    (["banger", "--json", "vm", "cr"], ["create"]),
    (["banger", "--socket", "/x.sock", "im"], ["image"]),
    (["banger", "help", "vm", "de"], ["delete"]),
    (["banger", "completion", ""], ["bash", "zsh"]),
    (["banger", "image", "build", "--distro", ""], ["debian", "void"]),
    # readline splits --distro=v into --distro, =, v
    (["banger", "image", "build", "--distro", "=", "v"], ["void"]),
    (["banger", "vm", "stop", "--t"], ["--timeout"]),
    (["banger", "vm", "delete", "--f"], ["--force"]),
    (["banger", "vm", "console", "--"], ["--json", "--quiet",
                                         "--no-autostart", "--socket",
                                         "--help", "--tail"]),
    (["banger", "vm", "create", "--vcpus", ""], []),
    (["banger", "vm", "frobnicate", ""], []),
])
def test_bash_completes(daemon, words, want):
    assert bash_complete(daemon, words) == want


def test_bash_completes_files_for_path_flags(daemon, tmp_path):
    (tmp_path / "rootfs.ext4").write_text("")
    got = bash_complete(daemon, ["banger", "image", "register", "--rootfs",
                                 str(tmp_path / "roo")])
    assert got == [str(tmp_path / "rootfs.ext4")]


def test_bash_completes_vm_create_flags(daemon):
    got = bash_complete(daemon, ["banger", "vm", "create", "--"])
    for flag in ("--name", "--image", "--vcpus", "--memory", "--disk",
                 "--nat", "--no-nat", "--no-wait", "--json", "--socket"):
        assert flag in got, got
    assert "--force" not in got and "--tail" not in got, got


def test_bash_completes_names_from_bangerd(daemon, names):
    vm, image = names["vm"], names["image"]
    assert vm in bash_complete(daemon, ["banger", "vm", "start", ""])
    assert bash_complete(daemon, ["banger", "vm", "show", vm[:-1]]) == [vm]
    assert bash_complete(daemon, ["banger", "vm", "delete", "--force",
                                  vm]) == [vm]
    assert image in bash_complete(daemon, ["banger", "image", "show", ""])
    assert image in bash_complete(daemon, ["banger", "image", "warm", ""])
    assert vm in bash_complete(daemon, ["banger", "vm", "exec", ""])
    assert image in bash_complete(daemon, ["banger", "vm", "create",
                                           "--image", ""])
    assert vm not in bash_complete(daemon, ["banger", "image", "show", ""])
    # One NAME taken: nothing more to offer.
    assert bash_complete(daemon, ["banger", "vm", "show", vm, ""]) == []
    # vm set takes several.
    assert vm in bash_complete(daemon, ["banger", "vm", "set", "other", ""])
    # --socket on the command line is used to ask bangerd.
    got = bash_complete(daemon, ["banger", "--socket", daemon.socket, "vm",
                                 "health", ""],
                        env={"BANGER_SOCKET": "/nonexistent/api.sock"})
    assert vm in got, got


def test_bash_names_without_bangerd_are_empty_and_start_nothing(daemon,
                                                               tmp_path):
    sock = str(tmp_path / "none" / "api.sock")
    got = bash_complete(daemon, ["banger", "vm", "start", ""],
                        env={"BANGER_SOCKET": sock,
                             "BANGER_NO_AUTOSTART": ""})
    assert got == []
    assert not os.path.exists(sock)
    assert not os.path.exists(os.path.dirname(sock))


# ------------------------------------------------ derived from the tables

def help_flags(daemon, *cmd):
    r = subprocess.run([daemon.banger, "help"] + list(cmd),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_flags_match_every_commands_synopsis(daemon):
    """The flags completed for each command are the ones its usage line
    names, so neither can drift from what the command parses."""
    main = help_flags(daemon)
    block = main.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    commands = []
    for line in block.splitlines():
        words = line.split()
        if words[0] in ("vm", "image", "operation"):
            commands.append(words[:2])
        elif words[0] != "help":
            commands.append(words[:1])
    assert ["vm", "create"] in commands and ["completion"] in commands
    for cmd in commands:
        usage = help_flags(daemon, *cmd).splitlines()[0]
        synopsis = set(re.findall(r"--[a-z][a-z-]*", usage))
        got = bash_complete(daemon, ["banger"] + cmd + ["--"])
        own = set(got) - {"--json", "--quiet", "--no-autostart", "--socket",
                          "--help"}
        assert own == synopsis, (cmd, usage, got)


def test_global_flags_match_banger_help(daemon):
    text = help_flags(daemon)
    block = text.split("Global flags (accepted anywhere):\n", 1)[1]
    block = block.split("\n\n", 1)[0]
    documented = set(re.findall(r"^  (-[-a-z]+)(?:, (--[a-z-]+))?", block,
                                re.M))
    documented = {f for pair in documented for f in pair if f}
    got = set(bash_complete(daemon, ["banger", "-"]))
    assert got == documented, (got, documented)


def test_bad_shell_is_a_usage_error(daemon):
    r = subprocess.run([daemon.banger, "completion", "fish"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith("banger: unknown shell 'fish' (bash or zsh)")
    r = subprocess.run([daemon.banger, "completion"], capture_output=True,
                       text=True)
    assert r.returncode == 2
    r = subprocess.run([daemon.banger, "completion", "bash", "zsh"],
                       capture_output=True, text=True)
    assert r.returncode == 2


# ------------------------------------------------------------------- zsh

ZSH = shutil.which("zsh")
needs_zsh = pytest.mark.skipif(ZSH is None, reason="zsh not installed "
                               "(make deps installs it); zsh completion "
                               "is not tested")


@needs_zsh
def test_zsh_script_loads(daemon):
    r = subprocess.run(
        [ZSH, "-f", "-c", 'autoload -Uz compinit; compinit -u -D; '
         'source <("$0" completion zsh) || exit 9; '
         'print -r -- "$_comps[banger]"; whence -w _banger', daemon.banger],
        capture_output=True, text=True, env=dict(daemon.env, HOME="/"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["_banger", "_banger: function"]
    assert r.stderr == ""


@needs_zsh
def test_zsh_script_autoloads_from_fpath(daemon, tmp_path):
    """Installed as site-functions/_banger, compinit finds it by itself."""
    (tmp_path / "_banger").write_text(script(daemon, "zsh"))
    r = subprocess.run(
        [ZSH, "-f", "-c", 'fpath=("$0" $fpath); autoload -Uz compinit; '
         'compinit -u -D; print -r -- "$_comps[banger]"', str(tmp_path)],
        capture_output=True, text=True, env=dict(daemon.env, HOME="/"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "_banger"


class Zsh:
    """An interactive zsh in a pseudo-terminal with the script loaded and
    compadd wrapped to append each offered match to a file."""

    def __init__(self, daemon, tmpdir):
        self.out = os.path.join(tmpdir, "matches")
        env = dict(daemon.env, TERM="xterm", HOME=tmpdir,
                   PATH=os.path.dirname(daemon.banger) + ":" +
                   os.environ.get("PATH", "/usr/bin:/bin"))
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([ZSH, "-f", "-i"], stdin=slave,
                                     stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.buf = b""
        self.n = 0
        self.send(
            "PS1='> '; autoload -Uz compinit; compinit -u -D; "
            "source <(%s completion zsh); "
            "compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then "
            "builtin compadd \"$@\"; return; fi; local -a __m; "
            "builtin compadd -A __m \"$@\"; "
            "(( $#__m )) && print -rl -- $__m >>%s; "
            "builtin compadd \"$@\"; }; print READY''0\n" % (
                daemon.banger, self.out))
        self.wait_for(b"READY0")

    def send(self, text):
        os.write(self.master, text.encode())

    def wait_for(self, token, timeout=20):
        deadline = time.time() + timeout
        while token not in self.buf:
            left = deadline - time.time()
            r, _, _ = select.select([self.master], [], [], max(0, left))
            if not r:
                raise AssertionError("zsh: no %r in:\n%s" % (
                    token, self.buf.decode(errors="replace")[-3000:]))
            self.buf += os.read(self.master, 65536)
        self.buf = self.buf[self.buf.index(token) + len(token):]

    def complete(self, line):
        """The matches offered for TAB after 'line'."""
        open(self.out, "w").close()
        self.n += 1
        # TAB, then ^U to drop the line, then a marker to wait for.
        self.send(line + "\t")
        time.sleep(0.2)
        self.send("\x15print DONE''%d\n" % self.n)
        self.wait_for(b"DONE%d" % self.n)
        with open(self.out) as f:
            return sorted(set(f.read().split("\n")) - {""})

    def close(self):
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)


@pytest.fixture
def zsh(daemon):
    if ZSH is None:
        pytest.skip("zsh not installed (make deps installs it); zsh "
                    "completion is not tested")
    d = tempfile.mkdtemp(prefix="bgzsh")
    z = Zsh(daemon, d)
    yield z
    z.close()
    shutil.rmtree(d, ignore_errors=True)


def test_zsh_completes(zsh, daemon, names):
    assert zsh.complete("banger ") == sorted(
        ["vm", "image", "operation", "host", "doctor", "version", "events",
         "tui", "completion", "help"])
    assert zsh.complete("banger vm cr") == ["create"]
    got = zsh.complete("banger vm create --")
    for flag in ("--name", "--image", "--vcpus", "--memory", "--disk",
                 "--nat", "--no-nat", "--no-wait", "--json"):
        assert flag in got, got
    assert "--force" not in got, got
    assert zsh.complete("banger image build --distro ") == ["debian", "void"]
    assert zsh.complete("banger image build --distro=v") == ["void"]
    assert zsh.complete("banger completion ") == ["bash", "zsh"]
    assert zsh.complete("banger help image ") == sorted(
        ["register", "build", "list", "show", "delete", "warm"])
    # Names from the live bangerd.
    assert names["vm"] in zsh.complete("banger vm stop ")
    assert zsh.complete("banger vm stop %s" % names["vm"][:-1]) == \
        [names["vm"]]
    assert names["image"] in zsh.complete("banger image delete ")
    assert names["image"] in zsh.complete("banger vm create --image ")
