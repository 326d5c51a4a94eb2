/* bench_journal.c — what one journal commit costs, with SQLite's two WAL locking modes.
 *
 * `scripts/bench --profile` runs it to show what stands between the manager and the floor:
 * the manager commits once per wake-up, and with one client that is one commit per
 * register+free pair (DELETE the freed name, INSERT the new one). This does exactly that
 * on a fresh journal built from schema/journal.sql (the text the manager embeds), with
 * the manager's page size and connection settings, and reports the CPU time (getrusage:
 * what other load on the machine moves least) per commit:
 *   shared     locking_mode=NORMAL, the manager's: the WAL index lives in journal.db-shm
 *              and every transaction takes and drops its fcntl locks (6 per commit), so
 *              other processes (ls, a sweeper's livemgr) can read the live journal;
 *   exclusive  locking_mode=EXCLUSIVE before the first WAL access: the index lives in
 *              heap memory and the locks are taken once, and no other connection, in
 *              this process or another, can read the journal while it is open.
 *
 *   bench_journal DIR [--commits N] [--live L] [--mode shared|exclusive]
 * DIR: an empty directory of the caller's; the journals are made and removed there.
 * --mode runs one locking mode only (default: both), so that `scripts/bench` can run it
 * under strace -c and callgrind at two commit counts and difference them: the system
 * calls and instructions of one commit, which load on the machine cannot change.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

extern const char journal_schema_sql[]; /* schema/journal.sql, embedded by the Makefile */

/* The manager's settings (src/journal.c: JOURNAL_CONNECTION_PRAGMAS, JOURNAL_PAGE_SIZE,
 * create_schema), repeated here because the point is to vary the one beside them. */
#define BJ_PRAGMAS                                                                          \
	"PRAGMA page_size=1024; PRAGMA auto_vacuum=INCREMENTAL; PRAGMA synchronous=OFF;"    \
	"PRAGMA cache_size=-2000; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=100;" \
	"PRAGMA journal_size_limit=524288; PRAGMA journal_mode=WAL;"

static void bj_fail(sqlite3 *db, const char *what)
{
	fprintf(stderr, "bench_journal: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
	exit(1);
}

static double bj_cpu(double *user)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	*user = (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6;
	return *user + (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

static void bj_step(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		bj_fail(db, what);
	sqlite3_reset(st);
}

static void bj_name(char *buf, size_t len, unsigned long i)
{
	/* PyTorch's names: /torch_PID_RANDOM, so inserts land all over the b-tree. */
	snprintf(buf, len, "/torch_%lu_%lu", 1000 + i % 8, (i * 2654435761UL) % 4294967291UL);
}

static void bj_run(const char *dir, const char *mode, unsigned long commits, unsigned long live)
{
	char path[PATH_MAX], side[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/journal-%s.db", dir, mode);
	sqlite3 *db;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL))
		bj_fail(db, "open");
	char sql[128];
	snprintf(sql, sizeof(sql), "PRAGMA locking_mode=%s;",
		 strcmp(mode, "exclusive") ? "NORMAL" : "EXCLUSIVE");
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) ||
	    sqlite3_exec(db, BJ_PRAGMAS, NULL, NULL, NULL) ||
	    sqlite3_exec(db, journal_schema_sql, NULL, NULL, NULL))
		bj_fail(db, "create");
	sqlite3_stmt *begin, *commit, *ins, *del;
	if (sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) ||
	    sqlite3_prepare_v2(db,
			       "INSERT OR REPLACE INTO objects(name, client_pid, "
			       "registered_at) VALUES (?1, ?2, ?3)",
			       -1, &ins, NULL) ||
	    sqlite3_prepare_v2(db, "DELETE FROM objects WHERE name = ?1", -1, &del, NULL))
		bj_fail(db, "prepare");
	char name[64], prev[64] = "";
	bj_step(db, begin, "begin");
	for (unsigned long i = 0; i < live; i++) {
		bj_name(name, sizeof(name), commits + i);
		sqlite3_bind_blob(ins, 1, name, (int)strlen(name), SQLITE_TRANSIENT);
		sqlite3_bind_int(ins, 2, 1);
		sqlite3_bind_int64(ins, 3, 1);
		bj_step(db, ins, "insert");
	}
	bj_step(db, commit, "commit");
	double u0, u1, t0 = bj_cpu(&u0);
	for (unsigned long i = 0; i < commits; i++) {
		bj_name(name, sizeof(name), i);
		bj_step(db, begin, "begin");
		if (prev[0]) {
			sqlite3_bind_blob(del, 1, prev, (int)strlen(prev), SQLITE_STATIC);
			bj_step(db, del, "delete");
		}
		sqlite3_bind_blob(ins, 1, name, (int)strlen(name), SQLITE_STATIC);
		sqlite3_bind_int(ins, 2, 1);
		sqlite3_bind_int64(ins, 3, 1);
		bj_step(db, ins, "insert");
		bj_step(db, commit, "commit");
		memcpy(prev, name, sizeof(prev));
	}
	double t1 = bj_cpu(&u1);
	printf("%s_us_per_commit=%.2f\n%s_user_us=%.2f\n%s_sys_us=%.2f\n", mode,
	       (t1 - t0) / (double)commits * 1e6, mode, (u1 - u0) / (double)commits * 1e6, mode,
	       ((t1 - t0) - (u1 - u0)) / (double)commits * 1e6);
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	sqlite3_finalize(ins);
	sqlite3_finalize(del);
	sqlite3_close(db);
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	for (size_t k = 0; k < 3; k++) {
		snprintf(side, sizeof(side), "%s%s", path, suffixes[k]);
		unlink(side);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "commits", required_argument, NULL, 'n' },
		{ "live", required_argument, NULL, 'l' },
		{ "mode", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long commits = 20000, live = 0;
	const char *only = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		/* '?': an unknown option, or one without its argument (optarg is NULL then). */
		if (c == '?' ||
		    (c == 'm' && strcmp(optarg, "shared") && strcmp(optarg, "exclusive"))) {
			fprintf(stderr, "usage: bench_journal DIR [--commits N] [--live L] "
					"[--mode shared|exclusive]\n");
			return 2;
		}
		if (c == 'm') {
			only = optarg;
			continue;
		}
		char *end;
		errno = 0;
		unsigned long v = strtoul(optarg, &end, 10);
		if (errno || end == optarg || *end || optarg[0] == '-') {
			fprintf(stderr, "usage: bench_journal DIR [--commits N] [--live L] "
					"[--mode shared|exclusive]\n");
			return 2;
		}
		if (c == 'n')
			commits = v ? v : 1;
		else
			live = v;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: bench_journal DIR [--commits N] [--live L] "
				"[--mode shared|exclusive]\n");
		return 2;
	}
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* as the manager (journal_library_init) */
	printf("commits=%lu\nlive=%lu\n", commits, live);
	if (!only || !strcmp(only, "shared"))
		bj_run(argv[optind], "shared", commits, live);
	if (!only || !strcmp(only, "exclusive"))
		bj_run(argv[optind], "exclusive", commits, live);
	return 0;
}
