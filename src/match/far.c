/* Similarity → FAR lookup with linear interpolation of log10(FAR) between the
 * measured points and a fitted straight tail beyond them; see far.h. */
#include "match/far.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int far_table_load(far_table *t, const char *path, char *err, size_t err_len) {
    memset(t, 0, sizeof(*t));
    t->min_log10_far = -15;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "cannot open FAR calibration %s", path);
        return -1;
    }
    char line[256];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        float s;
        double v;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (sscanf(line, "tail_slope %lf", &v) == 1) t->tail_slope = v;
        else if (sscanf(line, "min_log10_far %lf", &v) == 1) t->min_log10_far = v;
        else if (sscanf(line, "%f %lf", &s, &v) == 2 && t->count < FAR_TABLE_MAX &&
                 (t->count == 0 || (s > t->similarity[t->count - 1] && v <= t->log10_far[t->count - 1])) && v <= 0) {
            t->similarity[t->count] = s;
            t->log10_far[t->count] = v;
            t->count++;
        } else {
            snprintf(err, err_len, "%s:%d: expected increasing 'similarity log10_far' pairs", path, lineno);
            rc = -1;
        }
    }
    fclose(f);
    if (rc == 0 && (t->count < 2 || t->tail_slope >= 0)) {
        snprintf(err, err_len, "%s: needs at least two points and a negative tail_slope", path);
        rc = -1;
    }
    return rc;
}

double far_from_similarity(const far_table *t, float s) {
    double l;
    if (s <= t->similarity[0]) {
        l = t->log10_far[0];
    } else if (s >= t->similarity[t->count - 1]) {
        l = t->log10_far[t->count - 1] + t->tail_slope * (s - t->similarity[t->count - 1]);
    } else {
        int lo = 0, hi = t->count - 1; /* binary search: similarity[lo] <= s < similarity[hi] */
        while (hi - lo > 1) {
            int mid = (lo + hi) / 2;
            if (t->similarity[mid] <= s) lo = mid;
            else hi = mid;
        }
        double w = (s - t->similarity[lo]) / (t->similarity[hi] - t->similarity[lo]);
        l = t->log10_far[lo] + w * (t->log10_far[hi] - t->log10_far[lo]);
    }
    if (l < t->min_log10_far) l = t->min_log10_far;
    if (l > 0) l = 0;
    return pow(10.0, l);
}

double far_to_score(double far) { return 1500.0 + 500.0 * -log10(far); }

double far_from_score(double score) { return pow(10.0, -(score - 1500.0) / 500.0); }
