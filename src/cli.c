/* cli.c — the subcommands' command lines (cli.h): getopt_long with opterr off, and our
 * own sentence for each refusal, since getopt's messages name argv[0] (the subcommand)
 * and echo the offending word unescaped to a terminal. A refusal is two lines, as in GNU
 * coreutils: what was wrong, then "Try 'PROG --help' for more information." */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "report.h"
#include "util.h"

void cli_init(struct cli *c, const char *prog, const struct cli_opt *opts, bool stop_at_operand)
{
	memset(c, 0, sizeof(*c));
	c->prog = prog;
	c->opts = opts;
	while (opts[c->nopts].name && c->nopts < CLI_MAX_OPTS) {
		const struct cli_opt *o = &opts[c->nopts];
		c->longopts[c->nopts] = (struct option){
			.name = o->name,
			.has_arg = o->value ? required_argument : no_argument,
			.val = o->val,
		};
		c->nopts++;
	}
	/* ':' first: a missing value comes back as ':' and getopt prints nothing. Every
	 * option whose val is a letter is also that short option (-h, -V). */
	size_t n = util_strlcpy(c->shortopts, stop_at_operand ? "+:" : ":", sizeof(c->shortopts));
	for (int i = 0; i < c->nopts && n + 2 < sizeof(c->shortopts); i++) {
		if (opts[i].val < 'A' || opts[i].val > 'z')
			continue;
		c->shortopts[n++] = (char)opts[i].val;
		if (opts[i].value)
			c->shortopts[n++] = ':';
		c->shortopts[n] = '\0';
	}
	optind = 0; /* glibc: a full restart, permutation state included */
	opterr = 0;
}

static int cli_index(const struct cli *c, int val)
{
	for (int i = 0; i < c->nopts; i++)
		if (c->opts[i].val == val)
			return i;
	return -1;
}

/* GNU's second line of a usage error: where the whole story is. */
static void cli_try_help(const struct cli *c)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", c->prog);
}

/* "PROG: [--NAME ]WHAT'ARG'" and the pointer to --help; no --NAME when i < 0, no 'ARG' when NULL. */
static int cli_print(const struct cli *c, int i, const char *what, const char *arg)
{
	fprintf(stderr, "%s: ", c->prog);
	if (i >= 0)
		fprintf(stderr, "--%s ", c->opts[i].name);
	fputs(what, stderr);
	if (arg) {
		report_print_quoted(stderr, arg);
	}
	fputc('\n', stderr);
	cli_try_help(c);
	return 2;
}

int cli_usage_error(const struct cli *c, const char *what, const char *arg)
{
	return cli_print(c, -1, what, arg);
}

/* An unknown long option, or an ambiguous one: its name (before any '=') begins two of
 * ours, and getopt would not guess. */
static void cli_unknown_long(const struct cli *c, const char *word)
{
	size_t len = strcspn(word + 2, "=");
	int n = 0;
	for (int i = 0; i < c->nopts; i++)
		n += strncmp(c->opts[i].name, word + 2, len) == 0;
	if (n < 2 || len == 0) {
		cli_usage_error(c, "unknown option ", word);
		return;
	}
	fprintf(stderr, "%s: ambiguous option ", c->prog);
	report_print_quoted(stderr, word);
	fputs(": ", stderr);
	for (int i = 0, k = 0; i < c->nopts; i++)
		if (strncmp(c->opts[i].name, word + 2, len) == 0)
			fprintf(stderr, "%s--%s", k++ ? " or " : "", c->opts[i].name);
	fputs("?\n", stderr);
	cli_try_help(c);
}

int cli_next(struct cli *c, int argc, char **argv)
{
	c->value = NULL;
	int opt = getopt_long(argc, argv, c->shortopts, c->longopts, NULL);
	if (opt == -1)
		return -1;
	/* For a long option getopt has stepped past the word it refused. */
	const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	if (opt == ':') {
		int i = cli_index(c, optopt);
		if (i < 0) {
			cli_usage_error(c, "an option needs a value", NULL);
			return CLI_ERROR;
		}
		char what[128];
		snprintf(what, sizeof(what), "needs %s", c->opts[i].value);
		cli_print(c, i, what, NULL);
		return CLI_ERROR;
	}
	if (opt == '?') {
		/* optopt: 0 for an unknown long option, the val of a flag given a value (vals
		 * of long options are >= 256, or 'h'), else the unknown short character. */
		int i = optopt ? cli_index(c, optopt) : -1;
		if (optopt == 0)
			cli_unknown_long(c, word);
		else if (i >= 0 && (optopt >= 256 || strncmp(word, "--", 2) == 0))
			cli_print(c, i, "takes no value, got ", word);
		else {
			char shortopt[3] = { '-', (char)optopt, '\0' };
			cli_usage_error(c, "unknown option ", shortopt);
		}
		return CLI_ERROR;
	}
	int i = cli_index(c, opt);
	if (i < 0 || !c->opts[i].value)
		return opt;
	c->value = optarg;
	if (!*optarg) {
		char what[128];
		snprintf(what, sizeof(what), "needs %s, not an empty string", c->opts[i].value);
		cli_print(c, i, what, NULL);
		return CLI_ERROR;
	}
	/* `--tmpdir --json`: getopt takes the next word as the value whatever it is. A word
	 * that is itself an option is far likelier a forgotten value than a directory. */
	if (optarg == argv[optind - 1] && strncmp(optarg, "--", 2) == 0 && optarg[2]) {
		fprintf(stderr, "%s: --%s needs %s, but the next word is the option ", c->prog,
			c->opts[i].name, c->opts[i].value);
		report_print_quoted(stderr, optarg);
		fprintf(stderr, " (for a value that begins with --, write --%s=VALUE)\n",
			c->opts[i].name);
		cli_try_help(c);
		return CLI_ERROR;
	}
	if (c->seen[i]) {
		cli_print(c, i, "is given twice (it takes one value); the second is ", optarg);
		return CLI_ERROR;
	}
	c->seen[i] = true;
	return opt;
}

int cli_number(const char *s, long long min, long long max, long long *out)
{
	long long v = 0;
	if (!*s)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		int d = *p - '0';
		if (v > max / 10 || v * 10 > max - d)
			return -1; /* past max, tested before long long could overflow */
		v = v * 10 + d;
	}
	if (v < min)
		return -1;
	*out = v;
	return 0;
}

/* "--NAME needs VALUE from MIN to MAX, got 'ARG'" for what cli_number refused. 2. */
static int cli_bad_number(const struct cli *c, int val, long long min, long long max)
{
	int i = cli_index(c, val);
	char what[256];
	snprintf(what, sizeof(what), "needs %s from %lld to %lld, got ",
		 i >= 0 && c->opts[i].value ? c->opts[i].value : "a number", min, max);
	if (i < 0)
		return cli_usage_error(c, what, c->value ? c->value : "");
	return cli_print(c, i, what, c->value ? c->value : "");
}

int cli_value_number(const struct cli *c, int val, long long min, long long max, long long *out)
{
	long long v;
	if (cli_number(c->value, min, max, &v) < 0)
		return cli_bad_number(c, val, min, max);
	*out = v;
	return 0;
}

/* Whether a held SIGPIPE is pending: a write went to a pipe or socket nobody reads. */
static bool cli_sigpipe_pending(void)
{
	sigset_t pending;
	return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

int cli_flush_stdout(const char *prog)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	/* A write that failed before this flush left only the flag: its errno is gone. */
	int saved = errno, rc = 1;
	if (!cli_sigpipe_pending()) {
		log_complain(prog, "standard output: %s",
			     saved ? strerror(saved) : "a write failed");
		rc = -1;
	}
	__fpurge(stdout);
	clearerr(stdout);
	return rc;
}

void cli_hold_sigpipe(void)
{
	/* Ignored, it stays so: blocked, Linux would keep an ignored signal pending too
	 * (sig_ignored: a blocked signal is never ignored), and EPIPE would pass unsaid. */
	struct sigaction old;
	if (sigaction(SIGPIPE, NULL, &old) < 0 || old.sa_handler == SIG_IGN)
		return;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

int cli_end(int rc)
{
	if (rc != 0 || !cli_sigpipe_pending())
		return rc;
	/* The disposition is the default (held, never ignored: see cli.h), so the
	 * pending signal is delivered, and ends us, as this call returns. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	return rc;
}
