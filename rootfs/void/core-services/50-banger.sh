# shellcheck shell=sh
# banger: a runit core service. /etc/runit/1 sources every
# /etc/runit/core-services/*.sh in name order; this one comes after
# 03-filesystems (/ is read-write) and 05-misc (hostname from /etc/hostname),
# and before stage 2 starts sshd and the agent.
#
# 1. guest-setup: hostname, /etc/hosts and /etc/resolv.conf from the kernel
#    command line (banger.hostname=, ip=), as banger-guest.service on Debian.
# 2. mount-work: check the work disk (banger.workdev=, /dev/vdb) and mount
#    it on /root, as banger-workdisk.service on Debian. A check that leaves
#    errors keeps it unmounted (said on the console), and step 3 is skipped:
#    the agent then reports the work disk as not mounted.
# 3. repair-root: the work-disk repair step for a stale nested /root/root
#    layout. Its result word (ok, repaired or conflicts) goes to
#    /run/banger/layout-state, which the agent reports in /healthz. Anything
#    else is logged and leaves the state file out: the agent says "unknown".
# 4. mount-shares, only when the command line has a banger.mount= word: the
#    shared folders (virtio-fs), as banger-shares.service on Debian. After
#    steps 2 and 3, since a share may be under /root. It records each share
#    in /run/banger/shares-state, which the agent reports in /healthz (a
#    failed one makes the VM degraded).
# It runs in a subshell: it is sourced, so it must not exit or leak variables.
(
	lib=/usr/local/lib/banger
	mkdir -p /run/banger
	log=/run/banger/boot.log

	"$lib/guest-setup" 2>>"$log" ||
		echo "=> banger: guest-setup failed (hostname, DNS), see $log"

	if "$lib/mount-work" 2>>"$log"; then
		out=$("$lib/repair-root" /root 2>>"$log") ||
			echo "repair-root exited $?" >>"$log"
		word=$(printf '%s\n' "$out" | awk 'NF { print $1; exit }')
		case $word in
		ok | repaired | conflicts)
			printf '%s\n' "$word" >/run/banger/layout-state
			echo "=> banger: work disk layout: $word"
			;;
		*)
			echo "=> banger: work disk repair step failed, see $log"
			;;
		esac
	else
		echo "mount-work exited $?" >>"$log"
		echo "=> banger: the work disk is not mounted on /root, see $log"
	fi

	cmdline=
	read -r cmdline </proc/cmdline || [ -n "$cmdline" ] || true
	case " $cmdline " in
	*" banger.mount="*)
		if "$lib/mount-shares" 2>>"$log"; then
			echo "=> banger: shared folders mounted"
		else
			echo "mount-shares exited $?" >>"$log"
			echo "=> banger: a shared folder did not mount, see $log"
		fi
		;;
	esac
)
