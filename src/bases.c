/* bases.c — the temp bases a host-wide command visits (see bases.h).
 *
 * glob(3) finds the matches; it follows symlinks and says nothing of who could change
 * what it found, so each match is opened again here, one component at a time from the
 * pattern's fixed prefix with O_NOFOLLOW, and judged on the descriptors: what is then
 * visited is exactly what was checked, whatever is renamed meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bases.h"
#include "log.h"
#include "report.h"
#include "util.h"

/* True when s holds an unescaped *, ? or [. */
static bool bases_is_pattern(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' && s[1])
			s++;
		else if (*s == '*' || *s == '?' || *s == '[')
			return true;
	}
	return false;
}

bool bases_entry_is_pattern(const struct bases *b, size_t i)
{
	return !b->literal && bases_is_pattern(b->specs[i]);
}

/* 0 when s is a base or a pattern we read as glob(3) does; -1 with err for what glob(3)
 * would silently read otherwise (bases_init in bases.h). */
static int bases_check(const char *s, char *err, size_t errlen)
{
	if (!*s) {
		util_err(err, errlen, "an empty temp base");
		return -1;
	}
	/* A literal base too long is the kernel's to refuse when it is opened (exit 1, as
	 * for any base that cannot be opened). */
	bool pattern = bases_is_pattern(s);
	if (pattern && strlen(s) >= PATH_MAX) {
		util_err(err, errlen, "a pattern of %zu bytes (the limit is %d)", strlen(s),
			 PATH_MAX - 1);
		return -1;
	}
	for (const char *p = s; *p; p++) {
		if (*p == '\\') {
			if (!p[1]) {
				if (!pattern)
					break; /* a literal base is opened as written */
				util_err(err, errlen, "a pattern ending in a lone '\\'");
				return -1;
			}
			p++;
		} else if (*p == '{') {
			/* In any entry: /a/job.{1,2} means two directories to whoever wrote
			 * it, and as a literal it would fail later as one missing directory. */
			util_err(err, errlen,
				 "'{' in a %s: glob(3) has no brace expansion (give each "
				 "directory as its own entry: A:B; a name that holds '{' is "
				 "matched by [{])",
				 pattern ? "pattern" : "temp base");
			return -1;
		} else if (!pattern) {
			continue;
		} else if (*p == '*' && p[1] == '*') {
			util_err(err, errlen,
				 "'**' in a pattern: glob(3) has no recursive match (write one "
				 "'*' per directory level, e.g. /scratch/*/*)");
			return -1;
		} else if (*p == '[') {
			/* fnmatch's bracket: "[!" or "[^" may open it, and a ']' right after
			 * the opening is a member, not the end; a '/' ends the component. */
			const char *q = p + 1;
			if (*q == '!' || *q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']' && *q != '/')
				q++;
			if (*q != ']') {
				util_err(err, errlen, "an unmatched '[' in a pattern");
				return -1;
			}
			p = q;
		}
	}
	return 0;
}

/* The pattern's fixed leading directory (bases_entry_prefix in bases.h); a literal base
 * is its own prefix. */
static void bases_prefix(const char *s, char *out, size_t outlen)
{
	if (!bases_is_pattern(s)) {
		util_strlcpy(out, s, outlen);
		return;
	}
	/* Up to the last '/' before the first metacharacter or escape (glob unescapes;
	 * the prefix is opened verbatim). */
	size_t first = strcspn(s, "*?[\\"), slash = first;
	while (slash > 0 && s[slash - 1] != '/')
		slash--;
	if (slash == 0)
		util_strlcpy(out, ".", outlen); /* relative, its first component matches */
	else if (slash == 1)
		util_strlcpy(out, "/", outlen);
	else
		snprintf(out, outlen, "%.*s", (int)(slash - 1), s);
}

void bases_entry_prefix(const struct bases *b, size_t i, char *out, size_t outlen)
{
	if (b->literal)
		util_strlcpy(out, b->specs[i], outlen);
	else
		bases_prefix(b->specs[i], out, outlen);
}

/* Splits list at ':' into b->specs, skipping empty entries. */
static int bases_split(struct bases *b, const char *list, char *err, size_t errlen)
{
	size_t n = 1;
	for (const char *p = list; *p; p++)
		n += *p == ':';
	b->specs = calloc(n, sizeof(*b->specs));
	if (!b->specs) {
		util_err(err, errlen, "out of memory");
		return -1;
	}
	const char *p = list;
	for (;;) {
		const char *e = strchr(p, ':');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len) {
			if (!(b->specs[b->nspecs] = strndup(p, len))) {
				util_err(err, errlen, "out of memory");
				return -1;
			}
			b->nspecs++;
		}
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

static int bases_add(struct bases *b, const char *spec, char *err, size_t errlen)
{
	char **p = realloc(b->specs, (b->nspecs + 1) * sizeof(*p));
	if (!p || !(p[b->nspecs] = strdup(spec))) {
		if (p)
			b->specs = p;
		util_err(err, errlen, "out of memory");
		return -1;
	}
	b->specs = p;
	b->nspecs++;
	return 0;
}

/* The entry, control bytes shown, for a message. */
static const char *bases_show(const char *spec, char *esc, size_t len)
{
	size_t k = 0;
	for (const char *p = spec; *p && k + 5 < len; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f)
			k += (size_t)snprintf(esc + k, len - k, "\\x%02x", c);
		else
			esc[k++] = (char)c;
	}
	esc[k] = '\0';
	return esc;
}

static int bases_describe(struct bases *b, char *err, size_t errlen);

int bases_init(struct bases *b, const char *tmpdir, uid_t only_uid, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	b->only_uid = only_uid;
	const char *env = getenv(BASES_ENV);
	char esc[1100];
	if (tmpdir) {
		b->from = "--tmpdir";
		/* --tmpdir A:B would be one directory named "A:B", missing: the user meant
		 * a list, which only the variable is. (A directory whose name holds ':'
		 * and exists is taken as named.) */
		char prefix[PATH_MAX];
		struct stat st;
		bases_prefix(tmpdir, prefix, sizeof(prefix));
		if (strchr(tmpdir, ':') && stat(prefix, &st) < 0 && errno == ENOENT) {
			util_err(err, errlen,
				 "--tmpdir takes one temp base (or pattern), and '%s' holds ':' "
				 "and does not exist: for several, set " BASES_ENV "=A:B",
				 bases_show(tmpdir, esc, sizeof(esc)));
			return -1;
		}
		if (bases_add(b, tmpdir, err, errlen) < 0)
			return -1;
	} else if (env && *env) {
		b->from = BASES_ENV;
		if (bases_split(b, env, err, errlen) < 0)
			return -1;
	}
	if (!b->nspecs) {
		/* The managers made their directories under this path as it is written
		 * (TMPDIR=/scratch/job[1] included): read as a pattern, it named other
		 * directories or none, and their leaks were never found. Nor is a '{' in
		 * it a list someone meant. */
		b->from = util_tmpbase_var() ? util_tmpbase_var() : "default";
		b->literal = true;
		if (bases_add(b, util_tmpbase(), err, errlen) < 0)
			return -1;
		return bases_describe(b, err, errlen);
	}
	bool from_env = strcmp(b->from, BASES_ENV) == 0;
	for (size_t i = 0; i < b->nspecs; i++) {
		char why[300];
		int rc = bases_check(b->specs[i], why, sizeof(why));
		/* Read by root's cron and timer: a relative entry would mean wherever they
		 * happen to run. (--tmpdir was typed somewhere: its directory is meant.) */
		if (rc == 0 && from_env && b->specs[i][0] != '/') {
			util_strlcpy(why,
				     "not an absolute path (cron, the timer and the epilog read it "
				     "from any directory; --tmpdir takes a relative one)",
				     sizeof(why));
			rc = -1;
		}
		if (rc < 0) {
			/* Where the entry came from: the setting to fix. */
			bool var = !from_env && strcmp(b->from, "--tmpdir") != 0 &&
				   strcmp(b->from, "default") != 0;
			util_err(err, errlen, "%s%s: %s: '%s'",
				 strcmp(b->from, "default") == 0 ? "the temp base" : b->from,
				 var ? " (the temp base)" : "", why,
				 bases_show(b->specs[i], esc, sizeof(esc)));
			return -1;
		}
	}
	return bases_describe(b, err, errlen);
}

/* b->text: the entries joined with ':'. A fixed buffer (PATH_MAX) cut a long list, and
 * a base missing from ls's and sweep's header read as a base not looked in. */
static int bases_describe(struct bases *b, char *err, size_t errlen)
{
	size_t len = 1;
	for (size_t i = 0; i < b->nspecs; i++)
		len += strlen(b->specs[i]) + 1;
	char *t = malloc(len);
	if (!t) {
		util_err(err, errlen, "out of memory");
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < b->nspecs; i++) {
		size_t n = strlen(b->specs[i]);
		if (i)
			t[k++] = ':';
		memcpy(t + k, b->specs[i], n);
		k += n;
	}
	t[k] = '\0';
	b->text = t;
	return 0;
}

/* Whether this directory was visited already; remembers it if not. */
static bool bases_seen_before(struct bases *b, const struct stat *st)
{
	for (size_t i = 0; i < b->nseen; i++)
		if (b->seen[i].dev == st->st_dev && b->seen[i].ino == st->st_ino)
			return true;
	if (b->nseen == b->capseen) {
		size_t cap = b->capseen ? 2 * b->capseen : 64;
		void *p = realloc(b->seen, cap * sizeof(*b->seen));
		if (!p)
			return false; /* visited twice at worst: reclaim is idempotent */
		b->seen = p;
		b->capseen = cap;
	}
	b->seen[b->nseen].dev = st->st_dev;
	b->seen[b->nseen].ino = st->st_ino;
	b->nseen++;
	return false;
}

static void bases_set(struct base *base, enum base_state st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void bases_set(struct base *base, enum base_state st, const char *fmt, ...)
{
	va_list ap;
	base->state = st;
	va_start(ap, fmt);
	vsnprintf(base->why, sizeof(base->why), fmt, ap);
	va_end(ap);
}

/* The trust rule of util_path_trusted, for a component that a pattern matched. */
static const char *bases_untrusted(const struct stat *st, uid_t owner)
{
	if (!S_ISDIR(st->st_mode))
		return "is not a directory";
	if (st->st_uid != 0 && st->st_uid != owner)
		return "belongs to another user";
	if ((st->st_mode & 022) && !(st->st_mode & S_ISVTX))
		return "is writable by group or others";
	return NULL;
}

/* Opens a match of pattern spec (its prefix, then each later component, O_NOFOLLOW)
 * and judges it. Returns 1 with base filled, 0 to skip it silently. */
static int bases_open_match(struct bases *b, const char *spec, const char *match, struct base *base)
{
	char prefix[PATH_MAX];
	bases_prefix(spec, prefix, sizeof(prefix));
	size_t plen = strlen(prefix);
	const char *rest;
	/* glob builds a match from the pattern's own text, so it starts with the prefix;
	 * a relative pattern's prefix "." is not written in its matches. */
	if (strcmp(prefix, ".") == 0 && strncmp(match, "./", 2) != 0)
		rest = match;
	else if (strncmp(match, prefix, plen) == 0 &&
		 (match[plen] == '/' || match[plen] == '\0' || prefix[plen - 1] == '/'))
		rest = match + plen;
	else
		return 0;
	util_strlcpy(base->path, match, sizeof(base->path));
	base->matched = true;
	int fd = open(prefix, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* gone since glob read it */
	struct stat comps[64];
	char names[64][NAME_MAX + 1];
	size_t n = 0;
	const char *p = rest;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, "/");
		if (n == sizeof(comps) / sizeof(comps[0]) || len > NAME_MAX) {
			close(fd);
			bases_set(base, BASE_UNSAFE, "too deep or too long a match; not visited");
			return 1;
		}
		memcpy(names[n], p, len);
		names[n][len] = '\0';
		p += len;
		if (strcmp(names[n], "..") == 0 || strcmp(names[n], ".") == 0) {
			close(fd);
			bases_set(base, BASE_UNSAFE, "'%s' in a match; not visited", names[n]);
			return 1;
		}
		int next = openat(fd, names[n], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int saved = errno;
			struct stat st;
			bool link = fstatat(fd, names[n], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISLNK(st.st_mode);
			close(fd);
			if (link) {
				bases_set(base, BASE_UNSAFE, "%s is a symlink; not followed",
					  names[n]);
				return 1;
			}
			/* Gone, a file the pattern also matched, or (not root) a directory we
			 * may not enter, which then holds nothing of ours. */
			log_info("bases: %s: %s; skipped", match, strerror(saved));
			return 0;
		}
		close(fd);
		fd = next;
		if (fstat(fd, &comps[n]) < 0) {
			close(fd);
			return 0;
		}
		n++;
	}
	if (n == 0) {
		close(fd);
		return 0; /* the prefix itself: named by the pattern's text, not matched */
	}
	uid_t owner = comps[n - 1].st_uid;
	for (size_t i = 0; i < n; i++) {
		const char *why = bases_untrusted(&comps[i], owner);
		if (why) {
			close(fd);
			bases_set(base, BASE_UNSAFE,
				  "%s %s (uid %u, mode %04o): it could be replaced under the "
				  "sweep; not visited",
				  names[i], why, (unsigned)comps[i].st_uid,
				  (unsigned)(comps[i].st_mode & 07777));
			return 1;
		}
	}
	/* A user's directories hold nothing another user's reclaim could trust (the path
	 * rule above, applied to every manager directory): not even a finding. */
	if (b->only_uid != (uid_t)-1 && owner != 0 && owner != b->only_uid) {
		close(fd);
		return 0;
	}
	if (bases_seen_before(b, &comps[n - 1])) {
		close(fd);
		return 0;
	}
	base->state = BASE_OPEN;
	base->fd = fd;
	base->owner = owner;
	return 1;
}

static int bases_glob_error(const char *path, int err)
{
	log_info("bases: %s: %s; not searched", path, strerror(err));
	return 0; /* go on with the rest */
}

static int bases_next_one(struct bases *b, struct base *base)
{
	for (;;) {
		memset(base, 0, sizeof(*base));
		base->fd = -1;
		if (b->globbed) {
			const char *spec = b->specs[b->next_spec - 1];
			while (b->next_match < b->g.gl_pathc) {
				const char *m = b->g.gl_pathv[b->next_match++];
				if (bases_open_match(b, spec, m, base))
					return 1;
				b->skipped++;
				memset(base, 0, sizeof(*base));
				base->fd = -1;
			}
			globfree(&b->g);
			b->globbed = false;
		}
		if (b->next_spec == b->nspecs)
			return 0;
		const char *spec = b->specs[b->next_spec++];
		util_strlcpy(base->path, spec, sizeof(base->path));
		if (bases_entry_is_pattern(b, b->next_spec - 1)) {
			int rc = glob(spec, GLOB_ONLYDIR, bases_glob_error, &b->g);
			if (rc == GLOB_NOMATCH) {
				globfree(&b->g);
				/* GLOB_NOCHECK's answer: the pattern's own text, for a directory
				 * named job[1] that --tmpdir 'job[1]' was meant to reach. It is
				 * judged as a match is (named by whoever made it), never just
				 * followed; when it is no directory, the pattern matched
				 * nothing, which is no error. */
				if (bases_open_match(b, spec, spec, base))
					return 1;
				memset(base, 0, sizeof(*base));
				base->fd = -1;
				log_info("bases: %s matches nothing", spec);
				continue;
			}
			if (rc != 0) {
				globfree(&b->g);
				bases_set(base, BASE_ERROR, "cannot expand the pattern %s: %s",
					  spec,
					  rc == GLOB_NOSPACE ? "out of memory" : "read error");
				return 1;
			}
			b->globbed = true;
			b->next_match = 0;
			continue;
		}
		int fd = open(spec, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			int saved = errno;
			if (fd >= 0)
				close(fd);
			/* Named by where it came from: the fix is there. */
			bool dflt = strcmp(b->from, "default") == 0;
			bases_set(base, BASE_ERROR,
				  "cannot open the temp base %.1024s (%s%s): %s%s", spec,
				  dflt ? "the default" : "from ", dflt ? "" : b->from,
				  strerror(saved),
				  saved != ENOENT ? ""
				  : strcmp(b->from, BASES_ENV) == 0
					  ? " (correct or remove that entry of " BASES_ENV ")"
				  : strcmp(b->from, "--tmpdir") == 0
					  ? " (name the directory the managers use: their TMPDIR)"
					  : " (give --tmpdir the directory the managers use, or "
					    "set " BASES_ENV ")");
			return 1;
		}
		if (bases_seen_before(b, &st)) {
			close(fd);
			continue;
		}
		base->state = BASE_OPEN;
		base->fd = fd;
		base->owner = st.st_uid;
		return 1;
	}
}

int bases_next(struct bases *b, struct base *base)
{
	int rc = bases_next_one(b, base);
	if (rc == 1 && base->state == BASE_UNSAFE) {
		void *grown = realloc(b->unsafe, (b->nunsafe + 1) * sizeof(*b->unsafe));
		if (grown) {
			b->unsafe = grown;
			util_strlcpy(b->unsafe[b->nunsafe].path, base->path,
				     sizeof(b->unsafe[0].path));
			util_strlcpy(b->unsafe[b->nunsafe].why, base->why,
				     sizeof(b->unsafe[0].why));
			b->nunsafe++;
		}
	}
	return rc;
}

void bases_print_unsafe_json(FILE *f, const struct bases *b)
{
	fputc('[', f);
	for (unsigned i = 0; i < b->nunsafe; i++) {
		fputs(i ? ",{\"base\":" : "{\"base\":", f);
		report_json_string(f, b->unsafe[i].path);
		fputs(",\"why\":", f);
		report_json_string(f, b->unsafe[i].why);
		fputc('}', f);
	}
	fputc(']', f);
}

void bases_free(struct bases *b)
{
	if (b->globbed)
		globfree(&b->g);
	for (size_t i = 0; i < b->nspecs; i++)
		free(b->specs[i]);
	free(b->specs);
	free(b->text);
	free(b->seen);
	free(b->unsafe);
	memset(b, 0, sizeof(*b));
}

int bases_keep(struct bases_open *o, const struct base *base)
{
	if (o->n == o->cap) {
		size_t ncap = o->cap ? 2 * o->cap : 16;
		int *nf = realloc(o->fds, ncap * sizeof(*nf));
		if (!nf)
			return -1;
		o->fds = nf;
		char **np = realloc(o->paths, ncap * sizeof(*np));
		if (!np)
			return -1;
		o->paths = np;
		o->cap = ncap;
	}
	char *path = strdup(base->path);
	if (!path)
		return -1;
	o->paths[o->n] = path;
	o->fds[o->n++] = base->fd;
	return 0;
}

void bases_open_free(struct bases_open *o)
{
	for (size_t i = 0; i < o->n; i++) {
		close(o->fds[i]);
		free(o->paths[i]);
	}
	free(o->fds);
	free(o->paths);
	memset(o, 0, sizeof(*o));
}
