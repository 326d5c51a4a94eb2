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
 * SQLite opens journal.db-wal and -shm by path lazily (at the first read), unlinks them
 * by path on close, and as root fchowns what it opens to the main file's owner: a journal
 * is therefore only opened when its directory belongs to the owner we reclaim for, every
 * component of its path is one only root or that owner can replace, and our filesystem
 * uid is that owner's (reclaim.c's caller set it), so a swap at any moment reaches only
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
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "livemgr.h"
#include "log.h"
#include "mgrdir.h"
#include "util.h"

/* One FLOCK of /proc/locks, and what it turned out to be. */
struct livemgr_entry {
	pid_t pid;
	unsigned maj, min;
	unsigned long long ino;
	struct journal *j; /* NULL: not a live manager of ours, or unreadable */
	bool unreadable;   /* a manager directory whose journal could not be opened now
			    * (another schema version, damaged, busy): not consulted, and
			    * looked at again at the next refresh */
	bool untrusted;    /* the owner's, but not opened: its path could be changed by
			    * someone else, or we were not acting as the owner; while it
			    * lives, livemgr_mark fails (nothing is unlinked) */
	bool seen;         /* in the latest /proc/locks */
	TAILQ_ENTRY(livemgr_entry) link;
};

TAILQ_HEAD(livemgr_list, livemgr_entry);

struct livemgr {
	uid_t owner;
	uint64_t shm_dev;
	struct journal *extra;
	pid_t self;
	struct livemgr_list entries;
};

struct livemgr *livemgr_new(uid_t owner, uint64_t shm_dev, struct journal *extra)
{
	struct livemgr *lm = calloc(1, sizeof(*lm));
	if (!lm)
		return NULL;
	lm->owner = owner;
	lm->shm_dev = shm_dev;
	lm->extra = extra;
	lm->self = getpid();
	TAILQ_INIT(&lm->entries);
	return lm;
}

static struct livemgr_entry *livemgr_find(struct livemgr *lm, pid_t pid, unsigned maj,
					  unsigned min, unsigned long long ino)
{
	struct livemgr_entry *e;
	TAILQ_FOREACH(e, &lm->entries, link)
		if (e->pid == pid && e->maj == maj && e->min == min && e->ino == ino)
			return e;
	return NULL;
}

static bool livemgr_same_file(const struct stat *st, const struct livemgr_entry *e)
{
	return major(st->st_dev) == e->maj && minor(st->st_dev) == e->min &&
	       (unsigned long long)st->st_ino == e->ino;
}

/* Whether the directory at path (in our mount namespace) is the manager directory that
 * the lock belongs to: it is the locked file itself, or its `lock` is. The path comes
 * from the holder's descriptor of the directory (every manager keeps one open): the
 * lock file's own descriptor does not name it, as it was made unnamed (O_TMPFILE) and
 * linked into place later. */
static bool livemgr_is_locked_dir(const char *path, const struct stat *fdst,
				  const struct livemgr_entry *e)
{
	const char *base = strrchr(path, '/');
	if (!S_ISDIR(fdst->st_mode) || !base || !mgrdir_is_name(base + 1))
		return false;
	struct stat here;
	if (stat(path, &here) < 0 || here.st_dev != fdst->st_dev || here.st_ino != fdst->st_ino)
		return false; /* another mount namespace's path, or renamed since */
	char lock[PATH_MAX];
	const char *locked = path;
	if (!livemgr_same_file(&here, e)) {
		if ((size_t)snprintf(lock, sizeof(lock), "%s/%s", path, MGRDIR_LOCK) >= sizeof(lock) ||
		    lstat(lock, &here) < 0 || !livemgr_same_file(&here, e))
			return false;
		locked = lock;
	}
	/* The /proc/locks line may be stale by now (a look that held the lock for an
	 * instant, then kept the directory open while it copied the journal): the lock
	 * counts only if it is still held exclusive, which a shared try tells without
	 * waiting. Opening a dead directory's journal in place would rewrite its -shm. */
	int fd = open(locked, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

/* Whether pid holds the listening socket bound at dir/manager.sock: what only the
 * directory's manager does. A reclaimer holding a dead directory's lock does not, and
 * neither does a restarted manager for the dead siblings it adopts; their journals are
 * never opened (opening one in place, even read-only, rewrites its -shm, and a foreign
 * directory must stay exactly as it is). Read from /proc/net/unix (our network
 * namespace) and the holder's descriptors. */
static bool livemgr_listens(pid_t pid, const char *dir)
{
	char tail[300], line[PATH_MAX + 128], fddir[64], link[64], real[PATH_MAX];
	/* The manager bound the path its TMPDIR gave, which may lead through a symlink:
	 * match the last two components, then the directory by its resolved name. */
	const char *base = strrchr(dir, '/');
	if (!base || (size_t)snprintf(tail, sizeof(tail), "%s/%s", base, MGRDIR_SOCKET) >=
			     sizeof(tail))
		return false;
	size_t tlen = strlen(tail);
	FILE *f = fopen("/proc/net/unix", "re");
	if (!f)
		return false;
	unsigned long inodes[8];
	size_t n = 0;
	while (n < sizeof(inodes) / sizeof(inodes[0]) && fgets(line, sizeof(line), f)) {
		unsigned flags;
		unsigned long ino;
		int off = 0;
		if (sscanf(line, "%*s %*s %*s %x %*x %*x %lu %n", &flags, &ino, &off) != 2 ||
		    !off || !(flags & 0x10000 /* __SO_ACCEPTCON: listening */))
			continue;
		char *path = line + off;
		path[strcspn(path, "\n")] = '\0';
		size_t plen = strlen(path);
		if (plen <= tlen || strcmp(path + plen - tlen, tail) != 0)
			continue;
		path[plen - strlen(MGRDIR_SOCKET) - 1] = '\0';
		if (realpath(path, real) && strcmp(real, dir) == 0)
			inodes[n++] = ino;
	}
	fclose(f);
	if (!n)
		return false;
	snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(fddir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		ssize_t len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		unsigned long ino;
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) != 1)
			continue;
		for (size_t i = 0; i < n && !found; i++)
			found = inodes[i] == ino;
	}
	closedir(d);
	return found;
}

/* Finds the lock holder's manager directory through its descriptors and opens the
 * directory's journal, if it is the holder's own. Sets e->unreadable when the holder's
 * directory is found but its journal cannot be opened: a live manager whose names are
 * not seen (SECURITY.md, known limits); e->untrusted when it must not be opened. */
static struct journal *livemgr_open(struct livemgr *lm, struct livemgr_entry *e)
{
	char fddir[64], link[PATH_MAX], err[512];
	snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)e->pid);
	DIR *d = opendir(fddir);
	if (!d) {
		log_debug("livemgr: pid %d: %s: %s; not looked at", (int)e->pid, fddir,
			  strerror(errno));
		return NULL;
	}
	struct journal *j = NULL;
	struct dirent *de;
	while (!j && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct stat st;
		/* Another owner's directory holds no name of ours: never opened (as root,
		 * through a path its owner can swap, it could lead SQLite anywhere). */
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode) ||
		    st.st_uid != lm->owner)
			continue;
		ssize_t n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n <= 0 || link[0] != '/')
			continue;
		link[n] = '\0';
		if (!livemgr_is_locked_dir(link, &st, e))
			continue;
		if (!livemgr_listens(e->pid, link)) {
			log_debug("livemgr: pid %d holds the lock of %s but not its socket: not its "
				  "manager", (int)e->pid, link);
			break; /* a reclaimer holding a dead directory's lock */
		}
		uid_t fsuid = (uid_t)setfsuid((uid_t)-1);
		if (fsuid != lm->owner) {
			log_warn("livemgr: pid %d: acting as uid %u, not as the owner uid %u: its "
				 "journal is not opened; nothing is unlinked", (int)e->pid,
				 (unsigned)fsuid, (unsigned)lm->owner);
			e->untrusted = true;
			break;
		}
		if (util_path_trusted(link, lm->owner, err, sizeof(err)) < 0) {
			log_warn("livemgr: pid %d: the journal of %s is not read: %s; nothing is "
				 "unlinked while it lives", (int)e->pid, link, err);
			e->untrusted = true;
			break;
		}
		int rc = journal_open(link, JOURNAL_UNTRUSTED | JOURNAL_READONLY | JOURNAL_SKIM, &j,
				      err, sizeof(err));
		if (rc == -ENODATA)
			break; /* no schema yet: a manager starting has registered nothing */
		if (rc < 0) {
			e->unreadable = true;
			log_info("livemgr: live manager pid %d not consulted: %s", (int)e->pid, err);
			break;
		}
		const struct journal_meta *m = journal_meta(j);
		if (m->manager_pid != e->pid || m->owner_uid != lm->owner ||
		    (m->has_shm_fs && m->shm_dev != lm->shm_dev)) {
			log_debug("livemgr: pid %d holds the lock of %s, whose journal is of pid "
				  "%d, uid %u, shm dev %#llx: not a live manager of ours",
				  (int)e->pid, link, (int)m->manager_pid, (unsigned)m->owner_uid,
				  (unsigned long long)m->shm_dev);
			journal_close(j);
			j = NULL;
			break;
		}
		log_debug("livemgr: live manager pid %d at %s", (int)e->pid, link);
	}
	closedir(d);
	if (!j && !e->unreadable)
		log_debug("livemgr: pid %d (lock %x:%x:%llu): no manager directory of ours among "
			  "its descriptors", (int)e->pid, e->maj, e->min, e->ino);
	return j;
}

#define LIVEMGR_LOCKS_PASSES 3

static void livemgr_read_locks(struct livemgr *lm);

void livemgr_refresh(struct livemgr *lm)
{
	struct livemgr_entry *e, *next;
	TAILQ_FOREACH(e, &lm->entries, link)
		e->seen = false;
	/* /proc/locks comes a page per read(), and entries that go away between two reads
	 * shift the rest: a lock held throughout can be skipped (seen here, under the load
	 * of other processes' SQLite locks, in about one sweep in fifty). A held lock is
	 * missed only if every pass skips it. */
	for (int pass = 0; pass < LIVEMGR_LOCKS_PASSES; pass++)
		livemgr_read_locks(lm);
	for (e = TAILQ_FIRST(&lm->entries); e; e = next) {
		next = TAILQ_NEXT(e, link);
		if (e->seen)
			continue;
		TAILQ_REMOVE(&lm->entries, e, link);
		journal_close(e->j);
		free(e);
	}
}

static void livemgr_read_locks(struct livemgr *lm)
{
	struct livemgr_entry *e;
	FILE *f = fopen("/proc/locks", "re");
	if (!f) {
		log_debug("livemgr: /proc/locks: %s", strerror(errno));
		return;
	}
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		char type[16];
		int pid;
		unsigned maj, min;
		unsigned long long ino;
		if (strstr(line, "->"))
			continue; /* a waiter, not the holder */
		char mode[16];
		/* A manager's lock is exclusive (WRITE); a shared one (READ) is ls or a dry
		 * run copying a dead directory's journal (mgrdir.c), whose journal must not
		 * be opened in place: that would rewrite its -shm. */
		if (sscanf(line, "%*d: %15s %*s %15s %d %x:%x:%llu", type, mode, &pid, &maj, &min,
			   &ino) != 6 ||
		    strcmp(type, "FLOCK") != 0 || strcmp(mode, "WRITE") != 0 || pid <= 0 ||
		    (pid_t)pid == lm->self)
			continue;
		e = livemgr_find(lm, (pid_t)pid, maj, min, ino);
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e)
				continue;
			*e = (struct livemgr_entry){ .pid = (pid_t)pid, .maj = maj, .min = min,
						     .ino = ino };
			e->j = livemgr_open(lm, e);
			TAILQ_INSERT_TAIL(&lm->entries, e, link);
		} else if (e->unreadable && !e->seen) {
			e->unreadable = false;
			e->j = livemgr_open(lm, e);
		}
		e->seen = true;
	}
	fclose(f);
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
	struct livemgr_marking mk = { .rows = rows, .n = n, .held = held, .holder = holder };
	int rc = 0;
	if ((uid_t)setfsuid((uid_t)-1) != lm->owner && !TAILQ_EMPTY(&lm->entries)) {
		/* Reads may open -wal/-shm by path: only ever as the owner (see the top). */
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
	TAILQ_FOREACH(e, &lm->entries, link) {
		if (e->untrusted)
			rc = -1;
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

unsigned livemgr_count(const struct livemgr *lm)
{
	unsigned n = lm->extra ? 1 : 0;
	const struct livemgr_entry *e;
	TAILQ_FOREACH(e, &lm->entries, link)
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
		journal_close(e->j);
		free(e);
	}
	free(lm);
}
