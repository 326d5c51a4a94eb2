/* report.h — how `recover` and `sweep` show reclaim reports: one text line or one JSON
 * object per directory, and the totals of a sweep. Presentation only: the decisions
 * are reclaim.c's. Every string that came from disk is escaped, so a hostile directory
 * or journal cannot break a terminal line or the JSON document.
 */
#ifndef SHMWARDEN_REPORT_H
#define SHMWARDEN_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "reclaim.h"

struct report_totals {
	unsigned dirs;
	unsigned by_status[RECLAIM_ERROR + 1];
	unsigned unlinked, gone, in_use, adopted, refused;
	unsigned not_inspectable;   /* of in_use: a holder may hide where we cannot look */
	unsigned reused;            /* of refused: name reused */
	unsigned handed_over;       /* rows a live manager registered since */
	unsigned live_unreadable;   /* of in_use: a live manager's journal cannot be read */
	unsigned lease_held;        /* of in_use: open, says the kernel, by a holder outside
				   * the /proc view, or opened while the lease was ours */
	unsigned lease_unavailable; /* of in_use: the kernel's lease could not be asked */
	unsigned young;             /* kept: not created yet, registered within the grace */
	uint64_t bytes;
	/* Matches of a pattern not visited (bases.h, BASE_UNSAFE): findings for a human,
	 * like an unsafe directory, but not directories (not in dirs or by_status). */
	unsigned unsafe_bases;
	/* Temp bases that could not be read (bases.h, BASE_ERROR; a literal one that does
	 * not exist included): failures, which make the sweep exit 1, but not directories
	 * either. */
	unsigned failed_bases;
};

/* True for the status that makes a sweep fail (ERROR: what it should have done and
 * could not). UNSAFE, CORRUPT and FOREIGN are findings (reclaim_is_finding): reported,
 * never failures of the sweeper. */
bool report_failed(const struct reclaim_report *r);

void report_totals_add(struct report_totals *t, const struct reclaim_report *r);

/* One line, "CMD: PATH: STATUS: what happened", with a newline. */
void report_print_text(FILE *f, const char *cmd, const char *path, const struct reclaim_report *r,
		       bool dry_run);

/* One JSON object (no newline); path is what the user knows the directory by. */
void report_print_json(FILE *f, const char *path, const struct reclaim_report *r, bool dry_run);

/* The object of a directory that could not be processed before reclaim_dir could report
 * (status "error", owner null, counts 0), detail why whole, however long. */
void report_print_json_error(FILE *f, const char *path, const char *why, bool dry_run);

/* "CMD: N directories: R removed, K kept, L live, S starting[, B busy (another
 * reclaimer's)], H for a human (U unsafe,
 * C corrupt, F foreign[, B unsafe temp bases]), E failed; U objects unlinked (...)...",
 * with a newline; H counts the unsafe bases too, which are named only when there are
 * some. Every count agrees with its noun (1 directory, 1 object). */
void report_totals_text(FILE *f, const char *cmd, const struct report_totals *t, bool dry_run);
void report_totals_json(FILE *f, const struct report_totals *t);

/* A string from disk or the command line, for a terminal or a log line: printable ASCII
 * as is, every other byte as \xHH, and so are the backslash (\x5c: the output reads back
 * one way only) and leading and trailing spaces (\x20). The one escaping of such values:
 * `ls`, the reports of `sweep` and `recover`, and the engine's log lines (reclaim.c: a
 * journaled name, its directory) print a name alike.
 *
 * log.c escapes once more: the whole formatted line, its control bytes only. That is a
 * guard that keeps one event on one line whatever a caller passed, not a second policy
 * for values: escaping the backslash there would print a value escaped here as \x5cxHH,
 * unlike ls, and a message passed as it is (a path in an error) keeps its UTF-8, cut
 * between whole characters (log.h, LOG_MSG_MAX). */
void report_print_escaped(FILE *f, const char *s);

/* The same between single quotes, where leading and trailing spaces show as they are:
 * 'S', for echoing a word of the command line. */
void report_print_quoted(FILE *f, const char *s);

/* The same escaping into buf (len bytes, always NUL-terminated; a long string is cut at
 * a whole escape), for code that pads columns. Returns buf. */
const char *report_escape(const char *s, char *buf, size_t len);
/* The same for the n bytes at s, which may hold a NUL (a journaled name is a blob with a
 * length: a NUL inside it is \x00, not its end). */
const char *report_escape_n(const char *s, size_t n, char *buf, size_t len);

/* A JSON string literal, quotes included. Bytes that are not UTF-8 come out as
 * \u00XX (their Latin-1 reading), so the document always parses. */
void report_json_string(FILE *f, const char *s);
/* The same for the len bytes at s, which may hold a NUL (a journaled name: \u0000). */
void report_json_string_n(FILE *f, const char *s, size_t len);

#endif
