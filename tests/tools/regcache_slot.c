/* regcache_slot.c — names that take the same slot of the manager's registration cache
 * as a given name (src/regcache.h), so that a test can make them displace each other.
 *
 *   regcache_slot NAME PREFIX COUNT
 *     prints COUNT names PREFIX0, PREFIX1, ... (those of the form PREFIX<n> whose slot
 *     is NAME's), one a line
 *
 * Exit 0; 2 with a line on stderr for bad arguments (a name of 0 or WIRE_NAME_FIELD or
 * more bytes, a COUNT that is not a number from 1 to 100000).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regcache.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: regcache_slot NAME PREFIX COUNT\n");
		return 2;
	}
	const char *name = argv[1], *prefix = argv[2];
	char *end;
	errno = 0;
	long count = strtol(argv[3], &end, 10);
	size_t len = strlen(name);
	if (errno || *end || end == argv[3] || count < 1 || count > 100000 || len == 0 ||
	    len >= WIRE_NAME_FIELD || strlen(prefix) + 12 >= WIRE_NAME_FIELD) {
		fprintf(stderr, "regcache_slot: bad arguments\n");
		return 2;
	}
	unsigned slot = regcache_slot(regcache_hash(name, len));
	char other[WIRE_NAME_FIELD + 16];
	for (unsigned long n = 0; count > 0; n++) {
		int k = snprintf(other, sizeof(other), "%s%lu", prefix, n);
		if (regcache_slot(regcache_hash(other, (size_t)k)) == slot && strcmp(other, name)) {
			printf("%s\n", other);
			count--;
		}
	}
	return 0;
}
