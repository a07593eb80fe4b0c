/* The template keys the template and face-JSON harnesses use: a version 2 key ring
 * made once in the scratch directory, and the fixed version 1 MAC key the committed
 * seeds were made with (tests/fuzz/corpus/template/), accepted as legacy templates. */
#ifndef FUZZ_TEMPLATES_H
#define FUZZ_TEMPLATES_H
#include "face/template.h"
#include "fuzz_util.h"

#define FUZZ_TENANT "fuzz-tenant"

static inline const template_keys *fuzz_template_keys(void)
{
    static const uint8_t v1_key[TEMPLATE_V1_KEY_LEN] = "bioserver-fuzz-template-key-0001";
    static template_keys keys;
    if (!keys.ring) {
        char err[256];
        keys.ring = data_keyring_load_or_create(fuzz_scratch_dir(), err, sizeof err);
        if (!keys.ring) abort();
        keys.v1_mac_key = v1_key;
    }
    return &keys;
}

#endif
