/* test_regcache.c — the manager's memory of registrations it committed lately: only a
 * committed, unforgotten, fresh registration of another connection is covered. */
#include <stdint.h>

#include "check.h"
#include "regcache.h"

#define S 1000000 /* microseconds in a second */

/* 54 KiB (55,304 bytes on a 64-bit target: 2 x 256 entries of 104 bytes, and the undo
 * transactions): static, as inside the manager's struct, not on a test's stack. */
static struct regcache rc;
#ifdef __LP64__
_Static_assert(sizeof(rc) / 1024 == 54, "the size above is stale: measure and update it");
#endif

static bool covers(const char *name, unsigned conn, int64_t now_us)
{
	int64_t at = -1;
	bool yes = regcache_covers(&rc, regcache_hash(name, strlen(name)), name, strlen(name), conn,
				   now_us, 10 * S, &at);
	/* the second of the registration staged, never later than now */
	CHECK(!yes || (at >= 1700000000 && at <= 1700000000 + now_us / S));
	return yes;
}

static void stage(const char *name, unsigned conn, int64_t now_us)
{
	regcache_stage(&rc, regcache_hash(name, strlen(name)), name, strlen(name), conn, now_us,
		       1700000000 + now_us / S);
}

static void test_only_committed_registrations_count(void)
{
	regcache_clear(&rc);
	stage("/torch_1_2_0", 1, 0);
	CHECK(!covers("/torch_1_2_0", 2, 1)); /* staged: its commit may still fail */
	regcache_commit(&rc);
	CHECK(covers("/torch_1_2_0", 2, 1));
	CHECK(!covers("/torch_1_2_0", 1, 1)); /* its own connection: may replace the object */
	CHECK(!covers("/torch_1_2_1", 2, 1)); /* another name */
	CHECK(!covers("/torch_1_2_", 2, 1));  /* a prefix of it */
	/* Staged again: uncommitted until the next commit. */
	stage("/torch_1_2_0", 3, 5);
	CHECK(!covers("/torch_1_2_0", 2, 6));
	regcache_commit(&rc);
	CHECK(covers("/torch_1_2_0", 2, 6));
	CHECK(!covers("/torch_1_2_0", 3, 6));
}

static void test_rolled_back_batch_is_dropped(void)
{
	regcache_clear(&rc);
	stage("/kept", 1, 0);
	regcache_commit(&rc);
	stage("/lost", 1, 0);
	regcache_abort(&rc);
	regcache_commit(&rc); /* the next batch's commit must not revive it */
	CHECK(!covers("/lost", 2, 1));
	CHECK(covers("/kept", 2, 1));
}

/* A name staged in a batch that is rolled back leaves its slot as it was: a committed
 * name it took the slot from is still covered (the journal still holds that row).
 * Without this, a refused registration on a full disk made the receiver of a tensor
 * committed a moment earlier wait for a commit that could not come. */
static void test_rolled_back_batch_gives_slots_back(void)
{
	char other[32];
	int i = 0;
	/* A name that takes /held's slot: found by what the cache does, not how. */
	for (;; i++) {
		CHECK(i < 64 * REGCACHE_SLOTS);
		regcache_clear(&rc);
		stage("/held", 1, 0);
		regcache_commit(&rc);
		snprintf(other, sizeof(other), "/torch_7_%d", i);
		stage(other, 1, 0);
		regcache_commit(&rc);
		if (!covers("/held", 2, 1))
			break;
	}
	regcache_clear(&rc);
	stage("/held", 1, 0);
	regcache_commit(&rc);
	stage(other, 1, 0);
	stage(other, 3, 0); /* twice in the batch: the slot's state before it still comes back */
	regcache_abort(&rc);
	CHECK(covers("/held", 2, 1));
	CHECK(!covers(other, 2, 1));
	regcache_commit(&rc); /* the next commit revives nothing of the rolled-back batch */
	CHECK(covers("/held", 2, 1));
	CHECK(!covers(other, 2, 1));
	/* A slot that was empty is empty again. */
	regcache_clear(&rc);
	stage(other, 1, 0);
	regcache_abort(&rc);
	regcache_commit(&rc);
	CHECK(!covers(other, 2, 1));
	CHECK(!covers("/held", 2, 1));
	/* After a commit, the slot's earlier state is gone for good: a later rollback
	 * does not bring back the name the committed one replaced. */
	regcache_clear(&rc);
	stage("/held", 1, 0);
	regcache_commit(&rc);
	stage(other, 1, 0);
	regcache_commit(&rc);
	regcache_abort(&rc);
	CHECK(!covers("/held", 2, 1));
	CHECK(covers(other, 2, 1));
	/* A name forgotten in the rolled-back batch: its row's deletion was rolled back
	 * too, so the slot's committed entry may come back, but never the forgotten one's
	 * staged registration. */
	regcache_clear(&rc);
	stage("/held", 1, 0);
	regcache_commit(&rc);
	stage(other, 1, 0);
	regcache_forget(&rc, other, strlen(other));
	regcache_abort(&rc);
	CHECK(!covers(other, 2, 1));
	CHECK(covers("/held", 2, 1));
}

static void test_forgotten_and_stale_are_not_covered(void)
{
	regcache_clear(&rc);
	stage("/a", 1, 100);
	stage("/b", 1, 100);
	regcache_commit(&rc);
	regcache_forget(&rc, "/a", 2);
	CHECK(!covers("/a", 2, 200));
	CHECK(covers("/b", 2, 100 + 10 * S - 1));
	CHECK(!covers("/b", 2, 100 + 10 * S)); /* the window is open at its end */
	CHECK(!covers("/b", 2, 99));           /* a clock before the staging: never */
	int64_t at;
	CHECK(!regcache_covers(&rc, regcache_hash("/b", 2), "/b", 2, 2, 200, 0,
			       &at)); /* no grace, no cover */
	regcache_clear(&rc);
	CHECK(!covers("/b", 2, 200));
	regcache_forget(&rc, "/never", 6); /* forgetting what is not there is fine */
}

static void test_a_colliding_name_takes_the_slot(void)
{
	regcache_clear(&rc);
	char name[32];
	int n = 4 * REGCACHE_SLOTS, covered = 0;
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "/torch_9_%d", i);
		stage(name, 1, i);
	}
	regcache_commit(&rc);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "/torch_9_%d", i);
		covered += covers(name, 2, n);
	}
	/* At most one name per slot, and the last one staged always holds its slot. */
	CHECK(covered <= REGCACHE_SLOTS);
	CHECK(covered > REGCACHE_SLOTS / 2);
	CHECK(covers(name, 2, n));
	/* Names that differ only in their last byte mostly land apart. */
	regcache_clear(&rc);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "/torch_1234_5678_%d", i);
		stage(name, 1, 0);
	}
	regcache_commit(&rc);
	covered = 0;
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "/torch_1234_5678_%d", i);
		covered += covers(name, 2, 1);
	}
	CHECK(covered >= 7);
}

static void test_garbage_lengths_are_ignored(void)
{
	regcache_clear(&rc);
	char longname[WIRE_NAME_FIELD + 8];
	memset(longname, 'x', sizeof(longname));
	longname[0] = '/';
	int64_t at;
	regcache_stage(&rc, regcache_hash(longname, sizeof(longname)), longname, sizeof(longname),
		       1, 0, 0);
	regcache_stage(&rc, regcache_hash("", 0), "", 0, 1, 0, 0);
	regcache_commit(&rc);
	CHECK(!regcache_covers(&rc, regcache_hash(longname, sizeof(longname)), longname,
			       sizeof(longname), 2, 1, 10 * S, &at));
	CHECK(!regcache_covers(&rc, regcache_hash("", 0), "", 0, 2, 1, 10 * S, &at));
	regcache_forget(&rc, longname, sizeof(longname));
	/* The longest valid name works. */
	regcache_stage(&rc, regcache_hash(longname, WIRE_NAME_MAX), longname, WIRE_NAME_MAX, 1, 0,
		       0);
	regcache_commit(&rc);
	CHECK(regcache_covers(&rc, regcache_hash(longname, WIRE_NAME_MAX), longname, WIRE_NAME_MAX,
			      2, 1, 10 * S, &at));
}

int main(void)
{
	RUN(test_only_committed_registrations_count);
	RUN(test_rolled_back_batch_is_dropped);
	RUN(test_rolled_back_batch_gives_slots_back);
	RUN(test_forgotten_and_stale_are_not_covered);
	RUN(test_a_colliding_name_takes_the_slot);
	RUN(test_garbage_lengths_are_ignored);
	return check_done();
}
