/* test_sandbox.c — after `shmwarden sweep` has run (cmd_sweep itself, in a child), the
 * process can no longer exec, open a network socket, change a mount or regain what it
 * gave up, and root can no longer write outside the directories it kept (also checked
 * on sandbox_sweeper alone, which a build without SWEEP_PRIVATE_MOUNTS still has). The child reports each refusal that did not happen as one
 * line on a pipe, then "done" (which a child that managed to exec never writes). (That
 * sweeps still work with all this in place is what every sweep in the process tests
 * shows, tests/proc/test_sandbox.py among them.) */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cap-ng.h>

#include "check.h"
#include "commands.h"
#include "sandbox.h"
#include "util.h"

static int tc_report = -1; /* the child's end of the pipe */

static void tc_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tc_bad(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(tc_report, line, (size_t)n);
	(void)w;
}

/* Expect call to have failed with one of the errnos (0 ends the list). */
#define REFUSED(call, ...)                                                                   \
	do {                                                                                 \
		errno = 0;                                                                   \
		long tc_r_ = (long)(call);                                                   \
		int tc_e_ = errno, tc_ok_ = 0;                                               \
		const int tc_want_[] = { __VA_ARGS__, 0 };                                   \
		for (int i_ = 0; tc_want_[i_]; i_++)                                         \
			tc_ok_ |= tc_r_ < 0 && tc_e_ == tc_want_[i_];                        \
		if (!tc_ok_)                                                                 \
			tc_bad("%s: returned %ld, errno %s", #call, tc_r_, strerror(tc_e_)); \
	} while (0)

/* The capability sets of /proc/self/status, as masks. */
static int tc_status(const char *key, unsigned long long *v)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	int found = -1;
	size_t klen = strlen(key);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			*v = strtoull(line + klen + 1, NULL, strncmp(key, "Cap", 3) == 0 ? 16 : 10);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

/* In the child: sweep base (or, mounts, only drop privileges as the sweep does, with
 * the private mount namespace), then try everything the sandbox must refuse. */
static void tc_child(const char *base, const char *outside, bool root, bool mounts)
{
	char victim[700], fresh[700], inside[700], basearg[600];
	snprintf(victim, sizeof(victim), "%s/victim", outside);
	snprintf(fresh, sizeof(fresh), "%s/fresh", outside);
	snprintf(inside, sizeof(inside), "%s/inside", base);
	int devnull = open("/dev/null", O_WRONLY);
	if (devnull < 0 || dup2(devnull, STDOUT_FILENO) < 0) {
		tc_bad("cannot silence stdout");
		return;
	}
	util_strlcpy(basearg, base, sizeof(basearg));
	/* The sweep may also write in its own temp base (copies of journals): make that
	 * the swept base. */
	setenv("TMPDIR", base, 1);
	if (mounts) {
		const char *rw[] = { basearg, NULL };
		char err[256];
		bool confined = false;
		if (sandbox_sweeper(rw, &confined, err, sizeof(err)) < 0 || confined != root) {
			tc_bad("sandbox_sweeper: %s, confined %d", err, confined);
			return;
		}
	} else {
		char *argv[] = { "sweep", "--tmpdir", basearg, NULL };
		int rc = cmd_sweep(3, argv);
		if (rc != 0) {
			tc_bad("the sweep of an empty base failed: %d", rc);
			return;
		}
	}
	REFUSED(socket(AF_INET, SOCK_STREAM, 0), EPERM);
	REFUSED(socket(AF_INET6, SOCK_DGRAM, 0), EPERM);
	REFUSED(socket(AF_NETLINK, SOCK_RAW, 0), EPERM);
	REFUSED(socket(AF_PACKET, SOCK_RAW, 0), EPERM);
	int us = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* syslog's /dev/log */
	if (us < 0)
		tc_bad("an AF_UNIX socket (syslog) was refused: %s", strerror(errno));
	else
		close(us);
	REFUSED(unshare(CLONE_NEWNS), EPERM);
	/* A bind from a path that does not exist: the kernel would say ENOENT, so even a
	 * sandbox that failed cannot change a mount here. */
	char nosuch[700];
	snprintf(nosuch, sizeof(nosuch), "%s/nosuch", outside);
	REFUSED(mount(nosuch, outside, "none", MS_BIND, NULL), EPERM);
	REFUSED(prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0), EINVAL, EPERM);
	REFUSED(fchmod(STDERR_FILENO, 0666), EPERM);
	/* Writes inside the temp base still work. */
	int fd = open(inside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1)
		tc_bad("writing inside the temp base: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	if (unlink(inside) < 0)
		tc_bad("unlink inside the temp base: %s", strerror(errno));

	unsigned long long nnp = 0, mode = 0, eff = ~0ULL, prm = ~0ULL, bnd = ~0ULL, inh = ~0ULL,
			   amb = ~0ULL;
	if (tc_status("NoNewPrivs", &nnp) < 0 || tc_status("Seccomp", &mode) < 0 ||
	    tc_status("CapEff", &eff) < 0 || tc_status("CapPrm", &prm) < 0 ||
	    tc_status("CapBnd", &bnd) < 0 || tc_status("CapInh", &inh) < 0 ||
	    tc_status("CapAmb", &amb) < 0) {
		tc_bad("cannot read /proc/self/status");
		return;
	}
	if (nnp != 1 || mode != 2)
		tc_bad("NoNewPrivs %llu, Seccomp %llu (want 1, 2)", nnp, mode);
	unsigned long long keep = 1ULL << CAP_SETUID | 1ULL << CAP_SETGID | 1ULL << CAP_SYS_PTRACE |
				  1ULL << CAP_DAC_READ_SEARCH;
	if (!root)
		keep = 0;
	if (eff != keep || prm != keep || inh != 0 || amb != 0)
		tc_bad("capabilities: eff %llx prm %llx inh %llx amb %llx (want %llx)", eff, prm,
		       inh, amb, keep);
	if (root && bnd != keep)
		tc_bad("bounding set %llx (want %llx)", bnd, keep);
	/* Regaining a capability is refused (capset is not on the list either). (Every
	 * libcap-ng result is used: sid's cap-ng.h marks them warn_unused_result.) */
	if (capng_get_caps_process() < 0 ||
	    capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_SYS_ADMIN) < 0)
		tc_bad("libcap-ng cannot read or change its copy of the capabilities");
	else if (capng_apply(CAPNG_SELECT_CAPS) == 0)
		tc_bad("capset regained CAP_SYS_ADMIN");

	if (root) {
		/* Root without CAP_DAC_OVERRIDE may still write its own files: only the
		 * read-only mounts stop it. */
		REFUSED(open(victim, O_WRONLY | O_CLOEXEC), EROFS);
		REFUSED(open(fresh, O_WRONLY | O_CREAT | O_CLOEXEC, 0600), EROFS);
		REFUSED(unlink(victim), EROFS);
		REFUSED(rename(victim, fresh), EROFS);
		REFUSED(mkdir(fresh, 0700), EROFS);
		REFUSED(truncate(victim, 0), EROFS, EPERM);
	}
	/* Last: if it is allowed, nothing after it runs. */
	char *const exec_argv[] = { "true", NULL };
	REFUSED(execve("/bin/true", exec_argv, environ), EPERM);
}

/* Forks, runs tc_child as uid (0: root itself), returns the child's complaints. */
static void tc_run(uid_t uid, bool mounts, char *out, size_t outlen)
{
	char top[512], base[600], outside[256], victim[700];
	/* A user cannot reach the suite's private (0700) directory: its own is under /tmp. */
	snprintf(top, sizeof(top), uid ? "/tmp/shmw-sandbox-XXXXXX" : "%s", check_tmpdir);
	CHECK(uid == 0 || (mkdtemp(top) && chmod(top, 0711) == 0));
	snprintf(base, sizeof(base), "%s/base", top);
	/* Outside every directory the sweep may write in (its base, $TMPDIR, /tmp,
	 * /dev/shm): a private directory of ours in /var/tmp. */
	snprintf(outside, sizeof(outside), "/var/tmp/shmw-sandbox-XXXXXX");
	CHECK(mkdtemp(outside) != NULL);
	snprintf(victim, sizeof(victim), "%s/victim", outside);
	CHECK(mkdir(base, 0700) == 0);
	int vfd = open(victim, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(vfd >= 0 && write(vfd, "precious", 8) == 8);
	close(vfd);
	if (uid != 0) {
		CHECK(chown(base, uid, uid) == 0 && chown(outside, uid, uid) == 0 &&
		      chown(victim, uid, uid) == 0);
	}
	int p[2];
	CHECK(pipe(p) == 0);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		tc_report = p[1];
		if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
			tc_bad("cannot become uid %u: %s", (unsigned)uid, strerror(errno));
		else
			tc_child(base, outside, uid == 0, mounts);
		/* The last line: a child that exec'd (or died) never writes it. */
		ssize_t w = write(tc_report, "done\n", 5);
		(void)w;
		/* _exit: no atexit work in a process that may not do much any more. */
		_exit(0);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t n;
	while (got + 1 < outlen && (n = read(p[0], out + got, outlen - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	struct stat st;
	char buf[16] = "";
	int fd = open(victim, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 8 && memcmp(buf, "precious", 8) == 0);
	if (fd >= 0)
		close(fd);
	snprintf(victim, sizeof(victim), "%s/fresh", outside);
	CHECK(stat(victim, &st) < 0 && errno == ENOENT);
	if (uid != 0)
		check_rmtree(top);
	check_rmtree(outside);
}

static void test_root_sweeper_refuses_after_the_drop(void)
{
	char out[4096];
	tc_run(0, false, out, sizeof(out));
	if (strcmp(out, "done\n") != 0)
		printf("%s", *out ? out : "(the child reported nothing: it exec'd or died)\n");
	CHECK(strcmp(out, "done\n") == 0);
}

/* sandbox_sweeper itself with its directories, whatever cmd_sweep.c was built with:
 * root's writes outside them fail with EROFS. */
static void test_root_private_mounts_refuse_writes_outside(void)
{
	char out[4096];
	tc_run(0, true, out, sizeof(out));
	if (strcmp(out, "done\n") != 0)
		printf("%s", *out ? out : "(the child reported nothing: it exec'd or died)\n");
	CHECK(strcmp(out, "done\n") == 0);
}

static void test_user_sweeper_refuses_after_the_drop(void)
{
	char out[4096];
	tc_run(65534, false, out, sizeof(out)); /* nobody */
	if (strcmp(out, "done\n") != 0)
		printf("%s", *out ? out : "(the child reported nothing: it exec'd or died)\n");
	CHECK(strcmp(out, "done\n") == 0);
}

/* The mount table's reader (sandbox_mountinfo_line): what the kernel writes is read,
 * escapes undone; anything else is refused, so no mount is taken as writable from a
 * line read wrong. */
static void test_mountinfo_lines(void)
{
	struct sandbox_mount m;
	CHECK(sandbox_mountinfo_line("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 "
				     "/dev/root rw,errors=continue\n",
				     &m) == 0);
	CHECK_EQ_INT(m.id, 36);
	CHECK(strcmp(m.point, "/mnt2") == 0 && m.rw);
	/* No optional field; a space, a newline, a backslash and a tab, escaped. */
	CHECK(sandbox_mountinfo_line("4095 26 0:61 / /tmp/a\\040b\\012c\\134d\\011e "
				     "rw,relatime - tmpfs shmw\\040test rw,size=4k",
				     &m) == 0);
	CHECK_EQ_INT(m.id, 4095);
	CHECK(strcmp(m.point, "/tmp/a b\nc\\d\te") == 0 && m.rw);
	/* Read-only by the mount's own flag, or by its file system's. */
	CHECK(sandbox_mountinfo_line("7 1 0:5 / /x ro,relatime shared:3 - tmpfs t rw", &m) == 0);
	CHECK(!m.rw);
	CHECK(sandbox_mountinfo_line("7 1 0:5 / /x rw shared:3 unbindable - tmpfs t ro,size=1k",
				     &m) == 0);
	CHECK(!m.rw);
	/* nsfs's root is not a path. */
	CHECK(sandbox_mountinfo_line("8 1 0:4 net:[4026531840] /run/netns/a rw - nsfs nsfs rw",
				     &m) == 0);
	CHECK(m.rw && strcmp(m.point, "/run/netns/a") == 0);

	static const char *const garbage[] = {
		"",
		"\n",
		"36",
		"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root",  /* no super */
		"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw", /* no "-" */
		"36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw extra",
		"36 35 98:0 /mnt1 /mnt2 - ext3 /dev/root rw", /* no options */
		"36  35 98:0 / /mnt2 rw - ext3 /dev/root rw", /* an empty field */
		"36 35 98:0 / /mnt2 rw - ext3 /dev/root rw ", /* a trailing space */
		" 36 35 98:0 / /mnt2 rw - ext3 /dev/root rw",
		"x6 35 98:0 / /mnt2 rw - ext3 /dev/root rw",
		"0 35 98:0 / /mnt2 rw - ext3 /dev/root rw",
		"99999999999 35 98:0 / /mnt2 rw - ext3 /dev/root rw",
		"-1 35 98:0 / /mnt2 rw - ext3 /dev/root rw",
		"36 35 98 / /mnt2 rw - ext3 /dev/root rw",
		"36 35 98:x / /mnt2 rw - ext3 /dev/root rw",
		"36 35 98:0 / mnt2 rw - ext3 /dev/root rw",   /* not absolute */
		"36 35 98:0 / /a\\04 rw - ext3 /dev/root rw", /* a short escape */
		"36 35 98:0 / /a\\ rw - ext3 /dev/root rw",
		"36 35 98:0 / /a\\\\ rw - ext3 /dev/root rw",
		"36 35 98:0 / /a\\089 rw - ext3 /dev/root rw",  /* not octal */
		"36 35 98:0 / /a\\400 rw - ext3 /dev/root rw",  /* over a byte */
		"36 35 98:0 / /a\\000b rw - ext3 /dev/root rw", /* a NUL */
		"36 35 98:0 / /a\tb rw - ext3 /dev/root rw",    /* a raw tab */
		"36 35 98:0 / /a\nb rw - ext3 /dev/root rw",    /* a raw newline */
		"36 35 98:0 / /mnt2 rwx - ext3 /dev/root rw",
		"36 35 98:0 / /mnt2 RW - ext3 /dev/root rw",
		"36 35 98:0 / /mnt2 r - ext3 /dev/root rw",
		"36 35 98:0 / /mnt2 relatime,rw - ext3 /dev/root rw",
		"36 35 98:0 / /mnt2 rw - ext3 /dev/root rwx",
		"36 35 98:0 / /mnt2 rw - ext3 /dev/root errors=continue,rw",
		"36 35 98:0 / /mnt2 rw - ext\\3 /dev/root rw",
		"36 35 98:0 / /mnt2 rw - ext3 /dev/ro\\ot rw",
	};
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		m.rw = true;
		int r = sandbox_mountinfo_line(garbage[i], &m);
		if (r != -1)
			printf("# taken: \"%s\"\n", garbage[i]);
		CHECK_EQ_INT(r, -1);
	}
	/* A mount point of PATH_MAX bytes and more does not fit. */
	char longline[3 * PATH_MAX];
	int n = snprintf(longline, sizeof(longline), "9 1 0:5 / /");
	memset(longline + n, 'a', PATH_MAX);
	snprintf(longline + n + PATH_MAX, sizeof(longline) - (size_t)n - PATH_MAX,
		 " rw - tmpfs t rw");
	CHECK_EQ_INT(sandbox_mountinfo_line(longline, &m), -1);
	/* Every prefix of a read-only mount's line is refused or read-only. */
	const char *ro = "51 50 0:48 / /tmp/job\\040ro ro,nosuid shared:9 - tmpfs job rw,size=8k";
	for (size_t k = 0; k <= strlen(ro); k++) {
		char cut[256];
		snprintf(cut, sizeof(cut), "%.*s", (int)k, ro);
		m.rw = false;
		int r = sandbox_mountinfo_line(cut, &m);
		CHECK(r == -1 || !m.rw);
	}
}

/* sandbox_submounts_read: the writable mounts strictly under a base, nothing else; a
 * line it cannot read counted and left out. */
static void test_submounts_read(void)
{
	static char table[] =
		"26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
		"60 26 0:50 / /tmp/b\\0401 rw - tmpfs t rw\n"           /* the base itself */
		"61 60 0:51 / /tmp/b\\0401/job\\0121 rw - tmpfs t rw\n" /* writable */
		"62 60 0:52 / /tmp/b\\0401/ro ro - tmpfs t rw\n"        /* read-only mount */
		"63 60 0:53 / /tmp/b\\0401/rosb rw - tmpfs t ro\n"      /* read-only fs */
		"64 61 0:54 / /tmp/b\\0401/job\\0121/in rw shared:1 - tmpfs t rw\n"
		"65 60 0:55 / /tmp/b\\0401/bad rw - tmpfs t\n"       /* garbage */
		"66 60 0:56 / /tmp/b\\0401/bad2 rw - tmpfs t rw x\n" /* garbage */
		"67 60 0:57 / /tmp/b\\04 rw - tmpfs t rw\n"          /* garbage */
		"68 26 0:58 / /tmp/b\\04010/x rw - tmpfs t rw\n"     /* a sibling: /tmp/b 10 */
		"69 26 0:59 / /tmp/b rw - tmpfs t rw\n"              /* above the base */
		"70 26 0:60 / /var/tmp/c rw - tmpfs t rw\n"          /* outside */
		"71 26 0:61 / /dev/shm/d rw - tmpfs t rw\n";         /* under another base */
	FILE *f = fmemopen(table, sizeof(table) - 1, "r");
	CHECK(f != NULL);
	if (!f)
		return;
	const char *bases[] = { "/tmp/b 1", "/dev/shm", NULL };
	struct sandbox_submounts subs;
	char err[256] = "";
	CHECK(sandbox_submounts_read(f, bases, &subs, err, sizeof(err)) == 0);
	fclose(f);
	CHECK_EQ_INT(subs.n, 3);
	CHECK_EQ_INT(subs.unparsed, 3);
	if (subs.n == 3) {
		CHECK(subs.v[0].id == 61 && strcmp(subs.v[0].point, "/tmp/b 1/job\n1") == 0);
		CHECK(subs.v[1].id == 64 && strcmp(subs.v[1].point, "/tmp/b 1/job\n1/in") == 0);
		CHECK(subs.v[2].id == 71 && strcmp(subs.v[2].point, "/dev/shm/d") == 0);
	}
	sandbox_submounts_free(&subs);
	CHECK(subs.n == 0 && subs.v == NULL);

	/* The base "/" (a pattern's prefix may be it): everything writable under it. */
	f = fmemopen(table, sizeof(table) - 1, "r");
	const char *root[] = { "/", NULL };
	CHECK(f && sandbox_submounts_read(f, root, &subs, err, sizeof(err)) == 0);
	if (f)
		fclose(f);
	CHECK_EQ_INT(subs.n, 7);
	sandbox_submounts_free(&subs);

	/* A NUL byte: the line would parse up to it (a writable mount), but is garbage. */
	static char nul[] = "61 60 0:51 / /tmp/b\\0401/job rw - tmpfs t rw\0,x\n";
	f = fmemopen(nul, sizeof(nul) - 1, "r");
	CHECK(f && sandbox_submounts_read(f, bases, &subs, err, sizeof(err)) == 0);
	if (f)
		fclose(f);
	CHECK(subs.n == 0 && subs.unparsed == 1);
	sandbox_submounts_free(&subs);
}

/* This kernel's own table reads without a line left out (a line of the kernel's read
 * wrong would leave that mount read-only). */
static void test_submounts_read_this_kernels_table(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	CHECK(f != NULL);
	if (!f)
		return;
	const char *bases[] = { "/", NULL };
	struct sandbox_submounts subs;
	char err[256] = "";
	CHECK(sandbox_submounts_read(f, bases, &subs, err, sizeof(err)) == 0);
	fclose(f);
	CHECK_EQ_INT(subs.unparsed, 0);
	CHECK(subs.n > 0);
	sandbox_submounts_free(&subs);
}

int main(void)
{
	RUN(test_mountinfo_lines);
	RUN(test_submounts_read);
	RUN(test_submounts_read_this_kernels_table);
	if (geteuid() != 0) {
		printf("SKIP test_sandbox: the rest needs root (the root sweeper is what it "
		       "checks)\n");
		return check_done();
	}
	RUN(test_root_sweeper_refuses_after_the_drop);
	RUN(test_root_private_mounts_refuse_writes_outside);
	RUN(test_user_sweeper_refuses_after_the_drop);
	return check_done();
}
