/* fuzz_reclaim.c — structured libFuzzer harness: valid journals with hostile contents,
 * read and acted on by the reclaim engine.
 *
 * The input is a small program. Byte 0 picks a damage a foreign writer applies to the
 * journal's schema or manager row (most values: none), byte 1 holds flags (dry run,
 * adoption, which objects are "in use", whether the rows record another object's
 * identity than the files now have), and the rest is a list of rows inserted with raw
 * SQL, bypassing journal_add: blobs, text, integers, reals, NULL, values larger than the
 * untrusted length limit, and well-known hostile names ("/../x", "/lnk",
 * "/sub/x"...). The journal is then opened JOURNAL_UNTRUSTED and reclaim_journal() runs
 * against a fake /dev/shm (a private directory holding regular files, a symlink, a
 * subdirectory, a FIFO, another uid's file) and a fake /proc whose one process maps the
 * objects marked in use.
 *
 * The harness checks what the sweeper promises, whatever the journal says: a file is
 * unlinked only when a valid blob row names it exactly and it is ours, regular, unused
 * and the journaled object (a row recording another identity unlinks nothing); nothing outside the fake /dev/shm, no symlink, directory or foreign file is
 * ever removed; a dry run removes nothing; and after a real run only in-use rows that
 * were not adopted are left (the schema refuses every row that is not a 2..59-byte
 * blob, so there is nothing else a reader could skip).
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fuzz.h"
#include "inuse.h"
#include "journal.h"
#include "log.h"
#include "reclaim.h"

const char fuzz_harness_name[] = "fuzz_reclaim";

#define MAX_ROWS 64
#define FOREIGN_UID 54321

/* Damages a foreign writer applies (byte 0 % 16; below 7: none). */
static const char *const damages[16] = {
	[7] = "PRAGMA writable_schema=ON;"
	      "UPDATE sqlite_schema SET rootpage = (SELECT rootpage FROM sqlite_schema"
	      " WHERE name = 'manager') WHERE name = 'objects';",
	[8] = "PRAGMA user_version = 1;", /* today's tables under the old version's name */
	[9] = "UPDATE manager SET owner_uid = owner_uid + 1;",
	[10] = "CREATE TRIGGER t AFTER DELETE ON objects BEGIN INSERT INTO objects"
	       "(name, client_pid, registered_at) VALUES (x'2f76696374696d', 1, 1); END;",
	[11] = "ALTER TABLE objects RENAME TO o2; CREATE TABLE objects (id INTEGER PRIMARY KEY,"
	       " name, client_pid, registered_at); DROP TABLE o2;",
	[12] = "PRAGMA application_id = 1;",
	[13] = "CREATE VIEW v AS SELECT 1;",
	[14] = "UPDATE manager SET boot_id = 'x';",
	[15] = "PRAGMA journal_mode = DELETE;",
};

/* The fake /dev/shm. Regular files of ours can be reclaimed; the rest never. */
static const char *const ours[] = { "victim", "a", "b", "\xff\xfe", "x (deleted)" };
#define NOURS (sizeof(ours) / sizeof(ours[0]))

/* Names the fuzzer picks by index (type 6): each aims at one rule. */
static const char *const known[] = {
	"/victim",
	"/a",
	"/b",
	"/\xff\xfe",
	"/x (deleted)",
	"/sub/x",
	"/sub",
	"/lnk",
	"/dir",
	"/fifo",
	"/foreign",
	"/../outside/victim",
	"/..",
	"/.",
	"/",
	"//victim",
	"/nonexistent",
	"victim",
	"/victim/",
	"/a\n",
	"/"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	"/"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

struct ctx {
	const char *jdir, *adir, *shm, *outside, *proc;
	char boot_id[UTIL_BOOT_ID_LEN + 1];
};

static void rm_journal(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	char err[256];
	FUZZ_CHECK(journal_unlink_files(fd, err, sizeof(err)) == 0);
	close(fd);
}

static bool exists_at(const char *dir, const char *name)
{
	char path[4200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static void make_fake_shm(const struct ctx *c, const bool in_use[NOURS])
{
	char path[4200];
	/* Made afresh for every input: born now, inside the window after the rows'
	 * registration (a file kept from an earlier input would be too old). */
	for (size_t i = 0; i < NOURS; i++) {
		snprintf(path, sizeof(path), "%s/%s", c->shm, ours[i]);
		if (unlink(path) < 0)
			FUZZ_CHECK(errno == ENOENT);
		FUZZ_CHECK(fuzz_write_file(c->shm, ours[i], "x", 1) == 0);
	}
	snprintf(path, sizeof(path), "%s/sub", c->shm);
	(void)mkdir(path, 0700);
	FUZZ_CHECK(fuzz_write_file(path, "x", "x", 1) == 0);
	snprintf(path, sizeof(path), "%s/dir", c->shm);
	(void)mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/lnk", c->shm);
	if (symlink("victim", path) < 0)
		FUZZ_CHECK(errno == EEXIST);
	snprintf(path, sizeof(path), "%s/fifo", c->shm);
	if (mkfifo(path, 0600) < 0)
		FUZZ_CHECK(errno == EEXIST);
	FUZZ_CHECK(fuzz_write_file(c->shm, "foreign", "x", 1) == 0);
	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "%s/foreign", c->shm);
		FUZZ_CHECK(chown(path, FOREIGN_UID, (gid_t)-1) == 0);
	}
	FUZZ_CHECK(fuzz_write_file(c->outside, "victim", "x", 1) == 0);

	/* One "process" mapping the objects in use, as the kernel prints maps lines: by
	 * device and inode (the path column is not what the index reads). */
	char maps[4096];
	size_t n = 0;
	for (size_t i = 0; i < NOURS; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", c->shm, ours[i]);
		FUZZ_CHECK(stat(path, &st) == 0);
		if (in_use[i])
			n += (size_t)snprintf(
				maps + n, sizeof(maps) - n,
				"7f0000000000-7f0000001000 rw-s 00000000 %02x:%02x %llu"
				"                    /elsewhere/%s\n",
				major(st.st_dev), minor(st.st_dev), (unsigned long long)st.st_ino,
				ours[i]);
	}
	FUZZ_CHECK(fuzz_write_file(c->proc, "maps", maps, n) == 0);
}

/* Reads the next len bytes of the program, or NULL when it ends. */
static const uint8_t *take(const uint8_t **p, const uint8_t *end, size_t len)
{
	if ((size_t)(end - *p) < len)
		return NULL;
	const uint8_t *r = *p;
	*p += len;
	return r;
}

struct row_state {
	bool listed[NOURS]; /* a blob row with exactly "/NAME" went in */
};

static int bind_row(sqlite3_stmt *st, unsigned type, const uint8_t *pl, size_t len,
		    size_t *listed_idx)
{
	*listed_idx = NOURS;
	switch (type % 7) {
	case 0:
		for (size_t i = 0; i < NOURS; i++)
			if (len == strlen(ours[i]) + 1 && pl[0] == '/' &&
			    memcmp(pl + 1, ours[i], len - 1) == 0)
				*listed_idx = i;
		return sqlite3_bind_blob(st, 1, pl, (int)len, SQLITE_TRANSIENT);
	case 1:
		return sqlite3_bind_text(st, 1, (const char *)pl, (int)len, SQLITE_TRANSIENT);
	case 2: {
		int64_t v = 0;
		memcpy(&v, pl, len < 8 ? len : 8);
		return sqlite3_bind_int64(st, 1, v);
	}
	case 3:
		return sqlite3_bind_double(st, 1, (double)len / 3.0);
	case 4:
		return sqlite3_bind_null(st, 1);
	case 5:
		return sqlite3_bind_zeroblob(st, 1, 65536 + (int)len * 1024);
	default: {
		const char *name = known[(len ? pl[0] : 0) % NKNOWN];
		size_t nlen = strlen(name);
		for (size_t i = 0; i < NOURS; i++)
			if (strcmp(name + 1, ours[i]) == 0 && name[0] == '/')
				*listed_idx = i;
		return sqlite3_bind_blob(st, 1, name, (int)nlen, SQLITE_STATIC);
	}
	}
}

/* Builds the journal: a real one from journal_create, then the damage and the rows
 * written by a foreign connection. */
static void build_journal(const struct ctx *c, unsigned damage, bool wrong_identity,
			  const uint8_t *p, const uint8_t *end, struct row_state *rs)
{
	char err[256], path[4200];
	struct journal *j = NULL;
	struct journal_meta m = { .schema_version = JOURNAL_SCHEMA_VERSION,
				  .owner_uid = geteuid(),
				  .manager_pid = getpid(),
				  .created_at = 1 };
	memcpy(m.boot_id, c->boot_id, sizeof(m.boot_id));
	FUZZ_CHECK(journal_create(c->jdir, &m, &j, err, sizeof(err)) == 0);
	journal_close(j);

	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/%s", c->jdir, JOURNAL_FILE);
	FUZZ_CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
	/* No fsync: it would only slow the fuzzer down. */
	sqlite3_exec(db, "PRAGMA synchronous=OFF; BEGIN", NULL, NULL, NULL);
	sqlite3_stmt *ins = NULL;
	/* Registered now (schema version 2 keeps microseconds), so the fake objects made
	 * just before fall in the birth window; or identified as inode 1 born at the
	 * epoch, which none of them is. */
	FUZZ_CHECK(sqlite3_prepare_v2(db,
				      "INSERT INTO objects(name, client_pid, registered_at)"
				      " VALUES (?1, ?2, ?3)",
				      -1, &ins, NULL) == SQLITE_OK);
	for (int r = 0; r < MAX_ROWS; r++) {
		const uint8_t *hdr = take(&p, end, 2);
		if (!hdr)
			break;
		unsigned type = hdr[0];
		size_t len = hdr[1] % 80;
		const uint8_t *pl = take(&p, end, len);
		if (!pl)
			break;
		sqlite3_stmt *st = ins;
		size_t li;
		bool ok = bind_row(st, type & 0x7f, pl, len, &li) == SQLITE_OK;
		/* A client pid of the wrong type now and then: no reader may care. */
		if (ok && (type & 0x40))
			ok = sqlite3_bind_text(st, 2, "pid", 3, SQLITE_STATIC) == SQLITE_OK;
		else if (ok)
			ok = sqlite3_bind_int64(st, 2, r) == SQLITE_OK;
		if (ok)
			ok = sqlite3_bind_int64(st, 3, util_wall_s() * 1000000) == SQLITE_OK;
		if (ok && sqlite3_step(st) == SQLITE_DONE && li < NOURS)
			rs->listed[li] = true;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	sqlite3_finalize(ins);
	if (wrong_identity)
		sqlite3_exec(db,
			     "INSERT OR IGNORE INTO identities SELECT name, registered_at, 1, 1"
			     " FROM objects",
			     NULL, NULL, NULL);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	/* Outside the transaction: journal_mode cannot change inside one. */
	if (damages[damage])
		sqlite3_exec(db, damages[damage], NULL, NULL, NULL);
	FUZZ_CHECK(sqlite3_close(db) == SQLITE_OK);
}

static struct ctx *setup(void)
{
	static struct ctx c;
	static bool done;
	if (done)
		return &c;
	log_set_level(LOG_LVL_ERROR);
	char err[256];
	c.jdir = fuzz_private_dir("j");
	c.adir = fuzz_private_dir("adopt");
	c.shm = fuzz_private_dir("shm");
	c.outside = fuzz_private_dir("outside");
	c.proc = fuzz_private_dir("proc");
	FUZZ_CHECK(c.jdir && c.adir && c.shm && c.outside && c.proc);
	/* fake /proc: one pid directory, "1", whose maps is rewritten per input */
	static char pid1[4200];
	snprintf(pid1, sizeof(pid1), "%s/1", c.proc);
	(void)mkdir(pid1, 0700);
	c.proc = pid1;
	FUZZ_CHECK(util_boot_id(c.boot_id, sizeof(c.boot_id), err, sizeof(err)) == 0);
	done = true;
	return &c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx *c = setup();
	const uint8_t *p = data, *end = data + size;
	const uint8_t *hdr = take(&p, end, 2);
	unsigned damage = hdr ? hdr[0] % 16 : 0;
	unsigned flags = hdr ? hdr[1] : 0;
	bool dry_run = flags & 1, adopt = flags & 2, wrong_identity = flags & 0x80;
	bool in_use[NOURS];
	for (size_t i = 0; i < NOURS; i++)
		in_use[i] = flags & (4u << i);

	rm_journal(c->jdir);
	rm_journal(c->adir);
	make_fake_shm(c, in_use);
	struct row_state rs = { 0 };
	build_journal(c, damage, wrong_identity, p, end, &rs);

	char err[512], procroot[4200];
	snprintf(procroot, sizeof(procroot), "%s/..", c->proc);
	struct stat shmst;
	FUZZ_CHECK(stat(c->shm, &shmst) == 0);
	struct inuse *idx = inuse_scan(procroot, shmst.st_dev, err, sizeof(err));
	FUZZ_CHECK(idx != NULL);
	int shmfd = open(c->shm, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(shmfd >= 0);
	struct journal *j = NULL, *a = NULL;
	struct reclaim_report rep;
	memset(&rep, 0, sizeof(rep));
	int rc = -2; /* reclaim did not run */
	unsigned flags_open = JOURNAL_UNTRUSTED | (dry_run ? JOURNAL_READONLY : 0);
	if (journal_open(c->jdir, flags_open, &j, err, sizeof(err)) == 0 &&
	    journal_meta(j)->owner_uid == geteuid()) {
		if (adopt) {
			struct journal_meta m = *journal_meta(j);
			FUZZ_CHECK(journal_create(c->adir, &m, &a, err, sizeof(err)) == 0);
		}
		int64_t before = journal_count(j);
		struct reclaim_opts opts = { .inuse = idx,
					     .shm_dirfd = shmfd,
					     .boot_id = c->boot_id,
					     .dry_run = dry_run,
					     .adopt_into = a,
					     .now_s = 2,
					     .no_live_check = true };
		rc = reclaim_journal(&opts, j, -1, geteuid(), &rep);
		FUZZ_CHECK(rc == 0 || rc == -1);
		int64_t after = journal_count(j);
		if (rc == 0 && dry_run)
			FUZZ_CHECK(after == before);
		if (rc == 0 && !dry_run && after >= 0) {
			/* Only what must stay stays: in-use rows not adopted. */
			FUZZ_CHECK(after == (int64_t)(rep.in_use - rep.adopted));
			if (a)
				FUZZ_CHECK(journal_count(a) == (int64_t)rep.adopted);
		}
	}
	journal_close(a);
	journal_close(j);
	close(shmfd);
	inuse_free(idx);

	/* Whatever the journal said: */
	FUZZ_CHECK(exists_at(c->outside, "victim"));
	/* "foreign" is another uid's only when we could chown it (as root). */
	static const char *const never[] = { "sub", "sub/x", "dir", "lnk", "fifo", "foreign" };
	size_t nnever = sizeof(never) / sizeof(never[0]) - (geteuid() == 0 ? 0 : 1);
	for (size_t i = 0; i < nnever; i++)
		FUZZ_CHECK(exists_at(c->shm, never[i]));
	unsigned gone = 0;
	for (size_t i = 0; i < NOURS; i++) {
		bool present = exists_at(c->shm, ours[i]);
		if (!rs.listed[i] || in_use[i] || dry_run || rc == -2 || wrong_identity)
			FUZZ_CHECK(present);
		else if (rc == 0)
			FUZZ_CHECK(!present);
		gone += !present;
	}
	if (rc == 0 && !dry_run)
		FUZZ_CHECK(rep.unlinked == gone);
	return 0;
}
