/* fuzz_replay.c — main() for a fuzz harness built without libFuzzer (`make check`).
 *
 *   test_fuzz_NAME [FILE|DIR...]
 *
 * Without arguments it runs the harness once over every file of its seed and regression
 * corpora (tests/fuzz/seeds/fuzz_NAME, tests/fuzz/regress/fuzz_NAME, found from
 * $SHMWARDEN_ROOT or the current directory), then over a few deterministic mutations of
 * each, and prints one PASS line; a broken invariant or a sanitizer report aborts, and
 * the suite (conftest.py) counts the crash as a failure. With arguments it runs exactly
 * those inputs, which is how a crash file from `make fuzz` is reproduced under gcc and a
 * debugger.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define MUTANTS_PER_FILE 8

static unsigned long long replay_rng = 0x9e3779b97f4a7c15ull;

static unsigned replay_next(void)
{
	replay_rng ^= replay_rng << 13;
	replay_rng ^= replay_rng >> 7;
	replay_rng ^= replay_rng << 17;
	return (unsigned)(replay_rng >> 16);
}

static unsigned char *replay_read(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	/* One spare byte so an empty file still gets a valid pointer. */
	unsigned char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0) {
			free(buf);
			buf = NULL;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

/* Runs the input as is, then mutants: a few bytes changed, or the tail cut off. */
static void replay_one(const unsigned char *buf, size_t len, bool mutate)
{
	/* An exact-size copy, so ASan sees a read past the end as libFuzzer's build would. */
	unsigned char *exact = malloc(len ? len : 1);
	memcpy(exact, buf, len);
	LLVMFuzzerTestOneInput(exact, len);
	for (int m = 0; mutate && len && m < MUTANTS_PER_FILE; m++) {
		memcpy(exact, buf, len);
		size_t n = len;
		if (m == MUTANTS_PER_FILE - 1) {
			n = replay_next() % len;
		} else {
			for (unsigned k = 1 + replay_next() % 4; k; k--)
				exact[replay_next() % len] ^= (unsigned char)(1 +
									      replay_next() % 255);
		}
		LLVMFuzzerTestOneInput(exact, n);
	}
	free(exact);
}

static int replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order; returns the count or -1 if dir is missing. */
static int replay_dir(const char *dir, bool mutate)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	char *names[4096];
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < 4096)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), replay_cmp);
	int ran = 0;
	for (int i = 0; i < n; i++) {
		char path[4096];
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unsigned char *buf = replay_read(path, &len);
		if (buf) {
			replay_one(buf, len, mutate);
			ran++;
			free(buf);
		}
		free(names[i]);
	}
	return ran;
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			struct stat st;
			size_t len;
			unsigned char *buf;
			if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
				replay_dir(argv[i], false);
			} else if ((buf = replay_read(argv[i], &len))) {
				replay_one(buf, len, false);
				free(buf);
			} else {
				fprintf(stderr, "%s: cannot read %s: %s\n", fuzz_harness_name,
					argv[i], strerror(errno));
				return 2;
			}
			printf("ran %s\n", argv[i]);
		}
		return 0;
	}
	const char *root = getenv("SHMWARDEN_ROOT");
	char seeds[4096], regress[4096];
	snprintf(seeds, sizeof(seeds), "%s/tests/fuzz/seeds/%s", root && *root ? root : ".",
		 fuzz_harness_name);
	snprintf(regress, sizeof(regress), "%s/tests/fuzz/regress/%s", root && *root ? root : ".",
		 fuzz_harness_name);
	int ns = replay_dir(seeds, true);
	int nr = replay_dir(regress, true);
	if (ns <= 0) {
		printf("FAIL %s_corpus: no seed corpus in %s\n", fuzz_harness_name, seeds);
		return 1;
	}
	printf("PASS %s_corpus (%d seeds, %d regression inputs, %d mutants each)\n",
	       fuzz_harness_name, ns, nr < 0 ? 0 : nr, MUTANTS_PER_FILE);
	return 0;
}
