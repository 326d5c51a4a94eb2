/* stall_gate.h — the hold shared by the stall_*.c LD_PRELOAD shims. Each shim decides
 * which call to hold; this is how it holds it: while the file gate exists, it creates the
 * file seen (the test's signal that the call is held), then polls every millisecond until
 * the test removes gate. errno is kept, so the held call sees the caller's. */
#ifndef STALL_GATE_H
#define STALL_GATE_H

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

static inline void stall_gate_wait(const char *gate, const char *seen)
{
	int saved = errno;
	if (access(gate, F_OK) == 0) {
		int fd = open(seen, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		struct timespec ms = { 0, 1000000 };
		while (access(gate, F_OK) == 0)
			nanosleep(&ms, NULL);
	}
	errno = saved;
}

#endif
