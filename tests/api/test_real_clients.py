"""Real clients work unchanged: what IDEMIA's WebCapture demo and other clients of the
reference send is accepted (string booleans, unknown fields, non-integer numbers, every
mode), health tells the truth, ages follow the reference's rule, compression never
grows an image, callbacks are checked up front, CORS, and the WebCapture server flow
(init-liveness-session, liveness-challenge-result with the best image as a face).
The demo's own server code runs against us in test_webcapture_demo.py."""
import glob
import json
import os
import subprocess
import sys
import time

import cv2
import pytest
import requests

from conftest import (BIOSERVER, KEY_A, KEY_B, KEY_SESSIONS, REPO_ROOT, SANITIZED, assert_error)

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
from liveness_client import capture_json, seal  # noqa: E402

DATA = os.path.join(REPO_ROOT, "..", "shared", "data")
NUAA = os.path.join(DATA, "spoof", "nuaa")
LIVE = sorted(glob.glob(os.path.join(NUAA, "live", "0001", "*.jpg")))
SPOOF = sorted(glob.glob(os.path.join(NUAA, "spoof", "0001", "*.jpg")))
LFW = os.path.join(DATA, "lfw", "lfw_deepfunneled")
PHOTO = os.path.join(DATA, "photos", "sample1.jpg")
WAIT = 120 if SANITIZED else 30
# The demo's default face part (front/templates/*/index.js), sent as a file part.
DEMO_FACE = b'{"imageType":"SELFIE","friendlyName":"selfie","imageRotationEnabled":"true"}'
DEMO_SESSION = {"livenessMode": "LIVENESS_PASSIVE", "numberOfChallenge": 2, "correlationId": "wbs-demo-correlation-id",
                "evidenceId": "wbs-demo-evidence-id", "ageThreshold": 18, "securityLevel": "HIGH"}


def read(path):
    with open(path, "rb") as f:
        return f.read()


def lfw(name, i):
    return os.path.join(LFW, name, f"{name}_{i:04d}.jpg")


def raw(srv, method, path, key=KEY_A, **kw):
    """A request outside /bioserver-app (the video-server prefix)."""
    headers = dict(kw.pop("headers", {}))
    if key:
        headers["apikey"] = key
    return requests.request(method, srv.base + path, headers=headers, timeout=30, **kw)


def init_session(srv, key=KEY_A, **body):
    return raw(srv, "POST", "/video-server/init-liveness-session", key=key, json=dict(DEMO_SESSION, **body))


def challenge_result(srv, sid, key=KEY_A, suffix=""):
    return srv.get(f"/v2/bio-sessions/{sid}/liveness-challenge-result{suffix}", key=key)


def capture(srv, sid, frames):
    params = srv.get(f"/v2/bio-sessions/{sid}/init-liveness-parameters", key=KEY_A).json()
    env = seal(params, sid, capture_json([read(f) for f in frames]))
    r = srv.post_json(f"/v2/bio-sessions/{sid}/liveness-capture", env, key=KEY_A)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        r = challenge_result(srv, sid)
        assert r.status_code == 200, r.text
        if r.json()["livenessStatus"] not in ("INITIALIZED", "IN_PROGRESS"):
            return r.json()
        time.sleep(0.1)
    raise AssertionError("no liveness result in time")


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One server of our own: these tests also use paths outside /bioserver-app."""
    from conftest import launch
    srv = launch(str(tmp_path_factory.mktemp("clients")))
    yield srv
    srv.check_clean_exit()


# ---- 1. tolerant input, strict meaning ------------------------------------------------------

def test_demo_face_part_with_string_boolean_is_accepted(server):
    sid = server.create_session()
    files = [("image", ("image", read(lfw("Akhmed_Zakayev", 1)), "application/octet-stream")),
             ("face", ("face", DEMO_FACE, "application/octet-stream"))]
    r = server.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A, files=files)
    assert r.status_code == 201, r.text
    assert r.json()["imageRotationEnabled"] is True and r.json()["friendlyName"] == "selfie"


@pytest.mark.parametrize("value,expected", [("TRUE", True), ("true", True), ("False", False), (True, True)])
def test_booleans_may_be_strings_in_any_case(server, value, expected):
    r = server.post_json("/v2/bio-sessions", {"imageStorageEnabled": value}, key=KEY_A)
    assert r.status_code == 201, r.text
    assert r.json()["imageStorageEnabled"] is expected


@pytest.mark.parametrize("value", ["yes", 1, "", "truex"])
def test_other_boolean_spellings_are_400_naming_the_field(server, value):
    assert_error(server.post_json("/v2/bio-sessions", {"imageStorageEnabled": value}, key=KEY_A), 400,
                 "field 'imageStorageEnabled' in the bio-session must be a boolean")


def test_multipart_boolean_parts_any_case(server):
    sid = server.create_session()
    files = [("image", ("i.jpg", read(lfw("Akhmed_Zakayev", 1)), "image/jpeg")),
             ("face", ("f.json", b'{"imageType":"SELFIE"}', "application/json")),
             ("imageRotationEnabled", (None, "TRUE")), ("signatureDisabled", (None, "False"))]
    r = server.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A, files=files)
    assert r.status_code == 201 and r.json()["imageRotationEnabled"] is True and "signature" in r.json(), r.text


def test_unknown_fields_are_ignored_and_logged_at_debug(start_server):
    quiet = start_server()
    assert quiet.post_json("/v2/bio-sessions", DEMO_SESSION, key=KEY_A).status_code == 201
    time.sleep(0.2)
    assert not [l for l in quiet.log_lines() if "ignored unknown field" in l.get("message", "")]
    chatty = start_server("--log-level", "debug")
    r = chatty.post_json("/v2/bio-sessions", DEMO_SESSION, key=KEY_A)
    assert r.status_code == 201, r.text
    assert r.json()["correlationId"] == "wbs-demo-correlation-id" and "livenessMode" not in r.json()
    line = chatty.wait_for_log(lambda l: "ignored unknown field 'livenessMode'" in l.get("message", ""))
    assert line["level"] == "debug" and "the bio-session" in line["message"]


@pytest.mark.parametrize("ttl,expected", [(30.5, 31), (30.4, 30), (1.0, 1), (2, 2), ("45", 45), ("7.5", 8)])
def test_ttl_seconds_is_rounded_to_the_nearest_second(server, ttl, expected):
    r = server.post_json("/v2/bio-sessions", {"ttlSeconds": ttl}, key=KEY_A)
    assert r.status_code == 201, r.text
    assert r.json()["ttlSeconds"] == expected


def test_twenty_challenges_and_the_capture_window(start_server):
    srv = start_server()
    for n in (20, 32):
        sid = srv.create_session()
        r = srv.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters", {"type": "LIVENESS_ACTIVE", "nbChallenge": n},
                          key=KEY_A)
        assert r.status_code == 200 and r.json()["nbChallenge"] == n, r.text
    short = start_server("--liveness-timeout", "30")
    sid = short.create_session()
    ok = short.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters", {"type": "LIVENESS_ACTIVE", "nbChallenge": 10},
                         key=KEY_A)
    assert ok.status_code == 200, ok.text
    r = short.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters", {"type": "LIVENESS_ACTIVE", "nbChallenge": 11},
                        key=KEY_A)
    assert_error(r, 400, "nbChallenge must be between 1 and 10: 11 challenges do not fit in the 30-second capture window")


# ---- 2. health that tells the truth ------------------------------------------------------------

def test_capabilities_and_monitor_when_everything_works(single):
    assert single.get("/v2/capabilities", key=KEY_A).status_code == 200
    r = single.get("/v2/monitor")
    assert r.status_code == 200 and r.json()["status"] == "UP" and r.json()["reasons"] == [], r.text


@pytest.mark.parametrize("flags,reason", [
    (("--models", "/nonexistent/bioserver-models"), "the face models are not loaded"),
    (("--calibration", "/nonexistent/bioserver-far.txt"), "no FAR calibration is loaded"),
])
def test_an_instance_that_cannot_work_says_so_without_paths(start_server, flags, reason):
    srv = start_server(*flags, "--degraded-start", "true")  # without it, such a start is refused
    r = srv.get("/v2/capabilities", key=KEY_A)
    body = assert_error(r, 500, "the instance is not working properly: " + reason)
    mon = srv.get("/v2/monitor")
    assert mon.status_code == 503 and mon.json()["status"] == "DEGRADED", mon.text
    assert any(reason in x for x in mon.json()["reasons"]), mon.text
    face = srv.post("/v2/faces", key=KEY_A, files={"face": (None, '{"imageType":"SELFIE"}'),
                                                   "image": ("i.jpg", read(lfw("Akhmed_Zakayev", 1)))})
    match = srv.post("/v2/match/images", key=KEY_A, files={
        "referenceImage": ("r.jpg", read(lfw("Akhmed_Zakayev", 1))), "candidateImage": ("c.jpg", read(lfw("Akhmed_Zakayev", 3))),
        "referenceImageType": (None, "SELFIE"), "candidateImageType": (None, "SELFIE")})
    assert 503 in (face.status_code, match.status_code)
    for text in (r.text, mon.text, face.text, match.text):
        assert "/nonexistent" not in text and "bioserver-" not in text, text
    # The log keeps the detail for the operator.
    assert any("/nonexistent" in l.get("message", "") for l in srv.log_lines())
    del body


# ---- 3. ages: see test_faces.py (threshold required, literal rule, safety margin) --------------

# ---- 4. compression never returns more bytes ----------------------------------------------------

def test_compression_never_returns_more_than_the_original(server):
    sid = server.create_session(imageStorageEnabled=True)
    small = read(lfw("Akhmed_Zakayev", 1))  # 250x250 JPEG: a re-encode would not be smaller
    ok, png = cv2.imencode(".png", cv2.imread(PHOTO))
    for image, smaller in ((small, False), (png.tobytes(), True), (read(PHOTO), True)):
        r = server.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A, files={
            "face": ("f.json", b'{"imageType":"SELFIE"}', "application/json"), "image": ("i", image)})
        assert r.status_code == 201, r.text
        base = f"/v2/bio-sessions/{sid}/faces/{r.json()['id']}/image"
        plain = server.get(base, key=KEY_A)
        comp = server.get(base + "?compression=TRUE", key=KEY_A)
        assert plain.content == image and comp.status_code == 200
        assert len(comp.content) <= len(plain.content)
        if smaller:
            assert len(comp.content) < len(plain.content) / 2 and comp.headers["Content-Type"] == "image/jpeg"
            h, w = cv2.imdecode(__import__("numpy").frombuffer(comp.content, "uint8"), cv2.IMREAD_COLOR).shape[:2]
            assert max(h, w) <= 1280, (w, h)
        else:
            assert comp.content == image


# ---- 5. callbacks: test_foundation.py (refused at creation) and test_liveness.py (metrics) ---

# ---- 6. CORS ----------------------------------------------------------------------------------

def test_no_cors_by_default(single):
    pre = requests.options(single.url("/v2/bio-sessions"), headers={"Origin": "https://app.example.com",
                                                                     "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 405 and "Access-Control-Allow-Origin" not in pre.headers
    r = single.get("/v2/capabilities", key=KEY_A, headers={"Origin": "https://app.example.com"})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers


def test_cors_for_listed_origins(start_server):
    srv = start_server("--cors-origins", "https://app.example.com, https://other.example.com:8443")
    origin = {"Origin": "https://app.example.com"}
    pre = requests.options(srv.url("/v2/bio-sessions/abc/faces"),
                           headers=dict(origin, **{"Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "apikey, content-type"}))
    assert pre.status_code == 204, pre.text  # no API key: browsers send none with a preflight
    assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert set(pre.headers["Access-Control-Allow-Methods"].split(", ")) == {"POST", "GET", "DELETE"}
    assert "apikey" in pre.headers["Access-Control-Allow-Headers"] and pre.headers["Access-Control-Max-Age"] == "600"
    r = srv.post_json("/v2/bio-sessions", {}, key=KEY_A, headers=origin)
    assert r.status_code == 201 and r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Location" in r.headers["Access-Control-Expose-Headers"] and r.headers["Vary"] == "Origin"
    err = srv.get("/v2/capabilities", headers=origin)  # errors carry the headers too, so pages can read them
    assert err.status_code == 401 and err.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    other = {"Origin": "https://evil.example.com"}
    assert "Access-Control-Allow-Origin" not in srv.get("/v2/capabilities", key=KEY_A, headers=other).headers
    assert requests.options(srv.url("/v2/bio-sessions"), headers=other).status_code == 405
    assert requests.options(srv.url("/v2/nothing"), headers=origin).status_code == 404


def test_cors_any_origin(start_server):
    srv = start_server("--cors-origins", "*")
    r = srv.get("/v2/capabilities", key=KEY_A, headers={"Origin": "https://anywhere.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"


# ---- 7. the WebCapture server flow ---------------------------------------------------------------

def test_init_liveness_session_creates_session_and_parameters(single):
    r = init_session(single, callbackURL="https://93.184.215.14/cb")
    assert r.status_code == 201, r.text
    sid = r.headers["Location"].split("/v2/bio-sessions/")[1]
    body = r.json()
    assert body["sessionId"] == sid and body["type"] == "LIVENESS_PASSIVE" and body["securityLevel"] == "HIGH"
    assert body["serverRandom"] and body["certificates"] and body["signature"].count(".") == 2
    session = single.get(f"/v2/bio-sessions/{sid}", key=KEY_A).json()
    assert session["correlationId"] == "wbs-demo-correlation-id" and session["evidenceId"] == "wbs-demo-evidence-id"
    assert session["callbackURL"] == "https://93.184.215.14/cb" and session["imageStorageEnabled"] is True
    params = single.get(f"/v2/bio-sessions/{sid}/init-liveness-parameters", key=KEY_A).json()
    assert params["serverRandom"] == body["serverRandom"]
    pending = challenge_result(single, sid).json()
    assert pending["livenessStatus"] == "INITIALIZED" and "bestImageId" not in pending
    assert pending["age"] == {"threshold": 18}
    active = init_session(single, livenessMode="LIVENESS_ACTIVE", numberOfChallenge=3, securityLevel="LOW")
    assert active.status_code == 201 and active.json()["nbChallenge"] == 3 and active.json()["securityLevel"] == "LOW"


@pytest.mark.parametrize("change,status,message", [
    ({"livenessMode": None}, 400, "field 'livenessMode' is required"),
    ({"livenessMode": "LIVENESS_HIGH"}, 400, "deprecated"),
    ({"securityLevel": "ULTRA"}, 400, "securityLevel must be LOW, MEDIUM or HIGH"),
    ({"livenessMode": "LIVENESS_ACTIVE", "numberOfChallenge": 99}, 400, "nbChallenge must be between 1 and"),
    ({"ageThreshold": 200}, 400, "ageThreshold must be between 0 and 150"),
    ({"ageThreshold": "adult"}, 400, "field 'ageThreshold' in the liveness session must be a number"),
    ({"callbackURL": "http://127.0.0.1/cb"}, 400, "callbackURL cannot be used"),
    ({"ttlSeconds": 0}, 400, "ttlSeconds"),
])
def test_init_liveness_session_rejections(single, change, status, message):
    body = dict(DEMO_SESSION, **change)
    body = {k: v for k, v in body.items() if v is not None}
    r = raw(single, "POST", "/video-server/init-liveness-session", json=body)
    assert_error(r, status, message)


def test_init_liveness_session_auth(single):
    assert_error(init_session(single, key=None), 401)
    assert_error(init_session(single, key=KEY_SESSIONS), 403)


def test_video_capabilities_and_prefix(single, start_server):
    r = raw(single, "GET", "/video-server/v2/capabilities")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "UP" and "LIVENESS_PASSIVE" in r.json()["livenessModes"]
    assert_error(raw(single, "GET", "/video-server/v2/capabilities", key=None), 401)
    assert_error(raw(single, "GET", "/bioserver-app/video-server/v2/capabilities"), 404)
    srv = start_server("--video-server-path", "/wbs/video")
    assert raw(srv, "GET", "/wbs/video/v2/capabilities").status_code == 200
    assert raw(srv, "POST", "/wbs/video/init-liveness-session", json=DEMO_SESSION).status_code == 201
    assert_error(raw(srv, "GET", "/video-server/v2/capabilities"), 404)
    bad = subprocess.run([BIOSERVER, "--video-server-path", "wbs/", "--listen", "127.0.0.1:0"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0 and "video-server-path" in bad.stderr, bad.stderr


@pytest.mark.skipif(not LIVE or not SPOOF, reason="../shared/data/spoof/nuaa is missing")
def test_live_capture_result_best_image_is_a_face(single):
    r = init_session(single)
    sid = r.json()["sessionId"]
    result = capture(single, sid, LIVE[:1])
    assert result["livenessStatus"] == "SUCCESS", result
    assert result["livenessMode"] == "LIVENESS_PASSIVE" and result["securityLevel"] == "HIGH"
    assert "diagnostic" not in result and result["signature"].count(".") == 2
    age = result["age"]
    assert age["threshold"] == 18 and 5 < age["ageEstimated"] < 80
    assert age["aboveThreshold"] is (age["ageEstimated"] >= 18)
    best = result["bestImageId"]
    face = single.get(f"/v2/bio-sessions/{sid}/faces/{best}", key=KEY_A).json()
    assert face["id"] == best and face["friendlyName"] == "bestImage" and face["template"]
    image = single.get(f"/v2/bio-sessions/{sid}/faces/{best}/image", key=KEY_A)
    assert image.status_code == 200 and image.content == read(LIVE[0])
    # Another frame of the same person matches the best image.
    other = single.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A, files={
        "face": ("f", DEMO_FACE), "image": ("i", read(LIVE[len(LIVE) // 2]))})
    assert other.status_code == 201, other.text
    stranger = single.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A, files={
        "face": ("f", DEMO_FACE), "image": ("i", read(lfw("Colin_Powell", 1)))})
    matches = single.get(f"/v2/bio-sessions/{sid}/faces/{best}/matches", key=KEY_A).json()
    by_id = {m["candidate"]["id"]: m["score"] for m in matches}
    assert by_id[other.json()["id"]] >= 4000 > by_id[stranger.json()["id"]], by_id
    # The older path form and the deprecated v2 metadata answer the same.
    older = challenge_result(single, sid, suffix="/LIVENESS_PASSIVE/HIGH?numberOfChallenge=2").json()
    assert {k: v for k, v in older.items() if k != "signature"} == {k: v for k, v in result.items() if k != "signature"}
    v2 = single.get(f"/v2/bio-sessions/{sid}/replay-liveness-metadata", key=KEY_A).json()
    v3 = single.get(f"/v3/bio-sessions/{sid}/replay-liveness-metadata", key=KEY_A).json()
    assert v2["status"] == v3["status"] == "SUCCESS" and v2["id"] == v3["id"]
    assert_error(challenge_result(single, sid, key=KEY_B), 404)


@pytest.mark.skipif(not SPOOF, reason="../shared/data/spoof/nuaa is missing")
def test_printed_photo_capture_is_spoof_with_a_diagnostic(single):
    sid = init_session(single).json()["sessionId"]
    result = capture(single, sid, SPOOF[:1])
    assert result["livenessStatus"] == "SPOOF", result
    assert result["diagnostic"] and "bestImageId" not in result
    assert single.get(f"/v2/bio-sessions/{sid}/faces", key=KEY_A).json() == []
