/* cmd_manager.c — `shmwarden manager`, and the drop-in torch_shm_manager (no arguments).
 *
 * Like the reference it detaches from the client's session first, so the signals a
 * terminal or job sends to the client's process group do not reach the manager.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"
#include "manager.h"

static const char manager_usage[] =
	"usage: shmwarden manager [--tmpdir DIR] [--shutdown-timeout MS] [--no-reclaim]\n"
	"                         [--prune-interval MS] [--prune-grace SECONDS]\n"
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
	"  --prune-grace SECONDS   never prune a name younger than this (default 10)\n";

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
 * DataLoader-sized crowd (1,300 workers): raise it to the hard limit, as servers do
 * (nginx's worker_rlimit_nofile, systemd's services). The soft limit exists for select(),
 * which the manager never uses. What is left is handled by the EMFILE pause in manager.c. */
static void manager_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rlim_t old = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		return;
	/* An infinite hard limit is refused above fs.nr_open: take that. */
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	unsigned long nr_open = 0;
	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	rl.rlim_cur = (rlim_t)nr_open;
	if (nr_open <= old || rl.rlim_cur > rl.rlim_max || setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_info("manager: cannot raise RLIMIT_NOFILE above %llu", (unsigned long long)old);
}

static int parse_ms(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > 86400000)
		return -1;
	*out = (int)v;
	return 0;
}

int cmd_manager(int argc, char **argv)
{
	struct manager_config cfg;
	manager_config_defaults(&cfg);
	static const struct option opts[] = {
		{ "tmpdir", required_argument, NULL, 't' },
		{ "shutdown-timeout", required_argument, NULL, 's' },
		{ "no-reclaim", no_argument, NULL, 'n' },
		{ "prune-interval", required_argument, NULL, 'p' },
		{ "prune-grace", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			cfg.tmpbase = optarg;
			break;
		case 's':
			if (parse_ms(optarg, &cfg.shutdown_timeout_ms) < 0) {
				fprintf(stderr, "shmwarden manager: bad --shutdown-timeout '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'n':
			cfg.reclaim_on_start = false;
			break;
		case 'p':
			if (parse_ms(optarg, &cfg.prune_interval_ms) < 0 || cfg.prune_interval_ms < 1) {
				fprintf(stderr, "shmwarden manager: bad --prune-interval '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'g':
			if (parse_ms(optarg, &cfg.prune_grace_s) < 0) {
				fprintf(stderr, "shmwarden manager: bad --prune-grace '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			fputs(manager_usage, stdout);
			return 0;
		default:
			fputs(manager_usage, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "shmwarden manager: unexpected argument '%s'\n%s", argv[optind],
			manager_usage);
		return 2;
	}
	if (!*cfg.tmpbase) {
		fputs("shmwarden manager: --tmpdir must not be empty\n", stderr);
		return 2;
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
	/* A stderr nobody drains must not stop the event loop (log.h). */
	if (log_nonblocking() < 0)
		log_info("manager: stderr stays blocking: %s", strerror(errno));
	fflush(stdout);
	return manager_run(&cfg);
}
