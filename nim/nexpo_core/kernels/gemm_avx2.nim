## AVX2 + FMA micro-kernels: 6 x 16 (f32) and 6 x 8 (f64) register tiles, 12 accumulators in
## ymm registers + 2 for the B row + 1 broadcast of A (of 16).

import ./common, ./simd

{.pragma: avx2fn, codegenDecl: avx2Decl.}

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

proc ukAvx2F32(kc: int, a, b: ptr float32, rsb: int, c: ptr float32, ldc: int,
               accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256, 6, 2, 8, mm256_setzero_ps, mm256_loadu_ps, mm256_set1_ps,
                      mm256_fmadd_ps, mm256_add_ps, mm256_storeu_ps, 1, 6)

proc ukAvx2F64(kc: int, a, b: ptr float64, rsb: int, c: ptr float64, ldc: int,
               accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256d, 6, 2, 4, mm256_setzero_pd, mm256_loadu_pd, mm256_set1_pd,
                      mm256_fmadd_pd, mm256_add_pd, mm256_storeu_pd, 1, 6)

proc ukAvx2F32Direct(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int, c: ptr float32,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256, 6, 2, 8, mm256_setzero_ps, mm256_loadu_ps, mm256_set1_ps,
                      mm256_fmadd_ps, mm256_add_ps, mm256_storeu_ps, rsa, csa)

proc ukAvx2F64Direct(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256d, 6, 2, 4, mm256_setzero_pd, mm256_loadu_pd, mm256_set1_pd,
                      mm256_fmadd_pd, mm256_add_pd, mm256_storeu_pd, rsa, csa)

{.pop.}

const
  avx2F32* = KernelSpec[float32](mr: 6, nr: 16, kc: 256, mc: 192, nc: 4096, uk: ukAvx2F32, ukDirect: ukAvx2F32Direct)
  avx2F64* = KernelSpec[float64](mr: 6, nr: 8, kc: 256, mc: 96, nc: 4096, uk: ukAvx2F64, ukDirect: ukAvx2F64Direct)
