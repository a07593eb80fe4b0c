/* Shared by the nn loader tests: a model that must not load, and the words its
 * error has to contain. */
#ifndef NN_LOAD_EXPECT_H
#define NN_LOAD_EXPECT_H
#include <stdio.h>
#include <string.h>

#include "nn/nn.h"

/* Loads path, expects failure, a message that starts with the file, and every needle in it. */
static void expect_error(const char *path, const char *const *needles)
{
    char err[512] = "";
    nn_model *m = nn_model_load(path, err, sizeof err);
    if (m) {
        nn_model_free(m);
        fail_msg("%s loaded, expected an error mentioning \"%s\"", path, needles[0]);
    }
    print_message("  -> %s\n", err);
    if (strncmp(err, path, strlen(path)) != 0) fail_msg("error \"%s\" does not start with the file %s", err, path);
    for (int i = 0; needles[i]; i++)
        if (!strstr(err, needles[i])) fail_msg("error \"%s\" does not mention \"%s\"", err, needles[i]);
}
#define EXPECT_ERROR(path, ...) expect_error(path, (const char *const[]){__VA_ARGS__, NULL})

#endif
