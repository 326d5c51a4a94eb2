/* test_journal.c — the journal against real SQLite files: round trips, transactions, paging,
 * hostile and damaged files, a SIGKILLed writer, a write that fails mid-batch, and the
 * bound on the files' size after a long register/free history (invariant 7).
 * Connections are opened only in one process at a time: never fork() with one open. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "journal.h"
#include "shmobj.h"
#include "util.h"

static char err[512];

static struct journal_meta test_meta(void)
{
	struct journal_meta meta;
	memset(&meta, 0, sizeof(meta));
	meta.owner_uid = getuid();
	meta.manager_pid = getpid();
	meta.created_at = 1700000000;
	if (util_boot_id(meta.boot_id, sizeof(meta.boot_id), err, sizeof(err)) < 0)
		util_strlcpy(meta.boot_id, "00000000-0000-0000-0000-000000000000",
			     sizeof(meta.boot_id));
	return meta;
}

/* The path of journal.db + suffix in the test's directory. Four rotating buffers, so
 * that several calls in one expression (whose order C leaves open) do not clash. */
static const char *file_in_dir(const char *suffix)
{
	static char paths[4][600];
	static unsigned next;
	char *path = paths[next++ % 4];
	snprintf(path, sizeof(paths[0]), "%s/%s%s", check_tmpdir, JOURNAL_FILE, suffix);
	return path;
}

static struct journal *create_journal(void)
{
	struct journal_meta meta = test_meta();
	struct journal *j = NULL;
	int rc = journal_create(check_tmpdir, &meta, &j, err, sizeof(err));
	CHECK(rc == 0);
	if (rc < 0)
		printf("# create: %s\n", err);
	return j;
}

/* The manager row read back is the one written, a current schema's. */
static void check_meta_as_written(const struct journal_meta *m, const struct journal_meta *meta)
{
	CHECK_EQ_INT(m->schema_version, JOURNAL_SCHEMA_VERSION);
	CHECK_EQ_INT(m->owner_uid, meta->owner_uid);
	CHECK_EQ_INT(m->manager_pid, meta->manager_pid);
	CHECK_EQ_INT(m->created_at, meta->created_at);
	CHECK(strcmp(m->boot_id, meta->boot_id) == 0);
}

static struct journal *open_journal(unsigned flags)
{
	struct journal *j = NULL;
	if (journal_open(check_tmpdir, flags, &j, err, sizeof(err)) < 0)
		printf("# open: %s\n", err);
	CHECK(j != NULL);
	return j;
}

static size_t test_name(char *buf, size_t size, int i)
{
	/* Zero-padded: rows come back in name order, which is then index order. */
	return (size_t)snprintf(buf, size, "/torch_%d_%06d", (int)getpid(), i);
}

static int add_named(struct journal *j, int i)
{
	char name[64];
	size_t len = test_name(name, sizeof(name), i);
	return journal_add(j, name, len, 42, 1700000000 + i);
}

static int forget_named(struct journal *j, int i)
{
	char name[64];
	size_t len = test_name(name, sizeof(name), i);
	return journal_forget(j, name, len);
}

/* Runs SQL on the journal file with a plain connection, as a foreign writer would. */
static int raw_exec(const char *sql)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(file_in_dir(""), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
				 NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		printf("# raw_exec: %s\n", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int64_t raw_int(const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_open_v2(file_in_dir(""), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Opens the directory's journal and expects a failure whose message contains want:
 * -ENODATA for a database without any schema (nothing was ever journaled), else -1. */
static void expect_open_fails(unsigned flags, const char *want)
{
	struct journal *j = NULL;
	err[0] = '\0';
	int rc = journal_open(check_tmpdir, flags, &j, err, sizeof(err));
	CHECK_EQ_INT(rc, strstr(want, "empty database") ? -ENODATA : -1);
	CHECK(j == NULL);
	if (!strstr(err, want))
		printf("# expected '%s' in: %s\n", want, err);
	CHECK(strstr(err, want) != NULL);
	journal_close(j);
}

/* The journal's objects table made lax (STRICT dropped from its text): a released
 * version's schema relaxed is refused as any other, at that table, against the verbatim
 * schema_file of its version. */
static void expect_relaxed_objects_refused(const char *schema_file)
{
	CHECK_EQ_INT(raw_exec("PRAGMA writable_schema=ON;"
			      "UPDATE sqlite_schema SET sql = replace(sql, ') STRICT,', '),')"
			      " WHERE name = 'objects'; PRAGMA writable_schema=RESET;"),
		     0);
	char want[128];
	snprintf(want, sizeof(want), "journal schema differs from %s at 'objects'", schema_file);
	expect_open_fails(JOURNAL_UNTRUSTED, want);
}

static mode_t file_mode(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

static off_t journal_files_size(void)
{
	return file_size(file_in_dir("")) + file_size(file_in_dir("-wal")) +
	       file_size(file_in_dir("-shm"));
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

static void test_create_and_reopen(void)
{
	struct journal_meta meta = test_meta();
	struct journal *j = create_journal();
	if (!j)
		return;
	check_meta_as_written(journal_meta(j), &meta);
	CHECK_EQ_INT(file_mode(file_in_dir("")), 0600);
	CHECK_EQ_INT(file_mode(file_in_dir("-wal")), 0600);
	CHECK_EQ_INT(file_mode(file_in_dir("-shm")), 0600);
	CHECK_EQ_INT(add_named(j, 1), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	journal_close(j);

	CHECK_EQ_INT(raw_int("PRAGMA auto_vacuum"), 2); /* INCREMENTAL */
	CHECK_EQ_INT(raw_int("SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
	static const unsigned flag_sets[] = { 0, JOURNAL_UNTRUSTED, JOURNAL_READONLY,
					      JOURNAL_UNTRUSTED | JOURNAL_READONLY };
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		j = open_journal(flag_sets[i]);
		if (!j)
			continue;
		check_meta_as_written(journal_meta(j), &meta);
		CHECK_EQ_INT(journal_count(j), 1);
		journal_close(j);
	}
}

static void test_create_ignores_umask(void)
{
	mode_t old = umask(0277);
	struct journal *j = create_journal();
	umask(old);
	if (!j)
		return;
	CHECK_EQ_INT(add_named(j, 1), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(file_mode(file_in_dir("")), 0600);
	CHECK_EQ_INT(file_mode(file_in_dir("-wal")), 0600);
	CHECK_EQ_INT(file_mode(file_in_dir("-shm")), 0600);
	journal_close(j);
}

static void test_create_refuses_existing(void)
{
	struct journal_meta meta = test_meta();
	struct journal *j = create_journal(), *again = NULL;
	if (!j)
		return;
	CHECK_EQ_INT(add_named(j, 1), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	journal_close(j);
	CHECK_EQ_INT(journal_create(check_tmpdir, &meta, &again, err, sizeof(err)), -1);
	CHECK(again == NULL);
	CHECK(strstr(err, "already exists") != NULL);
	j = open_journal(JOURNAL_UNTRUSTED); /* the first journal is untouched */
	if (j)
		CHECK_EQ_INT(journal_count(j), 1);
	journal_close(j);

	/* A leftover WAL without its database would be replayed into a new one. */
	CHECK_EQ_INT(unlink(file_in_dir("")), 0);
	write_file(file_in_dir("-wal"), "x", 1);
	CHECK_EQ_INT(journal_create(check_tmpdir, &meta, &again, err, sizeof(err)), -1);
	CHECK(strstr(err, "leftover journal.db-wal") != NULL);
	CHECK(access(file_in_dir(""), F_OK) < 0);
}

static void test_create_refuses_bad_meta(void)
{
	struct journal_meta meta = test_meta();
	struct journal *j = NULL;
	util_strlcpy(meta.boot_id, "short", sizeof(meta.boot_id));
	CHECK_EQ_INT(journal_create(check_tmpdir, &meta, &j, err, sizeof(err)), -1);
	meta = test_meta();
	meta.manager_pid = 0;
	CHECK_EQ_INT(journal_create(check_tmpdir, &meta, &j, err, sizeof(err)), -1);
	CHECK(j == NULL);
	CHECK(access(file_in_dir(""), F_OK) < 0);
	char missing[600];
	snprintf(missing, sizeof(missing), "%s/nonexistent", check_tmpdir);
	meta = test_meta();
	CHECK_EQ_INT(journal_create(missing, &meta, &j, err, sizeof(err)), -1);
	CHECK_EQ_INT(journal_open(missing, 0, &j, err, sizeof(err)), -1);
	CHECK(strstr(err, "No such file") != NULL);
}

static void test_add_forget_count(void)
{
	struct journal *j = create_journal();
	if (!j)
		return;
	CHECK(!journal_in_txn(j));
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(add_named(j, i), 0);
	CHECK(journal_in_txn(j));
	CHECK_EQ_INT(add_named(j, 2), 0); /* a duplicate updates its row, not an error */
	CHECK_EQ_INT(journal_count(j), 5);
	CHECK_EQ_INT(forget_named(j, 0), 0);
	CHECK_EQ_INT(forget_named(j, 99), 0); /* absent names are fine */
	struct journal_row rows[8];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 8), 4);
	CHECK_EQ_INT(journal_forget(j, rows[0].name, rows[0].len), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK(!journal_in_txn(j));
	CHECK_EQ_INT(journal_count(j), 3);
	journal_close(j);

	j = open_journal(0);
	if (!j)
		return;
	char want[64];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 8), 3);
	for (int i = 0; i < 3; i++) {
		size_t len = test_name(want, sizeof(want), i + 2);
		CHECK_EQ_INT(rows[i].len, len);
		CHECK(strcmp(rows[i].name, want) == 0);
		CHECK(rows[i].registered_at == 1700000000 || rows[i].registered_at > 0);
	}
	journal_close(j);
}

/* The caller's second from time() (the coarse clock) may lag the realtime clock that
 * gives the fraction: a row dated by the lagging second plus the next second's fraction
 * was a whole second early, and pruned that much before its grace ended. */
static void test_add_with_a_lagging_second_is_not_dated_early(void)
{
	struct journal *j = create_journal();
	if (!j)
		return;
	char name[64];
	size_t len = test_name(name, sizeof(name), 1);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t before_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	CHECK_EQ_INT(journal_add(j, name, len, 7, (int64_t)ts.tv_sec - 1), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	struct journal_row rows[2];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 2), 1);
	CHECK(rows[0].registered_us >= before_us);
	journal_close(j);
}

/* A name registered again restarts its grace: the row takes the new time and pid. */
static void test_add_again_restarts_grace(void)
{
	struct journal *j = create_journal();
	if (!j)
		return;
	char name[64];
	size_t len = test_name(name, sizeof(name), 1);
	CHECK_EQ_INT(journal_add(j, name, len, 7, 1000), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_add(j, name, len, 8, 2000), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	struct journal_row rows[2];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 2), 1);
	CHECK_EQ_INT(rows[0].registered_at, 2000);
	CHECK_EQ_INT(journal_count(j), 1);
	journal_close(j);
}

static void test_add_refuses_bad_lengths(void)
{
	struct journal *j = create_journal();
	if (!j)
		return;
	char name[64];
	memset(name, 'a', sizeof(name));
	name[0] = '/';
	CHECK_EQ_INT(journal_add(j, name, 0, 1, 1), -1);
	CHECK(strstr(journal_error(j), "out of range") != NULL);
	CHECK_EQ_INT(journal_add(j, name, 1, 1, 1), -1);
	CHECK_EQ_INT(journal_add(j, name, 60, 1, 1), -1); /* the wire field holds 59 + NUL */
	CHECK_EQ_INT(journal_add(j, name, 59, 1, 1), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_count(j), 1);
	journal_close(j);
}

static void test_rollback_and_empty_commit(void)
{
	struct journal *j = create_journal();
	if (!j)
		return;
	CHECK_EQ_INT(journal_commit(j), 0); /* nothing open: a no-op */
	CHECK(!journal_in_txn(j));
	CHECK_EQ_INT(add_named(j, 1), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(add_named(j, 2), 0);
	CHECK_EQ_INT(forget_named(j, 1), 0);
	CHECK_EQ_INT(journal_count(j), 1);
	journal_rollback(j);
	CHECK(!journal_in_txn(j));
	CHECK_EQ_INT(journal_count(j), 1);
	CHECK_EQ_INT(journal_begin(j), 0);
	CHECK_EQ_INT(journal_begin(j), 0); /* nested begin is a no-op */
	CHECK_EQ_INT(add_named(j, 3), 0);
	CHECK_EQ_INT(journal_compact(j), -1);
	CHECK(strstr(journal_error(j), "inside a transaction") != NULL);
	journal_close(j); /* rolls back */
	j = open_journal(0);
	if (!j)
		return;
	struct journal_row row;
	char want[64];
	test_name(want, sizeof(want), 1);
	CHECK_EQ_INT(journal_page(j, NULL, &row, 1), 1);
	CHECK(strcmp(row.name, want) == 0);
	CHECK_EQ_INT(journal_count(j), 1);
	CHECK_EQ_INT(journal_compact(j), 0);
	journal_close(j);
}

static void test_readonly_never_writes(void)
{
	struct journal *j = create_journal();
	if (!j)
		return;
	CHECK_EQ_INT(add_named(j, 1), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	journal_close(j);
	j = open_journal(JOURNAL_READONLY);
	if (!j)
		return;
	CHECK_EQ_INT(add_named(j, 2), -1);
	CHECK(strstr(journal_error(j), "read-only") != NULL);
	CHECK_EQ_INT(journal_forget(j, "/x", 2), -1);
	CHECK_EQ_INT(journal_compact(j), -1);
	CHECK(!journal_in_txn(j));
	CHECK_EQ_INT(journal_count(j), 1);
	journal_close(j);
}

/* Walks the table in small pages while forgetting rows ahead of and at the cursor and
 * adding new ones: every row that lived throughout is seen once, in name order; names
 * added behind the cursor are not seen, names added ahead of it are. */
static void test_page_through_changes(void)
{
	enum { N = 1000, PAGE = 7, EXTRA = 100 };
	struct journal *j = create_journal();
	if (!j)
		return;
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(add_named(j, i), 0);
	CHECK_EQ_INT(journal_commit(j), 0);

	static char seen[N + EXTRA], forgot[N];
	memset(seen, 0, sizeof(seen));
	memset(forgot, 0, sizeof(forgot));
	struct journal_row rows[PAGE], cursor;
	int pages = 0, added = 0, n, last = -1;
	bool resume = false;
	while ((n = journal_page(j, resume ? &cursor : NULL, rows, PAGE)) > 0) {
		int idx = -1;
		for (int r = 0; r < n; r++) {
			CHECK(sscanf(rows[r].name, "/torch_%*d_%d", &idx) == 1);
			CHECK(idx > last); /* strictly ascending: nothing twice */
			last = idx;
			if (idx >= 0 && idx < N + EXTRA)
				seen[idx]++;
		}
		cursor = rows[n - 1];
		resume = true;
		/* Between pages: forget a row not seen yet and the cursor's own row, and
		 * add one name behind the cursor (never seen) and, early on, one ahead. */
		if (idx + 3 < N && pages % 3 == 0) {
			CHECK_EQ_INT(forget_named(j, idx + 3), 0);
			forgot[idx + 3] = 1;
		}
		CHECK_EQ_INT(journal_forget(j, cursor.name, cursor.len), 0);
		char behind[64];
		int blen = snprintf(behind, sizeof(behind), "/torch_%d_%06d_b", (int)getpid(),
				    idx > 0 ? idx - 1 : 0);
		CHECK_EQ_INT(journal_add(j, behind, (size_t)blen, 1, 1), 0);
		if (added < EXTRA)
			CHECK_EQ_INT(add_named(j, N + added++), 0);
		CHECK_EQ_INT(journal_commit(j), 0);
		pages++;
	}
	CHECK_EQ_INT(n, 0);
	for (int i = 0; i < N + added; i++) {
		int want = i < N && forgot[i] ? 0 : 1;
		if (seen[i] != want)
			printf("# name %d seen %d times, want %d\n", i, seen[i], want);
		CHECK_EQ_INT(seen[i], want);
	}
	CHECK_EQ_INT(added, EXTRA);
	CHECK(pages > N / PAGE);
	struct journal_row end = { .len = 2, .name = "/~" }; /* sorts after every /torch_ */
	CHECK_EQ_INT(journal_page(j, &end, rows, PAGE), 0);
	CHECK_EQ_INT(journal_page(j, NULL, rows, 0), 0);
	journal_close(j);
}

static void test_untrusted_zero_byte_file(void)
{
	write_file(file_in_dir(""), "", 0);
	expect_open_fails(JOURNAL_UNTRUSTED, "empty database, not a shmwarden journal");
	expect_open_fails(0, "empty database, not a shmwarden journal");
}

/* What a manager killed after SQLite wrote the database header but before the schema
 * committed leaves (1024 bytes: page_size and WAL mode, no table): nothing journaled. */
static void test_header_only_file_is_empty(void)
{
	sqlite3 *db = NULL;
	CHECK(sqlite3_open(file_in_dir(""), &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
			   "PRAGMA page_size=1024; PRAGMA auto_vacuum=INCREMENTAL;"
			   "PRAGMA journal_mode=WAL;",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	struct stat st;
	CHECK(stat(file_in_dir(""), &st) == 0 && st.st_size == 1024);
	expect_open_fails(JOURNAL_UNTRUSTED, "empty database, not a shmwarden journal");
}

static void test_untrusted_random_bytes(void)
{
	static unsigned char junk[16384];
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		junk[i] = (unsigned char)x;
	}
	write_file(file_in_dir(""), junk, sizeof(junk));
	expect_open_fails(JOURNAL_UNTRUSTED, "not a database");
	expect_open_fails(JOURNAL_UNTRUSTED | JOURNAL_READONLY, "not a database");
	expect_open_fails(0, "not a database");
}

static void test_untrusted_truncated(void)
{
	struct journal *j = create_journal();
	if (!j)
		return;
	char name[64];
	for (int i = 0; i < 5000; i++) {
		int len = snprintf(name, sizeof(name), "/torch_%08d_padding_padding_padding", i);
		CHECK_EQ_INT(journal_add(j, name, (size_t)len, 1, i), 0);
	}
	CHECK_EQ_INT(journal_commit(j), 0);
	journal_close(j);
	off_t size = file_size(file_in_dir(""));
	CHECK(size > 100000);
	CHECK_EQ_INT(truncate(file_in_dir(""), size / 2), 0);
	expect_open_fails(JOURNAL_UNTRUSTED, "corrupt");
}

static void test_untrusted_foreign_database(void)
{
	CHECK_EQ_INT(raw_exec("PRAGMA application_id=42; CREATE TABLE t(x);"), 0);
	expect_open_fails(JOURNAL_UNTRUSTED, "not a shmwarden journal");
	expect_open_fails(0, "not a shmwarden journal");
}

static void test_untrusted_future_version(void)
{
	CHECK_EQ_INT(raw_exec("PRAGMA application_id=1936223607; PRAGMA user_version=7;"
			      "CREATE TABLE manager(id INTEGER PRIMARY KEY, x);"),
		     0);
	expect_open_fails(JOURNAL_UNTRUSTED,
			  "journal schema version 7 is newer than this shmwarden (4)");
	expect_open_fails(0, "journal schema version 7 is newer than this shmwarden (4)");
}

/* Our tables with the constraints relaxed: right ids, right names, wrong rules. */
static void test_untrusted_relaxed_schema(void)
{
	CHECK_EQ_INT(raw_exec("PRAGMA application_id=1936223607; PRAGMA user_version=1;"
			      "CREATE TABLE manager (id INTEGER PRIMARY KEY, owner_uid INTEGER,"
			      " manager_pid INTEGER, boot_id TEXT, created_at INTEGER);"
			      "CREATE TABLE objects (id INTEGER PRIMARY KEY, name BLOB,"
			      " client_pid INTEGER, registered_at INTEGER);"
			      "INSERT INTO manager VALUES (1, 0, 1, "
			      "'00000000-0000-0000-0000-000000000000', 0);"
			      "INSERT INTO objects VALUES (1, NULL, 1, 1), (2, '/a', 1, 1),"
			      " (3, '/a', 1, 1);"),
		     0);
	expect_open_fails(JOURNAL_UNTRUSTED, "journal schema differs");
}

/* A row learns its object once: born by the end of the window after its registration
 * (before it too: a receiver registers an object that already exists), not twice, and a
 * new registration of the name forgets it (the client may replace the object). */
static void test_identity_learned_once(void)
{
	struct journal_meta meta = test_meta();
	meta.has_shm_fs = true;
	meta.shm_dev = 0x2a;
	meta.mnt_ns = 4026531840ULL;
	meta.has_shm_root = true;
	meta.shm_ino = 77;
	meta.shm_btime_ns = 1700000000123456789;
	meta.has_userns = true;
	meta.user_ns = 4026532001ULL;
	meta.parent_uid = 1001;
	struct journal *j = NULL;
	CHECK(journal_create(check_tmpdir, &meta, &j, err, sizeof(err)) == 0);
	if (!j)
		return;
	const int64_t reg = 1700000000, ns = 1000000000;
	CHECK_EQ_INT(journal_add(j, "/pin", 4, 7, reg), 0);
	CHECK_EQ_INT(journal_add(j, "/late", 5, 7, reg), 0);
	CHECK_EQ_INT(journal_add(j, "/early", 6, 7, reg), 0);
	CHECK_EQ_INT(journal_identify(j, "/pin", 4, 11, (reg + 3) * ns + 5, 10), 0);
	CHECK_EQ_INT(journal_identify(j, "/pin", 4, 12, (reg + 4) * ns, 10), 0); /* kept */
	CHECK_EQ_INT(journal_identify(j, "/late", 5, 13, (reg + 11) * ns, 10), 0);
	CHECK_EQ_INT(journal_identify(j, "/early", 6, 14, (reg - 2) * ns, 10), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	journal_close(j);

	j = open_journal(JOURNAL_UNTRUSTED);
	if (!j)
		return;
	const struct journal_meta *m = journal_meta(j);
	CHECK(m->has_shm_fs && m->shm_dev == 0x2a && m->mnt_ns == 4026531840ULL);
	CHECK(m->schema_version == 4 && m->has_shm_root && m->shm_ino == 77 &&
	      m->shm_btime_ns == 1700000000123456789);
	CHECK(m->has_userns && m->user_ns == 4026532001ULL && m->parent_uid == 1001);
	struct journal_row rows[4];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 4), 3);
	/* Name order: /early, /late, /pin. */
	CHECK(strcmp(rows[0].name, "/early") == 0 && rows[0].identified && rows[0].ino == 14);
	CHECK(strcmp(rows[1].name, "/late") == 0 && !rows[1].identified);
	CHECK(strcmp(rows[2].name, "/pin") == 0 && rows[2].identified);
	CHECK(rows[2].ino == 11 && rows[2].btime_ns == (reg + 3) * ns + 5);
	CHECK_EQ_INT(journal_add(j, "/pin", 4, 8, reg + 100), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_page(j, NULL, rows, 4), 3);
	CHECK(!rows[2].identified && rows[2].registered_at == reg + 100);
	/* The old registration's identity is stale: a sweep of the range drops it, and the
	 * new registration learns its own. */
	CHECK_EQ_INT(raw_int("SELECT count(*) FROM identities"), 2);
	CHECK_EQ_INT(journal_drop_stale_identities(j, NULL, NULL), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(raw_int("SELECT count(*) FROM identities"), 1); /* /early's */
	CHECK_EQ_INT(journal_identify(j, "/pin", 4, 21, (reg + 101) * ns, 10), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_page(j, NULL, rows, 4), 3);
	CHECK(rows[2].identified && rows[2].ino == 21);
	CHECK_EQ_INT(journal_forget(j, "/pin", 4), 0);
	CHECK_EQ_INT(journal_add(j, "/pin", 4, 8, reg + 101), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_page(j, NULL, rows, 4), 3);
	CHECK(!rows[2].identified); /* registered again, even within the second: forgotten */
	/* Adoption keeps registration time and identity; a name already here stays. */
	struct journal_row adopted = { .registered_at = reg,
				       .registered_us = reg * 1000000,
				       .identified = true,
				       .ino = 99,
				       .btime_ns = reg * ns,
				       .len = 4,
				       .name = "/new" };
	CHECK_EQ_INT(journal_adopt(j, &adopted), 0);
	adopted.len = 4;
	memcpy(adopted.name, "/pin", 5);
	CHECK_EQ_INT(journal_adopt(j, &adopted), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_page(j, NULL, rows, 4), 4);
	CHECK(strcmp(rows[2].name, "/new") == 0 && rows[2].identified && rows[2].ino == 99 &&
	      rows[2].registered_at == reg);
	CHECK(strcmp(rows[3].name, "/pin") == 0 && !rows[3].identified);
	journal_close(j);
	/* Half an identity is refused by the schema itself. */
	CHECK_EQ_INT(raw_exec("INSERT INTO identities VALUES (X'2F6861', 1, 5, NULL);"), -1);
	CHECK_EQ_INT(raw_exec("INSERT INTO identities VALUES (X'2F6861', 1, NULL, 5);"), -1);
	CHECK_EQ_INT(raw_exec("INSERT INTO identities VALUES (X'2F', 1, 5, 5);"), -1);
}

/* The window a row's identity is learned in ends window_s after the registration's
 * microsecond, to the nanosecond (shmobj_born_by's rule, applied in SQL): whole seconds
 * took an object born 10.35 s after a registration at x.05 s for the row's. */
static void test_identify_window_to_the_nanosecond(void)
{
	struct journal_meta meta = test_meta();
	struct journal *j = NULL;
	CHECK(journal_create(check_tmpdir, &meta, &j, err, sizeof(err)) == 0);
	if (!j)
		return;
	const int64_t reg_us = 1700000000050000LL, s = 1000000000;
	const char *names[] = { "/at_end", "/early", "/huge", "/late", "/past_end" };
	for (int i = 0; i < 5; i++) {
		struct journal_row row = { .len = strlen(names[i]),
					   .registered_us = i == 2 ? INT64_MAX : reg_us };
		memcpy(row.name, names[i], row.len + 1);
		CHECK_EQ_INT(journal_adopt(j, &row), 0);
	}
	CHECK_EQ_INT(journal_identify(j, "/at_end", 7, 1, reg_us * 1000 + 10 * s, 10), 0);
	CHECK_EQ_INT(journal_identify(j, "/early", 6, 2, reg_us * 1000 - 3600 * s, 10), 0);
	CHECK_EQ_INT(journal_identify(j, "/huge", 5, 3, reg_us * 1000, 10), 0);
	CHECK_EQ_INT(journal_identify(j, "/late", 5, 4, 1700000010LL * s + 350000000, 10), 0);
	CHECK_EQ_INT(journal_identify(j, "/past_end", 9, 5, reg_us * 1000 + 10 * s + 1, 10), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	struct journal_row rows[6];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 6), 5);
	CHECK(rows[0].identified && rows[0].ino == 1);
	CHECK(rows[1].identified && rows[1].ino == 2);
	CHECK(rows[2].identified && rows[2].ino == 3); /* a window past the clock's end */
	CHECK(!rows[3].identified);
	CHECK(!rows[4].identified);
	CHECK(!rows[0].registered_cut && journal_row_earliest_us(&rows[0]) == reg_us);
	journal_close(j);
}

extern const char journal_schema_v1_sql[];

/* A journal of release 0.1.0 (schema version 1, built from its verbatim schema text) is
 * still opened, checked exactly and read, its rows unidentified and its filesystem
 * unknown; a relaxed version 1 schema is still refused. */
static void test_version1_journal(void)
{
	char sql[2048];
	snprintf(sql, sizeof(sql),
		 "%s INSERT INTO manager VALUES (1, %u, 1, "
		 "'00000000-0000-0000-0000-000000000000', 0);"
		 "INSERT INTO objects VALUES (X'2F61', 1, 1700000000), (X'2F62', 1, 1700000001);",
		 journal_schema_v1_sql, (unsigned)getuid());
	CHECK_EQ_INT(raw_exec(sql), 0);
	struct journal *j = open_journal(JOURNAL_UNTRUSTED);
	if (!j)
		return;
	const struct journal_meta *m = journal_meta(j);
	CHECK_EQ_INT(m->schema_version, 1);
	CHECK(!m->has_shm_fs);
	struct journal_row rows[4];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 4), 2);
	CHECK(!rows[0].identified && rows[0].registered_at == 1700000000);
	/* Seconds, cut: the registration may have been as late as the second's last
	 * microsecond, where a grace must start so it is never short. */
	CHECK_EQ_INT(rows[0].registered_us, 1700000000LL * 1000000 + 999999);
	/* ...and as early as its first, where the birth window must start so it is never
	 * longer than 10 s: an object born past the second 10 s later may be 10.x s younger
	 * than the registration. */
	CHECK(rows[0].registered_cut);
	CHECK_EQ_INT(journal_row_earliest_us(&rows[0]), 1700000000LL * 1000000);
	CHECK(shmobj_born_by(1700000010LL * 1000000000, journal_row_earliest_us(&rows[0]), 10));
	CHECK(!shmobj_born_by(1700000010LL * 1000000000 + 1, journal_row_earliest_us(&rows[0]),
			      10));
	CHECK_EQ_INT(journal_identify(j, "/a", 2, 5, 1700000000LL * 1000000000, 10), 0);
	CHECK_EQ_INT(journal_adopt(j, &rows[0]), -1);
	CHECK_EQ_INT(journal_forget(j, "/a", 2), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_count(j), 1);
	journal_close(j);

	expect_relaxed_objects_refused("schema/journal-v1.sql");
}

extern const char journal_schema_v3_sql[];

/* A journal of release 0.2.0 (schema version 3, built from its verbatim schema text) is
 * still opened, checked exactly and read: its rows keep their identities, and what it
 * does not record (which /dev/shm directory, which user namespace) is unknown, so the
 * rules of its release apply; a relaxed version 3 schema is still refused, and so is a
 * version between the releases. */
static void test_version3_journal(void)
{
	char sql[4096];
	snprintf(sql, sizeof(sql),
		 "%s INSERT INTO manager VALUES (1, %u, 1, "
		 "'00000000-0000-0000-0000-000000000000', 0, 42, 4026531840);"
		 "INSERT INTO objects VALUES (X'2F61', 1, 1700000000000000),"
		 " (X'2F62', 1, 1700000001000000);"
		 "INSERT INTO identities VALUES (X'2F61', 1700000000000000, 9, 5);",
		 journal_schema_v3_sql, (unsigned)getuid());
	CHECK_EQ_INT(raw_exec(sql), 0);
	struct journal *j = open_journal(JOURNAL_UNTRUSTED);
	if (!j)
		return;
	const struct journal_meta *m = journal_meta(j);
	CHECK_EQ_INT(m->schema_version, 3);
	CHECK(m->has_shm_fs && m->shm_dev == 42 && m->mnt_ns == 4026531840ULL);
	CHECK(!m->has_shm_root && !m->has_userns && m->parent_uid == (uid_t)-1);
	struct journal_row rows[4];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 4), 2);
	CHECK(rows[0].identified && rows[0].ino == 9 && !rows[0].registered_cut);
	CHECK(!rows[1].identified);
	CHECK_EQ_INT(journal_identify(j, "/b", 2, 10, 1700000001LL * 1000000000, 10), 0);
	CHECK_EQ_INT(journal_forget(j, "/a", 2), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_page(j, NULL, rows, 4), 1);
	CHECK(rows[0].identified && rows[0].ino == 10);
	journal_close(j);

	expect_relaxed_objects_refused("schema/journal-v3.sql");
	/* A version 4 layout claiming version 3 is not the released one either. */
	CHECK_EQ_INT(unlink(file_in_dir("")), 0);
	journal_close(create_journal());
	CHECK_EQ_INT(raw_exec("PRAGMA user_version=3"), 0);
	expect_open_fails(JOURNAL_UNTRUSTED, "schema/journal-v3.sql");
}

/* The schema itself refuses rows no manager writes (STRICT types, the CHECK on the
 * length); names of valid length holding any bytes are stored and read back faithfully,
 * for the caller to refuse. */
static void test_schema_refuses_what_no_manager_writes(void)
{
	struct journal *j = create_journal();
	if (!j)
		return;
	journal_close(j);
	static const char *const refused[] = {
		"('/text', 1, 1)",
		"(42, 1, 1)",
		"(NULL, 1, 1)",
		"(X'', 1, 1)",
		"(X'2F', 1, 1)",
		"(randomblob(60), 1, 1)",
		"(zeroblob(1000000), 1, 1)",
		"(X'2F61', 'x', 1)",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char sql[128];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO objects(name, client_pid, registered_at) "
			 "VALUES %s;",
			 refused[i]);
		CHECK_EQ_INT(raw_exec(sql), -1);
	}
	CHECK_EQ_INT(raw_exec("INSERT INTO objects(name, client_pid, registered_at) VALUES"
			      " (X'2F610062', 1, 1),"
			      " (zeroblob(59), 1, 1), (X'2F612F2E2E', 1, 1);"),
		     0);
	j = open_journal(JOURNAL_UNTRUSTED);
	if (!j)
		return;
	struct journal_row rows[8];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 8), 3);
	CHECK(rows[0].len == 59 && rows[0].name[0] == '\0');
	CHECK(rows[1].len == 4 && memcmp(rows[1].name, "/a\0b", 5) == 0);
	CHECK(rows[2].len == 5 && strcmp(rows[2].name, "/a/..") == 0);
	CHECK_EQ_INT(journal_forget(j, rows[1].name, rows[1].len), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_count(j), 2);
	journal_close(j);
}

/* Rows forged past the schema (its text swapped while writing, then restored) are what
 * quick_check is for: the untrusted open refuses the journal. */
static void test_untrusted_forged_rows(void)
{
	static const char *const forged[] = {
		"('/text', 1, 1)",
		"(zeroblob(1000000), 1, 1)",
		"(X'2F', 1, 1)",
	};
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		check_rmtree(check_tmpdir);
		CHECK(mkdir(check_tmpdir, 0700) == 0);
		struct journal *j = create_journal();
		if (!j)
			return;
		journal_close(j);
		/* Drop the rules, write the row, put the exact text back (the schema
		 * comparison alone would catch a changed text). */
		char sql[1024];
		snprintf(sql, sizeof(sql),
			 "CREATE TEMP TABLE saved AS SELECT sql FROM sqlite_schema"
			 " WHERE name = 'objects';"
			 "PRAGMA writable_schema=ON;"
			 "UPDATE sqlite_schema SET sql = replace(replace(sql, ') STRICT,', '),'),"
			 " 'CHECK (length(name) BETWEEN 2 AND 59)', '') WHERE name = 'objects';"
			 "PRAGMA writable_schema=RESET;"
			 "INSERT INTO objects(name, client_pid, registered_at) VALUES %s;"
			 "PRAGMA writable_schema=ON;"
			 "UPDATE sqlite_schema SET sql = (SELECT sql FROM temp.saved)"
			 " WHERE name = 'objects';",
			 forged[i]);
		CHECK_EQ_INT(raw_exec(sql), 0);
		expect_open_fails(JOURNAL_UNTRUSTED, "quick_check");
		printf("# forged %s: %s\n", forged[i], err);
	}
}

/* Each damage is applied to a fresh, valid journal by a foreign writer. */
static void test_malformed_manager_row(void)
{
	static const char *const damage[] = {
		"UPDATE manager SET boot_id = 'short'",
		"UPDATE manager SET boot_id = CAST(boot_id AS BLOB)",
		"UPDATE manager SET owner_uid = 'abc'",
		"UPDATE manager SET owner_uid = -1",
		"UPDATE manager SET manager_pid = 0",
		"UPDATE manager SET created_at = 1.5",
		"UPDATE manager SET shm_ino = 'x'",
		"UPDATE manager SET shm_btime = 1.5",
		"UPDATE manager SET user_ns = 1.5",
		"UPDATE manager SET parent_uid = -2",
		"UPDATE manager SET parent_uid = 4294967295",
		"DELETE FROM manager",
	};
	int dirfd = open(check_tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dirfd >= 0);
	for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
		CHECK_EQ_INT(journal_unlink_files(dirfd, err, sizeof(err)), 0);
		struct journal *j = create_journal();
		journal_close(j);
		CHECK_EQ_INT(raw_exec(damage[i]), 0);
		expect_open_fails(JOURNAL_UNTRUSTED, "malformed manager row");
		expect_open_fails(0, "malformed manager row");
	}
	close(dirfd);
}

static void test_symlink_refused(void)
{
	struct journal *j = create_journal();
	journal_close(j);
	char real[600];
	snprintf(real, sizeof(real), "%s/real.db", check_tmpdir);
	CHECK_EQ_INT(rename(file_in_dir(""), real), 0);
	CHECK_EQ_INT(symlink("real.db", file_in_dir("")), 0);
	expect_open_fails(JOURNAL_UNTRUSTED, "symbolic link");
	expect_open_fails(0, "symbolic link");
}

/* The child journals, leaves a big batch uncommitted (enough to spill frames into the WAL)
 * and SIGKILLs itself; the parent must find exactly the committed rows. */
static void test_sigkilled_writer(void)
{
	enum { COMMITTED = 100, UNCOMMITTED = 30000 };
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct journal_meta meta = test_meta();
		struct journal *j = NULL;
		if (journal_create(check_tmpdir, &meta, &j, err, sizeof(err)) < 0)
			_exit(2);
		for (int i = 0; i < COMMITTED; i++)
			if (add_named(j, i) < 0 || (i % 10 == 9 && journal_commit(j) < 0))
				_exit(3);
		char name[64];
		for (int i = 0; i < UNCOMMITTED; i++) {
			int len = snprintf(name, sizeof(name), "/uncommitted_%08d_%030d", i, i);
			if (journal_add(j, name, (size_t)len, 1, 1) < 0)
				_exit(4);
		}
		raise(SIGKILL);
		_exit(5);
	}
	int status = 0;
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	if (!WIFSIGNALED(status))
		printf("# child exited with %d\n", WEXITSTATUS(status));
	CHECK(access(file_in_dir("-wal"), F_OK) == 0);
	CHECK(access(file_in_dir("-shm"), F_OK) == 0);
	printf("# after SIGKILL: -wal is %lld bytes\n", (long long)file_size(file_in_dir("-wal")));

	struct journal *j = open_journal(JOURNAL_UNTRUSTED);
	if (!j)
		return;
	CHECK_EQ_INT(journal_count(j), COMMITTED);
	struct journal_row rows[COMMITTED + 1];
	char want[64];
	CHECK_EQ_INT(journal_page(j, NULL, rows, COMMITTED + 1), COMMITTED);
	for (int i = 0; i < COMMITTED; i++) {
		test_name(want, sizeof(want), i);
		/* The child had another pid: compare the index part only. */
		const char *got_idx = strrchr(rows[i].name, '_'), *want_idx = strrchr(want, '_');
		CHECK(got_idx && want_idx && strcmp(got_idx, want_idx) == 0);
	}
	CHECK_EQ_INT(add_named(j, COMMITTED), 0); /* recovered and writable */
	CHECK_EQ_INT(journal_commit(j), 0);
	journal_close(j);
	/* The last connection closed: SQLite checkpointed and removed its side files. */
	CHECK(access(file_in_dir("-wal"), F_OK) < 0);
}

static void wait_child_ok(pid_t pid)
{
	int status = 0;
	CHECK(pid > 0);
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

#define CHILD_CHECK(cond)                                                                    \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "child: %s:%d: %s: %s\n", __FILE__, __LINE__, #cond, \
				j ? journal_error(j) : err);                                 \
			_exit(1);                                                            \
		}                                                                            \
	} while (0)

static void set_file_limit(rlim_t bytes)
{
	struct rlimit rl;
	getrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = bytes;
	setrlimit(RLIMIT_FSIZE, &rl);
}

/* Runs in a child: a file-size limit makes writes fail (EFBIG → SQLITE_IOERR_WRITE, as
 * ENOSPC gives SQLITE_FULL) at commit or mid-batch when the cache spills; the batch must be
 * reported lost, nothing of it may persist, and the handle must work once writes do. */
static void commit_failure_child(int batch)
{
	struct journal *j = NULL;
	signal(SIGXFSZ, SIG_IGN);
	struct journal_meta meta = test_meta();
	CHILD_CHECK(journal_create(check_tmpdir, &meta, &j, err, sizeof(err)) == 0);
	for (int i = 0; i < 10; i++)
		CHILD_CHECK(add_named(j, i) == 0);
	CHILD_CHECK(journal_commit(j) == 0);
	CHILD_CHECK(journal_compact(j) == 0);
	set_file_limit(128 * 1024);
	int failed_adds = 0;
	char name[64];
	for (int i = 0; i < batch; i++) {
		int len = snprintf(name, sizeof(name), "/batch_%08d_%040d", i, i);
		if (journal_add(j, name, (size_t)len, 1, 1) < 0)
			failed_adds++;
	}
	CHILD_CHECK(journal_in_txn(j));
	CHILD_CHECK(journal_commit(j) == -1);
	printf("# batch of %d: %d adds failed; %s\n", batch, failed_adds, journal_error(j));
	fflush(stdout);
	CHILD_CHECK(!journal_in_txn(j));
	CHILD_CHECK(journal_count(j) == 10);
	set_file_limit(RLIM_INFINITY);
	CHILD_CHECK(add_named(j, 100) == 0);
	CHILD_CHECK(journal_commit(j) == 0);
	CHILD_CHECK(journal_count(j) == 11);
	journal_close(j);
	j = NULL;
	CHILD_CHECK(journal_open(check_tmpdir, JOURNAL_UNTRUSTED, &j, err, sizeof(err)) == 0);
	CHILD_CHECK(journal_count(j) == 11);
	journal_close(j);
	_exit(0);
}

static void run_commit_failure(int batch)
{
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		commit_failure_child(batch);
	wait_child_ok(pid);
	check_rmtree(check_tmpdir);
	CHECK_EQ_INT(mkdir(check_tmpdir, 0700), 0);
}

static void test_failed_batch_is_refused_and_recovers(void)
{
	run_commit_failure(2000);  /* fits the cache: fails at COMMIT */
	run_commit_failure(60000); /* spills the cache: fails mid-batch */
}

static void as_nobody_expect_open(unsigned flags, const char *want_err, int64_t want_count)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct journal *j = NULL;
		/* From inside the directory: a relative dirpath works too. */
		CHILD_CHECK(chdir(check_tmpdir) == 0);
		CHILD_CHECK(setgid(65534) == 0 && setuid(65534) == 0);
		int rc = journal_open(".", flags, &j, err, sizeof(err));
		if (want_err) {
			/* A writer that SQLite could open read-only only is told apart (EROFS):
			 * the file may be sound, it just cannot be changed. */
			int want_rc = strcmp(want_err, "not writable") == 0 ? -EROFS : -1;
			CHILD_CHECK(rc == want_rc && strstr(err, want_err) != NULL);
			_exit(0);
		}
		CHILD_CHECK(rc == 0);
		CHILD_CHECK(journal_count(j) == want_count);
		journal_close(j);
		_exit(0);
	}
	wait_child_ok(pid);
}

/* A reader who may write neither the files nor their directory (a read-only mount)
 * reads a journal whose -wal and -shm exist, as a live or SIGKILLed manager leaves them;
 * a writer open is refused up front, and a cleanly closed journal (no -shm) gets a
 * message that says why it cannot be read. Needs root to switch users. */
static void readonly_without_write_access(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct journal *j = NULL;
		struct journal_meta meta = test_meta();
		CHILD_CHECK(journal_create(check_tmpdir, &meta, &j, err, sizeof(err)) == 0);
		for (int i = 0; i < 5; i++)
			CHILD_CHECK(add_named(j, i) == 0);
		CHILD_CHECK(journal_commit(j) == 0);
		raise(SIGKILL);
	}
	int status = 0;
	CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status));
	CHECK_EQ_INT(chmod(check_tmpdir, 0755), 0);
	CHECK_EQ_INT(chmod(file_in_dir(""), 0644), 0);
	CHECK_EQ_INT(chmod(file_in_dir("-wal"), 0644), 0);
	CHECK_EQ_INT(chmod(file_in_dir("-shm"), 0644), 0);
	as_nobody_expect_open(0, "not writable", 0);
	as_nobody_expect_open(JOURNAL_READONLY | JOURNAL_UNTRUSTED, NULL, 5);
	as_nobody_expect_open(JOURNAL_READONLY, NULL, 5);

	struct journal *j = open_journal(0); /* recovers; closing removes -wal and -shm */
	journal_close(j);
	CHECK(access(file_in_dir("-shm"), F_OK) < 0);
	as_nobody_expect_open(JOURNAL_READONLY, "directory is not writable", 0);
}

static void test_readonly_without_write_access(void)
{
	if (geteuid() != 0) {
		printf("# skipped: needs root to switch to another uid\n");
		return;
	}
	/* The suite's base directory is private to root, and SQLite opens by absolute path,
	 * so the other user works in a directory of its own under the world-searchable /tmp,
	 * removed before the test ends. */
	char saved[sizeof(check_tmpdir)];
	memcpy(saved, check_tmpdir, sizeof(saved));
	snprintf(check_tmpdir, sizeof(check_tmpdir), "/tmp/shmw-unit-ro-XXXXXX");
	if (!mkdtemp(check_tmpdir)) {
		CHECK(!"mkdtemp in /tmp");
		memcpy(check_tmpdir, saved, sizeof(saved));
		return;
	}
	readonly_without_write_access();
	check_rmtree(check_tmpdir);
	memcpy(check_tmpdir, saved, sizeof(saved));
}

/* Invariant 7: 60,000 register/free cycles with at most 10 live names (9 between cycles),
 * compacting every 1000 cycles as the manager's prune does: the three files must stay
 * under 2 MiB, measured after every cycle. */
static void test_size_follows_live_set(void)
{
	enum { CYCLES = 60000, LIVE = 10, COMPACT_EVERY = 1000 };
	struct journal *j = create_journal();
	if (!j)
		return;
	off_t max_seen = 0;
	int64_t start = util_now_ms();
	for (int i = 0; i < CYCLES; i++) {
		CHECK_EQ_INT(add_named(j, i), 0);
		CHECK_EQ_INT(journal_commit(j), 0);
		if (i >= LIVE - 1)
			CHECK_EQ_INT(forget_named(j, i - (LIVE - 1)), 0);
		CHECK_EQ_INT(journal_commit(j), 0);
		off_t size = journal_files_size();
		if (size > max_seen)
			max_seen = size;
		if (i % COMPACT_EVERY == COMPACT_EVERY - 1)
			CHECK_EQ_INT(journal_compact(j), 0);
		if (check_failures)
			break;
	}
	off_t end = journal_files_size();
	CHECK_EQ_INT(journal_count(j), LIVE - 1);
	printf("# %d cycles in %lld ms: journal.db %lld + -wal %lld + -shm %lld = %lld bytes; "
	       "largest seen %lld bytes\n",
	       CYCLES, (long long)(util_now_ms() - start), (long long)file_size(file_in_dir("")),
	       (long long)file_size(file_in_dir("-wal")), (long long)file_size(file_in_dir("-shm")),
	       (long long)end, (long long)max_seen);
	CHECK(max_seen < 2 * 1024 * 1024);
	journal_close(j);
}

/* When a large live set is freed, successive compacts give the pages back to the file
 * system, a bounded number per call. */
static void test_compact_shrinks_after_mass_free(void)
{
	enum { N = 40000 };
	struct journal *j = create_journal();
	if (!j)
		return;
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(add_named(j, i), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	CHECK_EQ_INT(journal_compact(j), 0);
	off_t full = file_size(file_in_dir(""));
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(forget_named(j, i), 0);
	CHECK_EQ_INT(journal_commit(j), 0);
	int calls = 0;
	off_t before, after = journal_files_size();
	do {
		before = after;
		CHECK_EQ_INT(journal_compact(j), 0);
		after = journal_files_size();
		calls++;
	} while (after < before && calls < 100);
	printf("# %d names: journal.db %lld bytes full, all files %lld bytes after %d compacts\n",
	       N, (long long)full, (long long)after, calls);
	CHECK(full > 1024 * 1024);
	CHECK(calls > 2); /* bounded work per call */
	CHECK(after < 64 * 1024);
	journal_close(j);
}

static void test_unlink_files(void)
{
	struct journal *j = create_journal();
	if (!j)
		return;
	journal_close(j);
	write_file(file_in_dir("-wal"), "", 0);
	int dirfd = open(check_tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dirfd >= 0);
	CHECK_EQ_INT(journal_unlink_files(dirfd, err, sizeof(err)), 0);
	CHECK(access(file_in_dir(""), F_OK) < 0);
	CHECK(access(file_in_dir("-wal"), F_OK) < 0);
	CHECK_EQ_INT(journal_unlink_files(dirfd, err, sizeof(err)), 0); /* ENOENT is fine */
	close(dirfd);
}

int main(void)
{
	RUN(test_create_and_reopen);
	RUN(test_create_ignores_umask);
	RUN(test_create_refuses_existing);
	RUN(test_create_refuses_bad_meta);
	RUN(test_add_forget_count);
	RUN(test_add_again_restarts_grace);
	RUN(test_add_with_a_lagging_second_is_not_dated_early);
	RUN(test_add_refuses_bad_lengths);
	RUN(test_rollback_and_empty_commit);
	RUN(test_readonly_never_writes);
	RUN(test_page_through_changes);
	RUN(test_untrusted_zero_byte_file);
	RUN(test_header_only_file_is_empty);
	RUN(test_untrusted_random_bytes);
	RUN(test_untrusted_truncated);
	RUN(test_untrusted_foreign_database);
	RUN(test_untrusted_future_version);
	RUN(test_untrusted_relaxed_schema);
	RUN(test_schema_refuses_what_no_manager_writes);
	RUN(test_identity_learned_once);
	RUN(test_identify_window_to_the_nanosecond);
	RUN(test_version1_journal);
	RUN(test_version3_journal);
	RUN(test_untrusted_forged_rows);
	RUN(test_malformed_manager_row);
	RUN(test_symlink_refused);
	RUN(test_sigkilled_writer);
	RUN(test_failed_batch_is_refused_and_recovers);
	RUN(test_readonly_without_write_access);
	RUN(test_size_follows_live_set);
	RUN(test_compact_shrinks_after_mass_free);
	RUN(test_unlink_files);
	return check_done();
}
