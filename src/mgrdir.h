/* mgrdir.h — a manager's directory: its name, its files, its liveness lock.
 *
 * A manager directory is BASE/shmwarden-XXXXXX holding manager.sock, lock and the
 * journal. The manager holds flock(LOCK_EX) on `lock` for its whole life; the kernel
 * drops it when the manager dies however it dies, so "can I take the lock" is the
 * liveness test (invariant 3). The lock file is opened O_CLOEXEC so no exec'd child
 * inherits it.
 */
#ifndef SHMWARDEN_MGRDIR_H
#define SHMWARDEN_MGRDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MGRDIR_PREFIX "shmwarden-"
#define MGRDIR_SOCKET "manager.sock"
#define MGRDIR_LOCK "lock"

/* A directory without a lock file younger than this may be a manager still starting:
 * sweepers leave it alone. */
#define MGRDIR_STARTUP_GRACE_S 60

/* Makes BASE/shmwarden-XXXXXX (mode 0700), creates and locks its lock file.
 * path receives the directory's absolute path. The socket path must fit sun_path:
 * if BASE is too long, fails with a message that says so. */
int mgrdir_create(const char *base, char *path, size_t pathlen, int *dirfd, int *lockfd,
		  char *err, size_t errlen);

/* True when name looks like a manager directory name. */
bool mgrdir_is_name(const char *name);

/* Opens dirfd/lock without following symlinks and tries flock(LOCK_EX|LOCK_NB).
 * Returns 0 with *lockfd set when locked (the owner is dead), 1 when a live process
 * holds it, -1 on error (ENOENT: no lock file). When create is true a missing lock file
 * is created first. */
int mgrdir_trylock(int dirfd, bool create, int *lockfd, char *err, size_t errlen);

/* Unlinks the manager's files (socket, journal and its -wal/-shm, lock) and removes
 * the directory name from basefd. Missing files are fine; an unexpected file leaves the
 * directory in place and fails with a message naming it. */
int mgrdir_remove(int basefd, const char *name, int dirfd, char *err, size_t errlen);

#endif
