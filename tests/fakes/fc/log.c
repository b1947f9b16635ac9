/* log.c - Firecracker's log lines, metrics lines and the double's notes. */
#include "fake.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static __thread const char *thread_name = "main";

static const char *const level_names[] = {
	[LV_OFF] = "OFF", [LV_ERROR] = "ERROR", [LV_WARN] = "WARN",
	[LV_INFO] = "INFO", [LV_DEBUG] = "DEBUG", [LV_TRACE] = "TRACE",
};

/* Firecracker's level names, any case; "warning" is a second "warn". */
static const struct {
	const char *name;
	enum log_level level;
} level_words[] = {
	{ "off", LV_OFF }, { "trace", LV_TRACE }, { "debug", LV_DEBUG },
	{ "info", LV_INFO }, { "warn", LV_WARN }, { "warning", LV_WARN },
	{ "error", LV_ERROR },
};

void
log_thread_name(const char *name)
{
	thread_name = name;
}

const char *
log_level_name(enum log_level l)
{
	return level_names[l];
}

int
log_parse_level(const char *s, enum log_level *ret)
{
	for (size_t i = 0; i < sizeof(level_words) / sizeof(level_words[0]); i++)
		if (strcasecmp(s, level_words[i].name) == 0) {
			*ret = level_words[i].level;
			return 0;
		}
	return -1;
}

/* A module filter passes what Firecracker's own crates log. */
static bool
module_passes(void)
{
	size_t n = strlen(fc.module);

	return n == 0 || strncmp("firecracker", fc.module, n) == 0 ||
	    strncmp("vmm", fc.module, n) == 0;
}

void
fc_log_at(enum log_level lvl, int line, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char *buf = NULL;
	size_t len = 0;
	va_list ap;

	if (lvl > fc.level || fc.level == LV_OFF || !module_passes())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return;
	fprintf(f, "%04d-%02d-%02dT%02d:%02d:%02d.%09ld [%s:%s",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec, fc.id, thread_name);
	if (fc.show_level)
		fprintf(f, ":%s", log_level_name(lvl));
	/* Lines of the double stand in for Firecracker's vmm crate. */
	if (fc.show_origin)
		fprintf(f, ":src/vmm/src/lib.rs:%d", line);
	fputs("] ", f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
	write_all_fd(fc.log_fd >= 0 ? fc.log_fd : STDOUT_FILENO, buf, len);
	free(buf);
}

void
fake_note(const char *fmt, ...)
{
	char msg[2048], line[2200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int n = snprintf(line, sizeof(line), "[fake-firecracker %s] %s\n", fc.id,
	    msg);
	if (n > 0)
		write_all_fd(STDERR_FILENO, line,
		    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void
metrics_flush(void)
{
	struct timespec ts;
	char line[256];

	if (fc.metrics_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	int n = snprintf(line, sizeof(line),
	    "{\"utc_timestamp_ms\":%lld,\"api_server\":{},\"vmm\":{}}\n",
	    (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (n > 0)
		write_all_fd(fc.metrics_fd, line, (size_t)n);
}
