/* shmobj.c — looking at /dev/shm objects by name (see shmobj.h).
 * glibc's shm_open(name) is open("/dev/shm" + name); working relative to one directory
 * fd avoids re-resolving /dev/shm per name and never follows a symlink planted there. */
#include <errno.h>
#include <fcntl.h>
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
