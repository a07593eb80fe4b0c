/* template_decode on arbitrary text, with the fixed key the committed seeds were
 * made with (tests/fuzz/corpus/template/). */
#include "fuzz_util.h"
#include "face/template.h"

static const uint8_t KEY[TEMPLATE_KEY_LEN] = "bioserver-fuzz-template-key-0001";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *text = strndup((const char *)data, len);
    face_template t;
    char err[256];
    if (template_decode(KEY, text, &t, err, sizeof err) == TEMPLATE_OK &&
        (t.dim < 1 || t.dim > FACE_EMBEDDING_MAX))
        abort();
    free(text);
    return 0;
}
