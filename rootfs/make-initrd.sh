#!/usr/bin/env bash
# make-initrd.sh --kernel-dir DIR --out FILE [--busybox PATH] [--cache DIR]
#                [--module NAME]...
#
# Build banger's small initrd (cpio newc, gzip) for the kernel that
# make-kernel.sh laid out in DIR (DIR/kernel.release, DIR/config,
# DIR/kernel-modules/ with modules.dep).
#
# Contents:
#   /init                    busybox sh script (below)
#   /lib/banger/initlib.sh   its functions: command-line and ip= parsing,
#                            module loading, network, root mount; tests
#                            source it with BANGER_CMDLINE=<fake file>
#   /lib/banger/modules      the .ko files to insmod, in dependency order
#   /lib/banger/modules.shares  the same for shared folders (virtio-fs):
#                            loaded only when the command line has a
#                            banger.mount= word, after the main list
#   /lib/banger/info         kernel release, busybox version, module lists
#   /bin/busybox             from Debian's busybox-static (apt-get download,
#                            cached), plus symlinks for the applets /init uses
#   /lib/modules/<release>/… the virtio, vsock and ext4 modules the kernel
#                            does not build in, with their dependencies from
#                            modules.dep
#   /dev/console, and empty /dev /proc /sys /run /newroot
#
# Which modules: virtio_mmio, virtio_blk, virtio_net, vsock,
# vmw_vsock_virtio_transport and ext4 are required; virtio_pci and virtio_rng
# are taken when the kernel has them.  For each, the kernel config decides:
# =y is built in (nothing to add), =m adds the module and its dependencies,
# unset fails for a required one.  On bookworm's cloud kernel all the virtio
# and vsock drivers are modules and ext4 is built in.  fuse and virtiofs
# (shared folders) are optional and go to modules.shares, with those of
# their dependencies the main list does not already load (virtiofs needs
# virtio and virtio_ring, which it does): a VM without shares loads
# nothing more.  The rootfs images carry no modules of their own.
#
# What /init does, with a `banger-initrd: ...` line per step on the console:
# mount proc, sys, devtmpfs and a tmpfs /run; insmod the modules in order
# (and modules.shares when a banger.mount= word asks for a shared folder);
# apply `ip=<client>:<server>:<gw>:<mask>:<host>:<dev>:<autoconf>[:<dns0>[:<dns1>]]`
# (the kernel has no IP_PNP) with busybox ip: lo and the device up, the
# address, the default route, the hostname; /run/banger/net.env and
# /run/banger/resolv.conf (when dns0 is given) record it for the rootfs; wait
# for root= (default /dev/vda; LABEL= and UUID= through findfs) for
# banger.rootwait= seconds (default 10), mount it ro or rw as the command line
# says (rootfstype=, rootflags= honoured), move /dev /proc /sys /run into it
# and `exec switch_root /newroot <init>` (init=, default /sbin/init).  If the
# root device never appears or cannot be mounted, it says why and reboots
# (reboot -f; panic=1 reboot=k make the VMM exit) instead of hanging;
# `banger.initrd.shell` on the command line gives a shell first.
#
# The archive is deterministic: entries sorted, owner 0:0, modes normalised,
# mtimes fixed (SOURCE_DATE_EPOCH, default 0), inode numbers in order, gzip -6 -n
# (-9 costs 0.6 s more for 0.4% less).
# The same inputs give the same bytes, so callers can cache it by input hash.
#
# Needs: bash, coreutils, findutils, gzip, binutils (readelf); apt and dpkg
# to fetch busybox-static unless --busybox is given.
set -euo pipefail
export LC_ALL=C

prog=${0##*/}
set -o errtrace
trap 'echo "$prog: error: command failed (line $LINENO, exit $?)" >&2' ERR
kdir=""
out=""
busybox=""
cache=""
extra_modules=()

die() {
	echo "$prog: error: $*" >&2
	exit 1
}

say() {
	echo "$prog: $*" >&2
}

usage() {
	echo "usage: $prog --kernel-dir DIR --out FILE [--busybox PATH] [--cache DIR] [--module NAME]..."
}

default_cache() {
	if [ "$(id -u)" -eq 0 ]; then
		echo /var/cache/banger/initrd
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/banger/initrd"
	fi
}

while [ $# -gt 0 ]; do
	case "$1" in
	--kernel-dir) kdir=${2:?--kernel-dir needs a directory}; shift 2 ;;
	--kernel-dir=*) kdir=${1#*=}; shift ;;
	--out) out=${2:?--out needs a file}; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--busybox) busybox=${2:?--busybox needs a file}; shift 2 ;;
	--busybox=*) busybox=${1#*=}; shift ;;
	--cache) cache=${2:?--cache needs a directory}; shift 2 ;;
	--cache=*) cache=${1#*=}; shift ;;
	--module) extra_modules+=("${2:?--module needs a name}"); shift 2 ;;
	--module=*) extra_modules+=("${1#*=}"); shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
[ -n "$kdir" ] || { usage >&2; die "--kernel-dir DIR is required"; }
[ -n "$out" ] || { usage >&2; die "--out FILE is required"; }
[ -n "$cache" ] || cache=$(default_cache)

for f in kernel.release config kernel-modules/modules.dep; do
	[ -f "$kdir/$f" ] || die "$kdir/$f missing (run make-kernel.sh --out $kdir first)"
done
for tool in gzip readelf find sort; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

t0=$(date +%s.%N)
release=$(cat "$kdir/kernel.release")
moddir="$kdir/kernel-modules"
mtime=${SOURCE_DATE_EPOCH:-0}
[[ $mtime =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number of seconds"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/make-initrd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- busybox ----

# busybox-static's .deb in the cache, downloaded when missing (apt-get
# download checks it against the signed index; a cached file is trusted by
# name).  Without apt metadata, the newest cached one.
busybox_deb() {
	local stanza ver file log
	mkdir -p "$cache"
	if stanza=$(apt-cache show --no-all-versions busybox-static 2>/dev/null) &&
		ver=$(sed -n '/^Version: /{s///;p;q}' <<<"$stanza") && [ -n "$ver" ]; then
		file="$cache/busybox-static_${ver//:/%3a}_amd64.deb"
		if [ ! -s "$file" ]; then
			say "downloading busybox-static=$ver"
			if ! log=$(cd "$cache" && apt-get download -q "busybox-static=$ver" 2>&1); then
				echo "$log" >&2
				die "apt-get download busybox-static=$ver failed"
			fi
			[ -s "$file" ] || die "apt-get download did not write $file"
		fi
		echo "$file"
		return 0
	fi
	file=$(find "$cache" -maxdepth 1 -name 'busybox-static_*_amd64.deb' -printf '%f\n' |
		sort -V | tail -n 1)
	[ -n "$file" ] || die "apt knows no busybox-static and $cache has no cached" \
		".deb (run 'apt-get update', or pass --busybox PATH)"
	say "no apt candidate for busybox-static; using cached $file"
	echo "$cache/$file"
}

if [ -z "$busybox" ]; then
	deb=$(busybox_deb)
	dpkg -x "$deb" "$tmp/bb"
	busybox="$tmp/bb/bin/busybox"
	[ -f "$busybox" ] || die "$deb has no /bin/busybox"
fi
[ -f "$busybox" ] || die "$busybox: no such file"
# Output read whole: with pipefail, grep -q leaving early fails the pipe.
if grep -q 'Requesting program interpreter' <<<"$(readelf -l "$busybox" 2>/dev/null)"; then
	die "$busybox is dynamically linked; the initrd needs busybox-static"
fi

# Applets /init uses (and a few for banger.initrd.shell), linked in /bin.
applets=(ash cat dmesg echo findfs grep head hostname insmod ip ls lsmod
	mkdir mount mv poweroff reboot rm sed sh sleep switch_root sync tr umount
	uname usleep)
have=$("$busybox" --list) || die "$busybox does not run"
for a in "${applets[@]}"; do
	grep -qx "$a" <<<"$have" || die "$busybox lacks the $a applet"
done
# (Its usage text in full: a pipe to head could kill it with SIGPIPE.)
bb_version=$("$busybox" 2>&1 || true)
bb_version=${bb_version%%$'\n'*}
bb_version=${bb_version% multi-call binary.}

# ---- modules ----

declare -A dep_of=() path_of=() emitted=()
while IFS= read -r line; do
	[ -n "$line" ] || continue
	p=${line%%:*}
	n=${p##*/}
	n=${n%%.ko*}
	n=${n//-/_}
	path_of[$n]=$p
	dep_of[$p]=${line#*:}
done <"$moddir/modules.dep"

order=()
# Depth first: a module's dependencies are emitted before it, each module
# once across both lists (emitted[] is shared).
visit() {
	local p=$1 d
	[ -z "${emitted[$p]:-}" ] || return 0
	emitted[$p]=1
	for d in ${dep_of[$p]:-}; do
		visit "$d"
	done
	order+=("$p")
}

config_value() {
	sed -n "/^CONFIG_$1=/{s///;p;q}" "$kdir/config"
}

# want NAME CONFIG_SYMBOL required|optional ...: add the modules to order[]
# (and built-in ones to builtin[]).
want() {
	local w name sym need val p
	for w in "$@"; do
		read -r name sym need <<<"$w"
		if [ "$sym" = "-" ]; then
			val=m
		else
			val=$(config_value "$sym")
		fi
		case "$val" in
		y) builtin+=("$name") ;;
		m)
			p=${path_of[$name]:-}
			if [ -z "$p" ]; then
				[ "$need" = optional ] && continue
				die "module $name is not in $moddir/modules.dep"
			fi
			visit "$p"
			;;
		*)
			[ "$need" = optional ] && continue
			die "CONFIG_$sym is not set in $kdir/config: kernel $release has no $name"
			;;
		esac
	done
}

# NAME CONFIG_SYMBOL required|optional
wanted=(
	"virtio_mmio VIRTIO_MMIO required"
	"virtio_blk VIRTIO_BLK required"
	"virtio_net VIRTIO_NET required"
	"vsock VSOCKETS required"
	"vmw_vsock_virtio_transport VIRTIO_VSOCKETS required"
	"ext4 EXT4_FS required"
	"virtio_pci VIRTIO_PCI optional"
	"virtio_rng HW_RANDOM_VIRTIO optional"
	# A clean stop without the agent: QEMU's system_powerdown is an ACPI
	# power button that reaches the guest as KEY_POWER on an evdev device
	# (the agent acts on it); Firecracker's Ctrl-Alt-Del comes through an
	# emulated i8042 with an AT keyboard.
	"button ACPI_BUTTON optional"
	"evdev INPUT_EVDEV optional"
	"i8042 SERIO_I8042 optional"
	"atkbd KEYBOARD_ATKBD optional"
)
for m in "${extra_modules[@]}"; do
	wanted+=("${m//-/_} - required")
done

builtin=()
want "${wanted[@]}"
main_order=("${order[@]}")
# Shared folders (virtio-fs): their own list, after the main one.
order=()
want "fuse FUSE_FS optional" "virtiofs VIRTIO_FS optional"
shares_order=("${order[@]}")
order=("${main_order[@]}" "${shares_order[@]}")
say "kernel $release: built in: ${builtin[*]:-none}; modules: ${#main_order[@]}" \
	"(+${#shares_order[@]} for shared folders)"

# ---- the tree ----

root="$tmp/root"
mkdir -p "$root"/{bin,dev,etc,lib/banger,newroot,proc,run,sys} "$root/lib/modules/$release"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
for a in "${applets[@]}"; do
	ln -s busybox "$root/bin/$a"
done
for p in "${order[@]}"; do
	[ -f "$moddir/$p" ] || die "$moddir/$p missing"
	mkdir -p "$root/lib/modules/$release/${p%/*}"
	case "$p" in
	*.ko) cp "$moddir/$p" "$root/lib/modules/$release/$p" ;;
	*.ko.xz) xz -dc "$moddir/$p" >"$root/lib/modules/$release/${p%.xz}" ;;
	*.ko.zst) zstd -qdc "$moddir/$p" >"$root/lib/modules/$release/${p%.zst}" ;;
	*.ko.gz) gzip -dc "$moddir/$p" >"$root/lib/modules/$release/${p%.gz}" ;;
	*) die "$p: unknown module format" ;;
	esac
done
# list PATH...: the module paths as the initrd holds them (decompressed).
list() {
	local p
	for p in "$@"; do
		p=${p%.xz}
		p=${p%.zst}
		p=${p%.gz}
		echo "$p"
	done
}
list "${main_order[@]}" >"$root/lib/banger/modules"
list "${shares_order[@]}" >"$root/lib/banger/modules.shares"
# names FILE: the module names of a list, on one line.
names() {
	sed 's,.*/,,; s,\.ko$,,' "$1" | tr '\n' ' ' | sed 's/ $//'
}
{
	echo "kernel_release=$release"
	echo "busybox=$bb_version"
	echo "builtin=${builtin[*]:-}"
	echo "modules=$(names "$root/lib/banger/modules")"
	echo "shares_modules=$(names "$root/lib/banger/modules.shares")"
} >"$root/lib/banger/info"
echo "$release" >"$root/lib/banger/kernel.release"

cat >"$root/init" <<'EOF'
#!/bin/sh
# banger initrd: load the virtio/vsock modules, apply ip=, mount the root
# device and switch to it.  The steps are in /lib/banger/initlib.sh.
PATH=/bin
export PATH
. /lib/banger/initlib.sh
initrd_main "$@"
EOF
chmod 0755 "$root/init"

cat >"$root/lib/banger/initlib.sh" <<'EOF'
# banger initrd library (POSIX sh, busybox ash).  /init calls initrd_main;
# tests source this file and call cmdline_parse, parse_ip and load_modules
# on a fake command line (BANGER_CMDLINE), with BANGER_LIB naming an
# unpacked lib/banger and a stand-in insmod on PATH.

BANGER_CMDLINE=${BANGER_CMDLINE:-/proc/cmdline}
BANGER_LIB=${BANGER_LIB:-/lib/banger}

log() {
	echo "banger-initrd: $*"
}

# cmdline_parse [FILE]: read the kernel command line into CMD_* variables.
cmdline_parse() {
	CMD_ROOT=/dev/vda
	CMD_ROOTMODE=ro
	CMD_ROOTFSTYPE=
	CMD_ROOTFLAGS=
	CMD_ROOTWAIT=10
	CMD_IP=
	CMD_INIT=/sbin/init
	CMD_SHELL=0
	CMD_SHARES=0
	set -f
	# shellcheck disable=SC2013 # words, not lines
	for _w in $(cat "${1:-$BANGER_CMDLINE}"); do
		case $_w in
		root=*) CMD_ROOT=${_w#root=} ;;
		rootfstype=*) CMD_ROOTFSTYPE=${_w#rootfstype=} ;;
		rootflags=*) CMD_ROOTFLAGS=${_w#rootflags=} ;;
		ro | rw) CMD_ROOTMODE=$_w ;;
		ip=*) CMD_IP=${_w#ip=} ;;
		init=*) CMD_INIT=${_w#init=} ;;
		banger.rootwait=*) CMD_ROOTWAIT=${_w#banger.rootwait=} ;;
		banger.initrd.shell) CMD_SHELL=1 ;;
		banger.mount=*) CMD_SHARES=$((CMD_SHARES + 1)) ;;
		esac
	done
	set +f
	case $CMD_ROOTWAIT in
	'' | *[!0-9]*) CMD_ROOTWAIT=10 ;;
	esac
	[ -n "$CMD_ROOT" ] || CMD_ROOT=/dev/vda
	return 0
}

# is_ipv4 ADDR: a dotted quad.
is_ipv4() {
	case $1 in
	*[!0-9.]* | *..* | .* | *.) return 1 ;;
	esac
	_oifs=$IFS
	IFS=.
	# shellcheck disable=SC2086 # split on dots
	set -- $1
	IFS=$_oifs
	[ $# -eq 4 ] || return 1
	for _o in "$@"; do
		[ -n "$_o" ] && [ "${#_o}" -le 3 ] && [ "$_o" -le 255 ] || return 1
	done
	return 0
}

# mask_to_prefix MASK: 255.255.255.0 -> 24; a bare 0..32 is taken as is.
mask_to_prefix() {
	case $1 in
	'' | *[!0-9.]*) return 1 ;;
	*.*) ;;
	*)
		[ "${#1}" -le 2 ] && [ "$1" -le 32 ] || return 1
		echo "$1"
		return 0
		;;
	esac
	is_ipv4 "$1" || return 1
	_oifs=$IFS
	IFS=.
	# shellcheck disable=SC2086 # split on dots
	set -- $1
	IFS=$_oifs
	_bits=0
	_end=0
	for _o in "$@"; do
		case $_o in
		255) _b=8 ;; 254) _b=7 ;; 252) _b=6 ;; 248) _b=5 ;;
		240) _b=4 ;; 224) _b=3 ;; 192) _b=2 ;; 128) _b=1 ;; 0) _b=0 ;;
		*) return 1 ;;
		esac
		# After a partial octet only zeros may follow.
		[ "$_end" -eq 0 ] || [ "$_b" -eq 0 ] || return 1
		[ "$_b" -eq 8 ] || _end=1
		_bits=$((_bits + _b))
	done
	echo "$_bits"
}

# parse_ip VALUE: split ip=<client>:<server>:<gw>:<mask>:<host>:<dev>:
# <autoconf>:<dns0>:<dns1>:<ntp0> into IP_* variables.  Returns 0 for a
# static configuration to apply, 1 when there is nothing to do (empty, off,
# none), 2 when it cannot be applied (IP_ERROR says why).
parse_ip() {
	IP_ADDR='' IP_GW='' IP_MASK='' IP_PREFIX='' IP_HOST='' IP_DEV=''
	IP_AUTOCONF='' IP_DNS0='' IP_DNS1='' IP_ERROR=''
	case $1 in
	'' | off | none) return 1 ;;
	on | any | dhcp | bootp | rarp | both)
		IP_ERROR="ip=$1: automatic configuration is not supported"
		return 2
		;;
	esac
	# The server field is not used.
	IFS=: read -r IP_ADDR _ IP_GW IP_MASK IP_HOST IP_DEV IP_AUTOCONF \
		IP_DNS0 IP_DNS1 _rest <<IPEOF
$1
IPEOF
	case $IP_AUTOCONF in
	'' | off | none) ;;
	*)
		IP_ERROR="ip=: autoconf '$IP_AUTOCONF' is not supported (only off)"
		return 2
		;;
	esac
	if ! is_ipv4 "$IP_ADDR"; then
		IP_ERROR="ip=: bad client address '$IP_ADDR'"
		return 2
	fi
	if [ -n "$IP_GW" ] && ! is_ipv4 "$IP_GW"; then
		IP_ERROR="ip=: bad gateway '$IP_GW'"
		return 2
	fi
	if [ -n "$IP_MASK" ]; then
		if ! IP_PREFIX=$(mask_to_prefix "$IP_MASK"); then
			IP_ERROR="ip=: bad netmask '$IP_MASK'"
			return 2
		fi
	else
		# The kernel's rule: the address class decides.
		_first=${IP_ADDR%%.*}
		if [ "$_first" -lt 128 ]; then IP_PREFIX=8
		elif [ "$_first" -lt 192 ]; then IP_PREFIX=16
		else IP_PREFIX=24
		fi
	fi
	for _d in "$IP_DNS0" "$IP_DNS1"; do
		if [ -n "$_d" ] && ! is_ipv4 "$_d"; then
			IP_ERROR="ip=: bad DNS server '$_d'"
			return 2
		fi
	done
	[ -n "$IP_DEV" ] || IP_DEV=eth0
	return 0
}

fail() {
	log "error: $*"
	if [ "${CMD_SHELL:-0}" = 1 ]; then
		log "banger.initrd.shell: starting a shell; exit it to reboot"
		sh
	fi
	log "rebooting"
	sync
	sleep 1
	reboot -f
	poweroff -f
	exit 1
}

# load_list FILE: insmod each module FILE names; counts them in _n.
load_list() {
	while IFS= read -r _m; do
		[ -n "$_m" ] || continue
		if _err=$(insmod "/lib/modules/$_kver/$_m" 2>&1); then
			_n=$((_n + 1))
		else
			case $_err in
			*exists*) ;;
			*) log "warning: insmod ${_m##*/}: $_err" ;;
			esac
		fi
	done <"$1"
}

# load_modules: the modules every VM needs, then the shared-folder ones
# (fuse, virtiofs) only when cmdline_parse counted a banger.mount= word.
load_modules() {
	_kver=$(cat "$BANGER_LIB/kernel.release")
	if [ "$_kver" != "$(uname -r)" ]; then
		log "warning: modules are for $_kver, the kernel is $(uname -r)"
	fi
	_n=0
	load_list "$BANGER_LIB/modules"
	if [ "${CMD_SHARES:-0}" -gt 0 ] && [ -f "$BANGER_LIB/modules.shares" ]; then
		load_list "$BANGER_LIB/modules.shares"
		log "loaded $_n modules ($CMD_SHARES shared folders)"
	else
		log "loaded $_n modules"
	fi
}

# apply_ip: configure IP_DEV from the parse_ip variables.
apply_ip() {
	ip link set lo up
	_i=0
	while [ ! -e "/sys/class/net/$IP_DEV" ]; do
		_i=$((_i + 1))
		if [ "$_i" -gt 50 ]; then
			log "warning: no network device $IP_DEV; network left unconfigured"
			return 1
		fi
		usleep 100000
	done
	if ! ip link set dev "$IP_DEV" up ||
		! ip addr add "$IP_ADDR/$IP_PREFIX" dev "$IP_DEV"; then
		log "warning: could not configure $IP_DEV"
		return 1
	fi
	if [ -n "$IP_GW" ] && ! ip route add default via "$IP_GW" dev "$IP_DEV"; then
		log "warning: could not add the default route via $IP_GW"
	fi
	[ -z "$IP_HOST" ] || hostname "$IP_HOST"
	mkdir -p /run/banger
	{
		echo "BANGER_NET_DEV=$IP_DEV"
		echo "BANGER_NET_ADDR=$IP_ADDR/$IP_PREFIX"
		echo "BANGER_NET_GATEWAY=$IP_GW"
		echo "BANGER_NET_HOSTNAME=$IP_HOST"
		echo "BANGER_NET_DNS=$IP_DNS0${IP_DNS1:+ $IP_DNS1}"
	} >/run/banger/net.env
	if [ -n "$IP_DNS0" ]; then
		{
			echo "nameserver $IP_DNS0"
			[ -z "$IP_DNS1" ] || echo "nameserver $IP_DNS1"
		} >/run/banger/resolv.conf
	fi
	log "network: $IP_DEV $IP_ADDR/$IP_PREFIX${IP_GW:+ via $IP_GW}${IP_HOST:+ host $IP_HOST}${IP_DNS0:+ dns $IP_DNS0}"
}

# wait_root: set ROOT_DEV once CMD_ROOT exists, within CMD_ROOTWAIT seconds.
wait_root() {
	_i=0
	_max=$((CMD_ROOTWAIT * 10))
	while :; do
		case $CMD_ROOT in
		LABEL=* | UUID=*) ROOT_DEV=$(findfs "$CMD_ROOT" 2>/dev/null) || ROOT_DEV= ;;
		*) ROOT_DEV=$CMD_ROOT ;;
		esac
		if [ -n "$ROOT_DEV" ] && [ -b "$ROOT_DEV" ]; then
			return 0
		fi
		_i=$((_i + 1))
		[ "$_i" -le "$_max" ] || return 1
		usleep 100000
	done
}

initrd_main() {
	mount -t proc -o nosuid,nodev,noexec proc /proc
	mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
	mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
	mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
	exec </dev/console >/dev/console 2>&1
	log "start (kernel $(uname -r))"
	cmdline_parse "$BANGER_CMDLINE"

	load_modules

	parse_ip "$CMD_IP"
	case $? in
	0) apply_ip || true ;;
	1) log "network: no ip= configuration" ;;
	*) log "warning: $IP_ERROR; network left unconfigured" ;;
	esac

	log "waiting up to ${CMD_ROOTWAIT}s for root device $CMD_ROOT"
	wait_root || fail "root device $CMD_ROOT did not appear within ${CMD_ROOTWAIT}s"
	_opts=$CMD_ROOTMODE${CMD_ROOTFLAGS:+,$CMD_ROOTFLAGS}
	if [ -n "$CMD_ROOTFSTYPE" ]; then
		mount -t "$CMD_ROOTFSTYPE" -o "$_opts" "$ROOT_DEV" /newroot ||
			fail "cannot mount $ROOT_DEV ($CMD_ROOTFSTYPE, $_opts)"
	else
		mount -o "$_opts" "$ROOT_DEV" /newroot ||
			fail "cannot mount $ROOT_DEV ($_opts)"
	fi
	log "mounted $ROOT_DEV on /newroot ($_opts)"
	# /sbin/init is usually an absolute symlink into the new root.
	if [ ! -e "/newroot$CMD_INIT" ] && [ ! -L "/newroot$CMD_INIT" ]; then
		umount /newroot
		fail "$ROOT_DEV has no $CMD_INIT"
	fi
	for _m in dev proc sys run; do
		mkdir -p "/newroot/$_m" 2>/dev/null
		mount --move "/$_m" "/newroot/$_m" || umount -l "/$_m"
	done
	read -r _up _ </newroot/proc/uptime || _up='?'
	log "switching root to $ROOT_DEV, init $CMD_INIT (uptime ${_up}s)"
	exec switch_root /newroot "$CMD_INIT" "$@"
}
EOF

# ---- the archive ----

ino=0
# Bytes of zero padding up to the next multiple of 4.
pad() {
	case $(($1 % 4)) in
	1) printf '\0\0\0' ;;
	2) printf '\0\0' ;;
	3) printf '\0' ;;
	esac
}

# header NAME MODE SIZE [RDEVMAJOR RDEVMINOR]: one newc header and name.
header() {
	local name=$1 mode=$2 size=$3 nlink=1
	ino=$((ino + 1))
	[ $((mode & 0170000)) -ne $((0040000)) ] || nlink=2
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$ino" "$mode" 0 0 "$nlink" "$mtime" "$size" 0 0 "${4:-0}" "${5:-0}" \
		$((${#name} + 1)) 0
	printf '%s\0' "$name"
	pad $((110 + ${#name} + 1))
}

write_cpio() {
	local path type size target
	while IFS=$'\t' read -r path type size target; do
		case "$path:$type" in
		dev/console:*) header "$path" $((0020600)) 0 5 1 ;;
		*:l)
			header "$path" $((0120777)) "${#target}"
			printf '%s' "$target"
			pad "${#target}"
			;;
		*:d) header "$path" $((0040755)) 0 ;;
		*:f)
			if [ -x "$root/$path" ]; then
				header "$path" $((0100755)) "$size"
			else
				header "$path" $((0100644)) "$size"
			fi
			cat "$root/$path"
			pad "$size"
			;;
		*) die "$root/$path: unexpected file type $type" ;;
		esac
	done < <({
		(cd "$root" && find . -mindepth 1 -printf '%P\t%y\t%s\t%l\n')
		printf 'dev/console\tc\t0\t\n'
	} | sort)
	ino=0
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0 0 0 0 1 0 0 0 0 0 0 11 0
	printf 'TRAILER!!!\0'
	pad $((110 + 11))
}

mkdir -p "$(dirname "$out")"
write_cpio | gzip -6 -n >"$out.tmp.$$" || { rm -f "$out.tmp.$$"; die "writing $out failed"; }
mv "$out.tmp.$$" "$out"
t1=$(date +%s.%N)
say "wrote $out: $(stat -c %s "$out") bytes, ${#order[@]} modules, busybox" \
	"${bb_version#BusyBox }, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
