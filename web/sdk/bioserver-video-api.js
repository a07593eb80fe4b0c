/*
 * bioserver-video-api.js - the `BioserverVideo` global of the browser capture SDK,
 * written for bioserver from how WebCapture pages call it (the public demo's
 * templates/<page>/index.js and utils/commons.js) and from IDEMIA's public WebCapture
 * SDK documentation. It streams the camera to bioserver over the capture stream
 * (docs/capture-stream.md) and turns the server's messages into the page callbacks.
 *
 *   BioserverVideo.getMediaStream({videoId})           -> Promise<MediaStream> (front camera)
 *   BioserverVideo.initFaceCaptureClient(options)      -> Promise<client>
 *     options: bioSessionId (required), bioserverVideoUrl + wspath (where the video
 *     server is: wspath's "/engine.io" tail is ignored), onClientInitEnd(),
 *     trackingFn(trackingInfo), showChallengeInstruction(instruction),
 *     showChallengeResult({bestImageInfo, livenessStatus}), errorFn({code, error,
 *     unlockDateTime}); deviceInfo/sdkInfo are optional extras for the server.
 *   client.startCapture({stream})  starts sending frames of stream
 *   client.disconnect()            -> Promise, stops and closes (also client.abort)
 *
 * Frames: the camera image, unmirrored, scaled to the server's frameWidth hint,
 * JPEG, each encrypted with AES-256-GCM under a key wrapped once with RSA-OAEP for
 * the server's certificate, at most maxFps a second and two frames in flight.
 * Needs a secure context (https or localhost) for WebCrypto and the camera.
 */
(function (global) {
    'use strict';

    var VERSION = '1.0.0';
    var AAD_PREFIX = 'bioserver-stream-v1\n';
    var KEEPALIVE_MS = 4000; /* the server closes a stream idle for capture_stream_idle_timeout (10 s) */
    var IN_FLIGHT = 2; /* frames sent without their tracking answer yet */
    var JPEG_QUALITY = 0.9;
    var FROZEN_AFTER_MS = 1000; /* a camera without a new frame for this long is frozen */
    var scriptSrc = global.document && global.document.currentScript ? global.document.currentScript.src : '';

    function b64decode(text) {
        var raw = global.atob(text), out = new Uint8Array(raw.length);
        for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
        return out;
    }

    function b64encode(bytes) {
        var s = '';
        for (var i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        return global.btoa(s);
    }

    /* The SubjectPublicKeyInfo of a DER certificate (WebCrypto imports "spki", not
     * certificates): Certificate > tbsCertificate > the field after subject. */
    function spkiOf(der) {
        function item(off) {
            var len = der[off + 1], hdr = 2;
            if (len & 0x80) {
                var n = len & 0x7f;
                len = 0;
                for (var i = 0; i < n; i++) len = len * 256 + der[off + 2 + i];
                hdr += n;
            }
            return { tag: der[off], start: off, body: off + hdr, end: off + hdr + len };
        }
        var tbs = item(item(0).body), field = item(tbs.body);
        if (field.tag === 0xa0) field = item(field.end); /* explicit version */
        for (var k = 0; k < 5; k++) field = item(field.end); /* serial, signature, issuer, validity, subject */
        return der.slice(field.start, field.end);
    }

    /* ws(s)://host/<video base path>/v2/bio-sessions/<id>/capture-stream */
    function streamUrl(options) {
        var base = options.bioserverVideoUrl;
        var path = (options.wspath || '').replace(/\/engine\.io\/?$/, '');
        if (!base) {
            /* The SDK is served by the video server: its own folder is the base. */
            var u = new URL(scriptSrc || global.location.href);
            base = u.origin;
            if (!options.wspath) path = u.pathname.replace(/\/[^/]*$/, '');
        }
        var url = new URL(base.replace(/\/$/, '') + path + '/v2/bio-sessions/' + encodeURIComponent(options.bioSessionId) +
                          '/capture-stream');
        return url.toString().replace(/^http/, 'ws');
    }

    function call(fn) {
        if (typeof fn !== 'function') return;
        try {
            fn.apply(null, Array.prototype.slice.call(arguments, 1));
        } catch (e) {
            console.error('BioserverVideo: a page callback threw', e);
        }
    }

    /* A refused WebSocket tells the page nothing; the same URL over HTTP answers the
     * refusal (404, 409, 503 + Retry-After, ...) as JSON. */
    function whyRefused(url) {
        return fetch(url.replace(/^ws/, 'http'), { cache: 'no-store' }).then(function (r) {
            return r.json().catch(function () { return {}; }).then(function (body) {
                var retry = Number(r.headers.get('Retry-After'));
                return {
                    code: r.status, error: body.message || 'the capture stream was refused',
                    unlockDateTime: retry ? new Date(Date.now() + retry * 1000).toISOString() : undefined
                };
            });
        }).catch(function () {
            return { code: 0, error: 'the video server cannot be reached' };
        });
    }

    function FaceCaptureClient(options) {
        this.options = options;
        this.url = streamUrl(options);
        this.ws = null;
        this.hello = null;
        this.key = null;
        this.seq = 0;
        this.inFlight = 0;
        this.capturing = false;
        this.pending = false;
        this.closed = false;
        this.finished = false; /* a result or an error came: the close that follows is expected */
        this.timer = null;
        this.keepalive = null;
        this.video = null;
        this.canvas = null;
    }

    FaceCaptureClient.prototype.connect = function () {
        var self = this;
        return new Promise(function (resolve, reject) {
            var ws;
            try {
                ws = new WebSocket(self.url);
            } catch (e) {
                reject(e);
                return;
            }
            ws.binaryType = 'arraybuffer';
            self.ws = ws;
            var opened = false;
            ws.onmessage = function (ev) {
                var msg;
                try {
                    msg = JSON.parse(ev.data);
                } catch (e) {
                    return;
                }
                if (msg.type === 'hello') {
                    self.hello = msg;
                    opened = true;
                    self.keepalive = setInterval(function () { self.send({ type: 'keepalive' }); }, KEEPALIVE_MS);
                    resolve(self);
                    call(self.options.onClientInitEnd);
                    return;
                }
                self.onServerMessage(msg);
            };
            ws.onclose = function () {
                var wasOpen = opened && !self.closed;
                self.stop();
                if (!opened) {
                    whyRefused(self.url).then(function (err) {
                        call(self.options.errorFn, err);
                        reject(err);
                    });
                } else if (wasOpen && !self.finished) {
                    call(self.options.errorFn, { code: 0, error: 'the capture stream closed unexpectedly' });
                }
            };
        });
    };

    FaceCaptureClient.prototype.send = function (obj) {
        if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
    };

    FaceCaptureClient.prototype.onServerMessage = function (msg) {
        var o = this.options;
        switch (msg.type) {
        case 'instruction':
            if (msg.instruction === 'TRACKER_CHALLENGE_PENDING') {
                this.pending = true;
                this.stopFrames();
            }
            call(o.showChallengeInstruction, msg.instruction);
            break;
        case 'tracking': {
            if (msg.seq !== undefined) this.inFlight = Math.max(0, this.inFlight - 1);
            var info = Object.assign({}, msg);
            delete info.type;
            delete info.seq;
            call(o.trackingFn, info);
            break;
        }
        case 'notice':
            if (msg.seq !== undefined) this.inFlight = Math.max(0, this.inFlight - 1);
            break;
        case 'result':
            this.finished = true;
            this.stopFrames();
            call(o.showChallengeResult, { bestImageInfo: msg.bestImageInfo, livenessStatus: msg.livenessStatus });
            break;
        case 'error':
            this.finished = true;
            this.stopFrames();
            call(o.errorFn, { code: msg.status, error: msg.message, unlockDateTime: msg.unlockDateTime });
            break;
        default:
            break; /* "started", and whatever later servers add */
        }
    };

    FaceCaptureClient.prototype.startCapture = function (params) {
        var self = this;
        var stream = params && params.stream;
        if (!stream || !this.hello || this.capturing || this.closed) return Promise.resolve();
        this.capturing = true;
        clearInterval(this.keepalive);
        this.keepalive = null;
        var cert = b64decode(this.hello.certificate);
        return crypto.subtle.importKey('spki', spkiOf(cert), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt'])
            .then(function (pub) {
                return crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']).then(function (key) {
                    self.key = key;
                    return crypto.subtle.exportKey('raw', key);
                }).then(function (raw) {
                    return crypto.subtle.encrypt({ name: 'RSA-OAEP' }, pub, raw);
                });
            }).then(function (wrapped) {
                self.send({
                    type: 'start', encryptedKey: b64encode(new Uint8Array(wrapped)),
                    deviceInfo: self.options.deviceInfo || { userAgent: navigator.userAgent.slice(0, 300) },
                    sdkInfo: self.options.sdkInfo || { name: 'bioserver-video-api.js', version: VERSION }
                });
                self.video = document.createElement('video');
                self.video.muted = true;
                self.video.playsInline = true;
                self.video.srcObject = stream;
                return self.video.play().catch(function () {});
            }).then(function () {
                self.canvas = document.createElement('canvas');
                self.scheduleFrame(0);
            }).catch(function (e) {
                call(self.options.errorFn, { code: 0, error: 'cannot start the capture: ' + (e && e.message) });
            });
    };

    FaceCaptureClient.prototype.scheduleFrame = function (delay) {
        var self = this;
        if (!this.capturing || this.pending || this.closed) return;
        this.timer = setTimeout(function () { self.sendFrame(); }, delay);
    };

    function sameBytes(a, b) {
        if (!a || !b || a.byteLength !== b.byteLength) return false;
        var x = new Uint8Array(a), y = new Uint8Array(b);
        for (var i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
        return true;
    }

    FaceCaptureClient.prototype.grab = function () {
        var v = this.video, w = v.videoWidth, h = v.videoHeight;
        if (!w || !h) return Promise.resolve(null);
        var scale = Math.min(1, (this.hello.frameWidth || 640) / Math.max(w, h));
        this.canvas.width = Math.round(w * scale);
        this.canvas.height = Math.round(h * scale);
        this.canvas.getContext('2d').drawImage(v, 0, 0, this.canvas.width, this.canvas.height);
        var canvas = this.canvas, self = this;
        return new Promise(function (resolve) { canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY); })
            .then(function (blob) { return blob ? blob.arrayBuffer() : null; })
            .then(function (jpeg) {
                /* The camera had no new frame since the last one sent (it is slower than
                 * maxFps, e.g. on a loaded machine): the same image encodes to the same
                 * bytes, and the server would take the repeat for a frozen video. A
                 * camera that stays frozen longer than FROZEN_AFTER_MS is sent as it
                 * is, for the server to judge (and the stream not to go idle). */
                var now = Date.now();
                if (!jpeg || (sameBytes(jpeg, self.lastJpeg) && now - self.lastJpegAt < FROZEN_AFTER_MS)) return null;
                self.lastJpeg = jpeg;
                self.lastJpegAt = now;
                return jpeg;
            });
    };

    FaceCaptureClient.prototype.sendFrame = function () {
        var self = this, interval = 1000 / (this.hello.maxFps || 10), t0 = Date.now();
        if (this.inFlight >= IN_FLIGHT) {
            this.scheduleFrame(interval / 4); /* the server is behind: do not make it drop */
            return;
        }
        this.grab().then(function (jpeg) {
            if (!jpeg || !self.capturing || self.pending || self.closed) return;
            var seq = self.seq++;
            var iv = crypto.getRandomValues(new Uint8Array(12));
            var aad = new TextEncoder().encode(AAD_PREFIX + self.options.bioSessionId + '\n' + self.hello.serverRandom +
                                               '\n' + seq);
            return crypto.subtle.encrypt({ name: 'AES-GCM', iv: iv, additionalData: aad }, self.key, jpeg).then(function (ct) {
                var msg = new Uint8Array(16 + ct.byteLength);
                new DataView(msg.buffer).setUint32(0, seq);
                msg.set(iv, 4);
                msg.set(new Uint8Array(ct), 16);
                if (self.ws.readyState === WebSocket.OPEN && !self.pending) {
                    self.ws.send(msg);
                    self.inFlight++;
                }
            });
        }).catch(function (e) {
            console.warn('BioserverVideo: frame skipped', e);
        }).then(function () {
            self.scheduleFrame(Math.max(0, interval - (Date.now() - t0)));
        });
    };

    FaceCaptureClient.prototype.stopFrames = function () {
        this.capturing = false;
        clearTimeout(this.timer);
        this.timer = null;
        if (this.video) {
            this.video.srcObject = null; /* the page owns the stream: only our element lets go */
            this.video = null;
        }
    };

    FaceCaptureClient.prototype.stop = function () {
        this.stopFrames();
        clearInterval(this.keepalive);
        this.keepalive = null;
    };

    FaceCaptureClient.prototype.disconnect = function () {
        var ws = this.ws;
        this.closed = true;
        this.stop();
        if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
        return new Promise(function (resolve) {
            var done = setTimeout(resolve, 1000);
            ws.addEventListener('close', function () {
                clearTimeout(done);
                resolve();
            });
            ws.close(1000, 'disconnect');
        });
    };
    FaceCaptureClient.prototype.abort = FaceCaptureClient.prototype.disconnect;

    function initFaceCaptureClient(options) {
        if (!options || !options.bioSessionId) return Promise.reject(new Error('initFaceCaptureClient: bioSessionId is required'));
        var client = new FaceCaptureClient(options);
        return client.connect();
    }

    /* The front camera (or the options' constraints); shown in the <video id=videoId> when given. */
    function getMediaStream(options) {
        options = options || {};
        var constraints = options.constraints || {
            audio: false,
            video: { facingMode: 'user', width: { ideal: 1280 }, height: { ideal: 720 } }
        };
        return navigator.mediaDevices.getUserMedia(constraints).then(function (stream) {
            var el = options.videoId && document.getElementById(options.videoId);
            if (el) {
                el.muted = true;
                el.playsInline = true;
                el.srcObject = stream;
                if (el.play) el.play().catch(function () {});
            }
            return stream;
        });
    }

    global.BioserverVideo = {
        version: VERSION,
        initFaceCaptureClient: initFaceCaptureClient,
        getMediaStream: getMediaStream
    };
})(typeof window !== 'undefined' ? window : this);
