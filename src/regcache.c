/* regcache.c — the registrations a manager committed lately (see regcache.h).
 *
 * A linear scan of 256 slots by a 64-bit hash costs about what one system call does and
 * keeps the table a flat array inside the manager's struct: no allocation on the
 * register path, and nothing to free. */
#include <string.h>

#include "regcache.h"

/* FNV-1a, 64 bits: names differ in their last bytes (a counter, a random number), which
 * FNV mixes in last; 0 is kept for empty slots. */
static uint64_t regcache_hash(const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ull;
	}
	return h ? h : 1;
}

/* The slot holding name, or -1. */
static int regcache_find(const struct regcache *rc, uint64_t h, const char *name, size_t len)
{
	for (int i = 0; i < REGCACHE_SLOTS; i++) {
		const struct regcache_entry *e = &rc->slot[i];
		if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0)
			return i;
	}
	return -1;
}

void regcache_clear(struct regcache *rc)
{
	/* The transaction count goes on: an entry is committed only if staged before. */
	uint64_t txn = rc->open_txn;
	memset(rc, 0, sizeof(*rc));
	rc->open_txn = txn;
}

void regcache_stage(struct regcache *rc, const char *name, size_t len, unsigned conn_id,
		    int64_t now_us)
{
	if (len == 0 || len >= WIRE_NAME_FIELD)
		return;
	uint64_t h = regcache_hash(name, len);
	int i = regcache_find(rc, h, name, len);
	if (i < 0) {
		i = (int)rc->next;
		rc->next = (rc->next + 1) % REGCACHE_SLOTS;
	}
	struct regcache_entry *e = &rc->slot[i];
	*e = (struct regcache_entry){ .hash = h, .at_us = now_us, .txn = rc->open_txn,
				      .conn_id = conn_id, .len = (unsigned char)len };
	memcpy(e->name, name, len);
}

void regcache_abort(struct regcache *rc)
{
	for (int i = 0; i < REGCACHE_SLOTS; i++)
		if (rc->slot[i].hash && rc->slot[i].txn == rc->open_txn)
			memset(&rc->slot[i], 0, sizeof(rc->slot[i]));
}

void regcache_commit(struct regcache *rc)
{
	rc->open_txn++;
}

bool regcache_covers(const struct regcache *rc, const char *name, size_t len, unsigned conn_id,
		     int64_t now_us, int64_t window_us)
{
	if (len == 0 || len >= WIRE_NAME_FIELD || window_us <= 0)
		return false;
	int i = regcache_find(rc, regcache_hash(name, len), name, len);
	if (i < 0)
		return false;
	const struct regcache_entry *e = &rc->slot[i];
	return e->txn < rc->open_txn && e->conn_id != conn_id && now_us >= e->at_us &&
	       now_us - e->at_us < window_us;
}

void regcache_forget(struct regcache *rc, const char *name, size_t len)
{
	if (len == 0 || len >= WIRE_NAME_FIELD)
		return;
	int i = regcache_find(rc, regcache_hash(name, len), name, len);
	if (i >= 0)
		memset(&rc->slot[i], 0, sizeof(rc->slot[i]));
}
