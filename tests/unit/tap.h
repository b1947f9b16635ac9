/* tap.h - a tiny TAP harness for banger's C unit tests.
 *
 * A test is `static int test_x(void)` returning 0 (pass), -1 (fail) or 77
 * (skip).  Inside it, fail_unless(cond, fmt, ...) reports and returns -1.
 * main() lists them with RUN_TEST(test_x) between tap_begin()/tap_end().
 */
#ifndef BANGER_TAP_H
#define BANGER_TAP_H

#include <stdio.h>

static int tap_n, tap_failed, tap_skipped;

#define fail_unless(cond, ...)                                          \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stdout, "#   %s:%d: %s: ", __FILE__,     \
			    __LINE__, #cond);                           \
			fprintf(stdout, __VA_ARGS__);                   \
			fputc('\n', stdout);                            \
			return -1;                                      \
		}                                                       \
	} while (0)

#define skip_test(why)                                                  \
	do {                                                            \
		fprintf(stdout, "#   skip: %s\n", why);               \
		return 77;                                              \
	} while (0)

#define RUN_TEST(fn)                                                    \
	do {                                                            \
		int tap_rc_ = fn();                                     \
		tap_n++;                                                \
		if (tap_rc_ == 0)                                       \
			printf("ok %d - %s\n", tap_n, #fn);             \
		else if (tap_rc_ == 77) {                               \
			tap_skipped++;                                  \
			printf("ok %d - %s # SKIP\n", tap_n, #fn);      \
		} else {                                                \
			tap_failed++;                                   \
			printf("not ok %d - %s\n", tap_n, #fn);         \
		}                                                       \
		fflush(stdout);                                         \
	} while (0)

static inline void tap_begin(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

static inline int tap_end(void)
{
	printf("1..%d\n", tap_n);
	printf("# %d passed, %d failed, %d skipped\n",
	    tap_n - tap_failed - tap_skipped, tap_failed, tap_skipped);
	return tap_failed ? 1 : 0;
}

#endif
