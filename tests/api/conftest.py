"""Fixtures for API tests against the real bioserver binary.

The binary is taken from $BIOSERVER (default build/bioserver, relative to the
repository root). With BIOSERVER_SANITIZED=1 (build/asan/bioserver) every server
started here must also stop without an AddressSanitizer / LeakSanitizer /
UBSan report.

Fixtures for later test files (faces, matches, ...):
  server          one shared server for the whole pytest session (keys below)
  start_server    factory: start_server(*flags, keys=..., tls=...) -> Server,
                  stopped (and checked) when the test ends
  Server          .url(path), .request(method, path, key=...), .get/.post/.delete,
                  .post_json(path, body, key=...), .log_lines(), .wait_for_log(pred),
                  .stop() -> exit code
"""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from http_verbs import HttpVerbs
from openapi_check import OpenApi, response_body

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIOSERVER = os.path.abspath(os.path.join(REPO_ROOT, os.environ.get("BIOSERVER", "build/bioserver")))
SANITIZED = os.environ.get("BIOSERVER_SANITIZED") == "1"
PREFIX = "/bioserver-app"

# Secrets (>= 16 characters). KEY_SESSIONS shares tenant A on purpose.
KEY_A = "test-key-tenant-a-all-0001"
KEY_B = "test-key-tenant-b-all-0002"
KEY_SESSIONS = "test-key-tenant-a-sessions-0003"
KEY_ADMIN = "test-key-admin-only-0004"
TENANT_A, TENANT_B, TENANT_ADMIN = "tenantA", "tenantB", "ops"
ALL_SECRETS = (KEY_A, KEY_B, KEY_SESSIONS, KEY_ADMIN)
DEFAULT_KEYS = (
    f"{KEY_A}:{TENANT_A}:all",
    f"{KEY_B}:{TENANT_B}:all",
    f"{KEY_SESSIONS}:{TENANT_A}:sessions",
    f"{KEY_ADMIN}:{TENANT_ADMIN}:admin",
)

UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error")
START_TIMEOUT = 30 if SANITIZED else 10
# Every response a test receives through Server.request is checked against
# docs/openapi.yaml (tests/api/openapi_check.py); see check_openapi below.
OPENAPI = OpenApi()
STOP_TIMEOUT = 40
IDLE_REUSE_LIMIT = 10  # seconds; below the server's default connection-timeout of 15


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sanitizer_env():
    env = dict(os.environ)
    if SANITIZED:
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


class ServerError(Exception):
    pass


class Server(HttpVerbs):
    """One running bioserver process and its captured output."""

    def __init__(self, args, workdir, scheme="http", verify=True, port=None, env=None):
        self.args = list(args)
        self.workdir = workdir
        self.scheme = scheme
        self.verify = verify
        self.port = port
        self.stderr_path = os.path.join(workdir, "stderr.log")
        self.stdout_path = os.path.join(workdir, "stdout.log")
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([BIOSERVER] + self.args, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=REPO_ROOT, env=env or sanitizer_env())
        self.returncode = None
        self.http = requests.Session()
        self._last_request = time.monotonic()

    # -- lifecycle ------------------------------------------------------------
    @property
    def base(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"bioserver exited with {self.proc.returncode}: {self.stderr_text()}")
            if self.port is None:  # --listen ...:0 — learn the port from the log
                m = re.search(r"listening on https?://[^:]+:(\d+)", self.stderr_text())
                if m:
                    self.port = int(m.group(1))
            if self.port is not None:
                try:
                    r = requests.get(self.url("/v2/monitor"), timeout=2, verify=self.verify)
                    # Listening: 200 when UP, 503 (JSON) when DEGRADED or DOWN.
                    if r.status_code in (200, 503) and r.json().get("status"):
                        return self
                except requests.RequestException:
                    pass
            time.sleep(0.05)
        raise ServerError(f"bioserver not ready after {timeout}s: {self.stderr_text()}")

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig, waits, returns the exit code (idempotent)."""
        if self.returncode is None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.returncode = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "timeout"
            self.http.close()
            self._err.close()
            self._out.close()
        return self.returncode

    def check_clean_exit(self):
        rc = self.stop()
        text = self.stderr_text()
        assert rc == 0, f"bioserver exit code {rc}; stderr tail:\n{text[-4000:]}"
        for secret in ALL_SECRETS:
            assert secret not in text, "an API key secret appears in the log"
        if SANITIZED:
            for marker in SANITIZER_MARKERS:
                assert marker not in text, f"sanitizer report in stderr:\n{text[-8000:]}"

    # -- output ---------------------------------------------------------------
    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout_text(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        """Parsed JSON log lines (sanitizer output and other text is skipped)."""
        out = []
        for line in self.stderr_text().split("\n"):  # not splitlines(): U+2028 is valid inside JSON
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def wait_for_log(self, pred, timeout=5):
        """The request line is written after the response is sent: poll for it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                if pred(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError("no matching log line; stderr tail:\n" + self.stderr_text()[-3000:])
            time.sleep(0.05)

    # -- requests -------------------------------------------------------------
    def url(self, path):
        return self.base + (path if path.startswith("/metrics") else PREFIX + path)

    def request(self, method, path, key=None, headers=None, **kw):
        h = dict(headers or {})
        if key is not None:
            h["apikey"] = key
        kw.setdefault("timeout", 30)
        kw.setdefault("verify", self.verify)
        # The server closes a connection idle for connection-timeout (15 s); reusing one
        # near that age races the close (the request is sent, the socket is gone). In the
        # Redis pair each server sees every other request, so such gaps happen under load.
        if time.monotonic() - self._last_request > IDLE_REUSE_LIMIT:
            self.http.close()
            self.http = requests.Session()
        resp = self.http.request(method, self.url(path), headers=h, **kw)
        self._last_request = time.monotonic()
        OPENAPI.check(method, self.url(path)[len(self.base):], resp.status_code,
                      resp.headers.get("Content-Type"), response_body(resp))
        return resp

    def post_json(self, path, body, key=None, headers=None, **kw):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.request("POST", path, key, headers=h, data=data, **kw)

    def create_session(self, key=KEY_A, **fields):
        r = self.post_json("/v2/bio-sessions", fields, key=key)
        assert r.status_code == 201, r.text
        return r.json()["id"]


def launch(workdir, *flags, keys=DEFAULT_KEYS, listen=True, data=True, tls=None, env=None):
    """Starts a server in workdir; retries when the chosen port was taken meanwhile."""
    last = None
    for _ in range(3):
        args, port = [], None
        if listen:
            port = free_port()
            args += ["--listen", f"127.0.0.1:{port}"]
        if data:
            args += ["--data", os.path.join(workdir, "data")]
        for k in keys or ():
            args += ["--api-key", k]
        scheme, verify = "http", True
        if tls:
            args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
            scheme, verify = "https", tls[0]
        args += list(flags)
        srv = Server(args, workdir, scheme=scheme, verify=verify, port=port, env=env)
        try:
            return srv.wait_ready()
        except ServerError as e:
            last = e
            srv.stop(signal.SIGKILL, timeout=5)
            if "cannot listen" not in str(e):
                raise
    raise last


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared server: default limits, the four keys of DEFAULT_KEYS. With
    BIOSERVER_STORE=redis-pair it is two instances on one Redis, requests alternating
    between them (tests/api/redis_support.py)."""
    if os.environ.get("BIOSERVER_STORE") == "redis-pair":
        yield from redis_pair(str(tmp_path_factory.mktemp("redis-pair")))
        return
    srv = launch(str(tmp_path_factory.mktemp("bioserver")))
    yield srv
    srv.check_clean_exit()


def redis_pair(root, *flags, redis=None):
    """Generator: a redis-server (unless given) and two servers sharing it and one
    --data dir (same signing and template keys); yields the ServerPair, then checks
    both exit cleanly and stops Redis."""
    from redis_support import RedisServer, ServerPair
    own_redis = redis is None
    redis = redis or RedisServer(root)
    servers = []
    try:
        for name in ("a", "b"):
            workdir = os.path.join(root, name)
            os.makedirs(workdir, exist_ok=True)
            servers.append(launch(workdir, "--store", redis.url, "--data", os.path.join(root, "data"), *flags,
                                  data=False))
        pair = ServerPair(servers)
        yield pair
        pair.check_clean_exit()
    finally:
        for srv in servers:
            srv.stop()
        if own_redis:
            redis.stop()


@pytest.fixture
def start_server(tmp_path):
    """Factory for extra servers with custom flags; each is stopped with SIGTERM and
    must exit 0 (and sanitizer-clean) when the test ends."""
    started = []

    def start(*flags, keys=DEFAULT_KEYS, listen=True, data=True, tls=None, env=None):
        workdir = tempfile.mkdtemp(prefix="srv", dir=str(tmp_path))
        srv = launch(workdir, *flags, keys=keys, listen=listen, data=data, tls=tls, env=env)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.check_clean_exit()


@pytest.fixture(autouse=True)
def check_openapi():
    """Fails the test when a response it received is not what docs/openapi.yaml
    documents for its route (status, Content-Type, fields)."""
    OPENAPI.take_violations()
    yield
    violations = OPENAPI.take_violations()
    assert not violations, "responses not documented in docs/openapi.yaml:\n" + "\n".join(violations[:20])


def pytest_terminal_summary(terminalreporter):
    for line in OPENAPI.report():
        terminalreporter.write_line(line)


def assert_error(resp, status, message_part=None):
    """Every error is JSON {"id": uuid4, "message": ...}; returns the parsed body."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"id", "message"}, body
    assert UUID4_RE.match(body["id"]), body
    assert isinstance(body["message"], str) and body["message"]
    if message_part is not None:
        assert message_part in body["message"], body
    return body
