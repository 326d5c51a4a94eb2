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
	case RECLAIM_FOREIGN:
		return "foreign";
	case RECLAIM_ERROR:
		return "error";
	}
	return "unknown";
}

bool reclaim_is_finding(enum reclaim_status st)
{
	return st == RECLAIM_UNSAFE || st == RECLAIM_CORRUPT || st == RECLAIM_FOREIGN;
}

/* What a probe's state means for a reclaimer. */
static enum reclaim_status reclaim_status_of(enum mgrdir_state st)
{
	switch (st) {
	case MGRDIR_LIVE:
		return RECLAIM_LIVE;
	case MGRDIR_STARTING:
		return RECLAIM_STARTING;
	case MGRDIR_UNSAFE:
		return RECLAIM_UNSAFE;
	case MGRDIR_FOREIGN:
		return RECLAIM_FOREIGN;
	case MGRDIR_CORRUPT:
		return RECLAIM_CORRUPT;
	case MGRDIR_DEAD:
	case MGRDIR_UNKNOWN:
		break;
	}
	return RECLAIM_ERROR;
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
		if (errno == ENOENT && opts->young_s > 0 &&
		    opts->now_s - row->registered_at < opts->young_s) {
			/* Registered a moment ago: its client got (or is about to get) the OK
			 * and creates the object next. Dropping the row now would leave that
			 * object tracked by nobody. */
			r->young++;
			log_debug("reclaim: %s: %s: not created yet, registered %llds ago; kept",
				  who, pn, (long long)(opts->now_s - row->registered_at));
			return RECLAIM_KEEP;
		}
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
	struct mgrdir_probe p;
	reclaim_report_init(r, name);
	/* A new directory gets a new view of /proc (made only if a name needs it). */
	inuse_expire(opts->inuse);
	unsigned flags = MGRDIR_PROBE_JOURNAL | MGRDIR_PROBE_OWN |
			 (opts->dry_run ? 0 : MGRDIR_PROBE_ACT);
	mgrdir_probe(basefd, name, opts->now_s, flags, &p);
	r->owner = p.owner;
	r->manager_pid = p.holder;
	if (p.state != MGRDIR_DEAD) {
		reclaim_set(r, reclaim_status_of(p.state), "%s", p.why);
		if (p.state == MGRDIR_LIVE)
			reclaim_set(r, RECLAIM_LIVE, p.holder ? "a live manager (pid %d) holds it" :
					"a live process holds its lock", (int)p.holder);
		goto out;
	}
	if (!p.journal) {
		/* No journal: a manager killed before it made one registered nothing; a
		 * reclaimer killed in mgrdir_remove unlinked it first. A journal without a
		 * schema is a manager killed while making it: nothing either. */
		reclaim_remove(opts, basefd, name, p.dirfd, r);
		goto out;
	}
	struct journal *j = p.journal;
	const struct journal_meta *meta = journal_meta(j);
	r->manager_pid = meta->manager_pid;
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
		mgrdir_close_journal(&p);
		reclaim_remove(opts, basefd, name, p.dirfd, r);
		goto out;
	}
	if (reclaim_journal(opts, j, p.owner, r) < 0) {
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
		mgrdir_close_journal(&p);
		reclaim_remove(opts, basefd, name, p.dirfd, r);
		goto out;
	}
	/* What is not in use could not be checked or unlinked now (logged). */
	unsigned in_use = r->in_use - r->adopted;
	long long other = left - in_use - r->young;
	char more[200] = "";
	if (r->young)
		snprintf(more, sizeof(more), ", %u not created yet", r->young);
	if (other > 0)
		snprintf(more + strlen(more), sizeof(more) - strlen(more),
			 ", %lld not checkable now", other);
	if (r->not_inspectable)
		snprintf(more + strlen(more), sizeof(more) - strlen(more),
			 ", %u of them: holder not inspectable (pid %d)", r->not_inspectable,
			 (int)r->not_inspectable_pid);
	reclaim_set(r, RECLAIM_KEPT, "%lld name%s stay%s journaled for a later pass (%u in use%s)",
		    (long long)left, left == 1 ? "" : "s", left == 1 ? "s" : "", in_use, more);
	if (!opts->dry_run && journal_compact(j) < 0)
		log_warn("reclaim: compacting a kept journal: %s", journal_error(j));
out:
	mgrdir_release(&p);
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

int reclaim_base(const struct reclaim_opts *opts, int basefd, uid_t only_uid,
		 reclaim_report_cb *cb, void *arg)
{
	char **names = NULL;
	size_t n = 0;
	if (mgrdir_list(basefd, opts->skip_name, &names, &n) < 0) {
		log_warn("reclaim: reading the temp base: %s", strerror(errno));
		return -1;
	}
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (only_uid != (uid_t)-1 &&
		    (fstatat(basefd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     st.st_uid != only_uid))
			continue;
		struct reclaim_report report;
		if (reclaim_dir(opts, basefd, names[i], &report) < 0 &&
		    report.status == RECLAIM_ERROR) {
			/* Gone under us: a concurrent sweep or manager finished it. */
			if (fstatat(basefd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 &&
			    errno == ENOENT)
				continue;
			failed++;
		}
		if (cb)
			cb(arg, &report);
	}
	mgrdir_list_free(names, n);
	return failed;
}
