"""Running bioserver as a service: --help and bioserver.conf document every setting,
--check-config lists every problem, missing models stop the start-up (no silent
half-service), paths in a config file do not depend on the working directory, and
SIGHUP rotates API keys and TLS material under load without a failed request."""
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIOSERVER, KEY_A, KEY_ADMIN, REPO_ROOT, assert_error, sanitizer_env

CONF = os.path.join(REPO_ROOT, "bioserver.conf")


def run(*args, cwd="/", timeout=120):
    return subprocess.run([BIOSERVER, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=sanitizer_env())


def help_settings():
    out = run("--help").stdout
    return set(re.findall(r"^  --([a-z-]+) ", out, re.M)) - {"config", "check-config", "rotate-data-key", "help"}


def test_help_and_example_config_document_every_setting():
    flags = help_settings()
    assert len(flags) >= 25 and {"keys-file", "degraded-start", "calibration", "web"} <= flags
    text = open(CONF).read()
    documented = {m.replace("_", "-") for m in re.findall(r"^#? ?([a-z_]+) = ", text, re.M)}
    assert flags - documented == set(), f"settings missing from bioserver.conf: {flags - documented}"
    assert documented - flags == set(), f"bioserver.conf documents settings --help does not list: {documented - flags}"
    # Every documented setting is accepted by the parser with its example value.
    args = []
    for name in sorted(flags):
        args += [f"--{name}", re.search(rf"^#? ?{name.replace('-', '_')} = (.*)$", text, re.M).group(1).strip()]
    p = run("--check-config", *args, "--data", "/tmp/bioserver-help-data", cwd=REPO_ROOT)
    assert "problem: " in p.stderr  # the example TLS files do not exist: the check ran
    assert "unknown setting" not in p.stderr and "invalid value" not in p.stderr, p.stderr


def test_check_config_accepts_the_repository_config_from_any_directory(tmp_path):
    conf = tmp_path / "bioserver.conf"
    text = open(CONF).read()
    for name in ("models", "calibration", "calibration_accurate", "web"):  # absolute: this copy lives elsewhere
        text = re.sub(rf"^{name} = (.*)$", lambda m: f"{name} = {os.path.join(REPO_ROOT, m.group(1))}", text, flags=re.M)
    conf.write_text(text + f"\napi_key = {KEY_A}\n")
    p = run("--config", str(conf), "--check-config")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "configuration OK"
    assert (tmp_path / "data").is_dir()  # data = data: beside the config file, not in cwd "/"


def test_check_config_lists_every_problem(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("short\n")
    p = run("--check-config", "--models", str(tmp_path / "no-models"), "--calibration", str(tmp_path / "none.txt"),
            "--web", str(tmp_path), "--keys-file", str(keys), "--data", "/proc/bioserver-data",
            "--tls-cert", CONF, "--tls-key", CONF, "--store", "redis://127.0.0.1:1")
    assert p.returncode == 1
    problems = [line for line in p.stderr.splitlines() if line.startswith("problem: ")]
    expected = ["is not a PEM certificate", "data folder /proc/bioserver-data", ":1: API key must be 16",
                "face models not loaded", "replay liveness unavailable", "calibration not loaded",
                "web files missing", "state store redis://127.0.0.1:1 is not reachable"]
    for part in expected:
        assert any(part in line for line in problems), (part, p.stderr)
    assert len(problems) == len(expected), p.stderr
    assert f"{len(expected)} problem(s)" in p.stderr
    assert not list(tmp_path.glob("bioserver-check-*"))
    # A config file with several bad lines: all of them are listed.
    conf = tmp_path / "bad.conf"
    conf.write_text("workers = many\nfrobnicate = 1\nlisten 1\n")
    p = run("--config", str(conf), "--check-config")
    assert p.returncode == 1
    for part in (":1: invalid value 'many'", ":2: unknown setting 'frobnicate'", ":3: expected 'name = value'"):
        assert part in p.stderr, p.stderr
    # No key at all is a problem for a service (the development key is for `make run`).
    p = run("--check-config", "--data", str(tmp_path / "d"), cwd=REPO_ROOT)
    assert p.returncode == 1 and "no API key configured" in p.stderr, p.stderr


def test_missing_models_stop_the_start_up(tmp_path):
    p = run("--models", str(tmp_path), "--api-key", KEY_A, "--data", str(tmp_path / "data"),
            "--listen", "127.0.0.1:0", timeout=60)
    assert p.returncode == 1
    assert "bioserver: face models not loaded: model file missing: " + str(tmp_path) in p.stderr
    assert "not starting" in p.stderr and "listening" not in p.stderr


def test_degraded_start_reports_down_with_the_reason(start_server, tmp_path):
    srv = start_server("--models", str(tmp_path), "--degraded-start", "true")
    mon = srv.get("/v2/monitor").json()
    # The reason, without the server's path (the log has it).
    assert mon["models"]["status"] == "DOWN" and "not loaded" in mon["models"]["reason"], mon
    assert str(tmp_path) not in srv.get("/v2/monitor").text
    assert "degraded: face models not loaded" in srv.stderr_text() and str(tmp_path) in srv.stderr_text()
    r = srv.post("/v2/faces", key=KEY_A, files={"face": ("f.json", b"{\"imageType\": \"SELFIE\"}", "application/json"),
                                                 "image": ("i.jpg", b"x", "image/jpeg")})
    assert_error(r, 503, "face models are not loaded")


def test_development_key_on_request_next_to_configured_keys(start_server):
    srv = start_server("--generate-dev-key", "true")
    m = re.search(r"development API key \(all permissions, printed once\): ([0-9a-f]{48})", srv.stdout_text())
    assert m, srv.stdout_text()
    assert srv.get("/v2/capabilities", key=m.group(1)).status_code == 200
    assert srv.get("/v2/capabilities", key=KEY_A).status_code == 200


# ---- SIGHUP: key and certificate rotation under load ---------------------------------------

STABLE = "rotation-stable-key-0001"
OLD, NEW = "rotation-old-key-000002", "rotation-new-key-000003"


def write_atomically(path, text):
    tmp = str(path) + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # a reload never reads half a file


def reload_and_wait(srv, count):
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_for_log(lambda l: len([x for x in srv.log_lines() if "SIGHUP" in x.get("message", "")]) >= count)


class Load:
    """Concurrent requests on loopback until stopped (bounded by per_thread each);
    each records its status. exhausted() says a thread hit the bound, i.e. the load
    may have ended before the events it was meant to overlap."""

    def __init__(self, srv, key_of, threads=4, per_thread=20000, path="/v2/capabilities", verify=True,
                 new_connections=False):
        self.results, self.stop, self.per_thread = [], threading.Event(), per_thread
        self.counts = [0] * threads
        self.threads = [threading.Thread(target=self.loop, args=(i, srv, key_of, path, verify, new_connections))
                        for i in range(threads)]

    def loop(self, index, srv, key_of, path, verify, new_connections):
        http = requests if new_connections else requests.Session()  # TLS: a handshake per request
        while not self.stop.is_set() and self.counts[index] < self.per_thread:
            key = key_of()
            try:
                r = http.get(srv.url(path), headers={"apikey": key}, timeout=30, verify=verify)
                self.results.append((key, r.status_code))
            except requests.RequestException as e:
                self.results.append((key, repr(e)))
            self.counts[index] += 1

    def wait_for(self, more):
        target = len(self.results) + more
        while len(self.results) < target and not self.exhausted():
            time.sleep(0.01)

    def exhausted(self):
        return any(c >= self.per_thread for c in self.counts)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)


def test_sighup_rotates_keys_under_load(start_server, tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text(f"{STABLE}:tenantR\n{OLD}:tenantR\n")
    srv = start_server("--keys-file", str(keys))
    current = {"key": OLD}
    with Load(srv, lambda: current["key"]) as load, Load(srv, lambda: STABLE) as stable:
        load.wait_for(100)
        write_atomically(keys, f"{STABLE}:tenantR\n{OLD}:tenantR\n{NEW}:tenantR\n")  # 1. add the new key
        reload_and_wait(srv, 1)
        current["key"] = NEW  # 2. clients move to it
        load.wait_for(100)
        write_atomically(keys, f"{STABLE}:tenantR\n{NEW}:tenantR\n")  # 3. retire the old one
        reload_and_wait(srv, 2)
        for i in range(10):  # churn: many reloads while the load runs
            extra = f"rotation-churn-key-{i:05d}:tenantR\n" if i % 2 else ""
            write_atomically(keys, f"{STABLE}:tenantR\n{NEW}:tenantR\n{extra}")
            reload_and_wait(srv, 3 + i)
        stable.wait_for(100)
    assert not load.exhausted() and not stable.exhausted(), "the load ended before the rotation"
    failures = [r for r in load.results + stable.results if r[1] != 200]
    assert not failures, failures[:5]
    assert len(load.results) >= 200 and len(stable.results) >= 100
    assert_error(srv.get("/v2/capabilities", key=OLD), 401, "unknown API key")
    assert srv.get("/v2/capabilities", key=NEW).status_code == 200
    log = " ".join(x["message"] for x in srv.log_lines() if "SIGHUP" in x.get("message", ""))
    assert "1 key(s) added, 0 revoked" in log and "0 key(s) added, 1 revoked" in log
    assert OLD not in srv.stderr_text() and NEW not in srv.stderr_text()
    print(f"rotation under load: {len(load.results) + len(stable.results)} requests, 12 reloads, 0 failed")


def test_sighup_with_a_bad_keys_file_keeps_the_keys(start_server, tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text(f"{STABLE}:tenantR\n")
    srv = start_server("--keys-file", str(keys))
    write_atomically(keys, f"{NEW}:tenantR\nshort\n")
    reload_and_wait(srv, 1)
    assert "keys file not reloaded, the previous keys stay active" in srv.stderr_text()
    assert srv.get("/v2/capabilities", key=STABLE).status_code == 200
    assert srv.get("/v2/capabilities", key=NEW).status_code == 401
    os.unlink(keys)
    reload_and_wait(srv, 2)
    assert srv.get("/v2/capabilities", key=STABLE).status_code == 200
    # Usage (billing) lists the active keys only: the four of conftest and STABLE.
    usage = srv.get("/v2/usage", key=KEY_ADMIN).json()["keys"]
    assert len(usage) == 5 and sum(k["tenant"] == "tenantR" for k in usage) == 1, usage


def make_cert(directory, name, cn):
    cert, key = str(directory / f"{name}.pem"), str(directory / f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def served_cert(srv):
    return ssl.get_server_certificate(("127.0.0.1", srv.port))


def test_sighup_reloads_tls_material_under_load(start_server, tmp_path):
    c1, k1 = make_cert(tmp_path, "one", "bioserver-one")
    c2, k2 = make_cert(tmp_path, "two", "bioserver-two")
    live_cert, live_key = str(tmp_path / "tls.pem"), str(tmp_path / "tls.key")
    shutil.copy(c1, live_cert)
    shutil.copy(k1, live_key)
    srv = start_server(tls=(live_cert, live_key))
    assert served_cert(srv) == open(c1).read()
    # Clients trust both certificates (as during a planned rotation).
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(open(c1).read() + open(c2).read())
    with Load(srv, lambda: KEY_A, threads=3, verify=str(bundle), new_connections=True) as load:
        load.wait_for(60)
        shutil.copy(c2, live_cert + ".new")
        shutil.copy(k2, live_key + ".new")
        os.replace(live_key + ".new", live_key)
        os.replace(live_cert + ".new", live_cert)
        reload_and_wait(srv, 1)
        assert "TLS certificate and key reloaded" in srv.stderr_text()
        assert served_cert(srv) == open(c2).read()  # new connections get the new certificate
        load.wait_for(60)
    assert not load.exhausted(), "the load ended before the reload"
    failures = [r for r in load.results if r[1] != 200]
    assert not failures and len(load.results) >= 120, failures[:5]
    # A key that does not belong to the certificate: refused, the current one stays.
    shutil.copy(k1, live_key)
    reload_and_wait(srv, 2)
    assert "TLS material not reloaded" in srv.stderr_text() and "does not belong" in srv.stderr_text()
    assert served_cert(srv) == open(c2).read()
    assert requests.get(srv.url("/v2/monitor"), verify=c2, timeout=10).status_code == 200
