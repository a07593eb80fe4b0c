/* Guidance from one tracked frame; see guidance.h. The bounds are fractions of the
 * frame, so they hold for any camera resolution. They were set on the NUAA webcam
 * frames (../shared/data/spoof/nuaa/live, 640x480, a user at a normal distance): the
 * face boxes there are 24-38 % of the frame width and their centres within 10 % of
 * the frame centre, so every one of those frames is placed, while a face half out of
 * the frame or filling it is not. */
#include "liveness/guidance.h"

#include <math.h>
#include <stddef.h>

#define TOO_FAR_WIDTH 0.18f    /* face width / frame width under this: come closer */
#define TOO_CLOSE_WIDTH 0.65f  /* over this: move back */
#define OFF_CENTRE 0.18f       /* centre offset / frame size beyond this: move */
#define EDGE_SLACK 0.08f       /* how far the box may cross the frame edge (detector boxes overshoot) */
#define MAX_ROLL_DEGREES 15.0f
#define MAX_STEP 0.08f         /* centre moved more than this fraction of the frame width since the last frame */

static const char *const position_names[] = {
    [POSITION_GOOD] = "TRACKER_POSITION_INFO_GOOD",
    [POSITION_MOVE_BACK_INTO_FRAME] = "TRACKER_POSITION_INFO_MOVE_BACK_INTO_FRAME",
    [POSITION_MOVE_FORWARDS] = "TRACKER_POSITION_INFO_CENTER_MOVE_FORWARDS",
    [POSITION_MOVE_BACKWARDS] = "TRACKER_POSITION_INFO_CENTER_MOVE_BACKWARDS",
    [POSITION_MOVE_LEFT] = "TRACKER_POSITION_INFO_CENTER_MOVE_LEFT",
    [POSITION_MOVE_RIGHT] = "TRACKER_POSITION_INFO_CENTER_MOVE_RIGHT",
    [POSITION_MOVE_UP] = "TRACKER_POSITION_INFO_CENTER_MOVE_UP",
    [POSITION_MOVE_DOWN] = "TRACKER_POSITION_INFO_CENTER_MOVE_DOWN",
    [POSITION_TILT_LEFT] = "TRACKER_POSITION_INFO_CENTER_TILT_LEFT",
    [POSITION_TILT_RIGHT] = "TRACKER_POSITION_INFO_CENTER_TILT_RIGHT",
    [POSITION_MOVING_TOO_FAST] = "TRACKER_POSITION_INFO_MOVING_TOO_FAST",
    [POSITION_STAND_STILL] = "TRACKER_POSITION_INFO_STAND_STILL",
};

const char *guidance_position_name(guidance_position p) {
    return (unsigned)p < sizeof position_names / sizeof *position_names ? position_names[p]
                                                                        : "TRACKER_POSITION_INFO_UNKNOWN";
}

void guidance_init(guidance_state *s, int needed) {
    *s = (guidance_state){.needed = needed > 0 ? needed : 1};
}

static bool cut_by_edge(const guidance_frame *f) {
    float sx = EDGE_SLACK * (float)f->width, sy = EDGE_SLACK * (float)f->height;
    return f->box[0] < -sx || f->box[1] < -sy || f->box[0] + f->box[2] > (float)f->width + sx ||
           f->box[1] + f->box[3] > (float)f->height + sy;
}

/* Where the face is, before stability: the first problem in the order a user fixes
 * them (get into the frame, distance, centre, roll). */
static guidance_position placement(const guidance_frame *f, guidance_result *out) {
    if (!f->face || f->width <= 0 || f->height <= 0) return POSITION_MOVE_BACK_INTO_FRAME;
    float cx = f->box[0] + f->box[2] / 2, cy = f->box[1] + f->box[3] / 2;
    float dx = cx / (float)f->width - 0.5f, dy = cy / (float)f->height - 0.5f;
    out->target_r = f->box[2] / (float)f->width;
    out->too_close = out->target_r > TOO_CLOSE_WIDTH;
    out->too_far = out->target_r < TOO_FAR_WIDTH;
    float ex = f->eyes[2] - f->eyes[0], ey = f->eyes[3] - f->eyes[1];
    float eye_dist = sqrtf(ex * ex + ey * ey);
    out->roll_degrees = eye_dist > 0 ? atan2f(ey, ex) * 180.0f / (float)M_PI : 0;
    out->yaw = eye_dist > 0 ? ((f->eyes[0] + f->eyes[2]) / 2 - cx) / eye_dist : 0;
    if (out->too_close) return POSITION_MOVE_BACKWARDS;
    if (cut_by_edge(f)) return POSITION_MOVE_BACK_INTO_FRAME;
    if (out->too_far) return POSITION_MOVE_FORWARDS;
    /* The frame is unmirrored: a face on the image's left is on the user's right. */
    if (dx < -OFF_CENTRE) return POSITION_MOVE_LEFT;
    if (dx > OFF_CENTRE) return POSITION_MOVE_RIGHT;
    if (dy < -OFF_CENTRE) return POSITION_MOVE_DOWN;
    if (dy > OFF_CENTRE) return POSITION_MOVE_UP;
    /* Image-right eye lower: the head leans towards the image right = the user's left. */
    if (out->roll_degrees > MAX_ROLL_DEGREES) return POSITION_TILT_RIGHT;
    if (out->roll_degrees < -MAX_ROLL_DEGREES) return POSITION_TILT_LEFT;
    return POSITION_GOOD;
}

void guidance_step(guidance_state *s, const guidance_frame *f, guidance_result *out) {
    *out = (guidance_result){0};
    guidance_position p = placement(f, out);
    if (f->face && f->width > 0) {
        float cx = f->box[0] + f->box[2] / 2, cy = f->box[1] + f->box[3] / 2;
        float step = s->has_last ? hypotf(cx - s->last_cx, cy - s->last_cy) / (float)f->width : 0;
        s->last_cx = cx;
        s->last_cy = cy;
        s->has_last = true;
        if (p == POSITION_GOOD && step > MAX_STEP) p = POSITION_MOVING_TOO_FAST;
    } else {
        s->has_last = false;
    }
    out->placed = p == POSITION_GOOD;
    s->placed_run = out->placed ? s->placed_run + 1 : 0;
    out->stability = s->placed_run >= s->needed ? 1.0f : (float)s->placed_run / (float)s->needed;
    /* Placed but not yet held long enough: ask to hold still (the pages show it). */
    if (out->placed && s->placed_run < s->needed) p = POSITION_STAND_STILL;
    out->position = p;
}
