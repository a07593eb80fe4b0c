/* Small helpers shared by every layer: identifiers, time stamps, base64. */
#ifndef CORE_UTIL_H
#define CORE_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define UUID_STR_LEN 37 /* 36 characters + NUL */
#define ISO_TIME_LEN 32

/* Random (version 4) UUID from the CSPRNG. */
void uuid_generate(char out[UUID_STR_LEN]);
bool uuid_is_valid(const char *s);

/* Wall-clock milliseconds since the epoch, and a monotonic clock for durations. */
int64_t time_now_ms(void);
int64_t time_monotonic_ms(void);
double time_monotonic_s(void);
/* CPU time of the calling thread in seconds: benchmarks on a shared machine count
 * this, not time spent descheduled. */
double time_thread_cpu_s(void);
/* "2017-05-18T10:14:39.587Z" */
void time_format_iso(int64_t epoch_ms, char out[ISO_TIME_LEN]);

/* Base64 (standard alphabet, padded) and base64url (no padding). The returned
 * strings are malloc'd; decoding returns NULL on malformed input. */
char *base64_encode(const uint8_t *data, size_t len);
char *base64url_encode(const uint8_t *data, size_t len);
/* Bytes base64_encode needs for len bytes, NUL included (base64url needs at most that). */
#define BASE64_ENCODED_SIZE(len) (4 * (((size_t)(len) + 2) / 3) + 1)
/* base64url of data into out (BASE64_ENCODED_SIZE(len) bytes); returns the length. */
size_t base64url_encode_to(char *out, const uint8_t *data, size_t len);

#define JSON_REAL_TEXT_MAX 40
/* A real as jansson's json_dumps prints it with JSON_REAL_PRECISION(digits)
 * ("%.*g", ".0" appended when that reads as an integer, no '+' or leading zeros in
 * the exponent), for replies spliced from text; out holds JSON_REAL_TEXT_MAX bytes.
 * Returns the length; 0 for NaN and infinities, which JSON cannot hold. */
size_t json_real_text(double v, int digits, char *out);
uint8_t *base64_decode(const char *text, size_t text_len, size_t *out_len);
uint8_t *base64url_decode(const char *text, size_t text_len, size_t *out_len);
/* Only the one text base64_encode makes for the bytes (standard alphabet, '='
 * padding to a multiple of 4): for values whose text must be unique, such as
 * templates, where two spellings of one value would be two different strings
 * that compare unequal yet decode alike. NULL otherwise. */
uint8_t *base64_decode_canonical(const char *text, size_t text_len, size_t *out_len);

void hex_encode(const uint8_t *data, size_t len, char *out /* 2*len+1 */);

#endif
