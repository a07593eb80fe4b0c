"""Biometric data protected at rest (docs/security.md, "What is encrypted with which key").

Templates handed to clients are AES-256-GCM sealed under the data folder's key ring
and bound to the tenant they were issued to; face records, images and liveness
items reach the store only sealed, bound to tenant, session, kind and id. These
tests open what the server wrote with the key ring file, in Python, so the format
and the keys are checked from outside the server, and they rotate the key between
two server runs. Version 1 templates are refused unless --legacy-templates is on.
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import subprocess
import tempfile

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conftest import BIOSERVER, KEY_A, KEY_B, REPO_ROOT, TENANT_A, TENANT_B, assert_error, launch, sanitizer_env
from redis_support import REDIS_SERVER, RedisServer

LFW = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data", "lfw", "lfw_deepfunneled"))
SAME = [os.path.join(LFW, "George_W_Bush", f"George_W_Bush_{i:04d}.jpg") for i in (1, 2)]
SAME_MIN = 3500


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- the key ring and the two sealed formats, read from outside the server ----------------

def ring(data_dir):
    """{key id: master key} from DATA/data-keys."""
    keys = {}
    with open(os.path.join(data_dir, "data-keys")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                kid, hexkey = line.split()
                keys[int(kid)] = bytes.fromhex(hexkey)
    return keys


def aead_key(master, purpose):
    return hmac.new(master, f"{purpose}/aead".encode(), hashlib.sha256).digest()


def open_template(text, tenant, data_dir):
    """The embedding inside a version 2 template (raises InvalidTag for another tenant)."""
    raw = base64.b64decode(text, validate=True)
    header, kid, nonce, sealed = raw[:24], raw[24:28], raw[28:40], raw[40:]
    assert header[:6] == b"BTPL\x02\x00"
    key = aead_key(ring(data_dir)[struct.unpack("<I", kid)[0]], "bioserver template v2")
    plain = AESGCM(key).decrypt(nonce, sealed, kid + header + tenant.encode())
    return np.frombuffer(plain, "<f4")


def template_key_id(text):
    return struct.unpack("<I", base64.b64decode(text)[24:28])[0]


def open_store_value(value, tenant, sid, kind, data_dir):
    """(key id, plain bytes) of a sealed store item."""
    assert value[:4] == b"BSV1", value[:16]
    n = value[4]
    item_id, rest = value[5:5 + n], value[5 + n:]
    kid, nonce, sealed = rest[:4], rest[4:16], rest[16:]
    aad = b"\0".join([b"BSV1", tenant.encode(), sid.encode(), kind.encode(), item_id])
    key = aead_key(ring(data_dir)[struct.unpack("<I", kid)[0]], "bioserver store v1")
    return struct.unpack("<I", kid)[0], AESGCM(key).decrypt(nonce, sealed, kid + aad)


def direct_template(srv, path, key=KEY_A):
    files = [("face", (None, json.dumps({"imageType": "SELFIE"}), "application/json")),
             ("image", ("i.jpg", read(path), "image/jpeg"))]
    r = srv.post("/v2/faces", key=key, files=files)
    assert r.status_code == 200, r.text
    return {k: v for k, v in r.json().items() if k != "signature"}


def match(srv, reference, path, key=KEY_A):
    parts = [("referenceFace", (None, json.dumps(reference), "application/json")),
             ("candidateImage", ("c.jpg", read(path), "image/jpeg")), ("candidateImageType", (None, "SELFIE"))]
    return srv.post("/v2/match", key=key, files=parts)


def ready(srv):
    mon = srv.get("/v2/monitor").json()
    if mon["models"]["status"] != "UP" or mon["calibration"]["status"] != "UP" or not os.path.isdir(LFW):
        pytest.skip("face models, calibration or LFW images are not available")


def rotate(data_dir):
    out = subprocess.run([BIOSERVER, "--data", data_dir, "--rotate-data-key"], capture_output=True, text=True,
                         timeout=30, cwd=REPO_ROOT, env=sanitizer_env())
    assert out.returncode == 0, out.stderr
    return out.stdout


# ---- templates ----------------------------------------------------------------------------

def test_template_is_encrypted_for_its_tenant(start_server):
    srv = start_server()
    ready(srv)
    data = os.path.join(srv.workdir, "data")
    face = direct_template(srv, SAME[0])
    emb = open_template(face["template"], TENANT_A, data)
    assert emb.shape == (512,) and abs(float(np.linalg.norm(emb)) - 1) < 1e-3
    raw = base64.b64decode(face["template"])
    for i in range(0, 512, 16):  # no float of the embedding is in the clear
        assert emb[i:i + 2].tobytes() not in raw
    with pytest.raises(InvalidTag):
        open_template(face["template"], TENANT_B, data)
    # The same face for tenant B is another template (and opens only for B).
    other = direct_template(srv, SAME[0], key=KEY_B)
    assert other["template"] != face["template"]
    assert np.allclose(open_template(other["template"], TENANT_B, data), emb)


def test_template_of_another_tenant_is_400(server):
    ready(server)
    reference = direct_template(server, SAME[0])
    r = match(server, reference, SAME[1], key=KEY_B)
    assert_error(r, 400, "another tenant")
    sid = server.create_session(key=KEY_B)
    assert_error(server.post_json(f"/v2/bio-sessions/{sid}/faces", reference, key=KEY_B), 400, "another tenant")
    r = match(server, reference, SAME[1])
    assert r.status_code == 200 and r.json()["score"] >= SAME_MIN, r.text


def v1_template(embedding, mode, mac_key):
    body = b"BTPL" + struct.pack("<HH", 1, len(embedding)) + mode.encode().ljust(16, b"\0") + embedding.tobytes()
    return base64.b64encode(body + hmac.new(mac_key, body, hashlib.sha256).digest()).decode()


def test_version_1_templates_only_with_legacy_setting(start_server):
    """legacy_templates = true: a version 1 template (clear embedding + HMAC with
    DATA/template-key.bin) is accepted and re-issued as version 2; by default it is
    refused (tests/api/test_faces.py)."""
    srv = start_server("--legacy-templates", "true")
    ready(srv)
    data = os.path.join(srv.workdir, "data")
    face = direct_template(srv, SAME[0])
    emb = open_template(face["template"], TENANT_A, data)
    old = v1_template(emb, face["mode"], read(os.path.join(data, "template-key.bin")))
    sid = srv.create_session()
    r = srv.post_json(f"/v2/bio-sessions/{sid}/faces", dict(face, template=old, templateVersion=1), key=KEY_A)
    assert r.status_code == 201, r.text
    assert r.json()["templateVersion"] == 2 and r.json()["template"] == face["template"]  # re-issued
    m = match(srv, dict(face, template=old, templateVersion=1), SAME[1])
    assert m.status_code == 200 and m.json()["score"] >= SAME_MIN, m.text
    forged = bytearray(base64.b64decode(old))
    forged[100] ^= 1
    r = srv.post_json(f"/v2/bio-sessions/{sid}/faces", dict(face, template=base64.b64encode(forged).decode(),
                                                             templateVersion=1), key=KEY_A)
    assert_error(r, 400, "integrity check failed")


def test_key_rotation_templates(start_server, tmp_path):
    """After --rotate-data-key a new instance seals with key 2 and opens key 1's
    templates; an instance started before the rotation keeps sealing with key 1
    and opens key 2's templates (it reads the ring again on an unknown key)."""
    data = str(tmp_path / "shared-data")
    a = start_server("--data", data, data=False)
    ready(a)
    old = direct_template(a, SAME[0])
    assert template_key_id(old["template"]) == 1
    assert "data key 2 is now current" in rotate(data)
    b = start_server("--data", data, data=False)
    sid_b = b.create_session()
    r = b.post_json(f"/v2/bio-sessions/{sid_b}/faces", old, key=KEY_A)
    assert r.status_code == 201, r.text
    new = r.json()["template"]
    assert template_key_id(new) == 2
    assert np.array_equal(open_template(new, TENANT_A, data), open_template(old["template"], TENANT_A, data))
    sid_a = a.create_session()
    r = a.post_json(f"/v2/bio-sessions/{sid_a}/faces", dict(old, template=new), key=KEY_A)
    assert r.status_code == 201, r.text
    assert r.json()["template"] == old["template"]  # a still seals with key 1
    assert template_key_id(direct_template(b, SAME[1])["template"]) == 2


# ---- the store ----------------------------------------------------------------------------

def redis_hget(redis, key, field):
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "--raw", "HGET", key, field], capture_output=True,
                         timeout=10, check=True)
    assert out.stdout.endswith(b"\n")
    return out.stdout[:-1]


def session_key(redis, sid):
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "--raw", "--scan", "--pattern", f"bio:*{sid}*"],
                         capture_output=True, text=True, timeout=10, check=True)
    keys = [k for k in out.stdout.split() if not k.endswith(":o")]
    assert len(keys) == 1, keys
    return keys[0]


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_store_values_encrypted_and_readable_after_rotation(tmp_path):
    """What Redis holds of a face (record, image) is sealed for its tenant, session,
    kind and id, opens with the ring's store key, and stays readable after a key
    rotation and a restart; what is written after it uses the new key."""
    root = str(tmp_path)
    redis = RedisServer(root)
    data = os.path.join(root, "data")
    servers = []
    try:
        def start():
            workdir = tempfile.mkdtemp(prefix="srv", dir=root)
            servers.append(launch(workdir, "--store", redis.url, "--data", data, data=False))
            return servers[-1]

        srv = start()
        ready(srv)
        image = read(SAME[0])
        sid = srv.create_session(imageStorageEnabled=True)
        files = [("face", (None, json.dumps({"imageType": "SELFIE"}), "application/json")),
                 ("image", ("i.jpg", image, "image/jpeg"))]
        r = srv.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A, files=files)
        assert r.status_code == 201, r.text
        face = r.json()
        fid = face["id"]
        key = session_key(redis, sid)
        record, stored_image = redis_hget(redis, key, f"i:face:{fid}"), redis_hget(redis, key, f"i:image:{fid}")
        emb = open_template(face["template"], TENANT_A, data)
        for value, clear in ((record, emb.tobytes()), (stored_image, image)):
            assert value.startswith(b"BSV1")
            for i in range(0, len(clear) - 32, max(1, len(clear) // 16)):
                assert clear[i:i + 32] not in value  # nothing of it in the clear
        for text in (b"FRC2", b'"digest"', face["digest"].encode(), b"SELFIE"):
            assert text not in record
        kid, plain = open_store_value(stored_image, TENANT_A, sid, "image", data)
        assert kid == 1 and plain == image
        kid, plain = open_store_value(record, TENANT_A, sid, "face", data)
        assert kid == 1 and plain.startswith(b"FRC2") and emb.tobytes() in plain
        with pytest.raises(InvalidTag):  # bound to its place
            open_store_value(record, TENANT_A, sid, "image", data)

        rotate(data)
        servers.pop().check_clean_exit()
        srv = start()
        got = srv.get(f"/v2/bio-sessions/{sid}/faces/{fid}", key=KEY_A)
        assert got.status_code == 200, got.text
        assert template_key_id(got.json()["template"]) == 2  # re-rendered under the new key
        assert np.array_equal(open_template(got.json()["template"], TENANT_A, data), emb)
        img = srv.get(f"/v2/bio-sessions/{sid}/faces/{fid}/image", key=KEY_A)
        assert img.status_code == 200 and img.content == image
        files[1] = ("image", ("j.jpg", read(SAME[1]), "image/jpeg"))
        r = srv.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A, files=files)
        assert r.status_code == 201, r.text
        kid, _ = open_store_value(redis_hget(redis, key, f"i:face:{r.json()['id']}"), TENANT_A, sid, "face", data)
        assert kid == 2
        m = srv.get(f"/v2/bio-sessions/{sid}/faces/{fid}/matches", key=KEY_A)
        assert m.status_code == 200 and m.json()[0]["score"] >= SAME_MIN, m.text
        # A record moved to another face id no longer opens: 500, never another face's data.
        subprocess.run(["redis-cli", "-p", str(redis.port), "-x", "HSET", key, f"i:face:{r.json()['id']}"],
                       input=record, capture_output=True, timeout=10, check=True)
        assert_error(srv.get(f"/v2/bio-sessions/{sid}/faces/{r.json()['id']}", key=KEY_A), 500, "integrity check")
    finally:
        for s in servers:
            s.stop()
        redis.stop()
