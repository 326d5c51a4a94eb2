/* lock_churn — takes and drops many file locks as fast as it can, for test_livemgr.py.
 *
 *   lock_churn PATH N
 *
 * Takes N separate fcntl write locks (every other byte, so the kernel cannot merge
 * them) spread over the 32 files PATH.0 .. PATH.31, and a flock on PATH, then drops
 * them all, forever. Every drop removes many /proc/locks entries at once: a reader of
 * /proc/locks (one page per read()) then skips as many. Written in C so that it churns
 * faster than a reader crosses the list. Prints "churning" once set up.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#define LOCK_CHURN_FILES 32

int main(int argc, char **argv)
{
	if (argc != 3 || atoi(argv[2]) <= 0) {
		fprintf(stderr, "usage: lock_churn PATH N\n");
		return 2;
	}
	int n = atoi(argv[2]), fl[LOCK_CHURN_FILES];
	char p[4096];
	int fd = open(argv[1], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int i = 0; i < LOCK_CHURN_FILES; i++) {
		snprintf(p, sizeof(p), "%s.%d", argv[1], i);
		fl[i] = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fl[i] < 0) {
			perror(p);
			return 1;
		}
	}
	printf("churning\n");
	fflush(stdout);
	/* N locks in all, spread over the files (a file's fcntl locks are a list the
	 * kernel walks at every insertion), each file's dropped in one call. */
	int per = (n + LOCK_CHURN_FILES - 1) / LOCK_CHURN_FILES;
	for (;;) {
		for (int f = 0; f < LOCK_CHURN_FILES; f++) {
			for (int i = 0; i < per; i++) {
				struct flock l = { .l_type = F_WRLCK,
						   .l_whence = SEEK_SET,
						   .l_start = 2 * (off_t)i,
						   .l_len = 1 };
				if (fcntl(fl[f], F_SETLK, &l) < 0) {
					perror("fcntl");
					return 1;
				}
			}
			flock(fd, LOCK_EX | LOCK_NB);
		}
		for (int f = 0; f < LOCK_CHURN_FILES; f++) {
			struct flock u = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
			fcntl(fl[f], F_SETLK, &u);
		}
		flock(fd, LOCK_UN);
	}
}
