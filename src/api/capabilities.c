/* GetCapabilities: version and biometric modes of this server, or 500 while it
 * cannot do its work. */
#include "api/common.h"
#include "api/handlers.h"
#include "api/modes.h"

void handle_capabilities(http_request *req) {
    const char *why = app_unavailable_reason(req->app);
    if (why) { /* the reference's "instance is not working properly" */
        http_reply_error(req, 500, "the instance is not working properly: %s", why);
        return;
    }
    json_t *modes = json_array();
    for (int i = 0; biometric_modes[i].name; i++)
        json_array_append_new(modes, json_string(biometric_modes[i].name));
    json_t *out = json_pack("{s:[s],s:s,s:o}", "currentMode", req->app->config.default_mode, "version",
                            req->app->config.version, "supportedModes", modes);
    http_reply_json(req, 200, out);
}
