/* livemgr.c — finding live managers and the names they hold (see livemgr.h).
 *
 * Why by lock and journal, not by the object alone: a row never identified (its manager
 * died within a second of the registration) is judged by the object's birth time, and a
 * live manager that registers the same name within that window and lets its client
 * replace the object makes an object the dead row cannot tell from its own. Only the
 * live manager's journal says whose it is. Write-ahead makes the answer sound: a
 * manager commits a name before its client creates the object, so a reclaimer that
 * stats the object first and reads the live journals after it sees the name of every
 * object it saw (reclaim.c keeps that order: statx a page, then livemgr_refresh and
 * livemgr_mark, then decide).
 *
 * Found by the kernel's identity, never by path text (issue 10): a live manager may run
 * in another mount namespace (a systemd unit with PrivateTmp, a container sharing
 * /dev/shm, a chroot), and so may the reclaimer (a sandboxed sweep); the same directory
 * then has another name, or none, on each side. So every live task's descriptors are
 * walked (/proc/PID/fd: complete, unlike /proc/locks, which comes a page per read() and
 * skips entries under lock churn, and a stat through an fd link reaches the open file
 * whatever namespace opened it). A directory of the owner that holds a manager.sock or
 * a lock file is reopened through the holder's own descriptor, and is a live manager's
 * when its lock is held exclusive (a shared flock try fails at once: no /proc/locks
 * needed) and no reclaimer marks it (mgrdir_marked: a reclaimer holding a dead
 * directory's lock marks it, and a dead journal is not opened in place, which would
 * rewrite its -shm). Where the holder's socket leads does not count: a live manager's
 * directory renamed since its bind is still its (livemgr_consider says why). Its journal
 * is then read through our descriptor of the directory (journal_open_dirfd) and counts
 * when it names the holder (in any of the pid namespaces it has: NSpid) as its manager,
 * belongs to the owner and records our shm filesystem.
 *
 * The walk costs a stat per open descriptor on the machine, so it is not repeated for
 * every page of rows: a manager whose name is on a page registered it before its client
 * created the object, so it was live and listening before the object's birth, and any
 * walk begun after that birth found it. A page whose objects are all older than the
 * last walk (less a margin for the coarse clock of file times; a stepped clock, or a
 * manager found earlier that changed, voids it) only rechecks the managers found, and
 * its live journals are still read after its objects were statted.
 *
 * "Cannot tell" means keep: when /proc cannot be walked, or a candidate's socket cannot
 * be looked at, or a live manager's journal must not be opened, livemgr_mark fails and
 * the caller unlinks nothing of that page. A live manager whose journal cannot be read
 * (another schema version: a package upgrade runs the old and the new release side by
 * side; damaged; busy) may hold any of the owner's names: livemgr_unreadable names it,
 * and the caller unlinks nothing of the owner's while it lives.
 *
 * SQLite opens journal.db-wal and -shm lazily, unlinks them on close and as root
 * fchowns what it opens to the main file's owner: a journal is therefore only opened
 * when its directory belongs to the owner we reclaim for and only that owner can
 * change its entries (mode without group or other write), while our filesystem uid is
 * that owner's (reclaim.c's caller set it). The directory itself is reached through a
 * descriptor we hold, so nobody can swap it; a swap of an entry inside it reaches only
 * what the owner could reach anyway (SECURITY.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/queue.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "livemgr.h"
#include "log.h"
#include "mgrdir.h"
#include "util.h"

#define LIVEMGR_SOCKETS_MAX 64 /* socket descriptors of one holder looked at */
/* File times come from the coarse clock, less than a tick (10 ms at HZ=100) behind the
 * one we read: an object born within this much before a walk began may be younger than
 * the walk. Ten ticks at the slowest HZ: generous, yet a leak reclaimed right after its
 * manager died (the benchmark's case) is not walked again at every page. */
#define LIVEMGR_BIRTH_MARGIN_NS 100000000LL
/* A change of CLOCK_REALTIME - CLOCK_MONOTONIC larger than this is a step of the clock:
 * birth times and the walk's time are no longer comparable. */
#define LIVEMGR_CLOCK_STEP_NS 50000000LL
/* A walk is not trusted for longer than the in-use view is (RECLAIM_VIEW_MAX_MS): a
 * manager started after it may re-register the name of an object born long before (a
 * program with fixed segment names reusing its old segment), which the birth rule
 * cannot see; a multi-page journal must not stretch that window to its whole reclaim. */
#define LIVEMGR_WALK_MAX_AGE_NS 1000000000LL

/* A live manager: a process holding its locked manager directory open. */
struct livemgr_entry {
	pid_t pid;
	dev_t dev; /* the directory's identity */
	ino_t ino;
	int dirfd;         /* our descriptor of it, opened through the holder's */
	int holder_fd;     /* the holder's descriptor number of it */
	struct journal *j; /* NULL: no schema yet, or unreadable: tried again next refresh */
	bool unreadable;   /* its journal could not be opened (another schema version,
			    * damaged, busy): it may hold any name (livemgr_unreadable) */
	bool unserved;     /* the holder does not listen at the directory's socket: its
			    * journal must name it before it counts (livemgr_consider) */
	bool foreign;      /* its journal is not ours (another owner, shm filesystem, or
			    * manager pid): never opened again */
	bool seen;         /* in the latest walk */
	TAILQ_ENTRY(livemgr_entry) link;
};

TAILQ_HEAD(livemgr_list, livemgr_entry);

struct livemgr {
	uid_t owner;
	struct shmobj_fs shm; /* our /dev/shm directory: its device, inode and birth */
	struct journal *extra;
	pid_t self;
	bool unknown;           /* the latest refresh could not tell: livemgr_mark fails */
	bool walked;            /* a walk of /proc completed (walk_real_ns, walk_offset_ns valid) */
	int64_t walk_real_ns;   /* CLOCK_REALTIME when it began */
	int64_t walk_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC then */
	int64_t walk_mono_ns;   /* CLOCK_MONOTONIC when it began */
	struct livemgr_list entries;
};

struct livemgr *livemgr_new(uid_t owner, const struct shmobj_fs *shm, struct journal *extra)
{
	struct livemgr *lm = calloc(1, sizeof(*lm));
	if (!lm)
		return NULL;
	lm->owner = owner;
	lm->shm = *shm;
	lm->extra = extra;
	lm->self = getpid();
	TAILQ_INIT(&lm->entries);
	return lm;
}

static void livemgr_entry_free(struct livemgr_entry *e)
{
	journal_close(e->j);
	if (e->dirfd >= 0)
		close(e->dirfd);
	free(e);
}

static int64_t livemgr_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static bool livemgr_is_num(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Whether someone holds fd's file locked exclusive: a shared try fails at once then.
 * A lock we get is dropped with the descriptor, so fd is always a fresh open of its
 * own (a lock belongs to the open file description). 1 held, 0 not, -1 error. */
static int livemgr_held_fd(int fd)
{
	if (flock(fd, LOCK_SH | LOCK_NB) == 0)
		return 0;
	return errno == EWOULDBLOCK ? 1 : -1;
}

/* Whether the manager directory dirfd is locked by a live process: its own flock, or
 * its lock file's (a manager holds both; a reclaimer at work holds them too, which the
 * socket check tells apart). 1 held, 0 not, -1 cannot tell. */
static int livemgr_locked(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int held = livemgr_held_fd(fd);
	close(fd);
	if (held != 0)
		return held;
	fd = openat(dirfd, MGRDIR_LOCK, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? 0 : -1;
	struct stat st;
	held = fstat(fd, &st) < 0 ? -1 : S_ISREG(st.st_mode) ? livemgr_held_fd(fd) : 0;
	close(fd);
	return held;
}

/* The inodes of the socket descriptors of pid (fddir: its /proc/PID/fd). */
static size_t livemgr_sockets(int fddir, unsigned long *inodes, size_t max)
{
	int fd = openat(fddir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	size_t n = 0;
	struct dirent *de;
	char link[64];
	while (n < max && (de = readdir(d))) {
		ssize_t len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		unsigned long ino;
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) == 1)
			inodes[n++] = ino;
	}
	closedir(d);
	return n;
}

/* Whether pid listens on dirfd/manager.sock: what only the directory's manager does.
 * Its listening sockets come from /proc/PID/net/unix (its own network namespace); the
 * path each was bound to is looked up in its own root and mount namespace
 * (/proc/PID/root), and must be the very socket file in our directory. 1 yes, 0 no,
 * -1 cannot tell (its sockets cannot be read). */
static int livemgr_listens(pid_t pid, int fddir, int dirfd)
{
	struct stat sock;
	if (fstatat(dirfd, MGRDIR_SOCKET, &sock, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(sock.st_mode))
		return 0;
	unsigned long inodes[LIVEMGR_SOCKETS_MAX];
	size_t n = livemgr_sockets(fddir, inodes, LIVEMGR_SOCKETS_MAX);
	if (n == 0)
		return 0;
	char path[64], line[PATH_MAX + 128], root[PATH_MAX + 64];
	snprintf(path, sizeof(path), "/proc/%d/net/unix", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	int found = 0;
	while (found == 0 && fgets(line, sizeof(line), f)) {
		unsigned flags;
		unsigned long ino;
		int off = 0;
		if (sscanf(line, "%*s %*s %*s %x %*x %*x %lu %n", &flags, &ino, &off) != 2 ||
		    !off || !(flags & 0x10000 /* __SO_ACCEPTCON: listening */))
			continue;
		bool ours = false;
		for (size_t i = 0; i < n && !ours; i++)
			ours = inodes[i] == ino;
		char *bound = line + off;
		bound[strcspn(bound, "\n")] = '\0';
		if (!ours || bound[0] != '/') /* another's, unbound or abstract */
			continue;
		/* A bound path that no longer leads to the socket file (renamed, replaced,
		 * made unreachable since the bind) proves nothing: only the path's owner,
		 * the manager's own user (or root), can do that to it. */
		struct stat st;
		if ((size_t)snprintf(root, sizeof(root), "/proc/%d/root%s", (int)pid, bound) <
			    sizeof(root) &&
		    stat(root, &st) == 0 && st.st_dev == sock.st_dev && st.st_ino == sock.st_ino)
			found = 1;
	}
	fclose(f);
	return found;
}

int livemgr_serves(pid_t pid, int dirfd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	int fddir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fddir < 0)
		return -1;
	int rc = livemgr_listens(pid, fddir, dirfd);
	close(fddir);
	return rc;
}

/* Whether the journal's manager pid is pid in one of the pid namespaces pid has (the
 * NSpid line: ours first, then each nested one's; a manager records its own getpid()). */
static bool livemgr_is_pid(pid_t pid, int64_t journal_pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nNSpid:");
	if (!p)
		return journal_pid == pid; /* a kernel before 4.1: one namespace known */
	p += 7;
	for (;;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			return false;
		if (v == journal_pid)
			return true;
		p = end;
	}
}

/* Opens the journal of a live manager's directory, if it is the holder's own and ours.
 * Returns 0 (e->j set, or left NULL: no schema yet, unreadable, or not ours), or -1
 * when it must not be opened (livemgr_refresh says why). */
static int livemgr_open(struct livemgr *lm, struct livemgr_entry *e, const struct stat *st)
{
	char label[64], err[512];
	snprintf(label, sizeof(label), "live manager pid %d", (int)e->pid);
	uid_t fsuid = (uid_t)setfsuid((uid_t)-1);
	if (fsuid != lm->owner) {
		log_warn("livemgr: %s: acting as uid %u, not as the owner uid %u: its journal is "
			 "not opened; nothing is unlinked",
			 label, (unsigned)fsuid, (unsigned)lm->owner);
		return -1;
	}
	if (st->st_mode & 022) {
		/* Someone besides its owner could swap journal.db-shm under SQLite: nothing
		 * is unlinked while it lives. A manager makes its directory 0700, so only a
		 * tampered directory comes here. */
		log_warn("livemgr: %s: its directory is writable by group or others (mode %04o): "
			 "its journal is not read; nothing is unlinked while it lives",
			 label, (unsigned)(st->st_mode & 07777));
		return -1;
	}
	e->unreadable = false;
	int rc = journal_open_dirfd(e->dirfd, label,
				    JOURNAL_UNTRUSTED | JOURNAL_READONLY | JOURNAL_SKIM, &e->j, err,
				    sizeof(err));
	if (rc == -ENODATA)
		return 0; /* no schema yet: a manager starting has registered nothing */
	if (rc < 0) {
		/* Which shm filesystem its names live in, the journal would have said; its
		 * own /dev/shm says it too (a chroot's or container's private tmpfs). One we
		 * cannot look at may be ours. */
		char shm[64], why[128];
		struct shmobj_fs theirs;
		snprintf(shm, sizeof(shm), "/proc/%d/root/dev/shm", (int)e->pid);
		int sfd = open(shm, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
		bool other = sfd >= 0 && shmobj_fs_self(sfd, &theirs, why, sizeof(why)) == 0 &&
			     !shmobj_fs_same(&theirs, &lm->shm);
		if (sfd >= 0)
			close(sfd);
		if (other) {
			log_debug("livemgr: %s: its journal cannot be read (%s), and its /dev/shm "
				  "is another directory (%#llx, inode %llu, born %lld): not a live "
				  "manager of ours",
				  label, err, (unsigned long long)theirs.dev,
				  (unsigned long long)theirs.ino,
				  (long long)(theirs.btime_ns / 1000000000));
			e->foreign = true;
			return 0;
		}
		if (e->unserved) {
			/* Nothing says this holder is a manager: only its journal could. */
			log_debug("livemgr: pid %d holds a locked manager directory it does not "
				  "serve, whose journal cannot be read (%s): not a live manager",
				  (int)e->pid, err);
			e->foreign = true;
			return 0;
		}
		e->unreadable = true;
		log_info("livemgr: %s: its journal cannot be read: %s; no object of uid %u is "
			 "unlinked while it lives",
			 label, err, (unsigned)lm->owner);
		return 0;
	}
	const struct journal_meta *m = journal_meta(e->j);
	char why[256];
	if (livemgr_is_pid(e->pid, m->manager_pid) && mgrdir_same_shm(m, &lm->shm) &&
	    !mgrdir_journal_owner(m, lm->owner, why, sizeof(why))) {
		/* The holder is the manager the journal names, alive, in a directory of the
		 * owner's, and its names live in our /dev/shm: a live manager of the owner's
		 * whose claim of who it is we cannot check (a rootless container nested two
		 * user namespaces deep records its uid in its parent's terms). A dead such
		 * journal stays unsafe; a live one may hold any of the owner's names, so
		 * cannot tell means keep, as for a journal that cannot be read. */
		journal_close(e->j);
		e->j = NULL;
		e->unreadable = true;
		log_info("livemgr: %s: %s; no object of uid %u is unlinked while it lives", label,
			 why, (unsigned)lm->owner);
		return 0;
	}
	if (!livemgr_is_pid(e->pid, m->manager_pid) || !mgrdir_same_shm(m, &lm->shm)) {
		log_debug("livemgr: pid %d holds a manager directory whose journal is of pid %d, "
			  "uid %u, shm dev %#llx directory %llu: not a live manager of ours",
			  (int)e->pid, (int)m->manager_pid, (unsigned)m->owner_uid,
			  (unsigned long long)m->shm_dev, (unsigned long long)m->shm_ino);
		journal_close(e->j);
		e->j = NULL;
		e->foreign = true;
		return 0;
	}
	log_debug("livemgr: live manager pid %d (directory %llu on %#llx)", (int)e->pid,
		  (unsigned long long)e->ino, (unsigned long long)e->dev);
	return 0;
}

/* livemgr_open for an entry found earlier whose journal is not open yet. */
static int livemgr_open_again(struct livemgr *lm, struct livemgr_entry *e)
{
	struct stat st;
	if (fstat(e->dirfd, &st) < 0)
		return -1;
	return livemgr_open(lm, e, &st);
}

static struct livemgr_entry *livemgr_find(struct livemgr *lm, pid_t pid, const struct stat *st)
{
	struct livemgr_entry *e;
	TAILQ_FOREACH (e, &lm->entries, link)
		if (e->pid == pid && e->dev == st->st_dev && e->ino == st->st_ino)
			return e;
	return NULL;
}

/* Whether dirfd looks like a manager directory: its socket, or its lock file. Either may
 * be missing for a moment under a live manager (a /tmp cleaner removed it; the manager
 * makes it again within a second), never both: a lock file is made before the socket. */
static bool livemgr_is_mgrdir(int dirfd)
{
	struct stat st;
	return (fstatat(dirfd, MGRDIR_SOCKET, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		S_ISSOCK(st.st_mode)) ||
	       (fstatat(dirfd, MGRDIR_LOCK, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode));
}

/* One descriptor of pid: a directory of the owner that looks like a manager directory,
 * whose lock is held, and that no reclaimer marks, is taken for a live manager's; its
 * journal then decides (livemgr_open: it must name pid as its manager). Returns 0, or
 * -1 when it cannot tell (or must not look further).
 *
 * Not by the socket's bound path (it was, until a new user found why not): a live
 * manager's directory renamed or moved since its bind (mv, a /tmp cleaner's rename, a
 * copy put in its place) still holds the live set, and its socket's path then leads
 * elsewhere or nowhere. Refusing it as "not a manager" left its names unprotected: a
 * dead copy of its journal, or any dead journal naming them, had them unlinked under
 * it. What tells a reclaimer holding a dead directory from a manager is the mark
 * reclaimers set (mgrdir_marked), not where a socket leads. A holder that does not
 * serve the directory's socket (a moved manager, a reclaimer of an older release, any
 * process that flocked the directory) is taken for a manager only if its journal can
 * be read and names it as its manager; otherwise it is foreign (a journal it holds that
 * cannot be read says nothing about it: a dead one held by an older reclaimer must not
 * stop every reclaim of the owner's while held, as an unreadable live manager's does),
 * and only costs one read-only open of that journal in place. */
static int livemgr_consider(struct livemgr *lm, pid_t pid, int fddir, const char *fdname)
{
	struct stat st, here;
	struct statx stx;
	/* Through the fd link: the open file itself. AT_STATX_DONT_SYNC: a network or FUSE
	 * file some task holds open must not make us wait on its server. */
	if (statx(fddir, fdname, AT_STATX_DONT_SYNC,
		  STATX_TYPE | STATX_MODE | STATX_UID | STATX_INO, &stx) < 0 ||
	    !S_ISDIR(stx.stx_mode) || stx.stx_uid != lm->owner)
		return 0; /* closed meanwhile, or no manager directory of ours */
	memset(&st, 0, sizeof(st));
	st.st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	st.st_ino = (ino_t)stx.stx_ino;
	st.st_mode = stx.stx_mode;
	st.st_uid = stx.stx_uid;
	struct livemgr_entry *e = livemgr_find(lm, pid, &st);
	if (e && e->seen)
		return 0; /* another descriptor of the same directory */
	int dirfd = -1, rc = 0;
	if (e) {
		dirfd = e->dirfd;
	} else {
		/* Through the holder's descriptor: the directory it holds, whatever its name
		 * is on either side. */
		dirfd = openat(fddir, fdname, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
		if (dirfd < 0)
			return 0;
		if (fstat(dirfd, &here) < 0 || here.st_dev != st.st_dev ||
		    here.st_ino != st.st_ino || !livemgr_is_mgrdir(dirfd))
			goto not_manager; /* replaced meanwhile, or not a manager directory */
	}
	int locked = livemgr_locked(dirfd);
	if (locked < 0) {
		log_warn(
			"livemgr: pid %d: cannot test the lock of a manager directory it holds: %s; "
			"nothing is unlinked",
			(int)pid, strerror(errno));
		rc = -1;
		goto not_manager;
	}
	if (!locked)
		goto not_manager; /* a dead directory someone merely looks at */
	if (e) {
		e->seen = true;
		if (!e->j && !e->foreign && livemgr_open(lm, e, &st) < 0)
			return -1;
		return 0;
	}
	if (mgrdir_marked(dirfd)) {
		log_debug("livemgr: pid %d holds a locked manager directory that a reclaimer "
			  "marks: not its manager",
			  (int)pid);
		goto not_manager; /* a reclaimer holding a dead directory's lock */
	}
	int listens = livemgr_listens(pid, fddir, dirfd);
	if (listens < 0) {
		log_warn("livemgr: pid %d holds a locked manager directory, and its sockets "
			 "cannot be looked at: %s; nothing is unlinked",
			 (int)pid, strerror(errno));
		rc = -1;
		goto not_manager;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		log_warn("livemgr: out of memory; nothing is unlinked");
		rc = -1;
		goto not_manager;
	}
	*e = (struct livemgr_entry){ .pid = pid,
				     .dev = st.st_dev,
				     .ino = st.st_ino,
				     .dirfd = dirfd,
				     .holder_fd = atoi(fdname),
				     .unserved = !listens,
				     .seen = true };
	TAILQ_INSERT_TAIL(&lm->entries, e, link);
	return livemgr_open(lm, e, &st);
not_manager:
	if (e) {
		TAILQ_REMOVE(&lm->entries, e, link);
		livemgr_entry_free(e);
	} else if (dirfd >= 0) {
		close(dirfd);
	}
	return rc;
}

/* Every descriptor of one process. A process we may not read is skipped: it could be a
 * live manager of the owner only if it runs as the owner, and then inuse_blind keeps
 * every object of the owner's anyway (reclaim.c). Returns 0 or -1 (cannot tell). */
static int livemgr_scan_pid(struct livemgr *lm, int procfd, const char *name)
{
	char fdpath[32];
	if ((size_t)snprintf(fdpath, sizeof(fdpath), "%.20s/fd", name) >= sizeof(fdpath))
		return 0;
	int fddir = openat(procfd, fdpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fddir < 0)
		return 0;
	int fd = dup(fddir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		close(fddir);
		return 0;
	}
	pid_t pid = (pid_t)atol(name);
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] != '.')
			rc = livemgr_consider(lm, pid, fddir, de->d_name);
	}
	closedir(d);
	close(fddir);
	return rc;
}

static void livemgr_walk(struct livemgr *lm)
{
	struct livemgr_entry *e, *next;
	TAILQ_FOREACH (e, &lm->entries, link)
		e->seen = false;
	lm->unknown = false;
	lm->walked = false;
	struct timespec real, mono;
	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct statfs sfs;
	DIR *d = NULL;
	if (procfd >= 0 && (fstatfs(procfd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC)) {
		/* An empty directory in a sandbox, or anything else: its silence proves
		 * nothing. */
		log_warn("livemgr: /proc is not procfs: no live manager can be seen; nothing is "
			 "unlinked");
		lm->unknown = true;
	} else if (!(d = procfd >= 0 ? fdopendir(dup(procfd)) : NULL)) {
		log_warn("livemgr: cannot list /proc: %s; nothing is unlinked", strerror(errno));
		lm->unknown = true;
	} else {
		struct dirent *de;
		errno = 0;
		while ((de = readdir(d))) {
			if (livemgr_is_num(de->d_name) && atol(de->d_name) != (long)lm->self &&
			    livemgr_scan_pid(lm, procfd, de->d_name) < 0) {
				lm->unknown = true;
				break;
			}
			errno = 0;
		}
		if (!lm->unknown && errno) {
			log_warn("livemgr: reading /proc: %s; nothing is unlinked",
				 strerror(errno));
			lm->unknown = true;
		}
		closedir(d);
	}
	if (procfd >= 0)
		close(procfd);
	/* Gone managers are dropped; after a walk cut short, everything is kept for the
	 * next one (livemgr_mark fails meanwhile). */
	for (e = TAILQ_FIRST(&lm->entries); e; e = next) {
		next = TAILQ_NEXT(e, link);
		if (e->seen || lm->unknown)
			continue;
		TAILQ_REMOVE(&lm->entries, e, link);
		livemgr_entry_free(e);
	}
	if (!lm->unknown) {
		lm->walked = true;
		lm->walk_real_ns = livemgr_ns(&real);
		lm->walk_offset_ns = livemgr_ns(&real) - livemgr_ns(&mono);
		lm->walk_mono_ns = livemgr_ns(&mono);
	}
}

/* The managers found by the last walk, still live? Each must still hold its directory
 * through the same descriptor, locked: one that does not is dropped when its lock is
 * gone (it died: its journal must not be read in place any longer), and anything else
 * unexpected asks for a new walk. Returns 0, or -1 when a walk is needed. */
static int livemgr_recheck(struct livemgr *lm)
{
	struct livemgr_entry *e, *next;
	for (e = TAILQ_FIRST(&lm->entries); e; e = next) {
		next = TAILQ_NEXT(e, link);
		char path[64];
		struct statx stx;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)e->pid, e->holder_fd);
		int locked = livemgr_locked(e->dirfd);
		if (locked == 0) {
			TAILQ_REMOVE(&lm->entries, e, link);
			livemgr_entry_free(e);
			continue;
		}
		if (locked < 0 || statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_INO, &stx) < 0 ||
		    makedev(stx.stx_dev_major, stx.stx_dev_minor) != e->dev ||
		    (ino_t)stx.stx_ino != e->ino)
			return -1;
		if (!e->j && !e->foreign && livemgr_open_again(lm, e) < 0)
			return -1;
	}
	return 0;
}

void livemgr_refresh(struct livemgr *lm, int64_t newest_btime_ns)
{
	/* A manager whose name is on the page registered it before its client created the
	 * object (write-ahead), so it was live and listening before the object's birth:
	 * a walk that began after that birth found it. Only an object born after the last
	 * walk began (less a margin for the coarse clock file times use), or a clock
	 * stepped since, or a walk older than LIVEMGR_WALK_MAX_AGE_NS asks for a new
	 * walk; the managers found stay, checked. */
	struct timespec real, mono;
	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	int64_t offset = livemgr_ns(&real) - livemgr_ns(&mono);
	int64_t drift = offset - lm->walk_offset_ns;
	if (!lm->walked || newest_btime_ns >= lm->walk_real_ns - LIVEMGR_BIRTH_MARGIN_NS ||
	    drift > LIVEMGR_CLOCK_STEP_NS || drift < -LIVEMGR_CLOCK_STEP_NS ||
	    livemgr_ns(&mono) - lm->walk_mono_ns > LIVEMGR_WALK_MAX_AGE_NS ||
	    livemgr_recheck(lm) < 0)
		livemgr_walk(lm);
}

struct livemgr_marking {
	const struct journal_row *rows;
	int n;
	bool *held;
	pid_t *holder;
	pid_t pid;
};

static int livemgr_cmp(const char *a, size_t alen, const struct journal_row *b)
{
	size_t n = alen < b->len ? alen : b->len;
	int c = memcmp(a, b->name, n);
	return c ? c : (alen > b->len) - (alen < b->len);
}

static int livemgr_mark_one(void *arg, const char *name, size_t len)
{
	struct livemgr_marking *mk = arg;
	int lo = 0, hi = mk->n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		int c = livemgr_cmp(name, len, &mk->rows[mid]);
		if (c == 0) {
			mk->held[mid] = true;
			mk->holder[mid] = mk->pid;
			break;
		}
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return 0;
}

int livemgr_mark(struct livemgr *lm, const struct journal_row *rows, int n, bool *held,
		 pid_t *holder)
{
	for (int i = 0; i < n; i++) {
		held[i] = false;
		holder[i] = 0;
	}
	if (n <= 0)
		return 0;
	if (lm->unknown)
		return -1;
	struct livemgr_marking mk = { .rows = rows, .n = n, .held = held, .holder = holder };
	int rc = 0;
	if ((uid_t)setfsuid((uid_t)-1) != lm->owner && !TAILQ_EMPTY(&lm->entries)) {
		/* Reads may open -wal/-shm: only ever as the owner (see the top). */
		log_warn("livemgr: not acting as uid %u: live journals not read",
			 (unsigned)lm->owner);
		return -1;
	}
	if (lm->extra) {
		mk.pid = lm->self;
		if (journal_names_between(lm->extra, &rows[0], &rows[n - 1], livemgr_mark_one,
					  &mk) < 0) {
			log_warn("livemgr: own journal: %s", journal_error(lm->extra));
			rc = -1;
		}
	}
	struct livemgr_entry *e;
	TAILQ_FOREACH (e, &lm->entries, link) {
		if (!e->j)
			continue;
		mk.pid = e->pid;
		if (journal_names_between(e->j, &rows[0], &rows[n - 1], livemgr_mark_one, &mk) <
		    0) {
			log_warn("livemgr: the journal of live manager pid %d: %s", (int)e->pid,
				 journal_error(e->j));
			rc = -1;
		}
	}
	return rc;
}

pid_t livemgr_unreadable(const struct livemgr *lm)
{
	const struct livemgr_entry *e;
	TAILQ_FOREACH (e, &lm->entries, link)
		if (!e->j && e->unreadable)
			return e->pid;
	return 0;
}

unsigned livemgr_count(const struct livemgr *lm)
{
	unsigned n = lm->extra ? 1 : 0;
	const struct livemgr_entry *e;
	TAILQ_FOREACH (e, &lm->entries, link)
		n += e->j != NULL;
	return n;
}

void livemgr_free(struct livemgr *lm)
{
	if (!lm)
		return;
	struct livemgr_entry *e;
	while ((e = TAILQ_FIRST(&lm->entries))) {
		TAILQ_REMOVE(&lm->entries, e, link);
		livemgr_entry_free(e);
	}
	free(lm);
}
