/* Channels of byte messages for Node: thin Node-API wrappers over the nexpo_channel_* exports
 * (runtime.h, binding.h). node/lib/channel.js checks arguments and builds the Channel class on
 * these; the checks here only keep a wrong call from reaching native code with a bad pointer.
 *
 * A shared ring is untrusted input: every read of it happens in the Nim runtime, which checks
 * each slot (ring.nim); this file never parses ring memory, it only copies the bytes the runtime
 * hands out. Waits: the synchronous calls take a timeout the caller chose (JS passes one slice
 * at a time); waitAsync blocks a libuv pool thread in nexpo_channel_wait on the caller's behalf
 * (taking nothing, claiming no SPSC side) for at most one slice, and resolves a promise. */
#define _POSIX_C_SOURCE 200809L  /* clock_gettime under -std=c11 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"
#include "channel_internal.h"

/* Tags the wrapper objects, so no other object's native pointer is taken for a channel. */
static const napi_type_tag CHANNEL_TAG = {0x6e6578706f2d6368ULL, 0x616e6e656c2d7631ULL};

typedef struct {
  nexpo_channel *ch;
} channel_box;

napi_value chan_throw_pending(napi_env env, const char *fallback) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "ERR_NEXPO_INTERNAL", fallback);
  return NULL;
}

const char *chan_status_code(int32_t status) {
  switch (status) {
    case NEXPO_EINVAL: return "ERR_NEXPO_INVALID";
    case NEXPO_ETYPE: return "ERR_NEXPO_TYPE";
    case NEXPO_ENOMEM: return "ERR_NEXPO_NO_MEMORY";
    case NEXPO_ETIMEOUT: return "ETIMEDOUT";
    case NEXPO_ECLOSED: return "ERR_NEXPO_CHANNEL_CLOSED";
    case NEXPO_EAGAIN: return "EAGAIN";
    case NEXPO_EUNSUPPORTED: return "ERR_NEXPO_UNSUPPORTED";
    case NEXPO_ECORRUPT: return "ERR_NEXPO_CHANNEL_CORRUPTED";
    default: return "ERR_NEXPO_INTERNAL";
  }
}

/* Throws the error of a failed call: the runtime's message for this thread, with a code. */
napi_value chan_throw_status(napi_env env, int32_t status, const char *op) {
  const char *detail = nexpo_last_error();
  char msg[512];
  if (status == NEXPO_ECLOSED)
    snprintf(msg, sizeof msg, "%s", strncmp(op, "send", 4) == 0
             ? "send on a closed channel" : "the channel is closed and drained");
  else if (detail && *detail)
    snprintf(msg, sizeof msg, "channel %s: %s", op, detail);
  else
    snprintf(msg, sizeof msg, "channel %s failed (status %d)", op, (int)status);
  if (status == NEXPO_EINVAL || status == NEXPO_ETYPE)
    napi_throw_type_error(env, chan_status_code(status), msg);
  else
    napi_throw_error(env, chan_status_code(status), msg);
  return NULL;
}

/* argv[i] as a channel handle made by this file, or NULL with a TypeError thrown. */
static nexpo_channel *channel_arg(napi_env env, napi_value v) {
  bool tagged = false;
  void *box = NULL;
  if (napi_check_object_type_tag(env, v, &CHANNEL_TAG, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, v, &box) != napi_ok || box == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "channel: not a nexpo channel handle");
    return NULL;
  }
  return ((channel_box *)box)->ch;
}

bool chan_int64_arg(napi_env env, napi_value v, const char *name, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  return napi_get_value_int64(env, v, out) == napi_ok;
}

/* The bytes of a Buffer, TypedArray, DataView or ArrayBuffer (borrowed for this call). */
bool chan_bytes_arg(napi_env env, napi_value v, const char *name, const char **data, size_t *len) {
  bool is = false;
  void *p = NULL;
  if (napi_is_buffer(env, v, &is) == napi_ok && is)
    return napi_get_buffer_info(env, v, &p, len) == napi_ok && (*data = p, true);
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t n, offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &n, &p, &ab, &offset) != napi_ok) return false;
    static const size_t width[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};
    *len = n * (type < sizeof width / sizeof *width ? width[type] : 1);
    *data = p;
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t offset;
    if (napi_get_dataview_info(env, v, len, &p, &ab, &offset) != napi_ok) return false;
    *data = p;
    return true;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is)
    return napi_get_arraybuffer_info(env, v, &p, len) == napi_ok && (*data = p, true);
  char msg[160];
  snprintf(msg, sizeof msg, "%s must be a Buffer, TypedArray, DataView or ArrayBuffer", name);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}

static bool string_arg(napi_env env, napi_value v, const char *name, char *out, size_t cap) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, out, cap, &n) != napi_ok || n + 1 >= cap) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string of at most %zu bytes", name, cap - 2);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  return true;
}

static void finalize_box(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  channel_box *box = data;
  nexpo_channel_release(box->ch);  /* pending waits hold a reference: none runs now */
  free(box);
}

/* Wraps a fresh handle; released (never left behind) if wrapping fails. */
static napi_value wrap_channel(napi_env env, nexpo_channel *ch) {
  napi_value obj;
  channel_box *box = malloc(sizeof *box);
  if (!box || napi_create_object(env, &obj) != napi_ok ||
      napi_type_tag_object(env, obj, &CHANNEL_TAG) != napi_ok ||
      napi_wrap(env, obj, box, finalize_box, NULL, NULL) != napi_ok) {
    free(box);
    nexpo_channel_release(ch);
    return chan_throw_pending(env, "could not wrap a channel handle");
  }
  box->ch = ch;
  return obj;
}

/* createShared(name, mode, capacity, maxMessage) -> handle */
static napi_value create_shared(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char name[256];
  int64_t mode, capacity, max_message;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return chan_throw_status(env, NEXPO_EINVAL, "createShared: 4 arguments expected");
  if (!string_arg(env, argv[0], "name", name, sizeof name) ||
      !chan_int64_arg(env, argv[1], "mode", &mode) || !chan_int64_arg(env, argv[2], "capacity", &capacity) ||
      !chan_int64_arg(env, argv[3], "maxMessageSize", &max_message))
    return NULL;
  if (capacity < 1 || max_message < 0 || mode < 0 || mode > 3)
    return chan_throw_status(env, NEXPO_EINVAL, "createShared");
  nexpo_channel *ch = NULL;
  int32_t st = nexpo_channel_create_shared(name, (int32_t)mode, (size_t)capacity,
                                           (size_t)max_message, &ch);
  if (st != NEXPO_OK) return chan_throw_status(env, st, "createShared");
  return wrap_channel(env, ch);
}

/* openShared(name) -> handle */
static napi_value open_shared(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[256];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !string_arg(env, argv[0], "name", name, sizeof name)) return NULL;
  nexpo_channel *ch = NULL;
  int32_t st = nexpo_channel_open_shared(name, &ch);
  if (st != NEXPO_OK) return chan_throw_status(env, st, "openShared");
  return wrap_channel(env, ch);
}

/* Reads argc arguments, the first a channel handle. */
nexpo_channel *chan_handle_args(napi_env env, napi_callback_info info, size_t want,
                                  napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "channel: missing arguments");
    return NULL;
  }
  return channel_arg(env, argv[0]);
}

/* info(handle) -> [mode, capacity, maxMessage, length, closed, shared] */
static napi_value channel_info(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, v;
  nexpo_channel *ch = chan_handle_args(env, info, 1, argv);
  if (!ch) return NULL;
  uint64_t fields[6];
  int32_t st = nexpo_channel_info(ch, fields, 6);
  if (st != NEXPO_OK) return chan_throw_status(env, st, "info");
  CALL(env, napi_create_array_with_length(env, 6, &out));
  for (uint32_t i = 0; i < 6; i++) {
    CALL(env, napi_create_double(env, (double)fields[i], &v));
    CALL(env, napi_set_element(env, out, i, v));
  }
  return out;
}

/* close(handle): closes for every user; wakes every waiter. Idempotent. */
static napi_value channel_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  nexpo_channel *ch = chan_handle_args(env, info, 1, argv);
  if (!ch) return NULL;
  int32_t st = nexpo_channel_close(ch);
  if (st != NEXPO_OK) return chan_throw_status(env, st, "close");
  return NULL;
}

static napi_value boolean(napi_env env, bool b) {
  napi_value v;
  return napi_get_boolean(env, b, &v) == napi_ok ? v : NULL;
}

/* send(handle, bytes, timeoutNs) -> true sent, false timed out / full (timeout 0). */
static napi_value channel_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  const char *data;
  size_t len;
  int64_t timeout;
  nexpo_channel *ch = chan_handle_args(env, info, 3, argv);
  if (!ch || !chan_bytes_arg(env, argv[1], "msg", &data, &len) ||
      !chan_int64_arg(env, argv[2], "timeout", &timeout))
    return NULL;
  int32_t st = nexpo_channel_send(ch, len ? data : "", len, timeout);
  if (st == NEXPO_OK) return boolean(env, true);
  if (st == NEXPO_EAGAIN || st == NEXPO_ETIMEOUT) return boolean(env, false);
  return chan_throw_status(env, st, "send");
}

/* One message taken by recv_visit: copied out while the runtime holds the claim (into the
 * caller's stack buffer, or a heap block when longer), made a Buffer afterwards. */
typedef struct {
  char *buf;
  size_t cap, len;
  char *heap;
  bool failed;
} taken;

static void take_one(void *ctx, const char *data, size_t len, void *obj) {
  (void)obj;  /* shared rings never lend references */
  taken *t = ctx;
  t->len = len;
  if (len <= t->cap) {
    memcpy(t->buf, data, len);
  } else if ((t->heap = malloc(len)) != NULL) {
    memcpy(t->heap, data, len);
  } else {
    t->failed = true;  /* the message is lost: memory ran out */
  }
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* recv(handle, timeoutNs) -> Buffer, or null when it timed out / is empty (timeout 0). A try
 * (no clock, no watcher) first; then waits for the ring to become readable and tries again,
 * the last try after the deadline included. */
static napi_value channel_recv(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  int64_t timeout;
  nexpo_channel *ch = chan_handle_args(env, info, 2, argv);
  if (!ch || !chan_int64_arg(env, argv[1], "timeout", &timeout)) return NULL;
  char scratch[CHAN_SCRATCH_SIZE];
  taken t = {scratch, sizeof scratch, 0, NULL, false};
  int64_t deadline = timeout > 0 ? now_ns() + timeout : 0;
  for (;;) {
    size_t count = 0;
    int32_t st = nexpo_channel_recv_visit(ch, 1, take_one, &t, &count);
    if (st == NEXPO_OK) {
      if (t.failed) return chan_throw_status(env, NEXPO_ENOMEM, "recv");
      void *copy;
      napi_status s = napi_create_buffer_copy(env, t.len, t.heap ? t.heap : t.buf, &copy, &out);
      free(t.heap);
      return s == napi_ok ? out : chan_throw_pending(env, "could not allocate a Buffer");
    }
    if (st != NEXPO_EAGAIN) return chan_throw_status(env, st, "recv");
    int64_t left = timeout < 0 ? -1 : timeout == 0 ? 0 : deadline - now_ns();
    if (timeout == 0 || (timeout > 0 && left <= 0)) break;
    st = nexpo_channel_wait(ch, CHAN_INTEREST_RECV, left);
    if (st == NEXPO_ETIMEOUT) timeout = 0;  /* one last try, then null */
    else if (st != NEXPO_OK) return chan_throw_status(env, st, "recv");
  }
  CALL(env, napi_get_null(env, &out));
  return out;
}

napi_status nexpo_node_register_channels(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback fn; } fns[] = {
    {"createShared", create_shared}, {"openShared", open_shared}, {"info", channel_info},
    {"close", channel_close}, {"send", channel_send}, {"recv", channel_recv},
    {"sendMany", chan_send_many}, {"recvMany", chan_recv_many},
    {"waitAsync", chan_wait_async},
  };
  napi_value native, fn;
  napi_status s = napi_create_object(env, &native);
  for (size_t i = 0; s == napi_ok && i < sizeof fns / sizeof *fns; i++) {
    s = napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    if (s == napi_ok) s = napi_set_named_property(env, native, fns[i].name, fn);
  }
  if (s == napi_ok) s = napi_set_named_property(env, exports, "_channel", native);
  return s;
}
