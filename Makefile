# loadshed build. `make` builds the dataplane objects, the skeleton and the
# CLI; `make test` installs the dependencies and runs every test; `make
# install` puts the CLI, the man pages and an example config under
# $(DESTDIR)$(PREFIX). `make V=1` shows every command in full.
#
# Layout of build/:
#   build/bpf/        BPF objects and the generated skeletons
#   build/            the release CLI (build/loadshed) and tools
#   build/san/        the same sources built with ASan+UBSan, used by tests
#   build/fuzz/       libFuzzer harnesses (clang, ASan+UBSan), their corpora and crashes

CLANG    ?= clang
CC       ?= cc
BPFTOOL  ?= bpftool
INSTALL  ?= install
TRIPLET  := $(shell $(CC) -dumpmachine)
ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
VERSION  := $(shell cat VERSION)

PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   := $(PREFIX)/sbin
MANDIR   := $(PREFIX)/share/man
DOCDIR   := $(PREFIX)/share/doc/loadshed
COMPDIR  := $(PREFIX)/share/bash-completion/completions
LIBEXECDIR := $(PREFIX)/libexec/loadshed
UNITDIR  := $(PREFIX)/lib/systemd/system
# The unit and its stop script name the binaries where this install puts them.
DEPLOY_SED := -e 's|/usr/local/sbin/|$(BINDIR)/|g' -e 's|/usr/local/libexec/loadshed/|$(LIBEXECDIR)/|g'

BUILD    := build
SAN      := $(BUILD)/san
FUZZ     := $(BUILD)/fuzz

# Quiet by default, as libbpf-bootstrap: one line per step; V=1 for all.
ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:

# clang's own system include directories, so that -target bpf finds
# asm/types.h and friends the way the host compiler would (libbpf-bootstrap).
CLANG_BPF_SYS_INCLUDES ?= $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Werror \
	-Wno-unused-parameter -Iinclude -Ibpf $(CLANG_BPF_SYS_INCLUDES)

PKGS     := libbpf inih json-c libmicrohttpd libsystemd
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers \
	-Iinclude -Iuser -I$(BUILD)/bpf -DLS_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS))
DEPFLAGS  = -MMD -MP
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lelf -lz -lm
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CMOCKA   := $(shell pkg-config --cflags --libs cmocka)

# The dataplane: one object linked from one file per hook plus the maps.
BPF_PARTS := bpf/maps.bpf.c bpf/xdp_ingress.bpf.c bpf/tc_egress.bpf.c bpf/tick.bpf.c
# Stand-alone objects: benchmark references and a peer XDP_PASS for veth.
BPF_EXTRA := $(filter-out $(BPF_PARTS),$(wildcard bpf/*.bpf.c))
SKEL      := $(BUILD)/bpf/loadshed.skel.h
# The outbound circuit breaker: its own object, loaded only with upstreams.
BRK_SKEL  := $(BUILD)/bpf/breaker.skel.h

USER_SRCS := $(wildcard user/*.c)
LIB_SRCS  := $(filter-out user/main.c,$(USER_SRCS))
OBJS      := $(patsubst user/%.c,$(BUILD)/obj/%.o,$(USER_SRCS))
SAN_OBJS  := $(patsubst user/%.c,$(SAN)/obj/%.o,$(USER_SRCS))
LIB_OBJS  := $(patsubst user/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
SAN_LIB   := $(patsubst user/%.c,$(SAN)/obj/%.o,$(LIB_SRCS))

TOOL_LIB  := $(wildcard tests/tools/lib/*.c)
TOOLS     := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c))
UNIT      := $(patsubst tests/unit/%.c,$(SAN)/tests/%,$(wildcard tests/unit/test_*.c))
BPFTESTS  := $(patsubst tests/bpf/%.c,$(SAN)/tests/%,$(wildcard tests/bpf/test_*.c))
BENCHES   := $(patsubst tests/bpf/%.c,$(BUILD)/tests/%,$(wildcard tests/bpf/bench_*.c))
BPF_TLIB  := $(wildcard tests/bpf/lib/*.c)
# The benchmarks use the harness and the frames, not the cmocka fixtures.
BENCH_TLIB := tests/bpf/lib/harness.c tests/bpf/lib/pkt.c
COMPLETION := $(BUILD)/loadshed.bash-completion

# Fuzzing (tests/fuzz/): clang with ASan+UBSan. The pure modules the
# harnesses exercise (layers 0-3 of design.md §14.1, without the maps) get
# libFuzzer's coverage; the test helpers (frames, the BPF harness, the
# policy checks) do not. Archives, so that a harness links only what it
# uses. `make fuzz` runs every harness for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
FUZZFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_SRCS := $(wildcard user/addr.c user/algo*.c user/breaker.c user/config.c user/hist.c user/log.c \
	user/output.c user/policy.c user/replay.c user/upstream.c user/window.c)
FUZZ_LIB  := $(FUZZ)/libloadshed.a
FUZZ_OBJS := $(patsubst user/%.c,$(FUZZ)/obj/%.o,$(FUZZ_SRCS))
FUZZ_TLIB := $(FUZZ)/libtests.a
FUZZ_TOBJS := $(addprefix $(FUZZ)/obj/t_,harness.o pkt.o frames.o check_policy.o dpparse.o)
FUZZERS   := $(patsubst tests/fuzz/%.c,$(FUZZ)/%,$(wildcard tests/fuzz/fuzz_*.c))
GEN_SEEDS := $(BUILD)/tests/gen_seeds

.PHONY: all test tests bench bench-algos bench-bpf bench-metrics bench-spiral bench-cascade soak demo clean \
	format check-format install-deps install uninstall fuzz fuzzers fuzz-seeds deb
all: $(BUILD)/loadshed $(SAN)/loadshed $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_EXTRA)) \
	$(TOOLS) $(COMPLETION)

tests: all $(UNIT) $(BPFTESTS) $(BENCHES) $(FUZZERS)

# BPF objects carry their header dependencies in .d files like the C ones.
$(BUILD)/bpf/%.part.o: bpf/%.bpf.c | $(BUILD)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/bpf/loadshed.bpf.o: $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.part.o,$(BPF_PARTS))
	$(call msg,LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(SKEL): $(BUILD)/bpf/loadshed.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name loadshed_bpf > $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c | $(BUILD)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst .,_,$*)_bpf > $@

# Every user object may include the skeleton: generate it first.
$(BUILD)/obj/%.o: user/%.c VERSION | $(BUILD)/obj $(SKEL) $(BRK_SKEL)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(SAN)/obj/%.o: user/%.c VERSION | $(SAN)/obj $(SKEL) $(BRK_SKEL)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/loadshed: $(OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(SAN)/loadshed: $(SAN_OBJS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

# Bash completion, generated from the CLI's own command table.
$(COMPLETION): $(BUILD)/loadshed
	$(call msg,GEN,$@)
	$(Q)$(BUILD)/loadshed completion bash > $@

$(SAN)/tests/test_%: tests/unit/test_%.c $(SAN_LIB) | $(SAN)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) $(DEPFLAGS) -o $@ $< $(SAN_LIB) $(CMOCKA) $(LDLIBS)

$(SAN)/tests/test_%: tests/bpf/test_%.c $(BPF_TLIB) $(SAN_LIB) $(BUILD)/bpf/bench_ref.skel.h \
		| $(SAN)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) $(DEPFLAGS) -Itests/bpf -o $@ $< $(BPF_TLIB) $(SAN_LIB) \
		$(CMOCKA) $(LDLIBS)

$(BUILD)/tests/bench_%: tests/bpf/bench_%.c $(BENCH_TLIB) $(LIB_OBJS) \
		$(BUILD)/bpf/bench_ref.skel.h | $(BUILD)/tests
	$(call msg,BENCH,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -Itests/bpf -o $@ $< $(BENCH_TLIB) $(LIB_OBJS) $(LDLIBS)

$(FUZZ)/obj/%.o: user/%.c VERSION | $(FUZZ)/obj $(SKEL) $(BRK_SKEL)
	$(call msg,CC,$@)
	$(Q)$(CLANG) $(CFLAGS) $(FUZZFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) -c $< -o $@

$(FUZZ)/obj/t_%.o: tests/bpf/lib/%.c | $(FUZZ)/obj $(SKEL) $(BRK_SKEL)
	$(call msg,CC,$@)
	$(Q)$(CLANG) $(CFLAGS) $(FUZZFLAGS) $(DEPFLAGS) -Itests/bpf -c $< -o $@

$(FUZZ)/obj/t_%.o: tests/fuzz/lib/%.c | $(FUZZ)/obj
	$(call msg,CC,$@)
	$(Q)$(CLANG) $(CFLAGS) $(FUZZFLAGS) $(DEPFLAGS) -Itests/bpf -Itests/fuzz -Ibpf -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_TLIB): $(FUZZ_TOBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_TLIB) $(FUZZ_LIB) | $(FUZZ) $(SKEL)
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(CFLAGS) $(FUZZFLAGS) -fsanitize=fuzzer $(DEPFLAGS) -Itests/bpf -Itests/fuzz \
		-o $@ $< $(FUZZ_TLIB) $(FUZZ_LIB) $(LDLIBS)

# The frame seeds of fuzz_dataplane are generated, and checked in.
$(GEN_SEEDS): tests/fuzz/gen_seeds.c tests/fuzz/lib/frames.c tests/bpf/lib/pkt.c | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -Itests/bpf -Itests/fuzz -o $@ $^

fuzz-seeds: $(GEN_SEEDS)
	$(Q)mkdir -p tests/fuzz/corpus/fuzz_dataplane
	$(GEN_SEEDS) tests/fuzz/corpus/fuzz_dataplane

fuzzers: $(FUZZERS)

fuzz: install-deps
	$(MAKE) fuzzers
	scripts/fuzz.sh $(FUZZ_SECONDS)

$(BUILD)/tools/%: tests/tools/%.c $(TOOL_LIB) | $(BUILD)/tools
	$(call msg,TOOL,$@)
	$(Q)$(CC) $(CFLAGS) $(DEPFLAGS) -pthread -Itests/tools/lib -o $@ $< $(TOOL_LIB) -lm

$(BUILD)/bpf $(BUILD)/obj $(SAN)/obj $(SAN)/tests $(BUILD)/tests $(BUILD)/tools $(FUZZ) $(FUZZ)/obj:
	$(Q)mkdir -p $@

# The skeleton of bench_ref is an intermediate the tests need while they build.
.SECONDARY: $(BUILD)/bpf/bench_ref.skel.h $(BRK_SKEL)

-include $(wildcard $(BUILD)/bpf/*.d $(BUILD)/obj/*.d $(SAN)/obj/*.d $(SAN)/tests/*.d \
	$(BUILD)/tests/*.d $(BUILD)/tools/*.d $(FUZZ)/obj/*.d $(FUZZ)/*.d)

install: $(BUILD)/loadshed $(COMPLETION)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(COMPDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 0755 $(BUILD)/loadshed $(DESTDIR)$(BINDIR)/loadshed
	$(INSTALL) -m 0644 doc/loadshed.8 $(DESTDIR)$(MANDIR)/man8/loadshed.8
	$(INSTALL) -m 0644 doc/loadshed.conf.5 $(DESTDIR)$(MANDIR)/man5/loadshed.conf.5
	$(INSTALL) -m 0644 doc/loadshed.conf.example $(DESTDIR)$(DOCDIR)/loadshed.conf.example
	$(INSTALL) -m 0644 $(COMPLETION) $(DESTDIR)$(COMPDIR)/loadshed
	sed $(DEPLOY_SED) deploy/systemd/loadshed-stop > $(DESTDIR)$(LIBEXECDIR)/loadshed-stop
	chmod 0755 $(DESTDIR)$(LIBEXECDIR)/loadshed-stop
	sed $(DEPLOY_SED) deploy/systemd/loadshed@.service > $(DESTDIR)$(UNITDIR)/loadshed@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/loadshed@.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/loadshed $(DESTDIR)$(MANDIR)/man8/loadshed.8 \
		$(DESTDIR)$(MANDIR)/man5/loadshed.conf.5 \
		$(DESTDIR)$(DOCDIR)/loadshed.conf.example $(DESTDIR)$(COMPDIR)/loadshed \
		$(DESTDIR)$(LIBEXECDIR)/loadshed-stop $(DESTDIR)$(UNITDIR)/loadshed@.service
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(LIBEXECDIR)

# A Debian package of the tree: $(DEB_OUT)/loadshed_VERSION_ARCH.deb (scripts/mkdeb.sh).
DEB_OUT ?= $(BUILD)
deb: $(BUILD)/loadshed $(COMPLETION)
	scripts/mkdeb.sh $(DEB_OUT)

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

# Three replicas behind HAProxy, one killed at 0.8x: the death spiral, without and with loadshed.
bench-spiral: install-deps
	$(MAKE) all
	scripts/spiral.sh --no-build

# Each limit algorithm with its defaults on several server shapes (steady 3x, doubling).
bench-algos: install-deps
	scripts/bench.sh --algos

# 50 concurrent scrapers of the metrics endpoint: the agent's CPU and heartbeat with and without.
bench-metrics: install-deps
	$(MAKE) all
	scripts/bench-metrics.sh

# A middle tier whose upstream slows x20: no protection, a client timeout, loadshed's breaker.
bench-cascade: install-deps
	$(MAKE) all
	scripts/cascade.sh --no-build

# Mixed connections with agent restarts and reloads; every in-flight counter must end at 0.
soak: install-deps
	$(MAKE) all
	scripts/soak.sh

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run -Werror $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
