# The server as it was at BASELINE_REF (the start of issue 14's fourth round), built
# beside this checkout so the benchmarks measure it in the same run, on the same
# input (they read BIOSERVER_BASELINE). Its models are this checkout's. The folder is
# named by the commit, so another BASELINE_REF=... builds afresh.
BASELINE_REF ?= e042e7c
BASELINE_DIR := build/baseline-$(BASELINE_REF)
BASELINE := $(BASELINE_DIR)/bioserver
BASELINE_FACE := $(BASELINE_DIR)/bench_face

$(BASELINE) $(BASELINE_FACE) &:
	rm -rf $(BASELINE_DIR)/src && mkdir -p $(BASELINE_DIR)/src
	git archive $(BASELINE_REF) | tar -x -C $(BASELINE_DIR)/src
	ln -s $(CURDIR)/models $(BASELINE_DIR)/src/models
	$(MAKE) --no-print-directory -C $(BASELINE_DIR)/src build/bioserver build/tools/bench_face
	cp $(BASELINE_DIR)/src/build/bioserver $(BASELINE)
	cp $(BASELINE_DIR)/src/build/tools/bench_face $(BASELINE_FACE)
