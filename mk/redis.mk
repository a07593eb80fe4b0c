# Distributed store targets (included by the Makefile).
#   make test-api-redis  the whole API suite against two instances on one Redis,
#                        requests alternating between them (tests/api/redis_support.py)
#   make bench-scale     CreateDirectFace + GetMatches throughput, 1 vs 2 instances on
#                        one Redis (and one in-memory instance as the reference)
.PHONY: test-api-redis bench-scale

test-api-redis: build/bioserver
	BIOSERVER=build/bioserver BIOSERVER_STORE=redis-pair /usr/bin/python3 -m pytest -q tests/api

bench-scale: build/bioserver
	/usr/bin/python3 bench/bench_scale.py
