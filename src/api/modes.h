/* The biometric modes named by the reference. A mode is an algorithm choice: every
 * face records the mode it was made in, and templates of different algorithms are
 * never compared (400). Two algorithms today, each with its own FAR calibration:
 * the fast one (fr_feature, calibration/far-v1.txt) and the accurate one of
 * F5_2_VID75 (fr_feature fused with dlib's ResNet and MobileFaceNet,
 * face/embed_accurate.c, calibration/far-accurate-v2.txt); numbers in
 * docs/calibration.md. When a mode changes algorithm, the old one stays listed as
 * retired (modes.c), so its templates get a clear 400 instead of a wrong score. */
#ifndef API_MODES_H
#define API_MODES_H
#include <stdbool.h>

typedef struct {
    const char *name;
    const char *algorithm; /* faces compare only within one algorithm */
    bool accurate;         /* the pipeline's accurate embedding (face_options.accurate) */
    int dim;               /* the algorithm's embedding dimension (checked against the
                            * loaded models at start-up, app.c) */
} biometric_mode;

extern const biometric_mode biometric_modes[];
/* NULL when the name is not a mode at all. */
const biometric_mode *biometric_mode_find(const char *name);
/* The algorithm that made an embedding of dimension dim in mode: the mode's current
 * algorithm, one it ran before (retired), or NULL when neither. */
const char *biometric_algorithm_of(const char *mode, int dim);
/* True when faces made in modes a and b may be compared (both known, one algorithm). */
bool biometric_modes_comparable(const char *a, const char *b);
/* The same for two stored embeddings: true only when both are of their mode's
 * current algorithm (told from a retired one by the dimension), the same for both;
 * a retired algorithm has no calibration left to score with. */
bool biometric_faces_comparable(const char *mode_a, int dim_a, const char *mode_b, int dim_b);
/* True for a mode that runs the accurate algorithm; false for any other name. */
bool biometric_mode_accurate(const char *name);

#endif
