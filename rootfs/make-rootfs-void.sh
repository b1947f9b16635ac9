#!/usr/bin/env bash
# make-rootfs-void.sh - build banger's EXPERIMENTAL Void Linux guest image
# (x86_64, glibc, runit). The Debian image stays the default; this one is
# lean on purpose: it boots, runs sshd, the vsock agent and a serial getty,
# and gives root a bash shell on the per-VM work disk at /root.
#
# Usage:
#   rootfs/make-rootfs-void.sh --out DIR --agent PATH --pubkey PATH
#                              [--mirror URL] [--cache DIR] [--plan]
#
#   --out DIR      where rootfs-void.ext4 and work-seed-void.ext4 are written
#   --agent PATH   the static guest agent (runtime/banger-vsock-agent)
#   --pubkey PATH  the SSH public key root accepts (the bundle's id_ed25519.pub)
#   --mirror URL   Void mirror (default in rootfs/void/versions.env); the static
#                  tools come from URL/static/, packages from URL/current
#   --cache DIR    download cache (default ~/.cache/banger/void): the pinned
#                  static xbps tarball and xbps's package cache
#   --plan         print every step with its exact commands, URLs and
#                  checksums, then exit 0; needs neither network nor root
#
# With internet access (a Void mirror must be reachable), as root on a Debian
# host (curl, xz-utils, tar, util-linux, passwd, openssh-client, e2fsprogs):
#   make rootfs-void    writes runtime/rootfs-void.ext4 and
#                       runtime/work-seed-void.ext4 through this script
#   make verify-void    registers them as image "void-exp" (banger image
#                       register --name void-exp --rootfs ... --work-seed ...)
#                       and runs the smoke test against it; the default image
#                       is never changed
# Without a reachable mirror, `--plan` shows what would run, and
# tests/images/test_void.py tests every step that needs no network against
# local fixtures.
#
# Steps:
#  1. Check the repository keys kept in rootfs/void/keys/: each file's xbps
#     fingerprint is recomputed and must be one pinned in versions.env.
#  2. Fetch the static xbps tarball named in versions.env (pinned file name,
#     never "latest") into the cache and check its sha256 before any use.
#  3. Unpack it into a throwaway work directory.
#  4. Seed the target's var/db/xbps/keys/ with the pinned keys only. xbps
#     looks the repository's key up there by fingerprint; a key that is not
#     there would need an interactive import, which never happens here
#     (stdin is /dev/null, and -y does not answer that question).
#  5. XBPS_ARCH=x86_64 xbps-install -S -r ROOT -R MIRROR/current -y PACKAGES,
#     as root so the packages' INSTALL scripts run chrooted, inside a private
#     mount namespace holding /dev, /proc, /sys and /tmp for them.
#  6. Check that no key was imported: the keys directory still holds exactly
#     the pinned files.
#  7. configure_root: runit services (sshd, the agent with an svlogd log, a
#     ttyS0 getty; no tty1-6 gettys), root's shell bash with a '*' password,
#     /bin/sh kept dash, sshd_config written whole with the key in
#     /etc/ssh/banger/root.keys and no host keys baked in (sshd's service
#     makes Ed25519 and ECDSA ones at its first start, never RSA), fstab
#     without the work disk, a runit core service that runs
#     rootfs/files/guest-setup (hostname, DNS), rootfs/files/mount-work
#     (checks the work disk and mounts it on /root),
#     rootfs/files/repair-root (the work-disk repair step) and, when the
#     command line names shared folders, rootfs/files/mount-shares
#     (virtio-fs) before any service, root's dotfiles.
#  8. make_images: mkfs.ext4 -d (no loop mounts) into temporary names in
#     --out, renamed into place once both are complete. A failure leaves
#     the previous images untouched and no temporary files behind.
#
# The steps that need no network are functions you can call on a local tree:
#   source rootfs/make-rootfs-void.sh
#   configure_root ROOT AGENT PUBKEY FILES_DIR
#   make_images ROOT OUT
#   verify_pinned_keys KEYDIR FINGERPRINT...
#   fetch_verified URL DEST SHA256
# usermod is the host's (Debian's usermod -R chroots into ROOT). The xbps tools
# are the unpacked static ones during a build; when none were unpacked (a
# sourced call on a fixture) they are looked up on PATH, which is how the test
# puts a stand-in xbps-alternatives in front.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VOID_DIR=$SELF_DIR/void
# Guest files shared with the Debian image: repair-root (the work-disk
# repair step), guest-setup (hostname and DNS from the kernel cmdline),
# mount-work (the work disk) and mount-shares (shared folders).
FILES_DIR=$SELF_DIR/files

# Plain assignments only (see the file); shellcheck is not told to follow it.
# shellcheck disable=SC1091
source "$VOID_DIR/versions.env"
read -r -a PINNED_KEYS <<<"$VOID_KEY_FINGERPRINTS"
read -r -a PACKAGES <<<"$VOID_PACKAGES"

PLAN=0           # 1: print the steps, run nothing
STEP=0
XBPS_BIN=""      # directory of the unpacked static xbps tools
CLEANUP_FILES=() # removed when the script fails
CLEANUP_DIRS=()  # removed when the script ends, whatever the outcome

die() {
	printf 'make-rootfs-void: %s\n' "$*" >&2
	exit 1
}

step() {
	STEP=$((STEP + 1))
	printf '[%d] %s\n' "$STEP" "$*"
}

note() {
	printf '    %s\n' "$*"
}

# show CMD...: print a command the way a shell would read it back.
show() {
	local q
	q=$(printf '%q ' "$@")
	printf '    $ %s\n' "${q% }"
}

# run CMD...: print it; run it unless this is a plan.
run() {
	show "$@"
	if [[ $PLAN == 0 ]]; then
		"$@"
	fi
}

in_list() {
	local want=$1 x
	shift
	for x in "$@"; do
		[[ $x == "$want" ]] && return 0
	done
	return 1
}

on_exit() {
	local rc=$? p
	if ((rc != 0)); then
		for p in "${CLEANUP_FILES[@]}"; do
			rm -f -- "$p"
		done
	fi
	for p in "${CLEANUP_DIRS[@]}"; do
		rm -rf --one-file-system -- "$p"
	done
	exit "$rc"
}

install_cleanup_trap() {
	trap on_exit EXIT
}

# xbps_tool NAME: path of an xbps tool (see the header for the PATH case).
xbps_tool() {
	if [[ -n $XBPS_BIN ]]; then
		printf '%s/%s\n' "$XBPS_BIN" "$1"
	else
		printf '%s\n' "$1"
	fi
}

# --- downloads -------------------------------------------------------------

# verify_sha256 FILE SHA256: succeed only if FILE has exactly that digest.
verify_sha256() {
	local file=$1 want=$2 got
	got=$(sha256sum -- "$file" | awk '{ print $1 }')
	if [[ $got != "$want" ]]; then
		printf 'make-rootfs-void: sha256 mismatch for %s\n  expected %s\n  got      %s\n' \
			"$file" "$want" "$got" >&2
		return 1
	fi
}

# fetch_verified URL DEST SHA256: DEST ends up holding URL's bytes, checked
# against SHA256 first. A cached DEST is reused only if it still matches.
# Nothing unverified is ever left at DEST.
fetch_verified() {
	local url=$1 dest=$2 sha=$3 part
	note "url:    $url"
	note "sha256: $sha"
	note "cache:  $dest"
	part=$dest.part.$$
	if [[ $PLAN == 1 ]]; then
		note "(a cached copy is used when its sha256 matches)"
		show curl -fL --retry 3 --proto =https,http,file -o "$part" "$url"
		show sha256sum "$part"
		note "(must equal the pinned sha256, or the build stops here)"
		show mv -f "$part" "$dest"
		return 0
	fi
	if [[ -f $dest ]]; then
		if verify_sha256 "$dest" "$sha"; then
			note "cached copy matches the pinned sha256"
			return 0
		fi
		note "cached copy does not match: fetching it again"
		rm -f -- "$dest"
	fi
	mkdir -p "$(dirname "$dest")"
	CLEANUP_FILES+=("$part")
	run curl -fL --retry 3 --proto =https,http,file -o "$part" "$url" ||
		{ rm -f -- "$part"; die "download failed: $url"; }
	if ! verify_sha256 "$part" "$sha"; then
		rm -f -- "$part"
		die "refusing $url: its sha256 is not the one pinned in rootfs/void/versions.env"
	fi
	mv -f -- "$part" "$dest"
}

# --- repository keys -------------------------------------------------------

# xbps_key_fingerprint PLIST: print the xbps fingerprint of the RSA public key
# stored (base64 PEM) under "public-key" in an xbps key plist. xbps uses the
# OpenSSH MD5 fingerprint of the key, so ssh-keygen computes the same value.
xbps_key_fingerprint() {
	local plist=$1 b64 line fp
	b64=$(tr -d ' \t\r\n' <"$plist" |
		sed -n 's:.*<key>public-key</key><data>\([A-Za-z0-9+/=]*\)</data>.*:\1:p')
	[[ -n $b64 ]] || return 1
	line=$(printf '%s' "$b64" | base64 -d |
		ssh-keygen -i -m PKCS8 -f /dev/stdin | ssh-keygen -l -E md5 -f -) || return 1
	# "4096 MD5:60:ae:... no comment (RSA)"
	[[ $line == *"(RSA)" ]] || return 1
	fp=$(awk '{ print $2 }' <<<"$line")
	fp=${fp#MD5:}
	[[ $fp =~ ^([0-9a-f]{2}:){15}[0-9a-f]{2}$ ]] || return 1
	printf '%s\n' "$fp"
}

# verify_pinned_keys KEYDIR FINGERPRINT...: every file in KEYDIR must be
# <fingerprint>.plist with a pinned fingerprint that its key really has, and
# every pinned key must be there. Anything else stops the build.
verify_pinned_keys() {
	local dir=$1 f name fp
	shift
	local -a pinned=("$@") files=()
	((${#pinned[@]} > 0)) || die "no pinned key fingerprints"
	[[ -d $dir ]] || die "no key directory $dir"
	shopt -s nullglob dotglob
	files=("$dir"/*)
	shopt -u nullglob dotglob
	for f in "${files[@]}"; do
		name=${f##*/}
		[[ $name == *.plist ]] || die "unexpected file in $dir: $name"
		name=${name%.plist}
		in_list "$name" "${pinned[@]}" ||
			die "refusing key $f: $name is not pinned in rootfs/void/versions.env (VOID_KEY_FINGERPRINTS)"
		fp=$(xbps_key_fingerprint "$f") ||
			die "refusing key $f: no readable RSA public key in it"
		[[ $fp == "$name" ]] ||
			die "refusing key $f: its key has fingerprint $fp, not the pinned $name"
		note "key $name: fingerprint checked, pinned"
	done
	for fp in "${pinned[@]}"; do
		[[ -f $dir/$fp.plist ]] || die "pinned key $fp has no file $dir/$fp.plist"
	done
}

# check_target_keys ROOT: after the install, ROOT's key directory must hold
# the pinned key files and nothing else (so nothing was imported on the way).
check_target_keys() {
	local dir=$1/var/db/xbps/keys f name
	local -a files=()
	if [[ $PLAN == 1 ]]; then
		note "every file in $dir must be a pinned key, byte for byte; anything else stops the build"
		return 0
	fi
	shopt -s nullglob dotglob
	files=("$dir"/*)
	shopt -u nullglob dotglob
	for f in "${files[@]}"; do
		name=${f##*/}
		if [[ $name != *.plist ]] || ! in_list "${name%.plist}" "${PINNED_KEYS[@]}"; then
			die "the target trusts a key that is not pinned: $f"
		fi
		cmp -s -- "$f" "$VOID_DIR/keys/$name" ||
			die "the target's key file $f differs from the pinned copy"
	done
	note "only the pinned keys are trusted by the target"
}

# --- install ---------------------------------------------------------------

# ns_install ROOT CMD...: runs in a private mount namespace (see
# install_packages); the mounts disappear with the namespace.
ns_install() {
	set -euo pipefail
	local root=$1
	shift
	mount --bind /dev "$root/dev"
	mount -t proc proc "$root/proc"
	mount --bind /sys "$root/sys"
	mount -t tmpfs tmpfs "$root/tmp"
	"$@" </dev/null
}

# install_packages ROOT REPO PKGCACHE PACKAGE...
install_packages() {
	local root=$1 repo=$2 pkgcache=$3
	shift 3
	local -a cmd=(env "XBPS_ARCH=$VOID_ARCH" "$(xbps_tool xbps-install)"
		-S -r "$root" -R "$repo" -c "$pkgcache" -y "$@")
	run mkdir -p "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$pkgcache"
	run chmod 1777 "$root/tmp"
	note "in a private mount namespace (unshare -m --propagation private), so"
	note "the mounts below vanish when xbps-install ends, whatever happens:"
	show mount --bind /dev "$root/dev"
	show mount -t proc proc "$root/proc"
	show mount --bind /sys "$root/sys"
	show mount -t tmpfs tmpfs "$root/tmp"
	show "${cmd[@]}"
	note "(stdin is /dev/null: xbps cannot be told yes to importing any key)"
	if [[ $PLAN == 1 ]]; then
		return 0
	fi
	unshare -m --propagation private -- \
		bash -c "$(declare -f ns_install); ns_install \"\$@\"" ns_install "$root" "${cmd[@]}"
}

# --- configuration (no network) --------------------------------------------

# set_root_account ROOT: root logs in to bash; '*' (not '!') so sshd, which
# treats a '!' password as a locked account, still takes root's key.
set_root_account() {
	local root=$1 shell pw
	run usermod -R "$root" -s /bin/bash -p '*' root
	[[ $PLAN == 1 ]] && return 0
	shell=$(awk -F: '$1 == "root" { print $7 }' "$root/etc/passwd")
	[[ $shell == /bin/bash ]] || die "root's shell in $root/etc/passwd is '$shell', not /bin/bash"
	if [[ -f $root/etc/shadow ]]; then
		pw=$(awk -F: '$1 == "root" { print $2 }' "$root/etc/shadow")
	else
		pw=$(awk -F: '$1 == "root" { print $2 }' "$root/etc/passwd")
	fi
	[[ $pw == '*' ]] || die "root's password field is '$pw', not '*'"
	rm -f -- "$root/etc/.pwd.lock"
}

# keep_dash ROOT: bash registers an "sh" alternative too and may have won it;
# set dash back and check both the alternatives list and the /bin/sh link.
keep_dash() {
	local root=$1 alt listing first target
	alt=$(xbps_tool xbps-alternatives)
	run env "XBPS_ARCH=$VOID_ARCH" "$alt" -r "$root" -s dash
	show env "XBPS_ARCH=$VOID_ARCH" "$alt" -r "$root" -l -g sh
	if [[ $PLAN == 1 ]]; then
		note "(its first entry must be dash, marked current, and $root/usr/bin/sh must point to dash)"
		return 0
	fi
	listing=$(env "XBPS_ARCH=$VOID_ARCH" "$alt" -r "$root" -l -g sh)
	# The first provider listed is the current one (xbps marks it "(current)").
	first=$(awk '/^ - / { print $2; exit }' <<<"$listing")
	[[ $first =~ ^dash(-[0-9][^[:space:]]*)?$ ]] ||
		die "/bin/sh would not be dash; xbps-alternatives -l -g sh says: ${listing//$'\n'/ | }"
	target=$(readlink -- "$root/usr/bin/sh") || die "$root/usr/bin/sh is not a symlink"
	[[ ${target##*/} == dash ]] || die "$root/usr/bin/sh points to $target, not dash"
	note "/bin/sh is dash"
}

# check_pubkey FILE: one OpenSSH public key line.
check_pubkey() {
	local file=$1 n
	[[ -f $file && -r $file ]] || die "no readable public key at $file"
	n=$(grep -c . "$file" || true)
	[[ $n == 1 ]] || die "$file must hold exactly one public key line"
	grep -Eq '^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+=*( .*)?$' "$file" ||
		die "$file does not look like an OpenSSH public key"
}

# configure_root ROOT AGENT PUBKEY FILES_DIR: everything after the install
# that needs no network. ROOT needs etc/passwd (root line), etc/sv/sshd,
# etc/sv/agetty-ttyS0 and, for the dotfiles, etc/skel. FILES_DIR holds
# repair-root, guest-setup, mount-work and mount-shares.
configure_root() {
	local root=$1 agent=$2 pubkey=$3 gfiles=$4
	local sv=$root/etc/sv rsv=$root/etc/runit/runsvdir/default s f
	check_pubkey "$pubkey"
	if [[ $PLAN == 0 ]]; then
		[[ -f $agent ]] || die "no agent binary at $agent"
		for f in repair-root guest-setup mount-work mount-shares; do
			[[ -f $gfiles/$f ]] || die "no $f in $gfiles"
		done
		[[ -f $root/etc/passwd ]] || die "$root/etc/passwd is missing"
		[[ -f $sv/sshd/run ]] || die "$sv/sshd/run is missing (openssh not installed?)"
		[[ -d $sv/agetty-ttyS0 ]] || die "$sv/agetty-ttyS0 is missing (runit-void not installed?)"
	fi

	step "runit services: sshd (banger-sshd), banger-vsock-agent (+ svlogd), agetty-ttyS0; no tty1-6 gettys"
	run install -D -m 0755 "$agent" "$root/usr/local/bin/banger-vsock-agent"
	run install -D -m 0755 "$VOID_DIR/sv/banger-vsock-agent/run" "$sv/banger-vsock-agent/run"
	run install -D -m 0755 "$VOID_DIR/sv/banger-vsock-agent/log/run" "$sv/banger-vsock-agent/log/run"
	run install -D -m 0755 "$VOID_DIR/sv/banger-sshd/run" "$sv/banger-sshd/run"
	run mkdir -p "$rsv"
	# The service is still called sshd (sv status sshd), but runs our run
	# script: the package's does ssh-keygen -A, whose RSA key takes about
	# 30 s under emulation, on every new VM.
	run ln -sfn /etc/sv/banger-sshd "$rsv/sshd"
	for s in banger-vsock-agent agetty-ttyS0; do
		run ln -sfn "/etc/sv/$s" "$rsv/$s"
	done
	run rm -f "$rsv/agetty-tty1" "$rsv/agetty-tty2" "$rsv/agetty-tty3" \
		"$rsv/agetty-tty4" "$rsv/agetty-tty5" "$rsv/agetty-tty6"
	if [[ $PLAN == 1 || ! -e $root/etc/runit/runsvdir/current ]]; then
		run ln -sfn default "$root/etc/runit/runsvdir/current"
	fi

	step "root account: login shell /bin/bash, password field '*'"
	set_root_account "$root"

	step "/bin/sh stays dash"
	keep_dash "$root"

	step "sshd: config written whole, key-only root login, key outside /root, no host keys"
	run install -D -m 0644 "$VOID_DIR/sshd_config" "$root/etc/ssh/sshd_config"
	run install -d -m 0755 "$root/etc/ssh/banger"
	run install -m 0644 "$pubkey" "$root/etc/ssh/banger/root.keys"
	run find "$root/etc/ssh" -maxdepth 1 -name 'ssh_host_*' -delete
	note "(the sshd service makes Ed25519 and ECDSA host keys at its first start: keys are per VM)"

	step "fstab: / on /dev/vda; the work disk is not in it (mount-work mounts it)"
	run install -D -m 0644 "$VOID_DIR/fstab" "$root/etc/fstab"

	step "boot steps as a runit core service, before any service starts: guest-setup, mount-work, repair-root, mount-shares"
	run install -D -m 0755 "$gfiles/guest-setup" "$root/usr/local/lib/banger/guest-setup"
	run install -D -m 0755 "$gfiles/mount-work" "$root/usr/local/lib/banger/mount-work"
	run install -D -m 0755 "$gfiles/repair-root" "$root/usr/local/lib/banger/repair-root"
	run install -D -m 0755 "$gfiles/mount-shares" "$root/usr/local/lib/banger/mount-shares"
	run install -D -m 0644 "$VOID_DIR/core-services/50-banger.sh" \
		"$root/etc/runit/core-services/50-banger.sh"
	note "(repair-root's word ok|repaired|conflicts goes to /run/banger/layout-state for the agent)"
	note "(mount-shares runs only with banger.mount= on the command line; results in /run/banger/shares-state)"

	step "root's dotfiles in /root (they become the work seed)"
	run install -d -m 0700 "$root/root"
	if [[ $PLAN == 1 ]]; then
		note "copy each entry of $root/etc/skel/ into $root/root/ unless it exists there"
	elif [[ -d $root/etc/skel ]]; then
		shopt -s nullglob dotglob
		for f in "$root/etc/skel"/*; do
			[[ -e $root/root/${f##*/} || -L $root/root/${f##*/} ]] ||
				run cp -a -- "$f" "$root/root/"
		done
		shopt -u nullglob dotglob
	fi
}

# --- images ----------------------------------------------------------------

# size_mib DIR: MiB used by DIR.
size_mib() {
	du -sx --block-size=1M -- "$1" | awk '{ print $1 }'
}

# make_images ROOT OUT: ROOT as OUT/rootfs-void.ext4 (label rootfs) and
# ROOT/root as OUT/work-seed-void.ext4 (label banger-work). Both are built
# under temporary names first; the final names only ever see whole images.
make_images() {
	local root=$1 out=$2 used root_mib seed_mib root_size seed_size
	local rootfs=$out/rootfs-void.ext4 seed=$out/work-seed-void.ext4
	local tmp_rootfs=$out/.rootfs-void.ext4.tmp.$$ tmp_seed=$out/.work-seed-void.ext4.tmp.$$
	step "images: mkfs.ext4 -d (no loop mounts), temporary names, then rename"
	if [[ $PLAN == 1 ]]; then
		root_size=ROOTFS_SIZE seed_size=SEED_SIZE
		note "ROOTFS_SIZE: used + max(used/2, 256) MiB, at least 512 MiB (a sparse file)"
		note "SEED_SIZE: 2 x used + 32 MiB, at least 64 MiB (bangerd grows each VM's copy)"
	else
		[[ -d $root/root ]] || die "$root/root is missing"
		used=$(size_mib "$root")
		root_mib=$((used + (used / 2 > 256 ? used / 2 : 256)))
		((root_mib >= 512)) || root_mib=512
		used=$(size_mib "$root/root")
		seed_mib=$((2 * used + 32))
		((seed_mib >= 64)) || seed_mib=64
		root_size=${root_mib}M seed_size=${seed_mib}M
	fi
	CLEANUP_FILES+=("$tmp_rootfs" "$tmp_seed")
	run mkdir -p "$out"
	run rm -f "$tmp_rootfs" "$tmp_seed"
	run mkfs.ext4 -q -F -L rootfs -b 4096 -I 256 -E root_owner=0:0 \
		-d "$root" "$tmp_rootfs" "$root_size"
	run mkfs.ext4 -q -F -L banger-work -b 4096 -I 256 -E root_owner=0:0 \
		-d "$root/root" "$tmp_seed" "$seed_size"
	run chmod 0644 "$tmp_rootfs" "$tmp_seed"
	run mv -f "$tmp_rootfs" "$rootfs"
	run mv -f "$tmp_seed" "$seed"
}

# --- main ------------------------------------------------------------------

usage() {
	sed -n '/^# Usage:/,/^#   --plan/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

need_tools() {
	local t missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	((${#missing[@]} == 0)) || die "missing tools: ${missing[*]}"
}

main() {
	local out="" agent="" pubkey="" mirror="$VOID_MIRROR_DEFAULT" cache=""
	while (($#)); do
		case $1 in
		--out | --agent | --pubkey | --mirror | --cache)
			(($# >= 2)) || die "$1 needs a value"
			case $1 in
			--out) out=$2 ;;
			--agent) agent=$2 ;;
			--pubkey) pubkey=$2 ;;
			--mirror) mirror=$2 ;;
			--cache) cache=$2 ;;
			esac
			shift 2
			;;
		--plan)
			PLAN=1
			shift
			;;
		-h | --help) usage ;;
		*) die "unknown argument: $1 (see --help)" ;;
		esac
	done
	[[ -n $out && -n $agent && -n $pubkey ]] || usage
	[[ -f $agent ]] || die "no agent binary at $agent"
	check_pubkey "$pubkey"
	mirror=${mirror%/}
	[[ $mirror =~ ^(https?|file):// ]] || die "--mirror must be an https://, http:// or file:// URL"
	[[ -n $cache ]] || cache=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/banger/void
	out=$(realpath -m -- "$out")
	agent=$(realpath -- "$agent")
	pubkey=$(realpath -- "$pubkey")
	cache=$(realpath -m -- "$cache")

	local repo=$mirror/current
	local tarball_url=$mirror/static/$XBPS_STATIC_FILE
	local tarball=$cache/$XBPS_STATIC_FILE
	local work root f

	if [[ $PLAN == 1 ]]; then
		printf 'make-rootfs-void.sh --plan: the steps of a build; nothing is run.\n'
		note "out:      $out/rootfs-void.ext4, $out/work-seed-void.ext4"
		note "agent:    $agent"
		note "pubkey:   $pubkey"
		for f in repair-root guest-setup mount-work mount-shares; do
			note "$(printf '%-9s' "$f:") $FILES_DIR/$f$([[ -f $FILES_DIR/$f ]] || printf ' (not present yet)')"
		done
		note "mirror:   $mirror (packages: $repo, XBPS_ARCH=$VOID_ARCH)"
		note "cache:    $cache"
		note "packages: ${PACKAGES[*]}"
		work=$out/.rootfs-void.XXXXXX
	else
		[[ $(id -u) == 0 ]] || die "run as root: the packages' INSTALL scripts must run chrooted (or use --plan)"
		for f in repair-root guest-setup mount-work mount-shares; do
			[[ -f $FILES_DIR/$f ]] || die "$FILES_DIR/$f is missing"
		done
		need_tools curl sha256sum tar xz unshare mount usermod ssh-keygen base64 \
			awk sed cmp install mkfs.ext4 realpath
		install_cleanup_trap
		mkdir -p "$out"
		work=$(mktemp -d "$out/.rootfs-void.XXXXXX")
		CLEANUP_DIRS+=("$work")
	fi
	root=$work/root
	XBPS_BIN=$work/xbps/usr/bin

	step "check the pinned repository keys in $VOID_DIR/keys"
	if [[ $PLAN == 1 ]] && ! command -v ssh-keygen >/dev/null; then
		note "(ssh-keygen is not installed: the fingerprints are checked at build time)"
	else
		verify_pinned_keys "$VOID_DIR/keys" "${PINNED_KEYS[@]}"
	fi

	step "fetch the static xbps tools (pinned file and sha256)"
	fetch_verified "$tarball_url" "$tarball" "$XBPS_STATIC_SHA256"

	step "unpack the static xbps tools"
	run mkdir -p "$work/xbps"
	run tar -xJf "$tarball" -C "$work/xbps" --no-same-owner
	if [[ $PLAN == 0 ]]; then
		[[ -x $XBPS_BIN/xbps-install && -x $XBPS_BIN/xbps-alternatives ]] ||
			die "the tarball has no usr/bin/xbps-install or xbps-alternatives"
	fi

	step "seed the target's trusted keys with the pinned keys only"
	run install -d -m 0755 "$root" "$root/var/db/xbps/keys"
	local fp
	for fp in "${PINNED_KEYS[@]}"; do
		run install -m 0644 "$VOID_DIR/keys/$fp.plist" "$root/var/db/xbps/keys/$fp.plist"
	done

	step "install ${PACKAGES[*]} from $repo"
	install_packages "$root" "$repo" "$cache/pkgs" "${PACKAGES[@]}"

	step "check that no repository key was imported"
	check_target_keys "$root"

	configure_root "$root" "$agent" "$pubkey" "$FILES_DIR"
	make_images "$root" "$out"

	step "done"
	note "$out/rootfs-void.ext4"
	note "$out/work-seed-void.ext4"
	if [[ $PLAN == 1 ]]; then
		note "(plan only: nothing was fetched, installed or written)"
	fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
