#!/bin/sh
# Install what banger needs to build and test on Debian (bookworm or newer).
# Idempotent; needs root (or sudo).
set -eu

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

# libarchive-dev and the -dev packages after it: the static libraries the
# agent links with (libarchive-dev itself does not pull them in).
PKGS="build-essential pkg-config
libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libsqlite3-dev
libnl-3-dev libnl-route-3-dev libnftables-dev libldns-dev libsystemd-dev nettle-dev
libarchive-dev libacl1-dev libbz2-dev liblz4-dev liblzma-dev libzstd-dev zlib1g-dev
libxml2-dev libicu-dev
e2fsprogs util-linux procps iproute2 nftables dnsutils curl file jq
python3 python3-pytest python3-requests python3-requests-unixsocket
python3-jsonschema python3-yaml
qemu-system-x86 cpio kmod lz4 binutils xz-utils zstd openssh-client
mmdebstrap git
shellcheck xfsprogs
libncurses-dev tmux systemd zsh"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
# Node.js may come from Debian or from elsewhere (with its own npm).
if ! command -v npm >/dev/null 2>&1; then
	missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# Debian 12's nodejs is 18.x; the TypeScript client (undici 6) needs 18.17+.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
	process.exit(a > 18 || (a === 18 && b >= 17) ? 0 : 1)'; then
	echo "deps: Node.js 18.17 or newer is needed, found $(node --version 2>/dev/null || echo none)" >&2
	exit 1
fi

# Redocly CLI (pinned in package.json) for `make lint`.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$here/node_modules/.bin/redocly" ]; then
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The TypeScript client's generator, compiler and runtime dependencies
# (pinned in clients/typescript/package-lock.json) for `make check-sdk` and
# `make test-sdk`; reinstalled when what is there does not match the lock.
sdk="$here/clients/typescript"
if ! (cd "$sdk" && npm ls --all >/dev/null 2>&1); then
	(cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error)
fi
