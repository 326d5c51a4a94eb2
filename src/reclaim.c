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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "journal.h"
#include "livemgr.h"
#include "log.h"
#include "mgrdir.h"
#include "reclaim.h"
#include "report.h"
#include "shmobj.h"
#include "util.h"
#include "wire.h"

#define RECLAIM_PAGE 512 /* rows per journal page, and per drop transaction */

enum reclaim_action { RECLAIM_KEEP, RECLAIM_DROP, RECLAIM_ADOPT };

/* What the first pass over a page found for one row: the object (statx), then whether a
 * live manager holds the name. In that order: see livemgr.c. */
struct reclaim_probe {
	const char *invalid; /* why the name is not a valid one; nothing else was done */
	int stat_errno;      /* 0: info is the object's */
	struct shmobj_info info;
	bool held;            /* a live manager's journal lists the name */
	pid_t holder;         /* its pid, 0 when not visible here (found by its lock) */
	bool unreadable;      /* a live manager's journal cannot be read: it may hold the
			       * name (livemgr_unreadable) */
	pid_t unreadable_pid; /* its pid, 0 when not visible here */
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
	case RECLAIM_BUSY:
		return "busy";
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
	case MGRDIR_BUSY:
		return RECLAIM_BUSY;
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

/* The row's name made printable into buf, once: later calls return it as it is. Names
 * come from files users write: escaped as ls and the reports print them (report.h), so
 * a log line names an object the way ls does and no name can put a control byte in it. */
static const char *reclaim_row_name(const struct journal_row *row, char *buf, size_t len)
{
	if (!buf[0])
		report_escape_n(row->name, row->len, buf, len);
	return buf;
}

static void reclaim_set(struct reclaim_report *r, enum reclaim_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reclaim_set(struct reclaim_report *r, enum reclaim_status st, const char *fmt, ...)
{
	va_list ap;
	r->status = st;
	va_start(ap, fmt);
	int n = vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= sizeof(r->detail))
		util_utf8_cut(r->detail);
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
					  const struct journal_row *row, char *pnbuf, size_t pnlen,
					  const struct shmobj_info *st, pid_t *blind)
{
	char err[256];
	if (inuse_refresh(opts->inuse, RECLAIM_VIEW_MAX_MS, err, sizeof(err)) < 0) {
		log_warn("reclaim: %s: %s: renewing the in-use view: %s; kept for a later pass",
			 who, reclaim_row_name(row, pnbuf, pnlen), err);
		return RECLAIM_UNCHECKED;
	}
	if (inuse_holds(opts->inuse, (dev_t)st->dev, (ino_t)st->ino))
		return RECLAIM_HELD;
	if (inuse_blind(opts->inuse, st->uid, st->mode, blind))
		return RECLAIM_HELD_BLIND;
	return RECLAIM_UNUSED;
}

/* The kernel's word before every unlink (shmobj_lease_object): a write lease on a fresh
 * open, which the kernel grants only when no other open file description of the inode
 * exists anywhere. Why it is asked for every object and not only when /proc leaves a
 * doubt: /proc shows only the tasks of our pid namespace (a reclaimer in a container or
 * under `unshare -p` sees none of the host's), and not every holder is a task's fd or
 * mapping there (a file registered with io_uring and then closed is in no fd table; one
 * opened or mapped through an overlayfs over /dev/shm shows the overlay's device and
 * inode, not the object's). The lease counts them all, because each one of them is an
 * open file of this very inode, whatever namespace or path it came through. So the /proc
 * view can only add keeps: it never permits an unlink on its own.
 *
 * Why it is safe, not only a check: one open serves both checks (the object it reaches
 * is compared with the one checked, inode and birth time, by statx on the fd, and the
 * lease is taken on that same open file), and while we hold the lease an open by anyone
 * else, anywhere, waits for us (its O_NONBLOCK open fails), so nobody can start using
 * the object between the kernel's answer and the unlink. But only for a while: the
 * kernel breaks the lease, and lets the opener through, after fs.lease-break-time (45 s
 * by default), so a reclaimer stopped that long between here and its unlink (SIGSTOP, a
 * frozen cgroup, a starved sweep) no longer holds what it was granted. Hence
 * reclaim_still_ours right before the unlink. The caller unlinks, then closes *fd, which
 * releases the lease and lets a waiting opener go on with the inode it had already
 * looked up, now nameless: what an open a moment before the unlink gets.
 * A crash costs nothing: a reclaimer killed while it holds the lease loses it with its
 * fd, and the object is unlinked or not while its row is still journaled (rows are
 * dropped only after the unlink, at the page's commit), so the next pass finds it gone
 * or asks the kernel again. What it costs: an openat, a statx of the fd, two fcntls and
 * a close per object over the plain path's two statx and the unlinkat (SECURITY.md, "No
 * unlink without the kernel's lease", has the figures).
 * Returns 0 with *fd holding the lease, 1 when someone else has the object open, 2 when
 * the name leads to another object now, -1 with errno when the lease cannot be had
 * (ENOENT: gone; EINVAL: leases disabled; EACCES: the owner may not open it). */
static int reclaim_lease(const struct reclaim_opts *opts, unsigned lease_flags, const char *name,
			 const struct shmobj_info *st, int *fd)
{
	return shmobj_lease_object(opts->shm_dirfd, name, st, lease_flags, fd);
}

/* Asked last, right before the unlink: the name still leads to the object leased (inode
 * and birth time), so an object renamed over it since the open is not unlinked
 * (SECURITY.md, "A fresh view"); then the lease on fd is still ours and unbroken.
 * F_GETLEASE says F_WRLCK only for an intact write lease: while an opener breaks it, it
 * says the type the breaker waits for (F_UNLCK, or F_RDLCK), and after
 * fs.lease-break-time the kernel has removed it (F_UNLCK). The lease last: a process is
 * stopped (SIGSTOP, a freezer) on its way back from a syscall, so a stop after the
 * statx is still caught by F_GETLEASE, and only one after F_GETLEASE itself, before the
 * unlinkat, is not (while a rename over the name in that span is only the owner's own
 * doing). Returns 0 when both hold, 1 when the lease is broken or gone (someone opened
 * the object meanwhile), 2 when the name leads to another object now. */
static int reclaim_still_ours(const struct reclaim_opts *opts, const char *name,
			      const struct shmobj_info *st, int fd)
{
	struct shmobj_info now;
	if (shmobj_info(opts->shm_dirfd, name, &now) < 0 || now.dev != st->dev ||
	    now.ino != st->ino || now.btime_ns != st->btime_ns)
		return 2;
	if (fcntl(fd, F_GETLEASE) != F_WRLCK)
		return 1;
	return 0;
}

/* SHMOBJ_LEASE_SIGIO_IGNORED when this process ignores SIGIO (the commands set it):
 * asked once per journal instead of an F_SETSIG per leased object. */
static unsigned reclaim_lease_flags(void)
{
	struct sigaction sa;
	if (sigaction(SIGIO, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
	    sa.sa_handler == SIG_IGN)
		return SHMOBJ_LEASE_SIGIO_IGNORED;
	return 0;
}

/* Counts a kept object, records which object it is (*learned, for a row never
 * identified), and adopts it when there is somewhere to adopt into. */
static enum reclaim_action reclaim_keep_in_use(const struct reclaim_opts *opts,
					       const struct journal_row *row,
					       const struct shmobj_info *st,
					       struct journal_row *learned,
					       struct reclaim_report *r)
{
	r->in_use++;
	*learned = *row;
	if (st->has_btime) {
		learned->identified = true;
		learned->ino = st->ino;
		learned->btime_ns = st->btime_ns;
	}
	if (opts->adopt_into) {
		r->adopted++;
		return opts->dry_run ? RECLAIM_KEEP : RECLAIM_ADOPT;
	}
	return RECLAIM_KEEP;
}

/* Whether the object now under the row's name is the one the row journaled: the same
 * inode and birth time, or, for a row never identified, born within the window after
 * its registration, to the nanosecond (from the registration's earliest moment: a
 * version 1 row's second's start). A filesystem without birth times leaves only the
 * inode to compare (and, for an unidentified row, nothing: the rules of release 0.1.0). */
static bool reclaim_is_journaled(const struct journal_row *row, const struct shmobj_info *o)
{
	if (row->identified)
		return o->ino == row->ino && (!o->has_btime || o->btime_ns == row->btime_ns);
	if (!o->has_btime)
		return true;
	return shmobj_born_by(o->btime_ns, journal_row_earliest_us(row), SHMOBJ_BIRTH_WINDOW_S);
}

/* Decides one row; counts it in the report. Unlinks unless dry run. *learned is set
 * when the row, never identified, is kept or adopted: it then carries the identity to
 * record. */
static enum reclaim_action reclaim_row(const struct reclaim_opts *opts, unsigned lease_flags,
				       uid_t owner, const char *who, const struct journal_row *row,
				       const struct reclaim_probe *p, struct journal_row *learned,
				       struct reclaim_report *r)
{
	/* The printable name, made only when a line is logged: most rows log nothing. */
	char pnbuf[WIRE_NAME_FIELD * 4 + 8] = "";
#define PN reclaim_row_name(row, pnbuf, sizeof(pnbuf))
	if (p->invalid) {
		r->refused++;
		log_warn("reclaim: %s: refusing journaled name '%s': %s", who, PN, p->invalid);
		return RECLAIM_DROP;
	}
	const struct shmobj_info st = p->info;
	if (p->stat_errno) {
		/* To the microsecond, as the prune: whole seconds made the grace up to 1 s
		 * short. now - registered < grace, written so that a journal's time, which
		 * may be anything (INT64_MIN), cannot overflow. */
		if (p->stat_errno == ENOENT && opts->young_s > 0 &&
		    row->registered_us > opts->now_us - opts->young_s * 1000000) {
			/* Registered a moment ago: its client got (or is about to get) the OK
			 * and creates the object next. Dropping the row now would leave that
			 * object tracked by nobody. An adopter takes the row as it is, its
			 * registration time kept: its grace ends when it would have here,
			 * and the adopter's prune then drops it or learns its object. */
			r->young++;
			log_debug("reclaim: %s: %s: not created yet, registered %.3f s ago; %s",
				  who, PN,
				  ((double)opts->now_us - (double)row->registered_us) / 1e6,
				  opts->adopt_into ? "adopted" : "kept");
			if (!opts->adopt_into)
				return RECLAIM_KEEP;
			*learned = *row;
			return RECLAIM_ADOPT;
		}
		if (p->stat_errno == ENOENT) {
			r->gone++;
			log_debug("reclaim: %s: %s: already gone", who, PN);
			return RECLAIM_DROP;
		}
		log_warn("reclaim: %s: %s: stat: %s; kept for a later pass", who, PN,
			 strerror(p->stat_errno));
		return RECLAIM_KEEP;
	}
	if (!S_ISREG(st.mode) || st.uid != owner) {
		r->refused++;
		if (!S_ISREG(st.mode))
			log_warn("reclaim: %s: refusing %s: not a regular file in %s", who, PN,
				 SHMOBJ_DIR);
		else
			log_warn("reclaim: %s: refusing %s: the object belongs to uid %u, the "
				 "journal to uid %u",
				 who, PN, (unsigned)st.uid, (unsigned)owner);
		return RECLAIM_DROP;
	}
	if (p->held) {
		/* A live manager registered the name since: the object is in its care now,
		 * whichever object it is. Handed over: the row goes, the object stays. */
		r->handed_over++;
		if (p->holder > 0)
			log_info("reclaim: %s: %s: registered by live manager pid %d; handed over, "
				 "not unlinked",
				 who, PN, (int)p->holder);
		else
			log_info("reclaim: %s: %s: registered by a live manager found by its lock "
				 "(its pid is not visible here); handed over, not unlinked",
				 who, PN);
		return RECLAIM_DROP;
	}
	if (!reclaim_is_journaled(row, &st)) {
		/* Someone else's object under a journaled name: the journaled one was removed
		 * (its free lost with the manager), and this one is not ours to judge. */
		r->refused++;
		r->reused++;
		char born[32];
		log_warn("reclaim: %s: refused: name reused: %s is inode %llu born %s, not the "
			 "journaled object (%s)",
			 who, PN, (unsigned long long)st.ino,
			 util_unix_ns_str(st.btime_ns, born, sizeof(born)),
			 row->identified ? "another inode or birth time"
					 : "born outside the window after its registration");
		return RECLAIM_DROP;
	}
	pid_t blind = 0;
	enum reclaim_holder h = reclaim_holder(opts, who, row, pnbuf, sizeof(pnbuf), &st, &blind);
	if (p->unreadable && (h == RECLAIM_UNUSED || h == RECLAIM_HELD_BLIND)) {
		/* A live manager whose journal we cannot read (another schema version) may
		 * have registered the name since, and its object be in flight between its
		 * clients: cannot tell means keep, as long as it lives. */
		if (r->live_unreadable++ == 0)
			r->live_unreadable_pid = p->unreadable_pid;
		if (p->unreadable_pid > 0)
			log_info("reclaim: %s: %s: kept: the journal of live manager pid %d cannot "
				 "be read",
				 who, PN, (int)p->unreadable_pid);
		else
			log_info("reclaim: %s: %s: kept: the journal of a live manager (its pid is "
				 "not visible here) cannot be read",
				 who, PN);
		return reclaim_keep_in_use(opts, row, &st, learned, r);
	}
	switch (h) {
	case RECLAIM_UNCHECKED:
		return RECLAIM_KEEP;
	case RECLAIM_HELD:
		log_debug("reclaim: %s: %s: in use by a live task; kept", who, PN);
		return reclaim_keep_in_use(opts, row, &st, learned, r);
	case RECLAIM_HELD_BLIND:
	case RECLAIM_UNUSED:
		break;
	}
	/* Nobody in our view holds it (or only tasks we could not inspect may): the kernel
	 * decides (reclaim_lease, which says why every object is asked). */
	int lfd = -1;
	int rc = reclaim_lease(opts, lease_flags, row->name, &st, &lfd);
	int lerr = errno;
	if (rc == 2) {
		log_info("reclaim: %s: %s was replaced while being checked; kept for a later "
			 "pass",
			 who, PN);
		return RECLAIM_KEEP;
	}
	if (rc < 0 && lerr == ENOENT) {
		r->gone++;
		log_debug("reclaim: %s: %s: already gone", who, PN);
		return RECLAIM_DROP;
	}
	if (rc != 0 && h == RECLAIM_HELD_BLIND) {
		if (rc < 0)
			log_debug("reclaim: %s: %s: lease: %s", who, PN, strerror(lerr));
		if (r->not_inspectable++ == 0)
			r->not_inspectable_pid = blind;
		if (blind > 0)
			log_info("reclaim: %s: %s: kept: holder not inspectable (pid %d)", who, PN,
				 (int)blind);
		else
			log_info("reclaim: %s: %s: kept: holder not inspectable (pid hidden by "
				 "/proc)",
				 who, PN);
		return reclaim_keep_in_use(opts, row, &st, learned, r);
	}
	if (rc == 1) {
		r->lease_held++;
		log_info("reclaim: %s: %s: kept: the kernel's lease says it is open, though no "
			 "task in this view holds it (a holder outside this view: another pid "
			 "namespace, io_uring, overlayfs)",
			 who, PN);
		return reclaim_keep_in_use(opts, row, &st, learned, r);
	}
	if (rc < 0) {
		/* Cannot tell means keep: without the lease nothing proves the object unused
		 * (and nothing would stop an opener between a look and the unlink). Leases
		 * disabled hold for every object: said once per run; any other reason is the
		 * object's own (a mode its owner cannot open: EACCES). */
		r->lease_unavailable++;
		if (lerr == EINVAL) {
			if (inuse_lease_unavailable(opts->inuse))
				log_warn(
					"reclaim: the kernel grants no file leases (F_SETLEASE: %s; "
					"fs.leases-enable is 0?): whether anyone has an object open "
					"cannot be told, so no object is unlinked; each is kept, "
					"journaled, for a later pass",
					strerror(lerr));
			log_debug("reclaim: %s: %s: kept: no lease to be had", who, PN);
		} else {
			log_info(
				"reclaim: %s: %s: kept: the kernel's lease check could not be made "
				"(%s), so whether anyone has it open cannot be told",
				who, PN, strerror(lerr));
		}
		return reclaim_keep_in_use(opts, row, &st, learned, r);
	}
	/* The lease was granted: nobody had it open then. Whether that still holds is asked
	 * last, with the name's identity (reclaim_still_ours). */
	rc = reclaim_still_ours(opts, row->name, &st, lfd);
	if (rc == 1) {
		/* An open came while we held the lease (it waits for us, or it has been let
		 * through by the break's timeout and may map the object now): in use. */
		close(lfd);
		r->lease_held++;
		log_info("reclaim: %s: %s: kept: opened by another process while this reclaimer "
			 "held the lease (the lease was broken)",
			 who, PN);
		return reclaim_keep_in_use(opts, row, &st, learned, r);
	}
	if (rc == 2) {
		close(lfd);
		log_info("reclaim: %s: %s was replaced while being checked; kept for a later "
			 "pass",
			 who, PN);
		return RECLAIM_KEEP;
	}
	/* The lease is ours and unbroken, and the name still leads to the checked object:
	 * nobody has it open, and an opener waits until we close lfd. */
	if (!opts->dry_run && unlinkat(opts->shm_dirfd, row->name + 1, 0) < 0) {
		int uerr = errno;
		close(lfd);
		if (uerr == ENOENT) {
			r->gone++;
			return RECLAIM_DROP;
		}
		if (uerr == EPERM) {
			/* The sticky /dev/shm and our fsuid said no: changed hands since stat. */
			r->refused++;
			log_warn("reclaim: %s: refusing %s: the kernel refused the unlink (%s)",
				 who, PN, strerror(uerr));
			return RECLAIM_DROP;
		}
		log_warn("reclaim: %s: unlink %s: %s; kept for a later pass", who, PN,
			 strerror(uerr));
		return RECLAIM_KEEP;
	}
	close(lfd); /* releases the lease */
	r->unlinked++;
	r->bytes += (uint64_t)st.size;
	if (log_enabled(LOG_LVL_DEBUG))
		log_debug("reclaim: %s: %s: unlinked (%lld bytes)", who, PN, (long long)st.size);
	return RECLAIM_DROP;
#undef PN
}

int reclaim_journal(const struct reclaim_opts *opts, struct journal *j, int dirfd, uid_t owner,
		    struct reclaim_report *report)
{
	int rc = -1;
	struct journal_row *rows = malloc(RECLAIM_PAGE * sizeof(*rows));
	struct journal_row *learned = malloc(RECLAIM_PAGE * sizeof(*learned));
	struct reclaim_probe *probe = malloc(RECLAIM_PAGE * sizeof(*probe));
	bool *drop = malloc(RECLAIM_PAGE * sizeof(*drop));
	bool *held = malloc(RECLAIM_PAGE * sizeof(*held));
	pid_t *holder = malloc(RECLAIM_PAGE * sizeof(*holder));
	struct livemgr *live = NULL;
	struct shmobj_fs shm_fs;
	unsigned lease_flags = reclaim_lease_flags();
	if (!rows || !learned || !probe || !drop || !held || !holder) {
		snprintf(report->detail, sizeof(report->detail), "out of memory");
		goto out;
	}
	char who[sizeof(report->dir) * 4];
	if (report->dir[0])
		report_escape(report->dir, who, sizeof(who));
	else
		util_strlcpy(who, "journal", sizeof(who));
	if (!opts->no_live_check) {
		if (shmobj_fs_self(opts->shm_dirfd, &shm_fs, report->detail,
				   sizeof(report->detail)) < 0)
			goto out;
		live = livemgr_new(owner, &shm_fs, opts->adopt_into);
		if (!live) {
			snprintf(report->detail, sizeof(report->detail), "out of memory");
			goto out;
		}
		/* Managers no /proc of ours shows are found by their lock in the bases we
		 * walk; ours (this journal's directory, a restarted manager's own) are not
		 * others'. */
		livemgr_watch(live, opts->live_bases, opts->nlive_bases);
		if (dirfd >= 0)
			livemgr_exclude(live, dirfd);
		if (opts->nlive_bases && opts->own_dirfd >= 0)
			livemgr_exclude(live, opts->own_dirfd);
	}
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
		/* First every object of the page, then the live managers' journals: a name a
		 * live manager gave an object we saw was committed before we looked. */
		for (int i = 0; i < n; i++) {
			struct reclaim_probe *p = &probe[i];
			memset(p, 0, sizeof(*p));
			p->invalid = wire_name_check(rows[i].name, rows[i].len);
			if (!p->invalid && shmobj_info(opts->shm_dirfd, rows[i].name, &p->info) < 0)
				p->stat_errno = errno;
		}
		bool live_unknown = false;
		if (live) {
			int64_t newest = INT64_MIN; /* the youngest object of the page */
			for (int i = 0; i < n; i++) {
				if (probe[i].invalid || probe[i].stat_errno)
					continue;
				int64_t b = probe[i].info.has_btime ? probe[i].info.btime_ns
								    : INT64_MAX;
				if (b > newest)
					newest = b;
			}
			livemgr_refresh(live, newest);
			live_unknown = livemgr_mark(live, rows, n, held, holder) < 0;
			pid_t unreadable_pid;
			bool unreadable = livemgr_unreadable(live, &unreadable_pid);
			for (int i = 0; i < n; i++) {
				probe[i].held = held[i];
				probe[i].holder = holder[i];
				probe[i].unreadable = unreadable;
				probe[i].unreadable_pid = unreadable_pid;
			}
		}
		bool adopted = false;
		/* Each lease of the page is taken and released here: a Ctrl-Z comes after
		 * the page, not while an opener would wait on us (shmobj_stops_hold). */
		sigset_t stops;
		shmobj_stops_hold(&stops);
		for (int i = 0; i < n; i++) {
			learned[i].identified = false;
			enum reclaim_action a;
			if (live_unknown && !probe[i].invalid && !probe[i].stat_errno) {
				/* Whose the name is could not be read: nothing is unlinked. */
				a = RECLAIM_KEEP;
			} else {
				a = reclaim_row(opts, lease_flags, owner, who, &rows[i], &probe[i],
						&learned[i], report);
			}
			drop[i] = a != RECLAIM_KEEP;
			if (a == RECLAIM_KEEP)
				continue;
			if (a == RECLAIM_ADOPT) {
				/* The row keeps its registration time and carries the object's
				 * identity, so the adopter's own reclaim judges the same object. */
				if (journal_adopt(opts->adopt_into, &learned[i]) < 0) {
					shmobj_stops_restore(&stops);
					snprintf(report->detail, sizeof(report->detail),
						 "adopting journal: %s",
						 journal_error(opts->adopt_into));
					goto out;
				}
				adopted = true;
			}
		}
		shmobj_stops_restore(&stops);
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
			int rc2 = 0;
			if (drop[i])
				rc2 = journal_forget(j, rows[i].name, rows[i].len);
			else if (!rows[i].identified && learned[i].identified)
				/* Kept in use: from now on the row means this object. */
				rc2 = journal_identify(j, rows[i].name, rows[i].len, learned[i].ino,
						       learned[i].btime_ns, SHMOBJ_BIRTH_WINDOW_S);
			if (rc2 < 0) {
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
	/* The identities of the rows dropped above, in one pass at the end. */
	if (!opts->dry_run &&
	    (journal_drop_stale_identities(j, NULL, NULL) < 0 || journal_commit(j) < 0)) {
		snprintf(report->detail, sizeof(report->detail), "journal: %s", journal_error(j));
		goto out;
	}
	rc = 0;
out:
	livemgr_free(live);
	free(rows);
	free(learned);
	free(probe);
	free(drop);
	free(held);
	free(holder);
	return rc;
}

static void reclaim_log_result(const struct reclaim_report *r, const struct reclaim_opts *opts)
{
	const char *dr = opts->dry_run ? " (dry run)" : "";
	char who[sizeof(r->dir) * 4], why[sizeof(r->detail) * 4];
	report_escape(r->dir, who, sizeof(who));
	report_escape(r->detail, why, sizeof(why));
	switch (r->status) {
	case RECLAIM_REMOVED:
	case RECLAIM_KEPT:
		log_info("reclaim: %s: %s%s%s: %u unlinked, %u gone, %u in use (%u adopted), "
			 "%u not created yet, %u refused (%u name reused), %u handed over%s",
			 who, r->status == RECLAIM_KEPT ? "directory " : "",
			 reclaim_status_str(r->status), dr, r->unlinked, r->gone, r->in_use,
			 r->adopted, r->young, r->refused, r->reused, r->handed_over,
			 r->earlier_boot ? "; journal from an earlier boot" : "");
		break;
	case RECLAIM_LIVE:
	case RECLAIM_STARTING:
	case RECLAIM_BUSY:
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

/* Who holds a live directory's lock, in words. Its manager, when the holder listens on
 * the directory's socket (or that cannot be looked at: the words it always had); else
 * a process that may be a manager starting (its flock comes before its socket) or no
 * manager at all (whoever can open the directory can flock it). Either way the
 * directory is left alone while the lock is held: only the words differ. */
static void reclaim_live_detail(struct reclaim_report *r, const struct mgrdir_probe *p)
{
	if (p->holder <= 0) {
		reclaim_set(r, RECLAIM_LIVE, "a live process holds its lock");
		return;
	}
	if (livemgr_serves(p->holder, p->dirfd) != 0) {
		reclaim_set(r, RECLAIM_LIVE, "a live manager (pid %d) holds it", (int)p->holder);
		return;
	}
	reclaim_set(r, RECLAIM_LIVE,
		    "its lock is held by pid %d%s%s%s, which does not serve its socket (a manager "
		    "starting, one whose directory was moved since, or not a manager): left alone "
		    "while it holds it",
		    (int)p->holder, p->holder_cmd[0] ? " (" : "", p->holder_cmd,
		    p->holder_cmd[0] ? ")" : "");
}

/* Removes the directory (or, in a dry run, says it would be). */
static void reclaim_remove(const struct reclaim_opts *opts, int basefd, const char *name, int dirfd,
			   struct reclaim_report *r)
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
			reclaim_live_detail(r, &p);
		if (p.state == MGRDIR_BUSY) {
			/* Its manager is dead (the reclaimer could take its lock): the holder
			 * is no manager, and the directory is that reclaimer's to finish. */
			r->manager_pid = 0;
			r->reclaimer_pid = p.holder;
			reclaim_set(r, RECLAIM_BUSY, "%s: left to it", p.why);
		}
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
	if (reclaim_journal(opts, j, p.dirfd, p.owner, r) < 0) {
		r->status = RECLAIM_ERROR;
		goto out;
	}
	int64_t left;
	if (opts->dry_run)
		left = rows - r->unlinked - r->gone - r->refused - r->adopted - r->handed_over -
		       (opts->adopt_into ? r->young : 0);
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
	unsigned young = opts->adopt_into ? 0 : r->young; /* adopted ones left no row */
	long long other = left - in_use - young;
	char more[400] = "";
	if (young)
		snprintf(more, sizeof(more), ", %u not created yet", young);
	if (other > 0)
		snprintf(more + strlen(more), sizeof(more) - strlen(more),
			 ", %lld not checkable now", other);
	if (r->not_inspectable)
		snprintf(more + strlen(more), sizeof(more) - strlen(more),
			 ", %u of them: holder not inspectable (pid %d)", r->not_inspectable,
			 (int)r->not_inspectable_pid);
	if (r->live_unreadable && r->live_unreadable_pid > 0)
		snprintf(more + strlen(more), sizeof(more) - strlen(more),
			 ", %u of them: the journal of live manager pid %d cannot be read",
			 r->live_unreadable, (int)r->live_unreadable_pid);
	else if (r->live_unreadable)
		snprintf(more + strlen(more), sizeof(more) - strlen(more),
			 ", %u of them: the journal of a live manager (its pid is not visible "
			 "here) cannot be read",
			 r->live_unreadable);
	if (r->lease_held)
		snprintf(
			more + strlen(more), sizeof(more) - strlen(more),
			", %u of them: open, says the kernel's lease, by a holder outside this view",
			r->lease_held);
	if (r->lease_unavailable)
		snprintf(more + strlen(more), sizeof(more) - strlen(more),
			 ", %u of them: the kernel's lease could not be asked",
			 r->lease_unavailable);
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
	case RECLAIM_BUSY:
		return 0;
	default:
		return -1;
	}
}

int reclaim_base(const struct reclaim_opts *opts, int basefd, uid_t only_uid, reclaim_report_cb *cb,
		 void *arg)
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
