/* log.h — one line per meaningful event, to stderr (or syslog), with a level.
 *
 * The level comes from SHMWARDEN_LOG (debug|info|warn|error, default warn) and is set
 * once by main() before any thread starts, as is the switch to syslog (a command's
 * --syslog, parsed before it starts any thread); after that the logger is read-only, so
 * it is safe to call from every thread. Lines look like
 *     shmwarden[1234]: warn: manager: client 7: invalid name, closing connection
 */
#ifndef SHMWARDEN_LOG_H
#define SHMWARDEN_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Reads SHMWARDEN_LOG; returns -1 (and keeps the default) when it names no level. */
int log_init(const char *progname);
void log_set_level(enum log_level level);
void log_use_syslog(bool on);
bool log_enabled(enum log_level level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
