# Face biometrics server. `make run` sets up and starts it; `make test` runs every test.
# One directory per layer under src/; every .c there except src/main.c goes into a
# static library that the server, the unit tests and the tools link against.

CC      ?= gcc
PKGS    := libmicrohttpd gnutls jansson libssl libcrypto libturbojpeg libpng libwebp libexif \
           libprotobuf-c hiredis libcurl sqlite3
OPT     ?= -O2
CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -Isrc -Ibuild/gen \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lXNNPACK -lpthreadpool -ldnnl -lgomp -lpthread -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Generated protobuf-c bindings for ONNX (from Debian's libonnx-dev).
GEN_SRC := build/gen/onnx/onnx.pb-c.c
LIB_SRC := $(sort $(filter-out src/main.c,$(wildcard src/*/*.c))) $(GEN_SRC)

# Two flavours: release (build/) and sanitized (build/asan/).
OBJ      := $(patsubst %.c,build/obj/%.o,$(patsubst build/gen/%,gen/%,$(LIB_SRC)))
ASAN_OBJ := $(patsubst %.c,build/asan/obj/%.o,$(patsubst build/gen/%,gen/%,$(LIB_SRC)))

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(patsubst tests/unit/%.c,build/tests/%,$(UNIT_SRC))
UNIT_ASAN  := $(patsubst tests/unit/%.c,build/asan/tests/%,$(UNIT_SRC))
TOOL_SRC   := $(wildcard tools/*.c)
TOOL_BIN   := $(patsubst tools/%.c,build/tools/%,$(TOOL_SRC))

.PHONY: all setup deps models run test test-unit test-api calibrate bench-nn clean
.DEFAULT_GOAL := all

all: build/bioserver build/asan/bioserver $(UNIT_BIN) $(TOOL_BIN)

deps:
	@bash scripts/setup-deps.sh
models:
	@bash scripts/fetch-models.sh
setup: deps models

build/gen/onnx/onnx.pb-c.c: /usr/include/onnx/onnx.proto
	@mkdir -p build/gen/onnx
	cp $< build/gen/onnx/onnx.proto
	cd build/gen/onnx && protoc-c --c_out=. onnx.proto
build/gen/onnx/onnx.pb-c.h: build/gen/onnx/onnx.pb-c.c

build/obj/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@
build/asan/obj/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -Wno-unused-parameter -c $< -o $@
build/obj/%.o: %.c build/gen/onnx/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@
build/asan/obj/%.o: %.c build/gen/onnx/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -MMD -MP -c $< -o $@

build/libbio.a: $(OBJ)
	ar rcs $@ $^
build/asan/libbio.a: $(ASAN_OBJ)
	ar rcs $@ $^

build/bioserver: build/obj/src/main.o build/libbio.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)
build/asan/bioserver: build/asan/obj/src/main.o build/asan/libbio.a
	$(CC) $(CFLAGS) $(SAN) $^ -o $@ $(LDLIBS)

build/tests/%: tests/unit/%.c build/libbio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -MF $@.d $< build/libbio.a -o $@ $(LDLIBS) -lcmocka
build/asan/tests/%: tests/unit/%.c build/asan/libbio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -MMD -MP -MF $@.d $< build/asan/libbio.a -o $@ $(LDLIBS) -lcmocka
build/tools/%: tools/%.c build/libbio.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< build/libbio.a -o $@ $(LDLIBS)

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d) build/obj/src/main.d build/asan/obj/src/main.d \
         $(UNIT_BIN:=.d) $(UNIT_ASAN:=.d)
# Per-layer extra targets (e.g. mk/nn.mk) live beside the main rules.
# The API test passes (below and mk/redis.mk); mk/*.mk add their set-up to each.
API_PASSES := test-api-plain test-api-asan test-api-redis
-include $(wildcard mk/*.mk)

# --- what users run -------------------------------------------------------------
run: setup
	@$(MAKE) --no-print-directory build/bioserver
	./build/bioserver --config bioserver.conf

# The unit tests and the three API passes run at the same time: the passes mostly
# wait on servers, so on two cores this roughly halves the wall time.
test: setup
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -j4 --output-sync=target test-unit test-api

# Reference outputs for the nn tests, derived from ../shared/data at test time so
# no evaluation image is ever committed.
build/fixtures/nn/.done: scripts/make_nn_fixtures.py
	$(PYTHON) scripts/make_nn_fixtures.py $(DATA)/lfw build/fixtures/nn
	touch $@

# face-api's reference outputs come from face-api itself on TF.js's CPU backend
# (versions and checksums pinned in scripts/faceapi_ref/package-lock.json).
build/faceapi-ref/.installed: scripts/faceapi_ref/package.json scripts/faceapi_ref/package-lock.json
	@mkdir -p build/faceapi-ref
	cp scripts/faceapi_ref/package.json scripts/faceapi_ref/package-lock.json build/faceapi-ref/
	cd build/faceapi-ref && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@
build/fixtures/nn/.faceapi: build/fixtures/nn/.done build/faceapi-ref/.installed scripts/faceapi_ref/make_fixtures.js
	NODE_PATH=build/faceapi-ref/node_modules node scripts/faceapi_ref/make_fixtures.js build/fixtures/nn models/faceapi
	touch $@

test-unit: $(UNIT_BIN) $(UNIT_ASAN) build/fixtures/nn/.done build/fixtures/nn/.faceapi
	@set -e; for t in $(UNIT_BIN) $(UNIT_ASAN); do echo "== $$t"; $$t; done

# API tests run against the real binary, once plain and once under ASan/UBSan (and
# on a Redis pair, mk/redis.mk).
.PHONY: test-api $(API_PASSES)
test-api: $(API_PASSES)
test-api-plain: build/bioserver
	BIOSERVER=build/bioserver $(PYTHON) -m pytest -q tests/api
test-api-asan: build/asan/bioserver
	BIOSERVER=build/asan/bioserver BIOSERVER_SANITIZED=1 $(PYTHON) -m pytest -q tests/api

bench-nn: setup build/tools/bench_nn
	$(PYTHON) bench/bench_nn.py

# Labelled evaluation data lives beside the repository, never inside it.
DATA ?= ../shared/data
# Debian's interpreter: its python3-* packages (pytest, cv2) are what the set-up installs.
PYTHON := /usr/bin/python3

# Measures the similarity -> FAR table of each algorithm with the server's own
# pipeline (docs/calibration.md): the fast modes', then the accurate mode's.
calibrate: setup build/tools/calibrate
	./build/tools/calibrate $(DATA)/lfw models calibration/far-v1.txt fast
	./build/tools/calibrate $(DATA)/lfw models calibration/far-accurate-v2.txt accurate

clean:
	rm -rf build
