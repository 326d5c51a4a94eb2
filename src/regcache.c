/* regcache.c — the registrations a manager committed lately (see regcache.h).
 *
 * Direct-mapped by a 64-bit hash of the name: one slot to look at per registration, no
 * allocation on the register path, and nothing to free. A collision only forgets, and
 * a forgotten name costs one commit, as before. */
#include <string.h>

#include "regcache.h"

/* FNV-1a, 64 bits, then MurmurHash3's fmix64 finalizer: FNV alone leaves a name's last
 * bytes (the counter that tells libshm's names apart) out of its top bits, which pick
 * the slot. 0 is kept for empty slots. */
uint64_t regcache_hash(const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h ? h : 1;
}

unsigned regcache_slot(uint64_t h)
{
	return (unsigned)(h >> (64 - REGCACHE_SLOT_BITS));
}

/* The slot holding name, or -1. */
static int regcache_find(const struct regcache *rc, uint64_t h, const char *name, size_t len)
{
	int i = (int)regcache_slot(h);
	const struct regcache_entry *e = &rc->slot[i];
	if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0)
		return i;
	return -1;
}

void regcache_clear(struct regcache *rc)
{
	/* The transaction count goes on: an entry is committed only if staged before. */
	uint64_t txn = rc->open_txn;
	memset(rc, 0, sizeof(*rc));
	rc->open_txn = txn;
}

void regcache_stage(struct regcache *rc, uint64_t h, const char *name, size_t len, unsigned conn_id,
		    int64_t now_us, int64_t wall_s)
{
	if (len == 0 || len >= WIRE_NAME_FIELD)
		return;
	unsigned i = regcache_slot(h);
	struct regcache_entry *e = &rc->slot[i];
	if (rc->undo_txn[i] != rc->open_txn + 1) {
		rc->undo[i] = *e;
		rc->undo_txn[i] = rc->open_txn + 1;
	}
	*e = (struct regcache_entry){ .hash = h,
				      .at_us = now_us,
				      .wall_s = wall_s,
				      .txn = rc->open_txn,
				      .conn_id = conn_id,
				      .len = (unsigned char)len };
	memcpy(e->name, name, len);
}

void regcache_abort(struct regcache *rc)
{
	for (int i = 0; i < REGCACHE_SLOTS; i++) {
		/* Only slots the batch staged into changed: each got its undo. */
		if (rc->undo_txn[i] == rc->open_txn + 1) {
			/* What the slot held before the batch: an empty slot, or a committed
			 * registration whose row the rollback left in the journal (a free of
			 * it in this batch was rolled back too). */
			rc->slot[i] = rc->undo[i];
			rc->undo_txn[i] = 0;
		}
	}
}

void regcache_commit(struct regcache *rc)
{
	rc->open_txn++;
}

bool regcache_covers(const struct regcache *rc, uint64_t h, const char *name, size_t len,
		     unsigned conn_id, int64_t now_us, int64_t window_us, int64_t *registered_s)
{
	if (len == 0 || len >= WIRE_NAME_FIELD || window_us <= 0)
		return false;
	int i = regcache_find(rc, h, name, len);
	if (i < 0)
		return false;
	const struct regcache_entry *e = &rc->slot[i];
	if (e->txn >= rc->open_txn || e->conn_id == conn_id || now_us < e->at_us ||
	    now_us - e->at_us >= window_us)
		return false;
	*registered_s = e->wall_s;
	return true;
}

void regcache_forget(struct regcache *rc, const char *name, size_t len)
{
	if (len == 0 || len >= WIRE_NAME_FIELD)
		return;
	int i = regcache_find(rc, regcache_hash(name, len), name, len);
	if (i >= 0)
		memset(&rc->slot[i], 0, sizeof(rc->slot[i]));
}
