/* test_report.c — report_escape, report_escape_n and report_print_escaped: text output
 * that reads back one way (the backslash and leading or trailing spaces escaped), cut at
 * a whole escape; report_json_string_n: a name's every byte, NUL included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "report.h"

/* CHECK of two strings that shows both when they differ. */
#define CHECK_EQ_STR(a, b)                                                           \
	do {                                                                         \
		const char *check_sa_ = (a), *check_sb_ = (b);                       \
		CHECK(strcmp(check_sa_, check_sb_) == 0);                            \
		if (strcmp(check_sa_, check_sb_) != 0)                               \
			printf("  got \"%s\", want \"%s\"\n", check_sa_, check_sb_); \
	} while (0)

static const char *esc(const char *s)
{
	static char buf[256];
	return report_escape(s, buf, sizeof(buf));
}

static void test_escapes(void)
{
	CHECK_EQ_STR(esc("/plain-name_1"), "/plain-name_1");
	CHECK_EQ_STR(esc("/a\nb"), "/a\\x0ab");
	CHECK_EQ_STR(esc("/a\\x0ab"), "/a\\x5cx0ab");
	CHECK_EQ_STR(esc("/z "), "/z\\x20");
	CHECK_EQ_STR(esc(" a b  "), "\\x20a b\\x20\\x20");
	CHECK_EQ_STR(esc("  "), "\\x20\\x20");
	CHECK_EQ_STR(esc(""), "");
	CHECK_EQ_STR(esc("\x7f\xc3\xa9"), "\\x7f\\xc3\\xa9");
}

/* A journaled name is a blob with a length: a NUL inside it is a byte like any other, and
 * the spaces that lead or trail are counted from its ends, not from the NUL. */
static void test_escape_n_holds_a_nul(void)
{
	char buf[64];
	CHECK_EQ_STR(report_escape_n("/a\0b\\ ", 6, buf, sizeof(buf)), "/a\\x00b\\x5c\\x20");
	CHECK_EQ_STR(report_escape_n(" \0 ", 3, buf, sizeof(buf)), "\\x20\\x00\\x20");
	CHECK_EQ_STR(report_escape_n("/z x", 3, buf, sizeof(buf)), "/z\\x20");
	CHECK_EQ_STR(report_escape_n("", 0, buf, sizeof(buf)), "");
}

static void test_cut_at_a_whole_escape(void)
{
	char buf[7];
	CHECK_EQ_STR(report_escape("abc\\def", buf, sizeof(buf)), "abc");
	CHECK_EQ_STR(report_escape("abcdefghij", buf, sizeof(buf)), "abcdef");
}

/* What print (or print_n, with n) writes for s, as a string the caller frees; "" when no
 * memory stream could be opened (a failed CHECK says so). */
static char *printed(void (*print)(FILE *, const char *),
		     void (*print_n)(FILE *, const char *, size_t), const char *s, size_t n)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	CHECK(f != NULL);
	if (!f)
		return strdup("");
	if (print_n)
		print_n(f, s, n);
	else
		print(f, s);
	fclose(f);
	return out;
}

static void test_print_matches_escape(void)
{
	char *out = printed(report_print_escaped, NULL, " x\\y\t ", 0);
	CHECK_EQ_STR(out, "\\x20x\\x5cy\\x09\\x20");
	CHECK_EQ_STR(out, esc(" x\\y\t "));
	free(out);
	/* Between quotes a space is seen as it is; the rest is escaped the same. */
	out = printed(report_print_quoted, NULL, " 5\\\n ", 0);
	CHECK_EQ_STR(out, "' 5\\x5c\\x0a '");
	free(out);
}

/* JSON strings: a NUL inside a length-given name is \u0000, not its end; a UTF-8
 * sequence cut by the length is bytes, not a character read past it; invalid bytes are
 * their Latin-1 reading, so the document always parses. */
static void test_json_string_n(void)
{
	static const struct {
		const char *s;
		size_t n;
		const char *want;
	} cases[] = {
		{ "/a\0b\"\\", 6, "\"/a\\u0000b\\\"\\\\\"" },
		{ "/\xc3\xa9", 3, "\"/\xc3\xa9\"" }, /* é whole */
		{ "/\xc3\xa9", 2, "\"/\\u00c3\"" },  /* é cut by the length */
		{ "/\xff\x7f\x01", 4, "\"/\\u00ff\\u007f\\u0001\"" },
		{ "", 0, "\"\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = printed(NULL, report_json_string_n, cases[i].s, cases[i].n);
		CHECK_EQ_STR(out, cases[i].want);
		free(out);
	}
}

int main(void)
{
	RUN(test_escapes);
	RUN(test_escape_n_holds_a_nul);
	RUN(test_cut_at_a_whole_escape);
	RUN(test_print_matches_escape);
	RUN(test_json_string_n);
	return check_done();
}
