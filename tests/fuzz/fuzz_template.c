/* template_decode on arbitrary text (version 2, and version 1 as the committed seeds
 * were made: fuzz_templates.h). */
#include "fuzz_templates.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *text = strndup((const char *)data, len);
    face_template t;
    char err[256];
    if (template_decode(fuzz_template_keys(), FUZZ_TENANT, text, &t, err, sizeof err) == TEMPLATE_OK &&
        (t.dim < 1 || t.dim > FACE_EMBEDDING_MAX))
        abort();
    free(text);
    return 0;
}
