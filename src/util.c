/* util.c — see util.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

void util_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
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

const char *util_tmpbase(void)
{
	static const char *const vars[] = { "TMPDIR", "TMP", "TEMP", "TEMPDIR" };
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return v;
	}
	return "/tmp";
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
