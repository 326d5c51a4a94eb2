/* client.c — libshmwarden's handles: the connection to a manager, the register/free
 * exchange, fork handling, and error messages.
 *
 * Guarantees: a request and its answer happen under the handle's mutex, so no thread ever
 * reads another's OK; a process never sends on a connection it inherited across fork();
 * a connection whose stream may be out of step (timeout, garbage, partial send) is dropped,
 * never reused; a dead manager is reported as -ENOTCONN, not as a hang or a signal.
 *
 * Process-global state, and why: the list of live handles and its lock. fork() copies every
 * handle mutex in whatever state another thread left it, and a child that inherits a
 * mutex held by a thread that no longer exists deadlocks on its first request. Only
 * pthread_atfork can prevent that (take every handle lock before fork, release after), and
 * its handlers take no argument, so they need a process-wide list of the handles. The same
 * handlers close the child's copies of the parent's connections. (libshm keeps a global map
 * of connections too, but shares them with children, which docs/PROTOCOL.md explains is wrong.)
 * The connection itself lives in the handle the caller passes, not in a hidden global: one
 * process can talk to two managers (the tests do), and "one connection per process" is the
 * caller's one handle shared by its threads. Each thread's last error message is
 * thread-local, like errno.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "wire.h"

static _Thread_local char client_errbuf[512];
/* Set by the thread that forks to spawn a manager: our atfork handlers must not take the
 * handle locks then (that thread may hold one: respawn happens inside a request). */
static _Thread_local bool client_spawning;

static pthread_mutex_t client_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shmw_manager *client_registry;
static pthread_once_t client_atfork_once = PTHREAD_ONCE_INIT;

int client_err(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(client_errbuf, sizeof(client_errbuf), fmt, ap);
	va_end(ap);
	return err;
}

const char *shmw_errmsg(void)
{
	return client_errbuf[0] ? client_errbuf : "no error";
}

const char *shmw_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return "success";
	case ENOTCONN:
		return "the shared-memory manager is gone";
	case ETIMEDOUT:
		return "the shared-memory manager did not answer in time";
	case EPROTO:
		return "the shared-memory manager broke the protocol";
	case EIO:
		return "the shared-memory manager failed to start";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

const char *shmw_version(void)
{
	return SHMW_VERSION;
}

static int64_t client_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- fork ---------------------------------------------------------------------------- */

static void client_atfork_prepare(void)
{
	if (client_spawning)
		return;
	pthread_mutex_lock(&client_registry_lock);
	for (struct shmw_manager *m = client_registry; m; m = m->next)
		pthread_mutex_lock(&m->lock);
}

static void client_atfork_parent(void)
{
	if (client_spawning)
		return;
	for (struct shmw_manager *m = client_registry; m; m = m->next)
		pthread_mutex_unlock(&m->lock);
	pthread_mutex_unlock(&client_registry_lock);
}

/* The child's copies of the parent's connections are the parent's conversations: close
 * them (the parent's stay open) so that the child's first request dials its own. */
static void client_atfork_child(void)
{
	if (client_spawning)
		return;
	for (struct shmw_manager *m = client_registry; m; m = m->next) {
		if (m->fd >= 0)
			close(m->fd);
		m->fd = -1;
		pthread_mutex_unlock(&m->lock);
	}
	pthread_mutex_unlock(&client_registry_lock);
}

static void client_atfork_register(void)
{
	/* If this fails (ENOMEM) the getpid() check in client_connect_locked still keeps
	 * children off their parent's connection; only the lock hand-over is lost. */
	(void)pthread_atfork(client_atfork_prepare, client_atfork_parent, client_atfork_child);
}

pid_t client_fork_for_spawn(void)
{
	client_spawning = true;
	pid_t pid = fork();
	int saved = errno;
	if (pid != 0)
		client_spawning = false; /* the child keeps it set: it only execs or exits */
	errno = saved;
	return pid;
}

/* ---- handles ------------------------------------------------------------------------- */

void client_manager_get(struct shmw_manager *m)
{
	atomic_fetch_add(&m->refs, 1);
}

void client_manager_put(struct shmw_manager *m)
{
	if (atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	pthread_mutex_lock(&client_registry_lock);
	if (m->prev)
		m->prev->next = m->next;
	else
		client_registry = m->next;
	if (m->next)
		m->next->prev = m->prev;
	pthread_mutex_unlock(&client_registry_lock);
	if (m->fd >= 0)
		close(m->fd);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void shmw_close(struct shmw_manager *m)
{
	if (m)
		client_manager_put(m);
}

/* Opens a Unix stream connection to path. Returns the descriptor or a negative errno
 * (-ETIMEDOUT: not accepted within 1 s); sets no message (callers say what the connection
 * was for). */
static int client_dial(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if (len >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, len + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A Unix connect blocks while the listener's backlog is full (a stopped or hung
	 * manager); SO_SNDTIMEO bounds it. Sends never block anyway (MSG_DONTWAIT). */
	struct timeval tv = { .tv_sec = CLIENT_OK_TIMEOUT_MS / 1000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == EINTR)
			continue;
		int err = (errno == EAGAIN || errno == EINPROGRESS) ? -ETIMEDOUT : -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void client_drop_locked(struct shmw_manager *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

static bool client_is_gone_errno(int err)
{
	return err == ECONNREFUSED || err == ENOENT || err == EPIPE || err == ECONNRESET;
}

/* Makes sure this process has its own connection. */
static int client_connect_locked(struct shmw_manager *m)
{
	pid_t self = getpid();
	if (m->fd >= 0 && m->fd_pid != self) {
		/* Forked without our atfork handler having run (e.g. _Fork()): this is the
		 * child's copy of the parent's descriptor. */
		close(m->fd);
		m->fd = -1;
	}
	if (m->fd >= 0)
		return 0;
	int fd = client_dial(m->sock_path);
	if (fd < 0) {
		if (client_is_gone_errno(-fd))
			return client_err(-ENOTCONN, "manager at %s is gone (connect: %s)",
					  m->sock_path, strerror(-fd));
		return client_err(fd, "cannot connect to manager at %s: %s", m->sock_path,
				  strerror(-fd));
	}
	m->fd = fd;
	m->fd_pid = self;
	return 0;
}

/* A failed exchange leaves the stream in an unknown state: drop the connection. */
static int client_fail_locked(struct shmw_manager *m, int err, const char *what)
{
	client_drop_locked(m);
	if (client_is_gone_errno(err))
		return client_err(-ENOTCONN, "manager at %s is gone (%s: %s)", m->sock_path, what,
				  strerror(err));
	return client_err(-err, "%s to manager at %s: %s", what, m->sock_path, strerror(err));
}

/* Sends one record. Non-blocking with a deadline: a manager that stopped reading (stopped,
 * hung) must not block the caller forever once the socket buffer is full of frees. */
static int client_send_locked(struct shmw_manager *m, const unsigned char *rec)
{
	size_t off = 0;
	int64_t deadline = client_now_ms() + CLIENT_OK_TIMEOUT_MS;
	while (off < WIRE_RECORD_SIZE) {
		ssize_t n = send(m->fd, rec + off, WIRE_RECORD_SIZE - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return client_fail_locked(m, errno, "send");
		int64_t left = deadline - client_now_ms();
		if (left <= 0) {
			client_drop_locked(m);
			return client_err(-ETIMEDOUT,
					  "manager at %s stopped reading (send blocked for %d ms)",
					  m->sock_path, CLIENT_OK_TIMEOUT_MS);
		}
		struct pollfd p = { .fd = m->fd, .events = POLLOUT };
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return client_fail_locked(m, errno, "poll");
	}
	return 0;
}

/* Waits for the two bytes "OK", libshm's answer to a registration, for at most 1 s. */
static int client_await_ok_locked(struct shmw_manager *m)
{
	char got[WIRE_OK_LEN];
	size_t have = 0;
	int64_t deadline = client_now_ms() + CLIENT_OK_TIMEOUT_MS;
	while (have < WIRE_OK_LEN) {
		int64_t left = deadline - client_now_ms();
		if (left <= 0) {
			/* A late OK would be read as the answer to the next request. */
			client_drop_locked(m);
			return client_err(-ETIMEDOUT, "manager at %s did not answer within %d ms",
					  m->sock_path, CLIENT_OK_TIMEOUT_MS);
		}
		struct pollfd p = { .fd = m->fd, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return client_fail_locked(m, errno, "poll");
		if (r <= 0)
			continue;
		ssize_t n = recv(m->fd, got + have, WIRE_OK_LEN - have, MSG_DONTWAIT);
		if (n > 0) {
			have += (size_t)n;
		} else if (n == 0) {
			client_drop_locked(m);
			return client_err(-ENOTCONN,
					  "manager at %s is gone (it closed the connection)",
					  m->sock_path);
		} else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
			return client_fail_locked(m, errno, "recv");
		}
	}
	if (memcmp(got, WIRE_OK, WIRE_OK_LEN) != 0) {
		client_drop_locked(m);
		return client_err(-EPROTO, "manager at %s answered 0x%02x%02x instead of \"OK\"",
				  m->sock_path, (unsigned char)got[0], (unsigned char)got[1]);
	}
	return 0;
}

static int client_respawn_locked(struct shmw_manager *m)
{
	char gone[sizeof(client_errbuf)];
	char sock[CLIENT_SOCK_MAX];
	memcpy(gone, client_errbuf, sizeof(gone));
	const char *path = m->mgr_path[0] ? m->mgr_path : client_manager_path(NULL);
	int rc = client_spawn(path, sock, sizeof(sock));
	if (rc < 0) {
		char why[sizeof(client_errbuf)];
		memcpy(why, client_errbuf, sizeof(why));
		return client_err(rc, "%s; respawning failed: %s", gone, why);
	}
	memcpy(m->sock_path, sock, sizeof(m->sock_path));
	return 0;
}

int client_request(struct shmw_manager *m, const char *name, bool is_free)
{
	unsigned char rec[WIRE_RECORD_SIZE];
	if (wire_encode(getpid(), is_free, name, rec) < 0)
		return client_err(-EINVAL, "invalid shm name \"%.*s\"", SHMW_NAME_MAX + 1, name);
	int rc;
	pthread_mutex_lock(&m->lock);
	for (int attempt = 0;; attempt++) {
		rc = client_connect_locked(m);
		if (rc == 0)
			rc = client_send_locked(m, rec);
		if (rc == 0 && !is_free)
			rc = client_await_ok_locked(m);
		if (rc != -ENOTCONN || !(m->flags & SHMW_RESPAWN) || attempt > 0)
			break;
		rc = client_respawn_locked(m);
		if (rc < 0)
			break;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Makes a handle for the manager listening at sock, connected. */
static int client_new_handle(const char *sock, const char *mgr_path, unsigned int flags,
			     struct shmw_manager **out)
{
	int rc;
	struct shmw_manager *m = calloc(1, sizeof(*m));
	if (!m)
		return client_err(-ENOMEM, "out of memory");
	m->fd = -1;
	if ((rc = pthread_mutex_init(&m->lock, NULL)) != 0) {
		rc = client_err(-rc, "pthread_mutex_init: %s", strerror(rc));
		goto fail;
	}
	if ((m->fd = client_dial(sock)) < 0) {
		rc = client_err(m->fd, "cannot connect to manager at %s: %s", sock,
				strerror(-m->fd));
		pthread_mutex_destroy(&m->lock);
		goto fail;
	}
	atomic_init(&m->refs, 1);
	m->fd_pid = getpid();
	m->flags = flags;
	memcpy(m->prefix, "/shmw_", sizeof("/shmw_"));
	memcpy(m->sock_path, sock, strlen(sock) + 1); /* fits: client_dial checked */
	if (mgr_path && strlen(mgr_path) < sizeof(m->mgr_path))
		memcpy(m->mgr_path, mgr_path, strlen(mgr_path) + 1);

	pthread_once(&client_atfork_once, client_atfork_register);
	pthread_mutex_lock(&client_registry_lock);
	m->next = client_registry;
	if (client_registry)
		client_registry->prev = m;
	client_registry = m;
	pthread_mutex_unlock(&client_registry_lock);
	*out = m;
	return 0;
fail:
	free(m);
	return rc;
}

int shmw_spawn(const char *manager_path, unsigned int flags, struct shmw_manager **out)
{
	if (!out)
		return client_err(-EINVAL, "shmw_spawn: out is NULL");
	if (flags & ~(unsigned int)SHMW_RESPAWN)
		return client_err(-EINVAL, "shmw_spawn: unknown flags 0x%x", flags);
	const char *path = client_manager_path(manager_path);
	if (strlen(path) >= CLIENT_PATH_MAX)
		return client_err(-ENAMETOOLONG, "manager path too long: %.64s...", path);
	char sock[CLIENT_SOCK_MAX];
	int rc = client_spawn(path, sock, sizeof(sock));
	if (rc < 0)
		return rc;
	return client_new_handle(sock, path, flags, out);
}

int shmw_connect(const char *socket_path, unsigned int flags, struct shmw_manager **out)
{
	if (!out || !socket_path || !*socket_path)
		return client_err(-EINVAL, "shmw_connect: %s is NULL or empty",
				  out ? "socket_path" : "out");
	if (flags & ~(unsigned int)SHMW_RESPAWN)
		return client_err(-EINVAL, "shmw_connect: unknown flags 0x%x", flags);
	const char *path = (flags & SHMW_RESPAWN) ? client_manager_path(NULL) : NULL;
	return client_new_handle(socket_path, path, flags, out);
}

int shmw_set_prefix(struct shmw_manager *m, const char *prefix)
{
	if (!m || !prefix)
		return client_err(-EINVAL, "shmw_set_prefix: NULL argument");
	size_t len = strlen(prefix);
	if (len < 1 || len > SHMW_PREFIX_MAX || prefix[0] != '/' || strchr(prefix + 1, '/'))
		return client_err(-EINVAL,
				  "bad name prefix \"%.40s\": it must start with '/', contain no "
				  "other '/' and be at most %d bytes",
				  prefix, SHMW_PREFIX_MAX);
	pthread_mutex_lock(&m->lock);
	memcpy(m->prefix, prefix, len + 1);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int shmw_socket_path(struct shmw_manager *m, char *buf, size_t len)
{
	if (!m || !buf)
		return client_err(-EINVAL, "shmw_socket_path: NULL argument");
	int rc;
	pthread_mutex_lock(&m->lock);
	size_t n = strlen(m->sock_path);
	if (n + 1 > len) {
		rc = client_err(-ERANGE, "socket path needs %zu bytes, buffer has %zu", n + 1, len);
	} else {
		memcpy(buf, m->sock_path, n + 1);
		rc = (int)n;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

pid_t shmw_manager_pid(struct shmw_manager *m)
{
	if (!m)
		return client_err(-EINVAL, "shmw_manager_pid: NULL handle");
	pthread_mutex_lock(&m->lock);
	int rc = client_connect_locked(m);
	if (rc == 0) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(m->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
			rc = client_err(-errno, "SO_PEERCRED on manager at %s: %s", m->sock_path,
					strerror(errno));
		else
			rc = (int)cred.pid;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}
