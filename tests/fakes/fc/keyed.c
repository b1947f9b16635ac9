/* keyed.c - devices named by an id in the path: drives, network interfaces. */
#include "fake.h"

#include <string.h>

static ssize_t
keyed_find(const struct keyed *k, const struct request *rq)
{
	size_t i;
	json_t *dev;

	json_array_foreach(*k->items, i, dev)
		if (strcmp(jstr(dev, rq->spec->id_field), rq->id) == 0)
			return (ssize_t)i;
	return -1;
}

void
keyed_put(const struct keyed *k, struct request *rq)
{
	ssize_t idx;
	json_t *dev;

	if (!boot_resource_or_reply(rq))
		return;
	idx = keyed_find(k, rq);
	if ((dev = k->build(rq, idx)) == NULL)
		return;
	if (k->store != NULL)
		k->store(dev, idx);
	else if (idx < 0)
		json_array_append_new(*k->items, dev);
	else
		json_array_set_new(*k->items, (size_t)idx, dev);
	reply_ok(rq);
}

void
keyed_patch(const struct keyed *k, struct request *rq)
{
	ssize_t idx;
	json_t *dev;

	if (!postboot_or_reply(rq))
		return;
	if ((idx = keyed_find(k, rq)) < 0) {
		reply_fault(rq, "%s", k->patch_missing);
		return;
	}
	dev = json_array_get(*k->items, (size_t)idx);
	if (k->patch_check != NULL && k->patch_check(rq, dev) < 0)
		return;
	json_object_update(dev, rq->body);
	reply_ok(rq);
}
