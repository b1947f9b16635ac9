# shellcheck shell=bash
# lib.sh - what the agent's black-box test scripts (tests/agent/test_*.sh)
# share: sourced after `set -euo pipefail` and `test_name=NAME`.
#
# Sets root (the repository), agent ($BANGER_AGENT, default
# runtime/banger-vsock-agent; bails out when it cannot run), py
# (/usr/bin/python3, else python3 on PATH) and tmp (a new directory,
# /tmp/banger-NAME-test.XXXXXX, removed on exit with every pid in pids
# killed first), and defines the TAP helpers: check, ok, not_ok and
# finish (the plan and a summary line; false when a check failed), jget,
# agent_answers and start_agent.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
agent=${BANGER_AGENT:-$root/runtime/banger-vsock-agent}
py=/usr/bin/python3
[[ -x $py ]] || py=python3

tmp=$(mktemp -d "/tmp/banger-${test_name:?}-test.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	chmod -R u+rwx "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { # check DESCRIPTION COMMAND...
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
finish() {
	echo "1..$n"
	echo "# $((n - failed)) passed, $failed failed"
	[[ $failed -eq 0 ]]
}

if [[ ! -x $agent ]]; then
	echo "Bail out! agent binary $agent not found (build it or set BANGER_AGENT)"
	exit 1
fi

# Value of a dotted path in a JSON file, JSON-encoded (strings unquoted).
jget() { # jget FILE a.b.c
	"$py" - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if isinstance(v, str) else json.dumps(v))
PY
}

# Wait until the agent on $sock answers (2 s at most).
agent_answers() {
	local i
	for ((i = 0; i < 100; i++)); do
		curl -s --max-time 1 --unix-socket "$sock" -o /dev/null \
			http://agent/healthz && return 0
		sleep 0.02
	done
	return 1
}

# An agent on $tmp/NAME.sock, without readiness checks unless ARGS ask for
# them, once it answers.
start_agent() { # start_agent NAME [ARGS...] -> sets sock, apid
	sock=$tmp/$1.sock
	"$agent" --listen "unix:$sock" --ready none "${@:2}" 2>>"$tmp/agent.log" &
	apid=$!
	pids+=("$apid")
	agent_answers
}
