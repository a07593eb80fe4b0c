/* RFC 6455 framing over an upgraded socket; see websocket.h. The socket is put in
 * non-blocking mode and every wait is a poll with a deadline, so a silent or slow
 * peer costs its stream thread a bounded time. */
#include "http/websocket.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/util.h"
#include "http/request.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_HEADER 14
#define WS_CONTROL_MAX 125
#define WS_SEND_TIMEOUT_MS 5000 /* a peer that does not read for this long is dropped */

struct ws_conn {
    int fd;
    uint8_t *in;               /* received, not yet consumed: [in_start, in_end) */
    size_t in_start, in_end, in_cap;
    uint8_t *msg;              /* the data message being assembled from fragments */
    size_t msg_len, msg_cap;
    int msg_opcode;            /* 0: no message in progress */
    size_t max_text, max_binary;
    bool close_sent;
};

bool ws_accept_key(const char *client_key, char out[WS_ACCEPT_LEN + 1]) {
    size_t n = 0;
    uint8_t *raw = client_key ? base64_decode(client_key, strlen(client_key), &n) : NULL;
    free(raw);
    if (n != 16) return false;
    char joined[64];
    size_t klen = strlen(client_key);
    if (klen + sizeof WS_GUID > sizeof joined) return false;
    memcpy(joined, client_key, klen);
    memcpy(joined + klen, WS_GUID, sizeof WS_GUID - 1);
    uint8_t digest[SHA_DIGEST_LENGTH];
    SHA1((const uint8_t *)joined, klen + sizeof WS_GUID - 1, digest);
    char *b64 = base64_encode(digest, sizeof digest);
    if (!b64) return false;
    bool ok = strlen(b64) == WS_ACCEPT_LEN;
    if (ok) memcpy(out, b64, WS_ACCEPT_LEN + 1);
    free(b64);
    return ok;
}

/* True when the comma-separated header value lists token (any case). */
static bool has_token(const char *value, const char *token) {
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *end = p;
        while (*end && *end != ',') end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) last--;
        if ((size_t)(last - p) == n && !strncasecmp(p, token, n)) return true;
        p = end;
    }
    return false;
}

const char *ws_handshake_check(const struct http_request *req, char accept[WS_ACCEPT_LEN + 1]) {
    if (!has_token(http_header_value(req, "Upgrade"), "websocket"))
        return "this resource is a WebSocket: send Upgrade: websocket";
    if (!has_token(http_header_value(req, "Connection"), "upgrade"))
        return "this resource is a WebSocket: send Connection: Upgrade";
    const char *version = http_header_value(req, "Sec-WebSocket-Version");
    if (!version || strcmp(version, "13")) return "only WebSocket version 13 is supported (Sec-WebSocket-Version: 13)";
    if (!ws_accept_key(http_header_value(req, "Sec-WebSocket-Key"), accept))
        return "Sec-WebSocket-Key must be base64 of 16 bytes";
    return NULL;
}

int ws_parse_header(const uint8_t *buf, size_t len, ws_frame_header *h) {
    if (len < 2) return 0;
    memset(h, 0, sizeof *h);
    h->fin = buf[0] & 0x80;
    h->opcode = buf[0] & 0x0f;
    h->masked = buf[1] & 0x80;
    if (buf[0] & 0x70) return WS_ERR_PROTOCOL; /* no extension was negotiated */
    bool control = h->opcode & 0x8;
    if ((h->opcode > WS_OPCODE_BINARY && !control) || h->opcode > WS_OPCODE_PONG) return WS_ERR_PROTOCOL;
    uint64_t n = buf[1] & 0x7f;
    size_t at = 2;
    if (n == 126) {
        if (len < 4) return 0;
        n = (uint64_t)buf[2] << 8 | buf[3];
        at = 4;
    } else if (n == 127) {
        if (len < 10) return 0;
        n = 0;
        for (int i = 0; i < 8; i++) n = n << 8 | buf[2 + i];
        if (n >> 63) return WS_ERR_PROTOCOL;
        at = 10;
    }
    if (control && (!h->fin || n > WS_CONTROL_MAX)) return WS_ERR_PROTOCOL;
    if (h->masked) {
        if (len < at + 4) return 0;
        memcpy(h->mask, buf + at, 4);
        at += 4;
    }
    h->payload_len = n;
    h->header_len = at;
    return (int)at;
}

size_t ws_encode_header(uint8_t out[10], int opcode, bool fin, uint64_t len) {
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

ws_conn *ws_conn_create(int fd, const char *extra, size_t extra_len, size_t max_text, size_t max_binary) {
    ws_conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->fd = fd;
    c->max_text = max_text;
    c->max_binary = max_binary;
    c->in_cap = extra_len > 4096 ? extra_len : 4096;
    c->in = malloc(c->in_cap);
    if (!c->in) {
        free(c);
        return NULL;
    }
    if (extra_len) memcpy(c->in, extra, extra_len);
    c->in_end = extra_len;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    return c;
}

void ws_conn_free(ws_conn *c) {
    if (!c) return;
    free(c->in);
    free(c->msg);
    free(c);
}

int ws_conn_fd(const ws_conn *c) { return c->fd; }

static int wait_fd(int fd, short events, int64_t deadline_ms) {
    for (;;) {
        int64_t left = deadline_ms - time_monotonic_ms();
        if (left <= 0) return WS_ERR_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r > 0) return (p.revents & (POLLERR | POLLNVAL)) && !(p.revents & events) ? WS_ERR_IO : WS_OK;
        if (r < 0 && errno != EINTR) return WS_ERR_IO;
    }
}

static int send_all(ws_conn *c, const uint8_t *data, size_t len) {
    int64_t deadline = time_monotonic_ms() + WS_SEND_TIMEOUT_MS;
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return WS_ERR_IO;
        int rc = wait_fd(c->fd, POLLOUT, deadline);
        if (rc) return rc;
    }
    return WS_OK;
}

static int send_frame(ws_conn *c, int opcode, const uint8_t *payload, size_t len) {
    uint8_t head[10];
    size_t hl = ws_encode_header(head, opcode, true, len);
    int rc = send_all(c, head, hl);
    return rc ? rc : send_all(c, payload, len);
}

int ws_send_text(ws_conn *c, const char *text, size_t len) {
    return send_frame(c, WS_OPCODE_TEXT, (const uint8_t *)text, len);
}

int ws_send_close(ws_conn *c, uint16_t code, const char *reason) {
    if (c->close_sent) return WS_OK;
    c->close_sent = true;
    uint8_t body[WS_CONTROL_MAX];
    body[0] = (uint8_t)(code >> 8);
    body[1] = (uint8_t)code;
    size_t n = reason ? strlen(reason) : 0;
    if (n > sizeof body - 2) n = sizeof body - 2;
    while (n > 0 && ((uint8_t)reason[n] & 0xc0) == 0x80) n--; /* never cut a UTF-8 sequence */
    if (n) memcpy(body + 2, reason, n);
    return send_frame(c, WS_OPCODE_CLOSE, body, n + 2);
}

/* Makes room for `want` buffered bytes, compacting first; false past the cap. */
static bool reserve_in(ws_conn *c, size_t want) {
    if (c->in_start) {
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
    }
    if (want <= c->in_cap) return true;
    size_t cap = c->in_cap;
    while (cap < want) cap *= 2;
    uint8_t *p = realloc(c->in, cap);
    if (!p) return false;
    c->in = p;
    c->in_cap = cap;
    return true;
}

/* Reads more bytes into the buffer (at least one) before the deadline. */
static int fill(ws_conn *c, size_t want, int64_t deadline_ms) {
    if (!reserve_in(c, want)) return WS_ERR_NOMEM;
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_end, c->in_cap - c->in_end, 0);
        if (n > 0) {
            c->in_end += (size_t)n;
            return WS_OK;
        }
        if (n == 0) return WS_ERR_CLOSED;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return WS_ERR_IO;
        int rc = wait_fd(c->fd, POLLIN, deadline_ms);
        if (rc) return rc;
    }
}

bool ws_readable(ws_conn *c, int timeout_ms) {
    ws_frame_header h;
    size_t have = c->in_end - c->in_start;
    int hl = ws_parse_header(c->in + c->in_start, have, &h);
    if (hl != 0) return true; /* a header (or an error) is waiting */
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

/* Appends a data fragment to the message being assembled, within its limit. */
static int append_fragment(ws_conn *c, const uint8_t *data, size_t len) {
    size_t limit = c->msg_opcode == WS_OPCODE_TEXT ? c->max_text : c->max_binary;
    if (c->msg_len + len > limit) return WS_ERR_TOO_BIG;
    if (c->msg_len + len + 1 > c->msg_cap) {
        size_t cap = c->msg_cap ? c->msg_cap : 4096;
        while (cap < c->msg_len + len + 1) cap *= 2;
        if (cap > limit + 1) cap = limit + 1;
        uint8_t *p = realloc(c->msg, cap);
        if (!p) return WS_ERR_NOMEM;
        c->msg = p;
        c->msg_cap = cap;
    }
    memcpy(c->msg + c->msg_len, data, len);
    c->msg_len += len;
    c->msg[c->msg_len] = 0;
    return WS_OK;
}

/* A control frame in the middle of the stream: answer pings and closes. */
static int handle_control(ws_conn *c, const ws_frame_header *h, const uint8_t *payload) {
    if (h->opcode == WS_OPCODE_PING) return send_frame(c, WS_OPCODE_PONG, payload, (size_t)h->payload_len);
    if (h->opcode == WS_OPCODE_CLOSE) {
        if (h->payload_len == 1) return WS_ERR_PROTOCOL;
        ws_send_close(c, WS_CLOSE_NORMAL, NULL);
        return WS_ERR_CLOSED;
    }
    return WS_OK; /* pong */
}

/* Checks a frame's place in the message sequence and its size against the limit
 * before its payload is read, so an oversized message is refused from its header. */
static int check_frame(const ws_conn *c, const ws_frame_header *h) {
    if (!h->masked) return WS_ERR_PROTOCOL; /* RFC 6455 5.1: clients mask every frame */
    if (h->opcode & 0x8) return WS_OK;
    if (h->opcode == WS_OPCODE_CONTINUATION ? !c->msg_opcode : c->msg_opcode) return WS_ERR_PROTOCOL;
    int op = h->opcode ? h->opcode : c->msg_opcode;
    size_t limit = op == WS_OPCODE_TEXT ? c->max_text : c->max_binary;
    return h->payload_len > limit - c->msg_len ? WS_ERR_TOO_BIG : WS_OK;
}

int ws_read_message(ws_conn *c, int64_t deadline_ms, ws_message *out) {
    if (c->msg_opcode == -1) c->msg_opcode = 0; /* the previous message was handed out */
    c->msg_len = 0;
    for (;;) {
        ws_frame_header h;
        int hl;
        while ((hl = ws_parse_header(c->in + c->in_start, c->in_end - c->in_start, &h)) == 0) {
            int rc = fill(c, c->in_end - c->in_start + WS_MAX_HEADER, deadline_ms);
            if (rc) return rc;
        }
        if (hl < 0) return hl;
        int rc = check_frame(c, &h);
        if (rc) return rc;
        size_t total = (size_t)h.header_len + (size_t)h.payload_len;
        while (c->in_end - c->in_start < total) {
            rc = fill(c, total, deadline_ms);
            if (rc) return rc;
        }
        uint8_t *payload = c->in + c->in_start + h.header_len;
        for (size_t i = 0; i < h.payload_len; i++) payload[i] ^= h.mask[i & 3];
        c->in_start += total;
        if (h.opcode & 0x8) {
            rc = handle_control(c, &h, payload);
            if (rc) return rc;
            continue;
        }
        if (h.opcode) c->msg_opcode = h.opcode;
        rc = append_fragment(c, payload, (size_t)h.payload_len);
        if (rc) return rc;
        if (!h.fin) continue;
        out->opcode = c->msg_opcode;
        out->data = c->msg ? c->msg : (const uint8_t *)"";
        out->len = c->msg_len;
        c->msg_opcode = -1;
        return WS_OK;
    }
}

void ws_linger(ws_conn *c, int timeout_ms, size_t max_bytes) {
    /* Closing a socket with unread input makes the kernel send a reset, and the peer
     * may lose our last messages (the error, the close frame) before reading them. */
    shutdown(c->fd, SHUT_WR);
    int64_t deadline = time_monotonic_ms() + timeout_ms;
    uint8_t sink[16384];
    for (size_t drained = 0; drained < max_bytes;) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n > 0) {
            drained += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return;
        if (wait_fd(c->fd, POLLIN, deadline)) return;
    }
}

uint16_t ws_close_code_for(int err) {
    switch (err) {
    case WS_ERR_TOO_BIG: return WS_CLOSE_TOO_BIG;
    case WS_ERR_PROTOCOL: return WS_CLOSE_PROTOCOL;
    default: return 1011; /* internal error */
    }
}
