/* journal.h — the SQLite journal of one manager directory.
 *
 * The journal is the manager's table of registered shm names, kept in a file so it
 * outlives a SIGKILLed manager (docs/DESIGN.md, invariants 1, 2, 7). Layout: schema/journal.sql.
 * This module is the only code that speaks SQL; it knows nothing about sockets,
 * /dev/shm or locks. All SQL is in named prepared statements made once at open.
 *
 * Transactions: journal_add/journal_forget open a write transaction
 * when none is open; journal_commit() ends it. The manager commits once per event-loop
 * wake-up (group commit) and answers OK only after journal_commit() returned 0.
 *
 * Errors: functions return -1 (or a negative count) and leave a message that
 * journal_error() returns until the next call; journal_open/journal_create fill the
 * caller's buffer. A journal handle is used by one thread at a time.
 */
#ifndef SHMWARDEN_JOURNAL_H
#define SHMWARDEN_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define JOURNAL_FILE "journal.db"
#define JOURNAL_ASIDE ".new"         /* journal.db.new: a journal being rebuilt (journal_rebuild) */
#define JOURNAL_SCHEMA_VERSION 4     /* what journal_create writes */
#define JOURNAL_SCHEMA_VERSION_MIN 1 /* the oldest a reader still reclaims (0.1.0) */
/* Releases read, each checked against its verbatim schema: 1 (0.1.0), 3 (0.2.0) and
 * JOURNAL_SCHEMA_VERSION; 2 was a development layout, never released. */
#define JOURNAL_APPLICATION_ID 0x73686d77 /* 'shmw' */

struct journal;

/* Process-wide SQLite settings; call once from main() before any journal is opened and
 * before threads start. Turns off SQLite's memory statistics, whose global mutex is
 * taken on every allocation of the manager's hot path (about 7% of its instructions). */
void journal_library_init(void);

struct journal_meta {
	int schema_version; /* PRAGMA user_version */
	uid_t owner_uid;
	pid_t manager_pid;
	char boot_id[UTIL_BOOT_ID_LEN + 1];
	int64_t created_at; /* unix seconds */
	/* Which shm filesystem the names live in, and the manager's mount namespace (the
	 * inode of /proc/self/ns/mnt); has_shm_fs is false for a version 1 journal, which
	 * does not say. */
	bool has_shm_fs;
	uint64_t shm_dev;
	uint64_t mnt_ns;
	/* Which directory of that filesystem the manager opened as /dev/shm (its st_ino): a
	 * subdirectory bind-mounted as a job's /dev/shm has the host's st_dev, not its
	 * inode. false before version 4, which did not say (the device alone decides). */
	bool has_shm_root;
	uint64_t shm_ino;
	/* That directory's birth time (unix ns, statx; 0 when the filesystem did not give
	 * one): an anonymous device number is freed with its tmpfs and handed to the next,
	 * whose root may have the same inode number, but was born later. Version 4 on. */
	int64_t shm_btime_ns;
	/* The manager's user namespace (the inode of /proc/self/ns/user, 0 when unknown) and
	 * owner_uid as that namespace's parent sees it (/proc/self/uid_map; (uid_t)-1 when
	 * unmapped). has_userns is false before version 4, and when user_ns is 0: then
	 * owner_uid alone must be the directory's owner. */
	bool has_userns;
	uint64_t user_ns;
	uid_t parent_uid;
};

/* One row as read back: a copy of the stored name, len bytes (2..59, which the schema
 * enforces) and a NUL after them. The bytes are whatever a writer stored: callers check
 * them with wire_name_check before acting on a name. */
struct journal_row {
	int64_t registered_at; /* unix seconds */
	/* The registration as stored, in microseconds: its identity, and where a grace
	 * starts. Version 1 stored whole seconds (cut): the last microsecond of that second,
	 * so a grace counted from it never ends before the documented one. */
	int64_t registered_us;
	/* Version 1: registered_us is the last microsecond of the second stored, and the
	 * registration may have been up to 999999 us earlier (journal_row_earliest_us). */
	bool registered_cut;
	/* The journaled object, when learned (identified): its inode number on the shm
	 * filesystem and its birth time (statx stx_btime) in nanoseconds since the epoch. */
	bool identified;
	uint64_t ino;
	int64_t btime_ns;
	size_t len;
	char name[64];
};

/* The earliest moment the row's registration can have been, in microseconds since the
 * epoch: registered_us, or for a version 1 row the first microsecond of its second. The
 * birth window (shmobj_born_by) counts from it, so a time cut to the second never
 * widens the window, as the grace counts from registered_us, so it never shortens the
 * grace. */
int64_t journal_row_earliest_us(const struct journal_row *row);

/* journal_open flags */
#define JOURNAL_UNTRUSTED 0x1 /* written by someone we do not trust: defensive open */
#define JOURNAL_READONLY 0x2  /* never write (ls, dry runs) */
/* With UNTRUSTED|READONLY, for a look at the manager row or a comparison of names (the
 * foreign check, live managers' names): no PRAGMA quick_check, whose cost grows with the
 * file. Everything read is still checked as it is read (the manager row's types, each
 * name a 2..59-byte blob, names in order), and nothing read is acted on as a name. */
#define JOURNAL_SKIM 0x4

/* Creates DIR/journal.db (which must not exist), applies the schema and writes meta.
 * The manager's own handle: WAL, synchronous=OFF (reasoned in journal.c). */
int journal_create(const char *dirpath, const struct journal_meta *meta, struct journal **out,
		   char *err, size_t errlen);

/* Makes DIR/journal.db anew, for a manager whose journal was removed or replaced under
 * it: meta and rows[0..n-1] (as journal_adopt takes them) are written and committed in
 * DIR/journal.db.new, which is then closed (its WAL checkpointed into it), what is left of
 * the old journal.db and its -wal, -shm is unlinked through dirfd (DIR itself), and the
 * new file renamed to journal.db: a reader finds no journal.db, or one holding every
 * row, never one with fewer (journal.c says why). Then opened as journal_create's handle
 * would be. 0 with *out set, or -1 with err set: then journal.db may be gone (or be the
 * new one, when only the last open failed), and the caller keeps its old handle and
 * tries again later. */
int journal_rebuild(const char *dirpath, int dirfd, const struct journal_meta *meta,
		    const struct journal_row *rows, size_t n, struct journal **out, char *err,
		    size_t errlen);

/* Opens an existing DIR/journal.db; DIR must contain no symlink (SQLite refuses a symlink
 * in any component of the path). With JOURNAL_UNTRUSTED: defensive mode, trusted_schema
 * off, cell size checks, quick_check, and the schema must equal schema/journal.sql
 * exactly. A zero-byte, foreign, future or corrupt file fails with a message that says
 * which. Returns 0 with meta read and available at once; -ENODATA when the database
 * (its -wal applied) holds no schema at all (a zero-byte file, or a manager killed
 * before its schema transaction committed: nothing was ever registered in it);
 * -EROFS when a read-write open (no JOURNAL_READONLY) got a read-only handle (the file's
 * mode, a read-only mount: the file may be sound, it cannot be changed); -EAGAIN when
 * it failed for want of resources (out of file descriptors, EMFILE or ENFILE, or of
 * memory: nothing is known of the file, so no caller may call it corrupt or foreign;
 * try again later); -1 otherwise. */
int journal_open(const char *dirpath, unsigned flags, struct journal **out, char *err,
		 size_t errlen);

/* Opens dirfd's journal.db (flags as for journal_open) through the descriptor, not a
 * path: SQLite reaches it, and its -wal and -shm, as /proc/self/fd/N/journal.db for a
 * duplicate of dirfd that the handle keeps until journal_close. For a directory another
 * mount namespace names (a live manager's, reached through its own descriptor), and for
 * one whose path SQLite cannot take (journal_path_fits): no name of ours is involved, so
 * no one can swap the directory; only its own entries remain, which its owner controls.
 * label names the directory in messages. Returns as journal_open. */
int journal_open_dirfd(int dirfd, const char *label, unsigned flags, struct journal **out,
		       char *err, size_t errlen);

/* Whether SQLite takes DIR/journal.db and its -wal and -shm by path: false when they
 * are as long as its unix VFS's limit (mxPathname, 512 bytes in SQLite 3.40) or longer,
 * and journal_open would fail ("unable to open database file"). */
bool journal_path_fits(const char *dirpath);

const struct journal_meta *journal_meta(const struct journal *j);
const char *journal_error(const struct journal *j);
/* Whether the latest failure of j was for want of resources (EMFILE, ENFILE, ENOMEM,
 * SQLITE_NOMEM), not something the file is: a transient error, never a finding. */
bool journal_failed_for_resources(const struct journal *j);

/* Records a registration. Registering a name again restarts it: registered_at becomes
 * now_s and the identity learned for the earlier object is forgotten, since the client
 * may be about to replace that object. */
int journal_add(struct journal *j, const char *name, size_t len, pid_t client_pid, int64_t now_s);
/* Records an adopted row as it was (registered_at and identity kept); a name already
 * journaled here is left as it is. */
int journal_adopt(struct journal *j, const struct journal_row *row);
/* Records which object a name means: only when its registration has no identity yet
 * (one per registration) and the object was born at most window_s seconds after the
 * registration (its microseconds as stored: btime_ns <= registered_at * 1000 + window_s
 * * 10^9, window_s converted and clamped by shmobj_window_ns), or before it (the rule
 * of shmobj_born_by, applied in SQL so no read precedes the write). Identities live in
 * their own table, so the register path never writes it. Version 1 journals have
 * nowhere to keep it: a no-op there. */
int journal_identify(struct journal *j, const char *name, size_t len, uint64_t ino,
		     int64_t btime_ns, int64_t window_s);
/* Removes a name (a free whose object is gone, a reclaimed or pruned row); absent
 * names are fine. */
int journal_forget(struct journal *j, const char *name, size_t len);

bool journal_in_txn(const struct journal *j);
int journal_begin(struct journal *j);  /* no-op when a transaction is open */
int journal_commit(struct journal *j); /* no-op when none is open */
void journal_rollback(struct journal *j);

/* Up to max rows whose names sort after after->name (byte order; after == NULL: from
 * the first), ascending. Returns the count (0 at the end), or -1. Holds no statement open
 * between calls, so callers may forget rows in between: pass the last row returned as
 * the next call's after. */
int journal_page(struct journal *j, const struct journal_row *after, struct journal_row *rows,
		 int max);

/* Drops the identities whose registration is gone (freed, pruned, reclaimed, or the
 * name registered again), for names after `after` up to `upto` inclusive (NULL: from
 * the first, to the last). The hot path never deletes identities: callers sweep them a
 * range at a time (the prune, page by page) so their table follows the live set too
 * (invariant 7). Joins the open transaction. A no-op on a version 1 journal. */
int journal_drop_stale_identities(struct journal *j, const struct journal_row *after,
				  const struct journal_row *upto);

/* Calls cb for every journaled name from lo to hi inclusive (byte order), in order;
 * a non-zero return from cb stops the walk. Returns 0, or -1. In autocommit, every call
 * sees the latest commit of any writer. */
typedef int journal_name_cb(void *arg, const char *name, size_t len);
int journal_names_between(struct journal *j, const struct journal_row *lo,
			  const struct journal_row *hi, journal_name_cb *cb, void *arg);

/* Number of rows, or -1. */
int64_t journal_count(struct journal *j);

/* Gives back free pages and truncates the WAL, so the files follow the live set
 * (invariant 7). Cheap when there is little to do; call it outside a transaction. */
int journal_compact(struct journal *j);

/* Closes and frees; NULL is fine. Rolls back an open transaction. */
void journal_close(struct journal *j);

/* Closes a journal whose files were unlinked or replaced under it (a /tmp cleaner, a
 * hand rm) without touching whatever now has its names: no checkpoint, no -wal/-shm
 * removed. NULL is fine. */
void journal_abandon(struct journal *j);

/* Unlinks journal.db, journal.db-wal, journal.db-shm and journal.db-journal (the
 * rollback journal of the switch to WAL mode at creation) in dirfd, and the same of
 * journal.db.new (a rebuild a manager was killed in: journal_rebuild); ENOENT is fine. */
int journal_unlink_files(int dirfd, char *err, size_t errlen);

#endif
