# Encryption at rest (docs/security.md).
#   make bench-crypto   us per template encode/decode and per store record/image,
#                       plain path next to the encrypted one in the same run
.PHONY: bench-crypto
bench-crypto: build/tools/bench_crypto
	./build/tools/bench_crypto
