/* locks.c - per-VM locks: actions on one VM run one at a time. */
#include "core/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

static struct vm_lock *
lock_ref(struct core *c, const char *name)
{
	struct vm_lock *l;

	pthread_mutex_lock(&c->locks_mu);
	for (l = c->locks; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			break;
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		snprintf(l->name, sizeof(l->name), "%s", name);
		pthread_mutex_init(&l->mu, NULL);
		l->next = c->locks;
		c->locks = l;
	}
	l->refs++;
	pthread_mutex_unlock(&c->locks_mu);
	return l;
}

static void
lock_unref(struct core *c, struct vm_lock *l)
{
	pthread_mutex_lock(&c->locks_mu);
	if (--l->refs == 0) {
		for (struct vm_lock **pp = &c->locks; *pp; pp = &(*pp)->next)
			if (*pp == l) {
				*pp = l->next;
				break;
			}
		pthread_mutex_destroy(&l->mu);
		free(l);
	}
	pthread_mutex_unlock(&c->locks_mu);
}

void
vm_lock(struct core *c, const char *name)
{
	struct vm_lock *l = lock_ref(c, name);

	pthread_mutex_lock(&l->mu);
}

bool
vm_trylock(struct core *c, const char *name)
{
	struct vm_lock *l = lock_ref(c, name);

	if (pthread_mutex_trylock(&l->mu) == 0)
		return true;
	lock_unref(c, l);
	return false;
}

bool
vm_lock_within(struct core *c, const char *name, long ms)
{
	struct vm_lock *l = lock_ref(c, name);
	struct timespec until;

	realtime_in_ms(ms, &until);
	if (pthread_mutex_timedlock(&l->mu, &until) == 0)
		return true;
	lock_unref(c, l);
	return false;
}

void
vm_unlock(struct core *c, const char *name)
{
	struct vm_lock *l;

	pthread_mutex_lock(&c->locks_mu);
	for (l = c->locks; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			break;
	pthread_mutex_unlock(&c->locks_mu);
	if (l == NULL)
		return;
	pthread_mutex_unlock(&l->mu);
	lock_unref(c, l);
}
