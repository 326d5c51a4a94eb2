/* cmd_sweep.c — `shmwarden sweep [--tmpdir DIR] [--user NAME|UID] [--dry-run] [--json]
 * [--metrics FILE] [--syslog]`: the host's leak sweeper (cron, systemd timer, a batch
 * system's epilog). Reclaims every dead manager directory in the temp base through
 * reclaim_base; as root it visits every user's directories (acting as each owner), or
 * one user's with --user, otherwise only the caller's. A directory that
 * cannot be processed is reported and skipped; the sweep goes on with the others.
 *
 * Output: the report on stdout, failures on stderr, log lines (SHMWARDEN_LOG) on stderr
 * or, with --syslog, in syslog. Without --syslog both land on stderr, so the engine's
 * line for a failed directory drops to info: the report line already says it. With
 * --syslog (cron, whose output usually goes nowhere) failures go to syslog as well.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
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
#include "metrics.h"
#include "reclaim.h"
#include "report.h"
#include "sandbox.h"
#include "shmobj.h"
#include "util.h"

static const char sweep_usage[] =
	"usage: shmwarden sweep [--tmpdir BASE] [--user NAME|UID] [--dry-run] [--json]\n"
	"                       [--metrics FILE] [--syslog] [--prune-grace SECONDS]\n"
	"  Reclaims the shared-memory objects of every dead manager under the temp bases\n"
	"  and removes their directories. Live managers and objects still in use are left\n"
	"  alone, and so is a directory another reclaimer is reclaiming (busy). As root it\n"
	"  visits every user's directories, acting as their owner; otherwise only yours.\n"
	"  Temp bases: BASE, else $SHMWARDEN_TMPDIRS (colon-separated, like PATH;\n"
	"  absolute entries only), else $TMPDIR, $TMP, $TEMP, $TEMPDIR, /tmp (always a\n"
	"  path, never a pattern). A BASE or an entry may be a glob(3) pattern\n"
	"  (/tmp/slurm.*, /scratch/*/*; no {a,b}) for per-job temp directories: a match\n"
	"  is visited only if no component the pattern matched is a symlink, another\n"
	"  user's, or writable by group or others (unless sticky); the others are counted\n"
	"  as unsafe temp bases, for a human. A pattern matching nothing is fine; when its\n"
	"  own text names a directory (job[1]), that is its match.\n"
	"  --tmpdir BASE   the one temp base (or pattern) to sweep; may be relative\n"
	"  --user NAME|UID only that user's directories (root; a Slurm epilog passes the\n"
	"                  job's user: the user's live managers are left alone as ever)\n"
	"  --dry-run       report what would happen, change nothing\n"
	"  --json          print one JSON document: {\"base\", \"dirs\": [...],\n"
	"                  \"unsafe_bases\": [...], \"totals\"}\n"
	"  --metrics FILE  write Prometheus textfile metrics to FILE (atomically replaced;\n"
	"                  for node_exporter's textfile collector, name it *.prom); not\n"
	"                  with --dry-run, whose figures would read as a sweep's. Tried\n"
	"                  before anything is swept: nothing is swept if FILE cannot be\n"
	"                  written\n"
	"  --syslog        log to syslog (facility daemon) instead of stderr\n"
	"  --prune-grace SECONDS\n"
	"                  keep a name registered less than this ago whose object does\n"
	"                  not exist yet (its client may create it next), as its manager\n"
	"                  would have, and so its directory, for a later sweep: whole\n"
	"                  seconds, 0 to 86400000 (default 10). 0 is no grace: every such\n"
	"                  name is dropped at once, as gone; only for when no client of\n"
	"                  any directory the sweep reaches can still be creating (an\n"
	"                  epilog after the whole job is dead, whose bases hold only that\n"
	"                  job's directories)\n"
	"  Exit status: 0 every directory handled (busy ones are left to their reclaimer;\n"
	"  unsafe, corrupt and foreign ones, and unsafe matches of a pattern, are reported,\n"
	"  not failures), 1 some directory could not be processed (see stderr), a temp\n"
	"  base could not be read (a literal one that does not exist included; counted as\n"
	"  failed in the summary), or the metrics file could not be written, 2 usage (a\n"
	"  malformed pattern included, and a metrics file whose directory does not exist,\n"
	"  or that is a directory).\n"
	"  A reader of the report that goes away early (| head): the sweep finishes (the\n"
	"  metrics file included), then SIGPIPE ends it quietly, as any filter (the\n"
	"  shell's status 141).\n";

struct sweep_ctx {
	const char *tmpdir, *metrics;
	const char *base; /* the base being swept, for the report's paths */
	struct bases bases;
	uid_t only_uid;  /* (uid_t)-1: every user's (root) */
	int64_t grace_s; /* --prune-grace: reclaim_opts.young_s */
	bool json, dry_run, syslog;
	struct report_totals totals;
};

static void sweep_report(void *arg, const struct reclaim_report *r)
{
	struct sweep_ctx *ctx = arg;
	char path[4096];
	snprintf(path, sizeof(path), "%s%s%s", ctx->base,
		 ctx->base[strlen(ctx->base) - 1] == '/' ? "" : "/", r->dir);
	/* Failures and findings (a directory for a human) go to stderr, where a human
	 * looks; only failures make the exit status 1. */
	bool to_stderr = report_failed(r) || reclaim_is_finding(r->status);
	if (ctx->json) {
		if (ctx->totals.dirs)
			fputc(',', stdout);
		report_print_json(stdout, path, r, ctx->dry_run);
	} else if (!to_stderr) {
		report_print_text(stdout, CLI_PROG("sweep"), path, r, ctx->dry_run);
	}
	if (to_stderr)
		report_print_text(stderr, CLI_PROG("sweep"), path, r, ctx->dry_run);
	report_totals_add(&ctx->totals, r);
}

/* A failure of the sweep as a whole: on stderr, and in syslog too when logging there. */
static void sweep_fail(const struct sweep_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sweep_fail(const struct sweep_ctx *ctx, const char *fmt, ...)
{
	/* Room for an escaped base (1024) and the reason after it. */
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, CLI_PROG("sweep") ": %s\n", msg);
	if (ctx->syslog)
		log_error("sweep: %s", msg);
}

/* The pledge, before the first journal is read (sandbox.h): files may change only in the
 * temp base swept, this process's own temp base, /dev/shm and the metrics file's
 * directory. (The mount namespace waited for livemgr.c to identify a live manager's
 * directory by inode: by the path its descriptor read back, a sweep in a chroot whose
 * temp base is a mount saw a path of the host's tree there, and unlinked a live
 * manager's re-registered name; tests/proc/test_sandbox.py checks that case.
 * SWEEP_PRIVATE_MOUNTS=0 builds without it.) */
#ifndef SWEEP_PRIVATE_MOUNTS
#define SWEEP_PRIVATE_MOUNTS 1
#endif

/* The directory the metrics file is written in (FILE.tmp.<pid>, then a rename). */
static void sweep_metrics_dir(const char *metrics, char *dir, size_t len)
{
	util_strlcpy(dir, metrics, len);
	char *slash = strrchr(dir, '/');
	if (!slash)
		util_strlcpy(dir, ".", len);
	else
		slash[slash == dir] = '\0';
}

/* The log line's list of writable places after the bases' own text: /dev/shm, $TMPDIR's
 * base, /tmp and the metrics file's directory, each said once, and not again when it is a
 * base's own directory (TMPDIR=/tmp swept as /tmp named /tmp three times). */
static const char *sweep_rw_text(const char *const *prefixes, size_t nprefixes,
				 const char *const *more, size_t nmore, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < nmore; i++) {
		bool said = !more[i];
		for (size_t k = 0; k < i && !said; k++)
			said = more[k] && strcmp(more[k], more[i]) == 0;
		for (size_t k = 0; k < nprefixes && !said; k++)
			said = strcmp(prefixes[k], more[i]) == 0;
		if (said)
			continue;
		int w = snprintf(buf + o, len - o, ", %s", more[i]);
		if (w < 0 || (size_t)w >= len - o)
			break;
		o += (size_t)w;
	}
	return buf;
}

static int sweep_sandbox(const struct sweep_ctx *ctx, char *err, size_t errlen)
{
	int rc = -1;
	char metrics_dir[4096] = "";
	if (ctx->metrics)
		sweep_metrics_dir(ctx->metrics, metrics_dir, sizeof(metrics_dir));
	/* Each base, or for a pattern its fixed leading directory, under which every
	 * match lies (bases.c opens matches from there without following symlinks).
	 * util_tmpbase() and /tmp too: a journal is read from a private copy, made in the
	 * first of those two that works (mgrdir.c); $TMPDIR may not exist. */
	size_t n = ctx->bases.nspecs;
	const char **rw = calloc(n + 5, sizeof(*rw));
	char(*prefixes)[PATH_MAX] = calloc(n ? n : 1, PATH_MAX);
	if (!rw || !prefixes) {
		util_err(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		bases_entry_prefix(&ctx->bases, i, prefixes[i], PATH_MAX);
		rw[i] = prefixes[i];
	}
	rw[n] = util_tmpbase();
	rw[n + 1] = "/tmp";
	rw[n + 2] = SHMOBJ_DIR;
	rw[n + 3] = ctx->metrics ? metrics_dir : NULL;
	/* What the sweeper creates (the metrics file) is readable by the collector without
	 * an fchmod, which the sandbox refuses. */
	umask(022);
	bool confined;
	if (sandbox_sweeper(SWEEP_PRIVATE_MOUNTS ? rw : NULL, &confined, err, errlen) < 0)
		goto out;
	if (confined) {
		char where[8192];
		const char *more[] = { SHMOBJ_DIR, util_tmpbase(), "/tmp",
				       ctx->metrics ? metrics_dir : NULL };
		log_info("sweep: privileges dropped; files may change only under %s%s",
			 ctx->bases.text,
			 sweep_rw_text(rw, n, more, sizeof(more) / sizeof(more[0]), where,
				       sizeof(where)));
	} else
		log_info("sweep: privileges dropped; writes not confined by the sweep itself "
			 "(%s)",
			 geteuid()               ? "not root"
			 : !SWEEP_PRIVATE_MOUNTS ? "built without the private mount namespace"
						 : "no CAP_SYS_ADMIN or no mount_setattr");
	rc = 0;
out:
	free(rw);
	free(prefixes);
	return rc;
}

/* --user NAME|UID: a number is a uid (it need not have a name: a job's user may be
 * gone from the user database), anything else a name looked up now, before the
 * sandbox (NSS may need the network). Only root may name another user. */
static int sweep_user(const struct cli *c, const char *u, struct sweep_ctx *ctx)
{
	long long v;
	if (*u >= '0' && *u <= '9') {
		/* (uid_t)-1 is no uid: it means "unchanged" to the kernel */
		if (cli_number(u, 0, (long long)(uid_t)-2, &v) < 0)
			return cli_usage_error(c, "--user: no such uid ", u), -1;
		ctx->only_uid = (uid_t)v;
	} else {
		struct passwd pw, *res = NULL;
		char buf[4096];
		int rc = getpwnam_r(u, &pw, buf, sizeof(buf), &res);
		if (!res)
			return cli_usage_error(
				       c, rc ? "--user: cannot look up " : "--user: no such user ",
				       u),
			       -1;
		ctx->only_uid = pw.pw_uid;
	}
	if (geteuid() != 0 && ctx->only_uid != geteuid())
		return cli_usage_error(c,
				       "--user: only root may sweep another user's "
				       "directories: ",
				       u),
		       -1;
	return 0;
}

/* --metrics FILE in a directory that does not exist, or naming a directory, is a
 * mistake on the command line, refused before anything is swept (the metrics would be
 * lost, and only after the sweep acted). Whether the sweeper may write there is tried
 * once its privileges are dropped (metrics_check). 0, or the exit status. */
static int sweep_metrics_arg(const struct cli *c, const char *path)
{
	char dir[4096];
	struct stat st;
	if (strlen(path) >= sizeof(dir))
		return cli_usage_error(c, "--metrics: a path too long: ", path);
	sweep_metrics_dir(path, dir, sizeof(dir));
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return cli_usage_error(c,
				       "--metrics needs a file, and this is a directory: ", path);
	int rc = stat(dir, &st);
	if ((rc < 0 && (errno == ENOENT || errno == ENOTDIR)) || (rc == 0 && !S_ISDIR(st.st_mode)))
		return cli_usage_error(c,
				       "--metrics: the file's directory does not exist (the "
				       "sweep makes no directory; name one that node_exporter "
				       "reads): ",
				       path);
	return 0;
}

/* A failure before any directory was visited: with --json still one document on
 * stdout, with no directories, zero totals and the error. */
static void sweep_fail_json(const struct sweep_ctx *ctx, const char *why)
{
	if (!ctx->json)
		return;
	fputs("{\"base\":", stdout);
	report_json_string(stdout, ctx->base);
	fprintf(stdout, ",\"dry_run\":%s,\"dirs\":[],\"unsafe_bases\":[],\"totals\":",
		ctx->dry_run ? "true" : "false");
	report_totals_json(stdout, &ctx->totals);
	fputs(",\"error\":", stdout);
	report_json_string(stdout, why);
	fputs("}\n", stdout);
}

enum { OPT_TMPDIR = 256, OPT_DRY_RUN, OPT_JSON, OPT_METRICS, OPT_SYSLOG, OPT_USER, OPT_GRACE };

/* -1 to go on, else the exit status. */
static int sweep_parse(int argc, char **argv, struct sweep_ctx *ctx)
{
	static const struct cli_opt opts[] = {
		{ "tmpdir", OPT_TMPDIR, "a directory" },
		{ "dry-run", OPT_DRY_RUN, NULL },
		{ "json", OPT_JSON, NULL },
		{ "metrics", OPT_METRICS, "a file" },
		{ "syslog", OPT_SYSLOG, NULL },
		{ "user", OPT_USER, "a user name or uid" },
		{ "prune-grace", OPT_GRACE, "a number of seconds" },
		{ "help", 'h', NULL },
		{ NULL, 0, NULL },
	};
	struct cli c;
	int opt, rc;
	cli_init(&c, CLI_PROG("sweep"), opts, false);
	while ((opt = cli_next(&c, argc, argv)) != -1) {
		switch (opt) {
		case OPT_TMPDIR:
			ctx->tmpdir = c.value;
			break;
		case OPT_DRY_RUN:
			ctx->dry_run = true;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case OPT_METRICS:
			ctx->metrics = c.value;
			break;
		case OPT_SYSLOG:
			ctx->syslog = true;
			break;
		case OPT_USER:
			if (sweep_user(&c, c.value, ctx) < 0)
				return 2;
			break;
		case OPT_GRACE: {
			long long v;
			if (cli_value_number(&c, opt, 0, RECLAIM_GRACE_MAX_S, &v) != 0)
				return 2;
			ctx->grace_s = v;
			break;
		}
		case 'h':
			fputs(sweep_usage, stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc)
		return cli_usage_error(&c, "unexpected argument ", argv[optind]);
	/* A dry run reclaims nothing: its figures in the metrics would read as a sweep's. */
	if (ctx->dry_run && ctx->metrics)
		return cli_usage_error(&c,
				       "--metrics and --dry-run do not go together (a dry "
				       "run's figures would read as a sweep's)",
				       NULL);
	if (ctx->metrics && (rc = sweep_metrics_arg(&c, ctx->metrics)) != 0)
		return rc;
	char err[PATH_MAX + 300];
	uid_t only = geteuid() == 0 ? ctx->only_uid : geteuid();
	if (bases_init(&ctx->bases, ctx->tmpdir, only, err, sizeof(err)) < 0)
		return cli_usage_error(&c, err, NULL);
	ctx->base = ctx->bases.text;
	return -1;
}

int cmd_sweep(int argc, char **argv)
{
	/* A reader that goes away (`| head`) must not stop a sweep halfway: the
	 * command finishes, then ends by SIGPIPE as a filter would (cli.h). */
	cli_hold_sigpipe();
	struct sweep_ctx ctx = { .only_uid = (uid_t)-1, .grace_s = RECLAIM_GRACE_S };
	int rc = sweep_parse(argc, argv, &ctx);
	if (rc >= 0) {
		bases_free(&ctx.bases);
		return rc;
	}
	int64_t started_ms = util_now_ms();
	if (ctx.syslog)
		log_use_syslog(true);

	/* The reclaimer's write lease, held for a moment per object, is broken by an opener
	 * with SIGIO, whose default action would end us: ignored, reclaim needs no F_SETSIG
	 * per object (reclaim.c). */
	signal(SIGIO, SIG_IGN);
	int shmfd = -1;
	struct inuse *idx = NULL;
	char err[256], boot_id[UTIL_BOOT_ID_LEN + 1];
	rc = 1;
	if (sweep_sandbox(&ctx, err, sizeof(err)) < 0) {
		char msg[sizeof(err) * 4];
		sweep_fail(&ctx, "cannot drop privileges: %s",
			   report_escape(err, msg, sizeof(msg)));
		char why[sizeof(err) + 32];
		snprintf(why, sizeof(why), "cannot drop privileges: %s", err);
		sweep_fail_json(&ctx, why);
		goto out;
	}
	/* With the identity and the mounts the write will have, before anything changes:
	 * a sweep whose metrics cannot be written would act unseen by its alerts. */
	char merr[PATH_MAX + 300];
	if (ctx.metrics && metrics_check(ctx.metrics, merr, sizeof(merr)) < 0) {
		char msg[sizeof(merr) * 4];
		sweep_fail(&ctx,
			   "--metrics: cannot write the metrics file, so nothing was swept: %s",
			   report_escape(merr, msg, sizeof(msg)));
		char why[sizeof(merr) + 64];
		snprintf(why, sizeof(why), "cannot write the metrics file: %s", merr);
		sweep_fail_json(&ctx, why);
		ctx.metrics = NULL; /* nothing to write it with */
		goto out;
	}
	dev_t shm_dev;
	if ((shmfd = shmobj_dir_open(err, sizeof(err))) < 0 ||
	    shmobj_dir_dev(shmfd, &shm_dev, err, sizeof(err)) < 0 ||
	    !(idx = inuse_new("/proc", shm_dev, err, sizeof(err))) ||
	    util_boot_id(boot_id, sizeof(boot_id), err, sizeof(err)) < 0) {
		sweep_fail(&ctx, "%s", err);
		sweep_fail_json(&ctx, err);
		goto out;
	}
	struct reclaim_opts opts = {
		.inuse = idx,
		.shm_dirfd = shmfd,
		.boot_id = boot_id,
		.dry_run = ctx.dry_run,
		.now_s = util_wall_s(),
		.young_s = ctx.grace_s,
		.caller_reports = !ctx.syslog,
	};
	uid_t only = geteuid() == 0 ? ctx.only_uid : geteuid();
	if (ctx.json) {
		fputs("{\"base\":", stdout);
		report_json_string(stdout, ctx.bases.text);
		fprintf(stdout, ",\"dry_run\":%s,\"dirs\":[", ctx.dry_run ? "true" : "false");
	}
	/* Every base is opened before any is swept: a manager our /proc does not show (we
	 * run in a container, or a user namespace) is found by its lock in any of them
	 * (livemgr.h), and a name it holds may be listed by a dead journal in another.
	 * One descriptor and path per base that can be visited; failures and unsafe
	 * matches are reported as they come. */
	int failed = 0;
	unsigned nbases = 0;
	char first_error[PATH_MAX + 300] = "";
	struct base *b = malloc(sizeof(*b));
	struct bases_open open_bases = { 0 };
	bool oom = false;
	if (!b) {
		failed = 1;
		util_strlcpy(first_error, "out of memory", sizeof(first_error));
	}
	/* A thousand per-job bases are a thousand descriptors. */
	unsigned long long nofile;
	if (util_raise_nofile(&nofile) < 0)
		log_info("sweep: cannot raise RLIMIT_NOFILE above %llu", nofile);
	while (b && bases_next(&ctx.bases, b) == 1) {
		char esc[sizeof(b->path) + sizeof(b->why)];
		if (b->state == BASE_ERROR) {
			failed++;
			ctx.totals.failed_bases++;
			sweep_fail(&ctx, "%s", report_escape(b->why, esc, sizeof(esc)));
			if (!first_error[0])
				util_strlcpy(first_error, b->why, sizeof(first_error));
			continue;
		}
		if (b->state == BASE_UNSAFE) {
			/* A finding, like an unsafe manager directory: for a human, not a
			 * failure of the sweep. */
			char p[sizeof(b->path) * 4];
			ctx.totals.unsafe_bases++;
			fprintf(stderr, CLI_PROG("sweep") ": %s: unsafe: %s\n",
				report_escape(b->path, p, sizeof(p)),
				report_escape(b->why, esc, sizeof(esc)));
			if (ctx.syslog)
				log_warn("sweep: %s: unsafe: %s", p, esc);
			continue;
		}
		if (bases_keep(&open_bases, b) < 0) {
			/* A base left out would be one whose live managers nobody looked for:
			 * nothing is swept. */
			close(b->fd);
			oom = true;
			break;
		}
	}
	if (oom) {
		failed++;
		sweep_fail(&ctx, "out of memory: nothing swept");
		if (!first_error[0])
			util_strlcpy(first_error, "out of memory: nothing swept",
				     sizeof(first_error));
	}
	opts.live_bases = open_bases.fds;
	opts.nlive_bases = open_bases.n;
	opts.own_dirfd = -1;
	for (size_t i = 0; i < open_bases.n && !oom; i++) {
		char esc[PATH_MAX * 4 + 64];
		nbases++;
		ctx.base = open_bases.paths[i];
		opts.now_s = util_wall_s();
		opts.now_us = util_wall_us();
		int f = reclaim_base(&opts, open_bases.fds[i], only, sweep_report, &ctx);
		if (f < 0) {
			char why[PATH_MAX + 64];
			snprintf(why, sizeof(why), "cannot read the temp base %s",
				 open_bases.paths[i]);
			sweep_fail(&ctx, "%s", report_escape(why, esc, sizeof(esc)));
			if (!first_error[0])
				util_strlcpy(first_error, why, sizeof(first_error));
			ctx.totals.failed_bases++;
			f = 1;
		}
		failed += f;
	}
	ctx.base = ctx.bases.text;
	bases_open_free(&open_bases);
	free(b);
	if (ctx.json) {
		fputs("],\"unsafe_bases\":", stdout);
		bases_print_unsafe_json(stdout, &ctx.bases);
		fputs(",\"totals\":", stdout);
		report_totals_json(stdout, &ctx.totals);
		if (first_error[0]) {
			fputs(",\"error\":", stdout);
			report_json_string(stdout, first_error);
		}
		fputs("}\n", stdout);
	} else if (nbases || !first_error[0]) {
		/* (No totals when no base could be read at all: the failure is the news.) */
		report_totals_text(stdout, CLI_PROG("sweep"), &ctx.totals, ctx.dry_run);
	}
	rc = failed == 0 ? 0 : 1;
	const struct report_totals *t = &ctx.totals;
	log_info("sweep: %s%s: %u director%s: %u removed, %u kept, %u live or starting, "
		 "%u busy (another reclaimer's), "
		 "%u for a human (unsafe, corrupt, foreign), %u failed; %u object%s unlinked "
		 "(%llu bytes), %u in use, %u refused; %u base%s swept, %u unsafe, %u not read",
		 ctx.bases.text, ctx.dry_run ? " (dry run)" : "", t->dirs,
		 t->dirs == 1 ? "y" : "ies", t->by_status[RECLAIM_REMOVED],
		 t->by_status[RECLAIM_KEPT],
		 t->by_status[RECLAIM_LIVE] + t->by_status[RECLAIM_STARTING],
		 t->by_status[RECLAIM_BUSY],
		 t->by_status[RECLAIM_UNSAFE] + t->by_status[RECLAIM_CORRUPT] +
			 t->by_status[RECLAIM_FOREIGN],
		 t->by_status[RECLAIM_ERROR], t->unlinked, t->unlinked == 1 ? "" : "s",
		 (unsigned long long)t->bytes, t->in_use, t->refused, nbases,
		 nbases == 1 ? "" : "s", t->unsafe_bases, t->failed_bases);
out:
	if (cli_flush_stdout(CLI_PROG("sweep")) < 0 && rc == 0)
		rc = 1;
	/* Written on failure too: a failed sweep is what the metrics are there to show. */
	if (ctx.metrics) {
		struct metrics_sweep m = {
			.totals = &ctx.totals,
			.success = rc == 0,
			.finished_s = util_wall_s(),
			.duration_ms = util_now_ms() - started_ms,
		};
		if (metrics_write(ctx.metrics, &m, err, sizeof(err)) < 0) {
			char msg[sizeof(err) * 4];
			sweep_fail(&ctx, "metrics: %s", report_escape(err, msg, sizeof(msg)));
			rc = 1;
		}
	}
	inuse_free(idx);
	if (shmfd >= 0)
		close(shmfd);
	bases_free(&ctx.bases);
	return rc;
}
