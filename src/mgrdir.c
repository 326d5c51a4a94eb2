/* mgrdir.c — manager directories: create, lock, probe, list, remove (see mgrdir.h).
 *
 * The directory is made 0700 by mkdtemp, so only its owner (and root) can reach the
 * socket. It is flocked at once, then its lock file appears already locked, so a prober
 * that finds neither lock held and no lock file knows the directory is at most a few
 * microseconds from being locked, or abandoned (MGRDIR_STARTUP_GRACE_S).
 *
 * A reclaimer that acts on a dead directory marks it as a reclaimer's while it holds it
 * ("the reclaimer's mark" below), so that others call it busy, not live.
 *
 * A probe changes nothing in a directory it does not act on: locks are taken with
 * LOCK_NB and released, no file is created, and a dead directory's journal is read from
 * a private copy, because SQLite rewrites -shm (and creates -wal and -shm for a
 * checkpointed WAL journal) even for a query_only reader, and immutable=1 would ignore
 * the WAL and with it every commit since the last checkpoint.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "mgrdir.h"
#include "shmobj.h"
#include "userns.h"
#include "util.h"

/* A journal larger than this is not copied to be looked at: real journals follow the live
 * set (a few MiB at most), and a hostile one must not fill the reader's temp base. */
#define MGRDIR_COPY_MAX (256ull << 20)

/* How long mgrdir_lock_dir waits for a prober holding the directory lock for an instant. */
#define MGRDIR_LOCK_WAIT_MS 1000

const char *mgrdir_state_str(enum mgrdir_state st)
{
	switch (st) {
	case MGRDIR_LIVE:
		return "live";
	case MGRDIR_DEAD:
		return "dead";
	case MGRDIR_STARTING:
		return "starting";
	case MGRDIR_BUSY:
		return "busy";
	case MGRDIR_UNSAFE:
		return "unsafe";
	case MGRDIR_FOREIGN:
		return "foreign";
	case MGRDIR_CORRUPT:
		return "corrupt";
	case MGRDIR_UNKNOWN:
		break;
	}
	return "unknown";
}

bool mgrdir_is_name(const char *name)
{
	size_t plen = strlen(MGRDIR_PREFIX);
	return strncmp(name, MGRDIR_PREFIX, plen) == 0 && strlen(name) == plen + 6;
}

static int mgrdir_check_socket_fits(const char *dirpath, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	size_t need = strlen(dirpath) + 1 + strlen(MGRDIR_SOCKET) + 1;
	if (need > sizeof(sun.sun_path)) {
		util_err(err, errlen,
			 "socket path %s/%s would be %zu bytes, over the %zu-byte limit of Unix "
			 "sockets",
			 dirpath, MGRDIR_SOCKET, need - 1, sizeof(sun.sun_path) - 1);
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int mgrdir_trylock(int dirfd, bool create, int *lockfd, char *err, size_t errlen)
{
	int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0);
	int fd = openat(dirfd, MGRDIR_LOCK, flags, 0600);
	if (fd < 0) {
		util_err(err, errlen, "open %s: %s", MGRDIR_LOCK, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		if (saved == EWOULDBLOCK)
			return 1;
		errno = saved;
		util_err(err, errlen, "flock %s: %s", MGRDIR_LOCK, strerror(saved));
		return -1;
	}
	*lockfd = fd;
	return 0;
}

int mgrdir_create_lock(int dfd, int *lockfd, char *err, size_t errlen)
{
	int fd = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		/* Filesystems without O_TMPFILE: create then lock. The directory lock already
		 * keeps probers from calling this manager dead in between. */
		int rc = mgrdir_trylock(dfd, true, lockfd, err, errlen);
		if (rc > 0)
			util_err(err, errlen, "the lock file is held by another process");
		return rc == 0 ? 0 : -1;
	}
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 ||
	    linkat(AT_FDCWD, proc, dfd, MGRDIR_LOCK, AT_SYMLINK_FOLLOW) < 0) {
		util_err(err, errlen, "create %s: %s", MGRDIR_LOCK, strerror(errno));
		close(fd);
		return -1;
	}
	*lockfd = fd;
	return 0;
}

int mgrdir_lock_dir(int dirfd, char *err, size_t errlen)
{
	int64_t deadline = util_now_ms() + MGRDIR_LOCK_WAIT_MS;
	for (;;) {
		if (flock(dirfd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK || util_now_ms() > deadline) {
			util_err(err, errlen, "flock the directory: %s", strerror(errno));
			return -1;
		}
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

int mgrdir_create(const char *base, char *path, size_t pathlen, int *dirfd, int *lockfd, char *err,
		  size_t errlen)
{
	int n = snprintf(path, pathlen, "%s%s" MGRDIR_PREFIX "XXXXXX", base,
			 base[strlen(base) - 1] == '/' ? "" : "/");
	if (n < 0 || (size_t)n >= pathlen) {
		util_err(err, errlen, "temp directory path under %s is too long", base);
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mgrdir_check_socket_fits(path, err, errlen) < 0)
		return -1;
	char templ[PATH_MAX];
	util_strlcpy(templ, path, sizeof(templ));
	/* A sweeper may take a directory that stayed unlocked past the startup grace (a
	 * stalled host) between mkdtemp and our flock: then it is unlinked, and we start
	 * over with a new one rather than serve from a directory nobody can reach. */
	for (int attempt = 0; attempt < 3; attempt++) {
		util_strlcpy(path, templ, pathlen);
		if (!mkdtemp(path)) {
			int saved = errno;
			util_err(err, errlen, "cannot create the manager directory in %s: %s", base,
				 strerror(saved));
			errno = saved;
			return -1;
		}
		int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0) {
			int saved = errno;
			util_err(err, errlen, "open %s: %s", path, strerror(saved));
			rmdir(path);
			errno = saved;
			return -1;
		}
		struct stat st;
		if (mgrdir_lock_dir(dfd, err, errlen) < 0 || fstat(dfd, &st) < 0) {
			int saved = errno;
			close(dfd);
			rmdir(path);
			errno = saved;
			return -1;
		}
		if (st.st_nlink == 0) {
			close(dfd);
			continue;
		}
		if (mgrdir_create_lock(dfd, lockfd, err, errlen) < 0) {
			int saved = errno;
			unlinkat(dfd, MGRDIR_LOCK, 0);
			close(dfd);
			rmdir(path);
			errno = saved;
			return -1;
		}
		*dirfd = dfd;
		return 0;
	}
	util_err(err, errlen, "a sweeper removed every directory this manager made in %s", base);
	errno = EAGAIN;
	return -1;
}

int mgrdir_remove(int basefd, const char *name, int dirfd, char *err, size_t errlen)
{
	if (journal_unlink_files(dirfd, err, errlen) < 0)
		return -1;
	static const char *const files[] = { MGRDIR_SOCKET, MGRDIR_LOCK };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (unlinkat(dirfd, files[i], 0) < 0 && errno != ENOENT) {
			util_err(err, errlen, "unlink %s/%s: %s", name, files[i], strerror(errno));
			return -1;
		}
	}
	if (unlinkat(basefd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
		util_err(err, errlen, "rmdir %s: %s%s", name, strerror(errno),
			 errno == ENOTEMPTY
				 ? " (it holds files shmwarden did not make; left for a human)"
				 : "");
		return -1;
	}
	return 0;
}

/* ---- listing -------------------------------------------------------------------- */

static int mgrdir_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void mgrdir_list_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

int mgrdir_list(int basefd, const char *skip, char ***out, size_t *count)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	/* A fresh open, not dup: a dup shares basefd's offset with the caller. */
	int fd = openat(basefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int saved = errno;
		if (fd >= 0)
			close(fd);
		errno = saved;
		return -1;
	}
	/* Names first, work after: removing entries while reading the directory could make
	 * readdir skip some, and sorted names give a stable report. */
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!mgrdir_is_name(de->d_name) || (skip && strcmp(de->d_name, skip) == 0)) {
			errno = 0;
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (!nn)
				goto fail;
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = strdup(de->d_name)))
			goto fail;
		n++;
		errno = 0;
	}
	if (errno)
		goto fail;
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), mgrdir_cmp_names);
	*out = names;
	*count = n;
	return 0;
fail:;
	int saved = errno ? errno : ENOMEM;
	closedir(d);
	mgrdir_list_free(names, n);
	errno = saved;
	return -1;
}

/* ---- probing -------------------------------------------------------------------- */

static void mgrdir_set(struct mgrdir_probe *p, enum mgrdir_state st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void mgrdir_set(struct mgrdir_probe *p, enum mgrdir_state st, const char *fmt, ...)
{
	va_list ap;
	p->state = st;
	va_start(ap, fmt);
	int n = vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= sizeof(p->why))
		util_utf8_cut(p->why);
}

int mgrdir_fd_path(int dirfd, char *path, size_t len, char *err, size_t errlen)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
	ssize_t n = readlink(link, path, len);
	int saved = n < 0 ? errno : (size_t)n >= len ? ENAMETOOLONG : 0;
	if (saved == ENAMETOOLONG) {
		/* (The kernel names no path of PATH_MAX bytes or more: moved deep.) */
		util_err(err, errlen,
			 "its path is longer than PATH_MAX (%d bytes), so it cannot be named: "
			 "SQLite opens a journal by its path, and the sweeper's sandbox makes "
			 "writable only what it can name; nothing was changed (move it under a "
			 "shorter path to have it reclaimed)",
			 PATH_MAX);
	} else if (n <= 0 || path[0] != '/') {
		util_err(err, errlen, "cannot name the directory through %s: %s", link,
			 n < 0 ? strerror(saved) : "not a path");
		saved = saved ? saved : ENOENT;
	}
	if (saved) {
		errno = saved;
		return -1;
	}
	path[n] = '\0';
	return 0;
}

/* A dead directory found read-only here (EROFS) when its path is too long to name is
 * read-only because of that: the sweeper's sandbox makes only the bases it can name
 * writable (sandbox.c), and SQLite could not open the journal by path anyway. Says
 * so (true) rather than blame a read-only file system nobody mounted. */
static bool mgrdir_too_deep(struct mgrdir_probe *p, int err_no)
{
	char path[PATH_MAX], err[UTIL_MSG_LEN];
	if (err_no != EROFS ||
	    mgrdir_fd_path(p->dirfd, path, sizeof(path), err, sizeof(err)) == 0 ||
	    errno != ENAMETOOLONG)
		return false;
	mgrdir_set(p, MGRDIR_UNKNOWN, "%s", err);
	return true;
}

/* setfsuid is per thread and cannot fail loudly: it returns the previous id whether or
 * not it changed anything, so the switch is verified by asking again. */
static int mgrdir_fsid_switch(struct mgrdir_probe *p, uid_t uid, gid_t gid)
{
	p->saved_fsgid = (gid_t)setfsgid(gid);
	p->saved_fsuid = (uid_t)setfsuid(uid);
	p->fsid_switched = true;
	uid_t nowu = (uid_t)setfsuid((uid_t)-1);
	gid_t nowg = (gid_t)setfsgid((gid_t)-1);
	if (nowu != uid || nowg != gid) {
		mgrdir_set(p, MGRDIR_UNKNOWN, "cannot act as uid %u gid %u (setfsuid left %u/%u)",
			   (unsigned)uid, (unsigned)gid, (unsigned)nowu, (unsigned)nowg);
		return -1;
	}
	return 0;
}

static void mgrdir_fsid_restore(struct mgrdir_probe *p)
{
	if (!p->fsid_switched)
		return;
	setfsuid(p->saved_fsuid);
	setfsgid(p->saved_fsgid);
	p->fsid_switched = false;
}

/* The lock and journal files must be plain files of the owner that only the owner can
 * write: a symlink or someone else's file is never opened on the owner's behalf.
 * Returns 1 when the file exists and is fine, 0 when absent, -1 with the state set. */
static int mgrdir_check_file(struct mgrdir_probe *p, const char *file, struct stat *st)
{
	if (fstatat(p->dirfd, file, st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		mgrdir_set(p, MGRDIR_UNKNOWN, "stat %s: %s", file, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		mgrdir_set(p, MGRDIR_UNSAFE, "%s is %s, not a regular file", file,
			   S_ISLNK(st->st_mode) ? "a symlink" : "special");
		return -1;
	}
	if (st->st_uid != p->owner) {
		mgrdir_set(p, MGRDIR_UNSAFE, "%s is owned by uid %u, the directory by uid %u", file,
			   (unsigned)st->st_uid, (unsigned)p->owner);
		return -1;
	}
	if (st->st_mode & 022) {
		mgrdir_set(p, MGRDIR_UNSAFE, "%s is writable by group or others (mode %04o)", file,
			   (unsigned)(st->st_mode & 07777));
		return -1;
	}
	return 1;
}

/* Whether the open file fdname of a task (fddir: its /proc/PID/fd, fdinfo: its
 * /proc/PID/fdinfo) is one of ids[0..n-1] and holds an exclusive flock: the kernel
 * lists the locks taken through an open file description in its fdinfo ("lock:"
 * lines, as /proc/locks prints them). */
static bool mgrdir_fd_holds(int fddir, int fdinfo, const char *fdname, const struct stat *ids,
			    int n)
{
	struct statx stx;
	if (statx(fddir, fdname, AT_STATX_DONT_SYNC, STATX_INO, &stx) < 0)
		return false;
	bool match = false;
	for (int i = 0; i < n && !match; i++)
		match = makedev(stx.stx_dev_major, stx.stx_dev_minor) == ids[i].st_dev &&
			(ino_t)stx.stx_ino == ids[i].st_ino;
	if (!match)
		return false;
	int fd = openat(fdinfo, fdname, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[4096];
	ssize_t len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = '\0';
	for (char *line = buf; line; line = strchr(line, '\n')) {
		line += *line == '\n';
		char type[16], mode[16];
		/* A waiter ("->") is not the holder; a shared lock is a look, not a manager. */
		if (sscanf(line, "lock: %*d: %15s %*s %15s", type, mode) == 2 &&
		    strcmp(type, "FLOCK") == 0 && strcmp(mode, "WRITE") == 0)
			return true;
	}
	return false;
}

/* The pid of a task whose open file holds the exclusive flock of the directory or of
 * its lock file, or 0 when none can be seen. Only for the report: liveness itself was
 * decided by the locks. Not /proc/locks: it comes a page per read() and skips entries
 * while others lock and unlock, and flock has no F_GETLK. Each task's descriptors are
 * walked, as livemgr.c does, and the one that reaches the directory asked about has its
 * locks read from its own fdinfo: complete, and a task that merely holds the directory
 * open (a look, a shell in it) is not taken for its holder. The pid is as our /proc
 * numbers it: 0 for a holder outside our pid namespace, or hidden by hidepid. */
static pid_t mgrdir_lock_holder(const struct stat *dst, const struct stat *lst)
{
	struct stat ids[2] = { *dst };
	int n = 1;
	if (lst)
		ids[n++] = *lst;
	DIR *d = opendir("/proc");
	struct statfs sfs;
	if (d && (fstatfs(dirfd(d), &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)) {
		closedir(d); /* an empty directory in a sandbox, or a forgery: unknown */
		d = NULL;
	}
	if (!d)
		return 0;
	pid_t found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || pid <= 0)
			continue;
		char path[64];
		snprintf(path, sizeof(path), "%ld/fd", pid);
		int fddir = openat(dirfd(d), path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		snprintf(path, sizeof(path), "%ld/fdinfo", pid);
		int fdinfo = openat(dirfd(d), path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int fd = fddir >= 0 && fdinfo >= 0 ? dup(fddir) : -1;
		DIR *fds = fd >= 0 ? fdopendir(fd) : NULL;
		if (!fds && fd >= 0)
			close(fd);
		struct dirent *fe;
		while (fds && !found && (fe = readdir(fds)))
			if (fe->d_name[0] != '.' &&
			    mgrdir_fd_holds(fddir, fdinfo, fe->d_name, ids, n))
				found = (pid_t)pid;
		if (fds)
			closedir(fds);
		if (fddir >= 0)
			close(fddir);
		if (fdinfo >= 0)
			close(fdinfo);
	}
	closedir(d);
	return found;
}

/* pid's command, for the people reading a report: the base name of its argv[0], and its
 * argv[1] when that is a word (a subcommand: "shmwarden sweep"); "" when it cannot be
 * read. A process can write anything there: nothing is decided by it. */
static void mgrdir_holder_cmd(pid_t pid, char *out, size_t len)
{
	char path[64], buf[256];
	out[0] = '\0';
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	const char *argv0 = buf, *slash = strrchr(argv0, '/');
	size_t len0 = strlen(argv0);
	const char *argv1 = (ssize_t)len0 + 1 < n ? argv0 + len0 + 1 : "";
	bool sub = *argv1 && *argv1 != '-';
	int w = snprintf(out, len, "%s%s%s", slash ? slash + 1 : argv0, sub ? " " : "",
			 sub ? argv1 : "");
	if (w >= 0 && (size_t)w >= len)
		util_utf8_cut(out); /* a long one is cut, between two characters */
}

/* ---- the reclaimer's mark ----------------------------------------------------------
 *
 * Managers and reclaimers hold the same exclusive flocks, and a flock says nothing about
 * its holder: a second reclaimer used to call the first "a live manager". So a reclaimer
 * marks the directory it holds: an OFD read lock (fcntl F_OFD_SETLK) on byte
 * MGRDIR_MARK_AT of the directory, set through the descriptor that holds the directory's
 * flock, once both of its flocks are held, and released before that flock
 * (mgrdir_unlock) or with it (the last close of the open file description, to which both
 * locks belong, so no dup of it keeps one and not the other). Only one open file
 * description can hold the flock exclusive, and the marked one does: at every instant,
 * a mark means "the directory's flock is held by a reclaimer". A manager never marks.
 *
 * Why this lock: an OFD lock belongs to the open file description, as a flock does, so
 * it goes when the reclaimer goes, however it dies, and pid reuse cannot fake it (a
 * classic POSIX lock would be dropped by the reclaimer's next close of any descriptor of
 * the directory, which livemgr.c and the probes open and close all the time). A read
 * lock needs only the O_RDONLY descriptor a directory allows; Linux keeps fcntl locks
 * apart from flocks, so it can neither block nor be blocked by a manager's; and anyone
 * can test for it (F_OFD_GETLK, asking for a write lock), which reports an OFD lock with
 * l_pid -1.
 *
 * Why it is safe: the mark only names a holder the flock already keeps out, so every
 * mistake it allows costs words, never an unlink. The flock held and no mark is live, as
 * it always was: a manager, one starting (its flock comes right after mkdtemp), a
 * reclaimer of an older release, a reclaimer in the microseconds between its flock and
 * its mark (a prober looks twice, mgrdir_probe_locks), any other process holding the
 * lock, or a filesystem without OFD locks. The owner or root, who can open the
 * directory, could mark a live manager's directory by hand: it would be called busy,
 * and still not touched. A mark without the flock (someone's stray read lock) is never
 * asked about: the flock is free, and the directory is probed as ever. */
#define MGRDIR_MARK_AT 0x73687764 /* "shwd": any byte; only the lock on it counts */

static int mgrdir_mark(int dirfd, short type)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = MGRDIR_MARK_AT, .l_len = 1
	};
	return fcntl(dirfd, F_OFD_SETLK, &fl);
}

bool mgrdir_marked(int dirfd)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = MGRDIR_MARK_AT, .l_len = 1
	};
	if (fcntl(dirfd, F_OFD_GETLK, &fl) < 0)
		return false;
	return fl.l_type == F_RDLCK && fl.l_pid == -1;
}

/* Held, by whom: a reclaimer when the directory is marked, else live. */
static void mgrdir_held(struct mgrdir_probe *p, const struct stat *dst, const struct stat *lst,
			bool marked)
{
	p->holder = mgrdir_lock_holder(dst, lst);
	mgrdir_holder_cmd(p->holder, p->holder_cmd, sizeof(p->holder_cmd));
	if (!marked)
		mgrdir_set(p, MGRDIR_LIVE, "%s", "");
	else if (p->holder > 0 && p->holder_cmd[0])
		mgrdir_set(p, MGRDIR_BUSY, "being reclaimed by another reclaimer, pid %d (%s)",
			   (int)p->holder, p->holder_cmd);
	else if (p->holder > 0)
		mgrdir_set(p, MGRDIR_BUSY, "being reclaimed by another reclaimer, pid %d",
			   (int)p->holder);
	else
		mgrdir_set(p, MGRDIR_BUSY,
			   "being reclaimed by another reclaimer (its pid cannot be seen from "
			   "here)");
}

/* flock(LOCK_NB), tried a few times over about 2 ms: a look or a livemgr check
 * elsewhere holds a lock for microseconds, a manager for its whole life, and a prober
 * must not call a dead directory live because another prober glanced at it. */
static int mgrdir_flock_try(int fd, int how)
{
	for (int i = 0;; i++) {
		if (flock(fd, how | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK || i == 9)
			return -1;
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
}

static void mgrdir_unlock(struct mgrdir_probe *p)
{
	if (p->marked) {
		/* Before the flock goes: a mark never outlives it (see the mark above). */
		mgrdir_mark(p->dirfd, F_UNLCK);
		p->marked = false;
	}
	if (p->lockfd >= 0) {
		close(p->lockfd);
		p->lockfd = -1;
	}
	if (p->locked) {
		flock(p->dirfd, LOCK_UN);
		p->locked = false;
	}
}

/* Liveness by the locks: the directory's flock, then the lock file's. A dead
 * directory's locks are kept for the caller (ACT); a look drops them at once. Only a
 * manager and a reclaimer (ACT) take them exclusive; a look takes them shared, for the
 * instant of the test, so it never passes for a manager (livemgr.c counts a lock held
 * exclusive only, and opening the journal of a dead directory being looked at would
 * rewrite its -shm). A lock held by someone else is live, or busy when the reclaimer's
 * mark says the holder is a reclaimer; an act marks the dead directory it keeps. */
static void mgrdir_probe_locks(struct mgrdir_probe *p, const struct stat *dst, int64_t now_s,
			       unsigned flags)
{
	struct stat lst, now;
	int how = (flags & MGRDIR_PROBE_ACT) ? LOCK_EX : LOCK_SH;
	if (mgrdir_flock_try(p->dirfd, how) < 0) {
		if (errno != EWOULDBLOCK) {
			mgrdir_set(p, MGRDIR_UNKNOWN, "flock: %s", strerror(errno));
			return;
		}
		/* A reclaimer marks a moment after its flock: one that took it at the end of
		 * our tries is given that moment before the holder is called live. */
		bool marked = mgrdir_marked(p->dirfd);
		if (!marked) {
			struct timespec ts = { 0, 200000 };
			nanosleep(&ts, NULL);
			marked = mgrdir_marked(p->dirfd);
		}
		bool have = fstatat(p->dirfd, MGRDIR_LOCK, &lst, AT_SYMLINK_NOFOLLOW) == 0;
		mgrdir_held(p, dst, have ? &lst : NULL, marked);
		return;
	}
	p->locked = true;
	/* The reclaimer (or hand) that held it until now may have emptied and removed it:
	 * a lock on an unlinked directory is a lock on nothing (and its lock file is gone,
	 * which would read as a manager starting). */
	if (fstat(p->dirfd, &now) == 0 && now.st_nlink == 0) {
		mgrdir_set(p, MGRDIR_UNKNOWN,
			   "no such directory (removed while being looked at: reclaimed by another "
			   "reclaimer, or by hand)");
		goto unlock;
	}
	int have = mgrdir_check_file(p, MGRDIR_LOCK, &lst);
	if (have < 0)
		goto unlock;
	if (have == 0) {
		int64_t age = now_s - p->changed_s;
		if (age < MGRDIR_STARTUP_GRACE_S) {
			mgrdir_set(
				p, MGRDIR_STARTING,
				"no lock held, no lock file, changed %llds ago: a manager may be "
				"starting",
				(long long)age);
			goto unlock;
		}
		p->state = MGRDIR_DEAD;
		goto done;
	}
	/* O_RDONLY is enough for flock, and never needs write permission on a file we only
	 * look at. */
	int fd = openat(p->dirfd, MGRDIR_LOCK, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			/* Removed since the stat: a reclaimer finishing it, or a hand rm. Taken
			 * as lockless on the next look. */
			mgrdir_set(p, MGRDIR_STARTING,
				   "its lock file vanished while being looked at");
			goto unlock;
		}
		mgrdir_set(p, MGRDIR_UNKNOWN, "open %s: %s", MGRDIR_LOCK, strerror(errno));
		goto unlock;
	}
	if (mgrdir_flock_try(fd, how) < 0) {
		int saved = errno;
		close(fd);
		if (saved != EWOULDBLOCK) {
			mgrdir_set(p, MGRDIR_UNKNOWN, "flock %s: %s", MGRDIR_LOCK, strerror(saved));
			goto unlock;
		}
		/* The directory's flock is ours, so no reclaimer of this release holds the
		 * lock file (each takes the directory's first and lets it go last): a manager
		 * of an older release, or another process. */
		mgrdir_held(p, dst, &lst, false);
		goto unlock;
	}
	p->lockfd = fd;
	p->state = MGRDIR_DEAD;
done:
	if (flags & MGRDIR_PROBE_ACT) {
		/* Both locks held: now the mark (see above). One that cannot be set (a
		 * filesystem without OFD locks) costs only the name other reclaimers give
		 * this one: live. */
		p->marked = mgrdir_mark(p->dirfd, F_RDLCK) == 0;
		return;
	}
unlock:
	mgrdir_unlock(p);
}

/* Copies dirfd/file to copydir/file (read with O_NOATIME where the owner allows it, so
 * even the access time stays). 1 copied, 0 absent, -1 with why set and errno the cause
 * (ENOSPC, EDQUOT: the copy's base is full, which mgrdir_copy_journal takes elsewhere). */
static int mgrdir_copy_file(struct mgrdir_probe *p, const char *file)
{
	int in = openat(p->dirfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (in < 0 && errno == EPERM)
		in = openat(p->dirfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0) {
		if (errno == ENOENT)
			return 0;
		util_err(p->why, sizeof(p->why), "open %s: %s", file, strerror(errno));
		return -1;
	}
	int rc = -1, out = -1;
	struct stat st;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		util_err(p->why, sizeof(p->why), "%s is not a regular file", file);
		errno = EINVAL;
		goto out;
	}
	if ((unsigned long long)st.st_size > MGRDIR_COPY_MAX) {
		util_err(p->why, sizeof(p->why),
			 "%s is %lld bytes: too large to read without "
			 "changing it",
			 file, (long long)st.st_size);
		errno = EFBIG;
		goto out;
	}
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", p->copydir, file);
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		util_err(p->why, sizeof(p->why), "copy %s: %s", file, strerror(errno));
		goto out;
	}
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			util_err(p->why, sizeof(p->why), "read %s: %s", file, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				util_err(p->why, sizeof(p->why), "copy %s: %s", file,
					 strerror(errno));
				goto out;
			}
			off += w;
		}
	}
	/* A filesystem that reserves space late (NFS, a quota) says it full here. */
	if (close(out) < 0) {
		out = -1;
		util_err(p->why, sizeof(p->why), "copy %s: %s", file, strerror(errno));
		goto out;
	}
	out = -1;
	rc = 1;
out:;
	int saved = errno;
	if (out >= 0)
		close(out);
	close(in);
	errno = saved;
	return rc;
}

static const char *const mgrdir_journal_files[] = { JOURNAL_FILE, JOURNAL_FILE "-wal",
						    JOURNAL_FILE "-journal", JOURNAL_FILE "-shm" };
#define MGRDIR_COPIED 3 /* the first three are copied; SQLite rebuilds -shm */

static void mgrdir_empty_copy(struct mgrdir_probe *p)
{
	for (size_t i = 0; i < sizeof(mgrdir_journal_files) / sizeof(mgrdir_journal_files[0]);
	     i++) {
		char path[PATH_MAX + 32];
		snprintf(path, sizeof(path), "%s/%s", p->copydir, mgrdir_journal_files[i]);
		unlink(path);
	}
}

static void mgrdir_remove_copy(struct mgrdir_probe *p)
{
	if (!p->copydir[0])
		return;
	mgrdir_empty_copy(p);
	rmdir(p->copydir);
	p->copydir[0] = '\0';
}

/* What identifies the state of the copied files: inode, size and mtime of each. */
static void mgrdir_journal_stamp(struct mgrdir_probe *p, struct timespec *stamp)
{
	for (int i = 0; i < MGRDIR_COPIED; i++) {
		struct stat st;
		memset(&stamp[2 * i], 0, 2 * sizeof(*stamp));
		if (fstatat(p->dirfd, mgrdir_journal_files[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
			stamp[2 * i] = st.st_mtim;
			stamp[2 * i + 1].tv_sec = (time_t)st.st_ino;
			stamp[2 * i + 1].tv_nsec = (long)(st.st_size & 0x3fffffff);
		}
	}
}

/* Copies the journal's files into p->copydir, made again if they changed meanwhile.
 * 0, or -1 with why set and errno the cause. */
static int mgrdir_copy_files(struct mgrdir_probe *p)
{
	/* A hot rollback journal (a manager killed while switching a new journal to WAL
	 * mode) is copied too: SQLite rolls the copy back before reading it. A look holds
	 * no lock while it copies (see mgrdir_probe_locks), so the copy counts only if no
	 * file changed meanwhile (a reclaimer at work): else it is made again. */
	for (int attempt = 0; attempt < 5; attempt++) {
		struct timespec before[2 * MGRDIR_COPIED], after[2 * MGRDIR_COPIED];
		mgrdir_empty_copy(p);
		mgrdir_journal_stamp(p, before);
		for (int i = 0; i < MGRDIR_COPIED; i++)
			if (mgrdir_copy_file(p, mgrdir_journal_files[i]) < 0)
				return -1;
		mgrdir_journal_stamp(p, after);
		if (memcmp(before, after, sizeof(before)) == 0)
			return 0;
	}
	util_err(p->why, sizeof(p->why),
		 "its journal kept changing while being read (a "
		 "reclaimer at work?)");
	errno = EAGAIN;
	return -1;
}

/* A private copy (db, -wal and a rollback journal; SQLite rebuilds the -shm index from
 * the WAL) in a new directory of the reader's temp base, made with the owner's identity
 * so SQLite can open it as the owner: $TMPDIR, else /tmp, whichever works first
 * (SECURITY.md). A base that is full (ENOSPC, EDQUOT) does not work: its partial copy
 * is removed and the next one tried, so a full $TMPDIR fails no reclaim while /tmp has
 * room. One copy exists at a time, removed at mgrdir_release (or, for a reclaimer, as
 * soon as its manager row is read: mgrdir_probe_look_first). dirpath receives the
 * copy's name, free of symlinks. */
static int mgrdir_copy_journal(struct mgrdir_probe *p, char *dirpath, size_t len)
{
	const char *bases[] = { util_tmpbase(), "/tmp" };
	char err[200] = "", full[600] = "", tried[PATH_MAX] = "", why[sizeof(p->why)];
	/* A full base's words must not stay in why once another base worked. */
	util_strlcpy(why, p->why, sizeof(why));
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		char resolved[PATH_MAX];
		if (!realpath(bases[i], resolved) || strlen(resolved) + 32 > sizeof(p->copydir))
			continue;
		/* $TMPDIR unset, or /tmp itself: one place, tried once. */
		if (strcmp(resolved, tried) == 0)
			continue;
		util_strlcpy(tried, resolved, sizeof(tried));
		/* SQLite reopens the copy's -wal and -shm by path: a base someone else could
		 * swap under it is not used (util.h). */
		if (util_path_trusted(resolved, p->owner, err, sizeof(err)) < 0)
			continue;
		snprintf(p->copydir, sizeof(p->copydir), "%.*s/.shmwarden-read-XXXXXX",
			 (int)(sizeof(p->copydir) - 32), resolved);
		int e = 0;
		if (!mkdtemp(p->copydir)) {
			e = errno;
			p->copydir[0] = '\0';
			util_err(err, sizeof(err), "%s: %s", resolved, strerror(e));
		} else if (mgrdir_copy_files(p) == 0) {
			util_strlcpy(p->why, why, sizeof(p->why));
			util_strlcpy(dirpath, p->copydir, len);
			return 0;
		} else {
			e = errno;
			if (e != ENOSPC && e != EDQUOT)
				return -1; /* why says; mgrdir_release removes the copy */
			/* Full: the partial copy goes now, not to hold the space it took. */
			mgrdir_remove_copy(p);
		}
		if (e == ENOSPC || e == EDQUOT)
			util_err(full + strlen(full), sizeof(full) - strlen(full), "%s%s: %s",
				 full[0] ? "; " : "", resolved, strerror(e));
	}
	if (full[0])
		util_err(p->why, sizeof(p->why),
			 "no room for a private copy of the journal in %s (the copy goes to "
			 "$TMPDIR, else /tmp)",
			 full);
	else
		util_err(p->why, sizeof(p->why),
			 "no temp directory to read a copy of the journal "
			 "in (%s)",
			 err);
	return -1;
}

bool mgrdir_same_shm(const struct journal_meta *meta, const struct shmobj_fs *ours)
{
	if (!meta->has_shm_fs)
		return true;
	if (!meta->has_shm_root)
		return meta->shm_dev == ours->dev;
	struct shmobj_fs theirs = { .dev = meta->shm_dev,
				    .ino = meta->shm_ino,
				    .btime_ns = meta->shm_btime_ns };
	return shmobj_fs_same(&theirs, ours);
}

/* Whether the journal's names live in another /dev/shm than the one this process sees
 * (its manager row records the st_dev and st_ino of the /dev/shm directory the manager
 * opened, and its mount namespace). The directory decides, not the namespace: a tmpfs
 * keeps its device number, and its directories their inodes, for their whole life in
 * every mount namespace that sees them, so a container sharing the host's /dev/shm
 * (another mount namespace, same directory) is ours; one with its own tmpfs is not, nor
 * is a job whose /dev/shm is a subdirectory of ours bind-mounted (same device, another
 * directory: its names are not where we would look them up), nor, seen from that job,
 * the host's. A version 3 journal records the device only (the rule of its release); a
 * version 1 journal records neither and is taken as this host's. The namespaces are for
 * the human reading the report. True when decided: the state is then the caller's
 * (FOREIGN), or MGRDIR_UNKNOWN when our own /dev/shm cannot be looked at (out of
 * descriptors: an error for the next pass, never a finding). */
static bool mgrdir_probe_foreign(struct mgrdir_probe *p, const struct journal_meta *meta)
{
	struct shmobj_fs ours;
	char err[200];
	if (!meta->has_shm_fs)
		return false;
	int fd = shmobj_dir_open(err, sizeof(err));
	if (fd < 0 || shmobj_fs_self(fd, &ours, err, sizeof(err)) < 0) {
		if (fd >= 0)
			close(fd);
		/* Cannot tell which shm filesystem is ours: act on nothing. Nothing is known
		 * of the directory either (out of descriptors, most likely: EMFILE): not a
		 * finding, an error, and the next pass looks again. */
		util_err(p->why, sizeof(p->why), "%s", err);
		p->state = MGRDIR_UNKNOWN;
		return true;
	}
	close(fd);
	if (mgrdir_same_shm(meta, &ours))
		return false;
	if (meta->shm_dev != ours.dev) {
		util_err(p->why, sizeof(p->why),
			 "its names live in another shm filesystem (device %u:%u, mount namespace "
			 "%llu; ours is %u:%u in %llu): left for a reclaimer that sees it",
			 major((dev_t)meta->shm_dev), minor((dev_t)meta->shm_dev),
			 (unsigned long long)meta->mnt_ns, major((dev_t)ours.dev),
			 minor((dev_t)ours.dev), (unsigned long long)shmobj_mnt_ns_self());
		return true;
	}
	if (meta->shm_ino == ours.ino) {
		/* To the nanosecond: two tmpfs mounted within one second printed as born at
		 * the same time, exactly when the reason had to tell them apart. */
		char theirs_born[32], ours_born[32];
		util_err(p->why, sizeof(p->why),
			 "its names live in another shm filesystem that had our device number "
			 "%u:%u and root inode %llu (born %s, ours %s: a tmpfs mounted anew "
			 "after the other was unmounted): left for a reclaimer that sees it",
			 major((dev_t)meta->shm_dev), minor((dev_t)meta->shm_dev),
			 (unsigned long long)ours.ino,
			 util_unix_ns_str(meta->shm_btime_ns, theirs_born, sizeof(theirs_born)),
			 util_unix_ns_str(ours.btime_ns, ours_born, sizeof(ours_born)));
		return true;
	}
	util_err(p->why, sizeof(p->why),
		 "its names live in another /dev/shm directory of the same shm filesystem "
		 "(device %u:%u, directory inode %llu, mount namespace %llu; ours is inode %llu "
		 "in %llu: one of the two is a subdirectory bind-mounted as /dev/shm): left for a "
		 "reclaimer that sees it",
		 major((dev_t)meta->shm_dev), minor((dev_t)meta->shm_dev),
		 (unsigned long long)meta->shm_ino, (unsigned long long)meta->mnt_ns,
		 (unsigned long long)ours.ino, (unsigned long long)shmobj_mnt_ns_self());
	return true;
}

bool mgrdir_journal_owner(const struct journal_meta *meta, uid_t owner, char *why, size_t whylen)
{
	/* The rule of every release: the uid the writer ran as is the directory's owner. */
	if (meta->owner_uid == owner)
		return true;
	if (!meta->has_userns) {
		util_err(why, whylen, "journal claims uid %u but the directory is owned by uid %u",
			 (unsigned)meta->owner_uid, (unsigned)owner);
		return false;
	}
	/* A writer in a user namespace of its own (`unshare -U -r`: uid 0 there) is the
	 * owner when its namespace's parent saw it as the owner. Only a reader in the
	 * initial user namespace sees uids as a first-level namespace's parent does, and a
	 * journal claiming our own namespace, or the initial one, must say the owner's uid
	 * itself. The files' owner is who wrote them either way (mgrdir_check_file); every
	 * act stays the owner's (setfsuid) on objects the owner owns. */
	struct userns_self ours;
	userns_self(owner, &ours);
	if (!userns_is_initial(ours.ns) || meta->user_ns == ours.ns ||
	    userns_is_initial(meta->user_ns) || meta->parent_uid == (uid_t)-1 ||
	    meta->parent_uid != owner) {
		char parent[32] = "none";
		if (meta->parent_uid != (uid_t)-1)
			snprintf(parent, sizeof(parent), "%u", (unsigned)meta->parent_uid);
		util_err(why, whylen,
			 "journal claims uid %u in user namespace %llu (uid %s in its parent "
			 "namespace) but the directory is owned by uid %u%s",
			 (unsigned)meta->owner_uid, (unsigned long long)meta->user_ns, parent,
			 (unsigned)owner,
			 userns_is_initial(ours.ns)
				 ? ""
				 : " (this reclaimer is not in the initial user namespace, where "
				   "the two could be compared)");
		return false;
	}
	return true;
}

/* ACT on a dead directory opens its journal in place, read-write, and closing that
 * handle would change the directory (checkpoint a SIGKILLed manager's WAL, make and
 * remove -wal and -shm). A foreign directory must be left exactly as it is, so the
 * journal is first read from a private copy to learn which shm filesystem it names.
 * Returns true when the probe is decided (foreign, or the look failed). */
static bool mgrdir_probe_look_first(struct mgrdir_probe *p)
{
	char dirpath[PATH_MAX], err[UTIL_MSG_LEN];
	struct journal *j = NULL;
	if (mgrdir_copy_journal(p, dirpath, sizeof(dirpath)) < 0) {
		p->state = MGRDIR_UNKNOWN;
		return true;
	}
	int rc = journal_open(dirpath, JOURNAL_UNTRUSTED | JOURNAL_READONLY | JOURNAL_SKIM, &j, err,
			      sizeof(err));
	bool decided = false;
	if (rc == 0 && mgrdir_journal_owner(journal_meta(j), p->owner, NULL, 0)) {
		p->state = MGRDIR_FOREIGN;
		decided = mgrdir_probe_foreign(p, journal_meta(j)); /* UNKNOWN: cannot tell */
		if (!decided)
			p->state = MGRDIR_DEAD;
	} else if (rc == -EAGAIN) {
		/* Out of descriptors or memory: nothing is known of the journal. */
		mgrdir_set(p, MGRDIR_UNKNOWN, "journal: %s", err);
		decided = true;
	}
	journal_close(j);
	mgrdir_remove_copy(p);
	/* Anything else (corrupt, another owner) the in-place open below says again. */
	return decided;
}

/* Opens the journal of a probed directory: in place for ACT on a dead directory (the
 * caller will change it anyway) and for a live one (read-only: its manager keeps -shm
 * current); from a private copy for a dead directory only looked at. */
static void mgrdir_probe_journal(struct mgrdir_probe *p, const struct stat *dst, unsigned flags)
{
	char dirpath[PATH_MAX], err[UTIL_MSG_LEN];
	bool dead = p->state == MGRDIR_DEAD;
	struct stat jst;
	if (fstatat(p->dirfd, JOURNAL_FILE, &jst, AT_SYMLINK_NOFOLLOW) < 0) {
		/* A dead one's: a manager killed before creating it, or a reclaimer after
		 * unlinking it; nothing was registered in it either way. A live one's was
		 * removed under it (a hand rm, a cleaner): its names cannot be read now,
		 * which is not "none". */
		if (!dead)
			util_err(p->why, sizeof(p->why),
				 errno == ENOENT
					 ? "journal: %s is missing (removed under its live "
					   "manager, which makes it again at its next check)"
					 : "journal: %s: %s",
				 JOURNAL_FILE, strerror(errno));
		return;
	}
	/* The path checks come first, for a look too: a look reads a private copy and
	 * needs none of them, but what ls and a dry run say must be what the reclaimer will
	 * do, and the reclaimer opens the journal in place, by this path. */
	if (mgrdir_fd_path(p->dirfd, dirpath, sizeof(dirpath), err, sizeof(err)) < 0) {
		mgrdir_set(p, MGRDIR_UNKNOWN, "%s", err);
		return;
	}
	/* SQLite opens -wal and -shm by this path at its first read and unlinks them by it
	 * on close: no component of it may be one someone other than root or the owner can
	 * replace in between (the owner's own swaps reach only what the owner can, as we
	 * act with its fsuid). */
	if (util_path_trusted(dirpath, p->owner, err, sizeof(err)) < 0 && errno == EPERM) {
		mgrdir_set(p, MGRDIR_UNSAFE, "%s", err);
		return;
	}
	/* SQLite walks the path from / with our (the owner's) identity: say so plainly when
	 * the owner cannot reach it, rather than blame the journal. */
	struct stat st;
	if (stat(dirpath, &st) < 0) {
		mgrdir_set(p, MGRDIR_UNKNOWN, "uid %u cannot reach %s: %s", (unsigned)p->owner,
			   dirpath, strerror(errno));
		return;
	}
	if (st.st_dev != dst->st_dev || st.st_ino != dst->st_ino) {
		mgrdir_set(p, MGRDIR_UNSAFE, "the directory was moved while being checked");
		return;
	}
	unsigned jflags = JOURNAL_UNTRUSTED;
	if (dead && (flags & MGRDIR_PROBE_ACT) && mgrdir_probe_look_first(p))
		return;
	if (dead && !(flags & MGRDIR_PROBE_ACT)) {
		jflags |= JOURNAL_READONLY;
		if (mgrdir_copy_journal(p, dirpath, sizeof(dirpath)) < 0) {
			p->state = MGRDIR_UNKNOWN;
			return;
		}
	} else if (!dead) {
		jflags |= JOURNAL_READONLY;
	}
	/* A path SQLite cannot take (a dead directory moved deep, 512 bytes or more): through
	 * the descriptor the checks above were made on, for an act as for a look at a live
	 * one, so both say what the copy a dry run reads says. */
	int rc = (dead && !(flags & MGRDIR_PROBE_ACT)) || journal_path_fits(dirpath)
			 ? journal_open(dirpath, jflags, &p->journal, err, sizeof(err))
			 : journal_open_dirfd(p->dirfd, dirpath, jflags, &p->journal, err,
					      sizeof(err));
	if (rc == -ENODATA) {
		/* The schema and the manager row commit in one transaction, before the
		 * manager prints its socket: a journal without them never held a row. */
		p->journal_empty = true;
		return;
	}
	if (rc < 0) {
		/* The copy's name means nothing to the reader: name the file in the directory. */
		const char *msg = strstr(err, JOURNAL_FILE ": ");
		msg = msg ? msg + strlen(JOURNAL_FILE ": ") : err;
		/* Read-only here (a mount, an attribute mgrdir_probe_writable did not see
		 * coming) is not unreadable: the reclaimer could not act, and says so. */
		if (dead && rc == -EROFS)
			mgrdir_set(p, MGRDIR_UNKNOWN, "journal: %s (it cannot be changed here)",
				   msg);
		else if (dead && rc == -EAGAIN)
			/* Out of descriptors or memory (EMFILE, ENFILE, ENOMEM): not the
			 * journal's fault; an error, left for the next pass. */
			mgrdir_set(p, MGRDIR_UNKNOWN, "journal: %s", msg);
		else if (dead)
			mgrdir_set(p, MGRDIR_CORRUPT, "journal: %s", msg);
		else
			util_err(p->why, sizeof(p->why), "journal: %s", msg);
		return;
	}
	if (!(jflags & JOURNAL_READONLY) &&
	    (stat(dirpath, &st) < 0 || st.st_dev != dst->st_dev || st.st_ino != dst->st_ino)) {
		mgrdir_set(p, MGRDIR_UNSAFE,
			   "the directory was moved while its journal was being "
			   "opened");
		mgrdir_close_journal(p);
		return;
	}
	const struct journal_meta *meta = journal_meta(p->journal);
	if (!mgrdir_journal_owner(meta, p->owner, err, sizeof(err))) {
		mgrdir_set(p, MGRDIR_UNSAFE, "%s", err);
		mgrdir_close_journal(p);
		return;
	}
	if (dead) {
		p->state = MGRDIR_FOREIGN;
		if (mgrdir_probe_foreign(p, meta)) /* or UNKNOWN: cannot tell */
			mgrdir_close_journal(p);
		else
			p->state = MGRDIR_DEAD;
	}
}

/* A reclaimer changes a dead directory: it drops the journal's rows, then unlinks its
 * files and removes it. Whether it may is asked here, for a look as for an act, so ls and
 * a dry run say what the real run will do, and asked twice:
 * - may its owner? The mode bits answer, the same for every caller. The reclaimer acts
 *   with the owner's permissions (as root, setfsuid), but for a directory of root's
 *   that would be root's override, which `recover` has and the sandboxed sweep has not
 *   (sandbox.h): a directory or journal file that its owner cannot change was made so
 *   on purpose (mkdtemp and journal_create make 0700 and 0600), so it is a finding for
 *   a human, the same in every command, not something to override or call corrupt.
 * - may we, from here? The kernel answers (faccessat with AT_EACCESS: our fsuid, our
 *   capabilities, our mounts): a read-only mount or an immutable file stops the real run
 *   of this very process as it stops its dry run, and is not the journal's fault.
 * 0 when both say yes; -1 with the state set. */
static int mgrdir_probe_writable(struct mgrdir_probe *p, const struct stat *dst)
{
	if ((dst->st_mode & 0700) != 0700) {
		mgrdir_set(p, MGRDIR_UNSAFE,
			   "the directory is mode %04o: its owner (uid %u) cannot change it, and "
			   "no reclaimer overrides that (chmod 700 it to have it reclaimed)",
			   (unsigned)(dst->st_mode & 07777), (unsigned)p->owner);
		return -1;
	}
	size_t nfiles = sizeof(mgrdir_journal_files) / sizeof(mgrdir_journal_files[0]);
	for (size_t i = 0; i < nfiles; i++) {
		const char *file = mgrdir_journal_files[i];
		struct stat st;
		if (fstatat(p->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			mgrdir_set(p, MGRDIR_UNKNOWN, "stat %s: %s", file, strerror(errno));
			return -1;
		}
		if ((st.st_mode & 0600) != 0600) {
			mgrdir_set(p, MGRDIR_UNSAFE,
				   "%s is mode %04o: its owner (uid %u) cannot read and write it, "
				   "and no reclaimer overrides that (chmod 600 it to have it "
				   "reclaimed)",
				   file, (unsigned)(st.st_mode & 07777), (unsigned)p->owner);
			return -1;
		}
	}
	if (faccessat(p->dirfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		int saved = errno;
		if (!mgrdir_too_deep(p, saved))
			mgrdir_set(p, MGRDIR_UNKNOWN, "the directory cannot be changed here: %s",
				   strerror(saved));
		return -1;
	}
	for (size_t i = 0; i < nfiles; i++) {
		const char *file = mgrdir_journal_files[i];
		if (faccessat(p->dirfd, file, R_OK | W_OK, AT_EACCESS) < 0 && errno != ENOENT) {
			int saved = errno;
			if (!mgrdir_too_deep(p, saved))
				mgrdir_set(p, MGRDIR_UNKNOWN,
					   "%s cannot be opened for writing here: %s", file,
					   strerror(saved));
			return -1;
		}
	}
	return 0;
}

int mgrdir_probe(int basefd, const char *name, int64_t now_s, unsigned flags,
		 struct mgrdir_probe *p)
{
	memset(p, 0, sizeof(*p));
	p->state = MGRDIR_UNKNOWN;
	p->owner = (uid_t)-1;
	p->dirfd = p->lockfd = -1;
	util_strlcpy(p->name, name, sizeof(p->name));
	struct stat dst, st;
	if (!mgrdir_is_name(name)) {
		/* A missing path is missing, whatever its name: the first fact first. */
		if (fstatat(basefd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			mgrdir_set(p, MGRDIR_UNKNOWN,
				   "no such directory (`shmwarden ls` lists "
				   "the manager directories)");
		else
			mgrdir_set(p, MGRDIR_UNKNOWN,
				   "not a manager directory (names are "
				   "%sXXXXXX; `shmwarden ls` lists them)",
				   MGRDIR_PREFIX);
		return -1;
	}
	p->dirfd = openat(basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (p->dirfd < 0) {
		int saved = errno;
		if (fstatat(basefd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			p->owner = st.st_uid;
			p->changed_s = st.st_mtime > st.st_ctime ? st.st_mtime : st.st_ctime;
			if (!S_ISDIR(st.st_mode)) {
				mgrdir_set(p, MGRDIR_UNSAFE, "%s; not followed",
					   S_ISLNK(st.st_mode) ? "a symlink" : "not a directory");
				return 0;
			}
		}
		if (saved == ENOENT)
			mgrdir_set(p, MGRDIR_UNKNOWN,
				   "no such directory (already reclaimed, or "
				   "never there: `shmwarden ls` lists the manager directories)");
		else
			mgrdir_set(p, MGRDIR_UNKNOWN, "open: %s%s", strerror(saved),
				   saved == EACCES ? " (another user's directory: run as root)"
						   : "");
		return -1;
	}
	if (fstat(p->dirfd, &dst) < 0) {
		mgrdir_set(p, MGRDIR_UNKNOWN, "fstat: %s", strerror(errno));
		return -1;
	}
	p->owner = dst.st_uid;
	p->changed_s = dst.st_mtime > dst.st_ctime ? dst.st_mtime : dst.st_ctime;
	if (dst.st_mode & 022) {
		mgrdir_set(p, MGRDIR_UNSAFE, "writable by group or others (mode %04o)",
			   (unsigned)(dst.st_mode & 07777));
		return 0;
	}
	uid_t euid = geteuid();
	if ((flags & MGRDIR_PROBE_OWN) && euid != 0 && dst.st_uid != euid) {
		mgrdir_set(p, MGRDIR_UNSAFE, "not yours (owned by uid %u)", (unsigned)dst.st_uid);
		return 0;
	}
	/* From here on the kernel checks every open, unlink and create as the owner: a
	 * journal naming another user's object, or a file swapped in after our checks,
	 * gets the owner's permissions, not root's; -wal/-shm SQLite makes are the owner's. */
	if (euid == 0 && dst.st_uid != 0 && mgrdir_fsid_switch(p, dst.st_uid, dst.st_gid) < 0)
		return -1;
	static const char *const files[] = { JOURNAL_FILE, JOURNAL_FILE "-wal", JOURNAL_FILE "-shm",
					     JOURNAL_FILE "-journal" };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (mgrdir_check_file(p, files[i], &st) < 0)
			return p->state == MGRDIR_UNKNOWN ? -1 : 0;
	mgrdir_probe_locks(p, &dst, now_s, flags);
	if (p->state == MGRDIR_DEAD)
		mgrdir_probe_writable(p, &dst);
	if (p->state != MGRDIR_LIVE && p->state != MGRDIR_DEAD)
		return p->state == MGRDIR_UNKNOWN ? -1 : 0;
	if (flags & MGRDIR_PROBE_JOURNAL)
		mgrdir_probe_journal(p, &dst, flags);
	/* Copied under the lock, so no reclaimer changed it halfway; the copy is ours
	 * alone, so looking holds no lock past the look. */
	if (!(flags & MGRDIR_PROBE_ACT))
		mgrdir_unlock(p);
	return p->state == MGRDIR_UNKNOWN ? -1 : 0;
}

void mgrdir_close_journal(struct mgrdir_probe *p)
{
	journal_close(p->journal);
	p->journal = NULL;
}

void mgrdir_release(struct mgrdir_probe *p)
{
	mgrdir_close_journal(p);
	mgrdir_remove_copy(p);
	if (p->lockfd >= 0)
		close(p->lockfd);
	if (p->dirfd >= 0)
		close(p->dirfd); /* drops the directory lock and the mark with it, at once */
	p->lockfd = p->dirfd = -1;
	p->locked = p->marked = false;
	mgrdir_fsid_restore(p);
}
