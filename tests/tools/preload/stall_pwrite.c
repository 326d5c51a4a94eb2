/* stall_pwrite.c — an LD_PRELOAD shim that holds a thread at the pwrite(2) that would put
 * a given name into a journal's WAL, so that a test can look at the world at exactly
 * that moment. While the file named by STALL_PWRITE_GATE exists, a pwrite or pwrite64 of
 * bytes containing STALL_PWRITE_NEEDLE to a file whose name (as /proc/self/fd gives it)
 * ends in "-wal", and is still linked (not " (deleted)"), first creates the file named by
 * STALL_PWRITE_SEEN (the test's signal that it is held), then waits until the gate is
 * removed, then writes. Every other call goes straight through.
 *
 *   STALL_PWRITE_GATE=G STALL_PWRITE_SEEN=S STALL_PWRITE_NEEDLE=/name \
 *       LD_PRELOAD=build/tools/stall_pwrite.so shmwarden manager
 *
 * tests/proc/test_livemgr.py removes a stopped manager's journal files, sets the gate
 * and lets it run: its restore of the journal is held at the write of the row the test
 * cares about (a manager's own writes to its old, unlinked WAL are not held). Built
 * without the sanitizers (the Makefile), as fault_epoll_ctl.c is.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "stall_gate.h"

static void stall_maybe(int fd, const void *buf, size_t count)
{
	static const char wal[] = "-wal", deleted[] = " (deleted)";
	const char *gate = getenv("STALL_PWRITE_GATE"), *seen = getenv("STALL_PWRITE_SEEN");
	const char *needle = getenv("STALL_PWRITE_NEEDLE");
	if (!gate || !seen || !needle || !*needle || !buf ||
	    !memmem(buf, count, needle, strlen(needle)))
		return;
	int saved = errno;
	char path[64], link[4096];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		size_t len = (size_t)n;
		bool linked = len < sizeof(deleted) - 1 ||
			      strcmp(link + len - (sizeof(deleted) - 1), deleted) != 0;
		bool is_wal = len >= sizeof(wal) - 1 &&
			      strcmp(link + len - (sizeof(wal) - 1), wal) == 0;
		if (linked && is_wal)
			stall_gate_wait(gate, seen);
	}
	errno = saved;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pwrite");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	stall_maybe(fd, buf, count);
	return real(fd, buf, count, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off64_t);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pwrite64");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	stall_maybe(fd, buf, count);
	return real(fd, buf, count, off);
}
