/* mgrdir.c — creating, locking and removing manager directories (see mgrdir.h).
 *
 * The directory is made 0700 by mkdtemp, so only its owner (and root) can reach the
 * socket. The lock file is created before anything else, and locked at once, so a
 * sweeper that finds a directory without a lock knows it is at most a few
 * microseconds from being locked, or abandoned (see MGRDIR_STARTUP_GRACE_S).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal.h"
#include "mgrdir.h"
#include "util.h"

bool mgrdir_is_name(const char *name)
{
	size_t plen = strlen(MGRDIR_PREFIX);
	return strncmp(name, MGRDIR_PREFIX, plen) == 0 && strlen(name) == plen + 6;
}

static int mgrdir_check_socket_fits(const char *dirpath, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	size_t need = strlen(dirpath) + 1 + strlen(MGRDIR_SOCKET) + 1;
	if (need > sizeof(sun.sun_path)) {
		util_err(err, errlen,
			 "socket path %s/%s would be %zu bytes, over the %zu-byte limit of Unix "
			 "sockets: set TMPDIR to a shorter directory",
			 dirpath, MGRDIR_SOCKET, need - 1, sizeof(sun.sun_path) - 1);
		return -1;
	}
	return 0;
}

int mgrdir_trylock(int dirfd, bool create, int *lockfd, char *err, size_t errlen)
{
	int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0);
	int fd = openat(dirfd, MGRDIR_LOCK, flags, 0600);
	if (fd < 0) {
		util_err(err, errlen, "open %s: %s", MGRDIR_LOCK, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		if (saved == EWOULDBLOCK)
			return 1;
		errno = saved;
		util_err(err, errlen, "flock %s: %s", MGRDIR_LOCK, strerror(saved));
		return -1;
	}
	*lockfd = fd;
	return 0;
}

/* The lock file appears in the directory already locked: it is made unnamed
 * (O_TMPFILE), locked, then linked into place, so no sweeper can ever take the lock of a
 * manager that is starting. Filesystems without O_TMPFILE get create-then-lock, where a
 * sweeper that comes in between makes this start fail cleanly. */
static int mgrdir_create_locked(int dfd, int *lockfd, char *err, size_t errlen)
{
	int fd = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		int rc = mgrdir_trylock(dfd, true, lockfd, err, errlen);
		if (rc > 0)
			util_err(err, errlen, "the lock of the new directory is held by another process");
		return rc == 0 ? 0 : -1;
	}
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 ||
	    linkat(AT_FDCWD, proc, dfd, MGRDIR_LOCK, AT_SYMLINK_FOLLOW) < 0) {
		util_err(err, errlen, "create %s: %s", MGRDIR_LOCK, strerror(errno));
		close(fd);
		return -1;
	}
	*lockfd = fd;
	return 0;
}

int mgrdir_create(const char *base, char *path, size_t pathlen, int *dirfd, int *lockfd,
		  char *err, size_t errlen)
{
	int dfd = -1, lfd = -1;
	int n = snprintf(path, pathlen, "%s%s" MGRDIR_PREFIX "XXXXXX", base,
			 base[strlen(base) - 1] == '/' ? "" : "/");
	if (n < 0 || (size_t)n >= pathlen) {
		util_err(err, errlen, "temp directory path under %s is too long", base);
		return -1;
	}
	if (mgrdir_check_socket_fits(path, err, errlen) < 0)
		return -1;
	if (!mkdtemp(path)) {
		util_err(err, errlen, "cannot create a directory in %s: %s", base, strerror(errno));
		return -1;
	}
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		util_err(err, errlen, "open %s: %s", path, strerror(errno));
		goto fail;
	}
	if (mgrdir_create_locked(dfd, &lfd, err, errlen) < 0)
		goto fail;
	*dirfd = dfd;
	*lockfd = lfd;
	return 0;
fail:
	if (dfd >= 0) {
		unlinkat(dfd, MGRDIR_LOCK, 0);
		close(dfd);
	}
	rmdir(path);
	return -1;
}

int mgrdir_remove(int basefd, const char *name, int dirfd, char *err, size_t errlen)
{
	if (journal_unlink_files(dirfd, err, errlen) < 0)
		return -1;
	static const char *const files[] = { MGRDIR_SOCKET, MGRDIR_LOCK };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (unlinkat(dirfd, files[i], 0) < 0 && errno != ENOENT) {
			util_err(err, errlen, "unlink %s/%s: %s", name, files[i], strerror(errno));
			return -1;
		}
	}
	if (unlinkat(basefd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
		util_err(err, errlen, "rmdir %s: %s%s", name, strerror(errno),
			 errno == ENOTEMPTY ? " (it holds files shmwarden did not make; left for a human)"
					    : "");
		return -1;
	}
	return 0;
}
