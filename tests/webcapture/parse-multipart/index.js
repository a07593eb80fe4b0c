'use strict';
// Local stand-in for the npm package parse-multipart (no longer published), which the
// WebCapture demo (../shared/clients/webcapture-demo) requires only in server/gips-api.js:
//     const boundary = multipart.getBoundary(res.headers.get('content-type'));
//     const parts = multipart.Parse(multiPartBodyBuffer, boundary);
//     return parts[0].data;
// Same interface as the original: getBoundary(contentTypeHeader) -> string and
// Parse(bodyBuffer, boundary) -> [{ filename, type, data: Buffer }] (plus `name`).

function getBoundary(header) {
    for (const item of String(header || '').split(';')) {
        const m = /^\s*boundary\s*=\s*(.*?)\s*$/i.exec(item);
        if (m) {
            return m[1].replace(/^"(.*)"$/, '$1');
        }
    }
    return '';
}

function parseHeaders(text) {
    const headers = {};
    for (const line of text.split('\r\n')) {
        const i = line.indexOf(':');
        if (i > 0) {
            headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
        }
    }
    return headers;
}

function dispositionParam(disposition, key) {
    const m = new RegExp(`;\\s*${key}="([^"]*)"`, 'i').exec(disposition || '') ||
              new RegExp(`;\\s*${key}=([^;]*)`, 'i').exec(disposition || '');
    return m ? m[1].trim() : undefined;
}

function Parse(body, boundary) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const delimiter = Buffer.from(`--${boundary}`);
    const parts = [];
    let pos = buf.indexOf(delimiter);
    while (pos !== -1) {
        let start = pos + delimiter.length;
        if (buf.slice(start, start + 2).toString() === '--') {
            break; // closing delimiter
        }
        if (buf.slice(start, start + 2).toString() === '\r\n') {
            start += 2;
        }
        const next = buf.indexOf(delimiter, start);
        if (next === -1) {
            break;
        }
        let end = next;
        if (end >= 2 && buf[end - 2] === 0x0d && buf[end - 1] === 0x0a) {
            end -= 2; // the CRLF before the delimiter belongs to it
        }
        const headEnd = buf.indexOf('\r\n\r\n', start);
        if (headEnd !== -1 && headEnd <= end) {
            const headers = parseHeaders(buf.slice(start, headEnd).toString('latin1'));
            const disposition = headers['content-disposition'];
            parts.push({
                name: dispositionParam(disposition, 'name'),
                filename: dispositionParam(disposition, 'filename'),
                type: headers['content-type'],
                data: buf.slice(headEnd + 4, end)
            });
        }
        pos = next;
    }
    return parts;
}

module.exports = { getBoundary, Parse };
