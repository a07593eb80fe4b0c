"""Replay liveness end to end against the real binary: init-liveness-parameters,
the encrypted capture upload (tools/liveness_client.py seals it like the web page),
asynchronous evaluation on real NUAA frames, replay-liveness-metadata with its
(detached) signature, every rejection, TIMEOUT, 409 on delete and the callback.

Samples (../shared/data/spoof/nuaa, never copied): subject 0001's webcam frames are
live (fr_liveness >= 0.998 on every one), subject 0001's printed-photo frames are
attacks (<= 0.013); bench_pad lists every score."""
import base64
import glob
import http.server
import json
import os
import socket
import sys
import threading
import time

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from conftest import KEY_A, KEY_ADMIN, KEY_B, KEY_SESSIONS, REPO_ROOT, SANITIZED, assert_error, free_port

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
from liveness_client import capture_json, challenges, seal  # noqa: E402

NUAA = os.path.join(REPO_ROOT, "..", "shared", "data", "spoof", "nuaa")
LIVE = sorted(glob.glob(os.path.join(NUAA, "live", "0001", "*.jpg")))
SPOOF = sorted(glob.glob(os.path.join(NUAA, "spoof", "0001", "*.jpg")))
WAIT = 120 if SANITIZED else 30

pytestmark = pytest.mark.skipif(not LIVE or not SPOOF, reason="../shared/data/spoof/nuaa is missing")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@pytest.fixture(scope="module")
def public_key(server):
    r = server.get("/v2/certificate")
    assert r.status_code == 200, r.text
    return x509.load_pem_x509_certificate(r.content).public_key()


def verify_jws(obj, public_key, detached):
    """ES256 over the compact JSON of obj without "signature" (as the server serialises it)."""
    jws = obj["signature"]
    h, p, s = jws.split(".")
    body = {k: v for k, v in obj.items() if k != "signature"}
    if detached:
        assert p == "", "the payload must be detached when the image is present"
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        p = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    else:
        assert json.loads(b64url_decode(p)) == body
    sig = b64url_decode(s)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public_key.verify(der, f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public_key.verify(der, f"{h}.{p}x".encode(), ec.ECDSA(hashes.SHA256()))


def init(srv, sid, key=KEY_A, **body):
    body.setdefault("type", "LIVENESS_PASSIVE")
    return srv.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters", body, key=key)


def new_capture(srv, key=KEY_A, session=None, **body):
    sid = srv.create_session(key=key, **(session or {}))
    r = init(srv, sid, key=key, **body)
    assert r.status_code == 200, r.text
    return sid, r.json()


def upload(srv, sid, env, key=KEY_A):
    return srv.post_json(f"/v2/bio-sessions/{sid}/liveness-capture", env, key=key)


def metadata(srv, sid, key=KEY_A):
    return srv.get(f"/v3/bio-sessions/{sid}/replay-liveness-metadata", key=key)


def wait_result(srv, sid, key=KEY_A):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        r = metadata(srv, sid, key)
        assert r.status_code == 200, r.text
        if r.json()["status"] not in ("INITIALIZED", "IN_PROGRESS"):
            return r.json()
        time.sleep(0.1)
    raise AssertionError("no verdict in time")


def run(srv, frames, interval_ms=100, **body):
    sid, params = new_capture(srv, **body)
    r = upload(srv, sid, seal(params, sid, capture_json([read(f) for f in frames], interval_ms)))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "IN_PROGRESS"
    return sid, wait_result(srv, sid)


# ---- init-liveness-parameters ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["LIVENESS_PASSIVE", "LIVENESS_PASSIVE_VIDEO", "LIVENESS_ACTIVE"])
def test_init_parameters_shape_and_signature(server, public_key, kind):
    sid = server.create_session()
    r = init(server, sid, type=kind, id="replay-id")
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["id"] == "replay-id" and p["type"] == kind and p["securityLevel"] == "HIGH"
    assert p["imageRetrievalDisabled"] is True  # the spec's default
    assert isinstance(p["seed"], int) and 0 <= p["seed"] < 2 ** 31
    assert len(base64.b64decode(p["serverRandom"], validate=True)) == 32
    cert = x509.load_der_x509_certificate(base64.b64decode(p["certificates"][0]))
    assert isinstance(cert.public_key(), rsa.RSAPublicKey), "a dedicated RSA encryption key, not the ES256 signer"
    assert ("nbChallenge" in p) == (kind == "LIVENESS_ACTIVE")
    if kind == "LIVENESS_ACTIVE":
        assert p["nbChallenge"] == 2
    verify_jws(p, public_key, detached=False)
    g = server.get(f"/v2/bio-sessions/{sid}/init-liveness-parameters", key=KEY_A)
    assert g.status_code == 200 and {k: v for k, v in g.json().items() if k != "signature"} == \
        {k: v for k, v in p.items() if k != "signature"}
    verify_jws(g.json(), public_key, detached=False)


def test_init_is_fresh_each_time_and_accepts_the_array_form(server):
    sid = server.create_session()
    a = init(server, sid).json()
    b = server.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters",
                         [{"type": "LIVENESS_ACTIVE", "nbChallenge": 3, "securityLevel": "LOW"}], key=KEY_A).json()
    assert a["serverRandom"] != b["serverRandom"] and a["id"] != b["id"]
    assert b["nbChallenge"] == 3 and b["securityLevel"] == "LOW"
    assert a["certificates"] == b["certificates"]


@pytest.mark.parametrize("body,part", [
    ({"type": "NO_LIVENESS"}, "not supported anymore"),
    ({"type": "LIVENESS_MEDIUM"}, "not supported anymore"),
    ({"type": "LIVENESS_HIGH"}, "deprecated, use LIVENESS_ACTIVE"),
    ({"type": "LIVENESS_SUPER"}, "unknown liveness type"),
    ({}, "'type' is required"),
    ({"type": 3}, "must be a string"),
    ({"type": "LIVENESS_PASSIVE", "securityLevel": "ULTRA"}, "securityLevel"),
    ({"type": "LIVENESS_ACTIVE", "nbChallenge": 0}, "nbChallenge"),
    ({"type": "LIVENESS_ACTIVE", "nbChallenge": 33}, "nbChallenge must be between 1 and 32"),
    ({"type": "LIVENESS_ACTIVE", "nbChallenge": "two"}, "integer"),
    ({"type": "LIVENESS_PASSIVE", "imageRetrievalDisabled": "no"}, "boolean"),
    ({"type": "LIVENESS_PASSIVE", "id": "x" * 129}, "longer than"),
])
def test_init_rejections(server, body, part):
    sid = server.create_session()
    assert_error(server.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters", body, key=KEY_A), 400, part)


def test_init_auth_tenant_and_missing_session(server):
    sid = server.create_session()
    path = f"/v2/bio-sessions/{sid}/init-liveness-parameters"
    assert_error(server.post_json(path, {"type": "LIVENESS_PASSIVE"}), 401)
    assert_error(server.post_json(path, {"type": "LIVENESS_PASSIVE"}, key=KEY_SESSIONS), 403)
    assert_error(server.post_json(path, {"type": "LIVENESS_PASSIVE"}, key=KEY_B), 404)
    assert_error(init(server, "00000000-0000-4000-8000-000000000000"), 404)
    assert_error(server.get(path, key=KEY_A), 404, "liveness parameters")
    assert_error(metadata(server, sid), 404, "liveness parameters")
    assert_error(server.post(path, key=KEY_A, data="{}", headers={"Content-Type": "text/plain"}), 415)


# ---- verdicts ------------------------------------------------------------------------------

def test_passive_live_capture_succeeds_with_image_and_detached_signature(server, public_key):
    sid, m = run(server, LIVE[:1], imageRetrievalDisabled=False)
    assert m["status"] == "SUCCESS", m
    assert base64.b64decode(m["image"]) == read(LIVE[0])
    assert set(m["landmarks"]) == {"eyes", "box"} and m["landmarks"]["box"]["width"] > 50
    assert m["deviceInfo"]["model"] == "test-client" and m["sdkInfo"]["name"] == "liveness_client.py"
    verify_jws(m, public_key, detached=True)
    # The best image can become a face of the session (documented flow).
    r = server.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A,
                    files={"face": (None, json.dumps({"imageType": "SELFIE"}), "application/json"),
                           "image": ("best.jpg", base64.b64decode(m["image"]), "image/jpeg")})
    assert r.status_code in (200, 201), r.text


def test_passive_printed_photo_is_spoof_without_image_by_default(server, public_key):
    _, m = run(server, SPOOF[:1])
    assert m["status"] == "SPOOF", m
    assert "image" not in m  # imageRetrievalDisabled defaults to true
    verify_jws(m, public_key, detached=False)


@pytest.mark.parametrize("level", ["LOW", "MEDIUM", "HIGH"])
def test_passive_video_live_and_attack_per_level(server, level):
    _, m = run(server, LIVE[:5], type="LIVENESS_PASSIVE_VIDEO", securityLevel=level)
    assert m["status"] == "SUCCESS", m
    _, m = run(server, SPOOF[:4], type="LIVENESS_PASSIVE_VIDEO", securityLevel=level)
    assert m["status"] == "SPOOF", m


def test_passive_video_identical_frames_are_spoof(server):
    _, m = run(server, [LIVE[0], LIVE[1], LIVE[0]], type="LIVENESS_PASSIVE_VIDEO")
    assert m["status"] == "SPOOF" and "identical" in m["reason"], m


def test_passive_video_face_change_is_spoof(server):
    other = sorted(glob.glob(os.path.join(NUAA, "live", "0002", "*.jpg")))[:2]
    _, m = run(server, LIVE[:2] + other, type="LIVENESS_PASSIVE_VIDEO")
    assert m["status"] == "SPOOF", m


def test_active_without_head_turns_fails(server):
    _, m = run(server, LIVE[:6], type="LIVENESS_ACTIVE", nbChallenge=2)
    assert m["status"] == "FAILED" and "challenges" in m["reason"], m


def test_no_face_fails(server):
    import cv2
    import numpy as np
    ok, jpg = cv2.imencode(".jpg", np.full((240, 320, 3), 128, np.uint8))
    sid, params = new_capture(server)
    r = upload(server, sid, seal(params, sid, capture_json([jpg.tobytes()])))
    assert r.status_code == 202, r.text
    m = wait_result(server, sid)
    assert m["status"] == "FAILED" and "no face" in m["reason"], m


def test_undecodable_frame_is_error(server):
    sid, params = new_capture(server)
    assert upload(server, sid, seal(params, sid, capture_json([b"\xff\xd8 not a jpeg"]))).status_code == 202
    m = wait_result(server, sid)
    assert m["status"] == "ERROR", m


def test_challenge_derivation_matches_the_server_contract():
    assert challenges(1150867590, 4) == challenges(1150867590, 4)
    assert len({tuple(challenges(s, 3)) for s in range(50)}) > 4


# ---- upload rejections ------------------------------------------------------------------------

def test_replayed_upload_is_refused(server):
    sid, params = new_capture(server)
    env = seal(params, sid, capture_json([read(LIVE[0])]))
    assert upload(server, sid, env).status_code == 202
    assert_error(upload(server, sid, env), 409, "replays are refused")
    wait_result(server, sid)
    assert_error(upload(server, sid, env), 409)
    # After a new init the old upload carries a stale serverRandom.
    assert init(server, sid).status_code == 200
    assert_error(upload(server, sid, env), 400, "serverRandom")


def test_wrong_server_random_tampered_and_foreign_uploads(server):
    sid, params = new_capture(server)
    cap = capture_json([read(LIVE[0])])
    wrong = base64.b64encode(os.urandom(32)).decode()
    assert_error(upload(server, sid, seal(params, sid, cap, server_random=wrong)), 400, "serverRandom")
    env = seal(params, sid, cap)
    ct = bytearray(base64.b64decode(env["ciphertext"]))
    ct[len(ct) // 2] ^= 1
    assert_error(upload(server, sid, dict(env, ciphertext=base64.b64encode(bytes(ct)).decode())), 400, "authentication")
    # Sealed for another session: the AAD differs.
    assert_error(upload(server, sid, seal(params, "another-session", cap)), 400, "authentication")
    key = bytearray(base64.b64decode(env["encryptedKey"]))
    key[5] ^= 1
    assert_error(upload(server, sid, dict(env, encryptedKey=base64.b64encode(bytes(key)).decode())), 400, "encrypted key")
    assert_error(upload(server, sid, dict(env, iv=base64.b64encode(b"123").decode())), 400, "iv")
    assert_error(upload(server, sid, dict(env, iv="***")), 400, "base64")
    assert_error(upload(server, sid, dict(env, version=2)), 400, "version")
    assert_error(upload(server, sid, {k: v for k, v in env.items() if k != "ciphertext"}), 400, "ciphertext")
    # None of these consumed the capture window.
    assert upload(server, sid, env).status_code == 202
    wait_result(server, sid)


@pytest.mark.parametrize("mutate,part", [
    (lambda c: c.update(frames=[]), "frames"),
    (lambda c: c.update(frames="x"), "frames"),
    (lambda c: c["frames"][0].update(timestamp=-1), "timestamps"),
    (lambda c: c["frames"][0].update(image="!!"), "base64"),
    (lambda c: c["frames"][0].update(extra=1), "frame 0"),
    (lambda c: c.update(deviceInfo={"x": "y" * 5000}), "deviceInfo"),
    (lambda c: c.update(deviceInfo="phone"), "object"),
])
def test_capture_content_rejections(server, mutate, part):
    sid, params = new_capture(server)
    cap = capture_json([read(LIVE[0])])
    mutate(cap)
    assert_error(upload(server, sid, seal(params, sid, cap)), 400, part)


def test_frame_limit_is_exact_on_decoded_bytes(server):
    """4 MiB decoded is the limit: exactly 4 MiB is taken, one byte more is refused
    (the check used to be on the base64 length, which let 2 extra bytes through)."""
    limit = 4 << 20
    jpeg = read(LIVE[0])
    for size, status in ((limit + 1, 400), (limit + 2, 400), (limit, 202)):
        sid, params = new_capture(server)
        frame = jpeg + b"\0" * (size - len(jpeg))
        r = upload(server, sid, seal(params, sid, capture_json([frame])))
        if status == 400:
            assert_error(r, 400, "at most 4194304 bytes")
        else:
            assert r.status_code == 202, r.text
            wait_result(server, sid)


def test_capture_plaintext_must_be_json(server):
    sid, params = new_capture(server)
    assert_error(upload(server, sid, seal(params, sid, b"not json")), 400, "decrypted capture")


def test_video_needs_increasing_timestamps_and_three_frames(server):
    sid, params = new_capture(server, type="LIVENESS_PASSIVE_VIDEO")
    frames = [read(f) for f in LIVE[:3]]
    assert_error(upload(server, sid, seal(params, sid, capture_json(frames[:2]))), 400, "3 to 100 frames")
    assert_error(upload(server, sid, seal(params, sid, capture_json(frames, interval_ms=0))), 400, "increasing")


def test_upload_before_init_and_for_other_tenants(server):
    sid = server.create_session()
    env = {"serverRandom": "x", "encryptedKey": "AA==", "iv": "AA==", "ciphertext": "AA=="}
    assert_error(upload(server, sid, env), 404, "liveness parameters")
    sid, params = new_capture(server)
    assert_error(upload(server, sid, seal(params, sid, capture_json([read(LIVE[0])])), key=KEY_B), 404)


def test_oversized_upload_is_413(start_server):
    srv = start_server("--liveness-max-upload-bytes", "4096")
    sid, params = new_capture(srv)
    assert_error(upload(srv, sid, seal(params, sid, capture_json([read(LIVE[0])]))), 413, "limit")


# ---- lifecycle: delete, timeout, callback --------------------------------------------------------

def test_delete_during_evaluation_is_409(server):
    sid, params = new_capture(server, type="LIVENESS_PASSIVE_VIDEO")
    frames = [read(f) for f in (LIVE * 4)[:40]]
    frames = [f + bytes([i]) for i, f in enumerate(frames)]  # distinct bytes, same pixels are fine for the 409
    assert upload(server, sid, seal(params, sid, capture_json(frames))).status_code == 202
    assert_error(server.delete(f"/v2/bio-sessions/{sid}", key=KEY_A), 409, "in progress")
    assert_error(init(server, sid), 409, "in progress")
    wait_result(server, sid)
    assert server.delete(f"/v2/bio-sessions/{sid}", key=KEY_A).status_code == 204


def test_timeout_when_no_upload_arrives(start_server):
    srv = start_server("--liveness-timeout", "1")
    sid, params = new_capture(srv)
    assert metadata(srv, sid).json()["status"] == "INITIALIZED"
    time.sleep(1.6)
    m = metadata(srv, sid).json()
    assert m["status"] == "TIMEOUT", m
    assert_error(upload(srv, sid, seal(params, sid, capture_json([read(LIVE[0])]))), 409, "TIMEOUT")
    # A new init opens a new window.
    sid2, params = new_capture(srv)
    assert upload(srv, sid2, seal(params, sid2, capture_json([read(LIVE[0])]))).status_code == 202
    assert wait_result(srv, sid2)["status"] == "SUCCESS"


class Receiver:
    """A local HTTP server recording callback bodies."""

    def __init__(self, host="127.0.0.1"):
        self.bodies = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                outer.bodies.append((self.headers.get("Content-Type"), json.loads(self.rfile.read(n))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        class Server(http.server.HTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        self.httpd = Server((host, 0), Handler)
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.httpd.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count, timeout):
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.bodies

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_callback_delivered_when_private_addresses_allowed(start_server, receiver):
    srv = start_server("--callback-allow-private", "true", "--liveness-timeout", "2")
    sid, params = new_capture(srv, session={"callbackURL": receiver.url})
    assert upload(srv, sid, seal(params, sid, capture_json([read(LIVE[0])]))).status_code == 202
    bodies = receiver.wait(1, WAIT)
    assert bodies == [("application/json", {"sessionId": sid})]
    assert wait_result(srv, sid)["status"] == "SUCCESS"
    # A capture that never arrives is reported too (TIMEOUT), by the server on its own.
    sid2, _ = new_capture(srv, session={"callbackURL": receiver.url})
    bodies = receiver.wait(2, 10)
    assert bodies[1] == ("application/json", {"sessionId": sid2})
    assert metadata(srv, sid2).json()["status"] == "TIMEOUT"


def test_callback_to_loopback_refused_by_default(start_server, receiver):
    srv = start_server()
    r = srv.post_json("/v2/bio-sessions", {"callbackURL": receiver.url}, key=KEY_A)
    assert_error(r, 400, "callbackURL cannot be used: refused: 127.0.0.1 resolves to a private or local address")
    assert receiver.wait(1, 1.0) == []


def test_callback_allow_delivers_and_counts(start_server, receiver):
    srv = start_server("--callback-allow", "127.0.0.1/32")
    sid, params = new_capture(srv, session={"callbackURL": receiver.url})
    assert upload(srv, sid, seal(params, sid, capture_json([read(LIVE[0])]))).status_code == 202
    wait_result(srv, sid)
    assert receiver.wait(1, 15) == [("application/json", {"sessionId": sid})]
    metrics = srv.get("/metrics", key=KEY_ADMIN).text
    assert "bioserver_callbacks_delivered_total 1" in metrics, metrics


def test_callback_to_an_ipv6_literal_is_delivered(start_server):
    receiver = Receiver("::1")
    try:
        srv = start_server("--callback-allow", "::1/128")
        sid, params = new_capture(srv, session={"callbackURL": receiver.url})
        assert upload(srv, sid, seal(params, sid, capture_json([read(LIVE[0])]))).status_code == 202
        wait_result(srv, sid)
        assert receiver.wait(1, 15) == [("application/json", {"sessionId": sid})]
    finally:
        receiver.close()


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]", "[64:ff9b::127.0.0.1]",
                                  "[64:ff9b::a00:1]", "[2002:7f00:1::1]", "[2002:c0a8:101::]", "[::1]"])
def test_ipv6_spellings_of_local_addresses_are_refused(start_server, host):
    srv = start_server("--callback-allow", "127.0.0.1/32")
    r = srv.post_json("/v2/bio-sessions", {"callbackURL": f"http://{host}:9/cb"}, key=KEY_A)
    assert_error(r, 400, "resolves to a private or local address")


def test_callback_failures_are_logged_and_counted(start_server):
    srv = start_server("--callback-allow", "127.0.0.1/32")
    dead = f"http://127.0.0.1:{free_port()}/cb"  # nothing listens there
    sid, params = new_capture(srv, session={"callbackURL": dead})
    assert upload(srv, sid, seal(params, sid, capture_json([read(LIVE[0])]))).status_code == 202
    wait_result(srv, sid)
    srv.wait_for_log(lambda l: "abandoned" in l.get("message", "") and sid in l.get("message", ""), timeout=30)
    metrics = srv.get("/metrics", key=KEY_ADMIN).text
    assert "bioserver_callbacks_abandoned_total 1" in metrics and "bioserver_callback_failures_total 4" in metrics


# ---- the capture page ------------------------------------------------------------------------

@pytest.mark.parametrize("path,ctype", [("/capture/", "text/html"), ("/capture", "text/html"),
                                        ("/capture/index.html", "text/html"),
                                        ("/capture/capture.js", "text/javascript"),
                                        ("/capture/style.css", "text/css")])
def test_capture_page_is_served(server, path, ctype):
    r = server.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith(ctype)
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]


def test_capture_page_loads_the_sdk_from_the_video_prefix(server, start_server):
    """The page runs on the WebCapture SDK; the server writes its video prefix (a
    setting) into index.html, and only there."""
    page = server.get("/capture/").text
    assert '<script src="/video-server/bioserver-environment-api.js"></script>' in page
    assert '<script src="/video-server/bioserver-network-check.js"></script>' in page
    assert 'data-video-path="/video-server"' in page and "%VIDEO_SERVER_PATH%" not in page
    assert server.get("/capture/index.html").text == page
    assert server.get("/capture/capture.js").headers["Cache-Control"] == "no-cache"
    srv = start_server("--video-server-path", "/wbs/video")
    page = srv.get("/capture/").text
    assert page.count('src="/wbs/video/bioserver-') == 3 and "/video-server" not in page


@pytest.mark.parametrize("path", ["/capture/secret.pem", "/capture/..%2Fbioserver.conf", "/capture/a/b"])
def test_capture_page_serves_nothing_else(server, path):
    assert server.get(path).status_code == 404
