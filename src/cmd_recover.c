/* cmd_recover.c — `shmwarden recover [--tmpdir BASE] [--dry-run] [--json] [--syslog]
 * [--prune-grace SECONDS] DIR`:
 * reclaims the objects of one dead manager's directory (the post-crash command). DIR is a
 * path (a slash in it, or "." or ".."), or a bare name as `shmwarden ls` prints it, looked
 * up in the temp bases ls lists
 * (bases.h: BASE, else $SHMWARDEN_TMPDIRS, else $TMPDIR...; a pattern's matches with
 * the same trust checks), so what ls shows can be pasted here. It decides nothing
 * itself: reclaim_dir does, with the same checks as the sweeper; this file parses
 * arguments, gathers the host facts (in-use index, /dev/shm, boot id) once, and reports.
 * Output and logging work as in cmd_sweep.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bases.h"
#include "cli.h"
#include "commands.h"
#include "inuse.h"
#include "log.h"
#include "reclaim.h"
#include "report.h"
#include "shmobj.h"
#include "util.h"

static const char recover_usage[] =
	"usage: shmwarden recover [--tmpdir BASE] [--dry-run] [--json] [--syslog]\n"
	"                         [--prune-grace SECONDS] DIR\n"
	"  Reclaims the shared-memory objects journaled in DIR (a dead manager's\n"
	"  shmwarden-XXXXXX directory), then removes DIR. Objects a live process still\n"
	"  maps or holds open stay journaled for a later pass. DIR is a path when it\n"
	"  holds a slash or is . or .. (`recover .` from inside the directory, ./NAME for\n"
	"  one here); any other DIR is a name as `shmwarden ls` prints it, looked up in\n"
	"  the temp bases ls lists, patterns' matches included, with the same checks.\n"
	"  --tmpdir BASE  the temp base (or pattern) of a bare name (default, as ls:\n"
	"                 $SHMWARDEN_TMPDIRS, else $TMPDIR, $TMP, $TEMP, $TEMPDIR, /tmp)\n"
	"  --dry-run      report what would happen, change nothing\n"
	"  --json         print the report as one JSON object\n"
	"  --syslog       log to syslog (facility daemon) instead of stderr\n"
	"  --prune-grace SECONDS\n"
	"                 keep a name registered less than this ago whose object does\n"
	"                 not exist yet (its client may create it next), as its manager\n"
	"                 would have, and so DIR, for a later pass: whole seconds, 0 to\n"
	"                 86400000 (default 10). 0 is no grace: every such name is\n"
	"                 dropped at once, as gone; only for when no client of DIR's\n"
	"                 manager can still be creating (an epilog after the whole job\n"
	"                 is dead)\n"
	"  A DIR another reclaimer (a sweep, another recover, a restarted manager) is\n"
	"  reclaiming right now is reported busy, with that reclaimer's pid, and left to it.\n"
	"  Exit status: 0 reclaimed (or kept for later), 1 DIR not processed, 2 usage,\n"
	"  3 try again later, nothing done here: DIR is busy (another reclaimer is at it;\n"
	"  run again once it is done to see what is left) or starting (a manager making\n"
	"  it, or killed doing so: live or dead within 5 seconds).\n"
	"  A reader of the report that goes away early (| head): recover finishes, then\n"
	"  SIGPIPE ends it quietly, as any filter (the shell's status 141).\n";

/* DIR is another reclaimer's right now, or starting (a manager between mkdtemp and its
 * lock, or killed there: live or dead once 5 s have passed): neither done (this run saw
 * no outcome, and the other may yet fail or keep names) nor a failure (nothing went
 * wrong, and a script that pages on 1 must not page for a race with another reclaimer
 * or a manager's start); the same answer, "try again later". */
#define RECOVER_EXIT_LATER 3

/* The bases a "looked in" names; the others are counted (a thousand per-job bases would
 * make a line nobody reads). */
#define RECOVER_NAMED 4

/* The longest message recover_find or the checks after it can make, whole: the named
 * bases and the first error (PATH_MAX each at most), the entries' text (specs_len), and
 * room for the words around them. Nothing is cut to fit: the JSON detail and the line
 * on stderr both carry it all. */
static size_t recover_err_len(size_t specs_len)
{
	return (RECOVER_NAMED + 3) * (size_t)PATH_MAX + specs_len + 1024;
}

/* Splits DIR, a path ("NAME/" is one: in the working directory), into its parent
 * (opened) and its last component. A last component "." is dropped ("NAME/." is NAME as
 * written: a symlink is still not followed), "." alone is the working directory by the
 * kernel's name for it (getcwd), and a path ending in ".." is the directory it leads to
 * (realpath(3)); shown then receives that name, for the reports. */
static int recover_split(const char *dir, int *parentfd, char *name, size_t namelen, char *shown,
			 size_t shownlen, char *err, size_t errlen)
{
	char parent[PATH_MAX], resolved[PATH_MAX];
	size_t len = util_strlcpy(parent, dir, sizeof(parent));
	if (len >= sizeof(parent)) {
		util_err(err, errlen, "path too long");
		return -1;
	}
	/* Trailing slashes and "." components: NAME/./ is NAME, "/." is "/". */
	for (;;) {
		while (len > 1 && parent[len - 1] == '/')
			parent[--len] = '\0';
		if (len < 2 || strcmp(parent + len - 2, "/.") != 0)
			break;
		parent[--len] = '\0';
	}
	char *slash = strrchr(parent, '/');
	const char *last = slash ? slash + 1 : parent;
	bool cwd = strcmp(parent, ".") == 0;
	if (cwd || strcmp(last, "..") == 0) {
		const char *r = cwd ? getcwd(resolved, sizeof(resolved))
				    : realpath(parent, resolved);
		int e = errno;
		if (r && resolved[0] != '/') {
			r = NULL; /* "(unreachable)/...": outside our root, as good as gone */
			e = ENOENT;
		}
		if (!r) {
			if (e == ENOENT && cwd)
				util_err(err, errlen,
					 "no such directory: the current directory was removed "
					 "(already reclaimed?)");
			else if (e == ENOENT)
				util_err(err, errlen, "no such directory");
			else if (e == ENAMETOOLONG || e == ERANGE)
				util_err(
					err, errlen,
					"its path is longer than PATH_MAX (%d bytes): it cannot be "
					"named (move it to a shorter path to recover it)",
					PATH_MAX);
			else
				util_err(err, errlen, "cannot resolve it: %s", strerror(e));
			return -1;
		}
		len = util_strlcpy(parent, resolved, sizeof(parent));
		util_strlcpy(shown, resolved, shownlen);
		slash = strrchr(parent, '/');
		last = slash + 1;
	}
	if (!*last || strcmp(last, ".") == 0 || strcmp(last, "..") == 0) {
		util_err(err, errlen, "not a manager directory (names are shmwarden-XXXXXX)");
		return -1;
	}
	if (util_strlcpy(name, last, namelen) >= namelen) {
		util_err(err, errlen, "name too long");
		return -1;
	}
	if (!slash)
		util_strlcpy(parent, ".", sizeof(parent));
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	*parentfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*parentfd < 0) {
		if (errno == ENOENT)
			util_err(err, errlen,
				 "no such directory: its parent %s does not exist "
				 "(`shmwarden ls` lists the manager directories)",
				 parent);
		else
			util_err(err, errlen, "cannot open its parent %s: %s", parent,
				 strerror(errno));
		return -1;
	}
	return 0;
}

/* A bare NAME, looked up in every base of b (bases_next: literal bases, then each
 * pattern's matches that pass the trust checks; an unsafe match is not looked in).
 * 0 with *basefd the one base holding it and shown its path there; else -1 with err
 * saying where it looked. Two bases holding the name is an error too: which one was
 * meant is for the user to say, with a path. */
static int recover_find(struct bases *b, const char *name, int *basefd, char *shown,
			size_t shownlen, char *err, size_t errlen)
{
	struct base *base = malloc(sizeof(*base));
	char looked[RECOVER_NAMED * (sizeof(base->path) + 2)] = "",
							  first_error[sizeof(base->why)] = "";
	size_t k = 0;
	unsigned nlooked = 0, nunsafe = 0, nerrors = 0;
	int rc = -1;
	*basefd = -1;
	if (!base) {
		util_err(err, errlen, "out of memory");
		return -1;
	}
	while (bases_next(b, base) == 1) {
		if (base->state == BASE_ERROR) {
			if (!nerrors++)
				util_strlcpy(first_error, base->why, sizeof(first_error));
			continue;
		}
		if (base->state == BASE_UNSAFE) {
			nunsafe++;
			continue;
		}
		/* The first few, whole (looked has room for them), for the message. */
		if (nlooked++ < RECOVER_NAMED)
			k += (size_t)snprintf(looked + k, sizeof(looked) - k, "%s%s", k ? ", " : "",
					      base->path);
		struct stat st;
		if (fstatat(base->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			close(base->fd);
			continue;
		}
		if (*basefd >= 0) {
			close(base->fd);
			util_err(err, errlen, "in two temp bases, %s and %s: give its path", shown,
				 base->path);
			goto out;
		}
		*basefd = base->fd;
		int n = snprintf(shown, shownlen, "%s%s%s", base->path,
				 base->path[strlen(base->path) - 1] == '/' ? "" : "/", name);
		if (n < 0 || (size_t)n >= shownlen)
			util_strlcpy(shown, name, shownlen); /* (only what reports show) */
	}
	if (*basefd >= 0) {
		rc = 0;
		goto out;
	}
	char from[64];
	bool dflt = strcmp(b->from, "default") == 0;
	snprintf(from, sizeof(from), "%s%s", dflt ? "" : "from ", dflt ? "the default" : b->from);
	char more[64] = "";
	if (nlooked > RECOVER_NAMED)
		snprintf(more, sizeof(more), " and %u more", nlooked - RECOVER_NAMED);
	if (nlooked)
		util_err(err, errlen,
			 "no such directory (already reclaimed, or never there): looked in %s%s "
			 "(%s)",
			 looked, more, from);
	else if (nerrors == 1 && !nunsafe && b->nspecs == 1)
		util_err(err, errlen, "no such directory: %s", first_error);
	else
		util_err(err, errlen,
			 "no such directory: no temp base to look in (%s, %s, names no "
			 "directory that can be read)",
			 b->text, from);
	if (nerrors && (nlooked || nunsafe || b->nspecs > 1)) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, "; %s", first_error);
	}
	if (nunsafe) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n,
			 "; not in %u unsafe temp base%s a pattern matched (`shmwarden ls` names "
			 "them)",
			 nunsafe, nunsafe == 1 ? "" : "s");
	}
out:
	if (rc < 0 && *basefd >= 0) {
		close(*basefd);
		*basefd = -1;
	}
	free(base);
	return rc;
}

/* A failure before reclaim_dir could report: with --json it is still one JSON document
 * on stdout (status "error"), as every other outcome is, its detail WHY whole (a
 * report's detail array would cut the bases a "looked in" names); the line on stderr
 * stays. */
static void recover_fail_json(const char *dir, const char *why, bool dry_run)
{
	report_print_json_error(stdout, dir, why, dry_run);
	fputc('\n', stdout);
}

/* "shmwarden recover: DIR: error: WHY" on stderr, DIR and WHY escaped: the form of the
 * line of every other directory recover could not process (report_print_text), whose
 * detail field would cut a long WHY. */
static void recover_complain(const char *dir, const char *why, bool dry_run)
{
	fputs(CLI_PROG("recover") ": ", stderr);
	report_print_escaped(stderr, dir);
	fprintf(stderr, ": %s%s: ", reclaim_status_str(RECLAIM_ERROR), dry_run ? " (dry run)" : "");
	report_print_escaped(stderr, why);
	fputc('\n', stderr);
}

enum { OPT_TMPDIR = 256, OPT_DRY_RUN, OPT_JSON, OPT_SYSLOG, OPT_GRACE };

int cmd_recover(int argc, char **argv)
{
	/* A reader that goes away (`| head`) must not stop a reclaim halfway: the
	 * command finishes, then ends by SIGPIPE as a filter would (cli.h). */
	cli_hold_sigpipe();
	bool dry_run = false, json = false, use_syslog = false;
	const char *base = NULL;
	long long grace_s = RECLAIM_GRACE_S;
	static const struct cli_opt options[] = {
		{ "tmpdir", OPT_TMPDIR, "a directory" },
		{ "dry-run", OPT_DRY_RUN, NULL },
		{ "json", OPT_JSON, NULL },
		{ "syslog", OPT_SYSLOG, NULL },
		{ "prune-grace", OPT_GRACE, "a number of seconds" },
		{ "help", 'h', NULL },
		{ NULL, 0, NULL },
	};
	struct cli c;
	int opt;
	cli_init(&c, CLI_PROG("recover"), options, false);
	while ((opt = cli_next(&c, argc, argv)) != -1) {
		switch (opt) {
		case OPT_TMPDIR:
			base = c.value;
			break;
		case OPT_DRY_RUN:
			dry_run = true;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_SYSLOG:
			use_syslog = true;
			break;
		case OPT_GRACE:
			if (cli_value_number(&c, opt, 0, RECLAIM_GRACE_MAX_S, &grace_s) != 0)
				return 2;
			break;
		case 'h':
			fputs(recover_usage, stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind == argc)
		return cli_usage_error(&c, "missing DIR (a manager directory `shmwarden ls` lists)",
				       NULL);
	if (argc - optind > 1)
		return cli_usage_error(&c, "one DIR only, got a second: ", argv[optind + 1]);
	const char *dir = argv[optind];
	if (!*dir)
		return cli_usage_error(&c, "DIR is an empty string", NULL);
	/* What the reports call the directory: the path; a bare name's in its base once
	 * found, until then in the base when there is one to name, else the name. */
	char shown[4096];
	struct bases bases = { 0 };
	/* A path holds a slash or is "." or "..": run from inside a dead manager's
	 * directory, `recover .` is that directory, never a name to look up. */
	bool bare = !strchr(dir, '/') && strcmp(dir, ".") != 0 && strcmp(dir, "..") != 0;
	if (base && !bare)
		return cli_usage_error(&c,
				       "--tmpdir is the temp base of a bare name as `shmwarden "
				       "ls` prints it, and DIR is a path: ",
				       dir);
	if (bare) {
		char err[PATH_MAX + 300];
		if (bases_init(&bases, base, (uid_t)-1, err, sizeof(err)) < 0) {
			bases_free(&bases);
			return cli_usage_error(&c, err, NULL);
		}
		const char *only = bases.specs[0];
		if (bases.nspecs == 1 && !bases_entry_is_pattern(&bases, 0))
			snprintf(shown, sizeof(shown), "%s%s%s", only,
				 only[strlen(only) - 1] == '/' ? "" : "/", dir);
		else
			util_strlcpy(shown, dir, sizeof(shown));
	} else {
		util_strlcpy(shown, dir, sizeof(shown));
	}

	if (use_syslog)
		log_use_syslog(true);
	/* The reclaimer's write lease, held for a moment per object, is broken by an opener
	 * with SIGIO, whose default action would end us: ignored, reclaim needs no F_SETSIG
	 * per object (reclaim.c). */
	signal(SIGIO, SIG_IGN);
	int rc = 1, basefd = -1, shmfd = -1;
	struct inuse *idx = NULL;
	char name[256], boot_id[UTIL_BOOT_ID_LEN + 1];
	/* bases.text: the entries joined (bases_init), none for a path. */
	size_t errlen = recover_err_len(bases.text ? strlen(bases.text) + 1 : 1);
	char *err = malloc(errlen);
	int found = -1;
	if (!err) {
		fputs(CLI_PROG("recover") ": out of memory\n", stderr);
		if (json)
			recover_fail_json(shown, "out of memory", dry_run);
		goto out;
	}
	if (bare && util_strlcpy(name, dir, sizeof(name)) >= sizeof(name))
		util_err(err, errlen, "name too long");
	else if (bare)
		found = recover_find(&bases, name, &basefd, shown, sizeof(shown), err, errlen);
	else
		found = recover_split(dir, &basefd, name, sizeof(name), shown, sizeof(shown), err,
				      errlen);
	if (found < 0) {
		recover_complain(shown, err, dry_run);
		if (json)
			recover_fail_json(shown, err, dry_run);
		if (use_syslog) {
			char esc[1024];
			log_error("recover: %s: %s", report_escape(shown, esc, sizeof(esc)), err);
		}
		goto out;
	}
	dev_t shm_dev;
	if ((shmfd = shmobj_dir_open(err, errlen)) < 0 ||
	    shmobj_dir_dev(shmfd, &shm_dev, err, errlen) < 0 ||
	    !(idx = inuse_new("/proc", shm_dev, err, errlen)) ||
	    util_boot_id(boot_id, sizeof(boot_id), err, errlen) < 0) {
		fprintf(stderr, CLI_PROG("recover") ": %s\n", err);
		if (json)
			recover_fail_json(shown, err, dry_run);
		if (use_syslog)
			log_error("recover: %s", err);
		goto out;
	}
	struct reclaim_opts opts = {
		.inuse = idx,
		.shm_dirfd = shmfd,
		.boot_id = boot_id,
		.dry_run = dry_run,
		.now_s = util_wall_s(),
		.young_s = grace_s,
		.now_us = util_wall_us(),
		.caller_reports = !use_syslog,
		/* Managers our /proc does not show are found by their lock in DIR's base. */
		.live_bases = &basefd,
		.nlive_bases = 1,
		.own_dirfd = -1,
	};
	struct reclaim_report report;
	reclaim_dir(&opts, basefd, name, &report);
	bool ok = report.status == RECLAIM_REMOVED || report.status == RECLAIM_KEPT;
	bool busy = report.status == RECLAIM_BUSY;
	bool starting = report.status == RECLAIM_STARTING;
	bool later = busy || starting;
	if (json) {
		report_print_json(stdout, shown, &report, dry_run);
		fputc('\n', stdout);
	} else if (ok || later) {
		report_print_text(stdout, CLI_PROG("recover"), shown, &report, dry_run);
	}
	if (!ok && !later)
		report_print_text(stderr, CLI_PROG("recover"), shown, &report, dry_run);
	rc = ok ? 0 : later ? RECOVER_EXIT_LATER : 1;
out:
	if (cli_flush_stdout(CLI_PROG("recover")) < 0 && rc == 0)
		rc = 1;
	inuse_free(idx);
	if (shmfd >= 0)
		close(shmfd);
	if (basefd >= 0)
		close(basefd);
	free(err);
	bases_free(&bases);
	return rc;
}
