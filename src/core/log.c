/* JSON-lines logger; see log.h. Lines are built whole, then written with one call
 * so concurrent threads never interleave inside a line. */
#include "core/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"

static void emit(json_t *line) {
    char ts[ISO_TIME_LEN];
    time_format_iso(time_now_ms(), ts);
    json_object_set_new(line, "ts", json_string(ts));
    char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(line);
    if (!text) return;
    size_t n = strlen(text);
    text[n] = '\n';
    ssize_t w = write(STDERR_FILENO, text, n + 1);
    (void)w;
    free(text);
}

void log_request(const char *method, const char *path, int status, double ms, const char *key_name,
                 const char *correlation_id, const char *error_id, const char *error_message) {
    json_t *line = json_pack("{s:s,s:s,s:s,s:i,s:f}", "event", "request", "method", method, "path",
                             path, "status", status, "ms", ms);
    if (!line) return;
    if (key_name) json_object_set_new(line, "key", json_string(key_name));
    if (correlation_id) json_object_set_new(line, "correlationId", json_string(correlation_id));
    if (error_id) json_object_set_new(line, "errorId", json_string(error_id));
    if (error_message) json_object_set_new(line, "error", json_string(error_message));
    emit(line);
}

/* Written once before the server threads start, read-only afterwards. */
static bool debug_enabled;

void log_enable_debug(bool on) { debug_enabled = on; }

void log_event(const char *level, const char *fmt, ...) {
    if (!debug_enabled && !strcmp(level, "debug")) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *line = json_pack("{s:s,s:s}", "level", level, "message", msg);
    if (line) emit(line);
}
