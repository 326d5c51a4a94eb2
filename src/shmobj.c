/* shmobj.c — looking at /dev/shm objects by name (see shmobj.h).
 * glibc's shm_open(name) is open("/dev/shm" + name); working relative to one directory
 * fd avoids re-resolving /dev/shm per name and never follows a symlink planted there. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
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

/* statx of dirfd/path (flags as statx's) into info: 0, or -1 with errno. The one place
 * an object's identity is read, whether by name or through an open descriptor. */
static int shmobj_statx(int dirfd, const char *path, int flags, struct shmobj_info *info)
{
	struct statx sx;
	unsigned want = STATX_TYPE | STATX_MODE | STATX_UID | STATX_SIZE | STATX_INO | STATX_BTIME;
	if (statx(dirfd, path, flags, want, &sx) < 0)
		return -1;
	info->mode = sx.stx_mode;
	info->uid = sx.stx_uid;
	info->size = (off_t)sx.stx_size;
	info->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	info->ino = sx.stx_ino;
	info->has_btime = (sx.stx_mask & STATX_BTIME) != 0;
	info->btime_ns = info->has_btime
				 ? (int64_t)sx.stx_btime.tv_sec * 1000000000 + sx.stx_btime.tv_nsec
				 : 0;
	return 0;
}

int shmobj_info(int shm_dirfd, const char *name, struct shmobj_info *info)
{
	if (name[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	return shmobj_statx(shm_dirfd, name + 1, AT_SYMLINK_NOFOLLOW, info);
}

int64_t shmobj_window_ns(int64_t window_s)
{
	if (window_s <= 0)
		return 0;
	if (window_s > INT64_MAX / 1000000000)
		return INT64_MAX;
	return window_s * 1000000000;
}

bool shmobj_born_by(int64_t btime_ns, int64_t registered_us, int64_t window_s)
{
	/* btime_ns <= registered_us * 1000 + window_ns, without overflow: the row's time
	 * comes from a file its owner could write, so it may be anything. In microseconds:
	 * the window ends at end_us and window_ns % 1000 past it (807 ns when clamped). */
	int64_t window_ns = shmobj_window_ns(window_s);
	if (registered_us > INT64_MAX - window_ns / 1000)
		return true;
	int64_t end_us = registered_us + window_ns / 1000, end_ns = window_ns % 1000;
	/* The birth's microsecond, rounded down (C's division rounds towards zero), and the
	 * nanoseconds past it. */
	int64_t us = btime_ns / 1000, ns = btime_ns % 1000;
	if (ns < 0) {
		us--;
		ns += 1000;
	}
	return us < end_us || (us == end_us && ns <= end_ns);
}

/* statx of an open fd: 0, or -1 with errno. */
static int shmobj_info_fd(int fd, struct shmobj_info *info)
{
	return shmobj_statx(fd, "", AT_EMPTY_PATH, info);
}

int shmobj_fs_self(int shm_dirfd, struct shmobj_fs *fs, char *err, size_t errlen)
{
	struct shmobj_info dir;
	if (shmobj_info_fd(shm_dirfd, &dir) < 0) {
		util_err(err, errlen, "statx %s: %s", SHMOBJ_DIR, strerror(errno));
		return -1;
	}
	fs->dev = (uint64_t)dir.dev;
	fs->ino = (uint64_t)dir.ino;
	fs->btime_ns = dir.btime_ns;
	return 0;
}

uint64_t shmobj_mnt_ns_self(void)
{
	struct stat st;
	return stat("/proc/self/ns/mnt", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

bool shmobj_fs_same(const struct shmobj_fs *a, const struct shmobj_fs *b)
{
	return a->dev == b->dev && a->ino == b->ino &&
	       (!a->btime_ns || !b->btime_ns || a->btime_ns == b->btime_ns);
}

bool shmobj_exists(int shm_dirfd, const char *name)
{
	struct stat st;
	return shmobj_stat(shm_dirfd, name, &st) == 0 || errno != ENOENT;
}

int shmobj_lease_object(int shm_dirfd, const char *name, const struct shmobj_info *want,
			unsigned flags, int *fd)
{
	*fd = -1;
	if (name[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	/* O_NONBLOCK: another's lease on it fails the open at once instead of waiting. */
	int lfd = openat(shm_dirfd, name + 1,
			 O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (lfd < 0)
		return errno == EWOULDBLOCK ? 1 : -1;
	struct shmobj_info got;
	if (shmobj_info_fd(lfd, &got) < 0 || got.dev != want->dev || got.ino != want->ino ||
	    (want->has_btime && (!got.has_btime || got.btime_ns != want->btime_ns))) {
		close(lfd);
		return 2;
	}
	/* An opener breaking the lease notifies its owner with a signal, SIGIO by default,
	 * whose default action would end us: SIGURG's default is to ignore it. */
	if ((!(flags & SHMOBJ_LEASE_SIGIO_IGNORED) && fcntl(lfd, F_SETSIG, SIGURG) < 0) ||
	    fcntl(lfd, F_SETLEASE, F_WRLCK) < 0) {
		int saved = errno;
		close(lfd);
		errno = saved;
		return saved == EAGAIN ? 1 : -1;
	}
	*fd = lfd;
	return 0;
}

void shmobj_stops_hold(sigset_t *old)
{
	/* Only SIGTSTP: SIGTTIN and SIGTTOU stop a background process at its terminal I/O,
	 * which comes after the lease's close (the reclaimers log once it is released), and
	 * blocking SIGTTOU would let a background write through. pthread_sigmask: the
	 * manager reclaims in a thread of its own. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTSTP);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

void shmobj_stops_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

int shmobj_lease(int shm_dirfd, const char *name, uint64_t dev, uint64_t ino, int *fd)
{
	struct shmobj_info want = { .dev = dev, .ino = ino };
	return shmobj_lease_object(shm_dirfd, name, &want, 0, fd);
}
