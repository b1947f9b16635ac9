/* output.c - printing for people on top of the API layer: key/value
 * lines, tables, and the list commands (GET, then a table, names only
 * with -q, or the body as-is with --json).  Every cell goes through
 * out_clean() (text.c).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

void
out_kv(const char *key, const char *value)
{
	char k[64], buf[2048];

	snprintf(k, sizeof(k), "%s:", key);
	printf("%-14s %s\n", k, out_clean(value ? value : "-", buf, sizeof(buf)));
}

void
table_init(struct table *t, int ncols, const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols > TABLE_MAX_COLS ? TABLE_MAX_COLS : ncols;
	table_add(t, headers);
}

void
table_add(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = xrealloc(t->cells,
		    t->cap * (size_t)t->ncols * sizeof(char *));
	}
	for (int i = 0; i < t->ncols; i++) {
		const char *s = cells[i] ? cells[i] : "-";
		size_t n = strlen(s) + 1;
		char *c = xmalloc(n);

		out_clean(s, c, n);
		t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = c;
	}
	t->nrows++;
}

void
table_print(const struct table *t, FILE *f)
{
	size_t width[TABLE_MAX_COLS] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (int i = 0; i < t->ncols; i++) {
			size_t n = strlen(t->cells[r * (size_t)t->ncols + (size_t)i]);
			if (n > width[i])
				width[i] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int i = 0; i < t->ncols; i++) {
			const char *c = t->cells[r * (size_t)t->ncols + (size_t)i];

			if (i == t->ncols - 1)
				fprintf(f, "%s\n", c);
			else
				fprintf(f, "%-*s  ", (int)width[i], c);
		}
	}
}

void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

int
out_list(struct cli *cli, const struct list_spec *ls)
{
	struct reply r = { 0 };
	struct table t;
	json_t *items, *item;
	size_t i;
	int rc;

	rc = api_call(cli, "GET", ls->path, NULL, &r);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (cli->json) {
		out_raw(&r);
		goto out;
	}
	items = jobj(r.json, ls->key);
	if (!json_is_array(items)) {
		fprintf(stderr, "banger: bangerd's answer to GET %s has no \"%s\" "
		    "array\n", ls->path, ls->key);
		rc = CLI_EXIT_SERVER;
		goto out;
	}
	if (cli->quiet) {
		char buf[256];

		json_array_foreach(items, i, item)
			printf("%s\n", jtext(jobj(item, ls->id_key), buf, sizeof(buf)));
		goto out;
	}
	table_init(&t, ls->ncols, ls->headers);
	json_array_foreach(items, i, item) {
		char c[TABLE_MAX_COLS][1024];
		const char *row[TABLE_MAX_COLS];

		for (int k = 0; k < ls->ncols; k++) {
			if (ls->cell != NULL)
				ls->cell(item, k, c[k], sizeof(c[k]));
			else
				jtext(jobj(item, ls->keys[k]), c[k], sizeof(c[k]));
			row[k] = c[k];
		}
		table_add(&t, row);
	}
	table_print(&t, stdout);
	table_free(&t);
out:
	reply_free(&r);
	return rc;
}

int
out_call(struct cli *cli, const char *method, const char *path,
    json_t *body, struct reply *r)
{
	int rc = api_call(cli, method, path, body, r);

	if (rc == CLI_EXIT_OK && cli->json)
		out_raw(r);
	return rc;
}

int
out_show(struct cli *cli, const char *prefix, const char *name,
    const char *suffix, void (*show)(json_t *))
{
	struct reply r = { 0 };
	char *path = api_path(prefix, name, suffix);
	int rc = out_call(cli, "GET", path, NULL, &r);

	if (rc == CLI_EXIT_OK && !cli->json)
		show(r.json);
	reply_free(&r);
	free(path);
	return rc;
}
