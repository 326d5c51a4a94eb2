/* test_userns.c — the user namespace facts a manager journals (userns.c), and the two
 * rules every reclaimer applies to a journal's manager row (mgrdir.c): whether its writer
 * was the directory's owner (mgrdir_journal_owner) and whether its names live in our
 * /dev/shm (mgrdir_same_shm). uid maps are tried with garbage; the namespace cases run a
 * child in a new user namespace (unshare(2): root, or unprivileged user namespaces). */
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "journal.h"
#include "mgrdir.h"
#include "userns.h"

static void test_map_parse(void)
{
	CHECK_EQ_INT(userns_map_outside("         0          0 4294967295\n", 1001), 1001);
	CHECK_EQ_INT(userns_map_outside("         0       1001          1\n", 0), 1001);
	CHECK_EQ_INT(userns_map_outside("0 1001 1\n", 1), (uid_t)-1);            /* unmapped */
	CHECK_EQ_INT(userns_map_outside("0 100000 65536\n1000 5 1\n", 1000), 5); /* last */
	CHECK_EQ_INT(userns_map_outside("0 100000 65536\n", 70), 100070);
	CHECK_EQ_INT(userns_map_outside("0 100000 65536", 1), 100001); /* no newline */
	/* Garbage, or a range past 2^32: the whole map proves nothing. */
	static const char *const bad[] = {
		"",
		"\n",
		"0 1001\n",
		"0 1001 1 7\n",
		"0 1001 1\nx\n",
		"-1 1001 1\n",
		"0 +1001 1\n",
		"0 1001 0\n",
		"0 4294967295 2\n",
		"4294967295 0 2\n",
		"0 99999999999 1\n",
		"0 0x3e9 1\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(userns_map_outside(bad[i], 0), (uid_t)-1);
	/* A uid mapped onto (uid_t)-1, which is no uid. */
	CHECK_EQ_INT(userns_map_outside("0 4294967294 1\n", 0), 4294967294LL);
	CHECK_EQ_INT(userns_map_outside("0 4294967295 1\n", 0), (uid_t)-1);
}

static void test_self(void)
{
	struct userns_self s;
	userns_self(geteuid(), &s);
	struct stat st;
	CHECK(stat("/proc/self/ns/user", &st) == 0 && s.ns == (uint64_t)st.st_ino);
	if (userns_is_initial(s.ns))
		CHECK_EQ_INT(s.parent_uid, geteuid());
}

static struct journal_meta meta_v4(uid_t owner_uid, uint64_t user_ns, uid_t parent_uid)
{
	struct journal_meta m;
	memset(&m, 0, sizeof(m));
	m.schema_version = 4;
	m.owner_uid = owner_uid;
	m.has_shm_fs = m.has_shm_root = true;
	m.has_userns = user_ns != 0;
	m.user_ns = user_ns;
	m.parent_uid = parent_uid;
	return m;
}

/* A namespace that is neither the initial one nor (likely) ours: the dynamic range. */
#define OTHER_NS 0xF0001234u

static void test_journal_owner(void)
{
	struct userns_self self;
	userns_self(geteuid(), &self);
	if (!userns_is_initial(self.ns)) {
		printf("# skipped: not in the initial user namespace\n");
		return;
	}
	char why[512];
	struct journal_meta m = meta_v4(1001, self.ns, 1001);
	CHECK(mgrdir_journal_owner(&m, 1001, why, sizeof(why))); /* every release's rule */
	/* A rootless container's manager: uid 0 in its namespace, 1001 one level up. */
	m = meta_v4(0, OTHER_NS, 1001);
	CHECK(mgrdir_journal_owner(&m, 1001, why, sizeof(why)));
	CHECK(!mgrdir_journal_owner(&m, 1002, why, sizeof(why)));
	CHECK(strstr(why, "journal claims uid 0 in user namespace") != NULL);
	m = meta_v4(0, OTHER_NS, (uid_t)-1); /* unmapped: nothing shown */
	CHECK(!mgrdir_journal_owner(&m, 1001, why, sizeof(why)));
	CHECK(!mgrdir_journal_owner(&m, (uid_t)-1, why, sizeof(why)));
	m = meta_v4(0, self.ns, 1001); /* our own namespace must say the owner itself */
	CHECK(!mgrdir_journal_owner(&m, 1001, why, sizeof(why)));
	m = meta_v4(0, USERNS_INIT_INO, 1001);
	CHECK(!mgrdir_journal_owner(&m, 1001, why, sizeof(why)));
	m = meta_v4(0, 0, 1001); /* namespace unknown: the rule of version 3 */
	CHECK(!mgrdir_journal_owner(&m, 1001, why, sizeof(why)));
	CHECK(strstr(why, "journal claims uid 0 but the directory is owned by uid 1001") != NULL);
	m = meta_v4(0, OTHER_NS, 1001); /* version 3: no namespace recorded */
	m.has_userns = false;
	CHECK(!mgrdir_journal_owner(&m, 1001, NULL, 0));

	/* From inside a user namespace of its own, uids are not the parent's: nothing is
	 * shown by parent_uid there. */
	pid_t pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(77);
		struct journal_meta c = meta_v4(0, OTHER_NS, 1001);
		_exit(mgrdir_journal_owner(&c, 1001, NULL, 0) ? 1 : 0);
	}
	int status = 0;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		printf("# skipped the namespace case: unshare(CLONE_NEWUSER) refused\n");
	else
		CHECK_EQ_INT(WEXITSTATUS(status), 0);
}

static bool same(const struct journal_meta *m, uint64_t dev, uint64_t ino, int64_t btime_ns)
{
	struct shmobj_fs ours = { .dev = dev, .ino = ino, .btime_ns = btime_ns };
	return mgrdir_same_shm(m, &ours);
}

static void test_same_shm(void)
{
	struct journal_meta m = meta_v4(0, 0, 0);
	m.shm_dev = 0x2a;
	m.shm_ino = 1;
	m.shm_btime_ns = 1700000000123456789;
	CHECK(same(&m, 0x2a, 1, 1700000000123456789));
	CHECK(!same(&m, 0x2a, 77, 1700000000123456789)); /* a subdirectory bind-mounted */
	CHECK(!same(&m, 0x2b, 1, 1700000000123456789));
	/* A tmpfs mounted anew that got the freed device number and the same root inode. */
	CHECK(!same(&m, 0x2a, 1, 1700000000123456790));
	CHECK(same(&m, 0x2a, 1, 0)); /* no birth time here: the device and inode decide */
	m.shm_btime_ns = 0;          /* nor in the journal */
	CHECK(same(&m, 0x2a, 1, 1700000000123456790));
	CHECK(!same(&m, 0x2a, 77, 0));
	m.has_shm_root = false; /* version 3: the device alone, as its release decided */
	CHECK(same(&m, 0x2a, 77, 5));
	CHECK(!same(&m, 0x2b, 1, 5));
	m.has_shm_fs = false; /* version 1: taken as ours */
	CHECK(same(&m, 0x2b, 77, 5));
}

int main(void)
{
	RUN(test_map_parse);
	RUN(test_self);
	RUN(test_journal_owner);
	RUN(test_same_shm);
	return check_done();
}
