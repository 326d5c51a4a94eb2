/* log.c — the logger behind log.h: a level, a program name, stderr or syslog.
 * Each line is formatted whole and written with one write(2), so lines from threads
 * and processes sharing a stderr do not interleave mid-line. Control bytes in a message
 * (a client's shm name may hold a newline or an escape sequence) come out as \xHH, so
 * one event is always one line and nobody can forge another. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

/* Written only by main() before threads exist (see log.h). */
static struct {
	enum log_level level;
	bool syslog;
	char prog[32];
} logger = { LOG_LVL_WARN, false, "shmwarden" };

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

static void log_vemit(enum log_level level, const char *fmt, va_list ap)
{
	if (!log_enabled(level))
		return;
	int saved = errno;
	char raw[1024], msg[4 * sizeof(raw)];
	vsnprintf(raw, sizeof(raw), fmt, ap);
	log_escape(raw, msg, sizeof(msg));
	if (logger.syslog) {
		static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
		syslog(prio[level], "%s: %s", level_names[level], msg);
	} else {
		char line[sizeof(msg) + 64];
		int n = snprintf(line, sizeof(line), "%s[%d]: %s: %s\n", logger.prog,
				 (int)getpid(), level_names[level], msg);
		if (n > (int)sizeof(line) - 1) {
			n = (int)sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		/* stderr may be a closed pipe of a dead client: nothing useful to do then. */
		ssize_t w = write(STDERR_FILENO, line, (size_t)n);
		(void)w;
	}
	errno = saved;
}

#define LOG_FN(fn, lvl)                                  \
	void fn(const char *fmt, ...)                    \
	{                                                \
		va_list ap;                              \
		va_start(ap, fmt);                       \
		log_vemit(lvl, fmt, ap);                 \
		va_end(ap);                              \
	}
LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_error, LOG_LVL_ERROR)
