# orbt: the Lua client for the Orbt partner API.
#
#   make            build the module (build/lua5.4/orbt.so) and orbt-mock (build/orbt-mock)
#   make test       build and run every spec against a real orbt-mock, once per
#                   runtime: Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT 2.1 (with nginx)
#   make demo       run examples/quickstart.lua against orbt-mock
#   make valgrind   run a create/list/walk workload (spec/leak_workload.lua) under valgrind
#   make lint       cppcheck, clang-tidy and luacheck
#   make embed      build examples/embed: a C host program with orbt linked statically
#   make threads    build examples/embed/threads.c: a host with one lua_State per thread
#   make tsan       the same host with orbt built with ThreadSanitizer (build/tsan)
#   make bench      orbt against libcurl, hand-written Lua, the CLI tools and wrk (bench/)
#   make soak       1,000,000 calls through one client; RSS and open fds must stay flat
#   make fuzz       libFuzzer targets (fuzz/), FUZZ_SECONDS each (default 60)
#   make compare    orbt's JSON decoder and HTTP/1.1 reader against cJSON, lua-cjson,
#                   dkjson and the curl tool on the same inputs (bench/compare*)
#   make dist       the release tarball build/dist/orbt-VERSION.tar.gz, from git HEAD
#   make distcheck  make dist, then make test in the tarball unpacked on its own
#   make deb        Debian packages lua-orbt and orbt-tools (build/deb/), checked by lintian
#   make install-check  install the .debs, use them from every runtime, nginx and PATH,
#                   remove them and check nothing is left (as root; CI runs it)
#
# `make test SANITIZE=1` builds everything with AddressSanitizer and UBSan
# (in build/sanitize) and runs the specs with it. `make test RUNTIMES=luajit`
# runs one runtime; `make RUNTIME=lua5.1` builds for one. Missing Debian
# packages are installed when run as root; otherwise the apt-get line is printed.

# The version, read from src/version.h (the one place it is written).
VERSION     := $(shell sed -n 's/^\#define ORBT_VERSION "\(.*\)"$$/\1/p' src/version.h)
ifeq ($(VERSION),)
$(error cannot read ORBT_VERSION from src/version.h)
endif

RUNTIMES    ?= lua5.1 lua5.2 lua5.3 lua5.4 luajit
RUNTIME     ?= lua5.4
CC          ?= cc
BUSTED      ?= /usr/bin/busted

# Each runtime's interpreter, pkg-config name and Debian packages.
# luajit2 is the LuaJIT that Debian's nginx Lua module is built with.
LUA_lua5.1  := lua5.1
LUA_lua5.2  := lua5.2
LUA_lua5.3  := lua5.3
LUA_lua5.4  := lua5.4
LUA_luajit  := luajit
DEBS_lua5.1 := lua5.1 liblua5.1-0-dev
DEBS_lua5.2 := lua5.2 liblua5.2-dev
DEBS_lua5.3 := lua5.3 liblua5.3-dev
DEBS_lua5.4 := lua5.4 liblua5.4-dev
DEBS_luajit := luajit2 libluajit2-5.1-dev
LUA         := $(LUA_$(RUNTIME))
LUA_PC      := $(LUA_$(RUNTIME))
ifeq ($(LUA),)
$(error unknown RUNTIME '$(RUNTIME)'; known: lua5.1 lua5.2 lua5.3 lua5.4 luajit)
endif

# The module's libraries. cJSON is orbt-mock's (and the benchmark's C loop's);
# the module reads JSON with its own single-pass decoder (src/json.c).
PKGS        := libcurl openssl
WARNINGS    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2
# OpenSSL's current API only: deprecated calls do not even get declared.
OPENSSL_API := -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARNINGS) $(OPENSSL_API)

ifeq ($(SANITIZE),1)
TOP         := build/sanitize
SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The interpreter is not instrumented, so the sanitizer runtimes are preloaded.
# Specs that start another Lua process hand it ORBT_LUA_PRELOAD.
PRELOAD     := $(shell $(CC) -print-file-name=libasan.so) $(shell $(CC) -print-file-name=libubsan.so)
RUN_ENV     := LD_PRELOAD="$(PRELOAD)" ORBT_LUA_PRELOAD="$(PRELOAD)" \
               ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
else
TOP         := build
SAN_FLAGS   :=
RUN_ENV     :=
endif

# One module per runtime; orbt-mock is shared.
BUILD       := $(TOP)/$(RUNTIME)
MODULE      := $(BUILD)/orbt.so
LIBORBT     := $(BUILD)/liborbt.a
EMBED       := $(BUILD)/orbt-embed
MOCK        := $(TOP)/orbt-mock
SRC         := $(wildcard src/*.c)
OBJ         := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRC))
MOCK_SRC    := $(wildcard mock/*.c)

# Debian packages each target needs. The orbt command (bin/orbt) runs on
# Lua 5.4 with lua-argparse and lua-luv (Debian 12's lua-posix has no 5.4 build).
CLI_DEBS    := lua5.4 lua-argparse lua-luv
# ca-certificates: calls to Orbt are HTTPS, verified against the system's CAs.
BUILD_DEBS  := gcc make pkg-config $(DEBS_$(RUNTIME)) libcurl4-openssl-dev libcjson-dev \
               libssl-dev libmicrohttpd-dev ca-certificates
TEST_DEBS   := $(BUILD_DEBS) $(foreach r,$(RUNTIMES),$(DEBS_$(r))) lua-busted lua-dkjson luarocks lua-socket \
               liblua5.4-dev libtsan2 clang curl openssl ca-certificates locales nginx libnginx-mod-http-lua tinyproxy dante-server \
               $(CLI_DEBS) python3 bsdutils
LINT_DEBS   := $(BUILD_DEBS) cppcheck clang clang-tidy lua-check
VG_DEBS     := $(BUILD_DEBS) valgrind curl tinyproxy

# The specs find their module, pure-Lua layer and mock here.
SPEC_ENV    := ORBT_BUILD=$(abspath $(BUILD)) ORBT_MOCK=$(abspath $(MOCK)) LUA=$(LUA) \
               ORBT_RUNTIME=$(RUNTIME) ORBT_MAKE_ARGS="RUNTIME=$(RUNTIME) SANITIZE=$(SANITIZE)" \
               LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/spec/?.lua;;" \
               LUA_CPATH="$(abspath $(BUILD))/?.so;;"

.PHONY: all test spec demo embed threads tsan valgrind lint clean deps-build deps-test deps-lint deps-valgrind

all: deps-build $(MODULE) $(MOCK) $(TOP)/orbt

# build/orbt: bin/orbt on this checkout's Lua 5.4 module and Lua layer. It
# finds them from its own real path, so it works through symlinks and after
# the checkout moves.
CLI_UP      := $(subst $(eval) ,/,$(patsubst %,..,$(subst /, ,$(TOP))))

$(TOP)/orbt: bin/orbt Makefile | $(TOP)
	$(call ensure_debs,$(CLI_DEBS))
	printf '%s\n' '#!/bin/sh' '# Generated by make: bin/orbt on this checkout (make builds lua5.4/orbt.so here).' \
	  'here=$$(dirname "$$(readlink -f "$$0")"); root=$$here/$(CLI_UP)' \
	  'LUA_PATH="$$root/lua/?.lua;;" LUA_CPATH="$$here/lua5.4/?.so;;" exec lua5.4 "$$root/bin/orbt" "$$@"' >$@
	chmod +x $@

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -fPIC -fvisibility=hidden \
	  $$(pkg-config --cflags $(LUA_PC) $(PKGS)) -c $< -o $@

# The interpreter provides the Lua symbols, so the module does not link liblua.
$(MODULE): $(OBJ)
	$(CC) -shared $(SAN_FLAGS) -o $@ $(OBJ) $$(pkg-config --libs $(PKGS))

# For hosts that embed Lua: the same objects in a static library, and the
# example host program linked with it. The objects are linked into one
# first, and every symbol they did not export (-fvisibility=hidden) is made
# local to it: a host sees luaopen_orbt and nothing else.
$(LIBORBT): $(OBJ)
	rm -f $@ $(BUILD)/liborbt.o
	$(CC) -r -nostdlib -o $(BUILD)/liborbt.o $(OBJ)
	objcopy --localize-hidden $(BUILD)/liborbt.o
	ar rcs $@ $(BUILD)/liborbt.o

$(EMBED): examples/embed/host.c $(LIBORBT)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) $$(pkg-config --cflags $(LUA_PC)) $< $(LIBORBT) \
	  $$(pkg-config --libs $(LUA_PC) $(PKGS)) -lm -ldl -o $@

embed: deps-build $(EMBED)

# examples/embed/threads.c: a host with one lua_State per thread, orbt linked in.
THREADS_HOST := $(BUILD)/orbt-threads

$(THREADS_HOST): examples/embed/threads.c $(LIBORBT)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) $$(pkg-config --cflags $(LUA_PC)) $< $(LIBORBT) \
	  $$(pkg-config --libs $(LUA_PC) $(PKGS)) -lm -ldl -lpthread -o $@

threads: deps-build $(THREADS_HOST)

# The same host with orbt's sources built with ThreadSanitizer, on Lua 5.4
# (build/tsan; it cannot share objects with the AddressSanitizer build):
# spec/threads_spec.lua runs it with 8 threads opening orbt at once.
TSAN_HOST   := build/tsan/orbt-threads

$(TSAN_HOST): examples/embed/threads.c $(SRC) $(wildcard src/*.h)
	mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -fsanitize=thread -fno-omit-frame-pointer -Isrc \
	  $$(pkg-config --cflags lua5.4 $(PKGS)) examples/embed/threads.c $(SRC) \
	  $$(pkg-config --libs lua5.4 $(PKGS)) -lm -ldl -lpthread -o $@

tsan: deps-build $(TSAN_HOST)

# CPPFLAGS, CFLAGS and LDFLAGS are the packager's (debian/rules passes
# dpkg-buildflags' hardening flags); empty otherwise.
$(MOCK): $(MOCK_SRC) $(wildcard mock/*.h) src/version.h | $(BUILD)
	$(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(SAN_FLAGS) $(MOCK_SRC) \
	  $$(pkg-config --cflags --libs libmicrohttpd libcjson openssl) -lpthread -lm $(LDFLAGS) -o $@

$(BUILD) $(BUILD)/obj:
	mkdir -p $@

# One spec run per runtime. The nginx specs need LuaJIT (nginx embeds it).
test: deps-test
	@for r in $(RUNTIMES); do \
	  echo "== specs on $$r"; \
	  $(MAKE) --no-print-directory spec RUNTIME=$$r || exit 1; \
	done

spec: $(MODULE) $(MOCK)
	$(SPEC_ENV) $(RUN_ENV) $(LUA) $(BUSTED) --output=utfTerminal \
	  $(if $(filter luajit,$(RUNTIME)),,--exclude-tags=nginx) spec

demo: deps-build $(MODULE) $(MOCK)
	$(SPEC_ENV) sh examples/run-with-mock.sh $(LUA) examples/quickstart.lua

valgrind: deps-valgrind $(MODULE) $(MOCK)
	$(SPEC_ENV) sh examples/run-with-mock.sh \
	  valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
	  --errors-for-leak-kinds=definite,indirect --error-exitcode=3 \
	  $(LUA) spec/leak_workload.lua
	@echo "valgrind: no errors and no leaks"

# Every C file builds warning-free with gcc and with clang, against
# OpenSSL's current API (OPENSSL_API in BASE_CFLAGS), and none may switch
# the deprecation warnings off.
lint: deps-lint
	@if grep -n 'OPENSSL_SUPPRESS_DEPRECATED' src/*.[ch] mock/*.[ch] bench/*.c examples/embed/*.c; then \
	  echo "lint: deprecated OpenSSL calls must not be allowed back in"; exit 1; \
	fi
	@set -e; for cc in gcc clang; do \
	  echo "lint: $$cc -fsyntax-only"; \
	  $$cc -fsyntax-only $(BASE_CFLAGS) $$(pkg-config --cflags $(LUA_PC) $(PKGS)) $(SRC); \
	  $$cc -fsyntax-only $(BASE_CFLAGS) $$(pkg-config --cflags libmicrohttpd libcjson openssl) $(MOCK_SRC); \
	  $$cc -fsyntax-only $(BASE_CFLAGS) -Isrc $$(pkg-config --cflags $(LUA_PC) libcurl libcjson openssl) bench/*.c; \
	done
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --std=c11 -D_GNU_SOURCE src mock
	clang-tidy --quiet $(SRC) $(MOCK_SRC) -- $(BASE_CFLAGS) \
	  $$(pkg-config --cflags $(LUA_PC) $(PKGS) libmicrohttpd)
	luacheck --quiet lua spec examples bench bin debian/smoke.lua

# libFuzzer targets (fuzz/*_fuzz.c) for JSON -> Lua and for answer handling,
# built with clang into build/fuzz/ and run one after the other for
# FUZZ_SECONDS each, on a scratch copy of the seed corpus (fuzz/corpus/ stays
# as committed). A crash, leak, sanitizer report or timeout fails the run and
# leaves the input in build/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_CC     ?= clang
FUZZ_DIR    := build/fuzz
FUZZ_DEBS   := clang libclang-rt-14-dev make pkg-config liblua5.4-dev libcjson-dev libcurl4-openssl-dev libssl-dev
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g $(WARNINGS) -Isrc -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_LIBS   := $$(pkg-config --libs $(LUA_PC) libcjson) -lm -lpthread

.PHONY: fuzz deps-fuzz

fuzz: deps-fuzz $(FUZZ_DIR)/json_fuzz $(FUZZ_DIR)/answer_fuzz $(FUZZ_DIR)/http1_fuzz
	@set -e; for t in json answer http1; do \
	  dict=fuzz/json.dict; [ ! -f fuzz/$$t.dict ] || dict=fuzz/$$t.dict; \
	  rm -rf $(FUZZ_DIR)/corpus/$$t; mkdir -p $(FUZZ_DIR)/corpus; \
	  cp -R fuzz/corpus/$$t $(FUZZ_DIR)/corpus/$$t; \
	  echo "fuzz: $${t}_fuzz for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_DIR)/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 \
	    -dict=$$dict -artifact_prefix=$(FUZZ_DIR)/$$t- -print_final_stats=1 \
	    $(FUZZ_DIR)/corpus/$$t; \
	  echo "fuzz: $${t}_fuzz ran $(FUZZ_SECONDS) s without a crash"; \
	done

$(FUZZ_DIR)/json_fuzz: fuzz/json_fuzz.c src/json.c src/buffer.c $(wildcard src/*.h)
	mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $$(pkg-config --cflags $(LUA_PC) libcjson) \
	  fuzz/json_fuzz.c src/json.c src/buffer.c $(FUZZ_LIBS) -o $@

# Answer handling reads the operation rows, which name their validators;
# retry.c reads Retry-After dates with libcurl's curl_getdate(); the
# validators know http1.c's request-id headers.
ANSWER_FUZZ_SRC := fuzz/answer_fuzz.c src/answer.c src/json.c src/error.c src/buffer.c src/retry.c src/http1.c \
                   src/operations.c src/validate.c src/url.c

$(FUZZ_DIR)/answer_fuzz: $(ANSWER_FUZZ_SRC) $(wildcard src/*.h)
	mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $$(pkg-config --cflags $(LUA_PC) libcurl) $(ANSWER_FUZZ_SRC) $(FUZZ_LIBS) \
	  $$(pkg-config --libs libcurl openssl) -o $@

$(FUZZ_DIR)/http1_fuzz: fuzz/http1_fuzz.c src/http1.c src/buffer.c src/http1.h src/buffer.h src/ascii.h
	mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) fuzz/http1_fuzz.c src/http1.c src/buffer.c $$(pkg-config --libs openssl) -o $@

deps-fuzz:
	$(call ensure_debs,$(FUZZ_DEBS))

clean:
	rm -rf build

# ===== make soak =====
# bench/soak.lua: SOAK_CALLS calls (default 1,000,000) with injected faults;
# fails when RSS grows by 1 MiB or more after the warm-up, or a descriptor leaks.
SOAK_CALLS ?= 1000000

.PHONY: soak

soak: deps-test $(MODULE) $(MOCK)
	$(SPEC_ENV) SOAK_CALLS=$(SOAK_CALLS) SOAK_OUT=$(abspath $(TOP))/soak.md $(LUA) bench/soak.lua

# ===== make bench =====
# bench/run.lua starts nginx (canned answers) and orbt-mock on free loopback
# ports, runs every alternative in interleaved rounds and prints one markdown
# table, also written to build/bench/results.md. BENCH_QUICK=1 is a smoke
# run; bench/run.lua lists the other settings. The nginx-at-scale part runs
# orbt inside Debian's nginx, so it needs the LuaJIT build of the module too.
# BENCH_PARTS=hooks runs only the hooks part: empty on_request and
# on_response hooks against none, CPU per request (target: at most 1.03x).
BENCH_DEBS  := $(BUILD_DEBS) $(DEBS_luajit) lua-socket lua-luaossl lua-cjson lua-sec wrk nginx \
               libnginx-mod-http-lua curl openssl jq time strace
BENCH_BINS  := build/bench/curl_loop build/bench/sign_c

.PHONY: bench deps-bench bench-luajit

bench: deps-bench $(MODULE) $(MOCK) $(BENCH_BINS) bench-luajit
	ORBT_BUILD=$(abspath $(BUILD)) ORBT_MOCK=$(abspath $(MOCK)) BENCH_BIN=$(abspath build/bench) LUA=$(LUA) \
	  ORBT_NGINX_BUILD=$(abspath $(TOP)/luajit) ORBT_LUA_DIR=$(CURDIR)/lua \
	  BENCH_OUT=$(abspath build/bench/results.md) \
	  LUA_PATH="$(CURDIR)/bench/?.lua;$(CURDIR)/spec/?.lua;$(CURDIR)/lua/?.lua;;" LUA_CPATH="$(abspath $(BUILD))/?.so;;" \
	  $(LUA) bench/run.lua

# orbt.so for the LuaJIT that Debian's nginx embeds (make RUNTIME=luajit).
bench-luajit: deps-bench
	$(MAKE) --no-print-directory RUNTIME=luajit $(TOP)/luajit/orbt.so

build/bench:
	mkdir -p $@

build/bench/curl_loop: bench/curl_loop.c | build/bench
	$(CC) $(BASE_CFLAGS) $< $$(pkg-config --cflags --libs libcurl libcjson openssl) -o $@

build/bench/sign_c: bench/sign_c.c | build/bench
	$(CC) $(BASE_CFLAGS) $< $$(pkg-config --cflags --libs openssl) -o $@

deps-bench:
	$(call ensure_debs,$(BENCH_DEBS))

# ===== make compare =====
# bench/compare.lua: orbt's JSON decoder (src/json.c) against cJSON, lua-cjson
# and dkjson on one case set (bench/compare_json_cases.lua), and orbt's
# HTTP/1.1 reader (src/http1.c) against the curl tool on exact server bytes
# over a loopback socket (bench/compare_http.lua). Prints markdown tables, also
# written to build/compare/results.md. Runs on Lua 5.4, in well under a minute.
COMPARE_DEBS := $(BUILD_DEBS) $(DEBS_lua5.4) lua-cjson lua-dkjson lua-socket curl gzip

.PHONY: compare deps-compare

compare: deps-compare build/compare/compare_json
	$(MAKE) --no-print-directory RUNTIME=lua5.4 SANITIZE= build/lua5.4/orbt.so
	COMPARE_BIN=build/compare/compare_json COMPARE_OUT=build/compare/results.md \
	  LUA_PATH="$(CURDIR)/bench/?.lua;$(CURDIR)/spec/?.lua;$(CURDIR)/lua/?.lua;;" \
	  LUA_CPATH="$(abspath build/lua5.4)/?.so;;" lua5.4 bench/compare.lua

# orbt's decoder and cJSON in one C program, on the same bytes.
build/compare/compare_json: bench/compare_json.c src/json.c src/buffer.c $(wildcard src/*.h)
	mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -Isrc $$(pkg-config --cflags lua5.4 libcjson) bench/compare_json.c src/json.c \
	  src/buffer.c $$(pkg-config --libs lua5.4 libcjson) -lm -lpthread -o $@

deps-compare:
	$(call ensure_debs,$(COMPARE_DEBS))

# Installs what a target needs when run as root, else prints the apt-get line.
define ensure_debs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing Debian packages; run as root:"; echo "  apt-get install$$missing"; exit 1; \
	  fi; \
	fi
endef

deps-build:
	$(call ensure_debs,$(BUILD_DEBS))
deps-test:
	$(call ensure_debs,$(TEST_DEBS))
deps-lint:
	$(call ensure_debs,$(LINT_DEBS))
deps-valgrind:
	$(call ensure_debs,$(VG_DEBS))

# ===== make dist =====
# build/dist/orbt-VERSION.tar.gz: `git archive` of HEAD under orbt-VERSION/,
# compressed with gzip -n (no name or time in its header), so one commit
# always gives the same bytes. It holds what git tracks, less what
# .gitattributes marks export-ignore: .ci/ (CI runs from a clone) and most
# of the fuzz seed corpora, of which a few small seeds per target stay,
# enough for `make fuzz` to start (libFuzzer grows the corpus from them).
# Build output is never tracked, so none is in it. It refuses to run when
# tracked files have uncommitted changes: the tarball would not be the tree.
#
# make distcheck unpacks the tarball into a fresh temporary directory, checks
# that it holds no build output, runs `make test` there (not a git checkout;
# ORBT_DIST_TARBALL tells spec/packaging_spec.lua which tarball to install
# with the release rockspec) and removes the directory when all passed.
DIST_DIR     := build/dist
DIST_NAME    := orbt-$(VERSION)
DIST_TARBALL := $(DIST_DIR)/$(DIST_NAME).tar.gz
DIST_DEBS    := git tar gzip

.PHONY: dist distcheck deps-dist

dist: deps-dist
	@top=$$(git rev-parse --show-toplevel) && [ "$$top" -ef . ] || { \
	  echo "make dist: $(CURDIR) is not a git checkout's top directory; the tarball is made from git"; exit 1; }
	@changed=$$(git status --porcelain --untracked-files=no); if [ -n "$$changed" ]; then \
	  echo "make dist: tracked files have uncommitted changes, which the tarball (HEAD) would not hold:"; \
	  echo "$$changed"; echo "make dist: commit or stash them first"; exit 1; \
	fi
	@mkdir -p $(DIST_DIR)
	@git archive --format=tar --prefix=$(DIST_NAME)/ HEAD | gzip -n -9 >$(DIST_TARBALL).tmp
	@mv $(DIST_TARBALL).tmp $(DIST_TARBALL)
	@echo "make dist: $(DIST_TARBALL) ($$(git rev-parse --short HEAD)): $$(stat -c %s $(DIST_TARBALL)) bytes," \
	  "$$(tar -tzf $(DIST_TARBALL) | grep -vc '/$$') files"

distcheck: dist
	@set -e; tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/orbt-distcheck.XXXXXX"); \
	tar -xzf $(DIST_TARBALL) -C "$$tmp"; \
	tree="$$tmp/$(DIST_NAME)"; \
	if [ "$$(ls -A "$$tmp")" != "$(DIST_NAME)" ]; then \
	  echo "make distcheck: the tarball does not unpack into $(DIST_NAME)/ alone"; exit 1; \
	fi; \
	built=$$(cd "$$tree" && find . -name build -o -name '*.o' -o -name '*.so' -o -name '*.a' \
	  -o -name orbt-mock -type f -o -name luarocks-tree); \
	if [ -n "$$built" ]; then echo "make distcheck: build output in the tarball:"; echo "$$built"; exit 1; fi; \
	echo "make distcheck: make test in $$tree"; \
	if ORBT_DIST_TARBALL=$(abspath $(DIST_TARBALL)) $(MAKE) --no-print-directory -C "$$tree" test; then \
	  rm -rf "$$tmp"; echo "make distcheck: $(DIST_TARBALL) builds and passes make test, unpacked on its own"; \
	else \
	  echo "make distcheck: make test failed in the unpacked tarball; it stays in $$tree"; exit 1; \
	fi

deps-dist:
	$(call ensure_debs,$(DIST_DEBS))

# ===== make deb, make install-check =====
# make deb: Debian packages from the release tarball (make dist), built by
# dh-lua and debhelper (debian/) into build/deb/: lua-orbt (the module for
# Lua 5.1-5.4, whose 5.1 build LuaJIT and nginx's Lua module load, and the
# pure-Lua files), orbt-tools (orbt and orbt-mock, with man pages), their
# -dbgsym packages and the source package. lintian must find no errors.
# The whole build log is build/deb/build.log.
#
# make install-check (as root): debian/install-check installs build/deb's
# .debs with apt-get, runs orbt from Lua 5.1-5.4, LuaJIT, nginx and PATH
# with nothing from the checkout, and purges them, checking nothing is
# left. It runs make deb first unless build/deb holds the packages of the
# commit checked out now (build/deb/commit).
DEB_DIR      := build/deb
# debian/control's Build-Depends, and build-essential, which dpkg-buildpackage
# always requires.
DEB_DEBS     := build-essential dpkg-dev debhelper dh-lua fakeroot help2man lintian pkgconf libcjson-dev \
                libcurl4-openssl-dev libluajit2-5.1-dev luajit2 libmicrohttpd-dev libssl-dev lua-argparse lua-luv
INSTALL_CHECK_DEBS := lua5.1 lua5.2 lua5.3 lua5.4 luajit2 nginx libnginx-mod-http-lua curl python3

.PHONY: deb install-check deps-deb deps-install-check

deb: deps-deb dist
	@rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	@cp $(DIST_TARBALL) $(DEB_DIR)/orbt_$(VERSION).orig.tar.gz
	@tar -xzf $(DEB_DIR)/orbt_$(VERSION).orig.tar.gz -C $(DEB_DIR)
	@echo "make deb: dpkg-buildpackage -us -uc in $(DEB_DIR)/$(DIST_NAME) (log: $(DEB_DIR)/build.log)"
	@cd $(DEB_DIR)/$(DIST_NAME) && dpkg-buildpackage -us -uc >../build.log 2>&1 \
	  || { tail -40 ../build.log; echo "make deb: dpkg-buildpackage failed; see $(DEB_DIR)/build.log"; exit 1; }
	@grep -E '^orbt .*: loads, signs, refuses$$' $(DEB_DIR)/build.log | sort | uniq -c
	@rm -rf $(DEB_DIR)/$(DIST_NAME)
	@git rev-parse HEAD >$(DEB_DIR)/commit
	@cd $(DEB_DIR) && for f in *.deb *.dsc; do printf '%-44s %8d bytes\n' "$$f" "$$(stat -c %s "$$f")"; done
	@echo "lintian $(DEB_DIR)/orbt_$(VERSION)-*.changes:"
	@rc=0; out=$$(lintian --fail-on error $(DEB_DIR)/orbt_$(VERSION)-*.changes 2>&1) || rc=$$?; \
	  printf '%s\n' "$$out" | grep -v 'root privileges' || true; \
	  if [ $$rc != 0 ]; then echo "make deb: lintian reports errors"; exit 1; fi
	@echo "make deb: lintian finds no errors"

install-check: deps-install-check
	@[ "$$(cat $(DEB_DIR)/commit 2>/dev/null)" = "$$(git rev-parse HEAD)" ] \
	  || $(MAKE) --no-print-directory deb
	debian/install-check $(DEB_DIR) $(VERSION)

deps-deb:
	$(call ensure_debs,$(DEB_DEBS))
deps-install-check:
	$(call ensure_debs,$(INSTALL_CHECK_DEBS))
