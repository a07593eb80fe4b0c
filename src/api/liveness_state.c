/* Replay-liveness state shared by every instance; see liveness_state.h. */
#include "api/liveness_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "core/log.h"
#include "liveness/notifier.h"

#define CAS_RETRIES 8

/* ---- session record and item helpers --------------------------------------------- */

int liveness_snapshot_load(store *st, const char *tenant, const char *sid, liveness_snapshot *s) {
    memset(s, 0, sizeof(*s));
    int rc = st->ops->session_get(st, tenant, sid, &s->raw, NULL);
    if (rc) return rc;
    s->json = json_loadb((const char *)s->raw.data, s->raw.len, 0, NULL);
    if (!s->json) {
        store_value_free(&s->raw);
        return STORE_NOMEM;
    }
    return STORE_OK;
}

void liveness_snapshot_free(liveness_snapshot *s) {
    store_value_free(&s->raw);
    json_decref(s->json);
    memset(s, 0, sizeof(*s));
}

/* Moves the session record's liveness status from `from` (NULL = anything but
 * IN_PROGRESS) with nonce `nonce` (NULL = any) to `to`, under compare-and-set.
 * Returns STORE_OK, STORE_CONFLICT when the precondition does not hold, or another
 * store error. */
int liveness_session_transition(store *st, const char *tenant, const char *sid, const char *from, const char *nonce,
                              const char *to, const char *new_nonce) {
    for (int attempt = 0; attempt < CAS_RETRIES; attempt++) {
        liveness_snapshot s;
        int rc = liveness_snapshot_load(st, tenant, sid, &s);
        if (rc) return rc;
        const char *cur = api_json_string(s.json, "livenessStatus");
        const char *cur_nonce = api_json_string(s.json, "livenessNonce");
        bool ok = from ? cur && !strcmp(cur, from) : !(cur && !strcmp(cur, "IN_PROGRESS"));
        if (ok && nonce) ok = cur_nonce && !strcmp(cur_nonce, nonce);
        if (!ok) {
            liveness_snapshot_free(&s);
            return STORE_CONFLICT;
        }
        json_object_set_new(s.json, "livenessStatus", json_string(to));
        if (new_nonce) json_object_set_new(s.json, "livenessNonce", json_string(new_nonce));
        char *text = json_dumps(s.json, JSON_COMPACT);
        store_value v = {(uint8_t *)text, text ? strlen(text) : 0};
        rc = text ? st->ops->session_update(st, tenant, sid, &s.raw, &v) : STORE_NOMEM;
        free(text);
        liveness_snapshot_free(&s);
        if (rc != STORE_CONFLICT) return rc; /* a concurrent unrelated edit: read again */
    }
    return STORE_CONFLICT;
}

json_t *liveness_item_load(store *st, const char *tenant, const char *sid, int *rc) {
    store_value v = {0};
    *rc = st->ops->item_get(st, tenant, sid, LIVENESS_KIND, LIVENESS_ITEM, &v);
    if (*rc) return NULL;
    json_t *j = json_loadb((const char *)v.data, v.len, 0, NULL);
    store_value_free(&v);
    if (!j) *rc = STORE_NOMEM;
    return j;
}

int liveness_item_save(store *st, const char *tenant, const char *sid, json_t *item) {
    char *text = json_dumps(item, JSON_COMPACT);
    if (!text) return STORE_NOMEM;
    store_value v = {(uint8_t *)text, strlen(text)};
    int rc = st->ops->item_put(st, tenant, sid, LIVENESS_KIND, LIVENESS_ITEM, &v);
    free(text);
    return rc;
}

/* ---- TIMEOUT ---------------------------------------------------------------------- */

/* INITIALIZED past its deadline becomes TIMEOUT. True when this call made it so. */
bool liveness_apply_timeout(app *a, const char *tenant, const char *sid) {
    int rc;
    json_t *item = liveness_item_load(a->store, tenant, sid, &rc);
    if (!item) return false;
    const char *status = api_json_string(item, "status");
    json_int_t deadline = json_integer_value(json_object_get(item, "deadlineMs"));
    bool due = status && !strcmp(status, "INITIALIZED") && time_now_ms() >= deadline;
    bool done = due && liveness_session_transition(a->store, tenant, sid, "INITIALIZED", api_json_string(item, "serverRandom"),
                                          "TIMEOUT", NULL) == STORE_OK;
    if (done) {
        json_object_set_new(item, "status", json_string("TIMEOUT"));
        json_object_set_new(item, "reason", json_string("no capture was uploaded in time"));
        liveness_item_save(a->store, tenant, sid, item);
        log_event("info", "replay liveness of session %s timed out", sid);
    }
    json_decref(item);
    return done;
}

bool liveness_timeout_hook(void *ctx, const char *tenant, const char *sid) { return liveness_apply_timeout(ctx, tenant, sid); }

/* The session's callbackURL (malloc'd), or NULL. */
char *liveness_session_callback(store *st, const char *tenant, const char *sid) {
    liveness_snapshot s;
    if (liveness_snapshot_load(st, tenant, sid, &s) != STORE_OK) return NULL;
    const char *cb = api_json_string(s.json, "callbackURL");
    char *copy = cb ? strdup(cb) : NULL;
    liveness_snapshot_free(&s);
    return copy;
}

/* Applies a due TIMEOUT and, when this call made it so, sends the callback. */
void liveness_timeout_and_notify(app *a, const char *tenant, const char *sid) {
    if (!liveness_apply_timeout(a, tenant, sid)) return;
    char *cb = liveness_session_callback(a->store, tenant, sid);
    if (cb) liveness_notifier_callback(a->notifier, cb, sid);
    free(cb);
}

/* Deadline index members are ["tenant","session id"]: JSON, so no separator can be
 * forged by an id. */
static char *deadline_member(const char *tenant, const char *sid) {
    json_t *m = json_pack("[s,s]", tenant, sid);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    return text;
}

void liveness_deadline_due(void *ctx, const char *member) {
    app *a = ctx;
    json_t *m = json_loads(member, 0, NULL);
    const char *tenant = json_string_value(json_array_get(m, 0)), *sid = json_string_value(json_array_get(m, 1));
    if (a->notifier && tenant && sid) liveness_timeout_and_notify(a, tenant, sid);
    json_decref(m);
}

/* Files the TIMEOUT in the shared deadline index, so that any instance applies it
 * even if this one stops; without the store, this instance's notifier watches. */
void liveness_watch_deadline(app *a, const char *tenant, const char *sid, const char *callback, int64_t deadline) {
    char *member = deadline_member(tenant, sid);
    int rc = member ? a->store->ops->deadline_add(a->store, LIVENESS_DUE, member, deadline) : STORE_NOMEM;
    free(member);
    if (rc) liveness_notifier_watch(a->notifier, tenant, sid, callback, deadline);
}
