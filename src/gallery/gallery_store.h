/* Durable storage of galleries and their enrolled faces. Unlike bio-sessions,
 * nothing here expires. Two implementations behind one table of operations:
 *   sqlite_gallery_store.c  the embedded default: one SQLite database in the data
 *                           directory (WAL journal), survives restarts and crashes;
 *   redis_gallery_store.c   Redis, shared by every instance (durable with AOF).
 * Records are opaque JSON text (the api layer renders them) plus the float
 * embedding. Every call is thread safe. Errors are the STORE_* codes of
 * store/store.h; strings returned through out-parameters are malloc'd and owned by
 * the caller. Tenant and ids are scoped exactly as in store.h: another tenant's
 * gallery is STORE_NOT_FOUND. */
#ifndef GALLERY_GALLERY_STORE_H
#define GALLERY_GALLERY_STORE_H
#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

typedef struct gallery_store gallery_store;

typedef struct {
    const char *tenant, *gallery, *id, *external_id;
    const char *json; /* the face resource without template and signature */
    const float *embedding;
    int dim;
} gallery_face;

/* Callbacks: return false to stop the iteration. */
typedef bool (*gallery_row_fn)(void *ctx, const char *id, const char *json, long faces);
typedef bool (*gallery_face_fn)(void *ctx, const gallery_face *face);

/* A write made by another instance: a face added (with its embedding) or removed,
 * or a whole gallery dropped (face->id NULL). */
typedef enum { GALLERY_CHANGE_ADD, GALLERY_CHANGE_REMOVE, GALLERY_CHANGE_DROP } gallery_change;
typedef void (*gallery_change_fn)(void *ctx, gallery_change kind, const gallery_face *face);

typedef struct gallery_store_ops {
    const char *name;
    /* STORE_EXISTS for a taken id, STORE_FULL when the tenant has max galleries. */
    int (*gallery_create)(gallery_store *s, const char *tenant, const char *id, const char *json, long max);
    int (*gallery_get)(gallery_store *s, const char *tenant, const char *id, char **json, long *faces);
    /* Oldest first. */
    int (*gallery_list)(gallery_store *s, const char *tenant, gallery_row_fn fn, void *ctx);
    /* Deletes the gallery with all its faces. */
    int (*gallery_delete)(gallery_store *s, const char *tenant, const char *id);
    /* STORE_NOT_FOUND without the gallery, STORE_FULL when it holds max faces.
     * Returns only once the face is durable (see each implementation). */
    int (*face_put)(gallery_store *s, const gallery_face *face, long max);
    /* json and/or embedding may be NULL when not wanted (embedding: room for FACE_EMBEDDING_MAX). */
    int (*face_get)(gallery_store *s, const char *tenant, const char *gallery, const char *id, char **json,
                    float *embedding, int *dim);
    /* Oldest first; face->embedding is NULL here. total: faces in the gallery. */
    int (*face_list)(gallery_store *s, const char *tenant, const char *gallery, long offset, long limit,
                     gallery_face_fn fn, void *ctx, long *total);
    int (*face_delete)(gallery_store *s, const char *tenant, const char *gallery, const char *id);
    /* Deletes every face of external_id; fn sees each deleted face (json NULL). */
    int (*face_delete_external)(gallery_store *s, const char *tenant, const char *gallery, const char *external_id,
                                gallery_face_fn fn, void *ctx);
    /* Every face of every gallery (json NULL): how an instance builds its index. */
    int (*load_all)(gallery_store *s, gallery_face_fn fn, void *ctx);
    /* Shared stores only (NULL for the embedded one): the writes of other instances
     * since the previous call (the first call: since before load_all), oldest first. */
    int (*changes)(gallery_store *s, gallery_change_fn fn, void *ctx);
    void (*destroy)(gallery_store *s);
} gallery_store_ops;

struct gallery_store {
    const gallery_store_ops *ops;
};

/* path: the database file. full_sync: fsync every commit (see the .c file). */
gallery_store *gallery_store_sqlite_open(const char *path, bool full_sync, char *err, size_t err_len);

/* redis://HOST:PORT[/DB] with an optional AUTH password. */
gallery_store *gallery_store_redis_open(const char *url, const char *password, char *err, size_t err_len);

#endif
