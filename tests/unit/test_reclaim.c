/* test_reclaim.c — the in-use index and the reclaim engine against the real kernel:
 * real /dev/shm objects (named /shmwt_unit_<pid>_<n>, all removed at the end of every
 * test and at exit), real journals, real flocks. Dead managers are simulated by
 * journals whose lock nobody holds, including one written by a child that _exit()s
 * with its connection open (the -wal/-shm a SIGKILL leaves).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "inuse.h"
#include "journal.h"
#include "mgrdir.h"
#include "reclaim.h"
#include "shmobj.h"
#include "util.h"

#define OBJ_SIZE 8192
#define FOREIGN_UID 54321 /* any uid that is not ours; need not exist */

static void obj_name(char *buf, size_t len, int n)
{
	snprintf(buf, len, "/shmwt_unit_%d_%d", (int)getpid(), n);
}

static int obj_create(const char *name, uid_t uid)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -1;
	int rc = ftruncate(fd, OBJ_SIZE);
	if (rc == 0 && uid != geteuid())
		rc = fchown(fd, uid, (gid_t)-1);
	close(fd);
	return rc;
}

static bool obj_exists(const char *name)
{
	struct stat st;
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	return lstat(path, &st) == 0;
}

/* Removes every object of this test process, whatever the test did. */
static void obj_cleanup(void)
{
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "shmwt_unit_%d_", (int)getpid());
	DIR *d = opendir("/dev/shm");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static dev_t shm_dev(void)
{
	struct stat st;
	return stat("/dev/shm", &st) == 0 ? st.st_dev : (dev_t)-1;
}

static struct inuse *scan(char *err, size_t errlen)
{
	return inuse_scan("/proc", shm_dev(), err, errlen);
}

/* The index holds the object that name leads to now (false when there is none). */
static bool holds(struct inuse *idx, const char *name)
{
	struct stat st;
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	return lstat(path, &st) == 0 && inuse_holds(idx, st.st_dev, st.st_ino);
}

static bool path_exists(const char *dir, const char *file)
{
	char path[1024];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return lstat(path, &st) == 0;
}

struct fixture {
	struct inuse *idx;
	int shmfd;
	int basefd;
	char boot_id[UTIL_BOOT_ID_LEN + 1];
	struct reclaim_opts opts;
};

static void fixture_init(struct fixture *f, const char *base)
{
	char err[256];
	memset(f, 0, sizeof(*f));
	f->shmfd = shmobj_dir_open(err, sizeof(err));
	f->basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(util_boot_id(f->boot_id, sizeof(f->boot_id), err, sizeof(err)) == 0);
	f->idx = scan(err, sizeof(err));
	CHECK(f->idx != NULL);
	f->opts = (struct reclaim_opts){ .inuse = f->idx,
					 .shm_dirfd = f->shmfd,
					 .boot_id = f->boot_id,
					 .now_s = util_wall_s() };
}

static void fixture_rescan(struct fixture *f)
{
	char err[256];
	inuse_free(f->idx);
	f->idx = scan(err, sizeof(err));
	CHECK(f->idx != NULL);
	f->opts.inuse = f->idx;
}

static void fixture_fini(struct fixture *f)
{
	inuse_free(f->idx);
	if (f->shmfd >= 0)
		close(f->shmfd);
	if (f->basefd >= 0)
		close(f->basefd);
	obj_cleanup();
}

static void meta_init(struct journal_meta *m, uid_t owner, const char *boot_id)
{
	memset(m, 0, sizeof(*m));
	m->owner_uid = owner;
	m->manager_pid = getpid();
	util_strlcpy(m->boot_id, boot_id, sizeof(m->boot_id));
	m->created_at = util_wall_s();
	/* Written in this /dev/shm, as a manager here would record it. */
	struct stat st;
	m->has_shm_fs = true;
	m->shm_dev = stat(SHMOBJ_DIR, &st) == 0 ? (uint64_t)st.st_dev : 0;
	m->has_shm_root = true;
	m->shm_ino = stat(SHMOBJ_DIR, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* A dead manager's directory in base: created, journaled (names), lock released.
 * name receives the directory's name. */
static int dead_dir(const char *base, const char *boot_id, uid_t owner, const char *const *names,
		    size_t n, char *name, size_t namelen)
{
	char path[1024], err[256];
	int dirfd = -1, lockfd = -1, rc = -1;
	struct journal *j = NULL;
	struct journal_meta m;
	if (mgrdir_create(base, path, sizeof(path), &dirfd, &lockfd, err, sizeof(err)) < 0) {
		fprintf(stderr, "mgrdir_create: %s\n", err);
		return -1;
	}
	meta_init(&m, owner, boot_id);
	if (journal_create(path, &m, &j, err, sizeof(err)) < 0) {
		fprintf(stderr, "journal_create: %s\n", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (journal_add(j, names[i], strlen(names[i]), getpid(), util_wall_s()) < 0)
			goto out;
	if (journal_commit(j) < 0)
		goto out;
	util_strlcpy(name, strrchr(path, '/') + 1, namelen);
	rc = 0;
out:
	journal_close(j);
	close(lockfd);
	close(dirfd);
	return rc;
}

static void dir_path(char *buf, size_t len, const char *base, const char *name)
{
	snprintf(buf, len, "%s/%s", base, name);
}

/* The start of most reclaim_dir tests: the fixture, this process's n-th object created
 * in a (64 bytes), and a dead manager directory of this euid and boot whose journal names
 * only a: dname (64 bytes) is its name in the suite's temp dir, path (700) its path. */
static void fixture_dead_dir(struct fixture *f, int n, char *a, char *dname, char *path)
{
	obj_name(a, 64, n);
	CHECK(obj_create(a, geteuid()) == 0);
	fixture_init(f, check_tmpdir);
	const char *names[] = { a };
	CHECK(dead_dir(check_tmpdir, f->boot_id, geteuid(), names, 1, dname, 64) == 0);
	dir_path(path, 700, check_tmpdir, dname);
}

/* A new journal of this euid and this boot (the fixture's), in the directory sub of the
 * suite's temp dir, made here: the caller closes it. NULL, with the CHECK failed and
 * journal_create's error printed, when it cannot be made. */
static struct journal *fixture_journal(const struct fixture *f, const char *sub)
{
	char dir[700], err[256];
	struct journal *j = NULL;
	struct journal_meta m;
	snprintf(dir, sizeof(dir), "%s/%s", check_tmpdir, sub);
	mkdir(dir, 0700);
	meta_init(&m, geteuid(), f->boot_id);
	if (journal_create(dir, &m, &j, err, sizeof(err)) < 0)
		printf("# journal_create %s: %s\n", dir, err);
	CHECK(j != NULL);
	return j;
}

/* ---- the in-use index ---- */

static void test_inuse_mapped_and_open(void)
{
	char name[64], other[64], err[256];
	obj_name(name, sizeof(name), 1);
	obj_name(other, sizeof(other), 2);
	CHECK(obj_create(name, geteuid()) == 0);
	int fd = shm_open(name, O_RDWR, 0);
	CHECK(fd >= 0);
	void *p = mmap(NULL, OBJ_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	close(fd);

	struct inuse *idx = scan(err, sizeof(err));
	CHECK(idx != NULL);
	CHECK(idx && holds(idx, name));
	CHECK(idx && !holds(idx, other));
	CHECK(idx && inuse_count(idx) >= 1);
	inuse_free(idx);

	munmap(p, OBJ_SIZE);
	idx = scan(err, sizeof(err));
	CHECK(idx && !holds(idx, name));
	inuse_free(idx);

	/* Held open, not mapped: still in use. */
	fd = shm_open(name, O_RDONLY, 0);
	CHECK(fd >= 0);
	idx = scan(err, sizeof(err));
	CHECK(idx && holds(idx, name));
	inuse_free(idx);
	close(fd);
	idx = scan(err, sizeof(err));
	CHECK(idx && !holds(idx, name));
	inuse_free(idx);
	obj_cleanup();
}

/* A mapping whose object was unlinked is no claim on a new object of that name. */
static void test_inuse_deleted_mapping(void)
{
	char name[64], err[256];
	obj_name(name, sizeof(name), 3);
	CHECK(obj_create(name, geteuid()) == 0);
	int fd = shm_open(name, O_RDWR, 0);
	void *p = mmap(NULL, OBJ_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	close(fd);
	shm_unlink(name);
	CHECK(obj_create(name, geteuid()) == 0); /* a new object under the old name */
	struct inuse *idx = scan(err, sizeof(err));
	CHECK(idx && !holds(idx, name));
	inuse_free(idx);
	munmap(p, OBJ_SIZE);
	obj_cleanup();
}

static void test_inuse_bad_procdir(void)
{
	char err[256] = "";
	struct inuse *idx = inuse_scan("/nonexistent-proc", shm_dev(), err, sizeof(err));
	CHECK(idx == NULL);
	CHECK(strstr(err, "/nonexistent-proc") != NULL);
}

/* ---- the kernel's lease check (shmobj_lease): each fact it relies on, on this kernel ---- */

/* A child that holds the object as mode says, then waits for the pipe to close. */
static pid_t lease_holder(const char *name, const char *mode, int *release)
{
	int ready[2], go[2];
	if (pipe(ready) < 0 || pipe(go) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		int fd = -1, sv[2];
		if (strcmp(mode, "rdonly") == 0 || strcmp(mode, "map-ro") == 0)
			fd = shm_open(name, O_RDONLY, 0);
		else if (strcmp(mode, "opath") == 0) {
			char path[128];
			snprintf(path, sizeof(path), "/dev/shm%s", name);
			fd = open(path, O_PATH);
		} else
			fd = shm_open(name, O_RDWR, 0);
		if (fd < 0)
			_exit(1);
		if (strcmp(mode, "map-ro") == 0) {
			if (mmap(NULL, OBJ_SIZE, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
				_exit(1);
			close(fd);
		} else if (strcmp(mode, "in-flight") == 0) {
			char cbuf[CMSG_SPACE(sizeof(int))];
			memset(cbuf, 0, sizeof(cbuf));
			struct iovec iov = { .iov_base = "x", .iov_len = 1 };
			struct msghdr mh = { .msg_iov = &iov,
					     .msg_iovlen = 1,
					     .msg_control = cbuf,
					     .msg_controllen = sizeof(cbuf) };
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(fd));
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
			    sendmsg(sv[0], &mh, 0) != 1)
				_exit(1);
			close(fd);
		}
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		char b;
		/* Until the parent's word or its end. (A bare (void)read() fails -Werror under
		 * _FORTIFY_SOURCE, as Debian builds it: read is warn_unused_result there.) */
		ssize_t n = read(go[0], &b, 1);
		(void)n;
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	char b;
	if (pid < 0 || read(ready[0], &b, 1) != 1) {
		close(ready[0]);
		close(go[1]);
		return -1;
	}
	close(ready[0]);
	*release = go[1];
	return pid;
}

static void lease_holder_end(pid_t pid, int release)
{
	close(release);
	waitpid(pid, NULL, 0);
}

/* 0 granted, 1 refused, -1 error: the lease taken and dropped at once. */
static int lease_probe(int shmfd, const char *name)
{
	struct stat st;
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	if (lstat(path, &st) < 0)
		return -1;
	int fd, rc = shmobj_lease(shmfd, name, st.st_dev, st.st_ino, &fd);
	if (fd >= 0)
		close(fd);
	return rc;
}

static void test_lease_sees_every_open_file_description(void)
{
	char name[64], err[256];
	obj_name(name, sizeof(name), 20);
	CHECK(obj_create(name, geteuid()) == 0);
	int shmfd = shmobj_dir_open(err, sizeof(err));
	CHECK(shmfd >= 0);
	CHECK_EQ_INT(lease_probe(shmfd, name), 0); /* nobody */
	/* Refused for a read-only fd, a read-only mapping whose fd was closed, a
	 * read-write fd, and an fd in flight over SCM_RIGHTS that nobody received. */
	static const char *const held[] = { "rdonly", "map-ro", "rdwr", "in-flight" };
	for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
		int release = -1;
		pid_t pid = lease_holder(name, held[i], &release);
		CHECK(pid > 0);
		if (pid <= 0)
			continue;
		if (lease_probe(shmfd, name) != 1)
			printf("  lease not refused with a holder '%s'\n", held[i]);
		CHECK_EQ_INT(lease_probe(shmfd, name), 1);
		lease_holder_end(pid, release);
		CHECK_EQ_INT(lease_probe(shmfd, name), 0);
	}
	/* An O_PATH fd is no open file description of the contents: not counted. */
	int release = -1;
	pid_t pid = lease_holder(name, "opath", &release);
	CHECK(pid > 0);
	if (pid > 0) {
		CHECK_EQ_INT(lease_probe(shmfd, name), 0);
		lease_holder_end(pid, release);
	}
	/* A name that leads elsewhere now is not the object we checked. */
	struct stat st;
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	CHECK(lstat(path, &st) == 0);
	shm_unlink(name);
	CHECK(obj_create(name, geteuid()) == 0);
	int fd;
	CHECK_EQ_INT(shmobj_lease(shmfd, name, st.st_dev, st.st_ino, &fd), 2);
	CHECK(fd < 0);
	close(shmfd);
	obj_cleanup();
}

/* As root acting as the owner (setfsuid), the lease is granted on the owner's object;
 * a non-owner without CAP_LEASE is refused by the kernel. */
static void test_lease_needs_the_owner(void)
{
	char name[64], err[256];
	obj_name(name, sizeof(name), 21);
	CHECK(obj_create(name, FOREIGN_UID) == 0);
	int shmfd = shmobj_dir_open(err, sizeof(err));
	uid_t saved = (uid_t)setfsuid(FOREIGN_UID);
	CHECK_EQ_INT(lease_probe(shmfd, name), 0);
	setfsuid(saved);
	close(shmfd);
	obj_cleanup();
}

/* In a child: takes the lease with flags (SIGIO ignored first when ignore), then opens the
 * object itself, which breaks the lease and signals the holder. The child's exit status:
 * 0 when it survived the break, 1 on a setup failure; killed by SIGIO otherwise. */
static int lease_break_status(const char *name, bool ignore, unsigned flags)
{
	pid_t pid = fork();
	if (pid == 0) {
		char err[256];
		if (ignore)
			signal(SIGIO, SIG_IGN);
		int shmfd = shmobj_dir_open(err, sizeof(err));
		struct shmobj_info info;
		int fd;
		if (shmfd < 0 || shmobj_info(shmfd, name, &info) < 0 ||
		    shmobj_lease_object(shmfd, name, &info, flags, &fd) != 0)
			_exit(1);
		int other = shm_open(name, O_RDONLY | O_NONBLOCK, 0);
		if (other >= 0 || errno != EWOULDBLOCK)
			_exit(1);
		usleep(100 * 1000); /* the signal is sent at the break; let it land */
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return st;
}

/* The one open of the lease path checks the object it reached: another inode or another
 * birth time under the name is refused. A lease break does not end a process that
 * ignores SIGIO (the commands do: then no F_SETSIG per object), nor one that asked for
 * SIGURG; it does end one that did neither, which is why the flag must tell the truth. */
static void test_lease_object_checks_identity_and_signals(void)
{
	char name[64], err[256];
	obj_name(name, sizeof(name), 22);
	CHECK(obj_create(name, geteuid()) == 0);
	int shmfd = shmobj_dir_open(err, sizeof(err));
	CHECK(shmfd >= 0);
	struct shmobj_info info;
	CHECK(shmobj_info(shmfd, name, &info) == 0);
	int fd;
	CHECK_EQ_INT(shmobj_lease_object(shmfd, name, &info, 0, &fd), 0);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	struct shmobj_info other = info;
	other.ino++;
	CHECK_EQ_INT(shmobj_lease_object(shmfd, name, &other, 0, &fd), 2);
	CHECK(fd < 0);
	if (info.has_btime) {
		other = info;
		other.btime_ns++;
		CHECK_EQ_INT(shmobj_lease_object(shmfd, name, &other, 0, &fd), 2);
		CHECK(fd < 0);
	}
	CHECK_EQ_INT(shmobj_lease_object(shmfd, "x", &info, 0, &fd), -1);
	CHECK_EQ_INT(errno, EINVAL);

	int st = lease_break_status(name, true, SHMOBJ_LEASE_SIGIO_IGNORED);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = lease_break_status(name, false, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = lease_break_status(name, false, SHMOBJ_LEASE_SIGIO_IGNORED);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGIO);
	close(shmfd);
	obj_cleanup();
}

/* ---- the view's age ---- */

static void test_inuse_view_is_renewed(void)
{
	char name[64], err[256];
	obj_name(name, sizeof(name), 22);
	CHECK(obj_create(name, geteuid()) == 0);
	struct inuse *idx = scan(err, sizeof(err));
	CHECK(idx != NULL);
	if (!idx)
		return;
	CHECK(!holds(idx, name)); /* consulted from now on */
	int fd = shm_open(name, O_RDONLY, 0);
	CHECK(fd >= 0);
	/* Young and not expired: kept as it is. */
	CHECK(inuse_refresh(idx, 60000, err, sizeof(err)) == 0);
	CHECK(!holds(idx, name));
	/* Older than the bound: renewed. */
	usleep(20000);
	CHECK(inuse_refresh(idx, 10, err, sizeof(err)) == 0);
	CHECK(holds(idx, name));
	close(fd);
	/* Expired (a new directory): renewed whatever its age. */
	inuse_expire(idx);
	CHECK(inuse_refresh(idx, 60000, err, sizeof(err)) == 0);
	CHECK(!holds(idx, name));
	inuse_free(idx);
	obj_cleanup();
}

/* ---- reclaim_journal ---- */

static void test_journal_decisions(void)
{
	struct fixture f;
	char unused[64], gone[64], mapped[64], foreign[64];
	obj_name(unused, sizeof(unused), 10);
	obj_name(gone, sizeof(gone), 11);
	obj_name(mapped, sizeof(mapped), 12);
	obj_name(foreign, sizeof(foreign), 13);
	CHECK(obj_create(unused, geteuid()) == 0);
	CHECK(obj_create(mapped, geteuid()) == 0);
	bool root = geteuid() == 0;
	if (root)
		CHECK(obj_create(foreign, FOREIGN_UID) == 0);
	int fd = shm_open(mapped, O_RDWR, 0);
	void *p = mmap(NULL, OBJ_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	close(fd);
	fixture_init(&f, check_tmpdir);

	struct journal *j = fixture_journal(&f, "j"), *a = fixture_journal(&f, "a");
	if (!j || !a)
		goto out;
	const char *names[] = { unused, gone, mapped, "/a/b", "/..", foreign };
	size_t n = root ? 6 : 5;
	for (size_t i = 0; i < n; i++)
		CHECK(journal_add(j, names[i], strlen(names[i]), 1, util_wall_s()) == 0);
	CHECK(journal_commit(j) == 0);

	/* Dry run: the same counts, no change. */
	struct reclaim_report r;
	memset(&r, 0, sizeof(r));
	f.opts.dry_run = true;
	CHECK(reclaim_journal(&f.opts, j, -1, geteuid(), &r) == 0);
	CHECK_EQ_INT(r.unlinked, 1);
	CHECK_EQ_INT(r.gone, 1);
	CHECK_EQ_INT(r.in_use, 1);
	CHECK_EQ_INT(r.refused, root ? 3 : 2);
	CHECK_EQ_INT(r.bytes, OBJ_SIZE);
	CHECK_EQ_INT(journal_count(j), n);
	CHECK(obj_exists(unused));
	f.opts.dry_run = false;

	memset(&r, 0, sizeof(r));
	CHECK(reclaim_journal(&f.opts, j, -1, geteuid(), &r) == 0);
	CHECK_EQ_INT(r.unlinked, 1);
	CHECK_EQ_INT(r.gone, 1);
	CHECK_EQ_INT(r.in_use, 1);
	CHECK_EQ_INT(r.adopted, 0);
	CHECK_EQ_INT(r.refused, root ? 3 : 2);
	CHECK_EQ_INT(r.bytes, OBJ_SIZE);
	CHECK(!obj_exists(unused));
	CHECK(obj_exists(mapped));
	if (root)
		CHECK(obj_exists(foreign));
	CHECK_EQ_INT(journal_count(j), 1); /* the mapped one */

	/* Again, adopting: the in-use name moves, nothing is lost. */
	memset(&r, 0, sizeof(r));
	f.opts.adopt_into = a;
	CHECK(reclaim_journal(&f.opts, j, -1, geteuid(), &r) == 0);
	CHECK_EQ_INT(r.in_use, 1);
	CHECK_EQ_INT(r.adopted, 1);
	CHECK_EQ_INT(journal_count(j), 0);
	CHECK_EQ_INT(journal_count(a), 1);
	CHECK(!journal_in_txn(a));
	CHECK(obj_exists(mapped));
	struct journal_row row;
	CHECK(journal_page(a, NULL, &row, 1) == 1 && strcmp(row.name, mapped) == 0);
out:
	munmap(p, OBJ_SIZE);
	journal_close(j);
	journal_close(a);
	fixture_fini(&f);
}

/* Two pages and more: every row is seen once, drops commit per page. */
static void test_journal_many_pages(void)
{
	struct fixture f;
	char name[64];
	fixture_init(&f, check_tmpdir);
	struct journal *j = fixture_journal(&f, "j");
	if (!j)
		goto out;
	enum { N = 1300 };
	for (int i = 0; i < N; i++) {
		obj_name(name, sizeof(name), 1000 + i);
		if (i % 2 == 0)
			CHECK(obj_create(name, geteuid()) == 0);
		CHECK(journal_add(j, name, strlen(name), 1, util_wall_s()) == 0);
	}
	CHECK(journal_commit(j) == 0);
	struct reclaim_report r;
	memset(&r, 0, sizeof(r));
	CHECK(reclaim_journal(&f.opts, j, -1, geteuid(), &r) == 0);
	CHECK_EQ_INT(r.unlinked, N / 2);
	CHECK_EQ_INT(r.gone, N / 2);
	CHECK_EQ_INT(journal_count(j), 0);
	obj_name(name, sizeof(name), 1000);
	CHECK(!obj_exists(name));
out:
	journal_close(j);
	fixture_fini(&f);
}

/* ---- reclaim_dir ---- */

/* A directory reclaim_dir must leave for a human (unsafe, corrupt): it fails with status
 * st and a detail holding why, unlinks nothing, and the object a and the journal in
 * path (the directory dname leads to) are where they were. */
static void check_left_for_a_human(struct fixture *f, const char *dname, const char *path,
				   const char *a, enum reclaim_status st, const char *why)
{
	struct reclaim_report r;
	CHECK(reclaim_dir(&f->opts, f->basefd, dname, &r) == -1);
	CHECK_EQ_INT(r.status, st);
	CHECK(r.detail[0] != '\0' && strstr(r.detail, why) != NULL);
	CHECK_EQ_INT(r.unlinked, 0);
	CHECK(obj_exists(a));
	CHECK(path_exists(path, JOURNAL_FILE));
}

static void test_dir_dead_removed_then_gone(void)
{
	struct fixture f;
	char a[64], b[64], c[64], dname[64], path[700];
	obj_name(a, sizeof(a), 20);
	obj_name(b, sizeof(b), 21);
	obj_name(c, sizeof(c), 22);
	CHECK(obj_create(a, geteuid()) == 0);
	CHECK(obj_create(b, geteuid()) == 0);
	fixture_init(&f, check_tmpdir);
	const char *names[] = { a, b, c };
	CHECK(dead_dir(check_tmpdir, f.boot_id, geteuid(), names, 3, dname, sizeof(dname)) == 0);
	dir_path(path, sizeof(path), check_tmpdir, dname);

	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK_EQ_INT(r.unlinked, 2);
	CHECK_EQ_INT(r.gone, 1);
	CHECK_EQ_INT(r.bytes, 2 * OBJ_SIZE);
	CHECK_EQ_INT(r.manager_pid, getpid());
	CHECK_EQ_INT(r.owner, geteuid());
	CHECK(strcmp(r.dir, dname) == 0);
	CHECK(!obj_exists(a) && !obj_exists(b));
	CHECK(access(path, F_OK) != 0);

	/* Twice: nothing left to do, a clean error, no crash. */
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == -1);
	CHECK_EQ_INT(r.status, RECLAIM_ERROR);
	CHECK(strstr(r.detail, "no such directory") != NULL);
	fixture_fini(&f);
}

static void test_dir_dry_run_changes_nothing(void)
{
	struct fixture f;
	char a[64], dname[64], path[700];
	fixture_dead_dir(&f, 25, a, dname, path);
	f.opts.dry_run = true;
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK_EQ_INT(r.unlinked, 1);
	CHECK(obj_exists(a));
	CHECK(path_exists(path, JOURNAL_FILE));
	CHECK(path_exists(path, MGRDIR_LOCK));
	f.opts.dry_run = false;
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK(!obj_exists(a));
	fixture_fini(&f);
}

static void test_dir_live_untouched(void)
{
	struct fixture f;
	char a[64], path[700], err[256];
	obj_name(a, sizeof(a), 30);
	CHECK(obj_create(a, geteuid()) == 0);
	fixture_init(&f, check_tmpdir);
	int dirfd = -1, lockfd = -1;
	struct journal *j = NULL;
	CHECK(mgrdir_create(check_tmpdir, path, sizeof(path), &dirfd, &lockfd, err, sizeof(err)) ==
	      0);
	struct journal_meta m;
	meta_init(&m, geteuid(), f.boot_id);
	CHECK(journal_create(path, &m, &j, err, sizeof(err)) == 0);
	CHECK(j && journal_add(j, a, strlen(a), 1, util_wall_s()) == 0 && journal_commit(j) == 0);

	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, strrchr(path, '/') + 1, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_LIVE);
	CHECK_EQ_INT(r.manager_pid, getpid()); /* from /proc/locks */
	CHECK(obj_exists(a));
	CHECK_EQ_INT(journal_count(j), 1);
	CHECK(path_exists(path, JOURNAL_FILE));
	journal_close(j);
	close(lockfd);
	close(dirfd);
	fixture_fini(&f);
}

static void test_dir_group_writable_unsafe(void)
{
	struct fixture f;
	char a[64], dname[64], path[700];
	fixture_dead_dir(&f, 40, a, dname, path);
	CHECK(chmod(path, 0770) == 0);
	check_left_for_a_human(&f, dname, path, a, RECLAIM_UNSAFE, "writable");
	fixture_fini(&f);
}

static void test_dir_symlink_not_followed(void)
{
	struct fixture f;
	char a[64], dname[64], real[700], sub[600], link[700];
	obj_name(a, sizeof(a), 50);
	CHECK(obj_create(a, geteuid()) == 0);
	fixture_init(&f, check_tmpdir);
	snprintf(sub, sizeof(sub), "%s/elsewhere", check_tmpdir);
	CHECK(mkdir(sub, 0700) == 0);
	const char *names[] = { a };
	CHECK(dead_dir(sub, f.boot_id, geteuid(), names, 1, dname, sizeof(dname)) == 0);
	dir_path(real, sizeof(real), sub, dname);
	snprintf(link, sizeof(link), "%s/shmwarden-linkxx", check_tmpdir);
	CHECK(symlink(real, link) == 0);
	check_left_for_a_human(&f, "shmwarden-linkxx", real, a, RECLAIM_UNSAFE, "symlink");
	fixture_fini(&f);
}

static void test_dir_symlinked_journal_unsafe(void)
{
	struct fixture f;
	char a[64], d1[64], d2[64], p1[700], p2[700], target[800], jl[800];
	obj_name(a, sizeof(a), 60);
	CHECK(obj_create(a, geteuid()) == 0);
	fixture_init(&f, check_tmpdir);
	const char *names[] = { a };
	/* d1's journal.db is a symlink to d2's real journal. */
	CHECK(dead_dir(check_tmpdir, f.boot_id, geteuid(), names, 1, d1, sizeof(d1)) == 0);
	CHECK(dead_dir(check_tmpdir, f.boot_id, geteuid(), names, 1, d2, sizeof(d2)) == 0);
	dir_path(p1, sizeof(p1), check_tmpdir, d1);
	dir_path(p2, sizeof(p2), check_tmpdir, d2);
	snprintf(jl, sizeof(jl), "%s/%s", p1, JOURNAL_FILE);
	snprintf(target, sizeof(target), "%s/%s", p2, JOURNAL_FILE);
	CHECK(unlink(jl) == 0);
	CHECK(symlink(target, jl) == 0);
	check_left_for_a_human(&f, d1, p1, a, RECLAIM_UNSAFE, JOURNAL_FILE);
	fixture_fini(&f);
}

static void write_file(const char *dir, const char *file, const void *data, size_t len)
{
	char path[800];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(write(fd, data, len) == (ssize_t)len);
		close(fd);
	}
}

static void test_dir_corrupt_left_in_place(void)
{
	struct fixture f;
	char a[64], dname[64], path[700];
	fixture_dead_dir(&f, 70, a, dname, path);
	unsigned char junk[8192];
	srand((unsigned)getpid());
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)rand();
	static const struct {
		size_t len;
		const char *what;
	} cases[] = { { 8192, "random bytes" } };
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		write_file(path, JOURNAL_FILE, junk, cases[c].len);
		check_left_for_a_human(&f, dname, path, a, RECLAIM_CORRUPT, "");
		/* The lock was released: a later pass (or a human) can take it. */
		char err[200];
		int dirfd = open(path, O_RDONLY | O_DIRECTORY), lockfd = -1;
		CHECK(mgrdir_trylock(dirfd, false, &lockfd, err, sizeof(err)) == 0);
		close(lockfd);
		close(dirfd);
	}
	fixture_fini(&f);
}

static void test_dir_earlier_boot_unlinks_nothing(void)
{
	struct fixture f;
	char a[64], dname[64], path[700];
	obj_name(a, sizeof(a), 80);
	CHECK(obj_create(a, geteuid()) == 0);
	fixture_init(&f, check_tmpdir);
	const char *names[] = { a };
	CHECK(dead_dir(check_tmpdir, "00000000-0000-4000-8000-000000000000", geteuid(), names, 1,
		       dname, sizeof(dname)) == 0);
	dir_path(path, sizeof(path), check_tmpdir, dname);
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK(r.earlier_boot);
	CHECK_EQ_INT(r.unlinked, 0);
	CHECK(obj_exists(a)); /* same name, this boot: someone else's */
	CHECK(access(path, F_OK) != 0);
	fixture_fini(&f);
}

static void test_dir_owner_mismatch_unsafe(void)
{
	struct fixture f;
	char a[64], dname[64], path[700];
	obj_name(a, sizeof(a), 90);
	CHECK(obj_create(a, geteuid()) == 0);
	fixture_init(&f, check_tmpdir);
	const char *names[] = { a };
	CHECK(dead_dir(check_tmpdir, f.boot_id, FOREIGN_UID, names, 1, dname, sizeof(dname)) == 0);
	dir_path(path, sizeof(path), check_tmpdir, dname);
	check_left_for_a_human(&f, dname, path, a, RECLAIM_UNSAFE, "journal claims uid");
	fixture_fini(&f);
}

static void test_dir_in_use_kept_then_removed(void)
{
	struct fixture f;
	char a[64], b[64], dname[64], path[700];
	obj_name(a, sizeof(a), 100);
	obj_name(b, sizeof(b), 101);
	CHECK(obj_create(a, geteuid()) == 0);
	CHECK(obj_create(b, geteuid()) == 0);
	int fd = shm_open(a, O_RDONLY, 0);
	void *p = mmap(NULL, OBJ_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	fixture_init(&f, check_tmpdir);
	const char *names[] = { a, b };
	CHECK(dead_dir(check_tmpdir, f.boot_id, geteuid(), names, 2, dname, sizeof(dname)) == 0);
	dir_path(path, sizeof(path), check_tmpdir, dname);
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_KEPT);
	CHECK_EQ_INT(r.in_use, 1);
	CHECK_EQ_INT(r.unlinked, 1);
	CHECK(obj_exists(a) && !obj_exists(b));
	CHECK(path_exists(path, JOURNAL_FILE));
	munmap(p, OBJ_SIZE);
	fixture_rescan(&f);
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK_EQ_INT(r.unlinked, 1);
	CHECK(!obj_exists(a));
	CHECK(access(path, F_OK) != 0);
	fixture_fini(&f);
}

/* A row forged past the schema (a foreign writer's TEXT name, written while the table's
 * text said it was not STRICT) makes the journal corrupt: reported, and the directory and
 * every object it names are left for a human. */
static void test_dir_forged_rows_left_for_a_human(void)
{
	struct fixture f;
	char a[64], dname[64], path[700], db[800];
	fixture_dead_dir(&f, 105, a, dname, path);
	snprintf(db, sizeof(db), "%s/%s", path, JOURNAL_FILE);
	sqlite3 *h = NULL;
	CHECK(sqlite3_open(db, &h) == SQLITE_OK);
	CHECK(sqlite3_exec(h,
			   "CREATE TEMP TABLE saved AS SELECT sql FROM sqlite_schema"
			   " WHERE name = 'objects';"
			   "PRAGMA writable_schema=ON;"
			   "UPDATE sqlite_schema SET sql = replace(sql, ') STRICT,', '),')"
			   " WHERE name = 'objects';"
			   "PRAGMA writable_schema=RESET;"
			   "INSERT INTO objects VALUES ('/as_text', 1, 0);"
			   "PRAGMA writable_schema=ON;"
			   "UPDATE sqlite_schema SET sql = (SELECT sql FROM temp.saved)"
			   " WHERE name = 'objects';",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(h);
	check_left_for_a_human(&f, dname, path, a, RECLAIM_CORRUPT, "quick_check");
	fixture_fini(&f); /* removes the test's objects */
}

/* The files a SIGKILL leaves in the manager directory PATH: a child creates the journal,
 * journals NAME, commits and _exit()s with its connection open, so -wal and -shm stay
 * and the row is in the -wal only. 0 when the child did all that, -1 otherwise. */
static int journal_left_by_kill(const char *path, const char *boot_id, const char *name)
{
	fflush(stdout); /* the child must not print the parent's buffer again */
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct journal *j = NULL;
		struct journal_meta m;
		char err[256];
		meta_init(&m, geteuid(), boot_id);
		if (journal_create(path, &m, &j, err, sizeof(err)) < 0 ||
		    journal_add(j, name, strlen(name), 1, util_wall_s()) < 0 ||
		    journal_commit(j) < 0)
			_exit(1);
		_exit(0); /* no close: like after SIGKILL */
	}
	int status = -1;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The files a SIGKILL leaves: a child journals and _exit()s with its connection open. */
static void test_dir_wal_left_by_kill(void)
{
	struct fixture f;
	char a[64], path[700], err[256];
	obj_name(a, sizeof(a), 110);
	CHECK(obj_create(a, geteuid()) == 0);
	fixture_init(&f, check_tmpdir);
	int dirfd = -1, lockfd = -1;
	CHECK(mgrdir_create(check_tmpdir, path, sizeof(path), &dirfd, &lockfd, err, sizeof(err)) ==
	      0);
	CHECK(journal_left_by_kill(path, f.boot_id, a) == 0);
	close(lockfd); /* the manager is dead: both its locks go */
	close(dirfd);
	CHECK(path_exists(path, JOURNAL_FILE "-wal"));
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, strrchr(path, '/') + 1, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK_EQ_INT(r.unlinked, 1);
	CHECK(!obj_exists(a));
	CHECK(access(path, F_OK) != 0);
	fixture_fini(&f);
}

/* No lock file: young means a manager may be starting; old means abandoned. */
static void test_dir_without_lock(void)
{
	struct fixture f;
	char path[700];
	fixture_init(&f, check_tmpdir);
	snprintf(path, sizeof(path), "%s/shmwarden-nolock", check_tmpdir);
	CHECK(mkdir(path, 0700) == 0);
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, "shmwarden-nolock", &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_STARTING);
	CHECK(access(path, F_OK) == 0);
	CHECK(!path_exists(path, MGRDIR_LOCK));
	f.opts.now_s += MGRDIR_STARTUP_GRACE_S + 5;
	f.opts.dry_run = true;
	CHECK(reclaim_dir(&f.opts, f.basefd, "shmwarden-nolock", &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK(!path_exists(path, MGRDIR_LOCK)); /* a dry run creates nothing */
	f.opts.dry_run = false;
	CHECK(reclaim_dir(&f.opts, f.basefd, "shmwarden-nolock", &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK(access(path, F_OK) != 0);
	fixture_fini(&f);
}

/* Liveness is "either lock held": the directory flock (which systemd-tmpfiles honours)
 * keeps a manager live whatever a cleaner removed, and the lock file alone keeps a
 * manager of an older release (no directory lock) live. */
static void test_dir_live_by_either_lock(void)
{
	struct fixture f;
	char path[700], err[256];
	fixture_init(&f, check_tmpdir);
	int dirfd = -1, lockfd = -1;
	CHECK(mgrdir_create(check_tmpdir, path, sizeof(path), &dirfd, &lockfd, err, sizeof(err)) ==
	      0);
	const char *name = strrchr(path, '/') + 1;
	CHECK(unlinkat(dirfd, MGRDIR_LOCK, 0) == 0); /* a cleaner took the lock file */
	f.opts.now_s += 3600;                        /* and the directory is old */
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, name, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_LIVE);
	CHECK_EQ_INT(r.manager_pid, getpid());
	CHECK(access(path, F_OK) == 0);
	close(lockfd);
	close(dirfd);

	/* An older manager: only its lock file is locked. */
	int olddir = open(path, O_RDONLY | O_DIRECTORY);
	CHECK(mgrdir_trylock(olddir, true, &lockfd, err, sizeof(err)) == 0);
	close(olddir);
	struct mgrdir_probe p;
	CHECK(mgrdir_probe(f.basefd, name, f.opts.now_s, 0, &p) == 0);
	CHECK_EQ_INT(p.state, MGRDIR_LIVE);
	CHECK_EQ_INT(p.holder, getpid());
	mgrdir_release(&p);
	close(lockfd);
	CHECK(mgrdir_probe(f.basefd, name, f.opts.now_s, 0, &p) == 0);
	CHECK_EQ_INT(p.state, MGRDIR_DEAD);
	mgrdir_release(&p);
	fixture_fini(&f);
}

/* Two reclaimers at once: the one acting on a dead directory holds its locks and marks
 * it, and the other (an act or a look) calls it busy, naming the first, and touches
 * nothing; an unmarked exclusive flock stays live; once the first lets go, the
 * directory is dead again and reclaimed. */
static void test_dir_busy_while_another_reclaimer_holds_it(void)
{
	struct fixture f;
	char a[64], dname[64], path[700];
	fixture_dead_dir(&f, 95, a, dname, path);

	struct mgrdir_probe first, look;
	CHECK(mgrdir_probe(f.basefd, dname, f.opts.now_s, MGRDIR_PROBE_ACT, &first) == 0);
	CHECK_EQ_INT(first.state, MGRDIR_DEAD);
	CHECK(first.locked && first.marked);
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_BUSY);
	CHECK_EQ_INT(r.reclaimer_pid, getpid());
	CHECK_EQ_INT(r.manager_pid, 0);
	CHECK(strstr(r.detail, "being reclaimed by another reclaimer, pid ") != NULL);
	CHECK(obj_exists(a) && path_exists(path, JOURNAL_FILE));
	CHECK(mgrdir_probe(f.basefd, dname, f.opts.now_s, MGRDIR_PROBE_JOURNAL, &look) == 0);
	CHECK_EQ_INT(look.state, MGRDIR_BUSY);
	CHECK_EQ_INT(look.holder, getpid());
	CHECK(look.journal == NULL);
	mgrdir_release(&look);
	mgrdir_release(&first);

	/* An exclusive flock without the mark: live, as ever. */
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_LIVE);
	CHECK_EQ_INT(r.reclaimer_pid, 0);
	/* No socket: its holder is not said to be a manager. */
	CHECK(strstr(r.detail, "does not serve its socket") != NULL);
	close(fd);

	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK_EQ_INT(r.unlinked, 1);
	CHECK(!obj_exists(a) && access(path, F_OK) != 0);
	fixture_fini(&f);
}

/* A manager killed while creating its journal leaves a zero-byte or header-only
 * journal.db: nothing was ever journaled in it, so the directory goes. */
static void test_dir_empty_journal_removed(void)
{
	struct fixture f;
	char dname[64], path[700];
	fixture_init(&f, check_tmpdir);
	for (int c = 0; c < 2; c++) {
		CHECK(dead_dir(check_tmpdir, f.boot_id, geteuid(), NULL, 0, dname, sizeof(dname)) ==
		      0);
		dir_path(path, sizeof(path), check_tmpdir, dname);
		char db[800];
		snprintf(db, sizeof(db), "%s/%s", path, JOURNAL_FILE);
		CHECK(unlink(db) == 0);
		if (c == 0) {
			write_file(path, JOURNAL_FILE, "", 0);
		} else {
			sqlite3 *h = NULL;
			CHECK(sqlite3_open(db, &h) == SQLITE_OK);
			CHECK(sqlite3_exec(h, "PRAGMA page_size=1024; PRAGMA journal_mode=WAL;",
					   NULL, NULL, NULL) == SQLITE_OK);
			sqlite3_close(h);
		}
		struct reclaim_report r;
		f.opts.dry_run = true;
		CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
		CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
		CHECK(path_exists(path, JOURNAL_FILE));
		f.opts.dry_run = false;
		CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
		CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
		CHECK(access(path, F_OK) != 0);
	}
	fixture_fini(&f);
}

/* A dry run reads a dead directory's journal from a private copy: every file stays
 * byte-identical with its mtime, -wal and -shm included, and nothing is created. */
static void test_dir_dry_run_reads_a_copy(void)
{
	struct fixture f;
	char a[64], path[700], err[256];
	obj_name(a, sizeof(a), 130);
	fixture_init(&f, check_tmpdir);
	int dirfd = -1, lockfd = -1;
	CHECK(mgrdir_create(check_tmpdir, path, sizeof(path), &dirfd, &lockfd, err, sizeof(err)) ==
	      0);
	CHECK(journal_left_by_kill(path, f.boot_id, a) == 0);
	/* Created after its registration, as a client does: the row's object. */
	CHECK(obj_create(a, geteuid()) == 0);
	close(lockfd);
	close(dirfd);
	static const char *const files[] = { MGRDIR_LOCK, JOURNAL_FILE, JOURNAL_FILE "-wal",
					     JOURNAL_FILE "-shm" };
	struct stat before[4], after;
	char *data[4];
	size_t len[4];
	for (int i = 0; i < 4; i++) {
		char fp[800];
		snprintf(fp, sizeof(fp), "%s/%s", path, files[i]);
		CHECK(stat(fp, &before[i]) == 0);
		data[i] = malloc((size_t)before[i].st_size + 1);
		FILE *fh = fopen(fp, "rb");
		len[i] = fh ? fread(data[i], 1, (size_t)before[i].st_size, fh) : 0;
		if (fh)
			fclose(fh);
	}
	f.opts.dry_run = true;
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, strrchr(path, '/') + 1, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK_EQ_INT(r.unlinked, 1); /* the row was in the -wal only: it was read */
	CHECK(obj_exists(a));
	for (int i = 0; i < 4; i++) {
		char fp[800], *now = malloc((size_t)before[i].st_size + 1);
		snprintf(fp, sizeof(fp), "%s/%s", path, files[i]);
		CHECK(stat(fp, &after) == 0);
		CHECK(after.st_size == before[i].st_size);
		CHECK(after.st_mtim.tv_sec == before[i].st_mtim.tv_sec &&
		      after.st_mtim.tv_nsec == before[i].st_mtim.tv_nsec);
		FILE *fh = fopen(fp, "rb");
		size_t n = fh ? fread(now, 1, (size_t)after.st_size, fh) : 0;
		if (fh)
			fclose(fh);
		CHECK(n == len[i] && memcmp(now, data[i], n) == 0);
		free(now);
		free(data[i]);
	}
	int n = 0;
	DIR *d = opendir(path);
	for (struct dirent *de; d && (de = readdir(d));)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	CHECK_EQ_INT(n, 4);
	f.opts.dry_run = false;
	CHECK(reclaim_dir(&f.opts, f.basefd, strrchr(path, '/') + 1, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK(!obj_exists(a));
	fixture_fini(&f);
}

/* A manager's own shutdown keeps a row younger than the grace whose object is not
 * created yet: its client got the OK and creates it next. */
static void test_journal_young_rows_kept(void)
{
	struct fixture f;
	char a[64], b[64];
	obj_name(a, sizeof(a), 140);
	obj_name(b, sizeof(b), 141);
	fixture_init(&f, check_tmpdir);
	struct journal *j = fixture_journal(&f, "young");
	if (!j) {
		fixture_fini(&f);
		return;
	}
	CHECK(journal_add(j, a, strlen(a), 1, f.opts.now_s - 1) == 0);
	CHECK(journal_add(j, b, strlen(b), 1, f.opts.now_s - 60) == 0);
	/* Now is x.1 s; c was registered at (x-10).6 s, 9.5 s ago, and d 10.2 s ago: the
	 * grace is exact to the microsecond (whole seconds took c for 10 s old). */
	char c[64], d[64];
	obj_name(c, sizeof(c), 142);
	obj_name(d, sizeof(d), 143);
	f.opts.now_us = (int64_t)f.opts.now_s * 1000000 + 100000;
	struct journal_row rc = { .len = strlen(c), .registered_us = f.opts.now_us - 9500000 };
	struct journal_row rd = { .len = strlen(d), .registered_us = f.opts.now_us - 10200000 };
	memcpy(rc.name, c, rc.len + 1);
	memcpy(rd.name, d, rd.len + 1);
	CHECK(journal_adopt(j, &rc) == 0 && journal_adopt(j, &rd) == 0);
	/* A journal's time may be anything: registered at the start of int64 time is as
	 * old as can be, not young by an overflow (nor undefined behaviour). */
	char e[64];
	obj_name(e, sizeof(e), 144);
	struct journal_row re = { .len = strlen(e), .registered_us = INT64_MIN };
	memcpy(re.name, e, re.len + 1);
	CHECK(journal_adopt(j, &re) == 0);
	CHECK(journal_commit(j) == 0);
	f.opts.young_s = 10;
	struct reclaim_report r;
	memset(&r, 0, sizeof(r));
	CHECK(reclaim_journal(&f.opts, j, -1, geteuid(), &r) == 0);
	CHECK_EQ_INT(r.young, 2);
	CHECK_EQ_INT(r.gone, 3);
	CHECK_EQ_INT(journal_count(j), 2);
	struct journal_row rows[4];
	CHECK_EQ_INT(journal_page(j, NULL, rows, 4), 2);
	CHECK(strcmp(rows[0].name, a) == 0 || strcmp(rows[1].name, a) == 0);
	CHECK(strcmp(rows[0].name, c) == 0 || strcmp(rows[1].name, c) == 0);
	journal_close(j);
	fixture_fini(&f);
}

/* The birth rule, to the nanosecond: born at most window_s after the registration (its
 * microsecond), or before it; whole seconds let it reach almost a second further. Times
 * read from a journal may be anything: no overflow at the ends of the range. */
static void test_born_by_to_the_nanosecond(void)
{
	const int64_t reg_us = 1700000000050000LL; /* x.05 s */
	const int64_t end_ns = reg_us * 1000 + 10LL * 1000000000;
	CHECK(shmobj_born_by(end_ns, reg_us, 10));
	CHECK(!shmobj_born_by(end_ns + 1, reg_us, 10));
	/* x + 10.35 s: in the whole second of x + 10, which whole seconds let through. */
	CHECK(!shmobj_born_by((1700000000LL + 10) * 1000000000 + 350000000, reg_us, 10));
	CHECK(shmobj_born_by(reg_us * 1000 - 3600LL * 1000000000, reg_us, 10)); /* before */
	CHECK(shmobj_born_by(reg_us * 1000, reg_us, 0));
	CHECK(!shmobj_born_by(reg_us * 1000 + 1, reg_us, 0));
	CHECK(!shmobj_born_by(reg_us * 1000 + 1, reg_us, -5)); /* a negative window is none */
	CHECK(shmobj_born_by(-1, 0, 0));                       /* before the epoch, rounded down */
	CHECK(!shmobj_born_by(1, 0, 0));
	CHECK(!shmobj_born_by(-999, -1, 0));
	CHECK(shmobj_born_by(-1000, -1, 0));
	CHECK(shmobj_born_by(INT64_MAX, INT64_MAX, 10));
	CHECK(shmobj_born_by(INT64_MAX, INT64_MAX - 5, 10));
	CHECK(shmobj_born_by(INT64_MAX, 0, INT64_MAX));
	CHECK(!shmobj_born_by(INT64_MAX, INT64_MIN, 10));
	CHECK(shmobj_born_by(INT64_MIN, 0, 0));
	CHECK(!shmobj_born_by(INT64_MIN, INT64_MIN, 0)); /* INT64_MIN us is before it */
}

/* A window in seconds becomes nanoseconds, the unit of a birth time: none for 0 or a
 * negative window, exact up to INT64_MAX / 10^9 s, clamped to INT64_MAX past it (never
 * wrapped). */
static void test_window_ns_edges(void)
{
	const int64_t max_s = INT64_MAX / 1000000000; /* 9223372036 s, about 292 years */
	CHECK(shmobj_window_ns(0) == 0);
	CHECK(shmobj_window_ns(1) == 1000000000);
	CHECK(shmobj_window_ns(SHMOBJ_BIRTH_WINDOW_S) == SHMOBJ_BIRTH_WINDOW_S * 1000000000LL);
	CHECK(shmobj_window_ns(-1) == 0);
	CHECK(shmobj_window_ns(INT64_MIN) == 0);
	CHECK(shmobj_window_ns(max_s) == max_s * 1000000000);
	CHECK(shmobj_window_ns(max_s + 1) == INT64_MAX);
	CHECK(shmobj_window_ns(INT64_MAX / 1000000) == INT64_MAX);
	CHECK(shmobj_window_ns(INT64_MAX) == INT64_MAX);
	/* born_by reads the window the same way: a clamped window still ends 292 years
	 * after the registration, not at the end of the clock's range. */
	CHECK(shmobj_born_by(INT64_MAX, 0, max_s + 1));
	const int64_t reg_us = INT64_MIN / 1000; /* its clamped window ends at 807 ns */
	CHECK(shmobj_born_by(807, reg_us, max_s + 1));
	CHECK(!shmobj_born_by(808, reg_us, max_s + 1));
	CHECK(!shmobj_born_by(INT64_MIN, INT64_MIN, INT64_MAX)); /* no wrap below the range */
}

/* A row never identified (its manager died before it learned the object) means an
 * object born at most SHMOBJ_BIRTH_WINDOW_S after its registration: one born a
 * microsecond later is another program's, refused as a reused name and left, even in
 * the same whole second as the window's end (whole seconds unlinked it). */
static void test_journal_birth_window_exact(void)
{
	struct fixture f;
	char in[64], out[64];
	obj_name(in, sizeof(in), 150);
	obj_name(out, sizeof(out), 151);
	CHECK(obj_create(in, geteuid()) == 0);
	CHECK(obj_create(out, geteuid()) == 0);
	fixture_init(&f, check_tmpdir);
	struct shmobj_info bi, bo;
	CHECK(shmobj_info(f.shmfd, in, &bi) == 0 && shmobj_info(f.shmfd, out, &bo) == 0);
	if (!bi.has_btime || !bo.has_btime) {
		printf("# no birth times on %s: nothing to compare\n", SHMOBJ_DIR);
		fixture_fini(&f);
		return;
	}
	struct journal *j = fixture_journal(&f, "window");
	if (!j) {
		fixture_fini(&f);
		return;
	}
	const int64_t w_us = SHMOBJ_BIRTH_WINDOW_S * 1000000LL;
	/* in: born at the end of its window (within its last microsecond); out: born a
	 * microsecond and more past it. */
	struct journal_row ri = { .len = strlen(in),
				  .registered_us = (bi.btime_ns + 999) / 1000 - w_us };
	struct journal_row ro = { .len = strlen(out),
				  .registered_us = bo.btime_ns / 1000 - w_us - 1 };
	memcpy(ri.name, in, ri.len + 1);
	memcpy(ro.name, out, ro.len + 1);
	CHECK(journal_adopt(j, &ri) == 0 && journal_adopt(j, &ro) == 0);
	CHECK(journal_commit(j) == 0);
	struct reclaim_report r;
	memset(&r, 0, sizeof(r));
	CHECK(reclaim_journal(&f.opts, j, -1, geteuid(), &r) == 0);
	CHECK_EQ_INT(r.unlinked, 1);
	CHECK_EQ_INT(r.refused, 1);
	CHECK_EQ_INT(r.reused, 1);
	CHECK(!obj_exists(in));
	CHECK(obj_exists(out));
	CHECK_EQ_INT(journal_count(j), 0);
	journal_close(j);
	fixture_fini(&f);
}

static void test_dir_not_a_manager_name(void)
{
	struct fixture f;
	fixture_init(&f, check_tmpdir);
	char path[700];
	snprintf(path, sizeof(path), "%s/home", check_tmpdir);
	CHECK(mkdir(path, 0700) == 0);
	write_file(path, MGRDIR_LOCK, "x", 1);
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, "home", &r) == -1);
	CHECK_EQ_INT(r.status, RECLAIM_ERROR);
	CHECK(path_exists(path, MGRDIR_LOCK));
	fixture_fini(&f);
}

struct base_seen {
	int n;
	int by_status[RECLAIM_ERROR + 1];
};

static void base_cb(void *arg, const struct reclaim_report *r)
{
	struct base_seen *s = arg;
	s->n++;
	s->by_status[r->status]++;
}

static void test_base_goes_on_past_failures(void)
{
	struct fixture f;
	char a[64], b[64], d1[64], d2[64], d3[64], skip[64], p2[700], path[700], err[256];
	obj_name(a, sizeof(a), 120);
	obj_name(b, sizeof(b), 121);
	CHECK(obj_create(a, geteuid()) == 0);
	CHECK(obj_create(b, geteuid()) == 0);
	fixture_init(&f, check_tmpdir);
	const char *na[] = { a }, *nb[] = { b };
	CHECK(dead_dir(check_tmpdir, f.boot_id, geteuid(), na, 1, d1, sizeof(d1)) == 0);
	CHECK(dead_dir(check_tmpdir, f.boot_id, geteuid(), nb, 1, d2, sizeof(d2)) == 0);
	CHECK(dead_dir(check_tmpdir, f.boot_id, geteuid(), nb, 1, skip, sizeof(skip)) == 0);
	dir_path(p2, sizeof(p2), check_tmpdir, d2);
	write_file(p2, JOURNAL_FILE, "garbage, not sqlite", 19);
	int dirfd = -1, lockfd = -1;
	CHECK(mgrdir_create(check_tmpdir, path, sizeof(path), &dirfd, &lockfd, err, sizeof(err)) ==
	      0);
	util_strlcpy(d3, strrchr(path, '/') + 1, sizeof(d3));
	f.opts.skip_name = skip;

	struct base_seen seen = { 0 };
	/* The corrupt journal is a finding, not a failure of the reclaimer. */
	CHECK_EQ_INT(reclaim_base(&f.opts, f.basefd, (uid_t)-1, base_cb, &seen), 0);
	CHECK_EQ_INT(seen.n, 3);
	CHECK_EQ_INT(seen.by_status[RECLAIM_REMOVED], 1);
	CHECK_EQ_INT(seen.by_status[RECLAIM_CORRUPT], 1);
	CHECK_EQ_INT(seen.by_status[RECLAIM_LIVE], 1);
	CHECK(!obj_exists(a));
	CHECK(obj_exists(b));
	CHECK(access(p2, F_OK) == 0);
	CHECK(path_exists(check_tmpdir, skip));

	/* Other owners are skipped silently. */
	memset(&seen, 0, sizeof(seen));
	CHECK_EQ_INT(reclaim_base(&f.opts, f.basefd, FOREIGN_UID, base_cb, &seen), 0);
	CHECK_EQ_INT(seen.n, 0);
	close(lockfd);
	close(dirfd);
	fixture_fini(&f);
}

/* As root on a user's directory: the user's object goes, another user's object named
 * in the same journal stays (our check and the kernel's), and our identity comes back. */
static void test_dir_as_root_acts_as_owner(void)
{
	struct fixture f;
	char mine[64], theirs[64], dname[64], path[700], file[800];
	/* The owner must reach the directory: a private base under /tmp, not the suite's
	 * 0700 one. */
	char base[] = "/tmp/shmwt-unit-XXXXXX";
	CHECK(mkdtemp(base) != NULL);
	CHECK(chmod(base, 01777) == 0);
	obj_name(mine, sizeof(mine), 130);
	obj_name(theirs, sizeof(theirs), 131);
	CHECK(obj_create(mine, FOREIGN_UID) == 0);
	CHECK(obj_create(theirs, 0) == 0);
	fixture_init(&f, base);
	const char *names[] = { mine, theirs };
	CHECK(dead_dir(base, f.boot_id, FOREIGN_UID, names, 2, dname, sizeof(dname)) == 0);
	dir_path(path, sizeof(path), base, dname);
	CHECK(chown(path, FOREIGN_UID, FOREIGN_UID) == 0);
	static const char *const files[] = { MGRDIR_LOCK, JOURNAL_FILE, JOURNAL_FILE "-wal",
					     JOURNAL_FILE "-shm" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(file, sizeof(file), "%s/%s", path, files[i]);
		if (lchown(file, FOREIGN_UID, FOREIGN_UID) < 0 && errno != ENOENT)
			CHECK(!"lchown");
	}
	struct reclaim_report r;
	CHECK(reclaim_dir(&f.opts, f.basefd, dname, &r) == 0);
	CHECK_EQ_INT(r.status, RECLAIM_REMOVED);
	CHECK_EQ_INT(r.owner, FOREIGN_UID);
	CHECK_EQ_INT(r.unlinked, 1);
	CHECK_EQ_INT(r.refused, 1);
	CHECK(!obj_exists(mine));
	CHECK(obj_exists(theirs));
	CHECK(access(path, F_OK) != 0);
	CHECK_EQ_INT(setfsuid((uid_t)-1), 0);
	CHECK_EQ_INT(setfsgid((gid_t)-1), 0);
	fixture_fini(&f);
	check_rmtree(base);
}

int main(void)
{
	atexit(obj_cleanup);
	RUN(test_inuse_mapped_and_open);
	RUN(test_inuse_deleted_mapping);
	RUN(test_inuse_bad_procdir);
	RUN(test_inuse_view_is_renewed);
	RUN(test_lease_sees_every_open_file_description);
	RUN(test_lease_object_checks_identity_and_signals);
	if (geteuid() == 0)
		RUN(test_lease_needs_the_owner);
	RUN(test_journal_decisions);
	RUN(test_journal_many_pages);
	RUN(test_dir_dead_removed_then_gone);
	RUN(test_dir_dry_run_changes_nothing);
	RUN(test_dir_live_untouched);
	RUN(test_dir_group_writable_unsafe);
	RUN(test_dir_symlink_not_followed);
	RUN(test_dir_symlinked_journal_unsafe);
	RUN(test_dir_corrupt_left_in_place);
	RUN(test_dir_earlier_boot_unlinks_nothing);
	RUN(test_dir_owner_mismatch_unsafe);
	RUN(test_dir_in_use_kept_then_removed);
	RUN(test_dir_forged_rows_left_for_a_human);
	RUN(test_dir_wal_left_by_kill);
	RUN(test_dir_without_lock);
	RUN(test_dir_not_a_manager_name);
	RUN(test_dir_live_by_either_lock);
	RUN(test_dir_busy_while_another_reclaimer_holds_it);
	RUN(test_dir_empty_journal_removed);
	RUN(test_dir_dry_run_reads_a_copy);
	RUN(test_journal_young_rows_kept);
	RUN(test_born_by_to_the_nanosecond);
	RUN(test_window_ns_edges);
	RUN(test_journal_birth_window_exact);
	RUN(test_base_goes_on_past_failures);
	if (geteuid() == 0)
		RUN(test_dir_as_root_acts_as_owner);
	else
		printf("SKIP test_dir_as_root_acts_as_owner: needs root\n");
	return check_done();
}
