/* client_spawn.c — starting a manager the way libshm does: pipe, fork, dup2 the pipe onto
 * stdout, execl(path, "torch_shm_manager", NULL), read the first line (the socket path).
 *
 * Guarantees: the caller is left with no child to reap and no descriptor of the spawn;
 * every outcome is reported (exec failure, silence, "ERROR: ...", garbage, a 10 s hang)
 * and none blocks forever.
 *
 * Why a double fork. libshm forks once and never waits, so every manager it starts becomes
 * a zombie of the client when it exits, and a client's SIGCHLD handler or waitpid(-1) sees
 * a child it never made. Here an intermediate child forks the manager and exits at once;
 * we reap that intermediate before returning, and the manager is reparented to init (or
 * the nearest subreaper), which reaps it. The manager calls setsid() itself. The cost is
 * that we do not learn the manager's pid here; shmw_manager_pid() asks the socket.
 *
 * Exec errors travel back on a close-on-exec pipe (a successful exec closes it), so "no
 * response" can say why: libshm can only report empty output.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

/* Where `make install` puts the manager; the Makefile passes the real PREFIX. */
#ifndef SHMWARDEN_MANAGER_DEFAULT
#define SHMWARDEN_MANAGER_DEFAULT "/usr/local/bin/torch_shm_manager"
#endif

/* What the child reports on the error pipe when it cannot get as far as exec. */
enum { SPAWN_DUP2 = 1, SPAWN_FORK, SPAWN_EXEC };
struct spawn_failure {
	int stage;
	int err;
};

const char *client_manager_path(const char *path)
{
	if (path && *path)
		return path;
	/* secure_getenv: in a set-user-ID program the environment must not choose what we
	 * exec. */
	const char *env = secure_getenv(SHMW_MANAGER_ENV);
	if (env && *env)
		return env;
	return SHMWARDEN_MANAGER_DEFAULT;
}

static int64_t spawn_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spawn_report(int fd, int stage, int err)
{
	struct spawn_failure f = { stage, err };
	ssize_t n = write(fd, &f, sizeof(f));
	(void)n;
}

/* The intermediate child, then the manager. Only async-signal-safe calls from here on:
 * the parent may have had other threads, whose locks we inherited held. */
__attribute__((noreturn)) static void spawn_child(const char *path, const int out[2],
						  const int errp[2])
{
	close(out[0]);
	close(errp[0]);
	if (out[1] == STDOUT_FILENO) {
		/* The caller had closed stdout, so the pipe took fd 1: dup2 would be a no-op
		 * and leave it close-on-exec. */
		if (fcntl(STDOUT_FILENO, F_SETFD, 0) < 0) {
			spawn_report(errp[1], SPAWN_DUP2, errno);
			_exit(127);
		}
	} else {
		if (dup2(out[1], STDOUT_FILENO) < 0) {
			spawn_report(errp[1], SPAWN_DUP2, errno);
			_exit(127);
		}
		close(out[1]);
	}
	pid_t pid = client_fork_for_spawn();
	if (pid < 0)
		spawn_report(errp[1], SPAWN_FORK, errno);
	if (pid != 0)
		_exit(pid < 0 ? 127 : 0);
	execl(path, "torch_shm_manager", (char *)NULL);
	spawn_report(errp[1], SPAWN_EXEC, errno);
	_exit(127);
}

/* Reads from fd until a newline, EOF, a full buffer or the deadline. Returns the byte
 * count (line NUL-terminated, newline removed), or -ETIMEDOUT / a negative errno. */
static ssize_t spawn_read_line(int fd, char *line, size_t size, int64_t deadline)
{
	size_t have = 0;
	while (have + 1 < size) {
		int64_t left = deadline - spawn_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		ssize_t n = read(fd, line + have, size - 1 - have);
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (n == 0)
			break;
		if (n < 0)
			continue;
		char *nl = memchr(line + have, '\n', (size_t)n);
		have += (size_t)n;
		if (nl) {
			have = (size_t)(nl - line);
			break;
		}
	}
	line[have] = '\0';
	return (ssize_t)have;
}

static void spawn_reap(pid_t pid)
{
	/* ECHILD: the application reaps children itself (SIGCHLD ignored, or a handler
	 * calling waitpid(-1)); the intermediate is gone either way. */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* The message for a manager that printed nothing: say why if the child told us. */
static int spawn_no_response(const char *path, int errfd, int64_t deadline)
{
	struct spawn_failure f = { 0, 0 };
	struct pollfd p = { .fd = errfd, .events = POLLIN };
	int64_t left = deadline - spawn_now_ms();
	if (poll(&p, 1, left > 0 ? (int)left : 0) > 0 && read(errfd, &f, sizeof(f)) == sizeof(f) &&
	    f.err > 0) {
		const char *stage = f.stage == SPAWN_EXEC   ? "exec"
				    : f.stage == SPAWN_FORK ? "fork"
							    : "dup2";
		return client_err(-f.err, "no response from manager at %s (%s: %s)", path, stage,
				  strerror(f.err));
	}
	return client_err(-EIO, "no response from manager at %s (it printed nothing)", path);
}

int client_spawn(const char *path, char *sock, size_t socklen)
{
	int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char line[CLIENT_PATH_MAX];
	int rc;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		rc = client_err(-errno, "cannot spawn manager %s: pipe: %s", path, strerror(errno));
		goto out;
	}
	pid_t pid = client_fork_for_spawn();
	if (pid < 0) {
		rc = client_err(-errno, "cannot spawn manager %s: fork: %s", path, strerror(errno));
		goto out;
	}
	if (pid == 0)
		spawn_child(path, out, errp);
	close(out[1]);
	close(errp[1]);
	out[1] = errp[1] = -1;
	spawn_reap(pid);

	int64_t deadline = spawn_now_ms() + CLIENT_SPAWN_TIMEOUT_MS;
	ssize_t n = spawn_read_line(out[0], line, sizeof(line), deadline);
	if (n == -ETIMEDOUT) {
		rc = client_err(-ETIMEDOUT, "no response from manager at %s within %d s", path,
				CLIENT_SPAWN_TIMEOUT_MS / 1000);
	} else if (n < 0) {
		rc = client_err((int)n, "reading from manager at %s: %s", path, strerror((int)-n));
	} else if (n == 0) {
		rc = spawn_no_response(path, errp[0], deadline);
	} else if (strncmp(line, "ERROR", 5) == 0) {
		const char *why = line + 5;
		why += strspn(why, ": ");
		rc = client_err(-EIO, "manager at %s failed to start: %s", path,
				*why ? why : "(no reason given)");
	} else if (line[0] != '/') {
		rc = client_err(-EPROTO, "manager at %s printed \"%.200s\", not a socket path",
				path, line);
	} else if ((size_t)n >= socklen) {
		rc = client_err(-ENAMETOOLONG, "manager at %s printed a socket path of %zd bytes",
				path, n);
	} else {
		memcpy(sock, line, (size_t)n + 1);
		rc = 0;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return rc;
}
