/* inuse.c — the in-use index behind inuse.h: one pass over /proc, then O(1) lookups.
 *
 * For every process we may read, /proc/PID/maps yields the shm objects it maps and
 * /proc/PID/fd the ones it holds open. Their wire names ("/name") go into a small
 * open-addressing hash set. Errors are biased towards "in use": a name we saw in any
 * form that might be live is kept, because the cost of a false "in use" is one object
 * kept for a later pass, and the cost of a false "unused" is a broken receiver.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inuse.h"
#include "util.h"
#include "wire.h"

#define INUSE_SHM_PREFIX "/dev/shm"
#define INUSE_DELETED " (deleted)"
#define INUSE_INITIAL_CAP 1024        /* slots; a power of two */
#define INUSE_READ_CHUNK (256 * 1024) /* maps are read whole, in chunks this big */

struct inuse_slot {
	uint32_t hash;
	uint8_t len; /* 0: empty slot (a stored name is at least "/x") */
	char name[WIRE_NAME_FIELD];
};

struct inuse {
	struct inuse_slot *slots;
	size_t cap; /* power of two, kept at most half full */
	size_t count;
};

/* One scan's scratch space: the maps buffer is reused for every process. */
struct inuse_scan_ctx {
	struct inuse *idx;
	char *buf;
	size_t bufcap;
	int procfd;
};

static uint32_t inuse_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static struct inuse_slot *inuse_find(const struct inuse *idx, const char *name, size_t len,
				     uint32_t hash)
{
	size_t mask = idx->cap - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct inuse_slot *s = &idx->slots[i];
		if (s->len == 0)
			return s;
		if (s->hash == hash && s->len == len && memcmp(s->name, name, len) == 0)
			return s;
	}
}

static int inuse_grow(struct inuse *idx)
{
	size_t ncap = idx->cap * 2;
	struct inuse_slot *nslots = calloc(ncap, sizeof(*nslots));
	if (!nslots)
		return -1;
	struct inuse old = *idx;
	idx->slots = nslots;
	idx->cap = ncap;
	for (size_t i = 0; i < old.cap; i++) {
		struct inuse_slot *s = &old.slots[i];
		if (s->len)
			*inuse_find(idx, s->name, s->len, s->hash) = *s;
	}
	free(old.slots);
	return 0;
}

/* Adds a wire name; names that can never be valid journal entries are not stored. */
static int inuse_add(struct inuse *idx, const char *name, size_t len)
{
	if (wire_name_check(name, len))
		return 0;
	if ((idx->count + 1) * 2 > idx->cap && inuse_grow(idx) < 0)
		return -1;
	uint32_t h = inuse_hash(name, len);
	struct inuse_slot *s = inuse_find(idx, name, len, h);
	if (s->len)
		return 0;
	s->hash = h;
	s->len = (uint8_t)len;
	memcpy(s->name, name, len);
	s->name[len] = '\0';
	idx->count++;
	return 0;
}

static bool inuse_ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Records a path as the kernel printed it (maps) or returned it (readlink). A path
 * ending " (deleted)" names an unlinked object, but an object may also be *called*
 * "x (deleted)": the literal form is recorded too, which can only keep more. In maps
 * the kernel escapes '\n' as "\012", so that form is recorded decoded as well. */
static int inuse_add_path(struct inuse *idx, const char *path, size_t len, bool escaped)
{
	size_t plen = strlen(INUSE_SHM_PREFIX);
	if (len <= plen + 1 || memcmp(path, INUSE_SHM_PREFIX "/", plen + 1) != 0)
		return 0;
	const char *name = path + plen; /* keeps the '/' */
	size_t nlen = len - plen;
	if (inuse_add(idx, name, nlen) < 0)
		return -1;
	if (inuse_ends_with(name, nlen, INUSE_DELETED))
		return 0; /* the live object of that name, if any, is someone else's matter */
	if (escaped && memmem(name, nlen, "\\012", 4)) {
		char dec[WIRE_NAME_FIELD * 4];
		size_t o = 0;
		for (size_t i = 0; i < nlen && o < sizeof(dec); i++) {
			if (i + 4 <= nlen && memcmp(name + i, "\\012", 4) == 0) {
				dec[o++] = '\n';
				i += 3;
			} else {
				dec[o++] = name[i];
			}
		}
		if (inuse_add(idx, dec, o) < 0)
			return -1;
	}
	return 0;
}

/* Reads a whole /proc file into ctx->buf (NUL-terminated); returns its length or -1. */
static ssize_t inuse_read_all(struct inuse_scan_ctx *ctx, int fd)
{
	size_t len = 0;
	for (;;) {
		if (ctx->bufcap - len < INUSE_READ_CHUNK + 1) {
			size_t ncap = ctx->bufcap ? ctx->bufcap * 2 : 4 * INUSE_READ_CHUNK;
			char *nbuf = realloc(ctx->buf, ncap);
			if (!nbuf)
				return -1;
			ctx->buf = nbuf;
			ctx->bufcap = ncap;
		}
		ssize_t n = read(fd, ctx->buf + len, ctx->bufcap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	ctx->buf[len] = '\0';
	return (ssize_t)len;
}

/* The path column of a maps line starts after five fields and their padding. */
static const char *inuse_maps_path(const char *line, const char *end)
{
	const char *p = line;
	for (int field = 0; field < 5; field++) {
		while (p < end && *p != ' ')
			p++;
		while (p < end && *p == ' ')
			p++;
	}
	return p;
}

/* Only lines mentioning /dev/shm/ are looked at: memmem skips the rest at memory
 * speed, which matters for processes with tens of thousands of mappings. */
static int inuse_scan_maps(struct inuse_scan_ctx *ctx, const char *pid)
{
	char path[sizeof(((struct dirent *)0)->d_name) + 8];
	snprintf(path, sizeof(path), "%s/maps", pid);
	int fd = openat(ctx->procfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* gone, or not ours to read */
	ssize_t n = inuse_read_all(ctx, fd);
	int saved = errno;
	close(fd);
	if (n < 0)
		return saved == ENOMEM ? -1 : 0;
	const char *buf = ctx->buf, *end = buf + n;
	static const char needle[] = INUSE_SHM_PREFIX "/";
	const char *hit = buf;
	while ((hit = memmem(hit, (size_t)(end - hit), needle, sizeof(needle) - 1))) {
		const char *line = hit;
		while (line > buf && line[-1] != '\n')
			line--;
		const char *eol = memchr(hit, '\n', (size_t)(end - hit));
		if (!eol)
			eol = end;
		if (inuse_maps_path(line, eol) == hit &&
		    inuse_add_path(ctx->idx, hit, (size_t)(eol - hit), true) < 0)
			return -1;
		hit = eol;
	}
	return 0;
}

static int inuse_scan_fds(struct inuse_scan_ctx *ctx, const char *pid)
{
	char path[sizeof(((struct dirent *)0)->d_name) + 8];
	snprintf(path, sizeof(path), "%s/fd", pid);
	int fd = openat(ctx->procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return errno == ENOMEM ? -1 : 0;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char target[256];
		ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target));
		if (n <= 0 || (size_t)n >= sizeof(target))
			continue; /* closed meanwhile, or too long to be a valid name */
		if (inuse_add_path(ctx->idx, target, (size_t)n, false) < 0) {
			rc = -1;
			break;
		}
	}
	closedir(d);
	return rc;
}

static bool inuse_is_pid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

struct inuse *inuse_scan(const char *procdir, char *err, size_t errlen)
{
	struct inuse_scan_ctx ctx = { .procfd = -1 };
	struct inuse *idx = calloc(1, sizeof(*idx));
	DIR *d = NULL;
	if (!idx)
		goto nomem;
	idx->cap = INUSE_INITIAL_CAP;
	idx->slots = calloc(idx->cap, sizeof(*idx->slots));
	if (!idx->slots)
		goto nomem;
	ctx.idx = idx;
	ctx.procfd = open(procdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx.procfd < 0) {
		util_err(err, errlen, "open %s: %s", procdir, strerror(errno));
		goto fail;
	}
	int lfd = openat(ctx.procfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0 || !(d = fdopendir(lfd))) {
		util_err(err, errlen, "read %s: %s", procdir, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		goto fail;
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!inuse_is_pid(de->d_name))
			continue;
		if (inuse_scan_maps(&ctx, de->d_name) < 0 || inuse_scan_fds(&ctx, de->d_name) < 0)
			goto nomem;
		errno = 0;
	}
	if (errno) {
		util_err(err, errlen, "read %s: %s", procdir, strerror(errno));
		goto fail;
	}
	closedir(d);
	close(ctx.procfd);
	free(ctx.buf);
	return idx;
nomem:
	util_err(err, errlen, "scanning %s: out of memory", procdir);
fail:
	if (d)
		closedir(d);
	if (ctx.procfd >= 0)
		close(ctx.procfd);
	free(ctx.buf);
	inuse_free(idx);
	return NULL;
}

bool inuse_contains(const struct inuse *idx, const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > WIRE_NAME_MAX)
		return false;
	return inuse_find(idx, name, len, inuse_hash(name, len))->len != 0;
}

size_t inuse_count(const struct inuse *idx)
{
	return idx->count;
}

void inuse_free(struct inuse *idx)
{
	if (!idx)
		return;
	free(idx->slots);
	free(idx);
}
