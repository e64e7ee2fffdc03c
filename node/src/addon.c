/* The nexpo Node-API addon: module init (the Nim runtime's one-time init), info(), the worker
 * thread count, and the registration of every area (hash.c, aead.c, matmul.c, channel.c). */
#include <stdio.h>

#include "addon.h"
#include "channel.h"
#include "runtime.h"

static const char *const ISA_NAMES[] = {"portable", "avx2", "avx512"};
#define ISA_COUNT (sizeof ISA_NAMES / sizeof ISA_NAMES[0])

static napi_status set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  napi_status st = napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  return st == napi_ok ? napi_set_named_property(env, obj, key, v) : st;
}

static napi_status set_int(napi_env env, napi_value obj, const char *key, int32_t value) {
  napi_value v;
  napi_status st = napi_create_int32(env, value, &v);
  return st == napi_ok ? napi_set_named_property(env, obj, key, v) : st;
}

static napi_status set_bool(napi_env env, napi_value obj, const char *key, bool value) {
  napi_value v;
  napi_status st = napi_get_boolean(env, value, &v);
  return st == napi_ok ? napi_set_named_property(env, obj, key, v) : st;
}

static const char *isa_name(int32_t isa) {
  return isa >= 0 && (size_t)isa < ISA_COUNT ? ISA_NAMES[isa] : "unknown";
}

/* Nim version, build profile, ISA paths, SHA-NI and worker threads (index.js adds the version). */
static napi_value info(napi_env env, napi_callback_info cb) {
  (void)cb;
  char nim[32] = "", profile[32] = "";
  nexpo_nim_version(nim, sizeof nim);
  nexpo_build_profile(profile, sizeof profile);
  napi_value obj, list;
  NX_CALL(env, napi_create_object(env, &obj));
  NX_CALL(env, set_string(env, obj, "nimVersion", nim));
  NX_CALL(env, set_string(env, obj, "buildProfile", profile));
  NX_CALL(env, napi_create_array(env, &list));
  int32_t available = nexpo_isa_available();
  uint32_t at = 0;
  for (size_t i = 0; i < ISA_COUNT; i++) {
    if (!(available & (1 << i))) continue;
    napi_value name;
    NX_CALL(env, napi_create_string_utf8(env, ISA_NAMES[i], NAPI_AUTO_LENGTH, &name));
    NX_CALL(env, napi_set_element(env, list, at++, name));
  }
  NX_CALL(env, napi_set_named_property(env, obj, "isaAvailable", list));
  NX_CALL(env, set_string(env, obj, "isaBest", isa_name(nexpo_isa_best())));
  NX_CALL(env, set_string(env, obj, "isaActive", isa_name(nexpo_isa_active())));
  NX_CALL(env, set_bool(env, obj, "shaNi", nexpo_has_sha_ni() != 0));
  NX_CALL(env, set_bool(env, obj, "shaNiActive", nexpo_sha_ni_active() != 0));
  NX_CALL(env, set_bool(env, obj, "ifma", nexpo_has_ifma() != 0));
  NX_CALL(env, set_bool(env, obj, "ifmaActive", nexpo_ifma_active() != 0));
  NX_CALL(env, set_int(env, obj, "threads", nexpo_get_num_threads()));
  return obj;
}

static napi_value set_num_threads(napi_env env, napi_callback_info cb) {
  napi_value argv[1];
  int32_t n;
  if (!nx_args(env, cb, 1, 1, argv, "setNumThreads")) return NULL;
  if (!nx_int32(env, argv[0], "setNumThreads", "n", 1, 1024, &n)) return NULL;
  int32_t st = nexpo_set_num_threads(n);
  if (st != NEXPO_OK) return nx_throw_status(env, st, "setNumThreads", nexpo_last_error());
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

static napi_value get_num_threads(napi_env env, napi_callback_info cb) {
  (void)cb;
  napi_value v;
  NX_CALL(env, napi_create_int32(env, nexpo_get_num_threads(), &v));
  return v;
}

NAPI_MODULE_INIT() {
  int32_t st = nexpo_init();
  if (st != NEXPO_OK) {
    nx_throw_status(env, st, "nexpo: init", nexpo_last_error());
    return NULL;
  }
  static const nx_function fns[] = {
    {"info", info}, {"setNumThreads", set_num_threads}, {"getNumThreads", get_num_threads},
  };
  if (nx_define(env, exports, fns, sizeof fns / sizeof fns[0]) != napi_ok ||
      nx_register_hash(env, exports) != napi_ok || nx_register_aead(env, exports) != napi_ok ||
      nx_register_matmul(env, exports) != napi_ok ||
      nexpo_node_register_channels(env, exports) != napi_ok)
    return nx_throw_internal(env);
  return exports;
}
