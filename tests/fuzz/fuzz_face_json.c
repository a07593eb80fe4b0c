/* api_check_face_json, the validation of a client-held face (CreateFaceFromJson,
 * GetMatches): the input is the JSON body. */
#include "fuzz_templates.h"
#include "api/app.h"
#include "api/handlers.h"
#include "http/request.h"

static app fuzz_app;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static const api_key_config key = {.tenant = FUZZ_TENANT, .name = "fuzz"};
    fuzz_app.templates = *fuzz_template_keys();
    json_t *face = json_loadb((const char *)data, len, 0, NULL);
    if (!face) return 0;
    http_request req = {.arena = arena_create(4096), .app = &fuzz_app, .key = &key};
    face_template tpl;
    bool ok = api_check_face_json(&req, face, &tpl);
    if (ok == (req.status != 0)) abort();   /* replied exactly when refused */
    json_decref(face);
    arena_free(req.arena);
    return 0;
}
