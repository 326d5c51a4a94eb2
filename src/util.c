/* util.c — see util.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

void util_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= errlen)
		util_utf8_cut(err);
}

void util_utf8_cut(char *s)
{
	size_t k = strlen(s), cont = 0;
	while (k > 0 && cont < 3 && ((unsigned char)s[k - 1] & 0xc0) == 0x80) {
		k--;
		cont++;
	}
	unsigned char lead = k > 0 ? (unsigned char)s[k - 1] : 0;
	size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	if (lead >= 0xc0 && want > cont + 1)
		s[k - 1] = '\0';
}

size_t util_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);
	if (size) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

int64_t util_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_wall_s(void)
{
	return (int64_t)time(NULL);
}

int64_t util_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *util_unix_ns_str(int64_t ns, char *buf, size_t len)
{
	/* The magnitude unsigned: -INT64_MIN does not fit an int64_t. */
	uint64_t mag = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;
	snprintf(buf, len, "%s%" PRIu64 ".%09" PRIu64, ns < 0 ? "-" : "", mag / 1000000000,
		 mag % 1000000000);
	return buf;
}

int util_boot_id(char *out, size_t outlen, char *err, size_t errlen)
{
	static const char path[] = "/proc/sys/kernel/random/boot_id";
	if (outlen < UTIL_BOOT_ID_LEN + 1) {
		util_err(err, errlen, "boot id buffer too small");
		return -1;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		util_err(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, out, UTIL_BOOT_ID_LEN);
	int saved = errno;
	close(fd);
	if (n != UTIL_BOOT_ID_LEN) {
		util_err(err, errlen, "read %s: %s", path, n < 0 ? strerror(saved) : "short read");
		return -1;
	}
	out[UTIL_BOOT_ID_LEN] = '\0';
	return 0;
}

static const char *const util_tmpbase_vars[] = { "TMPDIR", "TMP", "TEMP", "TEMPDIR" };

const char *util_tmpbase_var(void)
{
	for (size_t i = 0; i < sizeof(util_tmpbase_vars) / sizeof(util_tmpbase_vars[0]); i++) {
		const char *v = getenv(util_tmpbase_vars[i]);
		if (v && *v)
			return util_tmpbase_vars[i];
	}
	return NULL;
}

const char *util_tmpbase(void)
{
	const char *var = util_tmpbase_var();
	return var ? getenv(var) : "/tmp";
}

const char *util_human_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

int util_path_trusted(const char *path, uid_t uid, char *err, size_t errlen)
{
	char prefix[PATH_MAX];
	size_t len = strlen(path);
	if (path[0] != '/' || len >= sizeof(prefix)) {
		util_err(err, errlen, "%s: not an absolute path", path);
		errno = EINVAL;
		return -1;
	}
	for (size_t end = 1; end <= len; end++) {
		if (end < len && path[end] != '/')
			continue;
		memcpy(prefix, path, end);
		prefix[end] = '\0';
		struct stat st;
		if (lstat(prefix, &st) < 0) {
			int saved = errno;
			util_err(err, errlen, "%s: %s", prefix, strerror(saved));
			errno = saved;
			return -1;
		}
		const char *why = NULL;
		if (S_ISLNK(st.st_mode))
			why = "is a symlink";
		else if (!S_ISDIR(st.st_mode))
			why = "is not a directory";
		else if (st.st_uid != 0 && st.st_uid != uid)
			why = "belongs to another user";
		else if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))
			why = "is writable by group or others";
		if (why) {
			util_err(err, errlen,
				 "%s %s (uid %u, mode %04o): it could be replaced "
				 "under the journal",
				 prefix, why, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
			errno = EPERM;
			return -1;
		}
	}
	return 0;
}

int util_raise_nofile(unsigned long long *was)
{
	struct rlimit rl;
	*was = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	*was = (unsigned long long)rl.rlim_cur;
	if (rl.rlim_cur >= rl.rlim_max)
		return 0;
	rlim_t old = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return 0;
	/* An infinite hard limit is refused above fs.nr_open: take that. */
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	unsigned long nr_open = 0;
	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	rl.rlim_cur = (rlim_t)nr_open;
	if (nr_open <= old || rl.rlim_cur > rl.rlim_max || setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	return 0;
}
