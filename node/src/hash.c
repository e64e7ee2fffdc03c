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

static nx_job *fail(napi_env env, nx_job *job) {
  nx_job_free(env, job);
  return NULL;
}

static nx_job *prepare_sha256(napi_env env, napi_callback_info info, const char *op) {
  napi_value argv[1];
  char name[64];
  if (!nx_args(env, info, 1, 1, argv, op)) return NULL;
  nx_job *job = nx_job_new(env, op, run_sha256);
  if (!job) return NULL;
  snprintf(name, sizeof name, "%s: data", op);
  if (!nx_bytes(env, argv[0], name, &job->in[0], &job->in_len[0])) return fail(env, job);
  if (!nx_job_buffer_out(env, job, DIGEST)) return fail(env, job);
  return job;
}

/* messages at argv[at] (an array), or a buffer at argv[at] and a row size at argv[at + 1]. */
static bool batch_arg(napi_env env, nx_job *job, napi_value *argv, int at, int slot, const char *op) {
  char name[64];
  bool is_array = false;
  napi_is_array(env, argv[at], &is_array);
  if (is_array || nx_is_nullish(env, argv[at + 1])) {
    snprintf(name, sizeof name, "%s: messages", op);
    return nx_job_gather(env, job, argv[at], name, slot);
  }
  size_t row;
  snprintf(name, sizeof name, "%s: data", op);
  if (!nx_bytes(env, argv[at], name, &job->in[slot], &job->in_len[slot])) return false;
  snprintf(name, sizeof name, "%s: rowSize", op);
  if (!nx_size(env, argv[at + 1], name, &row)) return false;
  if (row == 0 || job->in_len[slot] % row != 0) {
    nx_range_error(env, "%s must be positive and divide the data's %zu bytes, got %zu", name,
                   job->in_len[slot], row);
    return false;
  }
  job->count = job->in_len[slot] / row;
  return true;
}

static nx_job *prepare_sha256_many(napi_env env, napi_callback_info info, const char *op) {
  napi_value argv[2];
  if (!nx_args(env, info, 1, 2, argv, op)) return NULL;
  nx_job *job = nx_job_new(env, op, run_sha256_many);
  if (!job) return NULL;
  if (!batch_arg(env, job, argv, 0, 0, op)) return fail(env, job);
  if (!nx_job_buffer_out(env, job, DIGEST * job->count)) return fail(env, job);
  return job;
}

static nx_job *prepare_hmac(napi_env env, napi_callback_info info, const char *op) {
  napi_value argv[2];
  char name[64];
  if (!nx_args(env, info, 2, 2, argv, op)) return NULL;
  nx_job *job = nx_job_new(env, op, run_hmac);
  if (!job) return NULL;
  snprintf(name, sizeof name, "%s: key", op);
  if (!nx_bytes(env, argv[0], name, &job->in[0], &job->in_len[0])) return fail(env, job);
  snprintf(name, sizeof name, "%s: data", op);
  if (!nx_bytes(env, argv[1], name, &job->in[1], &job->in_len[1])) return fail(env, job);
  if (!nx_job_buffer_out(env, job, DIGEST)) return fail(env, job);
  return job;
}

static nx_job *prepare_hmac_many(napi_env env, napi_callback_info info, const char *op) {
  napi_value argv[3];
  char name[64];
  if (!nx_args(env, info, 2, 3, argv, op)) return NULL;
  nx_job *job = nx_job_new(env, op, run_hmac_many);
  if (!job) return NULL;
  snprintf(name, sizeof name, "%s: key", op);
  if (!nx_bytes(env, argv[0], name, &job->in[0], &job->in_len[0])) return fail(env, job);
  if (!batch_arg(env, job, argv, 1, 1, op)) return fail(env, job);
  if (!nx_job_buffer_out(env, job, DIGEST * job->count)) return fail(env, job);
  return job;
}

static nx_job *prepare_merkle_root(napi_env env, napi_callback_info info, const char *op) {
  napi_value argv[2];
  if (!nx_args(env, info, 1, 2, argv, op)) return NULL;
  nx_job *job = nx_job_new(env, op, run_merkle_root);
  if (!job) return NULL;
  if (!batch_arg(env, job, argv, 0, 0, op)) return fail(env, job);
  if (!nx_job_buffer_out(env, job, DIGEST)) return fail(env, job);
  return job;
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
