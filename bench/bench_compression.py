#!/usr/bin/env python3
"""make bench-compression: what GET .../faces/{id}/image?compression=true costs in
biometric terms. For real images of every kind in ../shared/data (phone-size photos,
ID documents, webcam frames, LFW crops, PNG) it stores the image as a face, reads it
back plain and compressed, and prints the bytes saved and the match score of the
compressed image against the original (POST /v2/match/images, the server's own
pipeline), next to the same score for a plain JPEG re-encode at quality 90 and full
size (the baseline) computed on the same input in the same run."""
import glob, json, os, statistics, sys
import cv2
import numpy as np
import requests

from bench_server import KEY, REPO, start

DATA = os.environ.get("DATA", os.path.join(REPO, "..", "shared", "data"))


def inputs():
    photos = sorted(glob.glob(os.path.join(DATA, "photos", "*.jpg")))
    docs = sorted(glob.glob(os.path.join(DATA, "documents", "specimens", "*.jp*g")))[:6]
    nuaa = sorted(glob.glob(os.path.join(DATA, "spoof", "nuaa", "live", "*", "*.jpg")))[::40][:6]
    lfw = sorted(glob.glob(os.path.join(DATA, "lfw", "lfw_deepfunneled", "A*", "*_0001.jpg")))[:6]
    out = [("photo", p, open(p, "rb").read()) for p in photos] + [("document", p, open(p, "rb").read()) for p in docs]
    out += [("webcam", p, open(p, "rb").read()) for p in nuaa] + [("lfw", p, open(p, "rb").read()) for p in lfw]
    for p in photos[:2]:  # lossless input: compression matters most there
        ok, png = cv2.imencode(".png", cv2.imread(p))
        out.append(("png", p, png.tobytes()))
    return out


def main():
    proc, base = start()
    h = {"apikey": KEY}
    try:
        def score(a, b):
            r = requests.post(base + "/v2/match/images", headers=h, files={
                "referenceImage": ("r", a), "candidateImage": ("c", b),
                "referenceImageType": (None, "SELFIE"), "candidateImageType": (None, "SELFIE")})
            return r.json()["score"] if r.ok else float("nan")

        sid = requests.post(base + "/v2/bio-sessions", headers=h, json={"imageStorageEnabled": True}).json()["id"]
        print(f"{'kind':9} {'file':28} {'original':>9} {'compressed':>10} {'ratio':>6} {'score':>7} {'q90 full':>8}")
        ratios, drops = [], []
        for kind, path, data in inputs():
            r = requests.post(f"{base}/v2/bio-sessions/{sid}/faces", headers=h, files={
                "face": ("f.json", json.dumps({"imageType": "SELFIE"}), "application/json"), "image": ("i", data)})
            if r.status_code != 201:
                print(f"{kind:9} {os.path.basename(path)[:28]:28} no face ({r.status_code})")
                continue
            fid = r.json()["id"]
            plain = requests.get(f"{base}/v2/bio-sessions/{sid}/faces/{fid}/image", headers=h).content
            comp = requests.get(f"{base}/v2/bio-sessions/{sid}/faces/{fid}/image?compression=true", headers=h).content
            assert plain == data and len(comp) <= len(plain)
            q90 = cv2.imencode(".jpg", cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                               [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            s_comp, s_q90 = score(data, comp), score(data, q90)
            ratios.append(len(comp) / len(plain))
            drops.append(s_q90 - s_comp)
            print(f"{kind:9} {os.path.basename(path)[:28]:28} {len(plain):9d} {len(comp):10d} {len(comp)/len(plain):6.2f} "
                  f"{s_comp:7.0f} {s_q90:8.0f}")
        print(f"\nmedian size ratio {statistics.median(ratios):.2f}; compressed vs original score is "
              f"{statistics.median(drops):.0f} points below the q90-full re-encode's (median), worst "
              f"{max(drops):.0f}; accept thresholds are 3500 (document) and 4000 (selfie)")
    finally:
        proc.terminate(); proc.wait()


if __name__ == "__main__":
    sys.exit(main())
