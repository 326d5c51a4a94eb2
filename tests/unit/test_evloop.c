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
	struct evloop_timer t;
	evloop_timer_init(&t, on_timer, &c);
	evloop_timer_arm(loop, &t, 50);
	/* first wake-up: readable + writable; then the timer or the second read stops */
	CHECK(evloop_run(loop) == 0);
	CHECK(c.writes == 1);
	CHECK(c.reads >= 1);
	CHECK(c.hooks >= 1);
	evloop_free(loop);
	close(sv[0]);
	close(sv[1]);
}

static void on_stop_timer(struct evloop *loop, void *data)
{
	(void)data;
	evloop_stop(loop);
}

static void test_timer_order_and_cancel(void)
{
	struct evloop *loop = evloop_new(NULL, 0);
	struct ctx c = { 0 };
	struct evloop_timer a, b;
	evloop_timer_init(&a, on_timer, &c);
	evloop_timer_init(&b, on_timer, &c);
	evloop_timer_cancel(loop, &a); /* never armed: harmless */
	evloop_timer_arm(loop, &a, 10);
	CHECK(evloop_timer_armed(&a));
	evloop_timer_cancel(loop, &a);
	CHECK(!evloop_timer_armed(&a));
	int64_t t0 = util_now_ms();
	evloop_timer_arm(loop, &b, 10);
	evloop_timer_arm(loop, &b, 80); /* re-arming moves it */
	CHECK(evloop_run(loop) == 0);
	CHECK(c.timers == 1);
	CHECK(util_now_ms() - t0 >= 75);
	CHECK(!evloop_timer_armed(&b));
	evloop_free(loop);
}

/* The old loop had 16 timer slots and refused the 17th (its callers ignored the -1, so
 * a lost shutdown timer meant a manager that never exits). Timers are now embedded in
 * their owners: a thousand armed at once all fire, in due order, and the "shutdown"
 * timer armed last still stops the loop. */
struct many {
	struct evloop_timer t;
	int64_t due;
	int order;
	struct many_ctx *ctx;
};
struct many_ctx {
	int fired;
	int64_t last_due;
	bool out_of_order;
};

static void on_many(struct evloop *loop, void *data)
{
	(void)loop;
	struct many *m = data;
	m->order = ++m->ctx->fired;
	if (m->t.due_ms < m->ctx->last_due)
		m->ctx->out_of_order = true;
	m->ctx->last_due = m->t.due_ms;
}

static void test_a_thousand_timers_and_shutdown(void)
{
	enum { N = 1000 };
	struct evloop *loop = evloop_new(NULL, 0);
	static struct many ms[N];
	struct many_ctx ctx = { 0 };
	for (int i = 0; i < N; i++) {
		ms[i] = (struct many){ .due = (i * 7919) % 50, .ctx = &ctx };
		evloop_timer_init(&ms[i].t, on_many, &ms[i]);
		evloop_timer_arm(loop, &ms[i].t, ms[i].due);
	}
	/* Cancelled ones never fire. */
	for (int i = 0; i < N; i += 10)
		evloop_timer_cancel(loop, &ms[i].t);
	struct evloop_timer shutdown;
	evloop_timer_init(&shutdown, on_stop_timer, NULL);
	evloop_timer_arm(loop, &shutdown, 100);
	CHECK(evloop_run(loop) == 0);
	CHECK_EQ_INT(ctx.fired, N - N / 10);
	CHECK(!ctx.out_of_order);
	for (int i = 0; i < N; i += 10)
		CHECK_EQ_INT(ms[i].order, 0);
	evloop_free(loop);
}

/* A callback that re-arms itself for 0 ms runs once per wake-up, not in a loop that
 * starves the descriptors. */
struct spin {
	struct evloop_timer t;
	int runs, reads;
};

static void on_spin(struct evloop *loop, void *data)
{
	struct spin *s = data;
	if (++s->runs < 100)
		evloop_timer_arm(loop, &s->t, 0);
	else
		evloop_stop(loop);
}

static void on_spin_read(struct evloop *loop, int fd, unsigned revents, void *data)
{
	(void)loop;
	(void)revents;
	struct spin *s = data;
	char b;
	if (read(fd, &b, 1) == 1)
		s->reads++;
}

static void test_zero_ms_rearm_yields_to_descriptors(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	struct evloop *loop = evloop_new(NULL, 0);
	struct spin s = { 0 };
	evloop_timer_init(&s.t, on_spin, &s);
	CHECK(evloop_add(loop, sv[0], EVLOOP_READ, on_spin_read, &s) == 0);
	CHECK(write(sv[1], "abc", 3) == 3);
	evloop_timer_arm(loop, &s.t, 0);
	CHECK(evloop_run(loop) == 0);
	CHECK_EQ_INT(s.runs, 100);
	CHECK_EQ_INT(s.reads, 3); /* one byte per wake-up, between the timer's runs */
	evloop_free(loop);
	close(sv[0]);
	close(sv[1]);
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
	struct evloop_timer stop;
	evloop_timer_init(&stop, on_stop_timer, NULL);
	evloop_timer_arm(r.loop, &stop, 100);
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

/* A stop asked for before the run (the manager's failure to serve, found while it set
 * up) used to be cleared by evloop_run on entry, so the run waited for ever; the manager
 * worked around it. The run now returns at once, without the before-sleep hook, and the
 * stop is used up: the next run waits for its own (here the timer's). A timer bounds the
 * first run, so the old loop fails the test instead of hanging. */
static void test_stop_before_run_returns_at_once(void)
{
	struct evloop *loop = evloop_new(NULL, 0);
	CHECK(loop != NULL);
	struct ctx c = { 0 };
	evloop_set_before_sleep(loop, on_hook, &c);
	struct evloop_timer t, guard; /* guard: the old loop's second run ends too */
	evloop_timer_init(&t, on_timer, &c);
	evloop_timer_init(&guard, on_stop_timer, NULL);
	evloop_timer_arm(loop, &t, 300);
	evloop_timer_arm(loop, &guard, 1500);
	evloop_stop(loop);
	int64_t t0 = util_now_ms();
	CHECK(evloop_run(loop) == 0);
	CHECK(util_now_ms() - t0 < 200);
	CHECK_EQ_INT(c.timers, 0);
	CHECK_EQ_INT(c.hooks, 0);
	CHECK(evloop_timer_armed(&t));
	/* used up: this run lasts until the timer stops it */
	CHECK(evloop_run(loop) == 0);
	CHECK_EQ_INT(c.timers, 1);
	CHECK(c.hooks >= 1);
	CHECK(util_now_ms() - t0 >= 250);
	CHECK(evloop_timer_armed(&guard));
	evloop_timer_cancel(loop, &guard);
	evloop_free(loop);
}

int main(void)
{
	RUN(test_read_write_and_hook);
	RUN(test_timer_order_and_cancel);
	RUN(test_a_thousand_timers_and_shutdown);
	RUN(test_zero_ms_rearm_yields_to_descriptors);
	RUN(test_stale_event_of_reused_fd_is_dropped);
	RUN(test_stop_before_run_returns_at_once);
	return check_done();
}
