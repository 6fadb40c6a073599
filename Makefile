# dealsync - one non-recursive Makefile. `make test` and `make run` are the two commands the README
# shows; both install missing Debian packages first (scripts/install-deps.sh).

PKGS := libmicrohttpd libcurl libpq libcjson libxml-2.0 libcrypto
TEST_PKGS := check

CC ?= cc
BUILD ?= build
Q ?= @
SAN_FLAGS ?=

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Wshadow \
          -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
          -Iinclude $(PKG_CFLAGS) -pthread -MMD -MP $(SAN_FLAGS)
LDFLAGS += -pthread $(SAN_FLAGS)
LDLIBS := $(PKG_LIBS) -lm

SVC_SRCS := $(filter-out service/main.c,$(wildcard service/*.c service/*/*.c))
SVC_OBJS := $(SVC_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o
MIGRATIONS := $(sort $(wildcard migrations/*.sql))
SANDBOX_SRCS := $(wildcard tests/sandbox/*.c)
SANDBOX_OBJS := $(SANDBOX_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
UNIT_HELPERS := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
INTEG_HELPERS := $(filter-out $(INTEG_SRCS),$(wildcard tests/integration/*.c))

BIN := $(BUILD)/dealsync
SANDBOX_BIN := $(BUILD)/dealsync-sandbox
UNIT_BIN := $(BUILD)/test-unit
INTEG_BIN := $(BUILD)/test-integration
CHAOS_SRCS := $(wildcard tests/chaos/*.c)
CHAOS_BIN := $(BUILD)/chaos-driver
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench-%)

.PHONY: all test run asan tsan fuzz format format-check migrate clean deps bench bench-e2e chaos \
        bench-import bench-budget
all: $(BIN) $(if $(SANDBOX_SRCS),$(SANDBOX_BIN)) $(UNIT_BIN) $(INTEG_BIN) $(CHAOS_BIN)

deps:
	@scripts/install-deps.sh

$(BUILD)/gen/migrations.c: $(MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p $(@D)
	scripts/embed-migrations.sh $@ $(MIGRATIONS)

$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libdealsync.a: $(SVC_OBJS)
	@mkdir -p $(@D)
	$(Q)ar rcs $@ $^

$(BIN): $(BUILD)/service/main.o $(BUILD)/libdealsync.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(SANDBOX_BIN): $(SANDBOX_OBJS) $(BUILD)/libdealsync.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Test runners: one Check SRunner per tier. Each tests/<tier>/test_<m>.c defines
# `Suite *suite_<m>(void)`; the list is generated from the file names.
$(BUILD)/tests/unit/suites.h: $(UNIT_SRCS) Makefile
	@mkdir -p $(@D)
	@printf '%s\n' $(patsubst tests/unit/test_%.c,'SUITE(%)',$(UNIT_SRCS)) > $@
$(BUILD)/tests/integration/suites.h: $(INTEG_SRCS) Makefile
	@mkdir -p $(@D)
	@printf '%s\n' $(patsubst tests/integration/test_%.c,'SUITE(%)',$(INTEG_SRCS)) > $@

$(BUILD)/tests/unit/runner.o: tests/runner.c $(BUILD)/tests/unit/suites.h
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -Itests -DSUITES_H='"$(abspath $(BUILD)/tests/unit/suites.h)"' -c -o $@ $<
$(BUILD)/tests/integration/runner.o: tests/runner.c $(BUILD)/tests/integration/suites.h
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -Itests -DSUITES_H='"$(abspath $(BUILD)/tests/integration/suites.h)"' -c -o $@ $<

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -Itests -c -o $@ $<

$(UNIT_BIN): $(BUILD)/tests/unit/runner.o $(UNIT_SRCS:%.c=$(BUILD)/%.o) \
              $(UNIT_HELPERS:%.c=$(BUILD)/%.o) $(BUILD)/libdealsync.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

$(INTEG_BIN): $(BUILD)/tests/integration/runner.o $(INTEG_SRCS:%.c=$(BUILD)/%.o) \
              $(INTEG_HELPERS:%.c=$(BUILD)/%.o) $(BUILD)/libdealsync.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# The chaos run's driver and checker (scripts/chaos.sh, docs/chaos.md).
$(CHAOS_BIN): $(CHAOS_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libdealsync.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench-%: bench/%.c $(BUILD)/libdealsync.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

test: deps
	@$(MAKE) --no-print-directory all
	@scripts/test.sh

run: deps
	@$(MAKE) --no-print-directory $(BIN) $(if $(SANDBOX_SRCS),$(SANDBOX_BIN))
	@scripts/run.sh

migrate: $(BIN)
	$(BIN) migrate

# Convergence under chaos: CHAOS_CHANGES (10000), CHAOS_SECONDS, CHAOS_SEED; see docs/chaos.md.
chaos: deps
	@$(MAKE) --no-print-directory $(BIN) $(SANDBOX_BIN) $(CHAOS_BIN)
	@scripts/chaos.sh

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BINS)
	@scripts/bench.sh

# End to end under a stream of edits with API latency (issues 13 and 14); see docs/benchmarks.md.
bench-e2e: deps
	@$(MAKE) --no-print-directory all $(BENCH_BINS)
	@scripts/bench-e2e.sh

# Issue 9's burst against the sandbox at default limits (minutes; see docs/api-budget.md).
bench-budget: deps
	@$(MAKE) --no-print-directory all
	@bench/budget.sh

# What `dealsync import` costs in API calls per record (N=200 by default; N=10000 is the issue's).
bench-import: deps
	@$(MAKE) --no-print-directory $(BIN) $(SANDBOX_BIN)
	@bench/import.sh

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer (float-cast-overflow
# included: a double that does not fit its integer), any finding fatal.
ASAN_SAN_FLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
                  -fno-omit-frame-pointer
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN_FLAGS="$(ASAN_SAN_FLAGS)" all
	@BUILD=build-asan SANITIZER_REPORTS=1 scripts/test.sh

# libFuzzer targets (tests/fuzz/fuzz_<name>.c), built with clang into build-fuzz/ and run for
# FUZZ_SECONDS each from seeds made from tests/fixtures (scripts/fuzz.sh); FUZZ_TARGETS picks
# some. Corpora and crashes stay in build-fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS ?= $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_SAN_FLAGS := -fsanitize=fuzzer-no-link,address,undefined,float-cast-overflow \
                  -fno-sanitize-recover=all -fno-omit-frame-pointer
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang SAN_FLAGS="$(FUZZ_SAN_FLAGS)" \
	  $(FUZZ_TARGETS:%=build-fuzz/fuzz-%)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_TARGETS)

$(BUILD)/fuzz-%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/libdealsync.a
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan SAN_FLAGS="-fsanitize=thread" all
	@BUILD=build-tsan scripts/test.sh

FORMAT_FILES := $(wildcard service/*.c service/*/*.c include/*.h tests/*.c tests/*/*.c tests/*/*.h bench/*.c)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
