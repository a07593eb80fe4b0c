/* Mode table: every mode the reference lists, with the algorithm it runs. */
#include "api/modes.h"

#include <string.h>

/* fr_detect + fr_landmark + fr_feature, 512-d */
#define ALGORITHM_FAST "fr_feature-v1"
#define DIM_FAST 512
/* fr_feature, dlib's ResNet and MobileFaceNet, each with its mirror: 512 + 128 + 192 */
#define ALGORITHM_ACCURATE "fusion-v2"
#define DIM_ACCURATE 832

const biometric_mode biometric_modes[] = {
    {"F5_1_VID60", ALGORITHM_FAST, false, DIM_FAST},
    {"F5_3_VID60", ALGORITHM_FAST, false, DIM_FAST},
    {"F5_2_VID75", ALGORITHM_ACCURATE, true, DIM_ACCURATE}, /* the reference's accurate mode */
    {"F5_1_VID0", ALGORITHM_FAST, false, DIM_FAST},         /* CreateFaceFromImage's spelling */
    {NULL, NULL, false, 0},
};

/* Algorithms a mode ran before, told apart from its current one by their dimension:
 * their templates and faces are refused by name, never scored. */
static const struct {
    const char *mode, *algorithm;
    int dim;
} retired[] = {
    {"F5_2_VID75", "fusion-v1", 640}, /* fr_feature + dlib's ResNet, with mirrors */
};

const biometric_mode *biometric_mode_find(const char *name) {
    for (int i = 0; name && biometric_modes[i].name; i++)
        if (!strcmp(biometric_modes[i].name, name)) return &biometric_modes[i];
    return NULL;
}

const char *biometric_algorithm_of(const char *mode, int dim) {
    const biometric_mode *m = biometric_mode_find(mode);
    if (m && m->dim == dim) return m->algorithm;
    for (size_t i = 0; m && i < sizeof retired / sizeof retired[0]; i++)
        if (!strcmp(retired[i].mode, mode) && retired[i].dim == dim) return retired[i].algorithm;
    return NULL;
}

bool biometric_modes_comparable(const char *a, const char *b) {
    const biometric_mode *ma = biometric_mode_find(a), *mb = biometric_mode_find(b);
    return ma && mb && !strcmp(ma->algorithm, mb->algorithm);
}

bool biometric_faces_comparable(const char *mode_a, int dim_a, const char *mode_b, int dim_b) {
    const biometric_mode *ma = biometric_mode_find(mode_a), *mb = biometric_mode_find(mode_b);
    return ma && mb && ma->dim == dim_a && mb->dim == dim_b && !strcmp(ma->algorithm, mb->algorithm);
}

bool biometric_mode_accurate(const char *name) {
    const biometric_mode *m = biometric_mode_find(name);
    return m && m->accurate;
}
