/* log.h — one line per meaningful event, to stderr (or syslog), with a level.
 *
 * The level comes from SHMWARDEN_LOG (debug|info|warn|error, default warn) and is set
 * once by main() before any thread starts, as is the switch to syslog (a command's
 * --syslog, parsed before it starts any thread); after that the logger is read-only, so
 * it is safe to call from every thread. Lines look like
 *     shmwarden[1234]: warn: manager: client 7: invalid name, closing connection
 *
 * An event loop must never wait on its stderr (a pipe nobody reads fills after 64 KiB):
 * after log_nonblocking(), a line the descriptor does not take at once waits in a bounded
 * buffer (LOG_PENDING_MAX bytes) and lines beyond it are dropped and counted; once stderr
 * drains, the log says how many were dropped. The buffer is written out by the next log
 * call or by log_flush(), which the event loop calls once per wake-up.
 */
#ifndef SHMWARDEN_LOG_H
#define SHMWARDEN_LOG_H

#include <stdbool.h>
#include <stdint.h>

#define LOG_PENDING_MAX (16 * 1024) /* bytes of lines waiting for a full stderr */
/* Bytes of one message, escaped: longer ones are cut between two characters and say how
 * many bytes they lost. 8 KiB is rsyslog's default maxMessageSize; other syslog limits
 * are the receiver's (RFC 3164 allows a 1024-byte packet, RFC 5424 asks receivers for at
 * least 2048 octets; glibc's syslog(3) itself sends a message of any length). */
#define LOG_MSG_MAX 8192

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Reads SHMWARDEN_LOG; returns -1 (and keeps the default) when it names no level. */
int log_init(const char *progname);
void log_set_level(enum log_level level);
void log_use_syslog(bool on);
bool log_enabled(enum log_level level);

/* Makes writes to stderr never wait, without touching the open file description the
 * spawner shares (O_NONBLOCK set on fd 2 would make the parent's own writes fail with
 * EAGAIN): a pipe or terminal is opened afresh through /proc/self/fd/2, which gives a
 * new description of the same pipe or tty whose O_NONBLOCK is ours alone; a socket is
 * written with send(MSG_DONTWAIT), a per-call flag; a regular file never waits for a
 * reader and is left as it is. Call once, before threads start. Returns 0, or -1 (then
 * writes may still block) with errno set. */
int log_nonblocking(void);
/* Writes out what waits in the buffer, as far as stderr takes it; never waits. */
void log_flush(void);
/* Like log_flush, but waits up to timeout_ms for stderr to take it all (at exit). */
void log_drain(int timeout_ms);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A command's own error, not an event: "PREFIX: MESSAGE" as every command prints its
 * errors ("shmwarden manager: ..."), whatever the level, through the same escaping,
 * never-waiting writer as the log lines (to syslog as an error when logging there). */
void log_complain(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Repeats of one warning (the caller keeps one struct per warning, zeroed): the first in
 * each LOG_LIMIT_INTERVAL_MS is logged, with how many were suppressed since the last
 * line; the rest are counted. The accept pause under EMFILE would otherwise log ten
 * lines a second. */
#define LOG_LIMIT_INTERVAL_MS 10000
struct log_limit {
	int64_t last_ms;       /* when the last line was logged; 0: never */
	unsigned long skipped; /* suppressed since then */
};
void log_warn_limited(struct log_limit *limit, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
