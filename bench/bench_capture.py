"""make bench-capture: the real-time capture stream under load, against the upload it
replaces, in one run on one server (docs/capture-stream.md).

For N = 1, 2, 4, 8 concurrent clients, for SECONDS each:
  stream  each client loops: init-liveness-session (LIVENESS_PASSIVE_VIDEO) -> capture
          stream -> frames sent at the stream's maxFps (as fast as allowed), at most two
          without an answer in flight, as the browser SDK does -> result.
          Guidance latency = a frame sent -> its tracking message; guidance fps = tracking
          messages per second of capture per stream; captures/s sustained, and the time
          from the stream's start to its verdict.
  upload  the baseline: each client loops over init-liveness-session -> the same frames
          (VIDEO_FRAMES of them) sealed and posted to liveness-capture -> polls the
          verdict. No guidance exists on this path; captures/s and time to verdict are
          comparable.
Frames: subject 0001's NUAA webcam frames (../shared/data/spoof/nuaa/live/0001), 640x480.
"""
import glob
import os
import socket
import statistics
import sys
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import bench_server  # noqa: E402
from liveness_client import capture_json, seal  # noqa: E402
from stream_client import CaptureStream, Closed  # noqa: E402

DATA = os.environ.get("DATA", os.path.join(HERE, "..", "..", "shared", "data"))
FRAMES = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(DATA, "spoof/nuaa/live/0001/*.jpg")))]
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CLIENTS = [int(n) for n in os.environ.get("BENCH_CLIENTS", "1,2,4,8").split(",")]
VIDEO_FRAMES = 12  # what a PASSIVE_VIDEO stream collects (capture_stream.c)
MODE = "LIVENESS_PASSIVE_VIDEO"


def new_session(root):
    r = requests.post(root + "/video-server/init-liveness-session", json={"livenessMode": MODE},
                      headers={"apikey": bench_server.KEY}, timeout=30)
    r.raise_for_status()
    return r.headers["Location"].rsplit("/", 1)[1]


def stream_capture(root, stats):
    """One capture over the stream; appends latencies and counts to stats."""
    sid = new_session(root)
    t0 = time.monotonic()
    cs = CaptureStream(root, sid, "/video-server")
    if cs.status != 101:
        stats["refused"] += 1
        return
    interval = 1.0 / cs.hello["maxFps"]
    cs.start()
    sent, first, last, tracked, i, answered = {}, None, None, 0, 0, 0
    next_send = time.monotonic()
    pending = False
    try:
        while True:
            now = time.monotonic()
            if not pending and now >= next_send and cs.seq - answered < 2:
                cs.ws.sock.settimeout(30)
                sent[cs.seq] = now
                cs.send_frame(FRAMES[i % len(FRAMES)])
                i += 1
                next_send = max(next_send + interval, now)  # no catch-up burst after a wait
                first = first or now
            wait = next_send - time.monotonic() if cs.seq - answered < 2 else 1.0
            cs.ws.sock.settimeout(60 if pending else max(0.001, wait))
            try:
                m = cs.next()
            except (socket.timeout, BlockingIOError):
                continue
            now = time.monotonic()
            answered += "seq" in m
            if m["type"] == "tracking" and "seq" in m:
                stats["latency"].append(now - sent[m["seq"]])
                tracked += 1
                last = now
            elif m["type"] == "notice":
                stats["dropped"] += 1
                stats["why"].append(f"{m['code']}@{m['seq']}")
            elif m.get("instruction") == "TRACKER_CHALLENGE_PENDING":
                pending = True
            elif m["type"] in ("result", "error"):
                break
    except Closed:
        m = {"type": "closed"}
    cs.close()
    if m.get("livenessStatus") == "SUCCESS":
        stats["captures"] += 1
        stats["verdict"].append(time.monotonic() - t0)
        if last and last > first:
            stats["fps"].append((tracked - 1) / (last - first))
    else:
        stats["failed"] += 1
        r = requests.get(f"{root}/bioserver-app/v2/bio-sessions/{sid}/liveness-challenge-result",
                         headers={"apikey": bench_server.KEY}, timeout=30).json()
        stats["why"].append(f"{m.get('livenessStatus') or m.get('message') or m['type']}: {r.get('diagnostic')}")


def upload_capture(root, stats):
    sid = new_session(root)
    t0 = time.monotonic()
    h = {"apikey": bench_server.KEY}
    p = requests.get(f"{root}/bioserver-app/v2/bio-sessions/{sid}/init-liveness-parameters", headers=h, timeout=30).json()
    env = seal(p, sid, capture_json(FRAMES[:VIDEO_FRAMES], 66))
    r = requests.post(f"{root}/bioserver-app/v2/bio-sessions/{sid}/liveness-capture", json=env, headers=h, timeout=60)
    if r.status_code != 202:
        stats["failed"] += 1
        return
    while True:
        s = requests.get(f"{root}/bioserver-app/v3/bio-sessions/{sid}/replay-liveness-metadata", headers=h,
                         timeout=30).json()["status"]
        if s not in ("INITIALIZED", "IN_PROGRESS"):
            break
        time.sleep(0.02)
    if s == "SUCCESS":
        stats["captures"] += 1
        stats["verdict"].append(time.monotonic() - t0)
    else:
        stats["failed"] += 1
        stats["why"].append(s)


def run(root, fn, clients):
    stats = {"latency": [], "fps": [], "verdict": [], "why": [], "captures": 0, "failed": 0, "dropped": 0, "refused": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client():
        while time.monotonic() < deadline:
            local = {k: ([] if isinstance(v, list) else 0) for k, v in stats.items()}
            fn(root, local)
            with lock:
                for k, v in local.items():
                    stats[k] += v

    t0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["elapsed"] = time.monotonic() - t0
    return stats


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    if not FRAMES:
        sys.exit(f"no frames under {DATA}/spoof/nuaa/live/0001")
    proc, base = bench_server.start(None, "--capture-stream-max", "16", "--queue-depth", "64")
    root = base[: -len("/bioserver-app")]
    try:
        print(f"bench-capture: {len(FRAMES)} NUAA webcam frames 640x480, {MODE}, {SECONDS:.0f} s per run, "
              f"{os.cpu_count()} CPUs (shared), server workers default")
        print(f"{'clients':>7} | {'guidance p50':>12} {'p99':>8} {'fps/stream':>10} {'dropped':>7} | "
              f"{'stream cap/s':>12} {'verdict p50':>11} | {'upload cap/s':>12} {'verdict p50':>11} | {'ratio':>5}")
        for n in CLIENTS:
            s = run(root, stream_capture, n)
            u = run(root, upload_capture, n)
            scap, ucap = s["captures"] / s["elapsed"], u["captures"] / u["elapsed"]
            print(f"{n:>7} | {pct(s['latency'], 50) * 1000:>9.1f} ms {pct(s['latency'], 99) * 1000:>5.1f} ms "
                  f"{statistics.median(s['fps']) if s['fps'] else float('nan'):>10.1f} {s['dropped']:>7} | "
                  f"{scap:>12.2f} {pct(s['verdict'], 50):>9.2f} s | {ucap:>12.2f} {pct(u['verdict'], 50):>9.2f} s | "
                  f"{scap / ucap if ucap else float('nan'):>5.2f}"
                  + (f"   (stream failed {s['failed']} {sorted(set(s['why']))}, refused {s['refused']}; "
                     f"upload failed {u['failed']})" if s["failed"] or s["refused"] or u["failed"] else ""))
        print("guidance: frame sent -> its tracking message (incl. decrypt, decode, detection, landmarks);"
              " ratio = stream captures/s / upload captures/s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
