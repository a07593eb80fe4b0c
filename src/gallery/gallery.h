/* Galleries: the durable store (gallery_store.h) and, per instance, one in-memory
 * index per gallery (gallery_index.h) built from the store at start and kept in
 * step with every write. Search scans the 4-bit index for candidates, then rescores
 * them with the stored float embeddings, so every returned similarity is exact.
 *
 * With a store shared by several instances (Redis), each write is also announced
 * to the others, whose indexes follow within a second (see redis_gallery_store.c);
 * gallery_service_sync() applies what has arrived. */
#ifndef GALLERY_GALLERY_H
#define GALLERY_GALLERY_H
#include <stdbool.h>
#include <stddef.h>

#include "gallery/gallery_store.h"

typedef struct gallery_service gallery_service;

typedef struct {
    gallery_store *store;  /* taken: closed with the service */
    int search_threads;    /* for galleries of GALLERY_INDEX_PARALLEL_MIN faces or more */
} gallery_service_config;

/* Builds every gallery's index from the store. NULL with err on failure (the store
 * is closed then too), except that a shared store that cannot be read yet (Redis
 * down) is retried by the following thread: the service is not ready until then. */
gallery_service *gallery_service_open(const gallery_service_config *cfg, char *err, size_t err_len);
void gallery_service_close(gallery_service *svc);
gallery_store *gallery_service_store(gallery_service *svc);
/* False until the indexes hold the store's faces; callers answer 503 meanwhile. */
bool gallery_service_ready(gallery_service *svc);
/* Applies the writes other instances made (shared stores; a no-op otherwise). */
int gallery_service_sync(gallery_service *svc);

/* Durable first, then indexed: an acknowledged face is never only in memory. */
int gallery_enrol(gallery_service *svc, const gallery_face *face, long max_faces);
int gallery_remove_face(gallery_service *svc, const char *tenant, const char *gallery, const char *id);
/* removed: how many faces had that externalId. */
int gallery_remove_external(gallery_service *svc, const char *tenant, const char *gallery, const char *external_id,
                            long *removed);
int gallery_drop(gallery_service *svc, const char *tenant, const char *gallery);

typedef struct {
    char id[37];
    float similarity; /* exact: float embeddings */
    char *json;       /* the face record (malloc'd) */
} gallery_hit;

/* The best max_results faces with similarity >= min_similarity, best first, into
 * hits (room for max_results; free each json with gallery_hits_free). size: the
 * gallery's face count. STORE_NOT_FOUND without the gallery; STORE_EXISTS is never
 * returned; -100 (GALLERY_DIM_MISMATCH) when the query's size differs from the
 * gallery's faces. */
#define GALLERY_DIM_MISMATCH (-100)
int gallery_search(gallery_service *svc, const char *tenant, const char *gallery, const float *query, int dim,
                   size_t max_results, float min_similarity, gallery_hit *hits, size_t *count, long *size);
void gallery_hits_free(gallery_hit *hits, size_t count);

/* How many extra candidates the 4-bit scan hands to the float rescoring (the exact
 * top 10 of 1M faces were always within the top 42: docs in gallery_index.h). */
#define GALLERY_RESCORE_EXTRA 64

#endif
