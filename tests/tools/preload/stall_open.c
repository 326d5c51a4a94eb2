/* stall_open.c — an LD_PRELOAD shim that holds a thread at its open(2) of a journal, so
 * that a test can change the world at exactly that moment. A thread other than the
 * process's main thread that opens a path ending in "/journal.db" while the file named
 * by STALL_OPEN_GATE exists first creates the file named by STALL_OPEN_SEEN (the test's
 * signal that it is held), then waits until the gate is removed, then opens. Every other
 * call goes straight through.
 *
 *   STALL_OPEN_GATE=G STALL_OPEN_SEEN=S LD_PRELOAD=build/tools/stall_open.so shmwarden ...
 *
 * tests/proc/test_dirs.py holds a manager's start-up reclaim thread at the open of its
 * own journal and renames the manager's directory meanwhile. Built without the
 * sanitizers (the Makefile), as fault_epoll_ctl.c is.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stall_gate.h"

static void stall_maybe(const char *path)
{
	static const char suffix[] = "/journal.db";
	const char *gate = getenv("STALL_OPEN_GATE"), *seen = getenv("STALL_OPEN_SEEN");
	size_t n = path ? strlen(path) : 0;
	if (!gate || !seen || gettid() == getpid() || n < sizeof(suffix) - 1 ||
	    strcmp(path + n - (sizeof(suffix) - 1), suffix) != 0)
		return;
	stall_gate_wait(gate, seen);
}

static int stall_open(const char *sym, const char *path, int flags, mode_t mode)
{
	int (*real)(const char *, int, ...);
	*(void **)&real = dlsym(RTLD_NEXT, sym);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	stall_maybe(path);
	return real(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return stall_open("open", path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return stall_open("open64", path, flags, mode);
}
