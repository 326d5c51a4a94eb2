/* userns.c — the user namespace facts a manager journals (see userns.h).
 * A uid_map is parsed strictly: one malformed line and the whole map proves nothing. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "userns.h"

bool userns_is_initial(uint64_t ns)
{
	return ns == USERNS_INIT_INO;
}

/* One decimal field of a map line: digits only, below 2^32 (count may be 2^32 - 1 +
 * 1 = the whole range, which the kernel writes as 4294967295). */
static bool userns_field(const char **s, uint64_t *out)
{
	const char *p = *s;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!isdigit((unsigned char)*p))
		return false;
	uint64_t v = 0;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*s = p;
	*out = v;
	return true;
}

uid_t userns_map_outside(const char *map, uid_t uid)
{
	uid_t found = (uid_t)-1;
	const char *s = map;
	bool any = false;
	while (*s) {
		uint64_t in, out, count;
		if (!userns_field(&s, &in) || !userns_field(&s, &out) || !userns_field(&s, &count))
			return (uid_t)-1;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s != '\n' && *s != '\0')
			return (uid_t)-1;
		if (*s == '\n')
			s++;
		if (count == 0 || in + count > (uint64_t)UINT32_MAX + 1 ||
		    out + count > (uint64_t)UINT32_MAX + 1)
			return (uid_t)-1;
		any = true;
		if ((uint64_t)uid >= in && (uint64_t)uid < in + count) {
			uint64_t o = out + ((uint64_t)uid - in);
			/* (uid_t)-1 is no uid (setfsuid's "no change"): never an answer. */
			if (o >= UINT32_MAX)
				return (uid_t)-1;
			found = (uid_t)o;
		}
	}
	return any ? found : (uid_t)-1;
}

void userns_self(uid_t uid, struct userns_self *out)
{
	struct stat st;
	out->ns = stat("/proc/self/ns/user", &st) == 0 ? (uint64_t)st.st_ino : 0;
	out->parent_uid = (uid_t)-1;
	/* The kernel allows at most 340 lines of ~33 bytes (user_namespaces(7)). */
	char map[16384];
	int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(map) - 1 && (r = read(fd, map + n, sizeof(map) - 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return;
		}
		n += (size_t)r;
	}
	close(fd);
	if (n >= sizeof(map) - 1)
		return; /* longer than any map the kernel writes: not one */
	map[n] = '\0';
	out->parent_uid = userns_map_outside(map, uid);
}
