/* manager.h — the shm manager daemon: PyTorch's torch_shm_manager contract, journaled.
 *
 * manager_run() makes a private directory under the temp base, locks it, creates the
 * journal, binds manager.sock, prints the socket path as its first stdout line (or a
 * line "ERROR: <what went wrong and what to do>"), serves clients until nobody has been
 * connected for the shutdown timeout, then reclaims what is still registered, removes
 * its directory and returns 0. Every registration is committed to the journal before
 * its OK is sent (docs/DESIGN.md invariant 1).
 */
#ifndef SHMWARDEN_MANAGER_H
#define SHMWARDEN_MANAGER_H

#include <stdbool.h>

struct manager_config {
	const char *tmpbase;     /* where the directory goes (util_tmpbase()) */
	bool tmpbase_option;     /* tmpbase came from --tmpdir, not the environment */
	const char *prog;        /* the prefix of its error on stderr ("shmwarden manager") */
	int shutdown_timeout_ms; /* no client for this long: shut down (2000) */
	int prune_interval_ms;   /* how often a slice of the table is checked (1000) */
	int prune_grace_s;       /* rows younger than this are never pruned (10): their
				  * client may not have created the object yet */
	int commit_delay_us;     /* a commit waits this long for more registrations (100;
				  * 0: never; at most MANAGER_MAX_COMMIT_DELAY_US) while... */
	int commit_siblings;     /* ...this many connections registered lately (16), each
				  * seldom, together often (manager.c, manager_delay_commit) */
	bool reclaim_on_start;   /* reclaim dead managers' directories of this user */
	int out_fd;              /* where the socket path line goes (1) */
};

/* A commit is delayed only while every client registers at most once per ten delays of
 * the last 100 ms window, so a longer delay than this would never apply: microseconds. */
#define MANAGER_MAX_COMMIT_DELAY_US 10000

void manager_config_defaults(struct manager_config *cfg);

/* Returns the process exit status: 0 after a clean shutdown, 1 on a startup error
 * (already reported on out_fd as "ERROR: ...", and on stderr as "PROG: ...". An error
 * about the temp base names the setting it came from, --tmpdir or the environment
 * variable, and the errno's own words). */
int manager_run(const struct manager_config *cfg);

#endif
