# IDEMIA's WebCapture demo server (../shared/clients/webcapture-demo, unmodified) as a
# real client of the API: scripts/setup-webcapture-demo.sh copies it into
# build/webcapture-demo/ and installs its npm dependencies (quick when already done);
# tests/api/test_webcapture_demo.py runs it against the binary.
.PHONY: webcapture-demo

webcapture-demo:
	@bash scripts/setup-webcapture-demo.sh

# Both API runs (plain, ASan) and the Redis-pair run include that test.
$(API_PASSES): webcapture-demo
