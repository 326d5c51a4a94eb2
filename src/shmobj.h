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

/* lstat of the object: 0, or -1 with errno (ENOENT: gone). */
int shmobj_stat(int shm_dirfd, const char *name, struct stat *st);

/* True unless the object is known to be gone (other errors count as existing: we
 * must never forget a name we could not check). */
bool shmobj_exists(int shm_dirfd, const char *name);

#endif
