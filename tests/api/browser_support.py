"""Headless Chromium with a fake camera, for the browser tests (test_capture_page.py,
test_webcapture_pages.py).

Debian's chromium + chromium-driver driven by python3-selenium (make deps installs
them; without them the browser tests are skipped and say so). The camera plays a
YUV4MPEG2 file written here from still frames (../shared/data, never copied): every
frame is held REPEAT/FPS seconds, with a camera's sensor noise, and the file loops. Screenshots go to build/artifacts/.
"""
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT, SANITIZED

ARTIFACTS = os.path.join(REPO_ROOT, "build", "artifacts")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
W, H, FPS, REPEAT = 640, 480, 15, 4   # each source frame shown 4/15 s (about 0.27 s)
SENSOR_NOISE = 2.0                    # grey levels (sigma), a webcam's at least

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

needs_chromium = pytest.mark.skipif(
    not HAVE_SELENIUM or not os.access(CHROMIUM, os.X_OK) or not os.access(CHROMEDRIVER, os.X_OK),
    reason="chromium, chromium-driver or python3-selenium not installed (make deps)")


def write_y4m(path, frames, noise=SENSOR_NOISE, fps=FPS, repeat=REPEAT):
    """YUV4MPEG2, 4:2:0 (planar I420 per frame), every frame REPEAT times, each copy
    with its own sensor noise (Gaussian, `noise` grey levels, fixed seed): a camera
    never delivers two identical frames, and the server refuses a stream of copies
    as a frozen or looped video."""
    rng = np.random.default_rng(12)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for name in frames:
            img = cv2.imread(name, cv2.IMREAD_COLOR)
            assert img is not None, name
            if img.shape[:2] != (H, W):
                img = cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)
            for _ in range(repeat):
                noisy = np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8) if noise else img
                i420 = cv2.cvtColor(noisy, cv2.COLOR_BGR2YUV_I420).tobytes()  # Y, then U, then V
                assert len(i420) == W * H * 3 // 2
                f.write(b"FRAME\n")
                f.write(i420)


def fake_camera_videos(folder, samples, **options):
    """{name: path of a .y4m} for {name: [frames]}, written into folder (options: write_y4m's)."""
    out = {}
    for name, frames in samples.items():
        out[name] = os.path.join(str(folder), f"{name}.y4m")
        write_y4m(out[name], frames, **options)
    return out


def chromium(video, profile_dir, log_path, window="480,1000"):
    """A headless Chromium whose camera plays `video`; camera permission is granted
    (--use-fake-ui-for-media-stream) and pages are asked for in English."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--no-first-run",
                "--no-default-browser-check", "--mute-audio", f"--window-size={window}", "--lang=en-US",
                f"--user-data-dir={profile_dir}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER, log_path=log_path), options=opts)


def shoot(drv, folder, name):
    """A screenshot to build/artifacts/<folder>/<name>[-asan].png; returns its path."""
    d = os.path.join(ARTIFACTS, folder)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name + ("-asan" if SANITIZED else "") + ".png")
    drv.save_screenshot(path)
    return path
