/* client_segment.c — shared-memory objects: choosing names, creating, opening, freeing.
 *
 * Guarantees, in libshm's order: a name is registered with the manager (journaled) before
 * the object exists, so at every instant every object we created is known to a journal;
 * an object is created with O_EXCL, so an existing one is never taken over; every failure
 * after registration undoes what was done (unlink what we created, send the free); only
 * the creating process unlinks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "wire.h"

#define SEGMENT_NAME_TRIES 8

struct shmw_segment {
	struct shmw_manager *mgr; /* holds a reference */
	void *data;
	size_t size;
	pid_t creator; /* the creating process; 0 when opened */
	char name[SHMW_NAME_MAX + 1];
};

/* PREFIX<pid>_<random>_<counter>: the pid and counter keep one process's names apart, the
 * random part keeps apart processes that reuse a pid and handles that share a counter. */
static void segment_make_name(struct shmw_manager *m, char *name, size_t len)
{
	uint32_t rnd;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rnd = (uint32_t)ts.tv_nsec ^ ((uint32_t)ts.tv_sec << 20);
	}
	pthread_mutex_lock(&m->lock);
	uint32_t n = m->counter++;
	snprintf(name, len, "%s%d_%08x_%u", m->prefix, (int)getpid(), rnd, n);
	pthread_mutex_unlock(&m->lock);
}

/* Whether something already has this name. Checked before registering because a
 * registration cannot be taken back: the manager would unlink the other object when it
 * shuts down (a free only makes it forget names that no longer exist). What remains is the
 * window between this check and O_EXCL, as narrow as a random collision is rare. */
static bool segment_name_taken(const char *name)
{
	int fd = shm_open(name, O_RDONLY, 0);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	return errno != ENOENT; /* EACCES: someone else's */
}

/* Sends the free for a name registered by a call that is failing, keeping the message
 * that explains the failure. */
static void segment_unregister(struct shmw_manager *m, const char *name)
{
	char why[512];
	snprintf(why, sizeof(why), "%s", shmw_errmsg());
	client_request(m, name, true);
	client_err(0, "%s", why);
}

int shmw_create(struct shmw_manager *m, size_t size, unsigned int flags, struct shmw_segment **out)
{
	if (!m || !out)
		return client_err(-EINVAL, "shmw_create: NULL argument");
	if (flags & ~(unsigned int)SHMW_CREATE_RESERVE)
		return client_err(-EINVAL, "shmw_create: unknown flags 0x%x", flags);
	if (size == 0)
		return client_err(-EINVAL, "cannot create a shared object of size 0");
	off_t len = (off_t)size;
	if (len < 0 || (size_t)len != size)
		return client_err(-EFBIG, "cannot create a shared object of %zu bytes: %s", size,
				  strerror(EFBIG));

	struct shmw_segment *seg = calloc(1, sizeof(*seg));
	if (!seg)
		return client_err(-ENOMEM, "out of memory");
	int fd = -1, rc = 0;
	bool registered = false;
	for (int i = 0; i < SEGMENT_NAME_TRIES && fd < 0; i++) {
		segment_make_name(m, seg->name, sizeof(seg->name));
		if (segment_name_taken(seg->name))
			continue;
		if ((rc = client_request(m, seg->name, false)) < 0)
			goto fail;
		registered = true;
		fd = shm_open(seg->name, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0 && errno != EEXIST) {
			rc = client_err(-errno, "cannot create shared object %s: %s", seg->name,
					strerror(errno));
			goto fail;
		}
		/* EEXIST: created under our feet; it is not ours, so no free for it (see
		 * segment_name_taken) and another name. */
		registered = fd >= 0;
	}
	if (fd < 0) {
		rc = client_err(-EEXIST, "no free shared-memory name in %d tries (last %s)",
				SEGMENT_NAME_TRIES, seg->name);
		goto fail;
	}
	if (ftruncate(fd, len) < 0) {
		rc = client_err(-errno, "cannot size shared object %s to %zu bytes: %s", seg->name,
				size, strerror(errno));
		goto fail;
	}
	if (flags & SHMW_CREATE_RESERVE) {
		int err = posix_fallocate(fd, 0, len);
		if (err) {
			rc = client_err(-err, "cannot reserve %zu bytes for shared object %s: %s",
					size, seg->name, strerror(err));
			goto fail;
		}
	}
	seg->data = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (seg->data == MAP_FAILED) {
		rc = client_err(-errno, "cannot map %zu bytes of shared object %s: %s", size,
				seg->name, strerror(errno));
		goto fail;
	}
	close(fd);
	seg->size = size;
	seg->creator = getpid();
	seg->mgr = m;
	client_manager_get(m);
	*out = seg;
	return 0;
fail:
	if (fd >= 0) {
		close(fd);
		shm_unlink(seg->name);
	}
	if (registered)
		segment_unregister(m, seg->name);
	free(seg);
	return rc;
}

int shmw_open(struct shmw_manager *m, const char *name, unsigned int flags,
	      struct shmw_segment **out)
{
	if (!m || !name || !out)
		return client_err(-EINVAL, "shmw_open: NULL argument");
	if (flags & ~(unsigned int)SHMW_OPEN_RDONLY)
		return client_err(-EINVAL, "shmw_open: unknown flags 0x%x", flags);
	const char *why = wire_name_check(name, strnlen(name, WIRE_NAME_FIELD));
	if (why)
		return client_err(-EINVAL, "bad shared-memory name \"%.60s\": %s", name, why);

	struct shmw_segment *seg = calloc(1, sizeof(*seg));
	if (!seg)
		return client_err(-ENOMEM, "out of memory");
	memcpy(seg->name, name, strlen(name) + 1);
	bool rdonly = flags & SHMW_OPEN_RDONLY;
	bool registered = false;
	struct stat st;
	int fd = -1, rc;
	if ((rc = client_request(m, name, false)) < 0)
		goto fail;
	registered = true;
	fd = shm_open(name, rdonly ? O_RDONLY : O_RDWR, 0);
	if (fd < 0) {
		rc = client_err(-errno, "cannot open shared object %s: %s", name, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		rc = client_err(-errno, "fstat %s: %s", name, strerror(errno));
		goto fail;
	}
	if (st.st_size <= 0) {
		rc = client_err(-EINVAL, "shared object %s is empty", name);
		goto fail;
	}
	if ((uintmax_t)st.st_size > SIZE_MAX) {
		rc = client_err(-EFBIG, "shared object %s is too large to map", name);
		goto fail;
	}
	seg->size = (size_t)st.st_size;
	seg->data = mmap(NULL, seg->size, PROT_READ | (rdonly ? 0 : PROT_WRITE), MAP_SHARED, fd, 0);
	if (seg->data == MAP_FAILED) {
		rc = client_err(-errno, "cannot map %zu bytes of shared object %s: %s", seg->size,
				name, strerror(errno));
		goto fail;
	}
	close(fd);
	seg->mgr = m;
	client_manager_get(m);
	*out = seg;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (registered)
		segment_unregister(m, name);
	free(seg);
	return rc;
}

int shmw_free(struct shmw_segment *seg)
{
	if (!seg)
		return 0;
	int rc = 0;
	munmap(seg->data, seg->size);
	/* Unlink before the free record: the manager forgets a freed name only once the
	 * object is gone. A forked child holds a copy of the segment but did not create it. */
	if (seg->creator == getpid() && shm_unlink(seg->name) < 0 && errno != ENOENT)
		rc = client_err(-errno, "cannot unlink shared object %s: %s", seg->name,
				strerror(errno));
	if (rc == 0)
		rc = client_request(seg->mgr, seg->name, true);
	else
		segment_unregister(seg->mgr, seg->name);
	client_manager_put(seg->mgr);
	free(seg);
	return rc;
}

void *shmw_data(const struct shmw_segment *seg)
{
	return seg ? seg->data : NULL;
}

size_t shmw_size(const struct shmw_segment *seg)
{
	return seg ? seg->size : 0;
}

const char *shmw_name(const struct shmw_segment *seg)
{
	return seg ? seg->name : NULL;
}

int shmw_is_owner(const struct shmw_segment *seg)
{
	return seg && seg->creator == getpid();
}
