/* The embedded gallery store: one SQLite database (Debian's libsqlite3) in the
 * data directory. One connection, one mutex: SQLite serialises writers anyway, and
 * a point query or a one-row commit takes tens of microseconds.
 *
 * Durability: journal_mode=WAL. With synchronous=NORMAL (the default) a commit is
 * in the WAL file, i.e. in the kernel, before face_put returns: it survives the
 * process being killed (kill -9, a crash), and only a power loss or kernel crash
 * may lose the last commits before a checkpoint. synchronous=FULL
 * (gallery_sync = full) also fsyncs every commit, surviving power loss at the
 * cost of one fsync per enrolment (`make bench-gallery` prints both rates).
 *
 * Schema: galleries(tenant, id, json, faces, seq) where `faces` is kept in step in
 * the same transaction, so limits never count rows; faces(seq, tenant, gallery, id,
 * external_id, json, embedding BLOB of dim floats). */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face/pipeline.h"
#include "gallery/gallery_store.h"

typedef struct {
    gallery_store base;
    sqlite3 *db;
    pthread_mutex_t lock;
} sqlite_store;

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS galleries(seq INTEGER PRIMARY KEY, tenant TEXT NOT NULL, id TEXT NOT NULL,"
    " json TEXT NOT NULL, faces INTEGER NOT NULL DEFAULT 0, UNIQUE(tenant, id));"
    "CREATE TABLE IF NOT EXISTS faces(seq INTEGER PRIMARY KEY, tenant TEXT NOT NULL, gallery TEXT NOT NULL,"
    " id TEXT NOT NULL, external_id TEXT NOT NULL, json TEXT NOT NULL, embedding BLOB NOT NULL,"
    " UNIQUE(tenant, gallery, id));"
    "CREATE INDEX IF NOT EXISTS faces_by_external ON faces(tenant, gallery, external_id);";

static sqlite_store *S(gallery_store *s) { return (sqlite_store *)s; }

/* Prepares sql and binds the leading text arguments (NULL ends the list). */
static sqlite3_stmt *prepare(sqlite_store *s, const char *sql, const char *const *texts) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
    for (int i = 0; texts && texts[i]; i++) sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
    return st;
}

static int exec(sqlite_store *s, const char *sql) {
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? STORE_OK : STORE_UNAVAILABLE;
}

/* Runs a statement that returns no rows; the number of changed rows or -1. */
static int run(sqlite_store *s, const char *sql, const char *const *texts) {
    sqlite3_stmt *st = prepare(s, sql, texts);
    int rc = st && sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(s->db) : -1;
    sqlite3_finalize(st);
    return rc;
}

static char *column_text(sqlite3_stmt *st, int col) {
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? strdup((const char *)t) : NULL;
}

static int gallery_create(gallery_store *gs, const char *tenant, const char *id, const char *json, long max) {
    sqlite_store *s = S(gs);
    pthread_mutex_lock(&s->lock);
    int rc = exec(s, "BEGIN IMMEDIATE");
    sqlite3_stmt *st = rc ? NULL : prepare(s, "SELECT COUNT(*), SUM(id = ?2) FROM galleries WHERE tenant = ?1",
                                           (const char *[]){tenant, id, NULL});
    if (!rc && (!st || sqlite3_step(st) != SQLITE_ROW)) rc = STORE_UNAVAILABLE;
    else if (!rc && sqlite3_column_int64(st, 1) > 0) rc = STORE_EXISTS;
    else if (!rc && sqlite3_column_int64(st, 0) >= max) rc = STORE_FULL;
    sqlite3_finalize(st);
    if (!rc && run(s, "INSERT INTO galleries(tenant, id, json) VALUES(?, ?, ?)", (const char *[]){tenant, id, json, NULL}) != 1)
        rc = STORE_UNAVAILABLE;
    if (!rc) rc = exec(s, "COMMIT");
    if (rc) exec(s, "ROLLBACK");
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int gallery_get(gallery_store *gs, const char *tenant, const char *id, char **json, long *faces) {
    sqlite_store *s = S(gs);
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = prepare(s, "SELECT json, faces FROM galleries WHERE tenant = ? AND id = ?",
                               (const char *[]){tenant, id, NULL});
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    int rc = step == SQLITE_ROW ? STORE_OK : step == SQLITE_DONE ? STORE_NOT_FOUND : STORE_UNAVAILABLE;
    if (!rc && json && !(*json = column_text(st, 0))) rc = STORE_NOMEM;
    if (!rc && faces) *faces = (long)sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int gallery_list(gallery_store *gs, const char *tenant, gallery_row_fn fn, void *ctx) {
    sqlite_store *s = S(gs);
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = prepare(s, "SELECT id, json, faces FROM galleries WHERE tenant = ? ORDER BY seq",
                               (const char *[]){tenant, NULL});
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    while (step == SQLITE_ROW &&
           fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
              (long)sqlite3_column_int64(st, 2)))
        step = sqlite3_step(st);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return step == SQLITE_ROW || step == SQLITE_DONE ? STORE_OK : STORE_UNAVAILABLE;
}

static int gallery_delete(gallery_store *gs, const char *tenant, const char *id) {
    sqlite_store *s = S(gs);
    const char *const key[] = {tenant, id, NULL};
    pthread_mutex_lock(&s->lock);
    int rc = exec(s, "BEGIN IMMEDIATE"), n = 0;
    if (!rc) n = run(s, "DELETE FROM galleries WHERE tenant = ? AND id = ?", key);
    if (!rc && n == 0) rc = STORE_NOT_FOUND;
    if (!rc && (n < 0 || run(s, "DELETE FROM faces WHERE tenant = ? AND gallery = ?", key) < 0)) rc = STORE_UNAVAILABLE;
    if (!rc) rc = exec(s, "COMMIT");
    if (rc) exec(s, "ROLLBACK");
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Adds delta to the gallery's face count; STORE_NOT_FOUND without the gallery. */
static int count_faces(sqlite_store *s, const char *tenant, const char *gallery, int delta) {
    char d[16];
    snprintf(d, sizeof d, "%d", delta);
    int n = run(s, "UPDATE galleries SET faces = faces + CAST(?3 AS INTEGER) WHERE tenant = ?1 AND id = ?2",
                (const char *[]){tenant, gallery, d, NULL});
    return n == 1 ? STORE_OK : n == 0 ? STORE_NOT_FOUND : STORE_UNAVAILABLE;
}

static int face_put(gallery_store *gs, const gallery_face *f, long max) {
    sqlite_store *s = S(gs);
    long faces = 0;
    pthread_mutex_lock(&s->lock);
    int rc = exec(s, "BEGIN IMMEDIATE");
    sqlite3_stmt *st = rc ? NULL : prepare(s, "SELECT faces FROM galleries WHERE tenant = ? AND id = ?",
                                           (const char *[]){f->tenant, f->gallery, NULL});
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (!rc) rc = step == SQLITE_ROW ? STORE_OK : step == SQLITE_DONE ? STORE_NOT_FOUND : STORE_UNAVAILABLE;
    if (!rc) faces = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!rc && faces >= max) rc = STORE_FULL;
    st = rc ? NULL : prepare(s, "INSERT INTO faces(tenant, gallery, id, external_id, json, embedding) VALUES(?,?,?,?,?,?)",
                             (const char *[]){f->tenant, f->gallery, f->id, f->external_id, f->json, NULL});
    if (st) sqlite3_bind_blob(st, 6, f->embedding, f->dim * (int)sizeof(float), SQLITE_STATIC);
    step = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (!rc) rc = step == SQLITE_DONE ? STORE_OK : sqlite3_errcode(s->db) == SQLITE_CONSTRAINT ? STORE_EXISTS : STORE_UNAVAILABLE;
    sqlite3_finalize(st);
    if (!rc) rc = count_faces(s, f->tenant, f->gallery, 1);
    if (!rc) rc = exec(s, "COMMIT");
    if (rc) exec(s, "ROLLBACK");
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Copies a float blob; false when its size is not a whole embedding. */
static bool column_embedding(sqlite3_stmt *st, int col, float *out, int *dim) {
    int bytes = sqlite3_column_bytes(st, col);
    if (bytes <= 0 || bytes % (int)sizeof(float) || bytes / (int)sizeof(float) > FACE_EMBEDDING_MAX) return false;
    if (out) memcpy(out, sqlite3_column_blob(st, col), (size_t)bytes);
    if (dim) *dim = bytes / (int)sizeof(float);
    return true;
}

static int face_get(gallery_store *gs, const char *tenant, const char *gallery, const char *id, char **json,
                    float *embedding, int *dim) {
    sqlite_store *s = S(gs);
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = prepare(s, "SELECT json, embedding FROM faces WHERE tenant = ? AND gallery = ? AND id = ?",
                               (const char *[]){tenant, gallery, id, NULL});
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    int rc = step == SQLITE_ROW ? STORE_OK : step == SQLITE_DONE ? STORE_NOT_FOUND : STORE_UNAVAILABLE;
    if (!rc && (embedding || dim) && !column_embedding(st, 1, embedding, dim)) rc = STORE_UNAVAILABLE;
    if (!rc && json && !(*json = column_text(st, 0))) rc = STORE_NOMEM;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int face_list(gallery_store *gs, const char *tenant, const char *gallery, long offset, long limit,
                     gallery_face_fn fn, void *ctx, long *total) {
    long faces = 0;
    int rc = gallery_get(gs, tenant, gallery, NULL, &faces);
    if (rc) return rc;
    if (total) *total = faces;
    sqlite_store *s = S(gs);
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = prepare(s, "SELECT id, external_id, json FROM faces WHERE tenant = ? AND gallery = ?"
                                  " ORDER BY seq LIMIT ? OFFSET ?", (const char *[]){tenant, gallery, NULL});
    if (st) sqlite3_bind_int64(st, 3, limit), sqlite3_bind_int64(st, 4, offset);
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    while (step == SQLITE_ROW) {
        gallery_face f = {tenant, gallery, (const char *)sqlite3_column_text(st, 0),
                          (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2), NULL, 0};
        if (!fn(ctx, &f)) break;
        step = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return step == SQLITE_ROW || step == SQLITE_DONE ? STORE_OK : STORE_UNAVAILABLE;
}

static int face_delete(gallery_store *gs, const char *tenant, const char *gallery, const char *id) {
    sqlite_store *s = S(gs);
    pthread_mutex_lock(&s->lock);
    int rc = exec(s, "BEGIN IMMEDIATE");
    int n = rc ? 0 : run(s, "DELETE FROM faces WHERE tenant = ? AND gallery = ? AND id = ?",
                         (const char *[]){tenant, gallery, id, NULL});
    if (!rc) rc = n == 1 ? count_faces(s, tenant, gallery, -1) : n == 0 ? STORE_NOT_FOUND : STORE_UNAVAILABLE;
    if (!rc) rc = exec(s, "COMMIT");
    if (rc) exec(s, "ROLLBACK");
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int face_delete_external(gallery_store *gs, const char *tenant, const char *gallery, const char *external_id,
                                gallery_face_fn fn, void *ctx) {
    sqlite_store *s = S(gs);
    const char *const key[] = {tenant, gallery, external_id, NULL};
    pthread_mutex_lock(&s->lock);
    int rc = exec(s, "BEGIN IMMEDIATE"), n = 0;
    sqlite3_stmt *st = rc ? NULL : prepare(s, "DELETE FROM faces WHERE tenant = ? AND gallery = ? AND external_id = ?"
                                              " RETURNING id", key);
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    for (; step == SQLITE_ROW; step = sqlite3_step(st), n++) {
        gallery_face f = {tenant, gallery, (const char *)sqlite3_column_text(st, 0), external_id, NULL, NULL, 0};
        fn(ctx, &f);
    }
    sqlite3_finalize(st);
    if (!rc && step != SQLITE_DONE) rc = STORE_UNAVAILABLE;
    if (!rc) rc = count_faces(s, tenant, gallery, -n);
    if (!rc) rc = exec(s, "COMMIT");
    if (rc) exec(s, "ROLLBACK");
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int load_all(gallery_store *gs, gallery_face_fn fn, void *ctx) {
    sqlite_store *s = S(gs);
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = prepare(s, "SELECT tenant, gallery, id, external_id, embedding FROM faces ORDER BY seq", NULL);
    int step = st ? sqlite3_step(st) : SQLITE_ERROR;
    float *emb = malloc(FACE_EMBEDDING_MAX * sizeof(float));
    for (; emb && step == SQLITE_ROW; step = sqlite3_step(st)) {
        gallery_face f = {(const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                          (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
                          NULL, emb, 0};
        if (column_embedding(st, 4, emb, &f.dim) && !fn(ctx, &f)) break;
    }
    free(emb);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return step == SQLITE_ROW || step == SQLITE_DONE ? STORE_OK : STORE_UNAVAILABLE;
}

static void destroy(gallery_store *gs) {
    sqlite_store *s = S(gs);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const gallery_store_ops sqlite_ops = {
    .name = "sqlite",
    .gallery_create = gallery_create,
    .gallery_get = gallery_get,
    .gallery_list = gallery_list,
    .gallery_delete = gallery_delete,
    .face_put = face_put,
    .face_get = face_get,
    .face_list = face_list,
    .face_delete = face_delete,
    .face_delete_external = face_delete_external,
    .load_all = load_all,
    .destroy = destroy,
};

gallery_store *gallery_store_sqlite_open(const char *path, bool full_sync, char *err, size_t err_len) {
    sqlite_store *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->lock, NULL);
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    char *msg = NULL;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(s->db, 5000); /* another process on the same file (a tool) */
        rc = sqlite3_exec(s->db, full_sync ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                           : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg);
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(s->db, schema, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(err, err_len, "gallery database %s: %s", path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        destroy(&s->base);
        return NULL;
    }
    return &s->base;
}
