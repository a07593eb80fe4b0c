/* nn_model_load on an arbitrary .tflite file: a load error is fine, a crash is not.
 * A model that loads and is small is also run once on zeros, so the glue
 * kernels see every shape the loader accepted. */
#include "nn/nn.h"
#include "nn/nn_internal.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char err[512];
    nn_model *m = nn_model_load(fuzz_write_file("model.tflite", data, len), err, sizeof err);
    fuzz_run_once(m);
    nn_model_free(m);
    return 0;
}
