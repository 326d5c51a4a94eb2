/* wire.c — decoding and validating libshm AllocInfo records (see wire.h).
 * The record layout is checked at compile time against PyTorch's struct, so a
 * platform where it differs fails the build rather than misreading clients. */
#include <stddef.h>
#include <string.h>

#include "wire.h"

_Static_assert(sizeof(struct wire_alloc_info) == WIRE_RECORD_SIZE, "AllocInfo is 68 bytes");
_Static_assert(offsetof(struct wire_alloc_info, free) == 4, "free at offset 4");
_Static_assert(offsetof(struct wire_alloc_info, filename) == 5, "filename at offset 5");

const char *wire_name_check(const char *name, size_t len)
{
	if (len < 2)
		return "empty name";
	if (len > WIRE_NAME_MAX)
		return "name longer than 59 bytes";
	if (name[0] != '/')
		return "name does not start with '/'";
	if (memchr(name, '\0', len))
		return "name contains a NUL byte";
	if (memchr(name + 1, '/', len - 1))
		return "name contains a second '/'";
	if ((len == 2 && name[1] == '.') || (len == 3 && name[1] == '.' && name[2] == '.'))
		return "name is '.' or '..'";
	return NULL;
}

enum wire_status wire_decode(const unsigned char *rec, struct wire_msg *out)
{
	int32_t pid;
	memcpy(&pid, rec + offsetof(struct wire_alloc_info, pid), sizeof(pid));
	const char *field = (const char *)rec + offsetof(struct wire_alloc_info, filename);
	const char *nul = memchr(field, '\0', WIRE_NAME_FIELD);
	if (!nul)
		return WIRE_BAD_UNTERMINATED;
	size_t len = (size_t)(nul - field);
	if (wire_name_check(field, len))
		return WIRE_BAD_NAME;
	out->pid = (pid_t)pid;
	out->is_free = rec[offsetof(struct wire_alloc_info, free)] != 0;
	out->name_len = len;
	memcpy(out->name, field, len + 1);
	return WIRE_MSG_OK;
}

int wire_encode(pid_t pid, bool is_free, const char *name, unsigned char rec[WIRE_RECORD_SIZE])
{
	size_t len = strnlen(name, WIRE_NAME_FIELD);
	if (wire_name_check(name, len))
		return -1;
	struct wire_alloc_info info;
	memset(&info, 0, sizeof(info));
	info.pid = (int32_t)pid;
	info.free = is_free ? 1 : 0;
	memcpy(info.filename, name, len);
	memset(rec, 0, WIRE_RECORD_SIZE);
	memcpy(rec, &info, sizeof(info));
	return 0;
}

const char *wire_status_str(enum wire_status st)
{
	switch (st) {
	case WIRE_MSG_OK:
		return "ok";
	case WIRE_BAD_UNTERMINATED:
		return "name not NUL-terminated within 60 bytes";
	case WIRE_BAD_NAME:
		return "invalid name";
	}
	return "unknown";
}
