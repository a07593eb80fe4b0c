/* Every route handler, grouped by resource file. */
#ifndef API_HANDLERS_H
#define API_HANDLERS_H
#include "http/request.h"
#include "http/router.h"

extern const route api_routes[];

void handle_capabilities(http_request *req);
void handle_create_session(http_request *req);
void handle_get_session(http_request *req);
void handle_delete_session(http_request *req);
void handle_monitor(http_request *req);
void handle_certificate(http_request *req);
void handle_jwks(http_request *req);
void handle_metrics(http_request *req);
void handle_usage(http_request *req);

#endif
