#!/usr/bin/python3
"""bench_memory.py - resident memory of the real server per worker count (make bench-memory).

Starts build/bioserver (or $BIOSERVER) with every model loaded and --workers N for
N in 1, 2, 4, 8 (or $BENCH_WORKER_COUNTS), waits until /v2/monitor answers (RSS
idle), then sends 3N CreateDirectFace (half of them in the accurate mode F5_2_VID75)
and 3N age requests, N at a time, so that
every worker has decoded and run its models (RSS used), and reads VmRSS and VmHWM
(peak) from /proc. Prints MB per worker count and the increment per extra worker.
Replay liveness is not exercised: its sessions live in the worker's arena.

With BIOSERVER_BASELINE=path/to/other/bioserver the same is measured for that
binary first (e.g. a build of the unchanged main branch), so both columns come
from the same run on the same machine.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIOSERVER = os.path.join(ROOT, os.environ.get("BIOSERVER", "build/bioserver"))
BASELINE = os.environ.get("BIOSERVER_BASELINE")
DATA = os.path.normpath(os.environ.get("DATA", os.path.join(ROOT, "..", "shared", "data")))
PHOTO = os.path.join(DATA, "lfw", "lfw_deepfunneled", "George_W_Bush", "George_W_Bush_0001.jpg")
COUNTS = [int(x) for x in os.environ.get("BENCH_WORKER_COUNTS", "1,2,4,8").split(",")]
KEY = "bench-key-tenant-memory-00001"
PREFIX = "/bioserver-app"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def exercise(base, workers):
    """3N faces (fast and accurate modes) and 3N age estimates, N in flight at once, so every worker runs."""
    with open(PHOTO, "rb") as f:
        image = f.read()
    # Faces alternate between a fast mode and the accurate one (its second model).
    faces = [json.dumps({"imageType": "SELFIE"}), json.dumps({"imageType": "SELFIE", "mode": "F5_2_VID75"})]
    age = json.dumps({"threshold": 18})

    def one(i):
        if i % 2:
            face = faces[(i // 2) % 2]
            r = requests.post(base + "/v2/faces", headers={"apikey": KEY}, timeout=120,
                              files={"face": ("face.json", face, "application/json"),
                                     "image": ("i.jpg", image, "image/jpeg")})
        else:
            r = requests.post(base + "/v2/ages", headers={"apikey": KEY}, timeout=120,
                              files={"age": ("age.json", age, "application/json"),
                                     "image": ("i.jpg", image, "image/jpeg")})
        r.raise_for_status()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(6 * workers)))


def measure(binary, workers):
    """(VmRSS MB after start-up, VmRSS MB after one request of each kind, VmHWM MB)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{port}", "--api-key", f"{KEY}:bench:all",
             "--models", os.path.join(ROOT, "models"), "--data", tmp,
             "--calibration", os.path.join(ROOT, "calibration", "far-v1.txt"),
             "--workers", str(workers), "--queue-depth", "64"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "log"), "wb"))
        try:
            base = f"http://127.0.0.1:{port}{PREFIX}"
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    sys.exit(f"bioserver exited: {open(os.path.join(tmp, 'log')).read()[-2000:]}")
                try:
                    m = requests.get(base + "/v2/monitor", timeout=2)
                    if m.status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    sys.exit("bioserver not ready after 60 s")
                time.sleep(0.1)
            idle = status_kb(proc.pid, "VmRSS") / 1024
            exercise(base, workers)
            used = status_kb(proc.pid, "VmRSS") / 1024
            peak = status_kb(proc.pid, "VmHWM") / 1024
            return idle, used, peak
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def report(label, binary):
    print(f"{label}: {os.path.relpath(binary, ROOT)}")
    print(f"  {'workers':>7} {'RSS idle MB':>12} {'RSS used MB':>12} {'peak MB':>8} {'+MB/worker':>11}")
    rows = []
    for n in COUNTS:
        idle, used, peak = measure(binary, n)
        step = ""
        if rows:
            prev_n, prev_used = rows[-1]
            step = f"{(used - prev_used) / (n - prev_n):.1f}"
        rows.append((n, used))
        print(f"  {n:>7} {idle:>12.1f} {used:>12.1f} {peak:>8.1f} {step:>11}", flush=True)
    return dict(rows)


def main():
    print(f"bench-memory on {os.cpu_count()} CPUs; all models loaded; 3N faces + 3N ages per run, N in flight")
    base = report("baseline", os.path.abspath(BASELINE)) if BASELINE else None
    now = report("this build", BIOSERVER)
    if base:
        print("  ratio this/baseline at each worker count: " +
              ", ".join(f"{n}: {now[n] / base[n]:.2f}" for n in COUNTS))
    print("  issue 14 target: RSS used <= 160 MB at 8 workers, <= 8 MB per extra worker; "
          "before the shared weights: 91.4/143.2/246.5/452.6 MB")


if __name__ == "__main__":
    main()
