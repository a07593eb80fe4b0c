"""The web capture page (/bioserver-app/capture/) in headless Chromium, end to end.

Chromium's fake camera plays a YUV4MPEG2 video made here from NUAA frames
(../shared/data/spoof/nuaa, never copied; the same subject-0001 samples as
test_liveness.py): the page creates a session, asks for PASSIVE parameters and runs
the capture on the WebCapture SDK (BioserverVideo streams the camera to the server,
docs/capture-stream.md), then shows the verdict.
The live sequence must end in SUCCESS, the printed-photo sequence in SPOOF, and the
verdict the page shows must be the one the API reports for that session. Before the
camera, the page's WebCapture SDK checks (environment, connection) must pass.

Driven by Debian's chromium + chromium-driver through python3-selenium (make deps
installs them; without them the test is skipped and says so). Screenshots of each
run (form, capturing, verdict) land in build/artifacts/capture-page/.
"""
import glob
import os

import pytest

from browser_support import W, chromium, fake_camera_videos, needs_chromium, shoot as shoot_in
from conftest import KEY_A, REPO_ROOT, SANITIZED

NUAA = os.path.join(REPO_ROOT, "..", "shared", "data", "spoof", "nuaa")
LIVE = sorted(glob.glob(os.path.join(NUAA, "live", "0001", "*.jpg")))
SPOOF = sorted(glob.glob(os.path.join(NUAA, "spoof", "0001", "*.jpg")))
VERDICT_WAIT = 150 if SANITIZED else 60

try:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    pass

pytestmark = [
    pytest.mark.skipif(not LIVE or not SPOOF, reason="../shared/data/spoof/nuaa is missing"),
    needs_chromium,
]


def shoot(drv, name):
    return shoot_in(drv, "capture-page", name)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return fake_camera_videos(tmp_path_factory.mktemp("fake-camera"), {"live": LIVE, "spoof": SPOOF})


@pytest.mark.parametrize("sample,expected", [("live", "SUCCESS"), ("spoof", "SPOOF")])
def test_capture_page_passive(server, videos, tmp_path, sample, expected):
    drv = chromium(videos[sample], str(tmp_path / "profile"), str(tmp_path / "chromedriver.log"))
    try:
        text = lambda el_id: drv.find_element(By.ID, el_id).text  # noqa: E731
        drv.get(server.base + f"/bioserver-app/capture/#apikey={KEY_A}&type=LIVENESS_PASSIVE&level=HIGH")
        assert drv.title == "Face liveness check"
        # The fragment filled the form (the key never goes into the URL that is sent).
        assert drv.find_element(By.ID, "apikey").get_attribute("value") == KEY_A
        assert drv.find_element(By.ID, "type").get_attribute("value") == "LIVENESS_PASSIVE"
        # The SDK's checks ran before the camera: this browser can capture, the link is good.
        WebDriverWait(drv, 30, poll_frequency=0.1).until(lambda d: d.find_element(By.ID, "network").get_attribute("data-good"))
        assert drv.find_element(By.ID, "environment").get_attribute("data-supported") == "true", text("environment")
        assert text("environment").startswith("Browser: Chrome "), text("environment")
        assert drv.find_element(By.ID, "network").get_attribute("data-good") == "true", text("network")
        assert text("network").startswith("Connection: good ("), text("network")
        shoot(drv, f"{sample}-1-form")

        # The capture may be over within a second (three good frames): test code
        # remembers what the preview showed and the statuses the page went through.
        drv.execute_script("""window.__seen = {statuses: []};
            document.getElementById('preview').addEventListener('loadeddata',
                (e) => { window.__seen.width = e.target.videoWidth; });
            new MutationObserver(() => window.__seen.statuses.push(document.getElementById('status').textContent))
                .observe(document.getElementById('status'), {childList: true, characterData: true, subtree: true});""")
        drv.find_element(By.ID, "start").click()
        WebDriverWait(drv, 30, poll_frequency=0.1).until(
            lambda d: d.execute_script("return window.__seen.statuses.some(s => /^(Capturing|Error)/.test(s))"))
        if drv.find_element(By.ID, "stage").is_displayed():
            shoot(drv, f"{sample}-2-capturing")
        # The camera showed the fake video (decoded frames of the file's size).
        WebDriverWait(drv, 10).until(lambda d: d.execute_script("return window.__seen.width"))
        assert drv.execute_script("return window.__seen.width") == W

        try:
            WebDriverWait(drv, VERDICT_WAIT).until(
                lambda d: d.find_element(By.ID, "verdict").get_attribute("data-status")
                or text("status").startswith("Error"))
        except TimeoutException:
            pass
        drv.execute_script("document.getElementById('verdict').scrollIntoView({block: 'center'})")
        shoot(drv, f"{sample}-3-verdict")
        status = drv.find_element(By.ID, "verdict").get_attribute("data-status")
        console = [e["message"] for e in drv.get_log("browser")]
        statuses = drv.execute_script("return window.__seen.statuses")
        assert not [t for t in statuses if t.startswith("Error")], statuses
        assert status, f"no verdict; status line {text('status')!r}; console: {console}"
        assert status == expected, f"{sample}: page shows {status} ({text('verdict')!r}), expected {expected}"
        assert text("status") == "Done."
        assert text("verdict") == ("Liveness confirmed." if expected == "SUCCESS" else f"Result: {expected}") \
            or text("verdict").startswith(f"Result: {expected} — ")

        # The page's verdict is the server's: same session, same status, and the best
        # image is a frame the browser captured (imageRetrievalDisabled=false).
        sid = drv.find_element(By.ID, "session").get_attribute("value")
        r = server.get(f"/v3/bio-sessions/{sid}/replay-liveness-metadata", key=KEY_A)
        assert r.status_code == 200, r.text
        m = r.json()
        assert m["status"] == expected, m
        assert m["sdkInfo"]["name"] == "bioserver-web-capture"
        assert "HeadlessChrome" in m["deviceInfo"]["userAgent"] or "Chrome" in m["deviceInfo"]["userAgent"]
        assert m.get("image"), "the best image should be retrievable"
        # One capture path: the SDK's stream (docs/capture-stream.md), not the upload.
        paths = {(line.get("path"), line.get("status")) for line in server.log_lines() if line.get("event") == "request"}
        assert (f"/video-server/v2/bio-sessions/{sid}/capture-stream", 101) in paths, "no capture stream"
        assert not any(p == f"/bioserver-app/v2/bio-sessions/{sid}/liveness-capture" for p, _ in paths)
    finally:
        drv.quit()
