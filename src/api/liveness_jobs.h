/* Capture jobs: the upload stores the decrypted capture as a session item and
 * queues a small reference {tenant, session, nonce}; the dispatcher of whichever
 * instance has an idle worker pops it and runs liveness_run_job, which evaluates
 * the frames, stores the verdict and sends the callback when its compare-and-set
 * won. */
#ifndef API_LIVENESS_JOBS_H
#define API_LIVENESS_JOBS_H
#include <jansson.h>

#include "api/app.h"
#include "liveness/evaluate.h"
#include "store/store.h"

/* A decoded capture: built once at upload to validate it, and again by the
 * evaluating worker (possibly on another instance) from the stored capture. */
typedef struct {
    app *app;
    char tenant[64], sid[129], nonce[64];
    char load_error[160]; /* set when the stored capture cannot be used: ERROR verdict */
    liveness_request request;
    liveness_frame frames[LIVENESS_MAX_FRAMES];
    uint8_t *frame_data[LIVENESS_MAX_FRAMES];
    int frame_count;
    uint8_t *capture_raw; /* the stored capture JSON, kept only when it is evidence to upload */
    size_t capture_len;
} capture_job;

/* The evaluation request (type, level, seed...) from the liveness item (borrowed);
 * NULL when out of memory. */
capture_job *liveness_job_new(app *a, const char *tenant, const char *sid, json_t *item);
void liveness_job_free(capture_job *job);

/* Frames: [{"timestamp": ms, "image": base64 JPEG/PNG/WebP}], in strictly
 * increasing time; limits on count, size and duration. False with err (the 400
 * message) when they do not hold. */
bool liveness_parse_frames(json_t *capture, capture_job *job, char *err, size_t err_len);

#define LIVENESS_MAX_INFO_BYTES 4096 /* deviceInfo / sdkInfo, serialised */
/* False when capture's member `name` serialises to more than LIVENESS_MAX_INFO_BYTES. */
bool liveness_info_fits(json_t *capture, const char *name);

/* What the upload and the capture stream share once a capture is validated: marks
 * it IN_PROGRESS (the session record's compare-and-set from INITIALIZED with the
 * job's nonce: STORE_CONFLICT means another capture won, a replay), records
 * deviceInfo/sdkInfo in the item (borrowed, updated), stores the frames and queues
 * the evaluation. On a store failure after the transition the window is given back
 * (INITIALIZED) and the store error returned. */
int liveness_submit_capture(app *a, json_t *item, json_t *capture, capture_job *job);

/* Stores the frames (item LIVENESS_CAPTURE_KIND) and queues the reference. */
int liveness_queue_capture(app *a, const capture_job *job, json_t *capture);

/* The dispatcher's hook (ctx = app): evaluate one queued capture on a worker. It
 * may run more than once for one capture (a lease that ran out, dispatcher.h):
 * a capture whose session no longer waits for it is skipped, and only the run
 * whose compare-and-set IN_PROGRESS -> verdict wins sends the callback. Past
 * MAX_DELIVERIES deliveries the verdict is ERROR without evaluating. False when
 * the store failed before the verdict was in: the job must run again. */
bool liveness_run_job(void *ctx, void *worker_ctx, const store_value *payload, int delivery);

#endif
