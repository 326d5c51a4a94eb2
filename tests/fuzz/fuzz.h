/* fuzz.h — what the libFuzzer harnesses in tests/fuzz share.
 *
 * Each harness defines LLVMFuzzerTestOneInput and nothing else global. It is built two
 * ways: by `make fuzz` with clang -fsanitize=fuzzer (libFuzzer supplies main), and by
 * `make check` with the project's compiler and fuzz_replay.c as main, so `make test`
 * replays the seed and regression corpora without needing clang. A broken invariant
 * aborts with a message in both builds; a sanitizer report does the same.
 */
#ifndef SHMWARDEN_FUZZ_H
#define SHMWARDEN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The name of the harness, for messages and for finding its corpora. */
extern const char fuzz_harness_name[];

#define FUZZ_CHECK(cond)                                                                        \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			fprintf(stderr, "%s: %s:%d: invariant broken: %s\n", fuzz_harness_name, \
				__FILE__, __LINE__, #cond);                                     \
			abort();                                                                \
		}                                                                               \
	} while (0)

/* A private directory for the harness's files, made once, removed at exit. Its path has
 * no symlink in it (SQLite refuses those). NULL when it cannot be made. */
const char *fuzz_private_dir(const char *tag);

/* Writes len bytes to dir/name (created 0600, truncated). -1 on error. */
int fuzz_write_file(const char *dir, const char *name, const void *data, size_t len);

#endif
