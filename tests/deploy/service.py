"""Starting an installed bioserver the way an operator does (from /, with only
--config) and driving a face + match + liveness round trip on real images."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import requests

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data"))
LFW = os.path.join(DATA, "lfw", "lfw_deepfunneled")
NUAA_LIVE = sorted(glob.glob(os.path.join(DATA, "spoof", "nuaa", "live", "0001", "*.jpg")))
PREFIX = "/bioserver-app"

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
from liveness_client import capture_json, seal  # noqa: E402


def lfw(name, n):
    return os.path.join(LFW, name, f"{name}_{n:04d}.jpg")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def set_listen_any_port(conf):
    """The operator's one edit for a test machine: any free loopback port."""
    text = open(conf).read()
    text, n = re.subn(r"^listen = .*$", "listen = 127.0.0.1:0", text, flags=re.M)
    assert n == 1
    with open(conf, "w") as f:
        f.write(text)


class Installed:
    """One started installed binary; the port comes from its start-up log line."""

    def __init__(self, argv, log_path, env=None):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd="/", stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        self.port = None

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"bioserver exited with {self.proc.returncode}:\n{self.text()}")
            m = re.search(r"listening on http://[^:]+:(\d+)", self.text())
            if m:
                self.port = int(m.group(1))
                return self
            time.sleep(0.05)
        raise AssertionError("bioserver did not start:\n" + self.text())

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{PREFIX}{path}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.log.close()
        return rc


def round_trip(srv, key):
    """Faces, matches and liveness through the installed server's HTTP API."""
    h = {"apikey": key}
    mon = requests.get(srv.url("/v2/monitor"), timeout=10).json()
    assert mon["status"] == "UP" and mon["models"]["status"] == "UP" and mon["calibration"]["status"] == "UP", mon
    r = requests.post(srv.url("/v2/bio-sessions"), headers=h, json={"ttlSeconds": 300}, timeout=30)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    faces = []
    for path in (lfw("Akhmed_Zakayev", 1), lfw("Akhmed_Zakayev", 3), lfw("Colin_Powell", 1)):
        r = requests.post(srv.url(f"/v2/bio-sessions/{sid}/faces"), headers=h, timeout=60,
                          files={"face": (None, json.dumps({"imageType": "SELFIE"}), "application/json"),
                                 "image": ("i.jpg", read(path), "image/jpeg")})
        assert r.status_code == 201, r.text
        faces.append(r.json()["id"])
    r = requests.get(srv.url(f"/v2/bio-sessions/{sid}/faces/{faces[0]}/matches"), headers=h, timeout=60)
    assert r.status_code == 200, r.text
    scores = {m["candidate"]["id"]: m["score"] for m in r.json()}
    assert scores[faces[1]] >= 3500 and scores[faces[2]] < 3000, scores  # same person / another one
    # Replay liveness with a live NUAA frame, encrypted like the web page does.
    r = requests.post(srv.url(f"/v2/bio-sessions/{sid}/init-liveness-parameters"), headers=h, timeout=30,
                      json={"type": "LIVENESS_PASSIVE"})
    assert r.status_code == 200, r.text
    env = seal(r.json(), sid, capture_json([read(NUAA_LIVE[0])]))
    r = requests.post(srv.url(f"/v2/bio-sessions/{sid}/liveness-capture"), headers=h, json=env, timeout=30)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = requests.get(srv.url(f"/v3/bio-sessions/{sid}/replay-liveness-metadata"), headers=h, timeout=30).json()
        if m["status"] not in ("INITIALIZED", "IN_PROGRESS"):
            break
        time.sleep(0.1)
    assert m["status"] == "SUCCESS", m
    assert requests.delete(srv.url(f"/v2/bio-sessions/{sid}"), headers=h, timeout=30).status_code == 204
