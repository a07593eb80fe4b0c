/* Parsing of the multipart requests that carry an image: the `face` (or `age`)
 * JSON part, the binary image part and the loose text parts (correlationId...). */
#ifndef API_FACE_INPUT_H
#define API_FACE_INPUT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "face/pipeline.h"
#include "http/multipart.h"
#include "http/request.h"

typedef struct {
    const char *image_type, *friendly_name, *mode, *correlation_id, *evidence_id;
    bool rotation, signature_disabled;
    const uint8_t *image;
    size_t image_len;
} face_input;

/* Checks the multipart media type (415) and parses the body (400). */
bool api_parse_multipart(http_request *req, multipart_body *body);
/* Text value of a part, surrounding quotes removed; NULL when absent. */
const char *api_part_text(http_request *req, const multipart_body *body, const char *name);
/* Optional boolean part: "true"/"false"; replies 400 and returns false on junk. */
bool api_part_bool(http_request *req, const multipart_body *body, const char *name, bool *value);

/* CreateFace / CreateDirectFace: parts `face` (JSON) and `image`. */
bool api_parse_face_input(http_request *req, face_input *in);

/* Face resource JSON (spec field order). expires_ms 0 = not stored. template may be NULL. */
json_t *api_face_json(const face_input *in, const face_result *r, const char *id, const char *mode,
                      const char *template_b64, int64_t created_ms, int64_t expires_ms);
/* The summary used inside matches: no template, no times. */
json_t *api_face_summary(json_t *face);

#endif
