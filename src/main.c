/* bioserver entry point: read configuration, build the context, check that the
 * whole API can be served, serve until SIGTERM/SIGINT (SIGHUP re-reads the keys
 * file and the TLS material), then drain in-flight requests and exit.
 * `--check-config` runs the same checks, lists every problem and exits. */
#include <errno.h>
#include <ftw.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/app.h"
#include "api/handlers.h"
#include "core/keyring.h"
#include "core/log.h"
#include "http/server.h"
#include "http/tls.h"
#include "sign/data_keyring.h"

static void usage(FILE *out) {
    fprintf(out, "usage: bioserver [--config FILE] [--check-config] [--SETTING VALUE]...\n"
                 "  --config FILE   read settings from FILE; relative paths in it are taken from FILE's folder\n"
                 "  --check-config  check the configuration (keys, paths, models, calibration, store, TLS),\n"
                 "                  list every problem and exit: 0 when there is none, 1 otherwise\n"
                 "  --rotate-data-key  add a new current at-rest data key in the data folder and exit\n"
                 "                  (docs/security.md)\n"
                 "  --help          this text\n"
                 "signals: SIGTERM/SIGINT drain and stop; SIGHUP re-reads keys_file and the TLS material\n");
#ifdef BIOSERVER_SHARE_DIR
    fprintf(out, "defaults: models, calibration, web under %s; data in %s\n", BIOSERVER_SHARE_DIR,
            BIOSERVER_STATE_DIR);
#endif
    config_print_help(out);
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

static void print_problem(const char *problem, void *ctx) {
    const char *prefix = ctx;
    fprintf(stderr, "%s%s\n", prefix, problem);
}

/* Prints each line of a newline-separated list of problems; returns how many. */
static int print_lines(const char *lines, const char *prefix) {
    int n = 0;
    for (const char *p = lines; *p; n++) {
        size_t len = strcspn(p, "\n");
        fprintf(stderr, "%s%.*s\n", prefix, (int)len, p);
        p += len + (p[len] == '\n');
    }
    return n;
}

/* data_dir must exist and be writable, or be creatable (the server makes it). */
static int check_data_dir(const char *dir, char *err, size_t err_len) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) snprintf(err, err_len, "data folder %s is not a folder", dir);
        else if (access(dir, W_OK | X_OK)) snprintf(err, err_len, "data folder %s is not writable", dir);
        else return 0;
        return -1;
    }
    if (mkdir(dir, 0700) == 0) { /* creatable: leave no trace of the check */
        rmdir(dir);
        return 0;
    }
    snprintf(err, err_len, "data folder %s does not exist and cannot be created (%s)", dir, strerror(errno));
    return -1;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static void count_problem(const char *problem, void *ctx) {
    fprintf(stderr, "problem: %s\n", problem);
    (*(int *)ctx)++;
}

/* --check-config: every problem on stderr, "configuration OK" on stdout. */
static int check_config(const server_config *cfg) {
    int problems = 0;
    char err[2048];
    if (config_validate(cfg, err, sizeof err)) problems += print_lines(err, "problem: ");
    if (cfg->tls_cert[0] && cfg->tls_key[0] && tls_material_check(cfg->tls_cert, cfg->tls_key, err, sizeof err))
        problems += print_lines(err, "problem: ");
    bool data_ok = check_data_dir(cfg->data_dir, err, sizeof err) == 0;
    if (!data_ok) problems += print_lines(err, "problem: ");
    keyring *keys = keyring_create(cfg, err, sizeof err);
    if (!keys) problems += print_lines(err, "problem: ");
    else if (keyring_active_count(keys) == 0)
        count_problem("no API key configured (api_key or keys_file): every request would be refused", &problems);
    keyring_free(keys);
    /* The keys and the data folder were checked above; the context is built
     * without the keys file, and on a scratch data folder when the real one is
     * unusable, so that the remaining checks (models, calibration...) still run. */
    server_config rest = *cfg;
    rest.keys_file[0] = '\0';
    char scratch[] = "/tmp/bioserver-check-XXXXXX";
    bool use_scratch = !data_ok && mkdtemp(scratch);
    if (use_scratch) snprintf(rest.data_dir, sizeof rest.data_dir, "%s", scratch);
    static app a;
    if (app_init(&a, &rest, err, sizeof err)) {
        problems += print_lines(err, "problem: ");
    } else {
        app_report_problems(&a, count_problem, &problems);
        const char *store_status = a.store->ops->status(a.store);
        if (strcmp(store_status, "UP")) {
            snprintf(err, sizeof err, "state store %s is not reachable: %s", cfg->store_url, store_status);
            count_problem(err, &problems);
        }
        app_cleanup(&a);
    }
    if (use_scratch) nftw(scratch, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (problems) fprintf(stderr, "bioserver: %d problem(s) in the configuration\n", problems);
    else printf("configuration OK\n");
    return problems ? 1 : 0;
}

/* SIGHUP: new keys and certificate without dropping a request. A bad file keeps
 * what is in use and says why. */
static void reload(app *a, http_server *server) {
    char err[1024];
    int added = 0, revoked = 0;
    if (a->config.keys_file[0]) {
        if (keyring_reload(a->keys, &added, &revoked, err, sizeof err))
            log_event("error", "SIGHUP: keys file not reloaded, the previous keys stay active: %s", err);
        else
            log_event("info", "SIGHUP: keys file reloaded: %d key(s) added, %d revoked, %d active", added, revoked,
                      keyring_active_count(a->keys));
    }
    if (a->config.tls_cert[0]) {
        if (http_server_reload_tls(server, err, sizeof err))
            log_event("error", "SIGHUP: TLS material not reloaded, the previous one stays in use: %s", err);
        else log_event("info", "SIGHUP: TLS certificate and key reloaded");
    }
}

/* Removes a command flag (--check-config, --rotate-data-key) from argv: the config
 * parser only knows settings. */
static bool take_flag(int *argc, char **argv, const char *flag) {
    bool found = false;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], flag)) found = true;
        else argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return found;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    bool check_only = take_flag(&argc, argv, "--check-config");
    bool rotate = take_flag(&argc, argv, "--rotate-data-key");
    server_config cfg;
    config_defaults(&cfg);
#ifdef BIOSERVER_SHARE_DIR
    config_use_install_dirs(&cfg, BIOSERVER_SHARE_DIR, BIOSERVER_STATE_DIR);
#endif
    char err[4096];
    if (config_parse_args(&cfg, argc, argv, err, sizeof err) ||
        (!check_only && config_validate(&cfg, err, sizeof err))) {
        print_lines(err, check_only ? "problem: " : "bioserver: ");
        if (!check_only) usage(stderr);
        return check_only ? 1 : 2;
    }
    if (rotate) return rotate_data_key(&cfg);
    log_enable_debug(cfg.log_debug);
    if (check_only) return check_config(&cfg);
    bool no_key = cfg.key_count == 0 && !cfg.keys_file[0];
    if ((no_key || cfg.generate_dev_key) && add_development_key(&cfg)) {
        fprintf(stderr, "bioserver: cannot generate a development key\n");
        return 1;
    }
    /* Block the signals in every thread; main waits for them with sigwait. */
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &handled, NULL);
    signal(SIGPIPE, SIG_IGN);

    static app a; /* lives for the whole process; too big for the stack */
    if (app_init(&a, &cfg, err, sizeof err)) {
        print_lines(err, "bioserver: ");
        return 1;
    }
    /* No silent half-service: missing models, calibration or web files stop the
     * start-up unless the operator asked for a degraded server. */
    if (app_report_problems(&a, print_problem, cfg.degraded_start ? "bioserver: degraded: " : "bioserver: ") &&
        !cfg.degraded_start) {
        fprintf(stderr, "bioserver: not starting (set degraded_start = true to serve the rest of the API anyway)\n");
        app_cleanup(&a);
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
    while (sigwait(&handled, &sig) == 0 && sig == SIGHUP) reload(&a, server);
    log_event("info", "signal %d: draining in-flight requests", sig);
    http_server_stop(server, 30000);
    app_cleanup(&a);
    log_event("info", "stopped");
    return 0;
}
