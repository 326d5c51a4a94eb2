/* test_cli.c — cli_number at its edges (the process tests in tests/proc/test_cli.py
 * cover what the commands say), and cli_next's state: two command lines read one after
 * the other, as main and then a subcommand do. */
#include "check.h"
#include "cli.h"

static void test_number_edges(void)
{
	long long v = -7;
	CHECK(cli_number("0", 0, 10, &v) == 0 && v == 0);
	CHECK(cli_number("10", 0, 10, &v) == 0 && v == 10);
	CHECK(cli_number("007", 0, 10, &v) == 0 && v == 7);
	CHECK(cli_number("9223372036854775807", 0, 9223372036854775807LL, &v) == 0 &&
	      v == 9223372036854775807LL);
	v = -7;
	/* Refused, and *out left alone. */
	CHECK(cli_number("11", 0, 10, &v) < 0);
	CHECK(cli_number("9", 0, 5, &v) < 0);
	CHECK(cli_number("0", 1, 5, &v) < 0);
	CHECK(cli_number("9223372036854775808", 0, 9223372036854775807LL, &v) < 0);
	CHECK(cli_number("99999999999999999999999999", 0, 86400000, &v) < 0);
	const char *bad[] = { "", "-1", "+1", " 1", "1 ", "1.0", "0x1", "1e3", "one", "\xff" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(cli_number(bad[i], 0, 86400000, &v) < 0);
	CHECK_EQ_INT(v, -7);
}

static void test_two_command_lines(void)
{
	static const struct cli_opt opts[] = {
		{ "tmpdir", 256, "a directory" },
		{ "json", 257, NULL },
		{ "help", 'h', NULL },
		{ NULL, 0, NULL },
	};
	char a0[] = "ls", a1[] = "--tmpdir", a2[] = "/x", a3[] = "op", a4[] = "--json";
	char *argv1[] = { a0, a1, a2, a3, a4, NULL };
	struct cli c;
	cli_init(&c, "ls", opts, false);
	CHECK_EQ_INT(cli_next(&c, 5, argv1), 256);
	CHECK(c.value && strcmp(c.value, "/x") == 0);
	CHECK_EQ_INT(cli_next(&c, 5, argv1), 257);
	CHECK(c.value == NULL);
	CHECK_EQ_INT(cli_next(&c, 5, argv1), -1);
	/* Permuted: the operand comes after the options. */
	CHECK_EQ_INT(optind, 4);
	CHECK(strcmp(argv1[optind], "op") == 0);
	/* A second line starts afresh: the same option is not "given twice". */
	char b0[] = "ls", b1[] = "--tmpdir=/y";
	char *argv2[] = { b0, b1, NULL };
	cli_init(&c, "ls", opts, false);
	CHECK_EQ_INT(cli_next(&c, 2, argv2), 256);
	CHECK(c.value && strcmp(c.value, "/y") == 0);
	CHECK_EQ_INT(cli_next(&c, 2, argv2), -1);
	CHECK_EQ_INT(optind, 2);
}

int main(void)
{
	RUN(test_number_edges);
	RUN(test_two_command_lines);
	return check_done();
}
