/* commands.c - every command of banger, declared once: its words, usage,
 * summary, flags and help, and the handler that runs it.
 *
 * Usage lines, 'banger help', 'banger GROUP --help', usage errors and the
 * completion scripts are made from this table (usage.c,
 * cmd_completion.c), and args.c accepts exactly the flags it lists.  The
 * order here is the order of the help and of the completion words.
 *
 * A flag's metavariable also says how the scripts complete its value:
 * PATH or FILE a file, IMAGE an image name, "a|b" those words.
 */
#include "cli.h"

/* One flag line each; see struct flag. */
#define F_SWITCH(name_, help_, ...) \
	{ .name = name_, .kind = FLAG_SWITCH, .help = help_, __VA_ARGS__ }
#define F_PAIR(name_, neg_, help_) \
	{ .name = name_, .kind = FLAG_PAIR, .neg = neg_, .help = help_ }
#define F_STRING(name_, arg_, help_, ...) \
	{ .name = name_, .kind = FLAG_STRING, .arg = arg_, .help = help_, \
	  __VA_ARGS__ }
#define F_INT(name_, arg_, help_) \
	{ .name = name_, .kind = FLAG_INT, .arg = arg_, .help = help_ }
#define F_LIST(name_, arg_, help_) \
	{ .name = name_, .kind = FLAG_LIST, .arg = arg_, .help = help_ }
#define F_END { .name = NULL }

/* --no-wait and --cancel of the commands that start long operations. */
#define NO_WAIT_FLAG \
	F_SWITCH("--no-wait", "print the operation id and return at once")
#define CANCEL_FLAG(what) \
	F_SWITCH("--cancel", "Ctrl-C cancels " what " instead of only\n" \
	    "stopping the wait")

#define BULK_HELP \
	"With several NAMEs (or --all) the VMs are handled at once in one bulk\n" \
	"operation: a line per VM (\"web: stopped\" on stdout, \"db: error: CODE:\n" \
	"MESSAGE\" on stderr); the exit status is that of the first VM that\n" \
	"failed.\n"

static const struct flag vm_create_flags[] = {
	F_STRING("--name", "NAME", "VM name, a DNS label (required)",
	    .required = true),
	F_STRING("--image", "IMAGE",
	    "image to boot (default: the bundle's 'default')"),
	F_INT("--vcpus", "N", "virtual CPUs (default 2)"),
	F_INT("--memory", "MIB", "memory in MiB (default 1024)"),
	F_INT("--disk", "GIB", "work disk size in GiB (default 8)"),
	F_PAIR("--nat", "--no-nat", "give the VM outbound NAT (default off)"),
	F_LIST("--port", "[ADDR:]HOST:GUEST", "forward host port HOST (on "
	    "127.0.0.1 unless ADDR)\nto the guest's GUEST while it runs "
	    "(repeatable)"),
	F_LIST("--limit", "KEY=VALUE", "cpus, memory_max_mib, disk_bytes_per_s,"
	    "\ndisk_ops_per_s or net_bytes_per_s (repeatable)"),
	F_LIST("--mount", "HOST:GUEST[:ro]", "share host directory HOST at "
	    "GUEST in the guest\n(virtio-fs, QEMU only; :ro read-only; "
	    "repeatable)"),
	NO_WAIT_FLAG,
	F_SWITCH("--cancel", "Ctrl-C cancels the create (the VM is removed) "
	    "instead\nof only stopping the wait"),
	F_END
};

static const struct flag vm_start_flags[] = {
	F_SWITCH("--all", "every VM (running ones stay as they are)"),
	NO_WAIT_FLAG,
	CANCEL_FLAG("the operation"),
	F_END
};

static const struct flag vm_stop_flags[] = {
	F_SWITCH("--all", "every VM"),
	F_INT("--timeout", "S", "seconds to wait for a clean shutdown before "
	    "the VMM\nis killed (bangerd's default when not given)"),
	NO_WAIT_FLAG,
	F_SWITCH("--cancel", "Ctrl-C cancels the operation instead of only\n"
	    "stopping the wait (a shutdown once begun finishes)"),
	F_END
};

static const struct flag vm_snapshot_flags[] = {
	NO_WAIT_FLAG,
	CANCEL_FLAG("the operation"),
	F_END
};

static const struct flag vm_clone_flags[] = {
	F_SWITCH("--nat", "give the clone outbound NAT"),
	NO_WAIT_FLAG,
	CANCEL_FLAG("the clone"),
	F_END
};

static const struct flag vm_pause_flags[] = {
	F_SWITCH("--all", "every running VM"),
	F_END
};

static const struct flag vm_resume_flags[] = {
	F_SWITCH("--all", "every paused VM"),
	F_END
};

static const struct flag vm_restart_flags[] = {
	F_SWITCH("--all", "every VM"),
	NO_WAIT_FLAG,
	CANCEL_FLAG("the operation"),
	F_END
};

static const struct flag vm_delete_flags[] = {
	F_SWITCH("--force", "stop running VMs first (else they are refused)"),
	F_SWITCH("--all", "every VM; --all alone is refused, as there is no\n"
	    "undo (no prompt: banger never asks on a terminal)",
	    .label = "--all --yes"),
	F_SWITCH("--yes", NULL),
	NO_WAIT_FLAG,
	CANCEL_FLAG("the operation"),
	F_END
};

static const struct flag vm_set_flags[] = {
	F_INT("--vcpus", "N", "virtual CPUs"),
	F_INT("--memory", "MIB", "memory in MiB"),
	F_INT("--disk", "GIB", "work disk size in GiB"),
	F_PAIR("--nat", "--no-nat", "turn outbound NAT on or off"),
	F_LIST("--port", "[ADDR:]HOST:GUEST", "the VM's forwarded ports become "
	    "these\n(repeatable; applied at once while it runs)"),
	F_SWITCH("--no-ports", "forward no ports"),
	F_LIST("--limit", "KEY=VALUE", "the VM's limits become these "
	    "(repeatable; while\nstopped): cpus, memory_max_mib, "
	    "disk_bytes_per_s,\ndisk_ops_per_s, net_bytes_per_s"),
	F_SWITCH("--no-limits", "no limits"),
	F_LIST("--mount", "HOST:GUEST[:ro]", "the VM's shared folders become "
	    "these\n(repeatable; while stopped; QEMU only)"),
	F_SWITCH("--no-mounts", "share no folders"),
	F_END
};

static const struct flag vm_exec_flags[] = {
	F_SWITCH("--tty", "run it on a terminal, interactively: keys go to "
	    "it as\ntyped (Ctrl-C too), the window's size follows", .alias =
	    "-t"),
	F_SWITCH("--interactive", "send standard input even when it is a "
	    "terminal\n(always so with -t; -it is the usual spelling)",
	    .alias = "-i"),
	F_LIST("--env", "NAME=VALUE", "set a variable for the command "
	    "(repeatable)"),
	F_STRING("--cwd", "DIR", "run it in DIR (default: the user's home)"),
	F_STRING("--user", "USER", "run it as USER (default: root)"),
	F_INT("--timeout", "S", "kill it after S seconds (exit status 124)"),
	F_SWITCH("--no-stdin", "do not send standard input (sent when it is "
	    "not a\nterminal, at most 64 KiB without -t)"),
	F_END
};

static const struct flag vm_ssh_flags[] = {
	F_SWITCH("--no-reminder", "after an interactive session, do not "
	    "remind that\nthe VM is still running"),
	F_END
};

static const struct flag vm_console_flags[] = {
	F_INT("--tail", "BYTES",
	    "only the last BYTES bytes (bangerd's default: 65536)"),
	F_END
};

static const struct flag image_register_flags[] = {
	F_STRING("--name", "NAME", "image name, a DNS label other than "
	    "'default'", .required = true),
	F_STRING("--rootfs", "PATH", "the rootfs ext4 file (required)",
	    .required = true),
	F_STRING("--work-seed", "PATH",
	    "ext4 file each VM's work disk is cloned from"),
	F_END
};

static const struct flag image_build_flags[] = {
	F_STRING("--name", "NAME", "the new image's name", .required = true),
	F_STRING("--distro", "debian|void", "debian (default) or void "
	    "(experimental; needs the Void mirrors)", .label = "--distro D"),
	NO_WAIT_FLAG,
	F_SWITCH("--cancel", "Ctrl-C cancels the build (its script is "
	    "terminated)\ninstead of only stopping the wait"),
	F_END
};

static const struct flag image_warm_flags[] = {
	F_SWITCH("--drop", "drop the image's warm snapshot instead"),
	NO_WAIT_FLAG,
	CANCEL_FLAG("the warming"),
	F_END
};

static const struct flag operation_wait_flags[] = {
	CANCEL_FLAG("the operation"),
	F_END
};

static const struct flag events_flags[] = {
	F_LIST("--type", "TYPE", "only events of this type (repeatable, or "
	    "a,b):\n"
	    "vm.created vm.updated vm.state vm.deleted vm.health vm.exec\n"
	    "image.registered image.deleted image.warmed image.cooled\n"
	    "operation.created "
	    "operation.updated operation.finished, or a family:\n"
	    "vm.* image.* operation.*"),
	F_STRING("--vm", "NAME",
	    "only events about this VM (it need not exist yet)"),
	F_END
};

const struct command cli_commands[] = {
	/* ---- vm ---- */
	{ .group = "vm", .name = "create", .summary = "create a VM and boot it",
	  .flags = vm_create_flags, .run = cmd_vm_create },
	{ .group = "vm", .name = "list",
	  .summary = "list VMs (with -q: names only)", .run = cmd_vm_list },
	{ .group = "vm", .name = "show", .args = "NAME", .nargs = ARGS_ONE,
	  .summary = "show a VM's spec and status", .run = cmd_vm_show },
	{ .group = "vm", .name = "pause", .args = "NAME...|--all",
	  .nargs = ARGS_ANY, .summary = "hold running VMs where they are",
	  .flags = vm_pause_flags,
	  .intro =
	  "The VMM stops the guest's vCPUs; memory, devices, TAP and .vm name\n"
	  "stay.  Resume goes on where it stopped (bangerd then sets the\n"
	  "guest's clock); stop, restart and delete work on paused VMs.\n"
	  "\nFlags:\n",
	  .outro = BULK_HELP, .run = cmd_vm_hold },
	{ .group = "vm", .name = "resume", .args = "NAME...|--all",
	  .nargs = ARGS_ANY, .summary = "let paused VMs run again",
	  .flags = vm_resume_flags,
	  .intro =
	  "Resumes VMs paused on request, and QEMU VMs whose disk write found\n"
	  "the host disk full (state paused, reason host_disk_full): free space\n"
	  "on the host first; they are refused while the disk is still below\n"
	  "the reserve.  bangerd sets the guest's clock to the host's and\n"
	  "checks its health again.\n"
	  "\nFlags:\n",
	  .outro = BULK_HELP, .run = cmd_vm_hold },
	{ .group = "vm", .name = "start", .args = "NAME...|--all",
	  .nargs = ARGS_ANY, .summary = "boot stopped VMs",
	  .flags = vm_start_flags, .outro = BULK_HELP, .run = cmd_vm_lifecycle },
	{ .group = "vm", .name = "stop", .args = "NAME...|--all",
	  .nargs = ARGS_ANY, .summary = "shut VMs down",
	  .flags = vm_stop_flags, .outro = BULK_HELP, .run = cmd_vm_lifecycle },
	{ .group = "vm", .name = "restart", .args = "NAME...|--all",
	  .nargs = ARGS_ANY, .summary = "stop VMs and boot them again",
	  .flags = vm_restart_flags, .outro = BULK_HELP,
	  .run = cmd_vm_lifecycle },
	{ .group = "vm", .name = "delete", .args = "NAME...|--all --yes",
	  .nargs = ARGS_ANY, .summary = "delete VMs and their disks",
	  .flags = vm_delete_flags, .outro = BULK_HELP,
	  .run = cmd_vm_lifecycle },
	{ .group = "vm", .name = "snapshot",
	  .args = "create|list|delete|restore NAME [SNAPSHOT]",
	  .nargs = ARGS_SOME, .summary = "take, list, delete and restore a VM's "
	  "snapshots", .flags = vm_snapshot_flags,
	  .intro =
	  "  create NAME SNAP   pause NAME, save its memory, device state and\n"
	  "                     both disks as SNAP, then let it run on\n"
	  "  list NAME          NAME's snapshots\n"
	  "  delete NAME SNAP   remove SNAP and its files\n"
	  "  restore NAME SNAP  put NAME back where SNAP was taken: what it\n"
	  "                     runs now is ended, its disks replaced\n"
	  "Firecracker VMs only: QEMU 7.2 cannot save a VM with its vsock\n"
	  "device (bangerd says why).\n"
	  "\nFlags (create and restore):\n",
	  .run = cmd_vm_snapshot },
	{ .group = "vm", .name = "cp", .args = "SRC DST", .nargs = ARGS_SOME,
	  .summary = "copy files into or out of a running VM through its agent",
	  .intro =
	  "One side is NAME:/path in the VM, the other a local path.  As with\n"
	  "cp: a DST that is a directory gets the copy as DST/basename(SRC);\n"
	  "a DST that is not (a new name, or a file to replace) in a\n"
	  "directory that is, is the copy's own name.  A DST ending in / must\n"
	  "be a directory.\n"
	  "Directories go whole; modes, mtimes and symlinks are kept; other\n"
	  "special files stay behind.  Nothing the guest sends is written\n"
	  "outside DST.\n",
	  .run = cmd_vm_cp },
	{ .group = "vm", .name = "clone", .args = "VM@SNAPSHOT NAME",
	  .nargs = ARGS_SOME, .summary = "a new VM from a snapshot, with its "
	  "own identity", .flags = vm_clone_flags,
	  .intro =
	  "NAME starts where the snapshot was taken, in a VM of its own: its\n"
	  "own disks, TAP, address, MAC and NAME.vm; the agent gives the guest\n"
	  "its hostname, new SSH host keys, machine-id, RNG seed and clock.\n"
	  "\nFlags:\n",
	  .run = cmd_vm_clone },
	{ .group = "vm", .name = "set", .args = "NAME...", .nargs = ARGS_SOME,
	  .summary = "change a VM's resources or NAT",
	  .flags = vm_set_flags,
	  .intro = "Flags (vcpus, memory and disk only while the VM is "
	  "stopped):\n",
	  .outro =
	  "Several NAMEs at once take only --nat or --no-nat (one bulk action;\n"
	  "a line per VM, non-zero exit when any failed).\n",
	  .run = cmd_vm_set },
	{ .group = "vm", .name = "ssh", .args = "NAME", .nargs = ARGS_ONE,
	  .summary = "log in to a running VM over SSH, or run a command there",
	  .flags = vm_ssh_flags,
	  .intro =
	  "Runs ssh as root@<the VM's address> with the runtime bundle's key and\n"
	  "a known-hosts file of the VM's own (in its directory, so it goes with\n"
	  "the VM; a user who cannot write there gets one under\n"
	  "$XDG_STATE_HOME/banger/known_hosts).  A new host key is accepted on\n"
	  "first use and checked after that.  COMMAND goes to the remote shell,\n"
	  "as with ssh.  Exits with ssh's status (255: ssh failed).\n"
	  "Flags:\n",
	  .outro =
	  "Environment:\n"
	  "  BANGER_SSH      the ssh client to run (default: ssh from PATH)\n",
	  .rest = "[-- COMMAND [ARGS...]]", .run = cmd_vm_ssh },
	{ .group = "vm", .name = "exec", .args = "NAME", .nargs = ARGS_ONE,
	  .summary = "run a command in a running VM through its agent (no "
	  "SSH)",
	  .flags = vm_exec_flags,
	  .intro =
	  "Runs COMMAND with its arguments (no shell: use sh -c for one) in the\n"
	  "VM by its guest agent over vsock, so it works without a network.\n"
	  "Its output comes back as it is written; banger exits with its status\n"
	  "(128+N when signal N ended it, 124 when --timeout did).  Ctrl-C ends\n"
	  "it.  With -t (banger vm exec -it NAME -- bash) it runs on a terminal\n"
	  "of its own in the VM: this terminal is put in raw mode while it runs,\n"
	  "so keys, Ctrl-C included, go to the command, and TERM and the window's\n"
	  "size go with it.  -t with input that is not a terminal sends it, then\n"
	  "the terminal's end of input.\n"
	  "Flags:\n",
	  .rest = "-- COMMAND [ARGS...]", .run = cmd_vm_exec },
	{ .group = "vm", .name = "port-forward",
	  .args = "NAME [ADDR:]HOST_PORT:GUEST_PORT...", .nargs = ARGS_SOME,
	  .summary = "forward local ports to a running VM while this runs",
	  .intro =
	  "Listens on HOST_PORT (on 127.0.0.1 unless ADDR is given; IPv6 in\n"
	  "brackets) and carries each connection to GUEST_PORT on the guest's\n"
	  "own loopback through its agent over vsock: a service bound to\n"
	  "localhost in the VM is reachable, and NAT is not needed.  A\n"
	  "connection nothing in the guest accepts is reset, and why printed.\n"
	  "Runs until Ctrl-C.  For forwards bangerd keeps while the VM runs,\n"
	  "use 'banger vm create --port' or 'banger vm set --port'.\n",
	  .run = cmd_vm_port_forward },
	{ .group = "vm", .name = "health", .args = "NAME", .nargs = ARGS_ONE,
	  .summary = "ask the VM's guest agent how it is",
	  .run = cmd_vm_health },
	{ .group = "vm", .name = "console", .args = "NAME", .nargs = ARGS_ONE,
	  .summary = "print the VM's serial console log",
	  .flags = vm_console_flags, .run = cmd_vm_console },

	/* ---- image ---- */
	{ .group = "image", .name = "register",
	  .summary = "register an ext4 root filesystem as an image (or update "
	  "one)",
	  .flags = image_register_flags,
	  .outro = "Relative paths are resolved against the current "
	  "directory.\n",
	  .run = cmd_image_register },
	{ .group = "image", .name = "build",
	  .summary = "build a managed image with banger's rootfs scripts "
	  "(bangerd runs the build)",
	  .flags = image_build_flags, .run = cmd_image_build },
	{ .group = "image", .name = "list",
	  .summary = "list images (with -q: names only)", .run = cmd_image_list },
	{ .group = "image", .name = "show", .args = "NAME", .nargs = ARGS_ONE,
	  .summary = "show an image", .run = cmd_image_show },
	{ .group = "image", .name = "delete", .args = "NAME", .nargs = ARGS_ONE,
	  .summary = "delete an image", .run = cmd_image_delete },
	{ .group = "image", .name = "warm", .args = "NAME", .nargs = ARGS_ONE,
	  .summary = "keep a warm snapshot of the image: creates of its shape "
	  "restore it instead of booting",
	  .flags = image_warm_flags,
	  .outro = "bangerd boots a VM of the image once (the default vcpus, "
	  "memory and disk),\nsnapshots it and deletes it.  Creates with that "
	  "shape then start from a copy\nof the snapshot with their own "
	  "identity; others boot cold and say why.\nRebuilding, registering "
	  "or deleting the image drops the snapshot.  Needs\nFirecracker.  "
	  "config.json \"warm_default_image\": \"on\" warms the default "
	  "image\nafter its first create.\n",
	  .run = cmd_image_warm },

	/* ---- operation ---- */
	{ .group = "operation", .name = "list",
	  .summary = "list recent operations (with -q: ids only)",
	  .run = cmd_operation_list },
	{ .group = "operation", .name = "show", .args = "ID", .nargs = ARGS_ONE,
	  .summary = "show an operation", .run = cmd_operation_show },
	{ .group = "operation", .name = "wait", .args = "ID", .nargs = ARGS_ONE,
	  .summary = "follow an operation to its end, showing its stages",
	  .flags = operation_wait_flags,
	  .outro = "Exits 0 when it succeeds, else with its error's status.\n",
	  .run = cmd_operation_wait },
	{ .group = "operation", .name = "cancel", .args = "ID",
	  .nargs = ARGS_ONE,
	  .summary = "ask a running operation to stop at its next safe point",
	  .intro =
	  "It ends failed with error 'cancelled'; what its current step made is\n"
	  "undone (a VM being created is removed).  Follow it with\n"
	  "'banger operation wait ID'.\n",
	  .run = cmd_operation_cancel },

	/* ---- the rest ---- */
	{ .name = "host",
	  .summary = "the host's capacity and what VMs take of it",
	  .intro =
	  "The disk: free, what VMs may still claim (VM disks are sparse, so\n"
	  "they may claim more than is free; creates and starts keep\n"
	  "disk_reserve_mib free), the reserve.  CPUs and memory: the host's,\n"
	  "and the vCPUs and memory of running and of all VMs.\n",
	  .run = cmd_host },
	{ .name = "doctor", .summary = "check what this host needs to run VMs",
	  .intro = "Prints one line per check; exits 1 when a check fails.\n",
	  .run = cmd_doctor },
	{ .name = "version", .summary = "print banger's and bangerd's versions",
	  .intro = "Does not start bangerd.\n", .run = cmd_version },
	{ .name = "events", .summary = "follow bangerd's events as they happen",
	  .flags = events_flags,
	  .intro =
	  "Prints one line per event (time, type, VM, summary) until Ctrl-C,\n"
	  "which exits 0; with --json each event as one JSON line.  Reconnects\n"
	  "when bangerd restarts, and gives up (exit 5) after 8 failed tries.\n"
	  "\n",
	  .run = cmd_events },
	{ .name = "tui", .summary = "a full-screen view of VMs, images and doctor",
	  .intro =
	  "VMs with state, IP, health and uptime, kept current from bangerd's\n"
	  "events.  Keys (shown at the bottom): s start, x stop, r restart,\n"
	  "d delete (asks y/n), n toggle NAT, c or Enter ssh, up/down select,\n"
	  "1/2/3 or Tab switch views (VMs, images, doctor), ^L refresh, q quit.\n"
	  "Actions return at once; their progress shows in the OPERATION column.\n"
	  "When bangerd goes away the top line says so and the tui reconnects.\n",
	  .run = cmd_tui },
	{ .name = "completion", .args = "bash|zsh", .nargs = ARGS_ONE,
	  .summary = "print a shell completion script",
	  .intro =
	  "Load it into the running shell with\n"
	  "  source <(banger completion bash)     (or zsh, after compinit)\n"
	  "'make install' installs both scripts.  VM and image names are\n"
	  "completed by asking bangerd (never started for that).\n",
	  .run = cmd_completion },
	{ .name = NULL }
};
