/* Runs the face pipeline for a request on the worker pool and maps every failure
 * to its HTTP answer (429 busy, 400/413 bad image, 503 no models, 500). */
#ifndef API_ANALYZE_H
#define API_ANALYZE_H
#include <stdbool.h>

#include "face/pipeline.h"
#include "http/request.h"

/* Returns a result in the request arena, or NULL after replying with an error. The
 * embedding is the algorithm of `mode` (api/modes.h: the accurate mode's is fused
 * and longer); NULL is the server's default mode. */
face_result *api_analyze_image(http_request *req, const uint8_t *data, size_t len,
                               bool rotation_enabled, bool want_age, const char *mode);

/* Runs fn(worker_ctx, arg) on the bounded worker pool and waits for it (inline when
 * the handler already runs on a worker, see http_request.on_worker). Returns false
 * after replying 429 (queue full, with Retry-After) or 503 (shutting down). */
bool api_run_on_worker(http_request *req, void (*fn)(void *worker_ctx, void *arg), void *arg);

/* "SELFIE" | "ID_DOCUMENT" | "VIDEO_FRAME" */
bool api_image_type_valid(const char *type);

/* SHA-256 of the image bytes, lower-case hex. */
void api_digest(const uint8_t *data, size_t len, char out[65]);

#endif
