/* Unit tests for the stored face record (src/api/face_blob.c): an FRC2 record reads
 * back field for field, an FRC1 record of the earlier servers still reads (its
 * summary made from its JSON, the same text a new record keeps), and every
 * truncated or malformed record is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api/face_blob.h"

#define FACE_JSON                                                                                           \
    "{\"id\":\"0991cedc-9111-4b9d-9e4e-8d6eb4db488f\",\"friendlyName\":\"ref\",\"digest\":\"abc\","          \
    "\"mode\":\"F5_4_IDD75\",\"imageType\":\"SELFIE\",\"quality\":212,\"landmarks\":{\"eyes\":[1.5,2]},"     \
    "\"created\":\"2026-12-01T10:00:00.000Z\",\"templateVersion\":2}"
#define FACE_ID "0991cedc-9111-4b9d-9e4e-8d6eb4db488f"

static float embedding[512];

static char *summary_of_text(const char *json) {
    json_t *face = json_loads(json, 0, NULL);
    assert_non_null(face);
    char *text = face_blob_summary_of(face);
    json_decref(face);
    assert_non_null(text);
    return text;
}

/* An FRC1 record as the earlier servers wrote it. */
static uint8_t *frc1(const char *json, size_t *len) {
    size_t jl = strlen(json);
    *len = 4 + 4 + jl + 2 + FACE_BLOB_MODE_LEN + sizeof embedding;
    uint8_t *b = calloc(1, *len);
    uint32_t j32 = (uint32_t)jl;
    uint16_t dim = 512;
    memcpy(b, "FRC1", 4);
    memcpy(b + 4, &j32, 4);
    memcpy(b + 8, json, jl);
    memcpy(b + 8 + jl, &dim, 2);
    strcpy((char *)b + 10 + jl, "F5_4_IDD75");
    memcpy(b + 10 + jl + FACE_BLOB_MODE_LEN, embedding, sizeof embedding);
    return b;
}

static void check_fields(const face_blob *r) {
    assert_int_equal(r->json_len, strlen(FACE_JSON));
    assert_memory_equal(r->json, FACE_JSON, r->json_len);
    assert_int_equal(r->dim, 512);
    face_template *tpl = malloc(sizeof(*tpl));
    face_blob_template(r, tpl);
    assert_string_equal(tpl->mode, "F5_4_IDD75");
    assert_int_equal(tpl->dim, 512);
    assert_memory_equal(tpl->embedding, embedding, sizeof embedding);
    free(tpl);
    char mode[FACE_BLOB_MODE_LEN];
    float *e = face_blob_embedding(r, mode);
    assert_string_equal(mode, "F5_4_IDD75");
    assert_memory_equal(e, embedding, sizeof embedding);
    free(e);
}

static void test_round_trip(void **state) {
    (void)state;
    char *summary = summary_of_text(FACE_JSON);
    /* The summary keeps only what a match shows, in the face's order. */
    assert_string_equal(summary, "{\"id\":\"" FACE_ID "\",\"friendlyName\":\"ref\",\"digest\":\"abc\","
                                 "\"mode\":\"F5_4_IDD75\",\"imageType\":\"SELFIE\",\"quality\":212,"
                                 "\"landmarks\":{\"eyes\":[1.5,2]}}");
    size_t len;
    uint8_t *b = face_blob_pack(FACE_JSON, "F5_4_IDD75", embedding, 512, FACE_ID, summary, &len);
    assert_non_null(b);
    face_blob r;
    assert_int_equal(face_blob_view(b, len, &r), 0);
    check_fields(&r);
    char id[FACE_ID_MAX];
    char *kept = face_blob_summary(&r, id);
    assert_string_equal(kept, summary);
    assert_string_equal(id, FACE_ID);
    free(kept);
    free(b);
    free(summary);
}

static void test_earlier_records_still_read(void **state) {
    (void)state;
    size_t len;
    uint8_t *b = frc1(FACE_JSON, &len);
    face_blob r;
    assert_int_equal(face_blob_view(b, len, &r), 0);
    assert_null(r.id);
    assert_null(r.summary);
    check_fields(&r);
    char id[FACE_ID_MAX], *made = face_blob_summary(&r, id), *expected = summary_of_text(FACE_JSON);
    assert_string_equal(made, expected);
    assert_string_equal(id, FACE_ID);
    free(made);
    free(expected);
    /* Trailing bytes are not an FRC1 record. */
    b = realloc(b, len + 1);
    assert_int_equal(face_blob_view(b, len + 1, &r), -1);
    free(b);
    /* Without an id there is no match to name. */
    b = frc1("{\"mode\":\"F5_4_IDD75\"}", &len);
    assert_int_equal(face_blob_view(b, len, &r), 0);
    assert_null(face_blob_summary(&r, id));
    free(b);
}

static void test_malformed_refused(void **state) {
    (void)state;
    size_t len;
    uint8_t *b = face_blob_pack(FACE_JSON, "F5_4_IDD75", embedding, 512, FACE_ID, "{\"id\":\"x\"}", &len);
    face_blob r;
    for (size_t n = 0; n < len; n++) assert_int_equal(face_blob_view(b, n, &r), -1); /* every truncation */
    uint8_t *longer = calloc(1, len + 1);
    memcpy(longer, b, len);
    assert_int_equal(face_blob_view(longer, len + 1, &r), -1);
    free(longer);
    b[3] = '9'; /* unknown version */
    assert_int_equal(face_blob_view(b, len, &r), -1);
    b[3] = '2';
    uint32_t huge = UINT32_MAX; /* json length past the end */
    memcpy(b + 4, &huge, 4);
    assert_int_equal(face_blob_view(b, len, &r), -1);
    free(b);
    /* Ids longer than FACE_ID_MAX - 1 are not packed. */
    char long_id[FACE_ID_MAX + 1];
    memset(long_id, 'a', FACE_ID_MAX);
    long_id[FACE_ID_MAX] = '\0';
    assert_null(face_blob_pack(FACE_JSON, "F5_4_IDD75", embedding, 512, long_id, "{}", &len));
    long_id[FACE_ID_MAX - 1] = '\0';
    b = face_blob_pack(FACE_JSON, "F5_4_IDD75", embedding, 512, long_id, "{}", &len);
    assert_int_equal(face_blob_view(b, len, &r), 0);
    free(b);
}

int main(void) {
    for (int i = 0; i < 512; i++) embedding[i] = (float)i / 512.0f - 0.5f;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_earlier_records_still_read),
        cmocka_unit_test(test_malformed_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
