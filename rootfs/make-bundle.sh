#!/usr/bin/env bash
# make-bundle.sh [--out DIR] [--cache DIR] [--agent PATH] [--skip-rootfs] [--force]
#
# Fill banger's runtime bundle directory (default: runtime/ of this checkout)
# and write DIR/bundle.json; `make runtime-bundle` runs this.  Two modes:
#
# 1. From a manifest: RUNTIME_MANIFEST=PATH (a local JSON file) names every
#    part by URL and sha256.  Each part is downloaded with curl (https://,
#    http:// and file:// URLs) into a staging directory next to DIR and
#    checked.  A missing required part, a failed download or a checksum
#    mismatch stops the run with an error naming the part (and the expected
#    and actual sha256), and DIR is left exactly as it was.  Only when every
#    part has verified are they moved into DIR and bundle.json written.
#
#    {
#      "parts": {
#        "kernel":    { "url": "file:///srv/banger/vmlinux", "sha256": "<64 hex>" },
#        "initrd":    { "url": "https://example.org/initrd.img", "sha256": "..." },
#        "rootfs":    { "url": "https://example.org/rootfs-docker.ext4.zst",
#                       "sha256": "...", "compression": "zstd" },
#        "work_seed": { "url": "...", "sha256": "..." },
#        "agent":     { "url": "...", "sha256": "..." }
#      },
#      "bundle": { "vmm": "auto", "agent_port": 1024 }
#    }
#
#    parts (kernel, initrd, rootfs and work_seed are required):
#      name         file in DIR (default)       bundle.json key
#      kernel       vmlinux                     kernel
#      initrd       initrd.img                  initrd
#      rootfs       rootfs-docker.ext4          rootfs
#      work_seed    work-seed.ext4              work_seed
#      agent        banger-vsock-agent          agent  ("ping_helper" is read
#                                                       as agent)
#      ssh_key      id_ed25519                  ssh_key
#      ssh_key_pub  id_ed25519.pub              -
#      firecracker  firecracker                 firecracker
#      qemu         qemu-system-x86_64          qemu
#      vhost_user_vsock  vhost-device-vsock     vhost_user_vsock
#      any other    (needs "name")              -
#    part fields: "url" and "sha256" (of the bytes downloaded) are required;
#      "name" puts the file elsewhere in DIR (a relative path, which
#      bundle.json then uses); "compression": "gzip" | "xz" | "zstd" | "none"
#      is undone after the check (disk images are written sparse);
#      "mode" (octal string) defaults to 0755 for programs, 0600 for ssh_key,
#      0644 otherwise.
#    "bundle" (optional): bundle.json fields that override what this script
#      works out (vmm, agent_port, or any part path).  The legacy keys
#      ping_helper and ping_port are accepted and written as agent and
#      agent_port.
#    Without an ssh_key part, the key is generated locally when DIR has
#    none; images from the manifest then need that public key (a private key
#    should not be published in an archive).
#
# 2. Assembled locally from Debian packages (no RUNTIME_MANIFEST):
#    - kernel: make-kernel.sh (bookworm cloud kernel; DIR/vmlinux and
#      DIR/vmlinuz), its tree kept in CACHE/kernel;
#    - initrd: make-initrd.sh (busybox-static + the virtio/vsock modules);
#    - an ed25519 key DIR/id_ed25519 (comment banger-bundle), made only when
#      missing; never commit it;
#    - rootfs and work seed: make-rootfs.sh --agent AGENT --pubkey
#      DIR/id_ed25519.pub --cache CACHE/rootfs (skipped by --skip-rootfs);
#    - the agent (AGENT, default runtime/banger-vsock-agent from `make build`)
#      copied in when DIR is not the place it was built;
#    - the VMMs found on this host: firecracker and qemu-system-x86_64 on
#      PATH, vhost-device-vsock in DIR/tools/ (or DIR/, or PATH).  A VMM in
#      DIR is named relatively; one found on PATH by its absolute path; one
#      not found keeps its default name, which bangerd looks up again when it
#      starts a VM.
#    Re-running is cheap: the kernel is not unpacked again while the .deb is
#    the same; the rootfs is not rebuilt while its inputs (make-rootfs.sh and
#    its data files, the agent, the public key, BANGER_DEBIAN_*/BANGER_TMUX_*)
#    are the same (make-rootfs.sh's own cache makes a rebuild faster too);
#    the initrd is deterministic and replaced only when its bytes change.
#    Debian updates are picked up with --force, which rebuilds everything.
#    New parts are made in the staging directory and moved in only when all
#    succeeded.
#
# In both modes bundle.json gets the keys of the guest contract, with part
# names relative to DIR; "vmm" and "agent_port" already set in an existing
# bundle.json (or its legacy ping_port) are kept unless the manifest says
# otherwise.  State for re-runs lives in DIR/.bundle/.
#
# Options:
#   --out DIR       bundle directory (default: runtime/ next to rootfs/)
#   --cache DIR     download and build cache (default /var/cache/banger as
#                   root, else ${XDG_CACHE_HOME:-~/.cache}/banger)
#   --agent PATH    guest agent binary (default runtime/banger-vsock-agent)
#   --manifest PATH same as RUNTIME_MANIFEST=PATH
#   --skip-rootfs   local mode: do not build the rootfs and work seed
#   --force         local mode: rebuild every part
#
# Environment: RUNTIME_MANIFEST (above); BANGER_MAKE_ROOTFS replaces
# rootfs/make-rootfs.sh (tests use a stand-in).
#
# Needs: bash, coreutils, curl, jq, flock (util-linux), ssh-keygen
# (openssh-client); for local mode also what make-kernel.sh and
# make-initrd.sh need (apt, dpkg, lz4, binutils, kmod, gzip) and
# make-rootfs.sh's own dependencies.
set -euo pipefail

prog=${0##*/}
set -o errtrace
trap 'echo "$prog: error: command failed (line $LINENO, exit $?)" >&2' ERR
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out="$repo/runtime"
cache=""
agent=""
manifest=${RUNTIME_MANIFEST:-}
make_rootfs=${BANGER_MAKE_ROOTFS:-$here/make-rootfs.sh}
skip_rootfs=0
force=0

die() {
	echo "$prog: error: $*" >&2
	exit 1
}

say() {
	echo "$prog: $*" >&2
}

usage() {
	echo "usage: $prog [--out DIR] [--cache DIR] [--agent PATH] [--manifest PATH] [--skip-rootfs] [--force]"
	echo "       RUNTIME_MANIFEST=PATH $prog [--out DIR]"
}

default_cache() {
	if [ "$(id -u)" -eq 0 ]; then
		echo /var/cache/banger
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/banger"
	fi
}

while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--cache) cache=${2:?--cache needs a directory}; shift 2 ;;
	--cache=*) cache=${1#*=}; shift ;;
	--agent) agent=${2:?--agent needs a file}; shift 2 ;;
	--agent=*) agent=${1#*=}; shift ;;
	--manifest) manifest=${2:?--manifest needs a file}; shift 2 ;;
	--manifest=*) manifest=${1#*=}; shift ;;
	--skip-rootfs) skip_rootfs=1; shift ;;
	--force) force=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done
[ -n "$cache" ] || cache=$(default_cache)
[ -n "$agent" ] || agent="$repo/runtime/banger-vsock-agent"

for tool in jq curl sha256sum flock ssh-keygen; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found (apt-get install jq curl coreutils util-linux openssh-client)"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
[ "$out" != / ] || die "--out / is not a bundle directory"
parent=$(dirname "$out")
base=$(basename "$out")

# One run at a time per bundle directory (a lock on the directory itself).
exec 9<"$out"
flock -n 9 || die "another $prog is working on $out"

stage=$(mktemp -d "$parent/.$base.staging.XXXXXX")
cleanup() {
	rm -rf "$stage"
}
trap cleanup EXIT

t_start=$(date +%s.%N)
elapsed() {
	awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

sha256_of() {
	sha256sum "$1" | cut -d' ' -f1
}

# Contract defaults: bundle.json key and file name per part.
declare -A default_name=(
	[kernel]=vmlinux [initrd]=initrd.img [rootfs]=rootfs-docker.ext4
	[work_seed]=work-seed.ext4 [agent]=banger-vsock-agent [ssh_key]=id_ed25519
	[ssh_key_pub]=id_ed25519.pub [firecracker]=firecracker
	[qemu]=qemu-system-x86_64 [vhost_user_vsock]=vhost-device-vsock
)
bundle_keys="vmm firecracker qemu vhost_user_vsock kernel initrd rootfs work_seed ssh_key agent agent_port"

# bundle.json values, filled by the mode and written by write_bundle_json.
declare -A bundle=()
for k in firecracker qemu vhost_user_vsock kernel initrd rootfs work_seed ssh_key agent; do
	bundle[$k]=${default_name[$k]}
done
bundle[vmm]=auto
bundle[agent_port]=1024

# Keep the user's vmm and agent_port from an existing bundle.json.
if [ -f "$out/bundle.json" ]; then
	if old=$(jq -r '[(.vmm // "auto"), ((.agent_port // .ping_port // 1024) | tostring)] | @tsv' \
		"$out/bundle.json" 2>/dev/null); then
		case "${old%%$'\t'*}" in
		auto | firecracker | qemu) bundle[vmm]=${old%%$'\t'*} ;;
		esac
		[[ ! ${old#*$'\t'} =~ ^[1-9][0-9]{0,9}$ ]] || bundle[agent_port]=${old#*$'\t'}
	else
		say "warning: $out/bundle.json is not valid JSON; it will be rewritten"
	fi
fi

# Files to move from the staging directory into DIR: "staged-path<TAB>name".
installs=()

# A relative path inside DIR, nothing that climbs out of it.
check_relpath() {
	local p=$1 what=$2
	case "/$p/" in
	*/../* | */./* | //*) die "$what: '$p' must be a relative path inside the bundle" ;;
	esac
	if [ -z "$p" ] || [ "$p" = bundle.json ]; then
		die "$what: bad file name '$p'"
	fi
	[[ $p != */ ]] || die "$what: '$p' is a directory name"
}

# VMMs: in DIR (relative), else on PATH (absolute), else the default name.
find_vmm() {
	local key=$1 name=${default_name[$1]} p
	if [ -n "${2:-}" ] && [ -x "$out/tools/$name" ]; then
		bundle[$key]="tools/$name"
	elif [ -x "$out/$name" ]; then
		bundle[$key]=$name
	elif p=$(command -v "$name" 2>/dev/null) && [ -n "$p" ]; then
		bundle[$key]=$p
	else
		bundle[$key]=$name
		say "note: $name not found on this host"
		return 0
	fi
	say "found $key: ${bundle[$key]}"
}

write_bundle_json() {
	local extra=${1:-'{}'} tmpf="$out/.bundle.json.$$"
	local -a args=()
	local k
	for k in $bundle_keys; do
		args+=(--arg "$k" "${bundle[$k]}")
	done
	# shellcheck disable=SC2016 # jq program
	jq -n "${args[@]}" --argjson extra "$extra" '
		{ vmm: $vmm, firecracker: $firecracker, qemu: $qemu,
		  vhost_user_vsock: $vhost_user_vsock, kernel: $kernel,
		  initrd: $initrd, rootfs: $rootfs, work_seed: $work_seed,
		  ssh_key: $ssh_key, agent: $agent,
		  agent_port: ($agent_port | tonumber) } + $extra' >"$tmpf"
	mv "$tmpf" "$out/bundle.json"
}

install_staged() {
	local entry src name
	for entry in "${installs[@]}"; do
		src=${entry%%$'\t'*}
		name=${entry#*$'\t'}
		mkdir -p "$(dirname "$out/$name")"
		mv -f "$src" "$out/$name"
	done
}

# The key pair in DIR, or a new one staged; sets pubkey to the public key.
pubkey=""
ensure_ssh_key() {
	if [ -f "$out/id_ed25519" ]; then
		pubkey="$out/id_ed25519.pub"
		if [ ! -f "$pubkey" ]; then
			pubkey="$stage/id_ed25519.pub"
			ssh-keygen -y -f "$out/id_ed25519" >"$pubkey" ||
				die "cannot read $out/id_ed25519"
			installs+=("$pubkey"$'\t'"id_ed25519.pub")
		fi
		return 0
	fi
	ssh-keygen -q -t ed25519 -N '' -C banger-bundle -f "$stage/id_ed25519" </dev/null >/dev/null
	installs+=("$stage/id_ed25519"$'\t'"id_ed25519" "$stage/id_ed25519.pub"$'\t'"id_ed25519.pub")
	pubkey="$stage/id_ed25519.pub"
	say "generated a new SSH key: $out/id_ed25519 (never commit it)"
}

# ---------------------------------------------------------------- manifest

decompress() {
	local how=$1 src=$2 dst=$3
	case "$how" in
	gzip) gzip -dc "$src" ;;
	xz) xz -dc "$src" ;;
	zstd)
		command -v zstd >/dev/null 2>&1 || die "zstd not found (apt-get install zstd)"
		zstd -qdc "$src"
		;;
	esac | dd of="$dst" bs=1M iflag=fullblock conv=sparse status=none
}

from_manifest() {
	local m=$1 rows kind part url want name how mode key extra problems n=0
	local -a parts=()
	local -A seen=() p_url=() p_sha=() p_name=() p_how=() p_mode=()
	[ -f "$m" ] || die "RUNTIME_MANIFEST: $m: no such file"
	say "manifest $m"

	# One jq pass reads and checks the manifest: a row per part, or errors.
	# shellcheck disable=SC2016 # jq program
	rows=$(jq -r '
		if type != "object" or (.parts | type) != "object" then
			"error\u001fnot a manifest (a JSON object with a \"parts\" object)"
		else
			.parts | to_entries[] |
			if (.value | type) == "object" and (.value.url | type) == "string"
				and (.value.sha256 | type) == "string" then
				["part", .key, .value.url, (.value.sha256 | ascii_downcase),
				 (.value.name // "" | tostring), (.value.compression // "none" | tostring),
				 (.value.mode // "" | tostring)]
				| if any(.[]; test("[\n\r\u001f]")) then
					"error\u001fpart \(.[1] | @json): control characters in a field"
				  else join("\u001f") end
			else "error\u001fpart \(.key | @json): needs \"url\" and \"sha256\" strings"
			end
		end' "$m" 2>&1) || die "$m: not valid JSON: $rows"
	# Fields are split on \x1f, not tabs: empty fields must stay fields.
	while IFS=$'\x1f' read -r kind part url want name how mode; do
		[ "$kind" = part ] || die "$m: $part"
		parts+=("$part")
		seen[$part]=1
		[[ $want =~ ^[0-9a-f]{64}$ ]] || die "part '$part': sha256 '$want' is not 64 hex digits"
		key=$part
		[ "$part" != ping_helper ] || key=agent
		if [ -z "$name" ]; then
			name=${default_name[$key]:-}
			[ -n "$name" ] || die "part '$part': unknown part; give it a \"name\""
		fi
		check_relpath "$name" "part '$part'"
		case "$how" in
		none | gzip | xz | zstd) ;;
		*) die "part '$part': unknown compression '$how'" ;;
		esac
		[ -z "$mode" ] || [[ $mode =~ ^0?[0-7]{3}$ ]] || die "part '$part': bad mode '$mode'"
		p_url[$part]=$url p_sha[$part]=$want p_name[$part]=$name p_how[$part]=$how p_mode[$part]=$mode
	done < <(printf '%s\n' "$rows" | sed '/^$/d')
	for part in kernel initrd rootfs work_seed; do
		[ -n "${seen[$part]:-}" ] ||
			die "$m: missing part '$part' (required: kernel, initrd, rootfs, work_seed); the bundle in $out was not changed"
	done

	# "bundle": legacy names in, new names out; only keys bangerd knows.
	# shellcheck disable=SC2016 # jq program
	extra=$(jq -c '(.bundle // {}) |
		if type != "object" then error("\"bundle\" must be an object") else . end
		| if has("ping_helper") then (.agent //= .ping_helper) | del(.ping_helper) else . end
		| if has("ping_port") then (.agent_port //= .ping_port) | del(.ping_port) else . end' \
		"$m" 2>&1) || die "$m: $extra"
	# shellcheck disable=SC2016 # jq program
	problems=$(jq -r --arg keys "$bundle_keys" '
		($keys | split(" ")) as $k
		| (keys[] | select(IN($k[]) | not) | "unknown key \(@json) (bangerd would refuse it)"),
		  (select(has("agent_port")) | .agent_port
			| select(type != "number" or . < 1 or . != floor)
			| "agent_port must be a positive integer"),
		  (select(has("vmm")) | .vmm | select(IN("auto", "firecracker", "qemu") | not)
			| "vmm must be auto, firecracker or qemu"),
		  (to_entries[] | select(.key != "agent_port" and (.value | type) != "string")
			| "\(.key) must be a string")' <<<"$extra")
	[ -z "$problems" ] || die "$m: bundle: ${problems%%$'\n'*}"

	for part in "${parts[@]}"; do
		url=${p_url[$part]} want=${p_sha[$part]} name=${p_name[$part]}
		how=${p_how[$part]} mode=${p_mode[$part]}
		key=$part
		[ "$part" != ping_helper ] || key=agent
		n=$((n + 1))
		say "[$n/${#parts[@]}] $part <- $url"
		local dl="$stage/part.$n"
		if [ "$how" = none ]; then
			# Straight to a sparse file: disk images stay sparse.
			if ! curl -fsSL --proto '=https,http,file' --retry 3 "$url" |
				dd of="$dl" bs=1M iflag=fullblock conv=sparse status=none; then
				die "part '$part': download failed: $url; the bundle in $out was not changed"
			fi
		else
			curl -fsSL --proto '=https,http,file' --retry 3 -o "$dl" "$url" ||
				die "part '$part': download failed: $url; the bundle in $out was not changed"
		fi
		got=$(sha256_of "$dl")
		if [ "$got" != "$want" ]; then
			die "part '$part': checksum mismatch for $url:" \
				"expected sha256 $want, got $got; the bundle in $out was not changed"
		fi
		if [ "$how" != none ]; then
			decompress "$how" "$dl" "$dl.out" || die "part '$part': $how decompression failed"
			mv "$dl.out" "$dl"
		fi
		if [ -z "$mode" ]; then
			case "$key" in
			agent | firecracker | qemu | vhost_user_vsock) mode=0755 ;;
			ssh_key) mode=0600 ;;
			*) mode=0644 ;;
			esac
		fi
		chmod "$mode" "$dl"
		installs+=("$dl"$'\t'"$name")
		if [ -n "${default_name[$key]:-}" ] && [ "$key" != ssh_key_pub ]; then
			bundle[$key]=$name
		fi
	done
	say "all ${#parts[@]} parts verified"

	[ -n "${seen[ssh_key]:-}" ] || ensure_ssh_key
	if [ -z "${seen[agent]:-}${seen[ping_helper]:-}" ] &&
		[ ! -e "$out/banger-vsock-agent" ] && [ -f "$agent" ]; then
		cp "$agent" "$stage/agent"
		installs+=("$stage/agent"$'\t'"banger-vsock-agent")
	fi
	for key in firecracker qemu vhost_user_vsock; do
		[ -n "${seen[$key]:-}" ] || find_vmm "$key" tools
	done

	install_staged
	mkdir -p "$out/.bundle"
	rm -f "$out/.bundle/kernel.stamp" "$out/.bundle/rootfs.stamp"
	cp "$m" "$out/.bundle/manifest.json"
	write_bundle_json "$extra"
}

# ---------------------------------------------------------------- local

# Stage FILE as NAME unless DIR/NAME already has the same bytes.
stage_if_changed() {
	local file=$1 name=$2
	if [ "$force" -eq 0 ] && [ -f "$out/$name" ] && cmp -s "$file" "$out/$name"; then
		say "$name unchanged"
		return 0
	fi
	installs+=("$file"$'\t'"$name")
	say "$name updated"
}

# What the rootfs is made from: make-rootfs.sh and the data files next to it
# (package list, versions, files/; not the other scripts nor void/), the
# agent, the public key and the BANGER_DEBIAN_* / BANGER_TMUX_* settings.
rootfs_inputs() {
	{
		echo "make-rootfs $(sha256_of "$make_rootfs")"
		echo "agent $(sha256_of "$agent")"
		echo "pubkey $(sha256_of "$pubkey")"
		(cd "$here" && find . -path ./void -prune -o -type f ! -regex '\./[^/]*\.sh' -print0 |
			LC_ALL=C sort -z | xargs -0 -r sha256sum)
		env | LC_ALL=C sort | grep -E '^BANGER_(DEBIAN|TMUX)_' || true
	} | sha256sum | cut -d' ' -f1
}

# Size and mtime of the two images in DIR: notices images replaced since.
image_ids() {
	echo "rootfs=$(stat -c '%s %Y' "$1/rootfs-docker.ext4")" \
		"seed=$(stat -c '%s %Y' "$1/work-seed.ext4")"
}

from_debian() {
	local t kdir kstamp rstamp
	local -a fflag=()
	[ "$force" -eq 0 ] || fflag=(--force)
	mkdir -p "$cache"
	cache=$(cd "$cache" && pwd)

	# Kernel.
	t=$(date +%s.%N)
	kdir="$cache/kernel/tree"
	"$here/make-kernel.sh" --out "$kdir" --cache "$cache/kernel" "${fflag[@]}"
	# The stamp names the .deb and the size and mtime of the vmlinux made
	# from it, so a vmlinux replaced since (by a manifest) is noticed.
	kstamp=$(cat "$kdir/kernel.stamp")
	if [ "$force" -eq 0 ] && [ -f "$out/vmlinux" ] && [ -f "$out/vmlinuz" ] &&
		[ -f "$out/.bundle/kernel.stamp" ] &&
		[ "$(cat "$out/.bundle/kernel.stamp")" = "$kstamp
vmlinux=$(stat -c '%s %Y' "$out/vmlinux")" ]; then
		say "vmlinux unchanged"
	else
		cp --reflink=auto "$kdir/vmlinux" "$stage/vmlinux"
		cp --reflink=auto "$kdir/vmlinuz" "$stage/vmlinuz"
		printf '%s\nvmlinux=%s\n' "$kstamp" "$(stat -c '%s %Y' "$stage/vmlinux")" \
			>"$stage/kernel.stamp"
		installs+=("$stage/vmlinux"$'\t'"vmlinux" "$stage/vmlinuz"$'\t'"vmlinuz"
			"$stage/kernel.stamp"$'\t'".bundle/kernel.stamp")
		say "vmlinux updated"
	fi
	say "kernel: $(elapsed "$t") s"

	# Initrd: deterministic, so an unchanged one has the same bytes.
	t=$(date +%s.%N)
	"$here/make-initrd.sh" --kernel-dir "$kdir" --out "$stage/initrd.img" --cache "$cache/initrd"
	stage_if_changed "$stage/initrd.img" initrd.img
	say "initrd: $(elapsed "$t") s"

	# Key, agent.
	ensure_ssh_key
	[ -f "$agent" ] || die "agent $agent missing (run 'make build' first, or pass --agent PATH)"
	if [ "$(readlink -f "$agent")" != "$(readlink -f "$out/banger-vsock-agent")" ]; then
		cp "$agent" "$stage/banger-vsock-agent"
		chmod 0755 "$stage/banger-vsock-agent"
		stage_if_changed "$stage/banger-vsock-agent" banger-vsock-agent
	fi

	# Rootfs and work seed.
	if [ "$skip_rootfs" -eq 1 ]; then
		say "rootfs: skipped (--skip-rootfs)"
	else
		[ -x "$make_rootfs" ] ||
			die "$make_rootfs missing (use --skip-rootfs to build the rest)"
		t=$(date +%s.%N)
		rstamp=$(rootfs_inputs)
		if [ "$force" -eq 0 ] && [ -f "$out/rootfs-docker.ext4" ] && [ -f "$out/work-seed.ext4" ] &&
			[ -f "$out/.bundle/rootfs.stamp" ] &&
			[ "$(cat "$out/.bundle/rootfs.stamp")" = "$rstamp
$(image_ids "$out")" ]; then
			say "rootfs-docker.ext4 unchanged (same inputs)"
			say "work-seed.ext4 unchanged (same inputs)"
		else
			mkdir -p "$stage/rootfs"
			"$make_rootfs" --out "$stage/rootfs" --agent "$agent" --pubkey "$pubkey" \
				--cache "$cache/rootfs" ||
				die "make-rootfs.sh failed; the bundle in $out was not changed"
			for f in rootfs-docker.ext4 work-seed.ext4; do
				[ -f "$stage/rootfs/$f" ] || die "make-rootfs.sh wrote no $f"
				installs+=("$stage/rootfs/$f"$'\t'"$f")
			done
			printf '%s\n%s\n' "$rstamp" "$(image_ids "$stage/rootfs")" >"$stage/rootfs.stamp"
			installs+=("$stage/rootfs.stamp"$'\t'".bundle/rootfs.stamp")
			say "rootfs-docker.ext4 and work-seed.ext4 updated"
		fi
		say "rootfs: $(elapsed "$t") s"
	fi

	find_vmm firecracker
	find_vmm qemu
	find_vmm vhost_user_vsock tools

	install_staged
	rm -f "$out/.bundle/manifest.json"
	write_bundle_json
}

if [ -n "$manifest" ]; then
	from_manifest "$manifest"
else
	from_debian
fi
say "wrote $out/bundle.json ($(elapsed "$t_start") s)"
