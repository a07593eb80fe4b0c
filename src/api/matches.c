/* Matches: a session's reference face against every other face (GetMatches), a
 * client-held face JSON against an image (Match), and image against image
 * (Images Match). Each match carries the score on the spec's scale and the
 * measured false acceptance rate, and is signed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/analyze.h"
#include "api/common.h"
#include "api/face_input.h"
#include "api/face_store.h"
#include "api/handlers.h"
#include "api/modes.h"
#include "core/util.h"
#include "match/far.h"
#include "match/similarity.h"

/* Adds score and falseAcceptanceRate (percent) for a similarity, by the calibration
 * of the algorithm that made the embeddings (app_far). */
static void set_score(const far_table *table, json_t *match, float similarity) {
    double far = far_from_similarity(table, similarity);
    json_object_set_new(match, "score", json_real(far_to_score(far)));
    json_object_set_new(match, "falseAcceptanceRate", json_real(100.0 * far));
}

/* Everything of a match after "reference" and "candidate", in the reply's order. */
static void add_match_fields(const far_table *table, json_t *m, float similarity, const char *corr, const char *evid,
                             int64_t expires_ms) {
    set_score(table, m, similarity);
    if (corr) json_object_set_new(m, "correlationId", json_string(corr));
    if (evid) json_object_set_new(m, "evidenceId", json_string(evid));
    api_set_times(m, time_now_ms(), expires_ms);
}

static json_t *match_json(const far_table *table, json_t *reference, json_t *candidate, float similarity,
                          const char *corr, const char *evid, int64_t expires_ms) {
    json_t *m = json_pack("{s:o,s:o}", "reference", reference, "candidate", candidate);
    add_match_fields(table, m, similarity, corr, evid, expires_ms);
    return m;
}

/* A candidate face and its score, ranked before any JSON is built. */
typedef struct {
    size_t face;
    double far, score; /* the FAR the ranking computed, reused by the match's text */
} ranked_face;

static int by_score_desc(const void *a, const void *b) {
    double d = ((const ranked_face *)b)->score - ((const ranked_face *)a)->score;
    return (d > 0) - (d < 0);
}

/* GetMatches' reply under construction. Building and signing a match (~5 us with a
 * precomputed nonce, ~30 us without) is independent of the others, so the ranks are
 * spread over idle workers; each match keeps its own signature. A match's text is
 * spliced in one buffer from parts made before: the reference summary (once per
 * request), the candidate's summary (stored with the face), its score fields and the
 * fields all matches share (once per request), each as jansson serialises it. */
typedef struct {
    app *a;
    const face_match *faces;
    const ranked_face *ranked;
    const char *head; /* {"reference":<summary>,"candidate": */
    const char *tail; /* ,"correlationId":...,"created":...} */
    size_t head_len, tail_len;
    char **text;      /* per rank: the signed match as JSON text; NULL if that failed */
    size_t *text_len;
} match_batch;

static char *append(char *p, const char *s, size_t len) {
    memcpy(p, s, len);
    return p + len;
}

static void build_match(void *arg, size_t rank) {
    match_batch *b = arg;
    const ranked_face *r = &b->ranked[rank];
    const char *summary = b->faces[r->face].summary;
    char score[JSON_REAL_TEXT_MAX], rate[JSON_REAL_TEXT_MAX];
    size_t score_len = json_real_text(r->score, HTTP_JSON_REAL_DIGITS, score);
    size_t rate_len = json_real_text(100.0 * r->far, HTTP_JSON_REAL_DIGITS, rate);
    static const char score_key[] = ",\"score\":", rate_key[] = ",\"falseAcceptanceRate\":";
    size_t summary_len = strlen(summary);
    size_t len = b->head_len + summary_len + sizeof score_key - 1 + score_len + sizeof rate_key - 1 + rate_len +
                 b->tail_len;
    char *text = score_len && rate_len ? malloc(api_signed_text_size(b->a, len)) : NULL;
    if (!text) return;
    char *p = append(text, b->head, b->head_len);
    p = append(p, summary, summary_len);
    p = append(p, score_key, sizeof score_key - 1);
    p = append(p, score, score_len);
    p = append(p, rate_key, sizeof rate_key - 1);
    p = append(p, rate, rate_len);
    append(p, b->tail, b->tail_len + 1);
    b->text_len[rank] = api_sign_text(b->a, text, len);
    if (b->text_len[rank]) b->text[rank] = text;
    else free(text);
}

/* The text before and after a candidate's own fields; false when out of memory. */
static bool shared_parts(const face_match *ref, const char *corr, const char *evid, int64_t expires_ms, char **head,
                         char **tail) {
    json_t *shared = json_object();
    if (corr) json_object_set_new(shared, "correlationId", json_string(corr));
    if (evid) json_object_set_new(shared, "evidenceId", json_string(evid));
    api_set_times(shared, time_now_ms(), expires_ms); /* one creation time for the whole list */
    char *text = json_dumps(shared, HTTP_JSON_FLAGS);
    json_decref(shared);
    *head = *tail = NULL; /* both freed by the caller, whatever this returns */
    if (text && asprintf(head, "{\"reference\":%s,\"candidate\":", ref->summary) < 0) *head = NULL;
    if (text && asprintf(tail, ",%s", text + 1) < 0) *tail = NULL;
    free(text);
    return *head && *tail;
}

/* "[" + the texts joined by "," + "]": the JSON array of the signed matches. */
static void reply_texts(http_request *req, char **text, const size_t *text_len, size_t n) {
    size_t len = 2;
    for (size_t i = 0; i < n; i++) {
        if (!text[i]) {
            http_reply_error(req, 500, "internal error while signing the response");
            return;
        }
        len += text_len[i] + 1;
    }
    char *body = arena_alloc(req->arena, len), *p = body;
    if (!body) {
        http_reply_error(req, 500, "internal error: out of memory");
        return;
    }
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        p = append(p, text[i], text_len[i]);
    }
    *p++ = ']';
    http_reply_arena_bytes(req, 200, "application/json", body, (size_t)(p - body));
}

static void reply_matches(http_request *req, json_t *session, const face_match *faces, size_t n,
                          const face_match *ref, int64_t expires_ms) {
    app *a = req->app;
    ranked_face *ranked = arena_alloc(req->arena, (n ? n : 1) * sizeof(*ranked));
    char **text = calloc(n ? n : 1, sizeof(*text));
    size_t *text_len = arena_alloc(req->arena, (n ? n : 1) * sizeof(*text_len));
    if (!ranked || !text || !text_len) {
        free(text);
        http_reply_error(req, 500, "internal error: out of memory");
        return;
    }
    const char *corr = api_json_string(session, "correlationId"), *evid = api_json_string(session, "evidenceId");
    req->correlation_id = corr ? arena_strdup(req->arena, corr) : NULL;
    size_t count = 0;
    const far_table *far = app_far(a, ref->mode);
    for (size_t i = 0; i < n; i++) {
        if (&faces[i] == ref) continue;
        const face_match *c = &faces[i];
        float sim = c->dim == ref->dim ? embedding_similarity(ref->embedding, c->embedding, c->dim) : -1.0f;
        double f = far_from_similarity(far, sim);
        ranked[count++] = (ranked_face){i, f, far_to_score(f)};
    }
    qsort(ranked, count, sizeof(*ranked), by_score_desc);
    char *head, *tail;
    if (shared_parts(ref, corr, evid, expires_ms, &head, &tail)) {
        match_batch batch = {a, faces, ranked, head, tail, strlen(head), strlen(tail), text, text_len};
        worker_pool_parallel_for(a->workers, count, build_match, &batch);
        reply_texts(req, text, text_len, count);
    } else {
        http_reply_error(req, 500, "internal error: out of memory");
    }
    free(head);
    free(tail);
    for (size_t i = 0; i < count; i++) free(text[i]);
    free(text);
}

typedef struct {
    http_request *req;
    json_t *session;
    const face_match *faces;
    size_t n;
    const face_match *ref;
    int64_t expires_ms;
} matches_job;

static void matches_run(void *worker_ctx, void *arg) {
    (void)worker_ctx;
    matches_job *j = arg;
    reply_matches(j->req, j->session, j->faces, j->n, j->ref, j->expires_ms);
}

/* Scores need the measured calibration; without it answer 503, never a guess. */
static bool calibrated(http_request *req) {
    if (!req->app->far_loaded)
        http_reply_error(req, 503, "matching is unavailable: no FAR calibration is loaded (see the server log)");
    return req->app->far_loaded;
}

/* The first face whose template cannot be compared with the reference's. */
static const face_match *incomparable_face(const face_match *faces, size_t n, const face_match *ref) {
    for (size_t i = 0; i < n; i++)
        if (!biometric_faces_comparable(ref->mode, ref->dim, faces[i].mode, faces[i].dim)) return &faces[i];
    return NULL;
}

void handle_get_matches(http_request *req) {
    if (!calibrated(req)) return;
    int64_t expires_ms = 0;
    json_t *session = api_load_session(req, req->params[0], &expires_ms);
    if (!session) return;
    face_match *faces = NULL;
    size_t n = 0;
    if (face_store_matches(req, req->params[0], &faces, &n)) {
        const face_match *ref = NULL;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(faces[i].id, req->params[1])) ref = &faces[i];
        const face_match *other = ref ? incomparable_face(faces, n, ref) : NULL;
        matches_job job = {req, session, faces, n, ref, expires_ms};
        if (!ref) http_reply_error(req, 404, "bio-session or face not found");
        else if (other)
            http_reply_error(req, 400, "face %s (mode %s) was made by another algorithm than the reference face (mode %s): "
                             "faces compare only within one algorithm", other->id, other->mode,
                             ref->mode);
        /* Scoring is cheap but signing every match is not (~30 us each): a large
         * session is heavy work, so it takes a worker (and idle ones help) and
         * obeys back-pressure. */
        else api_run_on_worker(req, matches_run, &job);
    }
    face_matches_free(faces, n);
    json_decref(session);
}

/* A face made from one image of a direct match, in mode (the algorithm it is
 * compared with): summary JSON plus its embedding. */
static json_t *analyse_for_match(http_request *req, const uint8_t *img, size_t len, const char *type,
                                 bool rotation, const char *part, const char *mode, face_result **out) {
    face_result *r = api_analyze_image(req, img, len, rotation, false, mode);
    if (!r) return NULL;
    if (r->faces_found == 0) {
        http_reply_error(req, 400, "no face detected in '%s': send another image", part);
        return NULL;
    }
    face_input in = {.image_type = type, .image = img, .image_len = len, .rotation = rotation};
    char id[UUID_STR_LEN];
    uuid_generate(id);
    json_t *face = api_face_json(&in, r, id, mode, NULL, time_now_ms(), 0);
    json_t *summary = api_face_summary(face);
    json_object_del(summary, "digest");
    json_decref(face);
    *out = r;
    return summary;
}

static const char *image_type_part(http_request *req, const multipart_body *body, const char *name) {
    const char *t = api_part_text(req, body, name);
    if (!t) http_reply_error(req, 400, "the '%s' part is missing (SELFIE, ID_DOCUMENT or VIDEO_FRAME)", name);
    else if (!api_image_type_valid(t)) http_reply_error(req, 400, "%s '%s' is not one of SELFIE, ID_DOCUMENT, VIDEO_FRAME", name, t);
    else return t;
    return NULL;
}

static bool only_parts(http_request *req, const multipart_body *body, const char *const *allowed) {
    for (int i = 0; i < body->count; i++) {
        bool ok = false;
        for (int k = 0; body->parts[i].name && allowed[k]; k++) ok |= !strcmp(body->parts[i].name, allowed[k]);
        if (!ok) {
            http_reply_error(req, 400, "unexpected part '%s'", body->parts[i].name ? body->parts[i].name : "(unnamed)");
            return false;
        }
    }
    return true;
}

static const multipart_part *image_part(http_request *req, const multipart_body *body, const char *name) {
    const multipart_part *p = multipart_find(body, name);
    if (!p || !p->len) http_reply_error(req, 400, "the '%s' part is missing or empty", name);
    return p && p->len ? p : NULL;
}

void handle_match_images(http_request *req) {
    if (!calibrated(req)) return;
    static const char *const allowed[] = {"referenceImage", "candidateImage", "referenceImageType", "candidateImageType",
                                          "correlationId", "evidenceId", "imageRotationEnabled", NULL};
    multipart_body body;
    if (!api_parse_multipart(req, &body) || !only_parts(req, &body, allowed)) return;
    const multipart_part *ri = image_part(req, &body, "referenceImage");
    const multipart_part *ci = ri ? image_part(req, &body, "candidateImage") : NULL;
    const char *rt = ci ? image_type_part(req, &body, "referenceImageType") : NULL;
    const char *ct = rt ? image_type_part(req, &body, "candidateImageType") : NULL;
    bool rotation = false;
    if (!ct || !api_part_bool(req, &body, "imageRotationEnabled", &rotation)) return;
    req->correlation_id = api_part_text(req, &body, "correlationId");
    face_result *rr, *cr;
    const char *mode = req->app->config.default_mode;
    json_t *ref = analyse_for_match(req, ri->data, ri->len, rt, rotation, "referenceImage", mode, &rr);
    if (!ref) return;
    json_t *cand = analyse_for_match(req, ci->data, ci->len, ct, rotation, "candidateImage", mode, &cr);
    if (!cand) {
        json_decref(ref);
        return;
    }
    float sim = embedding_similarity(rr->embedding, cr->embedding, rr->embedding_dim);
    json_t *m = match_json(app_far(req->app, mode), ref, cand, sim, req->correlation_id,
                           api_part_text(req, &body, "evidenceId"), 0);
    api_reply_signed(req, 200, m, false, false);
}

void handle_match(http_request *req) {
    if (!calibrated(req)) return;
    static const char *const allowed[] = {"referenceFace", "candidateImage", "candidateImageType", "correlationId",
                                          "evidenceId", "imageRotationEnabled", NULL};
    multipart_body body;
    if (!api_parse_multipart(req, &body) || !only_parts(req, &body, allowed)) return;
    const multipart_part *rf = multipart_find(&body, "referenceFace");
    if (!rf) {
        http_reply_error(req, 400, "the 'referenceFace' part (face JSON with template) is missing");
        return;
    }
    const multipart_part *ci = image_part(req, &body, "candidateImage");
    const char *ct = ci ? image_type_part(req, &body, "candidateImageType") : NULL;
    bool rotation = false;
    if (!ct || !api_part_bool(req, &body, "imageRotationEnabled", &rotation)) return;
    json_t *face = api_parse_json_text(req, (const char *)rf->data, rf->len, "the 'referenceFace' part");
    if (!face) return;
    face_template *tpl = arena_alloc(req->arena, sizeof(*tpl));
    if (!json_is_object(face)) {
        http_reply_error(req, 400, "the 'referenceFace' part must be a JSON object");
    } else if (tpl && api_check_face_json(req, face, tpl)) {
        req->correlation_id = api_part_text(req, &body, "correlationId");
        face_result *cr;
        /* The candidate is embedded by the reference template's algorithm. */
        json_t *cand = analyse_for_match(req, ci->data, ci->len, ct, rotation, "candidateImage", tpl->mode, &cr);
        if (cand) {
            float sim = tpl->dim == cr->embedding_dim ? embedding_similarity(tpl->embedding, cr->embedding, tpl->dim) : -1.0f;
            json_t *ref = api_face_summary(face);
            json_object_del(ref, "landmarks");
            json_object_del(ref, "quality");
            json_object_del(ref, "digest");
            json_t *m = match_json(app_far(req->app, tpl->mode), ref, cand, sim, req->correlation_id,
                                   api_part_text(req, &body, "evidenceId"), 0);
            api_reply_signed(req, 200, m, false, false);
        }
    }
    json_decref(face);
}
