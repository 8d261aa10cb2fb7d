# loadshed build. `make` builds the dataplane objects, the skeleton and the
# CLI; `make test` installs the dependencies and runs every test.
#
# Layout of build/:
#   build/bpf/        BPF objects and the generated skeleton
#   build/            the release CLI (build/loadshed) and tools
#   build/san/        the same sources built with ASan+UBSan, used by tests

CLANG    ?= clang
CC       ?= cc
BPFTOOL  ?= bpftool
TRIPLET  := $(shell $(CC) -dumpmachine)
ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

BUILD    := build
SAN      := $(BUILD)/san

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Werror \
	-Wno-unused-parameter -Iinclude -Ibpf -I/usr/include/$(TRIPLET)

PKGS     := libbpf inih json-c
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers \
	-Iinclude -Iuser -I$(BUILD)/bpf $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lelf -lz -lm
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CMOCKA   := $(shell pkg-config --cflags --libs cmocka)

# The dataplane: one object linked from one file per hook plus the maps.
BPF_PARTS := bpf/maps.bpf.c bpf/xdp_ingress.bpf.c bpf/tc_egress.bpf.c
BPF_HDRS  := $(wildcard bpf/*.h) include/loadshed.h
# Stand-alone objects: benchmark references and a peer XDP_PASS for veth.
BPF_EXTRA := $(filter-out $(BPF_PARTS),$(wildcard bpf/*.bpf.c))

USER_SRCS := $(wildcard user/*.c)
USER_HDRS := $(wildcard user/*.h) include/loadshed.h $(BUILD)/bpf/loadshed.skel.h
LIB_SRCS  := $(filter-out user/main.c,$(USER_SRCS))

TOOL_LIB  := $(wildcard tests/tools/lib/*.c)
TOOLS     := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c))
UNIT      := $(patsubst tests/unit/%.c,$(SAN)/tests/%,$(wildcard tests/unit/test_*.c))
BPFTESTS  := $(patsubst tests/bpf/%.c,$(SAN)/tests/%,$(wildcard tests/bpf/test_*.c))
BENCHES   := $(patsubst tests/bpf/%.c,$(BUILD)/tests/%,$(wildcard tests/bpf/bench_*.c))
BPF_TLIB  := $(wildcard tests/bpf/lib/*.c)
BPF_THDRS := $(wildcard tests/bpf/lib/*.h)
# The benchmarks use the harness and the frames, not the cmocka fixtures.
BENCH_TLIB := tests/bpf/lib/harness.c tests/bpf/lib/pkt.c

.PHONY: all test tests bench bench-bpf demo clean format check-format install-deps
all: $(BUILD)/loadshed $(SAN)/loadshed $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_EXTRA)) $(TOOLS)

tests: all $(UNIT) $(BPFTESTS) $(BENCHES)

$(BUILD)/bpf/%.part.o: bpf/%.bpf.c $(BPF_HDRS) | $(BUILD)/bpf
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/loadshed.bpf.o: $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.part.o,$(BPF_PARTS))
	$(BPFTOOL) gen object $@ $^

$(BUILD)/bpf/loadshed.skel.h: $(BUILD)/bpf/loadshed.bpf.o
	$(BPFTOOL) gen skeleton $< name loadshed_bpf > $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) | $(BUILD)/bpf
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst .,_,$*)_bpf > $@

$(BUILD)/obj/%.o: user/%.c $(USER_HDRS) | $(BUILD)/obj
	$(CC) $(CFLAGS) -c $< -o $@

$(SAN)/obj/%.o: user/%.c $(USER_HDRS) | $(SAN)/obj
	$(CC) $(CFLAGS) $(SANFLAGS) -c $< -o $@

$(BUILD)/loadshed: $(patsubst user/%.c,$(BUILD)/obj/%.o,$(USER_SRCS))
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(SAN)/loadshed: $(patsubst user/%.c,$(SAN)/obj/%.o,$(USER_SRCS))
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

SAN_LIB := $(patsubst user/%.c,$(SAN)/obj/%.o,$(LIB_SRCS))

$(SAN)/tests/test_%: tests/unit/test_%.c $(SAN_LIB) $(USER_HDRS) | $(SAN)/tests
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $< $(SAN_LIB) $(CMOCKA) $(LDLIBS)

$(SAN)/tests/test_%: tests/bpf/test_%.c $(BPF_TLIB) $(BPF_THDRS) $(SAN_LIB) $(USER_HDRS) $(BUILD)/bpf/bench_ref.skel.h | $(SAN)/tests
	$(CC) $(CFLAGS) $(SANFLAGS) -Itests/bpf -o $@ $< $(BPF_TLIB) $(SAN_LIB) $(CMOCKA) $(LDLIBS)

$(BUILD)/tests/bench_%: tests/bpf/bench_%.c $(BENCH_TLIB) $(patsubst user/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(USER_HDRS) $(BUILD)/bpf/bench_ref.skel.h | $(BUILD)/tests
	$(CC) $(CFLAGS) -Itests/bpf -o $@ $< $(BENCH_TLIB) $(patsubst user/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c $(TOOL_LIB) $(wildcard tests/tools/lib/*.h) | $(BUILD)/tools
	$(CC) $(CFLAGS) -pthread -Itests/tools/lib -o $@ $< $(TOOL_LIB) -lm

$(BUILD)/bpf $(BUILD)/obj $(SAN)/obj $(SAN)/tests $(BUILD)/tests $(BUILD)/tools:
	mkdir -p $@

install-deps:
	scripts/install-deps.sh

# The test command of the README: dependencies, build, every suite.
test: install-deps
	$(MAKE) tests
	scripts/run-tests.sh

bench-bpf: install-deps
	$(MAKE) tests
	scripts/bench-bpf.sh

# The README's first command: overload on a namespace testbed, without and with loadshed.
demo: install-deps
	scripts/demo.sh

bench: install-deps
	$(MAKE) tests
	scripts/bench.sh

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run -Werror $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
