/* userns.h — which user namespace a process is in, and what its uid is one level up.
 *
 * A manager in a user namespace that maps its user to root (`unshare -U -r`, rootless
 * containers) runs as uid 0 there, while the host sees its directory and objects owned
 * by the real uid. So the manager records its user namespace and its uid as that
 * namespace's parent sees it (schema/journal.sql: user_ns, parent_uid), and a reclaimer
 * in the initial user namespace checks those against the directory's owner
 * (mgrdir_journal_owner). Facts come from /proc/self/ns/user and /proc/self/uid_map
 * (user_namespaces(7)); nothing is kept.
 */
#ifndef SHMWARDEN_USERNS_H
#define SHMWARDEN_USERNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The inode of the initial user namespace's /proc/PID/ns/user: PROC_USER_INIT_INO, a
 * constant of the kernel (include/linux/proc_ns.h, since Linux 3.8). Namespaces made
 * later get inodes from 0xF0000000 up, so no other has it. */
#define USERNS_INIT_INO 0xEFFFFFFDu

struct userns_self {
	uint64_t ns;      /* inode of /proc/self/ns/user; 0 when it cannot be read */
	uid_t parent_uid; /* the uid asked about, as the parent namespace sees it (from
			   * /proc/self/uid_map); (uid_t)-1 when unmapped or unreadable. In
			   * the initial namespace (no parent) its map is the identity */
};

/* This process's user namespace, and uid as its parent sees it. Never fails: what
 * cannot be read is 0 / (uid_t)-1 (unknown), which reclaimers treat as unproven. */
void userns_self(uid_t uid, struct userns_self *out);

/* True when ns is the initial user namespace. */
bool userns_is_initial(uint64_t ns);

/* The outside uid that a uid_map text (lines "INSIDE OUTSIDE COUNT", as the kernel
 * writes it) gives uid, or (uid_t)-1 when no line maps it or the text is not such a
 * map (any malformed line, a range past 2^32): what cannot be read proves nothing. */
uid_t userns_map_outside(const char *map, uid_t uid);

#endif
