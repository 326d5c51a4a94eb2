# shmwarden — build, test, install.
#   make            build build/shmwarden and build/torch_shm_manager
#   make test       install what the tests need, then run the suite twice:
#                   a normal build, then an ASan+UBSan build (build-san/)
#   make demo       the end-to-end story on this machine
#   make bench      side-by-side benchmark against Debian's torch_shm_manager
#   make install    PREFIX=/usr/local DESTDIR=

BUILD   ?= build
CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

CSTD     = -std=gnu17
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla -Wpointer-arith -Wcast-qual -Wno-format-nonliteral
OPT     ?= -O2 -g
SAN     ?=
CPPFLAGS += -D_GNU_SOURCE -DSHMWARDEN_VERSION='"$(VERSION)"' -Iinclude -Isrc -I$(BUILD)/gen
CFLAGS  += $(CSTD) $(OPT) $(WARN) $(SAN) -fPIC
LDFLAGS += $(SAN)
LDLIBS  += -lsqlite3 -lpthread

# Everything under src/ except the entry point is the core, linked into the binary and
# into every unit test; the client library is its own, smaller set.
MAIN_SRC  := src/main.c
LIB_SRCS  := $(wildcard src/client*.c) src/wire.c
CORE_SRCS := $(filter-out $(MAIN_SRC) $(wildcard src/client*.c),$(wildcard src/*.c))
CORE_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(CORE_SRCS)) $(BUILD)/obj/schema_sql.o
LIB_OBJS  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

.PHONY: all test test-normal test-san check deps demo bench fuzz install clean
all: $(BUILD)/shmwarden $(BUILD)/torch_shm_manager

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj $(BUILD)/gen
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# The schema is embedded verbatim as a C string, so schema/journal.sql stays the one
# source of truth (no hand-copied SQL in C).
$(BUILD)/gen/schema_sql.c: schema/journal.sql | $(BUILD)/gen
	{ echo '/* generated from schema/journal.sql by the Makefile: do not edit */'; \
	  echo 'const char journal_schema_sql[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/schema_sql.o: $(BUILD)/gen/schema_sql.c | $(BUILD)/obj
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-variable-declarations -c -o $@ $<

$(BUILD)/shmwarden: $(BUILD)/obj/main.o $(CORE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# PyTorch execs the manager with argv[0] "torch_shm_manager"; a link is all it needs.
$(BUILD)/torch_shm_manager: $(BUILD)/shmwarden
	ln -sf shmwarden $@

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(CORE_OBJS) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -o $@ $< $(CORE_OBJS) $(LDFLAGS) $(LDLIBS)
$(BUILD)/tools/%: tests/tools/%.c | $(BUILD)/tools
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS) $(LDLIBS)

$(BUILD)/obj $(BUILD)/gen $(BUILD)/tests $(BUILD)/tools:
	mkdir -p $@

check: all $(UNIT_BINS) $(TOOL_BINS)

deps:
	@scripts/deps.sh test

# The suite runs against the normal build, then again against an ASan+UBSan build.
test: deps
	$(MAKE) test-normal
	$(MAKE) test-san
test-normal: check
	tests/run --build $(BUILD)
test-san:
	$(MAKE) BUILD=build-san OPT='-O1 -g -fno-omit-frame-pointer' \
	    SAN='-fsanitize=address,undefined -fno-sanitize-recover=all' check
	tests/run --build build-san --sanitized

demo:
	@scripts/deps.sh demo
	$(MAKE) all
	scripts/demo.sh

bench:
	@scripts/deps.sh bench
	$(MAKE) all
	scripts/bench

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/shmwarden $(DESTDIR)$(PREFIX)/bin/shmwarden
	ln -sf shmwarden $(DESTDIR)$(PREFIX)/bin/torch_shm_manager

clean:
	rm -rf build build-san

-include $(wildcard $(BUILD)/obj/*.d)
