/* cli.h — how the shmwarden binary reads its command lines: getopt_long underneath, and
 * a sentence of our own for everything it refuses, on stderr: "PROG: WHAT WAS WRONG" (the
 * offending word escaped), then "Try 'PROG --help' for more information." as GNU's tools
 * say it; the command exits 2 and has changed nothing. --help prints the whole usage on
 * stdout and exits 0.
 *
 * What every command gets the same way: `--opt=value` and `--opt value`, unique
 * abbreviations (`--dry` for `--dry-run`), `--` ending the options, operands anywhere
 * (getopt's permutation) unless stop_at_operand. Refused: an unknown or ambiguous option,
 * a value missing, empty, or given to a flag, a value option given twice (the second would
 * silently win: `sweep --tmpdir A --tmpdir B` sweeps only B), and a value taken from the
 * next word when that word is itself an option (`--tmpdir --json`: write `--tmpdir=--json`
 * for a directory of that name).
 *
 * getopt_long keeps its state in libc's globals (optind, optarg, opterr): cli_init
 * resets them, and one command line is read at a time.
 */
#ifndef SHMWARDEN_CLI_H
#define SHMWARDEN_CLI_H
#include <getopt.h>
#include <stdbool.h>

#define CLI_MAX_OPTS 16
#define CLI_ERROR '?' /* cli_next: a usage error was printed; exit 2 */

/* The prefix of everything a command prints as itself (usage errors, failures, reports):
 * CLI_PROG("sweep") is "shmwarden sweep", as coreutils' tools begin theirs with "prog: ".
 * Log lines (log.h) keep their own form, with pid and level. */
#define CLI_PROG(cmd) "shmwarden " cmd

/* One long option. A value option names what its value is, for the messages
 * ("--tmpdir needs a directory"). val is what cli_next returns for it; a letter is also
 * that short option: 'h' for -h, which every command (and shmwarden itself) accepts for
 * --help, 'V' for -V (--version). Other vals are 256 and up. */
struct cli_opt {
	const char *name; /* without the dashes */
	int val;
	const char *value; /* "a directory", "a number of milliseconds"; NULL: a flag */
};

struct cli {
	const char *prog; /* the prefix of every message: "shmwarden sweep" (CLI_PROG) */
	const struct cli_opt *opts;
	int nopts;
	struct option longopts[CLI_MAX_OPTS + 1];
	char shortopts[16];
	bool seen[CLI_MAX_OPTS];
	const char *value; /* the value of the option cli_next just returned, or NULL */
};

/* opts ends with an entry whose name is NULL (at most CLI_MAX_OPTS entries). With
 * stop_at_operand the options end at the first operand (shmwarden COMMAND ...). */
void cli_init(struct cli *c, const char *prog, const struct cli_opt *opts, bool stop_at_operand);
/* The next option's val (its value in c->value), -1 when the options end (optind is the
 * first operand), or CLI_ERROR once the refusal is printed. */
int cli_next(struct cli *c, int argc, char **argv);
/* "PROG: WHAT'ARG'", or "PROG: WHAT" when arg is NULL, then the line pointing to --help,
 * on stderr; ARG escaped (it came from the command line). Returns 2, the exit status of a usage error. */
int cli_usage_error(const struct cli *c, const char *what, const char *arg);
/* A whole decimal number from min to max (min >= 0): digits only, no sign, space, or
 * base prefix. 0, or -1 when s is anything else (too large included). */
int cli_number(const char *s, long long min, long long max, long long *out);
/* Flushes stdout, once a command has written all of it: 0, or -1 when it or an earlier
 * write failed (ENOSPC, EPIPE, EBADF), said once as "PROG: standard output: WHY" on
 * stderr, what was not written dropped so that no later flush says it again. A report
 * nobody received is a failure (exit 1), as in coreutils' close_stdout. But a reader
 * that went away (a held SIGPIPE pending, cli_hold_sigpipe) is not a failure to say:
 * 1, nothing said, what was not written dropped: cli_end then ends the process. */
int cli_flush_stdout(const char *prog);

/* A reader that goes away early (`shmwarden sweep | head -1`). The field's answer
 * (coreutils, any filter) is to die of SIGPIPE at the next write, quietly: the shell
 * shows status 141, and `set -o pipefail` scripts know head, not the writer, ended
 * it. A command that changes things (recover, sweep) must not stop halfway for a reader
 * it does not need, nor ls with a private copy of a journal still on disk, so SIGPIPE is
 * held (blocked) while the command works: the write fails with EPIPE, the kernel leaves
 * SIGPIPE pending, and the command carries on. cli_end delivers it at the very end.
 * A SIGPIPE that whoever started us ignores stays ignored (nothing is ever pending):
 * then EPIPE is an error like any other, said and exit 1, as coreutils does. The
 * manager calls neither: it ignores SIGPIPE for its whole life, since a client that
 * vanishes must never end it. */
void cli_hold_sigpipe(void);

/* The end of a command run with exit status rc: when a held SIGPIPE is pending and rc
 * is 0, releases it, and the process ends by SIGPIPE (quietly; never returns unless
 * SIGPIPE is caught, which no command does). Otherwise returns rc: a failure's status
 * (1, 2) is the news, its why already on stderr, and the pending signal dies with the
 * process. */
int cli_end(int rc);
/* The value of the number option val that cli_next just returned (c->value), read by
 * cli_number into *out: 0, or 2 once "--NAME needs VALUE from MIN to MAX, got 'ARG'"
 * is printed as a usage error (*out unchanged). Every command reads a number option with it, so one option (--prune-grace)
 * is parsed, and refused, the same way by each. */
int cli_value_number(const struct cli *c, int val, long long min, long long max, long long *out);

#endif
