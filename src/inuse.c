/* inuse.c — the in-use index behind inuse.h: one pass over /proc, then O(1) lookups.
 *
 * Holders are matched by (st_dev, st_ino), never by the path text a task shows: a bind
 * mount of /dev/shm at another path, a chroot or another mount namespace all show other
 * paths for the same inode, and a name proves nothing about which object it names now.
 * Every task is looked at, but a fd table or an address space shared by several tasks
 * (the usual threads) is read once: kcmp(2) tells whether two tasks share one.
 *
 * Errors are biased towards "in use": a task we could not read is recorded as blind
 * rather than skipped, because the cost of a false "in use" is one object kept for a
 * later pass, and the cost of a false "unused" is a broken receiver. Only ENOENT and
 * ESRCH say a task is gone; out of descriptors or memory the scan fails (the caller
 * keeps everything it would have cleared), as it once did not: a scan at RLIMIT_NOFILE
 * skipped every task it could not open and looked complete.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "inuse.h"
#include "util.h"

#define INUSE_INITIAL_CAP 1024        /* slots; a power of two */
#define INUSE_READ_CHUNK (256 * 1024) /* maps are read whole, in chunks this big */
#define INUSE_UID_UNKNOWN ((uid_t)-1)

struct inuse_slot {
	uint64_t dev, ino;
	bool used;
};

/* A process we could not inspect, with its real, effective, saved and filesystem uids
 * from /proc/PID/status (all INUSE_UID_UNKNOWN when that is unreadable too), and
 * whether it may open any object whatever its owner and mode (any_owner: one of its uids
 * is root's, or it has permitted capabilities, which it may make effective at will). */
struct inuse_blind {
	pid_t pid;
	uid_t uid[4];
	bool any_owner;
};

struct inuse {
	struct inuse_slot *slots;
	size_t cap; /* power of two, kept at most half full */
	size_t count;
	struct inuse_blind *blind;
	size_t nblind, blindcap;
	char procdir[4096];
	dev_t shm_dev;
	int64_t scanned_ms; /* when the scan that built it began */
	bool scanned;       /* filled at least once */
	bool consulted;     /* looked up since that scan */
	bool hidden;        /* /proc hides processes from us (hidepid): some are not even listed */
	bool expired;
	bool no_lease; /* the kernel refused a lease for want of leases: said once */
};

/* Tasks whose fd table (or address space) was already read, for one process. */
struct inuse_reps {
	pid_t *tid;
	size_t n, cap;
};

/* One scan's scratch space: the maps buffer is reused for every task. */
struct inuse_scan_ctx {
	struct inuse *idx;
	char *buf;
	size_t bufcap;
	int procfd;
	bool kcmp;       /* procdir is our own pid namespace's /proc, and kcmp works */
	char needle[32]; /* " MAJ:MIN " of shm_dev, as maps prints it */
	struct inuse_reps files, vm;
};

static uint64_t inuse_hash(uint64_t dev, uint64_t ino)
{
	uint64_t x = ino ^ (dev * 0x9e3779b97f4a7c15ull); /* splitmix64's finaliser */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static struct inuse_slot *inuse_find(const struct inuse *idx, uint64_t dev, uint64_t ino)
{
	size_t mask = idx->cap - 1;
	for (size_t i = inuse_hash(dev, ino) & mask;; i = (i + 1) & mask) {
		struct inuse_slot *s = &idx->slots[i];
		if (!s->used || (s->dev == dev && s->ino == ino))
			return s;
	}
}

static int inuse_grow(struct inuse *idx)
{
	size_t ncap = idx->cap * 2;
	struct inuse_slot *nslots = calloc(ncap, sizeof(*nslots));
	if (!nslots)
		return -1;
	struct inuse old = *idx;
	idx->slots = nslots;
	idx->cap = ncap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].used)
			*inuse_find(idx, old.slots[i].dev, old.slots[i].ino) = old.slots[i];
	free(old.slots);
	return 0;
}

static int inuse_add(struct inuse *idx, uint64_t dev, uint64_t ino)
{
	if ((idx->count + 1) * 2 > idx->cap && inuse_grow(idx) < 0)
		return -1;
	struct inuse_slot *s = inuse_find(idx, dev, ino);
	if (s->used)
		return 0;
	*s = (struct inuse_slot){ .dev = dev, .ino = ino, .used = true };
	idx->count++;
	return 0;
}

static bool inuse_is_num(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Reads a whole /proc file into ctx->buf (NUL-terminated); returns its length or -1. */
static ssize_t inuse_read_all(struct inuse_scan_ctx *ctx, int fd)
{
	size_t len = 0;
	for (;;) {
		if (ctx->bufcap - len < INUSE_READ_CHUNK + 1) {
			size_t ncap = ctx->bufcap ? ctx->bufcap * 2 : 4 * INUSE_READ_CHUNK;
			char *nbuf = realloc(ctx->buf, ncap);
			if (!nbuf)
				return -1;
			ctx->buf = nbuf;
			ctx->bufcap = ncap;
		}
		ssize_t n = read(fd, ctx->buf + len, ctx->bufcap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	ctx->buf[len] = '\0';
	return (ssize_t)len;
}

/* Where the field-th (0-based) space-separated field of a maps line starts. */
static const char *inuse_maps_field(const char *line, const char *end, int field)
{
	const char *p = line;
	for (int f = 0; f < field; f++) {
		while (p < end && *p != ' ')
			p++;
		while (p < end && *p == ' ')
			p++;
	}
	return p;
}

/* A denial (the task is not ours to read) as opposed to a task that went away. */
static bool inuse_denied(int err)
{
	return err == EACCES || err == EPERM;
}

/* The task (or the descriptor) went away: the only errors that mean "nothing there".
 * Anything else (EMFILE, ENFILE, ENOMEM) is no answer, and the scan fails (the caller
 * keeps, RECLAIM_UNCHECKED): a scan out of descriptors that skipped every process it
 * could not open was taken for one that saw them all. */
static bool inuse_gone(int err)
{
	return err == ENOENT || err == ESRCH;
}

/* Records every mapping of a file on shm_dev: "start-end perms offset MAJ:MIN INODE path".
 * Only lines holding the device's " MAJ:MIN " are parsed: memmem skips the rest at memory
 * speed, which matters for processes with tens of thousands of mappings. Returns 0, 1
 * when the task may not be read, -1 with errno when it cannot tell (out of memory or
 * descriptors). */
static int inuse_scan_maps(struct inuse_scan_ctx *ctx, int taskfd)
{
	int fd = openat(taskfd, "maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return inuse_denied(errno) ? 1 : inuse_gone(errno) ? 0 : -1;
	ssize_t n = inuse_read_all(ctx, fd);
	int saved = errno;
	close(fd);
	if (n < 0) {
		errno = saved;
		return inuse_denied(saved) ? 1 : inuse_gone(saved) ? 0 : -1;
	}
	const char *buf = ctx->buf, *end = buf + n;
	size_t nlen = strlen(ctx->needle);
	const char *hit = buf;
	while ((hit = memmem(hit, (size_t)(end - hit), ctx->needle, nlen))) {
		const char *line = hit;
		while (line > buf && line[-1] != '\n')
			line--;
		const char *eol = memchr(hit, '\n', (size_t)(end - hit));
		if (!eol)
			eol = end;
		if (inuse_maps_field(line, eol, 3) != hit + 1) {
			hit++; /* the device text elsewhere on the line: look further */
			continue;
		}
		const char *ip = inuse_maps_field(line, eol, 4);
		char *iend;
		errno = 0;
		unsigned long long ino = strtoull(ip, &iend, 10);
		if (ip < eol && *ip >= '0' && *ip <= '9' && iend <= eol &&
		    (iend == eol || *iend == ' ') && errno == 0 &&
		    inuse_add(ctx->idx, (uint64_t)ctx->idx->shm_dev, ino) < 0) {
			errno = ENOMEM;
			return -1;
		}
		hit = eol;
	}
	return 0;
}

/* Records every fd of the task whose file lives on shm_dev. statx through the fd link
 * reaches the open file itself; AT_STATX_DONT_SYNC keeps a network or FUSE filesystem
 * that a task happens to hold open from making us wait on its server. Returns 0, 1 when
 * the task may not be read, -1 with errno when it cannot tell (out of memory or
 * descriptors). */
static int inuse_scan_fds(struct inuse_scan_ctx *ctx, int taskfd)
{
	int fd = openat(taskfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return inuse_denied(errno) ? 1 : inuse_gone(errno) ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!inuse_is_num(de->d_name))
			continue;
		struct statx stx;
		if (statx(dirfd(d), de->d_name, AT_STATX_DONT_SYNC, STATX_INO, &stx) < 0) {
			if (inuse_denied(errno)) {
				rc = 1; /* became undumpable, or changed credentials, meanwhile */
				break;
			}
			if (errno == ENOMEM) {
				rc = -1;
				break;
			}
			if (!inuse_gone(errno)) {
				/* The file's own failure (a FUSE file whose daemon died, a
				 * stale NFS handle): what this task holds cannot be told. */
				rc = 1;
				break;
			}
			errno = 0;
			continue; /* closed meanwhile */
		}
		if (makedev(stx.stx_dev_major, stx.stx_dev_minor) == ctx->idx->shm_dev &&
		    inuse_add(ctx->idx, (uint64_t)ctx->idx->shm_dev, stx.stx_ino) < 0) {
			errno = ENOMEM;
			rc = -1;
			break;
		}
		errno = 0;
	}
	if (!de && errno && inuse_denied(errno))
		rc = 1;
	else if (!de && errno && !inuse_gone(errno))
		rc = -1;
	int saved = errno;
	closedir(d);
	errno = saved;
	return rc;
}

/* True when task tid shares its fd table (KCMP_FILES) or address space (KCMP_VM) with a
 * task already read. Without kcmp every task is read: slower, never wrong. */
static bool inuse_shares(struct inuse_scan_ctx *ctx, const struct inuse_reps *reps, pid_t tid,
			 int type)
{
	if (!ctx->kcmp)
		return false;
	for (size_t i = 0; i < reps->n; i++) {
		long r = syscall(SYS_kcmp, tid, reps->tid[i], type, 0, 0);
		if (r == 0)
			return true;
		if (r < 0 && errno == ENOSYS) {
			ctx->kcmp = false;
			return false;
		}
	}
	return false;
}

static int inuse_reps_add(struct inuse_reps *reps, pid_t tid)
{
	if (reps->n == reps->cap) {
		size_t ncap = reps->cap ? reps->cap * 2 : 8;
		pid_t *n = realloc(reps->tid, ncap * sizeof(*n));
		if (!n)
			return -1;
		reps->tid = n;
		reps->cap = ncap;
	}
	reps->tid[reps->n++] = tid;
	return 0;
}

/* The uids on the "Uid:" line of /proc/PID/status and its "CapPrm:" line: readable even
 * for a process that is not dumpable, unless hidepid hides the whole directory. What
 * cannot be read counts as the most it could be: uids unknown, any owner. */
static void inuse_status(int pidfd, struct inuse_blind *b)
{
	for (int i = 0; i < 4; i++)
		b->uid[i] = INUSE_UID_UNKNOWN;
	b->any_owner = true;
	int fd = openat(pidfd, "status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nUid:");
	unsigned r, e, s, f;
	if (p && sscanf(p + 5, "%u %u %u %u", &r, &e, &s, &f) == 4) {
		b->uid[0] = r;
		b->uid[1] = e;
		b->uid[2] = s;
		b->uid[3] = f;
	}
	bool root_or_unknown = false;
	for (int i = 0; i < 4; i++)
		root_or_unknown |= b->uid[i] == 0 || b->uid[i] == INUSE_UID_UNKNOWN;
	p = strstr(buf, "\nCapPrm:");
	unsigned long long prm;
	if (!root_or_unknown && p && sscanf(p + 8, "%llx", &prm) == 1 && prm == 0)
		b->any_owner = false;
}

static int inuse_add_blind(struct inuse *idx, int pidfd, pid_t pid)
{
	if (idx->nblind == idx->blindcap) {
		size_t ncap = idx->blindcap ? idx->blindcap * 2 : 64;
		struct inuse_blind *n = realloc(idx->blind, ncap * sizeof(*n));
		if (!n)
			return -1;
		idx->blind = n;
		idx->blindcap = ncap;
	}
	struct inuse_blind *b = &idx->blind[idx->nblind++];
	b->pid = pid;
	inuse_status(pidfd, b);
	return 0;
}

/* One task: its fd table and its maps, each unless a task of this process already
 * showed the same one. Returns 0, 1 when the task may not be read, -1 with errno when it
 * cannot tell. */
static int inuse_scan_task(struct inuse_scan_ctx *ctx, int taskfd, pid_t tid)
{
	int blind = 0;
	if (!inuse_shares(ctx, &ctx->files, tid, KCMP_FILES)) {
		int rc = inuse_scan_fds(ctx, taskfd);
		if (rc < 0)
			return -1;
		if (rc == 0 && inuse_reps_add(&ctx->files, tid) < 0) {
			errno = ENOMEM;
			return -1;
		}
		blind |= rc;
	}
	if (!inuse_shares(ctx, &ctx->vm, tid, KCMP_VM)) {
		int rc = inuse_scan_maps(ctx, taskfd);
		if (rc < 0)
			return -1;
		if (rc == 0 && inuse_reps_add(&ctx->vm, tid) < 0) {
			errno = ENOMEM;
			return -1;
		}
		blind |= rc;
	}
	return blind;
}

/* Every task of one process. A process without a task directory (a fake /proc) is
 * read as its own single task. Returns 0 or -1 with errno (cannot tell: out of memory or
 * descriptors). */
static int inuse_scan_pid(struct inuse_scan_ctx *ctx, const char *name)
{
	pid_t pid = (pid_t)atol(name);
	int pidfd = openat(ctx->procfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pidfd < 0) {
		if (inuse_denied(errno))
			return inuse_add_blind(ctx->idx, -1, pid) < 0 ? (errno = ENOMEM, -1) : 0;
		return inuse_gone(errno) ? 0 : -1;
	}
	ctx->files.n = ctx->vm.n = 0;
	int rc = 0, blind = 0;
	int taskdir = openat(pidfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = taskdir >= 0 ? fdopendir(taskdir) : NULL;
	if (!d) {
		int saved = errno;
		if (taskdir >= 0)
			close(taskdir);
		if (taskdir < 0 && inuse_denied(saved)) {
			blind = 1;
		} else if (taskdir >= 0 || !inuse_gone(saved)) {
			/* No task directory is a fake /proc's (ENOENT); any other failure
			 * is no answer. */
			errno = saved;
			rc = -1;
		} else {
			rc = inuse_scan_task(ctx, pidfd, pid);
			blind = rc == 1;
		}
		goto out;
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!inuse_is_num(de->d_name))
			continue;
		int tfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (tfd < 0) {
			if (!inuse_denied(errno) && !inuse_gone(errno)) {
				rc = -1;
				break;
			}
			blind |= inuse_denied(errno);
			errno = 0;
			continue;
		}
		int trc = inuse_scan_task(ctx, tfd, (pid_t)atol(de->d_name));
		int saved = errno;
		close(tfd);
		if (trc < 0) {
			errno = saved;
			rc = -1;
			break;
		}
		blind |= trc;
		errno = 0;
	}
	if (rc == 0 && !de && errno && !inuse_gone(errno))
		rc = -1;
	int saved = errno;
	closedir(d);
	errno = saved;
out:
	if (rc >= 0 && blind && inuse_add_blind(ctx->idx, pidfd, pid) < 0) {
		saved = ENOMEM;
		rc = -1;
	} else {
		saved = errno;
	}
	close(pidfd);
	errno = saved;
	return rc < 0 ? -1 : 0;
}

/* kcmp's pids are our pid namespace's: only trust it on a /proc of that namespace. */
static bool inuse_own_proc(int procfd)
{
	char link[32], want[32];
	ssize_t n = readlinkat(procfd, "self", link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = '\0';
	snprintf(want, sizeof(want), "%d", (int)getpid());
	return strcmp(link, want) == 0;
}

/* True when procdir is a proc mount with hidepid set (1/noaccess, 2/invisible) and we are
 * not root: processes we may not inspect are then not even listed, so their absence from
 * the scan proves nothing. The mount's gid= exemption is not looked at: assuming we are
 * not exempt only sends more objects to the lease check. */
static bool inuse_proc_hides(const char *procdir)
{
	char want[4096];
	if (geteuid() == 0 || !realpath(procdir, want))
		return false;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[8192];
	bool hides = false;
	while (fgets(line, sizeof(line), f)) {
		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS";
		 * mount points with spaces are octal-escaped, so they hold none. */
		char mnt[4096], fstype[64], source[256], sopts[2048];
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s %255s %2047s", fstype, source, sopts) != 3 ||
		    strcmp(mnt, want) != 0)
			continue;
		/* The last mount on a point is the one we see. */
		const char *h = strstr(sopts, "hidepid=");
		hides = strcmp(fstype, "proc") == 0 && h && strncmp(h + 8, "0", 1) != 0 &&
			strncmp(h + 8, "off", 3) != 0;
	}
	fclose(f);
	return hides;
}

/* Fills idx (emptied first) from idx->procdir, with our own identity: a root reclaimer
 * acting as a directory's owner (setfsuid) would otherwise be refused every other user's
 * /proc/PID/fd, and miss another user's process holding the owner's object. */
static int inuse_fill(struct inuse *idx, char *err, size_t errlen)
{
	struct inuse_scan_ctx ctx = { .idx = idx, .procfd = -1 };
	DIR *d = NULL;
	int rc = -1;
	uid_t fsuid = (uid_t)setfsuid(geteuid());
	gid_t fsgid = (gid_t)setfsgid(getegid());
	memset(idx->slots, 0, idx->cap * sizeof(*idx->slots));
	idx->count = 0;
	idx->nblind = 0;
	idx->consulted = false;
	idx->expired = false;
	idx->scanned = true;
	idx->scanned_ms = util_now_ms();
	snprintf(ctx.needle, sizeof(ctx.needle), " %02x:%02x ", major(idx->shm_dev),
		 minor(idx->shm_dev));
	ctx.procfd = open(idx->procdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx.procfd < 0) {
		util_err(err, errlen, "open %s: %s", idx->procdir, strerror(errno));
		goto out;
	}
	ctx.kcmp = inuse_own_proc(ctx.procfd);
	idx->hidden = inuse_proc_hides(idx->procdir);
	int lfd = openat(ctx.procfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0 || !(d = fdopendir(lfd))) {
		util_err(err, errlen, "read %s: %s", idx->procdir, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		goto out;
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!inuse_is_num(de->d_name))
			continue;
		if (inuse_scan_pid(&ctx, de->d_name) < 0) {
			util_err(err, errlen, "scanning %s/%s: %s", idx->procdir, de->d_name,
				 strerror(errno));
			goto out;
		}
		errno = 0;
	}
	if (errno) {
		util_err(err, errlen, "read %s: %s", idx->procdir, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (d)
		closedir(d);
	if (ctx.procfd >= 0)
		close(ctx.procfd);
	free(ctx.buf);
	free(ctx.files.tid);
	free(ctx.vm.tid);
	setfsgid(fsgid);
	setfsuid(fsuid);
	if ((uid_t)setfsuid((uid_t)-1) != fsuid || (gid_t)setfsgid((gid_t)-1) != fsgid) {
		/* The caller's checks ran as the owner: never leave it acting as us. */
		util_err(err, errlen, "could not restore filesystem uid %u gid %u", (unsigned)fsuid,
			 (unsigned)fsgid);
		rc = -1;
	}
	return rc;
}

struct inuse *inuse_new(const char *procdir, dev_t shm_dev, char *err, size_t errlen)
{
	struct inuse *idx = calloc(1, sizeof(*idx));
	if (!idx)
		goto nomem;
	idx->cap = INUSE_INITIAL_CAP;
	idx->slots = calloc(idx->cap, sizeof(*idx->slots));
	if (!idx->slots)
		goto nomem;
	if (util_strlcpy(idx->procdir, procdir, sizeof(idx->procdir)) >= sizeof(idx->procdir)) {
		util_err(err, errlen, "%s: path too long", procdir);
		goto fail;
	}
	idx->shm_dev = shm_dev;
	return idx;
nomem:
	util_err(err, errlen, "scanning %s: out of memory", procdir);
fail:
	inuse_free(idx);
	return NULL;
}

struct inuse *inuse_scan(const char *procdir, dev_t shm_dev, char *err, size_t errlen)
{
	struct inuse *idx = inuse_new(procdir, shm_dev, err, errlen);
	if (idx && inuse_fill(idx, err, errlen) < 0) {
		inuse_free(idx);
		return NULL;
	}
	return idx;
}

int inuse_refresh(struct inuse *idx, int64_t max_age_ms, char *err, size_t errlen)
{
	if (idx->scanned && !idx->consulted)
		return 0; /* nothing was cleared with this view yet: it is as good as new */
	if (idx->scanned && !idx->expired && util_now_ms() - idx->scanned_ms <= max_age_ms)
		return 0;
	struct inuse *fresh = inuse_scan(idx->procdir, idx->shm_dev, err, errlen);
	if (!fresh)
		return -1;
	free(idx->slots);
	free(idx->blind);
	fresh->no_lease = idx->no_lease; /* the run has said it already */
	*idx = *fresh;
	free(fresh);
	return 0;
}

void inuse_expire(struct inuse *idx)
{
	idx->expired = true;
}

bool inuse_holds(struct inuse *idx, dev_t dev, ino_t ino)
{
	idx->consulted = true;
	return inuse_find(idx, (uint64_t)dev, (uint64_t)ino)->used;
}

/* The policy (SECURITY.md, "What cannot be seen"): a process we could not inspect may
 * hold an object when one of its uids is the object's owner, or when the object's mode
 * lets group or others read or write it, or when its uids are unknown, or when it may
 * open any object: root's processes (uid 0 among its uids) and those with permitted
 * capabilities. To a non-root reclaimer every root process is such a one, so its objects
 * go to the kernel's lease check (reclaim.c), which clears what nobody has open. When
 * /proc hides processes (hidepid), any object may be held by one we cannot even list:
 * *pid is 0 then. */
bool inuse_blind(struct inuse *idx, uid_t owner, mode_t mode, pid_t *pid)
{
	idx->consulted = true;
	/* The pid reported is the likeliest holder: one running as the owner (or of unknown
	 * uids) before one that could merely open anything. */
	pid_t weak = 0;
	for (size_t i = 0; i < idx->nblind; i++) {
		const struct inuse_blind *b = &idx->blind[i];
		for (int k = 0; k < 4; k++) {
			if (b->uid[k] == INUSE_UID_UNKNOWN || b->uid[k] == owner) {
				*pid = b->pid;
				return true;
			}
		}
		if (!weak && ((mode & 066) != 0 || b->any_owner))
			weak = b->pid;
	}
	*pid = weak;
	return weak != 0 || idx->hidden;
}

size_t inuse_count(const struct inuse *idx)
{
	return idx->count;
}

bool inuse_lease_unavailable(struct inuse *idx)
{
	bool first = !idx->no_lease;
	idx->no_lease = true;
	return first;
}

size_t inuse_blind_count(const struct inuse *idx)
{
	return idx->nblind;
}

void inuse_free(struct inuse *idx)
{
	if (!idx)
		return;
	free(idx->slots);
	free(idx->blind);
	free(idx);
}
