/* bioserver WebCapture SDK: environment check (the BioserverEnvironment global).
 *
 * BioserverEnvironment.detection() tells a capture page, before anything else runs,
 * whether this operating system and browser can do a capture. It is written in ES5
 * on purpose: it must run, and say "unsupported", in the old browsers it refuses.
 *
 * Result (what front/utils/detect-env.js of IDEMIA's WebCapture demo reads):
 *   {
 *     envDetected: {
 *       os:      { name, version, isMobile, isSupported, supportedList: ["Windows", ...] },
 *       browser: { name, version, isSupported, missingFeatures: [...],
 *                  supportedList: [{ name, minimumVersion }, ...] }   // for this OS
 *     },
 *     message   // set (and envDetected absent) only when nothing could be read
 *   }
 * supportedList values name the images of the demo's compatibility screen
 * (img/browsers/<name lower-cased, first space as '-'>.png, #<os id>).
 *
 * The minimum versions are those of IDEMIA's published requirements for the
 * WebCapture SDK (face autocapture): desktop Chrome 60, Firefox 79, Opera 57,
 * Edge 92, Safari 15 (Mac); Android Chrome 60, Firefox 79, Opera 57, Samsung 9,
 * Huawei 12, Edge 127; iOS Safari 15, Chrome 120, Firefox 129, Opera Touch 5,
 * Edge 125. A browser is also unsupported when it lacks what a capture needs
 * (camera access, WebSocket, fetch, Promise) whatever its version: that covers
 * embedded browsers and pages not served from a secure context. */
(function (global) {
    'use strict';

    var DESKTOP = ['Windows', 'Mac OS', 'Linux'];
    var MOBILE = ['Android', 'iOS'];
    var DESKTOP_BROWSERS = [
        { name: 'Chrome', minimumVersion: 60 }, { name: 'Firefox', minimumVersion: 79 },
        { name: 'Opera', minimumVersion: 57 }, { name: 'Edge', minimumVersion: 92 },
        { name: 'Brave', minimumVersion: 110 }
    ];
    var MAC_BROWSERS = DESKTOP_BROWSERS.concat([{ name: 'Safari', minimumVersion: 15 }]);
    var ANDROID_BROWSERS = [
        { name: 'Chrome', minimumVersion: 60 }, { name: 'Firefox', minimumVersion: 79 },
        { name: 'Opera', minimumVersion: 57 }, { name: 'Samsung Browser', minimumVersion: 9 },
        { name: 'HuaweiBrowser', minimumVersion: 12 }, { name: 'Brave', minimumVersion: 110 },
        { name: 'Edge', minimumVersion: 127 }
    ];
    var IOS_BROWSERS = [
        { name: 'Mobile Safari', minimumVersion: 15 }, { name: 'Chrome', minimumVersion: 120 },
        { name: 'Firefox', minimumVersion: 129 }, { name: 'Opera Touch', minimumVersion: 5 },
        { name: 'Edge', minimumVersion: 125 }
    ];

    function major(text) {
        var n = parseInt(text, 10);
        return isNaN(n) ? 0 : n;
    }

    function match(ua, re) {
        var m = re.exec(ua);
        return m ? m[1] : null;
    }

    /* iPadOS reports a Mac user agent; a touch screen gives it away. */
    function detectOs(ua, nav) {
        var v;
        if (/iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && nav.maxTouchPoints > 1)) {
            v = match(ua, /OS (\d+)[_.]\d/) || match(ua, /Version\/(\d+)/);
            return { name: 'iOS', version: v || '', isMobile: true };
        }
        if ((v = match(ua, /Android ([\d.]+)/)) !== null || /Android/.test(ua)) {
            return { name: 'Android', version: v || '', isMobile: true };
        }
        if ((v = match(ua, /Windows NT ([\d.]+)/)) !== null) return { name: 'Windows', version: v, isMobile: false };
        if ((v = match(ua, /Mac OS X ([\d_.]+)/)) !== null) {
            return { name: 'Mac OS', version: v.replace(/_/g, '.'), isMobile: false };
        }
        if (/Linux|X11|CrOS/.test(ua)) return { name: /Ubuntu/.test(ua) ? 'Ubuntu' : 'Linux', version: '', isMobile: false };
        return { name: 'unknown', version: '', isMobile: /Mobi/.test(ua) };
    }

    /* Order matters: Edge, Opera, Samsung and Huawei also say "Chrome", everyone says "Safari". */
    var BROWSERS = [
        ['Edge', /(?:Edg|EdgA|EdgiOS)\/([\d.]+)/],
        ['Opera Touch', /OPT\/([\d.]+)/],
        ['Opera', /(?:OPR|Opera)\/([\d.]+)/],
        ['Samsung Browser', /SamsungBrowser\/([\d.]+)/],
        ['HuaweiBrowser', /HuaweiBrowser\/([\d.]+)/],
        ['Firefox', /(?:Firefox|FxiOS)\/([\d.]+)/],
        ['Chrome', /(?:HeadlessChrome|Chrome|CriOS|Chromium)\/([\d.]+)/],
        ['Safari', /Version\/([\d.]+).*Safari/]
    ];

    function detectBrowser(ua, os, nav) {
        for (var i = 0; i < BROWSERS.length; i++) {
            var v = match(ua, BROWSERS[i][1]);
            if (v === null) continue;
            var name = BROWSERS[i][0];
            if (name === 'Safari' && os.name === 'iOS') name = 'Mobile Safari';
            if (name === 'Chrome' && nav.brave) name = 'Brave';
            /* Brave reports Chrome's version, so its minimum is checked against that. */
            return { name: name, version: v };
        }
        return { name: 'unknown', version: '' };
    }

    function supportedBrowsers(os) {
        if (os.name === 'iOS') return IOS_BROWSERS;
        if (os.name === 'Android') return ANDROID_BROWSERS;
        return os.name === 'Mac OS' ? MAC_BROWSERS : DESKTOP_BROWSERS;
    }

    /* What a capture needs from the browser, whatever its name. */
    function missingFeatures(win, nav) {
        var missing = [];
        if (!nav.mediaDevices || typeof nav.mediaDevices.getUserMedia !== 'function') missing.push('getUserMedia');
        if (typeof win.WebSocket !== 'function') missing.push('WebSocket');
        if (typeof win.fetch !== 'function') missing.push('fetch');
        if (typeof win.Promise !== 'function') missing.push('Promise');
        return missing;
    }

    function detection() {
        var nav = global.navigator;
        var ua = nav && nav.userAgent;
        if (!ua) return { message: 'The browser did not say what it is (no user agent): cannot check compatibility.' };
        var os = detectOs(ua, nav);
        os.supportedList = os.isMobile ? MOBILE.slice() : DESKTOP.slice();
        os.isSupported = os.name === 'Ubuntu' || os.supportedList.indexOf(os.name) >= 0;

        var browser = detectBrowser(ua, os, nav);
        var list = supportedBrowsers(os);
        browser.supportedList = list.slice();
        browser.missingFeatures = missingFeatures(global, nav);
        var minimum = null;
        for (var i = 0; i < list.length; i++) if (list[i].name === browser.name) minimum = list[i].minimumVersion;
        browser.isSupported = minimum !== null && major(browser.version) >= minimum &&
            browser.missingFeatures.length === 0;
        return { envDetected: { os: os, browser: browser } };
    }

    global.BioserverEnvironment = { detection: detection };
}(typeof window !== 'undefined' ? window : this));
