/* livemgr.h — the names live managers hold, as a reclaimer sees them.
 *
 * A name that a live manager on the same shm filesystem has journaled is not a leak of
 * a dead one, even when a dead journal lists it too (a program with a fixed segment name
 * restarted under a new manager): reclaim hands such rows over (drops them) and never
 * unlinks them (issue 10). Live managers are found by their liveness lock: every FLOCK in
 * /proc/locks (read three times: it comes a page at a time and can skip entries) whose
 * holder keeps that manager directory open, owns it, and listens on its manager.sock
 * (/proc/net/unix; a reclaimer holding a dead directory's lock does not, so its journal
 * is never opened in place) is a live manager; its journal is opened read-only and
 * untrusted, and counts when it names the holder as its manager, belongs to the owner
 * being reclaimed for, and records our shm filesystem (a version 1 journal records none
 * and is taken as ours).
 *
 * Seen: managers whose /proc/PID/fd the caller may read (same user, dumpable; root
 * everything; as root reclaim_dir switches to the owner's fsuid first, which the kernel
 * applies to /proc too) and whose directory has the same path in the caller's mount
 * namespace. Not seen: managers in another mount namespace that reach this shm
 * filesystem through another path (README, SECURITY.md).
 */
#ifndef SHMWARDEN_LIVEMGR_H
#define SHMWARDEN_LIVEMGR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "journal.h"

struct livemgr;

/* An empty set for journals of owner on the shm filesystem shm_dev. extra, when not
 * NULL, is a live journal of this process checked too (a restarted manager's own,
 * open in the calling thread); it is borrowed, not closed. NULL when out of memory. */
struct livemgr *livemgr_new(uid_t owner, uint64_t shm_dev, struct journal *extra);

/* Re-reads /proc/locks: opens the journals of managers not seen before, closes those
 * whose lock went away. Cheap when nothing changed (one read of /proc/locks). Never
 * fails: what cannot be looked at is logged at debug level and skipped. Only managers
 * whose directory belongs to owner are looked at, only while the calling thread's
 * filesystem uid is owner, and only through a path nobody else can replace
 * (util_path_trusted); an owner's live manager that fails these last two makes
 * livemgr_mark fail, so nothing is unlinked. */
void livemgr_refresh(struct livemgr *lm);

/* For rows[0..n-1] (ascending, as journal_page returns them), sets held[i] (and
 * holder[i], the manager's pid) when a live manager's journal lists rows[i]'s name.
 * One range query per live journal. Returns 0, or -1 when an open live journal failed
 * while being read (then held[] is incomplete, and the caller must not unlink). A live
 * journal that could not be opened at all (another schema version) is not consulted. */
int livemgr_mark(struct livemgr *lm, const struct journal_row *rows, int n, bool *held,
		 pid_t *holder);

/* How many live journals the set holds (for logs and tests). */
unsigned livemgr_count(const struct livemgr *lm);

void livemgr_free(struct livemgr *lm);

#endif
