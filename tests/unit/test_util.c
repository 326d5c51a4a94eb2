/* test_util.c — util_path_trusted: which paths SQLite may be given (SECURITY.md, "SQLite
 * follows paths"). Real directories under the test's private temp dir; the ownership
 * cases need root (chown), and say so when skipped. And util_err's cut of a message
 * too long for its buffer, and util_unix_ns_str's digits. */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "util.h"

/* The test's own directory: under the suite's private base, root's or ours. */
static uid_t check_owner(void)
{
	struct stat st;
	if (stat(check_tmpdir, &st) < 0)
		return (uid_t)-1;
	return st.st_uid;
}

static void test_bad_input(void)
{
	char err[256] = "";
	errno = 0;
	CHECK(util_path_trusted("relative/dir", 0, err, sizeof(err)) < 0);
	CHECK_EQ_INT(errno, EINVAL);
	CHECK(strstr(err, "not an absolute path") != NULL);
	CHECK(util_path_trusted("", 0, err, sizeof(err)) < 0);
	char huge[PATH_MAX + 16];
	memset(huge, 'x', sizeof(huge) - 1);
	huge[0] = '/';
	huge[sizeof(huge) - 1] = '\0';
	CHECK(util_path_trusted(huge, 0, err, sizeof(err)) < 0);
	CHECK_EQ_INT(errno, EINVAL);
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/missing/deeper", check_tmpdir);
	CHECK(util_path_trusted(missing, check_owner(), err, sizeof(err)) < 0);
	CHECK_EQ_INT(errno, ENOENT);
	CHECK(strstr(err, "/missing") != NULL);
	/* err may be NULL: the caller does not care why. */
	CHECK(util_path_trusted(missing, check_owner(), NULL, 0) < 0);
}

static void test_modes(void)
{
	char err[512] = "", d[600], f[700], l[700], below[700];
	uid_t me = check_owner();
	CHECK(util_path_trusted(check_tmpdir, me, err, sizeof(err)) == 0);
	snprintf(d, sizeof(d), "%s/d", check_tmpdir);
	CHECK(mkdir(d, 0700) == 0);
	CHECK(util_path_trusted(d, me, err, sizeof(err)) == 0);
	/* Writable by others without the sticky bit: anyone could rename what is below. */
	snprintf(below, sizeof(below), "%s/shmwarden-AAAAAA", d);
	CHECK(mkdir(below, 0700) == 0);
	CHECK(chmod(d, 0777) == 0);
	errno = 0;
	CHECK(util_path_trusted(below, me, err, sizeof(err)) < 0);
	CHECK_EQ_INT(errno, EPERM);
	CHECK(strstr(err, "writable by group or others") != NULL);
	CHECK(chmod(d, 0770) == 0);
	CHECK(util_path_trusted(below, me, err, sizeof(err)) < 0);
	/* Sticky: only an entry's owner (or the directory's) may rename it. */
	CHECK(chmod(d, 01777) == 0);
	CHECK(util_path_trusted(below, me, err, sizeof(err)) == 0);
	/* A symlink or a file as a component is never trusted. */
	snprintf(l, sizeof(l), "%s/link", check_tmpdir);
	CHECK(symlink(d, l) == 0);
	snprintf(f, sizeof(f), "%s/link/shmwarden-AAAAAA", check_tmpdir);
	errno = 0;
	CHECK(util_path_trusted(f, me, err, sizeof(err)) < 0);
	CHECK_EQ_INT(errno, EPERM);
	CHECK(strstr(err, "is a symlink") != NULL);
	snprintf(f, sizeof(f), "%s/file", check_tmpdir);
	FILE *fp = fopen(f, "w");
	CHECK(fp != NULL);
	if (fp)
		fclose(fp);
	CHECK(util_path_trusted(f, me, err, sizeof(err)) < 0);
	CHECK(strstr(err, "is not a directory") != NULL);
}

static void test_owners(void)
{
	if (geteuid() != 0) {
		printf("# test_owners: skipped (chown needs root)\n");
		return;
	}
	char err[512] = "", d[600], below[700];
	const uid_t other = 54321, owner = 54322;
	snprintf(d, sizeof(d), "%s/base", check_tmpdir);
	snprintf(below, sizeof(below), "%s/shmwarden-AAAAAA", d);
	CHECK(mkdir(d, 0755) == 0 && mkdir(below, 0700) == 0);
	CHECK(chown(below, owner, owner) == 0);
	/* A base of the owner's own (or root's): only they can replace its entries. */
	CHECK(util_path_trusted(below, owner, err, sizeof(err)) == 0);
	CHECK(chown(d, owner, owner) == 0);
	CHECK(util_path_trusted(below, owner, err, sizeof(err)) == 0);
	/* A base of a third user: it can rename the directory and put anything there. */
	CHECK(chown(d, other, other) == 0);
	errno = 0;
	CHECK(util_path_trusted(below, owner, err, sizeof(err)) < 0);
	CHECK_EQ_INT(errno, EPERM);
	CHECK(strstr(err, "belongs to another user") != NULL);
	/* Root's directory in a user's base: root's sweep must not take that path. */
	CHECK(chown(below, 0, 0) == 0);
	CHECK(chown(d, owner, owner) == 0);
	CHECK(util_path_trusted(below, 0, err, sizeof(err)) < 0);
	/* Even sticky, a base of another user is its owner's to rename in. */
	CHECK(chmod(d, 01777) == 0);
	CHECK(util_path_trusted(below, 0, err, sizeof(err)) < 0);
}

/* A message cut to its buffer ends between two UTF-8 characters, never inside one (a
 * path's half "\xc3" came out of JSON as U+00C3). */
static void test_err_cut_between_characters(void)
{
	char buf[6];
	util_err(buf, sizeof(buf), "%s", "abcd\xc3\xa4"); /* 2-byte char, its lead fits */
	CHECK(strcmp(buf, "abcd") == 0);
	util_err(buf, sizeof(buf), "%s", "ab\xe2\x82\xacx"); /* 3 bytes, 2 of them fit */
	CHECK(strcmp(buf, "ab\xe2\x82\xac") == 0);
	util_err(buf, sizeof(buf), "%s", "abc\xe2\x82\xac"); /* 3 bytes, 2 fit */
	CHECK(strcmp(buf, "abc") == 0);
	util_err(buf, sizeof(buf), "%s", "a\xf0\x9f\x98\x80z"); /* 4 bytes, all fit */
	CHECK(strcmp(buf, "a\xf0\x9f\x98\x80") == 0);
	util_err(buf, sizeof(buf), "%s", "ab\xf0\x9f\x98\x80"); /* 4 bytes, 3 fit */
	CHECK(strcmp(buf, "ab") == 0);
	util_err(buf, sizeof(buf), "%s", "abcd\x80\x80"); /* garbage: cut as bytes */
	CHECK(strcmp(buf, "abcd\x80") == 0);
	util_err(buf, sizeof(buf), "%s", "abc\xc3\xa4"); /* fits whole */
	CHECK(strcmp(buf, "abc\xc3\xa4") == 0);
}

/* A birth time to the nanosecond, all nine digits of the fraction (two tmpfs mounted
 * within one second differ only there); a journal's time may be anything. */
static void test_unix_ns_str(void)
{
	char buf[32];
	CHECK(strcmp(util_unix_ns_str(1764568957000000001LL, buf, sizeof(buf)),
		     "1764568957.000000001") == 0);
	CHECK(strcmp(util_unix_ns_str(1764568957999999999LL, buf, sizeof(buf)),
		     "1764568957.999999999") == 0);
	CHECK(strcmp(util_unix_ns_str(0, buf, sizeof(buf)), "0.000000000") == 0);
	CHECK(strcmp(util_unix_ns_str(-1, buf, sizeof(buf)), "-0.000000001") == 0);
	CHECK(strcmp(util_unix_ns_str(INT64_MAX, buf, sizeof(buf)), "9223372036.854775807") == 0);
	CHECK(strcmp(util_unix_ns_str(INT64_MIN, buf, sizeof(buf)), "-9223372036.854775808") == 0);
}

int main(void)
{
	RUN(test_bad_input);
	RUN(test_modes);
	RUN(test_owners);
	RUN(test_err_cut_between_characters);
	RUN(test_unix_ns_str);
	return check_done();
}
