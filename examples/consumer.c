/* consumer.c — the receiving side of the libshmwarden example (see producer.c).
 *
 *   build/examples/consumer SOCKET NAME SIZE
 *   Connects to the manager at SOCKET, opens the shared object NAME (which registers it, so
 *   it is reclaimed even if the producer dies), checks that it holds SIZE bytes of the
 *   producer's pattern, and frees it (it does not own it, so the object stays for others).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <shmwarden.h>

static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: consumer SOCKET NAME SIZE\n");
		return 2;
	}
	size_t size = strtoull(argv[3], NULL, 0);
	struct shmw_manager *m = NULL;
	struct shmw_segment *seg = NULL;
	if (shmw_connect(argv[1], 0, &m) < 0 || shmw_open(m, argv[2], SHMW_OPEN_RDONLY, &seg) < 0) {
		fprintf(stderr, "consumer: %s\n", shmw_errmsg());
		shmw_close(m);
		return 1;
	}
	int bad = shmw_size(seg) != size;
	const unsigned char *p = shmw_data(seg);
	for (size_t i = 0; !bad && i < size; i++)
		bad = p[i] != pattern(i);
	if (bad)
		fprintf(stderr, "consumer: %s does not hold the producer's %zu bytes\n", argv[2],
			size);
	else
		printf("consumer %d: %s: %zu bytes verified\n", (int)getpid(), argv[2], size);
	if (shmw_free(seg) < 0) {
		fprintf(stderr, "consumer: %s\n", shmw_errmsg());
		bad = 1;
	}
	shmw_close(m);
	return bad ? 1 : 0;
}
