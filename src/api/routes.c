/* The route table: method, path pattern, permission, billing operation, handler,
 * body size class and whether the handler is heavy (http/router.h). Paths are
 * relative to /bioserver-app; "{}" is one path parameter. */
#include "api/handlers.h"
#include "core/config.h"
#include "http/router.h"

#define HEAVY true /* runs on a worker thread: see route.heavy */

/* Rows leave body and heavy out when they are the defaults (0): no body for GET and
 * DELETE, max_body_bytes for POST; handled on the HTTP thread. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

const route api_routes[] = {
    {"GET", "/v2/capabilities", PERM_CAPABILITIES, "getCapabilities", handle_capabilities},
    {"POST", "/v2/bio-sessions", PERM_SESSIONS, "createBioSession", handle_create_session, ROUTE_BODY_JSON},
    {"GET", "/v2/bio-sessions/{}", PERM_SESSIONS, "getBioSession", handle_get_session},
    {"DELETE", "/v2/bio-sessions/{}", PERM_SESSIONS, "deleteBioSession", handle_delete_session},
    {"POST", "/v2/bio-sessions/{}/faces", PERM_FACES, "createFace", handle_create_face, ROUTE_BODY_DEFAULT, HEAVY},
    {"GET", "/v2/bio-sessions/{}/faces", PERM_FACES, "getFaces", handle_get_faces},
    {"DELETE", "/v2/bio-sessions/{}/faces", PERM_FACES, "deleteFaces", handle_delete_faces},
    {"GET", "/v2/bio-sessions/{}/faces/{}", PERM_FACES, "getFace", handle_get_face},
    {"DELETE", "/v2/bio-sessions/{}/faces/{}", PERM_FACES, "deleteFace", handle_delete_face},
    {"GET", "/v2/bio-sessions/{}/faces/{}/image", PERM_FACES, "getFaceImage", handle_get_face_image},
    {"GET", "/v2/bio-sessions/{}/faces/{}/matches", PERM_MATCHES, "getMatches", handle_get_matches, ROUTE_BODY_DEFAULT, HEAVY},
    {"POST", "/v2/faces", PERM_FACES, "createDirectFace", handle_create_direct_face, ROUTE_BODY_DEFAULT, HEAVY},
    {"POST", "/v2/match", PERM_MATCHES, "match", handle_match, ROUTE_BODY_DEFAULT, HEAVY},
    {"POST", "/v2/match/images", PERM_MATCHES, "matchImages", handle_match_images, ROUTE_BODY_DEFAULT, HEAVY},
    {"POST", "/v2/ages", PERM_AGES, "createDirectAge", handle_create_age, ROUTE_BODY_DEFAULT, HEAVY},
    {"POST", "/v2/bio-sessions/{}/init-liveness-parameters", PERM_LIVENESS, "initLivenessParameters", handle_init_liveness,
     ROUTE_BODY_JSON},
    {"GET", "/v2/bio-sessions/{}/init-liveness-parameters", PERM_LIVENESS, "getLivenessParameters", handle_get_liveness_params},
    {"POST", "/v2/bio-sessions/{}/liveness-capture", PERM_LIVENESS, "uploadLivenessCapture", handle_liveness_capture,
     ROUTE_BODY_CAPTURE, HEAVY},
    {"GET", "/v3/bio-sessions/{}/replay-liveness-metadata", PERM_LIVENESS, "getReplayStatus", handle_replay_metadata},
    /* deprecated by the reference, answered as v3 */
    {"GET", "/v2/bio-sessions/{}/replay-liveness-metadata", PERM_LIVENESS, "getReplayStatus", handle_replay_metadata},
    /* The WebCapture server flow (api/webcapture.c); /video-server is video_server_path. */
    {"POST", "/video-server/init-liveness-session", PERM_LIVENESS, "initLivenessSession", handle_init_liveness_session,
     ROUTE_BODY_JSON},
    {"GET", "/video-server/v2/capabilities", PERM_CAPABILITIES, "getVideoCapabilities", handle_video_capabilities},
    /* What the WebCapture pages load and call from the browser, without a key:
     * the SDK files (api/web.c) and the connectivity check (api/network_check.c). */
    {"GET", "/video-server/bioserver-environment-api.js", 0, "webCaptureSdk", handle_webcapture_sdk},
    {"GET", "/video-server/bioserver-network-check.js", 0, "webCaptureSdk", handle_webcapture_sdk},
    {"GET", "/video-server/bioserver-video-ui.js", 0, "webCaptureSdk", handle_webcapture_sdk},
    {"GET", "/video-server/bioserver-video-api.js", 0, "webCaptureSdk", handle_webcapture_sdk},
    {"GET", "/video-server/network-latency", 0, "networkLatency", handle_network_latency},
    {"POST", "/video-server/network-speed", 0, "networkSpeed", handle_network_speed, ROUTE_BODY_DISCARD},
    {"GET", "/v2/bio-sessions/{}/liveness-challenge-result", PERM_LIVENESS, "getLivenessChallengeResult",
     handle_liveness_challenge_result},
    {"GET", "/v2/bio-sessions/{}/liveness-challenge-result/{}/{}", PERM_LIVENESS, "getLivenessChallengeResult",
     handle_liveness_challenge_result},
    /* The browser SDK's real-time capture (api/capture_stream.c): a WebSocket opened
     * with the bio-session id alone, under video_server_path and our own prefix. */
    {"GET", "/video-server/v2/bio-sessions/{}/capture-stream", 0, "captureStream", handle_capture_stream},
    {"GET", "/v2/bio-sessions/{}/capture-stream", 0, "captureStream", handle_capture_stream},
    {"POST", "/v2/galleries", PERM_FACES, "createGallery", handle_create_gallery, ROUTE_BODY_JSON},
    {"GET", "/v2/galleries", PERM_FACES, "getGalleries", handle_get_galleries},
    {"GET", "/v2/galleries/{}", PERM_FACES, "getGallery", handle_get_gallery},
    {"DELETE", "/v2/galleries/{}", PERM_FACES, "deleteGallery", handle_delete_gallery},
    {"POST", "/v2/galleries/{}/faces", PERM_FACES, "enrolGalleryFace", handle_enrol_gallery_face, ROUTE_BODY_DEFAULT, HEAVY},
    {"GET", "/v2/galleries/{}/faces", PERM_FACES, "getGalleryFaces", handle_get_gallery_faces},
    {"DELETE", "/v2/galleries/{}/faces", PERM_FACES, "deleteGalleryFaces", handle_delete_gallery_faces},
    {"GET", "/v2/galleries/{}/faces/{}", PERM_FACES, "getGalleryFace", handle_get_gallery_face},
    {"DELETE", "/v2/galleries/{}/faces/{}", PERM_FACES, "deleteGalleryFace", handle_delete_gallery_face},
    {"POST", "/v2/galleries/{}/search", PERM_MATCHES, "searchGallery", handle_search_gallery, ROUTE_BODY_DEFAULT, HEAVY},
    {"GET", "/capture", 0, "webCapture", handle_web_capture},
    {"GET", "/capture/{}", 0, "webCapture", handle_web_capture},
    {"GET", "/v2/monitor", 0, "monitor", handle_monitor},
    {"GET", "/v2/certificate", 0, "getCertificate", handle_certificate},
    {"GET", "/v2/jwks", 0, "getJwks", handle_jwks},
    {"GET", "/v2/usage", PERM_ALL | PERM_ADMIN, "getUsage", handle_usage},
    {"GET", "/v2/metrics", PERM_ADMIN, "metrics", handle_metrics},
    {"GET", "/metrics", PERM_ADMIN, "metrics", handle_metrics},
    {NULL, NULL, 0, NULL, NULL, ROUTE_BODY_DEFAULT, false},
};
