# Matching benchmarks: in-memory template comparison, then GetMatches through the
# real server with a 1,000-face session, next to the baseline build (mk/baseline.mk).
.PHONY: bench-match
bench-match: setup build/tools/bench_compare build/bioserver $(BASELINE)
	./build/tools/bench_compare
	BIOSERVER_BASELINE=$(BASELINE) $(PYTHON) bench/bench_matches.py 1000

# Galleries: a 1,000,000-face gallery (LFW + random unit vectors) searched 1:N, with
# the HTTP enrolment rate and a naive float-scan baseline (bench/bench_gallery.py).
# FACES=N and PEOPLE=P override the sizes.
.PHONY: bench-gallery
bench-gallery: setup build/tools/bench_gallery build/bioserver
	$(PYTHON) bench/bench_gallery.py
