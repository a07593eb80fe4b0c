/* Cross-origin requests from browsers (CORS), off unless the operator lists the
 * origins allowed to call the API (cors_origins: "*" or a comma-separated list of
 * "scheme://host[:port]"). Preflights (OPTIONS) need no API key, as browsers send
 * them without credentials; the real request is authenticated as usual. */
#ifndef HTTP_CORS_H
#define HTTP_CORS_H
#include <stdbool.h>

#define CORS_ALLOW_HEADERS "apikey, authorization, content-type"
#define CORS_EXPOSE_HEADERS "Location, Retry-After, WWW-Authenticate"
#define CORS_MAX_AGE "600"

/* The Access-Control-Allow-Origin value for this request's Origin header, or NULL
 * when there is none, CORS is off (empty list) or the origin is not listed. */
const char *cors_allow_origin(const char *allowed, const char *origin);

#endif
