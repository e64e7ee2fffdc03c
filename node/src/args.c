/* Argument checks and errors of the addon: every bad argument is a TypeError or RangeError whose
 * message starts with the function and names the argument; core failures carry err.code. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "addon.h"

static const char EMPTY[1] = "";

static napi_value throw_with(napi_env env, bool range, const char *code, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    if (range) napi_throw_range_error(env, code, msg);
    else napi_throw_type_error(env, code, msg);
  }
  return NULL;
}

napi_value nx_type_error(napi_env env, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_with(env, false, "ERR_INVALID_ARG_TYPE", fmt, ap);
  va_end(ap);
  return NULL;
}

napi_value nx_range_error(napi_env env, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_with(env, true, "ERR_OUT_OF_RANGE", fmt, ap);
  va_end(ap);
  return NULL;
}

napi_value nx_throw_internal(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, "ERR_NEXPO_INTERNAL",
                     info && info->error_message ? info->error_message : "internal N-API failure");
  }
  return NULL;
}

static const char *status_code(int32_t status) {
  switch (status) {
    case NEXPO_EINVAL: return "ERR_NEXPO_INVALID";
    case NEXPO_ETYPE: return "ERR_NEXPO_TYPE";
    case NEXPO_ENOMEM: return "ERR_NEXPO_NO_MEMORY";
    case NEXPO_EAUTH: return "ERR_NEXPO_AUTH";
    case NEXPO_EUNSUPPORTED: return "ERR_NEXPO_UNSUPPORTED";
    default: return "ERR_NEXPO_INTERNAL";
  }
}

napi_value nx_throw_status(napi_env env, int32_t status, const char *op, const char *message) {
  char msg[512];
  if (status == NEXPO_EAUTH)
    snprintf(msg, sizeof msg, "%s: authentication failed (the data, aad, key or nonce differ from "
             "what was encrypted)", op);
  else
    snprintf(msg, sizeof msg, "%s: %s", op, message && *message ? message : "failed");
  if (status == NEXPO_EINVAL) napi_throw_range_error(env, status_code(status), msg);
  else if (status == NEXPO_ETYPE) napi_throw_type_error(env, status_code(status), msg);
  else napi_throw_error(env, status_code(status), msg);
  return NULL;
}

static size_t element_size(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    default: return 8;
  }
}

bool nx_view(napi_env env, napi_value v, const char **data, size_t *len) {
  bool is = false;
  void *ptr = NULL;
  size_t n = 0;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    if (napi_get_typedarray_info(env, v, &type, &n, &ptr, NULL, NULL) != napi_ok) return false;
    n *= element_size(type);
  } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, v, &n, &ptr, NULL, NULL) != napi_ok) return false;
  } else if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, v, &ptr, &n) != napi_ok) return false;
  } else {
    return false;
  }
  *data = ptr ? (const char *)ptr : EMPTY;  /* a detached or empty buffer is 0 bytes */
  *len = ptr ? n : 0;
  return true;
}

bool nx_bytes(napi_env env, napi_value v, const char *op, const char *name, const char **data, size_t *len) {
  if (nx_view(env, v, data, len)) return true;
  nx_type_error(env, "%s: %s must be a Buffer, TypedArray, DataView or ArrayBuffer", op, name);
  return false;
}

bool nx_size(napi_env env, napi_value v, const char *op, const char *name, size_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) {
    nx_type_error(env, "%s: %s must be a number", op, name);
    return false;
  }
  if (!(d >= 0) || d != floor(d) || d > 9007199254740991.0) {
    nx_range_error(env, "%s: %s must be a non-negative integer, got %g", op, name, d);
    return false;
  }
  *out = (size_t)d;
  return true;
}

bool nx_int32(napi_env env, napi_value v, const char *op, const char *name, int32_t lo, int32_t hi,
              int32_t *out) {
  size_t n;
  if (!nx_size(env, v, op, name, &n)) return false;
  if (n < (size_t)lo || n > (size_t)hi) {
    nx_range_error(env, "%s: %s must be between %d and %d, got %zu", op, name, lo, hi, n);
    return false;
  }
  *out = (int32_t)n;
  return true;
}

bool nx_args(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv,
             const char *op) {
  size_t argc = max;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    nx_throw_internal(env);
    return false;
  }
  if (argc < min) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: expected %zu argument%s, got %zu", op, min, min == 1 ? "" : "s", argc);
    napi_throw_type_error(env, "ERR_MISSING_ARGS", msg);
    return false;
  }
  return true;
}

bool nx_is_nullish(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  napi_typeof(env, v, &t);
  return t == napi_undefined || t == napi_null;
}

napi_status nx_define(napi_env env, napi_value exports, const nx_function *fns, size_t n) {
  for (size_t i = 0; i < n; i++) {
    napi_value fn;
    napi_status st = napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    if (st == napi_ok) st = napi_set_named_property(env, exports, fns[i].name, fn);
    if (st != napi_ok) return st;
  }
  return napi_ok;
}
