/* fuzz_wire.c — libFuzzer harness for the wire decoder and the name validator.
 *
 * Arbitrary bytes are cut into 68-byte AllocInfo records (a short tail is zero-padded)
 * and decoded; the whole input is also checked as a name, and encoded as a client
 * would. Every verdict is compared with an independent statement of docs/PROTOCOL.md's
 * rules, and every accepted record must round-trip through wire_encode. What the
 * manager journals and the sweeper unlinks is exactly what passes here.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"

const char fuzz_harness_name[] = "fuzz_wire";

/* docs/PROTOCOL.md, restated without looking at wire.c: starts with '/', no other '/', no
 * NUL, not "/." or "/..", non-empty after the slash, at most 59 bytes. */
static bool spec_name_ok(const unsigned char *s, size_t len)
{
	if (len < 2 || len > 59 || s[0] != '/')
		return false;
	for (size_t i = 1; i < len; i++)
		if (s[i] == '/' || s[i] == '\0')
			return false;
	if (len == 2 && s[1] == '.')
		return false;
	if (len == 3 && s[1] == '.' && s[2] == '.')
		return false;
	return true;
}

static void check_record(const unsigned char *rec)
{
	struct wire_msg msg;
	memset(&msg, 0xa5, sizeof(msg));
	enum wire_status st = wire_decode(rec, &msg);
	FUZZ_CHECK(wire_status_str(st) != NULL);
	const unsigned char *field = rec + 5;
	const unsigned char *nul = memchr(field, '\0', WIRE_NAME_FIELD);
	if (!nul) {
		FUZZ_CHECK(st == WIRE_BAD_UNTERMINATED);
		return;
	}
	size_t len = (size_t)(nul - field);
	if (!spec_name_ok(field, len)) {
		FUZZ_CHECK(st == WIRE_BAD_NAME);
		return;
	}
	FUZZ_CHECK(st == WIRE_MSG_OK);
	FUZZ_CHECK(msg.name_len == len);
	FUZZ_CHECK(msg.name[len] == '\0' && strlen(msg.name) == len);
	FUZZ_CHECK(memcmp(msg.name, field, len) == 0);
	FUZZ_CHECK(msg.is_free == (rec[4] != 0));
	int32_t pid;
	memcpy(&pid, rec, sizeof(pid));
	FUZZ_CHECK(msg.pid == (pid_t)pid);
	FUZZ_CHECK(wire_name_check(msg.name, msg.name_len) == NULL);

	/* What the client library sends for it decodes to the same message. */
	unsigned char again[WIRE_RECORD_SIZE];
	FUZZ_CHECK(wire_encode(msg.pid, msg.is_free, msg.name, again) == 0);
	struct wire_msg msg2;
	FUZZ_CHECK(wire_decode(again, &msg2) == WIRE_MSG_OK);
	FUZZ_CHECK(msg2.pid == msg.pid && msg2.is_free == msg.is_free &&
		   msg2.name_len == msg.name_len && strcmp(msg2.name, msg.name) == 0);
	/* Zero-filled like libshm: nothing after the name's NUL. */
	for (size_t i = 5 + len; i < WIRE_RECORD_SIZE; i++)
		FUZZ_CHECK(again[i] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The validator on the raw bytes: it must read only len bytes (ASan sees the
	 * input's exact allocation) and agree with the rules. */
	const char *why = wire_name_check((const char *)data, size);
	FUZZ_CHECK((why == NULL) == spec_name_ok(data, size));

	size_t off = 0;
	for (; off + WIRE_RECORD_SIZE <= size; off += WIRE_RECORD_SIZE)
		check_record(data + off);
	if (off < size || size == 0) {
		unsigned char rec[WIRE_RECORD_SIZE] = { 0 };
		memcpy(rec, data + off, size - off);
		check_record(rec);
	}

	/* The encoder takes a C string: the input up to its first NUL. */
	char str[128];
	size_t n = size < sizeof(str) - 1 ? size : sizeof(str) - 1;
	memcpy(str, data, n);
	str[n] = '\0';
	unsigned char rec[WIRE_RECORD_SIZE];
	size_t slen = strnlen(str, WIRE_NAME_FIELD);
	int rc = wire_encode(1, false, str, rec);
	FUZZ_CHECK((rc == 0) == spec_name_ok((const unsigned char *)str, slen));
	if (rc == 0)
		check_record(rec);
	return 0;
}
