# Face pipeline benchmarks (included by the Makefile).
#   make bench-accuracy  LFW 10-fold / TAR@FAR and age MAE with the real face_analyze
#   make bench           face_analyze latency vs an OpenCV-DNN reference and the
#                        baseline build (mk/baseline.mk), same inputs
#   make bench-memory    server RSS at 1, 2, 4, 8 workers (bench/bench_memory.py), this
#                        build and the baseline build
bench-accuracy: build/tools/bench_accuracy
	./build/tools/bench_accuracy ../shared/data models

bench: build/tools/bench_face $(BASELINE_FACE)
	BENCH_FACE_BASELINE=$(BASELINE_FACE) /usr/bin/python3 bench/bench_face.py

# ?compression=true: bytes saved and match score kept, on real images.
.PHONY: bench-compression
bench-compression: build/bioserver
	/usr/bin/python3 bench/bench_compression.py

# BIOSERVER_BASELINE=other/bioserver measures that binary first, in the same run.
.PHONY: bench-memory
bench-memory: build/bioserver $(BASELINE)
	BIOSERVER_BASELINE=$(BASELINE) /usr/bin/python3 bench/bench_memory.py
