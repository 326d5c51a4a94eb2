/* cmd_manager.c — `shmwarden manager`, and the drop-in torch_shm_manager (no arguments).
 *
 * Like the reference it detaches from the client's session first, so the signals a
 * terminal or job sends to the client's process group do not reach the manager.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "log.h"
#include "manager.h"
#include "util.h"

static const char manager_usage[] =
	"usage: shmwarden manager [--tmpdir DIR] [--shutdown-timeout MS] [--no-reclaim]\n"
	"                         [--prune-interval MS] [--prune-grace SECONDS]\n"
	"                         [--commit-delay USEC] [--commit-siblings N]\n"
	"\n"
	"Runs a shared-memory manager for libshm clients (PyTorch's torch_shm_manager\n"
	"protocol). Prints the socket path on the first line of stdout, journals every\n"
	"registration, and exits once no client has been connected for the shutdown\n"
	"timeout, after unlinking every object still registered.\n"
	"\n"
	"  --tmpdir DIR            base for the manager directory (default: $TMPDIR, $TMP,\n"
	"                          $TEMP, $TEMPDIR, then /tmp)\n"
	"  --shutdown-timeout MS   idle time before shutting down (default 2000)\n"
	"  --no-reclaim            do not reclaim dead managers' directories at start\n"
	"  --prune-interval MS     pause between passes over the table that drop objects\n"
	"                          that vanished without a free message (default 1000)\n"
	"  --prune-grace SECONDS   never prune a name younger than this: whole seconds,\n"
	"                          0 to 86400000 (default 10); 0 is no grace, for tests\n"
	"                          only: a name whose object does not exist yet is\n"
	"                          dropped at the next prune or at shutdown\n"
	"  --commit-delay USEC     wait this many microseconds, 0 to 10000, before a\n"
	"                          commit so that more registrations join it (default\n"
	"                          100; 0: never), while in the last 100 to 200 ms they\n"
	"                          came from at least N connections, all but the busiest\n"
	"                          at one per delay or faster together, and none more\n"
	"                          often than once per ten delays; each OK still follows\n"
	"                          its commit\n"
	"  --commit-siblings N     that N, 1 to 1000000 (default 16)\n"
	"\n"
	"Exit status: 0 shut down (idle for the shutdown timeout, or SIGTERM, SIGINT,\n"
	"SIGHUP), 1 could not start (why: on stdout after ERROR:, and on stderr; a\n"
	"stdout it cannot write its socket path to, full or closed, included) or\n"
	"could not serve (its event loop failed, or did not take the listening socket,\n"
	"or its socket was removed and not restored by the time it exited: why on\n"
	"stderr), 2 usage.\n";

/* The manager inherits every descriptor its client did not mark close-on-exec (a
 * pipe end, a socket, a lock): holding them would keep the client's resources alive
 * after it exits, so close all of them but stdin, stdout and stderr. */
static void manager_close_inherited_fds(void)
{
	if (close_range(3, ~0U, 0) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = 3; fd < (max > 0 ? max : 1024); fd++)
		close((int)fd);
}

/* Each client is a descriptor, and the common soft RLIMIT_NOFILE of 1024 is below a
 * DataLoader-sized crowd (1,300 workers): raised to the hard limit (util_raise_nofile).
 * What is left is handled by the EMFILE pause in manager.c. */
static void manager_raise_nofile(void)
{
	unsigned long long old;
	if (util_raise_nofile(&old) < 0)
		log_info("manager: cannot raise RLIMIT_NOFILE above %llu", old);
}

enum {
	OPT_TMPDIR = 256,
	OPT_SHUTDOWN_TIMEOUT,
	OPT_NO_RECLAIM,
	OPT_PRUNE_INTERVAL,
	OPT_PRUNE_GRACE,
	OPT_COMMIT_DELAY,
	OPT_COMMIT_SIBLINGS,
};

/* A day: past it a setting is a typo, and the milliseconds still fit an int. */
#define MANAGER_MAX_SETTING 86400000

/* Sets *out to the number in c->value, min..max: 0, or the exit status of the usage
 * error. */
static int manager_number_max(const struct cli *c, int opt, long long min, long long max, int *out)
{
	long long v;
	int rc = cli_value_number(c, opt, min, max, &v);
	if (rc == 0)
		*out = (int)v;
	return rc;
}

/* The same, min..MANAGER_MAX_SETTING. */
static int manager_number(const struct cli *c, int opt, long long min, int *out)
{
	return manager_number_max(c, opt, min, MANAGER_MAX_SETTING, out);
}

int cmd_manager(int argc, char **argv)
{
	struct manager_config cfg;
	manager_config_defaults(&cfg);
	static const struct cli_opt opts[] = {
		{ "tmpdir", OPT_TMPDIR, "a directory" },
		{ "shutdown-timeout", OPT_SHUTDOWN_TIMEOUT, "a number of milliseconds" },
		{ "no-reclaim", OPT_NO_RECLAIM, NULL },
		{ "prune-interval", OPT_PRUNE_INTERVAL, "a number of milliseconds" },
		{ "prune-grace", OPT_PRUNE_GRACE, "a number of seconds" },
		{ "commit-delay", OPT_COMMIT_DELAY, "a number of microseconds" },
		{ "commit-siblings", OPT_COMMIT_SIBLINGS, "a number of connections" },
		{ "help", 'h', NULL },
		{ NULL, 0, NULL },
	};
	struct cli c;
	int opt, rc = 0;
	/* The drop-in (main.c) runs us as "torch_shm_manager", and says so in its errors. */
	cfg.prog = strcmp(argv[0], "manager") == 0 ? CLI_PROG("manager") : argv[0];
	cli_init(&c, cfg.prog, opts, false);
	while (rc == 0 && (opt = cli_next(&c, argc, argv)) != -1) {
		switch (opt) {
		case OPT_TMPDIR:
			cfg.tmpbase = c.value;
			cfg.tmpbase_option = true;
			break;
		case OPT_SHUTDOWN_TIMEOUT:
			rc = manager_number(&c, opt, 0, &cfg.shutdown_timeout_ms);
			break;
		case OPT_NO_RECLAIM:
			cfg.reclaim_on_start = false;
			break;
		case OPT_PRUNE_INTERVAL:
			rc = manager_number(&c, opt, 1, &cfg.prune_interval_ms);
			break;
		case OPT_PRUNE_GRACE:
			rc = manager_number(&c, opt, 0, &cfg.prune_grace_s);
			break;
		case OPT_COMMIT_DELAY:
			rc = manager_number_max(&c, opt, 0, MANAGER_MAX_COMMIT_DELAY_US,
						&cfg.commit_delay_us);
			break;
		case OPT_COMMIT_SIBLINGS:
			rc = manager_number_max(&c, opt, 1, 1000000, &cfg.commit_siblings);
			break;
		case 'h':
			fputs(manager_usage, stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (rc != 0)
		return rc;
	if (optind < argc)
		return cli_usage_error(&c, "unexpected argument ", argv[optind]);
	/* Closed, descriptor 1 would be reused by the next file opened (stderr's reopening
	 * below, the journal), and the socket path written into it: nobody could learn
	 * where to connect. Checked before anything is opened. */
	if (fcntl(STDOUT_FILENO, F_GETFD) < 0) {
		log_complain(cfg.prog, "standard output: %s: nowhere to print the socket path",
			     strerror(errno));
		return 1;
	}
	setsid();
	signal(SIGPIPE, SIG_IGN);
	/* The reclaimer's write lease, held for a moment per object, is broken by an opener
	 * with SIGIO, whose default action would end us: ignored, reclaim needs no F_SETSIG
	 * per object (reclaim.c). */
	signal(SIGIO, SIG_IGN);
	umask(077);
	manager_close_inherited_fds();
	manager_raise_nofile();
	/* A stderr nobody drains must not stop the event loop (log.h). Reopening it fails
	 * when it is another user's (root's terminal or pipe, the manager run as nobody):
	 * said in the user's terms, as it changes nothing but that. */
	if (log_nonblocking() < 0)
		log_info("manager: a log line may wait until standard error is read (it could not "
			 "be reopened without blocking: %s)",
			 errno == EACCES ? "it is another user's" : strerror(errno));
	fflush(stdout);
	return manager_run(&cfg);
}
