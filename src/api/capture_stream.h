/* The real-time capture stream (docs/capture-stream.md): a WebSocket per capture,
 * opened with the bio-session id alone, over which the browser SDK sends encrypted
 * camera frames and reads per-frame guidance; a complete capture goes through the
 * upload's own path (liveness_submit_capture). */
#ifndef API_CAPTURE_STREAM_H
#define API_CAPTURE_STREAM_H
#include <stdint.h>

#include "api/app.h"
#include "http/request.h"

/* The stream's capability record: init-liveness-parameters files it (tenant and
 * serverRandom under the session id, in the store so that any instance may take
 * the stream) and the first stream for that serverRandom marks it taken. Returns
 * a store code; a failure only means no stream can be opened for this capture. */
int capture_stream_ticket_issue(app *a, const char *tenant, const char *sid, const char *server_random,
                                int64_t deadline_ms);

/* GET .../v2/bio-sessions/{id}/capture-stream with Upgrade: websocket. */
void handle_capture_stream(http_request *req);

#endif
