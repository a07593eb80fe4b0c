/* config_load_file (which applies each line through config_set) and
 * config_validate on an arbitrary configuration file. */
#include "fuzz_util.h"
#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static server_config cfg;   /* large: keep it off the stack */
    config_defaults(&cfg);
    char err[512];
    const char *path = fuzz_write_file("bioserver.conf", data, len);
    if (config_load_file(&cfg, path, err, sizeof err) == 0) config_validate(&cfg, err, sizeof err);
    return 0;
}
