/* fault_epoll_ctl.c — an LD_PRELOAD shim that makes epoll_ctl(EPOLL_CTL_ADD) of a
 * listening socket (SO_ACCEPTCONN) fail with ENOSPC, as the kernel does when the user's
 * max_user_watches is used up; every other call goes through to the real epoll_ctl.
 * tests/proc/test_manager.py starts a manager under it: adding its listening socket to
 * the event loop, when it begins to serve, is then the one call that fails.
 *
 *   LD_PRELOAD=build/tools/fault_epoll_ctl.so shmwarden manager
 *
 * With FAULT_EPOLL_CTL_WHILE=PATH in the environment, the fault is on only while PATH
 * exists, so a test can let the manager start, then make its restore of a deleted
 * socket fail, then let the restore succeed (tests/proc/test_dirs.py).
 *
 * Built without the sanitizers (the Makefile), so the ASan build's binary can preload it
 * (with ASAN_OPTIONS=verify_asan_link_order=0).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	static int (*real)(int, int, int, struct epoll_event *);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "epoll_ctl");
	if (op == EPOLL_CTL_ADD) {
		int saved = errno, listening = 0;
		socklen_t len = sizeof(listening);
		const char *gate = getenv("FAULT_EPOLL_CTL_WHILE");
		if ((!gate || access(gate, F_OK) == 0) &&
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
			errno = ENOSPC;
			return -1;
		}
		errno = saved;
	}
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return real(epfd, op, fd, ev);
}
