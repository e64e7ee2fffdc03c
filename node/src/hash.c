/* SHA-256, HMAC-SHA-256 and Merkle roots, one message or a batch; each with a Promise variant.
 * A batch is an array of byte sequences (gathered into one block), or one buffer of equal rows
 * (sha256Many(data, rowSize)), and its digests come back as one Buffer of 32 bytes per message:
 * a Buffer per digest would cost more than hashing a short message. */
#include <stdio.h>

#include "addon.h"
#include "crypto.h"

#define DIGEST 32

static int32_t run_sha256(nx_job *j) {
  return nexpo_sha256(j->in[0], j->in_len[0], j->out, j->out_len);
}

static int32_t run_sha256_many(nx_job *j) {
  if (j->count == 0) return NEXPO_OK;
  return nexpo_sha256_many(j->in[0], j->in_len[0], j->lengths, j->count, j->out, j->out_len);
}

static int32_t run_hmac(nx_job *j) {
  return nexpo_hmac_sha256(j->in[0], j->in_len[0], j->in[1], j->in_len[1], j->out, j->out_len);
}

static int32_t run_hmac_many(nx_job *j) {
  if (j->count == 0) return NEXPO_OK;
  return nexpo_hmac_sha256_many(j->in[0], j->in_len[0], j->in[1], j->in_len[1], j->lengths, j->count,
                                j->out, j->out_len);
}

static int32_t run_merkle_root(nx_job *j) {
  return nexpo_merkle_root(j->in[0], j->in_len[0], j->lengths, j->count, j->out, j->out_len);
}

static bool prepare_sha256(napi_env env, napi_callback_info info, nx_job *job) {
  napi_value argv[1];
  job->run = run_sha256;
  return nx_args(env, info, 1, 1, argv, job->op) &&
         nx_bytes(env, argv[0], job->op, "data", &job->in[0], &job->in_len[0]) &&
         nx_job_buffer_out(env, job, DIGEST);
}

/* messages at argv[at] (an array), or a buffer at argv[at] and a row size at argv[at + 1]. */
static bool batch_arg(napi_env env, nx_job *job, napi_value *argv, int at, int slot) {
  bool is_array = false;
  napi_is_array(env, argv[at], &is_array);
  if (is_array || nx_is_nullish(env, argv[at + 1])) {
    char name[64];
    snprintf(name, sizeof name, "%s: messages", job->op);
    return nx_job_gather(env, job, argv[at], name, slot);
  }
  size_t row;
  if (!nx_bytes(env, argv[at], job->op, "data", &job->in[slot], &job->in_len[slot]) ||
      !nx_size(env, argv[at + 1], job->op, "rowSize", &row))
    return false;
  if (row == 0 || job->in_len[slot] % row != 0) {
    nx_range_error(env, "%s: rowSize must be positive and divide the data's %zu bytes, got %zu", job->op,
                   job->in_len[slot], row);
    return false;
  }
  job->count = job->in_len[slot] / row;
  return true;
}

static bool prepare_sha256_many(napi_env env, napi_callback_info info, nx_job *job) {
  napi_value argv[2];
  job->run = run_sha256_many;
  return nx_args(env, info, 1, 2, argv, job->op) && batch_arg(env, job, argv, 0, 0) &&
         nx_job_buffer_out(env, job, DIGEST * job->count);
}

static bool prepare_hmac(napi_env env, napi_callback_info info, nx_job *job) {
  napi_value argv[2];
  job->run = run_hmac;
  return nx_args(env, info, 2, 2, argv, job->op) &&
         nx_bytes(env, argv[0], job->op, "key", &job->in[0], &job->in_len[0]) &&
         nx_bytes(env, argv[1], job->op, "data", &job->in[1], &job->in_len[1]) &&
         nx_job_buffer_out(env, job, DIGEST);
}

static bool prepare_hmac_many(napi_env env, napi_callback_info info, nx_job *job) {
  napi_value argv[3];
  job->run = run_hmac_many;
  return nx_args(env, info, 2, 3, argv, job->op) &&
         nx_bytes(env, argv[0], job->op, "key", &job->in[0], &job->in_len[0]) &&
         batch_arg(env, job, argv, 1, 1) && nx_job_buffer_out(env, job, DIGEST * job->count);
}

static bool prepare_merkle_root(napi_env env, napi_callback_info info, nx_job *job) {
  napi_value argv[2];
  job->run = run_merkle_root;
  return nx_args(env, info, 1, 2, argv, job->op) && batch_arg(env, job, argv, 0, 0) &&
         nx_job_buffer_out(env, job, DIGEST);
}

NX_SYNC_AND_ASYNC(sha256, prepare_sha256)
NX_SYNC_AND_ASYNC(sha256Many, prepare_sha256_many)
NX_SYNC_AND_ASYNC(hmacSha256, prepare_hmac)
NX_SYNC_AND_ASYNC(hmacSha256Many, prepare_hmac_many)
NX_SYNC_AND_ASYNC(merkleRoot, prepare_merkle_root)

napi_status nx_register_hash(napi_env env, napi_value exports) {
  static const nx_function fns[] = {
    NX_FUNCTIONS(sha256), NX_FUNCTIONS(sha256Many), NX_FUNCTIONS(hmacSha256),
    NX_FUNCTIONS(hmacSha256Many), NX_FUNCTIONS(merkleRoot),
  };
  return nx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
