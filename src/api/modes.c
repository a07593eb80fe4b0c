/* Mode table: every mode in the spec is either served or refused with a reason. */
#include "api/modes.h"

#include <string.h>

const biometric_mode biometric_modes[] = {
    {"F5_1_VID60", true, NULL},
    {"F5_3_VID60", true, NULL},
    {"F5_2_VID75", false, "mode F5_2_VID75 is not supported by this server; use F5_1_VID60"},
    {"F5_1_VID0", false, "mode F5_1_VID0 is not supported by this server; use F5_1_VID60"},
    {NULL, false, NULL},
};

const biometric_mode *biometric_mode_find(const char *name) {
    for (int i = 0; biometric_modes[i].name; i++)
        if (!strcmp(biometric_modes[i].name, name)) return &biometric_modes[i];
    return NULL;
}
