#!/usr/bin/env python3
"""make bench-gallery: 1:N search over a gallery of 1,000,000 faces.

Part 1 (here, through the real server): LFW embeddings of P people (two photos
each) from POST /v2/faces, and the HTTP enrolment rate from templates (POST
/v2/galleries/{id}/faces with a face JSON, driven by wrk) with gallery_sync
normal and full. Part 2 (build/tools/bench_gallery): the 1M-face gallery built
through the gallery service, search p50/p99, RSS, rank-1, restart time and the
naive float-scan baseline. Machine: see `lscpu`; the benchmark shares its cores."""
import base64, json, os, re, socket, struct, subprocess, tempfile, time
import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.environ.get("DATA", os.path.join(REPO, "..", "shared", "data"))
LFW = os.path.join(DATA, "lfw", "lfw_deepfunneled")
KEY = "bench-key-0123456789abcdef"
PEOPLE = int(os.environ.get("PEOPLE", "300"))
FACES = int(os.environ.get("FACES", "1000000"))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class Server:
    def __init__(self, *flags):
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="bench-gallery-")
        self.proc = subprocess.Popen([os.path.join(REPO, "build/bioserver"), "--listen", f"127.0.0.1:{self.port}",
                                      "--data", self.data, "--api-key", KEY, *flags],
                                     cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}/bioserver-app"
        for _ in range(400):
            try:
                if requests.get(self.base + "/v2/monitor", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def embedding(template):
    """Template layout (src/face/template.h): BTPL | u16 version | u16 dim | mode[16] | f32[dim] | HMAC."""
    raw = base64.b64decode(template)
    dim = struct.unpack_from("<H", raw, 6)[0]
    return raw[24:24 + 4 * dim], dim


def lfw_templates(srv):
    people = [p for p in sorted(os.listdir(LFW)) if len(os.listdir(os.path.join(LFW, p))) >= 2]
    people = people[:: max(1, len(people) // PEOPLE)][:PEOPLE]
    pairs = []
    for p in people:
        faces = [f for f in (direct_face(srv, os.path.join(LFW, p, f"{p}_{i:04d}.jpg")) for i in (1, 2)) if f]
        if len(faces) == 2:
            pairs.append(faces)
    return pairs


def direct_face(srv, path):
    with open(path, "rb") as f:
        r = requests.post(srv.base + "/v2/faces", headers={"apikey": KEY}, files={
            "face": (None, json.dumps({"imageType": "SELFIE", "signatureDisabled": True}), "application/json"),
            "image": ("i.jpg", f.read(), "image/jpeg")})
    return r.json() if r.status_code == 200 else None


WRK_SCRIPT = r"""
-- POSTs one JSON body to the paths listed in BENCH_PATHS, in turn.
local f = io.open(os.getenv("BENCH_BODY"), "rb")
local body = f:read("*a")
f:close()
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", paths[n % #paths + 1],
    {["apikey"] = os.getenv("BENCH_KEY"), ["Content-Type"] = "application/json"}, body)
end
"""


def wrk_post(srv, paths, body_obj, seconds):
    """wrk (1 thread, 8 connections): requests/s and the count of non-2xx answers."""
    work = tempfile.mkdtemp(prefix="bench-gallery-wrk-")
    body, plist, script = (os.path.join(work, n) for n in ("body.json", "paths.txt", "post.lua"))
    with open(body, "w") as f:
        json.dump(body_obj, f)
    with open(plist, "w") as f:
        f.write("\n".join("/bioserver-app" + p for p in paths) + "\n")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{seconds}s", "-s", script, f"http://127.0.0.1:{srv.port}"],
                         capture_output=True, text=True, check=True,
                         env=dict(os.environ, BENCH_BODY=body, BENCH_PATHS=plist, BENCH_KEY=KEY)).stdout
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), int(bad.group(1)) if bad else 0


def http_enrolment_rate(sync, seconds=5):
    """Enrolment of a face JSON with its template, next to the same request work
    without durability as the baseline: CreateFaceFromJson into in-memory bio-sessions
    (40 sessions in turn, under their 1,000-face limit), on the same server."""
    srv = Server("--gallery-sync", sync, "--http-threads", "8")
    try:
        # Templates are bound to the server's template key: make one on this server.
        face = direct_face(srv, os.path.join(LFW, "George_W_Bush", "George_W_Bush_0001.jpg"))
        h = {"apikey": KEY}
        sessions = [requests.post(srv.base + "/v2/bio-sessions", headers=h, json={"ttlSeconds": 3600}).json()["id"]
                    for _ in range(40)]
        base_rate, base_bad = wrk_post(srv, [f"/v2/bio-sessions/{s}/faces" for s in sessions], face, seconds)
        g = requests.post(srv.base + "/v2/galleries", headers=h, json={"name": "bench"}).json()["id"]
        rate, bad = wrk_post(srv, [f"/v2/galleries/{g}/faces"], {"externalId": "x", "face": face}, seconds)
        stored = requests.get(f"{srv.base}/v2/galleries/{g}", headers=h).json()["faceCount"]
        print(f"HTTP enrolment from templates, gallery_sync={sync}: {rate:.0f} faces/s ({stored} stored, non-2xx {bad}); "
              f"baseline CreateFaceFromJson into in-memory sessions: {base_rate:.0f} faces/s (non-2xx {base_bad}); "
              f"ratio {rate / base_rate:.2f} (wrk, 8 connections, {seconds} s each)")
    finally:
        srv.stop()


def main():
    os.makedirs(os.path.join(REPO, "build", "bench"), exist_ok=True)
    emb_path = os.path.join(REPO, "build", "bench", "gallery_lfw.bin")
    srv = Server()
    try:
        t = time.perf_counter()
        pairs = lfw_templates(srv)
        print(f"LFW: {len(pairs)} people with two photos embedded by the server in {time.perf_counter() - t:.1f} s")
    finally:
        srv.stop()
    dim = embedding(pairs[0][0]["template"])[1]
    with open(emb_path, "wb") as f:
        f.write(struct.pack("<ii", len(pairs), dim))
        for a, b in pairs:
            f.write(embedding(a["template"])[0] + embedding(b["template"])[0])
    for sync in ("normal", "full"):
        http_enrolment_rate(sync)
    db = os.path.join(tempfile.mkdtemp(prefix="bench-gallery-db-"), "galleries.sqlite3")
    try:
        subprocess.run([os.path.join(REPO, "build/tools/bench_gallery"), emb_path, db, str(FACES)], check=True)
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)


if __name__ == "__main__":
    main()
