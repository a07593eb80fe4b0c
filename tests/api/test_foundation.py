"""Foundation API tests: capabilities, bio-sessions, authentication and every error
status, signatures (python-cryptography and the openssl CLI), JWKS, usage,
metrics, logs, shutdown, development key, config file and HTTPS."""
import base64
import datetime
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import warnings

import pytest
import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from conftest import (ALL_SECRETS, KEY_A, KEY_ADMIN, KEY_B, KEY_SESSIONS, TENANT_A, TENANT_ADMIN,
                      TENANT_B, UUID4_RE, assert_error, free_port)

LOCATION_RE = re.compile(r"^/v2/bio-sessions/([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SESSION_KEYS = {"id", "imageStorageEnabled", "ttlSeconds", "created", "expires", "signature"}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def parse_iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def unsigned_text(raw):
    """The response text without its trailing "signature" member."""
    m = re.fullmatch(r'(\{.*),"signature":"([A-Za-z0-9_\-.]+)"\}', raw, re.S)
    assert m, raw
    return m.group(1) + "}", m.group(2)


# ---- health, capabilities, authentication ------------------------------------------

def test_monitor_needs_no_key(server):
    r = server.get("/v2/monitor")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "UP"
    # conftest's BIOSERVER_STORE=redis-pair runs the suite on Redis.
    store_type = "redis" if os.environ.get("BIOSERVER_STORE") else "memory"
    store = dict(body["store"])
    # The redis-pair's Redis keeps nothing on disk, and the monitor says so (test_redis.py).
    assert (store.pop("durability", "") != "") == (store_type == "redis"), body["store"]
    assert store == {"type": store_type, "status": "UP"}
    assert body["workers"]["count"] >= 1
    assert isinstance(body["uptimeSeconds"], int)


@pytest.mark.parametrize("headers", [
    {"apikey": KEY_A},
    {"Authorization": KEY_A},
    {"Authorization": f"Bearer {KEY_A}"},
], ids=["apikey", "authorization", "bearer"])
def test_capabilities_with_each_auth_form(server, headers):
    r = server.get("/v2/capabilities", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["currentMode"] == ["F5_1_VID60"]
    assert isinstance(body["version"], str) and body["version"]
    assert set(body["supportedModes"]) == {"F5_1_VID60", "F5_3_VID60", "F5_2_VID75", "F5_1_VID0"}


def test_missing_key_is_401(server):
    r = server.get("/v2/capabilities")
    assert_error(r, 401, "authentication is required")
    assert r.headers.get("WWW-Authenticate") == "apikey"
    assert_error(server.post_json("/v2/bio-sessions", {}), 401)


@pytest.mark.parametrize("headers", [
    {"apikey": "not-a-configured-key-123"},
    {"Authorization": "Bearer not-a-configured-key-123"},
    {"apikey": KEY_A + "x"},
    {"apikey": KEY_A[:-1]},
    {"apikey": ""},
], ids=["unknown", "unknown-bearer", "longer", "prefix", "empty"])
def test_unknown_key_is_401(server, headers):
    assert_error(server.get("/v2/capabilities", headers=headers), 401)


def key_name(secret):
    """How the server names a key in logs, usage and metrics."""
    return "key-" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def test_key_without_permission_is_403(server):
    assert_error(server.get("/v2/capabilities", key=KEY_SESSIONS), 403, "getCapabilities")
    assert_error(server.get("/v2/capabilities", key=KEY_ADMIN), 403)
    assert_error(server.post_json("/v2/bio-sessions", {}, key=KEY_ADMIN), 403, "createBioSession")
    assert_error(server.get("/metrics", key=KEY_SESSIONS), 403)
    assert_error(server.get("/v2/metrics", key=KEY_SESSIONS), 403)


@pytest.mark.parametrize("path", ["/bioserver-app/v2/nope", "/nope", "/bioserver-app/v3/capabilities",
                                  "/bioserver-app/v2/bio-sessions/a/b", "/bioserver-appx/v2/monitor",
                                  "/bioserver-app/v2/bio-sessions/" + "a" * 200])
def test_unknown_path_is_404(server, path):
    for headers in ({}, {"apikey": KEY_A}):
        r = requests.get(server.base + path, headers=headers, timeout=10)
        assert_error(r, 404)


@pytest.mark.parametrize("method,path,allow", [
    ("PUT", "/v2/bio-sessions/0991cedc-9111-4b9d-9e4e-8d6eb4db488f", "GET, DELETE"),
    ("GET", "/v2/bio-sessions", "POST"),
    ("POST", "/v2/capabilities", "GET"),
    ("DELETE", "/v2/monitor", "GET"),
])
def test_wrong_method_is_405_with_allow(server, method, path, allow):
    for key in (None, KEY_A):  # decided before authentication
        r = server.request(method, path, key=key)
        assert_error(r, 405, method)
        assert r.headers["Allow"] == allow


# ---- bio-sessions -------------------------------------------------------------------

def check_session_body(body, **expected):
    assert UUID4_RE.match(body["id"])
    assert ISO_RE.match(body["created"]) and ISO_RE.match(body["expires"]), body
    ttl = expected.get("ttlSeconds", 300)
    delta = parse_iso(body["expires"]) - parse_iso(body["created"])
    assert delta == datetime.timedelta(seconds=ttl), body
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((parse_iso(body["created"]) - now).total_seconds()) < 60
    assert body["ttlSeconds"] == ttl
    assert body["imageStorageEnabled"] is expected.get("imageStorageEnabled", False)
    for name in ("correlationId", "evidenceId", "callbackURL"):
        if name in expected:
            assert body[name] == expected[name]
        else:
            assert name not in body, body
    assert isinstance(body["signature"], str) and body["signature"].count(".") == 2


def test_create_session_object_form(server):
    fields = {"correlationId": "891a6728-1ac4-11e7-93ae-92361f002671", "evidenceId": "ev-1",
              "imageStorageEnabled": True, "ttlSeconds": 120, "callbackURL": "https://93.184.215.14/callback"}
    r = server.post_json("/v2/bio-sessions", fields, key=KEY_A)
    assert r.status_code == 201, r.text
    m = LOCATION_RE.match(r.headers["Location"])
    assert m, r.headers["Location"]
    body = r.json()
    assert body["id"] == m.group(1)
    assert set(body) == SESSION_KEYS | {"correlationId", "evidenceId", "callbackURL"}
    check_session_body(body, **fields)
    # GET returns the same session (a fresh signature over the same content).
    g = server.get(r.headers["Location"], key=KEY_A)
    assert g.status_code == 200, g.text
    got = g.json()
    assert {k: v for k, v in got.items() if k != "signature"} == {k: v for k, v in body.items() if k != "signature"}
    line = server.wait_for_log(lambda l: l.get("status") == 201 and l.get("correlationId") == fields["correlationId"])
    assert line["key"] == key_name(KEY_A) and line["method"] == "POST"


def test_create_session_array_form_and_defaults(server):
    r = server.post_json("/v2/bio-sessions", [{"correlationId": "arr"}], key=KEY_A)
    assert r.status_code == 201, r.text
    assert LOCATION_RE.match(r.headers["Location"]).group(1) == r.json()["id"]
    check_session_body(r.json(), correlationId="arr")
    r = server.post_json("/v2/bio-sessions", {}, key=KEY_A)
    assert r.status_code == 201, r.text
    assert set(r.json()) == SESSION_KEYS
    check_session_body(r.json())
    r = server.post_json("/v2/bio-sessions", {"ttlSeconds": None, "correlationId": None}, key=KEY_A)
    assert r.status_code == 201, r.text
    check_session_body(r.json())


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "Application/JSON", "application/json ; x=y"])
def test_create_session_content_type_parameters(server, ctype):
    r = server.post_json("/v2/bio-sessions", {}, key=KEY_A, headers={"Content-Type": ctype})
    assert r.status_code == 201, r.text


def test_session_ids_are_unique(server):
    ids = {server.create_session() for _ in range(20)}
    assert len(ids) == 20


def test_delete_session(server):
    sid = server.create_session(KEY_A)
    r = server.delete(f"/v2/bio-sessions/{sid}", key=KEY_A)
    assert r.status_code == 204
    assert r.content == b""
    assert_error(server.get(f"/v2/bio-sessions/{sid}", key=KEY_A), 404, "bio-session not found")
    assert_error(server.delete(f"/v2/bio-sessions/{sid}", key=KEY_A), 404)


def test_get_unknown_session_is_404(server):
    assert_error(server.get("/v2/bio-sessions/0991cedc-9111-4b9d-9e4e-8d6eb4db488f", key=KEY_A), 404)
    assert_error(server.get("/v2/bio-sessions/not-a-uuid", key=KEY_A), 404)
    assert_error(server.get("/v2/bio-sessions/" + "b" * 100, key=KEY_A), 404)


def test_tenant_isolation(server):
    sid = server.create_session(KEY_A, correlationId="tenant-a")
    path = f"/v2/bio-sessions/{sid}"
    assert_error(server.get(path, key=KEY_B), 404)
    assert_error(server.delete(path, key=KEY_B), 404)
    assert server.get(path, key=KEY_A).status_code == 200  # survived B's delete attempt
    # Another key of the same tenant shares its sessions.
    assert server.get(path, key=KEY_SESSIONS).json()["correlationId"] == "tenant-a"
    sid_b = server.create_session(KEY_B)
    assert_error(server.get(f"/v2/bio-sessions/{sid_b}", key=KEY_A), 404)
    assert_error(server.get(f"/v2/bio-sessions/{sid_b}", key=KEY_SESSIONS), 404)
    assert server.delete(f"/v2/bio-sessions/{sid_b}", key=KEY_B).status_code == 204
    assert server.delete(path, key=KEY_SESSIONS).status_code == 204


def test_session_expires(server):
    r = server.post_json("/v2/bio-sessions", {"ttlSeconds": 1}, key=KEY_A)
    assert r.status_code == 201
    check_session_body(r.json(), ttlSeconds=1)
    path = r.headers["Location"]
    assert server.get(path, key=KEY_A).status_code == 200
    time.sleep(1.5)
    assert_error(server.get(path, key=KEY_A), 404)
    assert_error(server.delete(path, key=KEY_A), 404)


@pytest.mark.parametrize("ttl", [0, -1, 86401, 10 ** 10, 2 ** 63 - 1, 1e30, -1e30])
def test_ttl_out_of_range_is_400(server, ttl):
    r = server.post_json("/v2/bio-sessions", {"ttlSeconds": ttl}, key=KEY_A)
    assert_error(r, 400, "ttlSeconds must be between 1 and 86400")


def test_ttl_limits_follow_configuration(start_server):
    srv = start_server("--session-ttl-default", "30", "--session-ttl-max", "60")
    r = srv.post_json("/v2/bio-sessions", {}, key=KEY_A)
    check_session_body(r.json(), ttlSeconds=30)
    r = srv.post_json("/v2/bio-sessions", {"ttlSeconds": 60}, key=KEY_A)
    assert r.status_code == 201
    check_session_body(r.json(), ttlSeconds=60)
    assert_error(srv.post_json("/v2/bio-sessions", {"ttlSeconds": 61}, key=KEY_A), 400,
                 "ttlSeconds must be between 1 and 60")


@pytest.mark.parametrize("url", ["ftp://host/x", "javascript:alert(1)", "", "service/callback",
                                 "file:///etc/passwd", "HTTPX://a"])
def test_bad_callback_url_is_400(server, url):
    r = server.post_json("/v2/bio-sessions", {"callbackURL": url}, key=KEY_A)
    assert_error(r, 400, "callbackURL cannot be used: not an http:// or https:// URL")


def test_http_callback_url_accepted(server):
    r = server.post_json("/v2/bio-sessions", {"callbackURL": "http://93.184.215.14:8080/cb"}, key=KEY_A)
    assert r.status_code == 201
    assert r.json()["callbackURL"] == "http://93.184.215.14:8080/cb"


@pytest.mark.parametrize("url,why", [
    ("http://10.1.2.3:8080/cb", "private or local address (10.1.2.3)"),
    ("http://127.0.0.1/cb", "private or local address (127.0.0.1)"),
    ("http://[::1]:9/cb", "private or local address (::1)"),
    ("https://no-such-host.invalid/cb", "the host no-such-host.invalid does not resolve"),
])
def test_refused_callback_url_is_400_at_creation(server, url, why):
    assert_error(server.post_json("/v2/bio-sessions", {"callbackURL": url}, key=KEY_A), 400, why)


def test_callback_allow_opens_listed_private_destinations(start_server):
    srv = start_server("--callback-allow", "10.1.0.0/16,localhost")
    for url in ("http://10.1.2.3:8080/cb", "http://localhost:9/cb"):
        r = srv.post_json("/v2/bio-sessions", {"callbackURL": url}, key=KEY_A)
        assert r.status_code == 201, r.text
    assert_error(srv.post_json("/v2/bio-sessions", {"callbackURL": "http://10.2.0.1/cb"}, key=KEY_A), 400,
                 "callback_allow does not list")


def test_bad_callback_allow_setting_refuses_start(tmp_path):
    import subprocess
    from conftest import BIOSERVER
    p = subprocess.run([BIOSERVER, "--listen", "127.0.0.1:0", "--data", str(tmp_path), "--callback-allow", "10.0.0.0/40"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "callback_allow: '10.0.0.0/40'" in p.stderr, p.stderr


@pytest.mark.parametrize("body,message", [
    ({"correlationId": 5}, "field 'correlationId' in the bio-session must be a string"),
    ({"evidenceId": ["a"]}, "field 'evidenceId' in the bio-session must be a string"),
    ({"callbackURL": {}}, "field 'callbackURL' in the bio-session must be a string"),
    ({"imageStorageEnabled": "yes"}, "field 'imageStorageEnabled' in the bio-session must be a boolean"),
    ({"imageStorageEnabled": 1}, "field 'imageStorageEnabled' in the bio-session must be a boolean"),
    ({"ttlSeconds": "ten"}, "field 'ttlSeconds' in the bio-session must be an integer"),
    ({"ttlSeconds": "1e400"}, "field 'ttlSeconds' in the bio-session must be an integer"),
    ({"ttlSeconds": 0.4}, "ttlSeconds must be between 1 and"),
    ({"ttlSeconds": True}, "field 'ttlSeconds' in the bio-session must be an integer"),
    ({"correlationId": "x" * 257}, "field 'correlationId' in the bio-session is longer than 256 characters"),
    ({"callbackURL": "https://a/" + "x" * 2048}, "field 'callbackURL' in the bio-session is longer than 2048"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_invalid_fields_are_400(server, body, message):
    assert_error(server.post_json("/v2/bio-sessions", body, key=KEY_A), 400, message)


@pytest.mark.parametrize("raw,message", [
    ('{"correlationId": ', "malformed JSON"),
    ("{'a': 1}", "malformed JSON"),
    ("", "malformed JSON"),
    ('{"correlationId":"a","correlationId":"b"}', "malformed JSON"),
    ('{"a":1} trailing', "malformed JSON"),
    ("[]", "exactly one object"),
    ("[{}, {}]", "exactly one object"),
    ("42", None),  # a bare scalar is rejected by the parser or by the object check
    ('"text"', None),
    ("[42]", "must be a JSON object"),
    ("null", None),
])
def test_malformed_body_is_400(server, raw, message):
    assert_error(server.post_json("/v2/bio-sessions", raw, key=KEY_A), 400, message)


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/xml", "application/jsonx",
                                   "multipart/form-data; boundary=x"])
def test_wrong_content_type_is_415(server, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = server.request("POST", "/v2/bio-sessions", key=KEY_A, headers=headers, data=b"{}")
    if ctype is None:
        assert "Content-Type" not in r.request.headers
    assert_error(r, 415, "Content-Type must be application/json")


def test_string_limits_count_characters(server):
    assert server.post_json("/v2/bio-sessions", {"correlationId": "x" * 256}, key=KEY_A).status_code == 201
    # 200 characters (400 UTF-8 bytes): within a limit stated in characters.
    r = server.post_json("/v2/bio-sessions", {"correlationId": "\u00e9" * 200}, key=KEY_A)
    if r.status_code == 400:
        assert "characters" not in r.json()["message"], \
            "a 200-character value is refused as 'longer than 256 characters': " + r.json()["message"]
    else:
        assert r.status_code == 201 and r.json()["correlationId"] == "\u00e9" * 200


def test_deeply_nested_json_is_400(server):
    for raw in ("[" * 60000, "[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000):
        assert_error(server.post_json("/v2/bio-sessions", raw, key=KEY_A), 400)
    # Past the JSON routes' 64 KiB limit the body is refused before it is read.
    assert_error(server.post_json("/v2/bio-sessions", "[" * 100000, key=KEY_A), 413, "the limit is 65536 bytes")
    assert server.get("/v2/monitor").status_code == 200


def test_control_characters_do_not_break_log_lines(server):
    corr = 'line1\nline2\r{"event":"forged"}\u2028\u0001'
    r = server.post_json("/v2/bio-sessions", {"correlationId": corr}, key=KEY_A)
    assert r.status_code == 201 and r.json()["correlationId"] == corr
    server.wait_for_log(lambda l: l.get("correlationId") == corr and l.get("status") == 201)
    assert not any(l.get("event") == "forged" for l in server.log_lines())


def test_concurrent_sessions(server):
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        key = (KEY_A, KEY_B)[i % 2]
        with requests.Session() as http:
            r = http.post(server.url("/v2/bio-sessions"), json={"correlationId": f"c{i}"},
                          headers={"apikey": key}, timeout=30)
            assert r.status_code == 201, r.text
            sid = r.json()["id"]
            g = http.get(server.url(f"/v2/bio-sessions/{sid}"), headers={"apikey": key}, timeout=30)
            assert g.status_code == 200 and g.json()["correlationId"] == f"c{i}"
            other = (KEY_B, KEY_A)[i % 2]
            assert http.get(server.url(f"/v2/bio-sessions/{sid}"), headers={"apikey": other},
                            timeout=30).status_code == 404
            return sid

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(work, range(96)))
    assert len(set(ids)) == 96


# ---- request size limit ---------------------------------------------------------------

def padded_json(size):
    """A valid session body of exactly size bytes (whitespace padding)."""
    core = b'{"correlationId":"pad"}'
    return core[:-1] + b" " * (size - len(core)) + b"}"


def chunks(data, n=1000):
    for i in range(0, len(data), n):
        yield data[i:i + n]


def test_body_size_limit_413(start_server):
    srv = start_server("--max-body-bytes", "4096")
    h = {"Content-Type": "application/json"}
    # Content-Length over the limit: refused from the headers.
    assert_error(srv.post("/v2/bio-sessions", key=KEY_A, headers=h, data=padded_json(5000)), 413, "4096")
    assert_error(srv.post("/v2/bio-sessions", key=KEY_A, headers=h, data=padded_json(4097)), 413)
    # The connection is still usable (or cleanly re-opened) afterwards.
    assert srv.get("/v2/capabilities", key=KEY_A).status_code == 200
    # Chunked over the limit: refused once the body passes it.
    r = srv.post("/v2/bio-sessions", key=KEY_A, headers=h, data=chunks(padded_json(5000)))
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(r, 413, "4096")
    r = srv.post("/v2/bio-sessions", key=KEY_A, headers=h, data=chunks(padded_json(200000), 4000))
    assert_error(r, 413)
    assert srv.get("/v2/capabilities", key=KEY_A).status_code == 200
    # Exactly at the limit is fine, both ways.
    r = srv.post("/v2/bio-sessions", key=KEY_A, headers=h, data=padded_json(4096))
    assert r.status_code == 201, r.text
    r = srv.post("/v2/bio-sessions", key=KEY_A, headers=h, data=chunks(padded_json(4096), 700))
    assert r.status_code == 201, r.text
    line = srv.wait_for_log(lambda l: l.get("status") == 413)
    assert UUID4_RE.match(line["errorId"])


def raw_exchange(port, data, wait=3.0):
    """Sends raw bytes, returns everything received until the server closes or goes quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def test_early_error_does_not_treat_body_as_next_request(start_server):
    """A response decided from the headers (401/413) must not let the unread body be
    parsed as a second request on the same connection."""
    srv = start_server("--max-body-bytes", "4096")
    smuggled = b"GET /bioserver-app/v2/monitor HTTP/1.1\r\nHost: x\r\n\r\n"
    for headers, size, status in ((b"apikey: " + KEY_A.encode() + b"\r\n", 5000, b"413"), (b"", len(smuggled), b"401")):
        body = smuggled + b" " * (size - len(smuggled))
        req = (b"POST /bioserver-app/v2/bio-sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
               headers + b"Content-Length: " + str(size).encode() + b"\r\n\r\n" + body)
        reply = raw_exchange(srv.port, req)
        assert reply.startswith(b"HTTP/1.1 " + status), reply[:200]
        assert reply.count(b"HTTP/1.1 ") == 1, reply


# ---- signatures -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(server):
    r = server.get("/v2/certificate")
    assert r.status_code == 200
    assert "-----BEGIN CERTIFICATE-----" in r.text
    return x509.load_pem_x509_certificate(r.content), r.content


def split_jws(jws):
    h, p, s = jws.split(".")
    return json.loads(b64url_decode(h)), b64url_decode(p), b64url_decode(s), f"{h}.{p}".encode()


def signed_responses(server):
    created = server.post_json("/v2/bio-sessions", {"correlationId": "sig/é\"", "ttlSeconds": 77}, key=KEY_A)
    got = server.get(created.headers["Location"], key=KEY_A)
    return [created, got]


def test_certificate_is_p256(certificate):
    cert, _ = certificate
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    now = datetime.datetime.utcnow()
    assert cert.not_valid_before <= now <= cert.not_valid_after


def test_signature_verifies_with_cryptography(server, certificate):
    cert, _ = certificate
    der = cert.public_bytes(serialization.Encoding.DER)
    for r in signed_responses(server):
        assert r.status_code in (200, 201)
        unsigned, jws = unsigned_text(r.text)
        header, payload, sig, signing_input = split_jws(jws)
        assert header == {"alg": "ES256", "kid": b64url(hashlib.sha256(der).digest()),
                          "x5t#S256": b64url(hashlib.sha256(der).digest())}
        assert payload == unsigned.encode()
        body = json.loads(payload)
        assert body == {k: v for k, v in r.json().items() if k != "signature"}
        assert len(sig) == 64
        der_sig = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        cert.public_key().verify(der_sig, signing_input, ec.ECDSA(hashes.SHA256()))
        # A changed payload or signature does not verify.
        with pytest.raises(InvalidSignature):
            cert.public_key().verify(der_sig, signing_input.replace(b".", b".e", 1), ec.ECDSA(hashes.SHA256()))
        bad = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big") ^ 1)
        with pytest.raises(InvalidSignature):
            cert.public_key().verify(bad, signing_input, ec.ECDSA(hashes.SHA256()))


def test_signature_verifies_with_openssl_cli(server, certificate, tmp_path):
    _, pem = certificate
    (tmp_path / "cert.pem").write_bytes(pem)
    pub = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    (tmp_path / "pub.pem").write_bytes(pub)
    for i, r in enumerate(signed_responses(server)):
        unsigned, jws = unsigned_text(r.text)
        _, _, sig, signing_input = split_jws(jws)
        der_sig = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        (tmp_path / f"sig{i}.der").write_bytes(der_sig)
        (tmp_path / f"in{i}.txt").write_bytes(signing_input)
        (tmp_path / f"bad{i}.txt").write_bytes(signing_input + b"x")
        cmd = ["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
               str(tmp_path / f"sig{i}.der")]
        ok = subprocess.run(cmd + [str(tmp_path / f"in{i}.txt")], capture_output=True, text=True)
        assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stdout + ok.stderr
        bad = subprocess.run(cmd + [str(tmp_path / f"bad{i}.txt")], capture_output=True, text=True)
        assert bad.returncode != 0 and "Verification failure" in bad.stdout + bad.stderr


def test_jwks_matches_certificate(server, certificate):
    cert, _ = certificate
    r = server.get("/v2/jwks")
    assert r.status_code == 200
    assert "json" in r.headers["Content-Type"]
    keys = r.json()["keys"]
    assert len(keys) == 1
    k = keys[0]
    nums = cert.public_key().public_numbers()
    der = cert.public_bytes(serialization.Encoding.DER)
    assert k["kty"] == "EC" and k["crv"] == "P-256" and k["alg"] == "ES256" and k["use"] == "sig"
    assert b64url_decode(k["x"]) == nums.x.to_bytes(32, "big")
    assert b64url_decode(k["y"]) == nums.y.to_bytes(32, "big")
    assert base64.b64decode(k["x5c"][0]) == der
    assert k["kid"] == b64url(hashlib.sha256(der).digest())
    jws = server.post_json("/v2/bio-sessions", {}, key=KEY_B).json()["signature"]
    assert split_jws(jws)[0]["kid"] == k["kid"]


def test_signing_key_survives_restart(start_server, tmp_path):
    data = str(tmp_path / "keep")
    first = start_server("--data", data, data=False)
    pem1 = first.get("/v2/certificate").text
    assert first.stop() == 0
    second = start_server("--data", data, data=False)
    assert second.get("/v2/certificate").text == pem1
    assert os.stat(os.path.join(data, "signing-key.pem")).st_mode & 0o077 == 0


# ---- usage, metrics, logs ---------------------------------------------------------------

def usage_of(server, key):
    r = server.get("/v2/usage", key=key)
    assert r.status_code == 200, r.text
    return {entry["key"]: entry for entry in r.json()["keys"]}


def wait_usage(server, key, name, op, at_least):
    deadline = time.monotonic() + 5
    while True:
        n = usage_of(server, key)[name]["calls"].get(op, 0)
        if n >= at_least or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def test_usage_counts_increase(server):
    me = key_name(KEY_SESSIONS)
    before = usage_of(server, KEY_SESSIONS)
    assert set(before) == {me}  # a non-admin key sees only itself
    assert before[me]["tenant"] == TENANT_A
    calls = before[me]["calls"]
    sid = server.create_session(KEY_SESSIONS)
    server.create_session(KEY_SESSIONS)
    server.get(f"/v2/bio-sessions/{sid}", key=KEY_SESSIONS)
    server.get("/v2/capabilities", key=KEY_SESSIONS)  # 403 counts as a call too
    assert wait_usage(server, KEY_SESSIONS, me, "createBioSession", calls.get("createBioSession", 0) + 2) == \
        calls.get("createBioSession", 0) + 2
    assert wait_usage(server, KEY_SESSIONS, me, "getBioSession", calls.get("getBioSession", 0) + 1) == \
        calls.get("getBioSession", 0) + 1
    assert wait_usage(server, KEY_SESSIONS, me, "getCapabilities", calls.get("getCapabilities", 0) + 1) == \
        calls.get("getCapabilities", 0) + 1
    # The admin key sees every key, by name, never by secret.
    everyone = usage_of(server, KEY_ADMIN)
    assert set(everyone) == {key_name(k) for k in ALL_SECRETS}
    assert {e["tenant"] for e in everyone.values()} == {TENANT_A, TENANT_B, TENANT_ADMIN}
    assert everyone[me]["calls"]["createBioSession"] >= calls.get("createBioSession", 0) + 2
    assert_error(server.get("/v2/usage"), 401)


@pytest.mark.parametrize("path", ["/metrics", "/v2/metrics"])
def test_metrics_text(server, path):
    server.get("/v2/capabilities", key=KEY_A)
    server.create_session(KEY_A)
    server.get("/v2/bio-sessions/0991cedc-9111-4b9d-9e4e-8d6eb4db488f", key=KEY_A)
    time.sleep(0.1)
    r = server.get(path, key=KEY_ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    assert "# TYPE bioserver_requests_total counter" in text
    assert re.search(r'^bioserver_requests_total\{operation="getCapabilities",status="2xx"\} \d+$', text, re.M)
    assert re.search(r'^bioserver_requests_total\{operation="createBioSession",status="2xx"\} \d+$', text, re.M)
    assert re.search(r'^bioserver_requests_total\{operation="getBioSession",status="4xx"\} \d+$', text, re.M)
    assert re.search(r'^bioserver_request_seconds_count\{operation="createBioSession"\} \d+$', text, re.M)
    assert f'bioserver_key_calls_total{{key="{key_name(KEY_A)}",operation="createBioSession"}}' in text
    assert "bioserver_queue_depth" in text and "bioserver_busy_workers" in text
    for secret in ALL_SECRETS:
        assert secret not in text
    assert_error(server.get(path), 401)


def test_error_id_is_logged(server):
    r = server.post_json("/v2/bio-sessions", {"ttlSeconds": "soon"}, key=KEY_B)
    body = assert_error(r, 400)
    line = server.wait_for_log(lambda l: l.get("errorId") == body["id"])
    assert line["status"] == 400
    assert line["error"] == body["message"]
    assert line["method"] == "POST" and line["path"] == "/bioserver-app/v2/bio-sessions"
    assert line["key"] == key_name(KEY_B)
    assert isinstance(line["ms"], (int, float)) and line["ms"] >= 0
    # Errors decided before routing/authentication are logged too.
    for resp in (server.get("/v2/capabilities"), server.get("/v2/nothing-here", key=KEY_A)):
        eid = resp.json()["id"]
        server.wait_for_log(lambda l: l.get("errorId") == eid and l.get("status") == resp.status_code)


def test_log_never_contains_secrets(server):
    for headers in ({"apikey": KEY_A}, {"Authorization": KEY_B}, {"Authorization": "Bearer " + KEY_ADMIN},
                    {"apikey": KEY_SESSIONS}, {"apikey": "wrong-key-but-a-secret-too"}):
        server.get("/v2/capabilities", headers=headers)
    server.wait_for_log(lambda l: l.get("status") == 401 and "unknown API key" in l.get("error", ""))
    time.sleep(0.1)
    text = server.stderr_text()
    for secret in ALL_SECRETS + ("wrong-key-but-a-secret-too",):
        assert secret not in text
    for line in server.log_lines():
        if "key" in line:
            assert re.fullmatch(r"key-[0-9a-f]{16}", line["key"]), line


# ---- process behaviour: shutdown, development key, configuration, TLS ----------------------

def test_sigterm_drains_in_flight_request(start_server):
    srv = start_server()
    body = b'{"correlationId":"drain"}'
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /bioserver-app/v2/bio-sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"apikey: " + KEY_A.encode() + b"\r\nContent-Length: " + str(len(body)).encode() +
              b"\r\nConnection: close\r\n\r\n" + body[:10])
    time.sleep(0.3)  # the request is in flight (headers read, body incomplete)
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert srv.proc.poll() is None, "exited with a request in flight"
    # New connections are refused while draining.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    s.sendall(body[10:])
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    assert reply.startswith(b"HTTP/1.1 201"), reply[:200]
    assert b'"correlationId":"drain"' in reply
    assert srv.proc.wait(timeout=30) == 0
    assert "stopped" in srv.stderr_text()


def test_sigterm_idle_exits_zero(start_server):
    srv = start_server()
    assert srv.get("/v2/capabilities", key=KEY_A).status_code == 200
    t0 = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - t0 < 10


def test_development_key_when_none_configured(start_server):
    srv = start_server(keys=())
    m = re.search(r"^development API key \(all permissions, printed once\): ([0-9a-f]+)$", srv.stdout_text(), re.M)
    assert m, srv.stdout_text()
    key = m.group(1)
    assert len(key) >= 16
    assert srv.stdout_text().count(key) == 1
    assert srv.get("/v2/capabilities", key=key).status_code == 200
    assert srv.create_session(key)
    assert srv.get("/metrics", key=key).status_code == 200
    srv.wait_for_log(lambda l: l.get("path") == "/metrics")
    assert key not in srv.stderr_text()
    # A fresh key per start.
    srv2 = start_server(keys=())
    m2 = re.search(r"printed once\): ([0-9a-f]+)", srv2.stdout_text())
    assert m2 and m2.group(1) != key
    assert_error(srv2.get("/v2/capabilities", key=key), 401)


def test_config_file_is_loaded(start_server, tmp_path):
    port = free_port()
    conf = tmp_path / "bioserver.conf"
    conf.write_text(f"""# test configuration
listen = 127.0.0.1:{port}

   api_key = {KEY_A}:{TENANT_A}:capabilities,sessions
session_ttl_default = 45   
  # indented comment
max_body_bytes = 2048
""")
    srv = start_server("--config", str(conf), keys=(), listen=False)
    assert srv.port == port
    assert srv.stdout_text() == ""  # a key is configured: no development key
    assert srv.get("/v2/capabilities", key=KEY_A).status_code == 200
    assert_error(srv.get("/metrics", key=KEY_A), 403)  # perms from the file
    check_session_body(srv.post_json("/v2/bio-sessions", {}, key=KEY_A).json(), ttlSeconds=45)
    h = {"Content-Type": "application/json"}
    assert_error(srv.post("/v2/bio-sessions", key=KEY_A, headers=h, data=padded_json(3000)), 413, "2048")


def test_flags_override_config_file(start_server, tmp_path):
    file_port = free_port()
    conf = tmp_path / "override.conf"
    conf.write_text(f"listen = 127.0.0.1:{file_port}\napi_key = {KEY_A}:{TENANT_A}\n"
                    "session_ttl_default = 50\nsession_ttl_max = 80\n")
    # --config comes last on purpose: flags win wherever they appear.
    srv = start_server("--session-ttl-default", "70", "--api-key", f"{KEY_B}:{TENANT_B}",
                       "--config", str(conf), keys=())
    assert srv.port != file_port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", file_port), timeout=1).close()
    check_session_body(srv.post_json("/v2/bio-sessions", {}, key=KEY_A).json(), ttlSeconds=70)
    check_session_body(srv.post_json("/v2/bio-sessions", {}, key=KEY_B).json(), ttlSeconds=70)
    assert_error(srv.post_json("/v2/bio-sessions", {"ttlSeconds": 81}, key=KEY_A), 400, "between 1 and 80")


@pytest.mark.parametrize("args,message", [
    (["--api-key", "short"], "API key must be 16 to 127 characters"),
    (["--api-key", KEY_A + ":t:sessions,bogus"], "unknown permission"),
    (["--api-key", KEY_A + "::sessions"], "tenant must be 1 to 63"),
    (["--api-key", KEY_A + ":t:"], "unknown permission"),
    (["--api-key", KEY_A, "--api-key", KEY_A + ":other"], "API key configured twice"),
    (["--bogus-flag", "1"], "unknown setting 'bogus-flag'"),
    (["--workers", "0"], "invalid value '0' for 'workers'"),
    (["--session-ttl-default", "100", "--session-ttl-max", "50"], "session_ttl_default exceeds session_ttl_max"),
    (["--tls-cert", "/tmp/x.pem"], "tls_cert and tls_key must be given together"),
    (["--config", "/nonexistent/bioserver.conf"], "cannot open config file"),
    (["--listen"], "needs a value"),
    (["positional"], "unexpected argument"),
])
def test_invalid_configuration_exits_2(args, message, tmp_path):
    from conftest import BIOSERVER, sanitizer_env
    p = subprocess.run([BIOSERVER, "--data", str(tmp_path / "d")] + args, capture_output=True, text=True,
                       timeout=30, env=sanitizer_env())
    assert p.returncode == 2, p.stderr
    assert message in p.stderr, p.stderr
    assert KEY_A not in p.stderr + p.stdout
    assert "ERROR: AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr


@pytest.mark.parametrize("content,message", [
    ("listen 127.0.0.1:1\n", ":1: expected 'name = value'"),
    ("# ok\nnonsense = 1\n", ":2: unknown setting 'nonsense'"),
    ("workers = many\n", ":1: invalid value 'many' for 'workers'"),
    ("data = " + "x" * 1100 + "\n", ":1: line too long"),
])
def test_invalid_config_file_exits_2(content, message, tmp_path):
    from conftest import BIOSERVER, sanitizer_env
    conf = tmp_path / "bad.conf"
    conf.write_text(content)
    p = subprocess.run([BIOSERVER, "--config", str(conf)], capture_output=True, text=True, timeout=30,
                       env=sanitizer_env())
    assert p.returncode == 2
    assert message in p.stderr, p.stderr


def test_https(start_server, tmp_path):
    cert, key = str(tmp_path / "tls-cert.pem"), str(tmp_path / "tls-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    srv = start_server(tls=(cert, key))
    assert "listening on https://127.0.0.1:" in srv.stderr_text()
    r = srv.get("/v2/monitor")  # verified against the generated certificate
    assert r.status_code == 200 and r.json()["status"] == "UP"
    assert srv.get("/v2/capabilities", key=KEY_A).status_code == 200
    assert srv.create_session(KEY_A)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert requests.get(srv.url("/v2/monitor"), verify=False, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(srv.url("/v2/monitor"), timeout=10)  # not in the system trust store
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{srv.port}/bioserver-app/v2/monitor", timeout=5)
