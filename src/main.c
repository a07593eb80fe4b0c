/* bioserver entry point: read configuration, build the context, serve until
 * SIGTERM/SIGINT, then drain in-flight requests and exit. */
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/handlers.h"
#include "core/log.h"
#include "http/server.h"
#include "sign/data_keyring.h"

static void usage(void) {
    fprintf(stderr,
            "usage: bioserver [--config FILE] [--listen HOST:PORT] [--api-key KEY[:TENANT[:PERMS]]]...\n"
            "                 [--store memory|redis://HOST:PORT[/DB]] [--redis-password P]\n"
            "                 [--models DIR] [--data DIR]\n"
            "                 [--workers N] [--queue-depth N] [--http-threads N] [--max-body-bytes N]\n"
            "                 [--max-image-pixels N] [--session-ttl-default S] [--session-ttl-max S]\n"
            "                 [--tls-cert PEM --tls-key PEM] [--retry-after S]\n"
            "       bioserver [--config FILE] [--data DIR] --rotate-data-key   (docs/security.md)\n"
            "see README.md and bioserver.conf for every setting\n");
}

/* Without any configured key the server would be unusable: make a development key
 * and print it once, so `make run` works out of the box. */
static int add_development_key(server_config *cfg) {
    uint8_t raw[24];
    if (RAND_bytes(raw, sizeof raw) != 1) return -1;
    char key[64], err[128];
    hex_encode(raw, sizeof raw, key);
    if (config_add_key(cfg, key, err, sizeof err)) return -1;
    printf("development API key (all permissions, printed once): %s\n", key);
    fflush(stdout);
    return 0;
}

/* --rotate-data-key: a new current at-rest key in the data folder, then exit. */
static int rotate_data_key(const server_config *cfg) {
    char err[512];
    uint32_t id = data_keyring_rotate(cfg->data_dir, err, sizeof err);
    if (!id) {
        fprintf(stderr, "bioserver: %s\n", err);
        return 1;
    }
    printf("data key %u is now current in %s/%s: restart every instance that shares it; older keys still open "
           "what they sealed\n", id, cfg->data_dir, DATA_KEYRING_FILE);
    return 0;
}

int main(int argc, char **argv) {
    bool rotate = false;
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        }
        if (!strcmp(argv[i], "--rotate-data-key")) rotate = true;
        else argv[kept++] = argv[i];
    }
    argc = kept;
    server_config cfg;
    config_defaults(&cfg);
    char err[512];
    if (config_parse_args(&cfg, argc, argv, err, sizeof err) || config_validate(&cfg, err, sizeof err)) {
        fprintf(stderr, "bioserver: %s\n", err);
        usage();
        return 2;
    }
    if (rotate) return rotate_data_key(&cfg);
    log_enable_debug(cfg.log_debug);
    if (cfg.key_count == 0 && add_development_key(&cfg)) {
        fprintf(stderr, "bioserver: cannot generate a development key\n");
        return 1;
    }
    /* Block the stop signals in every thread; main waits for them with sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    static app a; /* lives for the whole process; too big for the stack */
    if (app_init(&a, &cfg, err, sizeof err)) {
        fprintf(stderr, "bioserver: %s\n", err);
        return 1;
    }
    http_server *server = http_server_start(&a, api_routes, err, sizeof err);
    if (!server) {
        fprintf(stderr, "bioserver: %s\n", err);
        app_cleanup(&a);
        return 1;
    }
    log_event("info", "listening on %s://%s:%d (store %s, %d workers, queue %d)",
              cfg.tls_cert[0] ? "https" : "http", cfg.listen_host, http_server_port(server),
              cfg.store_url, cfg.workers, cfg.queue_depth);
    int sig = 0;
    sigwait(&stop, &sig);
    log_event("info", "signal %d: draining in-flight requests", sig);
    http_server_stop(server, 30000);
    app_cleanup(&a);
    log_event("info", "stopped");
    return 0;
}
