/* The biometric modes named by the reference. A mode is an algorithm choice: every
 * face records the mode it was made in, and templates of different algorithms are
 * never compared (400). Today every mode runs the one measured pipeline
 * (face/pipeline.h, calibration/far-v1.txt), so all modes compare with each other;
 * a mode given its own algorithm gets its own `algorithm` name here. */
#ifndef API_MODES_H
#define API_MODES_H
#include <stdbool.h>

typedef struct {
    const char *name;
    const char *algorithm; /* faces compare only within one algorithm */
} biometric_mode;

extern const biometric_mode biometric_modes[];
/* NULL when the name is not a mode at all. */
const biometric_mode *biometric_mode_find(const char *name);
/* True when faces made in modes a and b may be compared (both known, one algorithm). */
bool biometric_modes_comparable(const char *a, const char *b);

#endif
