/* sandbox.h — the sweeper's pledge: what `shmwarden sweep` gives up before it reads the
 * first journal, so that a hostile journal that found a bug in SQLite or in our code
 * still could not turn a root process against the host.
 *
 * sandbox_sweeper() is one-way (nothing can be regained) and per process:
 *   capabilities  as root, only CAP_SETUID and CAP_SETGID (setfsuid to each directory's
 *                 owner), CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (read every
 *                 /proc/PID/maps and /proc/PID/fd, open each owner's 0700 directory)
 *                 stay, in the effective, permitted and bounding sets; none inheritable
 *                 or ambient. Without root: none at all.
 *   no_new_privs  set: no exec could gain privileges (and seccomp requires it).
 *   system calls  an allow-list (libseccomp); anything else fails with EPERM. No
 *                 execve, no fork, no socket but AF_UNIX (syslog's /dev/log).
 *   paths         when rw is given, as root, a private mount namespace in which every
 *                 mount is read-only but the directories of rw (the temp bases,
 *                 /dev/shm, the metrics file's directory) that are writable before
 *                 (one on a read-only mount stays read-only), and the mounts under
 *                 any of them that are writable before (one by one, as
 *                 /proc/self/mountinfo says; a line it cannot parse leaves its
 *                 mount read-only): creating, writing or
 *                 removing files elsewhere fails with EROFS. Reading is not restricted:
 *                 the sweeper must read /proc and every journal. It needs
 *                 CAP_SYS_ADMIN: a user's sweep (which can only touch that user's files
 *                 anyway), root without it (the systemd unit, whose ProtectSystem=strict
 *                 did the same) and a kernel older than 5.12 (no mount_setattr) go
 *                 without: *paths_confined says so. Nothing else may fail.
 */
#ifndef SHMWARDEN_SANDBOX_H
#define SHMWARDEN_SANDBOX_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* rw: NULL-terminated directories where files may be created, written and removed
 * (one that does not exist, or that is on a read-only mount, is skipped: writes there
 * are then refused with EROFS; one that statvfs(3) fails on is an error); NULL: no mount
 * namespace, files may change wherever the kept capabilities allow. Returns 0, or -1
 * with err filled; after -1 the process may be partly confined and must not go on. */
int sandbox_sweeper(const char *const *rw, bool *paths_confined, char *err, size_t errlen);

/* The mount table's reader, declared for tests/unit/test_sandbox.c. */
struct sandbox_mount {
	int id;               /* the mount ID, as statx(2)'s STATX_MNT_ID gives it */
	char point[PATH_MAX]; /* where it is mounted, unescaped */
	bool rw;              /* its own flag and its file system's both say rw */
};
/* One line of /proc/PID/mountinfo (proc_pid_mountinfo(5)), with or without its '\n'.
 * 0, or -1 for anything the kernel does not write: a missing or empty field, no "-"
 * separator, a number that is not one, an escape other than a backslash and three octal
 * digits, a mount point that is not absolute or too long, options not starting with
 * rw or ro. */
int sandbox_mountinfo_line(const char *line, struct sandbox_mount *m);

struct sandbox_submounts {
	struct sandbox_submount {
		int id;
		char *point;
	} * v;
	size_t n;
	size_t unparsed; /* lines sandbox_mountinfo_line refused: their mounts are left out */
};
/* The writable mounts (rw: both flags) whose mount point lies strictly under one of
 * bases (NULL-terminated absolute paths), read from f in mountinfo's format; a line
 * that cannot be parsed is counted and left out, never taken as writable. 0, or -1 (out
 * of memory, a read error) with err filled and *out empty. Free with
 * sandbox_submounts_free. */
int sandbox_submounts_read(FILE *f, const char *const *bases, struct sandbox_submounts *out,
			   char *err, size_t errlen);
void sandbox_submounts_free(struct sandbox_submounts *s);

#endif
