/* nn_model_load on a TF.js graph model: the input is model.json, a NUL byte, then
 * the bytes of the one weight shard "weights.bin" beside it (the seeds rewrite
 * the real models' manifests to that single shard). A model that loads and
 * is small is also run once on zeros. */
#include "nn/nn.h"
#include "nn/nn_internal.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    const uint8_t *nul = memchr(data, 0, len);
    size_t json_len = nul ? (size_t)(nul - data) : len;
    const uint8_t *bin = nul ? nul + 1 : data + len;
    fuzz_write_file("weights.bin", bin, len - (size_t)(bin - data));
    char err[512];
    nn_model *m = nn_model_load(fuzz_write_file("model.json", data, json_len), err, sizeof err);
    fuzz_run_once(m);
    nn_model_free(m);
    return 0;
}
