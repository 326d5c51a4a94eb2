/* reclaim.c — the reclaim engine behind reclaim.h: the only code that unlinks journaled
 * shm names.
 *
 * A directory is acted on only when its lock is ours (its manager is dead), it and its
 * files belong to one user and only that user can write them, and its journal says the
 * same user wrote it; a name is unlinked only when the object is that user's, nobody
 * maps or holds it, and the name is valid. As root every step below the directory runs
 * with the owner's filesystem identity (setfsuid), so even a check we got wrong cannot
 * make the kernel unlink or open for us what the owner could not. Every change is made
 * in an order that a crash at any point leaves for the next pass to finish: unlink
 * before dropping the row, adopt (committed) before dropping, remove the directory
 * only when its journal is empty.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "mgrdir.h"
#include "reclaim.h"
#include "shmobj.h"
#include "util.h"
#include "wire.h"

#define RECLAIM_PAGE 512 /* rows per journal page, and per drop transaction */

enum reclaim_action { RECLAIM_KEEP, RECLAIM_DROP, RECLAIM_ADOPT };

/* The filesystem identity we run with before reclaim_dir switched to the owner's. */
struct reclaim_fsid {
	bool switched;
	uid_t uid;
	gid_t gid;
};

const char *reclaim_status_str(enum reclaim_status st)
{
	switch (st) {
	case RECLAIM_REMOVED:
		return "removed";
	case RECLAIM_KEPT:
		return "kept";
	case RECLAIM_LIVE:
		return "live";
	case RECLAIM_STARTING:
		return "starting";
	case RECLAIM_UNSAFE:
		return "unsafe";
	case RECLAIM_CORRUPT:
		return "corrupt";
	case RECLAIM_ERROR:
		return "error";
	}
	return "unknown";
}

/* Journaled names come from files users write: never let one put control characters
 * into a log line or a terminal. */
static const char *reclaim_printable(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			snprintf(out + o, outlen - o, "\\x%02x", c);
			o += 4;
		}
	}
	out[o] = '\0';
	return out;
}

static void reclaim_set(struct reclaim_report *r, enum reclaim_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reclaim_set(struct reclaim_report *r, enum reclaim_status st, const char *fmt, ...)
{
	va_list ap;
	r->status = st;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

enum reclaim_holder {
	RECLAIM_UNUSED,     /* nobody holds it: unlink */
	RECLAIM_HELD,       /* an inspected task holds or maps it */
	RECLAIM_HELD_BLIND, /* a task we could not inspect may hold it */
	RECLAIM_UNCHECKED,  /* the in-use view could not be renewed */
};

/* Who may hold the object st (the one the name leads to now), from a view of /proc never
 * older than RECLAIM_VIEW_MAX_MS or the start of this directory. */
static enum reclaim_holder reclaim_holder(const struct reclaim_opts *opts, const char *who,
					  const char *pn, const struct stat *st, pid_t *blind)
{
	char err[256];
	if (inuse_refresh(opts->inuse, RECLAIM_VIEW_MAX_MS, err, sizeof(err)) < 0) {
		log_warn("reclaim: %s: %s: renewing the in-use view: %s; kept for a later pass",
			 who, pn, err);
		return RECLAIM_UNCHECKED;
	}
	if (inuse_holds(opts->inuse, st->st_dev, st->st_ino))
		return RECLAIM_HELD;
	if (inuse_blind(opts->inuse, st, blind))
		return RECLAIM_HELD_BLIND;
	return RECLAIM_UNUSED;
}

/* Unlinks an object a blind task may hold only when the kernel says nobody has it open
 * (shmobj_lease). While we hold the lease, an open by anyone else waits for us, so the
 * unlink cannot race an opener that found the object before it; the name is checked
 * again just before the unlink, so a rename over it in between is not unlinked.
 * Returns 0 when the name was unlinked (dry run: would be), 1 when the object is held
 * or the name moved, -1 with errno when the lease cannot be had or the unlink failed. */
static int reclaim_lease_unlink(const struct reclaim_opts *opts, const char *name,
				const struct stat *st)
{
	int fd;
	int rc = shmobj_lease(opts->shm_dirfd, name, st, &fd);
	if (rc != 0)
		return rc;
	struct stat now;
	if (fstatat(opts->shm_dirfd, name + 1, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
	    now.st_dev != st->st_dev || now.st_ino != st->st_ino)
		rc = 1;
	else if (!opts->dry_run && unlinkat(opts->shm_dirfd, name + 1, 0) < 0)
		rc = -1;
	int saved = errno;
	close(fd); /* releases the lease */
	errno = saved;
	return rc;
}

/* Counts a kept object, and adopts it when there is somewhere to adopt into. */
static enum reclaim_action reclaim_keep_in_use(const struct reclaim_opts *opts,
					       struct reclaim_report *r)
{
	r->in_use++;
	if (opts->adopt_into) {
		r->adopted++;
		return opts->dry_run ? RECLAIM_KEEP : RECLAIM_ADOPT;
	}
	return RECLAIM_KEEP;
}

/* Decides one row; counts it in the report. Unlinks unless dry run. */
static enum reclaim_action reclaim_row(const struct reclaim_opts *opts, uid_t owner,
				       const char *who, const struct journal_row *row,
				       struct reclaim_report *r)
{
	char pn[WIRE_NAME_FIELD * 4 + 8];
	reclaim_printable(row->name, row->len, pn, sizeof(pn));
	const char *why = wire_name_check(row->name, row->len);
	if (why) {
		r->refused++;
		log_warn("reclaim: %s: refusing journaled name '%s': %s", who, pn, why);
		return RECLAIM_DROP;
	}
	struct stat st;
	if (shmobj_stat(opts->shm_dirfd, row->name, &st) < 0) {
		if (errno == ENOENT) {
			r->gone++;
			log_debug("reclaim: %s: %s: already gone", who, pn);
			return RECLAIM_DROP;
		}
		log_warn("reclaim: %s: %s: stat: %s; kept for a later pass", who, pn,
			 strerror(errno));
		return RECLAIM_KEEP;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != owner) {
		r->refused++;
		if (!S_ISREG(st.st_mode))
			log_warn("reclaim: %s: refusing %s: not a regular file in %s", who, pn,
				 SHMOBJ_DIR);
		else
			log_warn("reclaim: %s: refusing %s: the object belongs to uid %u, the "
				 "journal to uid %u", who, pn, (unsigned)st.st_uid,
				 (unsigned)owner);
		return RECLAIM_DROP;
	}
	pid_t blind = 0;
	switch (reclaim_holder(opts, who, pn, &st, &blind)) {
	case RECLAIM_UNCHECKED:
		return RECLAIM_KEEP;
	case RECLAIM_HELD:
		log_debug("reclaim: %s: %s: in use by a live task; kept", who, pn);
		return reclaim_keep_in_use(opts, r);
	case RECLAIM_HELD_BLIND: {
		int rc = reclaim_lease_unlink(opts, row->name, &st);
		if (rc == 0)
			goto unlinked;
		if (rc < 0 && errno == ENOENT) {
			r->gone++;
			return RECLAIM_DROP;
		}
		if (rc < 0)
			log_debug("reclaim: %s: %s: lease: %s", who, pn, strerror(errno));
		if (r->not_inspectable++ == 0)
			r->not_inspectable_pid = blind;
		if (blind > 0)
			log_info("reclaim: %s: %s: kept: holder not inspectable (pid %d)", who, pn,
				 (int)blind);
		else
			log_info("reclaim: %s: %s: kept: holder not inspectable (pid hidden by "
				 "/proc)", who, pn);
		return reclaim_keep_in_use(opts, r);
	}
	case RECLAIM_UNUSED:
		break;
	}
	if (!opts->dry_run && unlinkat(opts->shm_dirfd, row->name + 1, 0) < 0) {
		if (errno == ENOENT) {
			r->gone++;
			return RECLAIM_DROP;
		}
		if (errno == EPERM) {
			/* The sticky /dev/shm and our fsuid said no: changed hands since stat. */
			r->refused++;
			log_warn("reclaim: %s: refusing %s: the kernel refused the unlink (%s)",
				 who, pn, strerror(errno));
			return RECLAIM_DROP;
		}
		log_warn("reclaim: %s: unlink %s: %s; kept for a later pass", who, pn,
			 strerror(errno));
		return RECLAIM_KEEP;
	}
unlinked:
	r->unlinked++;
	r->bytes += (uint64_t)st.st_size;
	log_debug("reclaim: %s: %s: unlinked (%lld bytes)", who, pn, (long long)st.st_size);
	return RECLAIM_DROP;
}

int reclaim_journal(const struct reclaim_opts *opts, struct journal *j, uid_t owner,
		    struct reclaim_report *report)
{
	int rc = -1;
	struct journal_row *rows = malloc(RECLAIM_PAGE * sizeof(*rows));
	bool *drop = malloc(RECLAIM_PAGE * sizeof(*drop));
	if (!rows || !drop) {
		snprintf(report->detail, sizeof(report->detail), "out of memory");
		goto out;
	}
	char who[sizeof(report->dir) * 4];
	if (report->dir[0])
		reclaim_printable(report->dir, strlen(report->dir), who, sizeof(who));
	else
		util_strlcpy(who, "journal", sizeof(who));
	struct journal_row after;
	bool resume = false;
	for (;;) {
		int n = journal_page(j, resume ? &after : NULL, rows, RECLAIM_PAGE);
		if (n < 0) {
			snprintf(report->detail, sizeof(report->detail), "journal: %s",
				 journal_error(j));
			goto out;
		}
		if (n == 0)
			break;
		after = rows[n - 1];
		resume = true;
		bool adopted = false;
		for (int i = 0; i < n; i++) {
			enum reclaim_action a = reclaim_row(opts, owner, who, &rows[i], report);
			drop[i] = a != RECLAIM_KEEP;
			if (a == RECLAIM_KEEP)
				continue;
			if (a == RECLAIM_ADOPT) {
				if (journal_add(opts->adopt_into, rows[i].name, rows[i].len, 0,
						opts->now_s) < 0) {
					snprintf(report->detail, sizeof(report->detail),
						 "adopting journal: %s",
						 journal_error(opts->adopt_into));
					goto out;
				}
				adopted = true;
			}
		}
		if (opts->dry_run)
			continue;
		/* Write-ahead across journals: the adopter's commit lands before the
		 * drop, so a crash in between leaves a name in both, never in neither. */
		if (adopted && journal_commit(opts->adopt_into) < 0) {
			snprintf(report->detail, sizeof(report->detail), "adopting journal: %s",
				 journal_error(opts->adopt_into));
			goto out;
		}
		for (int i = 0; i < n; i++) {
			if (drop[i] && journal_forget(j, rows[i].name, rows[i].len) < 0) {
				snprintf(report->detail, sizeof(report->detail), "journal: %s",
					 journal_error(j));
				goto out;
			}
		}
		if (journal_commit(j) < 0) {
			snprintf(report->detail, sizeof(report->detail), "journal: commit: %s",
				 journal_error(j));
			goto out;
		}
	}
	rc = 0;
out:
	free(rows);
	free(drop);
	return rc;
}

/* setfsuid is per thread and cannot fail loudly: it returns the previous id whether or
 * not it changed anything, so the switch is verified by asking again. */
static int reclaim_fsid_switch(uid_t uid, gid_t gid, struct reclaim_fsid *saved,
			       struct reclaim_report *r)
{
	saved->gid = (gid_t)setfsgid(gid);
	saved->uid = (uid_t)setfsuid(uid);
	saved->switched = true;
	uid_t nowu = (uid_t)setfsuid((uid_t)-1);
	gid_t nowg = (gid_t)setfsgid((gid_t)-1);
	if (nowu != uid || nowg != gid) {
		reclaim_set(r, RECLAIM_ERROR, "cannot act as uid %u gid %u (setfsuid left %u/%u)",
			    (unsigned)uid, (unsigned)gid, (unsigned)nowu, (unsigned)nowg);
		return -1;
	}
	return 0;
}

static void reclaim_fsid_restore(struct reclaim_fsid *saved)
{
	if (!saved->switched)
		return;
	setfsuid(saved->uid);
	setfsgid(saved->gid);
	saved->switched = false;
	if ((uid_t)setfsuid((uid_t)-1) != saved->uid || (gid_t)setfsgid((gid_t)-1) != saved->gid)
		log_error("reclaim: could not restore filesystem uid %u gid %u",
			  (unsigned)saved->uid, (unsigned)saved->gid);
}

/* The pid holding a flock on the file (dev, ino), from /proc/locks, or 0. Only for the
 * report: liveness itself was decided by the lock. */
static pid_t reclaim_lock_holder(const struct stat *st)
{
	FILE *f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	char line[256];
	pid_t found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char type[16];
		int pid;
		unsigned maj, min;
		unsigned long long ino;
		if (strstr(line, "->"))
			continue; /* a waiter, not the holder */
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", type, &pid, &maj, &min,
			   &ino) == 5 &&
		    strcmp(type, "FLOCK") == 0 && maj == major(st->st_dev) &&
		    min == minor(st->st_dev) && ino == (unsigned long long)st->st_ino)
			found = pid;
	}
	fclose(f);
	return found;
}

/* The lock and journal files must be plain files of the owner that only the owner can
 * write: a symlink or someone else's file is never opened on the owner's behalf.
 * Returns 1 when the file exists and is fine, 0 when absent, -1 with the report set. */
static int reclaim_check_file(int dirfd, const char *file, uid_t owner, struct stat *st,
			      struct reclaim_report *r)
{
	if (fstatat(dirfd, file, st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		reclaim_set(r, RECLAIM_ERROR, "stat %s: %s", file, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		reclaim_set(r, RECLAIM_UNSAFE, "%s is %s, not a regular file", file,
			    S_ISLNK(st->st_mode) ? "a symlink" : "special");
		return -1;
	}
	if (st->st_uid != owner) {
		reclaim_set(r, RECLAIM_UNSAFE, "%s is owned by uid %u, the directory by uid %u",
			    file, (unsigned)st->st_uid, (unsigned)owner);
		return -1;
	}
	if (st->st_mode & 022) {
		reclaim_set(r, RECLAIM_UNSAFE, "%s is writable by group or others (mode %04o)",
			    file, (unsigned)(st->st_mode & 07777));
		return -1;
	}
	return 1;
}

/* Takes the directory's lock. Returns 0 with *lockfd set (or -1 in a dry run of an
 * abandoned directory: nothing is created then), 1 when the report says why not. */
static int reclaim_lock(const struct reclaim_opts *opts, int dirfd, const struct stat *dst,
			int *lockfd, struct reclaim_report *r)
{
	struct stat lst;
	char err[200];
	int have = reclaim_check_file(dirfd, MGRDIR_LOCK, dst->st_uid, &lst, r);
	if (have < 0)
		return 1;
	if (have == 0) {
		/* mgrdir_create locks right after mkdtemp: a lockless directory is a
		 * manager a few microseconds from locking, or one that never will. */
		int64_t changed = dst->st_mtime > dst->st_ctime ? dst->st_mtime : dst->st_ctime;
		int64_t age = opts->now_s - changed;
		if (age < MGRDIR_STARTUP_GRACE_S) {
			reclaim_set(r, RECLAIM_STARTING,
				    "no lock file and changed %llds ago: a manager may be starting",
				    (long long)age);
			return 1;
		}
		if (opts->dry_run) {
			*lockfd = -1;
			return 0;
		}
	}
	int rc = mgrdir_trylock(dirfd, have == 0, lockfd, err, sizeof(err));
	if (rc == 0)
		return 0;
	if (rc > 0) {
		if (have || fstatat(dirfd, MGRDIR_LOCK, &lst, AT_SYMLINK_NOFOLLOW) == 0)
			r->manager_pid = reclaim_lock_holder(&lst);
		if (r->manager_pid)
			reclaim_set(r, RECLAIM_LIVE, "a live manager (pid %d) holds it",
				    (int)r->manager_pid);
		else
			reclaim_set(r, RECLAIM_LIVE, "a live process holds its lock");
		return 1;
	}
	if (have && fstatat(dirfd, MGRDIR_LOCK, &lst, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno == ENOENT) {
		reclaim_set(r, RECLAIM_LIVE, "another process is removing it");
		return 1;
	}
	reclaim_set(r, RECLAIM_ERROR, "%s", err);
	return 1;
}

/* Where SQLite should open the journal. SQLite 3.40 resolves every symlink of a path
 * itself (so /proc/self/fd/N would become the real path anyway) and, opened with
 * SQLITE_OPEN_NOFOLLOW, refuses a path with a symlink in *any* component. So we hand it
 * the kernel's name of the directory we checked, which has no symlink, and check after
 * the open that the name still leads to the same directory. */
static int reclaim_dir_path(int dirfd, char *path, size_t len, struct reclaim_report *r)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
	ssize_t n = readlink(link, path, len);
	if (n <= 0 || (size_t)n >= len || path[0] != '/') {
		reclaim_set(r, RECLAIM_ERROR, "cannot name the directory through %s: %s", link,
			    n < 0 ? strerror(errno) : "path too long");
		return -1;
	}
	path[n] = '\0';
	return 0;
}

static bool reclaim_same_dir(const char *path, const struct stat *dst)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_dev == dst->st_dev && st.st_ino == dst->st_ino;
}

static void reclaim_log_result(const struct reclaim_report *r, const struct reclaim_opts *opts)
{
	const char *dr = opts->dry_run ? " (dry run)" : "";
	char who[sizeof(r->dir) * 4], why[sizeof(r->detail) * 4];
	reclaim_printable(r->dir, strlen(r->dir), who, sizeof(who));
	reclaim_printable(r->detail, strlen(r->detail), why, sizeof(why));
	switch (r->status) {
	case RECLAIM_REMOVED:
	case RECLAIM_KEPT:
		log_info("reclaim: %s: %s%s: %u unlinked, %u gone, %u in use (%u adopted), "
			 "%u refused%s", who, reclaim_status_str(r->status), dr,
			 r->unlinked, r->gone, r->in_use, r->adopted, r->refused,
			 r->earlier_boot ? "; journal from an earlier boot" : "");
		break;
	case RECLAIM_LIVE:
	case RECLAIM_STARTING:
		log_info("reclaim: %s: %s: %s", who, reclaim_status_str(r->status), why);
		break;
	default:
		if (opts->caller_reports)
			log_info("reclaim: %s: %s: %s", who, reclaim_status_str(r->status), why);
		else
			log_warn("reclaim: %s: %s: %s", who, reclaim_status_str(r->status), why);
		break;
	}
}

static void reclaim_report_init(struct reclaim_report *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->status = RECLAIM_ERROR;
	r->owner = (uid_t)-1;
	util_strlcpy(r->dir, name, sizeof(r->dir));
}

/* Removes the directory (or, in a dry run, says it would be). */
static void reclaim_remove(const struct reclaim_opts *opts, int basefd, const char *name,
			   int dirfd, struct reclaim_report *r)
{
	char err[200];
	if (!opts->dry_run && mgrdir_remove(basefd, name, dirfd, err, sizeof(err)) < 0) {
		reclaim_set(r, RECLAIM_ERROR, "%s", err);
		return;
	}
	r->status = RECLAIM_REMOVED;
}

int reclaim_dir(const struct reclaim_opts *opts, int basefd, const char *name,
		struct reclaim_report *report)
{
	struct reclaim_report *r = report;
	struct reclaim_fsid fsid = { 0 };
	struct journal *j = NULL;
	int dirfd = -1, lockfd = -1;
	struct stat dst, st;
	char err[256], path[4096];

	reclaim_report_init(r, name);
	/* A new directory gets a new view of /proc (made only if a name needs it). */
	inuse_expire(opts->inuse);
	if (!mgrdir_is_name(name)) {
		reclaim_set(r, RECLAIM_ERROR, "not a manager directory (names are %sXXXXXX)",
			    MGRDIR_PREFIX);
		goto out;
	}
	dirfd = openat(basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0) {
		int saved = errno;
		if (fstatat(basefd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
			reclaim_set(r, RECLAIM_UNSAFE, "%s; not followed",
				    S_ISLNK(st.st_mode) ? "a symlink" : "not a directory");
		else if (saved == ENOENT)
			reclaim_set(r, RECLAIM_ERROR, "no such directory");
		else
			reclaim_set(r, RECLAIM_ERROR, "open: %s", strerror(saved));
		goto out;
	}
	if (fstat(dirfd, &dst) < 0) {
		reclaim_set(r, RECLAIM_ERROR, "fstat: %s", strerror(errno));
		goto out;
	}
	r->owner = dst.st_uid;
	if (dst.st_mode & 022) {
		reclaim_set(r, RECLAIM_UNSAFE, "writable by group or others (mode %04o)",
			    (unsigned)(dst.st_mode & 07777));
		goto out;
	}
	uid_t euid = geteuid();
	if (euid != 0 && dst.st_uid != euid) {
		reclaim_set(r, RECLAIM_UNSAFE, "not yours (owned by uid %u)", (unsigned)dst.st_uid);
		goto out;
	}
	/* From here on the kernel checks every open, unlink and create as the owner: a
	 * journal naming another user's object, or a file swapped in after our checks,
	 * gets the owner's permissions, not root's; -wal/-shm SQLite makes are the owner's. */
	if (euid == 0 && dst.st_uid != 0 &&
	    reclaim_fsid_switch(dst.st_uid, dst.st_gid, &fsid, r) < 0)
		goto out;

	if (reclaim_lock(opts, dirfd, &dst, &lockfd, r) != 0)
		goto out;
	static const char *const files[] = { JOURNAL_FILE, JOURNAL_FILE "-wal",
					     JOURNAL_FILE "-shm" };
	int have_journal = 0;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int rc = reclaim_check_file(dirfd, files[i], dst.st_uid, &st, r);
		if (rc < 0)
			goto out;
		if (i == 0)
			have_journal = rc;
	}
	if (!have_journal) {
		/* A manager killed before its journal existed registered nothing; a
		 * reclaimer killed in mgrdir_remove unlinked the journal first. */
		reclaim_remove(opts, basefd, name, dirfd, r);
		goto out;
	}

	if (reclaim_dir_path(dirfd, path, sizeof(path), r) < 0)
		goto out;
	/* SQLite walks the path from / with our (the owner's) identity: say so plainly
	 * when the owner cannot reach it, rather than blame the journal. */
	if (stat(path, &st) < 0) {
		reclaim_set(r, RECLAIM_ERROR, "uid %u cannot reach %s: %s", (unsigned)dst.st_uid,
			    path, strerror(errno));
		goto out;
	}
	if (st.st_dev != dst.st_dev || st.st_ino != dst.st_ino) {
		reclaim_set(r, RECLAIM_UNSAFE, "the directory was moved while being checked");
		goto out;
	}
	unsigned flags = JOURNAL_UNTRUSTED | (opts->dry_run ? JOURNAL_READONLY : 0);
	if (journal_open(path, flags, &j, err, sizeof(err)) < 0) {
		reclaim_set(r, RECLAIM_CORRUPT, "%s", err);
		goto out;
	}
	if (!reclaim_same_dir(path, &dst)) {
		reclaim_set(r, RECLAIM_UNSAFE, "the directory was moved while its journal was "
					       "being opened");
		goto out;
	}
	const struct journal_meta *meta = journal_meta(j);
	r->manager_pid = meta->manager_pid;
	if (meta->owner_uid != dst.st_uid) {
		reclaim_set(r, RECLAIM_UNSAFE, "journal claims uid %u but directory is owned by "
					       "uid %u", (unsigned)meta->owner_uid,
			    (unsigned)dst.st_uid);
		goto out;
	}
	int64_t rows = journal_count(j);
	if (rows < 0) {
		reclaim_set(r, RECLAIM_CORRUPT, "journal: %s", journal_error(j));
		goto out;
	}
	if (strcmp(meta->boot_id, opts->boot_id) != 0) {
		/* /dev/shm is a tmpfs emptied at boot: these names name nothing now, and an
		 * object of the same name today is someone else's. Removing the files drops
		 * every row at once. */
		r->earlier_boot = true;
		r->gone = (unsigned)rows;
		journal_close(j);
		j = NULL;
		reclaim_remove(opts, basefd, name, dirfd, r);
		goto out;
	}
	if (reclaim_journal(opts, j, dst.st_uid, r) < 0) {
		r->status = RECLAIM_ERROR;
		goto out;
	}
	int64_t left;
	if (opts->dry_run)
		left = rows - r->unlinked - r->gone - r->refused - r->adopted;
	else
		left = journal_count(j);
	if (left < 0) {
		reclaim_set(r, RECLAIM_ERROR, "journal: %s", journal_error(j));
		goto out;
	}
	if (left == 0) {
		journal_close(j);
		j = NULL;
		reclaim_remove(opts, basefd, name, dirfd, r);
		goto out;
	}
	/* What is not in use could not be checked or unlinked now (logged). */
	unsigned in_use = r->in_use - r->adopted;
	long long other = left - in_use;
	char more[160] = "";
	if (other > 0)
		snprintf(more, sizeof(more), ", %lld not checkable now", other);
	if (r->not_inspectable) {
		size_t ml = strlen(more);
		snprintf(more + ml, sizeof(more) - ml, ", %u of them: holder not inspectable (pid %d)",
			 r->not_inspectable, (int)r->not_inspectable_pid);
	}
	reclaim_set(r, RECLAIM_KEPT, "%lld name%s stay%s journaled for a later pass (%u in use%s)",
		    (long long)left, left == 1 ? "" : "s", left == 1 ? "s" : "", in_use, more);
	if (!opts->dry_run && journal_compact(j) < 0)
		log_warn("reclaim: compacting a kept journal: %s", journal_error(j));
out:
	journal_close(j);
	if (lockfd >= 0)
		close(lockfd);
	if (dirfd >= 0)
		close(dirfd);
	reclaim_fsid_restore(&fsid);
	reclaim_log_result(r, opts);
	switch (r->status) {
	case RECLAIM_REMOVED:
	case RECLAIM_KEPT:
	case RECLAIM_LIVE:
	case RECLAIM_STARTING:
		return 0;
	default:
		return -1;
	}
}

static int reclaim_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int reclaim_base(const struct reclaim_opts *opts, int basefd, uid_t only_uid,
		 reclaim_report_cb *cb, void *arg)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	int failed = -1;
	/* A fresh open, not dup: a dup shares basefd's offset with the caller. */
	int fd = openat(basefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		log_warn("reclaim: cannot read the temp base: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Names first, work after: removing entries while reading the directory could make
	 * readdir skip some, and sorted names give a stable report. */
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!mgrdir_is_name(de->d_name) ||
		    (opts->skip_name && strcmp(de->d_name, opts->skip_name) == 0))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (!nn)
				goto out;
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = strdup(de->d_name)))
			goto out;
		n++;
		errno = 0;
	}
	if (errno) {
		log_warn("reclaim: reading the temp base: %s", strerror(errno));
		goto out;
	}
	if (n)
		qsort(names, n, sizeof(*names), reclaim_cmp_names);
	failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (only_uid != (uid_t)-1 &&
		    (fstatat(basefd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     st.st_uid != only_uid))
			continue;
		struct reclaim_report report;
		if (reclaim_dir(opts, basefd, names[i], &report) < 0) {
			/* Gone under us: a concurrent sweep or manager finished it. */
			if (report.status == RECLAIM_ERROR &&
			    fstatat(basefd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 &&
			    errno == ENOENT)
				continue;
			failed++;
		}
		if (cb)
			cb(arg, &report);
	}
out:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return failed;
}
