"""tar_util.py - archives and trees for the tests of GET and PUT /files.

usage: tar_util.py make-tree DIR       a tree with what a copy must keep
       tar_util.py tree DIR            what DIR holds, as JSON (see below)
       tar_util.py list TAR|-          a tar's entries as JSON, read as a
                                       stream (contents hashed, not kept)
       tar_util.py same TAR|- DIR      exit 0 when the tar holds DIR's tree
                                       (entries under DIR's basename)
       tar_util.py hostile KIND OUT OUTSIDE
                                       a hostile archive of KIND in OUT,
                                       aimed at the directory OUTSIDE

A description maps each name (relative, '/'-separated) to its type, mode,
mtime (whole seconds), size and sha256 (files) or target (symlinks).
"""
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

MTIME = 1577934245          # 2020-01-02 03:04:05 UTC
LONG = "l" * 120            # past ustar's 100-byte name field


def make_tree(root):
    os.makedirs(os.path.join(root, "nested", "deeper", LONG))
    files = {
        "top.txt": b"top\n",
        "nested/a.bin": os.urandom(70000),
        "nested/deeper/b.txt": b"b\n" * 1000,
        "nested/deeper/%s/long.txt" % LONG: b"long\n",
        "nested/caf\u00e9.txt": b"utf-8 name\n",
        "empty": b"",
        "ro/inside.txt": b"in a read-only directory\n",
        "exec.sh": b"#!/bin/sh\necho hi\n",
    }
    os.makedirs(os.path.join(root, "ro"))
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    os.chmod(os.path.join(root, "exec.sh"), 0o750)
    os.chmod(os.path.join(root, "nested", "a.bin"), 0o600)
    os.symlink("deeper/b.txt", os.path.join(root, "nested", "link"))
    os.symlink("/nonexistent/target", os.path.join(root, "dangling"))
    os.chmod(os.path.join(root, "nested", "deeper"), 0o750)
    # mtimes last, deepest first (a change inside a directory moves its own)
    for dirpath, dirnames, filenames in sorted(os.walk(root), reverse=True):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (MTIME, MTIME + len(n)),
                     follow_symlinks=False)
    os.chmod(os.path.join(root, "ro"), 0o555)
    os.utime(os.path.join(root, "ro"), (MTIME, MTIME + 7))
    os.utime(root, (MTIME, MTIME))


def describe_stat(st, path):
    d = {"mode": oct(stat.S_IMODE(st.st_mode)), "mtime": int(st.st_mtime)}
    if stat.S_ISDIR(st.st_mode):
        d["type"] = "dir"
    elif stat.S_ISLNK(st.st_mode):
        d["type"] = "symlink"
        d["target"] = os.readlink(path)
        del d["mode"]        # a symlink's own mode means nothing on Linux
    elif stat.S_ISREG(st.st_mode):
        d["type"] = "file"
        d["size"] = st.st_size
        with open(path, "rb") as f:
            d["sha256"] = hashlib.sha256(f.read()).hexdigest()
    else:
        d["type"] = "other"
    return d


def tree(root, prefix):
    out = {prefix: describe_stat(os.lstat(root), root)}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            name = prefix + "/" + (n if rel == "." else rel + "/" + n)
            d = describe_stat(os.lstat(p), p)
            if d["type"] != "other":      # fifos, sockets: not copied
                out[name] = d
    return out


def list_tar(src):
    f = sys.stdin.buffer if src == "-" else open(src, "rb")
    out = {}
    with tarfile.open(fileobj=f, mode="r|") as t:
        for m in t:
            d = {"mode": oct(m.mode & 0o7777), "mtime": int(m.mtime),
                 "uid": m.uid, "gid": m.gid}
            if m.isdir():
                d["type"] = "dir"
            elif m.issym():
                d["type"] = "symlink"
                d["target"] = m.linkname
                del d["mode"]
            elif m.isfile():
                d["type"] = "file"
                d["size"] = m.size
                h = hashlib.sha256()
                r = t.extractfile(m)
                while True:
                    b = r.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
                d["sha256"] = h.hexdigest()
            else:
                d["type"] = "other"
            out[m.name.rstrip("/")] = d
    return out


def hostile(kind, out, outside):
    b = io.BytesIO()
    t = tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT)

    def add(name, typ=tarfile.REGTYPE, data=b"evil\n", link=""):
        ti = tarfile.TarInfo(name)
        ti.type = typ
        ti.linkname = link
        ti.mode = 0o644
        ti.size = len(data) if typ == tarfile.REGTYPE else 0
        t.addfile(ti, io.BytesIO(data) if typ == tarfile.REGTYPE else None)

    add("before.txt")          # written: what comes before the refusal stays
    if kind == "dotdot":
        add("../evil")
    elif kind == "dotdot-inner":
        add("a/../../evil")
    elif kind == "absolute":
        add(os.path.join(outside, "evil"))
    elif kind == "symlink-dir":
        add("link", tarfile.SYMTYPE, link=outside)
        add("link/evil")
    elif kind == "symlink-file":
        add("victim", tarfile.SYMTYPE, link=os.path.join(outside, "victim"))
        add("victim")
    elif kind == "hardlink-out":
        add("passwd", tarfile.LNKTYPE, link="/etc/passwd")
    elif kind == "hardlink-dotdot":
        add("h", tarfile.LNKTYPE, link="../outside-file")
    elif kind == "hardlink-absent":
        add("h", tarfile.LNKTYPE, link="no-such-file")
    elif kind == "device":
        add("null", tarfile.CHRTYPE)
    elif kind == "blockdev":
        add("disk", tarfile.BLKTYPE)
    elif kind == "fifo":
        add("pipe", tarfile.FIFOTYPE)
    else:
        raise SystemExit("unknown kind " + kind)
    t.close()
    with open(out, "wb") as f:
        f.write(b.getvalue())


def main():
    cmd = sys.argv[1]
    if cmd == "make-tree":
        make_tree(sys.argv[2])
    elif cmd == "tree":
        t = tree(sys.argv[2], ".")
        del t["."]      # the target directory: a PUT leaves it as it is
        print(json.dumps(t, indent=1, sort_keys=True))
    elif cmd == "list":
        print(json.dumps(list_tar(sys.argv[2]), indent=1, sort_keys=True))
    elif cmd == "same":
        got = list_tar(sys.argv[2])
        for d in got.values():
            d.pop("uid")
            d.pop("gid")
        root = sys.argv[3].rstrip("/")
        want = tree(root, os.path.basename(root))
        if got != want:
            for k in sorted(set(got) | set(want)):
                if got.get(k) != want.get(k):
                    print("differs: %s: tar %s, tree %s" %
                          (k, got.get(k), want.get(k)), file=sys.stderr)
            return 1
    elif cmd == "hostile":
        hostile(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
