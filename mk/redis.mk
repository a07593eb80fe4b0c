# Distributed store targets (included by the Makefile).
#   make test-api-redis  the whole API suite against two instances on one Redis,
#                        requests alternating between them (tests/api/redis_support.py);
#                        part of `make test-api` (and so `make test`), skipped with a
#                        note when redis-server is not installed
#   make bench-scale     faces/s with every core busy (2 MP JPEGs, one instance), then
#                        CreateDirectFace + GetMatches throughput, 1 vs 2 instances on
#                        one Redis (and one in-memory instance as the reference)
.PHONY: test-api-redis bench-scale

test-api-redis: build/bioserver
	@if ! command -v redis-server >/dev/null; then echo "test-api-redis: SKIPPED (redis-server not installed)"; \
	else echo "BIOSERVER=build/bioserver BIOSERVER_STORE=redis-pair /usr/bin/python3 -m pytest -q tests/api"; \
	     BIOSERVER=build/bioserver BIOSERVER_STORE=redis-pair /usr/bin/python3 -m pytest -q tests/api; fi


bench-scale: build/bioserver $(BASELINE)
	BIOSERVER_BASELINE=$(BASELINE) /usr/bin/python3 bench/bench_scale.py
