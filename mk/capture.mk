# The real-time capture stream (docs/capture-stream.md), included by the Makefile.
#   make bench-capture   N concurrent streams (1, 2, 4, 8): guidance latency per frame,
#                        guidance fps per stream, captures/s, against the upload of the
#                        same frames in the same run (BENCH_SECONDS, BENCH_CLIENTS);
#                        first the per-frame tracker against face_analyze (bench_track)
.PHONY: bench-capture
bench-capture: build/bioserver build/tools/bench_track
	nice ./build/tools/bench_track $(DATA) models 3
	nice $(PYTHON) bench/bench_capture.py
