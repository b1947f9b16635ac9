"""The guest kernel (rootfs/make-kernel.sh) and the small initrd
(rootfs/make-initrd.sh).

The kernel comes from Debian's cloud kernel package; when it cannot be
downloaded (no network, no apt lists) the kernel and initrd tests are skipped
with that reason.  The .debs are cached in BANGER_CACHE (default
/var/cache/banger as root, as make-bundle.sh does), so only the first run
downloads.  The boot tests need qemu-system-x86_64 (skipped without it, or
with BANGER_SKIP_BOOT=1) and boot under TCG on a q35 machine with virtio-pci
devices (BANGER_BOOT_MACHINE=microvm uses virtio-mmio instead).  The
shared-folder boot also needs virtiofsd (QEMU's, /usr/lib/qemu/virtiofsd on
bookworm, or the standalone one) and root.
"""
import collections
import gzip
import os
import shutil
import stat
import struct
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAKE_KERNEL = os.path.join(ROOT, "rootfs", "make-kernel.sh")
MAKE_INITRD = os.path.join(ROOT, "rootfs", "make-initrd.sh")


def cache_dir():
    if os.environ.get("BANGER_CACHE"):
        return os.environ["BANGER_CACHE"]
    if os.geteuid() == 0:
        return "/var/cache/banger"
    return os.path.join(os.environ.get("XDG_CACHE_HOME")
                        or os.path.expanduser("~/.cache"), "banger")


def run(argv, timeout=600, **kw):
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, **kw)


# ---- fixtures ---------------------------------------------------------

TIMES = {}


@pytest.fixture(scope="session")
def kernel_dir():
    """make-kernel.sh's output (shared with make-bundle.sh's cache)."""
    cache = cache_dir()
    out = os.path.join(cache, "kernel", "tree")
    t0 = time.monotonic()
    r = run([MAKE_KERNEL, "--out", out, "--cache",
             os.path.join(cache, "kernel")])
    TIMES["make-kernel"] = time.monotonic() - t0
    if r.returncode != 0:
        fetch = ("apt-get download" in r.stderr or "no apt candidate" in
                 r.stderr or "apt knows no candidate" in r.stderr)
        if fetch:
            pytest.skip("the kernel package cannot be downloaded: "
                        + r.stderr.strip().splitlines()[-1])
        pytest.fail("make-kernel.sh failed:\n" + r.stderr)
    return out


@pytest.fixture(scope="session")
def initrd(kernel_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("initrd") / "initrd.img")
    t0 = time.monotonic()
    r = run([MAKE_INITRD, "--kernel-dir", kernel_dir, "--out", out,
             "--cache", os.path.join(cache_dir(), "initrd")])
    TIMES["make-initrd"] = time.monotonic() - t0
    if r.returncode != 0:
        if "apt-get download busybox-static" in r.stderr or \
                "apt knows no busybox-static" in r.stderr:
            pytest.skip("busybox-static cannot be downloaded: "
                        + r.stderr.strip().splitlines()[-1])
        pytest.fail("make-initrd.sh failed:\n" + r.stderr)
    return out


@pytest.fixture(scope="session")
def initrd_tree(initrd, tmp_path_factory):
    """The initrd unpacked by the test's own cpio reader."""
    d = tmp_path_factory.mktemp("initrd-tree")
    for e in read_cpio(initrd):
        path = os.path.join(str(d), e.name)
        if stat.S_ISDIR(e.mode):
            os.makedirs(path, exist_ok=True)
        elif stat.S_ISLNK(e.mode):
            os.symlink(e.data.decode(), path)
        elif stat.S_ISREG(e.mode):
            with open(path, "wb") as f:
                f.write(e.data)
            os.chmod(path, stat.S_IMODE(e.mode))
    return str(d)


@pytest.fixture(scope="session")
def busybox(initrd_tree):
    return os.path.join(initrd_tree, "bin", "busybox")


# ---- helpers ----------------------------------------------------------

Entry = collections.namedtuple(
    "Entry", "name ino mode uid gid nlink mtime rdevmajor rdevminor data")


def read_cpio(path):
    """Entries of a gzip'd cpio newc archive (no help from cpio(1))."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    entries, off = [], 0
    while True:
        hdr = data[off:off + 110]
        assert hdr[:6] == b"070701", "bad newc magic at %d" % off
        (ino, mode, uid, gid, nlink, mtime, size, _dmaj, _dmin, rmaj, rmin,
         namesize, _check) = [int(hdr[6 + 8 * i:14 + 8 * i], 16)
                              for i in range(13)]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        assert data[off + 110 + namesize - 1] == 0
        off = (off + 110 + namesize + 3) & ~3
        body = data[off:off + size]
        off = (off + size + 3) & ~3
        if name == "TRAILER!!!":
            assert data[off:].strip(b"\0") == b""
            return entries
        entries.append(Entry(name, ino, mode, uid, gid, nlink, mtime, rmaj,
                             rmin, body))


def elf_notes(path):
    """(name, type) of every note in an ELF64 file's PT_NOTE segments."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[4] == 2, "not ELF64"
    assert data[5] == 1, "not little-endian"
    (e_machine,) = struct.unpack_from("<H", data, 18)
    (e_phoff,) = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    notes = []
    for i in range(e_phnum):
        p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, e_phoff + i * e_phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        off, end = p_offset, p_offset + p_filesz
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            name = data[off + 12:off + 12 + namesz].rstrip(b"\0").decode()
            notes.append((name, ntype))
            off += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return e_machine, notes


def modules_dep(kernel_dir):
    deps = {}
    with open(os.path.join(kernel_dir, "kernel-modules", "modules.dep")) as f:
        for line in f:
            mod, _, rest = line.partition(":")
            deps[mod] = rest.split()
    return deps


def modname(path):
    return os.path.basename(path).split(".ko")[0].replace("-", "_")


# ---- kernel -----------------------------------------------------------

XEN_ELFNOTE_PHYS32_ENTRY = 0x12
EM_X86_64 = 62


def test_vmlinux_is_an_x86_64_elf_with_the_pvh_note(kernel_dir):
    machine, notes = elf_notes(os.path.join(kernel_dir, "vmlinux"))
    assert machine == EM_X86_64
    assert ("Xen", XEN_ELFNOTE_PHYS32_ENTRY) in notes, notes


def test_kernel_dir_layout(kernel_dir):
    with open(os.path.join(kernel_dir, "vmlinuz"), "rb") as f:
        f.seek(0x202)
        assert f.read(4) == b"HdrS", "vmlinuz is not a bzImage"
    release = open(os.path.join(kernel_dir, "kernel.release")).read().strip()
    assert release.endswith("-cloud-amd64")
    assert os.path.isfile(os.path.join(kernel_dir, "kernel-modules",
                                       "modules.dep"))
    config = open(os.path.join(kernel_dir, "config")).read()
    # The facts the initrd is built on (bookworm's cloud kernel).
    assert "CONFIG_PVH=y" in config
    assert "CONFIG_VIRTIO_BLK=m" in config
    assert "CONFIG_EXT4_FS=y" in config
    stamp = open(os.path.join(kernel_dir, "kernel.stamp")).read()
    assert "deb_sha256=" in stamp


def test_make_kernel_rerun_is_a_noop(kernel_dir):
    vmlinux = os.path.join(kernel_dir, "vmlinux")
    before = os.stat(vmlinux).st_mtime_ns
    cache = cache_dir()
    r = run([MAKE_KERNEL, "--out", kernel_dir, "--cache",
             os.path.join(cache, "kernel")])
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stderr
    assert os.stat(vmlinux).st_mtime_ns == before


def test_make_kernel_rejects_a_deb_without_a_kernel(tmp_path):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: linux-image-0.0.0-cloud-amd64\nVersion: 1\n"
        "Architecture: amd64\nMaintainer: t <t@example.org>\n"
        "Description: test\n")
    (root / "boot").mkdir()
    deb = tmp_path / "k.deb"
    r = run(["dpkg-deb", "--build", "--root-owner-group", str(root),
             str(deb)])
    assert r.returncode == 0, r.stderr
    r = run([MAKE_KERNEL, "--out", str(tmp_path / "out"), "--cache",
             str(tmp_path / "cache"), "--deb", str(deb)])
    assert r.returncode != 0
    assert "vmlinuz" in r.stderr


# ---- initrd contents ----------------------------------------------------

REQUIRED_MODULES = {
    "virtio", "virtio_ring", "virtio_mmio", "virtio_blk", "virtio_net",
    "failover", "net_failover", "vsock", "vmw_vsock_virtio_transport",
    "vmw_vsock_virtio_transport_common",
}


def test_initrd_lists_init_busybox_and_modules(initrd, kernel_dir):
    entries = {e.name: e for e in read_cpio(initrd)}
    release = open(os.path.join(kernel_dir, "kernel.release")).read().strip()

    init = entries["init"]
    assert stat.S_ISREG(init.mode) and init.mode & 0o111
    assert init.data.startswith(b"#!/bin/sh\n")
    assert stat.S_ISREG(entries["bin/busybox"].mode)
    assert entries["bin/busybox"].mode & 0o111
    for applet in ("sh", "insmod", "ip", "mount", "switch_root", "reboot"):
        e = entries["bin/" + applet]
        assert stat.S_ISLNK(e.mode) and e.data == b"busybox", applet
    console = entries["dev/console"]
    assert stat.S_ISCHR(console.mode)
    assert (console.rdevmajor, console.rdevminor) == (5, 1)
    for d in ("proc", "sys", "dev", "run", "newroot"):
        assert stat.S_ISDIR(entries[d].mode), d
    assert "lib/banger/initlib.sh" in entries

    kos = {n for n in entries if n.endswith(".ko")}
    prefix = "lib/modules/%s/" % release
    assert all(n.startswith(prefix) for n in kos)
    assert REQUIRED_MODULES <= {modname(n) for n in kos}

    # The load lists (every VM's, then the shared folders') name exactly
    # the .ko files, each once and after its dependencies.
    main = entries["lib/banger/modules"].data.decode().split()
    shares = entries["lib/banger/modules.shares"].data.decode().split()
    order = main + shares
    assert len(set(order)) == len(order), order
    assert {prefix + p for p in order} == kos
    deps = modules_dep(kernel_dir)
    for i, mod in enumerate(order):
        for dep in deps[mod]:
            assert dep in order[:i], "%s loads before its dependency %s" % (
                mod, dep)

    # Deterministic metadata, static busybox, small.
    for e in entries.values():
        assert (e.uid, e.gid, e.mtime) == (0, 0, 0), e.name
    assert b"/lib64/ld-linux" not in entries["bin/busybox"].data[:4096]
    size = os.path.getsize(initrd)
    assert size < 2 * 1024 * 1024, size
    print("\ninitrd: %d bytes, %d modules, built in %.2f s" % (
        size, len(kos), TIMES.get("make-initrd", 0)))
    if "make-kernel" in TIMES:
        print("make-kernel: %.2f s" % TIMES["make-kernel"])


def test_initrd_shares_list_is_fuse_and_virtiofs(initrd, kernel_dir):
    """modules.shares holds fuse and virtiofs only: virtiofs's other
    dependencies (virtio, virtio_ring) are in the main list already."""
    config = open(os.path.join(kernel_dir, "config")).read()
    assert "CONFIG_FUSE_FS=m" in config and "CONFIG_VIRTIO_FS=m" in config
    entries = {e.name: e for e in read_cpio(initrd)}
    shares = entries["lib/banger/modules.shares"].data.decode().split()
    assert [modname(p) for p in shares] == ["fuse", "virtiofs"]
    main = [modname(p) for p in
            entries["lib/banger/modules"].data.decode().split()]
    deps = modules_dep(kernel_dir)
    virtiofs = [d for d in deps[shares[1]] if d not in shares]
    assert virtiofs and all(modname(d) in main for d in virtiofs), virtiofs
    info = dict(line.split("=", 1) for line in
                entries["lib/banger/info"].data.decode().splitlines())
    assert info["shares_modules"] == "fuse virtiofs"
    assert "fuse" not in info["modules"].split()


def test_initrd_is_readable_by_gnu_cpio(initrd):
    if not shutil.which("cpio"):
        pytest.skip("cpio is not installed")
    with gzip.open(initrd, "rb") as f:
        r = subprocess.run(["cpio", "-it", "--quiet"], input=f.read(),
                           capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    names = r.stdout.decode().split()
    assert "init" in names and "bin/busybox" in names
    assert names == sorted(names)


def test_initrd_is_deterministic(initrd, kernel_dir, busybox, tmp_path):
    again = str(tmp_path / "again.img")
    r = run([MAKE_INITRD, "--kernel-dir", kernel_dir, "--out", again,
             "--busybox", busybox])
    assert r.returncode == 0, r.stderr
    with open(initrd, "rb") as a, open(again, "rb") as b:
        assert a.read() == b.read()


def test_initrd_fails_when_a_required_driver_is_missing(kernel_dir, busybox,
                                                         tmp_path):
    kdir = tmp_path / "kernel"
    kdir.mkdir()
    for f in ("kernel.release", "kernel.stamp"):
        shutil.copy(os.path.join(kernel_dir, f), kdir / f)
    os.symlink(os.path.join(kernel_dir, "kernel-modules"),
               kdir / "kernel-modules")
    config = open(os.path.join(kernel_dir, "config")).read()
    (kdir / "config").write_text(
        config.replace("CONFIG_VIRTIO_BLK=m", "# CONFIG_VIRTIO_BLK is not set"))
    r = run([MAKE_INITRD, "--kernel-dir", str(kdir), "--out",
             str(tmp_path / "i.img"), "--busybox", busybox])
    assert r.returncode != 0
    assert "CONFIG_VIRTIO_BLK" in r.stderr and "virtio_blk" in r.stderr
    assert not (tmp_path / "i.img").exists()


def test_init_scripts_are_shellcheck_clean(initrd_tree):
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed")
    r = run(["shellcheck", "-s", "sh", "-e", "SC1091",
             os.path.join(initrd_tree, "init"),
             os.path.join(initrd_tree, "lib", "banger", "initlib.sh")])
    assert r.returncode == 0, r.stdout


# ---- the init script's command-line parsing ----------------------------

PRINT = ('printf "%s\\n" "rc=$rc" "addr=$IP_ADDR" "prefix=$IP_PREFIX" '
         '"gw=$IP_GW" "host=$IP_HOST" "dev=$IP_DEV" "dns0=$IP_DNS0" '
         '"dns1=$IP_DNS1" "error=$IP_ERROR" "root=$CMD_ROOT" '
         '"mode=$CMD_ROOTMODE" "fstype=$CMD_ROOTFSTYPE" "init=$CMD_INIT" '
         '"wait=$CMD_ROOTWAIT" "shell=$CMD_SHELL"')


def shells(busybox):
    out = [[busybox, "sh"]]
    if os.path.exists("/bin/dash"):
        out.append(["/bin/dash"])
    return out


def parse(shell, initrd_tree, tmp_path, cmdline):
    f = tmp_path / "cmdline"
    f.write_text(cmdline + "\n")
    script = ('. "$LIB"; cmdline_parse "$CMDLINE"; parse_ip "$CMD_IP"; '
              'rc=$?; ' + PRINT)
    env = {"LIB": os.path.join(initrd_tree, "lib", "banger", "initlib.sh"),
           "CMDLINE": str(f), "PATH": os.path.dirname(shell[0]) + ":/bin"}
    r = run(shell + ["-c", script], env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines())


CONTRACT = ("console=ttyS0 reboot=k panic=1 root=/dev/vda rw "
            "ip=172.30.0.2::172.30.0.1:255.255.255.0:web:eth0:off "
            "banger.hostname=web banger.agent_port=1024 "
            "banger.workdev=/dev/vdb")


def test_parses_the_contract_cmdline(busybox, initrd_tree, tmp_path):
    for sh in shells(busybox):
        v = parse(sh, initrd_tree, tmp_path, CONTRACT)
        assert v["rc"] == "0", (sh, v)
        assert (v["addr"], v["prefix"], v["gw"], v["host"], v["dev"]) == (
            "172.30.0.2", "24", "172.30.0.1", "web", "eth0")
        assert v["dns0"] == "" and v["error"] == ""
        assert (v["root"], v["mode"], v["init"], v["wait"]) == (
            "/dev/vda", "rw", "/sbin/init", "10")


CASES = [
    # (ip= value, rc, expected fields)
    ("172.30.0.9::172.30.0.1:255.255.255.0:db:eth0:off:172.30.0.1",
     "0", {"dns0": "172.30.0.1", "host": "db"}),
    ("10.0.0.2::10.0.0.1:255.255.0.0::eth1:off:1.1.1.1:8.8.8.8",
     "0", {"prefix": "16", "dev": "eth1", "dns1": "8.8.8.8", "host": ""}),
    ("10.1.2.3::10.1.2.1:255.255.255.252:h::off", "0",
     {"prefix": "30", "dev": "eth0"}),
    ("10.1.2.3::::::off", "0", {"prefix": "8", "gw": ""}),
    ("192.168.7.5:::::", "0", {"prefix": "24", "dev": "eth0"}),
    ("10.1.2.3::10.1.2.1:24:h:eth0:off", "0", {"prefix": "24"}),
    ("off", "1", {}),
    ("none", "1", {}),
    ("dhcp", "2", {"error": "ip=dhcp: automatic configuration is not "
                            "supported"}),
    ("10.1.2.3::10.1.2.1:255.255.255.0:h:eth0:dhcp", "2", {}),
    ("300.1.2.3::10.1.2.1:255.255.255.0:h:eth0:off", "2",
     {"error": "ip=: bad client address '300.1.2.3'"}),
    ("10.1.2.3::10.1.2.1:255.0.255.0:h:eth0:off", "2",
     {"error": "ip=: bad netmask '255.0.255.0'"}),
    ("10.1.2.3::10.1.2:255.255.255.0:h:eth0:off", "2",
     {"error": "ip=: bad gateway '10.1.2'"}),
]


@pytest.mark.parametrize("value,rc,want", CASES)
def test_parse_ip(busybox, initrd_tree, tmp_path, value, rc, want):
    for sh in shells(busybox):
        v = parse(sh, initrd_tree, tmp_path, "console=ttyS0 ip=" + value)
        assert v["rc"] == rc, (sh, value, v)
        for k, exp in want.items():
            assert v[k] == exp, (sh, value, k, v)


def test_parses_root_options(busybox, initrd_tree, tmp_path):
    for sh in shells(busybox):
        v = parse(sh, initrd_tree, tmp_path, "console=ttyS0 panic=1")
        assert (v["rc"], v["root"], v["mode"], v["wait"]) == (
            "1", "/dev/vda", "ro", "10")
        v = parse(sh, initrd_tree, tmp_path,
                  "root=LABEL=rootfs rw ro rootfstype=ext4 init=/bin/sh "
                  "banger.rootwait=3 banger.initrd.shell")
        assert (v["root"], v["mode"], v["fstype"], v["init"], v["wait"],
                v["shell"]) == ("LABEL=rootfs", "ro", "ext4", "/bin/sh", "3",
                                "1")
        v = parse(sh, initrd_tree, tmp_path, "root=/dev/vdb banger.rootwait=x")
        assert (v["root"], v["wait"]) == ("/dev/vdb", "10")


def load(shell, initrd_tree, tmp_path, cmdline):
    """The module names load_modules insmods for CMDLINE (insmod a shell
    function that records its argument), and what it logged."""
    f = tmp_path / "cmdline"
    f.write_text(cmdline + "\n")
    log = tmp_path / "insmod.log"
    log.write_text("")
    lib = os.path.join(initrd_tree, "lib", "banger")
    script = ('. "$BANGER_LIB/initlib.sh"; '
              'insmod() { echo "$1" >>"$LOG"; }; '
              'cmdline_parse; load_modules')
    env = {"BANGER_LIB": lib, "BANGER_CMDLINE": str(f), "LOG": str(log),
           "PATH": os.path.dirname(shell[0]) + ":/usr/bin:/bin"}
    r = run(shell + ["-c", script], env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    return [modname(p) for p in log.read_text().split()], r.stdout


def test_shares_modules_load_only_with_a_mount_word(busybox, initrd_tree,
                                                     tmp_path):
    lib = os.path.join(initrd_tree, "lib", "banger")
    main = [modname(p) for p in open(os.path.join(lib, "modules")).read().split()]
    for sh in shells(busybox):
        mods, out = load(sh, initrd_tree, tmp_path, CONTRACT)
        assert mods == main, (sh, mods)
        assert "banger-initrd: loaded %d modules\n" % len(main) in out, out
        mods, out = load(sh, initrd_tree, tmp_path,
                         CONTRACT + " banger.mount=banger0:/mnt/src:ro "
                         "banger.mount=banger1:/root/proj")
        assert mods == main + ["fuse", "virtiofs"], (sh, mods)
        assert ("banger-initrd: loaded %d modules (2 shared folders)\n"
                % (len(main) + 2)) in out, out
        # A word that only looks like it does not count.
        mods, _ = load(sh, initrd_tree, tmp_path,
                       CONTRACT + " xbanger.mount=banger0:/mnt/src")
        assert mods == main, (sh, mods)


# ---- booting it -------------------------------------------------------

GUEST_INIT = """#!/bin/busybox sh
B=/bin/busybox
echo "GUEST: init pid=$$"
echo "GUEST: addr=$($B ip -4 -o addr show dev eth0 | $B awk '{print $4}')"
echo "GUEST: route=$($B ip route show default)"
echo "GUEST: hostname=$($B hostname)"
echo "GUEST: resolv=$($B cat /run/banger/resolv.conf)"
echo "GUEST: modules=$($B cut -d' ' -f1 /proc/modules | $B sort | $B tr '\\n' ' ')"
echo "GUEST: root=$($B grep ' / ' /proc/mounts)"
echo "GUEST: done"
$B reboot -f
"""


def qemu_cmd(kernel, initrd, rootfs, append, serial):
    machine = os.environ.get("BANGER_BOOT_MACHINE", "q35")
    if machine == "microvm":
        blk, net, m = "virtio-blk-device", "virtio-net-device", "microvm"
    else:
        blk, net, m = "virtio-blk-pci", "virtio-net-pci", "q35"
    return ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp",
            "1", "-m", "512", "-M", m, "-nodefaults", "-no-user-config",
            "-nographic", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
            "-append", append,
            "-drive", "id=root,file=%s,format=raw,if=none" % rootfs,
            "-device", blk + ",drive=root",
            "-netdev", "user,id=net0", "-device", net + ",netdev=net0",
            "-chardev", "file,id=ser0,path=" + serial,
            "-serial", "chardev:ser0"]


@pytest.fixture(scope="session")
def guest_rootfs(busybox, tmp_path_factory):
    if os.environ.get("BANGER_SKIP_BOOT") == "1":
        pytest.skip("BANGER_SKIP_BOOT=1")
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed")
    if not shutil.which("mkfs.ext4"):
        pytest.skip("mkfs.ext4 is not installed")
    d = tmp_path_factory.mktemp("guest")
    tree = d / "tree"
    for sub in ("bin", "sbin", "dev", "proc", "sys", "run"):
        (tree / sub).mkdir(parents=True)
    shutil.copy(busybox, tree / "bin" / "busybox")
    (tree / "sbin" / "init").write_text(GUEST_INIT)
    os.chmod(tree / "sbin" / "init", 0o755)
    img = str(d / "rootfs.ext4")
    r = run(["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", str(tree), img,
             "32M"])
    assert r.returncode == 0, r.stderr
    return img


def boot(kernel_dir, initrd, rootfs, append, tmp_path, timeout=240):
    serial = str(tmp_path / "serial.log")
    t0 = time.monotonic()
    r = run(qemu_cmd(os.path.join(kernel_dir, "vmlinux"), initrd, rootfs,
                     append, serial), timeout=timeout)
    elapsed = time.monotonic() - t0
    with open(serial, errors="replace") as f:
        log = f.read()
    return r, log, elapsed


def test_boots_applies_ip_and_switches_root(kernel_dir, initrd, guest_rootfs,
                                            tmp_path):
    append = ("console=ttyS0 reboot=k panic=1 root=/dev/vda rw "
              "ip=172.30.0.2::172.30.0.1:255.255.255.0:web:eth0:off:"
              "172.30.0.1 banger.hostname=web")
    r, log, elapsed = boot(kernel_dir, initrd, guest_rootfs, append,
                           tmp_path)
    assert r.returncode == 0, r.stderr + log[-3000:]
    assert "GUEST: done" in log, log[-3000:]
    lines = dict(line.split("=", 1) for line in log.splitlines()
                 if line.startswith("GUEST: ") and "=" in line)
    assert lines["GUEST: addr"] == "172.30.0.2/24"
    assert lines["GUEST: route"].startswith("default via 172.30.0.1 dev eth0")
    assert lines["GUEST: hostname"] == "web"
    assert lines["GUEST: resolv"] == "nameserver 172.30.0.1"
    mods = set(lines["GUEST: modules"].split())
    assert {"virtio_blk", "virtio_net", "vsock",
            "vmw_vsock_virtio_transport"} <= mods
    # The power key reaches the agent: the ACPI button and evdev, where the
    # kernel builds them as modules (the cloud kernel does).
    cfg = open(os.path.join(kernel_dir, "config")).read()
    for mod, sym in (("button", "ACPI_BUTTON"), ("evdev", "INPUT_EVDEV")):
        if "CONFIG_%s=m" % sym in cfg:
            assert mod in mods, (mod, sorted(mods))
    assert lines["GUEST: root"].startswith("/dev/vda / ext4 rw")
    for step in ("loaded ",
                 "network: eth0 172.30.0.2/24 via 172.30.0.1",
                 "mounted /dev/vda on /newroot (rw)",
                 "switching root to /dev/vda"):
        assert "banger-initrd: " + step in log, step
    print("\nboot to guest init and back: %.1f s (TCG)" % elapsed)


def test_missing_root_device_reboots_instead_of_hanging(
        kernel_dir, initrd, guest_rootfs, tmp_path):
    append = ("console=ttyS0 reboot=k panic=1 root=/dev/vdz rw "
              "banger.rootwait=1")
    r, log, _ = boot(kernel_dir, initrd, guest_rootfs, append, tmp_path)
    assert r.returncode == 0, r.stderr + log[-3000:]
    assert ("banger-initrd: error: root device /dev/vdz did not appear "
            "within 1s") in log
    assert "banger-initrd: rebooting" in log
    assert "GUEST: " not in log


# ---- booting it with shared folders -------------------------------------

SHARES_INIT = """#!/bin/busybox sh
B=/bin/busybox
/usr/local/lib/banger/mount-shares
echo "GUEST: rc=$?"
echo "GUEST: state=$($B tr '\\n' ';' </run/banger/shares-state)"
echo "GUEST: modules=$($B cut -d' ' -f1 /proc/modules | $B sort | $B tr '\\n' ' ')"
echo "GUEST: mounts=$($B grep virtiofs /proc/mounts | $B cut -d' ' -f1-4 | $B tr '\\n' ';')"
echo "GUEST: ro-read=$($B cat /mnt/src/hello.txt)"
if echo x 2>/dev/null >/mnt/src/new; then r=allowed; else r=refused; fi
echo "GUEST: ro-write=$r"
echo from-guest >/root/proj/note.txt && echo "GUEST: rw-write=ok"
$B sync
echo "GUEST: done"
$B reboot -f
"""

MOUNT_SHARES = os.path.join(ROOT, "rootfs", "files", "mount-shares")


def virtiofsd_path():
    for p in ("/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"):
        if os.access(p, os.X_OK):
            return p
    return shutil.which("virtiofsd")


@pytest.fixture(scope="session")
def shares_rootfs(busybox, tmp_path_factory):
    if os.environ.get("BANGER_SKIP_BOOT") == "1":
        pytest.skip("BANGER_SKIP_BOOT=1")
    for tool in ("qemu-system-x86_64", "mkfs.ext4"):
        if not shutil.which(tool):
            pytest.skip(tool + " is not installed")
    if virtiofsd_path() is None:
        pytest.skip("virtiofsd is not installed")
    if os.geteuid() != 0:
        pytest.skip("virtiofsd needs root")
    d = tmp_path_factory.mktemp("shares-guest")
    tree = d / "tree"
    for sub in ("bin", "sbin", "dev", "proc", "sys", "run", "root",
                "usr/local/lib/banger"):
        (tree / sub).mkdir(parents=True)
    shutil.copy(busybox, tree / "bin" / "busybox")
    for applet in ("sh", "mkdir", "mount", "sed"):
        os.symlink("busybox", tree / "bin" / applet)
    shutil.copy(MOUNT_SHARES, tree / "usr/local/lib/banger/mount-shares")
    (tree / "sbin" / "init").write_text(SHARES_INIT)
    os.chmod(tree / "sbin" / "init", 0o755)
    img = str(d / "rootfs.ext4")
    r = run(["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", str(tree), img,
             "32M"])
    assert r.returncode == 0, r.stderr
    return img


def test_boots_and_mounts_shared_folders(kernel_dir, initrd, shares_rootfs,
                                         tmp_path):
    """The whole guest side on a real kernel: the initrd loads fuse and
    virtiofs for the banger.mount= words, mount-shares (busybox sh and
    mount) mounts one share read-only and one read-write under /root, and
    the state file says so."""
    src, proj = tmp_path / "src", tmp_path / "proj"
    src.mkdir()
    proj.mkdir()
    (src / "hello.txt").write_text("hello from the host\n")
    daemons = []
    chardevs = []
    try:
        for i, d in enumerate((src, proj)):
            sock = str(tmp_path / ("vfs%d.sock" % i))
            daemons.append(subprocess.Popen(
                [virtiofsd_path(), "--socket-path=" + sock, "-o",
                 "source=" + str(d), "-o", "cache=none", "-o",
                 "sandbox=chroot"], stdout=subprocess.DEVNULL,
                stderr=open(str(tmp_path / ("vfs%d.log" % i)), "w")))
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            assert os.path.exists(sock), open(
                str(tmp_path / ("vfs%d.log" % i))).read()
            chardevs.append(sock)
        append = ("console=ttyS0 reboot=k panic=1 root=/dev/vda rw "
                  "banger.mount=banger0:/mnt/src:ro "
                  "banger.mount=banger1:/root/proj")
        serial = str(tmp_path / "serial.log")
        cmd = qemu_cmd(os.path.join(kernel_dir, "vmlinux"), initrd,
                       shares_rootfs, append, serial)
        m = cmd.index("-M") + 1
        microvm = cmd[m] == "microvm"
        cmd[m] += ",memory-backend=mem"
        cmd += ["-object", "memory-backend-memfd,id=mem,size=512M,share=on"]
        if microvm:
            # microvm's virtio-mmio is legacy (virtio 0.9) by default, and
            # virtiofsd (libvhost-user) refuses legacy devices: it exits
            # at the first request and the guest's read hangs.
            cmd += ["-global", "virtio-mmio.force-legacy=false"]
        for i, sock in enumerate(chardevs):
            cmd += ["-chardev", "socket,id=vfs%d,path=%s" % (i, sock),
                    "-device", "%s,chardev=vfs%d,tag=banger%d" % (
                        "vhost-user-fs-device" if microvm else
                        "vhost-user-fs-pci", i, i)]
        r = run(cmd, timeout=240)
        with open(serial, errors="replace") as f:
            log = f.read()
    finally:
        for p in daemons:
            p.kill()
            p.wait()
    assert r.returncode == 0, r.stderr + log[-3000:]
    assert "GUEST: done" in log, log[-3000:]
    lines = dict(line.split("=", 1) for line in log.splitlines()
                 if line.startswith("GUEST: ") and "=" in line)
    assert "banger-initrd: loaded " in log and "(2 shared folders)" in log
    assert {"fuse", "virtiofs"} <= set(lines["GUEST: modules"].split())
    assert lines["GUEST: rc"] == "0", log[-3000:]
    assert lines["GUEST: state"] == "ok banger0 /mnt/src;ok banger1 /root/proj;"
    mounts = lines["GUEST: mounts"].split(";")
    assert mounts[0].startswith("banger0 /mnt/src virtiofs ro"), mounts
    assert mounts[1].startswith("banger1 /root/proj virtiofs rw"), mounts
    assert lines["GUEST: ro-read"] == "hello from the host"
    assert lines["GUEST: ro-write"] == "refused"
    assert lines["GUEST: rw-write"] == "ok"
    assert (proj / "note.txt").read_text() == "from-guest\n"
    assert not (src / "new").exists()
