/* The server's signing identity: an ECDSA P-256 key with a self-signed X.509
 * certificate, created on first start in the data folder (or loaded from there),
 * and compact JWS (ES256) over response payloads. The certificate is published so
 * clients verify signatures offline. Safe to share between threads. */
#ifndef SIGN_SIGNER_H
#define SIGN_SIGNER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct signer signer;

signer *signer_load_or_create(const char *data_dir, char *err, size_t err_len);
void signer_free(signer *s);

/* Compact JWS "header.payload.signature"; with detached=true the payload part is
 * empty ("header..signature", RFC 7515 appendix F). Returns malloc'd text. */
char *signer_sign(const signer *s, const uint8_t *payload, size_t len, bool detached);
/* The same JWS written into out, which holds signer_jws_size(s, len) bytes and does
 * not overlap payload; returns its length (without the NUL), 0 on failure. For a
 * caller that builds many signed texts in place (GetMatches). */
size_t signer_sign_to(const signer *s, const uint8_t *payload, size_t len, bool detached, char *out);
size_t signer_jws_size(const signer *s, size_t len);
/* Precomputes up to capacity ECDSA nonces on an idle-priority thread (sign/presign.h),
 * so that a burst of signatures (GetMatches) costs a few microseconds each. Without
 * it, or when they run out, every signature computes its own. Call once, before the
 * signer is shared; returns 0 or -1 (then signing still works the usual way). */
int signer_presign_start(signer *s, int capacity);
/* Nonces ready right now (0 without signer_presign_start). */
int signer_presigned_ready(const signer *s);
/* Returns 0 when jws is a valid signature by this key of payload (detached or
 * not; for attached JWS the embedded payload must equal the given one when given). */
int signer_verify(const signer *s, const char *jws, const uint8_t *payload, size_t len);

const char *signer_certificate_pem(const signer *s);
const uint8_t *signer_certificate_der(const signer *s, size_t *len);
const char *signer_key_id(const signer *s); /* base64url SHA-256 of the DER certificate */
/* {"keys":[{kty,crv,x,y,use,alg,kid,x5c}]} as malloc'd JSON text */
char *signer_jwks(const signer *s);

#endif
