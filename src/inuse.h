/* inuse.h — which shm objects live tasks still hold open or map, by inode.
 *
 * Invariant 4: never unlink an object a live task uses. The index is built in one pass
 * over /proc: every task (/proc/PID/task/TID, not only the leader: a thread may have its
 * own fd table, and a process whose leader exited shows its mappings only there), every
 * fd (stat through the fd link: the inode, whatever path or mount namespace opened it)
 * and every mapping (the device and inode columns of maps). Only objects on the shm
 * filesystem (st_dev == shm_dev) are kept, as (st_dev, st_ino) pairs queried in O(1).
 *
 * A process whose fd table or maps we may not read (not dumpable, another user's when
 * not root, the same user's with another real, effective or saved gid, hidepid) is
 * "blind": it could hold any object its uids may open (an object it neither holds open
 * nor maps still passes the kernel's lease: what it may have registered as a manager is
 * livemgr's to keep). Only a task that went away (ENOENT, ESRCH) is skipped: any other
 * failure (EMFILE, ENFILE, ENOMEM) fails the scan, never shortens it. The index
 * records it, and inuse_blind() says, for one object, whether such a process exists
 * (the policy is in inuse.c and SECURITY.md). The index has an age: callers refresh it
 * before it clears a name (inuse_refresh), so a slow journal cannot make it stale.
 */
#ifndef SHMWARDEN_INUSE_H
#define SHMWARDEN_INUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct inuse;

/* Scans procdir (normally "/proc"; tests may point at a fake one) for holders of objects
 * on the filesystem shm_dev (st_dev of /dev/shm) at once. NULL on failure with err set
 * (the procdir cannot be read, or out of memory). */
struct inuse *inuse_scan(const char *procdir, dev_t shm_dev, char *err, size_t errlen);

/* An index that scans on its first inuse_refresh: a run with no name to clear never
 * reads /proc. NULL on failure (out of memory, procdir too long) with err set. */
struct inuse *inuse_new(const char *procdir, dev_t shm_dev, char *err, size_t errlen);

/* Scans an index never scanned; rescans in place when the index began more than
 * max_age_ms ago or was expired, and was consulted since. 0, or -1 with err set (the old index is kept then; callers must
 * not clear names with it). */
int inuse_refresh(struct inuse *idx, int64_t max_age_ms, char *err, size_t errlen);

/* Makes the next inuse_refresh rescan (if the index was consulted since its scan):
 * callers expire it at each new directory. */
void inuse_expire(struct inuse *idx);

/* True when an inspected task holds an open file description of (dev, ino) or maps it. */
bool inuse_holds(struct inuse *idx, dev_t dev, ino_t ino);

/* True when a process we could not inspect may hold an object of this owner and mode
 * (by its uids against them); *pid is that process (0: processes hidden from
 * /proc entirely). */
bool inuse_blind(struct inuse *idx, uid_t owner, mode_t mode, pid_t *pid);

/* Records that the kernel's half of the view, the write lease (shmobj_lease_object),
 * cannot be had on this system (leases disabled: EINVAL). True the first time for this
 * index, so that a run says so once, not once per object. */
bool inuse_lease_unavailable(struct inuse *idx);

size_t inuse_count(const struct inuse *idx);       /* distinct objects held */
size_t inuse_blind_count(const struct inuse *idx); /* processes not inspectable */
void inuse_free(struct inuse *idx);

#endif
