/* metrics.c — writes the sweep's Prometheus textfile (see metrics.h).
 *
 * Every value is a gauge: the collector reads a file that each run replaces, so a
 * counter here would restart from the run's own count and mean nothing across runs.
 * Names follow Prometheus conventions: base units (_seconds, _bytes), one metric with a
 * label where the values add up to a meaningful whole (directories by status, objects
 * by outcome). No sample timestamps: the textfile collector refuses them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"
#include "util.h"

#define METRICS_LAST_SUCCESS "shmwarden_sweep_last_success_timestamp_seconds"

/* The last success time recorded in the previous file, or 0 (never, or unreadable: an
 * alert on "no success for an hour" then fires, which is what it should do). */
static int64_t metrics_previous_success(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	char line[512];
	int64_t t = 0;
	size_t nlen = strlen(METRICS_LAST_SUCCESS);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, METRICS_LAST_SUCCESS, nlen) != 0 || line[nlen] != ' ')
			continue;
		char *end;
		double v = strtod(line + nlen + 1, &end);
		if (end != line + nlen + 1 && isfinite(v) && v > 0 && v < 1e15)
			t = (int64_t)v;
		break;
	}
	fclose(f);
	return t;
}

static void metrics_head(FILE *f, const char *name, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void metrics_format(FILE *f, const struct metrics_sweep *m, int64_t last_success)
{
	const struct report_totals *t = m->totals;

	metrics_head(f, "shmwarden_sweep_last_success",
		     "Whether the last sweep did everything it should have (1) or not (0); "
		     "unsafe, corrupt and foreign directories are findings, not failures.");
	fprintf(f, "shmwarden_sweep_last_success %d\n", m->success ? 1 : 0);
	metrics_head(f, "shmwarden_sweep_last_run_timestamp_seconds",
		     "When the last sweep finished, in seconds since the epoch.");
	fprintf(f, "shmwarden_sweep_last_run_timestamp_seconds %" PRId64 "\n", m->finished_s);
	metrics_head(f, METRICS_LAST_SUCCESS,
		     "When a sweep last processed every manager directory, in seconds since "
		     "the epoch (0: never).");
	fprintf(f, METRICS_LAST_SUCCESS " %" PRId64 "\n", last_success);
	metrics_head(f, "shmwarden_sweep_last_duration_seconds", "How long the last sweep took.");
	fprintf(f, "shmwarden_sweep_last_duration_seconds %" PRId64 ".%03" PRId64 "\n",
		m->duration_ms / 1000, m->duration_ms % 1000);

	metrics_head(f, "shmwarden_sweep_last_directories",
		     "Manager directories the last sweep visited, by outcome: removed, kept "
		     "(objects still in use), live, starting, busy (another reclaimer was "
		     "reclaiming it), the findings for a human (not failures): unsafe (foreign "
		     "or unsafe files), corrupt (unreadable journal), foreign (names in another "
		     "shm filesystem), and error (a failure).");
	for (int st = RECLAIM_REMOVED; st <= RECLAIM_ERROR; st++)
		fprintf(f, "shmwarden_sweep_last_directories{status=\"%s\"} %u\n",
			reclaim_status_str((enum reclaim_status)st), t->by_status[st]);

	/* Not a status of the directories above: a match is a temp base, and what is in
	 * it was never looked at (the alert on findings must see it all the same). */
	metrics_head(f, "shmwarden_sweep_last_bases_unsafe",
		     "Temp bases a pattern matched that the last sweep did not visit: a "
		     "symlink, another user's, or writable by group or others (findings for "
		     "a human, not failures; shmwarden ls names them).");
	fprintf(f, "shmwarden_sweep_last_bases_unsafe %u\n", t->unsafe_bases);
	/* The failures' side of the same: a base that could not be read at all (the
	 * sweep exits 1 for it, and nothing under it was swept). */
	metrics_head(f, "shmwarden_sweep_last_bases_failed",
		     "Temp bases the last sweep could not read (a literal base that does not "
		     "exist or cannot be opened or listed): failures, which make "
		     "shmwarden_sweep_last_success 0; nothing under them was swept.");
	fprintf(f, "shmwarden_sweep_last_bases_failed %u\n", t->failed_bases);

	/* in_use counts what a live process still maps: kept journaled for a later pass. */
	metrics_head(f, "shmwarden_sweep_last_objects",
		     "Journaled objects of dead managers the last sweep handled, by outcome: "
		     "unlinked, gone (already), in_use (kept for a later sweep), refused "
		     "(another user's object or an invalid name).");
	const struct {
		const char *outcome;
		unsigned n;
	} objs[] = {
		{ "unlinked", t->unlinked },
		{ "gone", t->gone },
		{ "in_use", t->in_use },
		{ "refused", t->refused },
	};
	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
		fprintf(f, "shmwarden_sweep_last_objects{outcome=\"%s\"} %u\n", objs[i].outcome,
			objs[i].n);

	metrics_head(f, "shmwarden_sweep_last_objects_not_inspectable",
		     "Of the in_use objects of the last sweep, those kept because a process "
		     "that may hold them could not be inspected (and the kernel did not say "
		     "that nobody has them open).");
	fprintf(f, "shmwarden_sweep_last_objects_not_inspectable %u\n", t->not_inspectable);
	metrics_head(f, "shmwarden_sweep_last_objects_live_unreadable",
		     "Of the in_use objects of the last sweep, those kept because a live "
		     "manager of their owner's has a journal this build cannot read (another "
		     "schema version) and may hold them.");
	fprintf(f, "shmwarden_sweep_last_objects_live_unreadable %u\n", t->live_unreadable);
	metrics_head(f, "shmwarden_sweep_last_objects_lease_held",
		     "Of the in_use objects of the last sweep, those no task in the sweep's /proc "
		     "view holds but the kernel's write lease says someone has open (a holder "
		     "outside that view: another pid namespace, io_uring, overlayfs), or opened "
		     "while the sweep held its lease (the lease was broken).");
	fprintf(f, "shmwarden_sweep_last_objects_lease_held %u\n", t->lease_held);
	metrics_head(f, "shmwarden_sweep_last_objects_lease_unavailable",
		     "Of the in_use objects of the last sweep, those kept because the kernel's "
		     "write lease could not be asked (leases disabled: fs.leases-enable 0), so "
		     "whether anyone has them open could not be told.");
	fprintf(f, "shmwarden_sweep_last_objects_lease_unavailable %u\n", t->lease_unavailable);
	metrics_head(f, "shmwarden_sweep_last_objects_name_reused",
		     "Of the refused objects, those whose name now names another object than "
		     "the one its journal recorded (refused: name reused); left in place.");
	fprintf(f, "shmwarden_sweep_last_objects_name_reused %u\n", t->reused);

	metrics_head(f, "shmwarden_sweep_last_objects_handed_over",
		     "Journaled names of dead managers that a live manager has registered "
		     "since: rows dropped, objects left in the live manager's care.");
	fprintf(f, "shmwarden_sweep_last_objects_handed_over %u\n", t->handed_over);
	/* Not an outcome of shmwarden_sweep_last_objects: no object exists for these. */
	metrics_head(f, "shmwarden_sweep_last_objects_young",
		     "Journaled names of dead managers that the last sweep kept because they "
		     "were registered less than the prune grace before it and their object "
		     "did not exist yet (not created yet: the client may create it next); "
		     "their directories stay, for a later sweep.");
	fprintf(f, "shmwarden_sweep_last_objects_young %u\n", t->young);

	metrics_head(f, "shmwarden_sweep_last_reclaimed_bytes",
		     "Bytes of shared memory the last sweep gave back (sizes of the objects it "
		     "unlinked).");
	fprintf(f, "shmwarden_sweep_last_reclaimed_bytes %" PRIu64 "\n", t->bytes);

	metrics_head(f, "shmwarden_build_info", "The shmwarden version that wrote this file.");
	fprintf(f, "shmwarden_build_info{version=\"%s\"} 1\n", SHMWARDEN_VERSION);
}

/* O_EXCL and O_NOFOLLOW: never write through a link or into a file someone planted
 * under the temporary name; a leftover of our own crashed run (same pid) is replaced. */
static int metrics_open_tmp(const char *tmp)
{
	for (int tries = 0; tries < 2; tries++) {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd >= 0 || errno != EEXIST || unlink(tmp) < 0)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

/* FILE.tmp.<pid>, beside path. */
static int metrics_tmp_name(const char *path, char *tmp, size_t len, char *err, size_t errlen)
{
	int n = snprintf(tmp, len, "%s.tmp.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= len) {
		util_err(err, errlen, "%s: path too long", path);
		return -1;
	}
	return 0;
}

int metrics_check(const char *path, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	if (metrics_tmp_name(path, tmp, sizeof(tmp), err, errlen) < 0)
		return -1;
	/* What metrics_write does first, undone at once: the same call, the same
	 * identity, the same mounts, so its answer is the one the write would get. */
	int fd = metrics_open_tmp(tmp);
	if (fd < 0) {
		util_err(err, errlen, "create %s: %s", tmp, strerror(errno));
		return -1;
	}
	close(fd);
	if (unlink(tmp) < 0) {
		util_err(err, errlen, "unlink %s: %s", tmp, strerror(errno));
		return -1;
	}
	return 0;
}

int metrics_write(const char *path, const struct metrics_sweep *m, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	if (metrics_tmp_name(path, tmp, sizeof(tmp), err, errlen) < 0)
		return -1;
	int64_t last_success = m->success ? m->finished_s : metrics_previous_success(path);
	int fd = metrics_open_tmp(tmp);
	if (fd < 0) {
		util_err(err, errlen, "create %s: %s", tmp, strerror(errno));
		return -1;
	}
	/* The collector usually runs as its own user: readable by all, whatever the umask.
	 * Only when the umask took bits away: the sweeper's sandbox refuses fchmod (it sets
	 * umask 022 itself), and so a sweep can still write its metrics. */
	struct stat st;
	if (fstat(fd, &st) < 0 || ((st.st_mode & 07777) != 0644 && fchmod(fd, 0644) < 0)) {
		util_err(err, errlen, "chmod %s: %s", tmp, strerror(errno));
		close(fd);
		goto fail;
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		util_err(err, errlen, "fdopen %s: %s", tmp, strerror(errno));
		close(fd);
		goto fail;
	}
	metrics_format(f, m, last_success);
	/* fsync before rename: after a power loss the name must not point at an empty file
	 * (the directory is usually on disk); once per sweep it costs nothing. */
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0) {
		util_err(err, errlen, "write %s: %s", tmp, strerror(errno));
		fclose(f);
		goto fail;
	}
	if (fclose(f) != 0) {
		util_err(err, errlen, "close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		util_err(err, errlen, "rename %s to %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return -1;
}
