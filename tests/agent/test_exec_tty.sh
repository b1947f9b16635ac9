#!/usr/bin/env bash
# test_exec_tty.sh - black-box tests of banger-vsock-agent's POST
# /exec?tty=1 (a command on a pseudo-terminal over an upgraded connection)
# over --listen unix:.
#
# The client is tty_client.py, run by /usr/bin/python3.  Prints TAP.  The
# binary is $BANGER_AGENT, default runtime/banger-vsock-agent.
set -euo pipefail

test_name=exec-tty
# shellcheck source=tests/agent/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# jtrue FILE EXPR: a Python expression over d (the JSON in FILE) holds.
jtrue() {
	"$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not eval(sys.argv[2]))' "$1" "$2" ||
		{ echo "# $(head -c 600 "$1")"; return 1; }
}

tty_run() { # tty_run OUTFILE ARGS...: tty_client.py on $sock
	"$py" "$root/tests/agent/tty_client.py" "$sock" "${@:2}" >"$1"
}

gone_within() { # gone_within PATTERN: no process matches within 3 s
	local i
	for ((i = 0; i < 150; i++)); do
		pgrep -f "$1" >/dev/null || return 0
		sleep 0.02
	done
	return 1
}

no_children() { # no_children PID: within 3 s, not even a zombie
	local i
	for ((i = 0; i < 150; i++)); do
		[[ -z $(ps -o pid= --ppid "$1") ]] && return 0
		sleep 0.02
	done
	ps -o pid,stat,args --ppid "$1" | sed 's/^/# /'
	return 1
}

# --- refusals ---
start_agent host
tty_run "$tmp/r1.json" -- true
check "tty=1 on a host socket without --allow-exec is 403" \
	jtrue "$tmp/r1.json" 'd["status"] == 403 and "--allow-exec" in d["error"]'
kill "$apid"

start_agent tty --allow-exec
tpid=$apid
tty_run "$tmp/r2.json" --no-upgrade -- true
check "tty=1 without the upgrade headers is 400, and says why" \
	jtrue "$tmp/r2.json" 'd["status"] == 400 and "Upgrade: tcp" in d["error"]'
tty_run "$tmp/r3.json" --query 'arg=true&rows=10'
check "rows without tty=1 is 400" \
	jtrue "$tmp/r3.json" 'd["status"] == 400 and "tty=1" in d["error"]'
for q in 'arg=true&tty=2' 'arg=true&tty=1&rows=0' 'arg=true&tty=1&cols=10000' \
	'arg=true&tty=1&rows=x' 'tty=1'; do
	tty_run "$tmp/rq.json" --query "$q"
	check "tty query '$q' is 400" jtrue "$tmp/rq.json" 'd["status"] == 400'
done
tty_run "$tmp/r4.json" --body 'stdin' -- cat
check "tty=1 with a body is 400: input goes in frames" \
	jtrue "$tmp/r4.json" 'd["status"] == 400 and "no body" in d["error"]'

# --- the terminal ---
tty_run "$tmp/t1.json" --query 'arg=sh&arg=-c&arg=tty%3B+stty+size%3B+test+-t+0+%26%26+test+-t+1+%26%26+echo+both-ttys%3B+echo+TERM%3D%24TERM%3B+exit+3&tty=1&rows=33&cols=111'
check "tty=1: 101, output frames, then the exit frame last" \
	jtrue "$tmp/t1.json" 'd["status"] == 101 and d["frames"][-1] == 3 and set(d["frames"][:-1]) == {1} and d["closed"]'
check "tty=1: stdin and stdout are a /dev/pts terminal" \
	jtrue "$tmp/t1.json" '__import__("re").search(r"^/dev/pts/\d+\r$", d["output"], 8) and "both-ttys" in d["output"]'
check "tty=1: the first size is rows x cols" jtrue "$tmp/t1.json" '"33 111\r\n" in d["output"]'
check "tty=1: TERM is xterm-256color by default" jtrue "$tmp/t1.json" '"TERM=xterm-256color\r\n" in d["output"]'
check "tty=1: the exit code passes through" \
	jtrue "$tmp/t1.json" 'd["exit"] == {"exit_code": "3", "signal": "0", "timed_out": "0"}'
tty_run "$tmp/t1b.json" --query 'arg=sh&arg=-c&arg=stty+size%3B+echo+%24TERM&env=TERM%3Dvt100&tty=1'
check "tty=1: 24x80 by default, and TERM from env" \
	jtrue "$tmp/t1b.json" 'd["output"] == "24 80\r\nvt100\r\n"'

tty_run "$tmp/t2.json" --query 'arg=sh&arg=-c&arg=stty+size%3B+read+x%3B+stty+size&tty=1&rows=30&cols=90' \
	--do 'wait:30 90' --do 'resize:41x132' --do 'send:\n'
check "a resize frame changes the terminal's size" \
	jtrue "$tmp/t2.json" '"30 90\r\n" in d["output"] and d["output"].endswith("41 132\r\n") and d["exit"]["exit_code"] == "0"'
tty_run "$tmp/t2b.json" --query 'arg=sh&arg=-c&arg=trap+%22echo+winch%22+WINCH%3B+echo+ready%3B+read+x&tty=1' \
	--do 'wait:ready' --do 'resize:50x60' --do 'wait:winch' --do 'send:\n'
check "a resize sends SIGWINCH to the foreground" jtrue "$tmp/t2b.json" '"winch" in d["output"]'

tty_run "$tmp/t3.json" --do 'send:hello tty\n' --do 'wait:hello tty\r\nhello tty\r\n' --do eof -- cat
check "input goes through the terminal (echoed, then cat's copy)" \
	jtrue "$tmp/t3.json" '"hello tty\r\nhello tty\r\n" in d["output"]'
check "an eof frame ends cat's input: it exits 0" \
	jtrue "$tmp/t3.json" 'd["exit"] == {"exit_code": "0", "signal": "0", "timed_out": "0"}'
tty_run "$tmp/t3b.json" --query 'arg=sh&arg=-c&arg=stty+raw+-echo%3B+echo+go%3B+head+-c+300000+%7C+wc+-c&tty=1' \
	--do 'wait:go' --do 'fill:100000:a' --do 'fill:200000:b'
check "300 KB of input in raw mode arrive whole (the terminal's buffer is 4 KiB)" \
	jtrue "$tmp/t3b.json" '"300000" in d["output"] and d["exit"]["exit_code"] == "0"'
tty_run "$tmp/t3c.json" -- sh -c 'head -c 500000 /dev/zero | tr "\0" z'
check "500 KB of output arrive whole, over many frames" \
	jtrue "$tmp/t3c.json" 'd["output"].count("z") == 500000 and len(d["frames"]) > 2'

tty_run "$tmp/t4.json" --do 'sleep:0.3' --do 'signal:2' -- sleep 30.42420101
check "a signal frame INT kills sleep: signal=2" \
	jtrue "$tmp/t4.json" 'd["exit"] == {"exit_code": "-1", "signal": "2", "timed_out": "0"} and d["elapsed_s"] < 5'
tty_run "$tmp/t4b.json" --do 'sleep:0.3' --do 'send:\x03' -- sleep 30.42420102
check "^C typed on the terminal is a SIGINT too" \
	jtrue "$tmp/t4b.json" 'd["exit"]["signal"] == "2" and "^C" in d["output"]'
tty_run "$tmp/t4c.json" --do 'sleep:0.2' --do 'signal:10' -- sleep 1
check "a signal frame outside INT QUIT TERM HUP KILL WINCH is ignored" \
	jtrue "$tmp/t4c.json" 'd["exit"] == {"exit_code": "0", "signal": "0", "timed_out": "0"}'
tty_run "$tmp/t4d.json" --do 'sleep:0.3' --do 'signal:2' -- sh -c 'sleep 30.42420103; echo after'
check "the signal goes to the foreground group: sh and its sleep both" \
	jtrue "$tmp/t4d.json" 'd["exit"]["signal"] == "2" and "after" not in d["output"]'

tty_run "$tmp/t5.json" -- no-such-command-banger
check "a missing command: its reason on the terminal, exit_code 127" \
	jtrue "$tmp/t5.json" 'd["exit"]["exit_code"] == "127" and "no-such-command-banger: No such file" in d["output"]'

# --- the session's end ---
tty_run "$tmp/t6.json" --query 'arg=sh&arg=-c&arg=sleep+30.42420201%3B+true&tty=1&timeout_s=1'
check "timeout_s=1: SIGTERM, timed_out=1, within 3 s" \
	jtrue "$tmp/t6.json" 'd["exit"]["timed_out"] == "1" and d["exit"]["signal"] == "15" and 0.9 < d["elapsed_s"] < 3'
check "timeout: no sleep left" gone_within '^sleep 30.42420201'

tty_run "$tmp/t7.json" --do 'wait:ready' --do leave -- \
	sh -c "trap 'echo hup >$tmp/hup; exit 0' HUP; sleep 30.42420202 & echo ready; while :; do sleep 0.1; done"
check "a client that leaves: the command gets SIGHUP" bash -c "for i in \$(seq 100); do [[ -s $tmp/hup ]] && exit 0; sleep 0.03; done; exit 1"
check "and its background job is gone too" gone_within '^sleep 30.42420202'

# A process that ignores SIGHUP in a process group of its own, as a job
# of a job-control shell is: only the session's SIGKILL reaches it.
cat >"$tmp/stray.py" <<'EOF'
import os, signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
os.setpgid(0, 0)
print("ready", flush=True)
time.sleep(30.42420203)
EOF
tty_run "$tmp/t8.json" --do 'wait:ready' --do leave -- sh -c "$py $tmp/stray.py & wait"
check "a client that leaves: a job in another process group that ignores SIGHUP is killed within 3 s" \
	gone_within "stray.py"
check "the session's end is logged" grep -q 'the client left; its session was hung up' "$tmp/agent.log"

tty_run "$tmp/t9.json" --do 'sleep:0.2' --do 'raw:0900000000000000' -- sleep 30.42420204
check "a frame of an unknown type ends the session, without an exit frame" \
	jtrue "$tmp/t9.json" 'd["closed"] and d["exit"] is None'
check "and kills the command" gone_within '^sleep 30.42420204'
tty_run "$tmp/t9b.json" --do 'sleep:0.2' --do 'raw:0000000000200001' -- sleep 30.42420205
check "a frame over 1 MiB ends the session" \
	jtrue "$tmp/t9b.json" 'd["closed"] and d["exit"] is None'
check "and kills the command" gone_within '^sleep 30.42420205'
tty_run "$tmp/t9c.json" --do 'sleep:0.2' --do 'raw:0400000000000003000000' -- sleep 30.42420206
check "a resize frame of 3 bytes ends the session" \
	jtrue "$tmp/t9c.json" 'd["closed"] and d["exit"] is None'
check "a bad frame is logged" grep -q 'exec tty: a bad frame (type 9' "$tmp/agent.log"

tty_run "$tmp/t10.json" -- sh -c 'sleep 300.42420207 & echo started'
check "a background job holding the terminal ends the session ~1 s after the exit" \
	jtrue "$tmp/t10.json" '"started" in d["output"] and d["exit"]["exit_code"] == "0" and d["elapsed_s"] < 2.5'
check "and the job is killed" gone_within '^sleep 300.42420207'

check "the agent leaves no child behind (no zombies)" no_children "$tpid"
check "/healthz still answers" curl -sf --unix-socket "$sock" -o /dev/null http://agent/healthz

finish
