/* The connectivity check of the WebCapture pages (web/sdk/bioserver-network-check.js,
 * BioserverNetworkCheck.connectivityMeasure): a latency probe and an upload speed
 * test under video_server_path. The pages call them from the browser before any
 * session exists, so they take no key; they are built so that a caller without
 * one makes the server hold nothing: the probe answers at once with no body, and
 * the speed test's bytes are counted and dropped as they arrive (ROUTE_BODY_DISCARD,
 * capped at ROUTE_DISCARD_MAX_BYTES). Connections stay bounded by the server's
 * per-address and idle limits like any other request. */
#include "api/handlers.h"

/* Any page may read these answers: they carry nothing but timing. */
static void allow_any_page(http_request *req) {
    http_add_header(req, "Access-Control-Allow-Origin", "*");
    http_add_header(req, "Timing-Allow-Origin", "*"); /* Resource Timing sees the real phases */
}

/* GET {video_server_path}/network-latency: an empty answer, timed by the client. */
void handle_network_latency(http_request *req) {
    allow_any_page(req);
    http_reply_empty(req, 204);
}

/* POST {video_server_path}/network-speed: the client times the upload; the answer
 * says how many bytes arrived, so it can tell a cut-off upload from a slow one. */
void handle_network_speed(http_request *req) {
    allow_any_page(req);
    http_reply_json(req, 200, json_pack("{s:I}", "receivedBytes", (json_int_t)req->body_len));
}
