# Face pipeline benchmarks (included by the Makefile).
#   make bench-accuracy  LFW 10-fold / TAR@FAR per mode with the real face_analyze
#   make bench-age       age MAE and the under-18 rule, current method vs the superseded one
#   make bench-negatives faces found on no_face / lost on LFW, photos, documents, before/after
#   make bench-quality   LFW error-versus-discard curve of the quality score, before/after
#   make bench           face_analyze latency vs an OpenCV-DNN reference and the
#                        baseline build (mk/baseline.mk), same inputs
#   make bench-memory    server RSS at 1, 2, 4, 8 workers (bench/bench_memory.py), this
#                        build and the baseline build
#   make bench-decode    our scaled JPEG decoder vs libjpeg-turbo at 1/2, 1/4, 1/8 on
#                        data/photos and a 4032x3024 JPEG, alternating blocks, same run
bench-accuracy: build/tools/bench_accuracy
	./build/tools/bench_accuracy ../shared/data models

bench: build/tools/bench_face $(BASELINE_FACE)
	BENCH_FACE_BASELINE=$(BASELINE_FACE) /usr/bin/python3 bench/bench_face.py

# ?compression=true: bytes saved and match score kept, on real images.
.PHONY: bench-compression
bench-compression: build/bioserver
	/usr/bin/python3 bench/bench_compression.py

# tools/bench_decode.c: 7 blocks of 20 decodes per decoder, file and scale; the big
# JPEG is bench_face.py's (sample2.jpg upscaled, quality 90).
.PHONY: bench-decode
bench-decode: build/tools/bench_decode build/bench_4032x3024.jpg
	./build/tools/bench_decode 7 20 $(sort $(wildcard $(DATA)/photos/*.jpg)) build/bench_4032x3024.jpg

build/bench_4032x3024.jpg:
	PYTHONPATH=bench $(PYTHON) -c 'import bench_face; bench_face.make_big_jpeg()'

# BIOSERVER_BASELINE=other/bioserver measures that binary first, in the same run.
.PHONY: bench-memory
bench-memory: build/bioserver $(BASELINE)
	BIOSERVER_BASELINE=$(BASELINE) /usr/bin/python3 bench/bench_memory.py

# Age on data/age: the method in use against the superseded one on the same faces,
# tuned on the even MANIFEST rows, reported on the odd ones (docs/age.md).
.PHONY: bench-age
bench-age: build/tools/bench_age
	nice ./build/tools/bench_age ../shared/data models

# No face where there is none, none lost where there is one: the detector alone
# ("before") against the plausibility check ("after"), per data set, same run.
.PHONY: bench-negatives
bench-negatives: build/tools/bench_negatives
	nice ./build/tools/bench_negatives ../shared/data models

# Quality that predicts errors: FNMR at the FAR-1e-3 threshold after discarding the
# lowest-quality 0/5/10/20 % of LFW comparisons, per quality predictor (docs/quality.md).
.PHONY: bench-quality
bench-quality: build/tools/bench_quality
	nice ./build/tools/bench_quality ../shared/data models

# tests/unit/test_jpeg_scaled.c encodes its test files with the libjpeg API (restart
# intervals, progressive, arithmetic, Adobe markers...), which TurboJPEG does not expose.
build/tests/test_jpeg_scaled build/asan/tests/test_jpeg_scaled: LDLIBS += -ljpeg
