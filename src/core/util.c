/* Identifiers, clocks and base64 used across layers; see util.h. */
#include "core/util.h"

#include <ctype.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void uuid_generate(char out[UUID_STR_LEN]) {
    uint8_t b[16];
    if (RAND_bytes(b, sizeof b) != 1) abort(); /* no entropy: refusing beats weak ids */
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, UUID_STR_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bool uuid_is_valid(const char *s) {
    if (!s || strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

int64_t time_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double time_monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double time_thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void time_format_iso(int64_t epoch_ms, char out[ISO_TIME_LEN]) {
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, ISO_TIME_LEN, "%s.%03dZ", base, (int)(epoch_ms % 1000));
}

char *base64_encode(const uint8_t *data, size_t len) {
    size_t out_len = 4 * ((len + 2) / 3);
    char *out = malloc(out_len + 1);
    if (!out) return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    out[out_len] = '\0';
    return out;
}

size_t json_real_text(double v, int digits, char *out) {
    if (!isfinite(v)) return 0; /* JSON has no NaN or infinity (json_real refuses them too) */
    int n = snprintf(out, JSON_REAL_TEXT_MAX - 2, "%.*g", digits, v);
    if (n < 0 || n >= JSON_REAL_TEXT_MAX - 2) return 0;
    size_t len = (size_t)n;
    if (!strpbrk(out, ".e")) { /* else it would read back as an integer */
        memcpy(out + len, ".0", 3);
        len += 2;
    }
    char *exp = strchr(out, 'e');
    if (exp) {
        char *start = exp + 1 + (exp[1] == '-'), *end = exp + 2;
        while (*end == '0') end++;
        memmove(start, end, len + 1 - (size_t)(end - out));
        len -= (size_t)(end - start);
    }
    return len;
}

/* One pass, straight to the URL alphabet: GetMatches encodes ~2 KB per match. */
size_t base64url_encode_to(char *out, const uint8_t *data, size_t len) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *p = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        p[0] = alphabet[v >> 18], p[1] = alphabet[v >> 12 & 63], p[2] = alphabet[v >> 6 & 63], p[3] = alphabet[v & 63];
        p += 4;
    }
    if (len - i == 1) {
        p[0] = alphabet[data[i] >> 2], p[1] = alphabet[(data[i] & 3) << 4];
        p += 2;
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)data[i] << 8 | data[i + 1];
        p[0] = alphabet[v >> 10], p[1] = alphabet[v >> 4 & 63], p[2] = alphabet[(v & 15) << 2];
        p += 3;
    }
    *p = '\0';
    return (size_t)(p - out);
}

char *base64url_encode(const uint8_t *data, size_t len) {
    char *s = malloc(BASE64_ENCODED_SIZE(len));
    if (s) base64url_encode_to(s, data, len);
    return s;
}

static int b64_value(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Accepts both alphabets; padding optional; anything else is malformed. */
static uint8_t *b64_decode_any(const char *text, size_t n, size_t *out_len) {
    while (n && text[n - 1] == '=') n--;
    if (n % 4 == 1) return NULL;
    uint8_t *out = malloc(n / 4 * 3 + 3);
    if (!out) return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)text[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, or two texts would decode to the same bytes. */
    if (bits && (acc & ((1u << bits) - 1))) {
        free(out);
        return NULL;
    }
    *out_len = o;
    return out;
}

uint8_t *base64_decode(const char *text, size_t len, size_t *out_len) {
    return b64_decode_any(text, len, out_len);
}

uint8_t *base64url_decode(const char *text, size_t len, size_t *out_len) {
    return b64_decode_any(text, len, out_len);
}

uint8_t *base64_decode_canonical(const char *text, size_t len, size_t *out_len) {
    uint8_t *out = b64_decode_any(text, len, out_len);
    if (!out) return NULL;
    char *again = base64_encode(out, *out_len);   /* one encoding: compare with it */
    bool same = again && strlen(again) == len && memcmp(again, text, len) == 0;
    free(again);
    if (!same) {
        free(out);
        return NULL;
    }
    return out;
}

void hex_encode(const uint8_t *data, size_t len, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}
