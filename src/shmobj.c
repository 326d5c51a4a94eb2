/* shmobj.c — looking at /dev/shm objects by name (see shmobj.h).
 * glibc's shm_open(name) is open("/dev/shm" + name); working relative to one directory
 * fd avoids re-resolving /dev/shm per name and never follows a symlink planted there. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "shmobj.h"
#include "util.h"

int shmobj_dir_open(char *err, size_t errlen)
{
	int fd = open(SHMOBJ_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		util_err(err, errlen, "open %s: %s", SHMOBJ_DIR, strerror(errno));
	return fd;
}

int shmobj_dir_dev(int shm_dirfd, dev_t *dev, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(shm_dirfd, &st) < 0) {
		util_err(err, errlen, "fstat %s: %s", SHMOBJ_DIR, strerror(errno));
		return -1;
	}
	*dev = st.st_dev;
	return 0;
}

int shmobj_stat(int shm_dirfd, const char *name, struct stat *st)
{
	if (name[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	return fstatat(shm_dirfd, name + 1, st, AT_SYMLINK_NOFOLLOW);
}

bool shmobj_exists(int shm_dirfd, const char *name)
{
	struct stat st;
	return shmobj_stat(shm_dirfd, name, &st) == 0 || errno != ENOENT;
}

int shmobj_lease(int shm_dirfd, const char *name, const struct stat *st, int *fd)
{
	*fd = -1;
	if (name[0] != '/' || !S_ISREG(st->st_mode)) {
		errno = EINVAL;
		return -1;
	}
	/* O_NONBLOCK: another's lease on it fails the open at once instead of waiting. */
	int lfd = openat(shm_dirfd, name + 1, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY |
					       O_CLOEXEC);
	if (lfd < 0)
		return errno == EWOULDBLOCK ? 1 : -1;
	struct stat fst;
	if (fstat(lfd, &fst) < 0 || fst.st_dev != st->st_dev || fst.st_ino != st->st_ino) {
		close(lfd);
		return 1;
	}
	/* An opener breaking the lease notifies its owner with a signal, SIGIO by default,
	 * whose default action would end us: SIGURG's default is to ignore it. */
	if (fcntl(lfd, F_SETSIG, SIGURG) < 0 || fcntl(lfd, F_SETLEASE, F_WRLCK) < 0) {
		int saved = errno;
		close(lfd);
		errno = saved;
		return saved == EAGAIN ? 1 : -1;
	}
	*fd = lfd;
	return 0;
}
