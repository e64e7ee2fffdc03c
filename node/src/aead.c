/* RFC 8439 ChaCha20-Poly1305: chacha20poly1305Encrypt(key, nonce, data, aad?) returns
 * ciphertext || 16-byte tag; Decrypt takes that and throws (err.code ERR_NEXPO_AUTH) when any of
 * data, aad, key or nonce differ from the encryption's; the core writes no plaintext then. */
#include "addon.h"
#include "crypto.h"

#define KEY_SIZE 32
#define NONCE_SIZE 12
#define TAG_SIZE 16

static int32_t run_encrypt(nx_job *j) {
  return nexpo_chacha20poly1305_encrypt(j->in[0], j->in_len[0], j->in[1], j->in_len[1], j->in[2],
                                        j->in_len[2], j->in[3], j->in_len[3], j->out, j->out_len);
}

static int32_t run_decrypt(nx_job *j) {
  return nexpo_chacha20poly1305_decrypt(j->in[0], j->in_len[0], j->in[1], j->in_len[1], j->in[2],
                                        j->in_len[2], j->in[3], j->in_len[3], j->out, j->out_len);
}

static bool prepare(napi_env env, napi_callback_info info, nx_job *job, bool decrypt) {
  napi_value argv[4];
  job->run = decrypt ? run_decrypt : run_encrypt;
  if (!nx_args(env, info, 3, 4, argv, job->op)) return false;
  static const char *const names[4] = {"key", "nonce", "data", "aad"};
  for (int i = 0; i < 4; i++) {
    if (i == 3 && nx_is_nullish(env, argv[3])) {
      job->in[3] = "";
      break;
    }
    if (!nx_bytes(env, argv[i], job->op, names[i], &job->in[i], &job->in_len[i])) return false;
  }
  if (job->in_len[0] != KEY_SIZE) {
    nx_range_error(env, "%s: key must be %d bytes, got %zu", job->op, KEY_SIZE, job->in_len[0]);
    return false;
  }
  if (job->in_len[1] != NONCE_SIZE) {
    nx_range_error(env, "%s: nonce must be %d bytes, got %zu", job->op, NONCE_SIZE, job->in_len[1]);
    return false;
  }
  if (decrypt && job->in_len[2] < TAG_SIZE) {
    nx_range_error(env, "%s: data must hold at least the %d-byte tag, got %zu bytes", job->op, TAG_SIZE,
                   job->in_len[2]);
    return false;
  }
  return nx_job_buffer_out(env, job, decrypt ? job->in_len[2] - TAG_SIZE : job->in_len[2] + TAG_SIZE);
}

static bool prepare_encrypt(napi_env env, napi_callback_info info, nx_job *job) {
  return prepare(env, info, job, false);
}

static bool prepare_decrypt(napi_env env, napi_callback_info info, nx_job *job) {
  return prepare(env, info, job, true);
}

NX_SYNC_AND_ASYNC(chacha20poly1305Encrypt, prepare_encrypt)
NX_SYNC_AND_ASYNC(chacha20poly1305Decrypt, prepare_decrypt)

napi_status nx_register_aead(napi_env env, napi_value exports) {
  static const nx_function fns[] = {
    NX_FUNCTIONS(chacha20poly1305Encrypt), NX_FUNCTIONS(chacha20poly1305Decrypt),
  };
  return nx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
