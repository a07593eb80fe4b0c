/* GetCapabilities: version and biometric modes of this server. */
#include "api/common.h"
#include "api/handlers.h"
#include "api/modes.h"

void handle_capabilities(http_request *req) {
    json_t *modes = json_array();
    for (int i = 0; biometric_modes[i].name; i++)
        if (biometric_modes[i].supported) json_array_append_new(modes, json_string(biometric_modes[i].name));
    json_t *out = json_pack("{s:[s],s:s,s:o}", "currentMode", req->app->config.default_mode, "version",
                            req->app->config.version, "supportedModes", modes);
    http_reply_json(req, 200, out);
}
