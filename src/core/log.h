/* Structured logging: one JSON line per event on stderr, never biometric data. */
#ifndef CORE_LOG_H
#define CORE_LOG_H
#include <stdbool.h>

void log_request(const char *method, const char *path, int status, double ms, const char *key_name,
                 const char *correlation_id, const char *error_id, const char *error_message);
/* Events at "debug" are written only after log_enable_debug(true) (setting
 * log_level = debug); every other level always is. Set once at start-up. */
void log_enable_debug(bool on);
void log_event(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
