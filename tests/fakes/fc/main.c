/* main.c - Firecracker's command line, the API socket, and the event loop
 * that plays the guest's lifecycle: boot, agent start, Ctrl-Alt-Del,
 * poweroff and reboot from inside, injected crashes, signals; after a
 * snapshot, the vsock reset at resume; after a load, the guest waking (or
 * the process ending when the load failed).
 *
 * Test hooks (environment):
 *   BANGER_FAKE_FC_FAULTS   JSON file with injected faults (faults.c).
 *   BANGER_FAKE_FC_LOG      append one JSON line per API request here.
 *   BANGER_FAKE_AGENT       the guest agent (default: the runtime bundle
 *                           next to this binary, see guest.c).
 *   BANGER_FAKE_AGENT_PORT  the guest vsock port it listens on (1024).
 *   BANGER_FAKE_READY       its --ready checks (default "workdisk").
 *   BANGER_FAKE_SSH_PORT    the port its "sshd" check looks at (22).
 * The agent's POST /poweroff comes back as "<this exe> poweroff|reboot"
 * (its --poweroff-cmd): a reboot ends the double like Firecracker's exit
 * on reset, a poweroff halts the "guest" and the double keeps running, as
 * Firecracker does on x86.
 */
#include "fake.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>


struct opts {
	const char *api_sock, *id, *log_path, *level, *module, *metrics_path;
	const char *metadata, *payload;
	bool show_level, show_origin, boot_timer, enable_pci;
	bool version, help;
};

#define NO_SLOT SIZE_MAX
#define SLOT(m) offsetof(struct opts, m)

/* Firecracker's options; the ones without a slot are accepted and unused. */
static const struct {
	const char *name;
	bool value;		/* takes a value */
	size_t slot;		/* const char * or bool in struct opts */
	const char *refused;	/* not supported here: this error */
} options[] = {
	{ "api-sock", true, SLOT(api_sock), NULL },
	{ "id", true, SLOT(id), NULL },
	{ "log-path", true, SLOT(log_path), NULL },
	{ "level", true, SLOT(level), NULL },
	{ "module", true, SLOT(module), NULL },
	{ "metrics-path", true, SLOT(metrics_path), NULL },
	{ "metadata", true, SLOT(metadata), NULL },
	{ "http-api-max-payload-size", true, SLOT(payload), NULL },
	{ "seccomp-filter", true, NO_SLOT, NULL },
	{ "start-time-us", true, NO_SLOT, NULL },
	{ "start-time-cpu-us", true, NO_SLOT, NULL },
	{ "parent-cpu-time-us", true, NO_SLOT, NULL },
	{ "mmds-size-limit", true, NO_SLOT, NULL },
	{ "config-file", true, NO_SLOT, "--config-file is not supported by the "
	  "banger Firecracker test double (configure the microVM through the "
	  "API instead)." },
	{ "describe-snapshot", true, NO_SLOT, "--describe-snapshot is not "
	  "supported by the banger Firecracker test double." },
	{ "no-api", false, NO_SLOT, "--no-api requires --config-file, which the "
	  "banger Firecracker test double does not support." },
	{ "no-seccomp", false, NO_SLOT, NULL },
	{ "boot-timer", false, SLOT(boot_timer), NULL },
	{ "show-level", false, SLOT(show_level), NULL },
	{ "show-log-origin", false, SLOT(show_origin), NULL },
	{ "version", false, SLOT(version), NULL },
	{ "help", false, SLOT(help), NULL },
	{ "enable-pci", false, SLOT(enable_pci), NULL },
	{ "snapshot-version", false, NO_SLOT, NULL },
};

static const int handled_signals[] = {
	SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2,
};

/* Timers of the event loop, in now_ms() time; 0 when unset. */
struct timers {
	uint64_t agent_at, die_at, shutdown_at;
};

static void
usage(void)
{
	printf("firecracker v%s (banger test double)\n\n"
	    "Launch a microvm.\n\n"
	    "  --api-sock <api-sock>   Path to unix domain socket used by the API. "
	    "[default: \"%s\"]\n"
	    "  --id <id>               MicroVM unique identifier. [default: \"%s\"]\n"
	    "  --log-path <log-path>   Path to a fifo or a file used for configuring "
	    "the logger on startup.\n"
	    "  --level <level>         Set the logger level.\n"
	    "  --module <module>       Set the logger module filter.\n"
	    "  --show-level            Whether or not to output the level in the "
	    "logs.\n"
	    "  --show-log-origin       Whether or not to include the file path and "
	    "line number of the log's origin.\n"
	    "  --metrics-path <path>   Path to a fifo or a file used for configuring "
	    "the metrics on startup.\n"
	    "  --http-api-max-payload-size <n>  Http API request payload max size, in "
	    "bytes. [default: \"%d\"]\n"
	    "  --version               Print the binary version number.\n"
	    "  --help                  Show the help message.\n"
	    "  (--config-file / --no-api are not supported by the test double.)\n",
	    FC_VERSION, DEFAULT_API_SOCK, DEFAULT_INSTANCE_ID, DEFAULT_PAYLOAD_LIMIT);
}

static void arg_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void
arg_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "Arguments parsing error: %s\n\nFor more information try "
	    "--help.\n", msg);
	exit(EXIT_ARG_PARSING);
}

static size_t
option_find(const char *arg)
{
	for (size_t k = 0; k < sizeof(options) / sizeof(options[0]); k++)
		if (strcmp(options[k].name, arg + 2) == 0)
			return k;
	arg_error("Found argument '%s' which wasn't expected, or isn't valid in "
	    "this context.", arg);
}

/* Like Firecracker's clap: --name [value], each at most once. */
static void
parse_args(int argc, char **argv, struct opts *o)
{
	bool seen[sizeof(options) / sizeof(options[0])] = { false };
	size_t k;

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0')
			arg_error("Found argument '%s' which wasn't expected, or isn't "
			    "valid in this context.", argv[i]);
		k = option_find(argv[i]);
		if (seen[k])
			arg_error("The argument '%s' was provided more than once.",
			    options[k].name);
		seen[k] = true;
		if (options[k].value && (i + 1 >= argc ||
		    strncmp(argv[i + 1], "--", 2) == 0))
			arg_error("The argument '%s' requires a value, but none was "
			    "supplied", options[k].name);
		if (options[k].refused != NULL)
			arg_error("%s", options[k].refused);
		if (options[k].value) {
			i++;
			if (options[k].slot != NO_SLOT)
				*(const char **)((char *)o + options[k].slot) = argv[i];
		} else if (options[k].slot != NO_SLOT) {
			*(bool *)((char *)o + options[k].slot) = true;
		}
		if (o->version) {
			printf("Firecracker v%s\n\n", FC_VERSION);
			exit(0);
		}
		if (o->help) {
			usage();
			exit(0);
		}
	}
}

static void
validate_id(const char *id)
{
	size_t l = strlen(id);

	if (l < 1 || l > 64) {
		fprintf(stderr, "Invalid instance ID: InvalidLen(%zu, 1, 64)\n", l);
		exit(EXIT_ARG_PARSING);
	}
	for (size_t k = 0; k < l; k++)
		if (!isalnum((unsigned char)id[k]) && id[k] != '-') {
			fprintf(stderr, "Invalid instance ID: InvalidChar('%c', %zu)\n",
			    id[k], k);
			exit(EXIT_ARG_PARSING);
		}
}

static void
exe_dir(char *out, size_t cap)
{
	char buf[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0) {
		snprintf(out, cap, ".");
		return;
	}
	buf[n] = '\0';
	if ((slash = strrchr(buf, '/')) != NULL)
		*slash = '\0';
	snprintf(out, cap, "%s", buf);
}

/* The options that set up the process before the API exists. */
static void
apply_opts(const struct opts *o)
{
	enum log_level l;
	char *end;

	snprintf(fc.id, sizeof(fc.id), "%s", o->id ? o->id : DEFAULT_INSTANCE_ID);
	validate_id(fc.id);
	snprintf(fc.api_sock, sizeof(fc.api_sock), "%s",
	    o->api_sock ? o->api_sock : DEFAULT_API_SOCK);
	fc.payload_limit = DEFAULT_PAYLOAD_LIMIT;
	if (o->payload != NULL) {
		unsigned long long v = strtoull(o->payload, &end, 10);
		if (*end || !*o->payload)
			arg_error("Invalid value for http-api-max-payload-size: %s",
			    o->payload);
		fc.payload_limit = (size_t)v;
	}
	if (o->level != NULL) {
		if (log_parse_level(o->level, &l) < 0)
			arg_error("Invalid level: Failed to parse string to level "
			    "filter: %s", o->level);
		fc.level = l;
	}
	fc.show_level = o->show_level;
	fc.show_origin = o->show_origin;
	fc.boot_timer = o->boot_timer;
	fc.enable_pci = o->enable_pci;
	if (o->module != NULL)
		snprintf(fc.module, sizeof(fc.module), "%s", o->module);
}

/* --log-path, --metrics-path, --metadata: fatal when they do not work. */
static void
open_outputs(const struct opts *o)
{
	json_error_t je;

	if (o->log_path != NULL) {
		if ((fc.log_fd = open_append(o->log_path)) < 0) {
			fprintf(stderr, "Error: Logger(Failed to open target file: %s "
			    "(os error %d))\n", os_strerror(errno), errno);
			exit(EXIT_GENERIC);
		}
		fc.logger_configured = true;
		fc.logger_cfg = json_pack("{s:s,s:s,s:b,s:b}", "log_path", o->log_path,
		    "level", log_level_name(fc.level), "show_level", fc.show_level,
		    "show_log_origin", fc.show_origin);
	}
	if (o->metrics_path != NULL) {
		if ((fc.metrics_fd = open_append(o->metrics_path)) < 0) {
			fprintf(stderr, "Error: Metrics(%s (os error %d))\n",
			    os_strerror(errno), errno);
			exit(EXIT_GENERIC);
		}
		fc.metrics_cfg = json_pack("{s:s}", "metrics_path", o->metrics_path);
	}
	if (o->metadata != NULL &&
	    (fc.mmds = json_load_file(o->metadata, 0, &je)) == NULL) {
		fprintf(stderr, "Error: Metadata(%s)\n", je.text);
		exit(EXIT_GENERIC);
	}
}

static int
api_bind_fail(int e)
{
	LOG_ERROR("RunWithApiError error: Failed to open the API socket at: %s. "
	    "Check that it is not already used.", fc.api_sock);
	if (e == ENAMETOOLONG)
		fprintf(stderr, "Error: RunWithApi(FailedToBindSocket(\"%s\")): path "
		    "must be shorter than SUN_LEN\n", fc.api_sock);
	else
		fprintf(stderr, "Error: RunWithApi(FailedToBindSocket(\"%s\")): Failed "
		    "to open the API socket at: %s. Check that it is not already used. "
		    "(%s (os error %d))\n", fc.api_sock, fc.api_sock, os_strerror(e), e);
	LOG_ERROR("Firecracker exiting with error. exit_code=1");
	return -1;
}

/* bind(), the listen delay a test may ask for, then listen(): the socket
 * file exists a while before connect() works, as with Firecracker. */
static int
api_listen(void)
{
	struct sockaddr_un sa;
	int fd = unix_socket(fc.api_sock, &sa);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return api_bind_fail(errno);
	if (fc.faults.active && fc.faults.listen_delay_ms > 0)
		usleep((useconds_t)fc.faults.listen_delay_ms * 1000);
	if (listen(fd, 128) < 0) {
		perror("fake-firecracker: listen");
		return -1;
	}
	return fd;
}

/* Orderly exit (guest reset, SIGHUP).  Leaves the API and vsock socket
 * files behind, as Firecracker does. */
static void __attribute__((noreturn))
fc_exit(int code)
{
	pthread_mutex_lock(&fc.mu);
	guest_kill_agent(SIGTERM);
	guest_cleanup_files();
	if (code == 0)
		LOG_INFO("Firecracker exiting successfully. exit_code=0");
	else
		LOG_ERROR("Firecracker exiting with error. exit_code=%d", code);
	pthread_mutex_unlock(&fc.mu);
	server_stop();
	state_free();
	exit(code);
}

/* Run by the agent as its --poweroff-cmd ("<exe> poweroff|reboot"): tell
 * the double that spawned it what the guest's init was asked to do.
 * SIGUSR1: reboot, SIGUSR2: poweroff.  -1 when this is no such call. */
static int
guest_power_helper(int argc, char **argv)
{
	const char *pid = getenv("BANGER_FAKE_GUEST_PID");

	if (argc != 2 || pid == NULL || (strcmp(argv[1], "poweroff") != 0 &&
	    strcmp(argv[1], "reboot") != 0))
		return -1;
	return kill((pid_t)atoi(pid), strcmp(argv[1], "reboot") == 0 ? SIGUSR1 :
	    SIGUSR2) == 0 ? 0 : 1;
}

static void
reap_children(void)
{
	int st;

	if (fc.agent_pid > 0 && waitpid(fc.agent_pid, &st, WNOHANG) == fc.agent_pid) {
		fake_note("guest agent (pid %d) exited (%s %d)", (int)fc.agent_pid,
		    WIFSIGNALED(st) ? "signal" : "status",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		fc.agent_pid = -1;
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* SIGTERM, SIGINT: Firecracker has no handler and dies at once. */
static void __attribute__((noreturn))
die_by(int sig)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t one;

	guest_kill_agent(SIGKILL);
	guest_cleanup_files();
	sigaction(sig, &dfl, NULL);
	sigemptyset(&one);
	sigaddset(&one, sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	raise(sig);
	_exit(128 + sig);
}

static void
on_signal(int sig, struct timers *t)
{
	switch (sig) {
	case SIGCHLD:
		reap_children();
		break;
	case SIGUSR1:
	case SIGUSR2:
		/* The guest's init was asked (through the agent) to reboot or
		 * power off.  Firecracker on x86 exits on the reboot's reset;
		 * after a poweroff the vCPUs halt and it keeps running. */
		if (fc.faults.active && fc.faults.ignore_poweroff) {
			fake_note("ignore_poweroff fault: the guest does not shut down");
		} else if (sig == SIGUSR1) {
			if (!t->shutdown_at)
				t->shutdown_at = now_ms() + (uint64_t)fc.faults.shutdown_delay_ms;
		} else if (fc.agent_pid > 0) {
			guest_kill_agent(SIGTERM);
			guest_console_line((double)(now_ms() - fc.start_ms) / 1000.0,
			    "reboot: Power down");
			fake_note("guest powered off: the vCPUs halt, Firecracker keeps "
			    "running");
		}
		break;
	case SIGHUP:
		pthread_mutex_unlock(&fc.mu);
		fc_exit(EXIT_SIGHUP);
	default:
		die_by(sig);
	}
}

/* A snapshot's guest runs for the first time in this process: it carries
 * on where it was, its agent answering again. */
static void
guest_wake(struct timers *t)
{
	fc.wake_pending = false;
	guest_resume_console();
	if (fc.vsock_fd >= 0)
		t->agent_at = now_ms() + 1 + (uint64_t)(fc.faults.active ?
		    fc.faults.agent_delay_ms : 0);
}

/* A load failed: Firecracker gives up on the process, in these words. */
static void __attribute__((noreturn))
restore_failed(void)
{
	LOG_ERROR("RunWithApiError error: Failed to build MicroVM: Loading "
	    "snapshot failed..");
	fprintf(stderr, "Error: RunWithApi(BuildMicroVmError(Restore))\n");
	pthread_mutex_unlock(&fc.mu);
	fc_exit(EXIT_GENERIC);
}

/* What an API call started, once its reply is out. */
static void
on_command(char c, struct timers *t)
{
	if (c == POST_FATAL)
		restore_failed();
	if (c == POST_RESTORED) {
		relay_start();
		guest_open_console();
		if (fc.state == ST_RUNNING)
			guest_wake(t);
	} else if (c == POST_STARTED) {
		relay_start();
		guest_boot_console();
		if (fc.vsock_fd >= 0)
			t->agent_at = now_ms() + 1 + (uint64_t)(fc.faults.active ?
			    fc.faults.agent_delay_ms : 0);
		if (fc.faults.active && fc.faults.die_after_start)
			t->die_at = now_ms() + 50;
	} else if (c == POST_SHUTDOWN && !t->shutdown_at) {
		t->shutdown_at = now_ms() + (uint64_t)fc.faults.shutdown_delay_ms;
	} else if (c == POST_RESUMED) {
		if (fc.vsock_reset_pending)
			relay_reset();
		fc.vsock_reset_pending = false;
		if (fc.wake_pending)
			guest_wake(t);
	}
}

static void
run_timers(struct timers *t)
{
	uint64_t now = now_ms();

	if (t->agent_at && now >= t->agent_at) {
		t->agent_at = 0;
		guest_spawn_agent();
	}
	if (t->die_at && now >= t->die_at) {
		fake_note("die_after_start fault: the VMM crashes now (exit code 1)");
		guest_kill_agent(SIGKILL);
		guest_cleanup_files();
		_exit(1);
	}
	if (t->shutdown_at && now >= t->shutdown_at) {
		/* The guest reacted to Ctrl-Alt-Del: init shuts down, then
		 * resets, and Firecracker exits on the vCPU reset. */
		guest_kill_agent(SIGTERM);
		guest_console_line((double)(now - fc.start_ms) / 1000.0,
		    "reboot: Restarting system");
		LOG_INFO("Vmm is stopping.");
		pthread_mutex_unlock(&fc.mu);
		fc_exit(0);
	}
}

static int
poll_timeout(const struct timers *t)
{
	uint64_t next = 0, now = now_ms();
	const uint64_t all[] = { t->agent_at, t->die_at, t->shutdown_at };

	for (size_t k = 0; k < 3; k++)
		if (all[k] && (!next || all[k] < next))
			next = all[k];
	if (!next)
		return -1;
	return next > now ? (int)(next - now) : 0;
}

static int
event_loop(int sfd)
{
	struct timers t = { 0 };
	struct signalfd_siginfo si;
	char cmds[64];
	ssize_t n;

	for (;;) {
		struct pollfd pfd[2] = { { .fd = sfd, .events = POLLIN },
		    { .fd = fc.cmd_pipe[0], .events = POLLIN } };
		int pr = poll(pfd, 2, poll_timeout(&t));
		if (pr < 0 && errno != EINTR) {
			perror("fake-firecracker: poll");
			return EXIT_GENERIC;
		}
		pthread_mutex_lock(&fc.mu);
		if (pr > 0 && (pfd[0].revents & POLLIN) &&
		    read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			on_signal((int)si.ssi_signo, &t);
		if (pr > 0 && (pfd[1].revents & POLLIN)) {
			n = read(fc.cmd_pipe[0], cmds, sizeof(cmds));
			for (ssize_t k = 0; k < n; k++)
				on_command(cmds[k], &t);
		}
		run_timers(&t);
		pthread_mutex_unlock(&fc.mu);
	}
}

int
main(int argc, char **argv)
{
	struct opts o = { 0 };
	const char *env;
	sigset_t mask;
	int helper, sfd, lfd;

	if ((helper = guest_power_helper(argc, argv)) >= 0)
		return helper;
	parse_args(argc, argv, &o);
	apply_opts(&o);
	exe_dir(fc.exe_dir, sizeof(fc.exe_dir));
	fc.agent_port = DEFAULT_AGENT_PORT;
	if ((env = getenv("BANGER_FAKE_AGENT_PORT")) != NULL && *env)
		fc.agent_port = (unsigned)strtoul(env, NULL, 10);
	atomic_init(&fc.next_host_port, FIRST_HOST_PORT);
	faults_read();
	if (fc.faults.active && fc.faults.exit_at_start_set) {
		fake_note("exit_at_start fault: exiting with code %d",
		    fc.faults.exit_at_start);
		exit(fc.faults.exit_at_start);
	}
	if ((env = getenv("BANGER_FAKE_FC_LOG")) != NULL && *env)
		fc.reqlog_fd = open(env, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0644);
	state_init();
	open_outputs(&o);
	LOG_INFO("Running Firecracker v%s", FC_VERSION);

	/* Signals are the main thread's, read synchronously. */
	sigemptyset(&mask);
	for (size_t k = 0; k < sizeof(handled_signals) / sizeof(int); k++)
		sigaddset(&mask, handled_signals[k]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (pipe2(fc.cmd_pipe, O_CLOEXEC) < 0 || sfd < 0) {
		perror("fake-firecracker: pipe/signalfd");
		return EXIT_GENERIC;
	}
	if ((lfd = api_listen()) < 0)
		return EXIT_GENERIC;
	if (server_start(lfd) < 0) {
		fprintf(stderr, "fake-firecracker: MHD_start_daemon failed\n");
		return EXIT_GENERIC;
	}
	LOG_INFO("API server started.");
	return event_loop(sfd);
}
