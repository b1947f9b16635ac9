#!/usr/bin/env bash
# run-demo.sh - the main job behind `make run`: make sure a VM named demo
# runs from the default image, is healthy, and answers over SSH with the
# runtime bundle's key.  Re-runnable: an existing demo is reused (started
# when stopped).  Expects `make build` and `make runtime-bundle` done.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
banger=./banger
name=${DEMO_NAME:-demo}
image=${DEMO_IMAGE:-default}
key=runtime/id_ed25519

say() { printf '==> %s\n' "$*"; }
die() {
	printf 'run-demo: %s\n' "$*" >&2
	exit 1
}

[ -x "$banger" ] || die "./banger is missing: run make build"
[ -r "$key" ] || die "$key is missing: run make runtime-bundle"

say "doctor"
"$banger" doctor || true

if state=$("$banger" --json vm show "$name" 2>/dev/null); then
	case $(printf '%s' "$state" | jq -r .status.state) in
	running) say "vm $name is already running" ;;
	*)
		say "starting vm $name"
		"$banger" vm start "$name"
		;;
	esac
else
	say "creating vm $name from image $image"
	"$banger" vm create --name "$name" --image "$image" --vcpus 2 --memory 1024
fi

ip=$("$banger" --json vm show "$name" | jq -r '.status.ip // empty')
[ -n "$ip" ] || die "vm $name has no address (see: $banger doctor)"

say "banger vm ssh $name -- uname -a"
# Running means ready: the create or start above returned only once the
# guest's agent saw sshd listening, /root mounted and the network up, so
# one attempt is all it takes.
"$banger" vm ssh "$name" -- uname -a ||
	die "ssh to $name ($ip) failed (see: $banger vm console $name)"

say "health"
"$banger" vm health "$name"

say "vm $name is running at $ip ($name.vm); ssh -i $key root@$ip;" \
    "stop and delete it with: $banger vm delete --force $name"
