"""Helpers for the Debian image tests: build the image once and keep it
between runs, and read it with debugfs without booting or mounting.

The image is built by rootfs/make-rootfs.sh into
  $BANGER_TEST_IMAGE_CACHE (default /var/cache/banger/test-image)/<hash>/
where <hash> covers every input (the scripts, rootfs/files, the package list,
versions.env, the agent, the public key, the fixture plugin commits, the
mirror), so a run with unchanged inputs reuses the last build and a changed
input rebuilds.  The bootstrap cache is make-rootfs.sh's own
($BANGER_ROOTFS_CACHE, default /var/cache/banger/rootfs), shared with
`make rootfs`.  Without root, the tools, or the Debian mirror and npm
registry the build is skipped with the reason."""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ROOTFS = os.path.join(REPO, "rootfs")
MAKE_ROOTFS = os.path.join(ROOTFS, "make-rootfs.sh")

# A fixed key (its private half was thrown away): the image's authorized
# key must equal it byte for byte.
TEST_PUBKEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL/5HY9x6I+FTTT3zQZ/5zF5LnT"
               "AaUq+6+WQ+wAg8RSc banger-test-image\n")

IMAGE_CACHE = os.environ.get("BANGER_TEST_IMAGE_CACHE", "/var/cache/banger/test-image")
ROOTFS_CACHE = os.environ.get("BANGER_ROOTFS_CACHE", "/var/cache/banger/rootfs")
# Kept image dirs (the default image and the slim no-plugins variant).
KEEP_IMAGES = 2
STAGE_RE = re.compile(r"^stage: ([a-z][a-z-]*) (\d{1,3})$")


def agent_path():
    p = os.environ.get("BANGER_AGENT") or os.path.join(REPO, "runtime", "banger-vsock-agent")
    return os.path.abspath(p)


def read_versions():
    pins = {}
    with open(os.path.join(ROOTFS, "versions.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                pins[k] = v
    return pins


# ------------------------------------------------------------ fixture repos

GIT_ENV = {
    "GIT_AUTHOR_NAME": "banger test", "GIT_AUTHOR_EMAIL": "test@banger.invalid",
    "GIT_COMMITTER_NAME": "banger test", "GIT_COMMITTER_EMAIL": "test@banger.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "LC_ALL": "C",
}


def make_plugin_repo(parent, name, entry):
    """A local git repo standing in for a tmux plugin: the entry file plus
    a script, one commit with fixed dates, so its commit id is stable."""
    repo = os.path.join(parent, name)
    os.makedirs(os.path.join(repo, "scripts"))
    with open(os.path.join(repo, entry), "w") as f:
        f.write("#!/usr/bin/env bash\n# %s fixture for banger's image tests\n"
                "CURRENT_DIR=\"$(cd \"$(dirname \"${BASH_SOURCE[0]}\")\" && pwd)\"\n"
                "tmux set-option -gq @%s-fixture-loaded on\n" % (name, name))
    os.chmod(os.path.join(repo, entry), 0o755)
    with open(os.path.join(repo, "scripts", "helpers.sh"), "w") as f:
        f.write("# fixture helper\n")
    env = dict(os.environ, **GIT_ENV)
    for argv in (["git", "init", "-q", "-b", "master", repo],
                 ["git", "-C", repo, "add", "-A"],
                 ["git", "-C", repo, "commit", "-q", "-m", "fixture " + name]):
        subprocess.run(argv, check=True, env=env, capture_output=True)
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], check=True,
                            env=env, capture_output=True, text=True).stdout.strip()
    return repo, commit


# ------------------------------------------------------------------ building

def build_prerequisites():
    """Why the image cannot be built here, or None."""
    if os.geteuid() != 0:
        return "building the image needs root (mmdebstrap --mode=root)"
    for tool, pkg in (("mmdebstrap", "mmdebstrap"), ("mkfs.ext4", "e2fsprogs"),
                      ("debugfs", "e2fsprogs"), ("zstd", "zstd"), ("git", "git")):
        if shutil.which(tool) is None:
            return "%s is not installed (apt-get install %s)" % (tool, pkg)
    if not os.path.isfile(agent_path()):
        return "no guest agent at %s (run make build)" % agent_path()
    return None


def network_problem():
    """Why the Debian mirror or the npm registry cannot be reached, or None."""
    mirror = os.environ.get("BANGER_DEBIAN_MIRROR", "http://deb.debian.org/debian").rstrip("/")
    try:
        urllib.request.urlopen(mirror + "/dists/bookworm/Release", timeout=15).read(64)
    except Exception as e:  # noqa: BLE001 - any failure means "unreachable"
        return "the Debian mirror %s is unreachable (%s)" % (mirror, e)
    if shutil.which("npm") is None:
        return "npm is not installed (needed to fetch mise and opencode)"
    r = subprocess.run(["npm", "view", "--silent", read_versions()["MISE_NPM_PACKAGE"], "version"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return "the npm registry is unreachable (%s)" % r.stderr.strip()[-200:]
    return None


def input_hash(extra):
    h = hashlib.sha256()
    paths = [MAKE_ROOTFS, os.path.join(ROOTFS, "versions.env"),
             os.path.join(ROOTFS, "packages-debian.txt")]
    files_dir = os.path.join(ROOTFS, "files")
    paths += sorted(os.path.join(files_dir, n) for n in os.listdir(files_dir))
    paths.append(agent_path())
    for p in paths:
        h.update(p.encode() + b"\0")
        with open(p, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    for k in sorted(extra):
        h.update(("%s=%s\0" % (k, extra[k])).encode())
    h.update(TEST_PUBKEY.encode())
    return h.hexdigest()[:20]


def prune(keep_dir):
    try:
        dirs = [os.path.join(IMAGE_CACHE, d) for d in os.listdir(IMAGE_CACHE)]
    except OSError:
        return
    dirs = [d for d in dirs if os.path.isdir(d) and d != keep_dir
            and os.path.exists(os.path.join(d, "stages.txt"))]
    dirs.sort(key=os.path.getmtime, reverse=True)
    for d in dirs[KEEP_IMAGES - 1:]:
        shutil.rmtree(d, ignore_errors=True)


class BuiltImage:
    def __init__(self, path):
        self.dir = path
        self.rootfs = os.path.join(path, "rootfs-docker.ext4")
        self.seed = os.path.join(path, "work-seed.ext4")
        self.pubkey = os.path.join(path, "id_test.pub")
        with open(os.path.join(path, "stages.txt")) as f:
            self.stages = f.read()
        with open(os.path.join(path, "build.log")) as f:
            self.log = f.read()

    def kept(self, path):
        """A file kept from a slim build (keep=...), or None."""
        p = os.path.join(self.dir, "files", path.strip("/").replace("/", "_"))
        if not os.path.exists(p):
            return None
        with open(p, "rb") as f:
            return f.read()

    def kept_listing(self, path):
        """A kept directory's entries, or None if it did not exist."""
        p = os.path.join(self.dir, "files", path.strip("/").replace("/", "_") + ".ls")
        if not os.path.exists(p):
            return None
        with open(p) as f:
            return f.read().split()


def build_image(name, extra_args=(), env_extra=None, keep=None, key_env=None):
    """Build (or reuse) one image variant; returns a BuiltImage or skips.
    With keep=[paths], only those files of the rootfs are kept (in
    <dir>/files/, flattened names) and the images themselves are dropped.
    key_env stands in for env_extra in the cache key (e.g. commit ids
    instead of per-session fixture paths)."""
    why = build_prerequisites()
    if why:
        pytest.skip(why)
    env_extra = dict(env_extra or {})
    key = dict(env_extra if key_env is None else key_env,
               args=" ".join(extra_args), variant=name,
               mirror=os.environ.get("BANGER_DEBIAN_MIRROR", ""))
    target = os.path.join(IMAGE_CACHE, "%s-%s" % (name, input_hash(key)))
    if os.path.isfile(os.path.join(target, "stages.txt")):
        os.utime(target)
        return BuiltImage(target)

    os.makedirs(IMAGE_CACHE, mode=0o700, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".build-", dir=IMAGE_CACHE)
    try:
        pub = os.path.join(work, "id_test.pub")
        with open(pub, "w") as f:
            f.write(TEST_PUBKEY)
        env = dict(os.environ, **env_extra)
        argv = [MAKE_ROOTFS, "--out", work, "--agent", agent_path(), "--pubkey", pub,
                "--cache", ROOTFS_CACHE] + list(extra_args)
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            why = network_problem()
            if why:
                pytest.skip("cannot build the image: " + why)
            pytest.fail("make-rootfs.sh failed (exit %d):\n%s" % (r.returncode, r.stderr[-6000:]))
        with open(os.path.join(work, "build.log"), "w") as f:
            f.write(r.stderr)
        if keep is not None:
            files = os.path.join(work, "files")
            os.mkdir(files)
            fs = Ext4(os.path.join(work, "rootfs-docker.ext4"))
            for path in keep:
                name = os.path.join(files, path.strip("/").replace("/", "_"))
                st = fs.stat(path)
                if st is not None and st["type"] == "directory":
                    with open(name + ".ls", "w") as f:
                        f.write("".join(n + "\n" for n in sorted(fs.ls(path))))
                elif st is not None:
                    with open(name, "wb") as f:
                        f.write(fs.read(path))
            os.unlink(os.path.join(work, "rootfs-docker.ext4"))
            os.unlink(os.path.join(work, "work-seed.ext4"))
        with open(os.path.join(work, "stages.txt"), "w") as f:
            f.write(r.stdout)
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    prune(target)
    return BuiltImage(target)


# ------------------------------------------------------------------- debugfs

class Ext4:
    """Read-only views of an ext4 image through debugfs (no mount)."""

    def __init__(self, image):
        self.image = image

    def run(self, request):
        r = subprocess.run(["debugfs", "-R", request, self.image],
                           capture_output=True, timeout=120)
        return r.stdout, r.stderr.decode(errors="replace")

    def read(self, path):
        """File content as bytes, or None when it does not exist."""
        out, err = self.run("cat " + path)
        if "File not found" in err or "not found by ext2_lookup" in err:
            return None
        return out

    def text(self, path):
        data = self.read(path)
        return None if data is None else data.decode()

    def stat(self, path):
        """{'type', 'mode', 'uid', 'gid', 'size', 'link', 'mtime'} or None
        (mtime: debugfs's "0xSECONDS:EXTRA" text, exact to the nanosecond)."""
        out, err = self.run("stat " + path)
        text = out.decode(errors="replace")
        m = re.search(r"Type: (\S+)\s+Mode:\s+(\d+)", text)
        if not m:
            return None
        st = {"type": m.group(1), "mode": int(m.group(2), 8)}
        u = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)", text)
        st["uid"], st["gid"] = int(u.group(1)), int(u.group(2))
        s = re.search(r"Size: (\d+)", text)
        st["size"] = int(s.group(1)) if s else None
        t = re.search(r"^ mtime: (0x[0-9a-f]+(?::[0-9a-f]+)?)", text, re.M)
        st["mtime"] = t.group(1) if t else None
        link = re.search(r'Fast link dest: "(.*)"', text)
        st["link"] = link.group(1) if link else None
        if st["type"] == "symlink" and st["link"] is None:
            # A long target lives in a data block.
            st["link"] = self.read(path).decode()
        return st

    def ls(self, path):
        """{name: (mode, uid, gid)} of a directory, without . and .."""
        out, _ = self.run("ls -p " + path)
        entries = {}
        for line in out.decode(errors="replace").splitlines():
            # /inode/mode/uid/gid/name/size/
            parts = line.strip().split("/")
            if len(parts) < 7 or parts[5] in (".", ".."):
                continue
            entries[parts[5]] = (int(parts[2], 8), int(parts[3]), int(parts[4]))
        return entries

    def walk(self, path="/"):
        """(path, mode, uid, gid) of everything under path."""
        for name, (mode, uid, gid) in sorted(self.ls(path).items()):
            full = path.rstrip("/") + "/" + name
            yield full, mode, uid, gid
            if mode & 0o170000 == 0o040000:
                yield from self.walk(full)

    def superblock(self):
        r = subprocess.run(["dumpe2fs", "-h", self.image], capture_output=True,
                           text=True, timeout=60)
        info = {}
        for line in r.stdout.splitlines():
            k, sep, v = line.partition(":")
            if sep:
                info[k.strip()] = v.strip()
        return info
