/* user.c - who a command runs as: a user's entry in /etc/passwd and its
 * groups in /etc/group.
 *
 * The files are read directly, not through getpwnam() and initgroups():
 * in a static glibc binary those load NSS modules at run time, from the
 * glibc the agent was linked with, which the guest may not have.  Every
 * banger image keeps its users in the files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The decimal id in s (all of it); -1 otherwise. */
static long
parse_id(const char *s)
{
	long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 0x7fffffffL / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* Split line (no newline) at ':' into at most max fields; how many. */
static int
split(char *line, char **f, int max)
{
	int n = 0;

	f[n++] = line;
	for (char *p = line; *p && n < max; p++)
		if (*p == ':') {
			*p = '\0';
			f[n++] = p + 1;
		}
	return n;
}

static int
copy(char *out, size_t cap, const char *s)
{
	size_t n = strlen(s);

	if (n >= cap)
		return -1;
	memcpy(out, s, n + 1);
	return 0;
}

/* name:password:uid:gid:gecos:home:shell */
static int
read_passwd(const char *name, struct agent_user *u)
{
	FILE *f = fopen("/etc/passwd", "re");
	char *line = NULL, *fl[7];
	size_t cap = 0;
	ssize_t n;
	int found = 0;

	if (f == NULL)
		return -1;
	while (!found && (n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (split(line, fl, 7) != 7 || strcmp(fl[0], name) != 0)
			continue;
		long uid = parse_id(fl[2]), gid = parse_id(fl[3]);
		if (uid < 0 || gid < 0 ||
		    copy(u->home, sizeof(u->home), fl[5][0] ? fl[5] : "/") < 0 ||
		    copy(u->shell, sizeof(u->shell),
		    fl[6][0] ? fl[6] : "/bin/sh") < 0)
			continue;
		u->uid = (uid_t)uid;
		u->gid = (gid_t)gid;
		found = 1;
	}
	free(line);
	fclose(f);
	if (!found)
		errno = ENOENT;
	return found ? 0 : -1;
}

/* name:password:gid:member,member,...  The primary group comes first. */
static void
read_groups(struct agent_user *u)
{
	FILE *f = fopen("/etc/group", "re");
	char *line = NULL, *fl[4];
	size_t cap = 0;
	ssize_t n;

	u->groups[0] = u->gid;
	u->ngroups = 1;
	if (f == NULL)
		return;
	while (u->ngroups < AGENT_MAX_GROUPS &&
	    (n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (split(line, fl, 4) != 4)
			continue;
		long gid = parse_id(fl[2]);
		if (gid < 0 || (gid_t)gid == u->gid)
			continue;
		char *save = NULL;
		for (char *m = strtok_r(fl[3], ",", &save); m != NULL;
		    m = strtok_r(NULL, ",", &save))
			if (strcmp(m, u->name) == 0) {
				u->groups[u->ngroups++] = (gid_t)gid;
				break;
			}
	}
	free(line);
	fclose(f);
}

int
agent_user_lookup(const char *name, struct agent_user *ret)
{
	struct agent_user u;

	memset(&u, 0, sizeof(u));
	if (name[0] == '\0' || copy(u.name, sizeof(u.name), name) < 0) {
		errno = ENOENT;
		return -1;
	}
	if (read_passwd(name, &u) < 0) {
		if (errno != ENOENT || strcmp(name, "root") != 0)
			return -1;
		/* An image without root in /etc/passwd still has uid 0. */
		strcpy(u.home, "/root");
		strcpy(u.shell, "/bin/sh");
	}
	read_groups(&u);
	*ret = u;
	return 0;
}
