/* main.c — the shmwarden binary: picks the subcommand (or the drop-in manager when
 * exec'd as torch_shm_manager) and sets up logging. Nothing below here exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "journal.h"
#include "log.h"
#include "report.h"

static const char main_usage[] =
	"usage: shmwarden COMMAND [ARGS]\n"
	"       shmwarden -h|--help | -V|--version\n"
	"\n"
	"Crash-safe manager for POSIX shared memory, a drop-in for PyTorch's\n"
	"torch_shm_manager that journals every object so none leaks when it is killed.\n"
	"\n"
	"commands:\n"
	"  manager   run a manager (what torch_shm_manager runs)\n"
	"  recover   reclaim the objects of one dead manager's directory\n"
	"  sweep     reclaim every dead manager's objects under a temp base (cron)\n"
	"  ls        list manager directories, live and dead, and what they hold\n"
	"\n"
	"`shmwarden COMMAND --help` (or `shmwarden help COMMAND`) describes each;\n"
	"shmwarden(1) has the details.\n"
	"SHMWARDEN_LOG=debug|info|warn|error sets how much is logged (default warn).\n";

/* Run as torch_shm_manager. PyTorch's own (torch/lib/libshm/manager.cpp) never looks
 * at its arguments: `torch_shm_manager --help` starts a manager that waits for clients.
 * PyTorch execs it with none (execl(path, "torch_shm_manager", NULL)), so no argument
 * is part of the drop-in, and --help and --version can do what a user expects. */
static const char dropin_usage[] =
	"usage: torch_shm_manager\n"
	"       torch_shm_manager -h|--help | -V|--version\n"
	"\n"
	"shmwarden's drop-in for PyTorch's torch_shm_manager: PyTorch starts it with no\n"
	"arguments, and it runs `shmwarden manager` with its defaults (prints its socket\n"
	"path on the first line of stdout, journals every registration, and exits 2000 ms\n"
	"after its last client has gone). It takes no other argument: `shmwarden manager\n"
	"--help` lists the options of a manager started by hand; shmwarden(1) has the\n"
	"details.\n"
	"\n"
	"Exit status: those of `shmwarden manager` (0 shut down, 1 could not start or\n"
	"serve); 0 after --help or --version; 2 for any other argument (no manager runs).\n";

/* shmwarden's and torch_shm_manager's own options, -h/--help and -V/--version, up to the
 * first operand (what follows is a command's): -1 when the options end (optind is the
 * operand), else the exit status, the usage or version printed or the error said. */
static int main_options(struct cli *c, const char *prog, int argc, char **argv, const char *usage,
			const char *version)
{
	static const struct cli_opt opts[] = {
		{ "help", 'h', NULL },
		{ "version", 'V', NULL },
		{ NULL, 0, NULL },
	};
	int opt;
	cli_init(c, prog, opts, true);
	while ((opt = cli_next(c, argc, argv)) != -1) {
		switch (opt) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("%s%s\n", version, SHMWARDEN_VERSION);
			return 0;
		default:
			return 2;
		}
	}
	return -1;
}

static int main_dropin(int argc, char **argv)
{
	struct cli c;
	int rc = main_options(&c, "torch_shm_manager", argc, argv, dropin_usage,
			      "torch_shm_manager (shmwarden) ");
	if (rc >= 0)
		return rc;
	if (optind < argc)
		return cli_usage_error(&c, "unexpected argument ", argv[optind]);
	char *args[] = { "torch_shm_manager", NULL };
	return cmd_manager(1, args);
}

struct command {
	const char *name;
	const char *prog; /* what its messages begin with (CLI_PROG) */
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "manager", CLI_PROG("manager"), cmd_manager },
	{ "recover", CLI_PROG("recover"), cmd_recover },
	{ "sweep", CLI_PROG("sweep"), cmd_sweep },
	{ "ls", CLI_PROG("ls"), cmd_ls },
};

/* Runs what argv asks for; *prog: the prefix of a message about its output. */
static int main_dispatch(int argc, char **argv, bool dropin, const char **prog)
{
	if (dropin) {
		*prog = "torch_shm_manager";
		return main_dropin(argc, argv);
	}
	struct cli c;
	int rc = main_options(&c, "shmwarden", argc, argv, main_usage, "shmwarden ");
	if (rc >= 0)
		return rc;
	if (optind == argc)
		return cli_usage_error(&c, "missing COMMAND (manager, recover, sweep or ls)", NULL);
	argc -= optind;
	argv += optind;
	bool help = !strcmp(argv[0], "help"), version = !strcmp(argv[0], "version");
	if ((help && argc > 2) || (version && argc > 1))
		return cli_usage_error(&c, "unexpected argument ", argv[help ? 2 : 1]);
	if (version) {
		printf("shmwarden %s\n", SHMWARDEN_VERSION);
		return 0;
	}
	if (help && argc == 1) {
		fputs(main_usage, stdout);
		return 0;
	}
	/* `shmwarden help ls` is `shmwarden ls --help`. */
	const char *name = help ? argv[1] : argv[0];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) != 0)
			continue;
		*prog = commands[i].prog;
		if (!help)
			return commands[i].run(argc, argv);
		char *args[] = { argv[1], "--help", NULL };
		return commands[i].run(2, args);
	}
	return cli_usage_error(&c, "unknown command ", name);
}

int main(int argc, char **argv)
{
	const char *argv0 = argc > 0 && argv[0] ? argv[0] : "shmwarden";
	const char *base = strrchr(argv0, '/') ? strrchr(argv0, '/') + 1 : argv0;
	bool dropin = strcmp(base, "torch_shm_manager") == 0;
	journal_library_init();
	if (log_init(dropin ? "torch_shm_manager" : "shmwarden") < 0) {
		char level[64];
		log_warn("SHMWARDEN_LOG='%s' is not a level (debug, info, warn, error); using warn",
			 report_escape(getenv("SHMWARDEN_LOG"), level, sizeof(level)));
	}
	const char *prog = "shmwarden";
	int rc = main_dispatch(argc, argv, dropin, &prog);
	/* Every command's output, help and version included, reached its reader or the
	 * run failed saying so: one place, whatever printed it (a command that must know
	 * sooner, as sweep for its metrics, flushes itself the same way). */
	if (cli_flush_stdout(prog) < 0 && rc == 0)
		rc = 1;
	/* A reader that went away ends a command that succeeded by SIGPIPE (cli.h). */
	return cli_end(rc);
}
