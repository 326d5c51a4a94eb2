/* util.h — small helpers every module shares: error buffers, time, the boot id,
 * the temp base. Nothing here allocates or keeps state. */
#ifndef SHMWARDEN_UTIL_H
#define SHMWARDEN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define UTIL_BOOT_ID_LEN 36 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */

/* A message that names a path and says what is wrong with it: a directory's state, a
 * reclaim's detail. 256 bytes cut a long temp base's path, and the reason after it. */
#define UTIL_MSG_LEN (4096 + 512)

/* The error idiom: functions return -1 and describe the failure in the caller's
 * buffer with util_err(); err may be NULL when the caller does not care. A message
 * longer than the buffer is cut between two UTF-8 characters (util_utf8_cut). */
void util_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* s was cut to fit its buffer: drops a UTF-8 sequence left incomplete at its end, so a
 * path is never shown with half a character (JSON would carry it as U+00XX garbage). */
void util_utf8_cut(char *s);

/* Copies like strlcpy: always NUL-terminates, returns strlen(src). */
size_t util_strlcpy(char *dst, const char *src, size_t size);

int64_t util_now_ms(void);  /* CLOCK_MONOTONIC, milliseconds */
int64_t util_wall_s(void);  /* CLOCK_REALTIME, seconds */
int64_t util_wall_us(void); /* CLOCK_REALTIME, microseconds: what a grace is measured in */
/* A time in nanoseconds since the epoch (a birth time, statx's precision) as
 * "SECONDS.NNNNNNNNN" into buf, all nine digits of the fraction: two tmpfs mounted within
 * one second differ only there. A time before the epoch (read from a journal, it may be
 * anything, INT64_MIN included) is "-SECONDS.NNNNNNNNN". Returns buf. */
const char *util_unix_ns_str(int64_t ns, char *buf, size_t len);

/* Reads /proc/sys/kernel/random/boot_id into out (UTIL_BOOT_ID_LEN + 1 bytes). */
int util_boot_id(char *out, size_t outlen, char *err, size_t errlen);

/* The temp base the reference uses: $TMPDIR, $TMP, $TEMP, $TEMPDIR, then /tmp. */
const char *util_tmpbase(void);
/* Which of those variables util_tmpbase() took it from ("TMPDIR"...), NULL for /tmp. */
const char *util_tmpbase_var(void);

/* Whether nobody but root and uid can replace any component of path (absolute, every
 * prefix a directory: SQLite reopens journal.db-wal and -shm by path long after it
 * checked it). Each prefix must be a directory, not a symlink, owned by root or uid,
 * and not writable by group or others unless sticky (where an entry can be renamed only
 * by its owner, checked at the next component). 0 when trusted; -1 with why in err
 * (errno ENOENT/EACCES... when a prefix cannot be looked at, EPERM when it can be
 * replaced by someone else). */
int util_path_trusted(const char *path, uid_t uid, char *err, size_t errlen);

/* Raises the soft RLIMIT_NOFILE to the hard limit (or fs.nr_open, when the hard one is
 * infinite), as servers do: the soft limit exists for select(), which nothing here uses.
 * 0 when raised or already there; -1 when it could not be, with *was the soft limit. */
int util_raise_nofile(unsigned long long *was);

/* Formats a byte count as "1.5 MiB" into buf. */
const char *util_human_bytes(uint64_t bytes, char *buf, size_t len);

#endif
