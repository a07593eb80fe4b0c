/* envelope_open on fuzzed fields: u16 wrapped-key length | wrapped key | u8 IV
 * length | IV | ciphertext+tag. A first byte 'S' instead seals the rest with a
 * fixed key and IV and opens it again, so the decrypting path is reached too. */
#include "fuzz_util.h"
#include "liveness/envelope.h"

static envelope_key *key;
static const char AAD[] = ENVELOPE_AAD_PREFIX "session\nrandom";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    char err[256];
    key = envelope_key_load_or_create(fuzz_scratch_dir(), err, sizeof err);
    if (!key) { fprintf(stderr, "envelope key: %s\n", err); abort(); }
    return 0;
}

static void round_trip(const uint8_t *plain, size_t len)
{
    size_t cert_len, wl, cl, pl;
    const uint8_t *cert = envelope_certificate_der(key, &cert_len);
    uint8_t aes[ENVELOPE_KEY_BYTES] = {1}, iv[ENVELOPE_IV_BYTES] = {2}, *w = NULL, *ct = NULL, *out = NULL;
    if (envelope_seal(cert, cert_len, aes, iv, plain, len, (const uint8_t *)AAD, sizeof AAD - 1, &w, &wl, &ct, &cl))
        abort();
    if (envelope_open(key, w, wl, iv, sizeof iv, ct, cl, (const uint8_t *)AAD, sizeof AAD - 1, &out, &pl) ||
        pl != len || (len && memcmp(out, plain, len)))
        abort();
    free(w); free(ct); free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len && data[0] == 'S') { round_trip(data + 1, len - 1); return 0; }
    if (len < 2) return 0;
    size_t wl = (size_t)data[0] << 8 | data[1];
    if (2 + wl + 1 > len) return 0;
    const uint8_t *w = data + 2, *p = w + wl;
    size_t ivl = *p++;
    size_t rest = len - (size_t)(p - data);
    if (ivl > rest) return 0;
    uint8_t *plain = NULL;
    size_t pl;
    if (envelope_open(key, w, wl, p, ivl, p + ivl, rest - ivl, (const uint8_t *)AAD, sizeof AAD - 1, &plain, &pl) == ENVELOPE_OK)
        free(plain);
    return 0;
}
