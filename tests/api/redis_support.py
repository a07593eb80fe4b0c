"""Helpers for running bioservers on a shared Redis store in API tests.

RedisServer   a redis-server on a loopback port (no persistence unless other
              persistence settings are given), killable and restartable on the
              same port with the same settings and data directory.
ServerPair    two bioserver instances on one Redis and one --data dir (same signing
              and template keys) that looks like one Server: every request goes to
              the next instance in turn, so a session created on one is read,
              matched and deleted on the other.

With BIOSERVER_STORE=redis-pair, conftest's shared `server` fixture is a ServerPair,
so the whole API suite runs against two instances alternating requests
(`make test-api-redis`).
"""
import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from http_verbs import HttpVerbs

REDIS_SERVER = shutil.which("redis-server")


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ping(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process; .url is what --store takes."""

    NO_PERSISTENCE = ("--save", "", "--appendonly", "no")

    def __init__(self, workdir, port=None, persistence=NO_PERSISTENCE):
        self.workdir = workdir
        self.port = port or _free_port()
        self.persistence = tuple(persistence)
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout=10):
        log = open(os.path.join(self.workdir, f"redis-{self.port}.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", *self.persistence, "--dir", self.workdir],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} (port {self.port})")
            if _ping(self.port):
                return self
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING")

    def kill(self):
        """SIGKILL, like a crash: nothing is flushed, connections drop."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ServerPair(HttpVerbs):
    """Two Servers behind one round-robin, with the Server interface tests use."""

    def __init__(self, servers):
        self.servers = list(servers)
        self._turn = itertools.cycle(range(len(self.servers)))
        self._lock = threading.Lock()

    def next(self):
        with self._lock:
            return self.servers[next(self._turn)]

    # -- requests: each call goes to the next instance ---------------------------
    @property
    def base(self):
        return self.next().base

    @property
    def port(self):
        return self.next().port

    def url(self, path):
        return self.next().url(path)

    def request(self, method, path, key=None, headers=None, **kw):
        return self.next().request(method, path, key, headers=headers, **kw)

    def post_json(self, path, body, key=None, headers=None, **kw):
        return self.next().post_json(path, body, key=key, headers=headers, **kw)

    def create_session(self, key=None, **fields):
        srv = self.next()
        return srv.create_session(key, **fields) if key else srv.create_session(**fields)

    # -- output: the union of both instances ---------------------------------------
    def stderr_text(self):
        return "\n".join(s.stderr_text() for s in self.servers)

    def log_lines(self):
        return [line for s in self.servers for line in s.log_lines()]

    def wait_for_log(self, pred, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                if pred(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError("no matching log line in either instance")
            time.sleep(0.05)

    def check_clean_exit(self):
        for s in self.servers:
            s.check_clean_exit()
