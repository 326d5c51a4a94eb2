/* fuzz_journal.c — libFuzzer harness for reading a journal someone else wrote.
 *
 * The input is written as journal.db in a private directory, and when it contains the
 * marker FUZZ_WAL_MARK, what follows the marker becomes journal.db-wal (a hostile WAL
 * is replayed into what the reader sees). Then the journal is read the way `ls` and a
 * dry run do (JOURNAL_UNTRUSTED|JOURNAL_READONLY: open, every page of rows, the count)
 * and the way a real sweep does (JOURNAL_UNTRUSTED read-write: the same, plus dropping
 * the first row and committing, then a checkpoint at close). It must never crash, leak
 * or hang, and what it hands the reclaim engine must keep journal.h's promises: a row's
 * name is either a NUL-terminated copy of a short blob or empty, ids strictly increase
 * (the paging loop ends), and the manager row it trusts is well-formed.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "journal.h"
#include "log.h"

const char fuzz_harness_name[] = "fuzz_journal";

#define FUZZ_WAL_MARK "SHMWWAL!"
#define PAGE_ROWS 7 /* small, so multi-page cursors are exercised on small inputs */

static void check_meta(const struct journal_meta *m)
{
	/* What reclaim_dir acts on: who owns the objects, and which boot they are from. */
	FUZZ_CHECK(m->schema_version >= JOURNAL_SCHEMA_VERSION_MIN &&
		   m->schema_version <= JOURNAL_SCHEMA_VERSION);
	FUZZ_CHECK(m->has_shm_fs == (m->schema_version >= 2));
	/* Which /dev/shm directory and user namespace: only version 4 says; its parent
	 * uid is a uid or none, never a value past a uid's range. */
	FUZZ_CHECK(m->has_shm_root == (m->schema_version >= 4));
	FUZZ_CHECK(!m->has_userns || (m->schema_version >= 4 && m->user_ns != 0));
	FUZZ_CHECK(m->schema_version >= 4 || m->parent_uid == (uid_t)-1);
	FUZZ_CHECK(m->owner_uid != (uid_t)-1);
	FUZZ_CHECK(m->manager_pid > 0);
	FUZZ_CHECK(strlen(m->boot_id) == UTIL_BOOT_ID_LEN);
}

static void check_row(const struct journal_row *r)
{
	/* A name is handed over only as a NUL-terminated copy of a 2..59-byte blob. */
	FUZZ_CHECK(r->len >= 2 && r->len <= 59);
	FUZZ_CHECK(r->name[r->len] == '\0');
}

/* Two reads of the same page into buffers prefilled differently must agree on every
 * field a caller reads: a field journal_page leaves unset shows up as a difference (the
 * prune grace once read an uninitialised registered_at). */
static void check_same_rows(const struct journal_row *a, const struct journal_row *b, int n)
{
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(a[i].registered_at == b[i].registered_at);
		FUZZ_CHECK(a[i].identified == b[i].identified);
		FUZZ_CHECK(a[i].ino == b[i].ino && a[i].btime_ns == b[i].btime_ns);
		FUZZ_CHECK(a[i].len == b[i].len);
		FUZZ_CHECK(memcmp(a[i].name, b[i].name, a[i].len + 1) == 0);
	}
}

/* Byte order of names, as SQLite compares blobs: memcmp, then the shorter first. */
static int name_cmp(const struct journal_row *a, const struct journal_row *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->name, b->name, n);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Pages through every row; returns how many were seen, or -1 when a page failed. The
 * first row is copied to *first. */
static int64_t read_all(struct journal *j, struct journal_row *first)
{
	struct journal_row rows[PAGE_ROWS], again[PAGE_ROWS], after;
	int64_t seen = 0;
	bool resume = false;
	for (;;) {
		memset(rows, 0xaa, sizeof(rows));
		memset(again, 0x55, sizeof(again));
		int n = journal_page(j, resume ? &after : NULL, rows, PAGE_ROWS);
		if (n < 0)
			return -1;
		FUZZ_CHECK(n <= PAGE_ROWS);
		if (n == 0)
			return seen;
		FUZZ_CHECK(journal_page(j, resume ? &after : NULL, again, PAGE_ROWS) == n);
		check_same_rows(rows, again, n);
		for (int i = 0; i < n; i++) {
			check_row(&rows[i]);
			/* the cursor always advances */
			FUZZ_CHECK(!resume || name_cmp(&rows[i], &after) > 0);
			if (seen == 0 && i == 0)
				*first = rows[i];
			after = rows[i];
			resume = true;
		}
		seen += n;
	}
}

static void put_files(const char *dir, const uint8_t *data, size_t size)
{
	static const char *const files[] = { JOURNAL_FILE, JOURNAL_FILE "-wal",
					     JOURNAL_FILE "-shm" };
	char path[4200];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		FUZZ_CHECK(unlink(path) == 0 || errno == ENOENT);
	}
	const uint8_t *mark = memmem(data, size, FUZZ_WAL_MARK, strlen(FUZZ_WAL_MARK));
	size_t dblen = mark ? (size_t)(mark - data) : size;
	FUZZ_CHECK(fuzz_write_file(dir, JOURNAL_FILE, data, dblen) == 0);
	if (mark) {
		const uint8_t *wal = mark + strlen(FUZZ_WAL_MARK);
		FUZZ_CHECK(fuzz_write_file(dir, JOURNAL_FILE "-wal", wal,
					   size - (size_t)(wal - data)) == 0);
	}
}

static void read_journal(const char *dir, unsigned flags)
{
	struct journal *j = NULL;
	char err[512];
	if (journal_open(dir, flags, &j, err, sizeof(err)) < 0) {
		FUZZ_CHECK(j == NULL && err[0]);
		return;
	}
	check_meta(journal_meta(j));
	struct journal_row first;
	int64_t seen = read_all(j, &first);
	int64_t count = journal_count(j);
	FUZZ_CHECK(count >= -1);
	if (!(flags & JOURNAL_READONLY) && seen > 0) {
		/* The sweeper's write path: forget a row, commit, compact. */
		if (journal_forget(j, first.name, first.len) == 0)
			(void)journal_commit(j);
		else
			journal_rollback(j);
		FUZZ_CHECK(!journal_in_txn(j));
		(void)journal_compact(j);
	}
	journal_close(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *dir;
	if (!dir) {
		log_set_level(LOG_LVL_ERROR);
		dir = fuzz_private_dir("journal");
		FUZZ_CHECK(dir != NULL);
	}
	put_files(dir, data, size);
	read_journal(dir, JOURNAL_UNTRUSTED | JOURNAL_READONLY);
	put_files(dir, data, size);
	read_journal(dir, JOURNAL_UNTRUSTED);
	return 0;
}
