# Matching benchmarks: in-memory template comparison, then GetMatches through the
# real server with a 1,000-face session.
.PHONY: bench-match
bench-match: setup build/tools/bench_compare build/bioserver
	./build/tools/bench_compare
	$(PYTHON) bench/bench_matches.py 1000
