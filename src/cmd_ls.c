/* cmd_ls.c — `shmwarden ls [--tmpdir DIR] [--json] [--objects]`: what every manager
 * directory under the temp base holds right now, live or dead.
 *
 * Read-only: journals are opened JOURNAL_READONLY|JOURNAL_UNTRUSTED, and a dead
 * directory's lock is taken only for the instant it takes to learn that nobody holds
 * it. The JSON shape is documented in the README and is stable: fields are only ever
 * added.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "commands.h"
#include "inuse.h"
#include "journal.h"
#include "mgrdir.h"
#include "report.h"
#include "shmobj.h"
#include "util.h"

static const char ls_usage[] =
	"usage: shmwarden ls [--tmpdir DIR] [--json] [--objects]\n"
	"  Lists every manager directory under the temp base (DIR, else $TMPDIR, $TMP,\n"
	"  $TEMP, $TEMPDIR, /tmp): live or dead (by its lock), owner, manager pid, age,\n"
	"  connected clients, registered objects and the bytes they hold in /dev/shm.\n"
	"  --tmpdir DIR  the temp base to list\n"
	"  --json        one JSON document: {\"base\", \"managers\": [...]}\n"
	"  --objects     also list each object: name, size, owner, in use by a live process\n"
	"  Exit status: 0 listed (even if some journal is unreadable), 1 the base cannot\n"
	"  be read, 2 usage.\n";

struct ls_opts {
	const char *base;
	bool json, objects;
	const struct inuse *inuse;
	int shm_dirfd;
	int64_t now;
};

struct ls_object {
	char name[64];
	bool exists, in_use;
	uint64_t size;
	uid_t uid;
};

struct ls_entry {
	char name[256];
	const char *state; /* live, dead, starting, unsafe */
	uid_t owner;
	pid_t pid;
	int64_t age_s;
	int clients;
	int64_t nobjects;
	uint64_t bytes;
	char error[300];
	struct ls_object *objs;
	size_t nobjs;
};

/* Server-side sockets connected to path, from /proc/net/unix: accepted connections
 * carry the listener's path and state 03 (connected). -1 when it cannot be read. */
static int ls_count_clients(const char *sockpath)
{
	FILE *f = fopen("/proc/net/unix", "re");
	if (!f)
		return -1;
	char line[4608];
	int n = 0;
	size_t plen = strlen(sockpath);
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		unsigned st = 0;
		char *nl;
		if (!path || (nl = strchr(path, '\n')) == NULL)
			continue;
		*nl = '\0';
		if (strlen(path) != plen || memcmp(path, sockpath, plen) != 0)
			continue;
		/* Num RefCount Protocol Flags Type St Inode Path */
		if (sscanf(line, "%*s %*s %*s %*s %*s %x", &st) == 1 && st == 3)
			n++;
	}
	fclose(f);
	return n;
}

static const char *ls_state(int dirfd, const struct stat *dst, int64_t now, char *err,
			    size_t errlen)
{
	int lockfd = -1;
	int rc = mgrdir_trylock(dirfd, false, &lockfd, err, errlen);
	if (rc == 1)
		return "live";
	if (rc == 0) {
		close(lockfd); /* releases it at once: ls only looks */
		return "dead";
	}
	if (errno == ENOENT && now - (int64_t)dst->st_mtime < MGRDIR_STARTUP_GRACE_S)
		return "starting";
	return "dead";
}

static int ls_add_object(struct ls_entry *e, const struct ls_opts *o, const char *name,
			 const struct stat *st, bool exists)
{
	if (!o->objects)
		return 0;
	struct ls_object *objs = realloc(e->objs, (e->nobjs + 1) * sizeof(*objs));
	if (!objs)
		return -1;
	e->objs = objs;
	struct ls_object *obj = &objs[e->nobjs++];
	memset(obj, 0, sizeof(*obj));
	util_strlcpy(obj->name, name, sizeof(obj->name));
	obj->exists = exists;
	if (exists) {
		obj->size = (uint64_t)st->st_size;
		obj->uid = st->st_uid;
		obj->in_use = o->inuse && inuse_contains(o->inuse, name);
	}
	return 0;
}

/* Opened by its path: SQLite refuses a symlink in any component of it (NOFOLLOW), so a
 * directory swapped for a link is refused rather than followed. */
static void ls_read_journal(struct ls_entry *e, const struct ls_opts *o, const char *path)
{
	char err[256];
	struct journal *j = NULL;
	if (journal_open(path, JOURNAL_READONLY | JOURNAL_UNTRUSTED, &j, err, sizeof(err)) < 0) {
		snprintf(e->error, sizeof(e->error), "journal: %s", err);
		return;
	}
	e->pid = journal_meta(j)->manager_pid;
	e->age_s = o->now - journal_meta(j)->created_at;
	struct journal_row rows[256];
	int64_t after = 0;
	int n;
	while ((n = journal_page(j, after, rows, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			after = rows[i].id;
			e->nobjects++;
			struct stat st;
			bool exists = rows[i].name[0] && shmobj_stat(o->shm_dirfd, rows[i].name, &st) == 0;
			if (exists)
				e->bytes += (uint64_t)st.st_size;
			if (rows[i].name[0] && ls_add_object(e, o, rows[i].name, &st, exists) < 0) {
				snprintf(e->error, sizeof(e->error), "out of memory");
				n = -1;
				break;
			}
		}
		if (n < 0)
			break;
	}
	if (n < 0 && !e->error[0])
		snprintf(e->error, sizeof(e->error), "journal: %s", journal_error(j));
	journal_close(j);
}

static void ls_inspect(struct ls_entry *e, const struct ls_opts *o, int basefd)
{
	char err[256];
	e->clients = -1;
	int dirfd = openat(basefd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat dst;
	if (dirfd < 0 || fstat(dirfd, &dst) < 0) {
		e->state = "unsafe";
		snprintf(e->error, sizeof(e->error), "open: %s", strerror(errno));
		if (dirfd >= 0)
			close(dirfd);
		return;
	}
	e->owner = dst.st_uid;
	e->age_s = o->now - (int64_t)dst.st_mtime;
	e->state = ls_state(dirfd, &dst, o->now, err, sizeof(err));
	char dirpath[4096], realdir[4096], sockpath[4200];
	snprintf(dirpath, sizeof(dirpath), "%s%s%s", o->base,
		 o->base[strlen(o->base) - 1] == '/' ? "" : "/", e->name);
	snprintf(sockpath, sizeof(sockpath), "%s/%s", dirpath, MGRDIR_SOCKET);
	/* The kernel's name of the directory we opened: no symlink in it (SQLite refuses
	 * those), and the very directory that was checked. */
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
	ssize_t n = readlink(link, realdir, sizeof(realdir) - 1);
	if (n > 0)
		realdir[n] = '\0';
	else
		util_strlcpy(realdir, dirpath, sizeof(realdir));
	if (strcmp(e->state, "live") == 0)
		e->clients = ls_count_clients(sockpath);
	else
		e->clients = 0;
	struct stat jst;
	if (fstatat(dirfd, JOURNAL_FILE, &jst, AT_SYMLINK_NOFOLLOW) == 0)
		ls_read_journal(e, o, realdir);
	close(dirfd);
}

static const char *ls_user(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		util_strlcpy(buf, res->pw_name, len);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
	return buf;
}

static void ls_print_text(const struct ls_entry *e, const struct ls_opts *o)
{
	char user[64], bytes[32], age[32];
	snprintf(age, sizeof(age), "%llds", (long long)e->age_s);
	printf("%-20s %-8s %-10s %7d %8s %7d %7lld %10s%s%s\n", e->name, e->state,
	       ls_user(e->owner, user, sizeof(user)), (int)e->pid, age, e->clients,
	       (long long)e->nobjects, util_human_bytes(e->bytes, bytes, sizeof(bytes)),
	       e->error[0] ? "  ! " : "", e->error);
	for (size_t i = 0; o->objects && i < e->nobjs; i++) {
		const struct ls_object *obj = &e->objs[i];
		if (!obj->exists) {
			printf("    %-48s (gone)\n", obj->name);
			continue;
		}
		printf("    %-48s %10s  %-10s %s\n", obj->name,
		       util_human_bytes(obj->size, bytes, sizeof(bytes)),
		       ls_user(obj->uid, user, sizeof(user)), obj->in_use ? "in use" : "unused");
	}
}

static void ls_print_json(const struct ls_entry *e, const struct ls_opts *o, bool first)
{
	char user[64];
	printf("%s{\"dir\":", first ? "" : ",");
	report_json_string(stdout, e->name);
	printf(",\"state\":\"%s\",\"owner_uid\":%u,\"owner\":", e->state, (unsigned)e->owner);
	report_json_string(stdout, ls_user(e->owner, user, sizeof(user)));
	printf(",\"pid\":%d,\"age_s\":%lld,\"clients\":%d,\"objects\":%lld,\"bytes\":%llu,"
	       "\"error\":",
	       (int)e->pid, (long long)e->age_s, e->clients, (long long)e->nobjects,
	       (unsigned long long)e->bytes);
	if (e->error[0])
		report_json_string(stdout, e->error);
	else
		fputs("null", stdout);
	if (o->objects) {
		fputs(",\"object_list\":[", stdout);
		for (size_t i = 0; i < e->nobjs; i++) {
			const struct ls_object *obj = &e->objs[i];
			printf("%s{\"name\":", i ? "," : "");
			report_json_string(stdout, obj->name);
			printf(",\"exists\":%s,\"size\":%llu,\"owner_uid\":%u,\"in_use\":%s}",
			       obj->exists ? "true" : "false", (unsigned long long)obj->size,
			       (unsigned)obj->uid, obj->in_use ? "true" : "false");
		}
		fputc(']', stdout);
	}
	fputc('}', stdout);
}

static int ls_parse(int argc, char **argv, struct ls_opts *o)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			o->json = true;
		} else if (!strcmp(argv[i], "--objects")) {
			o->objects = true;
		} else if (!strcmp(argv[i], "--tmpdir") && i + 1 < argc && argv[i + 1][0]) {
			o->base = argv[++i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(ls_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "shmwarden ls: bad argument '%s'\n%s", argv[i], ls_usage);
			return 2;
		}
	}
	return -1;
}

int cmd_ls(int argc, char **argv)
{
	struct ls_opts o = { .base = util_tmpbase(), .now = util_wall_s(), .shm_dirfd = -1 };
	int rc = ls_parse(argc, argv, &o);
	if (rc >= 0)
		return rc;
	char err[256];
	struct inuse *idx = NULL;
	int basefd = open(o.base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = basefd >= 0 ? fdopendir(dup(basefd)) : NULL;
	o.shm_dirfd = shmobj_dir_open(err, sizeof(err));
	if (!d || o.shm_dirfd < 0) {
		fprintf(stderr, "shmwarden ls: %s: %s\n", !d ? o.base : SHMOBJ_DIR,
			!d ? strerror(errno) : err);
		rc = 1;
		goto out;
	}
	if (o.objects && !(idx = inuse_scan("/proc", err, sizeof(err))))
		fprintf(stderr, "shmwarden ls: %s (in-use column unknown)\n", err);
	o.inuse = idx;
	if (o.json) {
		fputs("{\"base\":", stdout);
		report_json_string(stdout, o.base);
		fputs(",\"managers\":[", stdout);
	} else {
		printf("%-20s %-8s %-10s %7s %8s %7s %7s %10s\n", "DIRECTORY", "STATE", "OWNER",
		       "PID", "AGE", "CLIENTS", "OBJECTS", "BYTES");
	}
	bool first = true;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!mgrdir_is_name(de->d_name))
			continue;
		struct ls_entry e = { 0 };
		util_strlcpy(e.name, de->d_name, sizeof(e.name));
		ls_inspect(&e, &o, basefd);
		if (o.json)
			ls_print_json(&e, &o, first);
		else
			ls_print_text(&e, &o);
		first = false;
		free(e.objs);
	}
	if (o.json)
		fputs("]}\n", stdout);
	rc = 0;
out:
	inuse_free(idx);
	if (d)
		closedir(d);
	if (basefd >= 0)
		close(basefd);
	if (o.shm_dirfd >= 0)
		close(o.shm_dirfd);
	return rc;
}
