/* client.h — what the client library's files (client.c, client_spawn.c,
 * client_segment.c) share. Nothing here is public: include/shmwarden.h is the API.
 *
 * client.c owns the handle (struct shmw_manager), its connection and the fork handling;
 * client_spawn.c starts managers; client_segment.c names, creates, maps and frees objects.
 */
#ifndef SHMWARDEN_CLIENT_H
#define SHMWARDEN_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "shmwarden.h"

#define CLIENT_OK_TIMEOUT_MS 1000     /* libshm's poll timeout for the OK */
#define CLIENT_SPAWN_TIMEOUT_MS 10000 /* spawn → socket path printed */
#define CLIENT_SOCK_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))
#define CLIENT_PATH_MAX 4096

struct shmw_manager {
	/* Guards everything below it; a request and its answer are one critical section.
	 * Lock order: client.c's registry lock, then this. */
	pthread_mutex_t lock;
	/* The caller's reference plus one per live segment. */
	atomic_int refs;
	/* Links in the process's list of handles (client.c), under the registry lock. */
	struct shmw_manager *prev, *next;

	int fd;       /* the connection, -1 when this process has none yet */
	pid_t fd_pid; /* the process that opened fd: another pid means we were forked */
	unsigned int flags;
	uint32_t counter; /* per-handle name counter */
	char prefix[SHMW_PREFIX_MAX + 1];
	char sock_path[CLIENT_SOCK_MAX];
	char mgr_path[CLIENT_PATH_MAX]; /* what SHMW_RESPAWN execs; "" if unknown */
};

/* Records the calling thread's error message and returns err (a negative errno). */
int client_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sends one register (is_free false: waits for the OK) or free record for name, connecting
 * first if needed, respawning once if the handle asked for it. Takes m->lock. */
int client_request(struct shmw_manager *m, const char *name, bool is_free);

/* A reference for a new segment; client_manager_put() drops one (and frees the handle at
 * zero). */
void client_manager_get(struct shmw_manager *m);
void client_manager_put(struct shmw_manager *m);

/* fork() for spawning a manager: our atfork handlers stand aside for it (the caller may
 * hold a handle lock). The child may only exec or _exit. */
pid_t client_fork_for_spawn(void);

/* The manager executable to spawn: path if given, else $SHMWARDEN_MANAGER, else the
 * install location. Never NULL. */
const char *client_manager_path(const char *path);

/* Spawns the manager at path (double fork, see client_spawn.c) and stores its socket path
 * in sock (CLIENT_SOCK_MAX bytes). Returns 0 or a negative errno with the message set. */
int client_spawn(const char *path, char *sock, size_t socklen);

#endif
