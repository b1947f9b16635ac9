#!/usr/bin/env bash
# interactive.sh - a root shell (or one command) inside a rootfs image.
#
# usage: interactive.sh IMAGE [--rw] [--work-seed SEED] [-- COMMAND [ARG...]]
#
#   --rw               mount the image read-write (default: read-only, and
#                      nothing in IMAGE changes)
#   --work-seed SEED   also mount this work disk (or seed) image at /root,
#                      read-only unless --rw, as the guest would see it
#   COMMAND            what to run instead of an interactive bash login
#
# A manual helper (run as root) for looking around an image or fixing it by
# hand.  It uses systemd-nspawn when the host has it; otherwise a loop mount,
# /proc, /sys and /dev mounts and chroot.  Everything it mounts is unmounted
# when the shell or command exits, also on errors and signals.  Nothing
# boots: no units run and the guest's network is the host's.  Do not use
# --rw on an image a VM is using.
#   sudo rootfs/interactive.sh runtime/rootfs-docker.ext4
#   sudo rootfs/interactive.sh runtime/rootfs-docker.ext4 -- cat /etc/banger/image-info
set -euo pipefail

prog=interactive.sh

die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

usage() {
	sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

usage_error() {
	printf '%s: %s\n' "$prog" "$*" >&2
	printf 'usage: interactive.sh IMAGE [--rw] [--work-seed SEED] [-- COMMAND [ARG...]]\n' >&2
	exit 2
}

image=''
seed=''
rw=0
cmd=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--rw)
		rw=1
		shift
		;;
	--work-seed)
		[[ $# -ge 2 && -n $2 ]] || usage_error "--work-seed needs an image file"
		seed=$2
		shift 2
		;;
	--)
		shift
		cmd=("$@")
		break
		;;
	-*)
		usage_error "unknown option: $1"
		;;
	*)
		[[ -z $image ]] || usage_error "only one IMAGE, got '$image' and '$1' (put a command after --)"
		image=$1
		shift
		;;
	esac
done

[[ -n $image ]] || usage_error "IMAGE is required"
[[ -f $image ]] || die "no such image file: $image"
[[ -z $seed || -f $seed ]] || die "no such work seed file: $seed"
[[ $(id -u) -eq 0 ]] || die "must run as root (loop mount, chroot)"
((${#cmd[@]})) || cmd=(/bin/bash -l)

image=$(realpath -- "$image")
[[ -z $seed ]] || seed=$(realpath -- "$seed")

mnt=''
mounted=()

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM HUP
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -- "${mounted[i]}" 2>/dev/null || umount -l -- "${mounted[i]}" || true
	done
	if [[ -n $mnt ]]; then
		rmdir -- "$mnt" 2>/dev/null || true
	fi
	exit "$rc"
}

# nspawn binds directories, not images: with a work seed, use the loop path.
if [[ -z $seed ]] && command -v systemd-nspawn >/dev/null; then
	args=(--quiet --register=no --image="$image")
	((rw)) || args+=(--read-only)
	exec systemd-nspawn "${args[@]}" -- "${cmd[@]}"
fi

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

opts=rw
((rw)) || opts=ro,noload
mnt=$(mktemp -d)
mount -o "loop,$opts" -t ext4 -- "$image" "$mnt"
mounted+=("$mnt")
if [[ -n $seed ]]; then
	mount -o "loop,$opts" -t ext4 -- "$seed" "$mnt/root"
	mounted+=("$mnt/root")
fi
mount -t proc proc "$mnt/proc" && mounted+=("$mnt/proc")
mount -t sysfs -o ro sysfs "$mnt/sys" && mounted+=("$mnt/sys")
mount --bind /dev "$mnt/dev" && mounted+=("$mnt/dev")
mount --bind /dev/pts "$mnt/dev/pts" && mounted+=("$mnt/dev/pts")
# A scratch /run and /tmp, so even a read-only image has somewhere to write.
mount -t tmpfs -o mode=0755 tmpfs "$mnt/run" && mounted+=("$mnt/run")
mount -t tmpfs -o mode=1777 tmpfs "$mnt/tmp" && mounted+=("$mnt/tmp")

# Its exit status becomes ours (the EXIT trap unmounts first).
chroot "$mnt" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM="${TERM:-xterm}" LC_ALL=C.UTF-8 "${cmd[@]}"
