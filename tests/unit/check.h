/* check.h — the unit-test idiom: TEST functions, CHECK assertions, one line per test.
 *
 * Every test program prints "PASS name" or "FAIL name: file:line: what" per test and
 * exits non-zero when any failed. Each test gets a fresh private directory in
 * check_tmpdir.
 *
 *   build/tests/test_NAME             runs every case, then "N passed, N failed"
 *   build/tests/test_NAME CASE...     runs only the cases named (in the program's order)
 *   build/tests/test_NAME --list      prints the names of the cases, one a line
 *
 * A CASE that names no case, or an unknown option, is an error: a message on stderr
 * and exit status 2. pytest (conftest.py) lists each program's cases and runs
 * the ones selected, so `-k CASE` reaches one C case. The arguments are read from
 * /proc/self/cmdline, so every program's main() stays `int main(void)`.
 */
#ifndef SHMWARDEN_CHECK_H
#define SHMWARDEN_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_failures;     /* failures inside the running test */
static int check_total_failed; /* tests that failed */
static int check_total_passed;
static char check_tmpdir[512]; /* private directory of the running test */

#define CHECK(cond)                                                                               \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			if (check_failures++ == 0)                                                \
				printf("FAIL %s: %s:%d: %s\n", check_current, __FILE__, __LINE__, \
				       #cond);                                                    \
			fflush(stdout);                                                           \
		}                                                                                 \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                    \
		if (check_a_ != check_b_) {                                                        \
			if (check_failures++ == 0)                                                 \
				printf("FAIL %s: %s:%d: %s == %s (%lld != %lld)\n", check_current, \
				       __FILE__, __LINE__, #a, #b, check_a_, check_b_);            \
			fflush(stdout);                                                            \
		}                                                                                  \
	} while (0)

static const char *check_current = "";

static void check_rmtree(const char *path)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "check: could not remove %s\n", path);
}

/* The command line: --list, or the names of the cases to run (none: all of them). */
#define CHECK_MAX_ARGS 256
static char check_argbuf[8192];
static const char *check_names[CHECK_MAX_ARGS];
static bool check_named[CHECK_MAX_ARGS]; /* this name matched a case */
static int check_nnames = -1;            /* -1: the command line is not read yet */
static bool check_listing;

static void check_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "check: %s '%s' (usage: PROGRAM [--list] [CASE...])\n", what, arg);
	exit(2);
}

static void check_read_args(void)
{
	check_nnames = 0;
	FILE *f = fopen("/proc/self/cmdline", "rb");
	if (!f) {
		perror("check: /proc/self/cmdline");
		exit(2);
	}
	size_t len = fread(check_argbuf, 1, sizeof(check_argbuf) - 1, f);
	bool whole = feof(f);
	fclose(f);
	if (!whole)
		check_usage_error("command line too long, at", "...");
	check_argbuf[len] = '\0';
	/* argv[0] first, then each argument, each ending in a NUL. */
	for (size_t at = strlen(check_argbuf) + 1; at < len; at += strlen(check_argbuf + at) + 1) {
		const char *a = check_argbuf + at;
		if (strcmp(a, "--list") == 0)
			check_listing = true;
		else if (a[0] == '-' || a[0] == '\0')
			check_usage_error("unknown option", a);
		else if (check_nnames == CHECK_MAX_ARGS)
			check_usage_error("too many case names, at", a);
		else
			check_names[check_nnames++] = a;
	}
}

/* Whether the case NAME runs: all do when none is named. */
static bool check_selected(const char *name)
{
	if (check_nnames < 0)
		check_read_args();
	if (check_listing) {
		printf("%s\n", name);
		return false;
	}
	if (check_nnames == 0)
		return true;
	bool hit = false;
	for (int i = 0; i < check_nnames; i++) {
		if (strcmp(check_names[i], name) == 0)
			hit = check_named[i] = true;
	}
	return hit;
}

static void check_run(const char *name, void (*fn)(void))
{
	if (!check_selected(name))
		return;
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
	if (check_nnames < 0)
		check_read_args();
	if (check_listing)
		return 0;
	int unknown = 0;
	for (int i = 0; i < check_nnames; i++) {
		if (!check_named[i]) {
			fprintf(stderr, "check: no case named '%s' (--list shows them)\n",
				check_names[i]);
			unknown++;
		}
	}
	printf("%d passed, %d failed\n", check_total_passed, check_total_failed);
	if (unknown)
		return 2;
	return check_total_failed ? 1 : 0;
}

#endif
