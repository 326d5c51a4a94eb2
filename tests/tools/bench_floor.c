/* bench_floor.c — the do-nothing manager `scripts/bench` compares against (the floor).
 *
 * It speaks just enough of the libshm protocol to be timed like a real manager: prints
 * its socket path (in its own mkdtemp directory under $TMPDIR), answers "OK" to every
 * register record, ignores frees, keeps no table, and exits 2 s after the last client
 * leaves. Any time a real manager spends beyond this one is the cost of its own work.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "wire.h"

#define FLOOR_SHUTDOWN_MS 2000
#define FLOOR_MAX_EVENTS 256
/* Records read per recv: a pipelining client is served in bulk, like a real manager
 * that drains its socket would. */
#define FLOOR_RX_RECORDS 64

struct floor_conn {
	struct floor_conn *prev, *next; /* every open connection, to close them at exit */
	int fd;
	size_t have;   /* bytes of a partial record kept from the last read */
	size_t owed;   /* OK bytes not yet accepted by the socket */
	bool want_out; /* registered for EPOLLOUT: only while OKs are stuck */
	unsigned char buf[WIRE_RECORD_SIZE * FLOOR_RX_RECORDS];
};

static volatile sig_atomic_t floor_stop;

static void floor_on_signal(int sig)
{
	(void)sig;
	floor_stop = 1;
}

static void floor_line(const char *s)
{
	/* The client reads up to the first newline: one write, so it never sees half. */
	char line[PATH_MAX + 16];
	int n = snprintf(line, sizeof(line), "%s\n", s);
	if (n > 0 && write(STDOUT_FILENO, line, (size_t)n) < 0)
		_exit(1);
}

static void floor_close(int ep, struct floor_conn **head, struct floor_conn *c, unsigned *nclients)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	(*nclients)--;
}

/* Sends what is owed; returns -1 when the connection broke. Waits for EPOLLOUT only
 * while something is left, so the common path is one send per batch and no epoll_ctl. */
static int floor_flush(int ep, struct floor_conn *c)
{
	static const char oks[] =
		"OKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOK"
		"OKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOK";
	while (c->owed) {
		size_t start = c->owed % 2; /* odd: resume an OK at its K */
		size_t n = sizeof(oks) - 1 - start;
		if (n > c->owed)
			n = c->owed;
		ssize_t w = send(c->fd, oks + start, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		c->owed -= (size_t)w;
	}
	if (c->want_out != (c->owed > 0)) {
		c->want_out = c->owed > 0;
		struct epoll_event ev = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0),
					  .data.ptr = c };
		if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
			return -1;
	}
	return 0;
}

/* Reads what is there; returns -1 on hang-up (after answering what came with it). */
static int floor_read(int ep, struct floor_conn *c)
{
	ssize_t r = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, MSG_DONTWAIT);
	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (r == 0)
		return -1;
	size_t len = c->have + (size_t)r, off = 0;
	size_t before = c->owed;
	for (; off + WIRE_RECORD_SIZE <= len; off += WIRE_RECORD_SIZE)
		if (c->buf[off + offsetof(struct wire_alloc_info, free)] == 0)
			c->owed += WIRE_OK_LEN;
	c->have = len - off;
	memmove(c->buf, c->buf + off, c->have);
	if (c->owed != before && floor_flush(ep, c) < 0)
		return -1;
	return 0;
}

static int floor_run(int lfd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		close(ep);
		return -1;
	}
	unsigned nclients = 0;
	struct floor_conn *head = NULL;
	struct epoll_event evs[FLOOR_MAX_EVENTS];
	while (!floor_stop) {
		/* Like the reference: the shutdown clock runs only while nobody is connected,
		 * and any event restarts it. */
		int n = epoll_wait(ep, evs, FLOOR_MAX_EVENTS, nclients ? -1 : FLOOR_SHUTDOWN_MS);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0 && nclients == 0)
			break;
		for (int i = 0; i < n; i++) {
			struct floor_conn *c = evs[i].data.ptr;
			if (!c) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd < 0)
					continue;
				c = calloc(1, sizeof(*c));
				struct epoll_event cev = { .events = EPOLLIN };
				cev.data.ptr = c;
				if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
					free(c);
					close(fd);
					continue;
				}
				c->fd = fd;
				c->next = head;
				if (head)
					head->prev = c;
				head = c;
				nclients++;
				continue;
			}
			int rc = 0;
			if (evs[i].events & EPOLLOUT)
				rc = floor_flush(ep, c);
			if (rc == 0 && evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				rc = floor_read(ep, c);
			if (rc < 0)
				floor_close(ep, &head, c, &nclients);
		}
	}
	while (head)
		floor_close(ep, &head, head, &nclients);
	close(ep);
	return 0;
}

int main(void)
{
	setsid();
	signal(SIGPIPE, SIG_IGN);
	/* No SA_RESTART: SIGTERM must interrupt epoll_wait so the directory is removed. */
	struct sigaction sa = { .sa_handler = floor_on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	char dir[PATH_MAX], sock[PATH_MAX];
	if ((size_t)snprintf(dir, sizeof(dir), "%s/floor-XXXXXX", base) >= sizeof(dir) ||
	    !mkdtemp(dir)) {
		floor_line("ERROR: floor: cannot create a directory under TMPDIR");
		return 1;
	}
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if ((size_t)snprintf(sock, sizeof(sock), "%s/manager.sock", dir) >= sizeof(addr.sun_path)) {
		rmdir(dir);
		floor_line("ERROR: floor: TMPDIR too long for a socket path");
		return 1;
	}
	memcpy(addr.sun_path, sock, strlen(sock) + 1);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(lfd, 10) < 0) {
		floor_line("ERROR: floor: cannot listen");
		if (lfd >= 0)
			close(lfd);
		unlink(sock);
		rmdir(dir);
		return 1;
	}
	floor_line(sock);
	int rc = floor_run(lfd);
	close(lfd);
	unlink(sock);
	rmdir(dir);
	return rc < 0 ? 1 : 0;
}
