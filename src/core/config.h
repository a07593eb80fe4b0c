/* Server configuration: defaults, a `key = value` config file, then command-line
 * flags that override it. Parsed once at start-up into one typed struct; only the keys file is re-read
 * later (SIGHUP, core/keyring.h). */
#ifndef CORE_CONFIG_H
#define CORE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* What an API key may do. A request needs the permission of its route. */
enum permission {
    PERM_CAPABILITIES = 1 << 0,
    PERM_SESSIONS = 1 << 1,
    PERM_FACES = 1 << 2,
    PERM_MATCHES = 1 << 3,
    PERM_LIVENESS = 1 << 4,
    PERM_AGES = 1 << 5,
    PERM_ADMIN = 1 << 6, /* usage of every key, metrics: never implied by "all" */
    PERM_ALL = (1 << 6) - 1, /* every API permission */
};

/* Liveness evidence kept in an S3-compatible object store: what, and after which verdicts. */
enum evidence_keep { EVIDENCE_KEEP_BEST_IMAGE = 1 << 0, EVIDENCE_KEEP_CAPTURE = 1 << 1 };
enum evidence_on { EVIDENCE_ON_ALL, EVIDENCE_ON_SUCCESS, EVIDENCE_ON_NOT_SUCCESS };

#define CONFIG_MAX_KEYS 64
#define CONFIG_MAX_KEY_LEN 128

typedef struct {
    char key[CONFIG_MAX_KEY_LEN];
    char tenant[64];
    char name[64]; /* shown in logs and metrics instead of the secret */
    unsigned permissions;
} api_key_config;

typedef struct {
    char listen_host[64];
    int listen_port;
    char store_url[256]; /* "memory" or "redis://host:port[/db]" */
    char redis_password[256]; /* Redis AUTH; never logged */
    char models_dir[512];
    char data_dir[512];
    char calibration_file[512]; /* similarity -> FAR table */
    char tls_cert[512], tls_key[512]; /* HTTPS when both are set */
    int workers;           /* heavy-work threads */
    int queue_depth;       /* waiting heavy jobs before 429 */
    int http_threads;      /* libmicrohttpd thread pool */
    int max_connections;        /* open connections in all */
    int max_connections_per_ip; /* from one address (0 = no limit: behind a proxy) */
    int connection_timeout_seconds; /* a connection silent this long is closed */
    size_t max_buffered_bytes;  /* request bodies held in memory across connections */
    size_t max_body_bytes; /* 413 beyond this */
    long max_image_pixels; /* decompression-bomb guard */
    int session_ttl_default, session_ttl_max; /* seconds */
    int retry_after_seconds;
    /* aboveThreshold needs an estimate of at least threshold + this many years: a
     * safety buffer against the estimator's error (docs/age.md); 0 = the literal
     * "estimate >= threshold". */
    double age_margin_years;
    char version[32];
    char default_mode[32];
    bool generate_dev_key; /* print a fresh key even when others are configured */
    int liveness_timeout_seconds;     /* init-liveness-parameters -> upload, else TIMEOUT */
    size_t liveness_max_upload_bytes; /* encrypted capture upload, 413 beyond */
    /* The real-time capture stream (docs/capture-stream.md). */
    int capture_stream_max;             /* concurrent streams per instance, 503 beyond */
    int capture_stream_max_fps;         /* frames processed per second per stream; more are dropped */
    size_t capture_stream_max_frame_bytes; /* largest frame message */
    int capture_stream_max_seconds;     /* capture length from the stream's start */
    int capture_stream_idle_timeout;    /* seconds without a client message */
    bool callback_allow_private;      /* callbacks to loopback/private addresses (SSRF guard off) */
    char callback_allow[1024];        /* CIDRs and host names callbacks may reach despite the guard */
    char cors_origins[1024];          /* allowed browser origins ("*" or a comma list); empty = no CORS */
    char video_server_path[64];       /* the WebCapture server flow's path prefix (e.g. /video-server) */
    bool log_debug;                   /* log_level = debug */
    bool liveness_dispatch;           /* evaluate queued captures here (false: only other instances do) */
    bool legacy_templates;            /* still accept version 1 (MAC-only, not tenant-bound) templates */
    int liveness_job_lease_seconds;   /* a popped capture is evaluated again elsewhere if unrenewed this long */
    bool redis_require_durable;       /* refuse to start on a Redis that may lose acknowledged writes */
    char web_dir[512];                /* static capture page: web_dir/capture/ */
    char keys_file[512];              /* more API keys, one spec a line; SIGHUP re-reads it */
    bool degraded_start;              /* serve even when models/calibration/web are missing */
    long gallery_max_faces;           /* faces per gallery (409 beyond) */
    long gallery_max_per_tenant;      /* galleries per tenant (409 beyond) */
    int gallery_search_threads;       /* threads scanning one big gallery */
    bool gallery_full_sync;           /* embedded store: fsync every enrolment (power-loss safe) */
    /* Liveness evidence (src/liveness/evidence.h); off while evidence_s3_url is empty.
     * The keys are never logged; empty ones come from the environment at start-up. */
    char evidence_s3_url[256];        /* http(s)://host[:port][/path], path-style: URL/bucket/key */
    char evidence_s3_region[64];
    char evidence_s3_bucket[64];
    char evidence_s3_access_key[128];
    char evidence_s3_secret_key[256];
    char evidence_prefix[128];        /* first part of every object key */
    unsigned evidence_keep;           /* enum evidence_keep bits */
    int evidence_on;                  /* enum evidence_on */
    api_key_config keys[CONFIG_MAX_KEYS];
    int key_count;
} server_config;

void config_defaults(server_config *cfg);
/* Models, calibration and web files under share_dir, secrets in state_dir: the
 * defaults of an installed binary (paths compiled in by the Makefile). */
void config_use_install_dirs(server_config *cfg, const char *share_dir, const char *state_dir);
/* Each returns 0, or -1 with a message naming the line/flag in err. In a file,
 * relative paths are taken from the file's folder; every bad line is listed in err,
 * one per line. */
int config_load_file(server_config *cfg, const char *path, char *err, size_t err_len);
int config_set(server_config *cfg, const char *name, const char *value, char *err, size_t err_len);
/* argv: `--name value` pairs (and `--name=value`); --config is applied first. */
int config_parse_args(server_config *cfg, int argc, char **argv, char *err, size_t err_len);
/* "KEY[:tenant[:perm,perm...]]". A bare key (e.g. --api-key KEY, or the
 * development key) is its own tenant with every permission including admin. A key
 * of a named tenant without a list gets "all", which never includes admin: in a
 * multi-tenant setup admin (every key's usage, metrics) must be granted by name. */
int config_add_key(server_config *cfg, const char *spec, char *err, size_t err_len);
/* Parses one such spec into *k (no limit on the count, no duplicate check). */
int config_parse_key(const char *spec, api_key_config *k, char *err, size_t err_len);
int config_parse_permissions(const char *list, unsigned *out);
int config_validate(const server_config *cfg, char *err, size_t err_len);
/* Reads a file of one-item lines (the config file, the keys file): each line that
 * is neither blank nor a # comment goes, trimmed, to fn; a line fn refuses (-1,
 * msg set) is listed in err as "path:N: msg" and reading goes on, so err lists
 * every problem, one per line. `what` names the file in the cannot-open message. */
typedef int config_line_fn(void *ctx, char *line, char *msg, size_t msg_len);
int config_read_lines(const char *path, const char *what, config_line_fn *fn, void *ctx, char *err, size_t err_len);
/* Lists every setting with its value syntax and meaning (--help). */
void config_print_help(FILE *out);

#endif
