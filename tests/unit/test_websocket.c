/* WebSocket framing (http/websocket.h): the accept key of RFC 6455's example,
 * header parsing and its refusals, and whole messages read from a socketpair:
 * masking, fragments, pings answered in the middle of a message, size limits
 * checked from the header, close frames, time-outs and the bytes read with the
 * handshake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/util.h"
#include "http/websocket.h"

static void test_accept_key_rfc_example(void **state) {
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    assert_true(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out)); /* RFC 6455 section 1.3 */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_false(ws_accept_key("c2hvcnQ=", out)); /* 5 bytes, not 16 */
    assert_false(ws_accept_key("not base64 at all!!", out));
    assert_false(ws_accept_key(NULL, out));
}

static void test_parse_header(void **state) {
    (void)state;
    ws_frame_header h;
    const uint8_t small[] = {0x81, 0x85, 1, 2, 3, 4};
    assert_int_equal(ws_parse_header(small, 1, &h), 0);
    assert_int_equal(ws_parse_header(small, 5, &h), 0); /* the mask is incomplete */
    assert_int_equal(ws_parse_header(small, 6, &h), 6);
    assert_true(h.fin && h.masked);
    assert_int_equal(h.opcode, WS_OPCODE_TEXT);
    assert_int_equal(h.payload_len, 5);
    const uint8_t mid[] = {0x02, 0xFE, 0x01, 0x00, 9, 9, 9, 9};
    assert_int_equal(ws_parse_header(mid, sizeof mid, &h), 8);
    assert_false(h.fin);
    assert_int_equal(h.payload_len, 256);
    const uint8_t big[] = {0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4};
    assert_int_equal(ws_parse_header(big, sizeof big, &h), 14);
    assert_int_equal(h.payload_len, (uint64_t)1 << 32);
    const uint8_t top_bit[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    assert_int_equal(ws_parse_header(top_bit, sizeof top_bit, &h), WS_ERR_PROTOCOL);
    const uint8_t rsv[] = {0xC1, 0x80, 0, 0, 0, 0};
    assert_int_equal(ws_parse_header(rsv, sizeof rsv, &h), WS_ERR_PROTOCOL);
    const uint8_t opcode3[] = {0x83, 0x80, 0, 0, 0, 0};
    assert_int_equal(ws_parse_header(opcode3, sizeof opcode3, &h), WS_ERR_PROTOCOL);
    const uint8_t opcode11[] = {0x8B, 0x80, 0, 0, 0, 0};
    assert_int_equal(ws_parse_header(opcode11, sizeof opcode11, &h), WS_ERR_PROTOCOL);
    const uint8_t fragmented_ping[] = {0x09, 0x80, 0, 0, 0, 0};
    assert_int_equal(ws_parse_header(fragmented_ping, sizeof fragmented_ping, &h), WS_ERR_PROTOCOL);
    const uint8_t long_ping[] = {0x89, 0xFE, 0, 126, 0, 0, 0, 0};
    assert_int_equal(ws_parse_header(long_ping, sizeof long_ping, &h), WS_ERR_PROTOCOL);
}

static void test_encode_header_sizes(void **state) {
    (void)state;
    uint8_t out[10];
    ws_frame_header h;
    const uint64_t lens[] = {0, 125, 126, 65535, 65536, 1u << 20};
    const size_t expect[] = {2, 2, 4, 4, 10, 10};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        size_t n = ws_encode_header(out, WS_OPCODE_TEXT, true, lens[i]);
        assert_int_equal(n, expect[i]);
        assert_int_equal(ws_parse_header(out, n, &h), (int)n); /* server frames are unmasked */
        assert_int_equal(h.payload_len, lens[i]);
        assert_false(h.masked);
    }
}

/* A masked client frame. */
static size_t client_frame(uint8_t *out, int opcode, bool fin, const void *payload, size_t len) {
    size_t n = ws_encode_header(out, opcode, fin, len);
    out[1] |= 0x80;
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    memcpy(out + n, mask, 4);
    n += 4;
    for (size_t i = 0; i < len; i++) out[n + i] = ((const uint8_t *)payload)[i] ^ mask[i & 3];
    return n + len;
}

typedef struct {
    int sv[2];
    ws_conn *c;
} pair;

static int setup_pair(void **state) {
    pair *p = calloc(1, sizeof(*p));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->sv), 0);
    p->c = ws_conn_create(p->sv[0], "", 0, 64, 1000);
    *state = p;
    return 0;
}

static int teardown_pair(void **state) {
    pair *p = *state;
    ws_conn_free(p->c);
    close(p->sv[0]);
    close(p->sv[1]);
    free(p);
    return 0;
}

static int64_t soon(void) { return time_monotonic_ms() + 2000; }

static void test_masked_text_and_fragments_with_a_ping_between(void **state) {
    pair *p = *state;
    uint8_t buf[512];
    size_t n = client_frame(buf, WS_OPCODE_TEXT, true, "Hello", 5);
    n += client_frame(buf + n, WS_OPCODE_BINARY, false, "ab", 2);
    n += client_frame(buf + n, WS_OPCODE_PING, true, "p", 1);
    n += client_frame(buf + n, WS_OPCODE_CONTINUATION, false, "cd", 2);
    n += client_frame(buf + n, WS_OPCODE_CONTINUATION, true, "e", 1);
    assert_int_equal(write(p->sv[1], buf, n), (ssize_t)n);
    ws_message m;
    assert_int_equal(ws_read_message(p->c, soon(), &m), WS_OK);
    assert_int_equal(m.opcode, WS_OPCODE_TEXT);
    assert_string_equal((const char *)m.data, "Hello");
    assert_int_equal(ws_read_message(p->c, soon(), &m), WS_OK);
    assert_int_equal(m.opcode, WS_OPCODE_BINARY);
    assert_int_equal(m.len, 5);
    assert_memory_equal(m.data, "abcde", 5);
    uint8_t pong[8];
    assert_int_equal(read(p->sv[1], pong, sizeof pong), 3);
    assert_memory_equal(pong, "\x8a\x01p", 3); /* answered, unmasked, with the ping's payload */
}

static void test_bytes_read_with_the_handshake_come_first(void **state) {
    pair *p = *state;
    uint8_t buf[64];
    size_t n = client_frame(buf, WS_OPCODE_TEXT, true, "early", 5);
    ws_conn *c = ws_conn_create(p->sv[0], (const char *)buf, n - 2, 64, 64);
    assert_int_equal(write(p->sv[1], buf + n - 2, 2), 2);
    ws_message m;
    assert_int_equal(ws_read_message(c, soon(), &m), WS_OK);
    assert_string_equal((const char *)m.data, "early");
    ws_conn_free(c);
}

static void test_limits_are_checked_from_the_header(void **state) {
    pair *p = *state;
    uint8_t head[10];
    size_t n = ws_encode_header(head, WS_OPCODE_TEXT, true, 65); /* the text limit is 64 */
    head[1] |= 0x80;
    assert_int_equal(write(p->sv[1], head, n), (ssize_t)n);
    assert_int_equal(write(p->sv[1], "mask", 4), 4); /* no payload follows: refused from the header */
    ws_message m;
    assert_int_equal(ws_read_message(p->c, soon(), &m), WS_ERR_TOO_BIG);
    assert_int_equal(ws_close_code_for(WS_ERR_TOO_BIG), WS_CLOSE_TOO_BIG);
}

static void test_fragments_add_up_to_the_limit(void **state) {
    pair *p = *state;
    uint8_t chunk[600], buf[1400];
    memset(chunk, 'x', sizeof chunk);
    size_t n = client_frame(buf, WS_OPCODE_BINARY, false, chunk, 600);
    n += client_frame(buf + n, WS_OPCODE_CONTINUATION, true, chunk, 600); /* 1200 > 1000 */
    assert_int_equal(write(p->sv[1], buf, n), (ssize_t)n);
    ws_message m;
    assert_int_equal(ws_read_message(p->c, soon(), &m), WS_ERR_TOO_BIG);
}

static void test_unmasked_and_out_of_sequence_frames(void **state) {
    pair *p = *state;
    uint8_t buf[64];
    size_t n = ws_encode_header(buf, WS_OPCODE_TEXT, true, 2);
    memcpy(buf + n, "hi", 2);
    assert_int_equal(write(p->sv[1], buf, n + 2), (ssize_t)(n + 2));
    ws_message m;
    assert_int_equal(ws_read_message(p->c, soon(), &m), WS_ERR_PROTOCOL);
    assert_int_equal(ws_close_code_for(WS_ERR_PROTOCOL), WS_CLOSE_PROTOCOL);
    ws_conn *c = ws_conn_create(p->sv[0], "", 0, 64, 64);
    n = client_frame(buf, WS_OPCODE_CONTINUATION, true, "x", 1); /* nothing to continue */
    assert_int_equal(write(p->sv[1], buf, n), (ssize_t)n);
    assert_int_equal(ws_read_message(c, soon(), &m), WS_ERR_PROTOCOL);
    ws_conn_free(c);
}

static void test_close_is_answered_and_timeouts(void **state) {
    pair *p = *state;
    ws_message m;
    assert_int_equal(ws_read_message(p->c, time_monotonic_ms() + 50, &m), WS_ERR_TIMEOUT);
    uint8_t buf[32];
    size_t n = client_frame(buf, WS_OPCODE_CLOSE, true, "\x03\xe8", 2);
    assert_int_equal(write(p->sv[1], buf, n), (ssize_t)n);
    assert_int_equal(ws_read_message(p->c, soon(), &m), WS_ERR_CLOSED);
    uint8_t reply[8];
    assert_int_equal(read(p->sv[1], reply, sizeof reply), 4);
    assert_memory_equal(reply, "\x88\x02\x03\xe8", 4);
    assert_int_equal(ws_send_close(p->c, 4400, "again"), WS_OK); /* a close is sent once */
    close(p->sv[1]);
    p->sv[1] = -1;
    assert_int_equal(ws_read_message(p->c, soon(), &m), WS_ERR_CLOSED);
}

static void test_send_text_and_close_reason(void **state) {
    pair *p = *state;
    assert_int_equal(ws_send_text(p->c, "{}", 2), WS_OK);
    char reason[200];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = 0;
    assert_int_equal(ws_send_close(p->c, 4429, reason), WS_OK);
    uint8_t got[256];
    ssize_t n = 0, r;
    while (n < 4 + 2 + 125 && (r = read(p->sv[1], got + n, sizeof got - (size_t)n)) > 0) n += r;
    assert_memory_equal(got, "\x81\x02{}", 4);
    assert_int_equal(got[4], 0x88);
    assert_int_equal(got[5], 125); /* code + reason cut to the control-frame limit */
    assert_int_equal(got[6] << 8 | got[7], 4429);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc_example),
        cmocka_unit_test(test_parse_header),
        cmocka_unit_test(test_encode_header_sizes),
        cmocka_unit_test_setup_teardown(test_masked_text_and_fragments_with_a_ping_between, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_bytes_read_with_the_handshake_come_first, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_limits_are_checked_from_the_header, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_fragments_add_up_to_the_limit, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_unmasked_and_out_of_sequence_frames, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_close_is_answered_and_timeouts, setup_pair, teardown_pair),
        cmocka_unit_test_setup_teardown(test_send_text_and_close_reason, setup_pair, teardown_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
