/* fuzz_util.c — the private scratch directory and file helpers of the fuzz harnesses
 * (see fuzz.h). One directory per process under $TMPDIR, subdirectories per tag,
 * all removed at exit, so a fuzzing run leaves nothing behind unless it crashes. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static char fuzz_root[PATH_MAX];

static int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void fuzz_cleanup(void)
{
	if (fuzz_root[0])
		nftw(fuzz_root, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_private_dir(const char *tag)
{
	static char dirs[8][PATH_MAX];
	static char tags[8][32];
	if (!fuzz_root[0]) {
		const char *base = getenv("TMPDIR");
		char tmpl[PATH_MAX];
		snprintf(tmpl, sizeof(tmpl), "%s/shmw-fuzz-XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(tmpl))
			return NULL;
		/* SQLite refuses a path with a symlink anywhere in it; TMPDIR may have one. */
		if (!realpath(tmpl, fuzz_root)) {
			rmdir(tmpl);
			return NULL;
		}
		atexit(fuzz_cleanup);
	}
	for (int i = 0; i < 8; i++) {
		if (tags[i][0] && strcmp(tags[i], tag) == 0)
			return dirs[i];
		if (tags[i][0])
			continue;
		int n = snprintf(dirs[i], sizeof(dirs[i]), "%s/%s", fuzz_root, tag);
		if (n < 0 || (size_t)n >= sizeof(dirs[i]))
			return NULL;
		if (mkdir(dirs[i], 0700) < 0 && errno != EEXIST)
			return NULL;
		snprintf(tags[i], sizeof(tags[i]), "%s", tag);
		return dirs[i];
	}
	return NULL;
}

int fuzz_write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return close(fd);
}
