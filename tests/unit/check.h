/* check.h — the unit-test idiom: TEST functions, CHECK assertions, one line per test.
 *
 * Every test program prints "PASS name" or "FAIL name: file:line: what" per test and
 * exits non-zero when any failed; tests/run adds the lines up into the suite's
 * "N passed, N failed". Each test gets a fresh private directory in check_tmpdir.
 */
#ifndef SHMWARDEN_CHECK_H
#define SHMWARDEN_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_failures;      /* failures inside the running test */
static int check_total_failed;  /* tests that failed */
static int check_total_passed;
static char check_tmpdir[512];  /* private directory of the running test */

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			if (check_failures++ == 0)                                    \
				printf("FAIL %s: %s:%d: %s\n", check_current, __FILE__, \
				       __LINE__, #cond);                              \
			fflush(stdout);                                               \
		}                                                                     \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                             \
	do {                                                                           \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);        \
		if (check_a_ != check_b_) {                                            \
			if (check_failures++ == 0)                                     \
				printf("FAIL %s: %s:%d: %s == %s (%lld != %lld)\n",    \
				       check_current, __FILE__, __LINE__, #a, #b,     \
				       check_a_, check_b_);                           \
			fflush(stdout);                                                \
		}                                                                      \
	} while (0)

static const char *check_current = "";

static void check_rmtree(const char *path)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "check: could not remove %s\n", path);
}

static void check_run(const char *name, void (*fn)(void))
{
	const char *base = getenv("TMPDIR");
	snprintf(check_tmpdir, sizeof(check_tmpdir), "%s/shmw-unit-XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(check_tmpdir)) {
		printf("FAIL %s: mkdtemp failed\n", name);
		check_total_failed++;
		return;
	}
	check_current = name;
	check_failures = 0;
	fn();
	if (check_failures) {
		check_total_failed++;
	} else {
		printf("PASS %s\n", name);
		check_total_passed++;
	}
	fflush(stdout);
	check_rmtree(check_tmpdir);
}

#define RUN(fn) check_run(#fn, fn)

static int check_done(void)
{
	printf("%d passed, %d failed\n", check_total_passed, check_total_failed);
	return check_total_failed ? 1 : 0;
}

#endif
