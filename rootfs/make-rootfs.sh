#!/usr/bin/env bash
# make-rootfs.sh - build banger's default guest image (Debian bookworm).
#
# usage: make-rootfs.sh --out DIR --agent PATH --pubkey PATH
#                       [--cache DIR] [--size MIB] [--packages FILE]
#                       [--tmux-plugins required|skip|auto]
#
# Writes DIR/rootfs-docker.ext4 (label rootfs, --size MiB, default 2048,
# sparse) and DIR/work-seed.ext4 (label banger-work, 64 MiB: root's dotfiles
# and tmux defaults), both filled with `mkfs.ext4 -d` (no loop mounts).
# Needs root: mmdebstrap runs in root mode and the images keep root
# ownership.  Steps, with the progress line each prints:
#   stage: fetch 2       mise and opencode from npm (`npm pack`, pinned and
#                        sha256-checked in versions.env), tmux plugins by git
#   stage: bootstrap 5   mmdebstrap --variant=minbase of bookworm,
#                        bookworm-updates and bookworm-security with the base
#                        packages and packages-debian.txt (or --packages FILE)
#   stage: cache 45      (after a fresh bootstrap) store it in the cache
#   stage: unpack 45     (cache hit instead) unpack the cached tree
#   stage: customize 60  units, sshd drop-in, bundle key, agent, fstab...
#   stage: tools 65      mise and opencode binaries into /usr/local/bin
#   stage: workseed 75   the work seed image
#   stage: mkfs 80       the rootfs image
#   stage: check 95      e2fsck -fn of both
#   stage: done 100      both renamed into place
#
# stdout carries only those lines, for bangerd (`stage: <name> <percent>`,
# percent never decreasing, `stage: done 100` last and only on success);
# everything else goes to stderr.  Outputs are written under temporary names in DIR and
# renamed at the end; on failure (or SIGINT/SIGTERM/SIGHUP: signal the
# process group, the cleanup runs once the current child exits) everything
# this run made is removed and the exit status is non-zero.
#
# Cache (--cache DIR; default /var/cache/banger/rootfs for root, else
# $XDG_CACHE_HOME/banger/rootfs): the bootstrapped tree as
# bootstrap-<key>.tar.zst, <key> hashing the package list, suites, mirrors,
# variant and BOOTSTRAP_VERSION, so a rebuild with the same packages skips
# mmdebstrap; the npm tarballs (npm/) and plugin archives (git/) by version
# and commit.  Nothing in the cache holds the public key, the agent or SSH
# host keys: they are handled after the cache step.  The 3 most recently used
# bootstrap tarballs are kept.
#
# Environment:
#   BANGER_DEBIAN_MIRROR           default http://deb.debian.org/debian
#   BANGER_DEBIAN_SECURITY_MIRROR  default: the mirror with /debian replaced by
#                                  /debian-security (deb.debian.org otherwise)
#   BANGER_TMUX_RESURRECT_URL, BANGER_TMUX_CONTINUUM_URL
#   BANGER_TMUX_RESURRECT_COMMIT, BANGER_TMUX_CONTINUUM_COMMIT
#                                  override versions.env (test fixtures)
# --tmux-plugins: required = a failed clone fails the build; skip = build
# without them; auto (default) = clone, and on failure warn and build without
# them.  /etc/banger/image-info records which (tmux_plugins=installed|
# skipped|unavailable).
set -euo pipefail
umask 022

readonly BUILDER_VERSION=1
# Bump when anything that goes into the bootstrap tarball changes.
readonly BOOTSTRAP_VERSION=1
readonly SUITE=bookworm
readonly VARIANT=minbase
readonly SEED_MIB=64
readonly KEEP_BOOTSTRAPS=3
readonly BASE_PACKAGES=(systemd-sysv udev openssh-server iproute2 ca-certificates bash kmod)
readonly DPKG_OPTS=(
	'path-exclude=/usr/share/man/*'
	'path-exclude=/usr/share/doc/*'
	'path-include=/usr/share/doc/*/copyright'
	'path-exclude=/usr/share/info/*'
	'path-exclude=/usr/share/locale/*'
	'path-include=/usr/share/locale/locale.alias'
)
readonly APT_OPTS=('Acquire::Retries "3"')
readonly UNIT_DIR=/usr/local/lib/systemd/system
readonly PLUGIN_DIR=/usr/share/banger/tmux-plugins

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
files=$here/files

# fd 3 is the real stdout (stage lines); everything else goes to stderr.
exec 3>&1 1>&2

stage() {
	printf 'stage: %s %d\n' "$1" "$2" >&3
}

log() {
	printf 'make-rootfs: %s\n' "$*" >&2
}

warn() {
	printf 'make-rootfs: WARNING: %s\n' "$*" >&2
}

die() {
	printf 'make-rootfs: error: %s\n' "$*" >&2
	exit 1
}

# The header comment above, for --help (on the real stdout).
help() {
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&3
}

usage_error() {
	printf 'make-rootfs: %s\n' "$*" >&2
	sed -n '4,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

# ---------------------------------------------------------------- arguments

out='' agent='' pubkey='' cache='' size=2048 plugins=auto
packages_file=$here/packages-debian.txt

need_value() {
	[[ $# -ge 2 && -n $2 ]] || usage_error "$1 needs a value"
}

while [[ $# -gt 0 ]]; do
	opt=$1
	val=
	case $opt in
	--*=*)
		val=${opt#*=}
		opt=${opt%%=*}
		set -- "$opt" "$val" "${@:2}"
		;;
	esac
	case $opt in
	--out) need_value "$@"; out=$2; shift 2 ;;
	--agent) need_value "$@"; agent=$2; shift 2 ;;
	--pubkey) need_value "$@"; pubkey=$2; shift 2 ;;
	--cache) need_value "$@"; cache=$2; shift 2 ;;
	--size) need_value "$@"; size=$2; shift 2 ;;
	--packages) need_value "$@"; packages_file=$2; shift 2 ;;
	--tmux-plugins) need_value "$@"; plugins=$2; shift 2 ;;
	-h | --help) help; exit 0 ;;
	*) usage_error "unknown argument: $opt" ;;
	esac
done

[[ -n $out ]] || usage_error "--out is required"
[[ -n $agent ]] || usage_error "--agent is required"
[[ -n $pubkey ]] || usage_error "--pubkey is required"
if ! [[ $size =~ ^[0-9]+$ ]] || ((size < 256 || size > 1048576)); then
	usage_error "--size must be a number of MiB (256 or more), not '$size'"
fi
case $plugins in
required | skip | auto) ;;
*) usage_error "--tmux-plugins must be required, skip or auto, not '$plugins'" ;;
esac

[[ -f $agent && -r $agent ]] || die "agent '$agent' is not a readable file"
[[ $(head -c 4 -- "$agent" | od -An -c | tr -d ' ') == '177ELF' ]] ||
	die "agent '$agent' is not an ELF executable (build it with make build)"
[[ -f $pubkey && -r $pubkey ]] || die "public key '$pubkey' is not a readable file"
[[ -f $packages_file && -r $packages_file ]] ||
	die "package list '$packages_file' is not a readable file"

# The authorized key file: one or more OpenSSH public key lines, nothing else.
key_re='^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^[:cntrl:]]*)?$'
pubkey_lines=()
while IFS= read -r line || [[ -n $line ]]; do
	line=${line%$'\r'}
	[[ -z ${line//[[:space:]]/} ]] && continue
	[[ $line =~ $key_re ]] ||
		die "'$pubkey' is not an OpenSSH public key file (expected lines like 'ssh-ed25519 AAAA... comment')"
	pubkey_lines+=("$line")
done <"$pubkey"
((${#pubkey_lines[@]} > 0)) || die "'$pubkey' holds no public key"

if [[ $(id -u) -ne 0 ]]; then
	die "must run as root (mmdebstrap --mode=root; the images keep root ownership)"
fi

for cmd in mkfs.ext4 e2fsck debugfs tar zstd sha256sum od; do
	command -v "$cmd" >/dev/null || die "'$cmd' not found (apt-get install e2fsprogs tar zstd coreutils)"
done

# ------------------------------------------------------------ versions.env

# KEY=value lines, parsed here rather than sourced.
declare -A pins=()
while IFS= read -r line || [[ -n $line ]]; do
	[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
	[[ $line =~ ^([A-Z][A-Z0-9_]*)=([A-Za-z0-9@/._:+=-]*)$ ]] ||
		die "versions.env: cannot parse line: $line"
	pins[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done <"$here/versions.env"

pin() {
	[[ -n ${pins[$1]:-} ]] || die "versions.env: $1 is not set"
	printf '%s' "${pins[$1]}"
}

mise_pkg=$(pin MISE_NPM_PACKAGE)
mise_version=$(pin MISE_VERSION)
mise_sha=$(pin MISE_SHA256)
opencode_pkg=$(pin OPENCODE_NPM_PACKAGE)
opencode_version=$(pin OPENCODE_VERSION)
opencode_sha=$(pin OPENCODE_SHA256)
resurrect_url=${BANGER_TMUX_RESURRECT_URL:-$(pin TMUX_RESURRECT_URL)}
resurrect_commit=${BANGER_TMUX_RESURRECT_COMMIT:-$(pin TMUX_RESURRECT_COMMIT)}
continuum_url=${BANGER_TMUX_CONTINUUM_URL:-$(pin TMUX_CONTINUUM_URL)}
continuum_commit=${BANGER_TMUX_CONTINUUM_COMMIT:-$(pin TMUX_CONTINUUM_COMMIT)}
for c in "$resurrect_commit" "$continuum_commit"; do
	[[ $c =~ ^[0-9a-f]{40}$ ]] || die "tmux plugin commit '$c' is not a full 40-hex commit id"
done

mirror=${BANGER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mirror=${mirror%/}
if [[ -n ${BANGER_DEBIAN_SECURITY_MIRROR:-} ]]; then
	security=${BANGER_DEBIAN_SECURITY_MIRROR%/}
elif [[ $mirror == */debian ]]; then
	security=${mirror%/debian}/debian-security
else
	security=http://deb.debian.org/debian-security
fi
for m in "$mirror" "$security"; do
	[[ $m =~ ^(https?|file)://[A-Za-z0-9._~:/@%+-]+$ ]] || die "bad mirror URL: $m"
done

# ------------------------------------------------------------ package list

extra=()
while IFS= read -r line || [[ -n $line ]]; do
	line=${line%%#*}
	line=${line//[[:space:]]/}
	[[ -z $line ]] && continue
	[[ $line =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || die "$packages_file: bad package name '$line'"
	extra+=("$line")
done <"$packages_file"
mapfile -t all_packages < <(printf '%s\n' "${BASE_PACKAGES[@]}" "${extra[@]}" | LC_ALL=C sort -u)
packages_joined=${all_packages[*]}
include=${packages_joined// /,}
packages_sha=$(printf '%s\n' "${all_packages[@]}" | sha256sum | cut -d' ' -f1)

# The bootstrap cache key: everything that decides the mmdebstrap result.
key_text=$(
	printf 'bootstrap_version=%s\n' "$BOOTSTRAP_VERSION"
	printf 'suite=%s\nvariant=%s\narch=amd64\ncomponents=main\n' "$SUITE" "$VARIANT"
	printf 'mirror=%s\nsecurity=%s\n' "$mirror" "$security"
	printf 'package=%s\n' "${all_packages[@]}"
	printf 'dpkgopt=%s\n' "${DPKG_OPTS[@]}"
	printf 'aptopt=%s\n' "${APT_OPTS[@]}"
)
key=$(printf '%s\n' "$key_text" | sha256sum | cut -c1-24)

# ------------------------------------------------------------ cache, work dir

if [[ -z $cache ]]; then
	if [[ $(id -u) -eq 0 ]]; then
		cache=/var/cache/banger/rootfs
	else
		cache=${XDG_CACHE_HOME:-$HOME/.cache}/banger/rootfs
	fi
fi
mkdir -p -- "$cache" "$cache/npm" "$cache/git"
chmod 0700 -- "$cache"
# Its tarballs are unpacked as root: refuse a cache others can write to.
[[ $(stat -c %u -- "$cache") -eq $(id -u) ]] || die "cache $cache is not owned by us"
for d in "$cache" "$cache/npm" "$cache/git"; do
	[[ $(stat -c %A -- "$d") =~ ^d....-..-. ]] || die "cache dir $d is group- or world-writable"
done

mkdir -p -- "$out"
out=$(cd -- "$out" && pwd)
work=$(mktemp -d "$out/.make-rootfs.XXXXXX")
tree=$work/tree
seed=$work/seed
tmp_rootfs=$out/.rootfs-docker.ext4.tmp.$$
tmp_seed=$out/.work-seed.ext4.tmp.$$
cache_tmps=()
succeeded=0

# Unmount anything left mounted under the work dir (an interrupted
# mmdebstrap), deepest first.
unmount_under() {
	local prefix=$1/ mp
	local -a mps=()
	while IFS= read -r mp; do
		mp=$(printf '%b' "$mp")
		[[ $mp == "$prefix"* ]] && mps+=("$mp")
	done < <(awk '{print $5}' /proc/self/mountinfo)
	((${#mps[@]})) || return 0
	while IFS= read -r mp; do
		umount -l -- "$mp" || true
	done < <(printf '%s\n' "${mps[@]}" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if ((!succeeded)); then
		unmount_under "$work"
		rm -rf --one-file-system -- "$work"
		rm -f -- "$tmp_rootfs" "$tmp_seed"
		((${#cache_tmps[@]})) && rm -rf --one-file-system -- "${cache_tmps[@]}"
		((rc != 0)) || rc=1
		printf 'make-rootfs: failed (exit %d); removed the partial output\n' "$rc" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# A temporary name inside the cache, removed on failure.
cache_tmp() {
	local t
	t=$(mktemp -p "$1" ".tmp.XXXXXX")
	cache_tmps+=("$t")
	printf '%s' "$t"
}

sha256_of() {
	sha256sum -- "$1" | cut -d' ' -f1
}

# ------------------------------------------------------------------- fetch

# The fetch functions leave their result in $fetched (not printed: die must
# run in this shell, where the cleanup trap is).
fetched=

# fetch_npm PACKAGE VERSION SHA256: the cached `npm pack` tarball.
fetch_npm() {
	local pkg=$1 version=$2 want=$3 dest got t d
	dest=$cache/npm/${pkg//\//_}-$version.tgz
	if [[ -f $dest ]]; then
		got=$(sha256_of "$dest")
		[[ $got == "$want" ]] && { fetched=$dest; return 0; }
		warn "cached $dest has the wrong sha256; fetching it again"
	fi
	command -v npm >/dev/null || die "npm not found (needed once to fetch $pkg@$version)"
	d=$(mktemp -d "$work/npm.XXXXXX")
	log "npm pack $pkg@$version"
	(cd -- "$d" && npm pack --silent --ignore-scripts --pack-destination "$d" "$pkg@$version") >&2 ||
		die "npm pack $pkg@$version failed (is the npm registry reachable?)"
	t=("$d"/*.tgz)
	[[ ${#t[@]} -eq 1 && -f ${t[0]} ]] || die "npm pack $pkg@$version made no tarball"
	got=$(sha256_of "${t[0]}")
	[[ $got == "$want" ]] ||
		die "$pkg@$version: sha256 $got does not match versions.env ($want)"
	local ct
	ct=$(cache_tmp "$cache/npm")
	mv -f -- "${t[0]}" "$ct"
	mv -f -- "$ct" "$dest"
	fetched=$dest
}

# fetch_plugin NAME URL COMMIT ENTRYFILE: the cached archive, or status 1
# (and a message on stderr) when it cannot be had.
fetch_plugin() {
	local name=$1 url=$2 commit=$3 entry=$4 dest d ct
	dest=$cache/git/$name-$commit.tar
	if [[ -f $dest ]]; then
		fetched=$dest
		return 0
	fi
	command -v git >/dev/null || { log "git not found"; return 1; }
	d=$work/git-$name
	log "git clone $url ($name at $commit)"
	if ! GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/true timeout 120 \
		git clone --quiet --no-checkout -- "$url" "$d" >&2; then
		log "cannot clone $url"
		return 1
	fi
	if ! git -C "$d" cat-file -e "$commit^{commit}" 2>/dev/null; then
		log "$url has no commit $commit"
		return 1
	fi
	ct=$(cache_tmp "$cache/git")
	git -C "$d" archive --format=tar "$commit" >"$ct" || return 1
	if ! tar -tf "$ct" | grep -xF -- "$entry" >/dev/null; then
		log "$url at $commit has no $entry"
		return 1
	fi
	mv -f -- "$ct" "$dest"
	fetched=$dest
}

stage fetch 2
fetch_npm "$mise_pkg" "$mise_version" "$mise_sha"
mise_tgz=$fetched
fetch_npm "$opencode_pkg" "$opencode_version" "$opencode_sha"
opencode_tgz=$fetched

plugin_status=skipped
resurrect_tar='' continuum_tar=''
if [[ $plugins != skip ]]; then
	if fetch_plugin tmux-resurrect "$resurrect_url" "$resurrect_commit" resurrect.tmux &&
		resurrect_tar=$fetched &&
		fetch_plugin tmux-continuum "$continuum_url" "$continuum_commit" continuum.tmux &&
		continuum_tar=$fetched; then
		plugin_status=installed
	elif [[ $plugins == required ]]; then
		die "tmux plugins are required (--tmux-plugins required) but could not be fetched"
	else
		plugin_status=unavailable
		resurrect_tar='' continuum_tar=''
		warn "tmux-resurrect/tmux-continuum could not be fetched; building WITHOUT them" \
			"(recorded in /etc/banger/image-info; use --tmux-plugins required to make this an error)"
	fi
fi

# --------------------------------------------------------------- bootstrap

# Things in a fresh tree that must not be in the cache nor in an image: the
# build host's resolver and name, a machine id, SSH host keys.
sanitize_tree() {
	rm -f -- "$tree"/etc/ssh/ssh_host_*_key "$tree"/etc/ssh/ssh_host_*_key.pub
	rm -f -- "$tree/etc/resolv.conf"
	printf 'banger\n' >"$tree/etc/hostname"
	: >"$tree/etc/machine-id"
	rm -f -- "$tree/var/lib/dbus/machine-id"
	rm -rf -- "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin
	rm -f -- "$tree"/var/cache/debconf/*-old "$tree"/var/lib/dpkg/*-old
}

bootstrap=$cache/bootstrap-$key.tar.zst
stage bootstrap 5
if [[ -f $bootstrap ]]; then
	log "bootstrap: cached ($bootstrap)"
	touch -- "$bootstrap"
	stage unpack 45
	mkdir -- "$tree"
	zstd -dcq -- "$bootstrap" |
		tar -x -C "$tree" --numeric-owner --same-owner --same-permissions \
			--xattrs --xattrs-include='*' -f -
else
	command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install mmdebstrap)"
	log "bootstrap: mmdebstrap $SUITE ($VARIANT, ${#all_packages[@]} packages) from $mirror"
	mm_args=(--mode=root --variant="$VARIANT" --arch=amd64 --include="$include")
	for o in "${DPKG_OPTS[@]}"; do mm_args+=(--dpkgopt="$o"); done
	for o in "${APT_OPTS[@]}"; do mm_args+=(--aptopt="$o"); done
	mmdebstrap "${mm_args[@]}" "$SUITE" "$tree" \
		"deb $mirror $SUITE main" \
		"deb $mirror $SUITE-updates main" \
		"deb $security $SUITE-security main" ||
		die "mmdebstrap failed (is $mirror reachable?)"
	sanitize_tree
	stage cache 45
	ct=$(cache_tmp "$cache")
	tar -c -C "$tree" --numeric-owner --xattrs --xattrs-include='*' -f - . |
		zstd -q -T0 -3 >"$ct"
	mv -f -- "$ct" "$bootstrap"
	printf '%s\n' "$key_text" >"$cache/bootstrap-$key.txt"
	# Keep the most recently used few.
	mapfile -t old < <(find "$cache" -maxdepth 1 -name 'bootstrap-*.tar.zst' -printf '%T@ %p\n' |
		sort -rn | tail -n +$((KEEP_BOOTSTRAPS + 1)) | cut -d' ' -f2-)
	for f in "${old[@]}"; do
		log "cache: dropping $f"
		rm -f -- "$f" "${f%.tar.zst}.txt"
	done
fi
[[ -x $tree/usr/sbin/sshd && -x $tree/lib/systemd/systemd ]] ||
	die "the bootstrapped tree is incomplete (no sshd or systemd); remove $bootstrap and retry"

# --------------------------------------------------------------- customize

stage customize 60
sanitize_tree

inst() { # inst MODE SRC DST (DST relative to the tree)
	install -D -o root -g root -m "$1" -- "$2" "$tree$3"
}

# sshd: key-only root login, keys outside /root, no host keys in the image.
inst 0644 "$files/00-banger.conf" /etc/ssh/sshd_config.d/00-banger.conf
install -d -o root -g root -m 0755 -- "$tree/etc/ssh/banger"
printf '%s\n' "${pubkey_lines[@]}" >"$tree/etc/ssh/banger/root.keys"
chown root:root -- "$tree/etc/ssh/banger/root.keys"
chmod 0644 -- "$tree/etc/ssh/banger/root.keys"

# The agent and the boot-time helpers.
inst 0755 "$agent" /usr/local/bin/banger-vsock-agent
inst 0755 "$files/repair-root" /usr/local/lib/banger/repair-root
inst 0755 "$files/guest-setup" /usr/local/lib/banger/guest-setup
inst 0755 "$files/mount-work" /usr/local/lib/banger/mount-work
inst 0755 "$files/mount-shares" /usr/local/lib/banger/mount-shares

# Units, enabled offline: what `systemctl enable` would link.
units=(banger-hostkeys banger-workdisk banger-shares banger-vsock-agent banger-guest)
for u in "${units[@]}"; do
	inst 0644 "$files/$u.service" "$UNIT_DIR/$u.service"
done
enable() { # enable UNIT TARGET-DIR...
	local u=$1 d
	shift
	for d in "$@"; do
		install -d -m 0755 -- "$tree/etc/systemd/system/$d"
		ln -sfn -- "$UNIT_DIR/$u.service" "$tree/etc/systemd/system/$d/$u.service"
	done
}
enable banger-hostkeys multi-user.target.wants ssh.service.requires
enable banger-workdisk local-fs.target.wants
enable banger-shares local-fs.target.wants
enable banger-vsock-agent multi-user.target.wants
enable banger-guest sysinit.target.wants
[[ -L $tree/etc/systemd/system/multi-user.target.wants/ssh.service ]] ||
	die "ssh.service is not enabled in the bootstrapped tree"
# sshd early: ordered after what it needs rather than after sysinit.target.
inst 0644 "$files/ssh-early.conf" /etc/systemd/system/ssh.service.d/banger.conf
for u in systemd-udevd systemd-udev-trigger; do
	inst 0644 "$files/udev-late.conf" "/etc/systemd/system/$u.service.d/banger.conf"
done
# Early boot's other work after sshd and the agent too (boot-late.conf says
# which and why); /tmp is emptied by banger-guest instead (tmp.conf).
for u in systemd-journal-flush systemd-sysctl systemd-random-seed \
	systemd-tmpfiles-setup-dev systemd-tmpfiles-setup systemd-update-utmp; do
	inst 0644 "$files/boot-late.conf" "/etc/systemd/system/$u.service.d/banger.conf"
done
inst 0644 "$files/tmp.conf" /etc/tmpfiles.d/tmp.conf
# No background apt downloads in short-lived VMs.
rm -f -- "$tree/etc/systemd/system/timers.target.wants/apt-daily.timer" \
	"$tree/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer"
# Masked: boot work a microVM has no use for (gettys on virtual consoles
# it has no screen for; the serial console keeps its getty, and LVM
# snapshot cleanup), 2-4 s of a TCG boot.
for u in getty-static.service getty@tty1.service e2scrub_reap.service; do
	ln -sfn /dev/null "$tree/etc/systemd/system/$u"
done
# Also masked: early-boot units that cannot do anything here, each a
# process that competes with sshd's path for the one or two vCPUs.  The
# image has no kernel modules (the bundle's kernel keeps them in its
# initrd), so modprobe and modules-load always find nothing; no one uses
# debugfs, tracefs or huge pages in a developer VM (mount them by hand, or
# unmask, when you do).
for u in modprobe@configfs.service modprobe@dm_mod.service modprobe@efi_pstore.service \
	modprobe@fuse.service modprobe@loop.service systemd-modules-load.service \
	sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount; do
	ln -sfn /dev/null "$tree/etc/systemd/system/$u"
done
# Generators systemd runs before it loads any unit (each 0.25-1 s of CPU
# under TCG, 4.5 s in all), masked when they cannot find anything to do
# here: a GPT root partition to discover (the root is a bare filesystem
# on /dev/vda), crypttab, integritytab, veritytab, hibernation, offline
# updates; and the ones whose only input is the kernel command line,
# which bangerd writes (systemd.run=, systemd.mask= and the like).  The
# getty generator would start a serial getty on console=ttyS0, which
# bangerd always passes: that getty is enabled here instead.  fstab,
# rc-local and sysv stay: their inputs are files a user may add.
install -d -m 0755 -- "$tree/etc/systemd/system-generators"
for g in systemd-gpt-auto-generator systemd-cryptsetup-generator \
	systemd-integritysetup-generator systemd-veritysetup-generator \
	systemd-hibernate-resume-generator systemd-system-update-generator \
	systemd-run-generator systemd-debug-generator systemd-getty-generator; do
	ln -sfn /dev/null "$tree/etc/systemd/system-generators/$g"
done
install -d -m 0755 -- "$tree/etc/systemd/system/getty.target.wants"
ln -sfn /lib/systemd/system/serial-getty@.service \
	"$tree/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
# No dynamic motd: pam_motd runs /etc/update-motd.d through sh, env and
# run-parts at every SSH login (only to print uname -a), half a second of
# each login under TCG.  /etc/motd is still shown.
rm -rf -- "$tree/etc/update-motd.d"

# Work disk at /root, names, tmux, shell.
inst 0644 "$files/fstab" /etc/fstab
inst 0644 "$files/hosts" /etc/hosts
inst 0644 "$files/tmux.conf" /etc/tmux.conf
cat -- "$files/bash.bashrc.banger" >>"$tree/etc/bash.bashrc"
# No locales package: glibc's built-in C.UTF-8 keeps tmux and TUIs in UTF-8.
printf 'LANG=C.UTF-8\n' >"$tree/etc/default/locale"
root_shell=$(awk -F: '$1 == "root" {print $7}' "$tree/etc/passwd")
if [[ $root_shell != /bin/bash ]]; then
	usermod --root "$tree" --shell /bin/bash root
fi

# mise and opencode: the binaries of the npm platform packages, no Node.
extract_bin() { # extract_bin TGZ MEMBER NAME
	local d=$work/x-$3
	mkdir -p -- "$d"
	tar -xzf "$1" -C "$d" --no-same-owner -- "$2" || die "$1 has no $2"
	inst 0755 "$d/$2" "/usr/local/bin/$3"
	rm -rf -- "$d"
}
stage tools 65
extract_bin "$mise_tgz" package/bin/mise mise
extract_bin "$opencode_tgz" package/bin/opencode opencode

if [[ $plugin_status == installed ]]; then
	for p in "tmux-resurrect:$resurrect_tar" "tmux-continuum:$continuum_tar"; do
		d=$tree$PLUGIN_DIR/${p%%:*}
		mkdir -p -- "$d"
		tar -xf "${p#*:}" -C "$d" --no-same-owner --no-same-permissions
	done
	chown -R root:root -- "$tree/usr/share/banger"
fi

# /etc and /var are up to date with /usr (the packages' scripts ran at
# build time): what systemd-update-done would record, so units with
# ConditionNeedsUpdate= (systemd-sysusers) do not run on every new VM.
for d in etc var; do
	printf 'TIMESTAMP_NSEC=%s\n' "$(stat -c %.9Y -- "$tree/usr" | tr -d .)" >"$tree/$d/.updated"
	touch -r "$tree/usr" -- "$tree/$d/.updated"
done

agent_sha=$(sha256_of "$agent")
key_sha=$(sha256_of "$tree/etc/ssh/banger/root.keys")
install -d -m 0755 -- "$tree/etc/banger"
{
	printf 'builder=make-rootfs.sh\n'
	printf 'builder_version=%s\n' "$BUILDER_VERSION"
	printf 'built_at=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf 'distro=debian\nsuite=%s\nvariant=%s\n' "$SUITE" "$VARIANT"
	printf 'mirror=%s\nsecurity_mirror=%s\n' "$mirror" "$security"
	printf 'bootstrap_key=%s\n' "$key"
	printf 'packages_sha256=%s\n' "$packages_sha"
	printf 'packages=%s\n' "$packages_joined"
	printf 'mise_version=%s\nopencode_version=%s\n' "$mise_version" "$opencode_version"
	printf 'tmux_plugins=%s\n' "$plugin_status"
	if [[ $plugin_status == installed ]]; then
		printf 'tmux_resurrect_commit=%s\ntmux_continuum_commit=%s\n' \
			"$resurrect_commit" "$continuum_commit"
	fi
	printf 'agent_sha256=%s\nauthorized_keys_sha256=%s\n' "$agent_sha" "$key_sha"
} >"$tree/etc/banger/image-info"

# ---------------------------------------------------------------- work seed

# Root's home on a fresh work disk: /etc/skel's dotfiles and tmux defaults.
# The rootfs's own /root gets the same, for a VM booted without a work disk.
stage workseed 75
install -d -o root -g root -m 0700 -- "$seed"
cp -a -- "$tree/etc/skel/." "$seed/"
install -o root -g root -m 0644 -- "$files/root-tmux.conf" "$seed/.tmux.conf"
install -d -o root -g root -m 0700 -- "$seed/.ssh" "$seed/.tmux" "$seed/.tmux/resurrect"
chown -R root:root -- "$seed"
cp -a -- "$seed/." "$tree/root/"
chmod 0700 -- "$tree/root"
mkfs.ext4 -q -F -L banger-work -b 4096 -T default -E root_owner=0:0 -d "$seed" "$tmp_seed" "${SEED_MIB}M" ||
	die "mkfs.ext4 of the work seed failed"
# mkfs.ext4 -d leaves the filesystem's root directory 0755; /root is 0700.
debugfs -w -R 'set_inode_field / mode 040700' "$tmp_seed" >&2 ||
	die "could not set the work seed's root directory mode"

# -------------------------------------------------------------------- mkfs

stage mkfs 80
used=$(du -s -B1M --apparent-size -- "$tree" | cut -f1)
need=$((used + used / 8 + 96))
((size >= need)) || die "--size $size MiB is too small for this tree (about $need MiB needed)"
# A fresh, sparse file: no need to zero the journal or inode tables.
mkfs.ext4 -q -F -L rootfs -E root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1 \
	-d "$tree" "$tmp_rootfs" "${size}M" || die "mkfs.ext4 of the rootfs failed"

stage check 95
e2fsck -fn "$tmp_rootfs" >&2 || die "e2fsck found problems in the new rootfs"
e2fsck -fn "$tmp_seed" >&2 || die "e2fsck found problems in the new work seed"

mv -f -- "$tmp_seed" "$out/work-seed.ext4"
mv -f -- "$tmp_rootfs" "$out/rootfs-docker.ext4"
succeeded=1
rm -rf --one-file-system -- "$work" || true
log "wrote $out/rootfs-docker.ext4 ($size MiB, $(du -sm -- "$out/rootfs-docker.ext4" | cut -f1) MiB allocated) and $out/work-seed.ext4"
stage 'done' 100
