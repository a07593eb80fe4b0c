/* Configuration parsing; see config.h for the format. Every value is checked here,
 * once, so the rest of the server trusts the struct. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"

void config_defaults(server_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    snprintf(cfg->store_url, sizeof cfg->store_url, "memory");
    snprintf(cfg->models_dir, sizeof cfg->models_dir, "models");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "data");
    snprintf(cfg->calibration_file, sizeof cfg->calibration_file, "calibration/far-v1.txt");
    snprintf(cfg->calibration_accurate_file, sizeof cfg->calibration_accurate_file, "calibration/far-accurate-v2.txt");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = cores > 0 ? (int)cores : 2;
    cfg->queue_depth = 32;
    cfg->http_threads = 8;
    cfg->max_connections = 1000;
    cfg->max_connections_per_ip = 64;
    cfg->connection_timeout_seconds = 15;
    cfg->max_buffered_bytes = (size_t)256 << 20;
    cfg->max_body_bytes = 16u << 20;
    cfg->max_image_pixels = 40L * 1000 * 1000;
    cfg->session_ttl_default = 300;
    cfg->session_ttl_max = 86400;
    cfg->retry_after_seconds = 2;
    cfg->age_margin_years = 0; /* the reference's rule; docs/age.md measures a margin */
    snprintf(cfg->version, sizeof cfg->version, "1.0.0");
    snprintf(cfg->default_mode, sizeof cfg->default_mode, "F5_1_VID60");
    cfg->liveness_timeout_seconds = 120;
    cfg->liveness_max_upload_bytes = 12u << 20;
    cfg->capture_stream_max = 8;
    cfg->capture_stream_max_fps = 15;
    cfg->capture_stream_max_frame_bytes = 512u << 10;
    cfg->capture_stream_max_seconds = 30;
    cfg->capture_stream_idle_timeout = 10;
    cfg->liveness_dispatch = true;
    cfg->liveness_job_lease_seconds = 30;
    snprintf(cfg->web_dir, sizeof cfg->web_dir, "web");
    snprintf(cfg->video_server_path, sizeof cfg->video_server_path, "/video-server");
    snprintf(cfg->evidence_s3_region, sizeof cfg->evidence_s3_region, "us-east-1");
    snprintf(cfg->evidence_prefix, sizeof cfg->evidence_prefix, "bioserver");
    cfg->evidence_keep = EVIDENCE_KEEP_BEST_IMAGE;
    cfg->evidence_on = EVIDENCE_ON_ALL;
}

void config_use_install_dirs(server_config *cfg, const char *share_dir, const char *state_dir) {
    snprintf(cfg->models_dir, sizeof cfg->models_dir, "%s/models", share_dir);
    snprintf(cfg->calibration_file, sizeof cfg->calibration_file, "%s/calibration/far-v1.txt", share_dir);
    snprintf(cfg->calibration_accurate_file, sizeof cfg->calibration_accurate_file,
             "%s/calibration/far-accurate-v2.txt", share_dir);
    snprintf(cfg->web_dir, sizeof cfg->web_dir, "%s/web", share_dir);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", state_dir);
    cfg->gallery_max_faces = 1000000;
    cfg->gallery_max_per_tenant = 100;
    cfg->gallery_search_threads = 2;
}

static int fail(char *err, size_t len, const char *fmt, const char *a, const char *b) {
    snprintf(err, len, fmt, a, b);
    return -1;
}

static int parse_long(const char *v, long min, long max, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, bool *out) {
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1")) *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0")) *out = false;
    else return -1;
    return 0;
}

static int copy_string(char *dst, size_t cap, const char *v) {
    if (strlen(v) >= cap) return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* A path prefix: "/" followed by URL-safe segment characters, no trailing "/". */
static int set_path_prefix(char *dst, size_t cap, const char *v) {
    size_t n = strlen(v);
    if (n < 2 || v[0] != '/' || v[n - 1] == '/' || strspn(v, "/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != n)
        return -1;
    return copy_string(dst, cap, v);
}

/* The object store's URL: http or https, no credentials in it (the URL is logged). */
static int set_s3_url(char *dst, size_t cap, const char *v) {
    if (!*v) return copy_string(dst, cap, v); /* off */
    if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) return -1;
    const char *host = strstr(v, "://") + 3;
    if (!*host || *host == '/' || strchr(host, '@') || strpbrk(v, " ?#")) return -1;
    if (copy_string(dst, cap, v)) return -1;
    size_t n = strlen(dst);
    while (n > 0 && dst[n - 1] == '/') dst[--n] = '\0'; /* requests append "/bucket/key" */
    return 0;
}

/* Characters that need no escaping anywhere in an S3 URL or key. */
static bool s3_safe(const char *v, const char *extra) {
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(extra, *p)) return false;
    return true;
}

static int set_evidence_keep(server_config *cfg, const char *v) {
    unsigned keep = 0;
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ", ");
        if (n == 10 && !strncmp(p, "best_image", n)) keep |= EVIDENCE_KEEP_BEST_IMAGE;
        else if (n == 7 && !strncmp(p, "capture", n)) keep |= EVIDENCE_KEEP_CAPTURE;
        else if (n) return -1;
        p += n;
        p += strspn(p, ", ");
    }
    if (!keep) return -1;
    cfg->evidence_keep = keep;
    return 0;
}

static int set_evidence_on(server_config *cfg, const char *v) {
    if (!strcmp(v, "all")) cfg->evidence_on = EVIDENCE_ON_ALL;
    else if (!strcmp(v, "success")) cfg->evidence_on = EVIDENCE_ON_SUCCESS;
    else if (!strcmp(v, "not_success")) cfg->evidence_on = EVIDENCE_ON_NOT_SUCCESS;
    else return -1;
    return 0;
}

/* The evidence_* settings; 1 when name is not one of them. */
static int set_evidence(server_config *cfg, const char *name, const char *v, char *err, size_t err_len) {
    /* Secrets: a bad value is never echoed. */
    if (!strcmp(name, "evidence-s3-access-key") || !strcmp(name, "evidence_s3_access_key"))
        return copy_string(cfg->evidence_s3_access_key, sizeof cfg->evidence_s3_access_key, v)
                   ? fail(err, err_len, "evidence_s3_access_key is too long%s%s", "", "") : 0;
    if (!strcmp(name, "evidence-s3-secret-key") || !strcmp(name, "evidence_s3_secret_key"))
        return copy_string(cfg->evidence_s3_secret_key, sizeof cfg->evidence_s3_secret_key, v)
                   ? fail(err, err_len, "evidence_s3_secret_key is too long%s%s", "", "") : 0;
    if (!strcmp(name, "evidence-s3-url") || !strcmp(name, "evidence_s3_url"))
        return set_s3_url(cfg->evidence_s3_url, sizeof cfg->evidence_s3_url, v) /* may hold a password: not echoed */
                   ? fail(err, err_len, "invalid value for '%s': an http:// or https:// URL without user:password@, ? or #%s", name, "") : 0;
    int bad;
    if (!strcmp(name, "evidence-s3-region") || !strcmp(name, "evidence_s3_region"))
        bad = !*v || !s3_safe(v, "-_") || copy_string(cfg->evidence_s3_region, sizeof cfg->evidence_s3_region, v);
    else if (!strcmp(name, "evidence-s3-bucket") || !strcmp(name, "evidence_s3_bucket"))
        bad = (*v && strlen(v) < 3) || !s3_safe(v, "-._") || copy_string(cfg->evidence_s3_bucket, sizeof cfg->evidence_s3_bucket, v);
    else if (!strcmp(name, "evidence-prefix") || !strcmp(name, "evidence_prefix"))
        bad = !s3_safe(v, "-._/") || v[0] == '/' || strstr(v, "//") || (*v && v[strlen(v) - 1] == '/') ||
              copy_string(cfg->evidence_prefix, sizeof cfg->evidence_prefix, v);
    else if (!strcmp(name, "evidence-keep") || !strcmp(name, "evidence_keep")) bad = set_evidence_keep(cfg, v);
    else if (!strcmp(name, "evidence-on") || !strcmp(name, "evidence_on")) bad = set_evidence_on(cfg, v);
    else return 1;
    return bad ? fail(err, err_len, "invalid value '%s' for '%s'", v, name) : 0;
}

int config_parse_permissions(const char *list, unsigned *out) {
    static const struct { const char *name; unsigned bit; } names[] = {
        {"capabilities", PERM_CAPABILITIES}, {"sessions", PERM_SESSIONS},
        {"faces", PERM_FACES},               {"matches", PERM_MATCHES},
        {"liveness", PERM_LIVENESS},         {"ages", PERM_AGES},
        {"admin", PERM_ADMIN},               {"all", PERM_ALL},
    };
    unsigned perms = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        bool known = false;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            if (strlen(names[i].name) == n && !strncmp(p, names[i].name, n)) {
                perms |= names[i].bit;
                known = true;
            }
        }
        if (!known) return -1;
        p += n;
        if (*p == ',') p++;
    }
    *out = perms;
    return perms ? 0 : -1;
}

/* A key given without a tenant is its own tenant, named after a digest of the key
 * so the secret never appears in logs or metrics. */
static void key_digest_name(const char *key, char *out, size_t cap) {
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)key, strlen(key), d);
    char hex[17];
    hex_encode(d, 8, hex);
    snprintf(out, cap, "key-%s", hex);
}

int config_parse_key(const char *spec, api_key_config *k, char *err, size_t err_len) {
    memset(k, 0, sizeof(*k));
    const char *c1 = strchr(spec, ':');
    size_t key_len = c1 ? (size_t)(c1 - spec) : strlen(spec);
    if (key_len < 16 || key_len >= CONFIG_MAX_KEY_LEN)
        return fail(err, err_len, "API key must be 16 to 127 characters%s%s", "", "");
    for (size_t i = 0; i < key_len; i++)
        if (!isgraph((unsigned char)spec[i]))
            return fail(err, err_len, "API key has a non-printable character%s%s", "", "");
    memcpy(k->key, spec, key_len);
    key_digest_name(k->key, k->name, sizeof k->name);
    memcpy(k->tenant, k->name, sizeof k->tenant);
    k->permissions = PERM_ALL | PERM_ADMIN;
    if (c1) {
        const char *c2 = strchr(c1 + 1, ':');
        size_t tlen = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
        if (tlen == 0 || tlen >= sizeof k->tenant)
            return fail(err, err_len, "API key tenant must be 1 to 63 characters%s%s", "", "");
        memcpy(k->tenant, c1 + 1, tlen);
        k->tenant[tlen] = '\0';
        k->permissions = PERM_ALL; /* a tenant's key: admin only when listed */
        if (c2 && config_parse_permissions(c2 + 1, &k->permissions) != 0)
            return fail(err, err_len, "unknown permission in '%s'%s", c2 + 1, "");
    }
    return 0;
}

int config_add_key(server_config *cfg, const char *spec, char *err, size_t err_len) {
    if (cfg->key_count >= CONFIG_MAX_KEYS) return fail(err, err_len, "too many API keys%s%s", "", "");
    api_key_config *k = &cfg->keys[cfg->key_count];
    if (config_parse_key(spec, k, err, err_len)) return -1;
    for (int i = 0; i < cfg->key_count; i++)
        if (!strcmp(cfg->keys[i].key, k->key))
            return fail(err, err_len, "API key configured twice%s%s", "", "");
    cfg->key_count++;
    return 0;
}

static int set_listen(server_config *cfg, const char *v) {
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v) return -1;
    size_t hl = (size_t)(colon - v);
    if (hl >= sizeof cfg->listen_host) return -1;
    long port;
    if (parse_long(colon + 1, 0, 65535, &port)) return -1;
    memcpy(cfg->listen_host, v, hl);
    cfg->listen_host[hl] = '\0';
    cfg->listen_port = (int)port;
    return 0;
}

int config_set(server_config *cfg, const char *name, const char *v, char *err, size_t err_len) {
    long n = 0;
    bool b = false;
    int bad = 0;
    if (!strcmp(name, "listen")) bad = set_listen(cfg, v);
    else if (!strcmp(name, "api-key") || !strcmp(name, "api_key")) return config_add_key(cfg, v, err, err_len);
    else if (!strcmp(name, "store")) {
        bad = copy_string(cfg->store_url, sizeof cfg->store_url, v) ||
              (strcmp(v, "memory") && strncmp(v, "redis://", 8));
    } else if (!strcmp(name, "redis-password") || !strcmp(name, "redis_password")) {
        if (copy_string(cfg->redis_password, sizeof cfg->redis_password, v))
            return fail(err, err_len, "redis_password is too long%s%s", "", ""); /* never echo it */
    } else if (!strcmp(name, "models")) bad = copy_string(cfg->models_dir, sizeof cfg->models_dir, v);
    else if (!strcmp(name, "calibration")) bad = copy_string(cfg->calibration_file, sizeof cfg->calibration_file, v);
    else if (!strcmp(name, "calibration-accurate") || !strcmp(name, "calibration_accurate"))
        bad = copy_string(cfg->calibration_accurate_file, sizeof cfg->calibration_accurate_file, v);
    else if (!strcmp(name, "data")) bad = copy_string(cfg->data_dir, sizeof cfg->data_dir, v);
    else if (!strcmp(name, "tls-cert") || !strcmp(name, "tls_cert")) bad = copy_string(cfg->tls_cert, sizeof cfg->tls_cert, v);
    else if (!strcmp(name, "tls-key") || !strcmp(name, "tls_key")) bad = copy_string(cfg->tls_key, sizeof cfg->tls_key, v);
    else if (!strcmp(name, "workers")) { bad = parse_long(v, 1, 256, &n); cfg->workers = (int)n; }
    else if (!strcmp(name, "queue-depth") || !strcmp(name, "queue_depth")) { bad = parse_long(v, 0, 100000, &n); cfg->queue_depth = (int)n; }
    else if (!strcmp(name, "http-threads") || !strcmp(name, "http_threads")) { bad = parse_long(v, 1, 1024, &n); cfg->http_threads = (int)n; }
    else if (!strcmp(name, "max-connections") || !strcmp(name, "max_connections")) { bad = parse_long(v, 1, 100000, &n); cfg->max_connections = (int)n; }
    else if (!strcmp(name, "max-connections-per-ip") || !strcmp(name, "max_connections_per_ip")) { bad = parse_long(v, 0, 100000, &n); cfg->max_connections_per_ip = (int)n; }
    else if (!strcmp(name, "connection-timeout") || !strcmp(name, "connection_timeout")) { bad = parse_long(v, 1, 3600, &n); cfg->connection_timeout_seconds = (int)n; }
    else if (!strcmp(name, "max-buffered-bytes") || !strcmp(name, "max_buffered_bytes")) { bad = parse_long(v, 1L << 20, 1L << 40, &n); cfg->max_buffered_bytes = (size_t)n; }
    else if (!strcmp(name, "max-body-bytes") || !strcmp(name, "max_body_bytes")) { bad = parse_long(v, 1024, 1L << 30, &n); cfg->max_body_bytes = (size_t)n; }
    else if (!strcmp(name, "max-image-pixels") || !strcmp(name, "max_image_pixels")) { bad = parse_long(v, 1, 400L * 1000 * 1000, &n); cfg->max_image_pixels = n; }
    else if (!strcmp(name, "session-ttl-default") || !strcmp(name, "session_ttl_default")) { bad = parse_long(v, 1, 30L * 86400, &n); cfg->session_ttl_default = (int)n; }
    else if (!strcmp(name, "session-ttl-max") || !strcmp(name, "session_ttl_max")) { bad = parse_long(v, 1, 30L * 86400, &n); cfg->session_ttl_max = (int)n; }
    else if (!strcmp(name, "age-margin") || !strcmp(name, "age_margin")) { bad = parse_long(v, 0, 30, &n); cfg->age_margin_years = (double)n; }
    else if (!strcmp(name, "retry-after") || !strcmp(name, "retry_after")) { bad = parse_long(v, 1, 3600, &n); cfg->retry_after_seconds = (int)n; }
    else if (!strcmp(name, "generate-dev-key") || !strcmp(name, "generate_dev_key")) { bad = parse_bool(v, &b); cfg->generate_dev_key = b; }
    else if (!strcmp(name, "liveness-timeout") || !strcmp(name, "liveness_timeout")) { bad = parse_long(v, 1, 3600, &n); cfg->liveness_timeout_seconds = (int)n; }
    else if (!strcmp(name, "liveness-max-upload-bytes") || !strcmp(name, "liveness_max_upload_bytes")) { bad = parse_long(v, 1024, 1L << 30, &n); cfg->liveness_max_upload_bytes = (size_t)n; }
    else if (!strcmp(name, "capture-stream-max") || !strcmp(name, "capture_stream_max")) { bad = parse_long(v, 0, 10000, &n); cfg->capture_stream_max = (int)n; }
    else if (!strcmp(name, "capture-stream-max-fps") || !strcmp(name, "capture_stream_max_fps")) { bad = parse_long(v, 1, 120, &n); cfg->capture_stream_max_fps = (int)n; }
    else if (!strcmp(name, "capture-stream-max-frame-bytes") || !strcmp(name, "capture_stream_max_frame_bytes")) { bad = parse_long(v, 1024, 16L << 20, &n); cfg->capture_stream_max_frame_bytes = (size_t)n; }
    else if (!strcmp(name, "capture-stream-max-seconds") || !strcmp(name, "capture_stream_max_seconds")) { bad = parse_long(v, 1, 3600, &n); cfg->capture_stream_max_seconds = (int)n; }
    else if (!strcmp(name, "capture-stream-idle-timeout") || !strcmp(name, "capture_stream_idle_timeout")) { bad = parse_long(v, 1, 3600, &n); cfg->capture_stream_idle_timeout = (int)n; }
    else if (!strcmp(name, "callback-allow-private") || !strcmp(name, "callback_allow_private")) { bad = parse_bool(v, &b); cfg->callback_allow_private = b; }
    else if (!strcmp(name, "liveness-dispatch") || !strcmp(name, "liveness_dispatch")) { bad = parse_bool(v, &b); cfg->liveness_dispatch = b; }
    else if (!strcmp(name, "legacy-templates") || !strcmp(name, "legacy_templates")) { bad = parse_bool(v, &b); cfg->legacy_templates = b; }
    else if (!strcmp(name, "liveness-job-lease") || !strcmp(name, "liveness_job_lease")) { bad = parse_long(v, 1, 3600, &n); cfg->liveness_job_lease_seconds = (int)n; }
    else if (!strcmp(name, "redis-require-durable") || !strcmp(name, "redis_require_durable")) { bad = parse_bool(v, &b); cfg->redis_require_durable = b; }
    else if (!strcmp(name, "web")) bad = copy_string(cfg->web_dir, sizeof cfg->web_dir, v);
    else if (!strcmp(name, "callback-allow") || !strcmp(name, "callback_allow")) bad = copy_string(cfg->callback_allow, sizeof cfg->callback_allow, v);
    else if (!strcmp(name, "cors-origins") || !strcmp(name, "cors_origins")) bad = copy_string(cfg->cors_origins, sizeof cfg->cors_origins, v);
    else if (!strcmp(name, "video-server-path") || !strcmp(name, "video_server_path")) bad = set_path_prefix(cfg->video_server_path, sizeof cfg->video_server_path, v);
    else if (!strcmp(name, "log-level") || !strcmp(name, "log_level")) {
        bad = strcmp(v, "info") && strcmp(v, "debug");
        cfg->log_debug = !strcmp(v, "debug");
    }
    else if (!strcmp(name, "keys-file") || !strcmp(name, "keys_file")) bad = copy_string(cfg->keys_file, sizeof cfg->keys_file, v);
    else if (!strcmp(name, "degraded-start") || !strcmp(name, "degraded_start")) { bad = parse_bool(v, &b); cfg->degraded_start = b; }
    else if (!strcmp(name, "gallery-max-faces") || !strcmp(name, "gallery_max_faces")) { bad = parse_long(v, 1, 100L * 1000 * 1000, &n); cfg->gallery_max_faces = n; }
    else if (!strcmp(name, "gallery-max-per-tenant") || !strcmp(name, "gallery_max_per_tenant")) { bad = parse_long(v, 1, 100000, &n); cfg->gallery_max_per_tenant = n; }
    else if (!strcmp(name, "gallery-search-threads") || !strcmp(name, "gallery_search_threads")) { bad = parse_long(v, 1, 16, &n); cfg->gallery_search_threads = (int)n; }
    else if (!strcmp(name, "gallery-sync") || !strcmp(name, "gallery_sync")) {
        bad = strcmp(v, "normal") && strcmp(v, "full");
        cfg->gallery_full_sync = !strcmp(v, "full");
    }
    else if (!strncmp(name, "evidence", 8)) {
        int rc = set_evidence(cfg, name, v, err, err_len);
        if (rc <= 0) return rc;
        return fail(err, err_len, "unknown setting '%s'%s", name, "");
    }
    else return fail(err, err_len, "unknown setting '%s'%s", name, "");
    if (bad) return fail(err, err_len, "invalid value '%s' for '%s'", v, name);
    return 0;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* Settings naming a file or folder. In a config file a relative value is taken from
 * the file's own folder, so a configuration works whatever the current directory. */
static bool is_path_setting(const char *name) {
    static const char *const paths[] = {"models", "data", "calibration", "calibration_accurate",
                                        "calibration-accurate", "web", "tls_cert", "tls-cert",
                                        "tls_key", "tls-key", "keys_file", "keys-file"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!strcmp(name, paths[i])) return true;
    return false;
}

/* Appends one problem to err, a newline-separated list (bounded by err_len). */
static void add_problem(char *err, size_t err_len, const char *path, int lineno, const char *msg) {
    size_t used = strlen(err);
    if (used + 1 >= err_len) return;
    if (used) err[used++] = '\n', err[used] = '\0';
    snprintf(err + used, err_len - used, "%s:%d: %s", path, lineno, msg);
}

/* Every bad line is reported (err holds one per line), not only the first: an
 * operator fixing a file should see all its problems at once. */
int config_read_lines(const char *path, const char *what, config_line_fn *fn, void *ctx, char *err, size_t err_len) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "cannot open %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    err[0] = '\0';
    char line[1024], msg[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            add_problem(err, err_len, path, lineno, "line too long");
            rc = -1;
            break; /* the rest of the line would read as a new one */
        }
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        if (fn(ctx, s, msg, sizeof msg)) {
            add_problem(err, err_len, path, lineno, msg);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

typedef struct {
    server_config *cfg;
    char base_dir[1024];
} file_settings;

static int set_from_file(void *ctx, char *line, char *msg, size_t msg_len) {
    file_settings *fs = ctx;
    char *eq = strchr(line, '=');
    if (!eq) return fail(msg, msg_len, "expected 'name = value'%s%s", "", "");
    *eq = '\0';
    const char *name = trim(line), *value = trim(eq + 1);
    if (!is_path_setting(name) || value[0] == '/' || !value[0]) return config_set(fs->cfg, name, value, msg, msg_len);
    char resolved[1100];
    if ((size_t)snprintf(resolved, sizeof resolved, "%s/%s", fs->base_dir, value) >= sizeof resolved)
        return fail(msg, msg_len, "invalid value '%s' for '%s'", value, name);
    return config_set(fs->cfg, name, resolved, msg, msg_len);
}

int config_load_file(server_config *cfg, const char *path, char *err, size_t err_len) {
    file_settings fs = {.cfg = cfg};
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(fs.base_dir, sizeof fs.base_dir, ".");
    else if (slash == path) snprintf(fs.base_dir, sizeof fs.base_dir, "/");
    else snprintf(fs.base_dir, sizeof fs.base_dir, "%.*s", (int)(slash - path), path);
    return config_read_lines(path, "config file", set_from_file, &fs, err, err_len);
}

/* Every setting, for --help: the file form; the flag is --name with '-' for '_'.
 * tests/api/test_deploy.py checks that bioserver.conf documents each of them. */
static const struct { const char *name, *arg, *help; } settings_help[] = {
    {"listen", "HOST:PORT", "address to listen on (default 127.0.0.1:8080; port 0 = any free port)"},
    {"api_key", "KEY[:TENANT[:PERMS]]",
     "an API key, repeatable; PERMS: capabilities,sessions,faces,matches,liveness,ages,admin,all"},
    {"keys_file", "FILE", "more API keys, one KEY[:TENANT[:PERMS]] a line; re-read on SIGHUP"},
    {"generate_dev_key", "BOOL",
     "print a fresh development key even when keys are configured (default: only when none is)"},
    {"store", "memory|redis://HOST:PORT[/DB]", "state store (default memory)"},
    {"redis_password", "P", "Redis AUTH password (never logged)"},
    {"models", "DIR", "model files (faceplugin/, human/)"},
    {"calibration", "FILE", "similarity -> FAR table of the fast modes (calibration/far-v1.txt)"},
    {"calibration_accurate", "FILE", "the same for the accurate mode F5_2_VID75 (calibration/far-accurate-v2.txt)"},
    {"web", "DIR", "folder holding capture/, the browser capture page"},
    {"data", "DIR", "signing key, certificate, template and envelope keys (created when missing)"},
    {"tls_cert", "PEM", "HTTPS certificate chain (with tls_key); re-read on SIGHUP"},
    {"tls_key", "PEM", "HTTPS private key (with tls_cert); re-read on SIGHUP"},
    {"workers", "N", "heavy-work threads (default: CPU count)"},
    {"queue_depth", "N", "heavy jobs waiting before 429 (default 32)"},
    {"retry_after", "S", "Retry-After seconds on 429 (default 2)"},
    {"http_threads", "N", "HTTP thread pool (default 8)"},
    {"max_connections", "N", "open connections in all (default 1000)"},
    {"max_connections_per_ip", "N", "connections from one address (default 64; 0 = no limit, behind a proxy)"},
    {"connection_timeout", "S", "close a connection silent this long (default 15)"},
    {"max_buffered_bytes", "N", "request bodies held in memory across connections, 503 beyond (default 256 MiB)"},
    {"max_body_bytes", "N", "request body limit, 413 beyond (default 16 MiB)"},
    {"max_image_pixels", "N", "decoded image limit (default 40000000)"},
    {"session_ttl_default", "S", "bio-session time to live when the client gives none (default 300)"},
    {"session_ttl_max", "S", "longest bio-session time to live (default 86400)"},
    {"age_margin", "YEARS", "aboveThreshold needs estimate >= threshold + margin (default 0: the reference's rule)"},
    {"liveness_timeout", "S", "init-liveness-parameters -> upload window (default 120)"},
    {"liveness_max_upload_bytes", "N", "encrypted capture upload limit (default 12 MiB)"},
    {"capture_stream_max", "N", "concurrent capture streams (WebSocket) per instance, 503 beyond; 0 = none (default 8)"},
    {"capture_stream_max_fps", "N", "frames a capture stream processes per second, more are dropped (default 15)"},
    {"capture_stream_max_frame_bytes", "N", "largest capture-stream frame (default 512 KiB)"},
    {"capture_stream_max_seconds", "S", "capture-stream length from its start (default 30)"},
    {"capture_stream_idle_timeout", "S", "capture stream closed after this long without a message (default 10)"},
    {"callback_allow_private", "BOOL", "allow callbacks to loopback/private addresses (default false)"},
    {"callback_allow", "LIST", "CIDRs and host names callbacks may reach despite the guard (default none)"},
    {"cors_origins", "LIST", "browser origins allowed to call the API: * or a list (default none)"},
    {"video_server_path", "PATH", "prefix of the WebCapture flow (default /video-server)"},
    {"log_level", "info|debug", "debug also logs ignored unknown request fields (default info)"},
    {"liveness_dispatch", "BOOL", "this instance evaluates queued captures (default true)"},
    {"liveness_job_lease", "S", "a popped capture is evaluated elsewhere if not renewed this long (default 30)"},
    {"redis_require_durable", "BOOL", "refuse to start on a Redis that may lose acknowledged writes (default false)"},
    {"legacy_templates", "BOOL", "accept version 1 templates (not encrypted) and re-issue them (default false)"},
    {"gallery_max_faces", "N", "faces per gallery, 409 beyond (default 1000000)"},
    {"gallery_max_per_tenant", "N", "galleries per tenant, 409 beyond (default 100)"},
    {"gallery_search_threads", "N", "threads scanning one gallery of 65,536 faces or more (default 2)"},
    {"gallery_sync", "normal|full", "embedded gallery store: full also fsyncs each enrolment (default normal)"},
    {"evidence_s3_url", "URL", "S3-compatible store for liveness evidence, path-style (default none: off)"},
    {"evidence_s3_region", "REGION", "region that signs the requests (default us-east-1)"},
    {"evidence_s3_bucket", "NAME", "bucket of the liveness evidence (required with the URL)"},
    {"evidence_s3_access_key", "KEY", "access key (never logged; default from BIOSERVER_S3_ACCESS_KEY or AWS_ACCESS_KEY_ID)"},
    {"evidence_s3_secret_key", "KEY", "secret key (never logged; default from BIOSERVER_S3_SECRET_KEY or AWS_SECRET_ACCESS_KEY)"},
    {"evidence_prefix", "PREFIX", "first part of every object key (default bioserver)"},
    {"evidence_keep", "LIST", "best_image, capture or both (default best_image)"},
    {"evidence_on", "all|success|not_success", "which outcomes keep evidence (default all)"},
    {"degraded_start", "BOOL", "start even when models, calibration or web files are missing (default false)"},
};

void config_print_help(FILE *out) {
    fprintf(out, "settings (config file `name = value`, or flag --name VALUE, which overrides the file):\n");
    for (size_t i = 0; i < sizeof settings_help / sizeof settings_help[0]; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "%s", settings_help[i].name);
        for (char *c = flag; *c; c++)
            if (*c == '_') *c = '-';
        fprintf(out, "  --%-26s %-20s %s\n", flag, settings_help[i].arg, settings_help[i].help);
    }
}

int config_parse_args(server_config *cfg, int argc, char **argv, char *err, size_t err_len) {
    /* The config file goes first so that every other flag overrides it. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config") && i + 1 < argc) {
            if (config_load_file(cfg, argv[i + 1], err, err_len)) return -1;
        } else if (!strncmp(a, "--config=", 9)) {
            if (config_load_file(cfg, a + 9, err, err_len)) return -1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) return fail(err, err_len, "unexpected argument '%s'%s", a, "");
        char name[64];
        const char *value;
        const char *eq = strchr(a + 2, '=');
        if (eq) {
            if ((size_t)(eq - a - 2) >= sizeof name) return fail(err, err_len, "unknown flag '%s'%s", a, "");
            memcpy(name, a + 2, (size_t)(eq - a - 2));
            name[eq - a - 2] = '\0';
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return fail(err, err_len, "flag '%s' needs a value%s", a, "");
            snprintf(name, sizeof name, "%s", a + 2);
            value = argv[++i];
        }
        if (!strcmp(name, "config")) continue;
        if (config_set(cfg, name, value, err, err_len)) return -1;
    }
    return 0;
}

int config_validate(const server_config *cfg, char *err, size_t err_len) {
    if (cfg->session_ttl_default > cfg->session_ttl_max)
        return fail(err, err_len, "session_ttl_default exceeds session_ttl_max%s%s", "", "");
    if (!!cfg->tls_cert[0] != !!cfg->tls_key[0])
        return fail(err, err_len, "tls_cert and tls_key must be given together%s%s", "", "");
    if (cfg->evidence_s3_url[0] && !cfg->evidence_s3_bucket[0])
        return fail(err, err_len, "evidence_s3_url needs evidence_s3_bucket%s%s", "", "");
    return 0;
}
