/* multipart_parse: the first line of the input is the Content-Type header value,
 * the rest the body. */
#include "fuzz_util.h"
#include "http/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    const uint8_t *nl = memchr(data, '\n', len);
    if (!nl) return 0;
    char *ctype = strndup((const char *)data, (size_t)(nl - data));
    arena *a = arena_create(4096);
    multipart_body body;
    char err[256];
    if (multipart_parse(a, ctype, nl + 1, len - (size_t)(nl + 1 - data), &body, err, sizeof err) == 0) {
        for (int i = 0; i < body.count; i++) {
            const multipart_part *p = &body.parts[i];
            if (p->len && (p->data < nl + 1 || p->data + p->len > data + len)) abort();
            if (p->name) multipart_find(&body, p->name);
        }
    }
    arena_free(a);
    free(ctype);
    return 0;
}
