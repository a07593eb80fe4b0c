/* Request counters and latency histograms per operation, plus per-API-key usage
 * of this instance, rendered in Prometheus text format. The billing counts that
 * /v2/usage reports live in the state store (shared by instances); this file only
 * counts how often writing them there failed. */
#ifndef HTTP_METRICS_H
#define HTTP_METRICS_H
#include <stddef.h>

#define METRICS_MAX_OPERATIONS 48
#define METRICS_MAX_KEYS 512 /* core/keyring.h KEYRING_MAX */

typedef struct metrics metrics;

/* operations: the NULL-terminated list of operation names of the route table, one
 * per row (repeats are kept once; at most METRICS_MAX_OPERATIONS distinct names). */
metrics *metrics_create(const char *const *operations, int key_count);
void metrics_free(metrics *m);
void metrics_record(metrics *m, const char *operation, int key_index, int status, double seconds);
/* Calls of one key per operation on this instance, successful or not. */
long metrics_key_usage(metrics *m, int key_index, const char *operation);
int metrics_operation_count(const metrics *m);
const char *metrics_operation_name(const metrics *m, int i);
/* One billing count that could not be written to the store. */
void metrics_usage_store_error(metrics *m);
/* Appends Prometheus text to a malloc'd buffer; key_names[i] labels key i. */
char *metrics_render(metrics *m, const char *const *key_names, int queue_depth, int busy_workers);

#endif
