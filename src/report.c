/* report.c — text and JSON forms of reclaim reports (see report.h). The one place
 * that knows the output formats of `recover` and `sweep`, so the two never drift. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "util.h"

bool report_failed(const struct reclaim_report *r)
{
	return r->status == RECLAIM_ERROR;
}

void report_totals_add(struct report_totals *t, const struct reclaim_report *r)
{
	t->dirs++;
	if ((unsigned)r->status <= RECLAIM_ERROR)
		t->by_status[r->status]++;
	t->unlinked += r->unlinked;
	t->gone += r->gone;
	t->in_use += r->in_use;
	t->adopted += r->adopted;
	t->young += r->young;
	t->refused += r->refused;
	t->not_inspectable += r->not_inspectable;
	t->reused += r->reused;
	t->handed_over += r->handed_over;
	t->live_unreadable += r->live_unreadable;
	t->lease_held += r->lease_held;
	t->lease_unavailable += r->lease_unavailable;
	t->bytes += r->bytes;
}

/* Length of the valid UTF-8 sequence at s (1-4) within its avail bytes (at least 1), or
 * 0 when s starts none there. */
static size_t report_utf8_len(const unsigned char *s, size_t avail)
{
	if (s[0] < 0x80)
		return 1;
	size_t n;
	unsigned min;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, min = 0x80;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, min = 0x800;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, min = 0x10000;
	else
		return 0;
	if (n > avail)
		return 0;
	unsigned cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void report_json_string(FILE *f, const char *s)
{
	report_json_string_n(f, s, strlen(s));
}

void report_json_string_n(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	fputc('"', f);
	while (p < end) {
		size_t n = report_utf8_len(p, (size_t)(end - p));
		if (n == 0 || *p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
			p++;
		} else if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
	fputc('"', f);
}

/* Where the spaces that lead s (n bytes) end and those that trail it start (both s when
 * it is all spaces), for report_needs_escape. */
struct report_span {
	const unsigned char *lead_end, *trail;
};

static struct report_span report_span_of(const unsigned char *s, size_t n)
{
	const unsigned char *end = s + n;
	struct report_span sp = { s, s };
	while (sp.lead_end < end && *sp.lead_end == ' ')
		sp.lead_end++;
	for (const unsigned char *p = sp.lead_end; p < end; p++)
		if (*p != ' ')
			sp.trail = p + 1;
	if (sp.trail < sp.lead_end)
		sp.trail = sp.lead_end;
	return sp;
}

/* Whether the byte at p goes out as \xHH: anything but printable ASCII (a NUL inside a
 * journaled name included), the backslash itself (so "\x0a" as four characters never
 * reads like an escaped newline), and a space that leads or trails (invisible at the end
 * of a column or a line). */
static bool report_needs_escape(const unsigned char *p, struct report_span sp)
{
	if (*p == '\\' || *p < 0x20 || *p >= 0x7f)
		return true;
	return *p == ' ' && (p < sp.lead_end || p >= sp.trail);
}

/* spaces_plain: between quotes, where a leading or trailing space is seen as it is. */
static void report_print(FILE *f, const char *s, bool spaces_plain)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	struct report_span sp = report_span_of(u, n);
	for (const unsigned char *p = u; p < u + n; p++) {
		if (report_needs_escape(p, sp) && !(spaces_plain && *p == ' '))
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

void report_print_escaped(FILE *f, const char *s)
{
	report_print(f, s, false);
}

void report_print_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	report_print(f, s, true);
	fputc('\'', f);
}

const char *report_escape_n(const char *s, size_t n, char *buf, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	struct report_span sp = report_span_of(u, n);
	size_t o = 0;
	for (const unsigned char *p = u; p < u + n && o + 1 < len; p++) {
		if (!report_needs_escape(p, sp)) {
			buf[o++] = (char)*p;
		} else {
			if (o + 5 > len)
				break;
			snprintf(buf + o, len - o, "\\x%02x", *p);
			o += 4;
		}
	}
	if (len)
		buf[o] = '\0';
	return buf;
}

const char *report_escape(const char *s, char *buf, size_t len)
{
	return report_escape_n(s, strlen(s), buf, len);
}

void report_print_text(FILE *f, const char *cmd, const char *path, const struct reclaim_report *r,
		       bool dry_run)
{
	fprintf(f, "%s: ", cmd);
	report_print_escaped(f, path);
	/* "kept: 5 unlinked" read as a contradiction: it is the directory that is kept. */
	fprintf(f, ": %s%s%s: ", r->status == RECLAIM_KEPT ? "directory " : "",
		reclaim_status_str(r->status), dry_run ? " (dry run)" : "");
	if (r->status == RECLAIM_REMOVED || r->status == RECLAIM_KEPT) {
		char hb[32];
		fprintf(f, "%u unlinked (%s), %u gone, %u kept in use, %u refused", r->unlinked,
			util_human_bytes(r->bytes, hb, sizeof(hb)), r->gone, r->in_use - r->adopted,
			r->refused);
		if (r->reused)
			fprintf(f, " (%u refused: name reused)", r->reused);
		if (r->adopted)
			fprintf(f, ", %u adopted", r->adopted);
		if (r->handed_over)
			fprintf(f, ", %u handed over to live managers", r->handed_over);
		if (r->young)
			fprintf(f, "; %u kept: not created yet (registered within the grace)",
				r->young);
		if (r->not_inspectable && r->not_inspectable_pid > 0)
			fprintf(f, "; %u kept: holder not inspectable (pid %d)", r->not_inspectable,
				(int)r->not_inspectable_pid);
		else if (r->not_inspectable)
			fprintf(f, "; %u kept: holder not inspectable (pid hidden by /proc)",
				r->not_inspectable);
		if (r->live_unreadable && r->live_unreadable_pid > 0)
			fprintf(f, "; %u kept: the journal of live manager pid %d cannot be read",
				r->live_unreadable, (int)r->live_unreadable_pid);
		else if (r->live_unreadable)
			fprintf(f,
				"; %u kept: the journal of a live manager (its pid is not visible "
				"here) cannot be read",
				r->live_unreadable);
		if (r->lease_held)
			fprintf(f,
				"; %u kept: open, says the kernel's lease, by a holder outside "
				"this view",
				r->lease_held);
		if (r->lease_unavailable)
			fprintf(f, "; %u kept: the kernel's lease could not be asked",
				r->lease_unavailable);
		if (r->earlier_boot)
			fputs("; journal from an earlier boot: its names name nothing now", f);
		if (r->status == RECLAIM_KEPT) {
			fputs("; ", f);
			report_print_escaped(f, r->detail);
		}
		fputc('\n', f);
		return;
	}
	report_print_escaped(f, r->detail);
	switch (r->status) {
	case RECLAIM_LIVE:
	case RECLAIM_STARTING:
	case RECLAIM_BUSY:
	case RECLAIM_UNSAFE:
	case RECLAIM_FOREIGN:
		fputs("; nothing touched", f);
		break;
	case RECLAIM_CORRUPT:
		fputs("; left in place for a human", f);
		break;
	default:
		break;
	}
	fputc('\n', f);
}

/* detail apart from r: a failure before reclaim_dir says why in a string of any length,
 * which r->detail (a fixed array) would cut. */
static void report_json_object(FILE *f, const char *path, const struct reclaim_report *r,
			       const char *detail, bool dry_run)
{
	fputs("{\"status\":", f);
	report_json_string(f, reclaim_status_str(r->status));
	fputs(",\"dir\":", f);
	report_json_string(f, path);
	if (r->owner == (uid_t)-1)
		fputs(",\"owner\":null", f);
	else
		fprintf(f, ",\"owner\":%u", (unsigned)r->owner);
	if (r->manager_pid > 0)
		fprintf(f, ",\"manager_pid\":%d", (int)r->manager_pid);
	else
		fputs(",\"manager_pid\":null", f);
	if (r->reclaimer_pid > 0)
		fprintf(f, ",\"reclaimer_pid\":%d", (int)r->reclaimer_pid);
	else
		fputs(",\"reclaimer_pid\":null", f);
	fprintf(f, ",\"earlier_boot\":%s,\"dry_run\":%s", r->earlier_boot ? "true" : "false",
		dry_run ? "true" : "false");
	fprintf(f,
		",\"unlinked\":%u,\"gone\":%u,\"in_use\":%u,\"adopted\":%u,\"refused\":%u,"
		"\"bytes\":%" PRIu64 ",\"name_reused\":%u,\"handed_over\":%u,\"young\":%u,"
		"\"detail\":",
		r->unlinked, r->gone, r->in_use, r->adopted, r->refused, r->bytes, r->reused,
		r->handed_over, r->young);
	report_json_string(f, detail);
	fprintf(f, ",\"not_inspectable\":%u", r->not_inspectable);
	if (r->not_inspectable && r->not_inspectable_pid > 0)
		fprintf(f, ",\"not_inspectable_pid\":%d", (int)r->not_inspectable_pid);
	else
		fputs(",\"not_inspectable_pid\":null", f);
	fprintf(f, ",\"live_unreadable\":%u", r->live_unreadable);
	if (r->live_unreadable && r->live_unreadable_pid > 0)
		fprintf(f, ",\"live_unreadable_pid\":%d", (int)r->live_unreadable_pid);
	else
		fputs(",\"live_unreadable_pid\":null", f);
	fprintf(f, ",\"lease_held\":%u,\"lease_unavailable\":%u", r->lease_held,
		r->lease_unavailable);
	fputc('}', f);
}

void report_print_json(FILE *f, const char *path, const struct reclaim_report *r, bool dry_run)
{
	report_json_object(f, path, r, r->detail, dry_run);
}

void report_print_json_error(FILE *f, const char *path, const char *why, bool dry_run)
{
	struct reclaim_report r;
	memset(&r, 0, sizeof(r));
	r.status = RECLAIM_ERROR;
	r.owner = (uid_t)-1; /* unknown: null in the document */
	report_json_object(f, path, &r, why, dry_run);
}

void report_totals_text(FILE *f, const char *cmd, const struct report_totals *t, bool dry_run)
{
	char hb[32], bases[64] = "", failed[96] = "", busy[96] = "";
	const unsigned *s = t->by_status;
	/* A pattern's match left unvisited needs a human as an unsafe directory does: a
	 * summary saying "0 for a human" then would hide it (stderr often goes nowhere). */
	if (t->unsafe_bases)
		snprintf(bases, sizeof(bases), ", %u unsafe temp base%s", t->unsafe_bases,
			 t->unsafe_bases == 1 ? "" : "s");
	/* A base that could not be read fails the sweep (exit 1): a summary saying
	 * "0 failed" then contradicted the exit status. */
	if (t->failed_bases)
		snprintf(failed, sizeof(failed), " (%u director%s, %u temp base%s not read)",
			 s[RECLAIM_ERROR], s[RECLAIM_ERROR] == 1 ? "y" : "ies", t->failed_bases,
			 t->failed_bases == 1 ? "" : "s");
	/* Directories another reclaimer was reclaiming are neither live nor failed: named
	 * when there are some (the line as it always was otherwise). */
	if (s[RECLAIM_BUSY])
		snprintf(busy, sizeof(busy), ", %u busy (another reclaimer's)", s[RECLAIM_BUSY]);
	/* Findings (a directory for a human) and failures are told apart: only failures
	 * make the sweep exit 1, and "skipped" for both hid which was which. */
	fprintf(f,
		"%s%s: %u director%s: %u removed, %u kept, %u live, %u starting%s, "
		"%u for a human (%u unsafe, %u corrupt, %u foreign%s), %u failed%s; "
		"%u object%s unlinked (%s), %u gone, %u in use, %u refused",
		cmd, dry_run ? " (dry run)" : "", t->dirs, t->dirs == 1 ? "y" : "ies",
		s[RECLAIM_REMOVED], s[RECLAIM_KEPT], s[RECLAIM_LIVE], s[RECLAIM_STARTING], busy,
		s[RECLAIM_UNSAFE] + s[RECLAIM_CORRUPT] + s[RECLAIM_FOREIGN] + t->unsafe_bases,
		s[RECLAIM_UNSAFE], s[RECLAIM_CORRUPT], s[RECLAIM_FOREIGN], bases,
		s[RECLAIM_ERROR] + t->failed_bases, failed, t->unlinked,
		t->unlinked == 1 ? "" : "s", util_human_bytes(t->bytes, hb, sizeof(hb)), t->gone,
		t->in_use, t->refused);
	if (t->reused)
		fprintf(f, " (%u refused: name reused)", t->reused);
	if (t->adopted)
		fprintf(f, ", %u adopted", t->adopted);
	if (t->handed_over)
		fprintf(f, ", %u handed over to live managers", t->handed_over);
	if (t->young)
		fprintf(f, ", %u kept: not created yet", t->young);
	if (t->not_inspectable)
		fprintf(f, ", %u kept: holder not inspectable", t->not_inspectable);
	if (t->live_unreadable)
		fprintf(f, ", %u kept: a live manager's journal cannot be read",
			t->live_unreadable);
	if (t->lease_held)
		fprintf(f,
			", %u kept: open, says the kernel's lease, by a holder outside this view",
			t->lease_held);
	if (t->lease_unavailable)
		fprintf(f, ", %u kept: the kernel's lease could not be asked",
			t->lease_unavailable);
	fputc('\n', f);
}

void report_totals_json(FILE *f, const struct report_totals *t)
{
	fprintf(f, "{\"dirs\":%u", t->dirs);
	for (int st = RECLAIM_REMOVED; st <= RECLAIM_ERROR; st++)
		fprintf(f, ",\"%s\":%u", reclaim_status_str((enum reclaim_status)st),
			t->by_status[st]);
	fprintf(f,
		",\"unlinked\":%u,\"gone\":%u,\"in_use\":%u,\"adopted\":%u,\"refused\":%u,"
		"\"bytes\":%" PRIu64 ",\"name_reused\":%u,\"handed_over\":%u,"
		"\"not_inspectable\":%u,\"live_unreadable\":%u,\"young\":%u,\"unsafe_bases\":%u,"
		"\"failed_bases\":%u,\"lease_held\":%u,\"lease_unavailable\":%u}",
		t->unlinked, t->gone, t->in_use, t->adopted, t->refused, t->bytes, t->reused,
		t->handed_over, t->not_inspectable, t->live_unreadable, t->young, t->unsafe_bases,
		t->failed_bases, t->lease_held, t->lease_unavailable);
}
