/* bioserver WebCapture SDK: connectivity check (the BioserverNetworkCheck global).
 *
 * A capture streams the camera to the server, so a page checks the link first:
 *
 *   BioserverNetworkCheck.connectivityMeasure({
 *       latencyURL,            // GET, answered at once ({video_server_path}/network-latency)
 *       uploadURL,             // POST, bytes counted and dropped ({video_server_path}/network-speed)
 *       downloadURL,           // optional GET of some payload; absent: download not measured
 *       onNetworkCheckUpdate,  // called once with the measure (below)
 *       errorFn                // called with an Error when a request fails; without it,
 *                              // onNetworkCheckUpdate() is called with no argument
 *   })
 *
 * The measure: { latencyMs, upload, download, goodConnectivity }, speeds in kb/s
 * (kilobits per second, integers), download undefined unless downloadURL was given.
 * goodConnectivity = latency <= LATENCY_THRESHOLD and upload >= UPLOAD_SPEED_THRESHOLD
 * (and download >= DOWNLOAD_SPEED_THRESHOLD when measured): the published
 * requirements of IDEMIA's WebCapture SDK for face capture (400 kb/s each way,
 * 500 ms at most). When the latency alone is already too high the upload is not
 * tried (upload undefined, goodConnectivity false): the page shows the weak-network
 * screen at once.
 *
 * How: the latency is the median of LATENCY_PROBES round trips after one warm-up
 * (which opens the connection); the upload sends UPLOAD_BYTES of random data (so no
 * proxy can compress it) and takes the time of the POST minus one round trip
 * (at most half of it). An
 * upload slower than REQUEST_TIMEOUT_MS is cut off and reported as at most what
 * that time allows, which is below the threshold. */
(function (global) {
    'use strict';

    var LATENCY_PROBES = 3;
    var UPLOAD_BYTES = 256 * 1024; /* 5 s at the threshold; the server's cap is 2 MiB */
    var REQUEST_TIMEOUT_MS = 10000;

    function now() {
        return global.performance && global.performance.now ? global.performance.now() : Date.now();
    }

    function withTimeout(url, init, onTimeout) {
        var ctl = typeof global.AbortController === 'function' ? new global.AbortController() : null;
        var timer = setTimeout(function () {
            onTimeout();
            if (ctl) ctl.abort();
        }, REQUEST_TIMEOUT_MS);
        init.cache = 'no-store';
        init.mode = 'cors';
        init.credentials = 'omit';
        if (ctl) init.signal = ctl.signal;
        return global.fetch(url, init).then(function (r) {
            clearTimeout(timer);
            if (!r.ok) throw new Error(init.method + ' ' + url + ' answered ' + r.status);
            return r;
        }, function (e) {
            clearTimeout(timer);
            throw e;
        });
    }

    function roundTrip(url) {
        var t0 = now();
        return withTimeout(url, { method: 'GET' }, function () {}).then(function (r) {
            return r.arrayBuffer().then(function () { return now() - t0; });
        });
    }

    function measureLatency(url) {
        var times = [];
        var chain = roundTrip(url); /* warm-up: DNS, TCP, TLS */
        for (var i = 0; i < LATENCY_PROBES; i++) {
            chain = chain.then(function () { return roundTrip(url); }).then(function (ms) { times.push(ms); });
        }
        return chain.then(function () {
            times.sort(function (a, b) { return a - b; });
            return times[Math.floor(times.length / 2)];
        });
    }

    function randomBytes(n) {
        var out = new Uint8Array(n);
        for (var off = 0; off < n; off += 65536) { /* getRandomValues takes 64 KiB at most */
            global.crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
        }
        return out;
    }

    function kbps(bytes, ms) {
        return Math.max(0, Math.floor(bytes * 8 / Math.max(ms, 1)));  /* bits per ms = kb/s */
    }

    /* The transfer's share of a request's time: minus one round trip, but never
     * less than half of it (on a fast link the round trip is all there is). */
    function uploadTime(elapsedMs, latencyMs) {
        return Math.max(elapsedMs - latencyMs, elapsedMs / 2);
    }

    function measureUpload(url, latencyMs) {
        var body = randomBytes(UPLOAD_BYTES);
        var timedOut = false;
        var t0 = now();
        /* An ArrayBuffer body sends no Content-Type: a simple request, no CORS preflight. */
        return withTimeout(url, { method: 'POST', body: body.buffer }, function () { timedOut = true; })
            .then(function (r) {
                return r.json().then(function (answer) {
                    if (answer && answer.receivedBytes !== UPLOAD_BYTES) {
                        throw new Error('the server received ' + answer.receivedBytes + ' of ' + UPLOAD_BYTES + ' bytes');
                    }
                    return kbps(UPLOAD_BYTES, uploadTime(now() - t0, latencyMs));
                });
            }, function (e) {
                if (timedOut) return kbps(UPLOAD_BYTES, REQUEST_TIMEOUT_MS); /* an upper bound */
                throw e;
            });
    }

    function measureDownload(url, latencyMs) {
        var t0 = now();
        return withTimeout(url, { method: 'GET' }, function () {}).then(function (r) {
            return r.arrayBuffer().then(function (buf) { return kbps(buf.byteLength, uploadTime(now() - t0, latencyMs)); });
        });
    }

    function connectivityMeasure(options) {
        var opts = options || {};
        var report = typeof opts.onNetworkCheckUpdate === 'function' ? opts.onNetworkCheckUpdate : function () {};
        var fail = function (err) {
            if (typeof opts.errorFn === 'function') opts.errorFn(err);
            else report();
        };
        if (!opts.latencyURL || !opts.uploadURL || typeof global.fetch !== 'function') {
            fail(new Error('connectivityMeasure needs latencyURL, uploadURL and a browser with fetch'));
            return;
        }
        var api = global.BioserverNetworkCheck;
        var result = { latencyMs: undefined, upload: undefined, download: undefined, goodConnectivity: false };
        measureLatency(opts.latencyURL).then(function (latency) {
            result.latencyMs = Math.round(latency);
            if (latency > api.LATENCY_THRESHOLD) return null;
            return measureUpload(opts.uploadURL, latency).then(function (up) {
                result.upload = up;
                return opts.downloadURL ? measureDownload(opts.downloadURL, latency) : undefined;
            }).then(function (down) {
                result.download = down;
                result.goodConnectivity = result.upload >= api.UPLOAD_SPEED_THRESHOLD &&
                    (down === undefined || down >= api.DOWNLOAD_SPEED_THRESHOLD);
            });
        }).then(function () { report(result); }, fail);
    }

    global.BioserverNetworkCheck = {
        UPLOAD_SPEED_THRESHOLD: 400,   /* kb/s */
        DOWNLOAD_SPEED_THRESHOLD: 400, /* kb/s */
        LATENCY_THRESHOLD: 500,        /* ms */
        connectivityMeasure: connectivityMeasure
    };
}(typeof window !== 'undefined' ? window : this));
