/* producer.c — the sending side of the libshmwarden example: share a buffer with other processes.
 *
 *   SHMWARDEN_MANAGER=build/torch_shm_manager build/examples/producer [-s SIZE] [-n N]
 *   build/examples/producer -c SOCKET ...      (use a running manager instead of spawning one)
 *   Creates a SIZE-byte buffer (default 1 MiB) through the manager, fills it, runs N copies of
 *   build/examples/consumer SOCKET NAME SIZE (they open, verify and free it), then frees it.
 *   Exit status 0 when every consumer saw the right bytes. -p PREFIX sets the names' prefix.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmwarden.h>

/* The bytes both sides agree on: position-dependent, so a wrong offset or a stale page
 * shows. */
static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

/* The consumer program: next to this one. */
static int consumer_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	if (!slash || (size_t)(slash - buf) + sizeof("/consumer") > len)
		return -1;
	strcpy(slash, "/consumer");
	return 0;
}

static pid_t run_consumer(const char *prog, const char *sock, const char *name, size_t size)
{
	char sizestr[32];
	snprintf(sizestr, sizeof(sizestr), "%zu", size);
	pid_t pid = fork();
	if (pid == 0) {
		execl(prog, prog, sock, name, sizestr, (char *)NULL);
		fprintf(stderr, "producer: cannot run %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	return pid;
}

int main(int argc, char **argv)
{
	size_t size = 1 << 20;
	int nconsumers = 1, c;
	const char *sockarg = NULL, *prefix = NULL;
	while ((c = getopt(argc, argv, "s:n:c:p:")) != -1) {
		switch (c) {
		case 's':
			size = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			nconsumers = atoi(optarg);
			break;
		case 'c':
			sockarg = optarg;
			break;
		case 'p':
			prefix = optarg;
			break;
		default:
			fprintf(stderr, "usage: producer [-s SIZE] [-n N] [-c SOCKET] [-p PREFIX] "
					"[CONSUMER]\n");
			return 2;
		}
	}
	char prog[PATH_MAX];
	if (optind < argc)
		snprintf(prog, sizeof(prog), "%s", argv[optind]);
	else if (consumer_path(prog, sizeof(prog)) < 0)
		snprintf(prog, sizeof(prog), "consumer");

	struct shmw_manager *m = NULL;
	struct shmw_segment *seg = NULL;
	char sock[128];
	int rc = sockarg ? shmw_connect(sockarg, 0, &m) : shmw_spawn(NULL, 0, &m);
	if (rc == 0 && prefix)
		rc = shmw_set_prefix(m, prefix);
	if (rc == 0)
		rc = shmw_socket_path(m, sock, sizeof(sock));
	if (rc >= 0)
		rc = shmw_create(m, size, 0, &seg);
	if (rc < 0) {
		fprintf(stderr, "producer: %s\n", shmw_errmsg());
		shmw_close(m);
		return 1;
	}
	unsigned char *p = shmw_data(seg);
	for (size_t i = 0; i < size; i++)
		p[i] = pattern(i);
	printf("producer: %s holds %zu bytes; manager at %s\n", shmw_name(seg), size, sock);
	fflush(stdout);

	int failed = 0;
	for (int i = 0; i < nconsumers; i++)
		if (run_consumer(prog, sock, shmw_name(seg), size) < 0)
			failed++;
	int status;
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;

	/* Every consumer is done with it: free (and, as its creator, unlink) the buffer. */
	if (shmw_free(seg) < 0) {
		fprintf(stderr, "producer: %s\n", shmw_errmsg());
		failed++;
	}
	shmw_close(m);
	printf("producer: %d of %d consumers verified the buffer\n", nconsumers - failed,
	       nconsumers);
	return failed ? 1 : 0;
}
