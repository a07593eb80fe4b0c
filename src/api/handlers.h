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
void handle_init_liveness_session(http_request *req);
void handle_video_capabilities(http_request *req);
void handle_liveness_challenge_result(http_request *req);
void handle_webcapture_sdk(http_request *req);
void handle_network_latency(http_request *req);
void handle_network_speed(http_request *req);
void handle_capture_stream(http_request *req);

/* Shared by sessions.c, liveness.c and webcapture.c (each NULL/false after replying). */
/* Validates the session object `in` (borrowed), stores a new session with the
 * members of `extra` (borrowed, may be NULL) added, and returns its record. */
json_t *api_session_create(http_request *req, json_t *in, json_t *extra);
/* The public form of a stored session record (a new object). */
json_t *api_session_public(json_t *record);
/* 503 unless replay liveness is available. */
bool liveness_ready(http_request *req);
/* Parses liveness parameters `in` (borrowed: type, securityLevel, nbChallenge, ...),
 * opens a capture window for the session and returns the public parameters. */
json_t *liveness_start(http_request *req, const char *sid, json_t *in);
/* 400 (and false) when a callbackURL would be refused at delivery. */
bool api_check_callback_url(http_request *req, const char *url);

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
