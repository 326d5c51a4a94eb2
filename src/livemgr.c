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
 * directory renamed since its bind is still its (livemgr_consider says why), and so is
 * one emptied or removed under it, whose holder still listens at a socket bound in a
 * directory of its name: its journal then cannot be read, which keeps everything (again
 * livemgr_consider). Its journal
 * is then read through our descriptor of the directory (journal_open_dirfd) and counts
 * when it names the holder (in any of the pid namespaces it has: NSpid) as its manager,
 * belongs to the owner and records our shm filesystem.
 *
 * Found by their lock: a process the walk cannot see holds nothing we can look at. A
 * reclaimer in a child pid namespace (a container sharing /tmp and /dev/shm with the
 * host, a Kubernetes pod, a rootless container with its own pid namespace) has no /proc
 * entry for the host's managers; one in a user namespace may not read the fds of a
 * process outside it that is not dumpable, even the same user's (the kernel asks for a
 * capability in the target's user namespace then). Their names went unprotected: a name
 * such a manager registered, in flight between its clients (open or mapped nowhere, so
 * the kernel's lease allows the unlink), listed by a dead journal of ours too (PyTorch
 * registers a name with the sender's and each receiver's manager), was unlinked under
 * it. But a manager holds its directory's flock for its whole life, and the lock is the
 * kernel's, seen alike from every namespace. So every walk also reads each temp base the
 * caller watches (livemgr_watch: the bases it reclaims in) once, and a directory of the
 * owner's there that the walk of /proc did not find (as a manager's, nor held by a task
 * it inspected that is not its manager: livemgr.others), locked exclusive and not marked by
 * a reclaimer, counts as a live manager's whose pid is unknown (by_lock, reported as
 * "not visible here"). Its journal is read as a found one's, with every check but the
 * holder's (it cannot be asked whose it is): the directory belongs to the owner and is
 * not writable by group or others, the journal belongs to the owner and records our shm
 * filesystem; one that cannot be read keeps everything of the owner's while it stays
 * locked (livemgr_unreadable). What else holds such a directory, unmarked, exclusive:
 * a manager starting, an older release's reclaimer, anyone who flocked it; each costs
 * keeps only (a name its journal lists is handed over to it and stays journaled there),
 * never an unlink. The caller's own directories, locked by itself, are excluded by
 * identity (livemgr_exclude): the journal being reclaimed, a restarted manager's own.
 * Same schedule as the walk of /proc, of which it is a part: a manager registers a name
 * before its object is born, so its directory was locked before that birth, and a walk
 * begun after it finds it. A manager outside every watched base stays unseen (README,
 * SECURITY.md).
 *
 * The walk costs a stat per open descriptor on the machine (and a readdir of each
 * watched base, a stat per manager directory there, a lock test per one of the owner's
 * that /proc did not show), so it is not repeated for
 * every page of rows: a manager whose name is on a page registered it before its client
 * created the object, so it was live and listening before the object's birth, and any
 * walk begun after that birth found it. A page whose objects are all older than the
 * last walk (less a margin for the coarse clock of file times; a stepped clock, or a
 * manager found earlier that changed, voids it) only rechecks the managers found, and
 * its live journals are still read after its objects were statted.
 *
 * "Cannot tell" means keep: when /proc cannot be walked (any failure but ENOENT or ESRCH,
 * which alone mean a process or descriptor went away: out of descriptors, EMFILE or
 * ENFILE, or memory is no answer), or a candidate's socket cannot be looked at, or a live
 * manager's journal must not be opened, livemgr_mark fails and the caller unlinks
 * nothing of that page. A process of the owner's whose descriptors the kernel refuses us
 * and that may be a manager by its name is a live manager whose journal cannot be read
 * (livemgr_blind says why that test). A live manager whose journal cannot be read
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
#include <signal.h>
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

/* A live manager: a process holding its locked manager directory open, or (by_lock) a
 * locked directory in a watched temp base whose holder the walk of /proc did not find,
 * or (blind) a process of the owner's that may be a manager whose descriptors the kernel
 * does not let us read. */
struct livemgr_entry {
	pid_t pid; /* 0 for by_lock: not visible from here */
	dev_t dev; /* the directory's identity */
	ino_t ino;
	int dirfd;         /* our descriptor of it, opened through the holder's */
	int holder_fd;     /* the holder's descriptor number of it */
	struct journal *j; /* NULL: no schema yet, or unreadable: tried again next refresh */
	bool unreadable;   /* its journal could not be opened (another schema version,
			    * damaged, busy): it may hold any name (livemgr_unreadable) */
	bool unserved;     /* the holder does not listen at the directory's socket: its
			    * journal must name it before it counts (livemgr_consider) */
	dev_t jdev;        /* the journal.db that j reads, */
	ino_t jino;        /* to see one put in its place (livemgr_journal_same) */
	bool stripped;     /* found with neither socket nor lock file in it, or removed:
			    * its manager's files went (livemgr_consider) */
	bool foreign;      /* its journal is not ours (another owner, shm filesystem, or
			    * manager pid): never opened again */
	bool seen;         /* in the latest walk */
	bool by_lock;      /* found by its lock in a watched base, not through a process
			    * (livemgr_scan_bases): no holder to check its journal against */
	bool blind;        /* a process of the owner's that may be a manager and whose
			    * descriptors we may not read (livemgr_blind): no directory
			    * (dirfd -1), always unreadable */
	char who[80];      /* for messages: "live manager pid N", or its directory's name */
	TAILQ_ENTRY(livemgr_entry) link;
};

TAILQ_HEAD(livemgr_list, livemgr_entry);

/* A directory by identity: one never taken for a live manager (livemgr_exclude). */
struct livemgr_dir {
	dev_t dev;
	ino_t ino;
};
#define LIVEMGR_EXCLUDED_MAX 4

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
	const int *bases;       /* the watched temp bases (livemgr_watch), borrowed */
	size_t nbases;
	struct livemgr_dir excluded[LIVEMGR_EXCLUDED_MAX]; /* livemgr_exclude */
	size_t nexcluded;
	bool exclude_failed; /* a directory to exclude could not be told: keep everything */
	/* Locked directories of the owner's that the latest walk of /proc found held by a
	 * task it could inspect and that is not their manager (no manager's files in them,
	 * no socket of theirs listened on: a leftover `flock`, a user's tool): the holder is
	 * known, so the scan of the bases does not count them as managers it cannot see. */
	struct livemgr_dir *others;
	size_t nothers, cap_others;
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

void livemgr_watch(struct livemgr *lm, const int *basefds, size_t n)
{
	lm->bases = basefds;
	lm->nbases = basefds ? n : 0;
}

void livemgr_exclude(struct livemgr *lm, int dirfd)
{
	struct stat st;
	if (lm->nexcluded == LIVEMGR_EXCLUDED_MAX || fstat(dirfd, &st) < 0) {
		/* Taken for another manager's, the caller's own directory would hand its own
		 * names over: cannot tell means keep. */
		log_warn("livemgr: cannot tell the caller's own directory: %s; nothing is "
			 "unlinked",
			 lm->nexcluded == LIVEMGR_EXCLUDED_MAX ? "too many" : strerror(errno));
		lm->exclude_failed = true;
		return;
	}
	lm->excluded[lm->nexcluded++] = (struct livemgr_dir){ .dev = st.st_dev, .ino = st.st_ino };
}

static bool livemgr_is_excluded(const struct livemgr *lm, const struct stat *st)
{
	for (size_t i = 0; i < lm->nexcluded; i++)
		if (lm->excluded[i].dev == st->st_dev && lm->excluded[i].ino == st->st_ino)
			return true;
	return false;
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

/* Whether err says the process (or its descriptor) is gone: the only errors of /proc
 * that mean "nothing there". Anything else (EMFILE, ENFILE, ENOMEM, ...) is "cannot
 * tell", never "no manager" (a new user's recover at RLIMIT_NOFILE 12 took a walk that
 * could open no /proc/PID/fd for a complete one, and unlinked a live manager's name). */
static bool livemgr_gone(int err)
{
	return err == ENOENT || err == ESRCH;
}

/* Whether err is a want of resources (descriptors, memory): no answer about anything. */
static bool livemgr_resource(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM;
}

/* Whether err is the kernel refusing us pid's descriptors (ptrace_may_access: not the
 * same uids and gids, or not dumpable). */
static bool livemgr_denied(int err)
{
	return err == EACCES || err == EPERM;
}

/* The inodes of all the socket descriptors of pid (fddir: its /proc/PID/fd), into
 * *inodes (malloc'd, the caller frees it; NULL when none). All of them, not the first
 * so many: a manager with more clients than a cap, whose listening socket was made
 * again after they connected (its file removed by a cleaner: manager.c restores it at
 * a new, higher descriptor), was taken for no manager, and its names went unprotected.
 * Returning "cannot tell" at a cap would keep instead, but would stop every reclaim of
 * the owner's while any big manager (a data loader with many workers) lives, for the
 * price of a readlink per descriptor of the few processes that hold a locked manager
 * directory. Returns the count, or -1 with errno (cannot tell). */
static ssize_t livemgr_sockets(int fddir, unsigned long **inodes)
{
	*inodes = NULL;
	int fd = openat(fddir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int saved = errno;
		if (fd >= 0)
			close(fd);
		errno = saved;
		return livemgr_gone(saved) ? 0 : -1;
	}
	size_t n = 0, cap = 0;
	ssize_t rc = 0;
	struct dirent *de;
	char link[64];
	errno = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		ssize_t len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		unsigned long ino;
		if (len < 0 && livemgr_gone(errno)) {
			errno = 0;
			continue; /* closed meanwhile */
		}
		if (len <= 0) {
			rc = -1;
			break;
		}
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) != 1) {
			errno = 0;
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			unsigned long *more = realloc(*inodes, ncap * sizeof(*more));
			if (!more) {
				errno = ENOMEM;
				rc = -1;
				break;
			}
			*inodes = more;
			cap = ncap;
		}
		(*inodes)[n++] = ino;
		errno = 0;
	}
	if (rc == 0 && errno && !livemgr_gone(errno))
		rc = -1;
	int saved = errno;
	closedir(d);
	if (rc < 0) {
		free(*inodes);
		*inodes = NULL;
		errno = saved ? saved : EIO;
		return -1;
	}
	return (ssize_t)n;
}

/* Whether bound, a socket's bound path, is NAME/manager.sock in some directory. */
static bool livemgr_bound_in(const char *bound, const char *name)
{
	size_t blen = strlen(bound), nlen = strlen(name), slen = strlen(MGRDIR_SOCKET);
	if (!nlen || blen < nlen + slen + 2)
		return false;
	const char *tail = bound + blen - slen - nlen - 2;
	return tail[0] == '/' && memcmp(tail + 1, name, nlen) == 0 && tail[nlen + 1] == '/' &&
	       strcmp(tail + nlen + 2, MGRDIR_SOCKET) == 0;
}

/* Whether pid listens on dirfd/manager.sock: what only the directory's manager does.
 * Its listening sockets come from /proc/PID/net/unix (its own network namespace); the
 * path each was bound to is looked up in its own root and mount namespace
 * (/proc/PID/root), and must be the very socket file in our directory. With name (the
 * directory's own name, as the kernel names the holder's descriptor of it), a listening
 * socket of pid bound at a path ending in NAME/manager.sock counts too, wherever that
 * path leads now: what a manager still holds whose socket file was removed with its
 * directory's other files (a cleaner emptying it, an rm -r of it or of its base). That
 * is path text, so it only ever makes a holder count as a manager, which keeps more
 * (livemgr_consider). 1 yes, 0 no, -1 cannot tell (its sockets cannot be read). */
static int livemgr_listens(pid_t pid, int fddir, int dirfd, const char *name)
{
	struct stat sock;
	bool have_sock = false;
	if (fstatat(dirfd, MGRDIR_SOCKET, &sock, AT_SYMLINK_NOFOLLOW) == 0)
		have_sock = S_ISSOCK(sock.st_mode);
	else if (errno != ENOENT)
		return -1;
	if (!have_sock && !name)
		return 0;
	unsigned long *inodes;
	ssize_t got = livemgr_sockets(fddir, &inodes);
	if (got <= 0)
		return (int)got; /* none: 0; cannot tell: -1 */
	size_t n = (size_t)got;
	char path[64], line[PATH_MAX + 128], root[PATH_MAX + 64];
	snprintf(path, sizeof(path), "/proc/%d/net/unix", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		int saved = errno;
		free(inodes);
		errno = saved;
		return livemgr_gone(saved) ? 0 : -1;
	}
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
		if (have_sock &&
		    (size_t)snprintf(root, sizeof(root), "/proc/%d/root%s", (int)pid, bound) <
			    sizeof(root) &&
		    stat(root, &st) == 0 && st.st_dev == sock.st_dev && st.st_ino == sock.st_ino)
			found = 1;
		else if (name && livemgr_bound_in(bound, name))
			found = 1;
	}
	if (found == 0 && ferror(f)) {
		found = -1;
		if (!errno)
			errno = EIO;
	}
	int saved = errno;
	fclose(f);
	free(inodes);
	errno = saved;
	return found;
}

int livemgr_serves(pid_t pid, int dirfd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	int fddir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fddir < 0)
		return -1;
	int rc = livemgr_listens(pid, fddir, dirfd, NULL);
	close(fddir);
	return rc;
}

/* Whether the journal's manager pid is pid in one of the pid namespaces pid has (the
 * NSpid line: ours first, then each nested one's; a manager records its own getpid()).
 * 1 yes, 0 no (or pid is gone), -1 cannot tell (its status cannot be read: EMFILE). */
static int livemgr_is_pid(pid_t pid, int64_t journal_pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return livemgr_gone(errno) ? 0 : -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int saved = errno;
	close(fd);
	if (n < 0 && !livemgr_gone(saved))
		return -1;
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nNSpid:");
	if (!p)
		return journal_pid == pid; /* a kernel before 4.1: one namespace known */
	p += 7;
	for (;;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			return 0;
		if (v == journal_pid)
			return 1;
		p = end;
	}
}

/* Opens the journal of a live manager's directory, if it is the holder's own and ours
 * (one found by its lock has no holder to compare: it counts when it is ours).
 * Returns 0 (e->j set, or left NULL: no schema yet, unreadable, or not ours), or -1
 * when it must not be opened (livemgr_refresh says why). */
static int livemgr_open(struct livemgr *lm, struct livemgr_entry *e, const struct stat *st)
{
	char err[512];
	const char *label = e->who;
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
	/* Which journal.db the handle reads, so a later one in its place (the manager's
	 * restore after a cleaner removed it) is seen (livemgr_journal_same). A file
	 * replaced during the open leaves the handle reading one we cannot name. */
	struct stat before, after;
	bool have = fstatat(e->dirfd, JOURNAL_FILE, &before, AT_SYMLINK_NOFOLLOW) == 0;
	int rc = journal_open_dirfd(e->dirfd, label,
				    JOURNAL_UNTRUSTED | JOURNAL_READONLY | JOURNAL_SKIM, &e->j, err,
				    sizeof(err));
	if (rc == 0 && (!have || fstatat(e->dirfd, JOURNAL_FILE, &after, AT_SYMLINK_NOFOLLOW) < 0 ||
			after.st_dev != before.st_dev || after.st_ino != before.st_ino)) {
		/* Its manager is rebuilding it (or a hand swapped it): unreadable for now,
		 * which keeps everything, and opened again at the next refresh. Never
		 * foreign: that is for good. */
		journal_close(e->j);
		e->j = NULL;
		e->unreadable = true;
		log_debug("livemgr: %s: %s was replaced while being opened: read again later",
			  label, JOURNAL_FILE);
		return 0;
	}
	if (rc == 0) {
		e->jdev = before.st_dev;
		e->jino = before.st_ino;
	}
	if (rc == -ENODATA)
		return 0; /* no schema yet: a manager starting has registered nothing */
	if (rc == -EAGAIN) {
		/* Out of descriptors or memory: nothing is known of it, neither unreadable
		 * (for good) nor foreign. Cannot tell: nothing is unlinked now. */
		log_warn("livemgr: %s: its journal cannot be opened now: %s; nothing is unlinked",
			 label, err);
		return -1;
	}
	if (rc < 0) {
		/* Which shm filesystem its names live in, the journal would have said; its
		 * own /dev/shm says it too (a chroot's or container's private tmpfs). One we
		 * cannot look at may be ours. */
		char shm[64], why[128];
		struct shmobj_fs theirs;
		snprintf(shm, sizeof(shm), "/proc/%d/root/dev/shm", (int)e->pid);
		/* One found by its lock has no process to look into: it may be ours. */
		int sfd = e->by_lock ? -1
				     : open(shm, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
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
		if (e->stripped)
			log_info(
				"livemgr: %s: its directory was emptied or removed under it (a "
				"cleaner, an rm -r), and its journal cannot be read: %s; no object "
				"of uid %u is unlinked while it holds it so",
				label, err, (unsigned)lm->owner);
		else
			log_info("livemgr: %s: its journal cannot be read: %s; no object of uid "
				 "%u is unlinked while it lives",
				 label, err, (unsigned)lm->owner);
		return 0;
	}
	const struct journal_meta *m = journal_meta(e->j);
	char why[256];
	/* Whose it is, asked once: a process's NSpid is read from /proc each time. One
	 * found by its lock has no holder to ask (its pid namespace is not ours, or it
	 * cannot be inspected from here): its directory being the owner's, locked, unmarked
	 * and in our base, it counts as the manager its journal names. That only ever
	 * keeps more: a name it lists is handed over to it (the object left, the name still
	 * journaled there), never unlinked. */
	int is_pid = e->by_lock ? 1 : livemgr_is_pid(e->pid, m->manager_pid);
	if (is_pid < 0) {
		log_warn("livemgr: %s: cannot read its status: %s; nothing is unlinked", label,
			 strerror(errno));
		journal_close(e->j);
		e->j = NULL;
		return -1;
	}
	bool holders = is_pid == 1;
	bool ours = mgrdir_same_shm(m, &lm->shm);
	if (holders && ours && !mgrdir_journal_owner(m, lm->owner, why, sizeof(why))) {
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
	if (!holders || !ours) {
		log_debug("livemgr: %s: its journal is of pid %d, uid %u, shm dev %#llx directory "
			  "%llu: not a live manager of ours",
			  label, (int)m->manager_pid, (unsigned)m->owner_uid,
			  (unsigned long long)m->shm_dev, (unsigned long long)m->shm_ino);
		journal_close(e->j);
		e->j = NULL;
		e->foreign = true;
		return 0;
	}
	log_debug("livemgr: %s (directory %llu on %#llx)", label, (unsigned long long)e->ino,
		  (unsigned long long)e->dev);
	return 0;
}

/* Whether the journal an entry reads is still the one at its directory's journal.db. A
 * manager whose journal was removed makes a new one (manager.c, journal_rebuild): a
 * handle kept on the old files would no longer see its registrations. One that is not
 * is closed, to be opened again (livemgr_open). */
static void livemgr_journal_same(struct livemgr_entry *e)
{
	struct stat st;
	if (!e->j || (fstatat(e->dirfd, JOURNAL_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		      st.st_dev == e->jdev && st.st_ino == e->jino))
		return;
	log_debug("livemgr: %s: its journal was replaced: read again", e->who);
	journal_close(e->j);
	e->j = NULL;
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

/* The name of the directory pid holds as descriptor fdname, as the kernel gives it (its
 * last component, without the " (deleted)" of a removed one): into name, "" when there
 * is none. Text, for livemgr_listens only. */
static void livemgr_held_name(int fddir, const char *fdname, bool removed, char *name, size_t len)
{
	char link[PATH_MAX];
	static const char deleted[] = " (deleted)";
	name[0] = '\0';
	ssize_t n = readlinkat(fddir, fdname, link, sizeof(link) - 1);
	if (n <= 0 || link[0] != '/')
		return;
	link[n] = '\0';
	size_t dl = sizeof(deleted) - 1;
	if (removed && (size_t)n > dl && strcmp(link + n - dl, deleted) == 0)
		link[n - dl] = '\0';
	const char *slash = strrchr(link, '/');
	if (strlen(slash + 1) < len)
		util_strlcpy(name, slash + 1, len);
}

/* One descriptor of pid: a directory of the owner that looks like a manager directory,
 * or one its holder serves a socket in by name (below), whose lock is held, and that no
 * reclaimer marks, is taken for a live manager's; its journal then decides
 * (livemgr_open: it must name pid as its manager, or cannot be read). Returns 0, or -1
 * when it cannot tell (or must not look further).
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
 * and only costs one read-only open of that journal in place.
 *
 * A live manager's directory may also have lost its files, or itself, while the manager
 * holds it: a cleaner that empties it (tmpreaper ignores flocks), an rm -r of it or of
 * its whole base. The manager makes them again within a second (manager.c, the files
 * check), or never (its base is gone, or it is stopped: SIGSTOP, `scontrol suspend`),
 * and meanwhile its directory holds neither socket nor lock file, or is removed
 * (st_nlink 0), and its journal is gone from it. Its names are still registered, and
 * its journal cannot be read: not in place (it is unlinked), nor soundly through the
 * manager's own descriptors (a WAL database read without its -wal and -shm, or from a
 * copy taken while the manager writes, misses or mixes commits). Skipped as "not a
 * manager directory" (as it was), its names had no protection at all, and a dead
 * journal listing them had them unlinked. So a holder still listening on a socket
 * bound at NAME/manager.sock, NAME being the held directory's own name (the manager's
 * socket, whose file went with the rest), serves it: such a directory counts whatever
 * files it still holds, and a journal it cannot show is one that cannot be read
 * (livemgr_unreadable: nothing of the owner's is unlinked while it is held so). Who
 * else holds a removed or emptied directory, unmarked, exclusive: a reclaimer of an
 * older release finishing its rmdir, or of this release between dropping its mark and
 * its flock (neither listens there: not counted, as before); a look (ls, a dry run)
 * locks shared only (never counted). The socket's path is only text, so it is trusted
 * only to keep more: a holder it makes count can cost a reclaim that waits, never an
 * unlink.
 *
 * Returns 1 when the kernel refuses us the descriptor (EACCES, EPERM: the holder is not
 * ours to inspect) or the file cannot be looked at (livemgr_blind decides, by the
 * holder); only ENOENT or ESRCH mean "gone"; out of descriptors or memory is -1. */
static int livemgr_consider(struct livemgr *lm, pid_t pid, int fddir, const char *fdname)
{
	struct stat st, here;
	struct statx stx;
	/* Through the fd link: the open file itself. AT_STATX_DONT_SYNC: a network or FUSE
	 * file some task holds open must not make us wait on its server. */
	if (statx(fddir, fdname, AT_STATX_DONT_SYNC,
		  STATX_TYPE | STATX_MODE | STATX_UID | STATX_INO, &stx) < 0) {
		if (livemgr_gone(errno))
			return 0; /* closed meanwhile */
		if (livemgr_resource(errno)) {
			log_warn("livemgr: pid %d: cannot look at its descriptor %s: %s; nothing "
				 "is unlinked",
				 (int)pid, fdname, strerror(errno));
			return -1;
		}
		/* Refused (its fd table is listed but not ours to follow), or the file's own
		 * failure (a FUSE file whose daemon died: ENOTCONN; a stale NFS handle): what
		 * it holds cannot be told, so it is looked at as a process we may not inspect
		 * (livemgr_blind: kept for if it may be a manager, by its name), not made to
		 * stop every reclaim for as long as anyone holds such a file. */
		log_debug("livemgr: pid %d: descriptor %s: %s", (int)pid, fdname, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(stx.stx_mode) || stx.stx_uid != lm->owner)
		return 0; /* no manager directory of ours */
	memset(&st, 0, sizeof(st));
	st.st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	st.st_ino = (ino_t)stx.stx_ino;
	st.st_mode = stx.stx_mode;
	st.st_uid = stx.stx_uid;
	struct livemgr_entry *e = livemgr_find(lm, pid, &st);
	if (e && e->seen)
		return 0; /* another descriptor of the same directory */
	int dirfd = -1, rc = 0;
	bool looks = true, removed = false;
	if (e) {
		dirfd = e->dirfd;
	} else {
		/* Through the holder's descriptor: the directory it holds, whatever its name
		 * is on either side. */
		dirfd = openat(fddir, fdname, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
		if (dirfd < 0) {
			if (livemgr_gone(errno))
				return 0; /* closed meanwhile */
			if (!livemgr_resource(errno))
				return 1; /* not dumpable, or its credentials changed, since */
			log_warn("livemgr: pid %d: cannot open a directory of uid %u it holds: %s; "
				 "nothing is unlinked",
				 (int)pid, (unsigned)lm->owner, strerror(errno));
			return -1;
		}
		if (fstat(dirfd, &here) < 0 || here.st_dev != st.st_dev || here.st_ino != st.st_ino)
			goto not_manager; /* replaced meanwhile */
		removed = here.st_nlink == 0;
		looks = !removed && livemgr_is_mgrdir(dirfd);
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
		goto not_manager; /* a dead directory someone merely looks at, or any directory */
	if (e) {
		e->seen = true;
		livemgr_journal_same(e);
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
	char name[NAME_MAX + 1];
	livemgr_held_name(fddir, fdname, removed, name, sizeof(name));
	int listens = livemgr_listens(pid, fddir, dirfd, name[0] ? name : NULL);
	if (listens < 0) {
		log_warn("livemgr: pid %d holds a locked %s, and its sockets cannot be looked at: "
			 "%s; nothing is unlinked",
			 (int)pid, looks ? "manager directory" : "directory", strerror(errno));
		rc = -1;
		goto not_manager;
	}
	if (!looks && !listens) {
		/* No manager directory, or not its manager's: a holder we see, so not one
		 * the scan of the bases should take for a manager it cannot see. */
		if (lm->nothers == lm->cap_others) {
			size_t cap = lm->cap_others ? 2 * lm->cap_others : 8;
			struct livemgr_dir *o = realloc(lm->others, cap * sizeof(*o));
			if (!o) {
				log_warn("livemgr: out of memory; nothing is unlinked");
				rc = -1;
				goto not_manager;
			}
			lm->others = o;
			lm->cap_others = cap;
		}
		lm->others[lm->nothers++] = (struct livemgr_dir){ .dev = st.st_dev,
								  .ino = st.st_ino };
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
				     .stripped = !looks,
				     .seen = true };
	snprintf(e->who, sizeof(e->who), "live manager pid %d", (int)pid);
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

/* Reads /proc/PID/FILE (FILE a small text file) into buf; the length, or -1 with errno. */
static ssize_t livemgr_read_small(int procfd, const char *pidname, const char *file, char *buf,
				  size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "%.20s/%s", pidname, file);
	int fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	int saved = errno;
	close(fd);
	errno = saved;
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Whether a program name (comm, or argv[0]'s last component) is a manager's: shmwarden,
 * or the drop-in's torch_shm_manager, which comm cuts to 15 bytes. */
static bool livemgr_manager_name(const char *s)
{
	return strcmp(s, "shmwarden") == 0 || strcmp(s, "torch_shm_manager") == 0 ||
	       strcmp(s, "torch_shm_manag") == 0;
}

/* A process pid (pidname) whose descriptors the kernel will not show us (livemgr_consider
 * or the open of its fd table said EACCES or EPERM). Its fd table is read only when its
 * uids, euid, suid AND gids, egid, sgid are all ours and it is dumpable (ptrace_may_access):
 * a manager of the owner's own started under sg or newgrp, sbatch --gid, a setgid
 * wrapper, or from an execute-only binary (not dumpable), and, to a root reclaimer acting
 * as the owner, every non-dumpable process of the owner's, are such. Skipped as "not a
 * manager" (as they were), their names had no protection: a name one had registered,
 * open or mapped by nobody at the moment (in flight between its clients: the kernel's
 * lease allows the unlink), listed by a dead journal too, was unlinked under it; and
 * they may hold their directory in no base we watch (livemgr_scan_bases).
 *
 * What we can still read of it: /proc/PID/status (uids, whatever its dumpability),
 * comm and cmdline. So one whose real, effective or saved uid is the owner's and that
 * may be a manager counts as a live manager whose journal cannot be read
 * (livemgr_unreadable: nothing of the owner's is unlinked while it lives; reported as
 * live_unreadable with its pid). "May be a manager": its comm or argv[0]'s last
 * component names shmwarden or torch_shm_manager (comm "torch_shm_manag"). Why that
 * test, and not wider or narrower:
 * - every process of the owner's that we may not inspect would be sound but useless:
 *   gpg-agent, ssh-agent, and whatever else makes itself non-dumpable run for a user's
 *   whole session, and would stop every reclaim of that user's for good;
 * - an exclusive FLOCK in /proc/locks would only narrow the name test, and /proc/locks
 *   comes a page per read() and skips entries under lock churn (livemgr.c, top): a
 *   manager missed there would be unlinked under, so it is not asked;
 * - the name is the binary's (execve's, whether from shmwarden or a torch_shm_manager
 *   link to it), not something a manager changes: a renamed copy of the binary run
 *   blind is missed (SECURITY.md, "Known limits"). What else matches: a shmwarden
 *   recover, sweep or ls of the owner's run blind (sg, a setgid wrapper) at the same
 *   moment; it costs keeps for as long as it runs, never an unlink.
 * Returns 0, or -1 when it cannot tell (its status, comm or cmdline unreadable for
 * another reason than its exit). */
static int livemgr_blind(struct livemgr *lm, int procfd, const char *pidname, pid_t pid)
{
	char buf[4096];
	if (livemgr_read_small(procfd, pidname, "status", buf, sizeof(buf)) < 0)
		goto cannot;
	/* A zombie (or a task being reaped) has closed every file, its directory's lock
	 * and its socket with them, when it exited: no live manager, whoever it was (a
	 * manager of a user namespace's, reparented to a pid 1 that does not reap, stays
	 * a zombie for good, and its /proc/PID/fd is refused us). */
	const char *st = strstr(buf, "\nState:");
	if (st) {
		st += 7;
		st += strspn(st, " \t");
		if (*st == 'Z' || *st == 'X')
			return 0;
	}
	const char *p = strstr(buf, "\nUid:");
	unsigned uid[3];
	if (!p || sscanf(p + 5, "%u %u %u", &uid[0], &uid[1], &uid[2]) != 3) {
		errno = EINVAL;
		goto cannot; /* a /proc we do not understand */
	}
	if (uid[0] != lm->owner && uid[1] != lm->owner && uid[2] != lm->owner)
		return 0; /* not the owner's: holds no manager directory of the owner's */
	char comm[64];
	if (livemgr_read_small(procfd, pidname, "comm", comm, sizeof(comm)) < 0)
		goto cannot;
	comm[strcspn(comm, "\n")] = '\0';
	ssize_t n = livemgr_read_small(procfd, pidname, "cmdline", buf, sizeof(buf));
	if (n < 0)
		goto cannot;
	const char *slash = strrchr(buf, '/'); /* argv[0] ends at the first NUL */
	const char *argv0 = slash ? slash + 1 : buf;
	if (!livemgr_manager_name(comm) && !livemgr_manager_name(argv0)) {
		log_debug("livemgr: pid %d (%s) of uid %u cannot be inspected: no manager by its "
			  "name, skipped",
			  (int)pid, comm, (unsigned)lm->owner);
		return 0;
	}
	struct livemgr_entry *e;
	TAILQ_FOREACH (e, &lm->entries, link) {
		if (e->blind && e->pid == pid) {
			e->seen = true;
			return 0;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		log_warn("livemgr: out of memory; nothing is unlinked");
		return -1;
	}
	*e = (struct livemgr_entry){ .pid = pid,
				     .dirfd = -1,
				     .holder_fd = -1,
				     .unreadable = true,
				     .blind = true,
				     .seen = true };
	snprintf(e->who, sizeof(e->who), "live manager pid %d", (int)pid);
	TAILQ_INSERT_TAIL(&lm->entries, e, link);
	log_info("livemgr: pid %d (%s) of uid %u may be a live manager, and its descriptors "
		 "cannot be read (another group, or not dumpable): its journal cannot be read; "
		 "no object of uid %u is unlinked while it lives",
		 (int)pid, comm, (unsigned)lm->owner, (unsigned)lm->owner);
	return 0;
cannot:
	if (livemgr_gone(errno))
		return 0;
	log_warn("livemgr: pid %d cannot be inspected, and its status cannot be read: %s; "
		 "nothing is unlinked",
		 (int)pid, strerror(errno));
	return -1;
}

/* Every descriptor of one process. Only ENOENT and ESRCH mean it is gone; one the
 * kernel does not let us inspect goes to livemgr_blind; any other failure (EMFILE,
 * ENFILE, ENOMEM) is "cannot tell". Returns 0 or -1 (cannot tell). */
static int livemgr_scan_pid(struct livemgr *lm, int procfd, const char *name)
{
	char fdpath[32];
	pid_t pid = (pid_t)atol(name);
	if ((size_t)snprintf(fdpath, sizeof(fdpath), "%.20s/fd", name) >= sizeof(fdpath))
		return 0;
	int fddir = openat(procfd, fdpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fddir < 0) {
		if (livemgr_gone(errno))
			return 0;
		if (livemgr_denied(errno))
			return livemgr_blind(lm, procfd, name, pid);
		log_warn("livemgr: cannot open the descriptors of pid %d: %s; nothing is unlinked",
			 (int)pid, strerror(errno));
		return -1;
	}
	int fd = dup(fddir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int saved = errno;
		if (fd >= 0)
			close(fd);
		close(fddir);
		log_warn("livemgr: cannot list the descriptors of pid %d: %s; nothing is unlinked",
			 (int)pid, strerror(saved));
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	errno = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] != '.')
			rc = livemgr_consider(lm, pid, fddir, de->d_name);
		errno = 0;
	}
	if (rc == 0 && errno && !livemgr_gone(errno)) {
		if (livemgr_denied(errno)) {
			rc = 1;
		} else {
			log_warn("livemgr: reading the descriptors of pid %d: %s; nothing is "
				 "unlinked",
				 (int)pid, strerror(errno));
			rc = -1;
		}
	}
	closedir(d);
	close(fddir);
	if (rc == 1)
		return livemgr_blind(lm, procfd, name, pid);
	return rc;
}

/* Whether the walk of /proc found the directory st already (as a manager's, or as
 * someone's it is not). */
static bool livemgr_seen_dir(const struct livemgr *lm, const struct stat *st)
{
	const struct livemgr_entry *e;
	TAILQ_FOREACH (e, &lm->entries, link)
		if (e->seen && !e->by_lock && e->dev == st->st_dev && e->ino == st->st_ino)
			return true;
	for (size_t i = 0; i < lm->nothers; i++)
		if (lm->others[i].dev == st->st_dev && lm->others[i].ino == st->st_ino)
			return true;
	return false;
}

/* One entry name of a watched base: a directory of the owner's, not one of the caller's
 * own (livemgr_exclude), not found by the walk of /proc, whose lock is held exclusive
 * and that no reclaimer marks, is a live manager's found by its lock (livemgr.c, "Found
 * by their lock"); its journal then decides (livemgr_open). Returns 0, or -1 when it
 * cannot tell. */
static int livemgr_consider_locked(struct livemgr *lm, int basefd, const char *name)
{
	struct stat st, here;
	/* The owner's directories only, before any open: the others cost one stat. */
	if (fstatat(basefd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (livemgr_gone(errno))
			return 0; /* removed since the readdir */
		log_warn("livemgr: cannot look at a directory in a temp base: %s; nothing is "
			 "unlinked",
			 strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != lm->owner || livemgr_is_excluded(lm, &st) ||
	    livemgr_seen_dir(lm, &st))
		return 0;
	struct livemgr_entry *e = livemgr_find(lm, 0, &st);
	if (e && e->seen)
		return 0; /* reached through another base (a bind mount of it) */
	int dirfd = e ? e->dirfd
		      : openat(basefd, name,
			       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (dirfd < 0) {
		if (livemgr_gone(errno) || errno == ELOOP || errno == ENOTDIR ||
		    livemgr_denied(errno))
			return 0; /* gone, replaced by a symlink, or not the owner's to enter */
		log_warn("livemgr: cannot open a directory of uid %u in a temp base: %s; nothing "
			 "is unlinked",
			 (unsigned)lm->owner, strerror(errno));
		return -1;
	}
	int rc = 0;
	if (fstat(dirfd, &here) < 0 || here.st_dev != st.st_dev || here.st_ino != st.st_ino ||
	    here.st_uid != lm->owner)
		goto not_manager; /* replaced meanwhile */
	int locked = livemgr_locked(dirfd);
	if (locked < 0) {
		log_warn("livemgr: cannot test the lock of the manager directory %s: %s; nothing "
			 "is unlinked",
			 e ? e->who : "in a temp base", strerror(errno));
		rc = -1;
		goto not_manager;
	}
	if (!locked || mgrdir_marked(dirfd))
		goto not_manager; /* dead, or a reclaimer's while it reclaims it */
	if (e) {
		e->seen = true;
		livemgr_journal_same(e);
		if (!e->j && !e->foreign && livemgr_open(lm, e, &here) < 0)
			return -1;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		log_warn("livemgr: out of memory; nothing is unlinked");
		rc = -1;
		goto not_manager;
	}
	*e = (struct livemgr_entry){ .pid = 0,
				     .dev = st.st_dev,
				     .ino = st.st_ino,
				     .dirfd = dirfd,
				     .holder_fd = -1,
				     .by_lock = true,
				     .seen = true };
	/* Its name as found (only the owner's, but made printable all the same). */
	char shown[NAME_MAX + 1];
	size_t k = 0;
	for (const char *c = name; *c && k + 1 < sizeof(shown); c++)
		shown[k++] = *c > 0x20 && *c < 0x7f ? *c : '?';
	shown[k] = '\0';
	snprintf(e->who, sizeof(e->who), "live manager %.24s (its pid is not visible here)", shown);
	log_debug("livemgr: %s: found by its lock, its holder not in this /proc", e->who);
	TAILQ_INSERT_TAIL(&lm->entries, e, link);
	return livemgr_open(lm, e, &here);
not_manager:
	if (e) {
		TAILQ_REMOVE(&lm->entries, e, link);
		livemgr_entry_free(e);
	} else {
		close(dirfd);
	}
	return rc;
}

/* The watched bases, one readdir each, after the walk of /proc (livemgr.c, "Found by
 * their lock"). Returns 0, or -1 when it cannot tell. */
static int livemgr_scan_bases(struct livemgr *lm)
{
	for (size_t i = 0; i < lm->nbases; i++) {
		/* A fresh open, not a dup: a dup shares the caller's offset. */
		int fd = openat(lm->bases[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			int saved = errno;
			if (fd >= 0)
				close(fd);
			if (saved == EACCES || saved == ENOENT) {
				/* The owner may not list it (we act as the owner): a manager of the
				 * owner's there is found by /proc only, as before (a base it may
				 * write but not read is a strange one); or it was removed since
				 * the caller opened it, and holds nothing now. */
				log_debug("livemgr: a temp base uid %u cannot list: %s; skipped",
					  (unsigned)lm->owner, strerror(saved));
				continue;
			}
			log_warn("livemgr: cannot list a temp base for live managers: %s; nothing "
				 "is unlinked",
				 strerror(saved));
			return -1;
		}
		int rc = 0;
		struct dirent *de;
		errno = 0;
		while (rc == 0 && (de = readdir(d))) {
			if (mgrdir_is_name(de->d_name))
				rc = livemgr_consider_locked(lm, lm->bases[i], de->d_name);
			errno = 0;
		}
		if (rc == 0 && errno) {
			log_warn("livemgr: reading a temp base for live managers: %s; nothing is "
				 "unlinked",
				 strerror(errno));
			rc = -1;
		}
		closedir(d);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static void livemgr_walk(struct livemgr *lm)
{
	struct livemgr_entry *e, *next;
	TAILQ_FOREACH (e, &lm->entries, link)
		e->seen = false;
	lm->nothers = 0;
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
		/* After /proc, so a manager found there keeps its pid in reports. */
		if (!lm->unknown && livemgr_scan_bases(lm) < 0)
			lm->unknown = true;
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
		if (e->blind) {
			/* No directory to look at: it counts while it lives (a pid reused
			 * within a walk's age keeps more, never less). Gone: walk again. */
			if (kill(e->pid, 0) == 0 || errno == EPERM)
				continue;
			TAILQ_REMOVE(&lm->entries, e, link);
			livemgr_entry_free(e);
			return -1;
		}
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)e->pid, e->holder_fd);
		int locked = livemgr_locked(e->dirfd);
		if (locked == 0) {
			/* Dead, or let go of this directory for another: a manager whose
			 * directory was removed makes a new one and locks it before it lets go
			 * of the old (manager.c), and only a walk finds the new one. */
			TAILQ_REMOVE(&lm->entries, e, link);
			livemgr_entry_free(e);
			return -1;
		}
		if (locked < 0)
			return -1;
		if (e->by_lock) {
			/* No holder to look at: still locked, and by no reclaimer. */
			if (mgrdir_marked(e->dirfd)) {
				TAILQ_REMOVE(&lm->entries, e, link);
				livemgr_entry_free(e);
				return -1;
			}
		} else if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_INO, &stx) < 0 ||
			   makedev(stx.stx_dev_major, stx.stx_dev_minor) != e->dev ||
			   (ino_t)stx.stx_ino != e->ino) {
			return -1;
		}
		livemgr_journal_same(e);
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
			/* A pid we can name wins over one found by its lock (0). */
			if (!mk->held[mid] || mk->holder[mid] <= 0)
				mk->holder[mid] = mk->pid;
			mk->held[mid] = true;
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
	if (lm->unknown || lm->exclude_failed)
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
			log_warn("livemgr: the journal of %s: %s", e->who, journal_error(e->j));
			rc = -1;
		}
	}
	return rc;
}

bool livemgr_unreadable(const struct livemgr *lm, pid_t *pid)
{
	bool any = false;
	*pid = 0;
	const struct livemgr_entry *e;
	TAILQ_FOREACH (e, &lm->entries, link) {
		if (e->j || !e->unreadable)
			continue;
		any = true;
		if (e->pid > 0) {
			*pid = e->pid; /* one we can name, for the report */
			break;
		}
	}
	return any;
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
	free(lm->others);
	free(lm);
}
