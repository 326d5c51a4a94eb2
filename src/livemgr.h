/* livemgr.h — the names live managers hold, as a reclaimer sees them.
 *
 * A name that a live manager on the same shm filesystem has journaled is not a leak of
 * a dead one, even when a dead journal lists it too (a program with a fixed segment name
 * restarted under a new manager): reclaim hands such rows over (drops them) and never
 * unlinks them (issue 10). Live managers are found by walking every live task's
 * descriptors (/proc/PID/fd): a directory of the owner holding a manager.sock, locked
 * exclusive, whose socket the holder listens on (looked up in the holder's own mount and
 * network namespace), is a live manager's (and so is one emptied or removed under its
 * manager, which listens at a socket bound in a directory of its name: its journal then
 * counts as one that cannot be read); its journal is read through our descriptor of
 * that directory (journal_open_dirfd), never by a path, and counts when it names the
 * holder (in any pid namespace it has) as its manager, belongs to the owner being
 * reclaimed for, and records our shm filesystem (a version 1 journal records none and is
 * taken as ours).
 *
 * Seen: managers whose /proc/PID/fd the caller may read (same user, dumpable; root
 * everything; as root reclaim_dir switches to the owner's fsuid first, which the kernel
 * applies to /proc too), in whatever mount namespace. And, found by their lock, managers
 * the walk of /proc cannot see (missing from the caller's /proc: a parent pid
 * namespace's; or not inspectable: not dumpable, from inside a user namespace): a
 * directory of the owner's in a temp base the caller watches (livemgr_watch), locked
 * exclusive and not marked by a reclaimer (mgrdir_marked), is a live manager's whose pid
 * is unknown (0), its journal read with the same checks but the holder's. Not seen: a
 * manager of that kind whose directory is in no watched base (README, SECURITY.md).
 */
#ifndef SHMWARDEN_LIVEMGR_H
#define SHMWARDEN_LIVEMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "journal.h"
#include "shmobj.h"

struct livemgr;

/* An empty set for journals of owner whose names live in the /dev/shm directory shm
 * describes (shmobj_fs_self, mgrdir_same_shm; copied). extra, when not NULL, is a live journal of this
 * process checked too (a restarted manager's own, open in the calling thread); it is
 * borrowed, not closed. NULL when out of memory. */
struct livemgr *livemgr_new(uid_t owner, const struct shmobj_fs *shm, struct journal *extra);

/* Also counts as live managers the owner's locked, unmarked manager directories in
 * basefds[0..n-1] (temp bases; borrowed: they stay open as long as lm), found by their
 * lock at every walk, whether or not a process of our /proc holds them (livemgr.c,
 * "Found by their lock"). */
void livemgr_watch(struct livemgr *lm, const int *basefds, size_t n);

/* The directory dirfd is never taken for a live manager's found by its lock: the caller's
 * own (the journal being reclaimed, a restarted manager's directory), which it holds
 * locked itself. Call before the first refresh. */
void livemgr_exclude(struct livemgr *lm, int dirfd);

/* Brings the set of live managers up to date for a page of rows whose objects the
 * caller statted just before; newest_btime_ns is the latest birth time among them
 * (INT64_MAX when one is unknown, INT64_MIN when none exists). Walks /proc (one stat
 * per open descriptor of every process the caller may inspect, then one readdir of each
 * watched base and a lock test per directory of the owner's there) when an object may be
 * younger than the last walk, or the clock was stepped, or a manager found earlier
 * changed; otherwise only checks the managers found (a manager registers a name
 * before its object is born, so it was live and found by any walk begun after that
 * birth). Opens the journals of managers not seen before, closes those gone. Never
 * fails, but when it cannot tell who is live (/proc not procfs or unreadable, a
 * candidate's lock or sockets not readable, out of memory) livemgr_mark fails until
 * the next refresh, so nothing is unlinked. Only managers whose directory belongs to
 * owner are looked at, only while the calling thread's filesystem uid is owner, and
 * only when that directory is not writable by group or others; a live manager that
 * fails these last two makes livemgr_mark fail too. */
void livemgr_refresh(struct livemgr *lm, int64_t newest_btime_ns);

/* For rows[0..n-1] (ascending, as journal_page returns them), sets held[i] (and
 * holder[i], the manager's pid, 0 when only a manager found by its lock lists it) when a
 * live manager's journal lists rows[i]'s name.
 * One range query per live journal. Returns 0, or -1 when an open live journal failed
 * while being read (then held[] is incomplete, and the caller must not unlink). A live
 * journal that could not be opened at all is not in held[]: see livemgr_unreadable. */
int livemgr_mark(struct livemgr *lm, const struct journal_row *rows, int n, bool *held,
		 pid_t *holder);

/* Whether there is a live manager of the owner whose journal the latest refresh could
 * not open (another schema version: an older or newer shmwarden beside this one;
 * damaged; busy; one found by its lock whose journal is missing); *pid is its pid, 0
 * when only managers found by their lock are (their pid is not visible here). Such a
 * manager may hold any name of the owner's, and which ones nobody can tell: the caller
 * unlinks none of the owner's objects while it lives (cannot tell means keep). */
bool livemgr_unreadable(const struct livemgr *lm, pid_t *pid);

/* Whether pid listens on the socket of the manager directory dirfd, as only that
 * directory's manager does (looked up as livemgr_refresh does: pid's own sockets, its
 * own root and mount namespace): 1 yes, 0 no, -1 cannot tell. For the words of a
 * report: nothing is decided by it. */
int livemgr_serves(pid_t pid, int dirfd);

/* How many live journals the set holds (for logs and tests). */
unsigned livemgr_count(const struct livemgr *lm);

void livemgr_free(struct livemgr *lm);

#endif
