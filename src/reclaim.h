/* reclaim.h — the reclaim engine: the only code that shm_unlinks journaled names.
 *
 * All three entry points use it: a manager shutting down (its own journal), a
 * restarted manager adopting dead managers' directories, and `recover`/`sweep`.
 * For every journaled name it decides (docs/DESIGN.md, invariants 3-6):
 *   not created yet: registered
 *   less than opts->young_s ago -> keep the row (or move it to opts->adopt_into with its
 *                                  registration time): its client may be about to
 *                                  create the object (SECURITY.md, "Between OK and
 *                                  shm_open")
 *   gone                        -> drop the row
 *   owned by another uid        -> refuse, log, drop the row (never ours to unlink)
 *   invalid name                -> refuse, log, drop the row
 *   registered by a live manager-> hand over: drop the row, leave the object (livemgr.h)
 *   not the journaled object    -> refuse ("name reused"), log, drop the row: another
 *                                  inode or birth time than the row recorded, or, for a
 *                                  row never identified, born more than the window after
 *                                  its registration (shmobj_born_by)
 *   mapped/open by a live task  -> keep the row (or move it to opts->adopt_into), and
 *                                  record which object it is
 *   a live manager's journal
 *   cannot be read (another
 *   schema version)             -> the same: it may have registered the name
 *                                  (livemgr_unreadable)
 *   otherwise                   -> ask the kernel: a write lease on a fresh open
 *                                  (shmobj_lease_object). Granted: shm_unlink while it
 *                                  is held, drop the row. Refused (someone has it
 *                                  open or mapped: a task we could not inspect, or a
 *                                  holder outside our /proc view: another pid
 *                                  namespace, io_uring, overlayfs) or not to be had
 *                                  (leases disabled): keep, as in use.
 * The /proc view never permits an unlink on its own: it only adds keeps (and names
 * holders in reports).
 * Row drops are batched into one transaction per page. Running twice, concurrently
 * (the directory lock serialises: a reclaimer that finds another one's lock on a
 * directory reports it busy and leaves it to that one), or after a crash of the
 * reclaimer ends in the same state.
 */
#ifndef SHMWARDEN_RECLAIM_H
#define SHMWARDEN_RECLAIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "inuse.h"
#include "util.h"
#include "journal.h"
#include "mgrdir.h"

/* The oldest in-use view that may clear a name (see SECURITY.md, "A fresh view"). */
#define RECLAIM_VIEW_MAX_MS 1000

/* The grace of a name whose object does not exist yet (opts->young_s), seconds: the
 * manager's --prune-grace default, and sweep's and recover's, so a dead manager's young
 * row is kept as long as its live manager would have kept it. */
#define RECLAIM_GRACE_S 10
/* The largest grace an option takes: a day in milliseconds, the manager's bound for
 * every setting (past it a setting is a typo). */
#define RECLAIM_GRACE_MAX_S 86400000

struct reclaim_opts {
	struct inuse *inuse;        /* built by the caller; refreshed here before it clears a
				     * name when older than RECLAIM_VIEW_MAX_MS, and at each
				     * directory */
	int shm_dirfd;              /* shmobj_dir_open() */
	const char *boot_id;        /* this boot's id */
	bool dry_run;               /* decide and report, change nothing */
	struct journal *adopt_into; /* in-use names move here (restarted manager), or NULL */
	const char *skip_name;      /* a directory name reclaim_base() never touches */
	int64_t now_s;              /* for the startup grace; util_wall_s() */
	int64_t young_s;            /* rows registered less than this many seconds before
				     * now_us whose object does not exist yet are kept (or
				     * adopted): their client may be about to create it. Every
				     * reclaimer sets it (a manager's prune grace; sweep's and
				     * recover's --prune-grace); 0: none */
	int64_t now_us;             /* for young_s, to the microsecond; util_wall_us() */
	bool caller_reports;        /* the caller shows every failed directory on stderr
				     * itself: its log line is info, not a second warn */
	bool no_live_check;         /* skip looking for live managers' names (tests that
				     * run against a fake /dev/shm) */
	const int *live_bases;      /* the temp bases whose locked, unmarked manager
				     * directories count as live managers even when no process
				     * we can see holds them (livemgr_watch): every base the
				     * reclaimer walks; NULL none */
	size_t nlive_bases;         /* how many */
	int own_dirfd;              /* with nlive_bases: the caller's own manager directory
				     * (a manager's), never taken for another's; -1 none */
};

enum reclaim_status {
	RECLAIM_REMOVED,  /* every name handled, directory removed (dry run: would be) */
	RECLAIM_KEPT,     /* some names still in use: they stay journaled, directory kept */
	RECLAIM_LIVE,     /* a live manager holds the lock: untouched */
	RECLAIM_STARTING, /* no lock yet and young: a manager starting; untouched */
	RECLAIM_BUSY,     /* another reclaimer holds it (MGRDIR_BUSY): left to it, untouched */
	RECLAIM_UNSAFE,   /* ownership/permissions/symlinks forbid acting: untouched */
	RECLAIM_CORRUPT,  /* unreadable or foreign journal: left for a human */
	RECLAIM_FOREIGN,  /* its names live in another shm filesystem: untouched */
	RECLAIM_ERROR,    /* anything else (I/O, permission): detail says */
};

/* The three statuses that are findings (a directory for a human to look at), not
 * failures of the reclaimer: it could never have acted on them. */
bool reclaim_is_finding(enum reclaim_status st);

struct reclaim_report {
	enum reclaim_status status;
	char dir[256];              /* directory name (not path) */
	uid_t owner;                /* directory owner */
	pid_t manager_pid;          /* from the journal (live: the lock holder), 0 if unknown */
	pid_t reclaimer_pid;        /* busy: the reclaimer holding it, 0 if unknown or not busy */
	bool earlier_boot;          /* journal from an earlier boot: names not unlinked */
	unsigned unlinked;          /* objects unlinked (dry run: would be) */
	unsigned gone;              /* names whose object was already gone */
	unsigned in_use;            /* names kept because a live process uses them */
	unsigned adopted;           /* of those, moved into opts->adopt_into */
	unsigned young;             /* names registered less than opts->young_s ago whose
				 * object does not exist yet: kept, or with adopt_into
				 * adopted (not counted in adopted, which is of in_use) */
	unsigned refused;           /* foreign-owned objects, invalid names, reused names */
	unsigned reused;            /* of those: another object than the journaled one now has
				 * the name ("refused: name reused") */
	unsigned handed_over;       /* names a live manager registered since: rows dropped,
				 * objects left to it */
	unsigned not_inspectable;   /* of in_use: kept because a process that may hold them
				   * could not be inspected (and the kernel's lease check
				   * did not clear them) */
	pid_t not_inspectable_pid;  /* the first such process, 0 if unknown */
	unsigned live_unreadable;   /* of in_use: kept because a live manager of the owner's
				   * whose journal cannot be read (another schema version)
				   * may hold them */
	pid_t live_unreadable_pid;  /* the first such manager, 0 when its pid is not visible
				     * here (found by its lock: livemgr.h) */
	unsigned lease_held;        /* of in_use: no task in our /proc view holds them, but
				    * the kernel refused the lease (someone has them open:
				    * a holder outside this view), or broke it before the
				    * unlink (someone opened them meanwhile) */
	unsigned lease_unavailable; /* of in_use: no task in our view holds them, and the
				     * kernel could not be asked (leases disabled, or the
				     * object could not be opened to ask) */
	uint64_t bytes;             /* st_size of the objects unlinked */
	char detail[UTIL_MSG_LEN];  /* why, for LIVE/STARTING/UNSAFE/CORRUPT/ERROR */
};

const char *reclaim_status_str(enum reclaim_status st);

/* Handles every row of an open, locked journal whose objects must belong to owner.
 * The caller holds the directory lock; dirfd is that directory (never taken for a live
 * manager's), -1 when there is none. Returns 0 (report filled) or -1 (I/O error,
 * report->detail says). */
int reclaim_journal(const struct reclaim_opts *opts, struct journal *j, int dirfd, uid_t owner,
		    struct reclaim_report *report);

/* The whole procedure for one directory basefd/name: mgrdir_probe (safety checks,
 * locks, journal), boot id, reclaim_journal, then removal of the directory when nothing
 * is left. As root, acts with the directory owner's filesystem identity (setfsuid), so
 * the kernel itself refuses to unlink another user's object. A dry run changes nothing
 * in the directory: not even -shm, nor an access time where the owner allows.
 * Returns 0 when the report's status is REMOVED or KEPT (or LIVE/STARTING/BUSY: nothing
 * to do), -1 otherwise. */
int reclaim_dir(const struct reclaim_opts *opts, int basefd, const char *name,
		struct reclaim_report *report);

/* Calls reclaim_dir for every manager directory in basefd (skipping opts->skip_name
 * and, when only_uid is not (uid_t)-1, directories of other owners), then cb with each
 * report. Returns the number of directories that failed (status ERROR: what the
 * reclaimer should have done and could not; findings do not count), or -1 if basefd
 * could not be read. */
typedef void reclaim_report_cb(void *arg, const struct reclaim_report *report);
int reclaim_base(const struct reclaim_opts *opts, int basefd, uid_t only_uid, reclaim_report_cb *cb,
		 void *arg);

#endif
