/* journal.c — the SQLite journal of one manager directory (see journal.h).
 *
 * Guarantees: a registration is in the journal once journal_commit() returned 0, and it
 * survives the manager being SIGKILLed; a batch that failed anywhere (full disk, I/O error)
 * is never half-committed: journal_commit() reports it and the handle stays usable; a file
 * someone else wrote is checked (integrity, identity, exact schema) before a row is read.
 * The only SQL in the program is here and in schema/journal.sql.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "shmobj.h"

extern const char journal_schema_sql[];    /* schema/journal.sql, embedded by the Makefile */
extern const char journal_schema_v1_sql[]; /* schema/journal-v1.sql: release 0.1.0 */
extern const char journal_schema_v3_sql[]; /* schema/journal-v3.sql: release 0.2.0 */

/*
 * Connection settings of every handle.
 *
 * synchronous=OFF: the journal must survive the *process* dying, not the machine. The
 * objects it names live in /dev/shm, a tmpfs that is empty after a reboot or power loss,
 * and the boot id in the manager row tells a reader that a journal from an earlier boot
 * names nothing that still exists. A committed transaction has been handed to the kernel
 * with write(), and the kernel keeps it when the process is SIGKILLed: "transactions are
 * durable across application crashes regardless of the synchronous setting or journal
 * mode" (sqlite.org/pragma.html#pragma_synchronous). An fsync per commit would only buy
 * durability across an OS crash, which the objects themselves do not have.
 *
 * wal_autocheckpoint=100 and journal_size_limit=512 KiB bound the files (invariant 7):
 * with a small live set a checkpoint copies only a handful of distinct pages and no fsync
 * (synchronous=OFF), so checkpointing often is cheap, and the WAL then stays near 100
 * frames (~412 KB); a larger group commit may grow it, and the limit truncates it back
 * when the WAL restarts. Free pages are given back by journal_compact().
 *
 * cache_size=-2000 (2 MB, SQLite's default made explicit): enough for the interior pages
 * of both b-trees of a journal with ~100k live names; bounded so a manager stays small.
 * temp_store=MEMORY: no temp files in $TMPDIR for the rare sort.
 */
#define JOURNAL_CONNECTION_PRAGMAS       \
	"PRAGMA synchronous=OFF;"        \
	"PRAGMA cache_size=-2000;"       \
	"PRAGMA temp_store=MEMORY;"      \
	"PRAGMA wal_autocheckpoint=100;" \
	"PRAGMA journal_size_limit=524288;"

/* page_size=1024 instead of 4096: a register+free pair dirties about two pages, and
 * SQLite checksums and writes every dirty page whole into the WAL at each commit. Rows
 * are ~60 bytes, so small pages cut the bytes per commit fourfold; measured with
 * callgrind on the manager, instructions per register+free pair fell from 29.0k to
 * 22.1k (512 gave 21.0k, not worth the deeper b-trees of a large journal). */
#define JOURNAL_PAGE_SIZE "1024"

/* Another connection of the same process (a background reclaim thread adopting names)
 * may hold the write lock for the length of one short transaction. */
#define JOURNAL_BUSY_MS 2000

/* Pages incremental_vacuum gives back per journal_compact() (1 MiB at 4 KiB pages): the
 * manager calls compact from its event loop, so one call must hold the write lock and
 * grow the WAL by a bounded amount; a large free list drains over successive calls. */
#define JOURNAL_VACUUM_PAGES "256"

/* Longest string or blob an untrusted connection materialises. Real rows hold names of
 * under 64 bytes; a hostile multi-gigabyte blob fails with SQLITE_TOOBIG instead of being
 * loaded into the memory of a sweeper running as root. */
#define JOURNAL_UNTRUSTED_MAX_LENGTH 65536

void journal_library_init(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

enum journal_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT,
	ST_FORGET,
	ST_PAGE,
	ST_PAGE_IDENTITIES,
	ST_COUNT,
	ST_VACUUM,
	ST_RANGE,
	ST_ADOPT,
	ST_ADOPT_IDENTITY,
	ST_IDENTIFY,
	ST_DROP_STALE_IDENTITIES,
	ST_NUM
};

/* BEGIN IMMEDIATE takes the write lock at once, under the busy timeout: a deferred
 * transaction that upgrades later can get SQLITE_BUSY_SNAPSHOT, which no wait cures. */
static const char *const journal_stmt_sql[ST_NUM] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	/* A registration of a journaled name restarts its row: a new registered_at restarts
	 * the grace, and the identity learned for the earlier registration no longer counts
	 * (the client may replace that object). OR REPLACE, as every column is given: under
	 * callgrind it costs what OR IGNORE does, and about 240 instructions a pair less
	 * than the equivalent ON CONFLICT DO UPDATE. */
	[ST_INSERT] = "INSERT OR REPLACE INTO objects(name, client_pid, registered_at)"
		      " VALUES (?1, ?2, ?3)",
	[ST_FORGET] = "DELETE FROM objects WHERE name = ?1",
	[ST_PAGE] = "SELECT name, registered_at / 1000000, registered_at FROM objects"
		    " WHERE name > ?1 ORDER BY name LIMIT ?2",
	/* A page's identities, merged in C: a LEFT JOIN cost a reclaim of 20,000 names
	 * 17 million instructions more than this range scan of a (usually small) table. */
	[ST_PAGE_IDENTITIES] = "SELECT name, registered_at, ino, btime_ns FROM identities"
			       " WHERE name >= ?1 AND name <= ?2 ORDER BY name",
	[ST_COUNT] = "SELECT count(*) FROM objects",
	[ST_VACUUM] = "PRAGMA incremental_vacuum(" JOURNAL_VACUUM_PAGES ")",
	[ST_RANGE] = "SELECT name FROM objects WHERE name >= ?1 AND name <= ?2 ORDER BY name",
	[ST_ADOPT] = "INSERT OR IGNORE INTO objects(name, client_pid, registered_at)"
		     " VALUES (?1, 0, ?2)",
	/* Only for the row just adopted: a name the adopter had journaled keeps its own. */
	[ST_ADOPT_IDENTITY] = "INSERT OR REPLACE INTO identities(name, registered_at, ino,"
			      " btime_ns) SELECT name, registered_at, ?3, ?4 FROM objects"
			      " WHERE name = ?1 AND registered_at = ?2",
	/* One identity per registration (an identity of an earlier one is replaced), and
	 * only for an object born by the end of the window after it (shmobj_born_by), to
	 * the nanosecond: ?4 is the window in nanoseconds (shmobj_window_ns). A
	 * registered_at too large to multiply (a hostile file) makes SQLite compute in
	 * floating point, not wrap. */
	[ST_IDENTIFY] = "INSERT OR REPLACE INTO identities(name, registered_at, ino, btime_ns)"
			" SELECT o.name, o.registered_at, ?2, ?3 FROM objects o WHERE o.name = ?1"
			" AND ?3 - ?4 <= o.registered_at * 1000"
			" AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.name = o.name"
			" AND i.registered_at = o.registered_at)",
	[ST_DROP_STALE_IDENTITIES] = "DELETE FROM identities WHERE name > ?1 AND name <= ?2"
				     " AND NOT EXISTS (SELECT 1 FROM objects o"
				     " WHERE o.name = identities.name"
				     " AND o.registered_at = identities.registered_at)",
};

/* A version 1 journal (release 0.1.0) has no identity columns: it is read with these,
 * and its rows come back unidentified. Statements left NULL are not prepared. */
static const char *journal_stmt_sql_v1(enum journal_stmt which)
{
	switch (which) {
	case ST_INSERT:
		return "INSERT OR IGNORE INTO objects(name, client_pid, registered_at)"
		       " VALUES (?1, ?2, ?3)";
	case ST_PAGE:
		return "SELECT name, registered_at, registered_at FROM objects"
		       " WHERE name > ?1 ORDER BY name LIMIT ?2";
	case ST_PAGE_IDENTITIES:
	case ST_ADOPT:
	case ST_ADOPT_IDENTITY:
	case ST_IDENTIFY:
	case ST_DROP_STALE_IDENTITIES:
		return NULL;
	default:
		return journal_stmt_sql[which];
	}
}

/* Read once at open, never kept: the ordered schema both sides of the comparison list. */
static const char schema_listing_sql[] =
	"SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name";
/* The manager row of each version read: its columns in the order load_meta reads them. */
static const char manager_select_sql[] =
	"SELECT id, owner_uid, manager_pid, boot_id, created_at, shm_dev, mnt_ns, shm_ino,"
	" user_ns, parent_uid, shm_btime FROM manager";
static const char manager_select_v3_sql[] =
	"SELECT id, owner_uid, manager_pid, boot_id, created_at, shm_dev, mnt_ns FROM manager";
static const char manager_select_v1_sql[] =
	"SELECT id, owner_uid, manager_pid, boot_id, created_at FROM manager";
static const char manager_insert_sql[] =
	"INSERT INTO manager(id, owner_uid, manager_pid, boot_id, created_at, shm_dev, mnt_ns,"
	" shm_ino, user_ns, parent_uid, shm_btime)"
	" VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

struct journal {
	sqlite3 *db;
	unsigned flags;
	/* A batch is open: from its first change until journal_commit/journal_rollback,
	 * even when SQLite already rolled it back after an error (then txn_lost). */
	bool in_txn;
	/* SQLite rolled the open batch back by itself (SQLITE_FULL, SQLITE_IOERR...):
	 * changes that returned 0 are gone, so the batch may only end in a failed commit. */
	bool txn_lost;
	struct journal_meta meta;
	bool empty;        /* the database holds no schema at all */
	bool not_writable; /* SQLite could open it read-only only (file mode, mount) */
	bool resources;    /* the latest failure was for want of descriptors or memory */
	bool checked;      /* open_checked passed */
	int dirfd; /* journal_open_dirfd: the directory SQLite reaches through /proc/self/fd */
	sqlite3_stmt *st[ST_NUM];
	char lost_cause[160];
	char err[320];
};

static int journal_fail(struct journal *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Sets the handle's message; returns -1 so error paths read "return journal_fail(...)". */
static int journal_fail(struct journal *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(j->err, sizeof(j->err), fmt, ap);
	va_end(ap);
	/* A hostile journal's SQLite message (a schema object's name) may be long: its
	 * start (the class, the object) is what tells a human what is wrong. */
	if (n >= 0 && (size_t)n >= sizeof(j->err))
		util_utf8_cut(j->err);
	return -1;
}

/* The words a human needs first, ahead of SQLite's own message. */
static const char *sqlite_class(int rc)
{
	/* A WAL database is read through its -shm; a cleanly closed journal has none, and a
	 * reader who cannot create one (read-only directory or mount) cannot read it. */
	if (rc == SQLITE_READONLY_DIRECTORY)
		return "no journal.db-shm and the directory is not writable: ";
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
		return "not a database: ";
	case SQLITE_CORRUPT:
		return "corrupt journal: ";
	default:
		return "";
	}
}

static void sync_txn_state(struct journal *j)
{
	if (j->in_txn && !j->txn_lost && sqlite3_get_autocommit(j->db)) {
		j->txn_lost = true;
		util_strlcpy(j->lost_cause, j->err, sizeof(j->lost_cause));
	}
}

/* Whether SQLite's rc says "out of descriptors or memory" rather than anything about the
 * file: SQLITE_NOMEM, or a failed open or I/O whose system errno is EMFILE, ENFILE or
 * ENOMEM (SQLite opens -wal and -shm lazily, so a first read can fail so: "unable to open
 * database file", which is no damage of the journal's). */
static bool journal_rc_resources(sqlite3 *db, int rc)
{
	int prim = rc & 0xff;
	if (prim == SQLITE_NOMEM)
		return true;
	if (!db || (prim != SQLITE_CANTOPEN && prim != SQLITE_IOERR))
		return false;
	int sys = sqlite3_system_errno(db);
	return sys == EMFILE || sys == ENFILE || sys == ENOMEM;
}

/* Records a failed SQLite call and notices whether it took the open batch with it. */
static int sqlite_fail(struct journal *j, int rc, const char *what)
{
	journal_fail(j, "%s: %s%s", what, sqlite_class(rc), sqlite3_errmsg(j->db));
	j->resources = journal_rc_resources(j->db, rc);
	/* Damage found after the checks (a page quick_check does not read): the files stay
	 * as they are for a human, as in open_db (which decides for the checks). */
	if (j->checked && ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB))
		sqlite3_db_config(j->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	sync_txn_state(j);
	return -1;
}

/* Every step is followed by a reset: a statement left active holds a read transaction
 * that blocks checkpoints. Bindings are cleared so no pointer to a caller's buffer
 * outlives the call. */
static void stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows. A failed change of the open batch may have
 * rolled the whole batch back, which sqlite_fail() notices. */
static int stmt_run(struct journal *j, enum journal_stmt which, const char *what)
{
	sqlite3_stmt *st = j->st[which];
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		sqlite_fail(j, rc, what);
	stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int exec_sql(struct journal *j, const char *sql, const char *what)
{
	int rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sqlite_fail(j, rc, what);
}

/* Runs a one-row query once (pragmas, identity checks) and hands back column 0. */
static int query_int(struct journal *j, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_fail(j, rc, sql);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		sqlite_fail(j, rc == SQLITE_DONE ? SQLITE_ERROR : rc, sql);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int query_text(struct journal *j, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_fail(j, rc, sql);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *text = sqlite3_column_text(st, 0);
		util_strlcpy(out, text ? (const char *)text : "", outlen);
	} else {
		sqlite_fail(j, rc == SQLITE_DONE ? SQLITE_ERROR : rc, sql);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Debian builds SQLite with SQLITE_USE_URI=1: a relative path starting "file:" would be
 * parsed as a URI (immutable=1 and friends), so relative paths get a "./". */
static int journal_path(const char *dirpath, const char *suffix, char *out, size_t outlen)
{
	const char *dot = dirpath[0] == '/' ? "" : "./";
	int n = snprintf(out, outlen, "%s%s/%s%s", dot, dirpath, JOURNAL_FILE, suffix);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static bool meta_valid(int64_t owner_uid, int64_t manager_pid, const char *boot_id,
		       size_t boot_id_len)
{
	/* uid -1 means "no change" to chown(2); a pid <= 0 names a process group or all
	 * processes to kill(2): neither may come out of a journal. */
	return owner_uid >= 0 && owner_uid < (int64_t)UINT32_MAX && manager_pid > 0 &&
	       manager_pid <= INT32_MAX && boot_id && boot_id_len == UTIL_BOOT_ID_LEN &&
	       !memchr(boot_id, '\0', boot_id_len);
}

static struct journal *journal_alloc(unsigned flags, char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof(*j));
	if (!j) {
		util_err(err, errlen, "journal: out of memory");
		return NULL;
	}
	j->flags = flags;
	j->dirfd = -1;
	return j;
}

/* Whether the database at path has a WAL file, empty or not: anything at its name but
 * ENOENT counts as yes (the careful answer: no checkpoint). An empty one is what a
 * manager killed right after a checkpoint leaves; a close that checkpoints deletes it
 * and -shm, so a journal "left in place" would not be. */
static bool wal_exists(const char *path)
{
	char wal[PATH_MAX + 8];
	struct stat st;
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", path) >= sizeof(wal))
		return true;
	return lstat(wal, &st) == 0 || errno != ENOENT;
}

/* Opens the database file. SQLite 3.40 resolves the whole path itself, and with
 * SQLITE_OPEN_NOFOLLOW refuses a symlink in *any* component of it: callers pass a path
 * without symlinks (realpath, or the kernel's name of a directory fd they checked). With SQLITE_OPEN_READWRITE SQLite itself falls back to
 * read-only when the file is write-protected; a read-write handle is preferred even for
 * JOURNAL_READONLY because reading a WAL database may need to create or recover -shm. */
static int open_db(struct journal *j, const char *path, int create_flag, const char *vfs)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE |
		    SQLITE_OPEN_NOMUTEX | create_flag;
	int rc = sqlite3_open_v2(path, &j->db, flags, vfs);
	if (rc == SQLITE_CANTOPEN_SYMLINK)
		return journal_fail(j, "open: is a symbolic link");
	if (rc != SQLITE_OK) {
		int sys = j->db ? sqlite3_system_errno(j->db) : 0;
		j->resources = (rc & 0xff) == SQLITE_NOMEM || sys == EMFILE || sys == ENFILE ||
			       sys == ENOMEM;
		return journal_fail(j, "open: %s%s%s",
				    j->db ? sqlite3_errmsg(j->db) : sqlite3_errstr(rc),
				    sys ? ": " : "", sys ? strerror(sys) : "");
	}
	if (!(j->flags & JOURNAL_READONLY) && sqlite3_db_readonly(j->db, "main") == 1) {
		j->not_writable = true;
		return journal_fail(j, "open: not writable");
	}
	/* Defensive mode and trusted_schema=OFF (the pragma's C form) cost nothing on our own
	 * files and close holes on anyone else's, so every handle gets them. */
	sqlite3_db_config(j->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(j->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	/* A reader (ls, a dry run) must leave the files as it found them: closing the last
	 * connection would otherwise checkpoint the WAL into journal.db and delete it. So
	 * must a reclaimer of a journal with a WAL until the file has passed its checks: a
	 * journal found corrupt is left for a human, and a checkpoint would write the WAL
	 * (the last commits' only intact copy) into the damaged file, then delete it
	 * (open_checked lifts this), and would delete even an empty -wal and its -shm.
	 * Without a WAL file (SQLite opens lazily: none of its files is open yet) the close
	 * has nothing to write, and removes the empty -wal and -shm this open made. */
	if ((j->flags & JOURNAL_READONLY) || ((j->flags & JOURNAL_UNTRUSTED) && wal_exists(path)))
		sqlite3_db_config(j->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	/* Before the first read: the integrity and identity checks of an open already read,
	 * and a live manager's commit may hold a lock for a moment. */
	if (sqlite3_busy_timeout(j->db, JOURNAL_BUSY_MS) != SQLITE_OK)
		return sqlite_fail(j, SQLITE_ERROR, "busy_timeout");
	return 0;
}

static int configure_connection(struct journal *j)
{
	if (exec_sql(j, JOURNAL_CONNECTION_PRAGMAS, "configure") < 0)
		return -1;
	/* JOURNAL_READONLY: SQLite refuses every write, whatever a caller tries. */
	if (j->flags & JOURNAL_READONLY)
		return exec_sql(j, "PRAGMA query_only=ON", "configure");
	return 0;
}

/* The settings for a file someone else may have written: no symlink, defensive mode and
 * trusted_schema off (open_db gives them to every handle), cell sizes checked on every read,
 * no mmap (a file truncated under us would SIGBUS), and no giant values. */
static int harden_connection(struct journal *j)
{
	sqlite3_limit(j->db, SQLITE_LIMIT_LENGTH, JOURNAL_UNTRUSTED_MAX_LENGTH);
	return exec_sql(j, "PRAGMA cell_size_check=ON; PRAGMA mmap_size=0;", "harden");
}

static int check_integrity(struct journal *j)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(j->db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_fail(j, rc, "quick_check");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite_fail(j, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "quick_check");
		goto fail;
	}
	const unsigned char *first = sqlite3_column_text(st, 0);
	if (!first || strcmp((const char *)first, "ok") != 0) {
		journal_fail(j, "quick_check: corrupt journal: %s",
			     first ? (const char *)first : "");
		goto fail;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		sqlite_fail(j, rc == SQLITE_ROW ? SQLITE_CORRUPT : rc, "quick_check");
		goto fail;
	}
	sqlite3_finalize(st);
	return 0;
fail:
	sqlite3_finalize(st);
	return -1;
}

/* Zero-byte file, someone else's database, another schema version: each gets its own
 * message, because each calls for a different action from the human reading it. */
static int check_identity(struct journal *j)
{
	int64_t objects, app_id, version;
	if (query_int(j, "SELECT count(*) FROM sqlite_schema", &objects) < 0)
		return -1;
	if (objects == 0) {
		j->empty = true;
		return journal_fail(j, "empty database, not a shmwarden journal");
	}
	if (query_int(j, "PRAGMA application_id", &app_id) < 0 ||
	    query_int(j, "PRAGMA user_version", &version) < 0)
		return -1;
	if (app_id != JOURNAL_APPLICATION_ID)
		return journal_fail(j, "not a shmwarden journal (application_id %#llx)",
				    (unsigned long long)(uint32_t)app_id);
	if (version > JOURNAL_SCHEMA_VERSION)
		return journal_fail(j,
				    "journal schema version %lld is newer than this "
				    "shmwarden (%d)",
				    (long long)version, JOURNAL_SCHEMA_VERSION);
	if (version == 2)
		return journal_fail(j, "journal schema version 2 was a development layout, never "
				       "released: not read");
	/* No release wrote any other version below ours. */
	if (version > 1 && version != 3 && version < JOURNAL_SCHEMA_VERSION)
		return journal_fail(j, "journal schema version %lld was never released: not read",
				    (long long)version);
	if (version < JOURNAL_SCHEMA_VERSION_MIN)
		return journal_fail(j,
				    "journal schema version %lld is older than this "
				    "shmwarden reads (%d..%d)",
				    (long long)version, JOURNAL_SCHEMA_VERSION_MIN,
				    JOURNAL_SCHEMA_VERSION);
	j->meta.schema_version = (int)version;
	return 0;
}

static bool column_equal(sqlite3_stmt *a, sqlite3_stmt *b, int col)
{
	int type = sqlite3_column_type(a, col);
	if (type != sqlite3_column_type(b, col))
		return false;
	if (type == SQLITE_NULL)
		return true;
	const void *va = sqlite3_column_blob(a, col), *vb = sqlite3_column_blob(b, col);
	int la = sqlite3_column_bytes(a, col), lb = sqlite3_column_bytes(b, col);
	return la == lb && (la == 0 || memcmp(va, vb, (size_t)la) == 0);
}

/* The verbatim schema text of the version being read, and its file's name. */
static const char *schema_of(int version, const char **file)
{
	switch (version) {
	case 1:
		*file = "schema/journal-v1.sql";
		return journal_schema_v1_sql;
	case 3:
		*file = "schema/journal-v3.sql";
		return journal_schema_v3_sql;
	default:
		*file = "schema/journal.sql";
		return journal_schema_sql;
	}
}

/* Compares the two listings row by row; returns -1 with the first difference named. */
static int compare_listings(struct journal *j, sqlite3_stmt *ours, sqlite3_stmt *theirs)
{
	for (;;) {
		int ra = sqlite3_step(ours), rb = sqlite3_step(theirs);
		if (ra != SQLITE_ROW && ra != SQLITE_DONE)
			return journal_fail(j, "schema check: reference schema: %s",
					    sqlite3_errstr(ra));
		if (rb != SQLITE_ROW && rb != SQLITE_DONE)
			return sqlite_fail(j, rb, "schema check");
		if (ra == SQLITE_DONE && rb == SQLITE_DONE)
			return 0;
		if (ra == rb && column_equal(ours, theirs, 0) && column_equal(ours, theirs, 1) &&
		    column_equal(ours, theirs, 2) && column_equal(ours, theirs, 3))
			continue;
		sqlite3_stmt *differs = ra == SQLITE_ROW ? ours : theirs;
		const unsigned char *name = sqlite3_column_text(differs, 1);
		const char *file;
		schema_of(j->meta.schema_version, &file);
		return journal_fail(j, "journal schema differs from %s at '%.64s'", file,
				    name ? (const char *)name : "?");
	}
}

/* A hostile writer could relax a CHECK, NOT NULL or UNIQUE and store what our schema
 * forbids, so the schema must be exactly the one schema/journal.sql (or, for a journal
 * of an earlier release, its verbatim schema/journal-vN.sql) builds. */
static int check_schema(struct journal *j)
{
	sqlite3 *ref = NULL;
	sqlite3_stmt *ours = NULL, *theirs = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	const char *file;
	const char *schema = schema_of(j->meta.schema_version, &file);
	int rc = sqlite3_open_v2(":memory:", &ref, flags, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(ref, schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(ref, schema_listing_sql, -1, &ours, NULL);
	if (rc != SQLITE_OK) {
		journal_fail(j, "schema check: reference schema: %s",
			     ref ? sqlite3_errmsg(ref) : sqlite3_errstr(rc));
		goto fail;
	}
	rc = sqlite3_prepare_v2(j->db, schema_listing_sql, -1, &theirs, NULL);
	if (rc != SQLITE_OK) {
		sqlite_fail(j, rc, "schema check");
		goto fail;
	}
	if (compare_listings(j, ours, theirs) < 0)
		goto fail;
	sqlite3_finalize(ours);
	sqlite3_finalize(theirs);
	sqlite3_close(ref);
	return 0;
fail:
	sqlite3_finalize(ours);
	sqlite3_finalize(theirs);
	sqlite3_close(ref);
	return -1;
}

static bool manager_row_valid(sqlite3_stmt *st, int ncols)
{
	/* parent_uid (column 9) is a uid, or -1 for none: a larger one is not a uid. */
	if (ncols > 9 && (sqlite3_column_int64(st, 9) < -1 ||
			  sqlite3_column_int64(st, 9) >= (int64_t)UINT32_MAX))
		return false;
	for (int col = 0; col < ncols; col++) {
		int want = col == 3 ? SQLITE_TEXT : SQLITE_INTEGER;
		if (sqlite3_column_type(st, col) != want)
			return false;
	}
	const void *boot_id = sqlite3_column_blob(st, 3);
	size_t boot_id_len = (size_t)sqlite3_column_bytes(st, 3);
	return sqlite3_column_int64(st, 0) == 1 &&
	       meta_valid(sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), boot_id,
			  boot_id_len);
}

/* The manager row must be exactly one row of the right types: its fields decide whose
 * objects a sweeper running as root may unlink. */
static int load_meta(struct journal *j)
{
	sqlite3_stmt *st = NULL;
	int version = j->meta.schema_version;
	bool v1 = version == 1, v3 = version == 3;
	int ncols = v1 ? 5 : v3 ? 7 : 11;
	int rc = sqlite3_prepare_v2(j->db,
				    v1   ? manager_select_v1_sql
				    : v3 ? manager_select_v3_sql
					 : manager_select_sql,
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_fail(j, rc, "read manager row");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			journal_fail(j, "malformed manager row (no row)");
		else
			sqlite_fail(j, rc, "read manager row");
		goto fail;
	}
	if (!manager_row_valid(st, ncols)) {
		journal_fail(j, "malformed manager row");
		goto fail;
	}
	j->meta.owner_uid = (uid_t)sqlite3_column_int64(st, 1);
	j->meta.manager_pid = (pid_t)sqlite3_column_int64(st, 2);
	memcpy(j->meta.boot_id, sqlite3_column_blob(st, 3), UTIL_BOOT_ID_LEN);
	j->meta.boot_id[UTIL_BOOT_ID_LEN] = '\0';
	j->meta.created_at = sqlite3_column_int64(st, 4);
	j->meta.has_shm_fs = !v1;
	if (!v1) {
		j->meta.shm_dev = (uint64_t)sqlite3_column_int64(st, 5);
		j->meta.mnt_ns = (uint64_t)sqlite3_column_int64(st, 6);
	}
	j->meta.has_shm_root = ncols > 7;
	j->meta.parent_uid = (uid_t)-1;
	if (ncols > 7) {
		j->meta.shm_ino = (uint64_t)sqlite3_column_int64(st, 7);
		j->meta.user_ns = (uint64_t)sqlite3_column_int64(st, 8);
		j->meta.parent_uid = (uid_t)sqlite3_column_int64(st, 9);
		j->meta.shm_btime_ns = sqlite3_column_int64(st, 10);
		j->meta.has_userns = j->meta.user_ns != 0;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_ROW)
			journal_fail(j, "malformed manager row (more than one row)");
		else
			sqlite_fail(j, rc, "read manager row");
		goto fail;
	}
	sqlite3_finalize(st);
	return 0;
fail:
	sqlite3_finalize(st);
	return -1;
}

static int prepare_statements(struct journal *j)
{
	for (int i = 0; i < ST_NUM; i++) {
		const char *sql = j->meta.schema_version == 1
					  ? journal_stmt_sql_v1((enum journal_stmt)i)
					  : journal_stmt_sql[i];
		if (!sql)
			continue;
		int rc = sqlite3_prepare_v3(j->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &j->st[i],
					    NULL);
		if (rc != SQLITE_OK)
			return sqlite_fail(j, rc, sql);
	}
	return 0;
}

/* A -wal or -shm without its database is someone's leftover; SQLite would replay a
 * leftover WAL into the new empty database, so creation refuses rather than guess. */
static int refuse_leftovers(struct journal *j, const char *dirpath, const char *file)
{
	static const char *const suffixes[] = { "-wal", "-shm" };
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char path[PATH_MAX], aux[32];
		struct stat st;
		snprintf(aux, sizeof(aux), "%s%s", file, suffixes[i]);
		if (journal_path(dirpath, aux, path, sizeof(path)) < 0)
			return journal_fail(j, "path too long");
		if (lstat(path, &st) == 0)
			return journal_fail(j, "leftover %s%s exists", JOURNAL_FILE, aux);
		if (errno != ENOENT)
			return journal_fail(j, "stat %s%s: %s", JOURNAL_FILE, aux, strerror(errno));
	}
	return 0;
}

/* O_EXCL makes "must not exist" exact; fchmod makes the mode 0600 whatever the umask.
 * SQLite gives -wal and -shm the database file's mode. */
static int create_file(struct journal *j, const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return journal_fail(j, "create: %s already exists", JOURNAL_FILE);
		return journal_fail(j, "create: %s", strerror(errno));
	}
	int rc = fchmod(fd, 0600);
	int saved = errno;
	close(fd);
	if (rc < 0) {
		unlink(path);
		return journal_fail(j, "create: fchmod: %s", strerror(saved));
	}
	return 0;
}

static int insert_manager_row(struct journal *j, const struct journal_meta *meta)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(j->db, manager_insert_sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 1, (int64_t)meta->owner_uid);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 2, (int64_t)meta->manager_pid);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 3, meta->boot_id, UTIL_BOOT_ID_LEN, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 4, meta->created_at);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 5, (int64_t)meta->shm_dev);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 6, (int64_t)meta->mnt_ns);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 7, (int64_t)meta->shm_ino);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 8, (int64_t)meta->user_ns);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(
			st, 9, meta->parent_uid == (uid_t)-1 ? -1 : (int64_t)meta->parent_uid);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 10, meta->shm_btime_ns);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		sqlite_fail(j, rc, "write manager row");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* auto_vacuum must be set before the first table exists; WAL lets readers (ls, a reclaim
 * thread) read while the manager writes. The schema and the manager row are one
 * transaction, so a crash during creation leaves an empty database, never half a journal. */
static int create_schema(struct journal *j, const struct journal_meta *meta)
{
	char mode[16];
	if (exec_sql(j, "PRAGMA page_size=" JOURNAL_PAGE_SIZE, "page_size") < 0 ||
	    exec_sql(j, "PRAGMA auto_vacuum=INCREMENTAL", "auto_vacuum") < 0 ||
	    query_text(j, "PRAGMA journal_mode=WAL", mode, sizeof(mode)) < 0)
		return -1;
	if (strcmp(mode, "wal") != 0)
		return journal_fail(j, "journal_mode=WAL refused (mode is %s)", mode);
	if (exec_sql(j, "BEGIN IMMEDIATE", "create schema") < 0)
		return -1;
	if (exec_sql(j, journal_schema_sql, "create schema") < 0 ||
	    insert_manager_row(j, meta) < 0 || exec_sql(j, "COMMIT", "create schema") < 0) {
		if (!sqlite3_get_autocommit(j->db))
			sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static void unlink_created(const char *dirpath, const char *file)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char path[PATH_MAX], aux[32];
		snprintf(aux, sizeof(aux), "%s%s", file, suffixes[i]);
		if (journal_path(dirpath, aux, path, sizeof(path)) == 0 && unlink(path) < 0 &&
		    errno != ENOENT)
			log_warn("journal: unlink %s: %s", path, strerror(errno));
	}
}

/* journal_create of DIR/journal.db<file>: "" the journal, JOURNAL_ASIDE one being
 * rebuilt (journal_rebuild). */
static int journal_create_as(const char *dirpath, const char *file, const struct journal_meta *meta,
			     struct journal **out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	bool created = false;
	*out = NULL;
	if (!meta_valid((int64_t)meta->owner_uid, (int64_t)meta->manager_pid, meta->boot_id,
			strnlen(meta->boot_id, sizeof(meta->boot_id)))) {
		util_err(err, errlen, "%s: journal_create: invalid meta", dirpath);
		return -1;
	}
	struct journal *j = journal_alloc(0, err, errlen);
	if (!j)
		return -1;
	if (journal_path(dirpath, file, path, sizeof(path)) < 0) {
		journal_fail(j, "path too long");
		goto fail;
	}
	if (refuse_leftovers(j, dirpath, file) < 0 || create_file(j, path) < 0)
		goto fail;
	created = true;
	if (open_db(j, path, SQLITE_OPEN_CREATE, NULL) < 0 || configure_connection(j) < 0 ||
	    create_schema(j, meta) < 0 || check_identity(j) < 0 || prepare_statements(j) < 0 ||
	    load_meta(j) < 0)
		goto fail;
	*out = j;
	return 0;
fail:
	util_err(err, errlen, "%s/%s%s: %s", dirpath, JOURNAL_FILE, file, j->err);
	journal_close(j);
	if (created)
		unlink_created(dirpath, file);
	return -1;
}

int journal_create(const char *dirpath, const struct journal_meta *meta, struct journal **out,
		   char *err, size_t errlen)
{
	return journal_create_as(dirpath, "", meta, out, err, errlen);
}

/* The checks and statements of journal_open and journal_open_dirfd, on a handle whose
 * flags are set; path is the database file's, as SQLite is to be given it. */
static int open_checked(struct journal *j, const char *path, const char *vfs)
{
	unsigned flags = j->flags;
	if (open_db(j, path, 0, vfs) < 0)
		return -1;
	/* Untrusted: harden before the first read, then check in order of cheapness and of
	 * what the message should say first (not a database, corrupt, foreign, version). */
	if ((flags & JOURNAL_UNTRUSTED) &&
	    (harden_connection(j) < 0 || (!(flags & JOURNAL_SKIM) && check_integrity(j) < 0)))
		return -1;
	if (check_identity(j) < 0)
		return -1;
	if ((flags & JOURNAL_UNTRUSTED) && check_schema(j) < 0)
		return -1;
	if (configure_connection(j) < 0 || prepare_statements(j) < 0 || load_meta(j) < 0)
		return -1;
	/* Checked: a reclaimer's close may checkpoint again (its own deletes included),
	 * unless SQLite finds it corrupt later on (sqlite_fail). */
	if (!(flags & JOURNAL_READONLY))
		sqlite3_db_config(j->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, (int *)NULL);
	j->checked = true;
	return 0;
}

static bool flags_valid(unsigned flags)
{
	return !(flags & ~(unsigned)(JOURNAL_UNTRUSTED | JOURNAL_READONLY | JOURNAL_SKIM)) &&
	       !((flags & JOURNAL_SKIM) && (~flags & (JOURNAL_UNTRUSTED | JOURNAL_READONLY)));
}

int journal_open(const char *dirpath, unsigned flags, struct journal **out, char *err,
		 size_t errlen)
{
	char path[PATH_MAX];
	*out = NULL;
	if (!flags_valid(flags)) {
		util_err(err, errlen, "%s: journal_open: unknown flags %#x", dirpath, flags);
		return -1;
	}
	struct journal *j = journal_alloc(flags, err, errlen);
	if (!j)
		return -1;
	if (journal_path(dirpath, "", path, sizeof(path)) < 0) {
		journal_fail(j, "path too long");
		goto fail;
	}
	if (open_checked(j, path, NULL) < 0)
		goto fail;
	*out = j;
	return 0;
fail:
	util_err(err, errlen, "%s/%s: %s", dirpath, JOURNAL_FILE, j->err);
	bool empty = j->empty, not_writable = j->not_writable, resources = j->resources;
	journal_close(j);
	return resources ? -EAGAIN : empty ? -ENODATA : not_writable ? -EROFS : -1;
}

/*
 * The VFS of journal_open_dirfd: SQLite's unix VFS, except that the database's path is
 * taken as given. SQLite 3.40 resolves every symlink of a path itself (unixFullPathname)
 * and would put the *text* of /proc/self/fd/N in its place: the directory's name in the
 * mount namespace of whoever opened it, which in ours may be another directory or none
 * (issue 10). The kernel, following the magic link, reaches the directory the
 * descriptor holds whatever its name. Only "/proc/self/fd/N/journal.db" comes here
 * (journal_open_dirfd makes it); SQLite derives -wal and -shm from it, and opens the
 * last component with O_NOFOLLOW as with any path.
 */
#define JOURNAL_DIRFD_VFS "shmwarden-dirfd"
#define JOURNAL_DIRFD_PREFIX "/proc/self/fd/"

static sqlite3_vfs journal_dirfd_vfs; /* written once, under journal_dirfd_once */
static pthread_once_t journal_dirfd_once = PTHREAD_ONCE_INIT;
static int journal_dirfd_rc = SQLITE_ERROR;

static int journal_dirfd_fullpathname(sqlite3_vfs *vfs, const char *path, int nout, char *out)
{
	(void)vfs;
	size_t n = strlen(path);
	if (strncmp(path, JOURNAL_DIRFD_PREFIX, strlen(JOURNAL_DIRFD_PREFIX)) != 0 ||
	    n + 1 > (size_t)nout)
		return SQLITE_CANTOPEN;
	memcpy(out, path, n + 1);
	return SQLITE_OK;
}

static void journal_dirfd_register(void)
{
	sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
	if (!unix_vfs)
		return;
	journal_dirfd_vfs = *unix_vfs;
	journal_dirfd_vfs.pNext = NULL;
	journal_dirfd_vfs.zName = JOURNAL_DIRFD_VFS;
	journal_dirfd_vfs.xFullPathname = journal_dirfd_fullpathname;
	journal_dirfd_rc = sqlite3_vfs_register(&journal_dirfd_vfs, 0);
}

int journal_open_dirfd(int dirfd, const char *label, unsigned flags, struct journal **out,
		       char *err, size_t errlen)
{
	char path[64];
	*out = NULL;
	if (!flags_valid(flags)) {
		util_err(err, errlen, "%s: journal_open_dirfd: bad flags %#x", label, flags);
		return -1;
	}
	struct journal *j = journal_alloc(flags, err, errlen);
	if (!j)
		return -1;
	if (pthread_once(&journal_dirfd_once, journal_dirfd_register) != 0 ||
	    journal_dirfd_rc != SQLITE_OK) {
		journal_fail(j, "cannot register the SQLite VFS " JOURNAL_DIRFD_VFS);
		goto fail;
	}
	/* Our own descriptor, held as long as the handle: SQLite opens -wal and -shm
	 * through it later, and nobody else can change what it refers to. */
	j->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (j->dirfd < 0) {
		j->resources = errno == EMFILE || errno == ENFILE || errno == ENOMEM;
		journal_fail(j, "dup: %s", strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), JOURNAL_DIRFD_PREFIX "%d/%s", j->dirfd, JOURNAL_FILE);
	if (open_checked(j, path, JOURNAL_DIRFD_VFS) < 0)
		goto fail;
	*out = j;
	return 0;
fail:
	util_err(err, errlen, "%s/%s: %s", label, JOURNAL_FILE, j->err);
	bool empty = j->empty, not_writable = j->not_writable, resources = j->resources;
	journal_close(j);
	return resources ? -EAGAIN : empty ? -ENODATA : not_writable ? -EROFS : -1;
}

bool journal_path_fits(const char *dirpath)
{
	/* SQLite's unix VFS refuses a file name of mxPathname bytes or more (512 in 3.40)
	 * and derives the longest of its own, DIR/journal.db-wal, from the database's. */
	sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
	size_t need = strlen(dirpath) + sizeof("/" JOURNAL_FILE "-wal");
	return vfs && need <= (size_t)vfs->mxPathname;
}

/* Unlinks dirfd's journal.db<file> and its -wal, -shm and -journal, in that order (a
 * WAL whose database still exists holds its last commits, so it goes only once the
 * database has). ENOENT is fine. */
static int unlink_journal_files(int dirfd, const char *file, char *err, size_t errlen)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s%s%s", JOURNAL_FILE, file, suffixes[i]);
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT) {
			util_err(err, errlen, "unlink %s: %s", name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * Why aside, then renamed in: a reader must never find journal.db holding fewer names
 * than the manager has registered. Reclaimers read a live manager's journal to hand
 * over, not unlink, the names it holds (livemgr.c), and a journal missing a name there
 * has it unlinked under the manager. Made in place, the new file is visible from its
 * creation: first empty (which a reader takes for a manager starting, that has
 * registered nothing: journal_open's -ENODATA), then with its schema and manager row
 * and none of the rows (journal_create commits those first, and the rows came in a
 * second transaction: a new user's sweep unlinked a name in that window). Even one
 * transaction for everything leaves the empty file before it. So the new journal is
 * written whole under another name nobody reads, its WAL checkpointed into it and
 * removed by the close; then what is left of the old journal goes (the database first:
 * a reader then finds no journal, which counts as "cannot be read", so keeps
 * everything), and rename(2) puts the new one at journal.db in one step, with no WAL
 * beside it that is not its own.
 */
int journal_rebuild(const char *dirpath, int dirfd, const struct journal_meta *meta,
		    const struct journal_row *rows, size_t n, struct journal **out, char *err,
		    size_t errlen)
{
	char ignored[64];
	struct journal *nj = NULL;
	struct stat st;
	*out = NULL;
	if (unlink_journal_files(dirfd, JOURNAL_ASIDE, err, errlen) < 0 ||
	    journal_create_as(dirpath, JOURNAL_ASIDE, meta, &nj, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (journal_adopt(nj, &rows[i]) < 0)
			goto fail_nj;
	}
	if (journal_commit(nj) < 0)
		goto fail_nj;
	journal_close(nj); /* the last connection: checkpoints and removes -wal and -shm */
	nj = NULL;
	if (fstatat(dirfd, JOURNAL_FILE JOURNAL_ASIDE "-wal", &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT) {
		util_err(err, errlen, "%s/%s%s-wal: still there after the close: not renamed in",
			 dirpath, JOURNAL_FILE, JOURNAL_ASIDE);
		goto fail;
	}
	if (unlink_journal_files(dirfd, "", err, errlen) < 0)
		goto fail;
	if (renameat2(dirfd, JOURNAL_FILE JOURNAL_ASIDE, dirfd, JOURNAL_FILE, RENAME_NOREPLACE) <
	    0) {
		util_err(err, errlen, "rename %s%s to %s: %s", JOURNAL_FILE, JOURNAL_ASIDE,
			 JOURNAL_FILE, strerror(errno));
		goto fail;
	}
	return journal_open(dirpath, 0, out, err, errlen);
fail_nj:
	util_err(err, errlen, "%s/%s%s: %s", dirpath, JOURNAL_FILE, JOURNAL_ASIDE, nj->err);
	journal_close(nj);
fail:
	unlink_journal_files(dirfd, JOURNAL_ASIDE, ignored, sizeof(ignored));
	return -1;
}

const struct journal_meta *journal_meta(const struct journal *j)
{
	return &j->meta;
}

const char *journal_error(const struct journal *j)
{
	return j ? j->err : "no journal";
}

bool journal_in_txn(const struct journal *j)
{
	return j->in_txn;
}

static void rollback_quietly(struct journal *j)
{
	if (sqlite3_get_autocommit(j->db))
		return;
	int rc = sqlite3_step(j->st[ST_ROLLBACK]);
	stmt_done(j->st[ST_ROLLBACK]);
	if (rc != SQLITE_DONE)
		log_warn("journal: rollback: %s", sqlite3_errmsg(j->db));
}

static void end_txn(struct journal *j)
{
	j->in_txn = false;
	j->txn_lost = false;
	j->lost_cause[0] = '\0';
}

int journal_begin(struct journal *j)
{
	if (j->flags & JOURNAL_READONLY)
		return journal_fail(j, "journal opened read-only");
	sync_txn_state(j);
	if (j->in_txn) {
		if (j->txn_lost)
			return journal_fail(j,
					    "transaction rolled back by an earlier error (%s): "
					    "commit or roll back first",
					    j->lost_cause);
		return 0;
	}
	/* Without a batch the connection must be in autocommit; a failed rollback could
	 * have left it otherwise, and BEGIN would then fail forever. */
	rollback_quietly(j);
	if (stmt_run(j, ST_BEGIN, "begin") < 0)
		return -1;
	j->in_txn = true;
	return 0;
}

int journal_commit(struct journal *j)
{
	sync_txn_state(j);
	if (!j->in_txn)
		return 0;
	if (j->txn_lost) {
		journal_fail(j, "commit: transaction rolled back by an earlier error (%s)",
			     j->lost_cause);
		end_txn(j);
		return -1;
	}
	if (stmt_run(j, ST_COMMIT, "commit") < 0) {
		/* SQLite may keep the transaction open after a failed COMMIT; the batch is
		 * refused either way, so leave the connection clean for the next one. */
		rollback_quietly(j);
		end_txn(j);
		return -1;
	}
	end_txn(j);
	return 0;
}

void journal_rollback(struct journal *j)
{
	if (!j)
		return;
	rollback_quietly(j);
	end_txn(j);
}

int journal_add(struct journal *j, const char *name, size_t len, pid_t client_pid, int64_t now_s)
{
	/* The schema's CHECK would refuse other lengths anyway; saying so here gives a clear
	 * message, and never binds NULL. */
	if (!name || len < 2 || len > 59)
		return journal_fail(j, "add: name length %zu out of range", len);
	if (journal_begin(j) < 0)
		return -1;
	/* Version 2 keeps microseconds: the caller's second and the clock's fraction of
	 * one, so two registrations of a name within a second differ (journal.sql). time()
	 * reads the coarse clock, up to a tick behind this one: when the clock is already in
	 * the next second, the caller's second plus the new second's fraction would date
	 * the row a whole second early, and its grace would end that much sooner. */
	int64_t at = now_s;
	if (j->meta.schema_version >= 2) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		at = (ts.tv_sec == now_s + 1 ? now_s + 1 : now_s) * 1000000 + ts.tv_nsec / 1000;
	}
	sqlite3_stmt *st = j->st[ST_INSERT];
	if (sqlite3_bind_blob(st, 1, name, (int)len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, (int64_t)client_pid) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, at) != SQLITE_OK) {
		sqlite_fail(j, SQLITE_MISUSE, "add: bind");
		stmt_done(st);
		return -1;
	}
	return stmt_run(j, ST_INSERT, "add");
}

int journal_adopt(struct journal *j, const struct journal_row *row)
{
	if (!row || row->len < 2 || row->len > 59)
		return journal_fail(j, "adopt: invalid row");
	if (!j->st[ST_ADOPT])
		return journal_fail(j, "adopt: a version %d journal cannot take rows",
				    j->meta.schema_version);
	if (journal_begin(j) < 0)
		return -1;
	sqlite3_stmt *st = j->st[ST_ADOPT];
	if (sqlite3_bind_blob(st, 1, row->name, (int)row->len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, row->registered_us) != SQLITE_OK) {
		sqlite_fail(j, SQLITE_MISUSE, "adopt: bind");
		stmt_done(st);
		return -1;
	}
	if (stmt_run(j, ST_ADOPT, "adopt") < 0)
		return -1;
	if (!row->identified)
		return 0;
	st = j->st[ST_ADOPT_IDENTITY];
	if (sqlite3_bind_blob(st, 1, row->name, (int)row->len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, row->registered_us) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, (int64_t)row->ino) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, row->btime_ns) != SQLITE_OK) {
		sqlite_fail(j, SQLITE_MISUSE, "adopt: bind");
		stmt_done(st);
		return -1;
	}
	return stmt_run(j, ST_ADOPT_IDENTITY, "adopt");
}

int journal_identify(struct journal *j, const char *name, size_t len, uint64_t ino,
		     int64_t btime_ns, int64_t window_s)
{
	if (!name || len < 2 || len > 59)
		return journal_fail(j, "identify: name length %zu out of range", len);
	if (!j->st[ST_IDENTIFY])
		return 0;
	if (journal_begin(j) < 0)
		return -1;
	sqlite3_stmt *st = j->st[ST_IDENTIFY];
	if (sqlite3_bind_blob(st, 1, name, (int)len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, (int64_t)ino) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, btime_ns) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, shmobj_window_ns(window_s)) != SQLITE_OK) {
		sqlite_fail(j, SQLITE_MISUSE, "identify: bind");
		stmt_done(st);
		return -1;
	}
	return stmt_run(j, ST_IDENTIFY, "identify");
}

int journal_forget(struct journal *j, const char *name, size_t len)
{
	if (!name || len > INT_MAX)
		return journal_fail(j, "forget: name length %zu out of range", len);
	if (journal_begin(j) < 0)
		return -1;
	sqlite3_stmt *st = j->st[ST_FORGET];
	if (sqlite3_bind_blob(st, 1, name, (int)len, SQLITE_STATIC) != SQLITE_OK) {
		sqlite_fail(j, SQLITE_MISUSE, "forget: bind");
		stmt_done(st);
		return -1;
	}
	return stmt_run(j, ST_FORGET, "forget");
}

/* The schema holds names to 2..59-byte blobs and untrusted opens verify it with
 * quick_check, so a row that is anything else means the file changed under us. */
static int read_row(struct journal *j, sqlite3_stmt *st, struct journal_row *row)
{
	const void *bytes = sqlite3_column_blob(st, 0);
	int len = sqlite3_column_bytes(st, 0);
	if (sqlite3_column_type(st, 0) != SQLITE_BLOB || !bytes || len < 2 ||
	    (size_t)len >= sizeof(row->name))
		return journal_fail(j, "page: corrupt journal: a row that is not a name");
	memcpy(row->name, bytes, (size_t)len);
	row->name[len] = '\0';
	row->len = (size_t)len;
	row->registered_at = sqlite3_column_int64(st, 1);
	row->identified = false;
	row->ino = 0;
	row->btime_ns = 0;
	/* The registration itself, as stored: what an adopter keeps, so the identity it
	 * carries over still belongs to it. Version 1 stored seconds, cut: the registration
	 * was at most a second later, and a grace counted from the second's start would end
	 * up to 1 s early (a version 1 row has no identity, so nothing else depends on it). */
	int64_t raw = sqlite3_column_int64(st, 2);
	row->registered_cut = false;
	if (j->meta.schema_version == 1 && raw < INT64_MAX / 1000000 &&
	    raw >= INT64_MIN / 1000000) {
		raw = raw * 1000000 + 999999;
		row->registered_cut = true;
	}
	row->registered_us = raw;
	return 0;
}

int64_t journal_row_earliest_us(const struct journal_row *row)
{
	/* registered_cut only when read_row added the 999999: no overflow back. */
	return row->registered_cut ? row->registered_us - 999999 : row->registered_us;
}

/* Byte order of names, as SQLite compares blobs: memcmp, then the shorter first. */
static int row_cmp(const struct journal_row *a, const struct journal_row *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->name, b->name, n);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int row_cmp(const struct journal_row *a, const struct journal_row *b);

/* Gives rows[0..n-1] the identities recorded for their registrations. The table holds
 * NOT NULL integers and 2..59-byte names (STRICT, checked by quick_check on untrusted
 * files); anything else is a file changed under us. */
static int page_identities(struct journal *j, struct journal_row *rows, int n)
{
	sqlite3_stmt *st = j->st[ST_PAGE_IDENTITIES];
	if (!st || n <= 0)
		return 0;
	if (sqlite3_bind_blob(st, 1, rows[0].name, (int)rows[0].len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, rows[n - 1].name, (int)rows[n - 1].len, SQLITE_STATIC) !=
		    SQLITE_OK) {
		stmt_done(st);
		return sqlite_fail(j, SQLITE_MISUSE, "page: bind");
	}
	int rc, k = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct journal_row id;
		const void *bytes = sqlite3_column_blob(st, 0);
		int len = sqlite3_column_bytes(st, 0);
		if (sqlite3_column_type(st, 0) != SQLITE_BLOB || !bytes || len < 2 || len > 59 ||
		    sqlite3_column_type(st, 1) != SQLITE_INTEGER ||
		    sqlite3_column_type(st, 2) != SQLITE_INTEGER ||
		    sqlite3_column_type(st, 3) != SQLITE_INTEGER) {
			stmt_done(st);
			return journal_fail(j,
					    "page: corrupt journal: an identity that is not one");
		}
		memcpy(id.name, bytes, (size_t)len);
		id.len = (size_t)len;
		/* Both lists ascend: walk the page along. */
		while (k < n && row_cmp(&rows[k], &id) < 0)
			k++;
		if (k < n && row_cmp(&rows[k], &id) == 0 &&
		    rows[k].registered_us == sqlite3_column_int64(st, 1)) {
			rows[k].identified = true;
			rows[k].ino = (uint64_t)sqlite3_column_int64(st, 2);
			rows[k].btime_ns = sqlite3_column_int64(st, 3);
		}
	}
	stmt_done(st);
	return rc == SQLITE_DONE ? 0 : sqlite_fail(j, rc, "page: identities");
}

int journal_page(struct journal *j, const struct journal_row *after, struct journal_row *rows,
		 int max)
{
	if (max < 0 || (max > 0 && !rows) || (after && after->len >= sizeof(after->name)))
		return journal_fail(j, "page: invalid arguments");
	sqlite3_stmt *st = j->st[ST_PAGE];
	/* Every name is a blob of 2 bytes or more, so all sort after the empty blob. */
	if (sqlite3_bind_blob(st, 1, after ? after->name : "", after ? (int)after->len : 0,
			      SQLITE_TRANSIENT) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, max) != SQLITE_OK) {
		stmt_done(st);
		return sqlite_fail(j, SQLITE_MISUSE, "page: bind");
	}
	int n = 0, rc = SQLITE_DONE;
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const struct journal_row *prev = n ? &rows[n - 1] : after;
		if (read_row(j, st, &rows[n]) < 0) {
			stmt_done(st);
			return -1;
		}
		/* A b-tree damaged in a way quick_check misses can return keys out of order
		 * (found by fuzz_journal): a cursor that stopped advancing would page forever,
		 * so a row not after its predecessor is corruption. */
		if (prev && row_cmp(&rows[n], prev) <= 0) {
			stmt_done(st);
			return journal_fail(j, "page: corrupt journal: names out of order");
		}
		n++;
	}
	if (n < max && rc != SQLITE_DONE) {
		sqlite_fail(j, rc, "page");
		n = -1;
	}
	stmt_done(st);
	if (n > 0 && page_identities(j, rows, n) < 0)
		return -1;
	return n;
}

int journal_drop_stale_identities(struct journal *j, const struct journal_row *after,
				  const struct journal_row *upto)
{
	/* Every name is 2..59 bytes: the empty blob sorts before all, 60 bytes of 0xff after. */
	static const unsigned char past_all[60] = {
		[0 ... 59] = 0xff,
	};
	if ((after && after->len >= sizeof(after->name)) ||
	    (upto && upto->len >= sizeof(upto->name)))
		return journal_fail(j, "drop identities: invalid arguments");
	sqlite3_stmt *st = j->st[ST_DROP_STALE_IDENTITIES];
	if (!st)
		return 0;
	if (journal_begin(j) < 0)
		return -1;
	if (sqlite3_bind_blob(st, 1, after ? after->name : "", after ? (int)after->len : 0,
			      SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, upto ? (const void *)upto->name : past_all,
			      upto ? (int)upto->len : (int)sizeof(past_all),
			      SQLITE_STATIC) != SQLITE_OK) {
		sqlite_fail(j, SQLITE_MISUSE, "drop identities: bind");
		stmt_done(st);
		return -1;
	}
	return stmt_run(j, ST_DROP_STALE_IDENTITIES, "drop identities");
}

int journal_names_between(struct journal *j, const struct journal_row *lo,
			  const struct journal_row *hi, journal_name_cb *cb, void *arg)
{
	if (!lo || !hi || lo->len >= sizeof(lo->name) || hi->len >= sizeof(hi->name))
		return journal_fail(j, "names_between: invalid arguments");
	sqlite3_stmt *st = j->st[ST_RANGE];
	if (sqlite3_bind_blob(st, 1, lo->name, (int)lo->len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, hi->name, (int)hi->len, SQLITE_STATIC) != SQLITE_OK) {
		stmt_done(st);
		return sqlite_fail(j, SQLITE_MISUSE, "names_between: bind");
	}
	int rc, out = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *bytes = sqlite3_column_blob(st, 0);
		int len = sqlite3_column_bytes(st, 0);
		if (sqlite3_column_type(st, 0) != SQLITE_BLOB || !bytes || len < 2 || len > 59) {
			out = journal_fail(j, "names_between: corrupt journal: a row that is "
					      "not a name");
			break;
		}
		if (cb(arg, bytes, (size_t)len) != 0)
			break;
	}
	if (out == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		out = sqlite_fail(j, rc, "names_between");
	stmt_done(st);
	return out;
}

int64_t journal_count(struct journal *j)
{
	sqlite3_stmt *st = j->st[ST_COUNT];
	int rc = sqlite3_step(st);
	int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	if (rc != SQLITE_ROW)
		sqlite_fail(j, rc, "count");
	stmt_done(st);
	return n;
}

/* A TRUNCATE checkpoint waits for readers through the busy handler; the manager calls this
 * from its event loop, so it must not wait: with a reader active the checkpoint is partial
 * (SQLITE_BUSY), which is fine, and the next call finishes it. */
static int checkpoint_truncate(struct journal *j)
{
	sqlite3_busy_timeout(j->db, 0);
	int rc = sqlite3_wal_checkpoint_v2(j->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_timeout(j->db, JOURNAL_BUSY_MS);
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
		return sqlite_fail(j, rc, "compact: checkpoint");
	return 0;
}

/* The pragma yields one row per page it frees and stops at SQLITE_DONE. */
static int incremental_vacuum(struct journal *j)
{
	sqlite3_stmt *st = j->st[ST_VACUUM];
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		sqlite_fail(j, rc, "compact: incremental_vacuum");
	stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int journal_compact(struct journal *j)
{
	if (j->in_txn)
		return journal_fail(j, "compact: called inside a transaction");
	if (j->flags & JOURNAL_READONLY)
		return journal_fail(j, "compact: journal opened read-only");
	if (incremental_vacuum(j) < 0)
		return -1;
	return checkpoint_truncate(j);
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->db && j->st[ST_ROLLBACK])
		rollback_quietly(j);
	for (int i = 0; i < ST_NUM; i++)
		sqlite3_finalize(j->st[i]);
	/* Closing the last connection checkpoints the WAL and removes -wal and -shm. */
	if (j->db && sqlite3_close(j->db) != SQLITE_OK) {
		log_warn("journal: close: %s", sqlite3_errmsg(j->db));
		sqlite3_close_v2(j->db);
	}
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j);
}

void journal_abandon(struct journal *j)
{
	if (!j)
		return;
	/* Without a checkpoint on close SQLite neither copies the WAL back nor deletes
	 * -wal and -shm by name: names that may belong to another journal by now. */
	if (j->db)
		sqlite3_db_config(j->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	journal_close(j);
}

int journal_unlink_files(int dirfd, char *err, size_t errlen)
{
	/* The rollback journal exists only while a new journal switches to WAL mode (a
	 * manager killed then leaves it); the one aside, while a manager rebuilds its
	 * journal (journal_rebuild). */
	if (unlink_journal_files(dirfd, "", err, errlen) < 0)
		return -1;
	return unlink_journal_files(dirfd, JOURNAL_ASIDE, err, errlen);
}

bool journal_failed_for_resources(const struct journal *j)
{
	return j && j->resources;
}
