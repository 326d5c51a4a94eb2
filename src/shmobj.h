/* shmobj.h — looking at POSIX shared-memory objects by name, without creating them.
 * Names are the wire form "/torch_..."; objects live under /dev/shm. Unlinking is not
 * here: only the reclaim engine unlinks journaled names (reclaim.c). */
#ifndef SHMWARDEN_SHMOBJ_H
#define SHMWARDEN_SHMOBJ_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define SHMOBJ_DIR "/dev/shm"

/* An object that no journal row has identified yet is taken for the registered one only
 * when it was born no later than this many seconds after the registration (the
 * manager's default prune grace: a creating client makes its object right after the
 * OK), or at any time before it (shmobj_born_by). */
#define SHMOBJ_BIRTH_WINDOW_S 10

/* What statx says about an object: enough to decide whose it is and which one it is. */
struct shmobj_info {
	mode_t mode;
	uid_t uid;
	off_t size;
	uint64_t dev; /* st_dev: which filesystem (the in-use index matches by dev and ino) */
	uint64_t ino;
	bool has_btime; /* the filesystem reports a birth time (tmpfs does since Linux 5.x) */
	int64_t btime_ns;
};

/* The /dev/shm a process sees: st_dev and st_ino of the directory it opened as /dev/shm
 * (the filesystem, and which directory of it: a subdirectory of the host's /dev/shm
 * bind-mounted as a job's has the host's device and its own inode), and its birth time.
 * The mount id (statx STATX_MNT_ID) is not recorded: every mount namespace has its own
 * copy of a mount, with its own id, so it would tell apart what is the same directory.
 * Nor is the mount namespace: it does not decide (shmobj_mnt_ns_self). */
struct shmobj_fs {
	uint64_t dev;
	uint64_t ino;
	int64_t btime_ns; /* the directory's birth time, unix ns; 0 when not given */
};

/* Opens /dev/shm as a directory fd (O_PATH is not enough for unlinkat). */
int shmobj_dir_open(char *err, size_t errlen);

/* st_dev of the shm filesystem behind shm_dirfd: what the in-use index matches holders
 * by. 0, or -1 with err set. */
int shmobj_dir_dev(int shm_dirfd, dev_t *dev, char *err, size_t errlen);

/* lstat of the object: 0, or -1 with errno (ENOENT: gone). */
int shmobj_stat(int shm_dirfd, const char *name, struct stat *st);

/* The kernel's answer to "does anyone else have this object open?": a write lease
 * (fcntl(2) F_SETLEASE F_WRLCK) is granted only when no other open file description of
 * the inode exists anywhere (any task, any namespace, a mapping whose fd was closed, an fd
 * in flight over SCM_RIGHTS; verified on Linux 6.18 by tests/unit/test_reclaim.c). The
 * caller's fsuid must own the object (or have CAP_LEASE). name must lead to the regular
 * file (dev, ino) the caller looked at: a device node or FIFO is never to be opened here.
 * Returns 0 with *fd holding the lease (the caller unlinks, then closes *fd, which lets
 * any opener that waited on the lease go on), 1 when someone else has it open (or holds
 * a lease on it), 2 when the name now leads to another object, -1 with errno when no
 * lease can be had (leases disabled, fs.leases-enable 0: EINVAL; not the owner, or a
 * mode that does not let the caller open it: EACCES; gone: ENOENT). */
int shmobj_lease(int shm_dirfd, const char *name, uint64_t dev, uint64_t ino, int *fd);

/* shmobj_lease for the reclaim path, one open serving both checks: the object opened is
 * compared with want (dev, inode, and birth time when want has one) by statx on the
 * fd, so the name is resolved once. SHMOBJ_LEASE_SIGIO_IGNORED: the caller's process
 * ignores SIGIO (sigaction), so the F_SETSIG that keeps a lease break from killing it
 * is not needed. Same returns as shmobj_lease. */
#define SHMOBJ_LEASE_SIGIO_IGNORED 1u
int shmobj_lease_object(int shm_dirfd, const char *name, const struct shmobj_info *want,
			unsigned flags, int *fd);
/* Holds back SIGTSTP (a terminal's Ctrl-Z, a shell's `kill -TSTP`) in the calling thread
 * while it may hold leases, and lets it come after: a process stopped while it holds a
 * lease makes every opener of that object wait up to fs.lease-break-time (45 s), and a
 * reclaimer's lease broken that way costs a keep. *old receives the mask to restore with
 * shmobj_stops_restore. SIGSTOP and a frozen cgroup cannot be held back: the reclaimer
 * still checks its lease before each unlink (reclaim.c). */
void shmobj_stops_hold(sigset_t *old);
void shmobj_stops_restore(const sigset_t *old);

/* statx of the object (no symlink followed): 0, or -1 with errno (ENOENT: gone). */
int shmobj_info(int shm_dirfd, const char *name, struct shmobj_info *info);

/* A birth window of window_s seconds in nanoseconds, the unit of a birth time
 * (shmobj_info's btime_ns): 0 for a window_s of 0 or less (a negative window is none),
 * and INT64_MAX (about 292 years, as long as an int64_t of nanoseconds reaches) for any
 * window_s past INT64_MAX / 10^9, so the product never overflows. The one conversion
 * shmobj_born_by and journal_identify (the same rule, in SQL) both use. */
int64_t shmobj_window_ns(int64_t window_s);

/* True when an object born at btime_ns (nanoseconds since the epoch) may be the one a
 * registration at registered_us (microseconds since the epoch: the earliest moment a
 * journal row's registration can have been, journal_row_earliest_us) names: born at most
 * window_s seconds after it, to the nanosecond, or at any time before it. libshm
 * registers a name twice: the creating process before it makes the object, and the
 * receiving process, given the creator's manager, when it rebuilds the tensor, which can
 * be seconds after the birth (a DataLoader batch waits in the queue until the loop takes
 * it). That registration restarts the row, and the object it names is older than it. An
 * object born later than the window is another program's, made after the journaled one
 * was removed. Whole seconds made the window up to 1 s longer than window_s. A window
 * ending past the clock's range holds every birth; window_s is read as
 * shmobj_window_ns reads it (a negative one counts as 0). */
bool shmobj_born_by(int64_t btime_ns, int64_t registered_us, int64_t window_s);

/* Which /dev/shm directory shm_dirfd is: its device, inode and birth time (statx). Ours,
 * or another process's (/proc/PID/root/dev/shm: livemgr.c). 0, or -1 with err. */
int shmobj_fs_self(int shm_dirfd, struct shmobj_fs *fs, char *err, size_t errlen);

/* Our mount namespace: the inode of /proc/self/ns/mnt, 0 if unreadable. For the journal
 * and the reports only: a container sharing the host's /dev/shm is in another one and
 * sees the same directory, so it never decides whose names a journal holds. */
uint64_t shmobj_mnt_ns_self(void);

/* Whether a and b are one /dev/shm directory: the same device and inode, and the same
 * birth time unless either lacks one (a filesystem without birth times cannot tell). */
bool shmobj_fs_same(const struct shmobj_fs *a, const struct shmobj_fs *b);

/* True unless the object is known to be gone (other errors count as existing: we
 * must never forget a name we could not check). */
bool shmobj_exists(int shm_dirfd, const char *name);

#endif
