/* tfjs_load.c - TF.js graph models into the internal graph (placeholder). */
#include "nn/graph.h"
int nn_tfjs_load(nn_graph *g, const char *path) { return nn_fail(g, "%s: TF.js loader not built yet", path); }
