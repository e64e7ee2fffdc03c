/* libnexpo from plain C: links build/libnexpo/libnexpo.so through its one public header and
 * checks init, a SHA-256 vector, a matmul, and the status / last-error convention.
 * Built and run by `make test-libnexpo`. Exit status 0 = every check passed. */
#include <stdio.h>
#include <string.h>

#include "nexpo.h"

static int failures = 0;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fputc('\n', stderr);                           \
            failures++;                                    \
        }                                                  \
    } while (0)

static void hex(const uint8_t *bytes, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", bytes[i]);
}

static void test_sha256(void) {
    /* FIPS 180-2 "abc" and the empty message. */
    uint8_t digest[32];
    char text[65];
    CHECK(nexpo_sha256("abc", 3, digest, sizeof digest) == NEXPO_OK, "sha256(abc): %s", nexpo_last_error());
    hex(digest, 32, text);
    CHECK(strcmp(text, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0, "abc -> %s", text);
    CHECK(nexpo_sha256("", 0, digest, sizeof digest) == NEXPO_OK, "sha256(): %s", nexpo_last_error());
    hex(digest, 32, text);
    CHECK(strcmp(text, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0, "'' -> %s", text);
    /* Two equal rows in one batch call. */
    uint8_t two[64];
    CHECK(nexpo_sha256_many("abcabc", 6, NULL, 2, two, sizeof two) == NEXPO_OK, "many: %s", nexpo_last_error());
    hex(two + 32, 32, text);
    CHECK(strcmp(text, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0, "row 1 -> %s", text);
}

static void test_matmul(void) {
    /* [[1 2 3] [4 5 6]] @ [[7 8] [9 10] [11 12]] = [[58 64] [139 154]] */
    const float a[6] = {1, 2, 3, 4, 5, 6};
    const float b[6] = {7, 8, 9, 10, 11, 12};
    float c[4] = {0};
    CHECK(nexpo_matmul(NEXPO_F32, 2, 2, 3, a, 3, 1, b, 2, 1, c, 2) == NEXPO_OK, "matmul: %s", nexpo_last_error());
    CHECK(c[0] == 58 && c[1] == 64 && c[2] == 139 && c[3] == 154, "matmul -> %g %g %g %g", c[0], c[1], c[2], c[3]);
    const double ad[1] = {1.5}, bd[1] = {-2};
    double cd[1] = {0};
    CHECK(nexpo_matmul(NEXPO_F64, 1, 1, 1, ad, 1, 1, bd, 1, 1, cd, 1) == NEXPO_OK, "matmul f64");
    CHECK(cd[0] == -3.0, "f64 -> %g", cd[0]);
}

static void test_errors(void) {
    uint8_t small[8];
    int32_t st = nexpo_sha256("abc", 3, small, sizeof small);
    CHECK(st == NEXPO_EINVAL, "short out: status %d", st);
    CHECK(strstr(nexpo_last_error(), "out") != NULL, "last error names the argument: '%s'", nexpo_last_error());
    float c[1];
    st = nexpo_matmul(7, 1, 1, 1, c, 1, 1, c, 1, 1, c, 1);
    CHECK(st != NEXPO_OK && nexpo_last_error()[0] != '\0', "bad dtype: status %d '%s'", st, nexpo_last_error());
    /* A tampered ciphertext is NEXPO_EAUTH and nothing is written. */
    const char key[32] = {1}, nonce[12] = {2};
    uint8_t sealed[5 + 16], opened[5] = {0};
    CHECK(nexpo_chacha20poly1305_encrypt(key, 32, nonce, 12, "hello", 5, "", 0, sealed, sizeof sealed) == NEXPO_OK,
          "encrypt: %s", nexpo_last_error());
    CHECK(nexpo_chacha20poly1305_decrypt(key, 32, nonce, 12, (const char *)sealed, sizeof sealed, "", 0, opened,
                                         sizeof opened) == NEXPO_OK && memcmp(opened, "hello", 5) == 0, "round trip");
    sealed[0] ^= 1;
    memset(opened, 0, sizeof opened);
    st = nexpo_chacha20poly1305_decrypt(key, 32, nonce, 12, (const char *)sealed, sizeof sealed, "", 0, opened,
                                        sizeof opened);
    CHECK(st == NEXPO_EAUTH, "tampered: status %d", st);
    CHECK(opened[0] == 0, "tampered: plaintext written");
}

int main(void) {
    CHECK(nexpo_init() == NEXPO_OK, "init");
    CHECK(nexpo_init() == NEXPO_OK, "second init");
    char version[32];
    CHECK(nexpo_nim_version(version, sizeof version) == NEXPO_OK && version[0] != '\0', "nim version");
    test_sha256();
    test_matmul();
    test_errors();
    if (failures) {
        fprintf(stderr, "test_libnexpo: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_libnexpo: ok (Nim %s, ISA path %d)\n", version, nexpo_isa_active());
    return 0;
}
