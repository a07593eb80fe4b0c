/* Score and false acceptance rate of a comparison. The similarity of two
 * embeddings maps to a FAR through a table measured on impostor pairs (see
 * docs/calibration.md and `make calibrate`); the spec fixes the score scale:
 * score = 1500 + 500 * -log10(FAR), i.e. 2500 <-> 1%, 3500 <-> 0.01%. */
#ifndef MATCH_FAR_H
#define MATCH_FAR_H
#include <stddef.h>

#define FAR_TABLE_MAX 4096

typedef struct {
    int count;
    float similarity[FAR_TABLE_MAX]; /* increasing */
    double log10_far[FAR_TABLE_MAX]; /* non-increasing */
    double tail_slope;               /* d log10(FAR) / d similarity beyond the last point */
    double min_log10_far;            /* floor of the extrapolated tail */
} far_table;

/* File: '#' comments, "tail_slope S", "min_log10_far M", then "similarity log10_far" lines. */
int far_table_load(far_table *t, const char *path, char *err, size_t err_len);
/* FAR as a fraction in (0, 1]. */
double far_from_similarity(const far_table *t, float similarity);
double far_to_score(double far);
double far_from_score(double score);

#endif
