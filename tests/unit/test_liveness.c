/* Unit tests of src/liveness: challenge derivation, the upload envelope (round trip,
 * tampering, wrong session/serverRandom, wrong key, malformed input), the SSRF
 * address filter and the verdict logic on synthetic frame measurements. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "liveness/challenge.h"
#include "liveness/envelope.h"
#include "liveness/evaluate.h"
#include "liveness/notifier.h"

/* ---- challenges ---- */

static void test_challenge_deterministic(void **state) {
    (void)state;
    challenge_direction a[CHALLENGE_MAX], b[CHALLENGE_MAX];
    assert_int_equal(challenge_derive(1150867590u, CHALLENGE_MAX, a), 0);
    assert_int_equal(challenge_derive(1150867590u, CHALLENGE_MAX, b), 0);
    assert_memory_equal(a, b, sizeof a);
    /* A prefix does not depend on the count. */
    assert_int_equal(challenge_derive(1150867590u, 2, b), 0);
    assert_memory_equal(a, b, 2 * sizeof a[0]);
    /* Seeds give different sequences (not all equal over 64 seeds). */
    int lefts = 0;
    for (uint32_t s = 0; s < 64; s++) {
        challenge_derive(s, 1, b);
        lefts += b[0] == CHALLENGE_LEFT;
    }
    assert_true(lefts > 16 && lefts < 48);
    assert_string_equal(challenge_name(CHALLENGE_LEFT), "LEFT");
}

static void test_challenge_bounds(void **state) {
    (void)state;
    challenge_direction d[CHALLENGE_MAX + 1];
    assert_int_equal(challenge_derive(1, 0, d), -1);
    assert_int_equal(challenge_derive(1, CHALLENGE_MAX + 1, d), -1);
}

/* ---- envelope ---- */

typedef struct {
    char dir[64];
    envelope_key *key;
} env_fixture;

static int env_setup(void **state) {
    env_fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof f->dir, "/tmp/test_liveness_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[256];
    f->key = envelope_key_load_or_create(f->dir, err, sizeof err);
    assert_non_null(f->key);
    *state = f;
    return 0;
}

static int env_teardown(void **state) {
    env_fixture *f = *state;
    envelope_key_free(f->key);
    char path[128];
    snprintf(path, sizeof path, "%s/liveness-enc-key.pem", f->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/liveness-enc-cert.pem", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

typedef struct {
    uint8_t *wrapped, *ct, *aad;
    size_t wrapped_len, ct_len, aad_len;
    uint8_t iv[ENVELOPE_IV_BYTES];
} sealed;

static void seal_for(const envelope_key *k, const char *sid, const char *rnd, const char *text, sealed *s) {
    uint8_t key[ENVELOPE_KEY_BYTES];
    memset(key, 7, sizeof key);
    memset(s->iv, 3, sizeof s->iv);
    size_t cert_len;
    const uint8_t *cert = envelope_certificate_der(k, &cert_len);
    s->aad = envelope_aad(sid, rnd, &s->aad_len);
    assert_int_equal(envelope_seal(cert, cert_len, key, s->iv, (const uint8_t *)text, strlen(text), s->aad, s->aad_len,
                                   &s->wrapped, &s->wrapped_len, &s->ct, &s->ct_len),
                     ENVELOPE_OK);
}

static void sealed_free(sealed *s) {
    free(s->wrapped);
    free(s->ct);
    free(s->aad);
}

static int open_with(const envelope_key *k, const sealed *s, const uint8_t *aad, size_t aad_len, char **out) {
    uint8_t *plain = NULL;
    size_t n = 0;
    int rc = envelope_open(k, s->wrapped, s->wrapped_len, s->iv, sizeof s->iv, s->ct, s->ct_len, aad, aad_len, &plain, &n);
    *out = (char *)plain;
    return rc;
}

static void test_envelope_round_trip(void **state) {
    env_fixture *f = *state;
    sealed s;
    seal_for(f->key, "sid-1", "rnd-1", "{\"frames\":[]}", &s);
    char *plain;
    assert_int_equal(open_with(f->key, &s, s.aad, s.aad_len, &plain), ENVELOPE_OK);
    assert_string_equal(plain, "{\"frames\":[]}");
    free(plain);
    /* The key reloads from the data folder unchanged. */
    char err[256];
    envelope_key *again = envelope_key_load_or_create(f->dir, err, sizeof err);
    assert_non_null(again);
    assert_string_equal(envelope_certificate_b64(again), envelope_certificate_b64(f->key));
    assert_int_equal(open_with(again, &s, s.aad, s.aad_len, &plain), ENVELOPE_OK);
    free(plain);
    envelope_key_free(again);
    sealed_free(&s);
}

static void test_envelope_tampering(void **state) {
    env_fixture *f = *state;
    sealed s;
    seal_for(f->key, "sid-1", "rnd-1", "capture", &s);
    char *plain;
    for (size_t i = 0; i < s.ct_len; i += 3) { /* every part, tag included */
        s.ct[i] ^= 0x01;
        assert_int_equal(open_with(f->key, &s, s.aad, s.aad_len, &plain), ENVELOPE_ERR_AUTH);
        assert_null(plain);
        s.ct[i] ^= 0x01;
    }
    s.iv[0] ^= 1;
    assert_int_equal(open_with(f->key, &s, s.aad, s.aad_len, &plain), ENVELOPE_ERR_AUTH);
    s.iv[0] ^= 1;
    s.wrapped[10] ^= 1;
    assert_int_equal(open_with(f->key, &s, s.aad, s.aad_len, &plain), ENVELOPE_ERR_KEY);
    s.wrapped[10] ^= 1;
    assert_int_equal(open_with(f->key, &s, s.aad, s.aad_len, &plain), ENVELOPE_OK);
    free(plain);
    sealed_free(&s);
}

/* A capture replayed into another session or with another serverRandom fails. */
static void test_envelope_binding(void **state) {
    env_fixture *f = *state;
    sealed s;
    seal_for(f->key, "sid-1", "rnd-1", "capture", &s);
    char *plain;
    size_t len;
    uint8_t *other = envelope_aad("sid-2", "rnd-1", &len);
    assert_int_equal(open_with(f->key, &s, other, len, &plain), ENVELOPE_ERR_AUTH);
    free(other);
    other = envelope_aad("sid-1", "rnd-2", &len);
    assert_int_equal(open_with(f->key, &s, other, len, &plain), ENVELOPE_ERR_AUTH);
    free(other);
    assert_int_equal(open_with(f->key, &s, NULL, 0, &plain), ENVELOPE_ERR_AUTH);
    sealed_free(&s);
}

static void test_envelope_malformed(void **state) {
    env_fixture *f = *state;
    sealed s;
    seal_for(f->key, "sid-1", "rnd-1", "capture", &s);
    uint8_t *plain;
    size_t n;
    assert_int_equal(envelope_open(f->key, s.wrapped, s.wrapped_len, s.iv, 11, s.ct, s.ct_len, s.aad, s.aad_len, &plain, &n),
                     ENVELOPE_ERR_FORMAT);
    assert_int_equal(envelope_open(f->key, s.wrapped, s.wrapped_len, s.iv, 12, s.ct, 15, s.aad, s.aad_len, &plain, &n),
                     ENVELOPE_ERR_FORMAT);
    assert_int_equal(envelope_open(f->key, s.wrapped, 5, s.iv, 12, s.ct, s.ct_len, s.aad, s.aad_len, &plain, &n),
                     ENVELOPE_ERR_KEY);
    assert_int_equal(envelope_open(f->key, s.wrapped, 0, s.iv, 12, s.ct, s.ct_len, s.aad, s.aad_len, &plain, &n),
                     ENVELOPE_ERR_KEY);
    assert_non_null(strstr(envelope_strerror(ENVELOPE_ERR_AUTH), "authentication"));
    sealed_free(&s);
}

static void test_envelope_bad_data_dir(void **state) {
    (void)state;
    char err[256] = "";
    assert_null(envelope_key_load_or_create("/proc/no/such/dir", err, sizeof err));
    assert_true(strlen(err) > 0);
}

/* ---- SSRF filter ---- */

static bool allowed_by(const char *allow, bool allow_private, const char *host, const char *ip) {
    char err[160];
    callback_policy *p = callback_policy_create(allow_private, allow, err, sizeof err);
    assert_non_null(p);
    struct sockaddr_storage ss = {0};
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    }
    bool ok = callback_policy_allows(p, host, (struct sockaddr *)&ss);
    callback_policy_free(p);
    return ok;
}

static bool allowed4(const char *ip, bool allow_private) { return allowed_by("", allow_private, NULL, ip); }
static bool allowed6(const char *ip) { return allowed_by("", false, NULL, ip); }

static void test_ssrf_filter(void **state) {
    (void)state;
    const char *refused[] = {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                             "0.0.0.0", "100.64.0.1", "224.0.0.1", "255.255.255.255", NULL};
    for (int i = 0; refused[i]; i++) assert_false(allowed4(refused[i], false));
    assert_true(allowed4("127.0.0.1", true));
    assert_true(allowed4("8.8.8.8", false));
    assert_true(allowed4("172.32.0.1", false));
    assert_false(allowed6("::1"));
    assert_false(allowed6("fe80::1"));
    assert_false(allowed6("fd00::1"));
    assert_false(allowed6("::ffff:127.0.0.1"));
    assert_false(allowed6("::"));
    assert_true(allowed6("2001:4860:4860::8888"));
    /* IPv6 spellings of an IPv4 destination are judged by it: mapped, compatible,
     * SIIT, NAT64 (64:ff9b::/96), 6to4 (2002::/16), Teredo (2001::/32, inverted). */
    const char *v4_inside[] = {"::ffff:7f00:1", "::ffff:10.0.0.1", "::127.0.0.1", "::192.168.1.1", "::ffff:0:127.0.0.1",
                               "64:ff9b::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::10.1.2.3", "64:ff9b::169.254.169.254",
                               "2002:7f00:1::", "2002:c0a8:101::1", "2002:a00:1:1::5", "2001:0:4136:e378:8000:63bf:80ff:fffe",
                               "64:ff9b:1::8.8.8.8", "2001:db8::1", NULL};
    for (int i = 0; v4_inside[i]; i++) {
        if (allowed6(v4_inside[i])) fail_msg("%s is let through", v4_inside[i]);
    }
    assert_true(allowed6("::ffff:8.8.8.8"));
    assert_true(allowed6("64:ff9b::8.8.8.8"));
    assert_true(allowed6("2002:808:808::1"));
    assert_true(allowed6("2001:0:4136:e378:8000:63bf:f7f7:f7f7")); /* Teredo client 8.8.8.8 */
    char err[160], pin[600];
    const char *literal_urls[] = {"http://[::ffff:127.0.0.1]:9/cb", "http://[64:ff9b::7f00:1]:9/cb", "http://[2002:7f00:1::]:9/cb",
                                  "http://[::1]:9/cb", NULL};
    callback_policy *guard = callback_policy_create(false, "", err, sizeof err);
    for (int i = 0; literal_urls[i]; i++)
        assert_int_equal(callback_policy_check_url(guard, literal_urls[i], pin, sizeof pin, err, sizeof err), -1);
    callback_policy_free(guard);
    callback_policy *none = callback_policy_create(false, "", err, sizeof err);
    assert_int_equal(callback_policy_check_url(none, "ftp://example.com/x", pin, sizeof pin, err, sizeof err), -1);
    assert_int_equal(notifier_post("http://127.0.0.1:9/x", "s", none, err, sizeof err), -1);
    assert_non_null(strstr(err, "refused"));
    callback_policy_free(none);
}

/* callback_allow: CIDRs of either family and host names open the guard for just
 * those destinations; anything unparsable is a start-up error naming the entry. */
static void test_callback_allow_list(void **state) {
    (void)state;
    const char *allow = "10.1.0.0/16, 127.0.0.1,::1/128,hooks.internal";
    assert_true(allowed_by(allow, false, NULL, "10.1.200.3"));
    assert_false(allowed_by(allow, false, NULL, "10.2.0.1"));
    assert_true(allowed_by(allow, false, NULL, "127.0.0.1"));
    assert_false(allowed_by(allow, false, NULL, "127.0.0.2"));
    assert_true(allowed_by(allow, false, NULL, "::1"));
    assert_true(allowed_by(allow, false, "HOOKS.internal", "192.168.3.4"));
    assert_false(allowed_by(allow, false, "other.internal", "192.168.3.4"));
    assert_true(allowed_by("0.0.0.0/0", false, NULL, "192.168.3.4"));
    char err[160] = "";
    const char *bad[] = {"10.0.0.0/33", "::1/129", "1.2.3.4/", "bad host!", "1.2.3.4/x", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_null(callback_policy_create(false, bad[i], err, sizeof err));
        assert_non_null(strstr(err, "callback_allow"));
    }
    char pin[600];
    callback_policy *p = callback_policy_create(false, "127.0.0.1", err, sizeof err);
    assert_int_equal(callback_policy_check_url(p, "http://127.0.0.1:9/cb", pin, sizeof pin, err, sizeof err), 0);
    assert_string_equal(pin, ""); /* an address: nothing to pin */
    assert_int_equal(callback_policy_check_url(p, "http://[::1]:9/cb", pin, sizeof pin, err, sizeof err), -1);
    /* An address literal has no lookup to pin (and CURLOPT_RESOLVE cannot name an IPv6 host). */
    callback_policy *v6 = callback_policy_create(false, "::1/128", err, sizeof err);
    strcpy(pin, "stale");
    assert_int_equal(callback_policy_check_url(v6, "http://[::1]:9/cb", pin, sizeof pin, err, sizeof err), 0);
    assert_string_equal(pin, "");
    /* A name is pinned to the address that was checked (IPv6 bracketed). */
    callback_policy_free(v6);
    callback_policy *local = callback_policy_create(false, "127.0.0.1, ::1/128", err, sizeof err);
    assert_int_equal(callback_policy_check_url(local, "http://localhost:9/cb", pin, sizeof pin, err, sizeof err), 0);
    if (strcmp(pin, "localhost:9:127.0.0.1") && strcmp(pin, "localhost:9:[::1]")) fail_msg("pin %s", pin);
    callback_policy_free(local);
    assert_int_equal(callback_policy_check_url(p, "http://no-such-host.invalid/cb", pin, sizeof pin, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not resolve"));
    callback_policy_free(p);
}

/* ---- verdicts on synthetic measurements ---- */

static liveness_frame_info frame(float live, float yaw, float x, float thumb) {
    liveness_frame_info f = {.face = true, .live = live, .yaw = yaw, .quality = 200, .embedding_dim = 4};
    float box[4] = {x, 100, 100, 120}, eyes[4] = {x + 30, 140, x + 70, 140};
    memcpy(f.box, box, sizeof box);
    memcpy(f.eyes, eyes, sizeof eyes);
    f.embedding[0] = 1;
    for (int i = 0; i < 256; i++) f.thumb[i] = thumb + (float)(i % 7);
    return f;
}

static void test_decide_passive(void **state) {
    (void)state;
    liveness_request rq = {.type = LIVENESS_PASSIVE, .level = LEVEL_HIGH};
    liveness_frame_info f[1] = {frame(0.99f, 0, 100, 0)};
    liveness_outcome o;
    liveness_decide(&rq, NULL, f, 1, &o);
    assert_int_equal(o.verdict, VERDICT_SUCCESS);
    f[0].live = 0.9f;
    liveness_decide(&rq, NULL, f, 1, &o);
    assert_int_equal(o.verdict, VERDICT_SPOOF);
    rq.level = LEVEL_LOW; /* the level moves the threshold */
    liveness_decide(&rq, NULL, f, 1, &o);
    assert_int_equal(o.verdict, VERDICT_SUCCESS);
    f[0].face = false;
    liveness_decide(&rq, NULL, f, 1, &o);
    assert_int_equal(o.verdict, VERDICT_FAILED);
    assert_int_equal(o.best_frame, -1);
}

static void test_decide_video(void **state) {
    (void)state;
    liveness_request rq = {.type = LIVENESS_PASSIVE_VIDEO, .level = LEVEL_HIGH};
    liveness_frame_info f[4] = {frame(0.99f, 0, 100, 0), frame(0.99f, 0, 102, 20), frame(0.99f, 0, 101, 40),
                                frame(0.99f, 0, 103, 60)};
    liveness_outcome o;
    liveness_decide(&rq, NULL, f, 4, &o);
    assert_int_equal(o.verdict, VERDICT_SUCCESS);
    f[3] = f[1]; /* a looped frame */
    liveness_decide(&rq, NULL, f, 4, &o);
    assert_int_equal(o.verdict, VERDICT_SPOOF);
    assert_non_null(strstr(o.reason, "identical"));
    f[3] = frame(0.99f, 0, 400, 60); /* a jump of 7 eye distances */
    liveness_decide(&rq, NULL, f, 4, &o);
    assert_int_equal(o.verdict, VERDICT_SPOOF);
    f[3] = frame(0.99f, 0, 103, 60);
    f[3].embedding[0] = 0, f[3].embedding[1] = 1; /* someone else */
    liveness_decide(&rq, NULL, f, 4, &o);
    assert_int_equal(o.verdict, VERDICT_SPOOF);
    for (int i = 0; i < 4; i++) f[i] = frame(0.99f, 0, 100, 20.0f * (float)i); /* no motion at all */
    liveness_decide(&rq, NULL, f, 4, &o);
    assert_int_equal(o.verdict, VERDICT_SPOOF);
    assert_non_null(strstr(o.reason, "motion"));
    liveness_decide(&rq, NULL, f, 2, &o); /* too few frames */
    assert_int_equal(o.verdict, VERDICT_FAILED);
}

static void test_decide_active(void **state) {
    (void)state;
    liveness_request rq = {.type = LIVENESS_ACTIVE, .level = LEVEL_HIGH, .seed = 42, .nb_challenge = 3};
    challenge_direction want[3];
    challenge_derive(42, 3, want);
    liveness_frame_info f[7];
    int n = 0;
    for (int i = 0; i < 3; i++) {
        f[n] = frame(0.99f, 0.01f, 100 + (float)n, 10.0f * (float)n), n++;
        f[n] = frame(0.5f, want[i] == CHALLENGE_LEFT ? 0.3f : -0.3f, 100 + (float)n, 10.0f * (float)n), n++;
    }
    f[n] = frame(0.99f, 0, 100 + (float)n, 10.0f * (float)n), n++;
    liveness_outcome o;
    liveness_decide(&rq, NULL, f, n, &o);
    assert_int_equal(o.verdict, VERDICT_SUCCESS); /* turned frames do not count for the live score */
    assert_int_equal(o.challenges_done, 3);
    f[3].yaw = -f[3].yaw; /* the second turn goes the wrong way */
    liveness_decide(&rq, NULL, f, n, &o);
    assert_int_equal(o.verdict, VERDICT_FAILED);
    assert_int_equal(o.challenges_done, 1);
    f[3].yaw = 0.05f; /* not far enough */
    liveness_decide(&rq, NULL, f, n, &o);
    assert_int_equal(o.verdict, VERDICT_FAILED);
    rq.nb_challenge = 0;
    liveness_decide(&rq, NULL, f, n, &o);
    assert_int_equal(o.verdict, VERDICT_ERROR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge_deterministic),
        cmocka_unit_test(test_challenge_bounds),
        cmocka_unit_test_setup_teardown(test_envelope_round_trip, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_envelope_tampering, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_envelope_binding, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_envelope_malformed, env_setup, env_teardown),
        cmocka_unit_test(test_envelope_bad_data_dir),
        cmocka_unit_test(test_ssrf_filter),
        cmocka_unit_test(test_callback_allow_list),
        cmocka_unit_test(test_decide_passive),
        cmocka_unit_test(test_decide_video),
        cmocka_unit_test(test_decide_active),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
