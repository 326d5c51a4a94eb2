/* evloop.c — the epoll event loop behind evloop.h.
 *
 * Handlers live in an array indexed by fd. Each registration gets a generation number,
 * carried in epoll's data word beside the fd: an event that was already fetched for an
 * fd that was closed and reused within the same wake-up is recognised as stale and
 * dropped, instead of being delivered to the new connection.
 *
 * Timers live in their owners' structs and are linked here in due order (TAILQ, sorted
 * on insertion from the tail: most timers are armed later than the ones already there).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "evloop.h"
#include "util.h"

#define EVLOOP_BATCH 256

struct evloop_handler {
	evloop_fd_cb *cb;
	void *data;
	unsigned mask;
	uint32_t gen; /* 0: free slot */
};

TAILQ_HEAD(evloop_timers, evloop_timer);

struct evloop {
	int epfd;
	bool stop;
	uint32_t next_gen;
	uint64_t next_timer_seq;
	struct evloop_handler *handlers;
	int nhandlers;
	struct evloop_timers timers; /* armed ones, earliest first */
	evloop_hook_cb *before_sleep;
	void *before_sleep_data;
	long pause_us; /* evloop_pause: sleep this long instead of the next wait */
	struct epoll_event events[EVLOOP_BATCH];
};

struct evloop *evloop_new(char *err, size_t errlen)
{
	struct evloop *loop = calloc(1, sizeof(*loop));
	if (!loop) {
		util_err(err, errlen, "out of memory");
		return NULL;
	}
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		util_err(err, errlen, "epoll_create1: %s", strerror(errno));
		free(loop);
		return NULL;
	}
	loop->next_gen = 1;
	TAILQ_INIT(&loop->timers);
	return loop;
}

void evloop_free(struct evloop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->handlers);
	free(loop);
}

static int evloop_reserve(struct evloop *loop, int fd)
{
	if (fd < loop->nhandlers)
		return 0;
	int n = loop->nhandlers ? loop->nhandlers : 64;
	while (n <= fd)
		n *= 2;
	struct evloop_handler *h = realloc(loop->handlers, (size_t)n * sizeof(*h));
	if (!h)
		return -1;
	memset(h + loop->nhandlers, 0, (size_t)(n - loop->nhandlers) * sizeof(*h));
	loop->handlers = h;
	loop->nhandlers = n;
	return 0;
}

static uint32_t evloop_epoll_mask(unsigned mask)
{
	return (mask & EVLOOP_READ ? EPOLLIN | EPOLLRDHUP : 0) |
	       (mask & EVLOOP_WRITE ? EPOLLOUT : 0);
}

static int evloop_ctl(struct evloop *loop, int op, int fd)
{
	struct evloop_handler *h = &loop->handlers[fd];
	struct epoll_event ev = { .events = evloop_epoll_mask(h->mask),
				  .data.u64 = ((uint64_t)h->gen << 32) | (uint32_t)fd };
	return epoll_ctl(loop->epfd, op, fd, &ev);
}

int evloop_add(struct evloop *loop, int fd, unsigned mask, evloop_fd_cb *cb, void *data)
{
	if (fd < 0 || evloop_reserve(loop, fd) < 0) {
		errno = fd < 0 ? EBADF : ENOMEM;
		return -1;
	}
	struct evloop_handler *h = &loop->handlers[fd];
	*h = (struct evloop_handler){ cb, data, mask, loop->next_gen++ };
	if (loop->next_gen == 0)
		loop->next_gen = 1;
	if (evloop_ctl(loop, EPOLL_CTL_ADD, fd) < 0) {
		int saved = errno;
		memset(h, 0, sizeof(*h));
		errno = saved;
		return -1;
	}
	return 0;
}

int evloop_set_mask(struct evloop *loop, int fd, unsigned mask)
{
	struct evloop_handler *h = &loop->handlers[fd];
	if (h->mask == mask)
		return 0;
	h->mask = mask;
	return evloop_ctl(loop, EPOLL_CTL_MOD, fd);
}

void evloop_del(struct evloop *loop, int fd)
{
	if (fd < 0 || fd >= loop->nhandlers || !loop->handlers[fd].gen)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&loop->handlers[fd], 0, sizeof(loop->handlers[fd]));
}

void evloop_timer_init(struct evloop_timer *t, evloop_timer_cb *cb, void *data)
{
	*t = (struct evloop_timer){ .cb = cb, .data = data };
}

bool evloop_timer_armed(const struct evloop_timer *t)
{
	return t->armed;
}

void evloop_timer_cancel(struct evloop *loop, struct evloop_timer *t)
{
	if (!t->armed)
		return;
	TAILQ_REMOVE(&loop->timers, t, entry);
	t->armed = false;
}

void evloop_timer_arm(struct evloop *loop, struct evloop_timer *t, int64_t ms)
{
	evloop_timer_cancel(loop, t);
	t->due_ms = util_now_ms() + (ms > 0 ? ms : 0);
	t->seq = loop->next_timer_seq++;
	t->armed = true;
	struct evloop_timer *before = TAILQ_LAST(&loop->timers, evloop_timers);
	while (before && before->due_ms > t->due_ms)
		before = TAILQ_PREV(before, evloop_timers, entry);
	if (before)
		TAILQ_INSERT_AFTER(&loop->timers, before, t, entry);
	else
		TAILQ_INSERT_HEAD(&loop->timers, t, entry);
}

void evloop_set_before_sleep(struct evloop *loop, evloop_hook_cb *cb, void *data)
{
	loop->before_sleep = cb;
	loop->before_sleep_data = data;
}

void evloop_stop(struct evloop *loop)
{
	loop->stop = true;
}

/* Milliseconds until the earliest timer, or -1 when there is none. */
static int evloop_next_timeout(const struct evloop *loop, int64_t now)
{
	const struct evloop_timer *t = TAILQ_FIRST(&loop->timers);
	if (!t)
		return -1;
	int64_t left = t->due_ms > now ? t->due_ms - now : 0;
	return left > 1000000 ? 1000000 : (int)left;
}

/* Fires the timers that are due and were armed before this call: one re-armed for 0 ms
 * by its own callback waits for the next poll instead of spinning here. */
static void evloop_fire_timers(struct evloop *loop)
{
	int64_t now = util_now_ms();
	uint64_t limit = loop->next_timer_seq;
	struct evloop_timer *t = TAILQ_FIRST(&loop->timers);
	while (t && t->due_ms <= now && !loop->stop) {
		if (t->seq >= limit) {
			t = TAILQ_NEXT(t, entry);
			continue;
		}
		evloop_timer_cancel(loop, t);
		t->cb(loop, t->data);
		t = TAILQ_FIRST(&loop->timers); /* the callback may have changed the list */
	}
}

static void evloop_dispatch(struct evloop *loop, const struct epoll_event *ev)
{
	int fd = (int)(uint32_t)ev->data.u64;
	uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
	if (fd >= loop->nhandlers)
		return;
	struct evloop_handler *h = &loop->handlers[fd];
	if (h->gen != gen)
		return; /* deleted, or the fd was reused, during this wake-up */
	unsigned revents = 0;
	if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		revents |= EVLOOP_READ;
	if (ev->events & EPOLLOUT)
		revents |= EVLOOP_WRITE;
	h->cb(loop, fd, revents, h->data);
}

void evloop_pause(struct evloop *loop, long usec)
{
	loop->pause_us = usec > 0 && usec < 1000000 ? usec : 0;
}

int evloop_run(struct evloop *loop)
{
	int rc = 0;
	/* A stop asked for before the run (a callback that failed while the caller set
	 * up) ends it at once: clearing it here would forget it and wait for ever. */
	while (!loop->stop) {
		if (loop->before_sleep)
			loop->before_sleep(loop, loop->before_sleep_data);
		if (loop->stop)
			break;
		int timeout = evloop_next_timeout(loop, util_now_ms());
		if (loop->pause_us > 0) {
			/* A plain sleep, not a wait with a timeout, which the first event
			 * would end: the point is to let several come. The manager's signals
			 * come by signalfd, blocked, so nothing ends it early. */
			struct timespec ts = { .tv_sec = 0, .tv_nsec = loop->pause_us * 1000 };
			nanosleep(&ts, NULL);
			loop->pause_us = 0;
			timeout = 0;
		}
		int n = epoll_wait(loop->epfd, loop->events, EVLOOP_BATCH, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		for (int i = 0; i < n && !loop->stop; i++)
			evloop_dispatch(loop, &loop->events[i]);
		evloop_fire_timers(loop);
	}
	/* The stop is used up: a later run waits for a new one. */
	int saved = errno;
	loop->stop = false;
	errno = saved;
	return rc;
}
