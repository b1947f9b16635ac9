#!/usr/bin/env bash
# make-kernel.sh --out DIR [--cache DIR] [--package NAME] [--deb FILE] [--force]
#
# Fetch Debian bookworm's cloud kernel and lay out what banger needs from it:
#
#   DIR/vmlinuz          the bzImage, as shipped (QEMU can boot it)
#   DIR/vmlinux          the uncompressed ELF kernel with the Xen PVH entry
#                        note (XEN_ELFNOTE_PHYS32_ENTRY, type 0x12), which
#                        Firecracker needs and QEMU microvm boots too
#   DIR/config           the kernel's build configuration (/boot/config-*)
#   DIR/System.map
#   DIR/kernel.release   the module directory name, e.g. 6.1.0-56-cloud-amd64
#   DIR/kernel-modules/  the package's /lib/modules/<release> tree, with a
#                        modules.dep made by depmod (the package ships none);
#                        make-initrd.sh takes its modules from here
#   DIR/kernel.stamp     what the files were made from (package, version,
#                        .deb sha256, this script's sha256)
#
# Steps: resolve the metapackage (linux-image-cloud-amd64) to the versioned
# linux-image-<abi>-cloud-amd64 it depends on, `apt-get download` that .deb
# into the cache (kept by name: a cached file is not fetched again), `dpkg -x` it into a temporary directory, and extract
# vmlinux: the bzImage payload is an LZ4 (legacy) frame, so find the magic
# 02 21 4c 18 and `lz4 -dc` from there.  The result must be an x86-64 ELF
# carrying the PVH note, or the script fails.
#
# Re-running with the same .deb and script is a no-op unless --force is given.
# Without apt metadata for the package (no network, no `apt-get update`), the
# newest matching .deb already in the cache is used; --deb FILE names one.
#
# Options:
#   --out DIR       output directory (created)
#   --cache DIR     .deb cache (default /var/cache/banger/kernel as root,
#                   else ${XDG_CACHE_HOME:-~/.cache}/banger/kernel)
#   --package NAME  package or metapackage (default linux-image-cloud-amd64)
#   --deb FILE      use this kernel .deb instead of asking apt
#   --force         rebuild even when DIR is up to date
#
# Needs: apt (apt-get, apt-cache), dpkg, lz4, binutils (readelf), kmod
# (depmod), grep, coreutils.
set -euo pipefail

prog=${0##*/}
set -o errtrace
trap 'echo "$prog: error: command failed (line $LINENO, exit $?)" >&2' ERR
out=""
cache=""
package="linux-image-cloud-amd64"
deb=""
force=0

die() {
	echo "$prog: error: $*" >&2
	exit 1
}

say() {
	echo "$prog: $*" >&2
}

usage() {
	echo "usage: $prog --out DIR [--cache DIR] [--package NAME] [--deb FILE] [--force]"
}

default_cache() {
	if [ "$(id -u)" -eq 0 ]; then
		echo /var/cache/banger/kernel
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/banger/kernel"
	fi
}

while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--cache) cache=${2:?--cache needs a directory}; shift 2 ;;
	--cache=*) cache=${1#*=}; shift ;;
	--package) package=${2:?--package needs a name}; shift 2 ;;
	--package=*) package=${1#*=}; shift ;;
	--deb) deb=${2:?--deb needs a file}; shift 2 ;;
	--deb=*) deb=${1#*=}; shift ;;
	--force) force=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
[ -n "$out" ] || { usage >&2; die "--out DIR is required"; }
[ -n "$cache" ] || cache=$(default_cache)

for tool in dpkg dpkg-deb lz4 readelf depmod grep sha256sum; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found (apt-get install dpkg lz4 binutils kmod grep coreutils)"
done

sha256_of() {
	sha256sum "$1" | cut -d' ' -f1
}

# "PACKAGE VERSION" to download: for a metapackage the versioned
# linux-image-<abi>-cloud-amd64 its candidate depends on (with the exact
# version it pins), else the package's own candidate.  One apt-cache call:
# without a binary cache each call re-reads the package lists (~1 s).
resolve_package() {
	local name=$1 stanza ver dep
	stanza=$(apt-cache show --no-all-versions "$name" 2>/dev/null) || return 1
	ver=$(sed -n '/^Version: /{s///;p;q}' <<<"$stanza")
	[ -n "$ver" ] || return 1
	if [[ $name =~ ^linux-image-[0-9] ]]; then
		echo "$name $ver"
		return 0
	fi
	dep=$(sed -n 's/^Depends: //p' <<<"$stanza" | tr ',' '\n' |
		sed -n 's/^ *\(linux-image-[0-9][^ ]*\) *(= *\([^)]*\)).*/\1 \2/p' |
		grep -v -- '-unsigned ' | head -n 1) || true
	[ -n "$dep" ] || return 1
	echo "$dep"
}

# The .deb in the cache, downloaded when missing.  apt-get download names it
# <pkg>_<version with ':' as %3a>_<arch>.deb and checks it against the
# (signed) index; a cached file is trusted by name.
fetch_deb() {
	local name=$1 ver=$2 file log
	file="$cache/${name}_${ver//:/%3a}_amd64.deb"
	if [ -s "$file" ]; then
		say "cached $file"
		echo "$file"
		return 0
	fi
	say "downloading $name=$ver"
	# apt warns when _apt cannot write the directory and then downloads
	# as root anyway.
	if ! log=$(cd "$cache" && apt-get download -q "$name=$ver" 2>&1); then
		echo "$log" >&2
		die "apt-get download $name=$ver failed"
	fi
	grep -v -e '^W: Download is performed unsandboxed' -e '^$' <<<"$log" >&2 || true
	[ -s "$file" ] || die "apt-get download did not write $file"
	echo "$file"
}

mkdir -p "$cache" "$out"
cache=$(cd "$cache" && pwd)
out=$(cd "$out" && pwd)

if [ -n "$deb" ]; then
	[ -f "$deb" ] || die "$deb: no such file"
	say "using $deb"
else
	if real=$(resolve_package "$package"); then
		deb=$(fetch_deb "${real% *}" "${real#* }")
	else
		# Offline: the newest cached kernel of this flavour.
		pattern="linux-image-[0-9]*-cloud-amd64_*_amd64.deb"
		if [[ $package =~ ^linux-image-[0-9] ]]; then
			pattern="${package}_*_amd64.deb"
		fi
		deb=$(find "$cache" -maxdepth 1 -name "$pattern" -printf '%f\n' |
			sort -V | tail -n 1)
		[ -n "$deb" ] || die "apt knows no candidate for $package and" \
			"$cache holds no cached kernel .deb (run 'apt-get update'" \
			"and check the Debian sources, or pass --deb FILE)"
		deb="$cache/$deb"
		say "no apt candidate for $package; using cached $deb"
	fi
fi

deb_sha=$(sha256_of "$deb")
self_sha=$(sha256_of "${BASH_SOURCE[0]}")
pkg_name=$(dpkg-deb -f "$deb" Package)
pkg_version=$(dpkg-deb -f "$deb" Version)
stamp="package=$pkg_name
version=$pkg_version
deb_sha256=$deb_sha
script_sha256=$self_sha"

if [ "$force" -eq 0 ] && [ -f "$out/kernel.stamp" ] &&
	[ "$(cat "$out/kernel.stamp")" = "$stamp" ] &&
	[ -f "$out/vmlinux" ] && [ -f "$out/vmlinuz" ] &&
	[ -f "$out/kernel-modules/modules.dep" ]; then
	say "$out is up to date ($pkg_name $pkg_version)"
	exit 0
fi

tmp=$(mktemp -d "$out/.make-kernel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

t0=$(date +%s.%N)
say "unpacking $pkg_name $pkg_version"
dpkg -x "$deb" "$tmp/root"

shopt -s nullglob
images=("$tmp"/root/boot/vmlinuz-*)
shopt -u nullglob
[ "${#images[@]}" -eq 1 ] || die "$deb: expected one /boot/vmlinuz-*, found ${#images[@]}"
bzimage=${images[0]}
release=${bzimage##*/vmlinuz-}
moddir="$tmp/root/lib/modules/$release"
[ -d "$moddir" ] || die "$deb: no /lib/modules/$release"
[ -f "$tmp/root/boot/config-$release" ] || die "$deb: no /boot/config-$release"

# A bzImage has "HdrS" at offset 0x202.
[ "$(dd if="$bzimage" bs=1 skip=514 count=4 status=none)" = "HdrS" ] ||
	die "$bzimage is not a bzImage (no HdrS header)"

# 0 if FILE is an x86-64 ELF with the Xen PVH entry note.
check_vmlinux() {
	local file=$1 hdr notes
	hdr=$(readelf -h "$file" 2>/dev/null) || return 1
	grep -q 'Class: *ELF64' <<<"$hdr" || return 1
	grep -q 'Machine: *Advanced Micro Devices X86-64' <<<"$hdr" || return 1
	notes=$(readelf -W -n "$file" 2>/dev/null) || return 1
	grep -Eq '^[[:space:]]*Xen[[:space:]]+0x[0-9a-f]+[[:space:]]+(Unknown note type: \(0x00000012\)|.*PHYS32_ENTRY)' \
		<<<"$notes"
}

# Try every LZ4 magic in the image: the first that decompresses to a valid
# kernel wins.  lz4 exits non-zero on the bytes after the frame (the
# decompressor's size trailer and the rest of the image); the output is
# checked instead.
mapfile -t offsets < <(LC_ALL=C grep -obUaP '\x02\x21\x4c\x18' "$bzimage" | cut -d: -f1)
[ "${#offsets[@]}" -gt 0 ] ||
	die "$bzimage: no LZ4 frame magic (02 21 4c 18); the payload is not LZ4"
found=""
for off in "${offsets[@]}"; do
	tail -c +"$((off + 1))" "$bzimage" | lz4 -dc >"$tmp/vmlinux" 2>/dev/null || true
	if [ -s "$tmp/vmlinux" ] && check_vmlinux "$tmp/vmlinux"; then
		found=$off
		break
	fi
done
if [ -z "$found" ]; then
	if [ -s "$tmp/vmlinux" ] && readelf -h "$tmp/vmlinux" >/dev/null 2>&1; then
		die "$bzimage: the LZ4 payload is an ELF but not an x86-64 kernel with" \
			"the Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY, 0x12); Firecracker cannot boot it"
	fi
	die "$bzimage: no LZ4 frame at ${offsets[*]} decompresses to an ELF kernel"
fi
t1=$(date +%s.%N)
say "vmlinux: $(stat -c %s "$tmp/vmlinux") bytes from the LZ4 frame at offset $found" \
	"($(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s incl. unpack)"

# The package ships no modules.dep: depmod makes it in the unpacked tree.
depmod -b "$tmp/root" "$release" ||
	die "depmod failed for $release"
[ -f "$moddir/modules.dep" ] || die "depmod wrote no modules.dep"

# Install: replace the old outputs, the stamp last.
rm -f "$out/kernel.stamp"
rm -rf "$out/kernel-modules"
mv "$moddir" "$out/kernel-modules"
mv "$tmp/vmlinux" "$out/vmlinux"
cp "$bzimage" "$out/vmlinuz.new" && mv "$out/vmlinuz.new" "$out/vmlinuz"
cp "$tmp/root/boot/config-$release" "$out/config"
if [ -f "$tmp/root/boot/System.map-$release" ]; then
	cp "$tmp/root/boot/System.map-$release" "$out/System.map"
fi
echo "$release" >"$out/kernel.release"
echo "$stamp" >"$out/kernel.stamp"
t2=$(date +%s.%N)
say "done: $out ($pkg_name $pkg_version, release $release," \
	"$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s)"
