/* The biometric modes named by the spec and which ones this server implements. */
#ifndef API_MODES_H
#define API_MODES_H
#include <stdbool.h>

typedef struct {
    const char *name;
    bool supported;
    const char *why_not; /* message for a rejected mode */
} biometric_mode;

extern const biometric_mode biometric_modes[];
/* NULL when the name is not a mode at all. */
const biometric_mode *biometric_mode_find(const char *name);

#endif
