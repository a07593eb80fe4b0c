/* Replay-liveness capture client: environment and connection checks (the WebCapture
 * SDK, web/sdk/), init parameters, camera, challenge prompts, WebCrypto encryption to
 * the server's certificate, upload, verdict.
 * Protocol (docs/liveness.md, tools/liveness_client.py is the same in Python):
 *   AAD = "bioserver-liveness-v1\n" + sessionId + "\n" + serverRandom
 *   AES-256-GCM(capture JSON), key wrapped with RSA-OAEP SHA-256. */
"use strict";
(() => {
  const API = "/bioserver-app";
  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const say = (text) => { $("status").textContent = text; };
  const prompt = (text) => { $("prompt").textContent = text; };

  /* URL fragment (never sent to a server): #apikey=...&session=...&type=... */
  const hash = new URLSearchParams(location.hash.slice(1));
  for (const k of ["apikey", "session", "type", "level"]) if (hash.get(k)) $(k).value = hash.get(k);

  async function call(method, path, key, body) {
    const r = await fetch(API + path, {
      method, headers: Object.assign({ apikey: key }, body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(json.message || ("HTTP " + r.status));
    return json;
  }

  /* The SubjectPublicKeyInfo of a DER certificate: the 7th element of
   * tbsCertificate (6th when the optional version is absent). */
  function spkiOf(der) {
    const tlv = (off) => {
      let len = der[off + 1], hdr = 2;
      if (len & 0x80) { const n = len & 0x7f; len = 0; for (let i = 0; i < n; i++) len = len * 256 + der[off + 2 + i]; hdr += n; }
      return { tag: der[off], start: off, body: off + hdr, end: off + hdr + len };
    };
    const cert = tlv(0), tbs = tlv(cert.body);
    let off = tbs.body, item = tlv(off);
    if (item.tag === 0xa0) { off = item.end; item = tlv(off); }
    for (let i = 0; i < 5; i++) { off = item.end; item = tlv(off); }
    return der.slice(item.start, item.end);
  }

  const b64 = (buf) => { let s = ""; new Uint8Array(buf).forEach((b) => { s += String.fromCharCode(b); }); return btoa(s); };
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

  async function seal(params, sessionId, capture) {
    const pub = await crypto.subtle.importKey("spki", spkiOf(unb64(params.certificates[0])),
      { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
    const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt"]);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const aad = new TextEncoder().encode("bioserver-liveness-v1\n" + sessionId + "\n" + params.serverRandom);
    const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key,
      new TextEncoder().encode(JSON.stringify(capture)));
    const wrapped = await crypto.subtle.encrypt({ name: "RSA-OAEP" }, pub, await crypto.subtle.exportKey("raw", key));
    return { version: 1, serverRandom: params.serverRandom, encryptedKey: b64(wrapped), iv: b64(iv), ciphertext: b64(ct) };
  }

  /* Same derivation as src/liveness/challenge.c. */
  async function challenges(seed, count) {
    const out = [];
    for (let i = 0; i < count; i++) {
      const d = new Uint8Array(await crypto.subtle.digest("SHA-256",
        new TextEncoder().encode("bioserver-challenge-v1:" + seed + ":" + i)));
      out.push(d[0] & 1 ? "RIGHT" : "LEFT");
    }
    return out;
  }

  /* Frames as the camera sees them (unmirrored: the server's yaw convention). */
  async function grab(video, frames, count, intervalMs) {
    const c = document.createElement("canvas");
    c.width = video.videoWidth; c.height = video.videoHeight;
    const g = c.getContext("2d");
    for (let i = 0; i < count; i++) {
      g.drawImage(video, 0, 0);
      const blob = await new Promise((r) => c.toBlob(r, "image/jpeg", 0.9));
      frames.push({ timestamp: Date.now(), image: b64(await blob.arrayBuffer()) });
      await sleep(intervalMs);
    }
  }

  async function captureFrames(video, params) {
    const frames = [];
    if (params.type === "LIVENESS_PASSIVE") {
      prompt("Look at the camera"); await sleep(1200); await grab(video, frames, 1, 0);
    } else if (params.type === "LIVENESS_PASSIVE_VIDEO") {
      prompt("Look at the camera"); await sleep(800); await grab(video, frames, 8, 200);
    } else {
      const turns = await challenges(params.seed, params.nbChallenge || 2);
      for (const t of turns) {
        prompt("Look straight at the camera"); await grab(video, frames, 3, 250);
        prompt("Slowly turn your head to your " + t.toLowerCase()); await grab(video, frames, 6, 250);
      }
    }
    prompt("");
    return frames.slice(0, 40);
  }

  async function waitVerdict(key, sid) {
    for (let i = 0; i < 300; i++) {
      const m = await call("GET", "/v3/bio-sessions/" + sid + "/replay-liveness-metadata", key);
      if (m.status !== "INITIALIZED" && m.status !== "IN_PROGRESS") return m;
      await sleep(300);
    }
    throw new Error("no verdict in time");
  }

  async function run(ev) {
    ev.preventDefault();
    const key = $("apikey").value.trim();
    $("start").disabled = true; $("verdict").textContent = ""; $("verdict").className = "verdict";
    let stream;
    try {
      let sid = $("session").value.trim();
      if (!sid) { say("Creating a session…"); sid = (await call("POST", "/v2/bio-sessions", key, {})).id; $("session").value = sid; }
      say("Preparing the check…");
      const params = await call("POST", "/v2/bio-sessions/" + sid + "/init-liveness-parameters", key,
        { type: $("type").value, securityLevel: $("level").value, imageRetrievalDisabled: false });
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: 640, height: 480 }, audio: false });
      const video = $("preview");
      video.srcObject = stream; $("stage").hidden = false;
      $("stage").scrollIntoView({ block: "start" }); /* the preview and the prompt, on a phone too */
      await new Promise((r) => { if (video.readyState >= 2) r(); else video.onloadeddata = r; });
      say("Capturing…");
      const frames = await captureFrames(video, params);
      say("Encrypting and sending…");
      const env = await seal(params, sid, {
        frames, deviceInfo: { userAgent: navigator.userAgent.slice(0, 200), screen: screen.width + "x" + screen.height },
        sdkInfo: { name: "bioserver-web-capture", version: "1" },
      });
      await call("POST", "/v2/bio-sessions/" + sid + "/liveness-capture", key, env);
      say("Checking…");
      const m = await waitVerdict(key, sid);
      $("verdict").textContent = m.status === "SUCCESS" ? "Liveness confirmed." : "Result: " + m.status + (m.reason ? " — " + m.reason : "");
      $("verdict").className = "verdict " + (m.status === "SUCCESS" ? "ok" : "bad");
      $("verdict").dataset.status = m.status;
      say("Done.");
    } catch (e) {
      say("Error: " + e.message);
    } finally {
      if (stream) stream.getTracks().forEach((t) => t.stop());
      $("stage").hidden = true; /* the camera is off: no empty black preview above the verdict */
      $("start").disabled = false;
    }
  }

  /* Before the camera: can this browser capture (BioserverEnvironment), and is the
   * link good enough to send the frames (BioserverNetworkCheck; a weak link is only a
   * warning here, the capture is one upload). */
  function checkEnvironment() {
    const env = BioserverEnvironment.detection().envDetected;
    if (!env) { $("environment").textContent = "Cannot tell which browser this is."; return true; }
    const { os, browser } = env;
    $("environment").dataset.supported = String(os.isSupported && browser.isSupported);
    if (os.isSupported && browser.isSupported) {
      $("environment").textContent = "Browser: " + browser.name + " " + browser.version.split(".")[0] + " on " + os.name + ".";
      return true;
    }
    $("environment").className = "bad";
    $("environment").textContent = !os.isSupported ? "This operating system is not supported (use " + os.supportedList.join(", ") + ")."
      : "This browser cannot do the check" + (browser.missingFeatures.length ? " (no " + browser.missingFeatures.join(", ") + ")" : "")
        + "; use one of: " + browser.supportedList.map((b) => b.name + " " + b.minimumVersion + "+").join(", ") + ".";
    $("start").disabled = true;
    return false;
  }

  function checkNetwork() {
    const video = document.body.dataset.videoPath;
    const show = (m) => {
      const el = $("network");
      el.dataset.good = String(!!(m && m.goodConnectivity));
      el.className = m && m.goodConnectivity ? "" : "bad";
      el.textContent = !m ? "Could not check the connection."
        : m.goodConnectivity ? "Connection: good (" + m.latencyMs + " ms, " + m.upload + " kb/s up)."
          : "Connection: weak (" + m.latencyMs + " ms" + (m.upload !== undefined ? ", " + m.upload + " kb/s up" : "")
            + "; at least " + BioserverNetworkCheck.UPLOAD_SPEED_THRESHOLD + " kb/s and at most "
            + BioserverNetworkCheck.LATENCY_THRESHOLD + " ms are needed).";
    };
    $("network").textContent = "Checking the connection…";
    BioserverNetworkCheck.connectivityMeasure({
      latencyURL: video + "/network-latency", uploadURL: video + "/network-speed",
      onNetworkCheckUpdate: show, errorFn: () => show(null),
    });
  }

  $("setup").addEventListener("submit", run);
  if (checkEnvironment()) checkNetwork();
})();
