/* nn_model_load on an arbitrary .tflite file: a load error is fine, a crash is not.
 * A model that loads and is small is also run once on zeros, so the glue
 * kernels see every shape the loader accepted. The same file is loaded again with
 * its batch set to 1 (nn_model_load_batch, as the accurate mode loads
 * MobileFaceNet), so the re-batched shapes go through the same checks. */
#include "nn/nn.h"
#include "nn/nn_internal.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char err[512];
    const char *path = fuzz_write_file("model.tflite", data, len);
    for (int batch = 0; batch <= 1; batch++) {
        nn_model *m = nn_model_load_batch(path, batch, err, sizeof err);
        fuzz_run_once(m);
        nn_model_free(m);
    }
    return 0;
}
