/* The in-memory search index of one gallery: every face as a 4-bit quantised
 * embedding (one scale per face) compared with an int8 query, scanned exhaustively.
 * A million 512-d faces take 276 MB and one core scans them in about half the time
 * of int8 codes (the scan is memory-bandwidth bound; `make bench-gallery`). The scan
 * only proposes candidates: callers rescore them with the float embeddings from the
 * store (gallery.c), so quantisation never changes a returned score. Its error (std
 * 0.006 in cosine, measured on LFW + 1M random faces) is far below the gap between a
 * result and the candidates beyond: the exact top 10 were always within the top 42
 * (bench-gallery checks our top hit against a float scan).
 *
 * Faces are keyed by their 16-byte UUID. Thread safety: a read-write lock, many
 * concurrent searches, one writer. Every function is free(NULL)-style safe. */
#ifndef GALLERY_GALLERY_INDEX_H
#define GALLERY_GALLERY_INDEX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GALLERY_ID_BYTES 16

typedef struct gallery_index gallery_index;

typedef struct {
    uint8_t id[GALLERY_ID_BYTES];
    float similarity; /* from the 4-bit codes: within ~0.02 of the float one */
} gallery_candidate;

enum {
    GALLERY_INDEX_OK = 0,
    GALLERY_INDEX_NOMEM = -1,
    GALLERY_INDEX_DIM = -2, /* embedding size differs from the gallery's first face */
};

gallery_index *gallery_index_create(void);
void gallery_index_free(gallery_index *gi);

/* Appends a face (embedding L2-normalised, copied). Does not look for an existing
 * id (that would cost a scan per enrolment): a face added twice, as can happen
 * while an instance loads and follows a shared store at once, is two entries that
 * one remove deletes together and that searches report once. On failure the index
 * is unchanged. */
int gallery_index_add(gallery_index *gi, const uint8_t id[GALLERY_ID_BYTES], const float *embedding, int dim);
/* Removes every entry of the face (O(n) scan of ids: deletions are rare); true if found. */
bool gallery_index_remove(gallery_index *gi, const uint8_t id[GALLERY_ID_BYTES]);
size_t gallery_index_count(gallery_index *gi);
int gallery_index_dim(gallery_index *gi); /* 0 while empty */

/* The k faces with the highest approximate similarity to query, best first, into
 * out (room for k). Galleries of at least GALLERY_INDEX_PARALLEL_MIN faces are split
 * over `threads` threads. Returns the count (< k when the gallery is smaller),
 * or GALLERY_INDEX_DIM / GALLERY_INDEX_NOMEM. */
#define GALLERY_INDEX_PARALLEL_MIN 65536
int gallery_index_search(gallery_index *gi, const float *query, int dim, size_t k, int threads,
                         gallery_candidate *out);

/* Face UUID text <-> the index's 16 bytes; false on malformed text. */
bool gallery_id_parse(const char *uuid, uint8_t out[GALLERY_ID_BYTES]);
void gallery_id_format(const uint8_t id[GALLERY_ID_BYTES], char out[37]);

/* The code layout and the scan's kernels, exposed for tests: codes in [-7, 7] pack
 * into gallery_code_bytes(dim) bytes; the dot product of packed codes with an int8
 * query (zero-padded to a multiple of 128) is the plain sum of code[i] * query[i].
 * The scan uses the fastest kernel the CPU has (BEST). gallery_dot_int4 returns
 * false when the CPU lacks the kernel asked for. */
typedef enum { GALLERY_KERNEL_SCALAR, GALLERY_KERNEL_AVX2, GALLERY_KERNEL_VNNI, GALLERY_KERNEL_BEST } gallery_kernel;
size_t gallery_code_bytes(int dim);
void gallery_pack_int4(const int8_t *code, int dim, uint8_t *out);
bool gallery_dot_int4(gallery_kernel which, const uint8_t *codes, const int8_t *query, int dim, int32_t *dot);

#endif
