/* mgrdir.h — a manager directory, end to end: create, lock, probe, list, remove.
 *
 * A manager directory is BASE/shmwarden-XXXXXX holding manager.sock, lock and the
 * journal. It is the unit every part of shmwarden reasons about, and this module is the
 * only one that decides what state a directory is in: reclaim (sweep, recover, a
 * restarted manager's adoption), ls and the metrics all read one struct mgrdir_probe.
 *
 * Liveness (docs/DESIGN.md, invariant 3): a live manager holds flock(LOCK_EX) on the
 * directory itself, for its whole life. systemd-tmpfiles skips a directory held with a
 * BSD flock (tmpfiles.d(5)), so age rules never empty a live manager's directory; and
 * the kernel drops the lock when the manager dies however it dies. The manager also
 * holds flock on the `lock` file, as managers before the directory lock did: liveness
 * is "either lock is held", so directories of running older managers stay live. A
 * missing lock file is never proof of death. Every descriptor is O_CLOEXEC so no exec'd
 * child inherits a lock.
 *
 * A reclaimer (sweep, recover, a restarted manager adopting) takes the same two locks,
 * exclusive, for as long as it acts on a dead directory: so no manager, reclaimer or
 * look can take them meanwhile, and a second reclaimer finds them held. What tells the
 * two holders apart is the reclaimer's mark (mgrdir.c, "The reclaimer's mark"): an OFD
 * read lock on one byte of the directory, set through the very descriptor that holds the
 * directory's flock, after the flock and only then, and gone before or with it. A
 * manager never sets it. So "flock held and marked" is a directory being reclaimed
 * (MGRDIR_BUSY), and "flock held, not marked" stays live: a manager, one starting, an
 * older release, or any other process holding the lock (cannot tell means live).
 */
#ifndef SHMWARDEN_MGRDIR_H
#define SHMWARDEN_MGRDIR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "shmobj.h"
#include "util.h"

#define MGRDIR_PREFIX "shmwarden-"
#define MGRDIR_SOCKET "manager.sock"
#define MGRDIR_LOCK "lock"

/* A directory whose locks nobody holds and that has no lock file, younger than this, may
 * be a manager between mkdtemp and its flock (microseconds; seconds on a stalled host):
 * it is "starting" and left alone. A manager that loses this race notices (the directory
 * it locked is unlinked) and makes another. */
#define MGRDIR_STARTUP_GRACE_S 5

/* What a probe found. Live, dead and starting are decided by the locks; the others say
 * why the directory must not be acted on, or could not be looked at. */
enum mgrdir_state {
	MGRDIR_LIVE,     /* a process holds the directory's flock or its lock file's */
	MGRDIR_DEAD,     /* nobody does: its journal is for a reclaimer */
	MGRDIR_STARTING, /* no lock held, no lock file, and young: a manager starting */
	MGRDIR_BUSY,     /* its locks are held by a reclaimer acting on it (marked so):
			  * its manager is dead, and the directory is that reclaimer's
			  * until it lets go; holder names it, why says so */
	MGRDIR_UNSAFE,   /* symlinks, files of another user, writable by group or others,
			  * a path someone else could replace, a journal whose writer is
			  * not shown to be the owner (mgrdir_journal_owner), or dead with a directory or journal file its owner
			  * cannot change (the owner's modes, never root's override):
			  * never acted on */
	MGRDIR_FOREIGN,  /* the journal's names live in another /dev/shm: another shm
			  * filesystem, or another directory of ours (a subdirectory
			  * bind-mounted as a job's /dev/shm): not ours to reclaim in
			  * (mgrdir_same_shm) */
	MGRDIR_CORRUPT,  /* dead, and its journal cannot be read: left for a human */
	MGRDIR_UNKNOWN,  /* could not be looked at (permissions, I/O), or dead and not
			  * changeable by this process (a read-only mount): why says */
};
#define MGRDIR_NSTATES (MGRDIR_UNKNOWN + 1)

/* "live", "dead", "starting", "busy", "unsafe", "foreign", "corrupt", "unknown". */
const char *mgrdir_state_str(enum mgrdir_state st);

/* mgrdir_probe flags */
#define MGRDIR_PROBE_JOURNAL 0x1 /* open the journal (probe->journal) */
#define MGRDIR_PROBE_ACT \
	0x2                  /* the caller will change a dead directory: it stays
				  * locked until mgrdir_release, and its journal is opened
				  * in place, read-write. Without it nothing in the directory
				  * is written: a dead directory's journal is read from a
				  * private copy (db and -wal), live ones in place, read-only */
#define MGRDIR_PROBE_OWN 0x4 /* unless root, a directory of another owner is unsafe */

struct journal;
struct journal_meta;

struct mgrdir_probe {
	enum mgrdir_state state;
	char name[256];
	uid_t owner;            /* the directory's owner; (uid_t)-1 when it cannot be seen */
	pid_t holder;           /* live, busy: the pid holding its lock (its fdinfo), 0 unknown
				 * (another pid namespace's, hidden, or let go meanwhile) */
	char holder_cmd[64];    /* its command, from /proc/PID/cmdline ("shmwarden sweep"),
				 * for people only: "" unknown */
	int64_t changed_s;      /* the newer of the directory's mtime and ctime */
	char why[UTIL_MSG_LEN]; /* why, for every state but dead; for live, a note or "" */
	/* PROBE_JOURNAL: the journal, opened JOURNAL_UNTRUSTED (NULL: none, or an empty
	 * one, or one that could not be read: then why says so). */
	struct journal *journal;
	bool journal_empty; /* journal.db exists but holds no schema (killed while creating
			     * it): nothing was ever registered in it */
	/* Held until mgrdir_release: */
	int dirfd;   /* the directory, opened O_NOFOLLOW; -1 */
	int lockfd;  /* ACT on a dead directory: its lock file, locked; -1 */
	bool locked; /* ACT on a dead directory: dirfd holds the directory's flock */
	bool marked; /* ACT on a dead directory: dirfd carries the reclaimer's mark */
	bool fsid_switched;
	uid_t saved_fsuid;
	gid_t saved_fsgid;
	char copydir[PATH_MAX]; /* the private copy of a journal, removed at release */
};

/* Probes basefd/name: opens it without following symlinks, checks that it and its
 * files are plain, the owner's and writable only by the owner, decides liveness by the
 * locks and, with PROBE_JOURNAL, opens the journal. As root, every step below the
 * directory runs with the owner's filesystem identity (setfsuid) until mgrdir_release,
 * so the kernel refuses what the owner could not do. Every check an act makes before it
 * changes a dead directory (its path, its modes, whether this process may write it) is
 * made by a look too, so a look says what an act would do. now_s is the wall clock for the
 * startup grace. Returns 0 when the state was decided, -1 for MGRDIR_UNKNOWN. Always
 * call mgrdir_release afterwards. */
int mgrdir_probe(int basefd, const char *name, int64_t now_s, unsigned flags,
		 struct mgrdir_probe *probe);

/* Closes the journal (if still open), removes a private copy, releases the locks,
 * closes the directory and restores the filesystem identity. Safe to call twice. */
void mgrdir_release(struct mgrdir_probe *probe);

/* Closes probe->journal now (before mgrdir_remove). */
void mgrdir_close_journal(struct mgrdir_probe *probe);

/* Makes BASE/shmwarden-XXXXXX (mode 0700), flocks it, then creates and flocks its lock
 * file. path receives the directory's absolute path; *dirfd holds the directory lock.
 * The socket path must fit sun_path: if BASE is too long, fails saying so. -1 with err
 * set (the fact, without advice: the caller knows where BASE came from) and errno the
 * cause: mkdir's own, ENAMETOOLONG for a BASE too long, EAGAIN when sweepers kept
 * removing the new directory. */
int mgrdir_create(const char *base, char *path, size_t pathlen, int *dirfd, int *lockfd, char *err,
		  size_t errlen);

/* Takes the directory lock on dirfd, waiting up to a second for a prober that holds it
 * for an instant. 0, or -1 with err set. */
int mgrdir_lock_dir(int dirfd, char *err, size_t errlen);

/* Creates dirfd/lock already locked (O_TMPFILE, flock, linkat): no prober ever takes
 * the lock of a manager that is creating it. *lockfd receives it. */
int mgrdir_create_lock(int dirfd, int *lockfd, char *err, size_t errlen);

/* True when name looks like a manager directory name. */
bool mgrdir_is_name(const char *name);

/* Opens dirfd/lock without following symlinks and tries flock(LOCK_EX|LOCK_NB).
 * Returns 0 with *lockfd set when locked, 1 when another open file holds it, -1 on
 * error (errno; ENOENT: no lock file). When create is true a missing lock file is
 * created first. */
int mgrdir_trylock(int dirfd, bool create, int *lockfd, char *err, size_t errlen);

/* The manager directory names in basefd (skipping skip, which may be NULL), sorted
 * (a stable order). Returns 0 with *names (free with mgrdir_list_free), or -1 with
 * errno. */
int mgrdir_list(int basefd, const char *skip, char ***names, size_t *count);
void mgrdir_list_free(char **names, size_t count);

/* Whether some open file description of the directory dirfd carries the reclaimer's
 * mark (mgrdir.c, "the reclaimer's mark"): an OFD read lock on its byte, which a
 * reclaimer of this release sets while it holds a dead directory's flock, and a manager
 * never does. A classic POSIX lock there is no reclaimer's. False too when it cannot be
 * told (fcntl fails: a filesystem without OFD locks): callers then take the holder for a
 * manager, which keeps more, never less. */
bool mgrdir_marked(int dirfd);

/* The kernel's name of an open directory (/proc/self/fd), with no symlink in it, as
 * SQLite requires. 0, or -1 with err set and errno: ENAMETOOLONG for a directory whose
 * path is PATH_MAX bytes or longer (moved deep), which the kernel does not name. */
int mgrdir_fd_path(int dirfd, char *path, size_t len, char *err, size_t errlen);

/* Whether a journal's names live in the /dev/shm directory ours describes (the directory
 * a process opened as /dev/shm, shmobj_fs_self): the same shm filesystem and, for a
 * journal of version 4 or later, the same directory of it (a subdirectory bind-mounted
 * as a job's /dev/shm is another) born at the same time (a tmpfs mounted anew may get a
 * freed device number and the same root inode; a birth time either side lacks does not
 * count). A version 1 journal says nothing and is taken as ours; a version 3 journal,
 * by the device alone, as its release did. */
bool mgrdir_same_shm(const struct journal_meta *meta, const struct shmobj_fs *ours);

/* Whether the journal's writer was owner, the directory's owner as this process sees
 * it: its owner_uid is owner; or (version 4) it ran in a user namespace of its own
 * whose parent saw it as owner, and this process is in the initial user namespace,
 * where uids are the parent's (the writer's namespace is neither ours nor the initial
 * one). Anything else cannot be shown, and is false with why filled (why may be NULL). */
bool mgrdir_journal_owner(const struct journal_meta *meta, uid_t owner, char *why, size_t whylen);

/* Unlinks the manager's files (socket, journal and its -wal/-shm, lock) and removes
 * the directory name from basefd. Missing files are fine; an unexpected file leaves the
 * directory in place and fails with a message naming it. */
int mgrdir_remove(int basefd, const char *name, int dirfd, char *err, size_t errlen);

#endif
