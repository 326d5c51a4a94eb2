/* stall_lease.c — an LD_PRELOAD shim that holds a reclaimer just after the kernel granted
 * it a write lease, between the lease and its unlink: where a reclaimer stopped for
 * fs.lease-break-time (SIGSTOP, a frozen cgroup) would be when an opener breaks its lease.
 * While the file named by STALL_LEASE_GATE exists, an fcntl(F_SETLEASE, F_WRLCK) that
 * succeeded first creates the file named by STALL_LEASE_SEEN (the test's signal that the
 * lease is held), then waits until the gate is removed, then returns. Every other call
 * goes straight through.
 *
 *   STALL_LEASE_GATE=G STALL_LEASE_SEEN=S LD_PRELOAD=build/tools/stall_lease.so \
 *       shmwarden recover DIR
 *
 * tests/proc/test_lease.py opens the object (O_NONBLOCK: the open fails, and starts the
 * lease's break) while `recover` is held here. Built without the sanitizers (the
 * Makefile), as the other shims are.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>

#include "stall_gate.h"

typedef int fcntl_fn(int, int, ...);

static int stall_lease_fcntl(const char *sym, int fd, int cmd, long arg)
{
	fcntl_fn *real;
	*(void **)&real = dlsym(RTLD_NEXT, sym);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	int rc = real(fd, cmd, arg);
	const char *gate = getenv("STALL_LEASE_GATE"), *seen = getenv("STALL_LEASE_SEEN");
	if (rc == 0 && cmd == F_SETLEASE && arg == F_WRLCK && gate && seen)
		stall_gate_wait(gate, seen);
	return rc;
}

/* fcntl's third argument is an int or a pointer, as long as a long here (x86_64). */
int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	return stall_lease_fcntl("fcntl", fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	return stall_lease_fcntl("fcntl64", fd, cmd, arg);
}
