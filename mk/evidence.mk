# Liveness evidence in S3-compatible object storage (included by the Makefile).
#   build/s3rver/.installed  the pinned S3-compatible server (s3rver, npm) that
#                            tests/api/test_evidence.py starts on a loopback port;
#                            installed by scripts/setup-s3rver.sh before test-api
build/s3rver/.installed: tests/s3rver/package.json tests/s3rver/package-lock.json scripts/setup-s3rver.sh
	@bash scripts/setup-s3rver.sh

$(API_PASSES): build/s3rver/.installed
