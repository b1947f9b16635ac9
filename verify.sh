#!/usr/bin/env bash
# verify.sh - smoke test of a real VM through banger (needs root, the
# runtime bundle and a VMM: see `banger doctor`).
#
#   ./verify.sh [--image NAME] [--keep]
#
# doctor; create a VM; SSH in with the bundle key; health; write a file
# under /root; stop; start; the file is still there; plant a stale nested
# /root/root layout, restart, and check it was repaired (health reports
# "repaired"); delete; and check nothing is left: no VMM or vsock helper
# process, no TAP (tap-pool-* aside), no nft rules, no VM directory.
set -euo pipefail

top=$(cd "$(dirname "$0")" && pwd)
cd "$top"
banger=./banger
key=runtime/id_ed25519
image=default
keep=0
name=verify-$$

while [ $# -gt 0 ]; do
	case "$1" in
	--image) image=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "verify.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $((pass + fail)) - $*"; }
bad() { fail=$((fail + 1)); echo "not ok $((pass + fail)) - $*"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}

cleanup() {
	if [ "$keep" = 0 ] && "$banger" vm show "$name" >/dev/null 2>&1; then
		"$banger" -q vm delete --force "$name" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

vm_ssh() {
	ssh -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no \
	    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 \
	    "root@$ip" "$@"
}

wait_ssh() {
	for _ in $(seq 1 60); do
		vm_ssh true 2>/dev/null && return 0
		sleep 2
	done
	return 1
}

# remote_is EXPECTED COMMAND: the VM's output of COMMAND is EXPECTED.
remote_is() {
	[ "$(vm_ssh "$2")" = "$1" ]
}

# health_is JQ-FILTER: the health body satisfies the filter.
health_is() {
	"$banger" --json vm health "$name" | jq -e "$1"
}

if [ ! -x "$banger" ] || [ ! -r "$key" ]; then
	echo "verify.sh: run make build and make runtime-bundle first" >&2
	exit 1
fi

check "doctor has no failing check" "$banger" doctor
if ! "$banger" -q vm create --name "$name" --image "$image" --vcpus 2 --memory 1024; then
	bad "create $name from $image"
	exit 1
fi
ok "create $name from $image"
ip=$("$banger" --json vm show "$name" | jq -r '.status.ip')
check "ssh answers at $ip" wait_ssh
# shellcheck disable=SC2016 # expands in the guest
check "root's shell is bash" remote_is /bin/bash 'echo $SHELL'
check "health is ok" health_is '.status == "ok"'
token=$(date +%s%N)
check "write a file under /root" vm_ssh "echo $token > /root/verify-token && sync"
check "stop" "$banger" -q vm stop "$name"
check "start" "$banger" -q vm start "$name"
check "ssh after start" wait_ssh
check "the file under /root survived" remote_is "$token" 'cat /root/verify-token'
# A stale copy looks like a home directory (the repair step leaves a
# project that merely is called "root" alone): give it a shell history.
check "plant a stale /root/root layout" vm_ssh "test ! -e /root/.bash_history && mkdir -p /root/root/nested && echo planted > /root/root/nested/file && echo ls > /root/root/.bash_history && sync"
check "restart" "$banger" -q vm restart "$name"
check "ssh after restart" wait_ssh
check "the nested layout was moved up" vm_ssh "test -f /root/nested/file && test -f /root/.bash_history && test ! -e /root/root"
check "health reports the repair" health_is '.agent.workdisk.layout == "repaired"' 
id=$("$banger" --json vm show "$name" | jq -r .id)
check "delete" "$banger" -q vm delete --force "$name"
no_process() { # no process mentions the VM's directory ([v] keeps pgrep off itself)
	! pgrep -f "[v]ms/$id" >/dev/null
}
check "no VMM process left" no_process
check "no TAP left" sh -c "! ip -o link show | grep -q 'bt-${id:0:12}'"
check "no nft rules left for it" sh -c "! nft list table inet banger 2>/dev/null | grep -q \"$ip \""
check "no VM directory left" sh -c "! ls -d /var/lib/banger/vms/$id 2>/dev/null"
echo "# $pass passed, $fail failed"
[ "$fail" = 0 ]
