"""The work-disk repair step (rootfs/files/repair-root) on fixture trees.

Each case builds a tree under tmp_path, runs the step with every POSIX shell
on the host (dash, busybox sh, bash --posix), and compares complete listings
(path, type, mode, content or link target) before and after: content moves
but is never lost, overwritten or duplicated, and a second run changes
nothing."""
import hashlib
import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPAIR = os.path.join(HERE, "..", "..", "rootfs", "files", "repair-root")


def _shells():
    shells = []
    if shutil.which("dash"):
        shells.append(("dash", [shutil.which("dash")]))
    if shutil.which("busybox"):
        shells.append(("busybox", [shutil.which("busybox"), "sh"]))
    if shutil.which("bash"):
        shells.append(("bash-posix", [shutil.which("bash"), "--posix"]))
    return shells


SHELLS = _shells()


@pytest.fixture(params=[s[1] for s in SHELLS], ids=[s[0] for s in SHELLS])
def shell(request):
    return request.param


def run(shell, root, *extra, state=None):
    argv = list(shell) + [REPAIR]
    if state is not None:
        argv += ["--state", str(state)]
    argv += [str(a) for a in extra]
    if root is not None:
        argv.append(str(root))
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def snapshot(root):
    """{relative path: (kind, mode, payload)} for everything under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            mode = st.st_mode & 0o7777
            if os.path.islink(p):
                out[rel] = ("link", 0, os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", mode, None)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", mode, hashlib.sha256(f.read()).hexdigest())
        # os.walk does not descend into symlinked dirs: fine, links are leaves.
    return out


def payloads(snap):
    """The multiset of file contents and link targets: what must survive."""
    return sorted((k, m, p) for (k, m, p) in snap.values() if k != "dir")


def write(root, rel, content="x", mode=0o644):
    p = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(content)
    os.chmod(p, mode)
    return p


def conflict_dirs(root):
    base = os.path.join(str(root), ".banger-conflicts")
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def assert_second_run_changes_nothing(shell, root, word, tmp_path):
    before = snapshot(root)
    r = run(shell, root, state=tmp_path / "state2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == word
    assert (tmp_path / "state2").read_text().split()[0] == word
    assert snapshot(root) == before


def test_nested_layout_moves_everything_up(shell, tmp_path):
    root = tmp_path / "disk"
    os.makedirs(root / "lost+found")
    write(root, "root/.bashrc", "bashrc\n")
    write(root, "root/.profile", "profile\n")
    write(root, "root/.ssh/authorized_keys", "ssh-ed25519 AAAA k\n", 0o600)
    os.chmod(root / "root" / ".ssh", 0o700)
    write(root, "root/project/src/main.c", "int main;\n")
    write(root, "root/run.sh", "#!/bin/sh\n", 0o755)
    os.symlink("project/src", root / "root" / "src-link")
    os.symlink("/nowhere/at/all", root / "root" / ".dangling")
    before = snapshot(root)

    state = tmp_path / "run" / "banger" / "layout-state"
    r = run(shell, root, state=state)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "repaired"
    assert state.read_text().split()[0] == "repaired"

    after = snapshot(root)
    assert payloads(after) == payloads(before)
    assert not os.path.exists(root / "root")
    assert (root / ".bashrc").read_text() == "bashrc\n"
    assert (root / ".ssh" / "authorized_keys").exists()
    assert os.stat(root / ".ssh").st_mode & 0o777 == 0o700
    assert os.stat(root / "run.sh").st_mode & 0o777 == 0o755
    assert os.readlink(root / "src-link") == "project/src"
    assert os.readlink(root / ".dangling") == "/nowhere/at/all"
    assert (root / "project" / "src" / "main.c").exists()
    assert (root / "lost+found").is_dir()
    assert conflict_dirs(root) == []
    assert_second_run_changes_nothing(shell, root, "ok", tmp_path)


def test_name_clash_keeps_both(shell, tmp_path):
    root = tmp_path / "disk"
    write(root, ".bashrc", "new seed bashrc\n")
    write(root, ".ssh/authorized_keys", "top key\n")
    write(root, "notes.txt", "top notes\n")
    write(root, "root/.bashrc", "old nested bashrc\n")
    write(root, "root/.ssh/authorized_keys", "nested key\n")
    write(root, "root/.ssh/id_ed25519", "nested private\n", 0o600)
    write(root, "root/notes.txt", "nested notes\n")
    write(root, "root/only-nested.txt", "unique\n")
    before = snapshot(root)

    r = run(shell, root, state=tmp_path / "state")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "conflicts"
    assert (tmp_path / "state").read_text().split()[0] == "conflicts"

    after = snapshot(root)
    assert payloads(after) == payloads(before)
    # The top-level copies are untouched; the nested ones are parked under
    # the path they had.
    assert (root / ".bashrc").read_text() == "new seed bashrc\n"
    assert (root / ".ssh" / "authorized_keys").read_text() == "top key\n"
    assert (root / "notes.txt").read_text() == "top notes\n"
    assert (root / "only-nested.txt").read_text() == "unique\n"
    stamps = conflict_dirs(root)
    assert len(stamps) == 1 and re.fullmatch(r"\d{8}T\d{6}Z", stamps[0]), stamps
    parked = root / ".banger-conflicts" / stamps[0] / "root"
    assert (parked / ".bashrc").read_text() == "old nested bashrc\n"
    assert (parked / ".ssh" / "authorized_keys").read_text() == "nested key\n"
    assert (parked / ".ssh" / "id_ed25519").read_text() == "nested private\n"
    assert (parked / "notes.txt").read_text() == "nested notes\n"
    assert not os.path.exists(root / "root")
    assert "kept both copies of .bashrc" in r.stderr
    # The word stays "conflicts" while the folder holds something.
    assert_second_run_changes_nothing(shell, root, "conflicts", tmp_path)


def test_already_repaired_is_ok(shell, tmp_path):
    root = tmp_path / "disk"
    write(root, ".bashrc", "b\n")
    write(root, ".profile", "p\n")
    write(root, "work/app.py", "print(1)\n")
    os.makedirs(root / "lost+found")
    before = snapshot(root)
    r = run(shell, root, state=tmp_path / "state")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert (tmp_path / "state").read_text() == "ok\n"
    assert snapshot(root) == before
    assert_second_run_changes_nothing(shell, root, "ok", tmp_path)


def test_empty_disk_is_ok(shell, tmp_path):
    root = tmp_path / "disk"
    os.makedirs(root)
    r = run(shell, root, state=tmp_path / "state")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert snapshot(root) == {}
    os.makedirs(root / "lost+found")
    r = run(shell, root)
    assert r.stdout.strip() == "ok"
    assert snapshot(root) == {"lost+found": ("dir", 0o755, None)}


def test_a_project_called_root_is_left_alone(shell, tmp_path):
    root = tmp_path / "disk"
    write(root, ".bashrc", "b\n")
    write(root, "root/Cargo.toml", "[package]\n")
    write(root, "root/src/lib.rs", "\n")
    os.makedirs(root / "empty-root-parent")
    before = snapshot(root)
    r = run(shell, root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert snapshot(root) == before


def test_empty_nested_dir_is_left_alone(shell, tmp_path):
    root = tmp_path / "disk"
    os.makedirs(root / "root")
    before = snapshot(root)
    r = run(shell, root)
    assert r.stdout.strip() == "ok"
    assert snapshot(root) == before


def test_symlinked_root_is_not_followed(shell, tmp_path):
    root = tmp_path / "disk"
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere, ".bashrc", "elsewhere\n")
    os.makedirs(root)
    os.symlink(str(elsewhere), root / "root")
    before = snapshot(root)
    r = run(shell, root)
    assert r.stdout.strip() == "ok"
    assert snapshot(root) == before
    assert (elsewhere / ".bashrc").exists()


def test_double_nesting_is_unwound(shell, tmp_path):
    root = tmp_path / "disk"
    write(root, ".bashrc", "level0\n")
    write(root, "root/.bashrc", "level1\n")
    write(root, "root/a.txt", "a1\n")
    write(root, "root/root/.bashrc", "level2\n")
    write(root, "root/root/.profile", "p2\n")
    write(root, "root/root/a.txt", "a2\n")
    write(root, "root/root/deep/file", "deep\n")
    before = snapshot(root)
    r = run(shell, root, state=tmp_path / "state")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "conflicts"
    after = snapshot(root)
    assert payloads(after) == payloads(before)
    assert not os.path.exists(root / "root")
    assert (root / ".bashrc").read_text() == "level0\n"
    assert (root / "a.txt").read_text() == "a1\n"
    assert (root / ".profile").read_text() == "p2\n"
    assert (root / "deep" / "file").read_text() == "deep\n"
    stamp = conflict_dirs(root)[0]
    parked = root / ".banger-conflicts" / stamp
    assert (parked / "root" / ".bashrc").read_text() == "level1\n"
    assert (parked / "root" / "root" / ".bashrc").read_text() == "level2\n"
    assert (parked / "root" / "root" / "a.txt").read_text() == "a2\n"
    assert_second_run_changes_nothing(shell, root, "conflicts", tmp_path)


def test_double_nesting_without_clashes_is_repaired(shell, tmp_path):
    root = tmp_path / "disk"
    write(root, "root/.bashrc", "level1\n")
    write(root, "root/root/.profile", "level2\n")
    write(root, "root/root/root/.tmux.conf", "level3\n")
    before = snapshot(root)
    r = run(shell, root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "repaired"
    assert payloads(snapshot(root)) == payloads(before)
    assert sorted(os.listdir(root)) == [".bashrc", ".profile", ".tmux.conf"]
    assert_second_run_changes_nothing(shell, root, "ok", tmp_path)


def test_interrupted_unwind_is_resumed(shell, tmp_path):
    # A crash between the two renames of the unwinding step.
    root = tmp_path / "disk"
    write(root, ".bashrc", "top\n")
    write(root, ".banger-repair-tmp/root/.profile", "p\n")
    write(root, ".banger-repair-tmp/root/x.txt", "x\n")
    before = snapshot(root)
    r = run(shell, root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "repaired"
    assert payloads(snapshot(root)) == payloads(before)
    assert sorted(os.listdir(root)) == [".bashrc", ".profile", "x.txt"]
    assert_second_run_changes_nothing(shell, root, "ok", tmp_path)


def test_odd_names(shell, tmp_path):
    root = tmp_path / "disk"
    names = ["with space", "new\nline", "-dash", "..dotdot", ".a", "*", "$(x)", "é"]
    write(root, "root/.profile", "p\n")
    for i, n in enumerate(names):
        write(root, "root/" + n, "n%d\n" % i)
    write(root, "-dash", "top dash\n")
    before = snapshot(root)
    r = run(shell, root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "conflicts"
    assert payloads(snapshot(root)) == payloads(before)
    for i, n in enumerate(names):
        if n == "-dash":
            continue
        assert (root / n).read_text() == "n%d\n" % i
    assert (root / "-dash").read_text() == "top dash\n"
    stamp = conflict_dirs(root)[0]
    assert (root / ".banger-conflicts" / stamp / "root" / "-dash").read_text() == "n2\n"


def test_conflict_folders_never_overwrite(shell, tmp_path):
    # Two repairs within the same second (or with a leftover folder of the
    # same name) get distinct folders.
    root = tmp_path / "disk"
    write(root, ".bashrc", "top\n")
    write(root, "root/.bashrc", "first\n")
    assert run(shell, root).stdout.strip() == "conflicts"
    write(root, "root/.bashrc", "second\n")
    before = snapshot(root)
    assert run(shell, root).stdout.strip() == "conflicts"
    assert payloads(snapshot(root)) == payloads(before)
    contents = sorted(
        (root / ".banger-conflicts" / d / "root" / ".bashrc").read_text()
        for d in conflict_dirs(root))
    assert contents == ["first\n", "second\n"]


def test_default_root_and_relative_path(tmp_path):
    root = tmp_path / "disk"
    write(root, "root/.bashrc", "b\n")
    r = subprocess.run(["sh", REPAIR, "disk"], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "repaired"
    assert (root / ".bashrc").exists()


def test_usage_errors(tmp_path):
    for argv in (["--bogus"], ["a", "b"], ["--state"], [str(tmp_path / "missing")]):
        r = subprocess.run(["sh", REPAIR] + argv, capture_output=True, text=True)
        assert r.returncode == 2, (argv, r.stdout, r.stderr)
        assert r.stdout == ""
    r = subprocess.run(["sh", REPAIR, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: repair-root" in r.stdout


def test_no_bashisms():
    """POSIX sh only (the Void image reuses it): shellcheck in sh mode."""
    sc = shutil.which("shellcheck")
    if sc is None:
        pytest.skip("shellcheck is not installed")
    r = subprocess.run([sc, "-s", "sh", REPAIR], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    with open(REPAIR) as f:
        head = f.readline()
    assert head == "#!/bin/sh\n"
