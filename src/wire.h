/* wire.h — the libshm wire protocol: the 68-byte AllocInfo record and shm names.
 *
 * Every message a client sends is one fixed-size record in native byte order
 * (docs/PROTOCOL.md). This module turns bytes into a validated struct wire_msg and back;
 * it knows nothing about sockets, journals or the event loop.
 */
#ifndef SHMWARDEN_WIRE_H
#define SHMWARDEN_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WIRE_NAME_FIELD 60 /* bytes of the filename field, NUL included */
#define WIRE_NAME_MAX (WIRE_NAME_FIELD - 1)
#define WIRE_RECORD_SIZE 68 /* sizeof(AllocInfo) on x86-64: 4 + 1 + 60 + 3 padding */
#define WIRE_OK "OK"
#define WIRE_OK_LEN 2

/* The layout PyTorch's clients send; kept only to pin offsets at compile time. */
struct wire_alloc_info {
	int32_t pid;
	char free;
	char filename[WIRE_NAME_FIELD];
};

struct wire_msg {
	pid_t pid; /* what the client claims; informational only */
	bool is_free;
	size_t name_len;
	char name[WIRE_NAME_FIELD]; /* NUL-terminated, validated */
};

enum wire_status {
	WIRE_MSG_OK = 0,
	WIRE_BAD_UNTERMINATED, /* no NUL inside the 60-byte field */
	WIRE_BAD_NAME,         /* fails wire_name_check */
};

/* Decodes one WIRE_RECORD_SIZE record. */
enum wire_status wire_decode(const unsigned char *rec, struct wire_msg *out);

/* Encodes a record the way libshm's clients do (zero-filled); -1 if the name is
 * invalid. Used by the client library and the tests. */
int wire_encode(pid_t pid, bool is_free, const char *name, unsigned char rec[WIRE_RECORD_SIZE]);

/* A valid shm name: starts with '/', has no other '/', is not "/." or "/..",
 * is non-empty after the slash, has no NUL, and fits the wire field (len <= 59).
 * Returns NULL when valid, else a short reason. */
const char *wire_name_check(const char *name, size_t len);

const char *wire_status_str(enum wire_status st);

#endif
