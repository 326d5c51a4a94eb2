/* metrics.h — the Prometheus textfile of `shmwarden sweep --metrics FILE`, for
 * node_exporter's textfile collector.
 *
 * The file is rewritten whole by every sweep, so every series describes the last run
 * (gauges named shmwarden_sweep_last_*), except the last success time, which is carried
 * over from the previous file when this run failed. The file is replaced atomically: a
 * scraper sees the old file or the new one, never a half-written one. The series are
 * listed in the README ("Metrics") and in shmwarden(1).
 */
#ifndef SHMWARDEN_METRICS_H
#define SHMWARDEN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"

struct metrics_sweep {
	const struct report_totals *totals; /* what the sweep did (all zero if it never began) */
	bool success;                       /* every directory processed: the sweep exits 0 */
	int64_t finished_s;                 /* wall clock, unix seconds */
	int64_t duration_ms;
};

/* Whether the sweep can write path: creates FILE.tmp.<pid> as metrics_write would, and
 * removes it. Called before anything is swept, with the identity and mounts the write
 * will have, so a sweep whose metrics would be lost refuses to start. 0, or -1 with err. */
int metrics_check(const char *path, char *err, size_t errlen);

/* Writes FILE.tmp.<pid> beside path, fsyncs it and renames it over path. On failure the
 * temporary file is removed, path is untouched, and err says why. Returns 0 or -1. */
int metrics_write(const char *path, const struct metrics_sweep *m, char *err, size_t errlen);

#endif
