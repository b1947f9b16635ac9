#!/usr/bin/env bash
# fetch-vhost-device-vsock.sh --out DIR [--mirror URL] [--suite SUITE]... [--force]
#
# Put a working vhost-device-vsock at DIR/vhost-device-vsock: the vsock
# backend the QEMU driver uses where the host has no /dev/vhost-vsock.
#
# - When the host's own apt sources carry the package, it is used from PATH
#   or installed with apt-get, and DIR gets a symlink to it.
# - Otherwise (bookworm, or a release whose stable suite lacks it), the
#   package is downloaded with a private apt configuration in a temporary
#   directory (its own sources.list, lists, cache and state) from the first
#   Debian suite that has it, unpacked with dpkg -x, and only the binary is
#   copied to DIR.  Nothing is installed system-wide and the host's apt
#   state is not touched.  Suites tried: trixie, forky, sid (the package,
#   0.3.0, needs only libc6 >= 2.34 and libgcc-s1, so bookworm runs it);
#   --suite (repeatable) replaces that list.
#
# The mirror is the one the host already uses for Debian (from its apt
# sources); --mirror overrides it.  The binary must run (--version) or the
# script fails.  Re-running with a working DIR/vhost-device-vsock is a no-op
# unless --force is given.
set -euo pipefail

prog=${0##*/}
out=""
mirror=""
suites=()
force=0
pkg="vhost-device-vsock"
keyring="/usr/share/keyrings/debian-archive-keyring.gpg"

die() {
	echo "$prog: $*" >&2
	exit 1
}

usage() {
	echo "usage: $prog --out DIR [--mirror URL] [--suite SUITE]... [--force]"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--mirror) mirror=${2:?--mirror needs a URL}; shift 2 ;;
	--mirror=*) mirror=${1#*=}; shift ;;
	--suite) suites+=("${2:?--suite needs a name}"); shift 2 ;;
	--suite=*) suites+=("${1#*=}"); shift ;;
	--force) force=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
[ -n "$out" ] || { usage >&2; die "--out DIR is required"; }
[ ${#suites[@]} -gt 0 ] || suites=(trixie forky sid)

# The binary works when it answers --version (or at least --help).
check_binary() {
	local bin=$1 ver
	[ -x "$bin" ] || return 1
	if ver=$("$bin" --version 2>&1) || ver=$("$bin" --help 2>&1 | head -n 1); then
		echo "$prog: $bin: ${ver%%$'\n'*}"
		return 0
	fi
	return 1
}

mkdir -p "$out"
dest="$out/$pkg"
if [ "$force" -eq 0 ] && check_binary "$dest" >/dev/null 2>&1; then
	check_binary "$dest"
	exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
	sudo_cmd=(sudo)
fi

# Does the host's own apt know the package?  Then this is trixie or newer
# (or a backport is configured): use the distribution's package.
host_candidate() {
	apt-cache policy "$pkg" 2>/dev/null |
	    awk '/Candidate:/ { print $2; exit }'
}

cand=$(host_candidate)
if [ -n "$cand" ] && [ "$cand" != "(none)" ]; then
	if ! command -v "$pkg" >/dev/null 2>&1; then
		echo "$prog: installing $pkg $cand from the host's apt sources"
		DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
		    --no-install-recommends "$pkg"
	fi
	sys=$(command -v "$pkg") || die "$pkg is not on PATH after installing it"
	ln -sfn "$sys" "$dest"
	check_binary "$dest" || die "$dest ($sys) does not run"
	exit 0
fi

# The host's Debian mirror, from sources.list (one-line format) or
# *.sources (deb822): the first "deb" entry for the host's release suite.
host_codename() {
	# shellcheck disable=SC1091
	(. /etc/os-release && echo "${VERSION_CODENAME:-}")
}

host_mirror() {
	local codename=$1 f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v s="$codename" '
		    $1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) == s) { print $i; exit }
		    }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v s="$codename" '
		    function flush() {
			if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") &&
			    uris != "" && !done) {
				split(uris, u, " "); print u[1]; done = 1
			}
			types = ""; suites = ""; uris = ""
		    }
		    /^[ \t]*$/ { flush(); next }
		    /^#/ { next }
		    tolower($1) == "types:" { sub(/^[^:]*:[ \t]*/, ""); types = $0 }
		    tolower($1) == "suites:" { sub(/^[^:]*:[ \t]*/, ""); suites = $0 }
		    tolower($1) == "uris:" { sub(/^[^:]*:[ \t]*/, ""); uris = $0 }
		    END { flush() }' "$f"
	done
}

if [ -z "$mirror" ]; then
	codename=$(host_codename)
	[ -n "$codename" ] || die "cannot tell the Debian release from /etc/os-release; pass --mirror URL"
	mirror=$(host_mirror "$codename" | head -n 1)
	[ -n "$mirror" ] || die "no Debian mirror for '$codename' in the apt sources; pass --mirror URL"
fi
[ -r "$keyring" ] || die "$keyring is missing (apt-get install debian-archive-keyring)"
for tool in apt-get dpkg; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fetch-vhost-vsock.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt fetches as the unprivileged _apt user: it must be able to enter.
chmod 0755 "$tmp"
mkdir -p "$tmp/etc/preferences.d" "$tmp/state/lists/partial" \
    "$tmp/cache/archives/partial" "$tmp/deb" "$tmp/root"
touch "$tmp/state/status"
chmod -R a+rX "$tmp"
# apt-get download writes into the current directory as _apt when it can.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
	chown _apt "$tmp/deb"
fi

apt_opts=(
	-o "Dir::Etc::SourceList=$tmp/etc/sources.list"
	-o "Dir::Etc::SourceParts=-"
	-o "Dir::Etc::Preferences=$tmp/etc/preferences"
	-o "Dir::Etc::PreferencesParts=$tmp/etc/preferences.d"
	-o "Dir::State=$tmp/state"
	-o "Dir::State::status=$tmp/state/status"
	-o "Dir::Cache=$tmp/cache"
	-o "Acquire::Languages=none"
)

# One suite at a time, in order: the first that carries the package wins.
found=""
for s in "${suites[@]}"; do
	printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$s" \
	    >"$tmp/etc/sources.list"
	echo "$prog: looking for $pkg in Debian $s ($mirror), private apt state"
	if ! apt-get "${apt_opts[@]}" -qq update; then
		echo "$prog: apt-get update for $s failed; trying the next suite" >&2
		continue
	fi
	ver=$(apt-cache "${apt_opts[@]}" policy "$pkg" 2>/dev/null |
	    awk '/Candidate:/ { print $2; exit }')
	if [ -n "$ver" ] && [ "$ver" != "(none)" ]; then
		found=$s
		break
	fi
	echo "$prog: $s has no $pkg"
done
[ -n "$found" ] || die "no suite of ${suites[*]} at $mirror has $pkg"

echo "$prog: downloading $pkg $ver from $found"
(cd "$tmp/deb" && apt-get "${apt_opts[@]}" -qq download "$pkg=$ver")
deb=$(find "$tmp/deb" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
[ -n "$deb" ] || die "apt-get download produced no .deb"
echo "$prog: unpacking ${deb##*/}"
dpkg -x "$deb" "$tmp/root"
bin="$tmp/root/usr/bin/$pkg"
[ -x "$bin" ] || die "${deb##*/} has no usr/bin/$pkg"

install -m 0755 "$bin" "$dest.tmp"
mv -f "$dest.tmp" "$dest"
check_binary "$dest" || die "$dest does not run on this host (ldd: $(ldd "$dest" 2>&1 | tr '\n' ' '))"
