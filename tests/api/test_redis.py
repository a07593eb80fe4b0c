"""Distributed deployment: two bioserver instances sharing one Redis store.

A session created on instance A is readable, matchable and deletable on B; tenants
stay isolated across instances; Redis's own expiry carries the session TTL (every
key of a session goes with it); and when Redis is killed during traffic, requests
fail with 503 (JSON error), /v2/monitor says DOWN (store DOWN), no server
crashes, and service resumes once Redis is back on the same port — without
restarting the servers. Each test starts its own redis-server on a free loopback
port (tests/api/redis_support.py) and stops it afterwards.
"""
import json
import os
import re
import subprocess
import signal
import tempfile
import threading
import time

import pytest
import requests

from conftest import KEY_A, KEY_ADMIN, KEY_B, REPO_ROOT, assert_error, launch, redis_pair
from redis_support import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")

LFW = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data", "lfw", "lfw_deepfunneled"))
SAME = ("George_W_Bush", 1), ("George_W_Bush", 2)
OTHER = ("Colin_Powell", 1)
STORE_DOWN = "state store is unavailable"


def lfw_image(name, i):
    with open(os.path.join(LFW, name, f"{name}_{i:04d}.jpg"), "rb") as f:
        return f.read()


def redis_cli(redis, *args):
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "--raw", *args], capture_output=True, text=True,
                         timeout=10, check=True)
    return out.stdout.split()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(redis, pair): module-wide, the tests below do not kill Redis."""
    root = str(tmp_path_factory.mktemp("redis-cluster"))
    redis = RedisServer(root)
    gen = redis_pair(root, redis=redis)
    pair = next(gen)
    yield redis, pair
    try:
        next(gen)
    except StopIteration:
        pass
    redis.stop()


@pytest.fixture
def a_b(cluster):
    return cluster[1].servers


def faces_ready(srv):
    body = srv.get("/v2/monitor").json()
    return body["models"]["status"] == "UP" and body["calibration"]["status"] == "UP" and os.path.isdir(LFW)


# ---- cross-instance behaviour ---------------------------------------------------------------

NO_PERSISTENCE_NOTE = "at risk: no persistence (appendonly no, save \"\")"


def test_monitor_reports_redis_up(a_b):
    # The test Redis keeps nothing on disk: the monitor says so, the store is still UP.
    for srv in a_b:
        r = srv.get("/v2/monitor")
        assert r.status_code == 200, r.text
        store = r.json()["store"]
        assert store["type"] == "redis" and store["status"] == "UP", store
        assert store["durability"].startswith(NO_PERSISTENCE_NOTE), store
        assert any(l["level"] == "warn" and "store durability " + NO_PERSISTENCE_NOTE in l["message"]
                   for l in srv.log_lines())


def test_session_created_on_a_is_read_and_deleted_on_b(a_b):
    a, b = a_b
    r = a.post_json("/v2/bio-sessions", {"correlationId": "cross", "ttlSeconds": 120}, key=KEY_A)
    assert r.status_code == 201, r.text
    created = r.json()
    g = b.get(f"/v2/bio-sessions/{created['id']}", key=KEY_A)
    assert g.status_code == 200, g.text
    got = g.json()
    for field in ("id", "correlationId", "ttlSeconds", "created", "expires", "imageStorageEnabled"):
        assert got[field] == created[field], field
    assert b.delete(f"/v2/bio-sessions/{created['id']}", key=KEY_A).status_code == 204
    assert_error(a.get(f"/v2/bio-sessions/{created['id']}", key=KEY_A), 404)
    assert_error(a.delete(f"/v2/bio-sessions/{created['id']}", key=KEY_A), 404)


def test_tenant_isolation_across_instances(a_b):
    a, b = a_b
    sid = a.create_session(KEY_A)
    assert_error(b.get(f"/v2/bio-sessions/{sid}", key=KEY_B), 404)
    assert_error(b.delete(f"/v2/bio-sessions/{sid}", key=KEY_B), 404)
    assert_error(a.get(f"/v2/bio-sessions/{sid}/faces", key=KEY_B), 404)
    assert b.get(f"/v2/bio-sessions/{sid}", key=KEY_A).status_code == 200
    assert a.delete(f"/v2/bio-sessions/{sid}", key=KEY_A).status_code == 204


def test_expiry_is_redis_expiry(cluster):
    redis, pair = cluster
    a, b = pair.servers
    sid = a.create_session(KEY_A, ttlSeconds=1)
    keys = [k for k in redis_cli(redis, "--scan", "--pattern", "bio:*") if sid in k]
    assert len(keys) == 1, keys  # the hash; the order set appears with the first item
    pttl = int(redis_cli(redis, "PTTL", keys[0])[0])
    assert 0 < pttl <= 1000, pttl
    assert b.get(f"/v2/bio-sessions/{sid}", key=KEY_A).status_code == 200
    time.sleep(1.3)
    assert_error(b.get(f"/v2/bio-sessions/{sid}", key=KEY_A), 404)
    assert_error(a.get(f"/v2/bio-sessions/{sid}", key=KEY_A), 404)
    assert [k for k in redis_cli(redis, "--scan", "--pattern", "bio:*") if sid in k] == []


def test_faces_and_matches_across_instances(cluster):
    redis, pair = cluster
    a, b = pair.servers
    if not faces_ready(a):
        pytest.skip("face models, calibration or LFW images are not available")
    sid = a.create_session(KEY_A, imageStorageEnabled=True, ttlSeconds=60)
    fids = []
    for i, (name, n) in enumerate(SAME + (OTHER,)):
        srv = (a, b)[i % 2]
        r = srv.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A,
                     files=[("face", (None, json.dumps({"imageType": "SELFIE"}), "application/json")),
                            ("image", ("i.jpg", lfw_image(name, n), "image/jpeg"))])
        assert r.status_code == 201, r.text
        fids.append(r.json()["id"])
    # Every key of the session (hash + order set) expires with it.
    keys = [k for k in redis_cli(redis, "--scan", "--pattern", "bio:*") if sid in k]
    assert len(keys) == 2, keys
    for k in keys:
        assert 0 < int(redis_cli(redis, "PTTL", k)[0]) <= 60_000
    listed = b.get(f"/v2/bio-sessions/{sid}/faces", key=KEY_A)
    assert listed.status_code == 200 and [f["id"] for f in listed.json()] == fids  # oldest first
    img = a.get(f"/v2/bio-sessions/{sid}/faces/{fids[1]}/image", key=KEY_A)
    assert img.status_code == 200 and img.content == lfw_image(*SAME[1])
    m = b.get(f"/v2/bio-sessions/{sid}/faces/{fids[0]}/matches", key=KEY_A)
    assert m.status_code == 200, m.text
    matches = m.json()
    assert [x["candidate"]["id"] for x in matches][0] == fids[1]  # same person ranks first
    assert len(matches) == 2
    assert_error(a.get(f"/v2/bio-sessions/{sid}/faces/{fids[0]}/matches", key=KEY_B), 404)
    assert a.delete(f"/v2/bio-sessions/{sid}/faces/{fids[2]}", key=KEY_A).status_code == 204
    assert len(b.get(f"/v2/bio-sessions/{sid}/faces", key=KEY_A).json()) == 2
    assert b.delete(f"/v2/bio-sessions/{sid}", key=KEY_A).status_code == 204
    assert [k for k in redis_cli(redis, "--scan", "--pattern", "bio:*") if sid in k] == []


def test_direct_face_template_is_portable(a_b):
    """A template made on A verifies on B: both share the --data dir's template key."""
    a, b = a_b
    if not faces_ready(a):
        pytest.skip("face models, calibration or LFW images are not available")
    files = [("face", (None, json.dumps({"imageType": "SELFIE"}), "application/json")),
             ("image", ("i.jpg", lfw_image(*SAME[0]), "image/jpeg"))]
    r = a.post("/v2/faces", key=KEY_A, files=files)
    assert r.status_code == 200, r.text
    face = r.json()
    sid = b.create_session(KEY_A)
    r = b.post_json(f"/v2/bio-sessions/{sid}/faces", face, key=KEY_A)
    assert r.status_code == 201, r.text


def usage_calls(srv, key, op, owner=None):
    """owner's (default: key's own) count of op as srv reports it in /v2/usage."""
    r = srv.get("/v2/usage", key=key)
    assert r.status_code == 200, r.text
    entries = r.json()["keys"]
    entry = entries[0] if owner is None else next(e for e in entries if e["key"] == owner)
    return entry["calls"].get(op, 0)


def wait_calls(srv, key, op, expected, owner=None, timeout=5):
    """Counts are written when a request completes, after its response: poll."""
    deadline = time.monotonic() + timeout
    while True:
        n = usage_calls(srv, key, op, owner)
        if n >= expected or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def test_usage_counted_on_a_is_visible_on_b_and_after_restart(cluster, start_server):
    """Billing counts live in Redis: the calls made on A are in B's /v2/usage, in the
    admin's view of every key, and in a freshly started instance's."""
    redis, pair = cluster
    a, b = pair.servers
    before = usage_calls(b, KEY_B, "createBioSession")
    for _ in range(3):
        a.create_session(KEY_B)
    assert wait_calls(b, KEY_B, "createBioSession", before + 3) == before + 3
    assert usage_calls(a, KEY_B, "createBioSession") == before + 3
    me = b.get("/v2/usage", key=KEY_B).json()["keys"][0]["key"]
    assert usage_calls(b, KEY_ADMIN, "createBioSession", owner=me) == before + 3
    assert any(k.startswith(f"usage:{{{me}}}") for k in redis_cli(redis, "--scan", "--pattern", "usage:*"))
    fresh = start_server("--store", redis.url)  # same key secrets, so the same key names
    assert usage_calls(fresh, KEY_B, "createBioSession") == before + 3


def test_usage_while_redis_is_down(start_server, tmp_path):
    """/v2/usage cannot answer without the store: 503. Requests themselves are not
    failed by a lost count; the loss is counted in /metrics and logged once."""
    redis = RedisServer(str(tmp_path))
    try:
        srv = start_server("--store", redis.url)
        assert srv.get("/v2/usage", key=KEY_A).status_code == 200
        redis.kill()
        assert_error(srv.get("/v2/usage", key=KEY_A), 503, STORE_DOWN)
        for _ in range(3):  # the instance cannot work without its store: the reference's 500
            assert_error(srv.get("/v2/capabilities", key=KEY_A), 500, "the state store is unavailable")
        deadline = time.monotonic() + 5
        lost = 0
        while time.monotonic() < deadline and lost < 4:
            text = srv.get("/metrics", key=KEY_ADMIN).text
            lost = int(re.search(r"^bioserver_usage_store_errors_total (\d+)$", text, re.M).group(1))
            time.sleep(0.05)
        assert lost >= 4, lost  # the 503 usage call and the three capabilities calls
        warned = [l for l in srv.log_lines() if "usage counts cannot be written" in l.get("message", "")]
        assert len(warned) == 1, warned
    finally:
        redis.stop()


# ---- Redis failure during traffic ------------------------------------------------------------

def test_redis_killed_during_traffic_then_back(tmp_path):
    root = tempfile.mkdtemp(prefix="kill", dir=str(tmp_path))
    redis = RedisServer(root)
    gen = redis_pair(root, redis=redis)
    pair = next(gen)
    a, b = pair.servers
    statuses, errors, stop = [], [], threading.Event()

    def traffic(i):
        """Create then read (on the other instance) until told to stop."""
        http = requests.Session()
        n = 0
        while not stop.is_set():
            src, dst = (a, b) if n % 2 == 0 else (b, a)
            n += 1
            try:
                r = http.post(src.url("/v2/bio-sessions"), json={"correlationId": f"t{i}"},
                              headers={"apikey": KEY_A}, timeout=10)
                statuses.append((time.monotonic(), r.status_code))
                if r.status_code == 201:
                    g = http.get(dst.url(f"/v2/bio-sessions/{r.json()['id']}"), headers={"apikey": KEY_A},
                                 timeout=10)
                    statuses.append((time.monotonic(), g.status_code))
                    if g.status_code not in (200, 503):  # 404 would mean a lost or half-written session
                        errors.append(f"GET after 201: {g.status_code} {g.text}")
                elif r.status_code == 503:
                    body = r.json()
                    if STORE_DOWN not in body.get("message", "") or set(body) != {"id", "message"}:
                        errors.append(f"503 body: {r.text}")
                else:
                    errors.append(f"POST: {r.status_code} {r.text}")
            except requests.RequestException as e:  # a crashed or hung server
                errors.append(repr(e))
            time.sleep(0.005)

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        redis.kill()
        killed = time.monotonic()
        time.sleep(1.0)
        # While Redis is down: 503 everywhere, /monitor says why, servers alive.
        for srv in (a, b):
            assert srv.proc.poll() is None
            assert_error(srv.post_json("/v2/bio-sessions", {}, key=KEY_A), 503, STORE_DOWN)
            mon = srv.get("/v2/monitor")
            assert mon.status_code == 503, mon.text
            body = mon.json()
            assert body["status"] == "DOWN" and "the state store is unavailable" in body["reasons"], body
            assert body["store"]["type"] == "redis" and body["store"]["status"].startswith("DOWN"), body
        restarting = time.monotonic()  # requests may succeed from here on
        redis.start()
        restarted = time.monotonic()
        deadline = restarted + 5
        while time.monotonic() < deadline:
            if all(srv.get("/v2/monitor").status_code == 200 for srv in (a, b)):
                break
            time.sleep(0.05)
        recovered = time.monotonic()
        assert recovered - restarted < 5, "service did not resume within 5 s"
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert errors == [], errors[:5]
    during = [s for t, s in statuses if killed + 0.2 < t < restarting]
    after = [s for t, s in statuses if t > recovered + 0.2]
    assert during and set(during) == {503}, set(during)
    assert after and set(after) <= {200, 201}, set(after)
    # The same processes serve again, across instances.
    for srv in (a, b):
        assert srv.proc.poll() is None
        assert srv.get("/v2/monitor").json()["store"]["status"] == "UP"
    sid = a.create_session(KEY_A)
    assert b.get(f"/v2/bio-sessions/{sid}", key=KEY_A).status_code == 200
    try:
        next(gen)  # both servers must exit 0 (and sanitizer-clean)
    except StopIteration:
        pass
    redis.stop()


def test_server_starts_while_redis_is_down(start_server, tmp_path):
    """A stateless instance may come up before Redis: 503 until it is there."""
    redis = RedisServer(str(tmp_path))
    port = redis.port
    redis.kill()
    starter = threading.Timer(1.0, redis.start)
    starter.start()
    try:
        srv = start_server("--store", f"redis://127.0.0.1:{port}")
        mon = srv.get("/v2/monitor")  # listening; until Redis is there it says why it cannot work
        assert mon.status_code == 200 or mon.json()["status"] == "DOWN", mon.text
        starter.join()
        # A failed connect holds the next one back for 100 ms (RECONNECT_BACKOFF_MS in
        # src/store/redis_store.c): the first look right after Redis is up may still say DOWN.
        deadline = time.monotonic() + 5
        while srv.get("/v2/monitor").json()["store"]["status"] != "UP" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.get("/v2/monitor").json()["store"]["status"] == "UP"
        assert srv.create_session(KEY_A)
        assert "retrying on each request" in srv.stderr_text()
    finally:
        starter.join()
        redis.stop()


def test_bad_redis_password_refuses_to_start(tmp_path):
    redis = RedisServer(str(tmp_path))
    try:
        from conftest import BIOSERVER
        out = subprocess.run([BIOSERVER, "--listen", "127.0.0.1:0", "--data", str(tmp_path / "data"),
                              "--api-key", KEY_A, "--store", redis.url, "--redis-password", "not-the-password"],
                             capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
        assert out.returncode != 0
        assert "AUTH" in out.stderr
        assert "not-the-password" not in out.stderr
    finally:
        redis.stop()


# ---- durability: what a Redis restart keeps ---------------------------------------------------
# The server reads Redis's persistence settings at start (CONFIG GET): it warns (log and
# /v2/monitor store.durability) when acknowledged writes could be lost, or refuses to start
# with redis_require_durable; under AOF a Redis crash and restart loses nothing acknowledged.

AOF_ALWAYS = ("--save", "", "--appendonly", "yes", "--appendfsync", "always")


def wait_store_up(srv, timeout=15):
    deadline = time.monotonic() + timeout
    while srv.get("/v2/monitor").json()["store"]["status"] != "UP":
        assert time.monotonic() < deadline, "the store did not come back UP"
        time.sleep(0.1)


def refused_start(tmp_path, redis, *flags):
    from conftest import BIOSERVER
    return subprocess.run([BIOSERVER, "--listen", "127.0.0.1:0", "--data", str(tmp_path / "data"), "--api-key", KEY_A,
                           "--store", redis.url, *flags], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


def test_snapshot_only_persistence_is_reported_or_refused(start_server, tmp_path):
    redis = RedisServer(str(tmp_path), persistence=("--save", "3600 1", "--appendonly", "no"))
    try:
        srv = start_server("--store", redis.url)
        store = srv.get("/v2/monitor").json()["store"]
        assert store["status"] == "UP", store
        assert store["durability"].startswith('at risk: snapshots only (save "3600 1")'), store
        assert "appendonly yes" in store["durability"]
        srv.wait_for_log(lambda l: l["level"] == "warn" and "store durability at risk: snapshots only" in l["message"])
        out = refused_start(tmp_path, redis, "--redis-require-durable", "true")
        assert out.returncode != 0
        assert "redis_require_durable" in out.stderr and "snapshots only" in out.stderr, out.stderr[-2000:]
    finally:
        redis.stop()


def test_durability_unknown_when_config_is_disabled(start_server, tmp_path):
    redis = RedisServer(str(tmp_path), persistence=AOF_ALWAYS + ("--rename-command", "CONFIG", ""))
    try:
        srv = start_server("--store", redis.url)
        store = srv.get("/v2/monitor").json()["store"]
        assert store["status"] == "UP" and store["durability"].startswith("unknown: Redis refused CONFIG GET"), store
        out = refused_start(tmp_path, redis, "--redis-require-durable", "true")
        assert out.returncode != 0 and "refused CONFIG GET" in out.stderr, out.stderr[-2000:]
    finally:
        redis.stop()


def test_redis_restart_under_aof_loses_no_acknowledged_write(start_server, tmp_path):
    redis = RedisServer(str(tmp_path), persistence=AOF_ALWAYS)
    try:
        srv = start_server("--store", redis.url, "--redis-require-durable", "true")
        assert "durability" not in srv.get("/v2/monitor").json()["store"]
        sids = [srv.create_session(KEY_A, correlationId=f"aof-{i}", ttlSeconds=600) for i in range(40)]
        faces = []
        if faces_ready(srv):
            for i, (name, n) in enumerate(SAME + (OTHER,) + SAME):
                sid = sids[i]
                r = srv.post(f"/v2/bio-sessions/{sid}/faces", key=KEY_A,
                             files=[("face", (None, json.dumps({"imageType": "SELFIE"}), "application/json")),
                                    ("image", ("i.jpg", lfw_image(name, n), "image/jpeg"))])
                assert r.status_code == 201, r.text
                faces.append((sid, r.json()))
        redis.kill()  # SIGKILL right after the last acknowledged write: nothing is flushed on exit
        redis.start()
        wait_store_up(srv)
        for i, sid in enumerate(sids):
            r = srv.get(f"/v2/bio-sessions/{sid}", key=KEY_A)
            assert r.status_code == 200, (i, r.text)
        for sid, face in faces:
            r = srv.get(f"/v2/bio-sessions/{sid}/faces/{face['id']}", key=KEY_A)
            assert r.status_code == 200, r.text
            assert r.json()["template"] == face["template"]
    finally:
        redis.stop()


def test_redis_restart_without_persistence_loses_sessions(start_server, tmp_path):
    """The control for the test above: the same restart without AOF loses the session."""
    redis = RedisServer(str(tmp_path))
    try:
        srv = start_server("--store", redis.url)
        sid = srv.create_session(KEY_A, ttlSeconds=600)
        redis.kill()
        redis.start()
        wait_store_up(srv)
        assert_error(srv.get(f"/v2/bio-sessions/{sid}", key=KEY_A), 404)
    finally:
        redis.stop()


# ---- replay liveness across instances ----------------------------------------------------------
# An upload accepted by one instance is evaluated by whichever instance's dispatcher pops it
# from the Redis job queue; TIMEOUTs are claimed from a Redis deadline index by exactly one
# instance; each status change produces exactly one callback (tests/api/test_liveness.py has
# the single-instance behaviour).

from test_liveness import LIVE, Receiver, init, metadata, read, upload, wait_result  # noqa: E402
from liveness_client import capture_json, seal  # noqa: E402  (test_liveness put tools/ on the path)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def liveness_pair(tmp_path):
    """Factory: two instances on a fresh Redis and one --data dir (same envelope key),
    each with its own extra flags; all are checked for a clean exit at the end."""
    root = str(tmp_path)
    redis = RedisServer(root)
    servers = []

    def start(a_flags=(), b_flags=(), common=()):
        for name, flags in (("a", a_flags), ("b", b_flags)):
            workdir = os.path.join(root, name)
            os.makedirs(workdir, exist_ok=True)
            servers.append(launch(workdir, "--store", redis.url, "--data", os.path.join(root, "data"),
                                  "--callback-allow-private", "true", *common, *flags, data=False))
        return redis, servers[0], servers[1]

    try:
        yield start
        for srv in servers:
            srv.check_clean_exit()
    finally:
        for srv in servers:
            srv.stop()
        redis.stop()


def messages(srv, sid, part):
    return [l["message"] for l in srv.log_lines() if sid in l.get("message", "") and part in l.get("message", "")]


@pytest.mark.skipif(not LIVE, reason="../shared/data/spoof/nuaa is missing")
def test_liveness_accepted_by_a_is_evaluated_by_b_with_one_callback(liveness_pair, receiver):
    redis, a, b = liveness_pair(a_flags=("--liveness-dispatch", "false"))
    if a.get("/v2/monitor").json()["models"]["status"] != "UP":
        pytest.skip("face models are not available")
    sid = a.create_session(KEY_A, callbackURL=receiver.url)
    r = init(a, sid)
    assert r.status_code == 200, r.text
    r = upload(a, sid, seal(r.json(), sid, capture_json([read(LIVE[0])])))
    assert r.status_code == 202, r.text
    assert wait_result(a, sid)["status"] == "SUCCESS"
    assert metadata(b, sid).json()["status"] == "SUCCESS"
    # B evaluated it (A pops no jobs), and nobody left the frames behind in Redis.
    assert messages(b, sid, ": SUCCESS") and not messages(a, sid, ": SUCCESS")
    hashes = [k for k in redis_cli(redis, "--scan", "--pattern", "bio:*") if sid in k and not k.endswith(":o")]
    assert len(hashes) == 1, hashes
    fields = redis_cli(redis, "HKEYS", hashes[0])
    assert "i:liveness:current" in fields and not [f for f in fields if f.startswith("i:capture")], fields
    assert receiver.wait(1, 10) == [("application/json", {"sessionId": sid})]
    time.sleep(1.0)  # a second callback would arrive now
    assert receiver.bodies == [("application/json", {"sessionId": sid})]


def test_liveness_timeout_claimed_by_one_instance_even_when_the_init_one_stopped(liveness_pair, receiver):
    redis, a, b = liveness_pair(common=("--liveness-timeout", "1"))
    # Both instances scan the deadline index: one of them applies the TIMEOUT, once.
    sid = a.create_session(KEY_A, callbackURL=receiver.url)
    assert init(a, sid).status_code == 200
    assert receiver.wait(1, 10) == [("application/json", {"sessionId": sid})]
    assert metadata(b, sid).json()["status"] == "TIMEOUT"
    assert len(messages(a, sid, "timed out") + messages(b, sid, "timed out")) == 1
    # The instance that opened the window stops before its deadline: the other one reports it.
    sid2 = a.create_session(KEY_A, callbackURL=receiver.url)
    assert init(a, sid2).status_code == 200
    a.check_clean_exit()
    bodies = receiver.wait(2, 10)
    assert bodies[1:] == [("application/json", {"sessionId": sid2})]
    assert metadata(b, sid2).json()["status"] == "TIMEOUT"
    assert messages(b, sid2, "timed out")
    time.sleep(1.0)
    assert len(receiver.bodies) == 2


@pytest.mark.skipif(not LIVE, reason="../shared/data/spoof/nuaa is missing")
def test_liveness_instance_killed_mid_evaluation_is_taken_over_with_one_callback(tmp_path, receiver):
    """At-least-once evaluation: A pops the capture and is SIGKILLed while evaluating it;
    once A's lease (liveness_job_lease = 2 s, renewed by a live instance every third of
    it) has run out, B pops it again, evaluates it, and the callback goes out once."""
    root = str(tmp_path)
    redis = RedisServer(root)
    common = ("--store", redis.url, "--data", os.path.join(root, "data"), "--callback-allow-private", "true",
              "--liveness-job-lease", "2")
    os.makedirs(os.path.join(root, "a"))
    os.makedirs(os.path.join(root, "b"))
    a = launch(os.path.join(root, "a"), *common, data=False)
    b = None
    try:
        if a.get("/v2/monitor").json()["models"]["status"] != "UP":
            pytest.skip("face models are not available")
        sid = a.create_session(KEY_A, callbackURL=receiver.url)
        r = init(a, sid, type="LIVENESS_PASSIVE_VIDEO")
        assert r.status_code == 200, r.text
        # 100 frames (the limit): every frame is analysed, so the evaluation takes seconds.
        frames = [read(LIVE[i % len(LIVE)]) for i in range(100)]
        r = upload(a, sid, seal(r.json(), sid, capture_json(frames)))
        assert r.status_code == 202, r.text
        a.wait_for_log(lambda l: sid in l.get("message", "") and "evaluating (delivery 1)" in l["message"], 20)
        a.stop(signal.SIGKILL)
        verdicts = [f": {v} (" for v in ("SUCCESS", "FAILED", "SPOOF", "ERROR")]
        assert not [m for v in verdicts for m in messages(a, sid, v)], "A finished before the kill: make it slower"
        assert metadata_via_redis_status(redis, sid) == "IN_PROGRESS"
        b = launch(os.path.join(root, "b"), *common, data=False)
        result = wait_result(b, sid)
        assert result["status"] in ("SUCCESS", "SPOOF", "FAILED"), result
        assert messages(b, sid, "evaluating (delivery 2)"), b.stderr_text()[-3000:]
        assert receiver.wait(1, 20) == [("application/json", {"sessionId": sid})]
        time.sleep(1.5)  # a second callback would arrive now
        assert len(receiver.bodies) == 1
        # The job is acked: nothing is left leased or queued in Redis.
        assert redis_cli(redis, "ZCARD", "jobs:{liveness}:l") == ["0"]
        assert redis_cli(redis, "LLEN", "jobs:{liveness}") == ["0"]
        b.check_clean_exit()
    finally:
        a.stop(signal.SIGKILL)
        if b:
            b.stop()
        redis.stop()


def metadata_via_redis_status(redis, sid):
    """The session's liveness status as stored (the killed instance cannot be asked)."""
    keys = [k for k in redis_cli(redis, "--scan", "--pattern", "bio:*") if sid in k and not k.endswith(":o")]
    assert len(keys) == 1, keys
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "--raw", "HGET", keys[0], "s"], capture_output=True,
                         text=True, timeout=10, check=True)
    return json.loads(out.stdout)["livenessStatus"]
