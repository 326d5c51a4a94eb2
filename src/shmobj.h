/* shmobj.h — looking at POSIX shared-memory objects by name, without creating them.
 * Names are the wire form "/torch_..."; objects live under /dev/shm. Unlinking is not
 * here: only the reclaim engine unlinks journaled names (reclaim.c). */
#ifndef SHMWARDEN_SHMOBJ_H
#define SHMWARDEN_SHMOBJ_H

#include <stdbool.h>
#include <sys/stat.h>

#define SHMOBJ_DIR "/dev/shm"

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
 * caller's fsuid must own the object (or have CAP_LEASE). name must lead to the object st
 * describes (regular: only regular files are ever opened here).
 * Returns 0 with *fd holding the lease (the caller unlinks, then closes *fd, which lets
 * any opener that waited on the lease go on), 1 when someone else has it open or the
 * name now leads elsewhere, -1 with errno when no lease can be had (leases disabled:
 * EINVAL; not the owner: EACCES). */
int shmobj_lease(int shm_dirfd, const char *name, const struct stat *st, int *fd);

/* True unless the object is known to be gone (other errors count as existing: we
 * must never forget a name we could not check). */
bool shmobj_exists(int shm_dirfd, const char *name);

#endif
