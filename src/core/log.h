/* Structured logging: one JSON line per event on stderr, never biometric data. */
#ifndef CORE_LOG_H
#define CORE_LOG_H

void log_request(const char *method, const char *path, int status, double ms, const char *key_name,
                 const char *correlation_id, const char *error_id, const char *error_message);
void log_event(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
