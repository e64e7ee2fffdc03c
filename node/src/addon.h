/* Shared declarations of the nexpo Node-API addon (everything but channels): argument checks,
 * errors, and the job every call runs, synchronously or on napi_async_work. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

#include "core.h"

/* A failed N-API call: throw (unless something is already pending) and return NULL. */
#define NX_CALL(env, call)                                                  \
  do {                                                                      \
    if ((call) != napi_ok) return nx_throw_internal(env);                   \
  } while (0)

/* ---- args.c: argument checks; each throws a TypeError/RangeError naming the argument ---- */

napi_value nx_throw_internal(napi_env env);
napi_value nx_type_error(napi_env env, const char *fmt, ...);
napi_value nx_range_error(napi_env env, const char *fmt, ...);
/* Throws the error of a failed core call of `op`: nexpo_last_error() and an err.code. */
napi_value nx_throw_status(napi_env env, int32_t status, const char *op, const char *message);
/* The bytes of a Buffer, TypedArray, DataView or ArrayBuffer (borrowed for this call); false
 * (nothing thrown) for anything else. */
bool nx_view(napi_env env, napi_value v, const char **data, size_t *len);
/* nx_view, or a TypeError "<op>: <name> must be ...". Messages are formatted only on failure. */
bool nx_bytes(napi_env env, napi_value v, const char *op, const char *name, const char **data, size_t *len);
/* A non-negative integer below 2^53. */
bool nx_size(napi_env env, napi_value v, const char *op, const char *name, size_t *out);
bool nx_int32(napi_env env, napi_value v, const char *op, const char *name, int32_t lo, int32_t hi,
              int32_t *out);
/* Reads exactly `min`..`max` arguments into argv (missing optional ones are undefined). */
bool nx_args(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv,
             const char *op);
bool nx_is_nullish(napi_env env, napi_value v);

/* ---- async.c: one job = inputs, an output made up front, a core call ---- */

#define NX_SLOTS 4
typedef struct nx_job nx_job;
/* Runs the core call; on a pool thread for the async variants, so it touches no N-API. */
typedef int32_t (*nx_run_fn)(nx_job *job);

struct nx_job {
  const char *op;                 /* the JS name, for error messages */
  nx_run_fn run;
  const char *in[NX_SLOTS];       /* inputs: borrowed from JS (sync) until nx_job_own copies them */
  size_t in_len[NX_SLOTS];
  uint64_t *lengths;              /* a batch's message lengths (owned), or NULL */
  size_t count;                   /* a batch's message count */
  size_t dims[3];                 /* matmul: m, k, n */
  int32_t dtype;
  void *out;                      /* the output's bytes (inside `result`) */
  size_t out_len;
  napi_value result;              /* the value returned on success (sync) */
  /* Owned by the job. */
  char *owned;                    /* the inputs' copy (one block), see nx_job_own */
  char *scratch;                  /* a batch's gathered messages */
  napi_ref result_ref;
  napi_async_work work;
  napi_deferred deferred;
  int32_t status;
  bool on_heap;
  char error[256];
};

/* A sync call's job lives on its stack; an async one's on the heap (nx_job_queue moves it). */
void nx_job_init(nx_job *job, const char *op, nx_run_fn run);
void nx_job_free(napi_env env, nx_job *job);
/* Makes the job's output a new Buffer of len bytes (job->out, job->result). */
bool nx_job_buffer_out(napi_env env, nx_job *job, size_t len);
/* Gathers an array of byte sequences into job->scratch + job->lengths (count = array length). */
bool nx_job_gather(napi_env env, nx_job *job, napi_value array, const char *name, int slot);
/* Releases what the job owns (and the job itself when on the heap). */
/* Sync: runs the job here and returns its result (or throws); releases the job. */
napi_value nx_job_run_sync(napi_env env, nx_job *job);
/* Async: copies the job and its borrowed inputs to the heap, queues it on the libuv pool,
 * returns a Promise; releases the caller's job either way. */
napi_value nx_job_queue(napi_env env, nx_job *job);

/* ---- registration of each area's functions (hash.c, aead.c, matmul.c) ---- */

typedef struct {
  const char *name;
  napi_callback fn;
} nx_function;

napi_status nx_define(napi_env env, napi_value exports, const nx_function *fns, size_t n);
napi_status nx_register_hash(napi_env env, napi_value exports);
napi_status nx_register_aead(napi_env env, napi_value exports);
napi_status nx_register_matmul(napi_env env, napi_value exports);

/* A sync function `name` and its Promise variant `name##Async` from one prepare function
 * (bool prepare(napi_env, napi_callback_info, nx_job *): fills the job, or false with an error
 * thrown). */
#define NX_SYNC_AND_ASYNC(name, prepare)                                         \
  static napi_value name(napi_env env, napi_callback_info info) {               \
    nx_job job;                                                                 \
    nx_job_init(&job, #name, NULL);                                             \
    if (!prepare(env, info, &job)) return nx_job_free(env, &job), NULL;         \
    return nx_job_run_sync(env, &job);                                          \
  }                                                                             \
  static napi_value name##Async(napi_env env, napi_callback_info info) {        \
    nx_job job;                                                                 \
    nx_job_init(&job, #name "Async", NULL);                                     \
    if (!prepare(env, info, &job)) return nx_job_free(env, &job), NULL;         \
    return nx_job_queue(env, &job);                                             \
  }
#define NX_FUNCTIONS(name) {#name, name}, {#name "Async", name##Async}
