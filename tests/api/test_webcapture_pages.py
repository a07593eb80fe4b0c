"""IDEMIA's WebCapture demo pages, unmodified, in headless Chromium against bioserver
(issue 12's "Done when").

The demo (../shared/clients/webcapture-demo, copied into build/webcapture-demo by
scripts/setup-webcapture-demo.sh) builds its front with its own webpack config for
one liveness mode per start (server/packer.js), so each page runs on its own demo
start (English only: one build). Its configuration points at bioserver the way a
customer's would: BIOSERVER_CORE_URL = <bioserver>/bioserver-app/v2,
BIOSERVER_VIDEO_URL = <bioserver>, so the pages load the SDK from
<bioserver>/video-server/bioserver-*.js, callbacks on. The page is opened at
http://localhost:<demo port> (a secure context for the camera); the SDK and the
connectivity check are cross-origin (127.0.0.1), under the page's
Cross-Origin-Embedder-Policy: require-corp.

Chromium's fake camera plays NUAA subject 0001 (tests/api/browser_support.py): the
live recording, or the printed photo of that subject. Each page is driven by
clicking its own buttons, as a user would. Before the capture: the environment check
passes (BioserverEnvironment), the connectivity check runs against bioserver and is
good (BioserverNetworkCheck: the weak-network screen never shows), the demo creates
the liveness session on bioserver (POST /video-server/init-liveness-session). Then
BioserverVideo streams the camera (docs/capture-stream.md): the live video reaches
the success screen with the best image shown, the printed photo the failure screen;
the active page shows its head-turn challenge and, since a fake camera cannot turn
its head, ends with bioserver's FAILED verdict on the page's failure screen.
Screenshots of each step go to build/artifacts/webcapture-pages/.
"""
import glob
import os
import time

import pytest

from browser_support import chromium, fake_camera_videos, needs_chromium, shoot
from conftest import REPO_ROOT, SANITIZED, free_port, launch, redis_pair
from test_webcapture_demo import INSTALL_STAMP, NODE, Demo

try:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    pass

NUAA = os.path.join(REPO_ROOT, "..", "shared", "data", "spoof", "nuaa")
LIVE = sorted(glob.glob(os.path.join(NUAA, "live", "0001", "*.jpg")))
SPOOF = sorted(glob.glob(os.path.join(NUAA, "spoof", "0001", "*.jpg")))
WAIT = 150 if SANITIZED else 60
FOLDER = "webcapture-pages"

# make test runs the API suite three times (plain, ASan, Redis pair). The plain run
# takes every page; the others the passive page (live, printed photo), and ASan the
# active page too: the connectivity measure is browser code over two endpoints every
# page calls, passive-video takes the passive page's stream path with more frames, and
# each extra page costs a demo build make test has no time for three times.
REDIS_PAIR = os.environ.get("BIOSERVER_STORE") == "redis-pair"
plain_run_only = pytest.mark.skipif(SANITIZED or REDIS_PAIR, reason="runs in make test's plain API run only")
not_on_redis_pair = pytest.mark.skipif(REDIS_PAIR, reason="runs in make test's plain and ASan API runs")

pytestmark = [
    pytest.mark.skipif(not LIVE or not SPOOF, reason="../shared/data/spoof/nuaa is missing"),
    needs_chromium,
]

# Per page: its LIVENESS_MODE, the clicks from its first screen to the capture
# (step shown, element of that step clicked), its result screens.
PASSIVE = {
    "mode": "LIVENESS_PASSIVE",
    "clicks": [("#step-1", '[data-target="#step-end-tutorial"]'), ("#step-end-tutorial", ".start-capture"),
               ("#step-access-permission", "button")],
    "ok": "#step-liveness-ok", "failed": "#step-liveness-timeout", "error": "#step-liveness-ko",
    "best_image": "#step-liveness-ok .best-image",
}
PAGES = {
    "passive": PASSIVE,
    "passive-video": {
        "mode": "LIVENESS_PASSIVE_VIDEO",
        "clicks": [("#step-1", 'button[data-target="#connectivity-check"]'),
                   ("#step-access-permission", 'button[data-target="#socket-init"]')],
        "ok": "#step-liveness-ok", "failed": "#step-liveness-ko", "error": "#step-liveness-failed",
        "best_image": "#best-image",
    },
    "active": dict(PASSIVE, mode="LIVENESS_ACTIVE"),  # the same screens as the passive page
}
# Screens every page shows when something went wrong before the capture.
TROUBLE = ("#step-compatibility", "#step-weak-network", "#step-server-overloaded")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """(core, video): one bioserver, or with BIOSERVER_STORE=redis-pair two instances on
    one Redis, the pages' video side (SDK, stream) on one and the demo's core calls on
    the other, as test_webcapture_demo.py does."""
    if not NODE or not os.path.isfile(INSTALL_STAMP):
        pytest.fail("build/webcapture-demo is not set up: run `make webcapture-demo` (make test does)")
    root = str(tmp_path_factory.mktemp("pages"))
    flags = ("--callback-allow", "127.0.0.1/32")  # the demo's callback is on loopback
    if REDIS_PAIR:
        pair_gen = redis_pair(root, *flags)
        core, video = next(pair_gen).servers
        try:
            yield core, video
        finally:
            next(pair_gen, None)  # stops both (each must exit cleanly) and Redis
        return
    srv = launch(root, *flags)
    yield srv, srv
    srv.check_clean_exit()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fake-camera")
    videos = fake_camera_videos(folder, {"live": LIVE, "spoof": SPOOF})
    # A camera slower than the stream's rate (a cheap webcam, a loaded machine): 5 frames
    # a second. The SDK must not send the same frame twice (the server would call the
    # repeats a frozen video).
    videos.update(fake_camera_videos(folder, {"live-slow": LIVE}, fps=5, repeat=1))
    return videos


@pytest.fixture(scope="module")
def demos(servers, tmp_path_factory):
    """One demo at a time (they share build/webcapture-demo/front/dist): asking for
    another page's demo stops the running one."""
    running = {}

    def get(page):
        if page not in running:
            for other in list(running):
                running.pop(other).stop()
            workdir = str(tmp_path_factory.mktemp(f"demo-{page}"))
            demo = Demo(workdir, *servers, mode=PAGES[page]["mode"], languages=("en",))
            running[page] = demo
            demo.wait_ready().wait_packed()
        return running[page]

    yield get
    for demo in running.values():
        demo.stop()


class Page:
    """One page in one browser, driven through its own buttons."""

    def __init__(self, page, demo, bioserver, video, tmp_path, run):
        """bioserver: the video side (what the page itself talks to)."""
        self.page, self.spec, self.demo, self.bioserver = page, PAGES[page], demo, bioserver
        self.run = run
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.drv = chromium(video, str(tmp_path / "profile"), str(tmp_path / "chromedriver.log"), window="1000,900")
        self.shots = 0

    def js(self, script, *args):
        return self.drv.execute_script(script, *args)

    def shown(self, selector):
        return self.js("const e = document.querySelector(arguments[0]);"
                       "return !!e && !e.classList.contains('d-none') && e.offsetParent !== null;", selector)

    def shot(self, what):
        self.shots += 1
        return shoot(self.drv, FOLDER, f"{self.page}-{self.run}-{self.shots}-{what}")

    def explain(self, what):
        steps = self.js("return [...document.querySelectorAll('.step')].filter(s => !s.classList.contains('d-none'))"
                        ".map(s => s.id)")
        console = [e["message"][:300] for e in self.drv.get_log("browser")][-15:]
        return self.demo.explain(f"{self.page} page: {what}; steps shown: {steps}; console: {console}")

    def wait_for(self, what, predicate, timeout=WAIT):
        try:
            return WebDriverWait(self.drv, timeout, poll_frequency=0.1).until(lambda d: predicate())
        except TimeoutException:
            self.shot("timeout")
            pytest.fail(self.explain(f"{what} did not happen within {timeout}s"))

    def wait_any(self, selectors, timeout=WAIT):
        return self.wait_for(f"one of {selectors}", lambda: next((s for s in selectors if self.shown(s)), None),
                             timeout)

    def open(self):
        self.drv.get(f"http://localhost:{self.demo.port}/demo-server/{self.page}-liveness/")
        first = self.wait_any(("#step-1",) + TROUBLE, timeout=30)
        assert first == "#step-1", self.explain(f"{first} instead of the first step")
        env = self.js("return BioserverEnvironment.detection()")
        assert self.js("return window.envBrowserOk") is True, self.explain(f"environment refused: {env}")
        assert env["envDetected"]["browser"]["name"] == "Chrome" and env["envDetected"]["os"]["name"] == "Linux", env
        self.shot("home")

    def network_check(self):
        """The page's own connectivity check (window.onload), against bioserver."""
        entries = self.wait_for("the connectivity check", lambda: self.js(
            "const r = performance.getEntriesByType('resource').filter(e => /network-(speed|latency)$/.test(e.name));"
            "return r.some(e => e.name.endsWith('/network-speed')) ? r.map(e => [e.name, e.responseStatus]) : null;"),
            timeout=30)
        video_base = f"{self.bioserver.base}/video-server/"
        assert all(name.startswith(video_base) for name, _ in entries), entries
        assert all(status in (200, 204) for _, status in entries), entries
        time.sleep(0.5)  # onNetworkCheckUpdate runs right after the upload's answer
        assert not self.shown("#step-weak-network"), self.explain("the connectivity check found a weak network")
        return entries

    def measure(self, latency_url=None):
        """BioserverNetworkCheck.connectivityMeasure as the pages call it; returns
        ["update", measure] or ["error", message]."""
        base = f"{self.bioserver.base}/video-server"
        self.drv.set_script_timeout(30)
        return self.drv.execute_async_script("""
            const done = arguments[arguments.length - 1];
            BioserverNetworkCheck.connectivityMeasure({
                uploadURL: arguments[0] + '/network-speed', latencyURL: arguments[1],
                onNetworkCheckUpdate: (m) => done(['update', m]),
                errorFn: (e) => done(['error', String(e && e.message || e)])
            });""", base, latency_url or base + "/network-latency")

    def click_to_capture(self):
        for step, selector in self.spec["clicks"]:
            self.wait_any((step,) + TROUBLE)
            assert self.shown(step), self.explain(f"{step} expected")
            self.js("document.querySelector(arguments[0] + ' ' + arguments[1]).click()", step, selector)
        self.shot("permission-accepted")

    def sessions_created(self):
        return [line for line in self.bioserver.log_lines() if line.get("event") == "request"
                and line.get("path") == "/video-server/init-liveness-session" and line.get("status") == 201]

    def quit(self):
        self.drv.quit()


@pytest.fixture
def open_page(demos, servers, videos, tmp_path):
    pages = []

    def make(page, sample):
        p = Page(page, demos(page), servers[1], videos[sample], tmp_path / f"{page}-{sample}", sample)
        pages.append(p)
        return p

    yield make
    for p in pages:
        p.quit()


def start_capture(page, opened=False):
    """Home, connectivity check, the clicks to the capture, the session on bioserver."""
    before = len(page.sessions_created())
    if not opened:
        page.open()
    page.network_check()
    page.click_to_capture()
    page.wait_for("the demo's init-liveness-session on bioserver", lambda: len(page.sessions_created()) > before)


@plain_run_only
def test_connectivity_measure_numbers(open_page):
    """The measure the pages act on, on loopback; then a 600 ms link (Chromium's network
    emulation): the page shows its weak-network screen with the threshold; then a
    latency URL nobody answers: errorFn."""
    p = open_page("passive", "live")
    p.open()
    p.network_check()
    kind, m = p.measure()
    assert kind == "update", m
    print(f"\nconnectivity on loopback: {m}")
    assert set(m) == {"latencyMs", "upload", "download", "goodConnectivity"}, m
    assert m["goodConnectivity"] is True and m["download"] is None, m
    assert 0 <= m["latencyMs"] < 500 and m["upload"] >= p.js("return BioserverNetworkCheck.UPLOAD_SPEED_THRESHOLD"), m

    p.drv.set_network_conditions(latency=600, download_throughput=10 << 20, upload_throughput=10 << 20)
    kind, m = p.measure()
    assert kind == "update" and m["goodConnectivity"] is False and m["latencyMs"] >= 600, m
    assert m["upload"] is None, "the upload is not tried when the latency is already too high"
    p.drv.get(f"http://localhost:{p.demo.port}/demo-server/passive-liveness/")
    p.wait_any(("#step-weak-network",), timeout=30)
    assert p.js("return document.querySelector('#step-weak-network .signal-min-value').textContent") == "400 kb/s"
    p.shot("weak-network")
    p.drv.delete_network_conditions()

    closed = free_port()
    kind, msg = p.measure(f"http://127.0.0.1:{closed}/video-server/network-latency")
    assert kind == "error" and msg, msg


@pytest.mark.parametrize("page,sample", [("passive", "live"), ("passive", "spoof"),
                                         pytest.param("passive-video", "live-slow", marks=plain_run_only),
                                         pytest.param("passive-video", "spoof", marks=plain_run_only)])
def test_passive_pages_reach_their_verdict(open_page, page, sample):
    p = open_page(page, sample)
    start_capture(p)
    p.wait_for("the camera in the page", lambda: p.js(
        "const v = document.querySelector('#user-video'); return v && v.readyState >= 2 && v.videoWidth;"))
    p.shot("capturing")
    expected = p.spec["failed"] if sample == "spoof" else p.spec["ok"]
    got = p.wait_any((p.spec["ok"], p.spec["failed"], p.spec["error"]) + TROUBLE, timeout=WAIT + 30)
    time.sleep(1)  # the best image is drawn after the screen is shown
    p.shot("result")
    assert got == expected, p.explain(f"{sample} video: {got}, expected {expected}")
    if sample != "spoof":
        bg = p.js("const e = document.querySelector(arguments[0]); return e && getComputedStyle(e).backgroundImage;",
                  p.spec["best_image"])
        assert bg and bg.startswith('url("blob:'), p.explain(f"no best image in {p.spec['best_image']}: {bg!r}")


@not_on_redis_pair
def test_active_page_shows_challenges_and_a_result(open_page):
    """A fake camera cannot turn its head: the page shows the head-turn challenge (the
    SDK called showChallengeInstruction with TRACKER_CHALLENGE_2D: its "wait a moment"
    overlay, and BioserverVideoUI draws the targets), the capture closes without the
    turns and the page shows a result: bioserver's verdict is FAILED ("only 0 of 2
    challenges were performed"), which the demo reports as "Something was wrong" and
    the page as its failure screen (#step-liveness-ko, "Liveness failed")."""
    p = open_page("active", "live")
    p.open()
    # Both may be on screen only briefly: a watcher (test code, the page is untouched)
    # remembers that they were.
    p.js("""window.__seen = {};
        new MutationObserver(() => {
            const wait = document.querySelector('#loading-challenge');
            if (wait && !wait.classList.contains('d-none-fadeout')) window.__seen.instruction = true;
            const c = document.querySelector('#step-liveness canvas.bioserver-video-overlay');
            if (c && c.width > 0) window.__seen.targets = true;
        }).observe(document.body, {attributes: true, childList: true, subtree: true});""")
    start_capture(p, opened=True)
    p.wait_for("the challenge instruction", lambda: p.js("return window.__seen.instruction === true"))
    p.wait_for("the challenge targets", lambda: p.js("return window.__seen.targets === true"))
    p.shot("challenge")
    got = p.wait_any((p.spec["ok"], p.spec["failed"], p.spec["error"]) + TROUBLE, timeout=WAIT + 30)
    p.shot("result")
    verdicts = [line["message"] for line in p.bioserver.log_lines()
                if line.get("message", "").startswith("replay liveness of session") and ": evaluating" not in line["message"]]
    assert verdicts, p.explain("no verdict in bioserver's log")
    print(f"\nactive liveness, fake camera: {verdicts[-1]}; page screen {got}")
    assert ": FAILED (only 0 of 2 challenges were performed)" in verdicts[-1], p.explain(verdicts[-1])
    assert got == p.spec["error"], p.explain(f"active: {got}")
    assert p.js("return document.querySelector('#step-liveness-ko .description').textContent") == "Liveness failed"
