/* regcache.h — the registrations a manager committed in the last few seconds, by name.
 *
 * libshm's receiving process registers every tensor it receives with the sender's
 * manager, on its own connection, milliseconds after the sender registered the same
 * name (docs/PROTOCOL.md). The journal then already holds a committed row for that
 * name, so the manager can answer without a second commit (manager.c, conn_register,
 * says why that is safe). This module only remembers: which names, committed when, on
 * which connection. It is a direct-mapped cache of REGCACHE_SLOTS entries (a name
 * whose slot another takes is forgotten) and forgets on request; anything it no longer
 * holds is simply journaled again.
 */
#ifndef SHMWARDEN_REGCACHE_H
#define SHMWARDEN_REGCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* A manager's registrations in flight at once are few: a DataLoader keeps 2 batches per
 * worker of one or two tensors each, and each worker has its own manager. */
#define REGCACHE_SLOT_BITS 8
#define REGCACHE_SLOTS (1 << REGCACHE_SLOT_BITS)

struct regcache_entry {
	uint64_t hash;    /* 0: an empty slot */
	int64_t at_us;    /* CLOCK_MONOTONIC when the registration was staged */
	int64_t wall_s;   /* the same moment in unix seconds (the journal row's, or earlier) */
	uint64_t txn;     /* the transaction that staged it: committed once it is closed */
	unsigned conn_id; /* the connection that registered it */
	unsigned char len;
	char name[WIRE_NAME_FIELD];
};

struct regcache {
	struct regcache_entry slot[REGCACHE_SLOTS]; /* a name's slot: its hash's top bits */
	/* What a slot held before the open transaction first staged into it, so that a
	 * rollback gives the slot back: a committed name a staged one displaced is still
	 * journaled. Valid while undo_txn[i] == open_txn + 1 (0: nothing saved). */
	struct regcache_entry undo[REGCACHE_SLOTS];
	uint64_t undo_txn[REGCACHE_SLOTS];
	uint64_t open_txn; /* the transaction registrations are staged in now */
};

/* A name's hash (FNV-1a, then MurmurHash3's fmix64; never 0): computed once per
 * registration and passed to regcache_covers() and regcache_stage(), which trust it. */
uint64_t regcache_hash(const char *name, size_t len);

/* The slot a hash takes, 0 to REGCACHE_SLOTS - 1: names with the same slot displace
 * each other (tests use it to make them collide). */
unsigned regcache_slot(uint64_t hash);

/* Empties the cache; a zeroed struct is an empty cache too. Call it when the journal
 * may have lost rows the cache holds (a journal restored from what could be read). */
void regcache_clear(struct regcache *rc);

/* The open transaction was rolled back: what it staged never was journaled, and each
 * slot it staged into holds again what it held before (a committed registration the
 * rollback did not touch). */
void regcache_abort(struct regcache *rc);

/* Notes a registration just staged in the open transaction (by connection conn_id, at
 * now_us on CLOCK_MONOTONIC, wall_s in unix seconds; hash is regcache_hash(name, len)).
 * It counts only once regcache_commit() was called. A len of 0 or of WIRE_NAME_FIELD
 * or more is ignored. */
void regcache_stage(struct regcache *rc, uint64_t hash, const char *name, size_t len,
		    unsigned conn_id, int64_t now_us, int64_t wall_s);

/* The open transaction was committed: every registration staged so far is journaled. */
void regcache_commit(struct regcache *rc);

/* True (hash as for regcache_stage) when name's registration was committed less than window_us ago, has not been
 * forgotten since, and came on another connection than conn_id (a client registering
 * a name again on its own connection may be replacing its object: that is journaled
 * again, as before); *registered_s is then its time in unix seconds. False for anything
 * else, which is never wrong. */
bool regcache_covers(const struct regcache *rc, uint64_t hash, const char *name, size_t len,
		     unsigned conn_id, int64_t now_us, int64_t window_us, int64_t *registered_s);

/* The name's row is being deleted (a free, the prune): it must be journaled again. */
void regcache_forget(struct regcache *rc, const char *name, size_t len);

#endif
