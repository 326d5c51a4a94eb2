/* manager.c — the manager daemon's lifecycle and its clients (see manager.h).
 *
 * Flow of one wake-up: the event loop reads every ready connection; each complete
 * 68-byte record is decoded, validated and staged in the journal's open transaction
 * (a registration owes its connection an OK; a free whose object is gone forgets the
 * name). Before the loop sleeps again, one commit covers everything staged (group
 * commit), and only after it succeeded are the owed OKs written. If the commit fails
 * (a full disk), the registrations of that batch are refused: their clients get no OK
 * and time out, and nothing unjournaled is ever acknowledged.
 *
 * A connection is not a process (docs/PROTOCOL.md): forked children share one, so nothing
 * is unregistered when a connection closes. Frees ride in the next commit; a commit
 * of frees alone waits for the flush timer, as a lost free only delays a prune.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/param.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "evloop.h"
#include "inuse.h"
#include "journal.h"
#include "log.h"
#include "manager.h"
#include "mgrdir.h"
#include "net.h"
#include "reclaim.h"
#include "regcache.h"
#include "shmobj.h"
#include "userns.h"
#include "util.h"
#include "wire.h"

#define LISTEN_BACKLOG 128    /* the reference uses 10; bursts of workers connect at once */
#define READ_BATCH_RECORDS 64 /* per connection per wake-up: keeps one flood from starving others */
#define MAX_UNSENT_OK 4096    /* a client that never reads its OKs stops being read */
#define FLUSH_FREES_MS 50     /* a transaction holding only frees commits after this */
#define ACCEPT_RETRY_MS 100   /* after EMFILE, accept again after this */
#define PRUNE_PAGE 256        /* rows read from the journal at a time */
#define PRUNE_SLICE_US 2000   /* a prune slice yields to the clients after this */
/* A busy pass is spread over (grace + interval) / PRUNE_PASS_DIVISOR: see the bound at
 * manager_on_prune_timer. */
#define PRUNE_PASS_DIVISOR 4
#define MIN_ROOM_KIB 256 /* a journal.db, its -wal and its -shm at the start */
/* A restarted manager answers its first registration only once its dead siblings' leaks
 * are gone from /dev/shm, or after this long. libshm waits 1 s for an OK and then fails
 * the job ("Shared memory manager connection has timed out"), a worse end than a first
 * tensor racing the leaks for space, so the hold leaves the client half its second:
 * past the hold, the OK waited for the scheduler by up to a CFS period (100 ms) in a
 * CPU-limited group, and by more than 200 ms when the group had a tenth of a CPU. */
#define RECLAIM_HOLD_MS 500
#define FILES_CHECK_MS 1000 /* how often the manager checks its files are still there */
/* The commit delay counts registrations, and the connections they came from, in windows
 * of this length on the monotonic clock's grid (manager_count_registration)... */
#define SIBLINGS_WINDOW_US 100000
/* ...and delays no commit while a connection registers more often than once per this
 * many delays: the delay would be a tenth or more of that client's own cycle. */
#define DELAY_BUSIEST_CYCLES 10

struct manager;

/* What one window of SIBLINGS_WINDOW_US saw of the registrations staged for commits. */
struct delay_window {
	unsigned regs;     /* registrations */
	unsigned siblings; /* connections they came from */
	unsigned busiest;  /* the most from one connection */
};

struct conn {
	struct manager *m;
	int fd;
	unsigned id;
	pid_t peer_pid;
	size_t partial_len; /* bytes of an incomplete record */
	unsigned char partial[WIRE_RECORD_SIZE];
	unsigned owed;       /* OKs for registrations staged in the open transaction */
	size_t unsent_bytes; /* of "OKOK...", committed but not yet written */
	bool peer_gone;      /* a send failed (EPIPE): OKs are dropped, records still read */
	bool flush_now;      /* OKs of names committed earlier wait in unsent_bytes */
	bool refused;        /* a registration here got no OK: the client may still wait for
			      * it, and would take the next OK for its own */
	struct conn *dirty_prev, *dirty_next;
	bool dirty;
	uint64_t window;          /* the commit delay's window it last registered in... */
	unsigned window_regs;     /* ...and how often it did there */
	struct conn *prev, *next; /* every open connection */
};

struct manager {
	struct manager_config cfg;
	struct evloop *loop;
	char tmpbase[PATH_MAX];     /* cfg.tmpbase made absolute, when it was relative */
	char dirpath[PATH_MAX];     /* as the clients know it: under $TMPDIR as given */
	char journal_dir[PATH_MAX]; /* the same without symlinks, as SQLite requires */
	char sockpath[PATH_MAX + sizeof("/" MGRDIR_SOCKET)];
	const char *dirname; /* last component of dirpath */
	int dirfd, lockfd, listenfd, shm_dirfd, sigfd;
	int reclaim_efd; /* the reclaim thread writes it when done; -1 */
	/* The reclaim thread's own descriptor of the directory, taken before it starts and
	 * closed by it: dirpath may lead elsewhere by the time it opens the journal. */
	int reclaim_dirfd;
	bool serving; /* listenfd is in the loop */
	bool failed;  /* the loop was stopped by a failure, not asked to: exit 1 */
	struct evloop_timer hold_timer, files_timer;
	/* The files as the manager made them, to notice a cleaner or a hand rm. */
	struct stat journal_st, wal_st, sock_st;
	struct journal_meta meta;
	struct journal *journal;
	char boot_id[UTIL_BOOT_ID_LEN + 1];
	unsigned nconns, next_conn_id;
	struct conn *conns;
	struct conn *dirty; /* connections owed OKs by the open transaction */
	struct evloop_timer shutdown_timer, flush_timer, prune_timer, accept_timer;
	struct journal_row prune_cursor;  /* last row the prune looked at */
	bool prune_resume;                /* false: the next prune starts from the first row */
	bool pass_open;                   /* a pass has begun and not reached the last row */
	int64_t pass_start_us;            /* when it began (monotonic) */
	unsigned long long pass_n0;       /* rows in the table when it began */
	unsigned long long pass_rows;     /* rows checked by the current pass */
	unsigned long long pass_regs;     /* registrations received during the current pass */
	unsigned long long slice_records; /* client records received since the last slice */
	bool reclaim_thread_started;
	bool reclaim_done; /* the thread said it is done (its journal connection closed) */
	struct log_limit accept_pause_log; /* under EMFILE the pause repeats ten times a second */
	unsigned sock_lost;                /* failed tries to restore the socket since it went */
	/* Why the last try failed: a retry that fails the same way is not logged again
	 * (a file at the path stays there until a human removes it). */
	char sock_why[PATH_MAX + 128];
	/* dirpath leads to another directory, or to nothing, and the directory could not be
	 * moved back (manager_check_path): nothing is done by path until it is. */
	bool displaced;
	char displaced_why[PATH_MAX + 128]; /* said once, and again only when it changes */
	bool dir_lost; /* the directory was removed and could not be made again: said once */
	pthread_t reclaim_thread;
	unsigned char rxbuf[WIRE_RECORD_SIZE * (READ_BATCH_RECORDS + 1)];
	struct regcache regs; /* registrations committed lately: conn_register */
	unsigned long long n_registered, n_freed, n_refused, n_pruned;
	unsigned long long n_already;            /* registrations answered by a committed row */
	unsigned long long n_prune_checked;      /* rows the prune looked at: its cost (#14) */
	unsigned long long n_commits, n_delayed; /* commits of registrations; of them delayed */
	/* The commit delay (manager_delay_commit): whether this batch's commit was delayed
	 * already; the current window's number (CLOCK_MONOTONIC / SIBLINGS_WINDOW_US) and
	 * counts, and the counts of the window just before it. */
	bool commit_delayed;
	uint64_t window;
	struct delay_window win_now, win_prev;
};

/* ---- connections ---------------------------------------------------------------- */

static void manager_arm_shutdown(struct manager *m);
static int64_t manager_now_us(void);
static void conn_on_event(struct evloop *loop, int fd, unsigned revents, void *data);

static void conn_mark_dirty(struct conn *c)
{
	struct manager *m = c->m;
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_prev = NULL;
	c->dirty_next = m->dirty;
	if (m->dirty)
		m->dirty->dirty_prev = c;
	m->dirty = c;
}

static void conn_unmark_dirty(struct conn *c)
{
	struct manager *m = c->m;
	if (!c->dirty)
		return;
	if (c->dirty_prev)
		c->dirty_prev->dirty_next = c->dirty_next;
	else
		m->dirty = c->dirty_next;
	if (c->dirty_next)
		c->dirty_next->dirty_prev = c->dirty_prev;
	c->dirty = false;
	c->dirty_prev = c->dirty_next = NULL;
}

static void conn_close(struct conn *c, const char *why)
{
	struct manager *m = c->m;
	if (why)
		log_warn("manager: client %u (pid %d): %s; closing the connection", c->id,
			 (int)c->peer_pid, why);
	else
		log_debug("manager: client %u (pid %d): disconnected", c->id, (int)c->peer_pid);
	/* Its staged registrations stay journaled: the objects may be shared with live
	 * processes, and the protocol says a hang-up frees nothing. */
	conn_unmark_dirty(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		m->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	evloop_del(m->loop, c->fd);
	close(c->fd);
	free(c);
	if (--m->nconns == 0)
		manager_arm_shutdown(m);
}

static unsigned conn_wanted_events(const struct conn *c)
{
	unsigned mask = c->unsent_bytes ? EVLOOP_WRITE : 0;
	if (c->unsent_bytes < 2 * MAX_UNSENT_OK)
		mask |= EVLOOP_READ;
	return mask;
}

/* Writes as much of the committed OKs as the socket takes. Returns -1 when the
 * connection broke (and was closed). */
static int conn_flush_oks(struct conn *c)
{
	static const char pattern[] =
		"OKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOK"
		"OKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOKOK";
	while (c->unsent_bytes) {
		/* An odd count means half an OK went out last time: resume at its 'K'. */
		size_t start = c->unsent_bytes % 2;
		size_t n = sizeof(pattern) - 1 - start;
		if (n > c->unsent_bytes)
			n = c->unsent_bytes;
		ssize_t w = send(c->fd, pattern + start, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (errno != EPIPE && errno != ECONNRESET) {
				conn_close(c, strerror(errno));
				return -1;
			}
			/* The client hung up, but records it wrote before that may still wait
			 * in our receive queue (200 registrations, then close): every complete
			 * record is processed, so keep reading until EOF; only the OKs are lost. */
			log_debug(
				"manager: client %u (pid %d): hung up before its OKs; reading what it sent",
				c->id, (int)c->peer_pid);
			c->peer_gone = true;
			c->unsent_bytes = 0;
			break;
		}
		c->unsent_bytes -= (size_t)w;
	}
	if (evloop_set_mask(c->m->loop, c->fd, conn_wanted_events(c)) < 0) {
		conn_close(c, "epoll_ctl failed");
		return -1;
	}
	return 0;
}

/* A failed statement may have rolled the whole transaction back: then every OK owed
 * by this batch must be withdrawn, or a client would be told OK for a lost row. */
static void manager_refuse_batch(struct manager *m, const char *why)
{
	unsigned refused = 0;
	while (m->dirty) {
		struct conn *c = m->dirty;
		refused += c->owed;
		c->refused = c->refused || c->owed;
		c->owed = 0;
		conn_unmark_dirty(c);
	}
	m->n_refused += refused;
	regcache_abort(&m->regs); /* what the batch staged was never journaled */
	if (refused)
		log_warn("manager: journal: %s; refused %u registration%s (no OK sent)", why,
			 refused, refused == 1 ? "" : "s");
}

/*
 * A registration of a name whose object exists and is the one this manager's committed
 * row covers (born by the row's time plus the birth window), on another connection,
 * less than half the grace after that row was committed and with no free or prune of
 * the name since, is answered without a write: the journal already holds a committed
 * row for that very object, which is all a reclaimer acts on after a crash, so every OK
 * still follows a commit of its name (docs/DESIGN.md, invariant 1). This is libshm's
 * receiving process registering the tensor it received with the sender's manager,
 * milliseconds after the sender: in a DataLoader, half of every manager's
 * registrations, each a commit of its own before.
 *
 * Writing the row again would move registered_at forward and forget an identity learned
 * for the earlier registration. Neither can make anyone unlink more: an older
 * registration time only narrows the birth window a reclaimer allows an unidentified
 * object (shmobj_born_by), and an identity narrows it to one object. Why the other
 * conditions:
 * - the object must exist: a row whose object does not exist yet is forgotten by the
 *   prune once it is older than the grace, and only a restarted row gives the client
 *   that answer's grace to create it;
 * - half the grace (and of the birth window): a client that replaces the object right
 *   after this answer still finds the row young, and its new object within the window;
 * - another connection: a client registering again on its own connection is the one
 *   that may replace its object, and is journaled again, as before.
 *
 * Order: OKs are indistinguishable bytes, and a client takes the next one for its
 * oldest registration. If this connection still waits for the commit of an earlier
 * registration, this OK waits behind it (and is withdrawn with it if that commit
 * fails); after a refusal here, nothing is answered from the cache on this connection,
 * as its client may still be waiting for the refused one's OK.
 */
static bool conn_register_committed(struct conn *c, const struct wire_msg *msg, uint64_t hash,
				    int64_t now_us)
{
	struct manager *m = c->m;
	int64_t window_s = m->cfg.prune_grace_s < SHMOBJ_BIRTH_WINDOW_S ? m->cfg.prune_grace_s
									: SHMOBJ_BIRTH_WINDOW_S;
	int64_t registered_s;
	struct shmobj_info o;
	if (c->refused || !regcache_covers(&m->regs, hash, msg->name, msg->name_len, c->id, now_us,
					   window_s * 1000000 / 2, &registered_s))
		return false;
	/* The cache keeps the second of the row's registration (or an earlier one): its
	 * start is never after the row's microsecond, so the window is never the wider. */
	if (shmobj_info(m->shm_dirfd, msg->name, &o) != 0 || !S_ISREG(o.mode) || !o.has_btime ||
	    !shmobj_born_by(o.btime_ns, registered_s * 1000000, SHMOBJ_BIRTH_WINDOW_S))
		return false;
	m->n_registered++;
	m->n_already++;
	if (c->owed) {
		c->owed++;
	} else if (!c->peer_gone) {
		c->unsent_bytes += WIRE_OK_LEN;
		c->flush_now = true;
	}
	log_debug("manager: client %u (pid %d): registered %s (committed already)", c->id,
		  (int)c->peer_pid, msg->name);
	return true;
}

/* A registration staged for the next commit, counted for the commit delay
 * (manager_delay_commit) in its window of SIBLINGS_WINDOW_US: windows lie on a fixed grid
 * of the monotonic clock, and the one before the current counts only if it is the one
 * just before, so the counts cover the last 100 to 200 ms. */
static void manager_count_registration(struct manager *m, struct conn *c, int64_t now_us)
{
	uint64_t w = (uint64_t)now_us / SIBLINGS_WINDOW_US;
	if (w != m->window) {
		m->win_prev = w == m->window + 1 ? m->win_now : (struct delay_window){ 0 };
		m->win_now = (struct delay_window){ 0 };
		m->window = w;
	}
	if (c->window != w) {
		c->window = w;
		c->window_regs = 0;
		m->win_now.siblings++;
	}
	c->window_regs++;
	m->win_now.regs++;
	if (c->window_regs > m->win_now.busiest)
		m->win_now.busiest = c->window_regs;
}

static void conn_register(struct conn *c, const struct wire_msg *msg)
{
	struct manager *m = c->m;
	int64_t now_us = manager_now_us();
	uint64_t hash = regcache_hash(msg->name, msg->name_len);
	if (conn_register_committed(c, msg, hash, now_us))
		return;
	int64_t wall_s = util_wall_s();
	if (journal_add(m->journal, msg->name, msg->name_len, c->peer_pid, wall_s) < 0) {
		const char *why = journal_error(m->journal);
		if (!journal_in_txn(m->journal))
			manager_refuse_batch(m, why);
		m->n_refused++;
		c->refused = true;
		log_warn("manager: client %u (pid %d): cannot journal %s: %s; refused (no OK sent)",
			 c->id, (int)c->peer_pid, msg->name, why);
		return;
	}
	regcache_stage(&m->regs, hash, msg->name, msg->name_len, c->id, now_us, wall_s);
	manager_count_registration(m, c, now_us);
	m->n_registered++;
	m->pass_regs++;
	c->owed++;
	conn_mark_dirty(c);
	log_debug("manager: client %u (pid %d): registered %s", c->id, (int)c->peer_pid, msg->name);
}

/* Records which object a row means (off the register path: at the prune tick). The
 * journal takes it only for an unidentified row whose object was born within the prune
 * grace, or the birth window if that is longer, after the registration (to the
 * nanosecond). Never within less than the window: a row left unidentified is judged by
 * the window after a crash anyway, so an identity learned within it only ever narrows
 * what a reclaimer takes (a grace of 0, to the microsecond, would identify nothing). */
static void manager_identify(struct manager *m, const char *name, size_t len,
			     const struct shmobj_info *o)
{
	int64_t window_s = m->cfg.prune_grace_s > SHMOBJ_BIRTH_WINDOW_S ? m->cfg.prune_grace_s
									: SHMOBJ_BIRTH_WINDOW_S;
	if (journal_identify(m->journal, name, len, o->ino, o->btime_ns, window_s) < 0) {
		log_warn("manager: journal: identify %s: %s", name, journal_error(m->journal));
		if (!journal_in_txn(m->journal))
			manager_refuse_batch(m, journal_error(m->journal));
	}
}

static void conn_free(struct conn *c, const struct wire_msg *msg)
{
	struct manager *m = c->m;
	m->n_freed++;
	/* Like the reference: another process may still hold the object, and then the
	 * name stays registered until shutdown or a prune sees it gone.
	 *
	 * The row is not identified here, though the object is at hand: the prune tick
	 * does it, within --prune-interval (1 s). Identifying here wrote a row of a second
	 * b-tree into the next commit, a second WAL frame: in a DataLoader (the sender's
	 * free finds the object the receiver still maps, every batch) it doubled the
	 * managers' pwrites and cost a fifth of their CPU per batch. What the tick's delay
	 * gives up: a row whose object is freed, kept, removed and its name made again by
	 * another program within that interval and within 10 s of the registration, with
	 * this manager killed in between, is judged by the birth window (a reclaimer
	 * unlinks that other object if nobody holds it), as every row is in its first
	 * second anyway. */
	if (shmobj_exists(m->shm_dirfd, msg->name)) {
		log_debug("manager: client %u (pid %d): free %s: object still exists, kept", c->id,
			  (int)c->peer_pid, msg->name);
		return;
	}
	regcache_forget(&m->regs, msg->name, msg->name_len);
	if (journal_forget(m->journal, msg->name, msg->name_len) < 0) {
		/* Harmless: the name stays journaled and a prune or reclaim drops it later. */
		log_warn("manager: journal: forget %s: %s", msg->name, journal_error(m->journal));
		if (!journal_in_txn(m->journal))
			manager_refuse_batch(m, journal_error(m->journal));
		return;
	}
	log_debug("manager: client %u (pid %d): freed %s", c->id, (int)c->peer_pid, msg->name);
}

/* Handles the complete records in buf; keeps a trailing partial one. Returns -1 when
 * the connection was closed for bad input. */
static int conn_consume(struct conn *c, const unsigned char *buf, size_t len)
{
	size_t off = 0;
	for (; len - off >= WIRE_RECORD_SIZE; off += WIRE_RECORD_SIZE) {
		struct wire_msg msg;
		enum wire_status st = wire_decode(buf + off, &msg);
		if (st != WIRE_MSG_OK) {
			char why[128];
			snprintf(why, sizeof(why), "bad record: %s", wire_status_str(st));
			conn_close(c, why);
			return -1;
		}
		c->m->slice_records++;
		if (msg.is_free)
			conn_free(c, &msg);
		else
			conn_register(c, &msg);
	}
	c->partial_len = len - off;
	memcpy(c->partial, buf + off, c->partial_len);
	return 0;
}

static void conn_read(struct conn *c)
{
	struct manager *m = c->m;
	memcpy(m->rxbuf, c->partial, c->partial_len);
	size_t have = c->partial_len;
	ssize_t n = recv(c->fd, m->rxbuf + have, sizeof(m->rxbuf) - have, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_close(c, errno == ECONNRESET ? NULL : strerror(errno));
		return;
	}
	if (n == 0) {
		/* Every complete record was handled in earlier reads; what is left is a
		 * record the client never finished. */
		conn_close(c, c->partial_len ? "disconnected in the middle of a record" : NULL);
		return;
	}
	if (conn_consume(c, m->rxbuf, have + (size_t)n) == 0 && c->flush_now) {
		c->flush_now = false;
		conn_flush_oks(c);
	}
}

static void conn_on_event(struct evloop *loop, int fd, unsigned revents, void *data)
{
	(void)loop;
	(void)fd;
	struct conn *c = data;
	if ((revents & EVLOOP_WRITE) && conn_flush_oks(c) < 0)
		return;
	if (revents & EVLOOP_READ)
		conn_read(c);
}

/* ---- accepting -------------------------------------------------------------------- */

static void manager_on_listen(struct evloop *loop, int fd, unsigned revents, void *data);

static void manager_resume_accept(struct evloop *loop, void *data)
{
	struct manager *m = data;
	evloop_set_mask(loop, m->listenfd, EVLOOP_READ);
}

static void manager_accept_one(struct manager *m, int cfd)
{
	pid_t pid = 0;
	uid_t uid = (uid_t)-1;
	if (net_peercred(cfd, &pid, &uid) < 0 || uid != geteuid()) {
		log_warn(
			"manager: refused a connection from uid %d (pid %d): only uid %d may use this manager",
			(int)uid, (int)pid, (int)geteuid());
		close(cfd);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		log_warn("manager: out of memory: refused a connection from pid %d", (int)pid);
		close(cfd);
		return;
	}
	*c = (struct conn){ .m = m, .fd = cfd, .id = ++m->next_conn_id, .peer_pid = pid };
	if (evloop_add(m->loop, cfd, EVLOOP_READ, conn_on_event, c) < 0) {
		log_warn("manager: epoll: %s: refused a connection from pid %d", strerror(errno),
			 (int)pid);
		close(cfd);
		free(c);
		return;
	}
	c->next = m->conns;
	if (m->conns)
		m->conns->prev = c;
	m->conns = c;
	if (m->nconns++ == 0)
		evloop_timer_cancel(m->loop, &m->shutdown_timer);
	log_debug("manager: client %u (pid %d): connected", c->id, (int)pid);
}

static void manager_on_listen(struct evloop *loop, int fd, unsigned revents, void *data)
{
	(void)revents;
	struct manager *m = data;
	for (int i = 0; i < 64; i++) {
		int cfd = net_accept(fd);
		if (cfd >= 0) {
			manager_accept_one(m, cfd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Level-triggered epoll would wake us again at once: stop listening for
			 * a moment instead of spinning; waiting clients stay in the backlog. */
			log_warn_limited(&m->accept_pause_log,
					 "manager: accept: %s; pausing new connections for %d ms",
					 strerror(errno), ACCEPT_RETRY_MS);
			evloop_set_mask(loop, fd, 0);
			evloop_timer_arm(loop, &m->accept_timer, ACCEPT_RETRY_MS);
		} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
			log_warn("manager: accept: %s", strerror(errno));
		}
		return;
	}
}

/* ---- group commit, flush, prune, shutdown timers ---------------------------------- */

static void manager_commit(struct manager *m)
{
	evloop_timer_cancel(m->loop, &m->flush_timer);
	if (!journal_in_txn(m->journal))
		return;
	if (journal_commit(m->journal) < 0) {
		manager_refuse_batch(m, journal_error(m->journal));
		return;
	}
	regcache_commit(&m->regs);
	if (m->dirty) {
		m->n_commits++;
		m->n_delayed += m->commit_delayed;
	}
	while (m->dirty) {
		struct conn *c = m->dirty;
		conn_unmark_dirty(c);
		if (!c->peer_gone)
			c->unsent_bytes += (size_t)c->owed * WIRE_OK_LEN;
		c->owed = 0;
		conn_flush_oks(c);
	}
}

static void manager_on_flush_timer(struct evloop *loop, void *data)
{
	(void)loop;
	struct manager *m = data;
	manager_commit(m);
}

/* Whether to delay this batch's commit (evloop_pause) so that registrations arriving
 * meanwhile share it: PostgreSQL's commit_delay and commit_siblings. A commit costs a
 * SQLite transaction, about 15 us of CPU and 8 system calls whatever it holds (README,
 * Performance), and a manager facing 256 clients, which never caught up with them, was
 * found committing about one registration at a time: what came in during one commit
 * made the next (5.7 to 6.4 fcntl a pair: SQLite's 6 WAL locks a commit). Its CPU per
 * pair was then a commit, however fast or slow its clients sent; a pause of 100 us
 * gathered 8 to 30 pairs a commit, and the CPU per pair fell by a quarter. The rule,
 * on the counts of the current window of SIBLINGS_WINDOW_US and the one before: at
 * least cfg.commit_siblings connections registered; those of all but the busiest came
 * at one per delay or faster (so one is likely to arrive during the pause: the one
 * being answered waits for its OK and cannot); and none registered more often than
 * once per DELAY_BUSIEST_CYCLES delays (so the pause is a small part of any client's
 * cycle). That is many clients each of which registers seldom, as 256 clients sharing
 * a CPU do. A client that registers as fast as it is answered, beside others that
 * seldom do, would only be slowed: a new user's trial found its rate halved by an
 * earlier rule that counted all registrations alike. A manager of a few clients (a
 * DataLoader worker's serves the worker and the main process) never waits. Durability
 * is unchanged: the OKs are written after the commit, as ever, and the delay moves both
 * later (a crash meanwhile loses registrations no client was told of). */
static bool manager_delay_commit(const struct manager *m)
{
	int64_t delay = m->cfg.commit_delay_us;
	if (m->commit_delayed || delay <= 0)
		return false;
	const struct delay_window *a = &m->win_now, *b = &m->win_prev;
	unsigned siblings = MAX(a->siblings, b->siblings);
	unsigned others = MAX(a->regs - a->busiest, b->regs - b->busiest);
	unsigned busiest = MAX(a->busiest, b->busiest);
	return siblings >= (unsigned)m->cfg.commit_siblings &&
	       (int64_t)others * delay >= SIBLINGS_WINDOW_US &&
	       (int64_t)busiest * delay * DELAY_BUSIEST_CYCLES <= SIBLINGS_WINDOW_US;
}

/* Runs once per wake-up, after every ready connection was read. */
static void manager_before_sleep(struct evloop *loop, void *data)
{
	struct manager *m = data;
	log_flush(); /* lines a full stderr did not take (log.h): never waits */
	if (m->dirty && manager_delay_commit(m)) {
		m->commit_delayed = true;
		evloop_pause(loop, m->cfg.commit_delay_us);
		return;
	}
	if (m->dirty)
		manager_commit(m);
	else if (journal_in_txn(m->journal) && !evloop_timer_armed(&m->flush_timer))
		evloop_timer_arm(loop, &m->flush_timer, FLUSH_FREES_MS);
	m->commit_delayed = false;
}

static void manager_on_shutdown_timer(struct evloop *loop, void *data)
{
	struct manager *m = data;
	if (m->nconns == 0) {
		log_debug("manager: no client for %d ms: shutting down",
			  m->cfg.shutdown_timeout_ms);
		evloop_stop(loop);
	}
}

static void manager_arm_shutdown(struct manager *m)
{
	evloop_timer_arm(m->loop, &m->shutdown_timer, m->cfg.shutdown_timeout_ms);
}

static int64_t manager_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* How long a busy pass may take: (grace + interval) / PRUNE_PASS_DIVISOR, microseconds. */
static int64_t manager_pass_us(const struct manager *m)
{
	return ((int64_t)m->cfg.prune_grace_s * 1000000 +
		(int64_t)m->cfg.prune_interval_ms * 1000) /
	       PRUNE_PASS_DIVISOR;
}

/* Rows the current pass should have checked by now: the rows it may have to check (the
 * table as counted when it began, plus one for every registration since, which may have
 * added a row after the cursor), spread evenly over manager_pass_us(). */
static unsigned long long manager_pass_due(const struct manager *m, int64_t now_us)
{
	int64_t span = manager_pass_us(m), e = now_us - m->pass_start_us;
	if (span <= 0 || e >= span)
		return ULLONG_MAX;
	return (unsigned long long)((double)(m->pass_n0 + m->pass_regs) * (double)e / (double)span);
}

/* Milliseconds until the current pass is due another page (at least 1). */
static unsigned manager_pass_wait_ms(const struct manager *m, int64_t now_us)
{
	unsigned long long rows = m->pass_n0 + m->pass_regs;
	int64_t span = manager_pass_us(m);
	if (rows == 0 || span <= 0)
		return 1;
	double at_us = (double)(m->pass_rows + PRUNE_PAGE) * (double)span / (double)rows;
	double wait_ms = (at_us - (double)(now_us - m->pass_start_us)) / 1000.0 + 1.0;
	if (wait_ms < 1)
		return 1;
	return wait_ms > (double)span / 1000.0 ? (unsigned)(span / 1000) + 1 : (unsigned)wait_ms;
}

/* Drops rows whose object is gone although no free said so (a client killed before its
 * free, or freed through another manager), and learns which object each row means.
 * Young rows are not dropped: their client may be about to create the object.
 *
 * Pacing (issue 14). A pass over the table runs in slices of at most PRUNE_SLICE_US,
 * each ended by a commit and followed by a poll, so a client waits at most one slice for
 * the loop. When no client sent anything since the last slice, the next comes at once
 * (an idle manager drains a backlog at full speed). Otherwise the pass is spread over
 * P = (grace + interval) / 4 (2.75 s at the defaults): by time e into it, it has checked
 * at least (N0 + G) e / P rows, N0 being the table's rows when it began and G the
 * registrations since (each may add a row after the cursor), so it ends within P. A
 * finished pass waits prune_interval_ms for the next. The cost is one look at each row
 * per P + interval, whatever the registration rate: a pass every interval looked 3.75
 * times as often at the defaults, and with 40,000 live names under callgrind that was half
 * of the manager's instructions per pair (#14).
 *
 * The bound this keeps, with L live rows and R registrations a second: a row that turns
 * stale at grace is dropped by the pass in progress or the next, at most grace + P +
 * interval + P after it was added, so the table holds at most S <= R (grace + interval +
 * 2P) = 1.5 R (grace + interval) stale rows, within the L + 2 R (grace + interval) stated
 * since issue 12, at any registration rate whose pace the CPU can follow.
 *
 * A row younger than the grace that is already identified is not looked up: it cannot be
 * dropped and there is nothing to learn. */
static void manager_on_prune_timer(struct evloop *loop, void *data)
{
	struct manager *m = data;
	struct journal_row rows[PRUNE_PAGE];
	int64_t now_us = util_wall_us(), t0 = manager_now_us(), t = t0;
	int64_t grace_us = (int64_t)m->cfg.prune_grace_s * 1000000;
	bool pass_done = false;
	bool idle = m->slice_records == 0;
	m->slice_records = 0;
	if (!m->pass_open) {
		int64_t count = journal_count(m->journal);
		if (count < 0) /* paced by registrations alone, then: still ends */
			log_warn("manager: journal: prune: %s", journal_error(m->journal));
		m->pass_open = true;
		m->pass_start_us = t0;
		m->pass_n0 = count > 0 ? (unsigned long long)count : 0;
		m->pass_rows = m->pass_regs = 0;
	}
	do {
		int n = journal_page(m->journal, m->prune_resume ? &m->prune_cursor : NULL, rows,
				     PRUNE_PAGE);
		if (n < 0) {
			log_warn("manager: journal: prune: %s", journal_error(m->journal));
			pass_done = true; /* start over after the interval */
			break;
		}
		for (int i = 0; i < n; i++) {
			/* To the microsecond: whole seconds made the grace up to 1 s short
			 * (registered at x.9 s, dropped at x+grace s). Written so that an
			 * adopted row's time, read from a dead journal, cannot overflow. */
			bool young = rows[i].registered_us > now_us - grace_us;
			if (young && rows[i].identified)
				continue;
			struct shmobj_info o;
			int found = shmobj_info(m->shm_dirfd, rows[i].name, &o);
			if (found == 0 || errno != ENOENT) {
				/* Learned here, a row says which object it means should this
				 * manager die: a reclaimer then leaves any other object of that
				 * name alone. */
				if (found == 0 && !rows[i].identified && o.has_btime &&
				    S_ISREG(o.mode))
					manager_identify(m, rows[i].name, rows[i].len, &o);
				continue;
			}
			if (young)
				continue;
			regcache_forget(&m->regs, rows[i].name, rows[i].len);
			if (journal_forget(m->journal, rows[i].name, rows[i].len) == 0)
				m->n_pruned++;
		}
		/* The identities of this slice's names whose registration is gone (the
		 * free path never deletes them); with the pass's last page, to the end. */
		if (journal_drop_stale_identities(m->journal,
						  m->prune_resume ? &m->prune_cursor : NULL,
						  n == PRUNE_PAGE ? &rows[n - 1] : NULL) < 0)
			log_warn("manager: journal: prune: %s", journal_error(m->journal));
		m->pass_rows += (unsigned)n;
		m->n_prune_checked += (unsigned)n;
		if (n > 0) {
			m->prune_cursor = rows[n - 1];
			m->prune_resume = true;
		}
		if (n < PRUNE_PAGE)
			pass_done = true;
		t = manager_now_us();
	} while (!pass_done && t - t0 < PRUNE_SLICE_US &&
		 (idle || m->pass_rows < manager_pass_due(m, t)));
	manager_commit(m);
	if (pass_done) {
		/* Give pages back so the files follow the live set. */
		m->prune_resume = false;
		m->pass_open = false;
		if (journal_compact(m->journal) < 0)
			log_warn("manager: journal: compact: %s", journal_error(m->journal));
		evloop_timer_arm(loop, &m->prune_timer, m->cfg.prune_interval_ms);
		return;
	}
	bool behind = m->pass_rows < manager_pass_due(m, t);
	evloop_timer_arm(loop, &m->prune_timer, idle || behind ? 0 : manager_pass_wait_ms(m, t));
}

static void manager_on_signal(struct evloop *loop, int fd, unsigned revents, void *data)
{
	(void)revents;
	(void)data;
	struct signalfd_siginfo si;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		log_info("manager: signal %u: shutting down", si.ssi_signo);
		evloop_stop(loop);
	}
}

/* ---- reclaiming dead managers' directories at start ------------------------------- */

/* Runs in its own thread, with its own journal connection, so the socket line is
 * printed and clients are served while /proc is scanned and old objects unlinked.
 * Names still in use are adopted into this manager's journal. */
static void *manager_reclaim_thread(void *arg)
{
	struct manager *m = arg;
	char err[256];
	struct journal *own = NULL;
	struct inuse *idx = NULL;
	int basefd = -1;
	/* Through the directory's descriptor, not its path: renamed in the moment between
	 * our start and this open (mv D D.old; cp -a D.old D), the path leads to a copy,
	 * and the names adopted into it would be in no journal of ours. */
	if (journal_open_dirfd(m->reclaim_dirfd, m->journal_dir, 0, &own, err, sizeof(err)) < 0) {
		log_warn("manager: reclaim at start: %s", err);
		goto out;
	}
	basefd = open(m->cfg.tmpbase, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (basefd < 0) {
		log_warn("manager: reclaim at start: open %s: %s", m->cfg.tmpbase, strerror(errno));
		goto out;
	}
	dev_t shm_dev;
	if (shmobj_dir_dev(m->shm_dirfd, &shm_dev, err, sizeof(err)) < 0 ||
	    !(idx = inuse_new("/proc", shm_dev, err, sizeof(err)))) {
		log_warn("manager: reclaim at start: %s", err);
		goto out;
	}
	struct reclaim_opts opts = {
		.inuse = idx,
		.shm_dirfd = m->shm_dirfd,
		.boot_id = m->boot_id,
		.adopt_into = own,
		.skip_name = m->dirname,
		.now_s = util_wall_s(),
		/* A sibling killed between a registration's OK and its client's shm_open:
		 * the row is adopted with its registration time, so this manager's prune
		 * gives it the rest of the grace it would have had (SECURITY.md). */
		.young_s = m->cfg.prune_grace_s,
		.now_us = util_wall_us(),
		/* Siblings our /proc does not show (we run in a container) are found by
		 * their lock in our base; our own directory is not another's. */
		.live_bases = &basefd,
		.nlive_bases = 1,
		.own_dirfd = m->reclaim_dirfd,
	};
	int failed = reclaim_base(&opts, basefd, geteuid(), NULL, NULL);
	if (failed > 0)
		log_warn(
			"manager: reclaim at start: %d director%s could not be reclaimed (see above)",
			failed, failed == 1 ? "y" : "ies");
out:
	inuse_free(idx);
	if (basefd >= 0)
		close(basefd);
	journal_close(own);
	close(m->reclaim_dirfd);
	/* Done, whatever happened: the loop may serve now. */
	uint64_t one = 1;
	if (write(m->reclaim_efd, &one, sizeof(one)) < 0)
		log_warn("manager: reclaim at start: eventfd: %s", strerror(errno));
	return NULL;
}

/* Starts answering clients: until now they queued in the listen backlog (connect()
 * succeeds at once, and their first record waits in the socket). */
static void manager_serve(struct manager *m)
{
	if (m->serving)
		return;
	evloop_timer_cancel(m->loop, &m->hold_timer);
	if (evloop_add(m->loop, m->listenfd, EVLOOP_READ, manager_on_listen, m) < 0) {
		log_error("manager: epoll_ctl: %s: cannot serve", strerror(errno));
		/* Its clients wait in the backlog for answers that will never come: a
		 * failure, not an idle shutdown (their libshm sees the connection refused
		 * or reset and says so; the caller sees exit status 1). */
		m->failed = true;
		evloop_stop(m->loop);
		return;
	}
	m->serving = true;
	/* The idle clock starts now: clients waiting in the backlog are not idle time. */
	if (m->nconns == 0)
		manager_arm_shutdown(m);
}

static void manager_on_reclaimed(struct evloop *loop, int fd, unsigned revents, void *data)
{
	(void)loop;
	(void)revents;
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0 && errno == EAGAIN)
		return;
	struct manager *m = data;
	m->reclaim_done = true;
	evloop_del(m->loop, fd);
	manager_serve(m);
}

static void manager_on_hold_timer(struct evloop *loop, void *data)
{
	(void)loop;
	struct manager *m = data;
	log_warn("manager: reclaim at start still running after %d ms: serving now; dead "
		 "managers' objects may hold /dev/shm space a little longer",
		 RECLAIM_HOLD_MS);
	manager_serve(m);
}

/* Space before service: the adoption runs in a thread (the socket line is printed at
 * once), and the first registration is answered once the dead siblings' leaks are
 * unlinked, or RECLAIM_HOLD_MS later at most, whichever comes first. */
static void manager_start_reclaim(struct manager *m)
{
	if (!m->cfg.reclaim_on_start)
		goto serve;
	m->reclaim_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->reclaim_efd < 0) {
		log_warn("manager: reclaim at start: eventfd: %s", strerror(errno));
		goto serve;
	}
	if (evloop_add(m->loop, m->reclaim_efd, EVLOOP_READ, manager_on_reclaimed, m) < 0) {
		log_warn("manager: reclaim at start: cannot wait for it: %s", strerror(errno));
		goto serve;
	}
	evloop_timer_arm(m->loop, &m->hold_timer, RECLAIM_HOLD_MS);
	m->reclaim_dirfd = fcntl(m->dirfd, F_DUPFD_CLOEXEC, 0);
	if (m->reclaim_dirfd < 0) {
		log_warn("manager: reclaim at start: dup: %s", strerror(errno));
		goto serve;
	}
	int rc = pthread_create(&m->reclaim_thread, NULL, manager_reclaim_thread, m);
	if (rc != 0) {
		log_warn("manager: reclaim at start: pthread_create: %s", strerror(rc));
		close(m->reclaim_dirfd);
		goto serve;
	}
	m->reclaim_thread_started = true;
	return;
serve:
	manager_serve(m);
}

/* ---- the manager's files: noticed when they vanish, restored ---------------------- */

/* Remembers which journal files are ours (the -wal exists from the schema commit on,
 * and journal_size_limit only truncates it while the manager lives). */
static void manager_note_journal(struct manager *m)
{
	fstatat(m->dirfd, JOURNAL_FILE, &m->journal_st, AT_SYMLINK_NOFOLLOW);
	fstatat(m->dirfd, JOURNAL_FILE "-wal", &m->wal_st, AT_SYMLINK_NOFOLLOW);
}

/* 0 when dirfd/file is still the file st describes. */
static int manager_same_file(struct manager *m, const char *file, const struct stat *st)
{
	struct stat now;
	if (fstatat(m->dirfd, file, &now, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	return now.st_dev == st->st_dev && now.st_ino == st->st_ino ? 0 : -1;
}

/* The directory itself was removed (rm -r, a reaper that empties then rmdirs): make it
 * again at the same path, the one clients know, and lock it. */
static int manager_restore_dir(struct manager *m)
{
	char err[256];
	if (mkdir(m->dirpath, 0700) < 0) {
		if (!m->dir_lost)
			log_error("manager: %s was removed and cannot be made again: %s (tried "
				  "again every %d ms, said once)",
				  m->dirpath, strerror(errno), FILES_CHECK_MS);
		m->dir_lost = true;
		return -1;
	}
	m->dir_lost = false;
	int dfd = open(m->dirpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || mgrdir_lock_dir(dfd, err, sizeof(err)) < 0) {
		log_error("manager: %s: %s", m->dirpath, dfd < 0 ? strerror(errno) : err);
		if (dfd >= 0)
			close(dfd);
		return -1;
	}
	close(m->dirfd);
	m->dirfd = dfd;
	return 0;
}

/* A new journal holding the live set: every row of the old handle (whose files are
 * unlinked but still open), under the same manager row. Made aside and renamed in
 * (journal_rebuild), never built in place: a reclaimer reading it meanwhile must find
 * either no journal (cannot be read: it keeps everything of ours) or all of it. Built
 * in place, the schema and manager row came first, and a sweep that read it then, with
 * no rows yet, unlinked a name this manager holds that a dead journal listed too. The
 * window without a journal on disk is the few milliseconds of the rebuild. */
static int manager_restore_journal(struct manager *m)
{
	char err[PATH_MAX + 320];
	struct journal *nj = NULL;
	struct journal_row *rows = NULL;
	size_t n = 0, cap = 0;
	int rc = -1;
	manager_commit(m);
	for (;;) {
		if (n + PRUNE_PAGE > cap) {
			cap = cap ? cap * 2 : 4 * PRUNE_PAGE;
			struct journal_row *nr = realloc(rows, cap * sizeof(*rows));
			if (!nr) {
				log_error("manager: restoring the journal: out of memory");
				goto out;
			}
			rows = nr;
		}
		int got = journal_page(m->journal, n ? &rows[n - 1] : NULL, rows + n, PRUNE_PAGE);
		if (got < 0) {
			log_error("manager: restoring the journal: %s", journal_error(m->journal));
			goto out;
		}
		n += (size_t)got;
		if (got < PRUNE_PAGE)
			break;
	}
	/* Each row as it was: its registration time and the object it means, if learned;
	 * all of them or none (then the old handle stays, and the next check tries again). */
	if (journal_rebuild(m->journal_dir, m->dirfd, &m->meta, rows, n, &nj, err, sizeof(err)) <
	    0) {
		log_error("manager: restoring the journal: %s", err);
		goto out;
	}
	journal_abandon(m->journal);
	m->journal = nj;
	nj = NULL;
	regcache_clear(&m->regs); /* it speaks of the old handle's commits */
	m->prune_resume = false;
	m->pass_open = false;
	manager_note_journal(m);
	log_warn("manager: journal restored in %s with the %zu name%s still registered", m->dirpath,
		 n, n == 1 ? "" : "s");
	rc = 0;
out:
	free(rows);
	return rc;
}

/* Listens at the socket path again. A failure leaves nothing at the path: a socket file
 * nobody accepts on would queue a new client for an answer that never comes (a listening
 * socket outside the loop), or, closed, would take the path so no later bind could have
 * it. Without a file a new client fails at once (ENOENT, libshm says so); the clients
 * connected go on being served, and the next check (FILES_CHECK_MS) tries again. */
static void manager_restore_socket(struct manager *m)
{
	char err[PATH_MAX + 64];
	int fd = net_unix_listen(m->sockpath, LISTEN_BACKLOG, err, sizeof(err));
	if (fd >= 0 && m->serving &&
	    evloop_add(m->loop, fd, EVLOOP_READ, manager_on_listen, m) < 0) {
		util_err(err, sizeof(err), "epoll_ctl: %s", strerror(errno));
		close(fd);
		unlink(m->sockpath); /* ours: bound a moment ago in our 0700 directory */
		fd = -1;
	}
	if (fd < 0) {
		if (m->sock_lost++ == 0)
			log_error("manager: restoring the socket: %s: new clients cannot connect "
				  "until it is restored (tried again every %d ms, said again "
				  "only when the cause changes; what is at the path is left "
				  "alone); connected clients are still served",
				  err, FILES_CHECK_MS);
		else if (strcmp(err, m->sock_why) != 0)
			log_warn("manager: restoring the socket, try %u: %s", m->sock_lost, err);
		util_strlcpy(m->sock_why, err, sizeof(m->sock_why));
		return;
	}
	if (m->serving)
		evloop_del(m->loop, m->listenfd);
	close(m->listenfd);
	m->listenfd = fd;
	fstatat(m->dirfd, MGRDIR_SOCKET, &m->sock_st, AT_SYMLINK_NOFOLLOW);
	if (m->sock_lost)
		log_warn("manager: socket %s restored at try %u", m->sockpath, m->sock_lost + 1);
	else
		log_warn("manager: socket %s restored", m->sockpath);
	m->sock_lost = 0;
	m->sock_why[0] = '\0';
}

/* Where the directory is now: a descriptor (O_PATH) of the directory that holds it, its
 * name there and, for messages, its path. Each candidate is checked by dev/ino, so a
 * directory that took its old name is never taken for it. Tried in order: dirpath
 * (the usual case: no /proc needed, as in a chroot), /proc/self/fd/N (whatever the
 * permissions of the directory now holding it), and "..", scanned for the entry with
 * its inode (no /proc, or a path past PATH_MAX, where readlink says ENAMETOOLONG).
 * 0, or -1 when it cannot be found. */
static int manager_dir_where(const struct manager *m, const struct stat *self, int *parentfd,
			     char *name, size_t namelen, char *where, size_t wherelen)
{
	char path[PATH_MAX], link[64];
	struct stat st;
	for (int i = 0; i < 2; i++) {
		if (i == 0) {
			util_strlcpy(path, m->dirpath, sizeof(path));
		} else {
			snprintf(link, sizeof(link), "/proc/self/fd/%d", m->dirfd);
			ssize_t n = readlink(link, path, sizeof(path) - 1);
			if (n <= 0 || path[0] != '/')
				continue;
			path[n] = '\0';
		}
		char *slash = strrchr(path, '/');
		if (!slash || !slash[1] || strlen(slash + 1) >= namelen)
			continue;
		util_strlcpy(where, path, wherelen);
		util_strlcpy(name, slash + 1, namelen);
		*slash = '\0';
		int pfd = open(path[0] ? path : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (pfd >= 0 && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == self->st_dev && st.st_ino == self->st_ino) {
			*parentfd = pfd;
			return 0;
		}
		if (pfd >= 0)
			close(pfd);
	}
	int pfd = openat(m->dirfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	/* A fresh open for readdir: fdopendir takes its descriptor, pfd is returned. */
	int sfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = sfd >= 0 ? fdopendir(sfd) : NULL;
	if (!d) {
		if (sfd >= 0)
			close(sfd);
		close(pfd);
		return -1;
	}
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		found = de->d_ino == self->st_ino && strcmp(de->d_name, ".") != 0 &&
			strcmp(de->d_name, "..") != 0 && strlen(de->d_name) < namelen &&
			fstatat(pfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			st.st_dev == self->st_dev && st.st_ino == self->st_ino;
		if (found) {
			util_strlcpy(name, de->d_name, namelen);
			snprintf(where, wherelen,
				 "%s (in a directory whose path is too long to "
				 "name, or unknown without /proc)",
				 name);
		}
	}
	closedir(d);
	if (!found) {
		close(pfd);
		return -1;
	}
	*parentfd = pfd;
	return 0;
}

/*
 * The directory was renamed or moved within its filesystem (mv, a cleaner that moves to
 * a trash): everything relative to dirfd still works, but dirpath, the one name every
 * new client knows (libshm was handed the socket path), leads elsewhere or nowhere.
 * Why moving it back is sound: the path is the manager's contract with its clients, and
 * nobody else may use it while the manager lives (its flock says so, as for a hand rm,
 * which is undone by making the directory again); the move is undone with
 * RENAME_NOREPLACE, so whatever has appeared at the path meanwhile is never replaced,
 * and the result is checked by inode. Why not otherwise: when something else holds the
 * path (mv D D.old; cp -a D.old D, another directory), or the move cannot be undone
 * (the directory now holding it is not writable by us, EACCES; a filesystem without
 * RENAME_NOREPLACE, EINVAL), that thing is not ours: the manager goes on serving the
 * clients connected, from its directory where it is, does nothing at dirpath (no
 * socket or journal made there, nothing unlinked there at shutdown; the shutdown
 * finds its directory by inode), says so once, and tries again at every check.
 * 0 when dirpath leads to the directory (again), -1 when it does not.
 */
static int manager_check_path(struct manager *m, const struct stat *self)
{
	struct stat st;
	int lrc = lstat(m->dirpath, &st);
	int lerr = lrc < 0 ? errno : 0;
	if (lrc == 0 && st.st_dev == self->st_dev && st.st_ino == self->st_ino) {
		if (m->displaced)
			log_warn("manager: %s leads to the manager's directory again: new clients "
				 "reach it",
				 m->dirpath);
		m->displaced = false;
		m->displaced_why[0] = '\0';
		return 0;
	}
	bool occupied = lrc == 0;
	char why[sizeof(m->displaced_why)];
	char name[NAME_MAX + 1], where[PATH_MAX];
	int pfd = -1;
	if (manager_dir_where(m, self, &pfd, name, sizeof(name), where, sizeof(where)) < 0) {
		util_err(why, sizeof(why),
			 "its directory was renamed, and its new name cannot "
			 "be found");
	} else if (occupied) {
		util_err(why, sizeof(why),
			 "its directory was renamed to %s, and something else "
			 "now has its path (left alone)",
			 where);
	} else if (lerr != ENOENT) {
		util_err(why, sizeof(why), "its directory was renamed to %s; lstat %s: %s", where,
			 m->dirpath, strerror(lerr));
	} else if (renameat2(pfd, name, AT_FDCWD, m->dirpath, RENAME_NOREPLACE) < 0) {
		util_err(why, sizeof(why),
			 "its directory was renamed to %s and cannot be moved "
			 "back: %s",
			 where, strerror(errno));
	} else if (lstat(m->dirpath, &st) == 0 && st.st_dev == self->st_dev &&
		   st.st_ino == self->st_ino) {
		log_warn("manager: %s was renamed to %s under the live manager: moved back",
			 m->dirpath, where);
		close(pfd);
		m->displaced = false;
		m->displaced_why[0] = '\0';
		return 0;
	} else {
		util_err(why, sizeof(why),
			 "its directory, renamed to %s, was moved back and "
			 "renamed again at once",
			 where);
	}
	if (pfd >= 0)
		close(pfd);
	if (!m->displaced || strcmp(why, m->displaced_why) != 0)
		log_error("manager: %s: %s: new clients at %s cannot reach this manager; it keeps "
			  "serving the %u connected from where its directory is now, makes and "
			  "removes nothing at %s, and tries again every %d ms (said again only "
			  "when the cause changes)",
			  m->dirpath, why, m->sockpath, m->nconns, m->dirpath, FILES_CHECK_MS);
	m->displaced = true;
	util_strlcpy(m->displaced_why, why, sizeof(m->displaced_why));
	return -1;
}

/* A live manager is never taken over (its directory flock keeps systemd-tmpfiles and
 * every prober off), but a hand rm or a reaper that ignores locks can still unlink its
 * files. Registrations acknowledged into an unlinked journal would be lost to a
 * reclaimer after a SIGKILL, so every FILES_CHECK_MS the manager checks its directory,
 * lock file, journal (db and -wal) and socket by inode, says what vanished, and makes
 * them again. */
static void manager_check_files(struct manager *m)
{
	struct stat st;
	bool all = false;
	if (fstat(m->dirfd, &st) < 0)
		return;
	if (st.st_nlink == 0) {
		if (!m->dir_lost)
			log_warn("manager: %s was removed under the live manager: making it again",
				 m->dirpath);
		if (manager_restore_dir(m) < 0)
			return;
		all = true;
		m->displaced = false;
		m->displaced_why[0] = '\0';
	} else {
		/* Displaced: only what goes through dirfd (the lock) is restored below; the
		 * journal and the socket are made by path. */
		manager_check_path(m, &st);
	}
	struct stat lst;
	if (all || fstat(m->lockfd, &lst) < 0 || manager_same_file(m, MGRDIR_LOCK, &lst) < 0) {
		char err[256];
		int fd = -1;
		if (!all)
			log_warn("manager: %s/%s vanished: making it again", m->dirpath,
				 MGRDIR_LOCK);
		if (mgrdir_create_lock(m->dirfd, &fd, err, sizeof(err)) < 0) {
			log_error("manager: restoring the lock file: %s", err);
		} else {
			close(m->lockfd);
			m->lockfd = fd;
		}
	}
	/* The reclaim thread has its own connection to the journal: restore after it. */
	if (m->displaced)
		return;
	if (!m->reclaim_thread_started || m->reclaim_done) {
		bool db = manager_same_file(m, JOURNAL_FILE, &m->journal_st) == 0;
		bool wal = manager_same_file(m, JOURNAL_FILE "-wal", &m->wal_st) == 0;
		if (all || !db || !wal) {
			if (!all)
				log_warn("manager: %s/%s%s vanished or was replaced: restoring the "
					 "journal of the live set",
					 m->dirpath, JOURNAL_FILE, db ? "-wal" : "");
			manager_restore_journal(m);
		}
	}
	if (all || manager_same_file(m, MGRDIR_SOCKET, &m->sock_st) < 0) {
		if (!all && !m->sock_lost)
			log_warn("manager: %s vanished: restoring it", m->sockpath);
		manager_restore_socket(m);
	}
}

static void manager_on_files_timer(struct evloop *loop, void *data)
{
	struct manager *m = data;
	manager_check_files(m);
	evloop_timer_arm(loop, &m->files_timer, FILES_CHECK_MS);
}

/* ---- startup and shutdown --------------------------------------------------------- */

/* 0, or -1 with errno when the line could not all be written. */
static int manager_print_line(int fd, const char *line)
{
	size_t len = strlen(line);
	char buf[PATH_MAX + 512];
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	memcpy(buf, line, len);
	buf[len++] = '\n';
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)w;
	}
	return 0;
}

/* Blocks the signals that end the manager and routes them through the loop. Done
 * before any thread starts, so every thread inherits the mask. */
static int manager_setup_signals(struct manager *m, char *err, size_t errlen)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		util_err(err, errlen, "sigprocmask: %s", strerror(errno));
		return -1;
	}
	m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (m->sigfd < 0) {
		util_err(err, errlen, "signalfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Every message about the temp base begins with the setting it came from, since that is
 * what the user changes: "--tmpdir", "TMPDIR (from the environment)", or "the default
 * temp base (...)"; the base itself follows in the fact (a long one twice would push the
 * advice past a client's error buffer). *fix says how to change it: "give --tmpdir",
 * "set TMPDIR to". */
static void manager_base_setting(const struct manager *m, char *out, size_t len, char *fix,
				 size_t fixlen)
{
	const char *var = util_tmpbase_var();
	if (m->cfg.tmpbase_option) {
		util_strlcpy(out, "--tmpdir", len);
		util_strlcpy(fix, "give --tmpdir", fixlen);
	} else if (var) {
		snprintf(out, len, "%s (from the environment)", var);
		snprintf(fix, fixlen, "set %s to", var);
	} else {
		util_strlcpy(out, "the default temp base (TMPDIR, TMP, TEMP and TEMPDIR are unset)",
			     len);
		util_strlcpy(fix, "set TMPDIR to", fixlen);
	}
}

/* What to ask for instead of a base that failed with e. */
static const char *manager_base_want(int e)
{
	switch (e) {
	case ENAMETOOLONG:
		return "a shorter directory";
	case ENOENT:
	case ENOTDIR:
		return "an existing directory";
	case EACCES:
	case EPERM:
		return "a directory you may write to";
	case EROFS:
		return "a directory on a writable filesystem";
	default:
		return "another directory";
	}
}

/* "SETTING: FACT[ (HINT)]: FIX WANT", the fact as the failing call gave it (it carries
 * the errno's words). */
static void manager_explain_base(const struct manager *m, int e, char *err, size_t errlen)
{
	char setting[96], fix[32], fact[PATH_MAX + 256], hint[PATH_MAX + 96] = "";
	const char *want = manager_base_want(e);
	util_strlcpy(fact, err, sizeof(fact));
	manager_base_setting(m, setting, sizeof(setting), fix, sizeof(fix));
	struct stat st;
	struct statvfs sv;
	if (e == ENOENT && stat(m->cfg.tmpbase, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* /proc, /sys: the directory is there, its filesystem makes no new ones */
		snprintf(hint, sizeof(hint),
			 " (%s is a directory, but its filesystem takes "
			 "no new ones)",
			 m->cfg.tmpbase);
		want = "a directory on an ordinary filesystem";
	} else if ((e == ENOSPC || e == EDQUOT) && statvfs(m->cfg.tmpbase, &sv) == 0) {
		unsigned long long kib = (unsigned long long)sv.f_bavail * sv.f_frsize / 1024;
		snprintf(hint, sizeof(hint), " (%llu KiB free%s)", kib,
			 sv.f_files > 0 && sv.f_favail == 0 ? ", no free inodes" : "");
		want = "a directory with room, or free some space there";
	}
	util_err(err, errlen, "%s: %s%s: %s %s", setting, fact, hint, fix, want);
}

/* The socket path goes out as one line of text and must work from any working
 * directory: a TMPDIR with a newline is refused (no client could read the path back), and
 * a relative one is made absolute against the working directory the spawner gave us,
 * which is what it meant when it set it. */
static int manager_check_tmpbase(struct manager *m, char *err, size_t errlen)
{
	const char *base = m->cfg.tmpbase;
	char setting[96], fix[32];
	if (strchr(base, '\n')) {
		manager_base_setting(m, setting, sizeof(setting), fix, sizeof(fix));
		util_err(err, errlen,
			 "%s contains a newline, and the socket path is printed as "
			 "one line no client could read back: %s a directory whose name has none",
			 setting, fix);
		return -1;
	}
	if (base[0] == '/')
		return 0;
	manager_base_setting(m, setting, sizeof(setting), fix, sizeof(fix));
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd))) {
		util_err(err, errlen,
			 "%s: %s is relative and the working directory is unknown "
			 "(%s): %s an absolute path",
			 setting, base, strerror(errno), fix);
		return -1;
	}
	int n = snprintf(m->tmpbase, sizeof(m->tmpbase), "%s/%s", strcmp(cwd, "/") ? cwd : "",
			 base);
	if (n < 0 || (size_t)n >= sizeof(m->tmpbase)) {
		util_err(err, errlen, "%s: %s under %s is too long: %s a shorter absolute path",
			 setting, base, cwd, fix);
		return -1;
	}
	m->cfg.tmpbase = m->tmpbase;
	return 0;
}

/* A full TMPDIR is the usual reason a start fails once the directory is chosen; say so
 * and what to do, with the underlying error kept at the end (any other failure keeps its
 * own words, after the setting: a pseudo-filesystem's zero blocks are not "full"). The
 * manager refuses to run
 * there rather than run as torch_shm_manager does, without a journal: it may answer no
 * OK for a row it could not write (invariant 1), so its clients would each wait out
 * libshm's timeout instead of reading this one line. */
static void manager_explain_full(const struct manager *m, char *err, size_t errlen)
{
	struct statvfs sv = { 0 };
	char setting[96], fix[32];
	manager_base_setting(m, setting, sizeof(setting), fix, sizeof(fix));
	unsigned long long kib = 0;
	bool no_inodes = false;
	/* A filesystem of no blocks at all (/proc, /sys) is not full: it holds no files. */
	bool full = statvfs(m->cfg.tmpbase, &sv) == 0 && sv.f_blocks > 0;
	if (full) {
		kib = (unsigned long long)sv.f_bavail * sv.f_frsize / 1024;
		no_inodes = sv.f_files > 0 && sv.f_favail == 0;
		full = kib < MIN_ROOM_KIB || no_inodes;
	}
	if (!full) {
		char fact[PATH_MAX + 256];
		util_strlcpy(fact, err, sizeof(fact));
		util_err(err, errlen, "%s: %s: %s another directory", setting, fact, fix);
		return;
	}
	char cause[256], room[64];
	util_strlcpy(cause, err, sizeof(cause));
	if (no_inodes)
		snprintf(room, sizeof(room), "no free inodes");
	else
		snprintf(room, sizeof(room), "%llu KiB free", kib);
	util_err(err, errlen,
		 "%s: %s is on a full filesystem (%s), so the manager cannot "
		 "create its journal there and would have to refuse every registration: "
		 "free some space there, or %s a directory with at least "
		 "%d KiB free (%s)",
		 setting, m->cfg.tmpbase, room, fix, MIN_ROOM_KIB, cause);
}

/* A reclaimer acts on a dead manager's directory only when nobody but root and its owner
 * can replace a component of its path (util_path_trusted: SQLite reopens -wal and -shm
 * by path); anywhere else sweep, recover and a restarted manager all call it unsafe and
 * leave it, so what this manager holds when it is killed stays in /dev/shm for good.
 * Said at start, in the reclaimers' own words, while the user can still move TMPDIR; the
 * manager serves all the same (a training job must not fail for it). */
static void manager_warn_untrusted(const struct manager *m)
{
	char why[PATH_MAX + 128], setting[96], fix[32];
	if (util_path_trusted(m->journal_dir, geteuid(), why, sizeof(why)) == 0 || errno != EPERM)
		return;
	manager_base_setting(m, setting, sizeof(setting), fix, sizeof(fix));
	/* In a user namespace of our own (`unshare -U -r`) the host's root is no uid here
	 * (65534), so the host's /tmp looks like another user's: only a reclaimer in the
	 * initial user namespace, where it is root's, can reclaim what we leave. */
	struct userns_self ns;
	userns_self(geteuid(), &ns);
	if (ns.ns != 0 && !userns_is_initial(ns.ns)) {
		log_warn(
			"manager: %s: unsafe here: %s; this is a user namespace, where a "
			"directory of a user it does not map (the host's root) looks like another "
			"user's: if this manager is killed, only a sweep or recover run outside it "
			"(in the initial user namespace) will reclaim its objects, no manager "
			"restarted here (%s: %s a directory whose parents are this namespace's)",
			m->dirpath, why, setting, fix);
		return;
	}
	log_warn("manager: %s: unsafe: %s; if this manager is killed, no sweep, recover or "
		 "restarted manager will reclaim its objects (%s: %s a directory whose parents "
		 "only root or you can change)",
		 m->dirpath, why, setting, fix);
}

static int manager_start(struct manager *m, char *err, size_t errlen)
{
	if (manager_check_tmpbase(m, err, errlen) < 0)
		return -1;
	if (util_boot_id(m->boot_id, sizeof(m->boot_id), err, errlen) < 0)
		return -1;
	m->shm_dirfd = shmobj_dir_open(err, errlen);
	if (m->shm_dirfd < 0)
		return -1;
	if (mgrdir_create(m->cfg.tmpbase, m->dirpath, sizeof(m->dirpath), &m->dirfd, &m->lockfd,
			  err, errlen) < 0) {
		manager_explain_base(m, errno, err, errlen);
		return -1;
	}
	m->dirname = strrchr(m->dirpath, '/') + 1;
	/* TMPDIR may lead through a symlink (/tmp -> /private/tmp style); SQLite refuses
	 * those, so the journal is opened by the directory's resolved name. */
	if (!realpath(m->dirpath, m->journal_dir)) {
		util_err(err, errlen, "realpath %s: %s", m->dirpath, strerror(errno));
		return -1;
	}
	manager_warn_untrusted(m);
	struct shmobj_fs fs;
	struct userns_self ns;
	if (shmobj_fs_self(m->shm_dirfd, &fs, err, errlen) < 0)
		return -1;
	/* Which /dev/shm directory our names live in, and who we are one user namespace up:
	 * what a reclaimer elsewhere needs to tell whether they are its to reclaim. */
	userns_self(geteuid(), &ns);
	struct journal_meta meta = { .schema_version = JOURNAL_SCHEMA_VERSION,
				     .owner_uid = geteuid(),
				     .manager_pid = getpid(),
				     .created_at = util_wall_s(),
				     .has_shm_fs = true,
				     .shm_dev = fs.dev,
				     .mnt_ns = shmobj_mnt_ns_self(),
				     .has_shm_root = true,
				     .shm_ino = fs.ino,
				     .shm_btime_ns = fs.btime_ns,
				     .has_userns = ns.ns != 0,
				     .user_ns = ns.ns,
				     .parent_uid = ns.parent_uid };
	memcpy(meta.boot_id, m->boot_id, sizeof(meta.boot_id));
	m->meta = meta;
	if (journal_create(m->journal_dir, &meta, &m->journal, err, errlen) < 0) {
		manager_explain_full(m, err, errlen);
		return -1;
	}
	manager_note_journal(m);
	snprintf(m->sockpath, sizeof(m->sockpath), "%s/%s", m->dirpath, MGRDIR_SOCKET);
	m->listenfd = net_unix_listen(m->sockpath, LISTEN_BACKLOG, err, errlen);
	if (m->listenfd < 0)
		return -1;
	fstatat(m->dirfd, MGRDIR_SOCKET, &m->sock_st, AT_SYMLINK_NOFOLLOW);
	m->loop = evloop_new(err, errlen);
	if (!m->loop)
		return -1;
	if (manager_setup_signals(m, err, errlen) < 0)
		return -1;
	if (evloop_add(m->loop, m->sigfd, EVLOOP_READ, manager_on_signal, m) < 0) {
		util_err(err, errlen, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	evloop_set_before_sleep(m->loop, manager_before_sleep, m);
	evloop_timer_arm(m->loop, &m->prune_timer, m->cfg.prune_interval_ms);
	evloop_timer_arm(m->loop, &m->files_timer, FILES_CHECK_MS);
	return 0;
}

/* Unlinks what is still registered (the reference's shutdown), through the reclaim
 * engine so an object a live process still maps is kept. Returns true when the journal
 * is empty and the directory may go. */
static bool manager_reclaim_own(struct manager *m)
{
	char err[256];
	dev_t shm_dev;
	struct inuse *idx = NULL;
	if (shmobj_dir_dev(m->shm_dirfd, &shm_dev, err, sizeof(err)) < 0 ||
	    !(idx = inuse_new("/proc", shm_dev, err, sizeof(err)))) {
		log_warn("manager: shutdown: %s; leaving %s for `shmwarden sweep`", err,
			 m->dirpath);
		return false;
	}
	/* A name of ours that a manager our /proc does not show (we run in a container)
	 * registered too is found by its lock in our base (livemgr.h), and handed over. */
	int basefd = open(m->cfg.tmpbase, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (basefd < 0)
		log_info("manager: shutdown: open %s: %s; live managers only /proc shows are "
			 "consulted",
			 m->cfg.tmpbase, strerror(errno));
	/* Young rows stay: a client told OK a moment ago creates its object next, and the
	 * directory then stays, dead, for a sweep or the next manager to reclaim it. */
	struct reclaim_opts opts = { .inuse = idx,
				     .shm_dirfd = m->shm_dirfd,
				     .boot_id = m->boot_id,
				     .now_s = util_wall_s(),
				     .now_us = util_wall_us(),
				     .young_s = m->cfg.prune_grace_s,
				     .live_bases = basefd >= 0 ? &basefd : NULL,
				     .nlive_bases = basefd >= 0 ? 1 : 0,
				     .own_dirfd = m->dirfd };
	struct reclaim_report rep = { .status = RECLAIM_REMOVED };
	int rc = reclaim_journal(&opts, m->journal, m->dirfd, geteuid(), &rep);
	inuse_free(idx);
	if (basefd >= 0)
		close(basefd);
	if (rc < 0) {
		log_warn("manager: shutdown: %s; leaving %s for `shmwarden sweep`", rep.detail,
			 m->dirpath);
		return false;
	}
	log_info("manager: shutdown: %u unlinked, %u already gone, %u still in use, %u not "
		 "created yet, %u refused (%u name reused), %u handed over to live managers",
		 rep.unlinked, rep.gone, rep.in_use, rep.young, rep.refused, rep.reused,
		 rep.handed_over);
	if (journal_count(m->journal) != 0) {
		struct stat st;
		bool removed = fstat(m->dirfd, &st) < 0 || st.st_nlink == 0;
		if (removed || manager_same_file(m, JOURNAL_FILE, &m->journal_st) < 0) {
			/* Its directory or its journal was removed and not made again (its
			 * base is gone too, or the last restore failed): the rows are in an
			 * unlinked file that no reclaimer will ever read. */
			log_warn("manager: shutdown: %u object%s still in use by live processes "
				 "and %u registered less than %d s ago are in no journal: %s%s%s "
				 "was removed under the manager and could not be made again, so "
				 "neither `shmwarden sweep` nor the next manager will reclaim them",
				 rep.in_use, rep.in_use == 1 ? "" : "s", rep.young,
				 m->cfg.prune_grace_s, m->dirpath, removed ? "" : "/",
				 removed ? "" : JOURNAL_FILE);
			return false;
		}
		/* Young rows are the normal case of a shutdown right after an OK: info. */
		(rep.in_use ? log_warn : log_info)(
			"manager: shutdown: %u object%s still in use by live processes and %u "
			"registered less than %d s ago stay journaled in %s for `shmwarden sweep` "
			"or the next manager",
			rep.in_use, rep.in_use == 1 ? "" : "s", rep.young, m->cfg.prune_grace_s,
			m->dirpath);
		return false;
	}
	return true;
}

static void manager_stop(struct manager *m, bool started)
{
	if (m->listenfd >= 0) {
		close(m->listenfd);
		/* Through dirfd, and only our socket: sockpath may lead into a directory that
		 * took the renamed directory's name (manager_check_path). */
		if (manager_same_file(m, MGRDIR_SOCKET, &m->sock_st) == 0)
			unlinkat(m->dirfd, MGRDIR_SOCKET, 0);
	}
	/* Clients still connected at a signal-initiated stop: their names stay journaled
	 * and go through the same in-use check as everything else. */
	while (m->conns)
		conn_close(m->conns, NULL);
	if (m->reclaim_thread_started)
		pthread_join(m->reclaim_thread, NULL);
	bool remove_dir = !started;
	if (m->journal) {
		manager_commit(m);
		if (started)
			remove_dir = manager_reclaim_own(m);
		/* SQLite's close checkpoints and unlinks the -wal and -shm by path: a
		 * displaced journal's path may name another directory's files. */
		(m->displaced ? journal_abandon : journal_close)(m->journal);
		m->journal = NULL;
	}
	if (remove_dir && m->dirfd >= 0) {
		/* Removed where it is now, found by inode: it may have been renamed since the
		 * last check, and whatever took its name is not ours to remove. */
		char err[256], name[NAME_MAX + 1], where[PATH_MAX];
		struct stat self;
		int basefd = -1;
		if (fstat(m->dirfd, &self) < 0 ||
		    manager_dir_where(m, &self, &basefd, name, sizeof(name), where, sizeof(where)) <
			    0)
			log_warn("manager: shutdown: cannot remove %s: its directory was renamed "
				 "and its new name cannot be found",
				 m->dirpath);
		else if (mgrdir_remove(basefd, name, m->dirfd, err, sizeof(err)) < 0)
			log_warn("manager: shutdown: cannot remove %s: %s", where, err);
		if (basefd >= 0)
			close(basefd);
	}
}

static void manager_free(struct manager *m)
{
	evloop_free(m->loop);
	if (m->sigfd >= 0)
		close(m->sigfd);
	if (m->reclaim_efd >= 0)
		close(m->reclaim_efd);
	if (m->shm_dirfd >= 0)
		close(m->shm_dirfd);
	if (m->dirfd >= 0)
		close(m->dirfd);
	if (m->lockfd >= 0)
		close(m->lockfd); /* last: the directory is ours until here */
	free(m);
}

void manager_config_defaults(struct manager_config *cfg)
{
	*cfg = (struct manager_config){
		.tmpbase = util_tmpbase(),
		.shutdown_timeout_ms = 2000,
		.prune_interval_ms = 1000,
		.prune_grace_s = RECLAIM_GRACE_S,
		.commit_delay_us = 100,
		.commit_siblings = 16,
		.reclaim_on_start = true,
		.prog = "shmwarden manager",
		.out_fd = STDOUT_FILENO,
	};
}

int manager_run(const struct manager_config *cfg)
{
	char err[PATH_MAX + 256];
	struct manager *m = calloc(1, sizeof(*m));
	if (!m) {
		manager_print_line(cfg->out_fd, "ERROR: out of memory");
		return 1;
	}
	m->cfg = *cfg;
	m->dirfd = m->lockfd = m->listenfd = m->shm_dirfd = m->sigfd = m->reclaim_efd =
		m->reclaim_dirfd = -1;
	evloop_timer_init(&m->shutdown_timer, manager_on_shutdown_timer, m);
	evloop_timer_init(&m->flush_timer, manager_on_flush_timer, m);
	evloop_timer_init(&m->prune_timer, manager_on_prune_timer, m);
	evloop_timer_init(&m->accept_timer, manager_resume_accept, m);
	evloop_timer_init(&m->hold_timer, manager_on_hold_timer, m);
	evloop_timer_init(&m->files_timer, manager_on_files_timer, m);
	if (manager_start(m, err, sizeof(err)) < 0) {
		char line[sizeof(err) + 16];
		snprintf(line, sizeof(line), "ERROR: %s", err);
		manager_print_line(cfg->out_fd, line);
		log_complain(cfg->prog, "%s", err);
		manager_stop(m, false);
		manager_free(m);
		return 1;
	}
	/* The line is how a client (libshm) learns where to connect: undelivered, nobody
	 * can, and a manager that served on would only outlive its shutdown timeout and
	 * exit 0 as if it had served. */
	if (manager_print_line(cfg->out_fd, m->sockpath) < 0) {
		log_complain(cfg->prog, "standard output: %s: the socket path was not delivered",
			     strerror(errno));
		manager_stop(m, false);
		manager_free(m);
		return 1;
	}
	log_info("manager: serving %s", m->sockpath);
	manager_start_reclaim(m);
	/* Without the reclaim at start it began to serve, or failed to, already: a
	 * failure stopped the loop before it runs, and the run returns at once. */
	int rc = evloop_run(m->loop);
	if (rc < 0)
		log_error("manager: epoll_wait: %s", strerror(errno));
	log_info("manager: exiting: %llu registered (%llu of them committed already), %llu freed, "
		 "%llu refused, %llu pruned (%llu rows checked by the prune), %llu commits of "
		 "registrations (%llu of them delayed to gather more)",
		 m->n_registered, m->n_already, m->n_freed, m->n_refused, m->n_pruned,
		 m->n_prune_checked, m->n_commits, m->n_delayed);
	if (m->failed)
		rc = -1;
	/* New clients could not connect since the socket went: it did not serve. */
	if (m->sock_lost) {
		log_error("manager: exiting: its socket %s was never restored (%u tries: %s); "
			  "new clients could not connect since it went",
			  m->sockpath, m->sock_lost, m->sock_why);
		rc = -1;
	}
	manager_stop(m, true);
	manager_free(m);
	log_drain(250); /* the last lines, if stderr drains soon; nobody waits on us now */
	return rc < 0 ? 1 : 0;
}
