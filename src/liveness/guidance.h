/* Per-frame guidance for the real-time capture stream (docs/capture-stream.md):
 * from what the light tracker saw on one frame (the face box and eyes, or no face)
 * to what the capture pages show: face too far or too close, which way to move,
 * TRACKER_POSITION_INFO_* and the stability of a well-placed face. Pure functions of
 * the frame and a small state carried from frame to frame, so they are unit-tested
 * without models. Coordinates are those of the unmirrored camera frame. */
#ifndef LIVENESS_GUIDANCE_H
#define LIVENESS_GUIDANCE_H
#include <stdbool.h>

typedef enum {
    POSITION_GOOD = 0,
    POSITION_MOVE_BACK_INTO_FRAME, /* no face, or the face is cut by the frame edge */
    POSITION_MOVE_FORWARDS,        /* too far: come closer */
    POSITION_MOVE_BACKWARDS,       /* too close */
    POSITION_MOVE_LEFT,            /* the user's own left */
    POSITION_MOVE_RIGHT,
    POSITION_MOVE_UP,
    POSITION_MOVE_DOWN,
    POSITION_TILT_LEFT,            /* roll the head towards the user's left shoulder */
    POSITION_TILT_RIGHT,
    POSITION_MOVING_TOO_FAST,
    POSITION_STAND_STILL,          /* placed, but not yet stable for long enough */
} guidance_position;

typedef struct {
    int width, height;  /* the frame */
    bool face;
    float box[4];       /* x, y, w, h */
    float eyes[4];      /* x1, y1 (image left eye), x2, y2 */
} guidance_frame;

typedef struct {
    guidance_position position;
    bool too_far, too_close;
    bool placed;        /* this frame is well placed (counts towards the capture) */
    float target_r;     /* face width / frame width */
    float stability;    /* consecutive placed frames / frames needed, at most 1 */
    float yaw;          /* eye-midpoint offset from the box centre / eye distance; > 0: towards the image right */
    float roll_degrees; /* eye line angle; > 0: the image-right eye is lower */
} guidance_result;

typedef struct {
    int needed;          /* consecutive placed frames that make the face stable */
    int placed_run;
    bool has_last;
    float last_cx, last_cy;
} guidance_state;

void guidance_init(guidance_state *s, int needed);
/* Judges one frame and advances the state. */
void guidance_step(guidance_state *s, const guidance_frame *f, guidance_result *out);
/* "TRACKER_POSITION_INFO_GOOD", ... (the names the WebCapture pages compare against). */
const char *guidance_position_name(guidance_position p);

#endif
