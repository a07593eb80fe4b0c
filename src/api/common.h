/* Helpers every resource handler uses: JSON input validation, signed responses,
 * store-error mapping and session lookup.
 *
 * The reply rule, for these helpers and every api/ function built on them: a
 * function that returns NULL or false has already replied to the request (with the
 * error), so its caller only cleans up and returns. json_t ownership is stated per
 * function: "takes" means the reference passes to the callee, "borrows" that the
 * caller keeps it; returned json_t are new references. */
#ifndef API_COMMON_H
#define API_COMMON_H
#include <jansson.h>
#include <stdbool.h>

#include "api/app.h"
#include "http/request.h"

typedef enum { FIELD_STRING, FIELD_BOOL, FIELD_INT, FIELD_NUMBER, FIELD_OBJECT, FIELD_ANY } field_type;

typedef struct {
    const char *name;
    field_type type;
    size_t max_len; /* strings only; 0 = 256 */
} field_spec;

/* Checks the known fields of obj for their types and lengths (null = absent) and
 * rewrites them canonically: FIELD_BOOL accepts true/false and the strings
 * "true"/"false" in any case and becomes a JSON boolean; FIELD_NUMBER accepts a
 * number or a string holding one ("18") and becomes a number; FIELD_INT the same,
 * then the nearest integer (halves away from zero). Unknown fields
 * are ignored (logged at debug). On error replies 400 naming the field and
 * returns false. */
bool api_check_fields(http_request *req, json_t *obj, const field_spec *fields, const char *what); /* borrows obj */

/* Parses the JSON body (needs Content-Type application/json → else 415). Accepts
 * a one-element array wrapping the object when allow_array, as in the spec's curl
 * examples. Returns a new reference or NULL after replying. */
json_t *api_parse_json_object(http_request *req, bool allow_array);
json_t *api_parse_json_text(http_request *req, const char *text, size_t len, const char *what);

/* Adds "signature" to obj (borrowed; compact JWS over its serialisation without it)
 * as its last member; false on failure, without replying. */
bool api_sign_object(http_request *req, json_t *obj, bool detached);
/* text[0..len), an object's compact JSON as http_reply_json would send it, signed
 * as api_sign_object does, in place: "signature" is added as its last member. text
 * holds api_signed_text_size(a, len) bytes. Returns the new length (text stays
 * NUL-terminated), 0 on failure. Uses no request state: any thread may call it. */
size_t api_sign_text(const app *a, char *text, size_t len);
size_t api_signed_text_size(const app *a, size_t len);

/* Adds "signature" (compact JWS over the compact JSON of body without it) unless
 * disabled, then replies; takes body. detached: the JWS carries no payload (large
 * bodies). */
void api_reply_signed(http_request *req, int status, json_t *body, bool signature_disabled, bool detached);

/* Maps a store error to a response; not_found_what names the missing thing. */
void api_reply_store_error(http_request *req, int rc, const char *not_found_what);

/* Loads the caller's session (404 if absent, expired or another tenant's). */
json_t *api_load_session(http_request *req, const char *session_id, int64_t *expires_ms);

const char *api_json_string(json_t *obj, const char *name); /* NULL if absent/null */
/* 1 / 0 for a boolean or "true"/"false" (any case), -1 for anything else. */
int api_bool_value(json_t *v);

/* Sets "created" and, when expires_ms is not 0, "expires" (ISO 8601, ms, UTC). */
void api_set_times(json_t *obj, int64_t created_ms, int64_t expires_ms);

#endif
