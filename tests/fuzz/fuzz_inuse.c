/* fuzz_inuse.c — libFuzzer harness for the in-use index's /proc parsers.
 *
 * The sweeper, as root, parses every process's /proc/PID/maps and readlinks of
 * /proc/PID/fd: paths in both are chosen by whoever names the files a process maps
 * or opens. The input becomes the maps file of one fake process; after the marker
 * FUZZ_FD_MARK, each line becomes the target of one fd symlink. inuse_scan must never
 * crash or over-read, must hold only valid names, and must know every fd target of the
 * form /dev/shm/NAME whose NAME is valid (an object held open is in use).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "inuse.h"
#include "wire.h"

const char fuzz_harness_name[] = "fuzz_inuse";

#define FUZZ_FD_MARK "SHMWFDS!"
#define MAX_FDS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *proc;
	static char pid[4200], fd[4200];
	if (!proc) {
		proc = fuzz_private_dir("proc");
		FUZZ_CHECK(proc != NULL);
		snprintf(pid, sizeof(pid), "%s/1", proc);
		snprintf(fd, sizeof(fd), "%s/1/fd", proc);
		FUZZ_CHECK(mkdir(pid, 0700) == 0 || errno == EEXIST);
		FUZZ_CHECK(mkdir(fd, 0700) == 0 || errno == EEXIST);
	}
	const uint8_t *mark = memmem(data, size, FUZZ_FD_MARK, strlen(FUZZ_FD_MARK));
	size_t mapslen = mark ? (size_t)(mark - data) : size;
	FUZZ_CHECK(fuzz_write_file(pid, "maps", data, mapslen) == 0);

	/* fd symlinks: one per line after the marker (a target cannot hold a NUL). */
	char targets[MAX_FDS][256];
	int nfd = 0;
	if (mark) {
		const uint8_t *p = mark + strlen(FUZZ_FD_MARK), *end = data + size;
		while (p < end && nfd < MAX_FDS) {
			const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
			if (!eol)
				eol = end;
			size_t len = (size_t)(eol - p);
			if (len > 0 && len < sizeof(targets[0]) && !memchr(p, '\0', len)) {
				memcpy(targets[nfd], p, len);
				targets[nfd][len] = '\0';
				char link[4300];
				snprintf(link, sizeof(link), "%s/%d", fd, nfd);
				FUZZ_CHECK(symlink(targets[nfd], link) == 0);
				nfd++;
			}
			p = eol + 1;
		}
	}

	char err[512];
	struct inuse *idx = inuse_scan(proc, err, sizeof(err));
	FUZZ_CHECK(idx != NULL);
	FUZZ_CHECK(inuse_count(idx) <= 2 * (size_t)(mapslen / 9 + 1) + (size_t)nfd);
	for (int i = 0; i < nfd; i++) {
		static const char pre[] = "/dev/shm/";
		const char *t = targets[i];
		if (strncmp(t, pre, strlen(pre)) == 0) {
			const char *name = t + strlen(pre) - 1;
			if (!wire_name_check(name, strlen(name)))
				FUZZ_CHECK(inuse_contains(idx, name));
		}
	}
	/* Names that can never be valid are never in the index. */
	FUZZ_CHECK(!inuse_contains(idx, "/"));
	FUZZ_CHECK(!inuse_contains(idx, "/.."));
	FUZZ_CHECK(!inuse_contains(idx, ""));
	inuse_free(idx);

	for (int i = 0; i < nfd; i++) {
		char link[4300];
		snprintf(link, sizeof(link), "%s/%d", fd, i);
		FUZZ_CHECK(unlink(link) == 0);
	}
	return 0;
}
