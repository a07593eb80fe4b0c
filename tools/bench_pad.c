/* bench_pad - presentation-attack detection error rates of the replay-liveness
 * evaluation on data/spoof (ISO/IEC 30107-3 APCER: attacks accepted; BPCER: live
 * faces rejected), per security level:
 *   PASSIVE        every image is one capture;
 *   PASSIVE_VIDEO  each run of VIDEO_WINDOW consecutive frames (file-name order)
 *                  of one subject and label is one capture, timestamps 100 ms
 *                  apart. NUAA holds a few frames per recording, so a window can
 *                  span recordings of one subject: larger moves than a real video.
 * Uses the server's own code (liveness_analyze_frame, liveness_decide).
 *
 *   bench_pad [DATA_DIR [MODELS_DIR]]   (defaults ../shared/data, models) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "liveness/evaluate.h"

#define MAX_ITEMS 2000
#define VIDEO_WINDOW 4

typedef struct {
    char path[512];
    char recording[64]; /* label + subject folder */
    int attack;
    uint8_t *data;
    size_t len;
    liveness_frame_info info;
} item;

static int by_recording(const void *pa, const void *pb) {
    const item *a = pa, *b = pb;
    int c = strcmp(a->recording, b->recording);
    return c ? c : strcmp(a->path, b->path);
}

/* MANIFEST.tsv rows "nuaa/live/0001/0001_00_00_01_0.jpg<TAB>live|spoof<TAB>...". */
static int load_manifest(const char *data_dir, item *items) {
    char path[600], line[2048];
    snprintf(path, sizeof path, "%s/spoof/MANIFEST.tsv", data_dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (n < MAX_ITEMS && fgets(line, sizeof line, f)) {
        char file[400], label[32];
        if (sscanf(line, "%399[^\t]\t%31[^\t]", file, label) != 2 || strcmp(file, "file") == 0) continue;
        item *it = &items[n];
        snprintf(it->path, sizeof it->path, "%s/spoof/%s", data_dir, file);
        it->attack = strcmp(label, "live") != 0;
        const char *slash = strrchr(file, '/'), *prev = slash;
        while (prev && prev > file && prev[-1] != '/') prev--;
        if (!slash || !prev) continue;
        snprintf(it->recording, sizeof it->recording, "%s/%.*s", label, (int)(slash - prev), prev);
        n++;
    }
    fclose(f);
    return n;
}

static void report(const char *what, const item *items, int n, int window, liveness_type type,
                   const liveness_engine *unused) {
    (void)unused;
    printf("\n%s (%s)\n%-7s %6s %8s %8s %8s\n", liveness_type_name(type),
           window > 1 ? "4-frame windows" : "one image per capture", "level", "thr", "APCER%", "BPCER%", what);
    for (int level = LEVEL_LOW; level <= LEVEL_HIGH; level++) {
        int attacks = 0, accepted = 0, bona = 0, rejected = 0;
        for (int i = 0; i + window <= n; i++) {
            if (strcmp(items[i].recording, items[i + window - 1].recording)) continue;
            liveness_frame frames[VIDEO_WINDOW];
            liveness_frame_info infos[VIDEO_WINDOW];
            for (int k = 0; k < window; k++) {
                frames[k] = (liveness_frame){.timestamp_ms = 100 * k, .data = items[i + k].data, .len = items[i + k].len};
                infos[k] = items[i + k].info;
            }
            liveness_request rq = {.type = type, .level = level};
            liveness_outcome out;
            liveness_decide(&rq, frames, infos, window, &out);
            bool ok = out.verdict == VERDICT_SUCCESS;
            if (items[i].attack) attacks++, accepted += ok;
            else bona++, rejected += !ok;
        }
        printf("%-7s %6.2f %8.1f %8.1f   (%d attacks, %d bona fide)\n", liveness_level_name(level),
               liveness_level_thresholds(level).live_min, attacks ? 100.0 * accepted / attacks : 0,
               bona ? 100.0 * rejected / bona : 0, attacks, bona);
    }
}

int main(int argc, char **argv) {
    const char *data_dir = argc > 1 ? argv[1] : "../shared/data";
    const char *models = argc > 2 ? argv[2] : "models";
    static item items[MAX_ITEMS];
    int n = load_manifest(data_dir, items);
    if (n <= 0) {
        fprintf(stderr, "bench_pad: cannot read %s/spoof/MANIFEST.tsv\n", data_dir);
        return 1;
    }
    char err[512];
    face_engine *fe = face_engine_load(models, err, sizeof err);
    face_worker *fw = fe ? face_worker_create(fe, err, sizeof err) : NULL;
    liveness_engine *le = fw ? liveness_engine_load(models, err, sizeof err) : NULL;
    if (!le) {
        fprintf(stderr, "bench_pad: %s\n", err);
        return 1;
    }
    int no_face = 0;
    for (int i = 0; i < n; i++) {
        items[i].data = file_read_all(items[i].path, (size_t)1 << 28, &items[i].len);
        liveness_frame f = {.data = items[i].data, .len = items[i].len};
        if (!items[i].data || liveness_analyze_frame(le, fw, &f, 0, &items[i].info, err, sizeof err)) {
            fprintf(stderr, "bench_pad: %s: %s\n", items[i].path, items[i].data ? err : "unreadable");
            return 1;
        }
        no_face += !items[i].info.face;
        if (getenv("BENCH_PAD_VERBOSE"))
            printf("%s\t%s\tface=%d\tlive=%.4f\tyaw=%.3f\tq=%.1f\n", items[i].attack ? "spoof" : "live",
                   items[i].path, items[i].info.face, items[i].info.live, items[i].info.yaw, items[i].info.quality);
    }
    qsort(items, (size_t)n, sizeof(item), by_recording);
    printf("bench_pad: %d images from %s/spoof (%d without a detected face count as rejected)\n", n, data_dir, no_face);
    report("", items, n, 1, LIVENESS_PASSIVE, le);
    report("", items, n, VIDEO_WINDOW, LIVENESS_PASSIVE_VIDEO, le);
    for (int i = 0; i < n; i++) free(items[i].data);
    face_worker_free(fw); /* before the liveness models its sessions use */
    liveness_engine_free(le);
    face_engine_free(fe);
    return 0;
}
