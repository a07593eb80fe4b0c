#!/usr/bin/env python3
"""make bench-match: GetMatches latency for a session of N faces, through the real
server. Faces come from real LFW images (one CreateDirectFace each, then added to a
session by CreateFaceFromJson, the way a client re-uses templates). Prints p50/p99 of
GetMatches and the per-comparison cost, next to a numpy baseline doing the same
comparisons (cosine of the embeddings) on the same input in the same run.

With BIOSERVER_BASELINE=path/to/other/bioserver (e.g. a build of the unchanged main
branch) that binary is measured first on the same faces, and the ratio is printed."""
import json, os, signal, statistics, sys, time
import requests

from bench_server import KEY, REPO, start

DATA = os.environ.get("DATA", os.path.join(REPO, "..", "shared", "data"))


def cpu_ms(pid):
    """utime + stime of the process so far, in ms (all threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def main(n_faces=1000, repeats=30):
    baseline = os.environ.get("BIOSERVER_BASELINE")
    print(f"GetMatches, session of {n_faces} faces ({n_faces - 1} signed matches), {os.cpu_count()}-core machine, 2 workers:")
    before = measure(os.path.abspath(baseline), n_faces, repeats, "baseline") if baseline else None
    after = measure(os.path.join(REPO, "build/bioserver"), n_faces, repeats, "this build")
    if before:
        print(f"  ratio this build / baseline: p50 {after[0] / before[0]:.2f}, p99 {after[1] / before[1]:.2f}")


def measure(binary, n_faces, repeats, label):
    proc, base = start(binary, "--workers", "2")
    h = {"apikey": KEY}
    try:
        lfw = os.path.join(DATA, "lfw", "lfw_deepfunneled")
        people = sorted(os.listdir(lfw))[:60]
        templates = []
        for p in people:
            img = os.path.join(lfw, p, sorted(os.listdir(os.path.join(lfw, p)))[0])
            r = requests.post(base + "/v2/faces", headers=h, files={
                "face": ("face.json", json.dumps({"imageType": "SELFIE", "signatureDisabled": True}), "application/json"),
                "image": ("i.jpg", open(img, "rb").read(), "image/jpeg")})
            if r.status_code == 200: templates.append(r.json())
        r = requests.post(base + "/v2/bio-sessions", headers=h, json={"ttlSeconds": 3600})
        sid = r.headers["Location"].rsplit("/", 1)[1]
        ids = []
        for i in range(n_faces):
            face = dict(templates[i % len(templates)]); face.pop("id", None)
            r = requests.post(f"{base}/v2/bio-sessions/{sid}/faces", headers=h, json=face)
            assert r.status_code == 201, r.text
            ids.append(r.headers["Location"].rsplit("/", 1)[1])
        lat = []
        cpu0 = cpu_ms(proc.pid)
        for _ in range(repeats):
            t = time.perf_counter()
            r = requests.get(f"{base}/v2/bio-sessions/{sid}/faces/{ids[0]}/matches", headers=h)
            lat.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and len(r.json()) == n_faces - 1
        cpu = (cpu_ms(proc.pid) - cpu0) / repeats
        lat.sort()
        p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        # Baseline: the same comparisons in numpy from the decoded templates.
        import base64, numpy as np
        embs = []
        for tpl in templates:
            raw = base64.b64decode(tpl["template"])
            embs.append(np.frombuffer(raw[24:24 + 512 * 4], dtype="<f4"))
        mat = np.stack([embs[i % len(embs)] for i in range(n_faces)])
        t = time.perf_counter()
        for _ in range(repeats):
            sims = mat[1:] @ mat[0]
            order = np.argsort(-sims)
        base_ms = (time.perf_counter() - t) * 1000 / repeats
        print(f"  {label:10s} p50 {p50:.2f} ms  p99 {p99:.2f} ms  ({p50 * 1000 / (n_faces - 1):.1f} us per match incl. JSON + ES256 signature)"
              f"; server CPU {cpu:.1f} ms per request")
        print(f"  {'':10s} numpy reference (cosine + sort only, no JSON, no signatures): {base_ms:.3f} ms")
        return p50, p99
    finally:
        proc.send_signal(signal.SIGTERM); proc.wait(timeout=30)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
