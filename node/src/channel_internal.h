/* Helpers shared by channel.c and channel_many.c (not part of the addon's interface). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

#include "core.h"
#include "runtime.h"
#include "binding.h"

#define CHAN_INTEREST_RECV 1
#define CHAN_INTEREST_SEND 2
#define CHAN_ON_BEHALF 4       /* a helper thread's wait: takes nothing (runtime.h) */
#define CHAN_SCRATCH_SIZE 16384 /* on the stack; a longer message comes back in a heap block */

/* A failed N-API call: throw (unless already thrown) and return. */
#define CALL(env, call)                                                   \
  do {                                                                    \
    if ((call) != napi_ok) return chan_throw_pending(env, "internal N-API failure"); \
  } while (0)

/* Throws a generic error unless one is pending; returns NULL (the N-API "no value"). */
napi_value chan_throw_pending(napi_env env, const char *fallback);
/* The JS error code of a status (err.code). */
const char *chan_status_code(int32_t status);
/* Throws the error of a failed call of `op`: this thread's runtime message and a code. */
napi_value chan_throw_status(napi_env env, int32_t status, const char *op);
bool chan_int64_arg(napi_env env, napi_value v, const char *name, int64_t *out);
/* The bytes of a Buffer/TypedArray/DataView/ArrayBuffer, borrowed for this call. */
bool chan_bytes_arg(napi_env env, napi_value v, const char *name, const char **data, size_t *len);
/* Reads `want` arguments into argv, the first a channel handle (NULL with an error thrown). */
nexpo_channel *chan_handle_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);

napi_value chan_send_many(napi_env env, napi_callback_info info);
napi_value chan_recv_many(napi_env env, napi_callback_info info);
napi_value chan_wait_async(napi_env env, napi_callback_info info);
