"""What the WebCapture pages load and call from the browser, without a key (issue 12):
the SDK files under video_server_path (src/api/web.c, web/sdk/) and the connectivity
check's two endpoints (src/api/network_check.c). Every answer is also checked against
docs/openapi.yaml. The pages themselves run in headless Chromium in
test_webcapture_pages.py."""
import hashlib
import os
import shutil
import socket

import pytest
import requests

from conftest import KEY_A, OPENAPI, REPO_ROOT
from openapi_check import response_body

SDK_DIR = os.path.join(REPO_ROOT, "web", "sdk")
OURS = ("bioserver-environment-api.js", "bioserver-network-check.js", "bioserver-video-ui.js")
DISCARD_MAX = 2 << 20  # ROUTE_DISCARD_MAX_BYTES (src/http/router.h)


def raw(srv, method, path, **kw):
    """A request outside /bioserver-app, checked against the OpenAPI document."""
    kw.setdefault("timeout", 30)
    r = requests.request(method, srv.base + path, **kw)
    OPENAPI.check(method, path, r.status_code, r.headers.get("Content-Type"), response_body(r))
    return r


def assert_error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"id", "message"} and body["message"], body
    return body["message"]


@pytest.mark.parametrize("name", OURS)
def test_sdk_file_is_served_for_any_page(server, name):
    r = raw(server, "GET", f"/video-server/{name}")
    assert r.status_code == 200, r.text
    with open(os.path.join(SDK_DIR, name), "rb") as f:
        assert r.content == f.read()
    assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    # Pages under Cross-Origin-Embedder-Policy: require-corp (the demo's) may load it.
    assert r.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    # Cached by validation only, one Cache-Control (the API's no-store is not added).
    assert r.headers["Cache-Control"] == "no-cache"
    etag = r.headers["ETag"]
    assert etag == '"' + hashlib.sha256(r.content).hexdigest()[:32] + '"'
    again = raw(server, "GET", f"/video-server/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    other = raw(server, "GET", f"/video-server/{name}", headers={"If-None-Match": '"0000"'})
    assert other.status_code == 200 and other.content == r.content


def test_sdk_files_only_by_their_names(server):
    assert "no such resource" in assert_error(raw(server, "GET", "/video-server/bioserver-other.js"), 404)
    assert "no such resource" in assert_error(raw(server, "GET", "/video-server/../web/sdk/bioserver-video-ui.js"), 404)
    # Only under the video prefix, like the rest of the WebCapture flow.
    assert_error(requests.get(server.base + "/bioserver-app/video-server/bioserver-video-ui.js", timeout=30), 404)
    r = raw(server, "POST", "/video-server/bioserver-video-ui.js", data=b"x")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    assert "takes no request body" in assert_error(
        raw(server, "GET", "/video-server/bioserver-network-check.js", data=b"x" * 10), 413)


def test_sdk_missing_from_the_install_is_a_clear_404(start_server, tmp_path):
    """A web folder without sdk/ (an install that forgot it): 404 naming the file."""
    web = tmp_path / "web"
    shutil.copytree(os.path.join(REPO_ROOT, "web", "capture"), web / "capture")
    srv = start_server("--web", str(web))
    msg = assert_error(raw(srv, "GET", "/video-server/bioserver-network-check.js"), 404)
    assert msg == "the WebCapture SDK is not installed on this server (bioserver-network-check.js)"
    assert str(tmp_path) not in msg


def test_sdk_follows_the_video_server_path(start_server):
    srv = start_server("--video-server-path", "/wbs/video")
    r = raw(srv, "GET", "/wbs/video/bioserver-environment-api.js")
    assert r.status_code == 200 and b"BioserverEnvironment" in r.content
    assert_error(raw(srv, "GET", "/video-server/bioserver-environment-api.js"), 404)
    assert raw(srv, "GET", "/wbs/video/network-latency").status_code == 204


def test_network_latency(server):
    r = raw(server, "GET", "/video-server/network-latency", headers={"Origin": "https://pages.example"})
    assert r.status_code == 204 and r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Timing-Allow-Origin"] == "*"
    assert r.headers["Cache-Control"] == "no-store"
    r = raw(server, "POST", "/video-server/network-latency", data=b"")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"


def test_network_speed_counts_what_arrives(server):
    body = os.urandom(256 * 1024)  # what the SDK sends
    r = raw(server, "POST", "/video-server/network-speed", data=body, headers={"Origin": "https://pages.example"})
    assert r.status_code == 200, r.text
    assert r.json() == {"receivedBytes": len(body)}
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Cache-Control"] == "no-store"
    assert raw(server, "POST", "/video-server/network-speed", data=b"").json() == {"receivedBytes": 0}
    # Chunked (no Content-Length) is counted the same way.
    r = raw(server, "POST", "/video-server/network-speed", data=iter([b"a" * 1000, b"b" * 24]))
    assert r.status_code == 200 and r.json() == {"receivedBytes": 1024}
    r = raw(server, "GET", "/video-server/network-speed")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"


def test_network_speed_cap(server):
    r = raw(server, "POST", "/video-server/network-speed", data=b"x" * DISCARD_MAX)
    assert r.status_code == 200 and r.json() == {"receivedBytes": DISCARD_MAX}
    # Declared over the cap: refused from the headers, before a byte is read.
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        s.sendall(f"POST /video-server/network-speed HTTP/1.1\r\nHost: x\r\nContent-Length: {DISCARD_MAX + 1}\r\n"
                  "\r\n".encode())
        head = s.recv(4096).decode("latin-1")
    finally:
        s.close()
    assert head.startswith("HTTP/1.1 413"), head
    assert f"the limit is {DISCARD_MAX} bytes" in head
    # Chunked past the cap: cut off (no answer, the connection is closed).
    chunks = iter([b"z" * 65536] * (DISCARD_MAX // 65536 + 2))
    with pytest.raises(requests.ConnectionError):
        requests.post(server.base + "/video-server/network-speed", data=chunks, timeout=30)
    assert raw(server, "GET", "/video-server/network-latency").status_code == 204  # still serving


def test_network_speed_holds_no_memory(start_server):
    """The bytes are dropped as they arrive: with the smallest budget of buffered bodies
    (1 MiB), a 2 MiB speed test still succeeds, while a 2 MiB image upload, which is
    buffered, does not fit (503: the budget is spent)."""
    srv = start_server("--max-buffered-bytes", str(1 << 20))
    r = raw(srv, "POST", "/video-server/network-speed", data=b"x" * DISCARD_MAX)
    assert r.status_code == 200 and r.json() == {"receivedBytes": DISCARD_MAX}
    big = srv.post("/v2/faces", key=KEY_A, data=b"x" * DISCARD_MAX, headers={"Content-Type": "image/jpeg"})
    assert big.status_code == 503 and "too many uploads" in big.json()["message"], big.text


# ---- BioserverEnvironment.detection on user agents the browser test cannot be --------------

UA = {
    "chrome_linux": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "chrome_old": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/59.0.3071.115 Safari/537.36",
    "edge_win": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "safari_mac_14": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.2 Safari/605.1.15",
    "safari_ios_16": "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "chrome_ios_110": "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/110.0.5481.83 Mobile/15E148 Safari/604.1",
    "samsung_android": "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "firefox_android": "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0",
    "ie11": "Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko",
    "ipados": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
}


def detect(user_agent, touch_points=0, camera=True):
    """Runs the served file in node with a stand-in window/navigator."""
    import json
    import subprocess
    node = shutil.which("node")
    if not node:
        pytest.fail("node is not installed: run `make deps` (make test does)")
    script = """
        const fs = require('fs');
        const [file, ua, touch, camera] = process.argv.slice(1);
        const nav = {userAgent: ua, maxTouchPoints: Number(touch)};
        if (camera === 'true') nav.mediaDevices = {getUserMedia() {}};
        const win = {navigator: nav, WebSocket: function () {}, fetch() {}, Promise};
        new Function('window', fs.readFileSync(file, 'utf8'))(win);
        process.stdout.write(JSON.stringify(win.BioserverEnvironment.detection()));
    """
    out = subprocess.run([node, "-e", script, os.path.join(SDK_DIR, "bioserver-environment-api.js"), user_agent,
                          str(touch_points), "true" if camera else "false"],
                         capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("ua,os_name,browser,supported,mobile", [
    ("chrome_linux", "Linux", "Chrome", True, False),
    ("chrome_old", "Windows", "Chrome", False, False),          # Chrome 60+
    ("edge_win", "Windows", "Edge", True, False),
    ("safari_mac_14", "Mac OS", "Safari", False, False),        # Safari 15+
    ("safari_ios_16", "iOS", "Mobile Safari", True, True),
    ("chrome_ios_110", "iOS", "Chrome", False, True),           # Chrome on iOS: 120+
    ("samsung_android", "Android", "Samsung Browser", True, True),
    ("firefox_android", "Android", "Firefox", True, True),
    ("ie11", "Windows", "unknown", False, False),
])
def test_environment_detection(ua, os_name, browser, supported, mobile):
    env = detect(UA[ua])["envDetected"]
    assert env["os"]["name"] == os_name and env["os"]["isMobile"] is mobile, env
    assert env["os"]["isSupported"] is True
    assert env["browser"]["name"] == browser and env["browser"]["isSupported"] is supported, env
    # What the demo's compatibility screen lists (names of its images).
    assert env["os"]["supportedList"] == (["Android", "iOS"] if mobile else ["Windows", "Mac OS", "Linux"])
    names = [b["name"] for b in env["browser"]["supportedList"]]
    assert all(isinstance(b["minimumVersion"], int) for b in env["browser"]["supportedList"])
    assert ("Mobile Safari" in names) == (os_name == "iOS") and ("Samsung Browser" in names) == (os_name == "Android")


def test_environment_detection_edge_cases():
    ipad = detect(UA["ipados"], touch_points=5)["envDetected"]  # iPadOS says "Macintosh"
    assert ipad["os"]["name"] == "iOS" and ipad["browser"]["name"] == "Mobile Safari" and ipad["browser"]["isSupported"]
    no_camera = detect(UA["chrome_linux"], camera=False)["envDetected"]["browser"]  # e.g. not a secure context
    assert no_camera["isSupported"] is False and no_camera["missingFeatures"] == ["getUserMedia"]
    assert detect("") == {"message": "The browser did not say what it is (no user agent): cannot check compatibility."}


def test_every_operation_has_its_metrics(start_server):
    """The route table has more rows than the metrics have operation slots: every
    operation, the last rows' too, is counted under its own name (one instance: the
    counts are per instance)."""
    from conftest import KEY_ADMIN
    srv = start_server()
    assert raw(srv, "GET", "/video-server/network-latency").status_code == 204
    srv.get("/v2/metrics", key=KEY_ADMIN)
    text = srv.get("/metrics", key=KEY_ADMIN).text
    for op in ("networkLatency", "metrics"):
        assert f'bioserver_requests_total{{operation="{op}",status="2xx"}}' in text, op
