/* nexpo AES-256-GCM exports: declared here, implemented in aes.nim beside this file.
 * 32-byte keys, 12-byte nonces, 16-byte tags; every fallible call returns a status.
 * encrypt/seal: out gets len + 16 bytes (ciphertext, tag). decrypt/open: data is
 * ciphertext || tag; out gets len - 16 bytes, and is wiped unless the tag is authentic
 * (NEXPO_EAUTH). At most 2^36 - 32 bytes of plaintext per message. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* The variant the next call would use (follows nexpo_set_isa): 0 portable (bitsliced),
 * 1 AES-NI + PCLMULQDQ, 2 VAES + VPCLMULQDQ (AVX-512). */
int32_t nexpo_aes256gcm_impl(void);
/* The CPU's AES extensions: bit 0 AES-NI + PCLMULQDQ, bit 1 VAES + VPCLMULQDQ on zmm. */
int32_t nexpo_aes256gcm_cpu(void);
/* One-shot calls: the key is expanded, used and wiped. */
int32_t nexpo_aes256gcm_encrypt(const char *key, size_t key_len, const char *nonce,
                                size_t nonce_len, const char *data, size_t len, const char *aad,
                                size_t aad_len, uint8_t *out, size_t out_len);
int32_t nexpo_aes256gcm_decrypt(const char *key, size_t key_len, const char *nonce,
                                size_t nonce_len, const char *data, size_t len, const char *aad,
                                size_t aad_len, uint8_t *out, size_t out_len);
/* An expanded key (round keys, GHASH powers) in a caller-owned buffer of
 * nexpo_aes256gcm_key_size() bytes, 16-byte aligned; key_wipe zeroes it for good. */
size_t nexpo_aes256gcm_key_size(void);
int32_t nexpo_aes256gcm_key_init(void *state, size_t state_len, const char *key, size_t key_len);
void nexpo_aes256gcm_key_wipe(void *state, size_t state_len);
int32_t nexpo_aes256gcm_seal(const void *state, size_t state_len, const char *nonce,
                             size_t nonce_len, const char *data, size_t len, const char *aad,
                             size_t aad_len, uint8_t *out, size_t out_len);
int32_t nexpo_aes256gcm_open(const void *state, size_t state_len, const char *nonce,
                             size_t nonce_len, const char *data, size_t len, const char *aad,
                             size_t aad_len, uint8_t *out, size_t out_len);
