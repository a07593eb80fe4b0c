/* Unit tests for the configuration (src/core/config.c): defaults, the config file
 * format (comments, blank lines, bad lines, unknown settings, long lines), command
 * line flags overriding the file, API key specs with tenants and permissions, and
 * validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

#define KEY1 "0123456789abcdef-key-one"
#define KEY2 "0123456789abcdef-key-two"

/* Writes text to a fresh temporary file; returns its malloc'd path. */
static char *temp_file(const char *text) {
    char *path = strdup("/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void remove_temp(char *path) {
    unlink(path);
    free(path);
}

static void test_defaults(void **state) {
    (void)state;
    server_config c;
    config_defaults(&c);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    assert_string_equal(c.store_url, "memory");
    assert_string_equal(c.data_dir, "data");
    assert_string_equal(c.models_dir, "models");
    assert_true(c.workers >= 1);
    assert_int_equal(c.queue_depth, 32);
    assert_true(c.http_threads >= 1);
    assert_int_equal(c.max_body_bytes, 16u << 20);
    assert_int_equal(c.session_ttl_default, 300);
    assert_int_equal(c.session_ttl_max, 86400);
    assert_true(c.retry_after_seconds >= 1);
    assert_string_equal(c.default_mode, "F5_1_VID60");
    assert_true(c.version[0] != '\0');
    assert_int_equal(c.key_count, 0);
    assert_false(c.generate_dev_key);
    assert_string_equal(c.tls_cert, "");
    assert_string_equal(c.tls_key, "");
    char err[256] = "";
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
}

static void test_file_parsing(void **state) {
    (void)state;
    char *path = temp_file("# a comment\n"
                           "\n"
                           "   \t\n"
                           "listen = 0.0.0.0:9090\n"
                           "  # indented comment = not a setting\n"
                           "workers=3\n"
                           "queue_depth =   7   \n"
                           "\tmax_body_bytes\t=\t2048\n"
                           "session_ttl_default = 60\n"
                           "session_ttl_max = 600\n"
                           "api_key = " KEY1 ":acme:sessions,faces\n"
                           "api-key = " KEY2 "\n"
                           "data = /var/lib/bio data\n"
                           "generate_dev_key = yes\n"
                           "store = memory"); /* last line without newline */
    server_config c;
    config_defaults(&c);
    char err[512] = "";
    int rc = config_load_file(&c, path, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 9090);
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.queue_depth, 7);
    assert_int_equal(c.max_body_bytes, 2048);
    assert_int_equal(c.session_ttl_default, 60);
    assert_int_equal(c.session_ttl_max, 600);
    assert_string_equal(c.data_dir, "/var/lib/bio data"); /* inner spaces kept */
    assert_true(c.generate_dev_key);
    assert_int_equal(c.key_count, 2);
    assert_string_equal(c.keys[0].key, KEY1);
    assert_string_equal(c.keys[0].tenant, "acme");
    assert_int_equal(c.keys[0].permissions, PERM_SESSIONS | PERM_FACES);
    assert_string_equal(c.keys[1].key, KEY2);
    assert_int_equal(c.keys[1].permissions, PERM_ALL | PERM_ADMIN);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    remove_temp(path);
}

/* Loads text and expects failure with `expect` in the message. */
static void expect_file_error(const char *text, const char *expect) {
    char *path = temp_file(text);
    server_config c;
    config_defaults(&c);
    char err[512] = "";
    int rc = config_load_file(&c, path, err, sizeof err);
    if (rc != -1 || !strstr(err, expect))
        print_error("file %s: rc %d, err '%s', expected '%s'\n", text, rc, err, expect);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, expect));
    assert_non_null(strstr(err, path)); /* the message names the file */
    remove_temp(path);
}

static void test_file_errors(void **state) {
    (void)state;
    expect_file_error("# ok\nlisten 127.0.0.1:80\n", ":2: expected 'name = value'");
    expect_file_error("workers = 2\nfrobnicate = 1\n", ":2: unknown setting 'frobnicate'");
    expect_file_error("workers = many\n", ":1: invalid value 'many' for 'workers'");
    expect_file_error("workers = 0\n", ":1: invalid value '0' for 'workers'");
    expect_file_error("max_body_bytes = 1023\n", "invalid value '1023'");
    expect_file_error("session_ttl_max = 0\n", "invalid value '0'");
    expect_file_error("listen = nohost\n", "invalid value 'nohost' for 'listen'");
    expect_file_error("listen = :80\n", "invalid value ':80'");
    expect_file_error("listen = h:65536\n", "invalid value 'h:65536'");
    expect_file_error("listen = h:8x\n", "invalid value 'h:8x'");
    expect_file_error("store = postgres://x\n", "invalid value 'postgres://x' for 'store'");
    expect_file_error("generate_dev_key = maybe\n", "invalid value 'maybe'");
    expect_file_error("api_key = short\n", ":1: API key must be 16 to 127 characters");
    expect_file_error("= value\n", ":1: unknown setting ''");

    /* A line longer than the 1 KiB buffer is refused, not split into two settings. */
    char long_line[1200 + 32];
    strcpy(long_line, "# ");
    memset(long_line + 2, 'x', 1200);
    strcpy(long_line + 1202, "\nworkers = 2\n");
    expect_file_error(long_line, ":1: line too long");
    char long_value[2048];
    snprintf(long_value, sizeof long_value, "data = %0600d\n", 0);
    expect_file_error(long_value, ":1: invalid value"); /* fits the line, not data_dir[512] */

    server_config c;
    config_defaults(&c);
    char err[512] = "";
    assert_int_equal(config_load_file(&c, "/nonexistent/dir/bioserver.conf", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open config file '/nonexistent/dir/bioserver.conf'"));
}

static void test_flags_override_file(void **state) {
    (void)state;
    char *path = temp_file("listen = 10.0.0.1:7000\nworkers = 3\nqueue_depth = 9\n"
                           "session_ttl_default = 50\napi_key = " KEY1 ":fromfile\n");
    char *argv[] = {"bioserver", "--listen", "127.0.0.1:7001", "--config", path, "--workers=5",
                    "--api-key", KEY2 ":fromflag:sessions", "--session-ttl-default", "70", NULL};
    int argc = (int)(sizeof argv / sizeof argv[0]) - 1;
    server_config c;
    config_defaults(&c);
    char err[512] = "";
    int rc = config_parse_args(&c, argc, argv, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.listen_host, "127.0.0.1"); /* flag before --config still wins */
    assert_int_equal(c.listen_port, 7001);
    assert_int_equal(c.workers, 5);
    assert_int_equal(c.queue_depth, 9); /* from the file, not overridden */
    assert_int_equal(c.session_ttl_default, 70);
    assert_int_equal(c.key_count, 2); /* keys accumulate: file first, then flags */
    assert_string_equal(c.keys[0].tenant, "fromfile");
    assert_string_equal(c.keys[1].tenant, "fromflag");
    assert_int_equal(c.keys[1].permissions, PERM_SESSIONS);

    /* --config=FILE form. */
    char cfg_flag[600];
    snprintf(cfg_flag, sizeof cfg_flag, "--config=%s", path);
    char *argv2[] = {"bioserver", cfg_flag, NULL};
    config_defaults(&c);
    assert_int_equal(config_parse_args(&c, 2, argv2, err, sizeof err), 0);
    assert_int_equal(c.listen_port, 7000);
    assert_string_equal(c.listen_host, "10.0.0.1");
    remove_temp(path);
}

static void expect_args_error(int argc, char **argv, const char *expect) {
    server_config c;
    config_defaults(&c);
    char err[512] = "";
    int rc = config_parse_args(&c, argc, argv, err, sizeof err);
    if (rc != -1 || !strstr(err, expect)) print_error("rc %d err '%s' expected '%s'\n", rc, err, expect);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, expect));
}

static void test_flag_errors(void **state) {
    (void)state;
    char *a1[] = {"bioserver", "positional", NULL};
    expect_args_error(2, a1, "unexpected argument 'positional'");
    char *a2[] = {"bioserver", "--workers", NULL};
    expect_args_error(2, a2, "flag '--workers' needs a value");
    char *a3[] = {"bioserver", "--no-such-flag", "1", NULL};
    expect_args_error(3, a3, "unknown setting 'no-such-flag'");
    char *a4[] = {"bioserver", "--config", "/nonexistent.conf", NULL};
    expect_args_error(3, a4, "cannot open config file");
    char *a5[] = {"bioserver", "--queue-depth=-1", NULL};
    expect_args_error(2, a5, "invalid value '-1' for 'queue-depth'");
    char long_flag[200];
    snprintf(long_flag, sizeof long_flag, "--%0100d=1", 0);
    char *a6[] = {"bioserver", long_flag, NULL};
    expect_args_error(2, a6, "unknown flag");
}

static void test_key_specs(void **state) {
    (void)state;
    server_config c;
    config_defaults(&c);
    char err[256] = "";
    /* Key alone: every permission incl. admin, its own tenant named by a digest, never the secret. */
    assert_int_equal(config_add_key(&c, KEY1, err, sizeof err), 0);
    assert_string_equal(c.keys[0].key, KEY1);
    assert_int_equal(c.keys[0].permissions, PERM_ALL | PERM_ADMIN);
    assert_int_equal(strlen(c.keys[0].name), 4 + 16);
    assert_memory_equal(c.keys[0].name, "key-", 4);
    assert_null(strstr(c.keys[0].name, KEY1));
    assert_string_equal(c.keys[0].tenant, c.keys[0].name);
    /* Key with a tenant: all API permissions, admin only when named. */
    assert_int_equal(config_add_key(&c, KEY2 ":tenant-b", err, sizeof err), 0);
    assert_string_equal(c.keys[1].key, KEY2);
    assert_string_equal(c.keys[1].tenant, "tenant-b");
    assert_int_equal(c.keys[1].permissions, PERM_ALL);
    assert_string_not_equal(c.keys[0].name, c.keys[1].name);
    /* Key with a tenant and permissions. */
    assert_int_equal(config_add_key(&c, "ABCDEFGHIJKLMNOP:t3:capabilities,matches,admin", err, sizeof err), 0);
    assert_int_equal(c.keys[2].permissions, PERM_CAPABILITIES | PERM_MATCHES | PERM_ADMIN);
    assert_string_equal(c.keys[2].key, "ABCDEFGHIJKLMNOP"); /* exactly 16: the minimum */
    assert_int_equal(config_add_key(&c, "ABCDEFGHIJKLMNOQ:t4:all", err, sizeof err), 0);
    assert_int_equal(c.keys[3].permissions, PERM_ALL);
    assert_int_equal(c.key_count, 4);
    /* The same name for the same secret (stable across restarts). */
    server_config d;
    config_defaults(&d);
    assert_int_equal(config_add_key(&d, KEY1 ":other:faces", err, sizeof err), 0);
    assert_string_equal(d.keys[0].name, c.keys[0].name);
}

static void expect_key_error(server_config *c, const char *spec, const char *expect) {
    int before = c->key_count;
    char err[256] = "";
    int rc = config_add_key(c, spec, err, sizeof err);
    if (rc != -1 || !strstr(err, expect)) print_error("spec '%s': rc %d err '%s'\n", spec, rc, err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, expect));
    assert_int_equal(c->key_count, before);
}

static void test_invalid_keys(void **state) {
    (void)state;
    server_config c;
    config_defaults(&c);
    char err[256];
    expect_key_error(&c, "0123456789abcde", "16 to 127");          /* 15 characters */
    expect_key_error(&c, "0123456789abcde:t:all", "16 to 127");
    expect_key_error(&c, "", "16 to 127");
    char long_key[200];
    memset(long_key, 'k', 128);
    long_key[128] = '\0';
    expect_key_error(&c, long_key, "16 to 127");
    long_key[127] = '\0';
    assert_int_equal(config_add_key(&c, long_key, err, sizeof err), 0); /* 127 is fine */
    expect_key_error(&c, "0123456789abcdef\x01xyz", "non-printable");
    expect_key_error(&c, "0123456789 abcdef", "non-printable");
    expect_key_error(&c, KEY1 "::sessions", "tenant must be 1 to 63");
    expect_key_error(&c, KEY1 ":", "tenant must be 1 to 63");
    char spec[200];
    snprintf(spec, sizeof spec, KEY1 ":%064d", 0);
    expect_key_error(&c, spec, "tenant must be 1 to 63");
    snprintf(spec, sizeof spec, KEY1 ":%063d:faces", 0);
    assert_int_equal(config_add_key(&c, spec, err, sizeof err), 0);
    assert_int_equal(strlen(c.keys[c.key_count - 1].tenant), 63);
    /* Permissions. */
    expect_key_error(&c, KEY2 ":t:bogus", "unknown permission in 'bogus'");
    expect_key_error(&c, KEY2 ":t:sessions,bogus", "unknown permission");
    expect_key_error(&c, KEY2 ":t:", "unknown permission");
    expect_key_error(&c, KEY2 ":t:,sessions", "unknown permission");
    expect_key_error(&c, KEY2 ":t:Sessions", "unknown permission");
    expect_key_error(&c, KEY2 ":t:session", "unknown permission");
    /* Duplicates, even with another tenant or other permissions. */
    assert_int_equal(config_add_key(&c, KEY2 ":t", err, sizeof err), 0);
    expect_key_error(&c, KEY2, "configured twice");
    expect_key_error(&c, KEY2 ":other:faces", "configured twice");
}

static void test_key_limit(void **state) {
    (void)state;
    server_config c;
    config_defaults(&c);
    char err[256], spec[64];
    for (int i = 0; i < CONFIG_MAX_KEYS; i++) {
        snprintf(spec, sizeof spec, "key-number-%08d:t", i);
        assert_int_equal(config_add_key(&c, spec, err, sizeof err), 0);
    }
    expect_key_error(&c, "one-key-too-many-0000", "too many API keys");
    assert_int_equal(c.key_count, CONFIG_MAX_KEYS);
}

static void test_parse_permissions(void **state) {
    (void)state;
    unsigned p = 0;
    assert_int_equal(config_parse_permissions("capabilities", &p), 0);
    assert_int_equal(p, PERM_CAPABILITIES);
    assert_int_equal(config_parse_permissions("sessions,faces,matches,liveness,ages,admin", &p), 0);
    assert_int_equal(p, PERM_SESSIONS | PERM_FACES | PERM_MATCHES | PERM_LIVENESS | PERM_AGES | PERM_ADMIN);
    assert_int_equal(config_parse_permissions("all", &p), 0);
    assert_int_equal(p, PERM_ALL);
    assert_int_equal(config_parse_permissions("faces,faces", &p), 0);
    assert_int_equal(p, PERM_FACES);
    p = 12345;
    assert_int_equal(config_parse_permissions("", &p), -1);
    assert_int_equal(config_parse_permissions("faces,", &p) == 0 ? (int)p : -1, PERM_FACES);
    assert_int_equal(config_parse_permissions("nope", &p), -1);
    assert_int_equal(config_parse_permissions("facesx", &p), -1);
    assert_int_equal(config_parse_permissions("face", &p), -1);
}

static void test_validate(void **state) {
    (void)state;
    server_config c;
    char err[256] = "";
    config_defaults(&c);
    c.session_ttl_default = 100;
    c.session_ttl_max = 50;
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "session_ttl_default exceeds session_ttl_max"));
    c.session_ttl_max = 100;
    assert_int_equal(config_validate(&c, err, sizeof err), 0);

    config_defaults(&c);
    assert_int_equal(config_set(&c, "tls-cert", "/etc/cert.pem", err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "tls_cert and tls_key must be given together"));
    assert_int_equal(config_set(&c, "tls_key", "/etc/key.pem", err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    c.tls_cert[0] = '\0';
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
}

static void test_config_set_values(void **state) {
    (void)state;
    server_config c;
    config_defaults(&c);
    char err[256] = "";
    assert_int_equal(config_set(&c, "store", "redis://localhost:6379/2", err, sizeof err), 0);
    assert_string_equal(c.store_url, "redis://localhost:6379/2");
    assert_int_equal(config_set(&c, "queue-depth", "0", err, sizeof err), 0);
    assert_int_equal(c.queue_depth, 0);
    assert_int_equal(config_set(&c, "listen", "::1:8443", err, sizeof err), 0); /* last colon splits */
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 8443);
    assert_int_equal(config_set(&c, "generate-dev-key", "false", err, sizeof err), 0);
    assert_false(c.generate_dev_key);
    assert_int_equal(config_set(&c, "retry-after", "5", err, sizeof err), 0);
    assert_int_equal(c.retry_after_seconds, 5);
    assert_int_equal(config_set(&c, "max-image-pixels", "1000000", err, sizeof err), 0);
    assert_int_equal(c.max_image_pixels, 1000000);
    assert_false(c.legacy_templates); /* version 1 templates are refused unless asked for */
    assert_int_equal(config_set(&c, "legacy_templates", "true", err, sizeof err), 0);
    assert_true(c.legacy_templates);
    assert_int_equal(config_set(&c, "legacy-templates", "no", err, sizeof err), 0);
    assert_false(c.legacy_templates);
    assert_int_equal(config_set(&c, "legacy-templates", "sometimes", err, sizeof err), -1);
    /* Refused values. */
    assert_int_equal(config_set(&c, "workers", "4x", err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid value '4x' for 'workers'"));
    assert_int_equal(config_set(&c, "workers", "", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "workers", "257", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "http-threads", "0", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "listen", "bad", err, sizeof err), -1);
    assert_int_equal(c.listen_port, 8443); /* listen is only written when valid */
}

/* Paths in a config file are taken from the file's folder, never from the current
 * directory; flags keep the usual meaning (relative to where the command runs). */
static void test_paths_relative_to_config_file(void **state) {
    (void)state;
    char dir[] = "/tmp/test_config_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/bio.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("models = ../share/models\ncalibration = cal/far.txt\ncalibration_accurate = cal/acc.txt\n"
          "web = /abs/web\ndata = data\n"
          "keys_file = api-keys\ntls_cert = c.pem\ntls_key = k.pem\nstore = memory\n", f);
    fclose(f);
    server_config c;
    config_defaults(&c);
    char err[512] = "", want[256];
    char *argv[] = {"bioserver", "--config", path, "--web", "rel/web", NULL};
    assert_int_equal(config_parse_args(&c, 5, argv, err, sizeof err), 0);
    snprintf(want, sizeof want, "%s/../share/models", dir);
    assert_string_equal(c.models_dir, want);
    snprintf(want, sizeof want, "%s/cal/far.txt", dir);
    assert_string_equal(c.calibration_file, want);
    snprintf(want, sizeof want, "%s/cal/acc.txt", dir);
    assert_string_equal(c.calibration_accurate_file, want);
    snprintf(want, sizeof want, "%s/data", dir);
    assert_string_equal(c.data_dir, want);
    snprintf(want, sizeof want, "%s/api-keys", dir);
    assert_string_equal(c.keys_file, want);
    snprintf(want, sizeof want, "%s/c.pem", dir);
    assert_string_equal(c.tls_cert, want);
    assert_string_equal(c.web_dir, "rel/web"); /* the flag wins and stays as given */
    assert_string_equal(c.store_url, "memory"); /* not a path: untouched */
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, "bioserver.conf", err, sizeof err), 0); /* no folder part */
    assert_string_equal(c.models_dir, "./models");
    unlink(path);
    rmdir(dir);
}

/* An operator sees every bad line at once, one per line of the message. */
static void test_file_lists_every_problem(void **state) {
    (void)state;
    char *path = temp_file("workers = many\nlisten = 127.0.0.1:1\nfrobnicate = 1\nnot a setting\nqueue_depth = 3\n");
    server_config c;
    config_defaults(&c);
    char err[1024] = "";
    assert_int_equal(config_load_file(&c, path, err, sizeof err), -1);
    assert_non_null(strstr(err, ":1: invalid value 'many' for 'workers'\n"));
    assert_non_null(strstr(err, ":3: unknown setting 'frobnicate'\n"));
    assert_non_null(strstr(err, ":4: expected 'name = value'"));
    assert_null(strstr(err, ":2:"));
    assert_int_equal(c.queue_depth, 3); /* good lines after a bad one still apply */
    /* A tiny buffer is never overrun. */
    char small[24];
    assert_int_equal(config_load_file(&c, path, small, sizeof small), -1);
    assert_true(strlen(small) < sizeof small);
    remove_temp(path);
}

static void test_install_dirs_and_new_settings(void **state) {
    (void)state;
    server_config c;
    config_defaults(&c);
    config_use_install_dirs(&c, "/usr/share/bioserver", "/var/lib/bioserver");
    assert_string_equal(c.models_dir, "/usr/share/bioserver/models");
    assert_string_equal(c.calibration_file, "/usr/share/bioserver/calibration/far-v1.txt");
    assert_string_equal(c.calibration_accurate_file, "/usr/share/bioserver/calibration/far-accurate-v2.txt");
    assert_string_equal(c.web_dir, "/usr/share/bioserver/web");
    assert_string_equal(c.data_dir, "/var/lib/bioserver");
    char err[256];
    assert_false(c.degraded_start);
    assert_int_equal(config_set(&c, "degraded-start", "true", err, sizeof err), 0);
    assert_true(c.degraded_start);
    assert_int_equal(config_set(&c, "degraded_start", "perhaps", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "keys-file", "/etc/bioserver/api-keys", err, sizeof err), 0);
    assert_string_equal(c.keys_file, "/etc/bioserver/api-keys");
}

/* The evidence_* settings: defaults, accepted forms, and secrets never echoed. */
static void test_evidence_settings(void **state) {
    (void)state;
    server_config c;
    config_defaults(&c);
    char err[256] = "";
    assert_string_equal(c.evidence_s3_url, ""); /* off */
    assert_string_equal(c.evidence_s3_region, "us-east-1");
    assert_string_equal(c.evidence_prefix, "bioserver");
    assert_int_equal(c.evidence_keep, EVIDENCE_KEEP_BEST_IMAGE);
    assert_int_equal(c.evidence_on, EVIDENCE_ON_ALL);
    assert_int_equal(config_set(&c, "evidence_s3_url", "https://s3.eu-central-1.amazonaws.com//", err, sizeof err), 0);
    assert_string_equal(c.evidence_s3_url, "https://s3.eu-central-1.amazonaws.com");
    assert_int_equal(config_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "evidence_s3_url needs evidence_s3_bucket"));
    assert_int_equal(config_set(&c, "evidence-s3-bucket", "wbs-video-storage", err, sizeof err), 0);
    assert_int_equal(config_validate(&c, err, sizeof err), 0);
    assert_int_equal(config_set(&c, "evidence_keep", "capture, best_image", err, sizeof err), 0);
    assert_int_equal(c.evidence_keep, EVIDENCE_KEEP_BEST_IMAGE | EVIDENCE_KEEP_CAPTURE);
    assert_int_equal(config_set(&c, "evidence_on", "not_success", err, sizeof err), 0);
    assert_int_equal(c.evidence_on, EVIDENCE_ON_NOT_SUCCESS);
    assert_int_equal(config_set(&c, "evidence_prefix", "doc-dev/liveness", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "evidence_prefix", "", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "evidence_s3_bucket", "", err, sizeof err), 0); /* the shipped file's empty value */
    /* Refused, without echoing anything secret. */
    assert_int_equal(config_set(&c, "evidence_s3_url", "http://AKID:s3cr3t-value@minio:9000", err, sizeof err), -1);
    assert_null(strstr(err, "s3cr3t-value"));
    assert_int_equal(config_set(&c, "evidence_s3_url", "http:///path", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "evidence_s3_url", "s3://bucket", err, sizeof err), -1);
    char long_secret[300];
    memset(long_secret, 'k', sizeof long_secret - 1);
    long_secret[sizeof long_secret - 1] = '\0';
    assert_int_equal(config_set(&c, "evidence_s3_secret_key", long_secret, err, sizeof err), -1);
    assert_null(strstr(err, "kkkk"));
    assert_int_equal(config_set(&c, "evidence_keep", "best_image,video", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "evidence_keep", "", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "evidence_prefix", "a//b", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "evidence_prefix", "a b", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "evidence_s3_region", "eu central", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "evidence_s3_bucket", "a/b", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "evidence_unknown", "x", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown setting 'evidence_unknown'"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evidence_settings),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_parsing),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_key_specs),
        cmocka_unit_test(test_invalid_keys),
        cmocka_unit_test(test_key_limit),
        cmocka_unit_test(test_parse_permissions),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_config_set_values),
        cmocka_unit_test(test_paths_relative_to_config_file),
        cmocka_unit_test(test_file_lists_every_problem),
        cmocka_unit_test(test_install_dirs_and_new_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
