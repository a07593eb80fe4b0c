"""The real-time capture stream (docs/capture-stream.md) against the real binary:
the handshake and its refusals (before any upgrade, JSON errors), the encrypted
frames and every way a client can get them wrong (key, tag, seq replay and gap,
size, rate, order), guidance on real NUAA webcam frames, and whole captures that end
in the same verdicts, stored best face and liveness-challenge-result as an upload.

Frames come from ../shared/data/spoof/nuaa (never copied): subject 0001's webcam
frames (live) and printed-photo frames (spoof). A printed photo held to a camera is
still, so the spoof capture repeats one photo frame."""
import glob
import os
import socket
import struct
import sys
import threading
import time

import pytest
import requests

from conftest import KEY_A, REPO_ROOT, SANITIZED, UUID4_RE, assert_error

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
from liveness_client import capture_json, seal  # noqa: E402
from stream_client import CaptureStream, Closed, WebSocket, frame_bytes, run_capture  # noqa: E402

NUAA = os.path.join(REPO_ROOT, "..", "shared", "data", "spoof", "nuaa")
LIVE = sorted(glob.glob(os.path.join(NUAA, "live", "0001", "*.jpg")))
SPOOF = sorted(glob.glob(os.path.join(NUAA, "spoof", "0001", "*.jpg")))
NO_FACE = sorted(glob.glob(os.path.join(REPO_ROOT, "..", "shared", "data", "negatives", "no_face", "*.jp*g")))
POSITIONS = {"TRACKER_POSITION_INFO_" + p for p in (
    "GOOD", "MOVE_BACK_INTO_FRAME", "CENTER_MOVE_FORWARDS", "CENTER_MOVE_BACKWARDS", "CENTER_MOVE_LEFT",
    "CENTER_MOVE_RIGHT", "CENTER_MOVE_UP", "CENTER_MOVE_DOWN", "CENTER_TILT_LEFT", "CENTER_TILT_RIGHT",
    "MOVING_TOO_FAST", "STAND_STILL")}
VIDEO = "/video-server"
WAIT = 120 if SANITIZED else 30

pytestmark = pytest.mark.skipif(not LIVE or not SPOOF, reason="../shared/data/spoof/nuaa is missing")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def new_session(srv, mode="LIVENESS_PASSIVE", **body):
    """init-liveness-session, as the demo's back end does; the session id."""
    body = dict({"livenessMode": mode, "securityLevel": "HIGH"}, **body)
    r = requests.post(srv.base + f"{VIDEO}/init-liveness-session", json=body, headers={"apikey": KEY_A}, timeout=30)
    assert r.status_code == 201, r.text
    return r.headers["Location"].rsplit("/", 1)[1]


def open_stream(srv, sid, prefix=VIDEO):
    return CaptureStream(srv.base, sid, prefix, timeout=WAIT)


def expect_close(cs, code, status, part):
    """The server's error message, then its close frame with code."""
    msgs = []
    with pytest.raises(Closed) as closed:
        for _ in range(200):
            msgs.append(cs.next())
    err = [m for m in msgs if m["type"] == "error"]
    assert err, msgs
    assert err[-1]["code"] == code and err[-1]["status"] == status, err[-1]
    assert part in err[-1]["message"], err[-1]
    assert closed.value.code == code, (closed.value.code, closed.value.reason)
    return err[-1]


def verdict(srv, sid, msgs):
    """The stream's last message is its result: the verdict, or IN_PROGRESS when the
    evaluation took longer than the stream waits (a loaded machine); either way the
    verdict the API gives is the one the stream gave. Returns (stream result, API result)."""
    result = msgs[-1]
    assert result["type"] == "result", msgs[-3:]
    api = challenge_result(srv, sid)
    if result["livenessStatus"] != "IN_PROGRESS":
        assert api["livenessStatus"] == result["livenessStatus"], (result, api)
    return result, api


def challenge_result(srv, sid):
    deadline = time.monotonic() + WAIT
    while True:
        r = srv.get(f"/v2/bio-sessions/{sid}/liveness-challenge-result", key=KEY_A)
        assert r.status_code == 200, r.text
        if r.json()["livenessStatus"] not in ("INITIALIZED", "IN_PROGRESS") or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.1)


# ---- handshake refusals (plain HTTP answers, nothing held) ------------------------------

def test_plain_get_is_426_with_the_upgrade_headers(server):
    sid = new_session(server)
    r = server.get(f"/v2/bio-sessions/{sid}/capture-stream")
    assert_error(r, 426, "WebSocket")
    assert r.headers["Upgrade"] == "websocket" and r.headers["Sec-WebSocket-Version"] == "13"


@pytest.mark.parametrize("headers,part", [
    ({"Sec-WebSocket-Version": "8"}, "version 13"),
    ({"Sec-WebSocket-Key": "c2hvcnQ="}, "16 bytes"),
    ({"Connection": "keep-alive"}, "Connection: Upgrade"),
])
def test_bad_websocket_handshake_is_426(server, headers, part):
    sid = new_session(server)
    ws = WebSocket(server.base, f"{VIDEO}/v2/bio-sessions/{sid}/capture-stream", headers=headers)
    assert ws.status == 426 and part in ws.body["message"] and UUID4_RE.match(ws.body["id"])


def test_unknown_session_is_404(server):
    cs = open_stream(server, "8a1c5cf4-2a2f-4a35-9b5b-2b4a0e0e6d11")
    assert cs.status == 404 and "waits for a capture" in cs.body["message"]
    # A plain GET gets the refusal the upgrade would get (a browser cannot read it).
    assert_error(server.get("/v2/bio-sessions/8a1c5cf4-2a2f-4a35-9b5b-2b4a0e0e6d11/capture-stream"), 404,
                 "waits for a capture")
    assert open_stream(server, "x" * 300).status == 404  # longer than any session id


def test_session_without_liveness_parameters_is_404(server):
    sid = server.create_session()
    cs = open_stream(server, sid)
    assert cs.status == 404, cs.body


def test_second_stream_for_the_same_parameters_is_409_and_reinit_opens_a_new_one(server):
    sid = server.create_session()
    r = server.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters", {"type": "LIVENESS_PASSIVE"}, key=KEY_A)
    assert r.status_code == 200, r.text
    first = open_stream(server, sid, prefix="/bioserver-app")  # our own prefix too
    assert first.status == 101 and first.hello["serverRandom"] == r.json()["serverRandom"]
    second = open_stream(server, sid)
    assert second.status == 409 and "already opened" in second.body["message"]
    assert_error(server.get(f"/v2/bio-sessions/{sid}/capture-stream"), 409, "already opened")
    first.close()
    r = server.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters", {"type": "LIVENESS_PASSIVE"}, key=KEY_A)
    third = open_stream(server, sid)
    assert third.status == 101 and third.hello["serverRandom"] == r.json()["serverRandom"]
    third.close()


def test_stream_after_the_capture_is_409(server):
    sid = new_session(server)
    cs, msgs = run_capture(server.base, sid, [read(LIVE[0])], fps=10, path_prefix=VIDEO)
    cs.close()
    assert msgs[-1]["type"] == "result"
    # the ticket was taken by that stream: a replay of the id gets nothing
    again = open_stream(server, sid)
    assert again.status == 409


def test_window_closed_is_409(start_server):
    srv = start_server("--liveness-timeout", "1")
    sid = new_session(srv)
    time.sleep(1.5)
    cs = open_stream(srv, sid)
    assert cs.status == 409 and "TIMEOUT" in cs.body["message"]


def test_stream_limit_is_503_with_retry_after(start_server):
    srv = start_server("--capture-stream-max", "1")
    first = open_stream(srv, new_session(srv))
    assert first.status == 101
    sid = new_session(srv)
    cs = open_stream(srv, sid)
    assert cs.status == 503 and "limit" in cs.body["message"]
    assert cs.ws.headers.get("retry-after")
    r = srv.get(f"/v2/bio-sessions/{sid}/capture-stream")
    assert_error(r, 503, "limit")
    assert r.headers["Retry-After"]
    first.close()
    time.sleep(0.3)  # the slot comes back when the stream's thread ends
    assert open_stream(srv, new_session(srv)).status == 101


# ---- the hello and the integrity of every frame ----------------------------------------

def test_hello_carries_the_parameters(server):
    sid = new_session(server, "LIVENESS_ACTIVE", numberOfChallenge=3)
    cs = open_stream(server, sid)
    h = cs.hello
    assert h["type"] == "hello" and h["version"] == 1 and h["sessionId"] == sid
    assert h["livenessMode"] == "LIVENESS_ACTIVE" and h["securityLevel"] == "HIGH"
    assert h["numberOfChallenge"] == 3 and len(h["challenges"]) == 3
    assert set(h["challenges"]) <= {"LEFT", "RIGHT"}
    assert h["maxFps"] == 15 and h["maxFrameBytes"] == 524288 and h["deadlineMs"] > time.time() * 1000
    cs.close()


def started(srv, mode="LIVENESS_PASSIVE"):
    cs = open_stream(srv, new_session(srv, mode))
    cs.start()
    assert [cs.next()["type"], cs.next()["instruction"]] == ["started", "TRACKER_CHALLENGE_DONT_MOVE"]
    return cs


def test_key_that_does_not_unwrap_closes_4400(server):
    cs = open_stream(server, new_session(server))
    cs.start(wrapped=os.urandom(256))
    expect_close(cs, 4400, 400, "does not decrypt")


def test_frame_before_start_closes_4400(server):
    cs = open_stream(server, new_session(server))
    cs.send_frame(read(LIVE[0]))
    expect_close(cs, 4400, 400, "before start")


def test_tampered_frame_closes_4400(server):
    cs = started(server)
    cs.send_frame(read(LIVE[0]), tamper=True)
    expect_close(cs, 4400, 400, "failed authentication")


def test_frame_under_another_key_closes_4400(server):
    cs = started(server)
    cs.send_frame(read(LIVE[0]), key=os.urandom(32))
    expect_close(cs, 4400, 400, "failed authentication")


def test_replayed_seq_closes_4400(server):
    cs = started(server)
    frame = cs.frame(read(LIVE[0]))
    cs.ws.send_binary(frame)
    assert cs.next()["type"] == "tracking"
    cs.ws.send_binary(frame)  # the same bytes again
    expect_close(cs, 4400, 400, "replay")


def test_seq_gap_closes_4400(server):
    cs = started(server)
    cs.send_frame(read(LIVE[0]), seq=5)
    expect_close(cs, 4400, 400, "gap")


def test_seq_bound_in_the_aad(server):
    """A frame sealed for seq 1 but labelled 0 does not authenticate."""
    cs = started(server)
    sealed = cs.frame(read(LIVE[0]), seq=1)
    cs.ws.send_binary(struct.pack(">I", 0) + sealed[4:])
    expect_close(cs, 4400, 400, "failed authentication")


def test_oversize_frame_closes_1009_from_its_header(server):
    cs = started(server)
    # Only the header of a 600 KB message is sent: the limit is enforced before its payload.
    cs.ws.raw(bytes([0x82, 0xFF]) + struct.pack(">Q", 600_000) + os.urandom(4))
    expect_close(cs, 1009, 413, "size limit")


def test_unmasked_client_frame_closes_1002(server):
    cs = started(server)
    cs.ws.raw(frame_bytes(0x2, b"x" * 40, mask=False))
    expect_close(cs, 1002, 400, "protocol")


def test_text_without_type_closes_4400(server):
    cs = open_stream(server, new_session(server))
    cs.ws.send_text(b"[1, 2]")
    expect_close(cs, 4400, 400, "type")


def test_ping_is_answered_and_unknown_types_ignored(server):
    cs = open_stream(server, new_session(server))
    cs.ws.send_text({"type": "future-extension"})
    cs.ws.raw(frame_bytes(0x9, b"hi"))
    cs.ws.sock.settimeout(5)
    b = b""
    while len(b) < 4:
        b += cs.ws.sock.recv(16)
    assert b[:4] == b"\x8a\x02hi"  # the pong carries the ping's payload
    cs.close()


def test_second_start_closes_4400(server):
    cs = started(server)
    cs.start()
    expect_close(cs, 4400, 400, "already received")


def test_oversized_device_info_closes_4400(server):
    cs = open_stream(server, new_session(server))
    cs.start(deviceInfo={"blob": "x" * 5000})
    expect_close(cs, 4400, 400, "at most 4096 bytes")


def test_frame_shorter_than_its_header_closes_4400(server):
    cs = started(server)
    cs.ws.send_binary(b"\0\0\0\0" + os.urandom(20))
    expect_close(cs, 4400, 400, "seq(4) || iv(12)")


def test_frame_that_is_no_image_closes_4400(server):
    cs = started(server)
    cs.send_frame(b"not an image, but well encrypted")
    expect_close(cs, 4400, 400, "frame 0")


def test_upload_during_the_stream_closes_it_4409(server):
    """The stream and the upload share one capture per serverRandom: whichever is
    submitted first wins, the other is a replay."""
    sid = server.create_session()
    r = server.post_json(f"/v2/bio-sessions/{sid}/init-liveness-parameters", {"type": "LIVENESS_PASSIVE"}, key=KEY_A)
    params = r.json()
    cs = open_stream(server, sid)
    cs.start()
    up = server.post_json(f"/v2/bio-sessions/{sid}/liveness-capture",
                          seal(params, sid, capture_json([read(LIVE[0])])), key=KEY_A)
    assert up.status_code == 202, up.text
    for _ in range(3):
        cs.send_frame(read(LIVE[0]))
    expect_close(cs, 4409, 409, "already submitted")


def test_capture_length_without_a_usable_capture_closes_4408(start_server):
    srv = start_server("--capture-stream-max-seconds", "1")
    cs = started(srv)
    for _ in range(3):
        cs.send_frame(read(NO_FACE[0]))
        time.sleep(0.4)
    expect_close(cs, 4408, 408, "capture_stream_max_seconds before a usable capture (0 well-placed")


def test_stopping_the_server_closes_streams_1001(start_server):
    srv = start_server()
    cs = open_stream(srv, new_session(srv))
    stopper = threading.Thread(target=srv.stop)
    stopper.start()
    expect_close(cs, 1001, 503, "shutting down")
    stopper.join()
    assert srv.returncode == 0


def test_idle_stream_closes_4408(start_server):
    srv = start_server("--capture-stream-idle-timeout", "1")
    cs = open_stream(srv, new_session(srv))
    expect_close(cs, 4408, 408, "no message for 1 seconds")


def test_too_fast_frames_are_dropped_then_4429(start_server):
    srv = start_server("--capture-stream-max-fps", "2")
    cs = started(srv)
    frame = read(NO_FACE[0])  # never a complete capture: the stream goes on until the abuse
    drops, closed = 0, None
    deadline = time.monotonic() + 15
    while closed is None and time.monotonic() < deadline:
        for _ in range(10):
            cs.send_frame(frame)
        cs.ws.sock.settimeout(0.2)
        try:
            while True:
                m = cs.next()
                drops += m.get("code") == "FRAME_DROPPED"
                if m["type"] == "error":
                    closed = m
        except (socket.timeout, BlockingIOError):
            pass
        except (Closed, OSError):
            break
    assert drops > 6, drops
    assert closed and closed["code"] == 4429 and closed["status"] == 429 and closed["unlockDateTime"], closed


# ---- whole captures ---------------------------------------------------------------------

def test_live_passive_capture_guidance_verdict_and_best_face(server):
    sid = new_session(server)
    cs, msgs = run_capture(server.base, sid, [read(f) for f in LIVE], fps=10, path_prefix=VIDEO)
    cs.close()
    tracking = [m for m in msgs if m["type"] == "tracking" and "seq" in m]
    assert len(tracking) >= 3
    for t in tracking:
        assert t["positionInfo"] in POSITIONS
        assert 100 < t["facew"] < 300 and 100 < t["faceh"] < 350, t  # NUAA faces, 640x480 frames
        assert t["tooFar"] is False and t["tooClose"] is False
        assert 0 <= t["targetInfo"]["stability"] <= 1 and 0.15 < t["targetInfo"]["targetR"] < 0.5
    assert tracking[-1]["positionInfo"] == "TRACKER_POSITION_INFO_GOOD" and tracking[-1]["progress"] == 1
    instructions = [m["instruction"] for m in msgs if m["type"] == "instruction"]
    assert instructions == ["TRACKER_CHALLENGE_DONT_MOVE", "TRACKER_CHALLENGE_PENDING"]
    assert {"type": "tracking", "uploadProgress": 1} in msgs
    result, r = verdict(server, sid, msgs)
    if result["livenessStatus"] != "IN_PROGRESS":
        box = result["bestImageInfo"]
        assert box["width"] > 100 and box["height"] > 100
    assert r["livenessStatus"] == "SUCCESS" and r["bestImageId"], r
    img = server.get(f"/v2/bio-sessions/{sid}/faces/{r['bestImageId']}/image", key=KEY_A)
    assert img.status_code == 200 and img.content[:2] == b"\xff\xd8"
    assert cs.ws.close_code == 1000


def test_printed_photo_passive_capture_is_spoof(server):
    sid = new_session(server)
    cs, msgs = run_capture(server.base, sid, [read(SPOOF[2])], fps=10, path_prefix=VIDEO)
    cs.close()
    _, r = verdict(server, sid, msgs)
    assert r["livenessStatus"] == "SPOOF" and "bestImageId" not in r


def test_live_passive_video_capture_succeeds(server):
    sid = new_session(server, "LIVENESS_PASSIVE_VIDEO")
    cs, msgs = run_capture(server.base, sid, [read(f) for f in LIVE], fps=10, path_prefix=VIDEO)
    cs.close()
    assert len([m for m in msgs if m.get("seq") is not None and m["type"] == "tracking"]) >= 12
    assert verdict(server, sid, msgs)[1]["livenessStatus"] == "SUCCESS"


def test_capture_is_submitted_when_it_holds_what_an_upload_may(start_server):
    """The frames kept stay within liveness_max_upload_bytes (as base64 in JSON): a
    video capture that reaches it is submitted with the frames it holds."""
    srv = start_server("--liveness-max-upload-bytes", "230000")  # 172,500 bytes of frames: 4-5 NUAA frames
    sid = new_session(srv, "LIVENESS_PASSIVE_VIDEO")
    cs, msgs = run_capture(srv.base, sid, [read(f) for f in LIVE], fps=10, path_prefix=VIDEO)
    cs.close()
    frames = [m for m in msgs if m["type"] == "tracking" and "seq" in m]
    assert 4 <= len(frames) <= 6, len(frames)  # not the 12 of a video capture: it was full
    assert verdict(srv, sid, msgs)[1]["livenessStatus"] == "SUCCESS"


def test_printed_photo_passive_video_capture_is_not_success(server):
    sid = new_session(server, "LIVENESS_PASSIVE_VIDEO")
    cs, msgs = run_capture(server.base, sid, [read(SPOOF[2])], fps=10, path_prefix=VIDEO)
    cs.close()
    assert verdict(server, sid, msgs)[1]["livenessStatus"] not in ("SUCCESS", "IN_PROGRESS")


def test_active_capture_shows_targets_and_fails_without_head_turns(server):
    """A still webcam sequence performs no head turn: each challenge's 3 seconds pass
    and the evaluation says FAILED (not SPOOF: the face is live)."""
    sid = new_session(server, "LIVENESS_ACTIVE", numberOfChallenge=1)
    cs, msgs = run_capture(server.base, sid, [read(f) for f in LIVE[:3]], fps=10, path_prefix=VIDEO)
    cs.close()
    assert [m["instruction"] for m in msgs if m["type"] == "instruction"] == ["TRACKER_CHALLENGE_2D",
                                                                               "TRACKER_CHALLENGE_PENDING"]
    active = [m["livenessActive"] for m in msgs if "livenessActive" in m]
    assert active and active[0]["challengeCircles"][0]["pos"] in ("left", "right")
    _, r = verdict(server, sid, msgs)
    assert r["livenessStatus"] == "FAILED" and "challenge" in r["diagnostic"]
