# The server as it was before issue 14's second round (BASELINE_REF), built beside
# this checkout so the benchmarks measure it in the same run, on the same input
# (they read BIOSERVER_BASELINE). Its models are this checkout's.
BASELINE_REF ?= f9f3014
BASELINE := build/baseline/bioserver

BASELINE_FACE := build/baseline/bench_face

$(BASELINE) $(BASELINE_FACE) &:
	rm -rf build/baseline/src && mkdir -p build/baseline/src
	git archive $(BASELINE_REF) | tar -x -C build/baseline/src
	ln -s $(CURDIR)/models build/baseline/src/models
	$(MAKE) --no-print-directory -C build/baseline/src build/bioserver build/tools/bench_face
	cp build/baseline/src/build/bioserver $(BASELINE)
	cp build/baseline/src/build/tools/bench_face $(BASELINE_FACE)
