"""A malformed model file never takes the server down (issue 11): the loader
refuses it with a message naming the file, node and attribute (in the log), and
the instance starts in its degraded mode: /v2/monitor answers 503 DEGRADED with
the reason, face routes answer 503, sessions still work.

The bad model is the real fr_detect.onnx with the strides of its first
convolution set to 0 (a SIGFPE before the loaders validated attributes), written
with a same-length byte patch so the protobuf stays well formed; every other
model file is linked from models/."""
import os
import subprocess

import pytest

from conftest import BIOSERVER, KEY_A, REPO_ROOT, assert_error

MODELS = os.path.join(REPO_ROOT, "models")
DETECT = os.path.join(MODELS, "faceplugin", "fr_detect.onnx")
# AttributeProto: name (field 1) "strides", ints (field 8) 2 and 2, type INTS.
STRIDES_2 = b"\x0a\x07strides\x40\x02\x40\x02\xa0\x01\x07"
STRIDES_0 = b"\x0a\x07strides\x40\x00\x40\x00\xa0\x01\x07"


def models_with(tmp_path, name, data):
    """A models folder like models/, with faceplugin/<name> replaced by data."""
    root = tmp_path / "models"
    for sub in os.listdir(MODELS):
        if not os.path.isdir(os.path.join(MODELS, sub)):
            continue
        (root / sub).mkdir(parents=True)
        for f in os.listdir(os.path.join(MODELS, sub)):
            if not (sub == "faceplugin" and f == name):
                os.symlink(os.path.join(MODELS, sub, f), root / sub / f)
    (root / "faceplugin" / name).write_bytes(data)
    return str(root)


@pytest.mark.skipif(not os.path.exists(DETECT), reason="models are not fetched")
def test_model_with_stride_zero_degrades_instead_of_crashing(start_server, tmp_path):
    with open(DETECT, "rb") as f:
        original = f.read()
    assert STRIDES_2 in original
    models = models_with(tmp_path, "fr_detect.onnx", original.replace(STRIDES_2, STRIDES_0, 1))
    # By default a server whose models do not load refuses to start, saying why (no crash).
    refused = subprocess.run([BIOSERVER, "--models", models, "--listen", "127.0.0.1:0", "--api-key", KEY_A,
                              "--data", str(tmp_path / "refused")], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1, refused.stderr
    assert "fr_detect.onnx" in refused.stderr and "strides" in refused.stderr, refused.stderr
    # degraded_start serves what does not need the models.
    srv = start_server("--models", models, "--degraded-start", "true")

    mon = srv.get("/v2/monitor")
    assert mon.status_code == 503 and mon.json()["status"] == "DEGRADED", mon.text
    assert any("face models are not loaded" in r for r in mon.json()["reasons"]), mon.text
    r = srv.post("/v2/faces", key=KEY_A, files={"face": (None, '{"imageType":"SELFIE"}'),
                                                 "image": ("i.jpg", b"\xff\xd8\xff\xd9")})
    assert_error(r, 503)
    assert srv.create_session()   # what needs no model still works
    # The operator's log names the file, the node and the attribute.
    log = [l.get("message", "") for l in srv.log_lines()]
    assert any("fr_detect.onnx" in m and "strides" in m and "Conv" in m for m in log), log
