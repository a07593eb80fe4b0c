/* The biometric modes named by the reference. A mode is an algorithm choice: every
 * face records the mode it was made in, and templates of different algorithms are
 * never compared (400). Two algorithms today, each with its own FAR calibration:
 * the fast one (fr_feature, calibration/far-v1.txt) and the accurate one of
 * F5_2_VID75 (fr_feature fused with dlib's ResNet, face/embed_dlib.c,
 * calibration/far-accurate-v1.txt); numbers in docs/calibration.md. */
#ifndef API_MODES_H
#define API_MODES_H
#include <stdbool.h>

typedef struct {
    const char *name;
    const char *algorithm; /* faces compare only within one algorithm */
    bool accurate;         /* the pipeline's accurate embedding (face_options.accurate) */
} biometric_mode;

extern const biometric_mode biometric_modes[];
/* NULL when the name is not a mode at all. */
const biometric_mode *biometric_mode_find(const char *name);
/* True when faces made in modes a and b may be compared (both known, one algorithm). */
bool biometric_modes_comparable(const char *a, const char *b);
/* True for a mode that runs the accurate algorithm; false for any other name. */
bool biometric_mode_accurate(const char *name);

#endif
