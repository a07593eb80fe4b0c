"""Opt-in (`make container`): builds the image of packaging/container/Containerfile
with podman from the .deb of `make deb`, runs it as its non-root user with a keys
secret, waits for the HEALTHCHECK, runs the face + match + liveness round trip and
rotates the key with SIGHUP. Not part of `make test`: it needs podman and a Debian
12 base image (CONTAINER_BASE; `make container-base` makes one with debootstrap
when no registry is reachable)."""
import glob
import os
import socket
import subprocess
import time
import uuid

import pytest
import requests

from service import REPO_ROOT, round_trip

BASE = os.environ.get("CONTAINER_BASE", "docker.io/library/debian:12-slim")
IMAGE = "localhost/bioserver:test"
# This machine (a Firecracker VM with hybrid cgroups) needs runc and explicit
# ulimits; a plain host needs none of them. Tried in order.
RUN_FLAGS = ([], ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"])


def podman(*args, check=True, timeout=900):
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"podman {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    debs = glob.glob(os.path.join(REPO_ROOT, "build", "bioserver_*_amd64.deb"))
    assert len(debs) == 1, "run `make deb` first"
    ctx = tmp_path_factory.mktemp("container")
    os.link(debs[0], ctx / "bioserver.deb")
    # chroot isolation: RUN steps need no OCI runtime (none works in some VMs).
    # docker format: the OCI image format has no HEALTHCHECK.
    podman("build", "--format", "docker", "--isolation=chroot", "--build-arg", f"BASE={BASE}", "-f",
           os.path.join(REPO_ROOT, "packaging", "container", "Containerfile"), "-t", IMAGE, str(ctx))
    yield IMAGE
    podman("rmi", "-f", IMAGE, check=False)


def test_container_runs_non_root_healthy_and_serves(image, tmp_path):
    key, new_key = uuid.uuid4().hex + "-a", uuid.uuid4().hex + "-b"
    keys = tmp_path / "api-keys"
    keys.write_text(f"{key}:acme:all\n")
    keys.chmod(0o644)
    port, name = free_port(), f"bioserver-test-{os.getpid()}"
    errors = []
    for flags in RUN_FLAGS:
        p = podman("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", *flags,
                   "-v", f"{keys}:/run/secrets/bioserver-api-keys:ro", image, check=False)
        if p.returncode == 0:
            break
        errors.append(p.stderr.strip())
        podman("rm", "-f", name, check=False)
    else:
        pytest.fail("podman cannot run the image here:\n" + "\n".join(errors))
    try:
        assert podman("exec", name, "id", "-un").stdout.strip() == "bioserver"
        deadline = time.monotonic() + 120
        while (health := podman("healthcheck", "run", name, check=False)).returncode != 0:
            assert time.monotonic() < deadline, health.stdout + health.stderr + podman("logs", name).stderr
            time.sleep(1)

        class Srv:
            def url(self, path):
                return f"http://127.0.0.1:{port}/bioserver-app{path}"
        round_trip(Srv(), key)
        # Rotation: the mounted file changes, SIGHUP, the new key works, the old one not.
        keys.write_text(f"{new_key}:acme:all\n")
        podman("kill", "--signal", "HUP", name)
        deadline = time.monotonic() + 30
        while requests.get(Srv().url("/v2/capabilities"), headers={"apikey": new_key}, timeout=10).status_code != 200:
            assert time.monotonic() < deadline, podman("logs", name).stderr
            time.sleep(0.2)
        assert requests.get(Srv().url("/v2/capabilities"), headers={"apikey": key}, timeout=10).status_code == 401
    finally:
        podman("stop", "-t", "40", name, check=False)
        logs = podman("logs", name, check=False).stderr
        podman("rm", "-f", name, check=False)
    assert "stopped" in logs, logs[-2000:]
