/* Liveness evidence for the replay-liveness API (settings evidence_*, README):
 * which objects of an evaluated capture go to the object store, the shared record
 * of their fate, and its members in the metadata (imageStorage, videoStorage,
 * evidenceStorage). The uploading itself is src/liveness/evidence.h.
 *
 * The record is the store item kind EVIDENCE_KIND, id LIVENESS_ITEM, expiring with
 * the session: {"captureId", "nonce", "status": PENDING|STORED|FAILED, "reason",
 * "pending": [slots], "imageStorage", "videoStorage"}. It is apart from the
 * liveness item on purpose: the uploader never rewrites the item whose status the
 * compare-and-set rules of liveness_state.h guard. It names the capture it belongs
 * to (nonce = that capture's serverRandom), and the metadata shows it only with
 * that capture; a later capture of the same session writes a new record, and
 * results of the older one no longer touch it (captureId differs). */
#ifndef API_LIVENESS_EVIDENCE_H
#define API_LIVENESS_EVIDENCE_H
#include <jansson.h>
#include <stdbool.h>

#include "api/app.h"
#include "api/liveness_jobs.h"

#define EVIDENCE_KIND "evidence"

/* Starts the uploader when evidence_s3_url is set (a->evidence), taking empty keys
 * from BIOSERVER_S3_ACCESS_KEY / BIOSERVER_S3_SECRET_KEY, else AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY. -1 with err when it is set without credentials. */
int liveness_evidence_init(app *a, char *err, size_t err_len);

/* Worker thread, after the evaluation and before the verdict is stored: writes the
 * PENDING record and queues the objects the settings ask for (the best frame as
 * it was uploaded; the capture's frames as JSON, taken from job->capture_raw).
 * Never blocks on the object store. */
void liveness_evidence_keep(capture_job *job, const liveness_outcome *o);

/* Adds imageStorage / videoStorage (once stored) and evidenceStorage {status,
 * reason} to out when item (borrowed) has a record for its capture. */
void liveness_evidence_attach(app *a, const char *tenant, const char *sid, json_t *item, json_t *out);

/* The /v2/monitor component (a new reference), and whether it is failing: the last
 * upload attempt failed (after any success). */
json_t *liveness_evidence_component(app *a);
bool liveness_evidence_failing(app *a);

/* Appends the evidence counters (Prometheus text) to text (taken); NULL on
 * allocation failure. */
char *liveness_evidence_metrics(app *a, char *text);

#endif
