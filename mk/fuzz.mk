# libFuzzer harnesses for every parser of untrusted bytes (included by the Makefile).
#   make fuzz        runs each harness for FUZZ_SECONDS (default 60) and prints the
#                    inputs it ran; new inputs go to build/fuzz/work/<harness>/,
#                    crashes to build/fuzz/crashes/
#   make fuzz-smoke  the same for FUZZ_SMOKE_SECONDS (default 4) each, on the corpus;
#                    part of `make test` (through test-unit)
# The harnesses (tests/fuzz/fuzz_*.c) are built with clang and
# -fsanitize=fuzzer,address,undefined against their own copy of the library.
# Seeds: small crafted ones committed in tests/fuzz/corpus/<harness>/, and ones
# derived at run time from models/ and ../shared/data (scripts/make_fuzz_seeds.py,
# into build/fuzz/seeds/<harness>/) so no model or evaluation image is committed.
.PHONY: fuzz fuzz-smoke fuzz-build

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 4
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# clang does not know gcc's `#pragma GCC optimize`; everything else stays -Werror.
FUZZ_CFLAGS  := $(filter-out -O2,$(CFLAGS)) -O1 -Wno-unknown-pragmas $(FUZZ_SAN)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_OBJ     := $(patsubst %.c,build/fuzz/obj/%.o,$(patsubst build/gen/%,gen/%,$(LIB_SRC)))

build/fuzz/obj/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Wno-unused-parameter -c $< -o $@
build/fuzz/obj/%.o: %.c build/gen/onnx/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
build/fuzz/libbio.a: $(FUZZ_OBJ)
	ar rcs $@ $^
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h build/fuzz/libbio.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< build/fuzz/libbio.a -o $@ $(LDLIBS)

-include $(FUZZ_OBJ:.o=.d)

fuzz-build: $(FUZZ_BIN)

build/fuzz/seeds/.done: scripts/make_fuzz_seeds.py
	$(PYTHON) scripts/make_fuzz_seeds.py models $(DATA) build/fuzz/seeds
	touch $@

# One line per harness: inputs run, corpus size, crashes (a crash stops the run and
# fails the target, leaving the input in build/fuzz/crashes/). $(1) = seconds,
# $(2) = where new inputs go: the kept build/fuzz/work/ for `make fuzz`, a fresh
# folder for the smoke so its time does not grow with earlier runs.
FUZZ_RUN = set -e; mkdir -p build/fuzz/crashes; for h in $(FUZZ_NAMES); do \
	  out=$(2)/$$h; mkdir -p $$out build/fuzz/seeds/$$h tests/fuzz/corpus/$$h; \
	  if ! build/fuzz/fuzz_$$h -max_total_time=$(1) -print_final_stats=1 -rss_limit_mb=3072 \
	       -timeout=60 -artifact_prefix=build/fuzz/crashes/$$h- \
	       $$out tests/fuzz/corpus/$$h build/fuzz/seeds/$$h >build/fuzz/$$h.log 2>&1; then \
	    tail -40 build/fuzz/$$h.log; echo "fuzz $$h: CRASH (see build/fuzz/$$h.log)"; exit 1; fi; \
	  printf 'fuzz %-10s %9s inputs run in %ss, corpus %s files\n' $$h \
	    "$$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/$$h.log)" $(1) "$$(ls $$out | wc -l)"; \
	done

fuzz: $(FUZZ_BIN) build/fuzz/seeds/.done
	@$(call FUZZ_RUN,$(FUZZ_SECONDS),build/fuzz/work)

fuzz-smoke: $(FUZZ_BIN) build/fuzz/seeds/.done
	@rm -rf build/fuzz/smoke
	@$(call FUZZ_RUN,$(FUZZ_SMOKE_SECONDS),build/fuzz/smoke)

# `test` is defined in the Makefile; the smoke rides on the unit tests.
test-unit: fuzz-smoke
