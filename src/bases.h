/* bases.h — which temp bases a host-wide command visits, and whether a base a pattern
 * matched may be visited at all.
 *
 * The bases are --tmpdir (one base or pattern), else $SHMWARDEN_TMPDIRS (colon-separated,
 * like PATH; empty entries skipped), else the temp base (util_tmpbase: $TMPDIR ... /tmp).
 * An entry of --tmpdir or the variable holding an unescaped *, ? or [ is a glob(3)
 * pattern, so that one setting covers the per-job directories batch systems make
 * (/tmp/slurm.*, /scratch/ * / *); a pattern that matches nothing is its own text
 * (glob's GLOB_NOCHECK), visited when that is a directory that passes the checks of a
 * match, so that --tmpdir 'job[1]' still reaches a directory so named. The temp base is
 * always literal: it is where the managers made their directories, whatever it holds.
 * --tmpdir may be relative (to the working directory of whoever typed it); an entry of
 * SHMWARDEN_TMPDIRS may not (cron, the timer and the epilog read it from wherever they
 * run). An unescaped '{' is refused in any entry: glob(3) has no brace expansion, and a
 * literal /a/job.{1,2} would otherwise fail later as a missing directory.
 *
 * A literal base is opened as given, symlinks followed (the admin named it), as before.
 * A base a pattern matched was named by whoever created it, so it is opened component by
 * component from the pattern's fixed leading directory (bases_entry_prefix) without following
 * any symlink, and it is visited only when every component it adds is a directory owned
 * by root or by the match's owner and not writable by group or others unless sticky:
 * the rule util_path_trusted applies to every manager directory's path, checked once
 * for the base so that a hostile match is reported once and never read. A directory is
 * visited once however many entries reach it (device and inode). Nothing below this
 * module changes: each manager directory in a base is still probed as ever (mgrdir.h).
 */
#ifndef SHMWARDEN_BASES_H
#define SHMWARDEN_BASES_H

#include <glob.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define BASES_ENV "SHMWARDEN_TMPDIRS"

/* What became of one base. */
enum base_state {
	BASE_OPEN,   /* fd is the base's directory: visit it */
	BASE_UNSAFE, /* a match that is a symlink, or that someone else could change: why
		      * says; never read (a finding, not a failure) */
	BASE_ERROR,  /* a literal base that cannot be opened, or a pattern glob(3) could
		      * not expand: why says (a failure) */
};

struct base {
	enum base_state state;
	bool matched;        /* found by a pattern (else named literally) */
	int fd;              /* BASE_OPEN: O_DIRECTORY, the caller closes it; else -1 */
	uid_t owner;         /* BASE_OPEN: the directory's owner */
	char path[PATH_MAX]; /* as named or matched: what reports show */
	char why[PATH_MAX + 200];
};

struct bases_seen {
	dev_t dev;
	ino_t ino;
};

/* A match that was not visited, as reports list it. */
struct bases_unsafe {
	char path[PATH_MAX];
	char why[PATH_MAX + 200];
};

/* The entries, and where the walk through them is. */
struct bases {
	char **specs; /* owned */
	size_t nspecs;
	char *text; /* owned: the entries joined with ':', whole however many (reports) */
	/* where the entries came from, for messages and reports: "--tmpdir",
	 * "SHMWARDEN_TMPDIRS", the variable util_tmpbase() took ("TMPDIR"...), or
	 * "default" (/tmp) */
	const char *from;
	bool literal; /* the entries are the temp base: a path, never a pattern */
	size_t next_spec;
	glob_t g; /* the current pattern's matches */
	bool globbed;
	size_t next_match;
	/* (uid_t)-1: any owner; else matches of other users (not root) are skipped, as
	 * nothing of only_uid's in them could be trusted */
	uid_t only_uid;
	struct bases_seen *seen; /* the directories visited so far */
	size_t nseen, capseen;
	unsigned skipped; /* matches skipped silently: gone, not directories, other users' */
	struct bases_unsafe *unsafe; /* every BASE_UNSAFE bases_next returned, in order */
	unsigned nunsafe;
};

/* Whether entry i of b is a pattern: never for the temp base (b->literal). */
bool bases_entry_is_pattern(const struct bases *b, size_t i);

/* The fixed leading directory of entry i of b, under which all its matches lie: its
 * components before the first that holds a metacharacter or a backslash ("/tmp" for
 * "/tmp/slurm.*", "/" for "/ *", "." for a relative pattern whose first component
 * matches); the entry itself when it is literal (b->literal, or no pattern). */
void bases_entry_prefix(const struct bases *b, size_t i, char *out, size_t outlen);

/* Fills b with the bases of tmpdir (may be NULL), else of $SHMWARDEN_TMPDIRS, else of
 * util_tmpbase() (literal, not checked: it is the managers' own, which made their
 * directories under it as named); every other entry checked for what glob(3) would
 * silently read otherwise (an empty entry, an unescaped '{' in any entry: no brace
 * expansion; in a pattern an unmatched '[', a trailing '\' and "**": no recursive
 * match), an entry of the variable also
 * for being absolute, and a tmpdir holding ':' whose directory does not exist is taken
 * for a list (--tmpdir takes one base). 0, or -1 with err (a usage error: exit 2),
 * which names where the entry came from. */
int bases_init(struct bases *b, const char *tmpdir, uid_t only_uid, char *err, size_t errlen);

/* The next base: 1 with *base filled (its state says what to do), 0 when there is none
 * left. Pattern entries are expanded when reached, each match opened and checked as
 * above; matches that are gone, not directories, or (only_uid) of another user are
 * skipped. A BASE_UNSAFE one is also kept in b->unsafe for the report (out of memory:
 * not kept, and nunsafe counts only what was). */
int bases_next(struct bases *b, struct base *base);

/* b->unsafe as the JSON array of the ls and sweep documents:
 * [{"base": PATH, "why": TEXT}, ...]. */
void bases_print_unsafe_json(FILE *f, const struct bases *b);

void bases_free(struct bases *b);

/* The bases a host-wide command holds open while it works: every one is opened before
 * the first is read, because a live manager our /proc does not show is found by its lock
 * in any of them (livemgr.h). fds[i] and paths[i] are one base, in the order kept. */
struct bases_open {
	int *fds;     /* owned: bases_open_free closes them */
	char **paths; /* owned: copies of struct base's path, for reports */
	size_t n, cap;
};

/* Keeps base->fd (a BASE_OPEN base's) and a copy of base->path in o: 0, or -1 with errno
 * ENOMEM and nothing kept, base->fd still the caller's to close. */
int bases_keep(struct bases_open *o, const struct base *base);

/* Closes every descriptor kept and frees the paths and arrays; o is empty after. */
void bases_open_free(struct bases_open *o);

#endif
