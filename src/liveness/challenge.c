/* Challenge derivation; see challenge.h. A hash rather than a PRNG so that any
 * client (the web page uses WebCrypto's SHA-256) reproduces it bit for bit. */
#include "liveness/challenge.h"

#include <openssl/sha.h>
#include <stdio.h>

int challenge_derive(uint32_t seed, int count, challenge_direction *out) {
    if (count < 1 || count > CHALLENGE_MAX) return -1;
    for (int i = 0; i < count; i++) {
        char text[64];
        int n = snprintf(text, sizeof text, "bioserver-challenge-v1:%u:%d", seed, i);
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)text, (size_t)n, d);
        out[i] = (d[0] & 1) ? CHALLENGE_RIGHT : CHALLENGE_LEFT;
    }
    return 0;
}

const char *challenge_name(challenge_direction d) { return d == CHALLENGE_RIGHT ? "RIGHT" : "LEFT"; }
