/* nn_model_load on an arbitrary .onnx file: a load error is fine, a crash is not. */
#include "fuzz_util.h"
#include "nn/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char err[512];
    nn_model *m = nn_model_load(fuzz_write_file("model.onnx", data, len), err, sizeof err);
    nn_model_free(m);
    return 0;
}
