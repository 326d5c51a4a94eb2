/* fuzz_inuse.c — libFuzzer harness for the in-use index's /proc parsers.
 *
 * The sweeper, as root, parses every task's /proc/PID/maps and stats every fd: the
 * paths and contents of both are chosen by whoever names the files a task maps or opens.
 * The input becomes the maps file of one fake process (every "SHMDEV" in it becomes the
 * fake shm filesystem's "MAJ:MIN", as the kernel prints it); after the marker
 * FUZZ_FD_MARK, each line becomes one fd symlink: "@k" links to the fake object fk,
 * anything else is the link's target as is. inuse_scan must never crash or over-read,
 * must hold every object a fd leads to, and every inode a well-formed maps line names on
 * the shm device (restated here with a separate, strict tokenizer), and nothing more
 * than the input can account for.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fuzz.h"
#include "inuse.h"

const char fuzz_harness_name[] = "fuzz_inuse";

#define FUZZ_FD_MARK "SHMWFDS!"
#define FUZZ_DEV_TOKEN "SHMDEV"
#define MAX_FDS 32
#define NOBJS 8
#define MAPS_MAX 65536

/* Splits a maps line into fields at runs of spaces; true when it has at least five,
 * starts with no space, field 3 is dev and field 4 a decimal number that fits (*ino). */
static bool strict_maps_line(const char *line, size_t len, const char *dev, unsigned long long *ino)
{
	const char *f[5];
	size_t flen[5];
	size_t i = 0;
	int n = 0;
	if (len == 0 || line[0] == ' ')
		return false;
	while (i < len && n < 5) {
		f[n] = line + i;
		while (i < len && line[i] != ' ')
			i++;
		flen[n] = (size_t)(line + i - f[n]);
		n++;
		while (i < len && line[i] == ' ')
			i++;
	}
	if (n < 5 || flen[3] != strlen(dev) || memcmp(f[3], dev, flen[3]) != 0 || flen[4] == 0 ||
	    flen[4] > 20)
		return false;
	unsigned long long v = 0;
	for (size_t k = 0; k < flen[4]; k++) {
		if (f[4][k] < '0' || f[4][k] > '9')
			return false;
		unsigned d = (unsigned)(f[4][k] - '0');
		if (v > (~0ull - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*ino = v;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *proc, *shm;
	static char pid[4200], fd[4200], devstr[32];
	static struct stat objst[NOBJS];
	static dev_t shm_dev;
	if (!proc) {
		proc = fuzz_private_dir("proc");
		shm = fuzz_private_dir("shm");
		FUZZ_CHECK(proc != NULL && shm != NULL);
		snprintf(pid, sizeof(pid), "%s/1", proc);
		snprintf(fd, sizeof(fd), "%s/1/fd", proc);
		FUZZ_CHECK(mkdir(pid, 0700) == 0 || errno == EEXIST);
		FUZZ_CHECK(mkdir(fd, 0700) == 0 || errno == EEXIST);
		for (int i = 0; i < NOBJS; i++) {
			char n[16], path[4200];
			snprintf(n, sizeof(n), "f%d", i);
			FUZZ_CHECK(fuzz_write_file(shm, n, "x", 1) == 0);
			snprintf(path, sizeof(path), "%s/%s", shm, n);
			FUZZ_CHECK(stat(path, &objst[i]) == 0);
		}
		shm_dev = objst[0].st_dev;
		snprintf(devstr, sizeof(devstr), "%02x:%02x", major(shm_dev), minor(shm_dev));
	}
	const uint8_t *mark = memmem(data, size, FUZZ_FD_MARK, strlen(FUZZ_FD_MARK));
	size_t inlen = mark ? (size_t)(mark - data) : size;
	if (inlen > MAPS_MAX / 2)
		inlen = MAPS_MAX / 2;

	/* The maps file, SHMDEV replaced (at most as long again: devstr is < 2x the token). */
	static char maps[MAPS_MAX];
	size_t mapslen = 0;
	for (size_t i = 0; i < inlen;) {
		size_t tl = strlen(FUZZ_DEV_TOKEN);
		if (i + tl <= inlen && memcmp(data + i, FUZZ_DEV_TOKEN, tl) == 0) {
			memcpy(maps + mapslen, devstr, strlen(devstr));
			mapslen += strlen(devstr);
			i += tl;
		} else {
			maps[mapslen++] = (char)data[i++];
		}
	}
	FUZZ_CHECK(fuzz_write_file(pid, "maps", maps, mapslen) == 0);

	/* fd symlinks: one per line after the marker (a target cannot hold a NUL). */
	int nfd = 0, held[MAX_FDS];
	if (mark) {
		const uint8_t *p = mark + strlen(FUZZ_FD_MARK), *end = data + size;
		while (p < end && nfd < MAX_FDS) {
			const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
			if (!eol)
				eol = end;
			size_t len = (size_t)(eol - p);
			char target[4300];
			held[nfd] = -1;
			if (len == 2 && p[0] == '@') {
				held[nfd] = p[1] % NOBJS;
				snprintf(target, sizeof(target), "%s/f%d", shm, held[nfd]);
			} else if (len > 0 && len < 256 && !memchr(p, '\0', len)) {
				memcpy(target, p, len);
				target[len] = '\0';
			} else {
				p = eol + 1;
				continue;
			}
			char link[4300];
			snprintf(link, sizeof(link), "%s/%d", fd, nfd);
			FUZZ_CHECK(symlink(target, link) == 0);
			nfd++;
			p = eol + 1;
		}
	}

	char err[512];
	struct inuse *idx = inuse_scan(proc, shm_dev, err, sizeof(err));
	FUZZ_CHECK(idx != NULL);
	/* Each entry is a maps line (at least "a SHMDEV 1" long) or a fd. */
	FUZZ_CHECK(inuse_count(idx) <= mapslen / 9 + 1 + (size_t)nfd);
	/* A fake /proc we own is always readable: nothing is blind. */
	FUZZ_CHECK(inuse_blind_count(idx) == 0);
	for (int i = 0; i < nfd; i++)
		if (held[i] >= 0)
			FUZZ_CHECK(inuse_holds(idx, shm_dev, objst[held[i]].st_ino));
	for (size_t i = 0; i < mapslen;) {
		const char *eol = memchr(maps + i, '\n', mapslen - i);
		size_t len = eol ? (size_t)(eol - (maps + i)) : mapslen - i;
		unsigned long long ino;
		if (strict_maps_line(maps + i, len, devstr, &ino))
			FUZZ_CHECK(inuse_holds(idx, shm_dev, (ino_t)ino));
		i += len + 1;
	}
	inuse_free(idx);

	for (int i = 0; i < nfd; i++) {
		char link[4300];
		snprintf(link, sizeof(link), "%s/%d", fd, i);
		FUZZ_CHECK(unlink(link) == 0);
	}
	return 0;
}
