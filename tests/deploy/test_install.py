"""`make install` into a temporary DESTDIR: the staged tree holds the binary, the
models with their licences, the calibration, the web files and a configuration
whose paths are relative to itself, and no secret. Started from / with only
--config (after the operator writes a keys file), it serves faces, matches and
liveness; moved elsewhere, it still does."""
import os
import shutil
import subprocess

import requests

from service import REPO_ROOT, Installed, round_trip, set_listen_any_port

KEY = "install-test-key-0123456789"


def test_make_install_into_destdir_serves_from_anywhere(tmp_path):
    dest = tmp_path / "stage"
    p = subprocess.run(["make", "--no-print-directory", "install", f"DESTDIR={dest}", "PREFIX=/usr/local"],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    root = dest / "usr" / "local"
    files = {str(f.relative_to(root)) for f in root.rglob("*") if f.is_file()}
    expected = {"bin/bioserver", "etc/bioserver/bioserver.conf", "etc/bioserver/bioserver.conf.example",
                "share/bioserver/calibration/far-v1.txt", "share/bioserver/calibration/far-accurate-v2.txt",
                "share/bioserver/web/capture/index.html",
                "share/bioserver/models/faceapi/face_recognition_model-weights_manifest.json",
                "share/bioserver/models/faceapi/LICENSE", "share/bioserver/models/expo/MobileFaceNet.tflite",
                "share/bioserver/models/expo/LICENSE",
                "share/bioserver/web/sdk/bioserver-network-check.js",
                "share/bioserver/models/faceplugin/fr_detect.onnx", "share/bioserver/models/faceplugin/LICENSE",
                "share/bioserver/models/human/faceres-deep.json", "share/bioserver/models/human/LICENSE"}
    assert expected <= files, expected - files
    assert not any("api-keys" in f for f in files), "a staged install must not carry a key"
    assert (root / "var" / "lib" / "bioserver").is_dir()
    conf = root / "etc" / "bioserver" / "bioserver.conf"
    assert "models = ../../share/bioserver/models" in conf.read_text()
    # The operator's steps: a key, a port.
    (conf.parent / "api-keys").write_text(f"{KEY}:acme:all\n")
    set_listen_any_port(conf)
    check = subprocess.run([str(root / "bin" / "bioserver"), "--config", str(conf), "--check-config"], cwd="/",
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "configuration OK" in check.stdout, check.stderr
    srv = Installed([str(root / "bin" / "bioserver"), "--config", str(conf)], str(tmp_path / "log")).wait_ready()
    try:
        round_trip(srv, KEY)
    finally:
        assert srv.stop() == 0, srv.text()
    assert (root / "var" / "lib" / "bioserver" / "data-keys").exists()  # secrets where configured
    # Relocatable: the whole tree moved elsewhere still finds its files.
    moved = tmp_path / "moved"
    shutil.move(str(dest), str(moved))
    root = moved / "usr" / "local"
    srv = Installed([str(root / "bin" / "bioserver"), "--config", str(root / "etc" / "bioserver" / "bioserver.conf")],
                    str(tmp_path / "log2")).wait_ready()
    try:
        r = requests.get(srv.url("/v2/monitor"), timeout=10).json()
        assert r["models"]["status"] == "UP" and r["calibration"]["status"] == "UP", r
    finally:
        assert srv.stop() == 0, srv.text()


def test_binaries_default_to_their_prefix():
    """Without a config file the compiled-in folders are used, whatever the cwd: the
    installed build's prefix, or this checkout for the development build."""
    for binary, share in (("build/dist/bioserver", "/usr/local/share/bioserver"), ("build/bioserver", REPO_ROOT)):
        p = subprocess.run([os.path.join(REPO_ROOT, binary), "--help"], capture_output=True, text=True, cwd="/")
        assert f"defaults: models, calibration, web under {share};" in p.stdout, p.stdout
