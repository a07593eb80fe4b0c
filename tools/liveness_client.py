#!/usr/bin/python3
"""liveness_client - reference client of the replay-liveness upload (the same
protocol as web/capture/capture.js), on Debian's python3-cryptography/requests.

  liveness_client.py --url http://127.0.0.1:8080 --apikey KEY \
      [--type LIVENESS_PASSIVE|LIVENESS_PASSIVE_VIDEO|LIVENESS_ACTIVE] [--level HIGH] \
      [--interval-ms 100] FRAME.jpg [FRAME.jpg ...]

Creates a bio-session, posts init-liveness-parameters, encrypts the frames to the
server's encryption certificate, uploads, polls replay-liveness-metadata and prints
the final JSON. Protocol (docs/liveness.md):
  K = 32 random bytes, IV = 12 random bytes
  AAD = "bioserver-liveness-v1\\n" + sessionId + "\\n" + serverRandom
  ciphertext = AES-256-GCM(K, IV, AAD, capture JSON) || tag
  encryptedKey = RSA-OAEP(SHA-256, MGF1-SHA-256)(certificate public key, K)
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "/bioserver-app"
AAD_PREFIX = b"bioserver-liveness-v1\n"


def capture_json(frames, interval_ms=100, start_ms=1_700_000_000_000, device=None, sdk=None):
    """frames: list of image bytes -> the plaintext capture object."""
    return {
        "frames": [{"timestamp": start_ms + i * interval_ms, "image": base64.b64encode(f).decode()}
                   for i, f in enumerate(frames)],
        "deviceInfo": device or {"model": "test-client", "os": "linux"},
        "sdkInfo": sdk or {"name": "liveness_client.py", "version": "1"},
    }


def seal(params, session_id, capture, key=None, iv=None, server_random=None):
    """The upload envelope for capture (a dict or raw bytes)."""
    cert = x509.load_der_x509_certificate(base64.b64decode(params["certificates"][0]))
    key = key or os.urandom(32)
    iv = iv or os.urandom(12)
    server_random = server_random or params["serverRandom"]
    aad = AAD_PREFIX + session_id.encode() + b"\n" + server_random.encode()
    plain = capture if isinstance(capture, bytes) else json.dumps(capture).encode()
    ct = AESGCM(key).encrypt(iv, plain, aad)
    wrapped = cert.public_key().encrypt(key, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                          algorithm=hashes.SHA256(), label=None))
    b64 = lambda b: base64.b64encode(b).decode()
    return {"version": 1, "serverRandom": server_random, "encryptedKey": b64(wrapped), "iv": b64(iv),
            "ciphertext": b64(ct)}


def challenges(seed, count):
    """The head turns the server expects (src/liveness/challenge.c)."""
    out = []
    for i in range(count):
        d = hashlib.sha256(f"bioserver-challenge-v1:{seed}:{i}".encode()).digest()
        out.append("RIGHT" if d[0] & 1 else "LEFT")
    return out


def main():
    import requests
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--apikey", required=True)
    ap.add_argument("--type", default="LIVENESS_PASSIVE")
    ap.add_argument("--level", default="HIGH")
    ap.add_argument("--nb-challenge", type=int, default=None)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("frames", nargs="+")
    a = ap.parse_args()
    h = {"apikey": a.apikey, "Content-Type": "application/json"}
    base = a.url.rstrip("/") + PREFIX
    r = requests.post(base + "/v2/bio-sessions", headers=h, data="{}", timeout=30)
    r.raise_for_status()
    sid = r.json()["id"]
    body = {"type": a.type, "securityLevel": a.level, "imageRetrievalDisabled": False}
    if a.nb_challenge:
        body["nbChallenge"] = a.nb_challenge
    r = requests.post(f"{base}/v2/bio-sessions/{sid}/init-liveness-parameters", headers=h, json=body, timeout=30)
    r.raise_for_status()
    params = r.json()
    if a.type == "LIVENESS_ACTIVE":
        print("challenges:", challenges(params["seed"], params.get("nbChallenge", 2)), file=sys.stderr)
    frames = [open(f, "rb").read() for f in a.frames]
    env = seal(params, sid, capture_json(frames, a.interval_ms))
    r = requests.post(f"{base}/v2/bio-sessions/{sid}/liveness-capture", headers=h, json=env, timeout=60)
    if r.status_code != 202:
        print(r.text)
        return 1
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        m = requests.get(f"{base}/v3/bio-sessions/{sid}/replay-liveness-metadata", headers=h, timeout=30).json()
        if m["status"] not in ("INITIALIZED", "IN_PROGRESS"):
            m.pop("image", None)
            print(json.dumps(m, indent=1))
            return 0 if m["status"] == "SUCCESS" else 2
        time.sleep(0.2)
    print("timed out waiting for the verdict", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
