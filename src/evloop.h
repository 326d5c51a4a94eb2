/* evloop.h — a small epoll event loop: callbacks per file descriptor, timers, and a
 * hook that runs once per wake-up before the loop sleeps again.
 *
 * The loop holds all of its state in one struct and knows nothing about shared memory
 * or SQLite. Dispatch costs O(ready descriptors), never O(registered descriptors).
 * The before-sleep hook is where the manager commits its journal once per wake-up
 * (group commit) and only then answers its clients.
 */
#ifndef SHMWARDEN_EVLOOP_H
#define SHMWARDEN_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#define EVLOOP_READ 0x1
#define EVLOOP_WRITE 0x2

struct evloop;

/* revents: EVLOOP_READ/EVLOOP_WRITE; hang-ups and errors are reported as READ so the
 * handler reads, sees EOF or the error, and processes whatever data came before. */
typedef void evloop_fd_cb(struct evloop *loop, int fd, unsigned revents, void *data);
typedef void evloop_timer_cb(struct evloop *loop, void *data);
typedef void evloop_hook_cb(struct evloop *loop, void *data);

struct evloop *evloop_new(char *err, size_t errlen);
void evloop_free(struct evloop *loop);

/* Registers fd for the events in mask; data is handed back to cb. */
int evloop_add(struct evloop *loop, int fd, unsigned mask, evloop_fd_cb *cb, void *data);
/* Changes the events a registered fd waits for (0: none, but stay registered). */
int evloop_set_mask(struct evloop *loop, int fd, unsigned mask);
/* Unregisters fd; pending events of this wake-up are not delivered. Call before close. */
void evloop_del(struct evloop *loop, int fd);

/* One-shot timers, embedded in their owner's struct (as the kernel's timer_list and
 * libevent's struct event are): the loop links armed ones, ordered by due time, and never
 * allocates, so arming cannot fail and no timer is ever lost. The owner keeps the struct
 * alive while it is armed. Fields are the loop's: use the functions. */
struct evloop_timer {
	TAILQ_ENTRY(evloop_timer) entry; /* in the loop's list while armed */
	int64_t due_ms;                  /* CLOCK_MONOTONIC */
	uint64_t seq;                    /* arming order: a timer armed while timers fire waits */
	evloop_timer_cb *cb;
	void *data;
	bool armed;
};

/* Sets the callback; the timer starts unarmed. Call once before any other use. */
void evloop_timer_init(struct evloop_timer *t, evloop_timer_cb *cb, void *data);
/* Fires once, ms milliseconds from now (0: after the next poll for events, so ready
 * descriptors are served first). Arming an armed timer moves it. */
void evloop_timer_arm(struct evloop *loop, struct evloop_timer *t, int64_t ms);
/* Disarms; harmless on an unarmed timer (loop may then be NULL). */
void evloop_timer_cancel(struct evloop *loop, struct evloop_timer *t);
bool evloop_timer_armed(const struct evloop_timer *t);

void evloop_set_before_sleep(struct evloop *loop, evloop_hook_cb *cb, void *data);

/* From the before-sleep hook: instead of waiting for events, the loop sleeps usec
 * microseconds (1 to 999999; anything else asks for no pause), takes what became ready
 * meanwhile without waiting, and runs the hook again. The manager's commit delay:
 * requests that arrive during the pause join the commit. */
void evloop_pause(struct evloop *loop, long usec);

/* Runs until evloop_stop(); returns 0, or -1 (errno set) if epoll_wait failed. A stop
 * asked for before the run (from a callback of the caller's set-up) makes it return 0 at
 * once, without calling the before-sleep hook; each stop ends one run. */
int evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);

#endif
