/* Bridge from request handlers to the worker pool; see analyze.h. */
#include "api/analyze.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/modes.h"
#include "core/log.h"

typedef struct {
    const uint8_t *data;
    size_t len;
    face_options options;
    face_result *result;
    int rc;
    char err[256];
} analyze_job;

static void analyze_run(void *worker_ctx, void *arg) {
    analyze_job *job = arg;
    if (!worker_ctx) {
        job->rc = FACE_ERR_MODEL;
        snprintf(job->err, sizeof job->err, "worker has no inference sessions");
        return;
    }
    job->rc = face_analyze(worker_ctx, job->data, job->len, &job->options, job->result, job->err, sizeof job->err);
}

bool api_run_on_worker(http_request *req, void (*fn)(void *worker_ctx, void *arg), void *arg) {
    if (req->on_worker) { /* a heavy route's handler: already on a worker */
        fn(req->worker_ctx, arg);
        return true;
    }
    int rc = worker_pool_run(req->app->workers, fn, arg);
    if (rc == WORKER_POOL_BUSY) http_reply_busy(req);
    else if (rc != WORKER_POOL_OK) http_reply_error(req, 503, "the server is shutting down");
    return rc == WORKER_POOL_OK;
}

face_result *api_analyze_image(http_request *req, const uint8_t *data, size_t len, bool rotation, bool want_age,
                               const char *mode) {
    app *a = req->app;
    if (!a->faces) {
        http_reply_error(req, 503, "the face models are not loaded on this server (see the server log)");
        return NULL;
    }
    if (len == 0) {
        http_reply_error(req, 400, "the image is empty");
        return NULL;
    }
    analyze_job *job = arena_alloc(req->arena, sizeof(*job));
    face_result *result = job ? arena_alloc(req->arena, sizeof(*result)) : NULL;
    if (!result) {
        http_reply_error(req, 500, "internal error: out of memory");
        return NULL;
    }
    *job = (analyze_job){.data = data, .len = len, .result = result,
                         .options = {.rotation_enabled = rotation, .want_embedding = true,
                                     .want_age = want_age, .max_pixels = a->config.max_image_pixels,
                                     .accurate = biometric_mode_accurate(mode ? mode : a->config.default_mode)}};
    if (!api_run_on_worker(req, analyze_run, job)) return NULL;
    switch (job->rc) {
    case FACE_OK: break;
    case FACE_ERR_IMAGE: http_reply_error(req, 400, "invalid image: %s", job->err); return NULL;
    case FACE_ERR_TOO_LARGE: http_reply_error(req, 413, "image too large: %s", job->err); return NULL;
    default:
        log_event("error", "face pipeline failed: %s", job->err);
        http_reply_error(req, 500, "internal error while processing the image");
        return NULL;
    }
    if (result->faces_found > 1)
        log_event("info", "%d faces in the image; the most prominent one was used (correlationId %s)",
                  result->faces_found, req->correlation_id ? req->correlation_id : "-");
    return result;
}

bool api_image_type_valid(const char *t) {
    return t && (!strcmp(t, "SELFIE") || !strcmp(t, "ID_DOCUMENT") || !strcmp(t, "VIDEO_FRAME"));
}

void api_digest(const uint8_t *data, size_t len, char out[65]) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(data, len, d);
    hex_encode(d, sizeof d, out);
}
