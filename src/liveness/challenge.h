/* Active-liveness challenges: the head-turn directions a user must perform,
 * derived deterministically from the session's seed so that the client (which
 * shows the prompts) and the server (which verifies them) agree without the
 * sequence being stored or sent, and a replayed capture for another seed fails. */
#ifndef LIVENESS_CHALLENGE_H
#define LIVENESS_CHALLENGE_H
#include <stdint.h>

#define CHALLENGE_MAX 32 /* nbChallenge upper bound (the capture window bounds it too) */

typedef enum { CHALLENGE_LEFT = 0, CHALLENGE_RIGHT = 1 } challenge_direction;

/* out[i] for i < count: direction i = low bit of byte 0 of
 * SHA-256("bioserver-challenge-v1:" + decimal seed + ":" + decimal i).
 * Returns 0, or -1 when count is outside 1..CHALLENGE_MAX. */
int challenge_derive(uint32_t seed, int count, challenge_direction *out);

/* "LEFT" / "RIGHT": the user's own left/right. */
const char *challenge_name(challenge_direction d);

#endif
