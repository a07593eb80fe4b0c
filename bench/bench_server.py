"""A bioserver for a benchmark: a free loopback port, a fresh data folder, one API key,
and a wait until it answers; and its CPU time per thread name. Shared by the
bench/*.py scripts that drive a server."""
import os
import socket
import subprocess
import tempfile
import time

import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
KEY = "bench-key-0123456789abcdef"


def thread_cpu_s(pid):
    """CPU seconds (user + system) of each thread name of process pid so far."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary=None, *flags):
    """Starts binary (default build/bioserver) with flags; returns (process, API base URL)."""
    port = free_port()
    proc = subprocess.Popen([binary or os.path.join(REPO, "build/bioserver"), "--listen", f"127.0.0.1:{port}",
                             "--data", tempfile.mkdtemp(), "--api-key", KEY, *flags],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/bioserver-app"
    for _ in range(400):
        try:
            if requests.get(base + "/v2/monitor", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return proc, base
