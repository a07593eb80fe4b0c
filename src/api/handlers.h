/* Every route handler, grouped by resource file. */
#ifndef API_HANDLERS_H
#define API_HANDLERS_H
#include <stdbool.h>

#include "face/template.h"
#include "http/request.h"
#include "http/router.h"
#include "store/store.h"

extern const route api_routes[];

void handle_capabilities(http_request *req);
void handle_create_session(http_request *req);
void handle_get_session(http_request *req);
void handle_delete_session(http_request *req);
void handle_create_face(http_request *req);
void handle_get_face(http_request *req);
void handle_get_faces(http_request *req);
void handle_delete_face(http_request *req);
void handle_delete_faces(http_request *req);
void handle_get_face_image(http_request *req);
void handle_create_direct_face(http_request *req);
void handle_create_age(http_request *req);
void handle_get_matches(http_request *req);
void handle_match(http_request *req);
void handle_match_images(http_request *req);
void handle_monitor(http_request *req);
void handle_certificate(http_request *req);
void handle_jwks(http_request *req);
void handle_metrics(http_request *req);
void handle_usage(http_request *req);
void handle_init_liveness(http_request *req);
void handle_get_liveness_params(http_request *req);
void handle_liveness_capture(http_request *req);
void handle_replay_metadata(http_request *req);
void handle_web_capture(http_request *req);
/* The notifier's TIMEOUT hook (ctx = app). */
bool liveness_timeout_hook(void *ctx, const char *tenant, const char *session_id);
/* Shared across instances through the store (docs/distributed.md): the queue of
 * uploaded captures waiting for a worker, and the index of capture deadlines. */
#define LIVENESS_QUEUE "liveness"
#define LIVENESS_DUE "liveness"
/* The dispatcher's hooks (ctx = app): evaluate one queued capture on a worker;
 * apply the TIMEOUT of one claimed deadline. */
void liveness_run_job(void *ctx, void *worker_ctx, const store_value *payload);
void liveness_deadline_due(void *ctx, const char *member);

/* Galleries (our extension): galleries.c. */
void handle_create_gallery(http_request *req);
void handle_get_galleries(http_request *req);
void handle_get_gallery(http_request *req);
void handle_delete_gallery(http_request *req);
void handle_enrol_gallery_face(http_request *req);
void handle_get_gallery_faces(http_request *req);
void handle_delete_gallery_faces(http_request *req);
void handle_get_gallery_face(http_request *req);
void handle_delete_gallery_face(http_request *req);
void handle_search_gallery(http_request *req);

/* Shared between faces.c and matches.c. */
bool api_check_face_json(http_request *req, json_t *face, face_template *tpl);

#endif
