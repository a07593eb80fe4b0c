/* Mode table: every mode the reference lists, with the algorithm it runs. */
#include "api/modes.h"

#include <string.h>

#define ALGORITHM_FAST "fr_feature-v1"   /* fr_detect + fr_landmark + fr_feature, 512-d */
#define ALGORITHM_ACCURATE "fusion-v1"   /* + fr_feature's mirror + dlib ResNet with mirror, 640-d */

const biometric_mode biometric_modes[] = {
    {"F5_1_VID60", ALGORITHM_FAST, false},
    {"F5_3_VID60", ALGORITHM_FAST, false},
    {"F5_2_VID75", ALGORITHM_ACCURATE, true}, /* the reference's accurate mode */
    {"F5_1_VID0", ALGORITHM_FAST, false},     /* CreateFaceFromImage's spelling */
    {NULL, NULL, false},
};

const biometric_mode *biometric_mode_find(const char *name) {
    for (int i = 0; name && biometric_modes[i].name; i++)
        if (!strcmp(biometric_modes[i].name, name)) return &biometric_modes[i];
    return NULL;
}

bool biometric_modes_comparable(const char *a, const char *b) {
    const biometric_mode *ma = biometric_mode_find(a), *mb = biometric_mode_find(b);
    return ma && mb && !strcmp(ma->algorithm, mb->algorithm);
}

bool biometric_mode_accurate(const char *name) {
    const biometric_mode *m = biometric_mode_find(name);
    return m && m->accurate;
}
