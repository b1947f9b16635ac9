#!/usr/bin/env bash
# qemu-boot.sh - boot a real guest through the QEMU driver (TCG).
#
# Gets what it needs from Debian, installing only QEMU and the tools the
# guest is built with:
#   - qemu-system-x86, cpio, kmod (apt-get install, as root, when missing);
#   - vhost-device-vsock: $BANGER_VHOST_VSOCK, else build/tools/, else
#     rootfs/fetch-vhost-device-vsock.sh --out build/tools;
#   - the cloud kernel and a static busybox: the installed ones, else
#     `apt-get download` + `dpkg -x` into build/e2e/pkgs;
# builds the test guest (tests/e2e/make-test-initrd.sh) and runs
# build/tests/test_qemu with BANGER_E2E_DIR set, whose test_real_boot drives
# vmm_qemu: spawn, configure, start, agent health over vsock, the disks,
# the network and a stop through the ACPI power button.
#
# As root the test runs in a private network namespace with a TAP
# (bge2e0, 172.30.0.1/24; the guest is 172.30.0.2) and the guest's HTTP
# answer over it is checked; otherwise the network part is left out.
# Skips (exit 0, saying why) only where QEMU cannot be had at all.
#
# --guest-only: build the guest (and get QEMU and vhost-device-vsock) into
# $BUILD/e2e/guest and $BUILD/tools, then stop; make stress-boot uses it.
set -euo pipefail

guest_only=0
[ "${1:-}" = --guest-only ] && guest_only=1

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD:-$top/build}
work=$build/e2e
prog=${0##*/}

say() { echo "# $prog: $*"; }
die() {
	echo "$prog: $*" >&2
	exit 1
}
skip() {
	echo "1..0 # SKIP $*"
	exit 0
}

root=0
[ "$(id -u)" -eq 0 ] && root=1
mkdir -p "$work"

# Tools the test guest is built with.
need=()
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || [ -x /sbin/depmod ] || need+=(kmod)
if [ ${#need[@]} -gt 0 ]; then
	[ "$root" -eq 1 ] || die "missing: ${need[*]} (apt-get install ${need[*]})"
	say "installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    "${need[@]}" >/dev/null || die "cannot install ${need[*]}"
fi

# QEMU.
qemu=${BANGER_QEMU:-}
if [ -z "$qemu" ]; then
	if ! qemu=$(command -v qemu-system-x86_64); then
		[ "$root" -eq 1 ] || skip "qemu-system-x86_64 is missing and we are not root to install it"
		say "installing qemu-system-x86"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		    qemu-system-x86 >/dev/null ||
		    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
		    -y -qq --no-install-recommends qemu-system-x86 >/dev/null; } ||
		    skip "cannot install qemu-system-x86"
		qemu=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 still missing"
	fi
fi
grep -q '^microvm' <<<"$("$qemu" -machine help 2>/dev/null)" ||
    skip "$qemu has no microvm machine"

# vhost-device-vsock.
helper=${BANGER_VHOST_VSOCK:-}
if [ -z "$helper" ]; then
	helper=$build/tools/vhost-device-vsock
	bash "$top/rootfs/fetch-vhost-device-vsock.sh" --out "$build/tools" >&2 ||
	    die "cannot get vhost-device-vsock"
fi
[ -x "$helper" ] || die "$helper is not executable"

# Parts of Debian packages, unpacked (never installed) under $pkgroot.
# Only the files needed are kept: the Makefile reads every *.d under
# build/ as a dependency file, and packages are full of *.d directories.
pkgroot=$work/pkgs/root
unpack() {
	local pkg=$1 deb tmp
	shift
	mkdir -p "$work/pkgs" "$pkgroot"
	deb=$(find "$work/pkgs" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
	if [ -z "$deb" ]; then
		say "downloading $pkg"
		(cd "$work/pkgs" && apt-get download -qq "$pkg" 2>/dev/null) ||
		    { [ "$root" -eq 1 ] && apt-get update -qq &&
		    (cd "$work/pkgs" && apt-get download -qq "$pkg"); } ||
		    die "apt-get download $pkg failed"
		deb=$(find "$work/pkgs" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
	fi
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/e2e-pkg.XXXXXX")
	dpkg -x "$deb" "$tmp"
	(cd "$tmp" && cp -a --parents "$@" "$pkgroot"/) || { rm -rf "$tmp"; die "$pkg lacks $*"; }
	rm -rf "$tmp"
}

# The kernel: the installed cloud kernel, else the package's.
initrd_args=()
if ! compgen -G '/boot/vmlinuz-*-cloud-amd64' >/dev/null; then
	kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	    awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$kpkg" ] || { [ "$root" -eq 1 ] && apt-get update -qq; kpkg=$(apt-cache depends \
	    linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'); }
	[ -n "$kpkg" ] || die "cannot find the cloud kernel package"
	kver=${kpkg#linux-image-}
	[ -r "$pkgroot/boot/vmlinuz-$kver" ] ||
	    unpack "$kpkg" "boot/vmlinuz-$kver" "lib/modules/$kver"
	initrd_args+=(--root "$pkgroot" --kernel-version "$kver")
fi
# A static busybox.
bb=$(command -v busybox || true)
if [ -z "$bb" ] || ! file -L "$bb" | grep -q 'statically linked'; then
	[ -x "$pkgroot/bin/busybox" ] || unpack busybox-static bin/busybox
	bb=$pkgroot/bin/busybox
fi
initrd_args+=(--busybox "$bb")

agent=$top/runtime/banger-vsock-agent
[ -x "$agent" ] || make -C "$top" -s runtime/banger-vsock-agent
make -C "$top" -s "$build/tests/test_qemu" BUILD="$build" >/dev/null

bash "$here/make-test-initrd.sh" --out "$work/guest" --agent "$agent" \
    "${initrd_args[@]}" | sed 's/^/# /'

if [ "$guest_only" = 1 ]; then
	say "guest in $work/guest, vhost-device-vsock $helper, qemu $qemu"
	exit 0
fi

export BANGER_E2E_DIR=$work/guest BANGER_VHOST_VSOCK=$helper BANGER_QEMU=$qemu
if [ "$root" -eq 1 ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
	say "running in a private network namespace with TAP bge2e0"
	# shellcheck disable=SC2016 # expanded by the inner shell
	exec unshare -n bash -c '
		set -e
		ip link set lo up
		ip tuntap add dev bge2e0 mode tap
		ip addr add 172.30.0.1/24 dev bge2e0
		ip link set bge2e0 up
		BANGER_E2E_TAP=bge2e0 BANGER_E2E_GUEST_IP=172.30.0.2 \
		    BANGER_E2E_GATEWAY=172.30.0.1 exec "$1"' _ "$build/tests/test_qemu"
fi
say "not root: booting without a network"
exec "$build/tests/test_qemu"
