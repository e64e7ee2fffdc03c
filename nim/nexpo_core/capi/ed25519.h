/* nexpo Ed25519 exports (RFC 8032): declared here, implemented in ed25519.nim beside this file.
 * Seeds and public keys are 32 bytes, signatures 64; every call returns a status. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* out[0..32) = the public key of the 32-byte seed. */
int32_t nexpo_ed25519_public_key(const char *seed, size_t seed_len, uint8_t *out, size_t out_len);
/* out[0..64) = the signature R || S of message[0..len) by the 32-byte seed. */
int32_t nexpo_ed25519_sign(const char *seed, size_t seed_len, const char *message, size_t len,
                           uint8_t *out, size_t out_len);
/* out[0..96) = the signing key of the 32-byte seed: its scalar a, nonce prefix and public key.
 * Secret: the caller keeps it private and wipes it. */
int32_t nexpo_ed25519_signing_key(const char *seed, size_t seed_len, uint8_t *out, size_t out_len);
/* out[0..64) = the signature of message[0..len) by a 96-byte signing key (as
 * nexpo_ed25519_sign by its seed, with one base-point multiplication instead of two). */
int32_t nexpo_ed25519_sign_with_key(const char *key, size_t key_len, const char *message,
                                    size_t len, uint8_t *out, size_t out_len);
/* *ok = 1 when signature (sig_len must be 64, else *ok = 0) is valid for message under the
 * 32-byte public key, else 0 (also for a key that is not a curve point). */
int32_t nexpo_ed25519_verify(const char *public_key, size_t key_len, const char *message,
                             size_t len, const char *signature, size_t sig_len, int32_t *ok);
/* n items: keys 32 * n bytes, signatures 64 * n bytes, messages in the batch layout of
 * nexpo_sha256_many; out[i] = 1 when item i verifies, else 0. */
int32_t nexpo_ed25519_verify_many(const char *public_keys, size_t keys_len, const char *data,
                                  size_t len, const uint64_t *lengths, size_t n,
                                  const char *signatures, size_t sigs_len, uint8_t *out,
                                  size_t out_len);
