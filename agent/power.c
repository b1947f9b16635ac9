/* power.c - the guest side of a clean stop.
 *
 * Two ways in, one way out:
 *   - POST /poweroff from the host (bangerd asks before it touches the VMM);
 *   - the power key (QEMU's system_powerdown is an ACPI power button, seen
 *     as KEY_POWER on an evdev device), for hosts and images that predate
 *     the route, and for images without logind or acpid to act on it.
 * Both end in power_request(): sync, then the init system's own poweroff
 * or reboot command, so services stop and filesystems unmount cleanly.
 * Only when that command cannot run at all does the agent sync and call
 * reboot(2) itself.
 *
 * Firecracker has no power management on x86: a guest that powers off
 * halts and Firecracker keeps running, while a reboot (reboot=k) makes it
 * exit.  So the host asks for "reboot" there and "poweroff" on QEMU, which
 * runs with -no-reboot and would exit on either.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/input.h>)
#include <linux/input.h>
#define HAVE_LINUX_INPUT_H 1
#endif
#endif

#ifndef HAVE_LINUX_INPUT_H
/* musl ships no kernel headers: the stable evdev ABI we use. */
#include <sys/time.h>
struct input_event {
	struct timeval time;
	unsigned short type;
	unsigned short code;
	int value;
};
#define EV_KEY 0x01
#define KEY_POWER 116
#define KEY_MAX 0x2ff
#define EVIOCGBIT(ev, len) _IOC(_IOC_READ, 'E', 0x20 + (ev), len)
#endif

#define POWER_CMD_TIMEOUT_MS 15000
#define KEY_RESCAN_MS 2000
#define MAX_KEY_DEVS 8

static atomic_int power_started;

const char *
power_mode_name(enum power_mode m)
{
	return m == POWER_REBOOT ? "reboot" : "poweroff";
}

int
power_mode_parse(const char *s, size_t n, enum power_mode *ret)
{
	if (n == 8 && strncmp(s, "poweroff", 8) == 0)
		*ret = POWER_OFF;
	else if (n == 6 && strncmp(s, "reboot", 6) == 0)
		*ret = POWER_REBOOT;
	else
		return -1;
	return 0;
}

int
power_allowed(const struct agent_config *cfg)
{
	/* An agent on a Unix socket runs on somebody's workstation (tests,
	 * the Firecracker test double): it never powers that machine off. */
	return cfg->poweroff_cmd != NULL || cfg->in_guest;
}

/* The first executable of the candidates, or NULL. */
static const char *
find_cmd(const char *const *cands)
{
	for (; *cands != NULL; cands++)
		if (access(*cands, X_OK) == 0)
			return *cands;
	return NULL;
}

/* Run argv and wait for it at most timeout_ms; its exit status, or -1. */
static int
run_wait(char *const argv[], int timeout_ms)
{
	pid_t pid = fork();
	if (pid < 0) {
		agent_log("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		execv(argv[0], argv);
		_exit(127);
	}
	long long deadline = agent_now_ms() + timeout_ms;
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		if (w < 0 && errno != EINTR)
			return -1;
		if (agent_now_ms() >= deadline) {
			/* Still running: the init system took the request and
			 * is shutting down around us; that is success enough. */
			return 0;
		}
		usleep(50 * 1000);
	}
}

static void *
power_thread(void *arg)
{
	const struct agent_config *cfg = ((void **)arg)[0];
	enum power_mode mode = (enum power_mode)(long)((void **)arg)[1];
	free(arg);

	sync();
	int rc;
	if (cfg->poweroff_cmd != NULL) {
		char *argv[] = { (char *)cfg->poweroff_cmd,
		    (char *)power_mode_name(mode), NULL };
		rc = run_wait(argv, POWER_CMD_TIMEOUT_MS);
		if (rc != 0)
			agent_log("%s %s exited with %d", cfg->poweroff_cmd,
			    power_mode_name(mode), rc);
		return NULL;
	}
	/* systemd's, runit-void's and busybox's poweroff/reboot all hand the
	 * request to PID 1, which stops services and unmounts. */
	static const char *const off[] = { "/sbin/poweroff", "/usr/sbin/poweroff",
		"/bin/poweroff", "/usr/bin/poweroff", NULL };
	static const char *const reb[] = { "/sbin/reboot", "/usr/sbin/reboot",
		"/bin/reboot", "/usr/bin/reboot", NULL };
	const char *cmd = find_cmd(mode == POWER_REBOOT ? reb : off);
	rc = -1;
	if (cmd != NULL) {
		char *argv[] = { (char *)cmd, NULL };
		rc = run_wait(argv, POWER_CMD_TIMEOUT_MS);
		if (rc != 0)
			agent_log("%s exited with %d", cmd, rc);
	} else {
		agent_log("no %s command found", power_mode_name(mode));
	}
	if (rc != 0) {
		/* Last resort: no init system took it.  Synced, but the
		 * filesystems stay mounted: the next boot replays journals. */
		agent_log("%s through the kernel", power_mode_name(mode));
		sync();
		reboot(mode == POWER_REBOOT ? RB_AUTOBOOT : RB_POWER_OFF);
		agent_log("reboot(2): %s", strerror(errno));
	}
	return NULL;
}

int
power_request(const struct agent_config *cfg, enum power_mode mode)
{
	if (!power_allowed(cfg))
		return -1;
	if (atomic_exchange(&power_started, 1) != 0)
		return 1;   /* already on its way down */
	agent_log("%s requested", power_mode_name(mode));
	void **arg = malloc(2 * sizeof(void *));
	if (arg == NULL)
		return -1;
	arg[0] = (void *)cfg;
	arg[1] = (void *)(long)mode;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t tid;
	int r = pthread_create(&tid, &attr, power_thread, arg);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		agent_log("pthread_create: %s", strerror(r));
		free(arg);
		atomic_store(&power_started, 0);
		return -1;
	}
	return 0;
}

/* ---- the power key ---- */

static int
has_power_key(int fd)
{
	unsigned char bits[KEY_MAX / 8 + 1];
	memset(bits, 0, sizeof(bits));
	if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof(bits)), bits) < 0)
		return 0;
	return (bits[KEY_POWER / 8] >> (KEY_POWER % 8)) & 1;
}

/* Open every event device under dir that has KEY_POWER; returns how many. */
static int
open_key_devices(const char *dir, int *fds, int cap)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	int n = 0;
	struct dirent *de;
	while (n < cap && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "event", 5) != 0)
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (has_power_key(fd))
			fds[n++] = fd;
		else
			close(fd);
	}
	closedir(d);
	return n;
}

static void *
power_key_main(void *arg)
{
	const struct agent_config *cfg = arg;
	int fds[MAX_KEY_DEVS];
	int n = 0;

	for (;;) {
		/* The button and evdev modules may load after we start. */
		while (n == 0) {
			n = open_key_devices(cfg->input_dir, fds, MAX_KEY_DEVS);
			if (n == 0)
				usleep(KEY_RESCAN_MS * 1000);
		}
		struct pollfd p[MAX_KEY_DEVS];
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			agent_log("poll on input devices: %s", strerror(errno));
			return NULL;
		}
		int lost = 0;
		for (int i = 0; i < n; i++) {
			if (p[i].revents & (POLLERR | POLLHUP | POLLNVAL))
				lost = 1;
			if (!(p[i].revents & POLLIN))
				continue;
			struct input_event ev[16];
			ssize_t r = read(fds[i], ev, sizeof(ev));
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				lost = 1;
			for (ssize_t k = 0; r > 0 && k < r / (ssize_t)sizeof(ev[0]); k++)
				if (ev[k].type == EV_KEY && ev[k].code == KEY_POWER &&
				    ev[k].value == 1)
					power_request(cfg, POWER_OFF);
		}
		if (lost) {
			for (int i = 0; i < n; i++)
				close(fds[i]);
			n = 0;
		}
	}
}

int
power_key_start(const struct agent_config *cfg)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_t tid;
	int r = pthread_create(&tid, &attr, power_key_main, (void *)cfg);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		agent_log("power key watcher: %s", strerror(r));
		return -1;
	}
	return 0;
}

static void
power_after(const struct agent_config *cfg, int mode)
{
	power_request(cfg, (enum power_mode)mode);
}

/* POST /poweroff[?mode=poweroff|reboot]: 202 now, the shutdown after the
 * reply has left (the request's after-reply action). */
void
power_route(struct agent_request *rq)
{
	enum power_mode mode = POWER_OFF;
	const char *v;
	int n = agent_query_value(rq->query, "mode", &v);
	if (n >= 0 && power_mode_parse(v, (size_t)n, &mode) < 0) {
		agent_reply_error(rq, 400, "mode must be poweroff or reboot");
		return;
	}
	if (!power_allowed(rq->cfg)) {
		agent_reply_error(rq, 403, "this agent does not run in a guest "
		    "(no --poweroff-cmd): refusing to power off its host");
		return;
	}
	char body[64];
	int bl = snprintf(body, sizeof(body),
	    "{\"status\":\"accepted\",\"mode\":\"%s\"}", power_mode_name(mode));
	agent_reply(rq, 202, body, (size_t)bl);
	rq->after = power_after;
	rq->after_arg = (int)mode;
}
