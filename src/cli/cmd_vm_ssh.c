/* cmd_vm_ssh.c - banger vm ssh: ssh to a VM with the runtime bundle's key
 * and a known-hosts file of the VM's own, or run a command there.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

static bool
is_vm_id(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return n == 16 && s[n] == '\0';
}

/* Drop known-hosts files of VMs that no longer exist (a new VM of the
 * same name has a new id, so these are never read again). */
static void
prune_known_hosts(struct cli *cli, const char *dir)
{
	struct reply r = { 0 };
	struct dirent *de;
	DIR *d;

	if (client_request(cli, "GET", "/v1/vms", NULL, 10, CLIENT_SILENT |
	    CLIENT_NO_AUTOSTART, &r) != CLI_EXIT_OK || r.status != 200)
		goto out;
	r.json = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	json_t *vms = jobj(r.json, WIRE_VMS);
	if (!json_is_array(vms) || (d = opendir(dir)) == NULL)
		goto out;
	while ((de = readdir(d)) != NULL) {
		json_t *vm;
		size_t i;
		bool live = false;

		if (!is_vm_id(de->d_name))
			continue;
		json_array_foreach(vms, i, vm) {
			const char *id = jstr(vm, WIRE_ID);

			if (id != NULL && strcmp(id, de->d_name) == 0)
				live = true;
		}
		if (!live)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
out:
	reply_free(&r);
}

/* The VM's known-hosts file.  bangerd's, in the VM's directory, when we
 * may write there (it goes with the VM); else one of our own under
 * $XDG_STATE_HOME/banger/known_hosts/<vm id>, for a user who reaches a
 * bangerd of another user.  Returns false after printing why. */
static bool
known_hosts_file(struct cli *cli, json_t *ssh, char *out, size_t len)
{
	const char *theirs = jstr(ssh, "known_hosts_path");
	const char *id = jstr(ssh, WIRE_ID);
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	struct bn_err err;
	char dir[PATH_MAX];

	if (theirs != NULL && theirs[0] == '/' && strlen(theirs) < sizeof(dir)) {
		char *slash;

		snprintf(dir, sizeof(dir), "%s", theirs);
		slash = strrchr(dir, '/');
		*slash = '\0';
		if (access(dir[0] ? dir : "/", W_OK) == 0) {
			snprintf(out, len, "%s", theirs);
			return true;
		}
	}
	if (id == NULL || !is_vm_id(id)) {
		fputs("banger: bangerd did not say which vm id to keep host keys "
		    "for\n", stderr);
		return false;
	}
	if (xdg != NULL && xdg[0] == '/')
		snprintf(dir, sizeof(dir), "%s/banger/known_hosts", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(dir, sizeof(dir), "%s/.local/state/banger/known_hosts",
		    home);
	else {
		fputs("banger: no place for the vm's known hosts: set HOME or "
		    "XDG_STATE_HOME\n", stderr);
		return false;
	}
	if (mkdir_p(dir, 0700, &err) < 0) {
		fprintf(stderr, "banger: cannot create %s: %s\n", dir,
		    err.sys_errno ? strerror(err.sys_errno) : err.msg);
		return false;
	}
	prune_known_hosts(cli, dir);
	snprintf(out, len, "%s/%s", dir, id);
	return true;
}

/* Run argv (ssh) as our child and wait for it.  Ctrl-C and Ctrl-\ belong
 * to ssh meanwhile.  Returns its exit status (128 + signal when killed),
 * 127 when it could not be run (printed). */
static int
run_ssh(char **args)
{
	struct sigaction ign, old_int, old_quit;
	int pfd[2], status, exec_errno = 0;
	pid_t pid;
	ssize_t got;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		fprintf(stderr, "banger: pipe: %s\n", strerror(errno));
		return CLI_EXIT_ERROR;
	}
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		close(pfd[0]);
		execvp(args[0], args);
		/* Tell the parent why, through the pipe exec would close. */
		exec_errno = errno;
		if (write(pfd[1], &exec_errno, sizeof(exec_errno)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	if (pid < 0) {
		fprintf(stderr, "banger: fork: %s\n", strerror(errno));
		close(pfd[0]);
		status = CLI_EXIT_ERROR;
		goto out;
	}
	do
		got = read(pfd[0], &exec_errno, sizeof(exec_errno));
	while (got < 0 && errno == EINTR);
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "banger: waitpid: %s\n", strerror(errno));
			status = CLI_EXIT_ERROR;
			goto out;
		}
	}
	if (got == (ssize_t)sizeof(exec_errno)) {
		fprintf(stderr, "banger: cannot run %s: %s\n", args[0],
		    strerror(exec_errno));
		fputs("hint: install an ssh client (apt-get install "
		    "openssh-client) or point BANGER_SSH at one\n", stderr);
		status = 127;
		goto out;
	}
	status = WIFEXITED(status) ? WEXITSTATUS(status) :
	    WIFSIGNALED(status) ? 128 + WTERMSIG(status) : CLI_EXIT_ERROR;
out:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	return status;
}

/* After an interactive session: a VM left running is easy to forget.
 * Says nothing when the VM is gone or stopped, or bangerd does not answer. */
static void
ssh_reminder(struct cli *cli, const char *name)
{
	struct reply r = { 0 };
	char *path = api_path("/v1/vms/", name, NULL);
	char *hpath = api_path("/v1/vms/", name, "/health");
	const char *state;
	char health[32] = "unknown", nb[128];

	if (client_request(cli, "GET", path, NULL, 10, CLIENT_SILENT |
	    CLIENT_NO_AUTOSTART, &r) != CLI_EXIT_OK || r.status != 200)
		goto out;
	r.json = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
	state = jstr(jobj(r.json, WIRE_STATUS), WIRE_STATE);
	if (state == NULL || strcmp(state, "running") != 0)
		goto out;
	reply_free(&r);
	if (client_request(cli, "GET", hpath, NULL, 10, CLIENT_SILENT |
	    CLIENT_NO_AUTOSTART, &r) == CLI_EXIT_OK && r.status == 200) {
		r.json = json_loadb(r.body ? r.body : "", r.len, 0, NULL);
		const char *st = jstr(r.json, WIRE_STATUS);

		if (st != NULL)
			out_clean(st, health, sizeof(health));
	}
	out_clean(name, nb, sizeof(nb));
	fprintf(stderr, "%s is still running (health: %s); stop it with: "
	    "banger vm stop %s\n", nb, health, nb);
out:
	reply_free(&r);
	free(hpath);
	free(path);
}

/* An ssh -o value: quoted when it has blanks (ssh splits them). */
static char *
ssh_option(const char *key, const char *value)
{
	if (strpbrk(value, " \t") != NULL)
		return xasprintf("%s=\"%s\"", key, value);
	return xasprintf("%s=%s", key, value);
}

/* The VM's host keys, when bangerd made them (host_keys in its answer),
 * written as the whole of the VM's known hosts: ssh then checks the key
 * it is shown against them instead of trusting the first one it sees.
 * False when there are none or the file cannot be written (ssh then
 * trusts on first use, as for a VM whose guest made its own keys). */
static bool
pin_host_keys(json_t *ssh, const char *kh, const char *host, long long port)
{
	json_t *keys = jobj(ssh, "host_keys"), *k;
	char tmp[PATH_MAX + 8];
	size_t i;
	int n = 0;

	if (!json_is_array(keys) || json_array_size(keys) == 0 ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", kh) >= (int)sizeof(tmp))
		return false;
	FILE *f = fopen(tmp, "we");
	if (f == NULL)
		return false;
	json_array_foreach(keys, i, k) {
		const char *key = json_string_value(k);
		/* "TYPE BASE64", nothing that would make another line. */
		if (key == NULL || strchr(key, ' ') == NULL ||
		    strpbrk(key, "\n\r") != NULL)
			continue;
		if (port == 22)
			fprintf(f, "%s %s\n", host, key);
		else
			fprintf(f, "[%s]:%lld %s\n", host, port, key);
		n++;
	}
	if (fclose(f) != 0 || n == 0 || rename(tmp, kh) < 0) {
		unlink(tmp);
		return false;
	}
	return true;
}

int
cmd_vm_ssh(struct cli *cli, const struct args *a)
{
	const char *name = a->v[0], *ssh_bin = getenv("BANGER_SSH");
	const char *user, *host, *key;
	char kh[PATH_MAX], port[16], *dest = NULL, *khopt = NULL, *path;
	char **args = NULL;
	struct reply r = { 0 };
	int nremote = a->nrest, na = 0, rc;
	json_t *jport;
	bool interactive = nremote == 0 && isatty(STDIN_FILENO) == 1;

	path = api_path("/v1/vms/", name, "/ssh");
	rc = api_call(cli, "GET", path, NULL, &r);
	free(path);
	if (rc != CLI_EXIT_OK)
		goto out;
	user = jstr(r.json, "user");
	host = jstr(r.json, "host");
	key = jstr(r.json, "key_path");
	jport = jobj(r.json, "port");
	if (user == NULL || host == NULL || key == NULL ||
	    !json_is_integer(jport)) {
		fputs("banger: bangerd's answer lacks the vm's ssh user, host, "
		    "port or key\n", stderr);
		rc = CLI_EXIT_SERVER;
		goto out;
	}
	/* ssh would only say "Permission denied (publickey)". */
	if (access(key, R_OK) < 0) {
		fprintf(stderr, "banger: cannot read the ssh key %s: %s\n", key,
		    strerror(errno));
		fputs("hint: the key belongs to bangerd's runtime bundle; run "
		    "banger as bangerd's user or make the key readable to you\n",
		    stderr);
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	if (!known_hosts_file(cli, r.json, kh, sizeof(kh))) {
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(jport));
	bool pinned = pin_host_keys(r.json, kh, host,
	    (long long)json_integer_value(jport));
	dest = xasprintf("%s@%s", user, host);
	khopt = ssh_option("UserKnownHostsFile", kh);

	args = xmalloc(sizeof(*args) * (size_t)(nremote + 20));
	args[na++] = (char *)(ssh_bin != NULL && ssh_bin[0] != '\0' ? ssh_bin :
	    "ssh");
	args[na++] = "-i";
	args[na++] = (char *)key;
	/* Only this key: agents with many keys hit MaxAuthTries first. */
	args[na++] = "-o";
	args[na++] = "IdentitiesOnly=yes";
	/* Host keys are per VM; addresses are reused by later VMs. */
	args[na++] = "-o";
	args[na++] = khopt;
	args[na++] = "-o";
	args[na++] = "GlobalKnownHostsFile=/dev/null";
	args[na++] = "-o";
	args[na++] = pinned ? "StrictHostKeyChecking=yes" :
	    "StrictHostKeyChecking=accept-new";
	/* No "Permanently added ..." line on each VM's first login; errors
	 * (a changed host key among them) still show. */
	args[na++] = "-o";
	args[na++] = "LogLevel=ERROR";
	args[na++] = "-p";
	args[na++] = port;
	args[na++] = "--";
	args[na++] = dest;
	for (int i = 0; i < nremote; i++)
		args[na++] = a->rest[i];
	args[na] = NULL;

	/* ssh must not inherit our connection to bangerd; a new one is made
	 * for the reminder. */
	client_free(cli);
	rc = run_ssh(args);
	if (interactive && !args_flag(a, "--no-reminder") && cli_chatty(cli))
		ssh_reminder(cli, name);
out:
	free(args);
	free(khopt);
	free(dest);
	reply_free(&r);
	return rc;
}
