/* stall_thread.c — an LD_PRELOAD shim that makes a process's threads late and slow, so
 * that a test can reproduce a helper thread that a measurement's start missed.
 * pthread_create first sleeps STALL_THREAD_DELAY_MS milliseconds (0 when unset), then
 * creates the thread; the new thread, before its own start routine, holds at the gate
 * of stall_gate.h (STALL_THREAD_GATE, STALL_THREAD_SEEN) when both are set. Every other
 * call goes straight through.
 *
 *   STALL_THREAD_DELAY_MS=200 STALL_THREAD_GATE=G STALL_THREAD_SEEN=S \
 *       LD_PRELOAD=build/tools/stall_thread.so bench_loadgen run ...
 *
 * tests/proc/test_bench.py starts a manager whose start-up reclaim thread is born after
 * its socket line and ends inside the loadgen's measured window, as happened under the
 * sanitizers on a loaded host. Built without the sanitizers (the Makefile), as the
 * other shims are.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "stall_gate.h"

struct stall_start {
	void *(*fn)(void *);
	void *arg;
};

static void *stall_thread_start(void *p)
{
	struct stall_start s = *(struct stall_start *)p;
	free(p);
	const char *gate = getenv("STALL_THREAD_GATE"), *seen = getenv("STALL_THREAD_SEEN");
	if (gate && seen)
		stall_gate_wait(gate, seen);
	return s.fn(s.arg);
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
	if (!real)
		return ENOSYS;
	const char *delay = getenv("STALL_THREAD_DELAY_MS");
	long ms = delay ? strtol(delay, NULL, 10) : 0;
	if (ms > 0) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	struct stall_start *s = malloc(sizeof(*s));
	if (!s)
		return EAGAIN;
	s->fn = fn;
	s->arg = arg;
	int rc = real(thread, attr, stall_thread_start, s);
	if (rc != 0)
		free(s);
	return rc;
}
