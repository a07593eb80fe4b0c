"""Liveness evidence in S3-compatible object storage (the reference's imageStorage /
videoStorage), against a real S3-compatible server: s3rver 3.7.1 (npm, pinned in
tests/s3rver/package-lock.json, installed into build/s3rver by `make test`), started
here on a loopback port with a fresh bucket.

What s3rver checks, and so what these tests prove: it refuses an unknown access key
(403 InvalidAccessKeyId) but does not verify SigV4 signatures (its
lib/middleware/authentication.js leaves "Signature version 4 calculation"
unimplemented) nor x-amz-content-sha256 / Content-MD5, so a wrong *secret* is not
detectable with it; the wrong credential tested here is the access key. What s3rver
does not check is checked on a recording endpoint instead: AWS's own SigV4 code
(Debian's python3-botocore) recomputes the signature of the PUT the server sent,
which verifies with the configured secret and not with another one. s3rver answers
the object's MD5 as ETag, which the server compares with its own.

With BIOSERVER_STORE=redis-pair (make test-api-redis) the first test runs on two
instances sharing one Redis (the evidence record goes through Redis, requests
alternate); the others test one instance's behaviour and run in the memory and
sanitizer passes only.

Live frames: ../shared/data/spoof/nuaa/live/0001 (fr_liveness >= 0.998 on each)."""
import hashlib
import http.server
import json
import os
import re
import subprocess
import threading
import time

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import KEY_A, KEY_ADMIN, REPO_ROOT, SANITIZED, free_port, launch, redis_pair
from test_liveness import LIVE, metadata, new_capture, read, receiver, upload, wait_result  # noqa: F401 (fixture)

from liveness_client import capture_json, seal  # noqa: E402  (test_liveness put tools/ on sys.path)

S3RVER = os.path.join(REPO_ROOT, "build", "s3rver", "node_modules", "s3rver", "bin", "s3rver.js")
BUCKET = "bioserver-evidence"
WAIT = 120 if SANITIZED else 30
KEY_RE = r"^evidence-test/tenantA/{sid}/[0-9a-f-]{{36}}/{name}$"
PAIR = os.environ.get("BIOSERVER_STORE") == "redis-pair"
single_instance = pytest.mark.skipif(PAIR, reason="one instance's behaviour: tested in the memory and sanitizer passes")

pytestmark = [
    pytest.mark.skipif(not LIVE, reason="../shared/data/spoof/nuaa is missing"),
    pytest.mark.skipif(not os.path.exists(S3RVER), reason="s3rver is not installed: make build/s3rver/.installed"),
]


class S3rver:
    """One s3rver process with BUCKET, its files under root."""

    def __init__(self, root, port=None):
        self.port = port or free_port()
        self.root = root
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(root, f"s3rver-{self.port}.log"), "wb")
        self.proc = subprocess.Popen(["node", S3RVER, "--directory", os.path.join(root, "s3"), "--address", "127.0.0.1",
                                      "--port", str(self.port), "--configure-bucket", BUCKET],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"s3rver exited: {open(self.log.name).read()}"
            try:
                if requests.get(f"{self.url}/{BUCKET}", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError("s3rver did not start")

    def keys(self):
        """Every key in the bucket (ListObjectsV2, anonymous: s3rver allows it)."""
        r = requests.get(f"{self.url}/{BUCKET}?list-type=2", timeout=5)
        assert r.status_code == 200, r.text
        return re.findall(r"<Key>([^<]+)</Key>", r.text)

    def get(self, key):
        return requests.get(f"{self.url}/{BUCKET}/{key}", timeout=5)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def s3(tmp_path):
    s = S3rver(str(tmp_path))
    yield s
    s.stop()


@pytest.fixture
def start_evidence(start_server, tmp_path):
    """start_server, or with BIOSERVER_STORE=redis-pair two instances on one Redis."""
    pairs = []

    def start(*flags, env=None):
        if not PAIR:
            return start_server(*flags, env=env)
        root = tmp_path / f"pair{len(pairs)}"
        root.mkdir()
        gen = redis_pair(str(root), *flags)
        pairs.append(gen)
        return next(gen)

    yield start
    for gen in pairs:
        next(gen, None)  # checks both exit cleanly, stops Redis


def instances(srv):
    return getattr(srv, "servers", [srv])


def evidence_flags(url, *extra, access="S3RVER", secret="S3RVER"):
    flags = ["--evidence-s3-url", url, "--evidence-s3-bucket", BUCKET, "--evidence-s3-region", "eu-central-1",
             "--evidence-prefix", "evidence-test", "--callback-allow", "127.0.0.1/32"]
    if access:
        flags += ["--evidence-s3-access-key", access, "--evidence-s3-secret-key", secret]
    return flags + list(extra)


def capture(srv, receiver, frames=None, **body):
    """A live capture with a callback: (session id, frames sent, first verdict metadata)."""
    frames = frames or [read(LIVE[0])]
    sid, params = new_capture(srv, session={"callbackURL": receiver.url}, **body)
    assert upload(srv, sid, seal(params, sid, capture_json(frames))).status_code == 202
    return sid, frames, wait_result(srv, sid)


def wait_evidence(srv, sid, want=("STORED", "FAILED")):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        m = metadata(srv, sid).json()
        if m.get("evidenceStorage", {}).get("status") in want:
            return m
        time.sleep(0.1)
    raise AssertionError(f"evidence not settled: {m}")


def first_evidence_state(srv, sid, m):
    """evidenceStorage as first seen after the verdict m: the worker records the
    evidence as pending just after it publishes the verdict, so a reader may see the
    verdict a moment before it."""
    deadline = time.monotonic() + 5
    while "evidenceStorage" not in m and time.monotonic() < deadline:
        time.sleep(0.01)
        m = metadata(srv, sid).json()
    return m.get("evidenceStorage")


def metric(srv, name):
    """The counter summed over the instances."""
    total = 0
    for one in instances(srv):
        text = one.get("/metrics", key=KEY_ADMIN).text
        m = re.search(rf"^{name} (\d+)$", text, re.M)
        assert m, f"{name} not in /metrics"
        total += int(m.group(1))
    return total


def assert_storage(obj, sid, name, content_type, data):
    assert obj["region"] == "eu-central-1" and obj["bucketName"] == BUCKET, obj
    assert re.match(KEY_RE.format(sid=sid, name=re.escape(name)), obj["key"]), obj
    assert obj["hashAlgorithm"] == "SHA_256" and obj["contentType"] == content_type, obj
    assert obj["hash"] == hashlib.sha256(data).hexdigest(), obj


def test_best_image_and_capture_are_stored_where_the_metadata_says(start_evidence, s3, receiver):
    # Credentials from the environment this time (never from a flag or a log line).
    env = dict(os.environ, BIOSERVER_S3_ACCESS_KEY="S3RVER", BIOSERVER_S3_SECRET_KEY="S3RVER")
    srv = start_evidence(*evidence_flags(s3.url, "--evidence-keep", "best_image,capture", access="S3RVER" if PAIR else None),
                         env=env)
    frames = [read(f) for f in LIVE[:3]]
    sid, frames, first = capture(srv, receiver, frames, type="LIVENESS_PASSIVE_VIDEO")
    assert first["status"] == "SUCCESS", first
    assert receiver.wait(1, WAIT) == [("application/json", {"sessionId": sid})]
    m = wait_evidence(srv, sid)
    assert m["status"] == "SUCCESS" and m["evidenceStorage"] == {"status": "STORED"}, m

    # The best image: one of the frames, byte for byte, where imageStorage says.
    image = m["imageStorage"]
    stored = s3.get(image["key"])
    assert stored.status_code == 200 and stored.headers["Content-Type"] == "image/jpeg"
    assert hashlib.sha256(stored.content).hexdigest() == image["hash"]
    assert stored.content in frames
    assert_storage(image, sid, "best-image.jpg", "image/jpeg", stored.content)

    # The capture (there is no video): its timestamped frames as JSON, under videoStorage.
    video = m["videoStorage"]
    stored = s3.get(video["key"])
    assert stored.status_code == 200 and stored.headers["Content-Type"] == "application/json"
    assert_storage(video, sid, "capture.json", "application/json", stored.content)
    assert json.loads(stored.content)["frames"] == capture_json(frames)["frames"]
    assert os.path.dirname(video["key"]) == os.path.dirname(image["key"])
    assert sorted(s3.keys()) == sorted([image["key"], video["key"]])

    # The WebCapture-style result carries the same objects.
    r = srv.get(f"/v2/bio-sessions/{sid}/liveness-challenge-result", key=KEY_A).json()
    assert r["imageStorage"] == image and r["videoStorage"] == video and r["evidenceStorage"]["status"] == "STORED"
    assert metric(srv, "bioserver_evidence_stored_total") == 2
    assert metric(srv, "bioserver_evidence_failed_total") == 0
    mons = [one.get("/v2/monitor").json() for one in instances(srv)]
    assert all(m["status"] == "UP" and m["evidence"]["status"] == "UP" for m in mons), mons
    assert sum(m["evidence"]["stored"] for m in mons) == 2, mons
    assert "S3RVER" not in srv.stderr_text()

    # A new capture of the same session: the old record no longer shows.
    r = srv.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters", {"type": "LIVENESS_PASSIVE"}, key=KEY_A)
    assert r.status_code == 200
    m = metadata(srv, sid).json()
    assert m["status"] == "INITIALIZED" and "imageStorage" not in m and "evidenceStorage" not in m, m


def test_off_by_default(server):
    mon = server.get("/v2/monitor").json()
    assert mon["evidence"] == {"status": "DISABLED"}, mon
    assert "bioserver_evidence" not in server.get("/metrics", key=KEY_ADMIN).text


@single_instance
def test_only_the_configured_outcomes_are_kept(start_server, s3, receiver):
    srv = start_server(*evidence_flags(s3.url, "--evidence-on", "not_success"))
    sid, _, first = capture(srv, receiver)
    assert first["status"] == "SUCCESS"
    assert receiver.wait(1, WAIT)
    assert "evidenceStorage" not in first and "imageStorage" not in first
    assert s3.keys() == [] and metric(srv, "bioserver_evidence_stored_total") == 0


@single_instance
def test_wrong_credential_leaves_the_result_and_callback_and_is_reported(start_server, s3, receiver):
    srv = start_server(*evidence_flags(s3.url, access="NOT-A-KNOWN-KEY", secret="wrong-secret-0123456789"))
    sid, _, first = capture(srv, receiver)
    assert first["status"] == "SUCCESS"
    assert receiver.wait(1, WAIT) == [("application/json", {"sessionId": sid})]
    m = wait_evidence(srv, sid)
    assert m["status"] == "SUCCESS" and "imageStorage" not in m, m
    ev = m["evidenceStorage"]
    assert ev["status"] == "FAILED", ev
    # Refused credentials are final: one attempt, no retries.
    assert ev["reason"] == "imageStorage: the object store answered HTTP 403 InvalidAccessKeyId (after 1 attempt)", ev
    assert s3.keys() == []
    mon = srv.get("/v2/monitor")
    assert mon.status_code == 503, mon.text
    mon = mon.json()
    assert mon["status"] == "DEGRADED" and any("evidence" in r for r in mon["reasons"]), mon
    assert mon["evidence"]["status"] == "DOWN" and "InvalidAccessKeyId" in mon["evidence"]["lastError"]["message"], mon
    assert metric(srv, "bioserver_evidence_failed_total") == 1
    assert metric(srv, "bioserver_evidence_upload_failures_total") == 1
    text = srv.stderr_text() + json.dumps(mon)
    assert "wrong-secret-0123456789" not in text and "NOT-A-KNOWN-KEY" not in text
    assert "InvalidAccessKeyId" in srv.stderr_text()


@single_instance
def test_stopped_store_leaves_the_result_and_callback_and_is_reported(start_server, s3, receiver):
    s3.stop()  # the store existed, and is gone now
    srv = start_server(*evidence_flags(s3.url))
    sid, _, first = capture(srv, receiver)
    assert first["status"] == "SUCCESS"
    # The verdict did not wait for the store.
    assert first_evidence_state(srv, sid, first) == {"status": "PENDING"}, first
    assert receiver.wait(1, WAIT) == [("application/json", {"sessionId": sid})]
    m = wait_evidence(srv, sid)
    ev = m["evidenceStorage"]
    assert ev["status"] == "FAILED" and ev["reason"].startswith("imageStorage: the object store cannot be reached"), ev
    assert ev["reason"].endswith("(after 4 attempts)"), ev  # bounded: never retried forever
    assert metric(srv, "bioserver_evidence_upload_failures_total") == 4
    assert metric(srv, "bioserver_evidence_failed_total") == 1 and metric(srv, "bioserver_evidence_pending") == 0
    mon = srv.get("/v2/monitor").json()
    assert mon["evidence"]["status"] == "DOWN" and "cannot be reached" in mon["evidence"]["lastError"]["message"]
    assert srv.wait_for_log(lambda l: l.get("level") == "error" and "not stored" in l.get("message", "")
                            and sid in l.get("message", ""))


@single_instance
def test_evidence_of_a_deleted_session_is_not_uploaded_late(start_server, tmp_path, receiver):
    port = free_port()  # the store is down while the server retries
    srv = start_server(*evidence_flags(f"http://127.0.0.1:{port}"))
    sid, _, first = capture(srv, receiver)
    assert first["status"] == "SUCCESS" and first_evidence_state(srv, sid, first)["status"] == "PENDING"
    assert srv.delete(f"/v2/bio-sessions/{sid}", key=KEY_A).status_code == 204
    s3 = S3rver(str(tmp_path), port=port)  # back up: still nothing may arrive
    try:
        srv.wait_for_log(lambda l: "not uploaded: the bio-session has expired or was deleted" in l.get("message", "")
                         and sid in l.get("message", ""), timeout=WAIT)
        assert metric(srv, "bioserver_evidence_skipped_total") == 1
        assert metric(srv, "bioserver_evidence_stored_total") == 0 and s3.keys() == []
    finally:
        s3.stop()


class WrongEtagStore:
    """An endpoint that records every PUT and answers an ETag that is not the body's
    MD5, as a store that corrupted the object would."""

    def __init__(self):
        self.puts = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.puts.append(({k.lower(): v for k, v in self.headers.items()}, self.path, body))
                self.send_response(200)
                self.send_header("ETag", '"' + hashlib.md5(body + b"x").hexdigest() + '"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@single_instance
def sigv4_signature(url, path, headers, body, signed, secret):
    """botocore's signature of the request as received, over the headers it says it signed."""
    req = AWSRequest(method="PUT", url=url + path, data=body, headers={k: headers[k] for k in signed})
    req.context["timestamp"] = headers["x-amz-date"]
    auth = SigV4Auth(Credentials("evidence-access-key", secret), "s3", "eu-central-1")
    return auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)


def test_an_etag_that_is_not_our_md5_fails_and_the_signature_is_sigv4(start_server, receiver):
    store = WrongEtagStore()
    try:
        srv = start_server(*evidence_flags(store.url, access="evidence-access-key", secret="evidence-secret-key"))
        sid, frames, _ = capture(srv, receiver)
        ev = wait_evidence(srv, sid)["evidenceStorage"]
        assert ev["status"] == "FAILED" and "is not the MD5 of what was sent" in ev["reason"], ev
        assert len(store.puts) == 4  # retried, then given up
        headers, path, body = store.puts[0]
        assert body == frames[0] and path.startswith(f"/{BUCKET}/evidence-test/tenantA/{sid}/")
        # What the store is asked to verify: the SHA-256 (signed) and the MD5.
        assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
        assert headers["content-md5"] == __import__("base64").b64encode(hashlib.md5(body).digest()).decode()
        m = re.match(r"AWS4-HMAC-SHA256 Credential=evidence-access-key/(\d{8})/eu-central-1/s3/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$", headers["authorization"])
        assert m and headers["x-amz-date"].startswith(m.group(1)), headers["authorization"]
        signed = m.group(2).split(";")
        assert {"host", "x-amz-date", "x-amz-content-sha256", "content-type"} <= set(signed), signed
        assert sigv4_signature(store.url, path, headers, body, signed, "evidence-secret-key") == m.group(3)
        assert sigv4_signature(store.url, path, headers, body, signed, "another-secret") != m.group(3)
        assert "evidence-secret-key" not in srv.stderr_text()
    finally:
        store.close()


@single_instance
@pytest.mark.parametrize("flags, message", [
    (["--evidence-s3-url", "http://127.0.0.1:9"], "evidence_s3_url needs evidence_s3_bucket"),
    (["--evidence-s3-url", "http://user:hunter2secret@127.0.0.1:9"], "without user:password@"),
    (["--evidence-s3-url", "ftp://127.0.0.1:9"], "an http:// or https:// URL"),
    (["--evidence-s3-bucket", "a"], "invalid value 'a' for 'evidence-s3-bucket'"),
    (["--evidence-keep", "video"], "invalid value 'video' for 'evidence-keep'"),
    (["--evidence-on", "sometimes"], "invalid value 'sometimes' for 'evidence-on'"),
    (["--evidence-prefix", "/abs"], "invalid value '/abs' for 'evidence-prefix'"),
    (["--evidence-s3-url", "http://127.0.0.1:9", "--evidence-s3-bucket", "b-1"], "no credentials"),
])
def test_bad_settings_refuse_to_start(tmp_path, flags, message):
    env = {k: v for k, v in os.environ.items()
           if k not in ("BIOSERVER_S3_ACCESS_KEY", "BIOSERVER_S3_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    with pytest.raises(Exception) as e:
        launch(str(tmp_path), *flags, env=env)
    assert message in str(e.value), str(e.value)
    assert "hunter2secret" not in str(e.value)
