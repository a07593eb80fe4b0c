/* The capture page on the WebCapture browser SDK (web/sdk/, loaded from the video
 * prefix): BioserverEnvironment checks the browser, BioserverNetworkCheck the link,
 * BioserverVideo streams the camera to the server, which guides the user frame by
 * frame and evaluates the capture (docs/capture-stream.md); the verdict is read with
 * the page's key (replay-liveness-metadata). The same path as any WebCapture page:
 * this page only adds the key form and the session creation that a service
 * provider's backend would do. */
"use strict";
(() => {
  const API = "/bioserver-app";
  const VIDEO = document.body.dataset.videoPath;
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

  /* What the server's guidance asks for (positionInfo: docs/capture-stream.md). */
  const POSITION = {
    TRACKER_POSITION_INFO_MOVE_BACK_INTO_FRAME: "Put your face in the frame",
    TRACKER_POSITION_INFO_CENTER_MOVE_LEFT: "Move a little to the side",
    TRACKER_POSITION_INFO_CENTER_MOVE_RIGHT: "Move a little to the side",
    TRACKER_POSITION_INFO_CENTER_MOVE_UP: "Move the camera up a little",
    TRACKER_POSITION_INFO_CENTER_MOVE_DOWN: "Move the camera down a little",
    TRACKER_POSITION_INFO_CENTER_MOVE_FORWARDS: "Come closer",
    TRACKER_POSITION_INFO_CENTER_MOVE_BACKWARDS: "Move back a little",
    TRACKER_POSITION_INFO_CENTER_TILT_LEFT: "Hold your head straight",
    TRACKER_POSITION_INFO_CENTER_TILT_RIGHT: "Hold your head straight",
    TRACKER_POSITION_INFO_MOVING_TOO_FAST: "Not so fast",
    TRACKER_POSITION_INFO_MOVE_BRIGHTER_AREA: "Find a brighter place",
    TRACKER_POSITION_INFO_MOVE_DARKER_AREA: "Find a less bright place",
    TRACKER_POSITION_INFO_STAND_STILL: "Hold still",
    TRACKER_POSITION_INFO_GOOD: "Hold still",
  };

  function guide(info, challenge) {
    if (info.uploadProgress) { prompt(""); say("Checking…"); return; }
    const active = info.livenessActive;
    if (challenge === "TRACKER_CHALLENGE_2D" && active && active.challengeCircles) {
      const target = active.challengeCircles[active.targetChallengeIndex];
      if (target) { prompt("Slowly turn your head to your " + target.pos); return; }
    }
    if (!info.facew || !info.faceh) prompt("Put your face in the frame");
    else prompt(POSITION[info.positionInfo] || "Look at the camera");
  }

  async function waitVerdict(key, sid) {
    for (let i = 0; i < 300; i++) {
      const m = await call("GET", "/v3/bio-sessions/" + sid + "/replay-liveness-metadata", key);
      if (m.status !== "INITIALIZED" && m.status !== "IN_PROGRESS") return m;
      await sleep(300);
    }
    throw new Error("no verdict in time");
  }

  /* One capture with the SDK; resolves when the server has sent its result. */
  function capture(sid) {
    return new Promise(async (resolve, reject) => {
      let challenge = null;
      const client = await BioserverVideo.initFaceCaptureClient({
        bioSessionId: sid, bioserverVideoUrl: location.origin, wspath: VIDEO + "/engine.io",
        trackingFn: (info) => guide(info, challenge),
        showChallengeInstruction: (instruction) => {
          challenge = instruction;
          if (instruction === "TRACKER_CHALLENGE_PENDING") { prompt(""); say("Checking…"); }
          else if (instruction === "TRACKER_CHALLENGE_DONT_MOVE") prompt("Hold still");
        },
        showChallengeResult: (result) => resolve({ client, result }),
        deviceInfo: { userAgent: navigator.userAgent.slice(0, 200), screen: screen.width + "x" + screen.height },
        sdkInfo: { name: "bioserver-web-capture", version: "2" },
        errorFn: (e) => reject(new Error((e && e.message) || ("capture error " + (e && e.code)))),
      });
      try {
        const stream = await BioserverVideo.getMediaStream({ videoId: "preview" });
        $("stage").hidden = false;
        $("stage").scrollIntoView({ block: "start" }); /* the preview and the prompt, on a phone too */
        say("Capturing…");
        client.startCapture({ stream });
      } catch (e) {
        client.disconnect();
        reject(e);
      }
    });
  }

  async function run(ev) {
    ev.preventDefault();
    const key = $("apikey").value.trim();
    $("start").disabled = true; $("verdict").textContent = ""; $("verdict").className = "verdict";
    let client;
    try {
      let sid = $("session").value.trim();
      if (!sid) { say("Creating a session…"); sid = (await call("POST", "/v2/bio-sessions", key, {})).id; $("session").value = sid; }
      say("Preparing the check…");
      await call("POST", "/v2/bio-sessions/" + sid + "/init-liveness-parameters", key,
        { type: $("type").value, securityLevel: $("level").value, imageRetrievalDisabled: false });
      const done = await capture(sid);
      client = done.client;
      say("Checking…");
      const m = await waitVerdict(key, sid);
      $("verdict").textContent = m.status === "SUCCESS" ? "Liveness confirmed." : "Result: " + m.status + (m.reason ? " — " + m.reason : "");
      $("verdict").className = "verdict " + (m.status === "SUCCESS" ? "ok" : "bad");
      $("verdict").dataset.status = m.status;
      say("Done.");
    } catch (e) {
      say("Error: " + e.message);
    } finally {
      if (client) client.disconnect();
      const video = $("preview");
      if (video.srcObject) { video.srcObject.getTracks().forEach((t) => t.stop()); video.srcObject = null; }
      prompt("");
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
    const video = VIDEO;
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
