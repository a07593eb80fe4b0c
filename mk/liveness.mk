# Replay-liveness targets (included by the Makefile).
#   make bench-pad   APCER/BPCER per security level on ../shared/data/spoof: every PAD model
#                    and fusion split by subject, the server's own decision, ms per model
.PHONY: bench-pad
bench-pad: build/tools/bench_pad
	./build/tools/bench_pad ../shared/data models
