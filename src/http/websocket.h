/* WebSocket (RFC 6455) on a socket that libmicrohttpd has handed over after an
 * upgrade: the handshake's accept key, reading whole messages (client frames must be
 * masked; fragments are joined; pings are answered; every size has a limit) and
 * sending text and close frames. One thread owns a ws_conn; nothing here locks.
 * Errors are negative WS_ERR_* codes, each with the close code it maps to
 * (ws_close_code_for). The server never sends binary or fragmented messages. */
#ifndef HTTP_WEBSOCKET_H
#define HTTP_WEBSOCKET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

enum {
    WS_OPCODE_CONTINUATION = 0x0,
    WS_OPCODE_TEXT = 0x1,
    WS_OPCODE_BINARY = 0x2,
    WS_OPCODE_CLOSE = 0x8,
    WS_OPCODE_PING = 0x9,
    WS_OPCODE_PONG = 0xA,
};

enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_TOO_BIG = 1009,
};

enum {
    WS_OK = 0,
    WS_ERR_TIMEOUT = -1,   /* nothing complete before the deadline */
    WS_ERR_CLOSED = -2,    /* the peer closed the socket or sent a close frame */
    WS_ERR_PROTOCOL = -3,  /* unmasked frame, reserved bits/opcode, bad control frame, bad sequence */
    WS_ERR_TOO_BIG = -4,   /* a message over its limit */
    WS_ERR_IO = -5,
    WS_ERR_NOMEM = -6,
};

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key; false when the key is not
 * base64 of 16 bytes (the handshake is then refused). */
bool ws_accept_key(const char *client_key, char out[WS_ACCEPT_LEN + 1]);

struct http_request;
/* Checks an upgrade request's WebSocket headers (Upgrade: websocket, Connection:
 * upgrade, Sec-WebSocket-Version: 13, a valid Sec-WebSocket-Key) and computes the
 * accept key. NULL when they hold, else what is wrong (for a 426). */
const char *ws_handshake_check(const struct http_request *req, char accept[WS_ACCEPT_LEN + 1]);

/* A parsed frame header (pure: tests feed it bytes). */
typedef struct {
    bool fin;
    int opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t payload_len;
    size_t header_len;
} ws_frame_header;

/* Parses the header at buf: > 0 = its length (h filled), 0 = need more bytes,
 * WS_ERR_PROTOCOL for reserved bits or opcodes, a control frame that is fragmented
 * or longer than 125 bytes, or a non-minimal 64-bit length with the top bit set. */
int ws_parse_header(const uint8_t *buf, size_t len, ws_frame_header *h);

/* Writes an unmasked server frame header for a payload of len bytes into out (at
 * most 10 bytes); returns its length. */
size_t ws_encode_header(uint8_t out[10], int opcode, bool fin, uint64_t len);

typedef struct ws_conn ws_conn;

/* Works on the socket (never closes it: the HTTP server does) and the bytes that
 * arrived after the handshake headers (copied). Limits: the largest text and
 * binary message; a buffer of at most their maximum is ever held. */
ws_conn *ws_conn_create(int fd, const char *extra, size_t extra_len, size_t max_text, size_t max_binary);
void ws_conn_free(ws_conn *c);
int ws_conn_fd(const ws_conn *c);

typedef struct {
    int opcode;            /* WS_OPCODE_TEXT or WS_OPCODE_BINARY */
    const uint8_t *data;   /* valid until the next ws_read_message; text is NUL-terminated */
    size_t len;
} ws_message;

/* Reads the next data message, answering pings and skipping pongs on the way,
 * until deadline_ms (time_monotonic_ms clock). On a close frame from the peer it
 * answers the close and returns WS_ERR_CLOSED. */
int ws_read_message(ws_conn *c, int64_t deadline_ms, ws_message *out);

/* True when a complete frame is already buffered or the socket is readable. */
bool ws_readable(ws_conn *c, int timeout_ms);

int ws_send_text(ws_conn *c, const char *text, size_t len);
/* Sends a close frame with code and reason (truncated to fit 123 bytes); once. */
int ws_send_close(ws_conn *c, uint16_t code, const char *reason);

/* After the last message: stops sending and reads (discarding) until the peer
 * closes, timeout_ms pass or max_bytes were read, so that what was sent arrives. */
void ws_linger(ws_conn *c, int timeout_ms, size_t max_bytes);

/* The close code a reading error ends the stream with. */
uint16_t ws_close_code_for(int err);

#endif
