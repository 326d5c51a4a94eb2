/* shm_holder.c — a process that holds a shared-memory object in one of the ways the
 * in-use index must see (tests/proc/test_holders.py), and says "ready" once it does.
 *
 *   shm_holder MODE PATH
 *     fd           holds PATH open (O_RDWR) in its one fd table
 *     map          maps PATH MAP_SHARED, then closes the fd
 *     map-ro       the same, read-only (O_RDONLY, PROT_READ)
 *     fd-ro        holds PATH open read-only
 *     thread-fd    a thread unshare(CLONE_FILES)s and holds PATH open in its own fd
 *                  table; the main thread's table never has it
 *     leader-exit  maps PATH, starts a thread, and the main thread exits: the process
 *                  lives on in the thread, and /proc/PID/maps of the dead leader is empty
 *     nondumpable  maps PATH, then prctl(PR_SET_DUMPABLE, 0): other processes of its
 *                  own uid can no longer read its /proc entries
 *     in-flight    opens PATH, sends the fd over SCM_RIGHTS on a socketpair and closes
 *                  it: the only reference is the message nobody has received
 *     uring        opens PATH, registers the fd with an io_uring (IORING_REGISTER_FILES)
 *                  and closes it: no fd and no mapping shows in /proc, the ring holds
 *                  the open file. Exits 3 with "unsupported: ..." on stderr when the
 *                  kernel refuses io_uring (not built in, kernel.io_uring_disabled)
 *   shm_holder trace PID
 *     ptrace-seizes PID and stops it (PTRACE_INTERRUPT), then holds it stopped
 *
 * PATH is a filesystem path (e.g. /dev/shm/NAME, or the same object through a bind mount).
 * "ready\n" goes to stdout once the object is held (from the thread that holds it, for
 * leader-exit); then the process waits until it is killed. Failures exit 1 with a line on
 * stderr, before "ready".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *holder_path;

static void holder_die(const char *what) __attribute__((noreturn));
static void holder_die(const char *what)
{
	fprintf(stderr, "shm_holder: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void holder_ready(void)
{
	if (write(STDOUT_FILENO, "ready\n", 6) != 6)
		holder_die("write");
}

static void holder_wait(void) __attribute__((noreturn));
static void holder_wait(void)
{
	for (;;)
		pause();
}

static void *holder_map(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		holder_die(path);
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		holder_die("mmap");
	close(fd);
	return p;
}

static void *holder_unshared_thread(void *arg)
{
	(void)arg;
	if (unshare(CLONE_FILES) < 0)
		holder_die("unshare(CLONE_FILES)");
	if (open(holder_path, O_RDWR | O_CLOEXEC) < 0)
		holder_die(holder_path);
	holder_ready();
	holder_wait();
	return NULL;
}

static void *holder_orphan_thread(void *arg)
{
	(void)arg;
	/* Ready only once the leader is gone: the test then sees what a reclaimer sees. */
	char stat[64], buf[512];
	snprintf(stat, sizeof(stat), "/proc/%d/stat", (int)getpid());
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(stat, "re");
		if (!f)
			holder_die(stat);
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		char *rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && rp[2] == 'Z')
			break;
		usleep(5000);
	}
	holder_ready();
	holder_wait();
	return NULL;
}

static void holder_in_flight(const char *path)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		holder_die("socketpair");
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		holder_die(path);
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	if (sendmsg(sv[0], &mh, 0) != 1)
		holder_die("sendmsg");
	close(fd);
}

static void holder_uring(const char *path)
{
	struct io_uring_params params;
	memset(&params, 0, sizeof(params));
	int ring = (int)syscall(__NR_io_uring_setup, 4, &params);
	if (ring < 0) {
		fprintf(stderr, "unsupported: io_uring_setup: %s\n", strerror(errno));
		exit(3);
	}
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		holder_die(path);
	if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_FILES, &fd, 1) < 0) {
		fprintf(stderr, "unsupported: IORING_REGISTER_FILES: %s\n", strerror(errno));
		exit(3);
	}
	close(fd);
}

static void holder_trace(const char *arg)
{
	pid_t pid = (pid_t)atoi(arg);
	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0)
		holder_die("PTRACE_SEIZE");
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0)
		holder_die("PTRACE_INTERRUPT");
	int st;
	if (waitpid(pid, &st, __WALL) < 0)
		holder_die("waitpid");
	holder_ready();
	holder_wait(); /* the tracee stays stopped until we die */
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr,
			"usage: shm_holder fd|fd-ro|map|map-ro|thread-fd|leader-exit|nondumpable|"
			"in-flight|uring PATH | shm_holder trace PID\n");
		return 2;
	}
	const char *mode = argv[1];
	holder_path = argv[2];
	pthread_t t;
	if (strcmp(mode, "fd") == 0) {
		if (open(holder_path, O_RDWR | O_CLOEXEC) < 0)
			holder_die(holder_path);
	} else if (strcmp(mode, "map") == 0) {
		holder_map(holder_path);
	} else if (strcmp(mode, "fd-ro") == 0) {
		if (open(holder_path, O_RDONLY | O_CLOEXEC) < 0)
			holder_die(holder_path);
	} else if (strcmp(mode, "map-ro") == 0) {
		int fd = open(holder_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			holder_die(holder_path);
		if (mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
			holder_die("mmap");
		close(fd);
	} else if (strcmp(mode, "thread-fd") == 0) {
		if (pthread_create(&t, NULL, holder_unshared_thread, NULL) != 0)
			holder_die("pthread_create");
		holder_wait();
	} else if (strcmp(mode, "leader-exit") == 0) {
		holder_map(holder_path);
		if (pthread_create(&t, NULL, holder_orphan_thread, NULL) != 0)
			holder_die("pthread_create");
		pthread_exit(NULL);
	} else if (strcmp(mode, "nondumpable") == 0) {
		holder_map(holder_path);
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			holder_die("prctl");
	} else if (strcmp(mode, "in-flight") == 0) {
		holder_in_flight(holder_path);
	} else if (strcmp(mode, "uring") == 0) {
		holder_uring(holder_path);
	} else if (strcmp(mode, "trace") == 0) {
		holder_trace(holder_path);
	} else {
		fprintf(stderr, "shm_holder: unknown mode %s\n", mode);
		return 2;
	}
	holder_ready();
	holder_wait();
}
