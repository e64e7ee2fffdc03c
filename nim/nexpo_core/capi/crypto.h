/* nexpo crypto exports: declared here, implemented in crypto.nim beside this file.
 * Buffers are (pointer, length); digests are 32 bytes. Every call returns a status.
 * Inputs are `const char *` so cffi passes a Python bytes object without copying it. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* SHA-256 of data[0..len) into out[0..32). */
int32_t nexpo_sha256(const char *data, size_t len, uint8_t *out, size_t out_len);
/* Streaming SHA-256 whose state lives in a caller-owned buffer of nexpo_sha256_state_size()
 * bytes: copying the buffer forks the hash. final does not change the state. */
size_t nexpo_sha256_state_size(void);
int32_t nexpo_sha256_init(uint8_t *state, size_t state_len);
int32_t nexpo_sha256_update(uint8_t *state, size_t state_len, const char *data, size_t len);
int32_t nexpo_sha256_final(const uint8_t *state, size_t state_len, uint8_t *out, size_t out_len);
/* A batch: n messages concatenated in data[0..len); lengths[i] is message i's length, or
 * lengths == NULL for n equal rows of len / n bytes. out gets 32 * n bytes. */
int32_t nexpo_sha256_many(const char *data, size_t len, const uint64_t *lengths, size_t n,
                          uint8_t *out, size_t out_len);
/* The same batch with messages apart in memory: message i is ptrs[i][0..lengths[i]) (a NULL
 * pointer only for an empty message). Nothing is copied. */
int32_t nexpo_sha256_many_ptrs(const char *const *ptrs, const uint64_t *lengths, size_t n,
                               uint8_t *out, size_t out_len);
/* The same batch handed over chunk by chunk, hashed by the pool while the caller prepares the
 * next chunk. fill(lo, hi, done, ptrs, lengths, outs, ctx) sets, for message i in [lo, hi),
 * ptrs[i-lo] and lengths[i-lo] (as for nexpo_sha256_many_ptrs) and outs[i-lo]: where its 32-byte
 * digest goes. It returns 0, or a non-zero status that stops the batch (returned as is). It runs
 * on the calling thread, one call at a time; messages below `done` are hashed (their buffers may
 * go), the chunk before [lo, hi) may still be hashing. chunk: messages per call (0: default). */
typedef int32_t (*nexpo_sha256_fill_fn)(size_t lo, size_t hi, size_t done, const char **ptrs,
                                        uint64_t *lengths, uint8_t **outs, void *ctx);
int32_t nexpo_sha256_many_stream(size_t n, size_t chunk, nexpo_sha256_fill_fn fill, void *ctx);
int32_t nexpo_hmac_sha256(const char *key, size_t key_len, const char *data, size_t len,
                          uint8_t *out, size_t out_len);
int32_t nexpo_hmac_sha256_many(const char *key, size_t key_len, const char *data,
                               size_t len, const uint64_t *lengths, size_t n, uint8_t *out,
                               size_t out_len);
int32_t nexpo_hmac_sha256_many_ptrs(const char *key, size_t key_len, const char *const *ptrs,
                                    const uint64_t *lengths, size_t n, uint8_t *out,
                                    size_t out_len);
/* *ok = 1 when tag is HMAC-SHA-256(key, data), else 0; compares in constant time. */
int32_t nexpo_hmac_sha256_verify(const char *key, size_t key_len, const char *data,
                                 size_t len, const char *tag, size_t tag_len, int32_t *ok);
/* RFC 9162 Merkle Tree Hash of the batch's leaves (same batch layout as nexpo_sha256_many). */
int32_t nexpo_merkle_root(const char *data, size_t len, const uint64_t *lengths, size_t n,
                          uint8_t *out, size_t out_len);
/* Audit path of leaf `index`: 32 bytes per node into out (room for 64 nodes); *count = nodes. */
int32_t nexpo_merkle_proof(const char *data, size_t len, const uint64_t *lengths, size_t n,
                           uint64_t index, uint8_t *out, size_t out_len, int32_t *count);
/* *ok = 1 when proof (proof_len / 32 nodes) proves leaf is entry index of the tree of
 * tree_size leaves with this root, else 0. */
int32_t nexpo_merkle_verify(const char *leaf, size_t leaf_len, uint64_t index,
                            uint64_t tree_size, const char *proof, size_t proof_len,
                            const char *root, size_t root_len, int32_t *ok);
/* RFC 8439 ChaCha20-Poly1305. encrypt: out gets len + 16 bytes (ciphertext, tag).
 * decrypt: data is ciphertext || tag; out gets len - 16 bytes, written only when the tag is
 * authentic (NEXPO_EAUTH otherwise). */
int32_t nexpo_chacha20poly1305_encrypt(const char *key, size_t key_len, const char *nonce,
                                       size_t nonce_len, const char *data, size_t len,
                                       const char *aad, size_t aad_len, uint8_t *out,
                                       size_t out_len);
int32_t nexpo_chacha20poly1305_decrypt(const char *key, size_t key_len, const char *nonce,
                                       size_t nonce_len, const char *data, size_t len,
                                       const char *aad, size_t aad_len, uint8_t *out,
                                       size_t out_len);
