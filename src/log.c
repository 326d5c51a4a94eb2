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

/* Copies s into out (LOG_MSG_MAX + 1 bytes), control bytes as \xHH: a guard of the line,
 * not the escaping of a value (the engine's journaled names and directories are escaped
 * by report_escape before they are formatted; report.h says why the two differ). A
 * longer message is cut between two characters, never inside a UTF-8 sequence (a
 * journal or a reader that decodes UTF-8 would drop or reject the whole line), and ends
 * by saying how many bytes it lost; lost counts bytes already lost before s (a message
 * not formatted whole, out of memory). */
static void log_escape(const char *s, size_t lost, char *out)
{
	const size_t room = LOG_MSG_MAX - 48; /* the rest: the note of a cut */
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	for (; *p; p++) {
		bool plain = *p >= 0x20 && *p != 0x7f;
		if (o + (plain ? 1 : 4) > room)
			break;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			snprintf(out + o, 5, "\\x%02x", *p);
			o += 4;
		}
	}
	out[o] = '\0';
	if (*p) {
		/* Back off a sequence cut short. Bytes of 0x80 and up were copied one for one,
		 * so the source goes back as far as the copy. */
		util_utf8_cut(out);
		size_t k = strlen(out);
		p -= o - k;
		o = k;
		lost += strlen((const char *)p);
	}
	if (lost)
		snprintf(out + o, LOG_MSG_MAX + 1 - o, " [%zu more bytes cut]", lost);
}

/* Formats fmt (and suffix) whole, then escapes it into msg (LOG_MSG_MAX + 1 bytes). A
 * fixed 1 KiB buffer used to cut every line there, mid-character and silently: a path in
 * a message can be PATH_MAX long, a base list longer. */
static void log_format(char *msg, const char *suffix, const char *fmt, va_list ap)
{
	char stack[1024];
	char *raw = stack;
	size_t slen = suffix ? strlen(suffix) : 0, lost = 0;
	va_list aq;
	va_copy(aq, ap);
	int r = vsnprintf(stack, sizeof(stack), fmt, ap);
	if (r < 0) {
		r = 0;
		stack[0] = '\0';
	}
	if ((size_t)r + slen >= sizeof(stack)) {
		char *big = malloc((size_t)r + slen + 1);
		if (big) {
			vsnprintf(big, (size_t)r + 1, fmt, aq);
			raw = big;
		} else if ((size_t)r >= sizeof(stack)) {
			lost = (size_t)r - (sizeof(stack) - 1) + slen;
			r = (int)sizeof(stack) - 1;
			slen = 0;
		} else {
			lost = slen;
			slen = 0;
		}
	}
	va_end(aq);
	memcpy(raw + r, suffix ? suffix : "", slen);
	raw[(size_t)r + slen] = '\0';
	log_escape(raw, lost, msg);
	if (raw != stack)
		free(raw);
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
	char msg[LOG_MSG_MAX + 1];
	log_format(msg, suffix, fmt, ap);
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
	char msg[LOG_MSG_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	log_format(msg, NULL, fmt, ap);
	va_end(ap);
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
