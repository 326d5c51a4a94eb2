/* test_wire.c — decoding and validating AllocInfo records, including garbage. */
#include <stdint.h>

#include "check.h"
#include "wire.h"

static void make_record(unsigned char rec[WIRE_RECORD_SIZE], int32_t pid, char free_flag,
			const void *name, size_t len)
{
	memset(rec, 0, WIRE_RECORD_SIZE);
	memcpy(rec, &pid, 4);
	rec[4] = (unsigned char)free_flag;
	memcpy(rec + 5, name, len);
}

static void test_decode_register_and_free(void)
{
	unsigned char rec[WIRE_RECORD_SIZE];
	struct wire_msg msg;
	make_record(rec, 1234, 0, "/torch_1234_5678_0", 18);
	CHECK_EQ_INT(wire_decode(rec, &msg), WIRE_MSG_OK);
	CHECK_EQ_INT(msg.pid, 1234);
	CHECK(!msg.is_free);
	CHECK_EQ_INT(msg.name_len, 18);
	CHECK(strcmp(msg.name, "/torch_1234_5678_0") == 0);
	make_record(rec, 1, 7, "/x", 2); /* any nonzero byte means free */
	CHECK_EQ_INT(wire_decode(rec, &msg), WIRE_MSG_OK);
	CHECK(msg.is_free);
}

static void test_encode_matches_libshm_layout(void)
{
	unsigned char rec[WIRE_RECORD_SIZE], want[WIRE_RECORD_SIZE];
	CHECK_EQ_INT(wire_encode(42, true, "/torch_42_1_2", rec), 0);
	make_record(want, 42, 1, "/torch_42_1_2", 13);
	CHECK(memcmp(rec, want, WIRE_RECORD_SIZE) == 0);
	CHECK_EQ_INT(wire_encode(42, false, "bad", rec), -1);
}

static void test_longest_name_fits(void)
{
	char name[WIRE_NAME_FIELD];
	memset(name, 'a', sizeof(name));
	name[0] = '/';
	name[WIRE_NAME_MAX] = '\0'; /* 59 bytes + NUL */
	unsigned char rec[WIRE_RECORD_SIZE];
	struct wire_msg msg;
	make_record(rec, 1, 0, name, WIRE_NAME_FIELD);
	CHECK_EQ_INT(wire_decode(rec, &msg), WIRE_MSG_OK);
	CHECK_EQ_INT(msg.name_len, WIRE_NAME_MAX);
}

static void test_rejects_bad_names(void)
{
	static const struct {
		const char *name;
		size_t len;
	} bad[] = {
		{ "", 0 },   { "/", 1 },   { "x", 1 },  { "abc", 3 }, { "/a/b", 4 },
		{ "/.", 2 }, { "/..", 3 }, { "//", 2 }, { "/a/", 3 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char rec[WIRE_RECORD_SIZE];
		struct wire_msg msg;
		make_record(rec, 1, 0, bad[i].name, bad[i].len);
		CHECK_EQ_INT(wire_decode(rec, &msg), WIRE_BAD_NAME);
		CHECK(wire_name_check(bad[i].name, bad[i].len) != NULL);
	}
	CHECK(wire_name_check("/...", 4) == NULL); /* "..." is an ordinary name */
	CHECK(wire_name_check("/a\0b", 4) != NULL);
}

static void test_rejects_unterminated(void)
{
	unsigned char rec[WIRE_RECORD_SIZE];
	struct wire_msg msg;
	memset(rec, 'A', sizeof(rec));
	rec[5] = '/';
	CHECK_EQ_INT(wire_decode(rec, &msg), WIRE_BAD_UNTERMINATED);
}

/* Random records never crash the decoder, and whatever it accepts is a valid name. */
static void test_random_records(void)
{
	unsigned seed = 12345;
	for (int i = 0; i < 200000; i++) {
		unsigned char rec[WIRE_RECORD_SIZE];
		for (size_t k = 0; k < sizeof(rec); k++) {
			seed = seed * 1103515245 + 12345;
			rec[k] = (unsigned char)(seed >> 16);
		}
		if (i % 3 == 0)
			rec[5] = '/';
		if (i % 5 == 0)
			rec[5 + 1 + (i % 40)] = '\0';
		struct wire_msg msg;
		if (wire_decode(rec, &msg) == WIRE_MSG_OK)
			CHECK(wire_name_check(msg.name, strlen(msg.name)) == NULL);
	}
}

int main(void)
{
	RUN(test_decode_register_and_free);
	RUN(test_encode_matches_libshm_layout);
	RUN(test_longest_name_fits);
	RUN(test_rejects_bad_names);
	RUN(test_rejects_unterminated);
	RUN(test_random_records);
	return check_done();
}
