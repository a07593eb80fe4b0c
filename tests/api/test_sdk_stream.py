"""web/sdk/bioserver-video-api.js in a real browser: headless Chromium with a fake
camera playing NUAA frames (a y4m file made at test time, never committed) opens a
tiny page that calls BioserverVideo the way the WebCapture pages do
(initFaceCaptureClient, getMediaStream, startCapture, disconnect) against the
binary. A live face reaches showChallengeResult with the server's SUCCESS and the
guidance reached trackingFn; a printed photo ends SPOOF; a stream refused before the
upgrade reaches errorFn with the HTTP status (the pages' 503 branch).
The demo pages themselves are driven by test_webcapture_pages.py."""
import glob
import http.server
import json
import os
import shutil
import threading
import time

import pytest
import requests

import browser_support
from conftest import KEY_A, REPO_ROOT, SANITIZED

NUAA = os.path.join(REPO_ROOT, "..", "shared", "data", "spoof", "nuaa")
LIVE = sorted(glob.glob(os.path.join(NUAA, "live", "0001", "*.jpg")))
SPOOF = sorted(glob.glob(os.path.join(NUAA, "spoof", "0001", "*.jpg")))
WAIT = 180 if SANITIZED else 60

pytestmark = [browser_support.needs_chromium,
              pytest.mark.skipif(not LIVE, reason="../shared/data/spoof/nuaa missing")]

PAGE = """<!doctype html><html><body><video id="v" autoplay muted playsinline></video>
<script src="bioserver-video-api.js"></script>
<script>
window.log = []; window.done = null;
const q = new URLSearchParams(location.search);
(async () => {
  try {
    const client = await BioserverVideo.initFaceCaptureClient({
      bioSessionId: q.get('sid'), bioserverVideoUrl: q.get('server'), wspath: '/video-server/engine.io',
      onClientInitEnd: () => log.push({init: true}),
      trackingFn: (t) => log.push({tracking: t}),
      showChallengeInstruction: (i) => log.push({instruction: i}),
      showChallengeResult: async (r) => { await client.disconnect(); window.done = {result: r}; },
      errorFn: (e) => { window.done = window.done || {error: e}; }
    });
    const stream = await BioserverVideo.getMediaStream({videoId: 'v'});
    client.startCapture({stream});
  } catch (e) { window.done = window.done || {error: {thrown: String(e && (e.error || e.message || e))}}; }
})();
</script></body></html>"""


def write_y4m(path, jpegs, repeat=1):
    """The frames at 10 fps without sensor noise, each `repeat` times (Chromium's fake camera loops it)."""
    browser_support.write_y4m(path, jpegs, noise=0, fps=10, repeat=repeat)


class Static(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def page_server(tmp_path):
    (tmp_path / "index.html").write_text(PAGE)
    shutil.copy(os.path.join(REPO_ROOT, "web", "sdk", "bioserver-video-api.js"), tmp_path)
    handler = lambda *a, **kw: Static(*a, directory=str(tmp_path), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_address[1]}"
    httpd.shutdown()


def run_page(tmp_path, page, srv, sid, y4m):
    """Opens the page in headless Chromium; returns window.done and window.log."""
    drv = browser_support.chromium(y4m, str(tmp_path / "chrome-profile"), str(tmp_path / "chromedriver.log"))
    try:
        drv.get(f"{page}/index.html?sid={sid}&server={srv.base}")
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            state = json.loads(drv.execute_script("return JSON.stringify({done: window.done, log: window.log})"))
            if state.get("done"):
                return state
            time.sleep(0.2)
        raise AssertionError("the page did not finish")
    finally:
        drv.quit()


def new_session(srv, mode="LIVENESS_PASSIVE"):
    r = requests.post(srv.base + "/video-server/init-liveness-session", json={"livenessMode": mode},
                      headers={"apikey": KEY_A}, timeout=30)
    assert r.status_code == 201, r.text
    return r.headers["Location"].rsplit("/", 1)[1]


def final_result(srv, sid):
    """liveness-challenge-result once it is final (what the page's back end reads)."""
    deadline = time.monotonic() + WAIT
    while True:
        r = srv.get(f"/v2/bio-sessions/{sid}/liveness-challenge-result", key=KEY_A).json()
        if r["livenessStatus"] not in ("INITIALIZED", "IN_PROGRESS") or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_live_face_reaches_show_challenge_result(server, page_server, tmp_path):
    y4m = str(tmp_path / "live.y4m")
    write_y4m(y4m, LIVE)
    sid = new_session(server)
    state = run_page(tmp_path, page_server, server, sid, y4m)
    result = state["done"].get("result")
    assert result and result["livenessStatus"] in ("SUCCESS", "IN_PROGRESS"), state["done"]  # IN_PROGRESS: slow machine
    if result["livenessStatus"] == "SUCCESS":
        assert result["bestImageInfo"]["width"] > 50
    log = state["log"]
    assert log[0] == {"init": True}
    tracking = [e["tracking"] for e in log if "tracking" in e and "positionInfo" in e["tracking"]]
    assert tracking and all(t["facew"] > 0 for t in tracking)
    assert [e["instruction"] for e in log if "instruction" in e] == ["TRACKER_CHALLENGE_DONT_MOVE",
                                                                     "TRACKER_CHALLENGE_PENDING"]
    assert {"tracking": {"uploadProgress": 1}} in log
    r = final_result(server, sid)
    assert r["livenessStatus"] == "SUCCESS" and r["bestImageId"], r


def test_printed_photo_ends_spoof(server, page_server, tmp_path):
    y4m = str(tmp_path / "spoof.y4m")
    write_y4m(y4m, [SPOOF[2]], repeat=20)
    sid = new_session(server)
    state = run_page(tmp_path, page_server, server, sid, y4m)
    assert state["done"].get("result", {}).get("livenessStatus") in ("SPOOF", "IN_PROGRESS"), state["done"]
    assert final_result(server, sid)["livenessStatus"] == "SPOOF"


def test_refused_stream_reaches_error_fn_with_its_status(start_server, page_server, tmp_path):
    srv = start_server("--capture-stream-max", "0", "--cors-origins", page_server)  # the page reads the refusal
    y4m = str(tmp_path / "live.y4m")
    write_y4m(y4m, LIVE[:2])
    state = run_page(tmp_path, page_server, srv, new_session(srv), y4m)
    err = state["done"].get("error")
    assert err and err["code"] == 503 and err["unlockDateTime"], state["done"]
