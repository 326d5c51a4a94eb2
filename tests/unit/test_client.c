/* test_client.c — libshmwarden (include/shmwarden.h) against the real manager and the real
 * /dev/shm: every public function, its error paths, fork, threads, many processes, SIGKILL.
 *
 * Each test runs in check.h's private directory, which becomes the managers' TMPDIR; its
 * objects carry a prefix of their own (/shmwc_<pid>_<test>_). The test process is a child
 * subreaper, so the managers the library double-forks become its children: tc_end() waits
 * for them to shut down, kills only them if they do not, and unlinks only objects with the
 * test's prefix. Most tests spawn `shmwarden manager --shutdown-timeout 200` through a
 * wrapper script (SHMWARDEN_MANAGER) to keep the suite fast; a few use the real 2 s
 * torch_shm_manager. Built with -Wl,--wrap=getrandom so names can be predicted.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "shmwarden.h"

/* ---- getrandom() wrapper: a fixed "random" part when a test asks for it ------------ */

ssize_t __real_getrandom(void *buf, size_t len, unsigned int flags);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned int flags);
static atomic_uint tc_fixed_random; /* 0: the real thing */

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned int flags)
{
	unsigned int v = atomic_load(&tc_fixed_random);
	if (!v || len != sizeof(uint32_t))
		return __real_getrandom(buf, len, flags);
	uint32_t r = v;
	memcpy(buf, &r, sizeof(r));
	return (ssize_t)len;
}

/* ---- per-test environment ----------------------------------------------------------- */

enum { END_CLEAN = 0, END_NO_DIR_CHECK = 1, END_MAY_KILL = 2 };

static char tc_build[512];   /* the build under test */
static char tc_base[512];    /* the suite's TMPDIR, restored after each test */
static char tc_prefix[32];   /* this test's object-name prefix */
static char tc_fastmgr[600]; /* the fast-shutdown wrapper script */
static char tc_realmgr[600]; /* build/torch_shm_manager */
static int tc_seq;

static int64_t tc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tc_begin(void)
{
	setenv("TMPDIR", check_tmpdir, 1);
	snprintf(tc_prefix, sizeof(tc_prefix), "/shmwc_%d_%d_", (int)getpid(), ++tc_seq);
	snprintf(tc_fastmgr, sizeof(tc_fastmgr), "%s/fastmgr", check_tmpdir);
	FILE *f = fopen(tc_fastmgr, "w");
	if (f) {
		fprintf(f, "#!/bin/sh\nexec '%s/shmwarden' manager --shutdown-timeout 200\n",
			tc_build);
		fclose(f);
	}
	chmod(tc_fastmgr, 0755);
	setenv(SHMW_MANAGER_ENV, tc_fastmgr, 1);
	atomic_store(&tc_fixed_random, 0);
}

/* Children of this process (the managers, adopted as their subreaper, and forks). */
static int tc_children(pid_t *out, int max)
{
	int n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d)) && n < max) {
		char path[300], buf[512];
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		char *rp = strrchr(buf, ')');
		int ppid;
		char state;
		if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid())
			out[n++] = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

/* Reaps children until none is left or wait_ms passed; returns how many had to be killed. */
static int tc_reap_all(int wait_ms)
{
	int64_t deadline = tc_now_ms() + wait_ms;
	for (;;) {
		pid_t r = waitpid(-1, NULL, WNOHANG);
		if (r > 0)
			continue;
		if (r < 0 || tc_now_ms() > deadline)
			break;
		usleep(10000);
	}
	pid_t kids[64];
	int n = tc_children(kids, 64);
	for (int i = 0; i < n; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	return n;
}

static int tc_count_objects(void)
{
	int n = 0;
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, tc_prefix + 1, strlen(tc_prefix) - 1))
			n++;
	if (d)
		closedir(d);
	return n;
}

static void tc_unlink_objects(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, tc_prefix + 1, strlen(tc_prefix) - 1))
			continue;
		char name[300];
		snprintf(name, sizeof(name), "/%s", e->d_name);
		shm_unlink(name);
	}
	if (d)
		closedir(d);
}

static int tc_count_mgrdirs(const char *base)
{
	int n = 0;
	DIR *d = opendir(base);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "shmwarden-", 10))
			n++;
	if (d)
		closedir(d);
	return n;
}

/* Ends a test: its managers must shut down by themselves (every handle is closed by now)
 * and leave nothing behind; whatever remains is cleaned up anyway. */
static void tc_end(int flags, int wait_ms)
{
	int killed = tc_reap_all(wait_ms);
	if (!(flags & END_MAY_KILL))
		CHECK_EQ_INT(killed, 0);
	CHECK_EQ_INT(tc_count_objects(), 0);
	if (!(flags & END_NO_DIR_CHECK))
		CHECK_EQ_INT(tc_count_mgrdirs(check_tmpdir), 0);
	tc_unlink_objects();
	setenv("TMPDIR", tc_base, 1);
	unsetenv(SHMW_MANAGER_ENV);
	atomic_store(&tc_fixed_random, 0);
}

static bool tc_exists(const char *name)
{
	char path[300];
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	return access(path, F_OK) == 0;
}

static bool tc_has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

/* Spawns the fast manager with the test's prefix. */
static struct shmw_manager *tc_spawn(unsigned int flags)
{
	struct shmw_manager *m = NULL;
	int rc = shmw_spawn(NULL, flags, &m);
	if (rc < 0) {
		printf("# spawn: %s\n", shmw_errmsg());
		return NULL;
	}
	shmw_set_prefix(m, tc_prefix);
	return m;
}

static unsigned char tc_pattern(size_t i, unsigned int seed)
{
	return (unsigned char)(((i + seed) * 2654435761u) >> 13);
}

static void tc_fill(struct shmw_segment *s, unsigned int seed)
{
	unsigned char *p = shmw_data(s);
	for (size_t i = 0; i < shmw_size(s); i++)
		p[i] = tc_pattern(i, seed);
}

static bool tc_verify(const struct shmw_segment *s, unsigned int seed)
{
	const unsigned char *p = shmw_data(s);
	for (size_t i = 0; i < shmw_size(s); i++)
		if (p[i] != tc_pattern(i, seed))
			return false;
	return true;
}

/* ---- a fake manager, for answers the real one never gives ---------------------------- */

enum { FAKE_OK, FAKE_SILENT, FAKE_GARBAGE };

struct fake_rec {
	char name[64];
	bool is_free;
};

struct fake {
	char path[600];
	int lfd, mode;
	atomic_bool stop;
	pthread_t thread;
	pthread_mutex_t mu;
	int accepted; /* connections so far */
	int nrec;
	struct fake_rec rec[64];
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd p[9];
	int n = 1;
	p[0] = (struct pollfd){ .fd = f->lfd, .events = POLLIN };
	while (!atomic_load(&f->stop)) {
		if (poll(p, (nfds_t)n, 20) <= 0)
			continue;
		if ((p[0].revents & POLLIN) && n < 9) {
			int c = accept(f->lfd, NULL, NULL);
			if (c >= 0) {
				p[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
				pthread_mutex_lock(&f->mu);
				f->accepted++;
				pthread_mutex_unlock(&f->mu);
			}
		}
		for (int i = 1; i < n; i++) {
			if (!p[i].revents)
				continue;
			unsigned char rec[68];
			if (recv(p[i].fd, rec, sizeof(rec), MSG_WAITALL) != (ssize_t)sizeof(rec)) {
				close(p[i].fd);
				p[i--] = p[--n];
				continue;
			}
			pthread_mutex_lock(&f->mu);
			if (f->nrec < 64) {
				memcpy(f->rec[f->nrec].name, rec + 5, 60);
				f->rec[f->nrec].name[60] = '\0';
				f->rec[f->nrec++].is_free = rec[4] != 0;
			}
			pthread_mutex_unlock(&f->mu);
			if (rec[4])
				continue;
			if (f->mode == FAKE_OK && send(p[i].fd, "OK", 2, MSG_NOSIGNAL) != 2)
				break;
			if (f->mode == FAKE_GARBAGE && send(p[i].fd, "NO", 2, MSG_NOSIGNAL) != 2)
				break;
		}
	}
	for (int i = 1; i < n; i++)
		close(p[i].fd);
	return NULL;
}

static int fake_start(struct fake *f, int mode)
{
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	snprintf(f->path, sizeof(f->path), "%s/fake.sock", check_tmpdir);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path) >=
	    (int)sizeof(sun.sun_path))
		return -1;
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(f->lfd, 8) < 0)
		return -1;
	pthread_mutex_init(&f->mu, NULL);
	return pthread_create(&f->thread, NULL, fake_main, f) ? -1 : 0;
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	close(f->lfd);
	pthread_mutex_destroy(&f->mu);
}

static int fake_accepted(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	int n = f->accepted;
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* Waits until the fake has seen n records. */
static int fake_wait(struct fake *f, int n)
{
	int64_t deadline = tc_now_ms() + 3000;
	int have;
	do {
		pthread_mutex_lock(&f->mu);
		have = f->nrec;
		pthread_mutex_unlock(&f->mu);
		if (have >= n)
			break;
		usleep(5000);
	} while (tc_now_ms() < deadline);
	return have;
}

/* ---- the tests ----------------------------------------------------------------------- */

static void test_version_and_strerror(void)
{
	CHECK(!strcmp(shmw_version(), SHMW_VERSION));
	CHECK(tc_has(shmw_strerror(-ENOTCONN), "gone"));
	CHECK(tc_has(shmw_strerror(ETIMEDOUT), "in time"));
	CHECK(tc_has(shmw_strerror(-ENOENT), "No such file"));
	CHECK(shmw_errmsg() != NULL);
}

static void test_spawn_create_open_free(void)
{
	tc_begin();
	struct shmw_manager *m = NULL;
	int rc = shmw_spawn(tc_realmgr, 0, &m);
	CHECK_EQ_INT(rc, 0);
	if (rc < 0) {
		printf("# %s\n", shmw_errmsg());
		tc_end(END_CLEAN, 100);
		return;
	}
	CHECK_EQ_INT(shmw_set_prefix(m, tc_prefix), 0);

	char sock[128], tiny[8];
	int len = shmw_socket_path(m, sock, sizeof(sock));
	CHECK(len > 0 && (size_t)len == strlen(sock));
	CHECK(!strncmp(sock, check_tmpdir, strlen(check_tmpdir)));
	CHECK(tc_has(sock, "/shmwarden-") && tc_has(sock, "/manager.sock"));
	CHECK_EQ_INT(shmw_socket_path(m, tiny, sizeof(tiny)), -ERANGE);
	pid_t mpid = shmw_manager_pid(m);
	CHECK(mpid > 0 && mpid != getpid());
	CHECK_EQ_INT(getsid(mpid), mpid); /* the manager is in a session of its own */

	struct shmw_segment *s = NULL, *r = NULL, *ro = NULL;
	CHECK_EQ_INT(shmw_create(m, 10000, 0, &s), 0);
	if (!s) {
		shmw_close(m);
		tc_end(END_MAY_KILL, 3000);
		return;
	}
	CHECK_EQ_INT(shmw_size(s), 10000);
	CHECK(!strncmp(shmw_name(s), tc_prefix, strlen(tc_prefix)));
	CHECK(strlen(shmw_name(s)) <= SHMW_NAME_MAX);
	CHECK_EQ_INT(shmw_is_owner(s), 1);
	CHECK(tc_exists(shmw_name(s)));
	const unsigned char *z = shmw_data(s);
	bool zero = true;
	for (size_t i = 0; i < 10000; i++)
		zero = zero && z[i] == 0;
	CHECK(zero);
	tc_fill(s, 1);

	/* The receiving side, through the same handle: both views share the bytes. */
	CHECK_EQ_INT(shmw_open(m, shmw_name(s), 0, &r), 0);
	CHECK_EQ_INT(shmw_open(m, shmw_name(s), SHMW_OPEN_RDONLY, &ro), 0);
	if (r && ro) {
		CHECK_EQ_INT(shmw_is_owner(r), 0);
		CHECK_EQ_INT(shmw_size(r), 10000);
		CHECK(shmw_data(r) != shmw_data(s));
		CHECK(tc_verify(r, 1) && tc_verify(ro, 1));
		((unsigned char *)shmw_data(r))[42] ^= 0xff;
		CHECK(((unsigned char *)shmw_data(s))[42] == (tc_pattern(42, 1) ^ 0xff));
		CHECK(!strcmp(shmw_name(r), shmw_name(s)));
		/* A receiver's free leaves the object to its owner. */
		CHECK_EQ_INT(shmw_free(r), 0);
		CHECK_EQ_INT(shmw_free(ro), 0);
		CHECK(tc_exists(shmw_name(s)));
	}
	char name[64];
	snprintf(name, sizeof(name), "%s", shmw_name(s));
	CHECK_EQ_INT(shmw_free(s), 0);
	CHECK(!tc_exists(name));
	CHECK_EQ_INT(shmw_free(NULL), 0);

	/* Opening what no longer exists: -ENOENT, and nothing is created. */
	CHECK_EQ_INT(shmw_open(m, name, 0, &r), -ENOENT);
	CHECK(tc_has(shmw_errmsg(), name));
	CHECK(!tc_exists(name));
	shmw_close(m);

	/* The real manager: gone 2 s after the last client, with its directory. */
	int64_t t0 = tc_now_ms();
	int st = -1;
	CHECK_EQ_INT(waitpid(mpid, &st, 0), mpid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(tc_now_ms() - t0 > 1000);
	tc_end(END_CLEAN, 3000);
}

static void test_bad_arguments(void)
{
	tc_begin();
	struct shmw_manager *m = tc_spawn(0);
	CHECK(m != NULL);
	struct shmw_segment *s = NULL;
	CHECK_EQ_INT(shmw_spawn(NULL, 0, NULL), -EINVAL);
	CHECK_EQ_INT(shmw_spawn(NULL, 0x100, &m), -EINVAL);
	CHECK_EQ_INT(shmw_connect(NULL, 0, &m), -EINVAL);
	CHECK_EQ_INT(shmw_connect("", 0, &m), -EINVAL);
	CHECK_EQ_INT(shmw_connect("/x", 0x100, &m), -EINVAL);
	CHECK_EQ_INT(shmw_create(NULL, 1, 0, &s), -EINVAL);
	CHECK_EQ_INT(shmw_create(m, 1, 0, NULL), -EINVAL);
	CHECK_EQ_INT(shmw_create(m, 1, 0x100, &s), -EINVAL);
	CHECK_EQ_INT(shmw_open(m, NULL, 0, &s), -EINVAL);
	CHECK_EQ_INT(shmw_open(m, "/x", 0x100, &s), -EINVAL);
	const char *bad_names[] = {
		"",
		"/",
		"noslash",
		"/a/b",
		"/.",
		"/..",
		"/123456789012345678901234567890123456789012345678901234567890", /* 61 bytes */
	};
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		CHECK_EQ_INT(shmw_open(m, bad_names[i], 0, &s), -EINVAL);
		CHECK(tc_has(shmw_errmsg(), "bad shared-memory name"));
	}
	const char *bad_prefixes[] = { "", "x", "/a/", "/123456789012345678901234567890" };
	for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++)
		CHECK_EQ_INT(shmw_set_prefix(m, bad_prefixes[i]), -EINVAL);
	CHECK_EQ_INT(shmw_set_prefix(m, NULL), -EINVAL);
	CHECK_EQ_INT(shmw_set_prefix(NULL, "/x"), -EINVAL);
	CHECK_EQ_INT(shmw_socket_path(NULL, NULL, 0), -EINVAL);
	CHECK_EQ_INT(shmw_manager_pid(NULL), -EINVAL);
	CHECK(shmw_data(NULL) == NULL && shmw_size(NULL) == 0 && shmw_name(NULL) == NULL);
	CHECK_EQ_INT(shmw_is_owner(NULL), 0);
	shmw_close(NULL);
	/* The longest prefix still yields names that fit the wire. */
	char longest[SHMW_PREFIX_MAX + 1];
	CHECK(snprintf(longest, sizeof(longest), "%s%0*d", tc_prefix,
		       SHMW_PREFIX_MAX - (int)strlen(tc_prefix), 0) == SHMW_PREFIX_MAX);
	CHECK_EQ_INT(shmw_set_prefix(m, longest), 0);
	CHECK_EQ_INT(shmw_create(m, 1, 0, &s), 0);
	if (s) {
		CHECK(strlen(shmw_name(s)) <= SHMW_NAME_MAX);
		CHECK_EQ_INT(shmw_free(s), 0);
	}
	shmw_close(m);
	tc_end(END_CLEAN, 3000);
}

static void test_connect_without_manager(void)
{
	tc_begin();
	struct shmw_manager *m = NULL;
	char path[700];
	snprintf(path, sizeof(path), "%s/nothing.sock", check_tmpdir);
	CHECK_EQ_INT(shmw_connect(path, 0, &m), -ENOENT);
	CHECK(m == NULL);
	CHECK(tc_has(shmw_errmsg(), "cannot connect to manager at") && tc_has(shmw_errmsg(), path));

	/* A socket file nobody listens on (a dead manager's). */
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	CHECK(snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) < (int)sizeof(sun.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	CHECK_EQ_INT(shmw_connect(path, 0, &m), -ECONNREFUSED);
	/* A regular file, and a path longer than a socket address. */
	snprintf(path, sizeof(path), "%s/fastmgr", check_tmpdir);
	CHECK_EQ_INT(shmw_connect(path, 0, &m), -ECONNREFUSED);
	char longpath[300];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK_EQ_INT(shmw_connect(longpath, 0, &m), -ENAMETOOLONG);

	/* A listener that never accepts, its backlog full: connect gives up after 1 s
	 * instead of blocking forever. */
	snprintf(path, sizeof(path), "%s/stuck.sock", check_tmpdir);
	CHECK(snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) < (int)sizeof(sun.sun_path));
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0 && listen(lfd, 0) == 0);
	int filler = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(connect(filler, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	int64_t t0 = tc_now_ms();
	CHECK_EQ_INT(shmw_connect(path, 0, &m), -ETIMEDOUT);
	CHECK(tc_now_ms() - t0 < 3000);
	close(filler);
	close(lfd);
	CHECK(m == NULL);
	tc_end(END_CLEAN, 100);
}

static void tc_write_script(const char *path, const char *body)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "#!/bin/sh\n%s\n", body);
		fclose(f);
	}
	chmod(path, 0755);
}

static void test_spawn_failures(void)
{
	tc_begin();
	struct shmw_manager *m = NULL;
	CHECK_EQ_INT(shmw_spawn("/nonexistent/torch_shm_manager", 0, &m), -ENOENT);
	CHECK(tc_has(shmw_errmsg(), "no response from manager at /nonexistent/torch_shm_manager"));
	CHECK(tc_has(shmw_errmsg(), "exec"));

	/* Runs but prints nothing. */
	CHECK_EQ_INT(shmw_spawn("/bin/true", 0, &m), -EIO);
	CHECK(tc_has(shmw_errmsg(), "no response from manager at /bin/true"));

	/* Not executable. */
	char path[700];
	snprintf(path, sizeof(path), "%s/noexec", check_tmpdir);
	tc_write_script(path, "echo /x");
	chmod(path, 0644);
	CHECK_EQ_INT(shmw_spawn(path, 0, &m), -EACCES);

	/* Prints something that is not a socket path. */
	snprintf(path, sizeof(path), "%s/garbage", check_tmpdir);
	tc_write_script(path, "echo hello");
	CHECK_EQ_INT(shmw_spawn(path, 0, &m), -EPROTO);
	CHECK(tc_has(shmw_errmsg(), "\"hello\""));

	/* An ERROR line: the rest of it reaches the caller. */
	snprintf(path, sizeof(path), "%s/error", check_tmpdir);
	tc_write_script(path, "echo 'ERROR: the disk is on fire'; exit 1");
	CHECK_EQ_INT(shmw_spawn(path, 0, &m), -EIO);
	CHECK(tc_has(shmw_errmsg(), "failed to start: the disk is on fire"));

	/* Prints a path nobody listens on. */
	snprintf(path, sizeof(path), "%s/liar", check_tmpdir);
	tc_write_script(path, "echo /nonexistent/manager.sock");
	CHECK_EQ_INT(shmw_spawn(path, 0, &m), -ENOENT);
	CHECK(tc_has(shmw_errmsg(), "/nonexistent/manager.sock"));

	/* Never answers: the 10 s limit would make the suite slow; stdout closed is
	 * covered by "prints nothing". */
	CHECK(m == NULL);
	tc_end(END_CLEAN, 100);
}

static void test_spawn_error_line_from_real_manager(void)
{
	tc_begin();
	/* A TMPDIR so long that the socket path cannot fit a sockaddr_un. */
	char longdir[700];
	int n = snprintf(longdir, sizeof(longdir), "%s/", check_tmpdir);
	while (n < 150)
		longdir[n++] = 'd';
	longdir[n] = '\0';
	CHECK(mkdir(longdir, 0700) == 0);
	setenv("TMPDIR", longdir, 1);
	struct shmw_manager *m = NULL;
	CHECK_EQ_INT(shmw_spawn(tc_realmgr, 0, &m), -EIO);
	CHECK(tc_has(shmw_errmsg(), "failed to start: "));
	CHECK(tc_has(shmw_errmsg(), "set TMPDIR to a shorter directory"));
	CHECK(m == NULL);
	tc_end(END_CLEAN, 3000);
}

static void test_spawn_path_from_environment(void)
{
	tc_begin();
	/* NULL: $SHMWARDEN_MANAGER (the fast wrapper). */
	struct shmw_manager *m = NULL;
	CHECK_EQ_INT(shmw_spawn(NULL, 0, &m), 0);
	shmw_close(m);
	setenv(SHMW_MANAGER_ENV, "/nonexistent/from-env", 1);
	CHECK_EQ_INT(shmw_spawn(NULL, 0, &m), -ENOENT);
	CHECK(tc_has(shmw_errmsg(), "/nonexistent/from-env"));
	/* Unset: the compiled-in install location (present or not on this machine). */
	unsetenv(SHMW_MANAGER_ENV);
	m = NULL;
	int rc = shmw_spawn(NULL, 0, &m);
	if (rc < 0)
		CHECK(tc_has(shmw_errmsg(), "torch_shm_manager"));
	shmw_close(m);
	tc_end(END_CLEAN, 3000);
}

/* Waits for a SIGKILLed manager (our child, as subreaper) to be gone. */
static void tc_kill_manager(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_manager_killed_reports_gone(void)
{
	tc_begin();
	struct shmw_manager *m = tc_spawn(0);
	struct shmw_segment *a = NULL, *b = NULL;
	CHECK(m && shmw_create(m, 4096, 0, &a) == 0);
	if (!a) {
		shmw_close(m);
		tc_end(END_MAY_KILL, 1000);
		return;
	}
	char sock[128];
	shmw_socket_path(m, sock, sizeof(sock));
	tc_kill_manager(shmw_manager_pid(m));

	CHECK_EQ_INT(shmw_create(m, 4096, 0, &b), -ENOTCONN);
	CHECK(tc_has(shmw_errmsg(), "is gone") && tc_has(shmw_errmsg(), sock));
	CHECK(b == NULL);
	/* Again, now through a fresh connect: still -ENOTCONN, not a crash or a hang. */
	CHECK_EQ_INT(shmw_create(m, 4096, 0, &b), -ENOTCONN);
	CHECK_EQ_INT(shmw_manager_pid(m), -ENOTCONN);
	CHECK_EQ_INT(tc_count_objects(), 1);
	/* The free still unmaps and unlinks; it reports that the manager could not be told. */
	CHECK_EQ_INT(shmw_free(a), -ENOTCONN);
	CHECK_EQ_INT(tc_count_objects(), 0);
	shmw_close(m);
	/* The dead manager's directory stays for recover/sweep (or the next manager). */
	CHECK_EQ_INT(tc_count_mgrdirs(check_tmpdir), 1);
	tc_end(END_NO_DIR_CHECK, 100);
}

static void test_manager_killed_respawn(void)
{
	tc_begin();
	struct shmw_manager *m = tc_spawn(SHMW_RESPAWN);
	struct shmw_segment *a = NULL, *b = NULL;
	CHECK(m && shmw_create(m, 4096, 0, &a) == 0);
	if (!a) {
		shmw_close(m);
		tc_end(END_MAY_KILL, 1000);
		return;
	}
	tc_fill(a, 7);
	char sock1[128], sock2[128];
	shmw_socket_path(m, sock1, sizeof(sock1));
	pid_t old = shmw_manager_pid(m);
	tc_kill_manager(old);

	/* The request finds the manager gone, spawns a fresh one and succeeds. */
	CHECK_EQ_INT(shmw_create(m, 8192, 0, &b), 0);
	shmw_socket_path(m, sock2, sizeof(sock2));
	CHECK(strcmp(sock1, sock2) != 0);
	pid_t fresh = shmw_manager_pid(m);
	CHECK(fresh > 0 && fresh != old);
	CHECK(tc_verify(a, 7)); /* what we had mapped is untouched */
	if (b)
		CHECK_EQ_INT(shmw_free(b), 0);
	CHECK_EQ_INT(shmw_free(a), 0);
	shmw_close(m);
	/* The fresh manager adopted the dead one's directory: when it shuts down, nothing
	 * is left, not even the dead directory. Its way out is longer than a plain
	 * manager's (an adoption walks every task's descriptors and maps, then the idle
	 * timer, then its own reclaim at shutdown), and at load 15-25 it outlasted 3 s:
	 * it is given 15, and must still exit on its own (killed: a failure). */
	tc_end(END_CLEAN, 15000);
}

static void test_timeout_and_protocol_errors(void)
{
	tc_begin();
	struct fake f;
	struct shmw_manager *m = NULL;
	struct shmw_segment *s = NULL;
	CHECK_EQ_INT(fake_start(&f, FAKE_SILENT), 0);
	CHECK_EQ_INT(shmw_connect(f.path, 0, &m), 0);
	if (m) {
		shmw_set_prefix(m, tc_prefix);
		int64_t t0 = tc_now_ms();
		CHECK_EQ_INT(shmw_create(m, 4096, 0, &s), -ETIMEDOUT);
		int64_t took = tc_now_ms() - t0;
		CHECK(took >= 900 && took < 3000);
		CHECK(tc_has(shmw_errmsg(), "did not answer within 1000 ms"));
		CHECK_EQ_INT(tc_count_objects(), 0); /* no OK, no object */
		/* The connection was dropped (a late OK must not answer the next request);
		 * the next one reconnects and times out the same way. */
		CHECK_EQ_INT(fake_accepted(&f), 1);
		CHECK_EQ_INT(shmw_open(m, "/shmwc_nothing", 0, &s), -ETIMEDOUT);
		CHECK_EQ_INT(fake_accepted(&f), 2);
		shmw_close(m);
	}
	fake_stop(&f);
	unlink(f.path);

	CHECK_EQ_INT(fake_start(&f, FAKE_GARBAGE), 0);
	CHECK_EQ_INT(shmw_connect(f.path, 0, &m), 0);
	if (m) {
		shmw_set_prefix(m, tc_prefix);
		CHECK_EQ_INT(shmw_create(m, 4096, 0, &s), -EPROTO);
		CHECK(tc_has(shmw_errmsg(), "instead of \"OK\""));
		CHECK_EQ_INT(tc_count_objects(), 0);
		shmw_close(m);
	}
	fake_stop(&f);
	tc_end(END_CLEAN, 100);
}

static void test_error_paths_free_the_name(void)
{
	tc_begin();
	struct fake f;
	struct shmw_manager *m = NULL;
	struct shmw_segment *s = NULL;
	CHECK_EQ_INT(fake_start(&f, FAKE_OK), 0);
	CHECK_EQ_INT(shmw_connect(f.path, 0, &m), 0);
	if (!m) {
		fake_stop(&f);
		tc_end(END_CLEAN, 100);
		return;
	}
	shmw_set_prefix(m, tc_prefix);

	/* Refused before anything is registered. */
	CHECK_EQ_INT(shmw_create(m, 0, 0, &s), -EINVAL);
	CHECK(tc_has(shmw_errmsg(), "size 0"));
	CHECK_EQ_INT(shmw_create(m, SIZE_MAX, 0, &s), -EFBIG);

	/* Larger than the address space: ftruncate works on tmpfs, mmap cannot. */
	int rc = shmw_create(m, (size_t)1 << 62, 0, &s);
	CHECK(rc == -ENOMEM || rc == -EFBIG);
	CHECK(s == NULL);
	CHECK_EQ_INT(fake_wait(&f, 2), 2);
	CHECK(!f.rec[0].is_free && f.rec[1].is_free);
	CHECK(!strcmp(f.rec[0].name, f.rec[1].name));
	CHECK(!tc_exists(f.rec[0].name));

	/* Reserved: more than /dev/shm can ever hold is ENOSPC now, not SIGBUS later (tmpfs
	 * refuses it up front: nothing is allocated). An unlimited tmpfs has no such size. */
	struct statvfs sv;
	CHECK(statvfs("/dev/shm", &sv) == 0);
	if (sv.f_blocks > 0) {
		size_t more = (size_t)sv.f_blocks * sv.f_frsize + ((size_t)1 << 30);
		CHECK_EQ_INT(shmw_create(m, more, SHMW_CREATE_RESERVE, &s), -ENOSPC);
		CHECK(tc_has(shmw_errmsg(), "cannot reserve"));
	} else {
		CHECK_EQ_INT(shmw_create(m, 1, 0, &s), 0);
		shmw_free(s);
	}
	CHECK_EQ_INT(fake_wait(&f, 4), 4);
	CHECK(!f.rec[2].is_free && f.rec[3].is_free);
	CHECK(!strcmp(f.rec[2].name, f.rec[3].name));
	CHECK_EQ_INT(tc_count_objects(), 0);
	/* A small reservation works. */
	CHECK_EQ_INT(shmw_create(m, 1 << 20, SHMW_CREATE_RESERVE, &s), 0);
	CHECK_EQ_INT(shmw_free(s), 0);

	/* Opening a missing object registers, fails, frees. */
	char missing[64];
	snprintf(missing, sizeof(missing), "%smissing", tc_prefix);
	CHECK_EQ_INT(shmw_open(m, missing, 0, &s), -ENOENT);
	CHECK_EQ_INT(fake_wait(&f, 8), 8);
	CHECK(!strcmp(f.rec[6].name, missing) && !f.rec[6].is_free);
	CHECK(!strcmp(f.rec[7].name, missing) && f.rec[7].is_free);
	/* An empty object cannot be mapped. */
	int fd = shm_open(missing, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(shmw_open(m, missing, 0, &s), -EINVAL);
	CHECK(tc_has(shmw_errmsg(), "is empty"));
	shm_unlink(missing);
	shmw_close(m);
	fake_stop(&f);
	tc_end(END_CLEAN, 100);
}

static void test_name_collisions(void)
{
	tc_begin();
	struct shmw_manager *m = tc_spawn(0);
	if (!m) {
		tc_end(END_MAY_KILL, 100);
		return;
	}
	/* With the random part fixed, the next names are known: take the first three. */
	atomic_store(&tc_fixed_random, 0x5eed5eedu);
	char taken[3][64];
	for (int i = 0; i < 3; i++) {
		snprintf(taken[i], sizeof(taken[i]), "%s%d_5eed5eed_%d", tc_prefix, (int)getpid(),
			 i);
		int fd = shm_open(taken[i], O_RDWR | O_CREAT | O_EXCL, 0600);
		CHECK(fd >= 0 && write(fd, "theirs", 6) == 6);
		close(fd);
	}
	struct shmw_segment *s = NULL;
	CHECK_EQ_INT(shmw_create(m, 4096, 0, &s), 0);
	if (s) {
		char want[64];
		snprintf(want, sizeof(want), "%s%d_5eed5eed_3", tc_prefix, (int)getpid());
		CHECK(!strcmp(shmw_name(s), want));
		CHECK_EQ_INT(shmw_free(s), 0);
	}
	/* Every try taken: -EEXIST, and the others' objects untouched. */
	for (int i = 4; i < 12; i++) {
		char n[64];
		snprintf(n, sizeof(n), "%s%d_5eed5eed_%d", tc_prefix, (int)getpid(), i);
		int fd = shm_open(n, O_RDWR | O_CREAT | O_EXCL, 0600);
		CHECK(fd >= 0);
		close(fd);
	}
	CHECK_EQ_INT(shmw_create(m, 4096, 0, &s), -EEXIST);
	CHECK(tc_has(shmw_errmsg(), "no free shared-memory name"));
	atomic_store(&tc_fixed_random, 0);
	pid_t mpid = shmw_manager_pid(m);
	shmw_close(m);
	waitpid(mpid, NULL, 0);
	/* The manager shut down; it never registered the taken names, so it did not unlink
	 * them: they still hold what their owner wrote. */
	for (int i = 0; i < 3; i++) {
		char buf[8] = "";
		int fd = shm_open(taken[i], O_RDONLY, 0);
		CHECK(fd >= 0 && read(fd, buf, 6) == 6 && !memcmp(buf, "theirs", 6));
		if (fd >= 0)
			close(fd);
	}
	CHECK_EQ_INT(tc_count_objects(), 11);
	tc_unlink_objects();
	tc_end(END_CLEAN, 1000);
}

#define TC_THREADS 8
#define TC_ROUNDS 200

struct tc_thread_arg {
	struct shmw_manager *m;
	int id, failures;
	char names[TC_ROUNDS][64];
};

static void *tc_thread_main(void *p)
{
	struct tc_thread_arg *a = p;
	for (int i = 0; i < TC_ROUNDS; i++) {
		struct shmw_segment *s = NULL;
		if (shmw_create(a->m, 4096, 0, &s) < 0) {
			if (a->failures++ == 0)
				printf("# thread %d: %s\n", a->id, shmw_errmsg());
			continue;
		}
		snprintf(a->names[i], sizeof(a->names[i]), "%s", shmw_name(s));
		memset(shmw_data(s), a->id, 4096);
		if (((unsigned char *)shmw_data(s))[4095] != a->id)
			a->failures++;
		if (shmw_free(s) < 0)
			a->failures++;
	}
	return NULL;
}

static int tc_strcmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_threads_share_one_handle(void)
{
	tc_begin();
	struct shmw_manager *m = tc_spawn(0);
	if (!m) {
		tc_end(END_MAY_KILL, 100);
		return;
	}
	static struct tc_thread_arg args[TC_THREADS];
	pthread_t th[TC_THREADS];
	for (int i = 0; i < TC_THREADS; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].m = m;
		args[i].id = i + 1;
		CHECK_EQ_INT(pthread_create(&th[i], NULL, tc_thread_main, &args[i]), 0);
	}
	int failures = 0;
	for (int i = 0; i < TC_THREADS; i++) {
		pthread_join(th[i], NULL);
		failures += args[i].failures;
	}
	CHECK_EQ_INT(failures, 0);
	/* 1600 names, all different. */
	static char all[TC_THREADS * TC_ROUNDS][64];
	for (int i = 0; i < TC_THREADS; i++)
		memcpy(all[i * TC_ROUNDS], args[i].names, sizeof(args[i].names));
	qsort(all, TC_THREADS * TC_ROUNDS, 64, tc_strcmp);
	int dups = 0;
	for (int i = 1; i < TC_THREADS * TC_ROUNDS; i++)
		dups += all[i][0] && !strcmp(all[i], all[i - 1]);
	CHECK_EQ_INT(dups, 0);
	shmw_close(m);
	tc_end(END_CLEAN, 3000);
}

/* Runs fn in a child; returns its exit status (0 = it passed). */
static int tc_in_child(int (*fn)(void *), void *arg, int timeout_s)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		/* _exit: the parent has other threads, whose allocations the child's leak
		 * checker would see without the stacks that point to them. */
		alarm((unsigned)timeout_s);
		int rc = fn(arg);
		fflush(stdout);
		_exit(rc);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct tc_fork_arg {
	struct shmw_manager *m;
	struct shmw_segment *inherited;
};

static int tc_child_create_free(void *p)
{
	struct tc_fork_arg *a = p;
	int bad = 0;
	for (int i = 0; i < 200; i++) {
		struct shmw_segment *s = NULL;
		if (shmw_create(a->m, 4096, 0, &s) < 0) {
			if (bad++ == 0)
				printf("# child: %s\n", shmw_errmsg());
			continue;
		}
		bad += shmw_free(s) < 0;
	}
	if (a->inherited) {
		/* The parent's segment: readable here; our free unmaps it but must not unlink
		 * it, the parent created it. */
		bad += !tc_verify(a->inherited, 3);
		bad += shmw_is_owner(a->inherited) != 0;
		char name[64];
		snprintf(name, sizeof(name), "%s", shmw_name(a->inherited));
		bad += shmw_free(a->inherited) != 0;
		bad += !tc_exists(name);
	}
	shmw_close(a->m);
	return bad ? 1 : 0;
}

static void *tc_parent_loop(void *p)
{
	struct tc_fork_arg *a = p;
	long bad = 0;
	for (int i = 0; i < 200; i++) {
		struct shmw_segment *s = NULL;
		if (shmw_create(a->m, 4096, 0, &s) < 0) {
			bad++;
			continue;
		}
		bad += shmw_free(s) < 0;
	}
	return (void *)bad;
}

static void test_fork_child_gets_its_own_connection(void)
{
	tc_begin();
	struct shmw_manager *m = tc_spawn(0);
	struct shmw_segment *a = NULL;
	CHECK(m && shmw_create(m, 4096, 0, &a) == 0);
	if (!a) {
		shmw_close(m);
		tc_end(END_MAY_KILL, 1000);
		return;
	}
	tc_fill(a, 3);
	/* Parent and child talk at the same time: on a shared socket their OKs would cross
	 * and one side would time out. */
	struct tc_fork_arg arg = { m, a };
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(30);
		exit(tc_child_create_free(&arg));
	}
	pthread_t th;
	void *bad = NULL;
	struct tc_fork_arg parg = { m, NULL };
	pthread_create(&th, NULL, tc_parent_loop, &parg);
	pthread_join(th, &bad);
	CHECK(bad == NULL);
	int st = -1;
	CHECK_EQ_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Ours still: mapped, intact, and unlinked by our free. */
	CHECK(tc_verify(a, 3));
	CHECK(tc_exists(shmw_name(a)));
	CHECK_EQ_INT(shmw_free(a), 0);
	CHECK_EQ_INT(tc_count_objects(), 0);
	shmw_close(m);
	tc_end(END_CLEAN, 3000);
}

static int tc_child_register(void *p)
{
	struct shmw_manager *m = p;
	struct shmw_segment *s = NULL;
	int rc = shmw_open(m, "/shmwc_fork_probe", 0, &s); /* registers, then -ENOENT */
	shmw_close(m);
	return rc == -ENOENT ? 0 : 1;
}

/* Counted at the other end: the child dials a connection of its own, the parent keeps
 * using the one it had. */
static void test_fork_child_dials_its_own_connection(void)
{
	tc_begin();
	struct fake f;
	struct shmw_manager *m = NULL;
	struct shmw_segment *s = NULL;
	CHECK_EQ_INT(fake_start(&f, FAKE_OK), 0);
	CHECK_EQ_INT(shmw_connect(f.path, 0, &m), 0);
	if (m) {
		CHECK_EQ_INT(shmw_open(m, "/shmwc_fork_probe", 0, &s), -ENOENT);
		CHECK_EQ_INT(tc_in_child(tc_child_register, m, 10), 0);
		CHECK_EQ_INT(fake_accepted(&f), 2);
		CHECK_EQ_INT(shmw_open(m, "/shmwc_fork_probe", 0, &s), -ENOENT);
		CHECK_EQ_INT(fake_accepted(&f), 2);
		CHECK_EQ_INT(fake_wait(&f, 6), 6);
		shmw_close(m);
	}
	fake_stop(&f);
	tc_end(END_CLEAN, 100);
}

static atomic_bool tc_busy_stop;

static void *tc_busy_loop(void *p)
{
	struct shmw_manager *m = p;
	while (!atomic_load(&tc_busy_stop)) {
		struct shmw_segment *s = NULL;
		if (shmw_create(m, 4096, 0, &s) == 0)
			shmw_free(s);
	}
	return NULL;
}

static int tc_child_one(void *p)
{
	struct tc_fork_arg a = { p, NULL };
	struct shmw_segment *s = NULL;
	int rc = shmw_create(a.m, 4096, 0, &s);
	if (rc < 0) {
		printf("# forked child: %s\n", shmw_errmsg());
		return 1;
	}
	rc = shmw_free(s);
	shmw_close(a.m);
	return rc < 0 ? 1 : 0;
}

/* fork() while another thread is inside a request: without the atfork hand-over the child
 * would inherit the handle's mutex locked by a thread it does not have, and hang. */
static void test_fork_while_another_thread_is_busy(void)
{
	tc_begin();
	struct shmw_manager *m = tc_spawn(0);
	if (!m) {
		tc_end(END_MAY_KILL, 100);
		return;
	}
	atomic_store(&tc_busy_stop, false);
	pthread_t th;
	pthread_create(&th, NULL, tc_busy_loop, m);
	int failed = 0;
	for (int i = 0; i < 20; i++)
		failed += tc_in_child(tc_child_one, m, 10) != 0;
	atomic_store(&tc_busy_stop, true);
	pthread_join(th, NULL);
	CHECK_EQ_INT(failed, 0);
	shmw_close(m);
	tc_end(END_CLEAN, 3000);
}

static void test_close_with_live_segments(void)
{
	tc_begin();
	struct shmw_manager *m = tc_spawn(0);
	struct shmw_segment *s = NULL;
	CHECK(m && shmw_create(m, 4096, 0, &s) == 0);
	shmw_close(m); /* the segment keeps the connection */
	if (s) {
		tc_fill(s, 9);
		CHECK(tc_verify(s, 9));
		CHECK_EQ_INT(shmw_free(s), 0);
	}
	CHECK_EQ_INT(tc_count_objects(), 0);
	tc_end(END_CLEAN, 3000);
}

/* ---- many processes ------------------------------------------------------------------ */

#define TC_PROCS 6

struct tc_ring {
	struct shmw_manager *m;
	char sock[128];
	int id;
	int name_in, name_out; /* names: from the previous process, to the next */
	int ack_in, ack_out;   /* "done with yours": from the next, to the previous */
};

static int tc_ring_member(void *p)
{
	struct tc_ring *r = p;
	struct shmw_segment *mine = NULL, *theirs = NULL;
	struct shmw_manager *conn = r->m;
	int bad = 0;
	/* Half use the handle they inherited, half connect by socket path, as an unrelated
	 * process would. */
	if (r->id % 2 && shmw_connect(r->sock, 0, &conn) < 0) {
		printf("# member %d: %s\n", r->id, shmw_errmsg());
		return 1;
	}
	shmw_set_prefix(conn, tc_prefix);
	if (shmw_create(conn, 65536 + (size_t)r->id * 4096, 0, &mine) < 0) {
		printf("# member %d: %s\n", r->id, shmw_errmsg());
		return 1;
	}
	tc_fill(mine, (unsigned int)r->id);
	char name[64] = "", out[64] = "";
	snprintf(out, sizeof(out), "%s", shmw_name(mine));
	bad += write(r->name_out, out, sizeof(out)) != sizeof(out);
	bad += read(r->name_in, name, 64) != 64;
	int prev = (r->id + TC_PROCS - 1) % TC_PROCS;
	if (shmw_open(conn, name, SHMW_OPEN_RDONLY, &theirs) < 0) {
		printf("# member %d: %s\n", r->id, shmw_errmsg());
		bad++;
	} else {
		bad += shmw_size(theirs) != 65536 + (size_t)prev * 4096;
		bad += !tc_verify(theirs, (unsigned int)prev);
		bad += shmw_free(theirs) < 0;
	}
	char c = 'k';
	bad += write(r->ack_out, &c, 1) != 1;
	bad += read(r->ack_in, &c, 1) != 1;
	bad += shmw_free(mine) < 0;
	if (conn != r->m)
		shmw_close(conn);
	shmw_close(r->m);
	return bad ? 1 : 0;
}

static void test_many_processes_share_and_leave_nothing(void)
{
	tc_begin();
	struct shmw_manager *m = NULL;
	CHECK_EQ_INT(shmw_spawn(tc_realmgr, 0, &m), 0);
	if (!m) {
		tc_end(END_MAY_KILL, 100);
		return;
	}
	pid_t mpid = shmw_manager_pid(m);
	int names[TC_PROCS][2], acks[TC_PROCS][2];
	for (int i = 0; i < TC_PROCS; i++)
		CHECK(pipe(names[i]) == 0 && pipe(acks[i]) == 0);
	pid_t kids[TC_PROCS];
	for (int i = 0; i < TC_PROCS; i++) {
		struct tc_ring r = { .m = m, .id = i };
		shmw_socket_path(m, r.sock, sizeof(r.sock));
		r.name_out = names[(i + 1) % TC_PROCS][1];
		r.name_in = names[i][0];
		r.ack_out = acks[(i + TC_PROCS - 1) % TC_PROCS][1];
		r.ack_in = acks[i][0];
		fflush(stdout);
		kids[i] = fork();
		if (kids[i] == 0) {
			alarm(30);
			exit(tc_ring_member(&r));
		}
	}
	for (int i = 0; i < TC_PROCS; i++) {
		close(names[i][0]), close(names[i][1]);
		close(acks[i][0]), close(acks[i][1]);
	}
	shmw_close(m);
	int failed = 0;
	for (int i = 0; i < TC_PROCS; i++) {
		int st = -1;
		waitpid(kids[i], &st, 0);
		failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	CHECK_EQ_INT(failed, 0);
	/* Everyone has hung up: the manager shuts down 2 s later, cleanly. */
	int st = -1;
	CHECK_EQ_INT(waitpid(mpid, &st, 0), mpid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	tc_end(END_CLEAN, 3000);
}

struct tc_holder {
	struct shmw_manager *m;
	int ready;
};

static int tc_hold(void *p)
{
	struct tc_holder *h = p;
	struct shmw_segment *s[3];
	for (int i = 0; i < 3; i++) {
		if (shmw_create(h->m, 4096 * (size_t)(i + 1), 0, &s[i]) < 0) {
			printf("# holder: %s\n", shmw_errmsg());
			return 1;
		}
		tc_fill(s[i], (unsigned int)i);
	}
	char c = 'r';
	if (write(h->ready, &c, 1) != 1)
		return 1;
	for (;;)
		pause();
}

/* The OOM killer's way: every client and the manager die by SIGKILL with objects live.
 * The journal survives; `shmwarden sweep` reclaims everything. */
static void test_sigkill_everything_then_sweep(void)
{
	tc_begin();
	struct shmw_manager *m = tc_spawn(0);
	if (!m) {
		tc_end(END_MAY_KILL, 100);
		return;
	}
	pid_t mpid = shmw_manager_pid(m);
	int ready[2];
	CHECK(pipe(ready) == 0);
	struct tc_holder h = { m, ready[1] };
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		fflush(stdout);
		kids[i] = fork();
		if (kids[i] == 0) {
			close(ready[0]);
			alarm(60);
			exit(tc_hold(&h));
		}
	}
	close(ready[1]);
	int n = 0;
	char c;
	while (n < 4 && read(ready[0], &c, 1) == 1)
		n++;
	close(ready[0]);
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(tc_count_objects(), 12);
	for (int i = 0; i < 4; i++)
		kill(kids[i], SIGKILL);
	tc_kill_manager(mpid);
	for (int i = 0; i < 4; i++)
		waitpid(kids[i], NULL, 0);
	shmw_close(m);
	CHECK_EQ_INT(tc_count_objects(), 12); /* leaked, as with the reference */
	CHECK_EQ_INT(tc_count_mgrdirs(check_tmpdir), 1);

	char prog[700];
	snprintf(prog, sizeof(prog), "%s/shmwarden", tc_build);
	fflush(stdout);
	pid_t sw = fork();
	if (sw == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, STDOUT_FILENO);
		execl(prog, "shmwarden", "sweep", "--tmpdir", check_tmpdir, (char *)NULL);
		_exit(127);
	}
	int st = -1;
	CHECK_EQ_INT(waitpid(sw, &st, 0), sw);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_EQ_INT(tc_count_objects(), 0);
	CHECK_EQ_INT(tc_count_mgrdirs(check_tmpdir), 0);
	tc_end(END_CLEAN, 100);
}

int main(void)
{
	const char *b = getenv("SHMWARDEN_BUILD");
	snprintf(tc_build, sizeof(tc_build), "%s", b && *b ? b : "build");
	snprintf(tc_realmgr, sizeof(tc_realmgr), "%s/torch_shm_manager", tc_build);
	const char *t = getenv("TMPDIR");
	snprintf(tc_base, sizeof(tc_base), "%s", t && *t ? t : "/tmp");
	setenv("TMPDIR", tc_base, 1);
	/* The managers the library double-forks are re-parented to us, so we can reap them
	 * and know they are ours. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	setvbuf(stdout, NULL, _IOLBF, 0);

	RUN(test_version_and_strerror);
	RUN(test_spawn_create_open_free);
	RUN(test_bad_arguments);
	RUN(test_connect_without_manager);
	RUN(test_spawn_failures);
	RUN(test_spawn_error_line_from_real_manager);
	RUN(test_spawn_path_from_environment);
	RUN(test_manager_killed_reports_gone);
	RUN(test_manager_killed_respawn);
	RUN(test_timeout_and_protocol_errors);
	RUN(test_error_paths_free_the_name);
	RUN(test_name_collisions);
	RUN(test_threads_share_one_handle);
	RUN(test_fork_child_gets_its_own_connection);
	RUN(test_fork_child_dials_its_own_connection);
	RUN(test_fork_while_another_thread_is_busy);
	RUN(test_close_with_live_segments);
	RUN(test_many_processes_share_and_leave_nothing);
	RUN(test_sigkill_everything_then_sweep);
	return check_done();
}
