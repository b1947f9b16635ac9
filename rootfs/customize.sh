#!/usr/bin/env bash
# customize.sh - add packages or files to an existing banger rootfs image.
#
# usage: customize.sh IMAGE [--install PKG...]... [--copy SRC:DST]...
#                     [--grow MIB]
#
#   --install PKG...  apt-get install these Debian packages (no recommends)
#                     inside the image; the host's resolver is lent for it
#   --copy SRC:DST    copy the host file or directory SRC to DST in the image
#                     (an absolute path; DST ending in / means "into that
#                     directory"); copies are owned by root
#   --grow MIB        first grow the image file and its filesystem to MIB
#
# A manual helper for Debian images built by make-rootfs.sh (run as root).
# It works on a sparse copy next to IMAGE (IMAGE.customize-XXXXXX), mounted
# with a loop device; the copy replaces IMAGE only when every step worked,
# so a failure leaves IMAGE as it was.  Do not run it on an image a VM is
# using.  Afterwards the image still holds no SSH host keys (any that a
# package made are removed), and /etc/banger/image-info records what was
# added.  Example:
#   sudo rootfs/customize.sh runtime/rootfs-docker.ext4 --grow 4096 \
#       --install build-essential --copy ./dotfiles/gitconfig:/etc/gitconfig
set -euo pipefail
umask 022

prog=customize.sh

die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

usage() {
	sed -n '2,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

usage_error() {
	printf '%s: %s\n' "$prog" "$*" >&2
	printf 'usage: customize.sh IMAGE [--install PKG...]... [--copy SRC:DST]... [--grow MIB]\n' >&2
	exit 2
}

image=''
grow=''
packages=()
copies=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--install)
		shift
		[[ $# -gt 0 && $1 != -* ]] || usage_error "--install needs at least one package"
		while [[ $# -gt 0 && $1 != -* ]]; do
			[[ $1 =~ ^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$ ]] ||
				usage_error "not a Debian package name: '$1'"
			packages+=("$1")
			shift
		done
		;;
	--copy)
		[[ $# -ge 2 ]] || usage_error "--copy needs SRC:DST"
		[[ $2 == ?*:/* ]] || usage_error "--copy needs SRC:DST with an absolute DST, not '$2'"
		copies+=("$2")
		shift 2
		;;
	--grow)
		[[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage_error "--grow needs a size in MiB"
		grow=$2
		shift 2
		;;
	-*)
		usage_error "unknown option: $1"
		;;
	*)
		[[ -z $image ]] || usage_error "only one IMAGE, got '$image' and '$1'"
		image=$1
		shift
		;;
	esac
done

[[ -n $image ]] || usage_error "IMAGE is required"
((${#packages[@]} + ${#copies[@]})) || [[ -n $grow ]] ||
	usage_error "nothing to do: give --install, --copy or --grow"
[[ -f $image ]] || die "no such image file: $image"
for c in "${copies[@]}"; do
	src=${c%%:/*}
	dst=/${c#*:/}
	[[ -e $src ]] || die "--copy: no such file or directory: $src"
	[[ /$dst/ != */../* ]] || die "--copy: DST must not contain '..': $dst"
done
[[ $(id -u) -eq 0 ]] || die "must run as root (loop mount, chroot)"
for cmd in mount umount chroot e2fsck resize2fs; do
	command -v "$cmd" >/dev/null || die "'$cmd' not found"
done

image=$(realpath -- "$image")
work=''
copy=''
mnt=''
mounted=()
done_ok=0

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM HUP
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -- "${mounted[i]}" 2>/dev/null || umount -l -- "${mounted[i]}" || true
	done
	if [[ -n $mnt ]]; then
		rmdir -- "$mnt" 2>/dev/null || true
	fi
	if ((!done_ok)); then
		[[ -n $copy ]] && rm -f -- "$copy"
		printf '%s: failed; %s is unchanged\n' "$prog" "$image" >&2
		((rc != 0)) || rc=1
	fi
	[[ -n $work ]] && rm -rf --one-file-system -- "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

work=$(mktemp -d)
copy=$(mktemp "$image.customize-XXXXXX")
cp --reflink=auto --sparse=always -- "$image" "$copy"

if [[ -n $grow ]]; then
	cur=$(($(stat -c %s -- "$copy") / 1048576))
	((grow >= cur)) || die "--grow $grow MiB is smaller than the image ($cur MiB)"
	truncate -s "${grow}M" -- "$copy"
	e2fsck -fp "$copy" >&2 || [[ $? -le 1 ]] || die "e2fsck failed on $image"
	resize2fs "$copy" >&2
fi

mnt=$(mktemp -d "$work/mnt.XXXXXX")
mount -o loop -t ext4 -- "$copy" "$mnt"
mounted+=("$mnt")

for c in "${copies[@]}"; do
	src=${c%%:/*}
	dst=/${c#*:/}
	if [[ $dst == */ ]]; then
		mkdir -p -- "$mnt$dst"
	else
		mkdir -p -- "$(dirname -- "$mnt$dst")"
	fi
	printf '%s: copy %s -> %s\n' "$prog" "$src" "$dst" >&2
	cp -R --preserve=mode,timestamps --no-preserve=ownership -- "$src" "$mnt$dst"
done

if ((${#packages[@]})); then
	for fs in proc sys dev dev/pts; do
		mkdir -p -- "$mnt/$fs"
	done
	mount -t proc proc "$mnt/proc" && mounted+=("$mnt/proc")
	mount -t sysfs sysfs "$mnt/sys" && mounted+=("$mnt/sys")
	mount --bind /dev "$mnt/dev" && mounted+=("$mnt/dev")
	mount --bind /dev/pts "$mnt/dev/pts" && mounted+=("$mnt/dev/pts")
	# Lend the host's resolver; keep whatever the image had.
	had_resolv=0
	if [[ -e $mnt/etc/resolv.conf || -L $mnt/etc/resolv.conf ]]; then
		mv -- "$mnt/etc/resolv.conf" "$work/resolv.conf.image"
		had_resolv=1
	fi
	cp -L -- /etc/resolv.conf "$mnt/etc/resolv.conf"
	# No daemons start inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$mnt/usr/sbin/policy-rc.d"
	chmod 0755 -- "$mnt/usr/sbin/policy-rc.d"
	in_image() {
		chroot "$mnt" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			DEBIAN_FRONTEND=noninteractive HOME=/root LC_ALL=C "$@"
	}
	status=0
	in_image apt-get update -q >&2 &&
		in_image apt-get install -y -q --no-install-recommends -- "${packages[@]}" >&2 || status=$?
	in_image apt-get clean >&2 || true
	rm -rf -- "$mnt"/var/lib/apt/lists/* "$mnt"/var/cache/apt/*.bin
	rm -f -- "$mnt/usr/sbin/policy-rc.d" "$mnt/etc/resolv.conf"
	if ((had_resolv)); then
		mv -- "$work/resolv.conf.image" "$mnt/etc/resolv.conf"
	fi
	((status == 0)) || die "apt-get install ${packages[*]} failed (exit $status)"
fi

# Keep the image's invariants: per-VM host keys, a per-VM machine id.
rm -f -- "$mnt"/etc/ssh/ssh_host_*_key "$mnt"/etc/ssh/ssh_host_*_key.pub
if [[ -s $mnt/etc/machine-id ]]; then
	: >"$mnt/etc/machine-id"
fi
if [[ -d $mnt/etc/banger ]]; then
	{
		printf 'customized_at=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		((${#packages[@]})) && printf 'customized_packages=%s\n' "${packages[*]}"
		((${#copies[@]})) && printf 'customized_copies=%s\n' "${copies[*]}"
		[[ -n $grow ]] && printf 'customized_size_mib=%s\n' "$grow"
		true
	} >>"$mnt/etc/banger/image-info"
fi

for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
	umount -- "${mounted[i]}"
	unset 'mounted[i]'
done
e2fsck -fn "$copy" >&2 || die "e2fsck found problems after customizing"
mv -f -- "$copy" "$image"
done_ok=1
printf '%s: updated %s\n' "$prog" "$image" >&2
