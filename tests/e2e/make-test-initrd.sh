#!/usr/bin/env bash
# make-test-initrd.sh --out DIR [--root DIR] [--kernel-version VER]
#                     [--busybox PATH] [--agent PATH]
#
# A minimal guest for the QEMU driver's end-to-end test, from Debian
# packages only: the cloud kernel (linux-image-cloud-amd64), a static
# busybox (busybox-static) and banger's static guest agent.  --root names
# where the kernel package is unpacked (dpkg -x; default /, the installed
# one): ROOT/boot/vmlinuz-VER and ROOT/lib/modules/VER.
#
#   DIR/vmlinuz     the kernel (bzImage; QEMU microvm boots it via PVH)
#   DIR/initrd.img  busybox, the virtio/vsock/button modules, the agent and
#                   an /init that: loads the modules, prints markers on
#                   ttyS0, applies ip= from the cmdline, mounts /dev/vda and
#                   prints its /e2e-token, mounts /dev/vdb at /work, runs the
#                   agent on vsock and an HTTP server on eth0 port 8080, and
#                   powers off on the ACPI power button (QMP system_powerdown).
#   DIR/rootfs.ext4 a small ext4 holding /e2e-token (the guest prints it)
#   DIR/work.ext4   a small ext4 labelled banger-work
#
# Markers on the console: "banger-e2e: modules", "banger-e2e: token <t>",
# "banger-e2e: ready", "banger-e2e: power button", "banger-e2e: agent
# poweroff|reboot".
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "$0")" && pwd)
out=""
kver=""
sysroot=""
busybox=""
agent="$here/../../runtime/banger-vsock-agent"

die() {
	echo "$prog: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=${2:?}; shift 2 ;;
	--kernel-version) kver=${2:?}; shift 2 ;;
	--root) sysroot=${2:?}; shift 2 ;;
	--busybox) busybox=${2:?}; shift 2 ;;
	--agent) agent=${2:?}; shift 2 ;;
	-h | --help) sed -n '2,24p' "$0"; exit 0 ;;
	*) die "unknown argument: $1" ;;
	esac
done
[ -n "$out" ] || die "--out DIR is required"
for tool in cpio gzip mkfs.ext4 file; do
	command -v "$tool" >/dev/null 2>&1 || [ -x "/sbin/$tool" ] ||
	    die "$tool is missing (apt-get install cpio gzip e2fsprogs file)"
done

if [ -z "$kver" ]; then
	# The newest installed cloud kernel that has its modules.
	for k in "$sysroot"/boot/vmlinuz-*-cloud-amd64; do
		[ -e "$k" ] || continue
		v=${k#"$sysroot"/boot/vmlinuz-}
		[ -d "$sysroot/lib/modules/$v" ] && kver=$v
	done
fi
[ -n "$kver" ] || die "no cloud kernel in ${sysroot:-}/boot (linux-image-cloud-amd64)"
kernel=$sysroot/boot/vmlinuz-$kver
moddir=$sysroot/lib/modules/$kver
[ -r "$kernel" ] || die "$kernel is not readable"
[ -d "$moddir" ] || die "$moddir is missing"
[ -n "$busybox" ] || busybox=$(command -v busybox) ||
    die "busybox is missing (busybox-static)"
file -L "$busybox" | grep -q 'statically linked' ||
    die "$busybox is not static (apt-get install busybox-static)"
[ -x "$agent" ] || die "$agent is missing (make build)"
file -L "$agent" | grep -q 'statically linked' || die "$agent is not static"

mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/e2e-initrd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,run,mnt,www,lib/modules}
install -m 0755 "$busybox" "$root/bin/busybox"
install -m 0755 "$agent" "$root/bin/banger-vsock-agent"

# An unpacked (not installed) kernel package has no modules.dep yet.
if [ ! -s "$moddir/modules.dep" ]; then
	depmod=$(command -v depmod || echo /sbin/depmod)
	[ -x "$depmod" ] || die "depmod is missing (apt-get install kmod)"
	[ -n "$sysroot" ] || die "$moddir/modules.dep is missing"
	"$depmod" -b "$sysroot" "$kver"
fi

# Modules in dependency order (modules.dep lists each one's dependencies).
want=(virtio_mmio virtio_blk virtio_net vmw_vsock_virtio_transport button evdev)
order=()
add_mod() {
	local name=$1 line path dep
	line=$(grep -E "/$name\.ko(\.xz|\.zst)?:" "$moddir/modules.dep" || true)
	if [ -z "$line" ]; then
		grep -qE "/$name\.ko\$" "$moddir/modules.builtin" ||
		    die "module $name is neither in modules.dep nor built in"
		return 0
	fi
	path=${line%%:*}
	for dep in ${line#*:}; do
		dep=${dep##*/}
		add_mod "${dep%%.ko*}"
	done
	local m
	for m in "${order[@]}"; do
		[ "$m" = "$path" ] && return 0
	done
	order+=("$path")
}
for m in "${want[@]}"; do
	add_mod "$m"
done
: >"$root/lib/modules/order"
for path in "${order[@]}"; do
	name=${path##*/}
	case "$name" in
	*.ko.xz) xz -dc "$moddir/$path" >"$root/lib/modules/${name%.xz}" ;;
	*.ko.zst) zstd -qdc "$moddir/$path" >"$root/lib/modules/${name%.zst}" ;;
	*) cp "$moddir/$path" "$root/lib/modules/$name" ;;
	esac
	name=${name%.xz}
	echo "${name%.zst}" >>"$root/lib/modules/order"
done

token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "banger-e2e-http-$token" >"$root/www/index.html"

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
exec >/dev/ttyS0 2>&1 </dev/null
while read -r m; do
	insmod "/lib/modules/$m" || echo "banger-e2e: insmod $m failed"
done </lib/modules/order
echo "banger-e2e: modules"

for a in $(cat /proc/cmdline); do
	case "$a" in
	ip=*) ipcfg=${a#ip=} ;;
	banger.agent_port=*) port=${a#banger.agent_port=} ;;
	banger.hostname=*) host=${a#banger.hostname=} ;;
	esac
done
ip link set lo up
if [ -n "${ipcfg:-}" ]; then
	IFS=: read -r cip _ gw mask _ dev _ <<IP
$ipcfg
IP
	eval "$(ipcalc -p "$cip" "$mask")"
	# The NIC appears asynchronously after virtio_net loads.
	n=0
	while [ ! -e "/sys/class/net/$dev" ] && [ $n -lt 50 ]; do
		sleep 0.1; n=$((n + 1))
	done
	ip link set "$dev" up
	ip addr add "$cip/$PREFIX" dev "$dev"
	[ -n "$gw" ] && ip route add default via "$gw"
	echo "banger-e2e: net $cip/$PREFIX on $dev"
	httpd -p 8080 -h /www
fi

n=0
while [ ! -b /dev/vda ] && [ $n -lt 50 ]; do
	sleep 0.1; n=$((n + 1))
done
if mount -t ext4 /dev/vda /mnt; then
	echo "banger-e2e: token $(cat /mnt/e2e-token)"
	umount /mnt
else
	echo "banger-e2e: cannot mount /dev/vda"
fi
[ -b /dev/vdb ] && echo "banger-e2e: vdb present"
mkdir -p /work
mount -t ext4 /dev/vdb /work && echo "banger-e2e: vdb mounted"
[ -n "${host:-}" ] && hostname "$host"

mkdir -p /run/banger
echo ok >/run/banger/layout-state
# No sshd here: ready means /work mounted and the network up.  The
# agent's POST /poweroff (bangerd's first step of a stop) runs
# /bin/e2e-poweroff, since this /init cannot take busybox's poweroff signal;
# the power key is left to power_watch below, which the driver test checks.
# An agent that dies says so (and how) on the console.
(
	banger-vsock-agent --listen "vsock:${port:-1024}" --layout-state /run/banger/layout-state \
	    --workdisk /work --workdev /dev/vdb --ready workdisk,network \
	    --poweroff-cmd /bin/e2e-poweroff --no-power-key
	echo "banger-e2e: agent exited with status $?"
) &

# The ACPI power button (QMP system_powerdown) is the only input device.
power_watch() {
	while :; do
		for ev in /dev/input/event*; do
			[ -e "$ev" ] || continue
			if grep -qs 'Power Button' "/sys/class/input/${ev##*/}/device/name"; then
				head -c 1 "$ev" >/dev/null
				echo "banger-e2e: power button"
				sync
				umount /work
				poweroff -f
			fi
		done
		sleep 0.2
	done
}
power_watch &
echo "banger-e2e: ready"
while :; do
	sleep 3600
done
EOF
chmod 0755 "$root/init"

cat >"$root/bin/e2e-poweroff" <<'EOF'
#!/bin/sh
# The guest agent's --poweroff-cmd: $1 is poweroff or reboot.  QEMU runs
# with -no-reboot, so either ends it.
echo "banger-e2e: agent $1"
sync
umount /work
if [ "$1" = reboot ]; then reboot -f; else poweroff -f; fi
EOF
chmod 0755 "$root/bin/e2e-poweroff"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out/initrd.img.tmp"
mv -f "$out/initrd.img.tmp" "$out/initrd.img"
cp "$kernel" "$out/vmlinuz"

# Disks: a rootfs that carries the token, and a work disk.
mkdir -p "$tmp/rootfs"
echo "$token" >"$tmp/rootfs/e2e-token"
rm -f "$out/rootfs.ext4" "$out/work.ext4"
truncate -s 64M "$out/rootfs.ext4" "$out/work.ext4"
mkfs.ext4 -q -F -L rootfs -d "$tmp/rootfs" "$out/rootfs.ext4"
mkfs.ext4 -q -F -L banger-work "$out/work.ext4"
echo "$token" >"$out/token"
echo "$prog: $out: vmlinuz ($kver), initrd.img ($(du -k "$out/initrd.img" | cut -f1) KiB, ${#order[@]} modules), rootfs.ext4, work.ext4; token $token"
