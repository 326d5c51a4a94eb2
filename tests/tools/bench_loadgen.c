/* bench_loadgen.c — the load generator behind `scripts/bench`.
 *
 * Every mode spawns its manager exactly as libshm does (pipe, fork, dup2 onto stdout,
 * exec with argv[0] "torch_shm_manager", read up to the first newline), measures one
 * figure, stops the manager it started, and prints key=value lines for the driver.
 * Clients use names /shmwb_TAG_PID_N; the reclaim mode and run --batch create real
 * objects, and unlink whatever is left with their prefix before they return.
 *
 *   bench_loadgen info
 *   bench_loadgen spawn   COMMON                 spawn latency, settled idle VmRSS
 *   bench_loadgen run     COMMON --clients N [--idle M] [--duration S] [--warmup S]
 *                         [--batch B] [--mgr-cpu C] [--client-cpu C] [--ok-timeout MS]
 *   bench_loadgen journal COMMON --count N        manager dir size after N cycles
 *   bench_loadgen live    COMMON --count N        VmRSS with N names registered
 *   bench_loadgen reclaim COMMON --count N --shmwarden PATH [--as-user USER]
 *   COMMON: --exe PATH [--argv0 NAME] [--arg A]... --tmpdir BASE [--tag TAG]
 *           [--mgr-stderr FILE] [--window W]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

#define LG_MAX_ARGS 16 /* valgrind or strace, their options, shmwarden manager and its own */
#define LG_SPAWN_TIMEOUT_MS 30000
#define LG_STOP_TIMEOUT_MS 60000
/* libshm's client gives up on an OK after one second; so do we, and say so. */
#define LG_OK_TIMEOUT_MS 1000

struct lg_opts {
	const char *mode;
	const char *exe;
	const char *argv0;
	const char *args[LG_MAX_ARGS];
	int nargs;
	const char *tmpbase;
	const char *tag;
	const char *mgr_stderr;
	const char *shmwarden;
	const char *as_user; /* reclaim: run as this user (needs root) */
	unsigned clients;
	unsigned idle;
	unsigned window;
	unsigned batch; /* run: 0 = register/OK/free pairs; B = B registrations, then B frees */
	int mgr_cpu;    /* run: CPU the manager is pinned to, or -1 */
	int client_cpu; /* run: CPU every client is pinned to, or -1 */
	unsigned long count;
	double duration;
	double warmup;
};

struct lg_mgr {
	pid_t pid;
	char tmp[PATH_MAX];  /* private TMPDIR of this manager, removed by lg_stop */
	char sock[PATH_MAX]; /* the line it printed */
	char dir[PATH_MAX];  /* its own directory: dirname(sock) */
	double spawn_ms;
};

/* The manager this process started, for the signal handler: an interrupted bench must
 * not leave a setsid()ed manager behind. Only ever our own child. */
static volatile pid_t lg_mgr_pid;
/* reclaim --as-user: the child doing the work as that user; it stops its own manager. */
static volatile pid_t lg_child_pid;
/* How long a client waits for an OK: libshm's 1 s, unless --ok-timeout (a manager under
 * callgrind in `scripts/bench --profile` runs 50-100 times slower). */
static int lg_ok_timeout_ms = LG_OK_TIMEOUT_MS;

static void lg_on_signal(int sig)
{
	if (lg_mgr_pid > 0)
		kill(lg_mgr_pid, SIGKILL);
	if (lg_child_pid > 0) {
		kill(lg_child_pid, SIGTERM);
		waitpid(lg_child_pid, NULL, 0);
	}
	_exit(128 + sig);
}

static double lg_cpu_ms(const struct rusage *ru)
{
	return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
	       (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
}

static double lg_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void lg_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void lg_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void lg_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench_loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (lg_mgr_pid > 0)
		kill(lg_mgr_pid, SIGKILL);
	exit(1);
}

static int lg_rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void lg_rm_tree(const char *path)
{
	if (*path)
		nftw(path, lg_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A value from /proc/PID/status in KiB ("VmRSS:", "VmHWM:"), or -1. */
static long lg_status_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long v = -1;
	size_t klen = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen)) {
			v = strtol(line + klen, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Pins the calling process to one CPU (-1: leaves it where it is). On a small machine
 * where client and manager ping-pong, where the scheduler puts them (one core or two,
 * an idle core's wake-up latency) moves one-client pairs/s threefold from run to run;
 * a fixed placement takes that out of the comparison. */
static int lg_pin(int cpu)
{
	if (cpu < 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* A line of /proc/PID/status after key, without its blanks ("?" when unreadable). */
static void lg_status_text(pid_t pid, const char *key, char *out, size_t outlen)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	snprintf(out, outlen, "?");
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	size_t klen = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen)) {
			char *v = line + klen;
			v += strspn(v, " \t");
			v[strcspn(v, " \t\n")] = '\0';
			snprintf(out, outlen, "%s", v);
			break;
		}
	fclose(f);
}

static void lg_sleep_until(double t)
{
	double left = t - lg_now();
	if (left > 0)
		lg_sleep_ms((unsigned)(left * 1000) + 1);
}

#define LG_MAX_THREADS 64

/* The CPU time of a manager at one instant: every thread's from schedstat (ns, precise
 * where /proc/PID/stat counts 10 ms ticks), and the whole process's in ticks, which
 * also keeps the time of threads that have exited. schedstat's third field, the
 * timeslices a thread has run (one per time it was put on a CPU: for an event loop, one
 * per wake-up), says how many requests each wake-up served: with many clients that is
 * what moves the CPU per pair, not the manager's own work. */
struct lg_cpu {
	int n;
	pid_t tid[LG_MAX_THREADS];
	long long ns[LG_MAX_THREADS];
	long long slices[LG_MAX_THREADS];
	long long ticks; /* utime + stime of /proc/PID/stat, -1 when unreadable */
};

static long long lg_stat_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	/* Fields 14 and 15 (utime, stime) follow the ")" that ends the command name. */
	char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (!p ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

static void lg_cpu_read(pid_t pid, struct lg_cpu *c)
{
	char path[64];
	c->n = 0;
	c->ticks = lg_stat_ticks(pid);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) && c->n < LG_MAX_THREADS) {
		if (e->d_name[0] == '.')
			continue;
		char sp[128];
		snprintf(sp, sizeof(sp), "/proc/%d/task/%.20s/schedstat", (int)pid, e->d_name);
		FILE *f = fopen(sp, "re");
		long long ns, wait_ns, slices;
		if (f && fscanf(f, "%lld %lld %lld", &ns, &wait_ns, &slices) == 3) {
			c->tid[c->n] = (pid_t)atoi(e->d_name);
			c->slices[c->n] = slices;
			c->ns[c->n++] = ns;
		}
		if (f)
			fclose(f);
	}
	closedir(d);
}

/* The manager's CPU ns between two reads, -1 when unknown. A thread born in between
 * counts whole (shmwarden's start-up reclaim thread may start after the first read);
 * when one exited in between, its last slice is gone from schedstat, and the process's
 * ticks answer instead (*precise false). *slices: the timeslices run in between, summed
 * over the threads; -1 when not precise (ticks do not count them). */
static long long lg_cpu_delta(const struct lg_cpu *a, const struct lg_cpu *b, bool *precise,
			      long long *slices)
{
	long long sum = 0, nslices = 0;
	*precise = a->n > 0;
	for (int i = 0; i < b->n; i++) {
		long long before = 0, slices_before = 0;
		for (int j = 0; j < a->n; j++)
			if (a->tid[j] == b->tid[i]) {
				before = a->ns[j];
				slices_before = a->slices[j];
			}
		sum += b->ns[i] - before;
		nslices += b->slices[i] - slices_before;
	}
	for (int j = 0; j < a->n; j++) {
		bool alive = false;
		for (int i = 0; i < b->n; i++)
			alive = alive || a->tid[j] == b->tid[i];
		*precise = *precise && alive;
	}
	*slices = *precise ? nslices : -1;
	if (*precise)
		return sum;
	long hz = sysconf(_SC_CLK_TCK);
	if (a->ticks < 0 || b->ticks < a->ticks || hz <= 0)
		return -1;
	return (b->ticks - a->ticks) * (1000000000LL / hz);
}

/* Threads of pid, or -1. */
static int lg_threads(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Waits (at most 60 s) until the manager is down to one thread: shmwarden scans /proc
 * and its siblings' directories in a start-up thread, a once-per-manager cost (the spawn
 * and DataLoader figures carry it), not a pair's. Pinned beside the clients, it would
 * also take their CPU. Called after a first round trip, when the thread exists or has
 * ended. Past the wait, the run goes on and says so: its CPU figure may then come from
 * ticks (mgr_cpu_source). */
static void lg_wait_one_thread(pid_t pid)
{
	double t0 = lg_now();
	int n;
	while ((n = lg_threads(pid)) > 1 && lg_now() - t0 < 60)
		lg_sleep_ms(5);
	if (n > 1)
		fprintf(stderr,
			"bench_loadgen: the manager still has %d threads after 60 s; "
			"measuring anyway\n",
			n);
}

/* Waits until VmRSS stops moving (three equal reads 25 ms apart, at most ~1.5 s):
 * a manager that just printed its line may still be faulting pages in. */
static long lg_rss_settled(pid_t pid)
{
	long last = -1;
	int same = 0;
	for (int i = 0; i < 60; i++) {
		long r = lg_status_kib(pid, "VmRSS:");
		if (r == last && ++same >= 3)
			break;
		if (r != last)
			same = 0;
		last = r;
		lg_sleep_ms(25);
	}
	return last;
}

/* Sum of the sizes of the files in dir (not recursive); breakdown gets "name=bytes,...". */
static long long lg_dir_bytes(const char *dir, char *breakdown, size_t blen)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	long long total = 0;
	size_t used = 0;
	if (blen)
		breakdown[0] = '\0';
	struct dirent *e;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		total += st.st_size;
		if (used < blen) {
			int n = snprintf(breakdown + used, blen - used, "%s%s=%lld",
					 used ? "," : "", e->d_name, (long long)st.st_size);
			used += n > 0 ? (size_t)n : 0;
		}
	}
	closedir(d);
	return total;
}

/* Spawns o->exe the way libshm's start_manager() does and reads its first line. */
static void lg_spawn(const struct lg_opts *o, struct lg_mgr *m)
{
	memset(m, 0, sizeof(*m));
	if ((size_t)snprintf(m->tmp, sizeof(m->tmp), "%s/m-XXXXXX", o->tmpbase) >= sizeof(m->tmp) ||
	    !mkdtemp(m->tmp))
		lg_fail("cannot create a private TMPDIR under %s: %s", o->tmpbase, strerror(errno));
	/* libshm's child inherits the environment; a private TMPDIR keeps every manager's
	 * directory apart, so no manager adopts another run's leftovers at start. */
	if (setenv("TMPDIR", m->tmp, 1) < 0)
		lg_fail("setenv: %s", strerror(errno));
	int errfd = -1;
	if (o->mgr_stderr) {
		errfd = open(o->mgr_stderr, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (errfd < 0)
			lg_fail("%s: %s", o->mgr_stderr, strerror(errno));
	}
	char *argv[LG_MAX_ARGS + 2];
	argv[0] = (char *)(uintptr_t)o->argv0;
	for (int i = 0; i < o->nargs; i++)
		argv[i + 1] = (char *)(uintptr_t)o->args[i];
	argv[o->nargs + 1] = NULL;

	int p[2];
	if (pipe(p) < 0)
		lg_fail("pipe: %s", strerror(errno));
	double t0 = lg_now();
	pid_t pid = fork();
	if (pid < 0)
		lg_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDOUT_FILENO);
		close(p[1]);
		if (errfd >= 0)
			dup2(errfd, STDERR_FILENO);
		if (lg_pin(o->mgr_cpu) < 0) {
			dprintf(STDOUT_FILENO, "ERROR: cannot pin the manager to CPU %d: %s\n",
				o->mgr_cpu, strerror(errno));
			_exit(1);
		}
		execv(o->exe, argv);
		char msg[PATH_MAX + 64];
		int n = snprintf(msg, sizeof(msg), "ERROR: execl failed: %s\n", strerror(errno));
		if (write(STDOUT_FILENO, msg, (size_t)n) < 0)
			_exit(127);
		_exit(1);
	}
	lg_mgr_pid = pid;
	m->pid = pid;
	close(p[1]);
	if (errfd >= 0)
		close(errfd);
	size_t len = 0;
	for (;;) {
		/* libshm blocks forever here; the bench gives up after a while instead. */
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int left = LG_SPAWN_TIMEOUT_MS - (int)((lg_now() - t0) * 1000);
		if (left <= 0 || poll(&pfd, 1, left) == 0)
			lg_fail("%s printed no line within %d ms", o->exe, LG_SPAWN_TIMEOUT_MS);
		ssize_t r = read(p[0], m->sock + len, sizeof(m->sock) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (m->sock[len - 1] == '\n' || len == sizeof(m->sock) - 1)
			break;
	}
	m->spawn_ms = (lg_now() - t0) * 1000;
	close(p[0]);
	m->sock[len] = '\0';
	char *nl = strchr(m->sock, '\n');
	if (nl)
		*nl = '\0';
	if (!m->sock[0])
		lg_fail("no response from %s (empty first line)", o->exe);
	if (!strncmp(m->sock, "ERROR", 5))
		lg_fail("%s answered: %s", o->exe, m->sock);
	if (m->sock[0] != '/')
		lg_fail("%s printed '%s', not a socket path", o->exe, m->sock);
	snprintf(m->dir, sizeof(m->dir), "%s", m->sock);
	*strrchr(m->dir, '/') = '\0';
}

/* Fails when the manager died on its own: a figure from a dead manager means nothing. */
static void lg_check_alive(const struct lg_mgr *m, const char *when)
{
	int st;
	if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
		lg_mgr_pid = 0;
		if (WIFSIGNALED(st))
			lg_fail("manager died of signal %d %s", WTERMSIG(st), when);
		lg_fail("manager exited with status %d %s", WEXITSTATUS(st), when);
	}
}

/* Stops the manager with sig (falls back to SIGKILL), reaps it, removes its TMPDIR. */
static void lg_stop(struct lg_mgr *m, int sig)
{
	kill(m->pid, sig);
	double t0 = lg_now();
	int st;
	while (waitpid(m->pid, &st, WNOHANG) == 0) {
		if ((lg_now() - t0) * 1000 > LG_STOP_TIMEOUT_MS) {
			fprintf(stderr,
				"bench_loadgen: manager %d ignored signal %d for %d ms; killing it\n",
				(int)m->pid, sig, LG_STOP_TIMEOUT_MS);
			kill(m->pid, SIGKILL);
			waitpid(m->pid, &st, 0);
			break;
		}
		lg_sleep_ms(5);
	}
	lg_mgr_pid = 0;
	lg_rm_tree(m->tmp);
}

static int lg_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path))
		return -1;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void lg_record(unsigned char rec[WIRE_RECORD_SIZE], pid_t pid, bool is_free,
		      const char *name)
{
	memset(rec, 0, WIRE_RECORD_SIZE);
	int32_t p = (int32_t)pid;
	memcpy(rec + offsetof(struct wire_alloc_info, pid), &p, sizeof(p));
	rec[offsetof(struct wire_alloc_info, free)] = is_free ? 1 : 0;
	memcpy(rec + offsetof(struct wire_alloc_info, filename), name, strlen(name));
}

static int lg_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *b = buf;
	while (len) {
		ssize_t w = send(fd, b, len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += w;
		len -= (size_t)w;
	}
	return 0;
}

/* libshm's Socket::recv: poll with a 1 s timeout, then read, until 2 bytes arrived. */
static const char *lg_wait_ok(int fd)
{
	char buf[2];
	size_t got = 0;
	while (got < 2) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = poll(&pfd, 1, lg_ok_timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return "poll failed";
		if (!(pfd.revents & POLLIN))
			return n == 0 ? (lg_ok_timeout_ms == LG_OK_TIMEOUT_MS
						 ? "no OK within 1 s (libshm would time out)"
						 : "no OK within --ok-timeout")
				      : "connection broke";
		ssize_t r = read(fd, buf + got, 2 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return "manager closed the connection";
		got += (size_t)r;
	}
	return memcmp(buf, "OK", 2) ? "answer is not OK" : NULL;
}

/* One register -> OK -> free round trip, as a PyTorch client does it (minus the
 * object itself). Returns NULL or what went wrong. */
static const char *lg_pair(int fd, pid_t pid, const char *name)
{
	unsigned char rec[WIRE_RECORD_SIZE];
	lg_record(rec, pid, false, name);
	if (lg_write_all(fd, rec, sizeof(rec)) < 0)
		return "send of a register failed";
	const char *why = lg_wait_ok(fd);
	if (why)
		return why;
	rec[offsetof(struct wire_alloc_info, free)] = 1;
	if (lg_write_all(fd, rec, sizeof(rec)) < 0)
		return "send of a free failed";
	return NULL;
}

/* Registers count names on one connection with up to window records in flight (the
 * way forked processes sharing one connection load a manager), calling made(i) for
 * each name once its OK arrived. Only used to build state fast, never to time pairs. */
static void lg_register_many(int fd, const char *prefix, unsigned long count, unsigned window,
			     void (*made)(const char *name, void *ctx), void *ctx)
{
	unsigned char *batch = malloc((size_t)window * WIRE_RECORD_SIZE);
	if (!batch)
		lg_fail("out of memory");
	pid_t me = getpid();
	unsigned long sent = 0, acked = 0, rx = 0;
	char name[WIRE_NAME_FIELD];
	char buf[4096];
	while (acked < count) {
		size_t k = 0;
		while (sent + k < count && sent + k - acked < window) {
			snprintf(name, sizeof(name), "%s%lu", prefix, sent + k);
			lg_record(batch + k * WIRE_RECORD_SIZE, me, false, name);
			k++;
		}
		if (k && lg_write_all(fd, batch, k * WIRE_RECORD_SIZE) < 0)
			lg_fail("register %lu: send: %s", sent, strerror(errno));
		sent += k;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = poll(&pfd, 1, 10000);
		if (n == 0)
			lg_fail("no OK for 10 s after %lu registrations", acked);
		if (n < 0 && errno != EINTR)
			lg_fail("poll: %s", strerror(errno));
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			lg_fail("manager closed the connection after %lu registrations", acked);
		for (ssize_t i = 0; i < r; i++, rx++)
			if (buf[i] != (rx % 2 ? 'K' : 'O'))
				lg_fail("unexpected answer byte 0x%02x after %lu OKs",
					(unsigned char)buf[i], acked);
		for (; acked < rx / 2; acked++)
			if (made) {
				snprintf(name, sizeof(name), "%s%lu", prefix, acked);
				made(name, ctx);
			}
	}
	free(batch);
}

/* Unlinks every object whose name starts with prefix (without the slash); returns how
 * many there were. Only the bench's own prefix is ever passed. */
static unsigned long lg_sweep_prefix(const char *prefix, bool unlink_them)
{
	DIR *d = opendir("/dev/shm");
	if (!d)
		return 0;
	unsigned long n = 0;
	size_t plen = strlen(prefix);
	char name[NAME_MAX + 2];
	struct dirent *e;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, plen)) {
			n++;
			if (unlink_them) {
				snprintf(name, sizeof(name), "/%s", e->d_name);
				shm_unlink(name);
			}
		}
	closedir(d);
	return n;
}

static void lg_raise_nofile(unsigned need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		lg_fail("need %u descriptors but the hard limit is %lu (run with ulimit -n %u)",
			need, (unsigned long)rl.rlim_max, need);
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		lg_fail("setrlimit(NOFILE, %u): %s", need, strerror(errno));
}

static int lg_mode_spawn(const struct lg_opts *o)
{
	struct lg_mgr m;
	lg_spawn(o, &m);
	long rss = lg_rss_settled(m.pid);
	lg_check_alive(&m, "right after spawning");
	lg_stop(&m, SIGTERM);
	printf("spawn_ms=%.3f\nrss_kib=%ld\n", m.spawn_ms, rss);
	return 0;
}

struct lg_slot {
	unsigned long pairs;
	char err[120];
};

struct lg_shared {
	double t_measure; /* pairs completed in [t_measure, t_end) are counted */
	double t_end;
	struct lg_slot slot[];
};

/* Completes one register -> OK; returns NULL or what went wrong. */
static const char *lg_register(int fd, pid_t pid, const char *name)
{
	unsigned char rec[WIRE_RECORD_SIZE];
	lg_record(rec, pid, false, name);
	if (lg_write_all(fd, rec, sizeof(rec)) < 0)
		return "send of a register failed";
	return lg_wait_ok(fd);
}

static const char *lg_free(int fd, pid_t pid, const char *name)
{
	unsigned char rec[WIRE_RECORD_SIZE];
	lg_record(rec, pid, true, name);
	return lg_write_all(fd, rec, sizeof(rec)) < 0 ? "send of a free failed" : NULL;
}

/* A batch's objects exist, as libshm's do: it creates each one after its OK and unlinks
 * it before its free. A cycle of 40,000 names can outlast the manager's prune grace
 * (10 s) on a slow host, and a prune then forgets a registered name whose object never
 * appeared: the run would measure prunes and a shrinking journal, not the live set.
 * Sized like lg_make_object; untouched tmpfs pages cost no memory. Pairs need no object:
 * each name lives microseconds, far inside the grace. */
static const char *lg_object_create(const char *name)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return errno == ENOSPC ? "shm_open: no space in /dev/shm" : "shm_open failed";
	int r = ftruncate(fd, 4096);
	close(fd);
	return r < 0 ? "ftruncate failed" : NULL;
}

static const char *lg_object_unlink(const char *name)
{
	return shm_unlink(name) < 0 ? "shm_unlink failed" : NULL;
}

/* Pairs by default: register, OK, free, as a PyTorch client shares and drops a tensor;
 * each completed in [t_measure, t_end) counts.
 * With --batch B: cycles of B registrations (each waiting for its OK, as libshm does)
 * and then the B frees, so up to B names per client are live at once. A cycle once begun
 * is finished, the clock runs until every client is done, and every pair counts: a window
 * that cut cycles would count registrations and frees, which cost the manager differently,
 * in proportions that change from run to run. A last register -> OK proves the manager
 * has read every free before it (one connection is read in order). */
static void lg_client(const struct lg_opts *o, const char *sock, struct lg_shared *sh, unsigned idx,
		      int ready_fd, int go_fd)
{
	struct lg_slot *s = &sh->slot[idx];
	if (lg_pin(o->client_cpu) < 0) {
		snprintf(s->err, sizeof(s->err), "cannot pin to CPU %d: %s", o->client_cpu,
			 strerror(errno));
		_exit(1);
	}
	int fd = lg_connect(sock);
	if (fd < 0) {
		snprintf(s->err, sizeof(s->err), "connect: %s", strerror(errno));
		_exit(1);
	}
	char c = 1;
	if (write(ready_fd, &c, 1) != 1)
		_exit(1);
	/* Closed once written: the parent sees EOF when every client is ready or dead. */
	close(ready_fd);
	/* The start gun: the parent closes the write end, every client sees EOF at once. */
	while (read(go_fd, &c, 1) < 0 && errno == EINTR)
		;
	pid_t me = getpid();
	char name[WIRE_NAME_FIELD];
	unsigned long n = 0, ops = 0;
	double t_measure = sh->t_measure, t_end = sh->t_end;
	const char *why = NULL;
	if (!o->batch) {
		for (bool done = false; !done && !why;) {
			snprintf(name, sizeof(name), "/shmwb_%s_%d_%lu", o->tag, (int)me, n++);
			if ((why = lg_register(fd, me, name)) || (why = lg_free(fd, me, name)))
				break;
			double t = lg_now();
			done = t >= t_end;
			ops += 2 * (!done && t >= t_measure);
		}
	} else {
		while (!why && lg_now() < t_end) {
			unsigned long first = n;
			for (unsigned i = 0; i < o->batch && !why; i++) {
				snprintf(name, sizeof(name), "/shmwb_%s_%d_%lu", o->tag, (int)me,
					 n++);
				if (!(why = lg_register(fd, me, name)))
					why = lg_object_create(name);
			}
			for (unsigned long k = first; k < n && !why; k++) {
				snprintf(name, sizeof(name), "/shmwb_%s_%d_%lu", o->tag, (int)me,
					 k);
				if (!(why = lg_object_unlink(name)))
					why = lg_free(fd, me, name);
			}
			ops += 2 * (n - first);
		}
		snprintf(name, sizeof(name), "/shmwb_%s_%d_%lu", o->tag, (int)me, n++);
		if (!why && !(why = lg_register(fd, me, name)) && !(why = lg_free(fd, me, name)))
			ops += 2;
	}
	if (why)
		snprintf(s->err, sizeof(s->err), "client %u, record %lu: %s", idx, n, why);
	s->pairs = ops / 2;
	close(fd);
	_exit(s->err[0] ? 1 : 0);
}

static int lg_mode_run(const struct lg_opts *o)
{
	if (!o->clients)
		lg_fail("run: --clients must be at least 1");
	lg_raise_nofile(o->idle + o->clients + 256);
	struct lg_mgr m;
	lg_spawn(o, &m);

	int *idle = calloc(o->idle + 1, sizeof(int));
	if (!idle)
		lg_fail("out of memory");
	for (unsigned i = 0; i < o->idle; i++)
		if ((idle[i] = lg_connect(m.sock)) < 0)
			lg_fail("idle connection %u: connect: %s", i, strerror(errno));
	/* One round trip before the clock starts, on the last idle connection when there
	 * are some: the manager has accepted them all (they queue in order). And shmwarden
	 * starts its start-up thread after its socket line but before it answers anyone:
	 * looked for any earlier, the thread could be missed, then end inside the measured
	 * window and take its last slice out of schedstat (see lg_cpu_delta). A connection
	 * of its own stays open until the end: a manager with no client may shut down. */
	char name[WIRE_NAME_FIELD];
	snprintf(name, sizeof(name), "/shmwb_%s_%d_sync", o->tag, (int)getpid());
	int syncfd = o->idle ? idle[o->idle - 1] : lg_connect(m.sock);
	if (syncfd < 0)
		lg_fail("first connection: connect: %s", strerror(errno));
	const char *why = lg_pair(syncfd, getpid(), name);
	if (why)
		lg_fail("%s: %s", o->idle ? "idle connections" : "first round trip", why);

	lg_wait_one_thread(m.pid);

	size_t shsize = sizeof(struct lg_shared) + o->clients * sizeof(struct lg_slot);
	struct lg_shared *sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		lg_fail("mmap: %s", strerror(errno));
	int ready[2], go[2];
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		lg_fail("pipe: %s", strerror(errno));
	pid_t *kids = calloc(o->clients, sizeof(pid_t));
	if (!kids)
		lg_fail("out of memory");
	for (unsigned i = 0; i < o->clients; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			lg_fail("fork client %u: %s", i, strerror(errno));
		if (kids[i] == 0) {
			lg_mgr_pid = 0; /* the manager is the parent's to stop */
			close(ready[0]);
			close(go[1]);
			for (unsigned j = 0; j < o->idle; j++)
				close(idle[j]);
			if (!o->idle)
				close(syncfd);
			lg_client(o, m.sock, sh, i, ready[1], go[0]);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (unsigned got = 0; got < o->clients;) {
		char buf[256];
		ssize_t r = read(ready[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* a client died before connecting: its slot says why */
		got += (unsigned)r;
	}
	/* The manager's CPU over the measured window: a per-pair cost that other load on
	 * the machine distorts far less than pairs/s. Batches: from the start gun until the
	 * last client is done (see lg_client). */
	double t0 = lg_now();
	sh->t_measure = o->batch ? t0 : t0 + o->warmup;
	sh->t_end = sh->t_measure + o->duration;
	struct lg_cpu cpu0 = { 0 }, cpu1 = { 0 };
	if (o->batch)
		lg_cpu_read(m.pid, &cpu0);
	close(go[1]);
	/* On a loaded machine this process may be woken late: a read more than 2% of the
	 * window after its instant measured some other window, and the CPU figure is
	 * withheld (-1) rather than wrong. */
	bool late = false;
	if (!o->batch) {
		lg_sleep_until(sh->t_measure);
		late = lg_now() - sh->t_measure > 0.02 * o->duration;
		lg_cpu_read(m.pid, &cpu0);
		lg_sleep_until(sh->t_end);
		late = late || lg_now() - sh->t_end > 0.02 * o->duration;
		lg_cpu_read(m.pid, &cpu1);
	}

	unsigned failed = 0;
	for (unsigned i = 0; i < o->clients; i++) {
		int st;
		while (waitpid(kids[i], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			failed++;
	}
	double elapsed = lg_now() - t0;
	double measured = o->batch ? elapsed : o->duration;
	if (o->batch)
		lg_cpu_read(m.pid, &cpu1);
	bool precise = false;
	long long slices = -1;
	long long cpu_ns = late ? -1 : lg_cpu_delta(&cpu0, &cpu1, &precise, &slices);
	lg_check_alive(&m, "during the run");
	unsigned long total = 0;
	const char *first_err = NULL;
	for (unsigned i = 0; i < o->clients; i++) {
		total += sh->slot[i].pairs;
		if (sh->slot[i].err[0] && !first_err)
			first_err = sh->slot[i].err;
	}
	/* A client that failed mid-batch left its objects; they are this run's alone. */
	if (o->batch) {
		char tagprefix[WIRE_NAME_FIELD];
		snprintf(tagprefix, sizeof(tagprefix), "shmwb_%s_", o->tag);
		lg_sweep_prefix(tagprefix, true);
	}
	long rss = lg_status_kib(m.pid, "VmRSS:");
	char mgr_cpus[64];
	lg_status_text(m.pid, "Cpus_allowed_list:", mgr_cpus, sizeof(mgr_cpus));
	for (unsigned i = 0; i < o->idle; i++)
		close(idle[i]);
	if (!o->idle)
		close(syncfd);
	lg_stop(&m, SIGTERM);
	if (failed)
		lg_fail("%u of %u clients failed; first: %s", failed, o->clients,
			first_err ? first_err : "(no message)");
	if (elapsed < (o->batch ? 0 : o->warmup) + o->duration)
		lg_fail("the run ended early (%.2f s)", elapsed);
	double cpu_us = cpu_ns >= 0 && total ? (double)cpu_ns / 1e3 / (double)total : -1;
	double slices_pp = cpu_ns >= 0 && slices >= 0 && total ? (double)slices / (double)total
							       : -1;
	printf("pairs=%lu\nseconds=%.3f\npairs_per_s=%.1f\nrss_kib=%ld\nspawn_ms=%.3f\n"
	       "mgr_cpu_us_per_pair=%.2f\nmgr_timeslices_per_pair=%.3f\nmgr_cpu_share=%.3f\n"
	       "mgr_cpu_source=%s\nmgr_cpus=%s\n",
	       total, measured, (double)total / measured, rss, m.spawn_ms, cpu_us, slices_pp,
	       cpu_ns >= 0 ? (double)cpu_ns / 1e9 / measured : -1,
	       late      ? "late"
	       : precise ? "schedstat"
			 : "ticks",
	       mgr_cpus);
	munmap(sh, shsize);
	free(kids);
	free(idle);
	return 0;
}

static int lg_mode_journal(const struct lg_opts *o)
{
	struct lg_mgr m;
	lg_spawn(o, &m);
	int fd = lg_connect(m.sock);
	if (fd < 0)
		lg_fail("connect %s: %s", m.sock, strerror(errno));
	pid_t me = getpid();
	char name[WIRE_NAME_FIELD];
	double t0 = lg_now();
	for (unsigned long i = 0; i < o->count; i++) {
		snprintf(name, sizeof(name), "/shmwb_%s_%d_%lu", o->tag, (int)me, i);
		const char *why = lg_pair(fd, me, name);
		if (why)
			lg_fail("cycle %lu: %s", i, why);
	}
	/* Frees get no answer: one more register is answered only after the manager has
	 * read (and, journaling in order, committed) every free before it. */
	snprintf(name, sizeof(name), "/shmwb_%s_%d_sync", o->tag, (int)me);
	unsigned char rec[WIRE_RECORD_SIZE];
	lg_record(rec, me, false, name);
	if (lg_write_all(fd, rec, sizeof(rec)) < 0 || lg_wait_ok(fd))
		lg_fail("sync register failed");
	double secs = lg_now() - t0;
	char files[1024], files_idle[1024];
	long long bytes = lg_dir_bytes(m.dir, files, sizeof(files));
	/* And once more after a pause, in case the manager checkpoints when idle. */
	lg_sleep_ms(1000);
	long long bytes_idle = lg_dir_bytes(m.dir, files_idle, sizeof(files_idle));
	lg_check_alive(&m, "during the cycles");
	rec[offsetof(struct wire_alloc_info, free)] = 1;
	lg_write_all(fd, rec, sizeof(rec));
	close(fd);
	lg_stop(&m, SIGTERM);
	printf("cycles=%lu\nseconds=%.3f\njournal_bytes=%lld\nfiles=%s\njournal_bytes_idle=%lld\n"
	       "files_idle=%s\n",
	       o->count, secs, bytes, files, bytes_idle, files_idle);
	return 0;
}

static int lg_mode_live(const struct lg_opts *o)
{
	struct lg_mgr m;
	lg_spawn(o, &m);
	long idle_rss = lg_rss_settled(m.pid);
	int fd = lg_connect(m.sock);
	if (fd < 0)
		lg_fail("connect %s: %s", m.sock, strerror(errno));
	char prefix[WIRE_NAME_FIELD];
	snprintf(prefix, sizeof(prefix), "/shmwb_%s_%d_", o->tag, (int)getpid());
	double t0 = lg_now();
	lg_register_many(fd, prefix, o->count, o->window, NULL, NULL);
	double secs = lg_now() - t0;
	long rss = lg_rss_settled(m.pid);
	long hwm = lg_status_kib(m.pid, "VmHWM:");
	char files[1024];
	long long bytes = lg_dir_bytes(m.dir, files, sizeof(files));
	lg_check_alive(&m, "while registering");
	close(fd);
	/* SIGKILL: a clean shutdown would shm_unlink every name (none exists), which
	 * is not what this figure is about. Its TMPDIR goes with lg_stop. */
	lg_stop(&m, SIGKILL);
	printf("count=%lu\nseconds=%.3f\nregs_per_s=%.0f\nidle_rss_kib=%ld\nrss_kib=%ld\nhwm_kib=%ld\n"
	       "dir_bytes=%lld\nfiles=%s\n",
	       o->count, secs, (double)o->count / secs, idle_rss, rss, hwm, bytes, files);
	return 0;
}

/* Creates one object the way libshm does after its OK: O_EXCL, 0600, sized. The size
 * costs no memory: tmpfs allocates pages only when they are touched. */
static void lg_make_object(const char *name, void *ctx)
{
	(void)ctx;
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		lg_fail("shm_open(%s): %s", name, strerror(errno));
	if (ftruncate(fd, 4096) < 0)
		lg_fail("ftruncate(%s): %s", name, strerror(errno));
	close(fd);
}

/* Runs `shmwarden recover DIR`; returns its wall time in ms, and its CPU time (user +
 * system, from wait4) in *cpu_ms. */
static double lg_time_recover(const struct lg_opts *o, const char *dir, int *status, double *cpu_ms)
{
	int errfd = open(o->mgr_stderr ? o->mgr_stderr : "/dev/null",
			 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	double t0 = lg_now();
	pid_t pid = fork();
	if (pid < 0)
		lg_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		if (errfd >= 0) {
			dup2(errfd, STDOUT_FILENO);
			dup2(errfd, STDERR_FILENO);
		}
		execl(o->shmwarden, "shmwarden", "recover", dir, (char *)NULL);
		_exit(127);
	}
	int st;
	struct rusage ru;
	while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
		;
	double ms = (lg_now() - t0) * 1000;
	*cpu_ms = lg_cpu_ms(&ru);
	if (errfd >= 0)
		close(errfd);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return ms;
}

static int lg_reclaim_as(const struct lg_opts *o);

static int lg_mode_reclaim(const struct lg_opts *o)
{
	if (!o->shmwarden)
		lg_fail("reclaim: --shmwarden PATH is required");
	if (o->as_user)
		return lg_reclaim_as(o);
	char prefix[WIRE_NAME_FIELD], uprefix[WIRE_NAME_FIELD], tagprefix[WIRE_NAME_FIELD];
	snprintf(prefix, sizeof(prefix), "/shmwb_%s_r%d_", o->tag, (int)getpid());
	snprintf(uprefix, sizeof(uprefix), "/shmwb_%s_u%d_", o->tag, (int)getpid());
	snprintf(tagprefix, sizeof(tagprefix), "shmwb_%s_", o->tag);

	/* A dead manager's directory: objects registered, then created, then SIGKILL. */
	struct lg_mgr m;
	lg_spawn(o, &m);
	int fd = lg_connect(m.sock);
	if (fd < 0)
		lg_fail("connect %s: %s", m.sock, strerror(errno));
	lg_register_many(fd, prefix, o->count, o->window, lg_make_object, NULL);
	lg_check_alive(&m, "while registering");
	kill(m.pid, SIGKILL);
	waitpid(m.pid, NULL, 0);
	lg_mgr_pid = 0;
	close(fd);
	unsigned long leaked = lg_sweep_prefix(prefix + 1, false);
	int status;
	double recover_cpu_ms;
	double recover_ms = lg_time_recover(o, m.dir, &status, &recover_cpu_ms);
	unsigned long left = lg_sweep_prefix(prefix + 1, false);
	lg_rm_tree(m.tmp);

	/* The floor: the same number of objects, unlinked by a bare loop. */
	char name[WIRE_NAME_FIELD];
	for (unsigned long i = 0; i < o->count; i++) {
		if ((size_t)snprintf(name, sizeof(name), "%s%lu", uprefix, i) >= sizeof(name))
			lg_fail("name too long: %s%lu", uprefix, i);
		lg_make_object(name, NULL);
	}
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	double t0 = lg_now();
	unsigned long unlinked = 0;
	for (unsigned long i = 0; i < o->count; i++) {
		if ((size_t)snprintf(name, sizeof(name), "%s%lu", uprefix, i) >= sizeof(name))
			break;
		unlinked += shm_unlink(name) == 0;
	}
	double unlink_ms = (lg_now() - t0) * 1000;
	getrusage(RUSAGE_SELF, &ru1);
	lg_sweep_prefix(tagprefix, true);
	printf("count=%lu\nleaked=%lu\nrecover_ms=%.3f\nrecover_cpu_ms=%.3f\nrecover_status=%d\n"
	       "left=%lu\nunlink_ms=%.3f\nunlink_cpu_ms=%.3f\nunlinked=%lu\nuid=%u\n",
	       o->count, leaked, recover_ms, recover_cpu_ms, status, left, unlink_ms,
	       lg_cpu_ms(&ru1) - lg_cpu_ms(&ru0), unlinked, (unsigned)geteuid());
	return 0;
}

/* The reclaim mode run by a child with USER's uids and groups, in a private TMPDIR that
 * user owns under the base (which must let others search it: 0711), so the objects,
 * the dead manager, `recover` and the unlink loop all belong to that user: what a user's
 * restarted manager or `recover` meets. The parent (root) appends the child's manager
 * log to --mgr-stderr and removes the TMPDIR. */
static int lg_reclaim_as(const struct lg_opts *o)
{
	struct passwd *pw = getpwnam(o->as_user);
	if (!pw)
		lg_fail("--as-user %s: no such user", o->as_user);
	if (geteuid() != 0)
		lg_fail("--as-user needs root");
	/* The user must reach the base: it and every directory above it searchable. */
	char walk[PATH_MAX];
	if (!realpath(o->tmpbase, walk))
		lg_fail("--as-user: %s: %s", o->tmpbase, strerror(errno));
	for (;;) {
		struct stat bst;
		const char *dir = *walk ? walk : "/";
		if (stat(dir, &bst) < 0 || (bst.st_mode & S_IXOTH) == 0)
			lg_fail("--as-user: %s must be searchable by others (mode 0711), as must "
				"every directory above %s",
				dir, o->tmpbase);
		if (!*walk)
			break;
		*strrchr(walk, '/') = '\0'; /* realpath's answer is absolute */
	}
	char sub[PATH_MAX], log[PATH_MAX + 16];
	if ((size_t)snprintf(sub, sizeof(sub), "%s/u-XXXXXX", o->tmpbase) >= sizeof(sub) ||
	    !mkdtemp(sub) || chown(sub, pw->pw_uid, pw->pw_gid) < 0)
		lg_fail("cannot make a TMPDIR for %s under %s: %s", o->as_user, o->tmpbase,
			strerror(errno));
	snprintf(log, sizeof(log), "%s/managers.log", sub);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		lg_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0 ||
		    setuid(0) == 0)
			lg_fail("cannot become %s: %s", o->as_user, strerror(errno));
		struct lg_opts uo = *o;
		uo.as_user = NULL;
		uo.tmpbase = sub;
		uo.mgr_stderr = log;
		exit(lg_mode_reclaim(&uo));
	}
	lg_child_pid = pid;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	lg_child_pid = 0;
	if (o->mgr_stderr) {
		FILE *in = fopen(log, "re"), *out = fopen(o->mgr_stderr, "ae");
		char buf[4096];
		size_t n;
		while (in && out && (n = fread(buf, 1, sizeof(buf), in)) > 0)
			fwrite(buf, 1, n, out);
		if (in)
			fclose(in);
		if (out)
			fclose(out);
	}
	lg_rm_tree(sub);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A whole number in [min, max], or a clear failure: a typo must not silently run a
 * different benchmark (strtoul would read "5k" as 5 and "x" as 0). */
static long lg_num(const char *opt, const char *arg, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		lg_fail("--%s: '%s' is not a whole number from %ld to %ld", opt, arg, min, max);
	return v;
}

static double lg_seconds(const char *opt, const char *arg)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= 0 && v <= 86400))
		lg_fail("--%s: '%s' is not a number of seconds from 0 to 86400", opt, arg);
	return v;
}

static void lg_usage(void)
{
	fputs("usage: bench_loadgen info\n"
	      "       bench_loadgen spawn|run|journal|live|reclaim --exe PATH --tmpdir BASE\n"
	      "            [--argv0 NAME] [--arg A]... [--tag TAG] [--mgr-stderr FILE]\n"
	      "            [--clients N] [--idle M] [--duration S] [--warmup S] [--count N]\n"
	      "            [--window W] [--shmwarden PATH] [--as-user USER] [--batch B]\n"
	      "            [--mgr-cpu C] [--client-cpu C] [--ok-timeout MS]\n",
	      stderr);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		lg_usage();
		return 2;
	}
	struct lg_opts o = { .mode = argv[1],
			     .argv0 = "torch_shm_manager",
			     .clients = 1,
			     .window = 128,
			     .count = 1000,
			     .duration = 3,
			     .warmup = 0.5,
			     .mgr_cpu = -1,
			     .client_cpu = -1 };
	if (!strcmp(o.mode, "info")) {
		printf("sqlite=%s\n", sqlite3_libversion());
		return 0;
	}
	static const struct option opts[] = {
		{ "exe", required_argument, NULL, 'e' },
		{ "argv0", required_argument, NULL, '0' },
		{ "arg", required_argument, NULL, 'a' },
		{ "tmpdir", required_argument, NULL, 't' },
		{ "tag", required_argument, NULL, 'g' },
		{ "mgr-stderr", required_argument, NULL, 'l' },
		{ "shmwarden", required_argument, NULL, 's' },
		{ "as-user", required_argument, NULL, 'U' },
		{ "clients", required_argument, NULL, 'c' },
		{ "idle", required_argument, NULL, 'i' },
		{ "window", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'u' },
		{ "batch", required_argument, NULL, 'b' },
		{ "mgr-cpu", required_argument, NULL, 'M' },
		{ "client-cpu", required_argument, NULL, 'C' },
		{ "ok-timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			o.exe = optarg;
			break;
		case '0':
			o.argv0 = optarg;
			break;
		case 'a':
			if (o.nargs == LG_MAX_ARGS)
				lg_fail("too many --arg");
			o.args[o.nargs++] = optarg;
			break;
		case 't':
			o.tmpbase = optarg;
			break;
		case 'g':
			o.tag = optarg;
			break;
		case 'l':
			o.mgr_stderr = optarg;
			break;
		case 's':
			o.shmwarden = optarg;
			break;
		case 'U':
			o.as_user = optarg;
			break;
		case 'c':
			o.clients = (unsigned)lg_num("clients", optarg, 1, 100000);
			break;
		case 'i':
			o.idle = (unsigned)lg_num("idle", optarg, 0, 1000000);
			break;
		case 'w':
			o.window = (unsigned)lg_num("window", optarg, 1, 1000000);
			break;
		case 'n':
			o.count = (unsigned long)lg_num("count", optarg, 0, 100000000);
			break;
		case 'd':
			o.duration = lg_seconds("duration", optarg);
			break;
		case 'u':
			o.warmup = lg_seconds("warmup", optarg);
			break;
		case 'b':
			o.batch = (unsigned)lg_num("batch", optarg, 0, 10000000);
			break;
		case 'M':
			o.mgr_cpu = (int)lg_num("mgr-cpu", optarg, -1, CPU_SETSIZE - 1);
			break;
		case 'C':
			o.client_cpu = (int)lg_num("client-cpu", optarg, -1, CPU_SETSIZE - 1);
			break;
		case 'T':
			lg_ok_timeout_ms = (int)lg_num("ok-timeout", optarg, 1, 3600000);
			break;
		default:
			lg_usage();
			return 2;
		}
	}
	if (!o.exe || !o.tmpbase || optind < argc || o.window == 0 || o.duration <= 0) {
		lg_usage();
		return 2;
	}
	char deftag[32];
	if (!o.tag) {
		snprintf(deftag, sizeof(deftag), "x%d", (int)getpid());
		o.tag = deftag;
	}
	if (strlen(o.tag) > 16 || strchr(o.tag, '/'))
		lg_fail("--tag must be at most 16 characters and contain no '/'");
	struct sigaction sa = { .sa_handler = lg_on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!strcmp(o.mode, "spawn"))
		return lg_mode_spawn(&o);
	if (!strcmp(o.mode, "run"))
		return lg_mode_run(&o);
	if (!strcmp(o.mode, "journal"))
		return lg_mode_journal(&o);
	if (!strcmp(o.mode, "live"))
		return lg_mode_live(&o);
	if (!strcmp(o.mode, "reclaim"))
		return lg_mode_reclaim(&o);
	lg_usage();
	return 2;
}
