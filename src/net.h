/* net.h — the dull socket layer: a listening Unix socket, non-blocking accept, peer
 * credentials. Errors go into the caller's buffer; nothing here logs or keeps state. */
#ifndef SHMWARDEN_NET_H
#define SHMWARDEN_NET_H

#include <stddef.h>
#include <sys/types.h>

/* Binds and listens on a SOCK_STREAM Unix socket at path (non-blocking, close-on-exec),
 * mode 0600 whatever the umask. Returns the fd or -1. Whatever is at path already is
 * left alone, and named in err when it is no socket ("... exists and is not a socket
 * (a regular file)"): bind's EADDRINUSE says nothing of it. */
int net_unix_listen(const char *path, int backlog, char *err, size_t errlen);

/* accept4(SOCK_NONBLOCK|SOCK_CLOEXEC). -1 with errno EAGAIN when nobody waits. */
int net_accept(int lfd);

/* SO_PEERCRED of a connected Unix socket. */
int net_peercred(int fd, pid_t *pid, uid_t *uid);

#endif
