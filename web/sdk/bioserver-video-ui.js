/* bioserver WebCapture SDK: drawing helpers for capture pages (the BioserverVideoUI global).
 *
 * Pages call these with what the capture client gives them (tracking information,
 * the best image's info) and with the face image they read through their backend;
 * nothing here talks to a server. Elements are named by id ("best-image") or by CSS
 * selector (".best-image"); a missing element is ignored, never an exception, so a
 * page's own layout changes cannot break a capture.
 *
 * Best image
 *   displayBestImage(blob, bestImageInfo, element)            the image, centred on the face
 *   displayAndCenterBestImage(blob, bestImageInfo, element)   same (passive and active pages)
 *   displayPassiveVideoBestImage(blob, bestImageInfo, element, graphicOptions)
 *        same, framed by an oval; graphicOptions.oval.borderColor (default white)
 *   resetBestImage()                                           clears every image shown above
 *   An <img> element gets the image as its src; any other element as its background,
 *   scaled and positioned so the face box is in the middle. bestImageInfo (from the
 *   capture client's showChallengeResult) is optional; its face box may be given as
 *   {boxX, boxY, boxW, boxH} (the faces API's imageInfo) or {x, y, width, height},
 *   in pixels of the image.
 *
 * Passive video: an oval guide over the video
 *   initPassiveVideoGraphics(videoId), displayPassiveVideoAnimation(trackingInfo),
 *   stopPassiveVideoAnimation(). The oval turns green while the face is in place
 *   (tracking information with a face and no positionInfo other than
 *   TRACKER_POSITION_INFO_GOOD) and shows trackingInfo.progress (0..1) when given.
 *
 * Active liveness: the challenge targets over the video
 *   updateLivenessActiveGraphics(videoId, trackingInfo), resetLivenessActiveGraphics(options)
 *   Draws the face box (facex, facey, facew, faceh, in video pixels) and, from
 *   trackingInfo.livenessActive (docs/capture-stream.md), one circle per challenge
 *   beside the face (challengeCircles[i].pos "left"/"right"), the current one
 *   (targetChallengeIndex) bright, green while targetOnHover, a line from the face
 *   to it and options.tooltip.text above it (when tooltip.enabled).
 *   reset removes the drawing and keeps the options for the next challenge. */
(function (global) {
    'use strict';

    var doc = global.document;
    var MIN_SIDE = 160; /* px */
    var shown = []; /* elements showing a best image, with their object URLs */
    var passive = null; /* {video, canvas} */
    var active = { canvas: null, options: {} };

    function element(ref) {
        if (!ref) return null;
        if (typeof ref !== 'string') return ref;
        return doc.getElementById(ref.replace(/^#/, '')) || doc.querySelector(ref);
    }

    function faceBox(info) {
        if (!info) return null;
        var box = {
            x: Number(info.boxX !== undefined ? info.boxX : info.x),
            y: Number(info.boxY !== undefined ? info.boxY : info.y),
            w: Number(info.boxW !== undefined ? info.boxW : info.width),
            h: Number(info.boxH !== undefined ? info.boxH : info.height)
        };
        return box.w > 0 && box.h > 0 && isFinite(box.x) && isFinite(box.y) ? box : null;
    }

    /* Background size and position that put the face box in the middle, the face
     * taking about half of the element's height (the whole image when no box). */
    function centre(el, img, box) {
        var w = el.clientWidth || 200, h = el.clientHeight || 200;
        if (!box) {
            el.style.backgroundSize = 'cover';
            el.style.backgroundPosition = 'center';
            return;
        }
        var scale = Math.max(w / img.naturalWidth, h / img.naturalHeight, (h * 0.5) / box.h);
        var cx = (box.x + box.w / 2) * scale, cy = (box.y + box.h / 2) * scale;
        el.style.backgroundSize = Math.round(img.naturalWidth * scale) + 'px ' + Math.round(img.naturalHeight * scale) + 'px';
        el.style.backgroundPosition = Math.round(w / 2 - cx) + 'px ' + Math.round(h / 2 - cy) + 'px';
    }

    function show(blob, info, ref, graphicOptions) {
        var el = element(ref);
        if (!el || !blob) return;
        var url = global.URL.createObjectURL(blob);
        shown.push({ el: el, url: url });
        if (el.tagName === 'IMG') {
            el.src = url;
            return;
        }
        el.style.backgroundImage = 'url("' + url + '")';
        el.style.backgroundRepeat = 'no-repeat';
        /* The pages' containers may hold only an icon: give the image room to be seen. */
        if (el.clientHeight < MIN_SIDE) el.style.minHeight = MIN_SIDE + 'px';
        if (el.clientWidth < MIN_SIDE) el.style.minWidth = MIN_SIDE + 'px';
        el.setAttribute('data-best-image', 'shown');
        if (graphicOptions) {
            var oval = graphicOptions.oval || {};
            el.style.borderRadius = '50%';
            el.style.border = '4px solid ' + (oval.borderColor || '#ffffff');
        }
        var img = new global.Image();
        img.onload = function () { centre(el, img, faceBox(info)); };
        img.src = url;
    }

    function resetBestImage() {
        shown.forEach(function (s) {
            if (s.el.tagName === 'IMG') s.el.removeAttribute('src');
            else {
                s.el.style.backgroundImage = '';
                s.el.removeAttribute('data-best-image');
            }
            global.URL.revokeObjectURL(s.url);
        });
        shown = [];
    }

    /* A canvas laid over the video, the size of the video element. */
    function overlay(video) {
        var c = doc.createElement('canvas');
        c.className = 'bioserver-video-overlay';
        c.style.position = 'absolute';
        c.style.pointerEvents = 'none';
        c.style.zIndex = '98';
        var parent = video.parentNode;
        if (global.getComputedStyle(parent).position === 'static') parent.style.position = 'relative';
        parent.appendChild(c);
        fit(c, video);
        return c;
    }

    function fit(c, video) {
        c.style.left = video.offsetLeft + 'px';
        c.style.top = video.offsetTop + 'px';
        c.width = video.clientWidth;
        c.height = video.clientHeight;
    }

    /* Video pixels to element pixels, for object-fit: cover (the pages' style). */
    function mapper(video) {
        var vw = video.videoWidth || 1, vh = video.videoHeight || 1;
        var s = Math.max(video.clientWidth / vw, video.clientHeight / vh);
        var dx = (video.clientWidth - vw * s) / 2, dy = (video.clientHeight - vh * s) / 2;
        return function (x, y) { return [x * s + dx, y * s + dy, s]; };
    }

    function initPassiveVideoGraphics(videoId) {
        stopPassiveVideoAnimation();
        var video = element(videoId);
        if (video) passive = { video: video, canvas: overlay(video) };
    }

    function displayPassiveVideoAnimation(info) {
        if (!passive || !info) return;
        var c = passive.canvas, g = c.getContext('2d');
        fit(c, passive.video);
        g.clearRect(0, 0, c.width, c.height);
        var rx = c.width * 0.3, ry = c.height * 0.32, cx = c.width / 2, cy = c.height * 0.45;
        var inPlace = info.facew > 0 && info.faceh > 0 &&
            (!info.positionInfo || info.positionInfo === 'TRACKER_POSITION_INFO_GOOD');
        g.lineWidth = 4;
        g.strokeStyle = inPlace ? '#32c850' : '#ffffff';
        g.beginPath();
        g.ellipse(cx, cy, rx, ry, 0, 0, 2 * Math.PI);
        g.stroke();
        if (typeof info.progress === 'number' && info.progress > 0) {
            g.strokeStyle = '#32c850';
            g.lineWidth = 8;
            g.beginPath();
            g.ellipse(cx, cy, rx + 6, ry + 6, 0, -Math.PI / 2, -Math.PI / 2 + 2 * Math.PI * Math.min(1, info.progress));
            g.stroke();
        }
    }

    function stopPassiveVideoAnimation() {
        if (passive && passive.canvas.parentNode) passive.canvas.parentNode.removeChild(passive.canvas);
        passive = null;
    }

    /* The challenge circles sit beside the face: the user's left is the image's
     * right (the video is the unmirrored camera image, docs/capture-stream.md). */
    function updateLivenessActiveGraphics(videoId, info) {
        var video = element(videoId);
        if (!video || !info) return;
        if (!active.canvas || active.canvas.parentNode !== video.parentNode) active.canvas = overlay(video);
        var c = active.canvas, g = c.getContext('2d'), at = mapper(video);
        fit(c, video);
        g.clearRect(0, 0, c.width, c.height);
        if (!(info.facew > 0 && info.faceh > 0)) return;
        var f = at(info.facex || 0, info.facey || 0), s = f[2];
        var fw = info.facew * s, fh = info.faceh * s, cx = f[0] + fw / 2, cy = f[1] + fh / 2;
        g.strokeStyle = 'rgba(255,255,255,0.6)';
        g.lineWidth = 2;
        g.strokeRect(f[0], f[1], fw, fh);
        var la = info.livenessActive;
        if (!la || !la.challengeCircles) return;
        var target = null, r = Math.max(10, fw * 0.12);
        la.challengeCircles.forEach(function (circle, i) {
            var x = cx + (circle.pos === 'left' ? 1 : -1) * fw * 1.1;
            var current = i === la.targetChallengeIndex;
            g.fillStyle = current ? (la.targetOnHover ? '#32c850' : '#ffffff') : 'rgba(255,255,255,0.35)';
            g.beginPath();
            g.arc(x, cy, r, 0, 2 * Math.PI);
            g.fill();
            if (current) target = x;
        });
        if (target === null) return;
        g.strokeStyle = '#ffffff';
        g.lineWidth = 4;
        g.beginPath();
        g.moveTo(cx, cy);
        g.lineTo(target, cy);
        g.stroke();
        var tip = active.options.tooltip;
        if (tip && tip.enabled && tip.text) {
            g.font = '16px sans-serif';
            g.fillStyle = '#ffffff';
            g.fillText(tip.text, Math.max(4, Math.min(target - 60, c.width - 160)), Math.max(20, cy - r - 8), 160);
        }
    }

    function resetLivenessActiveGraphics(options) {
        if (active.canvas && active.canvas.parentNode) active.canvas.parentNode.removeChild(active.canvas);
        active.canvas = null;
        if (options) active.options = options;
    }

    global.BioserverVideoUI = {
        displayBestImage: function (blob, info, ref) { show(blob, info, ref); },
        displayAndCenterBestImage: function (blob, info, ref) { show(blob, info, ref); },
        displayPassiveVideoBestImage: function (blob, info, ref, graphicOptions) {
            show(blob, info, ref, graphicOptions || { oval: {} });
        },
        resetBestImage: resetBestImage,
        initPassiveVideoGraphics: initPassiveVideoGraphics,
        displayPassiveVideoAnimation: displayPassiveVideoAnimation,
        stopPassiveVideoAnimation: stopPassiveVideoAnimation,
        updateLivenessActiveGraphics: updateLivenessActiveGraphics,
        resetLivenessActiveGraphics: resetLivenessActiveGraphics
    };
}(typeof window !== 'undefined' ? window : this));
