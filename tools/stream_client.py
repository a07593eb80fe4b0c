#!/usr/bin/python3
"""stream_client - reference client of the real-time capture stream
(docs/capture-stream.md), on Debian's python3-cryptography. A small WebSocket
client of its own (RFC 6455, client frames masked), so that tests can also send
what a broken or hostile client would.

  stream_client.py --url http://127.0.0.1:8080 --session ID [--fps 10] FRAME.jpg ...

Opens the stream, sends `start` with a wrapped AES-256 key, sends each frame as
seq(4) || iv(12) || AES-GCM(K, iv, AAD, JPEG) with
AAD = "bioserver-stream-v1\\n" + sessionId + "\\n" + serverRandom + "\\n" + seq,
prints every server message and exits after the result.
"""
import argparse
import base64
import json
import os
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "/bioserver-app"
AAD_PREFIX = b"bioserver-stream-v1\n"


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed {code}: {reason}")
        self.code, self.reason = code, reason


def frame_bytes(opcode, payload, fin=True, mask=True, rsv=0):
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload)) if n < 4096 else \
        head + key + _xor(payload, key)


def _xor(data, key):
    k = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(len(data), "big")


class WebSocket:
    """Handshake on connect(); send_text/send_binary/recv_json; raw() for crafted bytes."""

    def __init__(self, base_url, path, timeout=30, headers=None):
        u = urlsplit(base_url)
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {u.hostname}:{u.port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            lines = [line for line in lines if not line.lower().startswith(k.lower() + ":")]
            if v is not None:
                lines.append(f"{k}: {v}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines if ":" in h)}
        self.body = None
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            self.body = json.loads(self.buf[:n]) if n else None
        self.close_code = None

    def raw(self, data):
        self.sock.sendall(data)

    def send_text(self, obj):
        self.raw(frame_bytes(0x1, json.dumps(obj).encode() if not isinstance(obj, bytes) else obj))

    def send_binary(self, data):
        self.raw(frame_bytes(0x2, data))

    def _parse(self):
        """A complete frame at the start of the buffer: (opcode, payload), consumed; or None."""
        b = self.buf
        if len(b) < 2:
            return None
        n, at = b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, at = struct.unpack(">H", b[2:4])[0], 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, at = struct.unpack(">Q", b[2:10])[0], 10
        assert not b[1] & 0x80, "server frames are never masked"
        if len(b) < at + n:
            return None
        self.buf = b[at + n:]
        return b[0] & 0x0F, b[at:at + n]

    def recv(self):
        """The next data message (opcode, payload); raises Closed on a close frame. A
        socket timeout leaves the buffer intact (call again)."""
        while True:
            f = self._parse()
            if f is None:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Closed(self.close_code or 1006, "connection closed")
                self.buf += chunk
                continue
            op, payload = f
            if op == 0x8:
                self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise Closed(self.close_code, payload[2:].decode(errors="replace"))
            if op in (0x9, 0xA):
                continue
            return op, payload

    def recv_json(self):
        op, payload = self.recv()
        assert op == 0x1, f"server sent opcode {op}"
        return json.loads(payload)

    def close(self):
        try:
            self.raw(frame_bytes(0x8, struct.pack(">H", 1000)))
        except OSError:
            pass
        self.sock.close()


class CaptureStream:
    """The protocol over a WebSocket: hello, start, encrypted frames, messages."""

    def __init__(self, base_url, session_id, path_prefix=PREFIX, timeout=30):
        self.sid = session_id
        self.ws = WebSocket(base_url, f"{path_prefix}/v2/bio-sessions/{session_id}/capture-stream", timeout)
        self.status, self.body = self.ws.status, self.ws.body
        self.hello = self.ws.recv_json() if self.status == 101 else None
        self.key = os.urandom(32)
        self.seq = 0

    def wrapped_key(self, key=None):
        cert = x509.load_der_x509_certificate(base64.b64decode(self.hello["certificate"]))
        return cert.public_key().encrypt(key or self.key, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                                       algorithm=hashes.SHA256(), label=None))

    def start(self, wrapped=None, **extra):
        msg = {"type": "start", "encryptedKey": base64.b64encode(wrapped or self.wrapped_key()).decode(),
               "deviceInfo": {"model": "stream_client"}, "sdkInfo": {"name": "stream_client.py", "version": "1"}}
        msg.update(extra)
        self.ws.send_text(msg)

    def frame(self, jpeg, seq=None, key=None, tamper=False):
        seq = self.seq if seq is None else seq
        iv = os.urandom(12)
        aad = AAD_PREFIX + self.sid.encode() + b"\n" + self.hello["serverRandom"].encode() + b"\n" + str(seq).encode()
        ct = AESGCM(key or self.key).encrypt(iv, jpeg, aad)
        if tamper:
            ct = ct[:-1] + bytes([ct[-1] ^ 1])
        self.seq = seq + 1
        return struct.pack(">I", seq) + iv + ct

    def send_frame(self, jpeg, **kw):
        self.ws.send_binary(self.frame(jpeg, **kw))

    def next(self):
        return self.ws.recv_json()

    def until(self, pred, limit=1000):
        """Messages up to and including the first for which pred is true."""
        seen = []
        for _ in range(limit):
            m = self.next()
            seen.append(m)
            if pred(m):
                return seen
        raise AssertionError("no such message")

    def close(self):
        self.ws.close()


def run_capture(base_url, session_id, frames, fps=10, path_prefix=PREFIX, on_message=None, loop=True):
    """Sends frames (cycling through them while the server wants more) at fps and
    returns every message up to the result (or the error)."""
    cs = CaptureStream(base_url, session_id, path_prefix)
    if cs.status != 101:
        return cs, [cs.body]
    cs.start()
    messages = [cs.hello]
    i, done = 0, False
    cs.ws.sock.settimeout(0.0)
    interval = 1.0 / fps
    next_send = time.monotonic()
    while not done:
        now = time.monotonic()
        pending = any(m.get("instruction") == "TRACKER_CHALLENGE_PENDING" for m in messages)
        if not pending and now >= next_send and (loop or i < len(frames)):
            cs.ws.sock.settimeout(30)
            cs.send_frame(frames[i % len(frames)])
            cs.ws.sock.settimeout(0.0)
            i += 1
            next_send += interval
        try:
            cs.ws.sock.settimeout(max(0.001, next_send - time.monotonic()) if not pending else 60)
            m = cs.next()
        except (socket.timeout, BlockingIOError):
            continue
        except Closed:
            break
        messages.append(m)
        if on_message:
            on_message(m)
        done = m["type"] in ("result", "error")
    cs.ws.sock.settimeout(30)
    try:  # the close frame that follows the last message
        while cs.ws.close_code is None:
            cs.next()
    except (Closed, OSError):
        pass
    return cs, messages


def main():
    import requests  # noqa: F401  (the demo flow creates sessions with it)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--session", required=True)
    ap.add_argument("--fps", type=float, default=10)
    ap.add_argument("frames", nargs="+")
    a = ap.parse_args()
    frames = [open(f, "rb").read() for f in a.frames]
    cs, messages = run_capture(a.url, a.session, frames, a.fps, on_message=lambda m: print(json.dumps(m)))
    cs.close()
    return 0 if messages and messages[-1].get("type") == "result" else 1


if __name__ == "__main__":
    sys.exit(main())
