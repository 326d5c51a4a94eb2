/* cmd_sweep.c — `shmwarden sweep [--tmpdir DIR] [--dry-run] [--json]`: the host's leak
 * sweeper (cron, systemd timer). Reclaims every dead manager directory in the temp base
 * through reclaim_base; as root it visits every user's directories (acting as each
 * owner), otherwise only the caller's. A directory that cannot be processed is reported
 * and skipped; the sweep goes on with the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "inuse.h"
#include "reclaim.h"
#include "report.h"
#include "shmobj.h"
#include "util.h"

static const char sweep_usage[] =
	"usage: shmwarden sweep [--tmpdir DIR] [--dry-run] [--json]\n"
	"  Reclaims the shared-memory objects of every dead manager under the temp base\n"
	"  (DIR, else $TMPDIR, $TMP, $TEMP, $TEMPDIR, /tmp) and removes their directories.\n"
	"  Live managers and objects still in use are left alone. As root it visits every\n"
	"  user's directories, acting as their owner; otherwise only yours.\n"
	"  --tmpdir DIR  the temp base to sweep\n"
	"  --dry-run     report what would happen, change nothing\n"
	"  --json        print one JSON document: {\"base\", \"dirs\": [...], \"totals\"}\n"
	"  Exit status: 0 all processed, 1 some directory could not be (see stderr), 2 usage.\n";

struct sweep_ctx {
	const char *base;
	bool json, dry_run;
	struct report_totals totals;
};

static void sweep_report(void *arg, const struct reclaim_report *r)
{
	struct sweep_ctx *ctx = arg;
	char path[4096];
	snprintf(path, sizeof(path), "%s%s%s", ctx->base,
		 ctx->base[strlen(ctx->base) - 1] == '/' ? "" : "/", r->dir);
	if (ctx->json) {
		if (ctx->totals.dirs)
			fputc(',', stdout);
		report_print_json(stdout, path, r, ctx->dry_run);
	} else if (!report_failed(r)) {
		report_print_text(stdout, "sweep", path, r, ctx->dry_run);
	}
	if (report_failed(r))
		report_print_text(stderr, "sweep", path, r, ctx->dry_run);
	report_totals_add(&ctx->totals, r);
}

/* "sweep: WHAT ARG" and the usage on stderr, ARG escaped. */
static void sweep_complain(const char *what, const char *arg)
{
	fprintf(stderr, "sweep: %s", what);
	report_print_escaped(stderr, arg);
	fprintf(stderr, "\n%s", sweep_usage);
}

int cmd_sweep(int argc, char **argv)
{
	struct sweep_ctx ctx = { 0 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--dry-run") == 0) {
			ctx.dry_run = true;
		} else if (strcmp(a, "--json") == 0) {
			ctx.json = true;
		} else if (strcmp(a, "--tmpdir") == 0) {
			if (++i == argc || !*argv[i]) {
				sweep_complain("--tmpdir needs a directory", "");
				return 2;
			}
			ctx.base = argv[i];
		} else if (strncmp(a, "--tmpdir=", 9) == 0 && a[9]) {
			ctx.base = a + 9;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(sweep_usage, stdout);
			return 0;
		} else if (a[0] == '-') {
			sweep_complain("unknown option ", a);
			return 2;
		} else {
			sweep_complain("unexpected argument ", a);
			return 2;
		}
	}
	if (!ctx.base)
		ctx.base = util_tmpbase();

	/* A reader that goes away (`| head`) must not stop a reclaim halfway: that would be
	 * safe, but finishing is better; the lost output then shows in the exit status. */
	signal(SIGPIPE, SIG_IGN);
	int rc = 1, basefd = -1, shmfd = -1;
	struct inuse *idx = NULL;
	char err[256], boot_id[UTIL_BOOT_ID_LEN + 1];
	basefd = open(ctx.base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (basefd < 0) {
		int saved = errno;
		fputs("sweep: cannot open the temp base ", stderr);
		report_print_escaped(stderr, ctx.base);
		fprintf(stderr, ": %s\n", strerror(saved));
		goto out;
	}
	if (!(idx = inuse_scan("/proc", err, sizeof(err))) ||
	    (shmfd = shmobj_dir_open(err, sizeof(err))) < 0 ||
	    util_boot_id(boot_id, sizeof(boot_id), err, sizeof(err)) < 0) {
		fprintf(stderr, "sweep: %s\n", err);
		goto out;
	}
	struct reclaim_opts opts = {
		.inuse = idx,
		.shm_dirfd = shmfd,
		.boot_id = boot_id,
		.dry_run = ctx.dry_run,
		.now_s = util_wall_s(),
	};
	uid_t only = geteuid() == 0 ? (uid_t)-1 : geteuid();
	if (ctx.json) {
		fputs("{\"base\":", stdout);
		report_json_string(stdout, ctx.base);
		fprintf(stdout, ",\"dry_run\":%s,\"dirs\":[", ctx.dry_run ? "true" : "false");
	}
	int failed = reclaim_base(&opts, basefd, only, sweep_report, &ctx);
	if (ctx.json) {
		fputs("],\"totals\":", stdout);
		report_totals_json(stdout, &ctx.totals);
		fputs(failed < 0 ? ",\"error\":\"cannot read the temp base\"}\n" : "}\n", stdout);
	} else {
		report_totals_text(stdout, "sweep", &ctx.totals, ctx.dry_run);
	}
	if (failed < 0) {
		fputs("sweep: cannot read the temp base ", stderr);
		report_print_escaped(stderr, ctx.base);
		fputc('\n', stderr);
	}
	rc = failed == 0 ? 0 : 1;
out:
	if (fflush(stdout) != 0 && rc == 0)
		rc = 1;
	inuse_free(idx);
	if (shmfd >= 0)
		close(shmfd);
	if (basefd >= 0)
		close(basefd);
	return rc;
}
