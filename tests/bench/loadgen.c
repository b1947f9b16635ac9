/* loadgen - keep-alive HTTP load over a Unix socket for `make bench`.
 *
 * usage: loadgen SOCKET PATH CLIENTS SECONDS
 * Each client thread holds one connection and sends GET PATH back to back;
 * prints requests/s and latency percentiles as JSON. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct client {
	const char *sock, *path;
	double seconds;
	long n, errors;
	double *lat;   /* milliseconds */
	long cap;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Read one response; returns 0 when complete and the status is 200. */
static int
read_response(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	char *hdr_end = NULL;
	long clen = -1;
	int status = 0;

	for (;;) {
		ssize_t r = read(fd, buf + have, cap - have - 1);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		if (hdr_end == NULL && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
			sscanf(buf, "HTTP/1.%*d %d", &status);
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			if (cl == NULL || cl > hdr_end)
				return -1;
			clen = strtol(cl + 17, NULL, 10);
		}
		if (hdr_end && (long)(have - (size_t)(hdr_end + 4 - buf)) >= clen)
			return status == 200 ? 0 : -1;
		if (have + 1 >= cap)
			return -1;
	}
}

static void *
run(void *arg)
{
	struct client *c = arg;
	char req[512];
	size_t cap = 4 << 20;
	char *buf = malloc(cap);
	int fd = dial(c->sock);
	int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n"
	    "\r\n", c->path);
	double end = now_ms() + c->seconds * 1e3;

	while (fd >= 0 && now_ms() < end) {
		double t0 = now_ms();
		if (write(fd, req, (size_t)len) != len || read_response(fd, buf, cap) < 0) {
			c->errors++;
			close(fd);
			fd = dial(c->sock);
			continue;
		}
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 65536;
			c->lat = realloc(c->lat, (size_t)c->cap * sizeof(double));
		}
		c->lat[c->n++] = now_ms() - t0;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: loadgen SOCKET PATH CLIENTS SECONDS\n");
		return 2;
	}
	int nc = atoi(argv[3]);
	double secs = atof(argv[4]);
	struct client *cs = calloc((size_t)nc, sizeof(*cs));
	pthread_t *th = calloc((size_t)nc, sizeof(*th));
	long total = 0, errors = 0;
	double t0 = now_ms();

	for (int i = 0; i < nc; i++) {
		cs[i] = (struct client){ .sock = argv[1], .path = argv[2], .seconds = secs };
		pthread_create(&th[i], NULL, run, &cs[i]);
	}
	for (int i = 0; i < nc; i++) {
		pthread_join(th[i], NULL);
		total += cs[i].n;
		errors += cs[i].errors;
	}
	double elapsed = (now_ms() - t0) / 1e3;
	double *all = malloc((size_t)(total ? total : 1) * sizeof(double));
	long k = 0;
	for (int i = 0; i < nc; i++) {
		memcpy(all + k, cs[i].lat, (size_t)cs[i].n * sizeof(double));
		k += cs[i].n;
		free(cs[i].lat);
	}
	qsort(all, (size_t)total, sizeof(double), cmp);
#define PCT(p) (total ? all[(long)((p) / 100.0 * (total - 1))] : 0.0)
	printf("{\"requests\": %ld, \"errors\": %ld, \"seconds\": %.2f, "
	    "\"rps\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
	    total, errors, elapsed, total / elapsed, PCT(50), PCT(99), PCT(100));
	free(all);
	free(cs);
	free(th);
	return errors ? 1 : 0;
}
