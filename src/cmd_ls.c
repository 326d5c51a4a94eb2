/* cmd_ls.c — `shmwarden ls [--tmpdir BASE] [--json] [--objects] [--prune-grace SECONDS]`:
 * what every manager directory under the temp bases holds right now, live or dead, names
 * not created yet judged by the grace a sweep would use. The bases are the
 * sweep's (bases.h: --tmpdir, else SHMWARDEN_TMPDIRS, else the temp base; patterns
 * included), so ls shows what a sweep would visit.
 *
 * Read-only: what a directory is comes from mgrdir_probe without MGRDIR_PROBE_ACT, so
 * nothing in a directory changes (a dead one's journal is read from a private copy, a
 * live one's read-only), and a dead directory's locks are held only while its journal
 * is copied. A directory the sweeper would refuse (symlinks, foreign or group-writable
 * files) is reported "unsafe" and its journal is not read. The JSON shape is documented in the
 * README ("JSON shapes") and is stable: fields are only ever added.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bases.h"
#include "cli.h"
#include "commands.h"
#include "inuse.h"
#include "journal.h"
#include "livemgr.h"
#include "mgrdir.h"
#include "reclaim.h"
#include "report.h"
#include "shmobj.h"
#include "util.h"
#include "wire.h"

static const char ls_usage[] =
	"usage: shmwarden ls [--tmpdir BASE] [--json] [--objects] [--prune-grace SECONDS]\n"
	"  Lists every manager directory under the temp bases (BASE, else\n"
	"  $SHMWARDEN_TMPDIRS, colon-separated, else $TMPDIR, $TMP, $TEMP, $TEMPDIR, /tmp;\n"
	"  glob(3) patterns as for sweep): its state (live, dead, starting, busy, unsafe,\n"
	"  foreign, corrupt, unknown), owner, manager pid, age, connected clients,\n"
	"  registered objects and the bytes they hold in /dev/shm, under a first line\n"
	"  naming the bases and the setting they came from. Changes nothing.\n"
	"  --tmpdir BASE  the temp base (or pattern) to list\n"
	"  --json         one JSON document: {\"base\", \"base_from\", \"managers\": [...],\n"
	"                 \"unsafe_bases\": [...]}\n"
	"  --objects      also list each object: name, size, owner, in use by a live process;\n"
	"                 (not created yet): no object yet, registered less than the prune\n"
	"                 grace ago (a sweep keeps it), else (gone)\n"
	"  --prune-grace SECONDS\n"
	"                 the grace to judge names by, as sweep's --prune-grace: whole\n"
	"                 seconds, 0 to 86400000 (default 10); 0: every name whose object\n"
	"                 does not exist is (gone), as a sweep with 0 drops it at once\n"
	"  Exit status: 0 listed (even if some journal is unreadable), 1 a base cannot\n"
	"  be read, 2 usage (a malformed pattern included). A reader that goes away\n"
	"  early (| head): SIGPIPE ends ls quietly, as any filter (the shell's 141).\n";

struct ls_opts {
	const char *tmpdir;
	const char *base; /* the base being listed, or all of them (bases.text) */
	struct bases bases;
	bool many; /* more than one literal base: DIRECTORY shows the path */
	/* where the bases came from: "--tmpdir", "SHMWARDEN_TMPDIRS", "TMPDIR"... or
	 * "default" (/tmp) */
	const char *base_from;
	bool json, objects;
	struct inuse *inuse;
	int shm_dirfd;
	int64_t now;
	int64_t now_us;      /* for the grace of names not created yet, to the microsecond */
	int64_t grace_s;     /* --prune-grace: a name younger than this is not created yet */
	const char *boot_id; /* NULL when unknown: every journal is taken as this boot's */
	/* With --objects, for a dead directory's names: the live managers a reclaimer
	 * would hand them over to (livemgr.h), found in our /proc and by their lock in
	 * every base listed (as sweep watches every base it walks). */
	bool shm_fs_ok; /* shm_fs is ours: else no live manager is looked for */
	struct shmobj_fs shm_fs;
	const int *live_bases;
	size_t nlive_bases;
};

/* What a reclaimer would find of an existing object, in the sweep's words. */
enum ls_use {
	LS_UNUSED,
	LS_IN_USE,
	LS_NOT_INSPECTABLE, /* a task we cannot inspect may hold it, and no lease could ask */
	LS_NO_LEASE,        /* no task we see holds it, and no lease could ask */
	LS_REFUSED_OWNER,   /* another user's object: refused, never looked at for holders */
	LS_REFUSED_TYPE,    /* not a regular file: refused */
	LS_HANDED_OVER,     /* a live manager's journal lists the name: a reclaimer drops the
			     * row and leaves the object to it, never asking who holds it */
	LS_LIVE_UNREADABLE, /* no task we see holds it, and a live manager of the owner's
			     * whose journal cannot be read may have registered it: kept */
	LS_LIVE_UNKNOWN,    /* who is live could not be told (livemgr_mark failed): kept */
};

struct ls_object {
	char name[64];
	size_t len; /* of name, which may hold a NUL (a journal's blob): the text shows it all */
	bool valid, exists;
	enum ls_use use;
	bool young;     /* not created yet: a reclaimer keeps the name (ls_row) */
	pid_t live_pid; /* LS_HANDED_OVER, LS_LIVE_UNREADABLE: that manager's pid, 0 when
			 * not visible here (found by its lock) */
	uint64_t size;
	uid_t uid;
};

struct ls_entry {
	char name[256];
	char path[4096];
	const char *state; /* mgrdir_state_str() */
	uid_t owner;
	pid_t pid;
	int64_t age_s;
	int clients; /* -1: unknown */
	int64_t nobjects;
	uint64_t bytes;
	bool earlier_boot;
	pid_t reclaimer_pid;     /* busy: the reclaimer holding it; 0 */
	char note[UTIL_MSG_LEN]; /* busy: who is reclaiming it (a state, not an error) */
	char error[UTIL_MSG_LEN];
	struct ls_object *objs;
	size_t nobjs;
};

/* Server-side sockets connected to the directory's socket, from /proc/net/unix:
 * accepted connections carry the listener's bound path and state 03 (connected). The
 * bound path is spelled as the manager spelled its TMPDIR, so a line is matched by its
 * last two components, then proven to be this very socket by its inode. -1 when
 * /proc/net/unix cannot be read. */
static int ls_count_clients(const struct ls_entry *e, int dirfd)
{
	struct stat sst;
	if (fstatat(dirfd, MGRDIR_SOCKET, &sst, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(sst.st_mode))
		return 0;
	FILE *f = fopen("/proc/net/unix", "re");
	if (!f)
		return -1;
	char line[4608], tail[300];
	snprintf(tail, sizeof(tail), "/%s/%s", e->name, MGRDIR_SOCKET);
	size_t tlen = strlen(tail);
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		unsigned st = 0;
		char *nl;
		if (!path || (nl = strchr(path, '\n')) == NULL)
			continue;
		*nl = '\0';
		size_t plen = strlen(path);
		if (plen < tlen || memcmp(path + plen - tlen, tail, tlen) != 0)
			continue;
		/* Num RefCount Protocol Flags Type St Inode Path */
		if (sscanf(line, "%*s %*s %*s %*s %*s %x", &st) != 1 || st != 3)
			continue;
		struct stat pst;
		if (strcmp(path, e->path) == 0 ||
		    (stat(path, &pst) == 0 && pst.st_dev == sst.st_dev && pst.st_ino == sst.st_ino))
			n++;
	}
	fclose(f);
	return n;
}

static int ls_add_object(struct ls_entry *e, const struct ls_object *obj)
{
	struct ls_object *objs = realloc(e->objs, (e->nobjs + 1) * sizeof(*objs));
	if (!objs)
		return -1;
	e->objs = objs;
	objs[e->nobjs++] = *obj;
	return 0;
}

/* Held by a task we inspected, or, as the reclaimers judge it, the kernel's lease check
 * says someone has it open (taken and dropped at once: nothing changes; a write lease,
 * as theirs: a read lease is granted while others have it open read-only): a holder we
 * could not inspect, or one outside our /proc view (another pid namespace, io_uring,
 * overlayfs). When no lease can be had (leases disabled: EINVAL; not the owner from here:
 * EACCES) we cannot tell, and a reclaimer would keep it: "holder not inspectable" when a
 * task we could not inspect may hold it, else "the kernel's lease could not be asked". */
static enum ls_use ls_in_use(const struct ls_opts *o, const char *name, const struct stat *st,
			     bool live_unreadable)
{
	pid_t blind;
	if (inuse_holds(o->inuse, st->st_dev, st->st_ino))
		return LS_IN_USE;
	/* As reclaim_row: a task we see holding it says in use; else a live manager whose
	 * journal cannot be read keeps it, before any lease is asked. */
	if (live_unreadable)
		return LS_LIVE_UNREADABLE;
	/* The lease lasts from its grant to this close, but an opener in that span waits
	 * for it: a Ctrl-Z of `ls` comes after the close (shmobj_stops_hold). */
	sigset_t stops;
	shmobj_stops_hold(&stops);
	int fd, rc = shmobj_lease(o->shm_dirfd, name, st->st_dev, st->st_ino, &fd);
	if (fd >= 0)
		close(fd);
	shmobj_stops_restore(&stops);
	if (rc >= 0)
		return rc == 0 ? LS_UNUSED : LS_IN_USE;
	return inuse_blind(o->inuse, st->st_uid, st->st_mode, &blind) ? LS_NOT_INSPECTABLE
								      : LS_NO_LEASE;
}

/* What the live managers say of one name of a dead directory (ls_read_journal): all
 * false when none was looked for (a live directory's names are its manager's own). */
struct ls_live {
	bool unknown;    /* who is live could not be told: a reclaimer keeps the name */
	bool held;       /* a live manager's journal lists it */
	pid_t holder;    /* its pid, 0 when not visible here */
	bool unreadable; /* a live manager's journal cannot be read */
	pid_t unreadable_pid;
};

/* One journaled name: whether it is a valid name, whether its object exists, and its
 * bytes when the object is the directory owner's (another user's object of the same
 * name is not this manager's to hold, and a sweep would refuse it). A name whose object
 * does not exist, registered less than the grace ago (--prune-grace, sweep's), is not gone
 * but not created yet: libshm registers a name before it creates the object, and sweep,
 * recover and a manager all keep such a row (reclaim.h); its client may create the
 * object next. stat_errno is the object's shmobj_stat (0: st is it; -1: not looked up).
 * What a reclaimer would do with an existing object is decided in reclaim_row's order:
 * live managers unknown, refused, handed over, in use. */
static int ls_row(struct ls_entry *e, const struct ls_opts *o, const struct journal_row *row,
		  int stat_errno, const struct stat *st, const struct ls_live *lv)
{
	struct ls_object obj = { 0 };
	e->nobjects++;
	obj.len = row->len < sizeof(obj.name) ? row->len : sizeof(obj.name) - 1;
	memcpy(obj.name, row->name, obj.len); /* NUL-terminated: obj is zeroed */
	/* A hostile journal's "/../x" must not make us stat outside /dev/shm. */
	obj.valid = wire_name_check(row->name, row->len) == NULL;
	if (stat_errno == 0) {
		obj.exists = true;
		obj.size = (uint64_t)st->st_size;
		obj.uid = st->st_uid;
		/* A reclaimer refuses another user's object and anything but a regular file
		 * before it asks who holds it: so does ls. */
		if (lv->unknown)
			obj.use = LS_LIVE_UNKNOWN;
		else if (st->st_uid != e->owner)
			obj.use = LS_REFUSED_OWNER;
		else if (!S_ISREG(st->st_mode))
			obj.use = LS_REFUSED_TYPE;
		else if (lv->held)
			obj.use = LS_HANDED_OVER;
		else if (o->inuse)
			obj.use = ls_in_use(o, row->name, st, lv->unreadable);
		else if (lv->unreadable)
			obj.use = LS_LIVE_UNREADABLE;
		if (obj.use == LS_HANDED_OVER)
			obj.live_pid = lv->holder;
		else if (obj.use == LS_LIVE_UNREADABLE)
			obj.live_pid = lv->unreadable_pid;
		if (S_ISREG(st->st_mode) && st->st_uid == e->owner)
			e->bytes += obj.size;
	} else if (stat_errno == ENOENT) {
		/* As the reclaimers judge it (now - registered < grace), written so a
		 * journal's time, which may be anything, cannot overflow. */
		obj.young = row->registered_us > o->now_us - o->grace_s * 1000000;
	}
	return o->objects ? ls_add_object(e, &obj) : 0;
}

#define LS_PAGE 256

/* The rows of a probed journal. live: the live managers to ask about a dead directory's
 * names, or NULL. Returns -1 when they cannot be read (e->error says). */
static int ls_read_journal(struct ls_entry *e, const struct ls_opts *o, struct journal *j,
			   struct livemgr *live)
{
	const struct journal_meta *meta = journal_meta(j);
	e->pid = meta->manager_pid;
	e->age_s = o->now - meta->created_at;
	/* /dev/shm is emptied at boot: an older journal's names name nothing now. */
	e->earlier_boot = o->boot_id && strcmp(meta->boot_id, o->boot_id) != 0;
	if (e->earlier_boot)
		live = NULL; /* no name is looked up: none to ask about */
	struct journal_row *rows = malloc(LS_PAGE * sizeof(*rows)), after;
	struct stat *sts = malloc(LS_PAGE * sizeof(*sts));
	int *errs = malloc(LS_PAGE * sizeof(*errs));
	bool held[LS_PAGE];
	pid_t holder[LS_PAGE];
	int n, rc = -1;
	bool resume = false;
	if (!rows || !sts || !errs) {
		snprintf(e->error, sizeof(e->error), "out of memory");
		goto out;
	}
	while ((n = journal_page(j, resume ? &after : NULL, rows, LS_PAGE)) > 0) {
		/* First every object of the page, then the live managers' journals, as
		 * reclaim_journal: a name a live manager gave an object we saw was committed
		 * before we looked. */
		for (int i = 0; i < n; i++) {
			errs[i] = -1;
			if (!e->earlier_boot && wire_name_check(rows[i].name, rows[i].len) == NULL)
				errs[i] = shmobj_stat(o->shm_dirfd, rows[i].name, &sts[i]) == 0
						  ? 0
						  : errno;
		}
		struct ls_live lv = { 0 };
		if (live) {
			/* The birth times are not at hand: every page walks. */
			livemgr_refresh(live, INT64_MAX);
			lv.unknown = livemgr_mark(live, rows, n, held, holder) < 0;
			lv.unreadable = livemgr_unreadable(live, &lv.unreadable_pid);
		}
		for (int i = 0; i < n; i++) {
			lv.held = live && held[i];
			lv.holder = live ? holder[i] : 0;
			if (ls_row(e, o, &rows[i], errs[i], &sts[i], &lv) < 0) {
				snprintf(e->error, sizeof(e->error), "out of memory");
				goto out;
			}
		}
		after = rows[n - 1];
		resume = true;
	}
	if (n < 0) {
		snprintf(e->error, sizeof(e->error), "journal: %s", journal_error(j));
		goto out;
	}
	rc = 0;
out:
	free(rows);
	free(sts);
	free(errs);
	return rc;
}

/* The live managers a reclaimer of this dead directory would consult (reclaim_journal),
 * or NULL: none asked for (no --objects), or none a reclaimer from here would read: its
 * filesystem uid must be the owner's (as root, mgrdir_probe switched to it; another
 * user's directory is not ours to reclaim). */
static struct livemgr *ls_live_for(const struct ls_opts *o, const struct mgrdir_probe *p)
{
	if (!o->objects || !o->shm_fs_ok || p->state != MGRDIR_DEAD || !p->journal ||
	    (uid_t)setfsuid((uid_t)-1) != p->owner)
		return NULL;
	struct livemgr *live = livemgr_new(p->owner, &o->shm_fs, NULL);
	if (!live)
		return NULL;
	livemgr_watch(live, o->live_bases, o->nlive_bases);
	livemgr_exclude(live, p->dirfd);
	return live;
}

/* Everything ls shows comes from one mgrdir_probe, the one the sweeper acts on: the
 * two cannot disagree about a directory's state. */
static void ls_inspect(struct ls_entry *e, const struct ls_opts *o, int basefd)
{
	struct mgrdir_probe p;
	snprintf(e->path, sizeof(e->path), "%s%s%s", o->base,
		 o->base[strlen(o->base) - 1] == '/' ? "" : "/", e->name);
	mgrdir_probe(basefd, e->name, o->now, MGRDIR_PROBE_JOURNAL, &p);
	e->state = mgrdir_state_str(p.state);
	e->owner = p.owner;
	e->pid = p.holder;
	e->age_s = p.owner == (uid_t)-1 ? 0 : o->now - p.changed_s;
	/* Starting and busy are states, not problems: their why stays out of the error
	 * column (busy's, who is reclaiming it, is a note). */
	if (p.state == MGRDIR_BUSY) {
		util_strlcpy(e->note, p.why, sizeof(e->note));
		e->reclaimer_pid = p.holder;
		e->pid = 0; /* its manager is dead; its journal is the reclaimer's now */
	} else if (p.state != MGRDIR_STARTING) {
		util_strlcpy(e->error, p.why, sizeof(e->error));
	}
	switch (p.state) {
	case MGRDIR_LIVE:
		e->clients = ls_count_clients(e, p.dirfd);
		break;
	case MGRDIR_DEAD:
	case MGRDIR_STARTING:
	case MGRDIR_BUSY:
	case MGRDIR_CORRUPT:
		e->clients = 0;
		break;
	default:
		e->clients = -1;
		break;
	}
	/* A dead manager's unreadable journal is what the sweeper reports as corrupt (the
	 * probe said so); a live one's keeps its state, with the error shown. */
	struct livemgr *live = ls_live_for(o, &p);
	if (p.journal && ls_read_journal(e, o, p.journal, live) < 0 && p.state == MGRDIR_DEAD)
		/* Out of descriptors or memory says nothing of the journal: unknown. */
		e->state = mgrdir_state_str(
			journal_failed_for_resources(p.journal) ? MGRDIR_UNKNOWN : MGRDIR_CORRUPT);
	livemgr_free(live);
	/* A live manager's pid is the lock holder's as our /proc numbers it (0: not seen
	 * from here); the journal's is its own getpid(), perhaps another pid namespace's. */
	if (p.state == MGRDIR_LIVE)
		e->pid = p.holder;
	mgrdir_release(&p);
}

static const char *ls_user(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	if (uid == (uid_t)-1)
		util_strlcpy(buf, "?", len);
	else if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		report_escape(res->pw_name, buf, len);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
	return buf;
}

/* "42s", "5m07s", "3h02m", "4d05h": wide enough to tell, short enough for a column. */
static const char *ls_age(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%lldd%02lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
	return buf;
}

/* The sweep's words for what it would do (report.c, reclaim.c's log lines). */
static const char *ls_use_str(const struct ls_object *obj, char *buf, size_t len)
{
	switch (obj->use) {
	case LS_IN_USE:
		return "in use";
	case LS_NOT_INSPECTABLE:
		return "cannot tell: holder not inspectable";
	case LS_NO_LEASE:
		return "cannot tell: the kernel's lease could not be asked";
	case LS_REFUSED_OWNER:
		return "refused: not the journal owner's";
	case LS_REFUSED_TYPE:
		return "refused: not a regular file";
	case LS_HANDED_OVER:
		if (obj->live_pid <= 0)
			return "handed over: a live manager found by its lock (its pid is not "
			       "visible here) lists it";
		snprintf(buf, len, "handed over: live manager pid %d lists it", (int)obj->live_pid);
		return buf;
	case LS_LIVE_UNREADABLE:
		if (obj->live_pid <= 0)
			return "kept: the journal of a live manager (its pid is not visible here) "
			       "cannot be read";
		snprintf(buf, len, "kept: the journal of live manager pid %d cannot be read",
			 (int)obj->live_pid);
		return buf;
	case LS_LIVE_UNKNOWN:
		return "cannot tell: which names live managers hold could not be read";
	case LS_UNUSED:
		break;
	}
	return "unused";
}

/* The DIRECTORY column: the name, or with several bases (o->many) the path. */
static const char *ls_dir_column(const struct ls_entry *e, const struct ls_opts *o, char *buf,
				 size_t len)
{
	return report_escape(o->many ? e->path : e->name, buf, len);
}

/* width: the DIRECTORY column's, its widest entry's (paths under patterns are longer
 * than the 20 a name needs), so the other columns stay aligned. */
static void ls_print_text(const struct ls_entry *e, const struct ls_opts *o, int width)
{
	char name[sizeof(e->path) * 4], user[64], bytes[32], age[32], pid[16], clients[16];
	char error[sizeof(e->error) * 4], note[sizeof(e->note) * 4];
	if (e->pid > 0)
		snprintf(pid, sizeof(pid), "%d", (int)e->pid);
	else
		util_strlcpy(pid, "-", sizeof(pid));
	if (e->clients < 0)
		util_strlcpy(clients, strcmp(e->state, "live") == 0 ? "?" : "-", sizeof(clients));
	else
		snprintf(clients, sizeof(clients), "%d", e->clients);
	printf("%-*s %-8s %-10s %7s %7s %7s %7lld %10s", width,
	       ls_dir_column(e, o, name, sizeof(name)), e->state,
	       ls_user(e->owner, user, sizeof(user)), pid, ls_age(e->age_s, age, sizeof(age)),
	       clients, (long long)e->nobjects, util_human_bytes(e->bytes, bytes, sizeof(bytes)));
	if (e->earlier_boot)
		fputs("  (journal from an earlier boot: nothing it names exists now)", stdout);
	if (e->note[0])
		printf("  (%s)", report_escape(e->note, note, sizeof(note)));
	if (e->error[0])
		printf("  ! %s", report_escape(e->error, error, sizeof(error)));
	fputc('\n', stdout);
	for (size_t i = 0; o->objects && i < e->nobjs; i++) {
		const struct ls_object *obj = &e->objs[i];
		char oname[sizeof(obj->name) * 4], use[128];
		report_escape_n(obj->name, obj->len, oname, sizeof(oname));
		if (!obj->valid)
			printf("    %-48s (not a valid name: never looked up)\n", oname);
		else if (obj->young)
			printf("    %-48s (not created yet)\n", oname);
		else if (!obj->exists)
			printf("    %-48s (gone)\n", oname);
		else
			printf("    %-48s %10s  %-10s %s\n", oname,
			       util_human_bytes(obj->size, bytes, sizeof(bytes)),
			       ls_user(obj->uid, user, sizeof(user)),
			       ls_use_str(obj, use, sizeof(use)));
	}
}

static void ls_print_json(const struct ls_entry *e, const struct ls_opts *o, bool first)
{
	char user[64];
	printf("%s{\"dir\":", first ? "" : ",");
	report_json_string(stdout, e->name);
	fputs(",\"path\":", stdout);
	report_json_string(stdout, e->path);
	printf(",\"state\":\"%s\",\"owner_uid\":", e->state);
	if (e->owner == (uid_t)-1)
		fputs("null,\"owner\":null", stdout);
	else {
		printf("%u,\"owner\":", (unsigned)e->owner);
		report_json_string(stdout, ls_user(e->owner, user, sizeof(user)));
	}
	printf(",\"pid\":%d,\"age_s\":%lld,\"clients\":%d,\"objects\":%lld,\"bytes\":%llu,"
	       "\"earlier_boot\":%s,",
	       (int)e->pid, (long long)e->age_s, e->clients, (long long)e->nobjects,
	       (unsigned long long)e->bytes, e->earlier_boot ? "true" : "false");
	if (e->reclaimer_pid > 0)
		printf("\"reclaimer_pid\":%d,", (int)e->reclaimer_pid);
	else
		fputs("\"reclaimer_pid\":null,", stdout);
	fputs("\"error\":", stdout);
	if (e->error[0])
		report_json_string(stdout, e->error);
	else
		fputs("null", stdout);
	if (o->objects) {
		fputs(",\"object_list\":[", stdout);
		for (size_t i = 0; i < e->nobjs; i++) {
			const struct ls_object *obj = &e->objs[i];
			printf("%s{\"name\":", i ? "," : "");
			report_json_string_n(stdout, obj->name, obj->len);
			printf(",\"valid\":%s,\"exists\":%s,\"size\":%llu,\"owner_uid\":",
			       obj->valid ? "true" : "false", obj->exists ? "true" : "false",
			       (unsigned long long)obj->size);
			if (obj->exists)
				printf("%u", (unsigned)obj->uid);
			else
				fputs("null", stdout);
			/* in_use: null when it cannot be told (refused or handed over before
			 * anyone asks, kept for a live manager, or a holder not inspectable). */
			printf(",\"in_use\":%s,\"refused\":%s,\"young\":%s,",
			       obj->use == LS_IN_USE   ? "true"
			       : obj->use == LS_UNUSED ? "false"
						       : "null",
			       obj->use == LS_REFUSED_OWNER || obj->use == LS_REFUSED_TYPE
				       ? "true"
				       : "false",
			       obj->young ? "true" : "false");
			/* What the live managers' journals decide (reclaim.h): handed over, or
			 * kept for one that cannot be read, or for not knowing who is live. */
			printf("\"handed_over\":%s,\"live_unreadable\":%s,\"live_unknown\":%s,"
			       "\"live_pid\":",
			       obj->use == LS_HANDED_OVER ? "true" : "false",
			       obj->use == LS_LIVE_UNREADABLE ? "true" : "false",
			       obj->use == LS_LIVE_UNKNOWN ? "true" : "false");
			if (obj->live_pid > 0)
				printf("%d}", (int)obj->live_pid);
			else
				fputs("null}", stdout);
		}
		fputc(']', stdout);
	}
	fputc('}', stdout);
}

enum { OPT_TMPDIR = 256, OPT_JSON, OPT_OBJECTS, OPT_GRACE };

/* -1 to go on, else the exit status. */
static int ls_parse(int argc, char **argv, struct ls_opts *o)
{
	static const struct cli_opt opts[] = {
		{ "tmpdir", OPT_TMPDIR, "a directory" },
		{ "json", OPT_JSON, NULL },
		{ "objects", OPT_OBJECTS, NULL },
		{ "prune-grace", OPT_GRACE, "a number of seconds" },
		{ "help", 'h', NULL },
		{ NULL, 0, NULL },
	};
	struct cli c;
	int opt;
	cli_init(&c, CLI_PROG("ls"), opts, false);
	while ((opt = cli_next(&c, argc, argv)) != -1) {
		switch (opt) {
		case OPT_TMPDIR:
			o->tmpdir = c.value;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_OBJECTS:
			o->objects = true;
			break;
		case OPT_GRACE: {
			long long v;
			if (cli_value_number(&c, opt, 0, RECLAIM_GRACE_MAX_S, &v) != 0)
				return 2;
			o->grace_s = v;
			break;
		}
		case 'h':
			fputs(ls_usage, stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc)
		return cli_usage_error(&c, "unexpected argument ", argv[optind]);
	char err[PATH_MAX + 300];
	if (bases_init(&o->bases, o->tmpdir, (uid_t)-1, err, sizeof(err)) < 0)
		return cli_usage_error(&c, err, NULL);
	o->base = o->bases.text;
	o->many = o->bases.nspecs > 1 || bases_entry_is_pattern(&o->bases, 0);
	/* Where the bases did come from, as bases_init decided: SHMWARDEN_TMPDIRS=":"
	 * (only empty entries) is set, yet the base is $TMPDIR's. */
	o->base_from = o->bases.from;
	return -1;
}

/* {"base": ..., "base_from": ..., the start of the document. */
static void ls_print_json_base(const struct ls_opts *o)
{
	fputs("{\"base\":", stdout);
	report_json_string(stdout, o->bases.text);
	fputs(",\"base_from\":", stdout);
	report_json_string(stdout, o->base_from);
}

/* The text listing's first lines: the bases and where they came from (the same names
 * mean other directories under another base), then the column headers. */
static void ls_print_text_header(const struct ls_opts *o, int width)
{
	fputs("base ", stdout);
	report_print_escaped(stdout, o->bases.text);
	printf(" (%s%s)\n", strcmp(o->base_from, "default") == 0 ? "" : "from ", o->base_from);
	printf("%-*s %-8s %-10s %7s %7s %7s %7s %10s\n", width, "DIRECTORY", "STATE", "OWNER",
	       "PID", "AGE", "CLIENTS", "OBJECTS", "BYTES");
}

/* The text table, once every row is known: the DIRECTORY column as wide as its widest
 * entry (at least 20, a name's). */
static void ls_print_table(const struct ls_opts *o, const struct ls_entry *rows, size_t n)
{
	int width = 20;
	for (size_t i = 0; i < n; i++) {
		char buf[sizeof(rows[i].path) * 4];
		int w = (int)strlen(ls_dir_column(&rows[i], o, buf, sizeof(buf)));
		if (w > width)
			width = w;
	}
	ls_print_text_header(o, width);
	for (size_t i = 0; i < n; i++)
		ls_print_text(&rows[i], o, width);
}

/* A failure before any directory was read: "shmwarden ls: WHY" on stderr, and with --json still
 * one document on stdout, {"base", "managers": [], "error"}. */
static void ls_fail(const struct ls_opts *o, const char *why)
{
	/* Room for every byte of a why (paths in it are cut at 1024) escaped: a long path
	 * must not push the reason off the end. */
	char esc[1400 * 4];
	fprintf(stderr, CLI_PROG("ls") ": %s\n", report_escape(why, esc, sizeof(esc)));
	if (!o->json)
		return;
	ls_print_json_base(o);
	fputs(",\"managers\":[],\"error\":", stdout);
	report_json_string(stdout, why);
	fputs("}\n", stdout);
}

int cmd_ls(int argc, char **argv)
{
	/* A reader that goes away (`| head`) must not stop a listing halfway (a private
	 * copy of a journal would be left behind): ls finishes, then ends by SIGPIPE as a
	 * filter would (cli.h). */
	cli_hold_sigpipe();
	struct ls_opts o = { .now = util_wall_s(),
			     .now_us = util_wall_us(),
			     .grace_s = RECLAIM_GRACE_S,
			     .shm_dirfd = -1 };
	int rc = ls_parse(argc, argv, &o);
	if (rc >= 0) {
		bases_free(&o.bases);
		return rc;
	}
	char err[256], boot_id[UTIL_BOOT_ID_LEN + 1];
	char first_error[PATH_MAX + 300] = "";
	struct inuse *idx = NULL;
	struct base *b = NULL;
	unsigned nbases = 0;
	size_t listed = 0, cap = 0;
	struct bases_open open_bases = { 0 }; /* the bases listed */
	struct ls_entry *rows = NULL;         /* the text table's, printed at the end */
	rc = 1;
	if ((o.shm_dirfd = shmobj_dir_open(err, sizeof(err))) < 0) {
		ls_fail(&o, err);
		goto out;
	}
	if (util_boot_id(boot_id, sizeof(boot_id), err, sizeof(err)) == 0)
		o.boot_id = boot_id;
	dev_t shm_dev;
	if (o.objects && (shmobj_dir_dev(o.shm_dirfd, &shm_dev, err, sizeof(err)) < 0 ||
			  !(idx = inuse_scan("/proc", shm_dev, err, sizeof(err)))))
		fprintf(stderr, CLI_PROG("ls") ": %s (in-use column unknown)\n", err);
	o.inuse = idx;
	/* Live managers are looked for only when we know which /dev/shm is ours, as a
	 * reclaimer would (reclaim_journal fails without it). */
	o.shm_fs_ok = o.objects && shmobj_fs_self(o.shm_dirfd, &o.shm_fs, err, sizeof(err)) == 0;
	if (o.objects && !o.shm_fs_ok)
		fprintf(stderr, CLI_PROG("ls") ": %s (live managers not asked)\n", err);
	if (!(b = malloc(sizeof(*b)))) {
		ls_fail(&o, "out of memory");
		goto out;
	}
	if (o.json) {
		ls_print_json_base(&o);
		fputs(",\"managers\":[", stdout);
	}
	/* Every base is opened before any is listed, as sweep does: a live manager our
	 * /proc does not show is found by its lock in any of them (livemgr.h), and a name
	 * it holds may be listed by a dead journal in another. Failures and unsafe matches
	 * are reported as they come. A thousand per-job bases are a thousand descriptors. */
	unsigned long long nofile;
	(void)util_raise_nofile(&nofile);
	while (bases_next(&o.bases, b) == 1) {
		char esc[sizeof(b->why) * 4], pesc[sizeof(b->path) * 4];
		if (b->state == BASE_ERROR) {
			fprintf(stderr, CLI_PROG("ls") ": %s\n",
				report_escape(b->why, esc, sizeof(esc)));
			if (!first_error[0])
				util_strlcpy(first_error, b->why, sizeof(first_error));
			continue;
		}
		if (b->state == BASE_UNSAFE) {
			fprintf(stderr, CLI_PROG("ls") ": %s: unsafe: %s\n",
				report_escape(b->path, pesc, sizeof(pesc)),
				report_escape(b->why, esc, sizeof(esc)));
			continue;
		}
		if (bases_keep(&open_bases, b) < 0) {
			close(b->fd);
			fputs(CLI_PROG("ls") ": out of memory\n", stderr);
			if (!first_error[0])
				util_strlcpy(first_error, "out of memory", sizeof(first_error));
			continue;
		}
	}
	o.live_bases = open_bases.fds;
	o.nlive_bases = open_bases.n;
	for (size_t k = 0; k < open_bases.n; k++) {
		char esc[PATH_MAX * 4 + 100];
		char **names = NULL;
		size_t nnames = 0;
		if (mgrdir_list(open_bases.fds[k], NULL, &names, &nnames) < 0) {
			char why[PATH_MAX + 100];
			snprintf(why, sizeof(why), "reading the temp base %.1024s: %s",
				 open_bases.paths[k], strerror(errno));
			fprintf(stderr, CLI_PROG("ls") ": %s\n",
				report_escape(why, esc, sizeof(esc)));
			if (!first_error[0])
				util_strlcpy(first_error, why, sizeof(first_error));
			continue;
		}
		nbases++;
		o.base = open_bases.paths[k];
		for (size_t i = 0; i < nnames; i++) {
			struct ls_entry e = { 0 };
			util_strlcpy(e.name, names[i], sizeof(e.name));
			ls_inspect(&e, &o, open_bases.fds[k]);
			if (o.json) {
				ls_print_json(&e, &o, listed++ == 0);
				free(e.objs);
				continue;
			}
			struct ls_entry *grown = rows;
			size_t grown_cap = cap ? 2 * cap : 16;
			if (listed == cap &&
			    (grown = realloc(rows, grown_cap * sizeof(*rows))) != NULL)
				cap = grown_cap;
			if (!grown) {
				free(e.objs);
				fputs(CLI_PROG("ls") ": out of memory\n", stderr);
				util_strlcpy(first_error, "out of memory", sizeof(first_error));
				break;
			}
			rows = grown;
			rows[listed++] = e;
		}
		o.base = o.bases.text;
		mgrdir_list_free(names, nnames);
	}
	/* (A pattern matching nothing gets the header alone.) */
	if (!o.json && (nbases || !first_error[0]))
		ls_print_table(&o, rows, listed);
	if (o.json) {
		fputs("],\"unsafe_bases\":", stdout);
		bases_print_unsafe_json(stdout, &o.bases);
		if (first_error[0]) {
			fputs(",\"error\":", stdout);
			report_json_string(stdout, first_error);
		}
		fputs("}\n", stdout);
	}
	/* (A reader that went away is not a failure: 1, and main ends us by SIGPIPE.) */
	rc = cli_flush_stdout(CLI_PROG("ls")) >= 0 && !first_error[0] ? 0 : 1;
out:
	bases_open_free(&open_bases);
	for (size_t i = 0; rows && i < listed; i++)
		free(rows[i].objs);
	free(rows);
	free(b);
	inuse_free(idx);
	if (o.shm_dirfd >= 0)
		close(o.shm_dirfd);
	bases_free(&o.bases);
	return rc;
}
