# shmwarden — build, test, install.
#   make            build build/shmwarden and build/torch_shm_manager
#                   and the client library (libshmwarden.a/.so, shmwarden.pc, examples)
#   make test       install what the tests need (and the PyTorch matrix's chroots), then
#                   run the suite twice: a normal build, then an ASan+UBSan build (build-san/)
#   make demo       the end-to-end story on this machine
#   make bench      side-by-side benchmark against Debian's torch_shm_manager
#   make fuzz       the libFuzzer harnesses, FUZZ_SECONDS (60) each (needs clang)
#   make install    PREFIX=/usr/local DESTDIR=  (binaries, library, man pages, cron/systemd,
#                   tmpfiles.d)
#   make uninstall  the same variables: removes exactly what `make install` installed
#   make deb        the Debian packages (debian/) in $(BUILD)/deb/, checked by lintian

BUILD   ?= build
CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 0.2.0

CSTD     = -std=gnu17
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wvla -Wpointer-arith -Wcast-qual -Wno-format-nonliteral
OPT     ?= -O2 -g
SAN     ?=
CPPFLAGS += -D_GNU_SOURCE -DSHMWARDEN_VERSION='"$(VERSION)"' -Iinclude -Isrc -I$(BUILD)/gen
CFLAGS  += $(CSTD) $(OPT) $(WARN) $(SAN) -fPIC
LDFLAGS += $(SAN)
LDLIBS  += -lsqlite3 -lpthread -lcap-ng -lseccomp

# Everything under src/ except the entry point is the core, linked into the binary and
# into every unit test; the client library is its own, smaller set.
MAIN_SRC  := src/main.c
LIB_SRCS  := $(wildcard src/client*.c) src/wire.c
CORE_SRCS := $(filter-out $(MAIN_SRC) $(wildcard src/client*.c),$(wildcard src/*.c))
CORE_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(CORE_SRCS)) $(BUILD)/obj/schema_sql.o
LIB_OBJS  := $(patsubst src/%.c,$(BUILD)/lib/%.o,$(LIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))
PRELOAD_SRCS := $(wildcard tests/tools/preload/*.c)
PRELOAD_LIBS := $(patsubst tests/tools/preload/%.c,$(BUILD)/tools/%.so,$(PRELOAD_SRCS))

.PHONY: all test test-normal test-san check deps matrix-chroots package-chroot demo bench fuzz install uninstall deb clean
all: $(BUILD)/shmwarden $(BUILD)/torch_shm_manager

$(BUILD)/obj/%.o: src/%.c | $(BUILD)/obj $(BUILD)/gen
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<
# VERSION is compiled in (--version, the metrics' build_info) and written into the .pc:
# rebuild what holds it when it changes, or an old build dir keeps saying the old one.
$(BUILD)/gen/version: FORCE | $(BUILD)/gen
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(BUILD)/obj/main.o $(BUILD)/obj/metrics.o $(BUILD)/shmwarden.pc: $(BUILD)/gen/version

# The schema is embedded verbatim as a C string, so schema/journal.sql stays the one
# source of truth (no hand-copied SQL in C).
# schema/journal-v1.sql and schema/journal-v3.sql are the schemas of releases 0.1.0 and
# 0.2.0, kept so their journals are still checked exactly and reclaimed after an upgrade.
SCHEMA_EMBED = sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/'
$(BUILD)/gen/schema_sql.c: schema/journal.sql schema/journal-v1.sql schema/journal-v3.sql | $(BUILD)/gen
	{ echo '/* generated from schema/journal*.sql by the Makefile: do not edit */'; \
	  echo 'const char journal_schema_sql[] ='; $(SCHEMA_EMBED) schema/journal.sql; \
	  echo ';'; \
	  echo 'const char journal_schema_v1_sql[] ='; $(SCHEMA_EMBED) schema/journal-v1.sql; \
	  echo ';'; \
	  echo 'const char journal_schema_v3_sql[] ='; $(SCHEMA_EMBED) schema/journal-v3.sql; \
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
# Fault-injecting LD_PRELOAD shims: without $(SAN), so that the sanitized binaries can
# preload them too (a sanitized shim would want its runtime first in the library list).
$(BUILD)/tools/%.so: tests/tools/preload/%.c tests/tools/preload/stall_gate.h | $(BUILD)/tools
	$(CC) $(CPPFLAGS) $(CSTD) $(OPT) $(WARN) -fPIC -shared -o $@ $< -ldl
# The journal benchmark builds its journals from the schema the manager embeds.
$(BUILD)/tools/bench_journal: tests/tools/bench_journal.c $(BUILD)/obj/schema_sql.o | $(BUILD)/tools
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# The cache's own hash, so that a test can make names collide (test_hardening.py).
$(BUILD)/tools/regcache_slot: tests/tools/regcache_slot.c $(BUILD)/obj/regcache.o | $(BUILD)/tools
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $^ $(LDFLAGS)

$(BUILD)/obj $(BUILD)/gen $(BUILD)/tests $(BUILD)/tools:
	mkdir -p $@

check: all $(UNIT_BINS) $(TOOL_BINS) $(PRELOAD_LIBS)

deps:
	@scripts/deps.sh test

# The PyTorch matrix's Debian chroots (tests/proc/matrix.py, scripts/chroot.sh): built
# once into /var/cache/shmwarden, or $SHMWARDEN_CHROOT_CACHE (trixie and sid at once;
# ~4 GB, minutes), then only checked (seconds); a package added to the list is installed
# into the cached chroot. An unreachable mirror stops `make test` here, in one sentence.
matrix-chroots:
	@/usr/bin/python3 tests/proc/matrix.py ensure

# The clean bookworm (with PyTorch) that tests/proc/test_package.py installs the packages
# into (through an overlay: the cache stays clean), built here so that its first
# debootstrap does not count against the test's own time limit.
package-chroot:
	@scripts/chroot.sh ensure bookworm python3-torch >/dev/null

# The suite (pytest: pytest.ini, conftest.py) runs against the normal build, then
# again against an ASan+UBSan build. PYTEST_ARGS adds pytest options (-k EXPR, -x...).
# --no-print-directory: pytest's summary ("N passed in S s") stays the last line.
PYTEST ?= /usr/bin/python3 -m pytest
PYTEST_ARGS ?=
# The C style is .clang-format's (clang-format 14, what Debian bookworm ships): `make
# format` applies it, `make test` refuses code that does not follow it.
FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find src include tests -name '*.[ch]')
format:
	clang-format -i $(FORMAT_SRCS)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRCS) || { echo "make: the C code above does not follow .clang-format: run 'make format'" >&2; exit 1; }

test: deps format-check matrix-chroots package-chroot
	$(MAKE) --no-print-directory test-normal
	$(MAKE) --no-print-directory test-san
test-normal: check
	$(PYTEST) --build $(BUILD) $(PYTEST_ARGS)
test-san:
	$(MAKE) --no-print-directory BUILD=build-san OPT='-O1 -g -fno-omit-frame-pointer' \
	    SAN='-fsanitize=address,undefined -fno-sanitize-recover=all' check
	$(PYTEST) --build build-san --sanitized $(PYTEST_ARGS)

demo:
	@scripts/deps.sh demo
	$(MAKE) all
	scripts/demo.sh

# BENCH_ARGS=--quick for a smoke run of a few minutes, BENCH_ARGS=--profile for syscalls
# (strace -c) and instructions (callgrind) per pair; scripts/bench --help for the rest.
# Each run but --profile saves its ratios under $(BUILD)/bench/ (scripts/bench alone saves
# only with --save); `scripts/bench --compare A B...` shows whether later runs agree with
# the first within 10%.
bench:
	@scripts/deps.sh bench
	$(MAKE) all $(BUILD)/tools/bench_loadgen $(BUILD)/tools/bench_floor $(BUILD)/tools/bench_journal
	scripts/bench --build $(BUILD) --save $(BUILD)/bench/$$(date +%Y%m%d-%H%M%S).json $(BENCH_ARGS)

# The man pages, units, cron file and use-with-pytorch.sh are written for /usr/local:
# installed, they name $(PREFIX) (and UNITDIR, TMPFILESDIR, LIBDIR where those are set apart, as
# Debian's /lib/systemd/system and multiarch library directory are).
MANDIR  ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/shmwarden
UNITDIR ?= $(PREFIX)/lib/systemd/system
# systemd-tmpfiles reads /usr/local/lib/tmpfiles.d and /usr/lib/tmpfiles.d (tmpfiles.d(5)).
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
AT_PREFIX = sed -e 's|/usr/local/lib/systemd/system|$(UNITDIR)|g' \
                -e 's|/usr/local/lib/tmpfiles.d|$(TMPFILESDIR)|g' \
                -e 's|/usr/local/lib/|$(LIBDIR)/|g' -e 's|/usr/local/|$(PREFIX)/|g'
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
	    $(DESTDIR)$(DATADIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0755 $(BUILD)/shmwarden $(DESTDIR)$(PREFIX)/bin/shmwarden
	ln -sf shmwarden $(DESTDIR)$(PREFIX)/bin/torch_shm_manager
	$(AT_PREFIX) man/shmwarden.1 > $(DESTDIR)$(MANDIR)/man1/shmwarden.1
	$(AT_PREFIX) man/libshmwarden.3 > $(DESTDIR)$(MANDIR)/man3/libshmwarden.3
	$(AT_PREFIX) scripts/shmwarden.cron > $(DESTDIR)$(DATADIR)/shmwarden.cron
	$(AT_PREFIX) scripts/use-with-pytorch.sh > $(DESTDIR)$(DATADIR)/use-with-pytorch.sh
	$(AT_PREFIX) scripts/slurm-epilog > $(DESTDIR)$(DATADIR)/slurm-epilog
	$(AT_PREFIX) scripts/shmwarden.default > $(DESTDIR)$(DATADIR)/shmwarden.default
	$(AT_PREFIX) scripts/systemd/shmwarden-sweep.service \
	    > $(DESTDIR)$(UNITDIR)/shmwarden-sweep.service
	$(AT_PREFIX) scripts/systemd/shmwarden-sweep.timer > $(DESTDIR)$(UNITDIR)/shmwarden-sweep.timer
	install -m 0644 scripts/shmwarden.tmpfiles $(DESTDIR)$(TMPFILESDIR)/shmwarden.conf
	cd $(DESTDIR)$(MANDIR) && chmod 0644 man1/shmwarden.1 man3/libshmwarden.3
	cd $(DESTDIR)$(UNITDIR) && chmod 0644 shmwarden-sweep.service shmwarden-sweep.timer
	chmod 0644 $(DESTDIR)$(DATADIR)/shmwarden.cron $(DESTDIR)$(DATADIR)/shmwarden.default
	chmod 0755 $(DESTDIR)$(DATADIR)/use-with-pytorch.sh $(DESTDIR)$(DATADIR)/slurm-epilog

# Removes the files `make install` installed (given the same PREFIX, DESTDIR and
# directories), and DATADIR, which is ours alone; the other directories (bin, man1,
# lib...) may hold others' files and stay. What the admin set up from the installed files
# is theirs to undo first (shmwarden(1), INSTALLATION): PyTorch pointed at shmwarden
# (use-with-pytorch.sh uninstall), the timer enabled, the cron file copied.
INSTALLED = $(PREFIX)/bin/shmwarden $(PREFIX)/bin/torch_shm_manager \
            $(MANDIR)/man1/shmwarden.1 $(MANDIR)/man3/libshmwarden.3 \
            $(DATADIR)/shmwarden.cron $(DATADIR)/shmwarden.default \
            $(DATADIR)/use-with-pytorch.sh $(DATADIR)/slurm-epilog \
            $(UNITDIR)/shmwarden-sweep.service $(UNITDIR)/shmwarden-sweep.timer \
            $(TMPFILESDIR)/shmwarden.conf \
            $(INCLUDEDIR)/shmwarden.h $(LIBDIR)/libshmwarden.a $(LIBDIR)/$(LIB_SONAME) \
            $(LIBDIR)/libshmwarden.so $(LIBDIR)/pkgconfig/shmwarden.pc
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	if [ -d $(DESTDIR)$(DATADIR) ]; then rmdir $(DESTDIR)$(DATADIR); fi

# ---- libshmwarden: the client library (include/shmwarden.h), its examples and tests ----
# Its objects are compiled apart: -fvisibility=hidden (only SHMW_API functions leave the
# .so) and the installed manager's path compiled in as the default to spawn.
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
LIB_SONAME   := libshmwarden.so.0
LIB_TARGETS  := $(BUILD)/libshmwarden.a $(BUILD)/$(LIB_SONAME) $(BUILD)/libshmwarden.so \
                $(BUILD)/shmwarden.pc
EXAMPLE_BINS := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
LIB_CFLAGS   := -fvisibility=hidden \
                -DSHMWARDEN_MANAGER_DEFAULT='"$(PREFIX)/bin/torch_shm_manager"'

.PHONY: lib examples install-lib FORCE
all: lib examples
lib: $(LIB_TARGETS)
examples: $(EXAMPLE_BINS)

$(BUILD)/lib/%.o: src/%.c | $(BUILD)/lib
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LIB_CFLAGS) -MMD -MP -c -o $@ $<
# PREFIX is compiled in and written into the .pc: rebuild both when it changes.
$(BUILD)/lib/prefix: FORCE | $(BUILD)/lib
	@echo '$(PREFIX) $(LIBDIR) $(INCLUDEDIR)' | cmp -s - $@ || \
	    echo '$(PREFIX) $(LIBDIR) $(INCLUDEDIR)' > $@
$(BUILD)/lib/client_spawn.o $(BUILD)/shmwarden.pc: $(BUILD)/lib/prefix
# The archive holds one relocatable object whose non-public symbols are made local, so a
# static link cannot clash with a program's own wire_encode (hidden alone does not).
$(BUILD)/libshmwarden.a: $(LIB_OBJS)
	$(CC) -r -nostdlib -o $(BUILD)/lib/libshmwarden-all.o $^
	objcopy --localize-hidden $(BUILD)/lib/libshmwarden-all.o
	rm -f $@ && ar rcs $@ $(BUILD)/lib/libshmwarden-all.o
$(BUILD)/$(LIB_SONAME): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,$(LIB_SONAME) -Wl,-z,defs $(LDFLAGS) -o $@ $^ -lpthread
$(BUILD)/libshmwarden.so: $(BUILD)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $@
$(BUILD)/shmwarden.pc: scripts/shmwarden.pc.in | $(BUILD)/lib
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@
# Examples use only the public header and the shared library, found beside them.
$(BUILD)/examples/%: examples/%.c include/shmwarden.h $(BUILD)/libshmwarden.so \
		| $(BUILD)/examples
	$(CC) -Iinclude $(CFLAGS) -o $@ $< -L$(BUILD) -Wl,-rpath,'$$ORIGIN/..' $(LDFLAGS) \
	    -lshmwarden
# The client's unit test links the static library, as a user would; wrapping getrandom()
# lets it predict names (collision handling).
$(BUILD)/tests/test_client: tests/unit/test_client.c tests/unit/check.h include/shmwarden.h \
		$(BUILD)/libshmwarden.a | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -o $@ $< $(BUILD)/libshmwarden.a $(LDFLAGS) \
	    -Wl,--wrap=getrandom -lpthread
$(BUILD)/lib $(BUILD)/examples:
	mkdir -p $@
check: examples

install: install-lib
install-lib: lib
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0644 include/shmwarden.h $(DESTDIR)$(INCLUDEDIR)/shmwarden.h
	install -m 0644 $(BUILD)/libshmwarden.a $(DESTDIR)$(LIBDIR)/libshmwarden.a
	install -m 0755 $(BUILD)/$(LIB_SONAME) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libshmwarden.so
	install -m 0644 $(BUILD)/shmwarden.pc $(DESTDIR)$(LIBDIR)/pkgconfig/shmwarden.pc
-include $(wildcard $(BUILD)/lib/*.d)

# ---- fuzzing: libFuzzer harnesses in tests/fuzz (SECURITY.md) ----
# `make fuzz` builds each harness with clang and libFuzzer, sanitizers on, and runs it for
# FUZZ_SECONDS with its corpus in $(BUILD)/fuzz/corpus; crashes land in $(BUILD)/fuzz/crashes
# and fail the target. `make check` builds the same harnesses with $(CC) and a plain main
# (tests/fuzz/fuzz_replay.c), so `make test` replays the seed and regression corpora
# without clang.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?=
FUZZ_COMMON  := tests/fuzz/fuzz_util.c
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(filter-out $(FUZZ_COMMON) tests/fuzz/fuzz_replay.c,\
                $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_REPLAY  := $(patsubst fuzz_%,$(BUILD)/tests/test_fuzz_%,$(FUZZ_NAMES))

$(BUILD)/tests/test_fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_replay.c $(FUZZ_COMMON) \
		tests/fuzz/fuzz.h $(CORE_OBJS) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests/fuzz $(CFLAGS) -o $@ $< tests/fuzz/fuzz_replay.c $(FUZZ_COMMON) \
	    $(CORE_OBJS) $(LDFLAGS) $(LDLIBS)
check: $(FUZZ_REPLAY)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_COMMON) tests/fuzz/fuzz.h $(CORE_SRCS) \
		$(BUILD)/gen/schema_sql.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) -Itests/fuzz $(CSTD) -O1 -g $(WARN) \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -o $@ $< \
	    $(FUZZ_COMMON) $(CORE_SRCS) $(BUILD)/gen/schema_sql.c $(LDLIBS)

fuzz:
	@scripts/deps.sh fuzz
	$(MAKE) $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)
	@set -e; for f in $(FUZZ_NAMES); do \
	    mkdir -p $(BUILD)/fuzz/corpus/$$f $(BUILD)/fuzz/crashes; \
	    echo "== $$f: $(FUZZ_SECONDS) s"; \
	    $(BUILD)/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/crashes/$$f- $(FUZZ_FLAGS) \
	        $(BUILD)/fuzz/corpus/$$f tests/fuzz/seeds/$$f \
	        $$(test -d tests/fuzz/regress/$$f && echo tests/fuzz/regress/$$f); \
	done

# ---- the Debian packages (debian/) ----
# dpkg-buildpackage writes the .debs beside the source directory and its clean step
# empties the tree it runs in, so it runs in a copy of this tree under $(BUILD)/deb/, where
# the .debs land. lintian must find no error and no warning (debian/*.lintian-overrides
# say why for each one accepted). DEB_BUILD_OPTIONS=nocheck skips the C unit tests.
DEB_SRC = $(BUILD)/deb/shmwarden-$(VERSION)
deb:
	@scripts/deps.sh deb
	rm -rf $(BUILD)/deb && mkdir -p $(DEB_SRC)
	tar -cf - --exclude-vcs --exclude=./build --exclude='./build-*' --exclude='./$(BUILD)' \
	    --exclude=__pycache__ --exclude=./debian/build . | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b
	lintian --fail-on error,warning --info $(BUILD)/deb/shmwarden_$(VERSION)_*.changes

clean:
	rm -rf build build-san

-include $(wildcard $(BUILD)/obj/*.d)
