/* matmul(a, m, k, b, n): the m x n product of row-major a (m x k) and b (k x n), both
 * Float32Array or both Float64Array, as a new array of their type; matmulAsync on the pool. */

#include "addon.h"
#include "kernels.h"

static int32_t run_matmul(nx_job *j) {
  size_t m = j->dims[0], k = j->dims[1], n = j->dims[2];
  if (m == 0 || n == 0 || k == 0) return NEXPO_OK;  /* the new array is already zeros */
  return nexpo_matmul(j->dtype, m, n, k, j->in[0], (ptrdiff_t)k, 1, j->in[1], (ptrdiff_t)n, 1,
                      j->out, (ptrdiff_t)n);
}

/* a Float32Array or Float64Array of exactly rows x cols elements; *dtype set from the first. */
static bool matrix_arg(napi_env env, napi_value v, const char *name, size_t rows, size_t cols,
                       nx_job *job, int slot) {
  const char *op = job->op;
  int32_t *dtype = &job->dtype;
  bool is = false;
  napi_typedarray_type type;
  size_t length;
  void *data = NULL;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok ||
      (type != napi_float32_array && type != napi_float64_array)) {
    nx_type_error(env, "%s: %s must be a Float32Array or Float64Array", op, name);
    return false;
  }
  int32_t dt = type == napi_float32_array ? NEXPO_F32 : NEXPO_F64;
  if (*dtype >= 0 && dt != *dtype) {
    nx_type_error(env, "%s: %s must be a %s like a", op, name, *dtype == NEXPO_F32 ? "Float32Array" : "Float64Array");
    return false;
  }
  *dtype = dt;
  if (rows != 0 && cols > SIZE_MAX / rows) {
    nx_range_error(env, "%s: %s: %zu x %zu elements is too large", op, name, rows, cols);
    return false;
  }
  if (length != rows * cols) {
    nx_range_error(env, "%s: %s must have %zu x %zu = %zu elements, got %zu", op, name, rows, cols,
                   rows * cols, length);
    return false;
  }
  size_t elem = dt == NEXPO_F32 ? 4 : 8;
  job->in[slot] = data ? data : "";
  job->in_len[slot] = data ? length * elem : 0;
  return true;
}

static bool prepare_matmul(napi_env env, napi_callback_info info, nx_job *job) {
  napi_value argv[5];
  job->run = run_matmul;
  if (!nx_args(env, info, 5, 5, argv, job->op)) return false;
  static const char *const dim_names[3] = {"m", "k", "n"};
  static const int dim_at[3] = {1, 2, 4};
  for (int i = 0; i < 3; i++)
    if (!nx_size(env, argv[dim_at[i]], job->op, dim_names[i], &job->dims[i])) return false;
  size_t m = job->dims[0], k = job->dims[1], n = job->dims[2];
  job->dtype = -1;
  if (!matrix_arg(env, argv[0], "a", m, k, job, 0) || !matrix_arg(env, argv[3], "b", k, n, job, 1))
    return false;
  if (n != 0 && m > SIZE_MAX / 8 / n) {
    nx_range_error(env, "%s: the %zu x %zu result is too large", job->op, m, n);
    return false;
  }
  size_t elem = job->dtype == NEXPO_F32 ? 4 : 8, count = m * n;
  napi_value buffer;
  void *data = NULL;
  if (napi_create_arraybuffer(env, count * elem, &data, &buffer) != napi_ok ||
      napi_create_typedarray(env, job->dtype == NEXPO_F32 ? napi_float32_array : napi_float64_array,
                             count, buffer, 0, &job->result) != napi_ok) {
    nx_throw_internal(env);
    return false;
  }
  job->out = data;
  job->out_len = count * elem;
  return true;
}

NX_SYNC_AND_ASYNC(matmul, prepare_matmul)

napi_status nx_register_matmul(napi_env env, napi_value exports) {
  static const nx_function fns[] = {NX_FUNCTIONS(matmul)};
  return nx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
