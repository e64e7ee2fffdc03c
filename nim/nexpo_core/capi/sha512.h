/* nexpo SHA-512 and HMAC-SHA-512 exports: declared here, implemented in sha512.nim beside this file.
 * Digests are 64 bytes; every call returns a status. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* SHA-512 of data[0..len) into out[0..64). */
int32_t nexpo_sha512(const char *data, size_t len, uint8_t *out, size_t out_len);
/* Streaming SHA-512 whose state lives in a caller-owned buffer of nexpo_sha512_state_size()
 * bytes: copying the buffer forks the hash. final does not change the state. */
size_t nexpo_sha512_state_size(void);
int32_t nexpo_sha512_init(uint8_t *state, size_t state_len);
int32_t nexpo_sha512_update(uint8_t *state, size_t state_len, const char *data, size_t len);
int32_t nexpo_sha512_final(const uint8_t *state, size_t state_len, uint8_t *out, size_t out_len);
/* HMAC-SHA-512(key, data) (RFC 2104) into out[0..64); any key length. */
int32_t nexpo_hmac_sha512(const char *key, size_t key_len, const char *data, size_t len,
                          uint8_t *out, size_t out_len);
/* *ok = 1 if tag is HMAC-SHA-512(key, data), else 0; compared in constant time (a tag that is
 * not 64 bytes long is not equal). */
int32_t nexpo_hmac_sha512_verify(const char *key, size_t key_len, const char *data, size_t len,
                                 const char *tag, size_t tag_len, int32_t *ok);
