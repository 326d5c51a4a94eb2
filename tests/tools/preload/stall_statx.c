/* stall_statx.c — an LD_PRELOAD shim that holds a thread at its statx(2) of one name, so
 * that a test can change the world while a reclaimer is between two pages of a journal.
 * While the file named by STALL_STATX_GATE exists, a statx whose path is exactly
 * STALL_STATX_PATH first creates the file named by STALL_STATX_SEEN (the test's signal
 * that it is held), then waits until the gate is removed, then goes on. Every other call
 * goes straight through.
 *
 *   STALL_STATX_GATE=G STALL_STATX_SEEN=S STALL_STATX_PATH=name \
 *       LD_PRELOAD=build/tools/stall_statx.so shmwarden recover DIR
 *
 * tests/proc/test_livemgr.py holds `recover` at the object of its journal's second page
 * (reclaim.c stats /dev/shm names relative to the directory, without the slash), after
 * the first page opened a live manager's journal. Built without the sanitizers (the
 * Makefile), as fault_epoll_ctl.c is.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stall_gate.h"

int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out)
{
	static int (*real)(int, const char *, int, unsigned, struct statx *);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "statx");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	const char *want = getenv("STALL_STATX_PATH"), *gate = getenv("STALL_STATX_GATE");
	const char *seen = getenv("STALL_STATX_SEEN");
	if (want && gate && seen && strcmp(path, want) == 0)
		stall_gate_wait(gate, seen);
	return real(dirfd, path, flags, mask, out);
}
