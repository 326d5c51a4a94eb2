/* test_evloop.c — the event loop: dispatch, masks, timers, the before-sleep hook,
 * and stale events of a descriptor closed and reused within one wake-up. */
#include <sys/socket.h>

#include "check.h"
#include "evloop.h"
#include "util.h"

struct ctx {
	int reads, writes, hooks, timers;
	int other_fd;
	struct evloop *loop;
};

static void on_read(struct evloop *loop, int fd, unsigned revents, void *data)
{
	struct ctx *c = data;
	char buf[64];
	if (revents & EVLOOP_READ) {
		c->reads++;
		ssize_t n = read(fd, buf, sizeof(buf));
		(void)n;
	}
	if (revents & EVLOOP_WRITE) {
		c->writes++;
		evloop_set_mask(loop, fd, EVLOOP_READ);
	}
	if (c->reads >= 2)
		evloop_stop(loop);
}

static void on_hook(struct evloop *loop, void *data)
{
	(void)loop;
	((struct ctx *)data)->hooks++;
}

static void on_timer(struct evloop *loop, void *data)
{
	struct ctx *c = data;
	c->timers++;
	evloop_stop(loop);
}

static void test_read_write_and_hook(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct evloop *loop = evloop_new(NULL, 0);
	CHECK(loop != NULL);
	struct ctx c = { 0 };
	CHECK(evloop_add(loop, sv[0], EVLOOP_READ | EVLOOP_WRITE, on_read, &c) == 0);
	evloop_set_before_sleep(loop, on_hook, &c);
	CHECK(write(sv[1], "a", 1) == 1);
	long t = evloop_timer_add(loop, 50, on_timer, &c);
	CHECK(t > 0);
	/* first wake-up: readable + writable; then the timer or the second read stops */
	CHECK(evloop_run(loop) == 0);
	CHECK(c.writes == 1);
	CHECK(c.reads >= 1);
	CHECK(c.hooks >= 1);
	evloop_free(loop);
	close(sv[0]);
	close(sv[1]);
}

static void test_timer_order_and_cancel(void)
{
	struct evloop *loop = evloop_new(NULL, 0);
	struct ctx c = { 0 };
	long a = evloop_timer_add(loop, 10, on_timer, &c);
	evloop_timer_cancel(loop, a);
	int64_t t0 = util_now_ms();
	evloop_timer_add(loop, 80, on_timer, &c);
	CHECK(evloop_run(loop) == 0);
	CHECK(c.timers == 1);
	CHECK(util_now_ms() - t0 >= 75);
	evloop_timer_cancel(loop, 9999); /* unknown id: harmless */
	evloop_free(loop);
}

/* Handler A closes B's fd and opens a new socket that gets the same number: the event
 * already fetched for the old B must not reach the new registration. */
struct reuse {
	struct evloop *loop;
	int a, b, new_fd, new_peer;
	int b_events, new_events;
};

static void on_new(struct evloop *loop, int fd, unsigned revents, void *data)
{
	(void)loop;
	(void)fd;
	(void)revents;
	((struct reuse *)data)->new_events++;
}

static void on_b(struct evloop *loop, int fd, unsigned revents, void *data)
{
	(void)loop;
	(void)fd;
	(void)revents;
	((struct reuse *)data)->b_events++;
}

static void on_a(struct evloop *loop, int fd, unsigned revents, void *data)
{
	(void)fd;
	(void)revents;
	struct reuse *r = data;
	char buf[8];
	ssize_t n = read(r->a, buf, sizeof(buf));
	(void)n;
	if (r->new_fd >= 0)
		return;
	evloop_del(loop, r->b);
	close(r->b);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
		r->new_fd = sv[0]; /* the number b had: the lowest free one */
		r->new_peer = sv[1];
		/* Quiet: nothing to read, no hang-up. Only a stale event could call on_new. */
		evloop_add(loop, r->new_fd, EVLOOP_READ, on_new, r);
	}
}

static void on_stop(struct evloop *loop, void *data)
{
	(void)data;
	evloop_stop(loop);
}

static void test_stale_event_of_reused_fd_is_dropped(void)
{
	struct reuse r = { .new_fd = -1, .new_peer = -1 };
	int sa[2], sb[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sa) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sb) == 0);
	r.loop = evloop_new(NULL, 0);
	r.a = sa[0];
	r.b = sb[0];
	CHECK(evloop_add(r.loop, r.a, EVLOOP_READ, on_a, &r) == 0);
	CHECK(evloop_add(r.loop, r.b, EVLOOP_READ, on_b, &r) == 0);
	CHECK(write(sa[1], "x", 1) == 1);
	CHECK(write(sb[1], "y", 1) == 1);
	evloop_timer_add(r.loop, 100, on_stop, NULL);
	CHECK(evloop_run(r.loop) == 0);
	CHECK_EQ_INT(r.new_fd, sb[0]); /* the test only means something if the number was reused */
	CHECK_EQ_INT(r.b_events + r.new_events, 0);
	evloop_free(r.loop);
	close(r.a);
	close(sa[1]);
	close(sb[1]);
	if (r.new_fd >= 0)
		close(r.new_fd);
	if (r.new_peer >= 0)
		close(r.new_peer);
}

int main(void)
{
	RUN(test_read_write_and_hook);
	RUN(test_timer_order_and_cancel);
	RUN(test_stale_event_of_reused_fd_is_dropped);
	return check_done();
}
