/* inuse.h — which /dev/shm objects live processes still map or hold open.
 *
 * Invariant 4: never unlink a name a live process uses. The index is built in one
 * pass over /proc/<pid>/maps and /proc/<pid>/fd for all processes we may read, then
 * queried per name in O(1). Processes we cannot read (another user's, when not root)
 * are skipped: their objects are not ours to reclaim anyway.
 */
#ifndef SHMWARDEN_INUSE_H
#define SHMWARDEN_INUSE_H

#include <stdbool.h>
#include <stddef.h>

struct inuse;

/* Scans /proc (procdir, normally "/proc"; tests may point elsewhere). NULL on failure
 * with a message in err. */
struct inuse *inuse_scan(const char *procdir, char *err, size_t errlen);

/* name is the wire form, "/torch_1_2_3". */
bool inuse_contains(const struct inuse *idx, const char *name);
size_t inuse_count(const struct inuse *idx);
void inuse_free(struct inuse *idx);

#endif
