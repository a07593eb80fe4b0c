/* Unit tests for the key ring (src/core/keyring.c): configuration keys plus a keys
 * file, reloads that add, revoke and re-permission keys, bad files that change
 * nothing, stable entries for requests in flight, and the capacity limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/keyring.h"

#define STATIC_KEY "static-key-0123456789"
#define FILE_A "file-key-a-0123456789"
#define FILE_B "file-key-b-0123456789"
#define FILE_C "file-key-c-0123456789"

static char keys_path[] = "/tmp/test_keyring_XXXXXX";

static void write_keys(const char *text) {
    FILE *f = fopen(keys_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state) {
    (void)state;
    int fd = mkstemp(keys_path);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(keys_path);
    return 0;
}

static keyring *make_ring(const char *file_text) {
    server_config c;
    config_defaults(&c);
    char err[512] = "";
    assert_int_equal(config_add_key(&c, STATIC_KEY ":ops:admin", err, sizeof err), 0);
    write_keys(file_text);
    snprintf(c.keys_file, sizeof c.keys_file, "%s", keys_path);
    keyring *kr = keyring_create(&c, err, sizeof err);
    if (!kr) print_error("%s\n", err);
    assert_non_null(kr);
    return kr;
}

static void test_create_and_find(void **state) {
    (void)state;
    keyring *kr = make_ring("# comment\n\n" FILE_A ":bank:faces,matches\n  " FILE_B "  \n");
    assert_int_equal(keyring_count(kr), 3);
    assert_int_equal(keyring_active_count(kr), 3);
    int index = -1;
    const api_key_config *k = keyring_find(kr, FILE_A, &index);
    assert_non_null(k);
    assert_int_equal(index, 1);
    assert_string_equal(k->tenant, "bank");
    assert_int_equal(k->permissions, PERM_FACES | PERM_MATCHES);
    k = keyring_find(kr, STATIC_KEY, &index);
    assert_non_null(k);
    assert_int_equal(index, 0);
    assert_int_equal(k->permissions, PERM_ADMIN);
    assert_non_null(keyring_find(kr, FILE_B, &index)); /* surrounding spaces trimmed */
    assert_null(keyring_find(kr, "file-key-a-012345678", &index)); /* a prefix is not the key */
    assert_null(keyring_find(kr, "", &index));
    bool active = false;
    assert_ptr_equal(keyring_names(kr)[1], keyring_entry(kr, 1, &active)->name); /* metrics labels */
    assert_true(active);
    assert_null(keyring_names(kr)[3]);
    keyring_free(kr);
}

static void test_reload_adds_revokes_and_repermissions(void **state) {
    (void)state;
    keyring *kr = make_ring(FILE_A ":bank:faces\n" FILE_B ":shop\n");
    int index = -1;
    const api_key_config *old_a = keyring_find(kr, FILE_A, &index);
    assert_non_null(old_a);
    /* B removed, C added, A's permissions change. */
    write_keys(FILE_A ":bank:faces,matches\n" FILE_C ":shop\n");
    int added = -1, revoked = -1;
    char err[512] = "";
    assert_int_equal(keyring_reload(kr, &added, &revoked, err, sizeof err), 0);
    assert_int_equal(added, 2);   /* C and the new A */
    assert_int_equal(revoked, 2); /* B and the old A */
    assert_null(keyring_find(kr, FILE_B, &index));
    assert_non_null(keyring_find(kr, FILE_C, &index));
    const api_key_config *new_a = keyring_find(kr, FILE_A, &index);
    assert_non_null(new_a);
    assert_int_equal(new_a->permissions, PERM_FACES | PERM_MATCHES);
    /* A request that started before the reload still holds a valid entry. */
    assert_string_equal(old_a->tenant, "bank");
    assert_int_equal(old_a->permissions, PERM_FACES);
    bool active = true;
    assert_ptr_equal(keyring_entry(kr, 1, &active), old_a);
    assert_false(active);
    assert_non_null(keyring_find(kr, STATIC_KEY, &index)); /* configuration keys stay */
    /* The same file again changes nothing. */
    assert_int_equal(keyring_reload(kr, &added, &revoked, err, sizeof err), 0);
    assert_int_equal(added, 0);
    assert_int_equal(revoked, 0);
    assert_int_equal(keyring_active_count(kr), 3);
    /* A key removed and later restored works again. */
    write_keys(FILE_B ":shop\n");
    assert_int_equal(keyring_reload(kr, &added, &revoked, err, sizeof err), 0);
    assert_non_null(keyring_find(kr, FILE_B, &index));
    assert_null(keyring_find(kr, FILE_C, &index));
    keyring_free(kr);
}

static void test_bad_file_changes_nothing(void **state) {
    (void)state;
    keyring *kr = make_ring(FILE_A "\n");
    int index, added, revoked, before = keyring_count(kr);
    char err[512] = "";
    write_keys(FILE_B "\nshort\n" FILE_C ":t:nonsense\n");
    assert_int_equal(keyring_reload(kr, &added, &revoked, err, sizeof err), -1);
    assert_non_null(strstr(err, ":2: API key must be 16 to 127 characters"));
    assert_non_null(strstr(err, ":3: unknown permission"));
    assert_int_equal(keyring_count(kr), before);
    assert_non_null(keyring_find(kr, FILE_A, &index));
    assert_null(keyring_find(kr, FILE_B, &index));
    write_keys(FILE_A "\n" FILE_A ":again\n");
    assert_int_equal(keyring_reload(kr, &added, &revoked, err, sizeof err), -1);
    assert_non_null(strstr(err, "listed twice"));
    write_keys(STATIC_KEY "\n");
    assert_int_equal(keyring_reload(kr, &added, &revoked, err, sizeof err), -1);
    assert_non_null(strstr(err, "also in the configuration"));
    unlink(keys_path);
    assert_int_equal(keyring_reload(kr, &added, &revoked, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open keys file"));
    assert_non_null(keyring_find(kr, FILE_A, &index));
    keyring_free(kr);
    /* At start-up a bad file is an error, not an empty key set. */
    server_config c;
    config_defaults(&c);
    snprintf(c.keys_file, sizeof c.keys_file, "%s", keys_path);
    assert_null(keyring_create(&c, err, sizeof err));
    assert_non_null(strstr(err, keys_path));
}

/* Entries are never reused: a ring that would exceed KEYRING_MAX refuses the
 * reload and keeps working with the keys it has. */
static void test_capacity(void **state) {
    (void)state;
    keyring *kr = make_ring("");
    char err[512] = "", line[64];
    int added, revoked, index, generation = 0;
    for (;;) {
        FILE *f = fopen(keys_path, "w");
        assert_non_null(f);
        for (int i = 0; i < 100; i++) {
            snprintf(line, sizeof line, "rotating-key-%04d-%04d\n", generation, i);
            fputs(line, f);
        }
        fclose(f);
        if (keyring_reload(kr, &added, &revoked, err, sizeof err)) break;
        generation++;
    }
    assert_int_equal(generation, (KEYRING_MAX - 1) / 100);
    assert_non_null(strstr(err, "restart the server"));
    snprintf(line, sizeof line, "rotating-key-%04d-%04d", generation - 1, 99);
    assert_non_null(keyring_find(kr, line, &index)); /* the last good generation is active */
    keyring_free(kr);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_find),
        cmocka_unit_test(test_reload_adds_revokes_and_repermissions),
        cmocka_unit_test(test_bad_file_changes_nothing),
        cmocka_unit_test(test_capacity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
