/* sandbox.c — the sweeper's pledge (see sandbox.h): a read-only mount namespace,
 * capabilities with libcap-ng, no_new_privs, a system-call allow-list with libseccomp.
 *
 * The order matters: the mounts first (CAP_SYS_ADMIN is still there), then the
 * capabilities (capset itself is refused later), then no_new_privs (an unprivileged
 * seccomp filter requires it), the filter last: mount, umount, unshare and capset are
 * not on it, so nothing of the above can be undone.
 *
 * The allow-list is what the sweep was seen to do (strace of sweeps as root and as a
 * user, with --json, --metrics and --syslog, through SQLite's WAL recovery) plus what
 * glibc may do on the same paths (stdio, malloc, abort). Left out on purpose: fchmod
 * and fchown, which would let a root sweeper change the mode of any root-owned file it
 * can open for reading in a writable directory; SQLite calls them only to match
 * new -wal/-shm files to the journal and ignores their failure. The sanitizers'
 * runtimes need more (LeakSanitizer stops the world with a ptrace-ing thread at exit):
 * those calls are allowed only in a sanitized build.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cap-ng.h>

#include "log.h"
#include "sandbox.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANDBOX_SANITIZED 1
#endif
#endif

/* Names, not numbers: one list for every architecture; a name this architecture lacks
 * (open on arm64) resolves to nothing and is skipped. */
static const char *const sandbox_allowed[] = {
	/* files and directories (SQLite, /proc, /dev/shm, the temp base) */
	"read",
	"pread64",
	"readv",
	"write",
	"pwrite64",
	"writev",
	"lseek",
	"close",
	"open",
	"openat",
	"stat",
	"fstat",
	"lstat",
	"newfstatat",
	"statx",
	"statfs",
	"fstatfs",
	"access",
	"faccessat",
	"faccessat2",
	"getdents64",
	"readlink",
	"readlinkat",
	"fcntl",
	"flock",
	"fsync",
	"fdatasync",
	"ftruncate",
	"unlink",
	"unlinkat",
	"rmdir",
	"rename",
	"renameat",
	"renameat2",
	"mkdir",
	"mkdirat",
	"getcwd",
	"close_range",
	"dup",
	"dup2",
	"dup3",
	/* identity: setfsuid/setfsgid act as each owner; the rest only read */
	"setfsuid",
	"setfsgid",
	"getuid",
	"geteuid",
	"getgid",
	"getegid",
	"getgroups",
	"getresuid",
	"getresgid",
	"getpid",
	"getppid",
	"gettid",
	"capget",
	/* the in-use index: kcmp tells which tasks share an fd table (else it reads all) */
	"kcmp",
	/* memory */
	"brk",
	"mmap",
	"munmap",
	"mremap",
	"mprotect",
	"madvise",
	/* time, randomness, signals, threads, exit */
	"clock_gettime",
	"clock_getres",
	"gettimeofday",
	"time",
	"clock_nanosleep",
	"nanosleep",
	"getrandom",
	"uname",
	"sysinfo",
	"rt_sigaction",
	"rt_sigprocmask",
	/* whether a held SIGPIPE waits: the reader of stdout went away (cli.h) */
	"rt_sigpending",
	"rt_sigreturn",
	"sigaltstack",
	"restart_syscall",
	"futex",
	"sched_yield",
	"sched_getaffinity",
	"getrlimit",
	"prlimit64",
	"prctl",
	"exit",
	"exit_group",
	"set_robust_list",
	"rseq",
	/* syslog(3) on /dev/log (socket itself is allowed for AF_UNIX only, below) */
	"connect",
	"sendto",
	"sendmsg",
	"shutdown",
#ifdef SANDBOX_SANITIZED
	"clone",
	"clone3",
	"ptrace",
	"wait4",
	"waitid",
	"kill",
	"getdents",
	"sched_getparam",
	"sched_getscheduler",
	"getpgid",
	"setpgid",
	"personality",
	"arch_prctl",
	"mincore",
	"msync",
	"pipe",
	"pipe2",
	"poll",
	"ppoll",
	"set_tid_address",
#endif
};

static int sandbox_seccomp(char *err, size_t errlen)
{
	int rc = -1, r;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx) {
		util_err(err, errlen, "seccomp_init failed");
		return -1;
	}
	for (size_t i = 0; i < sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]); i++) {
		int nr = seccomp_syscall_resolve_name(sandbox_allowed[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0) {
			util_err(err, errlen, "seccomp: allowing %s: %s", sandbox_allowed[i],
				 strerror(-r));
			goto out;
		}
	}
	/* Local sockets only (syslog); AF_INET, AF_NETLINK, AF_PACKET... get EPERM. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				  SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) < 0 ||
	    /* isatty() for stdio's buffering; nothing else of ioctl. */
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				  SCMP_A1(SCMP_CMP_EQ, TCGETS))) < 0 ||
	    /* abort() signals itself (tgkill to its own pid) */
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()))) < 0) {
		util_err(err, errlen, "seccomp: argument rules: %s", strerror(-r));
		goto out;
	}
	if ((r = seccomp_load(ctx)) < 0) {
		util_err(err, errlen, "seccomp_load: %s", strerror(-r));
		goto out;
	}
	rc = 0;
out:
	seccomp_release(ctx);
	return rc;
}

/* mountinfo's escapes (proc_pid_mountinfo(5)): the kernel writes ' ', '\t', '\n' and '\\'
 * of a path as a backslash and three octal digits. Anything else after a backslash, a
 * NUL byte, a raw tab or newline, or more than outlen bytes is not what the kernel
 * writes: -1. */
static int sandbox_unescape(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	if (!outlen)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned c = (unsigned char)s[i];
		if (c == '\\') {
			if (len - i < 4)
				return -1;
			c = 0;
			for (size_t k = 1; k <= 3; k++) {
				if (s[i + k] < '0' || s[i + k] > '7')
					return -1;
				c = c * 8 + (unsigned)(s[i + k] - '0');
			}
			if (c == 0 || c > 0377)
				return -1;
			i += 3;
		} else if (c == '\0' || c == '\t' || c == '\n' || c == ' ') {
			return -1;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* A decimal number of 1 to 10 digits that fits an int. */
static int sandbox_number(const char *s, size_t len, int *v)
{
	if (len == 0 || len > 10)
		return -1;
	long long n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (s[i] - '0');
	}
	if (n > INT_MAX)
		return -1;
	*v = (int)n;
	return 0;
}

/* Mount options: "rw" or "ro" first (the kernel always writes one of them first). */
static int sandbox_rw_option(const char *s, size_t len, bool *rw)
{
	if (len < 2 || (len > 2 && s[2] != ','))
		return -1;
	if (strncmp(s, "rw", 2) == 0)
		*rw = true;
	else if (strncmp(s, "ro", 2) == 0)
		*rw = false;
	else
		return -1;
	return 0;
}

int sandbox_mountinfo_line(const char *line, struct sandbox_mount *m)
{
	/* Fields split at single spaces: an empty one (two spaces) is garbage too. */
	enum { FIELDS_MAX = 64 };
	const char *f[FIELDS_MAX];
	size_t flen[FIELDS_MAX], nf = 0;
	size_t len = strlen(line);
	if (len && line[len - 1] == '\n')
		len--;
	for (size_t i = 0, start = 0; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (nf == FIELDS_MAX || i == start)
			return -1;
		f[nf] = line + start;
		flen[nf++] = i - start;
		start = i + 1;
	}
	/* id parent major:minor root point options [optional...] - type source super */
	size_t sep = 6;
	while (sep < nf && !(flen[sep] == 1 && f[sep][0] == '-'))
		sep++;
	if (nf < 10 || sep != nf - 4)
		return -1;
	int parent, major, minor;
	const char *colon = memchr(f[2], ':', flen[2]);
	char scratch[PATH_MAX];
	bool mnt_rw, sb_rw;
	if (sandbox_number(f[0], flen[0], &m->id) < 0 || m->id == 0 ||
	    sandbox_number(f[1], flen[1], &parent) < 0 || !colon ||
	    sandbox_number(f[2], (size_t)(colon - f[2]), &major) < 0 ||
	    sandbox_number(colon + 1, flen[2] - (size_t)(colon - f[2]) - 1, &minor) < 0 ||
	    sandbox_unescape(f[3], flen[3], scratch, sizeof(scratch)) < 0 ||
	    sandbox_unescape(f[4], flen[4], m->point, sizeof(m->point)) < 0 || m->point[0] != '/' ||
	    sandbox_rw_option(f[5], flen[5], &mnt_rw) < 0 ||
	    sandbox_unescape(f[sep + 1], flen[sep + 1], scratch, sizeof(scratch)) < 0 ||
	    sandbox_unescape(f[sep + 2], flen[sep + 2], scratch, sizeof(scratch)) < 0 ||
	    sandbox_rw_option(f[sep + 3], flen[sep + 3], &sb_rw) < 0)
		return -1;
	m->rw = mnt_rw && sb_rw;
	return 0;
}

/* Whether point lies strictly under base (both absolute, base without a trailing '/'
 * unless it is "/"). */
static bool sandbox_under(const char *point, const char *base)
{
	size_t blen = strlen(base);
	if (blen && base[blen - 1] == '/')
		blen--;
	return strncmp(point, base, blen) == 0 && point[blen] == '/' && point[blen + 1] != '\0';
}

int sandbox_submounts_read(FILE *f, const char *const *bases, struct sandbox_submounts *out,
			   char *err, size_t errlen)
{
	int rc = -1;
	char *line = NULL;
	size_t linecap = 0;
	struct sandbox_mount *m = malloc(sizeof(*m));
	memset(out, 0, sizeof(*out));
	if (!m) {
		util_err(err, errlen, "out of memory");
		return -1;
	}
	errno = 0;
	ssize_t got;
	while ((got = getline(&line, &linecap, f)) >= 0) {
		/* A NUL inside would cut the line short where it still may parse. */
		if (strlen(line) != (size_t)got || sandbox_mountinfo_line(line, m) < 0) {
			out->unparsed++;
			continue;
		}
		bool under = false;
		for (size_t i = 0; bases[i] && !under; i++)
			under = sandbox_under(m->point, bases[i]);
		if (!under || !m->rw)
			continue;
		if (out->n % 64 == 0) {
			struct sandbox_submount *v = realloc(out->v,
							     (out->n + 64) * sizeof(*out->v));
			if (!v) {
				util_err(err, errlen, "out of memory");
				goto out;
			}
			out->v = v;
		}
		if (!(out->v[out->n].point = strdup(m->point))) {
			util_err(err, errlen, "out of memory");
			goto out;
		}
		out->v[out->n++].id = m->id;
	}
	if (ferror(f)) {
		util_err(err, errlen, "reading the mount table: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		sandbox_submounts_free(out);
	free(line);
	free(m);
	return rc;
}

void sandbox_submounts_free(struct sandbox_submounts *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].point);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* Clears MOUNT_ATTR_RDONLY on sub, a writable mount under base, if the mount at its
 * path (reached from base without symlinks or "..") is that very mount: not one stacked
 * over it, nor the host's original under a bind's copy, whose paths read the same. 1
 * when done, 0 when the mount there is another (it stays read-only), -1 on error. */
static int sandbox_submount_rw(const char *base, const struct sandbox_submount *sub, char *err,
			       size_t errlen)
{
	int rc = -1, bfd = -1, fd = -1;
	const char *rel = sub->point + strlen(base);
	while (*rel == '/')
		rel++;
	if ((bfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		util_err(err, errlen, "opening %s: %s", base, strerror(errno));
		goto out;
	}
	struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS };
	fd = (int)syscall(SYS_openat2, bfd, rel, &how, sizeof(how));
	if (fd < 0) {
		log_debug("sandbox: %s stays read-only: %s", sub->point, strerror(errno));
		rc = 0;
		goto out;
	}
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0) {
		util_err(err, errlen, "statx %s: %s", sub->point, strerror(errno));
		goto out;
	}
	if (!(stx.stx_mask & STATX_MNT_ID) || stx.stx_mnt_id != (uint64_t)sub->id ||
	    !(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) ||
	    !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		rc = 0;
		goto out;
	}
	struct mount_attr rwattr = { .attr_clr = MOUNT_ATTR_RDONLY };
	if (mount_setattr(fd, "", AT_EMPTY_PATH, &rwattr, sizeof(rwattr)) < 0) {
		util_err(err, errlen, "making %s writable: %s", sub->point, strerror(errno));
		goto out;
	}
	rc = 1;
out:
	if (fd >= 0)
		close(fd);
	if (bfd >= 0)
		close(bfd);
	return rc;
}

/* Root only: a private mount namespace where everything is read-only but those of rw[]
 * that are writable now, as systemd's ProtectSystem=strict and ReadWritePaths= make it.
 * Landlock would serve a user too, but a Landlock-confined process may not read another
 * process's /proc/PID/maps or fd (its ptrace rules), which the in-use index must read
 * all along the sweep. 1 when confined, 0 when it cannot be (see below; a kernel without
 * mount_setattr, before 5.12), -1 on error. */
static int sandbox_mounts(const char *const *rw, char *err, size_t errlen)
{
	/* Without CAP_SYS_ADMIN (a user; root in the systemd unit, whose ProtectSystem=
	 * and ReadWritePaths= did the same already) there is nothing to do it with. */
	if (geteuid() != 0 || capng_get_caps_process() < 0 ||
	    capng_have_capability(CAPNG_EFFECTIVE, CAP_SYS_ADMIN) != 1)
		return 0;
	size_t cap = 0;
	while (rw[cap])
		cap++;
	char(*real)[PATH_MAX] = calloc(cap ? cap : 1, PATH_MAX);
	bool *writable = calloc(cap ? cap : 1, sizeof(*writable));
	const char **bases = calloc(cap + 1, sizeof(*bases));
	struct sandbox_submounts subs = { 0 };
	int rc = -1;
	if (!real || !writable || !bases) {
		util_err(err, errlen, "out of memory");
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; rw[i]; i++) {
		/* One that does not exist (yet) stays read-only: writes there are refused.
		 * So does one that cannot be named (a base deeper than PATH_MAX): its
		 * directories say why themselves (mgrdir.c), a base that cannot be opened
		 * at all is the sweep's own error, and this line is for the curious. */
		if (!realpath(rw[i], real[n])) {
			if (errno != ENOENT)
				log_info("sandbox: %s cannot be named, so nothing in it can be "
					 "changed: %s",
					 rw[i], strerror(errno));
			continue;
		}
		/* One the host mounted read-only (`mount -o bind,ro`, a container's read-only
		 * view) stays so: its bind would inherit the flag, and clearing it below would
		 * make writable what the host said was not (the sweep then reclaimed a dead
		 * manager's directory there that ls called unknown). Not bound, it is part of
		 * the read-only tree like everything else, but for the writable mounts under
		 * it. ST_RDONLY is the mount's flag or its filesystem's, whichever says
		 * read-only. */
		struct statvfs sv;
		if (statvfs(real[n], &sv) < 0) {
			util_err(err, errlen, "statvfs %s: %s", real[n], strerror(errno));
			goto out;
		}
		/* Twice is once (a base that is also the temp base). */
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = strcmp(real[j], real[n]) == 0;
		if (!dup) {
			writable[n] = !(sv.f_flag & ST_RDONLY);
			bases[n] = real[n];
			n++;
		}
	}
	if (unshare(CLONE_NEWNS) < 0) {
		util_err(err, errlen, "unshare(CLONE_NEWNS): %s", strerror(errno));
		goto out;
	}
	/* Nothing done here may reach the host's mounts. ("none": the kernel ignores the
	 * source and type of these two calls, valgrind does not.) */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0) {
		util_err(err, errlen, "making / private: %s", strerror(errno));
		goto out;
	}
	/* Each writable directory becomes a mount of its own, so it can be made writable
	 * again alone after the whole tree went read-only. */
	for (size_t i = 0; i < n; i++) {
		if (writable[i] && mount(real[i], real[i], "none", MS_BIND | MS_REC, NULL) < 0) {
			util_err(err, errlen, "bind %s: %s", real[i], strerror(errno));
			goto out;
		}
	}
	/* The mounts under them (a job's own tmpfs at /tmp/job123) were copied by the
	 * recursive bind with their flags (or, under a read-only one, are the namespace's
	 * copies of the host's): read now, before everything turns read-only, which of
	 * them the host has writable. Only those are made writable again below, one by
	 * one: clearing the flag recursively and setting it back on the read-only ones
	 * would widen any that a line we cannot read described. */
	FILE *mi = fopen("/proc/self/mountinfo", "re");
	if (!mi) {
		log_warn("sandbox: /proc/self/mountinfo: %s; the mounts under the writable "
			 "directories stay read-only",
			 strerror(errno));
	} else {
		int r = sandbox_submounts_read(mi, bases, &subs, err, errlen);
		fclose(mi);
		if (r < 0)
			goto out;
		if (subs.unparsed)
			log_warn("sandbox: %zu lines of /proc/self/mountinfo could not be read; a "
				 "mount they describe stays read-only (its directories: error)",
				 subs.unparsed);
	}
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
	if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) < 0) {
		if (errno == ENOSYS) {
			rc = 0;
			goto out;
		}
		util_err(err, errlen, "making / read-only: %s", strerror(errno));
		goto out;
	}
	struct mount_attr rwattr = { .attr_clr = MOUNT_ATTR_RDONLY };
	for (size_t i = 0; i < n; i++) {
		if (writable[i] &&
		    mount_setattr(AT_FDCWD, real[i], 0, &rwattr, sizeof(rwattr)) < 0) {
			util_err(err, errlen, "making %s writable: %s", real[i], strerror(errno));
			goto out;
		}
	}
	for (size_t j = 0; j < subs.n; j++) {
		size_t i = 0;
		while (i < n && !sandbox_under(subs.v[j].point, real[i]))
			i++;
		if (i < n && sandbox_submount_rw(real[i], &subs.v[j], err, errlen) < 0)
			goto out;
	}
	/* The working directory still leads into the mounts under the binds (read-only
	 * now), and a relative --tmpdir resolves from it: enter it again by its name. */
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof(cwd)) && chdir(cwd) < 0) {
		util_err(err, errlen, "re-entering %s: %s", cwd, strerror(errno));
		goto out;
	}
	rc = 1;
out:
	sandbox_submounts_free(&subs);
	free(bases);
	free(writable);
	free(real);
	return rc;
}

static int sandbox_caps(char *err, size_t errlen)
{
	if (capng_get_caps_process() < 0) {
		util_err(err, errlen, "capng_get_caps_process: %s", strerror(errno));
		return -1;
	}
	capng_clear(CAPNG_SELECT_ALL);
	if (geteuid() == 0 &&
	    capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
			  CAP_SETUID, CAP_SETGID, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, -1) < 0) {
		util_err(err, errlen, "capng_updatev failed");
		return -1;
	}
	/* Without CAP_SETPCAP (a user, or a systemd unit that already bounded the set)
	 * the bounding set cannot shrink (-4): then it must hold nothing more than what
	 * is kept, checked below; no_new_privs makes it moot for exec anyway. */
	int r = capng_apply(geteuid() == 0 ? CAPNG_SELECT_ALL : CAPNG_SELECT_CAPS);
	if (r < 0 && r != -4) {
		util_err(err, errlen, "capng_apply failed (%d): %s", r, strerror(errno));
		return -1;
	}
	if (geteuid() != 0)
		return 0;
	/* Up to the kernel's last capability, which may be newer than our headers. */
	for (unsigned c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++) {
		bool keep = c == CAP_SETUID || c == CAP_SETGID || c == CAP_SYS_PTRACE ||
			    c == CAP_DAC_READ_SEARCH;
		if (!keep && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) {
			util_err(err, errlen,
				 "cannot drop %s from the bounding set (no "
				 "CAP_SETPCAP)",
				 capng_capability_to_name(c));
			return -1;
		}
	}
	return 0;
}

int sandbox_sweeper(const char *const *rw, bool *paths_confined, char *err, size_t errlen)
{
	int confined = rw ? sandbox_mounts(rw, err, errlen) : 0;
	if (confined < 0)
		return -1;
	*paths_confined = confined == 1;
	if (sandbox_caps(err, errlen) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		util_err(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return -1;
	}
	return sandbox_seccomp(err, errlen);
}
