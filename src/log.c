/* log.c — the logger behind log.h: a level, a program name, stderr or syslog.
 * Each line is formatted whole and written with one write(2), so lines from threads
 * and processes sharing a stderr do not interleave mid-line (a line that a non-blocking
 * stderr took only in part is finished before any other is written). Control bytes in a
 * message (a client's shm name may hold a newline or an escape sequence) come out as
 * \xHH, so one event is always one line and nobody can forge another. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

enum log_out { LOG_OUT_BLOCKING, LOG_OUT_NONBLOCK_FD, LOG_OUT_SEND_DONTWAIT };

/* The settings are written only by main() before threads exist (see log.h); the buffer
 * of lines a full stderr did not take is shared by the threads, under the mutex. */
static struct {
	enum log_level level;
	bool syslog;
	char prog[32];
	enum log_out out;
	int fd;
	pthread_mutex_t lock;
	size_t pending_len;
	unsigned long dropped; /* lines lost since stderr last drained */
	char pending[LOG_PENDING_MAX];
} logger = { .level = LOG_LVL_WARN,
	     .prog = "shmwarden",
	     .fd = STDERR_FILENO,
	     .lock = PTHREAD_MUTEX_INITIALIZER };

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_init(const char *progname)
{
	if (progname)
		snprintf(logger.prog, sizeof(logger.prog), "%s", progname);
	const char *env = getenv("SHMWARDEN_LOG");
	if (!env || !*env)
		return 0;
	for (int i = LOG_LVL_DEBUG; i <= LOG_LVL_ERROR; i++) {
		if (strcmp(env, level_names[i]) == 0) {
			logger.level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_level(enum log_level level)
{
	logger.level = level;
}

void log_use_syslog(bool on)
{
	if (on && !logger.syslog)
		openlog(logger.prog, LOG_PID, LOG_DAEMON);
	logger.syslog = on;
}

bool log_enabled(enum log_level level)
{
	return level >= logger.level;
}

/* Copies s into out (len bytes), control bytes as \xHH; cuts at a whole escape. */
static void log_escape(const char *s, char *out, size_t len)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < len; p++) {
		if (*p >= 0x20 && *p != 0x7f) {
			out[o++] = (char)*p;
		} else {
			if (o + 5 > len)
				break;
			snprintf(out + o, len - o, "\\x%02x", *p);
			o += 4;
		}
	}
	out[o] = '\0';
}

int log_nonblocking(void)
{
	struct stat st;
	if (fstat(STDERR_FILENO, &st) < 0)
		return -1;
	if (S_ISSOCK(st.st_mode)) {
		logger.out = LOG_OUT_SEND_DONTWAIT;
		return 0;
	}
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		return 0;
	/* O_NOCTTY: the manager has left its session, and must not take a terminal as
	 * its controlling one. A pipe without readers fails with ENXIO: writes to it would
	 * fail (EPIPE) anyway, so the inherited descriptor is kept. */
	int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat nst;
	if (fstat(fd, &nst) < 0 || nst.st_dev != st.st_dev || nst.st_ino != st.st_ino) {
		close(fd);
		errno = ENXIO;
		return -1;
	}
	logger.fd = fd;
	logger.out = LOG_OUT_NONBLOCK_FD;
	return 0;
}

/* Writes what it can of buf without waiting (unless the output blocks by design).
 * Returns the bytes written; 0 when stderr takes nothing now or is gone. */
static size_t log_write_some(const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t w = logger.out == LOG_OUT_SEND_DONTWAIT
				    ? send(logger.fd, buf + off, len - off,
					   MSG_DONTWAIT | MSG_NOSIGNAL)
				    : write(logger.fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	return off;
}

/* Queues len bytes behind what waits, or counts a dropped line. */
static void log_queue_locked(const char *line, size_t len)
{
	if (logger.pending_len + len > sizeof(logger.pending)) {
		logger.dropped++;
		return;
	}
	memcpy(logger.pending + logger.pending_len, line, len);
	logger.pending_len += len;
}

/* Writes out the waiting bytes; once all went out after drops, says how many. Returns
 * true when nothing waits any more. A stderr that is gone for good (EPIPE) drops what
 * waits, as a blocking write would have lost it too. */
static bool log_flush_locked(void)
{
	while (logger.pending_len) {
		size_t w = log_write_some(logger.pending, logger.pending_len);
		if (w == 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return false;
			logger.pending_len = 0; /* EPIPE, EBADF...: nobody will read these */
			break;
		}
		memmove(logger.pending, logger.pending + w, logger.pending_len - w);
		logger.pending_len -= w;
		if (logger.pending_len == 0 && logger.dropped) {
			char note[160];
			int n = snprintf(
				note, sizeof(note),
				"%s[%d]: warn: log: %lu line%s dropped while stderr was not "
				"being read\n",
				logger.prog, (int)getpid(), logger.dropped,
				logger.dropped == 1 ? "" : "s");
			logger.dropped = 0;
			log_queue_locked(note, (size_t)n);
		}
	}
	return true;
}

void log_flush(void)
{
	if (logger.out == LOG_OUT_BLOCKING)
		return;
	pthread_mutex_lock(&logger.lock);
	log_flush_locked();
	pthread_mutex_unlock(&logger.lock);
}

void log_drain(int timeout_ms)
{
	if (logger.out == LOG_OUT_BLOCKING)
		return;
	int64_t deadline = util_now_ms() + timeout_ms;
	pthread_mutex_lock(&logger.lock);
	while (!log_flush_locked()) {
		int64_t left = deadline - util_now_ms();
		if (left <= 0)
			break;
		struct pollfd pfd = { .fd = logger.fd, .events = POLLOUT };
		if (poll(&pfd, 1, (int)left) <= 0)
			break;
	}
	pthread_mutex_unlock(&logger.lock);
}

static void log_write_line(const char *line, size_t len)
{
	if (logger.out == LOG_OUT_BLOCKING) {
		/* stderr may be a closed pipe of a dead client: nothing useful to do then. */
		ssize_t w = write(logger.fd, line, len);
		(void)w;
		return;
	}
	pthread_mutex_lock(&logger.lock);
	if (log_flush_locked()) {
		size_t w = log_write_some(line, len);
		line += w;
		len -= w;
	}
	if (len)
		log_queue_locked(line, len);
	pthread_mutex_unlock(&logger.lock);
}

static void log_vemit(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	if (!log_enabled(level))
		return;
	int saved = errno;
	char raw[1024], msg[4 * sizeof(raw)];
	int r = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (suffix && r >= 0 && (size_t)r < sizeof(raw))
		snprintf(raw + r, sizeof(raw) - (size_t)r, "%s", suffix);
	log_escape(raw, msg, sizeof(msg));
	if (logger.syslog) {
		static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
		syslog(prio[level], "%s: %s", level_names[level], msg);
	} else {
		char line[sizeof(msg) + 64];
		int n = snprintf(line, sizeof(line), "%s[%d]: %s: %s\n", logger.prog, (int)getpid(),
				 level_names[level], msg);
		if (n > (int)sizeof(line) - 1) {
			n = (int)sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		log_write_line(line, (size_t)n);
	}
	errno = saved;
}

void log_complain(const char *prefix, const char *fmt, ...)
{
	int saved = errno;
	char raw[1024], msg[4 * sizeof(raw)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	log_escape(raw, msg, sizeof(msg));
	if (logger.syslog) {
		syslog(LOG_ERR, "%s: %s", prefix, msg);
	} else {
		char line[sizeof(msg) + 64];
		int n = snprintf(line, sizeof(line), "%s: %s\n", prefix, msg);
		if (n > (int)sizeof(line) - 1) {
			n = (int)sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		log_write_line(line, (size_t)n);
	}
	errno = saved;
}

void log_warn_limited(struct log_limit *limit, const char *fmt, ...)
{
	int64_t now = util_now_ms();
	if (limit->last_ms && now - limit->last_ms < LOG_LIMIT_INTERVAL_MS) {
		limit->skipped++;
		return;
	}
	char suffix[96] = "";
	if (limit->skipped)
		snprintf(suffix, sizeof(suffix), " (and %lu more like it in the last %lld s)",
			 limit->skipped, (long long)(now - limit->last_ms) / 1000);
	limit->last_ms = now ? now : 1;
	limit->skipped = 0;
	va_list ap;
	va_start(ap, fmt);
	log_vemit(LOG_LVL_WARN, suffix, fmt, ap);
	va_end(ap);
}

#define LOG_FN(fn, lvl)                        \
	void fn(const char *fmt, ...)          \
	{                                      \
		va_list ap;                    \
		va_start(ap, fmt);             \
		log_vemit(lvl, NULL, fmt, ap); \
		va_end(ap);                    \
	}
LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_error, LOG_LVL_ERROR)
