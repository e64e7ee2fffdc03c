/* Channels for Node, the calls beyond one message: sendMany, recvMany and waitAsync (the wait
 * behind recvAsync/sendAsync). See channel.c for the rules every call here keeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel_internal.h"

/* sendMany(handle, array of bytes, timeoutNs) -> how many went, in order (0 when full). The
 * messages are copied end to end first: the runtime takes one contiguous block. */
napi_value chan_send_many(napi_env env, napi_callback_info info) {
  napi_value argv[3], item, out;
  int64_t timeout;
  uint32_t n = 0;
  bool is_array = false;
  nexpo_channel *ch = chan_handle_args(env, info, 3, argv);
  if (!ch || !chan_int64_arg(env, argv[2], "timeout", &timeout)) return NULL;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "msgs must be an Array of Buffers");
    return NULL;
  }
  CALL(env, napi_get_array_length(env, argv[1], &n));
  size_t *lens = malloc((n ? n : 1) * sizeof *lens);
  size_t total = 0, cap = CHAN_SCRATCH_SIZE, sent = 0;
  char *block = malloc(cap);
  if (!lens || !block) goto oom;
  for (uint32_t i = 0; i < n; i++) {
    const char *data;
    char name[32];
    snprintf(name, sizeof name, "msgs[%u]", i);
    if (napi_get_element(env, argv[1], i, &item) != napi_ok ||
        !chan_bytes_arg(env, item, name, &data, &lens[i])) {
      free(lens); free(block);
      return chan_throw_pending(env, "could not read msgs");
    }
    if (total + lens[i] > cap) {
      while (total + lens[i] > cap) cap *= 2;
      char *grown = realloc(block, cap);
      if (!grown) goto oom;
      block = grown;
    }
    memcpy(block + total, data, lens[i]);
    total += lens[i];
  }
  int32_t st = n ? nexpo_channel_send_many(ch, block, lens, n, timeout, &sent) : NEXPO_OK;
  free(lens); free(block);
  if (st != NEXPO_OK && st != NEXPO_EAGAIN && st != NEXPO_ETIMEOUT && !(sent > 0 && st == NEXPO_ECLOSED))
    return chan_throw_status(env, st, "sendMany");
  CALL(env, napi_create_double(env, (double)sent, &out));
  return out;
oom:
  free(lens); free(block);
  return chan_throw_status(env, NEXPO_ENOMEM, "sendMany");
}

/* recvMany gathers the messages of one claim here, then makes the Buffers (no JS allocation
 * while the runtime holds the claim). */
typedef struct {
  char *data;
  size_t used, cap, n, lens_cap;
  size_t *lens;
  bool failed;
} gather;

static void gather_visit(void *ctx, const char *data, size_t len, void *obj) {
  (void)obj;  /* shared rings and these copies never lend references */
  gather *g = ctx;
  if (g->failed) return;
  if (g->n == g->lens_cap) {
    size_t *grown = realloc(g->lens, 2 * g->lens_cap * sizeof *grown);
    if (!grown) { g->failed = true; return; }
    g->lens = grown;
    g->lens_cap *= 2;
  }
  if (g->used + len > g->cap) {
    size_t cap = g->cap;
    while (g->used + len > cap) cap *= 2;
    char *grown = realloc(g->data, cap);
    if (!grown) { g->failed = true; return; }
    g->data = grown;
    g->cap = cap;
  }
  memcpy(g->data + g->used, data, len);
  g->used += len;
  g->lens[g->n++] = len;
}

/* recvMany(handle, maxN) -> [block, len0, len1, ...]: the messages end to end in one Buffer
 * (one allocation, not one per message) and their lengths; node/lib/channel.js slices it.
 * Non-blocking: [] when empty. */
napi_value chan_recv_many(napi_env env, napi_callback_info info) {
  napi_value argv[2], out, v;
  int64_t max_n;
  nexpo_channel *ch = chan_handle_args(env, info, 2, argv);
  if (!ch || !chan_int64_arg(env, argv[1], "maxN", &max_n)) return NULL;
  if (max_n < 1 || max_n > (1 << 24)) return chan_throw_status(env, NEXPO_EINVAL, "recvMany: maxN");
  gather g = {malloc(CHAN_SCRATCH_SIZE), 0, CHAN_SCRATCH_SIZE, 0, 64, malloc(64 * sizeof(size_t)), false};
  size_t count = 0;
  int32_t st = (g.data && g.lens) ? nexpo_channel_recv_visit(ch, (size_t)max_n, gather_visit, &g, &count)
                                  : NEXPO_ENOMEM;
  if (g.failed) st = NEXPO_ENOMEM;  /* messages taken are lost: memory ran out */
  size_t n = st == NEXPO_OK ? g.n : 0;
  napi_status s = napi_create_array_with_length(env, n ? n + 1 : 0, &out);
  if (s == napi_ok && n) {
    void *copy;
    s = napi_create_buffer_copy(env, g.used, g.data, &copy, &v);
    if (s == napi_ok) s = napi_set_element(env, out, 0, v);
  }
  for (size_t i = 0; s == napi_ok && i < n; i++) {
    s = napi_create_uint32(env, (uint32_t)g.lens[i], &v);  /* max message <= 2^24 */
    if (s == napi_ok) s = napi_set_element(env, out, (uint32_t)(i + 1), v);
  }
  free(g.data); free(g.lens);
  if (s != napi_ok) return chan_throw_pending(env, "could not allocate Buffers");
  if (st == NEXPO_OK || st == NEXPO_EAGAIN) return out;
  return chan_throw_status(env, st, "recvMany");
}

/* waitAsync(handle, interest, timeoutNs) -> Promise<boolean>: true when the channel may be
 * ready (or closed), false when the timeout passed. Runs on the libuv pool. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep;  /* the handle object: not finalized (released) while the wait runs */
  nexpo_channel *ch;
  int32_t interest, status;
  int64_t timeout;
  char error[256];
} wait_job;

static void wait_execute(napi_env env, void *data) {
  (void)env;
  wait_job *job = data;
  job->status = nexpo_channel_wait(job->ch, job->interest | CHAN_ON_BEHALF, job->timeout);
  if (job->status != NEXPO_OK && job->status != NEXPO_ETIMEOUT)
    snprintf(job->error, sizeof job->error, "%s", nexpo_last_error());  /* this thread's */
}

static void wait_complete(napi_env env, napi_status status, void *data) {
  wait_job *job = data;
  napi_value result, msg, code;
  if (status == napi_ok && (job->status == NEXPO_OK || job->status == NEXPO_ETIMEOUT)) {
    napi_get_boolean(env, job->status == NEXPO_OK, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    char text[320];
    snprintf(text, sizeof text, "channel wait: %s", job->error[0] ? job->error : "failed");
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, chan_status_code(job->status), NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &result);
    napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job);
}

napi_value chan_wait_async(napi_env env, napi_callback_info info) {
  napi_value argv[3], promise, name;
  int64_t interest, timeout;
  nexpo_channel *ch = chan_handle_args(env, info, 3, argv);
  if (!ch || !chan_int64_arg(env, argv[1], "interest", &interest) ||
      !chan_int64_arg(env, argv[2], "timeout", &timeout))
    return NULL;
  if (interest != CHAN_INTEREST_RECV && interest != CHAN_INTEREST_SEND)
    return chan_throw_status(env, NEXPO_EINVAL, "waitAsync: interest");
  wait_job *job = calloc(1, sizeof *job);
  if (!job) return chan_throw_status(env, NEXPO_ENOMEM, "waitAsync");
  job->ch = ch;
  job->interest = (int32_t)interest;
  job->timeout = timeout;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free(job);
    return chan_throw_pending(env, "could not create a promise");
  }
  if (napi_create_reference(env, argv[0], 1, &job->keep) != napi_ok) job->keep = NULL;
  if (job->keep == NULL ||
      napi_create_string_utf8(env, "nexpo.channel.wait", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, wait_execute, wait_complete, job, &job->work) != napi_ok)
    job->work = NULL;
  if (job->work == NULL || napi_queue_async_work(env, job->work) != napi_ok) {
    /* the promise stays pending and unreachable: V8 collects it */
    if (job->work) napi_delete_async_work(env, job->work);
    if (job->keep) napi_delete_reference(env, job->keep);
    free(job);
    return chan_throw_pending(env, "could not queue a channel wait");
  }
  return promise;
}

