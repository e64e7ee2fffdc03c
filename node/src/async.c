/* The job every call runs: synchronously on the JS thread, or (the *Async variants) on libuv's
 * pool through napi_async_work. An async job owns copies of its inputs, made before the call
 * returns: JS may modify, detach or transfer the caller's buffers while the pool thread reads.
 * Its output is a Buffer/TypedArray created up front that no JS code can reach until the
 * Promise resolves, so the pool thread writes straight into it. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"

void nx_job_init(nx_job *job, const char *op, nx_run_fn run) {
  memset(job, 0, offsetof(nx_job, error));
  job->error[0] = '\0';
  job->op = op;
  job->run = run;
}

void nx_job_free(napi_env env, nx_job *job) {
  if (job->result_ref) napi_delete_reference(env, job->result_ref);
  if (job->work) napi_delete_async_work(env, job->work);
  free(job->owned);
  free(job->scratch);
  free(job->lengths);
  if (job->on_heap) free(job);
}

bool nx_job_buffer_out(napi_env env, nx_job *job, size_t len) {
  void *data = NULL;
  if (napi_create_buffer(env, len, &data, &job->result) != napi_ok) {
    nx_throw_internal(env);
    return false;
  }
  job->out = data;
  job->out_len = len;
  return true;
}

/* One pass, each element copied as soon as it is read: reading element i can run JS (a getter,
 * a Proxy) that changes or detaches elements already read, so no borrowed pointer is kept. */
bool nx_job_gather(napi_env env, nx_job *job, napi_value array, const char *name, int slot) {
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array) {
    nx_type_error(env, "%s must be an array of Buffers or TypedArrays", name);
    return false;
  }
  napi_get_array_length(env, array, &n);
  size_t cap = (size_t)(n < 65536 ? n : 65536) * 64 + 64, total = 0;  /* grows as needed */
  job->lengths = malloc(sizeof(uint64_t) * (n ? n : 1));
  job->scratch = malloc(cap);
  if (!job->lengths || !job->scratch) goto oom;
  char item[96];
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    const char *data;
    size_t len;
    if (napi_get_element(env, array, i, &v) != napi_ok) {
      nx_throw_internal(env);
      return false;
    }
    if (!nx_view(env, v, &data, &len)) {
      snprintf(item, sizeof item, "%s[%u]", name, i);
      nx_type_error(env, "%s must be a Buffer, TypedArray, DataView or ArrayBuffer", item);
      return false;
    }
    if (len > cap - total) {
      while (len > cap - total) cap *= 2;
      char *grown = realloc(job->scratch, cap);
      if (!grown) goto oom;
      job->scratch = grown;
    }
    memcpy(job->scratch + total, data, len);
    job->lengths[i] = len;
    total += len;
  }
  job->count = n;
  job->in[slot] = job->scratch;
  job->in_len[slot] = total;
  return true;
oom:
  napi_throw_error(env, "ERR_NEXPO_NO_MEMORY", "out of memory");
  return false;
}

napi_value nx_job_run_sync(napi_env env, nx_job *job) {
  int32_t status = job->run(job);
  napi_value result = job->result;
  if (status != NEXPO_OK) {
    nx_throw_status(env, status, job->op, nexpo_last_error());
    result = NULL;
  }
  nx_job_free(env, job);
  return result;
}

/* Copies every input not already owned (the gathered batch is) into one block. */
static bool own_inputs(nx_job *job) {
  size_t total = 0;
  for (int i = 0; i < NX_SLOTS; i++)
    if (job->in[i] && job->in[i] != job->scratch) total += job->in_len[i];
  job->owned = malloc(total ? total : 1);
  if (!job->owned) return false;
  size_t at = 0;
  for (int i = 0; i < NX_SLOTS; i++) {
    if (!job->in[i] || job->in[i] == job->scratch) continue;
    memcpy(job->owned + at, job->in[i], job->in_len[i]);
    job->in[i] = job->owned + at;
    at += job->in_len[i];
  }
  return true;
}

static void execute(napi_env env, void *data) {
  (void)env;  /* a pool thread: no N-API here */
  nx_job *job = data;
  job->status = job->run(job);
  if (job->status != NEXPO_OK) {
    const char *msg = nexpo_last_error();  /* thread-local: read it on this thread */
    strncpy(job->error, msg ? msg : "", sizeof job->error - 1);
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  nx_job *job = data;
  napi_value value = NULL;
  if (status == napi_ok && job->status == NEXPO_OK) {
    napi_get_reference_value(env, job->result_ref, &value);
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    if (status != napi_ok) job->status = NEXPO_EINTERNAL;
    nx_throw_status(env, job->status, job->op, status == napi_cancelled ? "cancelled" : job->error);
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_reject_deferred(env, job->deferred, err);
  }
  nx_job_free(env, job);
}

napi_value nx_job_queue(napi_env env, nx_job *stack_job) {
  napi_value promise, name;
  nx_job *job = malloc(sizeof *job);
  if (!job) {
    nx_job_free(env, stack_job);
    napi_throw_error(env, "ERR_NEXPO_NO_MEMORY", "out of memory");
    return NULL;
  }
  *job = *stack_job;  /* the heap job takes over what the stack one owned */
  job->on_heap = true;
  if (!own_inputs(job)) {
    nx_job_free(env, job);
    napi_throw_error(env, "ERR_NEXPO_NO_MEMORY", "out of memory");
    return NULL;
  }
  if (napi_create_reference(env, job->result, 1, &job->result_ref) != napi_ok ||
      napi_create_string_utf8(env, job->op, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, job, &job->work) != napi_ok ||
      napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    nx_job_free(env, job);
    return nx_throw_internal(env);
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    /* The deferred is never settled: the Promise is dropped with the job. */
    nx_job_free(env, job);
    return nx_throw_internal(env);
  }
  return promise;
}
