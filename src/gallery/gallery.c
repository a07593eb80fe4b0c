/* Gallery service; see gallery.h. The registry maps (tenant, gallery) to its
 * index. Lock order: the registry lock, then an index's own lock. A search holds
 * the registry's read lock while it scans, so a gallery cannot be freed under it. */
#include "gallery/gallery.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "face/pipeline.h"
#include "gallery/gallery_index.h"
#include "match/similarity.h"

typedef struct {
    char *tenant, *gallery;
    gallery_index *index;
} registry_entry;

struct gallery_service {
    gallery_store *store;
    int search_threads;
    pthread_mutex_t sync_lock; /* one reader of the shared store's changes (or loader) at a time */
    atomic_bool loaded;        /* the indexes hold the store's faces */
    pthread_t follower;        /* shared stores: applies other instances' writes */
    bool following;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
    pthread_rwlock_t lock; /* guards entries */
    registry_entry *entries;
    size_t count, cap;
};

static registry_entry *find(gallery_service *svc, const char *tenant, const char *gallery) {
    for (size_t i = 0; i < svc->count; i++)
        if (!strcmp(svc->entries[i].gallery, gallery) && !strcmp(svc->entries[i].tenant, tenant)) return &svc->entries[i];
    return NULL;
}

/* Under the write lock. */
static gallery_index *find_or_add(gallery_service *svc, const char *tenant, const char *gallery) {
    registry_entry *e = find(svc, tenant, gallery);
    if (e) return e->index;
    if (svc->count == svc->cap) {
        size_t cap = svc->cap ? svc->cap * 2 : 16;
        registry_entry *grown = realloc(svc->entries, cap * sizeof(*grown));
        if (!grown) return NULL;
        svc->entries = grown;
        svc->cap = cap;
    }
    registry_entry n = {strdup(tenant), strdup(gallery), gallery_index_create()};
    if (!n.tenant || !n.gallery || !n.index) {
        free(n.tenant);
        free(n.gallery);
        gallery_index_free(n.index);
        return NULL;
    }
    svc->entries[svc->count++] = n;
    return n.index;
}

static int index_add(gallery_service *svc, const gallery_face *f) {
    uint8_t id[GALLERY_ID_BYTES];
    if (!gallery_id_parse(f->id, id)) return STORE_OK; /* ids are ours: never happens, never searchable */
    pthread_rwlock_wrlock(&svc->lock);
    gallery_index *gi = find_or_add(svc, f->tenant, f->gallery);
    int rc = gi ? gallery_index_add(gi, id, f->embedding, f->dim) : GALLERY_INDEX_NOMEM;
    pthread_rwlock_unlock(&svc->lock);
    return rc == GALLERY_INDEX_OK ? STORE_OK : rc == GALLERY_INDEX_DIM ? GALLERY_DIM_MISMATCH : STORE_NOMEM;
}

static bool index_remove(gallery_service *svc, const char *tenant, const char *gallery, const char *fid) {
    uint8_t id[GALLERY_ID_BYTES];
    if (!gallery_id_parse(fid, id)) return false;
    pthread_rwlock_rdlock(&svc->lock);
    registry_entry *e = find(svc, tenant, gallery);
    bool found = e && gallery_index_remove(e->index, id);
    pthread_rwlock_unlock(&svc->lock);
    return found;
}

static void index_drop(gallery_service *svc, const char *tenant, const char *gallery) {
    pthread_rwlock_wrlock(&svc->lock);
    registry_entry *e = find(svc, tenant, gallery);
    if (e) {
        free(e->tenant);
        free(e->gallery);
        gallery_index_free(e->index);
        *e = svc->entries[--svc->count];
    }
    pthread_rwlock_unlock(&svc->lock);
}

static bool load_one(void *ctx, const gallery_face *f) {
    return index_add(ctx, f) != STORE_NOMEM;
}

static void apply_change(void *ctx, gallery_change kind, const gallery_face *f) {
    gallery_service *svc = ctx;
    if (kind == GALLERY_CHANGE_ADD) index_add(svc, f);
    else if (kind == GALLERY_CHANGE_REMOVE) index_remove(svc, f->tenant, f->gallery, f->id);
    else index_drop(svc, f->tenant, f->gallery);
}

static void registry_clear(gallery_service *svc) {
    pthread_rwlock_wrlock(&svc->lock);
    for (size_t i = 0; i < svc->count; i++) {
        free(svc->entries[i].tenant);
        free(svc->entries[i].gallery);
        gallery_index_free(svc->entries[i].index);
    }
    svc->count = 0;
    pthread_rwlock_unlock(&svc->lock);
}

/* Builds the indexes from the store unless done; a failed load leaves them empty. */
static bool load(gallery_service *svc) {
    if (atomic_load(&svc->loaded)) return true;
    pthread_mutex_lock(&svc->sync_lock);
    if (!atomic_load(&svc->loaded)) {
        bool ok = svc->store->ops->load_all(svc->store, load_one, svc) == STORE_OK;
        if (!ok) registry_clear(svc);
        atomic_store(&svc->loaded, ok);
    }
    pthread_mutex_unlock(&svc->sync_lock);
    return atomic_load(&svc->loaded);
}

bool gallery_service_ready(gallery_service *svc) { return atomic_load(&svc->loaded); }

int gallery_service_sync(gallery_service *svc) {
    if (!svc->store->ops->changes) return STORE_OK;
    if (!atomic_load(&svc->loaded)) return STORE_UNAVAILABLE;
    pthread_mutex_lock(&svc->sync_lock);
    int rc = svc->store->ops->changes(svc->store, apply_change, svc);
    pthread_mutex_unlock(&svc->sync_lock);
    return rc;
}

/* Polls the shared store every FOLLOW_INTERVAL_MS until the service closes; loads
 * it first if that failed at start (Redis was down). */
#define FOLLOW_INTERVAL_MS 100
static void *follow(void *arg) {
    gallery_service *svc = arg;
    pthread_mutex_lock(&svc->stop_lock);
    while (!svc->stopping) {
        pthread_mutex_unlock(&svc->stop_lock);
        if (load(svc)) gallery_service_sync(svc);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += FOLLOW_INTERVAL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_mutex_lock(&svc->stop_lock);
        if (!svc->stopping) pthread_cond_timedwait(&svc->stop_cond, &svc->stop_lock, &ts);
    }
    pthread_mutex_unlock(&svc->stop_lock);
    return NULL;
}

gallery_service *gallery_service_open(const gallery_service_config *cfg, char *err, size_t err_len) {
    gallery_service *svc = calloc(1, sizeof(*svc));
    if (!svc || pthread_rwlock_init(&svc->lock, NULL)) {
        free(svc);
        cfg->store->ops->destroy(cfg->store);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    svc->store = cfg->store;
    svc->search_threads = cfg->search_threads;
    pthread_mutex_init(&svc->sync_lock, NULL);
    pthread_mutex_init(&svc->stop_lock, NULL);
    pthread_cond_init(&svc->stop_cond, NULL);
    /* The embedded store must be readable now; a shared one may be down for a while. */
    if (!load(svc) && !svc->store->ops->changes) {
        snprintf(err, err_len, "cannot read the galleries from the %s store", svc->store->ops->name);
        gallery_service_close(svc);
        return NULL;
    }
    if (svc->store->ops->changes) svc->following = pthread_create(&svc->follower, NULL, follow, svc) == 0;
    if (svc->store->ops->changes && !svc->following) {
        snprintf(err, err_len, "cannot start the thread following the %s store", svc->store->ops->name);
        gallery_service_close(svc);
        return NULL;
    }
    return svc;
}

void gallery_service_close(gallery_service *svc) {
    if (!svc) return;
    if (svc->following) {
        pthread_mutex_lock(&svc->stop_lock);
        svc->stopping = true;
        pthread_cond_signal(&svc->stop_cond);
        pthread_mutex_unlock(&svc->stop_lock);
        pthread_join(svc->follower, NULL);
    }
    registry_clear(svc);
    free(svc->entries);
    pthread_rwlock_destroy(&svc->lock);
    pthread_mutex_destroy(&svc->sync_lock);
    pthread_mutex_destroy(&svc->stop_lock);
    pthread_cond_destroy(&svc->stop_cond);
    if (svc->store) svc->store->ops->destroy(svc->store);
    free(svc);
}

gallery_store *gallery_service_store(gallery_service *svc) { return svc->store; }

/* The gallery's size fixes the embedding size of its faces (one model per server). */
static bool dim_fits(gallery_service *svc, const char *tenant, const char *gallery, int dim) {
    pthread_rwlock_rdlock(&svc->lock);
    registry_entry *e = find(svc, tenant, gallery);
    int have = e ? gallery_index_dim(e->index) : 0;
    pthread_rwlock_unlock(&svc->lock);
    return have == 0 || have == dim;
}

int gallery_enrol(gallery_service *svc, const gallery_face *face, long max_faces) {
    if (!dim_fits(svc, face->tenant, face->gallery, face->dim)) return GALLERY_DIM_MISMATCH;
    int rc = svc->store->ops->face_put(svc->store, face, max_faces);
    if (rc) return rc;
    rc = index_add(svc, face);
    /* Not searchable here means not enrolled: undo, so the store and index agree. */
    if (rc) svc->store->ops->face_delete(svc->store, face->tenant, face->gallery, face->id);
    return rc;
}

int gallery_remove_face(gallery_service *svc, const char *tenant, const char *gallery, const char *id) {
    int rc = svc->store->ops->face_delete(svc->store, tenant, gallery, id);
    if (!rc) index_remove(svc, tenant, gallery, id);
    return rc;
}

typedef struct {
    gallery_service *svc;
    long removed;
} removal;

static bool remove_one(void *ctx, const gallery_face *f) {
    removal *r = ctx;
    index_remove(r->svc, f->tenant, f->gallery, f->id);
    r->removed++;
    return true;
}

int gallery_remove_external(gallery_service *svc, const char *tenant, const char *gallery, const char *external_id,
                            long *removed) {
    int rc = svc->store->ops->gallery_get(svc->store, tenant, gallery, NULL, NULL);
    removal r = {svc, 0};
    if (!rc) rc = svc->store->ops->face_delete_external(svc->store, tenant, gallery, external_id, remove_one, &r);
    *removed = r.removed;
    return rc;
}

int gallery_drop(gallery_service *svc, const char *tenant, const char *gallery) {
    int rc = svc->store->ops->gallery_delete(svc->store, tenant, gallery);
    if (!rc) index_drop(svc, tenant, gallery);
    return rc;
}

/* The 4-bit scan's candidates, into cand (room for k); the count or a negative code. */
static int candidates(gallery_service *svc, const char *tenant, const char *gallery, const float *query, int dim,
                      size_t k, gallery_candidate *cand) {
    pthread_rwlock_rdlock(&svc->lock);
    registry_entry *e = find(svc, tenant, gallery);
    int n = e ? gallery_index_search(e->index, query, dim, k, svc->search_threads, cand) : 0;
    pthread_rwlock_unlock(&svc->lock);
    return n == GALLERY_INDEX_DIM ? GALLERY_DIM_MISMATCH : n == GALLERY_INDEX_NOMEM ? STORE_NOMEM : n;
}

static int by_similarity_desc(const void *a, const void *b) {
    float x = ((const gallery_hit *)a)->similarity, y = ((const gallery_hit *)b)->similarity;
    return (y > x) - (y < x);
}

int gallery_search(gallery_service *svc, const char *tenant, const char *gallery, const float *query, int dim,
                   size_t max_results, float min_similarity, gallery_hit *hits, size_t *count, long *size) {
    *count = 0;
    gallery_service_sync(svc); /* read-your-writes across instances; the follower does the rest */
    int rc = svc->store->ops->gallery_get(svc->store, tenant, gallery, NULL, size);
    if (rc) return rc;
    size_t k = max_results + GALLERY_RESCORE_EXTRA;
    gallery_candidate *cand = malloc(k * sizeof(*cand));
    gallery_hit *all = calloc(k, sizeof(*all));
    float *emb = malloc(FACE_EMBEDDING_MAX * sizeof(float));
    int n = cand && all && emb ? candidates(svc, tenant, gallery, query, dim, k, cand) : STORE_NOMEM;
    size_t found = 0;
    for (int i = 0; i < n; i++) {
        bool seen = false; /* a face indexed twice (see gallery_index_add) counts once */
        for (int p = 0; p < i && !seen; p++) seen = !memcmp(cand[p].id, cand[i].id, GALLERY_ID_BYTES);
        if (seen) continue;
        gallery_hit *h = &all[found];
        gallery_id_format(cand[i].id, h->id);
        int fd = 0;
        /* Deleted since the scan (STORE_NOT_FOUND): skip it. */
        if (svc->store->ops->face_get(svc->store, tenant, gallery, h->id, &h->json, emb, &fd)) continue;
        h->similarity = fd == dim ? embedding_similarity(query, emb, dim) : -1.0f;
        found++;
    }
    qsort(all, found, sizeof(*all), by_similarity_desc);
    for (size_t i = 0; i < found; i++) {
        if (*count < max_results && all[i].similarity >= min_similarity) hits[(*count)++] = all[i];
        else free(all[i].json);
    }
    free(cand);
    free(all);
    free(emb);
    return n < 0 ? n : STORE_OK;
}

void gallery_hits_free(gallery_hit *hits, size_t count) {
    for (size_t i = 0; i < count; i++) free(hits[i].json);
}
