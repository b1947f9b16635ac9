#!/usr/bin/env bash
# verify.sh - smoke test of a real VM through banger (needs root, the
# runtime bundle and a VMM: see `banger doctor`).
#
#   ./verify.sh [--nat] [--image NAME] [--keep]
#
# Talks to whatever bangerd `banger` finds (`make verify` starts one of
# its own): user, address, key and known hosts come from it (`banger vm
# ssh`), so does the state directory; nothing is read from this checkout's
# runtime/.  A failing check prints why: the last lines of the command's
# error (ssh's, for a check in the guest) and the end of the VM's console.
#
# doctor; create a VM; SSH in with the daemon's key; health; write a file
# under /root; stop; start; the file is still there; plant a stale nested
# /root/root layout, restart, and check it was repaired (health reports
# "repaired"); delete; and check nothing is left: no VMM or vsock helper
# process, no TAP (tap-pool-* aside), no nft rules, no VM directory.
#
# --nat: the VM is created with NAT, and a network namespace standing in
# for the outside world (a veth pair on 198.51.100.0/30, a TCP listener
# that answers with the address it sees) checks that the guest reaches it
# masqueraded to the host's address, that it cannot once NAT is switched
# off, and that the VM's rules are gone while it is stopped.  bangerd
# masquerades a NAT VM's traffic out of every interface but the bridge, so
# this works whatever the host's default route is.
set -euo pipefail

top=$(cd "$(dirname "$0")" && pwd)
cd "$top"
banger=${BANGER:-./banger}
image=default
keep=0
nat=0
name=verify-$$

while [ $# -gt 0 ]; do
	case "$1" in
	--image) image=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--nat) nat=1; shift ;;
	-h|--help) sed -n '2,25p' "$0"; exit 0 ;;
	*) echo "verify.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $((pass + fail)) - $*"; }
bad() { fail=$((fail + 1)); echo "not ok $((pass + fail)) - $*"; }
# The end of the VM's console, as comments (once the VM exists).
console_tail() { # console_tail LINES
	local con l
	"$banger" vm show "$name" >/dev/null 2>&1 || return 0
	con=$("$banger" vm console --tail 4000 "$name" 2>&1) || true
	echo "# console of $name, last lines:"
	while IFS= read -r l; do echo "#   $l"; done < <(tail -n "$1" <<<"$con")
}
try() { # try DESCRIPTION COMMAND...: ok or not ok; on failure, why (the
	# last lines of the command's output and error) as comments.  Returns
	# the command's status.
	local what=$1 out l rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" = 0 ]; then
		ok "$what"
		return 0
	fi
	bad "$what"
	[ -n "$out" ] || out="(no output; exit status $rc)"
	while IFS= read -r l; do echo "# $l"; done < <(tail -n 5 <<<"$out")
	return "$rc"
}
check() { # check DESCRIPTION COMMAND...: the run goes on after a failure.
	try "$@" || true
}
vcheck() { # vcheck DESCRIPTION COMMAND...: a check in or of the guest;
	# its failure also shows the end of the console.
	try "$@" || console_tail 15
}
boot() { # boot DESCRIPTION COMMAND...: create/start/restart; a failure
	# shows more of the console and ends the run (nothing after can work).
	try "$@" && return 0
	console_tail 30
	return 1
}

# The outside world for --nat: a namespace behind a veth pair.
out_ns=banger-verify-$$
out_host=198.51.100.1
out_addr=198.51.100.2
out_port=8089
listener_pid=
# Answers every connection with the peer address it sees, then closes.
listener_py='import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
while True:
    c, peer = s.accept()
    c.sendall((peer[0] + "\n").encode())
    c.close()'

outside_up() {
	local py=/usr/bin/python3
	[ -x "$py" ] || py=python3
	ip netns add "$out_ns" &&
	ip link add "bvo$$" type veth peer name "bvi$$" &&
	ip link set "bvi$$" netns "$out_ns" &&
	ip addr add "$out_host/30" dev "bvo$$" &&
	ip link set "bvo$$" up &&
	ip -n "$out_ns" addr add "$out_addr/30" dev "bvi$$" &&
	ip -n "$out_ns" link set "bvi$$" up &&
	ip -n "$out_ns" link set lo up || return 1
	ip netns exec "$out_ns" "$py" -c "$listener_py" "$out_addr" "$out_port" &
	listener_pid=$!
	for _ in $(seq 1 50); do
		[ -n "$(ip netns exec "$out_ns" ss -Hltn "sport = :$out_port")" ] && return 0
		sleep 0.1
	done
	return 1
}

outside_down() {
	if [ -n "$listener_pid" ]; then
		kill "$listener_pid" 2>/dev/null || true
		wait "$listener_pid" 2>/dev/null || true
		listener_pid=
	fi
	ip link del "bvo$$" 2>/dev/null || true
	ip netns del "$out_ns" 2>/dev/null || true
}

cleanup() {
	if [ "$keep" = 0 ] && "$banger" vm show "$name" >/dev/null 2>&1; then
		"$banger" -q vm delete --force "$name" >/dev/null 2>&1 || true
	fi
	[ "$nat" = 0 ] || outside_down
}
trap cleanup EXIT

# A command in the guest, as bangerd says to log in (user, address, the
# bundle's key, the VM's own known_hosts).
vm_ssh() {
	"$banger" vm ssh "$name" -- "$@"
}

# Running means ready (the agent saw sshd listening), so one try; an image
# whose agent predates readiness gets a few more, with the last error kept.
wait_ssh() {
	local err
	for _ in $(seq 1 "${VERIFY_SSH_TRIES:-10}"); do
		err=$(vm_ssh true 2>&1) && return 0
		sleep 2
	done
	printf '%s\n' "$err" >&2
	return 1
}

# remote_is EXPECTED COMMAND: the VM's output of COMMAND is EXPECTED.
remote_is() {
	[ "$(vm_ssh "$2")" = "$1" ]
}

# The address the outside listener saw the guest connect from (bash's
# /dev/tcp: every image has bash, not every image has curl).
outside_sees() {
	# shellcheck disable=SC2016 # expands in the guest
	vm_ssh "timeout 5 bash -c 'exec 3<>/dev/tcp/$out_addr/$out_port && head -n1 <&3'"
}
reaches_outside() { [ "$(outside_sees)" = "$out_host" ]; }
cannot_reach_outside() { ! outside_sees; }
# Read whole before grep: with pipefail, `nft ... | grep -q` fails when
# grep exits before nft has written everything (SIGPIPE).
in_nat_set() {
	local table
	table=$(nft list table inet banger 2>/dev/null) || table=
	grep -q "$ip " <<<"$table"
}
not_in_nat_set() { ! in_nat_set; }

# health_is JQ-FILTER: the health body satisfies the filter.
health_is() {
	"$banger" --json vm health "$name" | jq -e "$1"
}

if [ ! -x "$banger" ]; then
	echo "verify.sh: $banger is missing: run make build first" >&2
	exit 1
fi
# Which bangerd answers, and where it keeps VMs.
if ! daemon=$("$banger" --json version) ||
	! state_dir=$(jq -er '.daemon.state_dir' <<<"$daemon"); then
	echo "verify.sh: no bangerd answers (or it is too old to say where it" \
	    "keeps state): $daemon" >&2
	exit 1
fi
echo "# bangerd pid $(jq -r .daemon.pid <<<"$daemon") ($(jq -r .daemon.binary <<<"$daemon")), runtime $(jq -r .daemon.runtime_dir <<<"$daemon"), state $state_dir"

check "doctor has no failing check" "$banger" doctor
create_flags=()
if [ "$nat" = 1 ]; then
	create_flags=(--nat)
	if ! outside_up; then
		bad "set up the outside-world namespace $out_ns"
		exit 1
	fi
	ok "outside world at $out_addr:$out_port (namespace $out_ns)"
fi
boot "create $name from $image" "$banger" -q vm create --name "$name" \
    --image "$image" --vcpus 2 --memory 1024 "${create_flags[@]}" || exit 1
ip=$("$banger" --json vm show "$name" | jq -r '.status.ip')
vcheck "ssh answers at $ip" wait_ssh
# shellcheck disable=SC2016 # expands in the guest
vcheck "root's shell is bash" remote_is /bin/bash 'echo $SHELL'
vcheck "health is ok" health_is '.status == "ok"'
token=$(date +%s%N)
vcheck "write a file under /root" vm_ssh "echo $token > /root/verify-token && sync"
if [ "$nat" = 1 ]; then
	check "NAT: the VM's address is in the nft set" in_nat_set
	vcheck "NAT: the guest reaches the outside world as $out_host" reaches_outside
	check "NAT: switch it off" "$banger" -q vm set --no-nat "$name"
	check "NAT: off, the VM's rules are gone" not_in_nat_set
	vcheck "NAT: off, the outside world is unreachable" cannot_reach_outside
	check "NAT: switch it on again" "$banger" -q vm set --nat "$name"
	vcheck "NAT: on again, the guest reaches the outside world" reaches_outside
fi
vcheck "stop" "$banger" -q vm stop "$name"
stopped_clean() { "$banger" --json vm show "$name" | jq -e '.status.last_stop.result == "clean"'; }
vcheck "the stop was clean (the guest shut down)" stopped_clean
[ "$nat" = 0 ] || check "NAT: stopped, the VM's rules are gone" not_in_nat_set
boot "start" "$banger" -q vm start "$name"
vcheck "ssh after start" wait_ssh
[ "$nat" = 0 ] || vcheck "NAT: started, the guest reaches the outside world" reaches_outside
vcheck "the file under /root survived" remote_is "$token" 'cat /root/verify-token'
# A stale copy looks like a home directory (the repair step leaves a
# project that merely is called "root" alone): give it a shell history.
vcheck "plant a stale /root/root layout" vm_ssh "test ! -e /root/.bash_history && mkdir -p /root/root/nested && echo planted > /root/root/nested/file && echo ls > /root/root/.bash_history && sync"
boot "restart" "$banger" -q vm restart "$name"
vcheck "ssh after restart" wait_ssh
vcheck "the nested layout was moved up" vm_ssh "test -f /root/nested/file && test -f /root/.bash_history && test ! -e /root/root"
vcheck "health reports the repair" health_is '.agent.workdisk.layout == "repaired"' 
id=$("$banger" --json vm show "$name" | jq -r .id)
check "delete" "$banger" -q vm delete --force "$name"
no_process() { # no process mentions the VM's directory ([v] keeps pgrep off itself)
	! pgrep -f "[v]ms/$id" >/dev/null
}
check "no VMM process left" no_process
check "no TAP left" sh -c "! ip -o link show | grep -q 'bt-${id:0:12}'"
check "no nft rules left for it" sh -c "! nft list table inet banger 2>/dev/null | grep -q \"$ip \""
check "no VM directory left" test ! -e "$state_dir/vms/$id"
echo "# $pass passed, $fail failed"
[ "$fail" = 0 ]
