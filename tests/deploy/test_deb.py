"""The Debian package on this machine: `dpkg -i` creates the bioserver user, the
data folder and an API key; the installed binary, started as that user from /
with only --config, serves faces, matches and liveness; the systemd unit verifies
clean; an upgrade keeps keys, configuration and secrets; `dpkg --purge` leaves
nothing behind. (No systemd PID 1 runs here, so the
binary is started with setpriv rather than systemctl.)"""
import glob
import os
import re
import shutil
import subprocess
import time

import pytest
import requests

from service import REPO_ROOT, Installed, round_trip, set_listen_any_port

CONF = "/etc/bioserver/bioserver.conf"
KEYS = "/etc/bioserver/api-keys"
UNIT = "/lib/systemd/system/bioserver.service"
SEARCH = ["/etc", "/usr", "/var", "/lib", "/opt", "/srv", "/home", "/run"]


def dpkg(*args):
    """dpkg waits its turn when apt or another dpkg holds the lock."""
    for _ in range(60):
        p = subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=300)
        if p.returncode == 0 or "lock" not in p.stderr:
            return p
        time.sleep(5)
    return p


def traces():
    """Every file or folder named after the package, and its user and group."""
    out = subprocess.run(["find", *SEARCH, "-xdev", "-name", "*bioserver*"], capture_output=True, text=True).stdout
    found = set(out.split())
    for db in ("passwd", "group"):
        if subprocess.run(["getent", db, "bioserver"], capture_output=True).returncode == 0:
            found.add(f"{db}:bioserver")
    return found


def newer_version(deb, tmp_path):
    """The same package with a higher version, to exercise dpkg's upgrade path."""
    root = tmp_path / "newer"
    subprocess.run(["dpkg-deb", "-R", deb, str(root)], check=True)
    control = root / "DEBIAN" / "control"
    control.write_text(re.sub(r"^Version: (.*)$", r"Version: \1+upgrade1", control.read_text(), flags=re.M))
    out = str(tmp_path / "bioserver_upgrade.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(root), out], check=True,
                   capture_output=True)
    return out


def installed():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "bioserver"], capture_output=True, text=True)
    return "installed" in p.stdout


@pytest.fixture
def deb():
    debs = glob.glob(os.path.join(REPO_ROOT, "build", "bioserver_*_amd64.deb"))
    assert len(debs) == 1, f"run `make deb` first: {debs}"
    if os.geteuid() != 0:
        pytest.skip("installing a package needs root")
    if installed():  # left over by an interrupted run
        dpkg("--purge", "bioserver")
    before = traces()
    yield debs[0]
    if installed():
        dpkg("--purge", "bioserver")
    assert traces() == before


def test_deb_install_serve_as_package_user_and_purge(deb, tmp_path):
    before = traces()
    p = dpkg("-i", deb)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "generated an API key in /etc/bioserver/api-keys" in p.stdout, p.stdout
    # The user, the key (readable by the service only) and the data folder.
    assert subprocess.run(["getent", "passwd", "bioserver"], capture_output=True).returncode == 0
    st = os.stat(KEYS)
    assert oct(st.st_mode & 0o777) == "0o640" and st.st_uid == 0
    assert shutil.which("stat") and subprocess.run(["stat", "-c", "%G", KEYS], capture_output=True,
                                                   text=True).stdout.strip() == "bioserver"
    key = [line.split(":")[0] for line in open(KEYS) if line.strip() and not line.startswith("#")][0]
    assert re.fullmatch(r"[0-9a-f]{48}", key) and key in p.stdout
    assert subprocess.run(["stat", "-c", "%U %a", "/var/lib/bioserver"], capture_output=True,
                          text=True).stdout.strip() == "bioserver 750"
    conf = open(CONF).read()
    assert "models = /usr/share/bioserver/models" in conf and "data = /var/lib/bioserver" in conf
    assert "keys_file = api-keys" in conf
    # The unit: hardened, and clean for systemd-analyze.
    unit = open(UNIT).read()
    for line in ("User=bioserver", "ProtectSystem=strict", "NoNewPrivileges=yes", "ExecReload=/bin/kill -HUP"):
        assert line in unit
    if shutil.which("systemd-analyze"):
        v = subprocess.run(["systemd-analyze", "verify", UNIT], capture_output=True, text=True, timeout=60)
        assert v.returncode == 0 and "bioserver" not in v.stdout + v.stderr, v.stdout + v.stderr
        sec = subprocess.run(["systemd-analyze", "security", "--offline=true", UNIT], capture_output=True,
                             text=True, timeout=60)
        exposure = re.search(r"Overall exposure level for bioserver.service: ([0-9.]+)", sec.stdout)
        assert exposure and float(exposure.group(1)) <= 2.0, sec.stdout[-3000:]  # 1.5 when written
    # The service as systemd would start it: its user, from /, only --config.
    set_listen_any_port(CONF)
    # setpriv execs the server itself (runuser would stay as a parent that dies of SIGTERM).
    run_as = ["setpriv", "--reuid=bioserver", "--regid=bioserver", "--init-groups", "--no-new-privs",
              "/usr/bin/bioserver", "--config", CONF]
    check = subprocess.run(run_as + ["--check-config"], capture_output=True, text=True, cwd="/", timeout=120)
    assert check.returncode == 0, check.stderr
    srv = Installed(run_as, str(tmp_path / "log")).wait_ready()
    try:
        round_trip(srv, key)
        # The server runs as the package user, and wrote its secrets where configured.
        uid = subprocess.run(["stat", "-c", "%U", f"/proc/{srv.proc.pid}"], capture_output=True, text=True)
        assert uid.stdout.strip() == "bioserver"
        certificate = requests.get(srv.url("/v2/certificate"), timeout=10).text
    finally:
        assert srv.stop() == 0, srv.text()
    assert os.path.exists("/var/lib/bioserver/data-keys")  # the at-rest key ring
    # Upgrade to a newer version of the package: the key, the edited configuration
    # and the signing certificate (data folder) stay; the service still serves.
    p = dpkg("-i", newer_version(deb, tmp_path))
    assert p.returncode == 0 and "generated an API key" not in p.stdout, p.stdout + p.stderr
    assert "1.0.0+upgrade" in subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bioserver"],
                                             capture_output=True, text=True).stdout
    assert key in open(KEYS).read() and "listen = 127.0.0.1:0" in open(CONF).read()
    srv = Installed(run_as, str(tmp_path / "log2")).wait_ready()
    try:
        assert requests.get(srv.url("/v2/certificate"), timeout=10).text == certificate
        assert requests.get(srv.url("/v2/capabilities"), headers={"apikey": key}, timeout=10).status_code == 200
    finally:
        assert srv.stop() == 0, srv.text()
    # Purge: nothing of the package is left.
    p = dpkg("--purge", "bioserver")
    assert p.returncode == 0, p.stdout + p.stderr
    assert not installed()
    assert traces() == before, traces() - before
