## AVX2 + FMA micro-kernels: 6 x 16 (f32) and 6 x 8 (f64) register tiles, 12 accumulators in
## ymm registers + 2 for the B row + 1 broadcast of A (of 16).

import ./common, ./simd

import ../targets

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

proc ukAvx2F32DirectEpilogue(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int,
                   c: ptr float32, ldc: int, accumulate: bool, bias: ptr float32, relu: bool)
                  {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdEpilogueKernelBody(M256, 6, 2, 8, mm256_setzero_ps, mm256_loadu_ps, mm256_set1_ps,
                         mm256_fmadd_ps, mm256_add_ps, mm256_max_ps, mm256_storeu_ps, rsa, csa)

proc ukAvx2F64Direct(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256d, 6, 2, 4, mm256_setzero_pd, mm256_loadu_pd, mm256_set1_pd,
                      mm256_fmadd_pd, mm256_add_pd, mm256_storeu_pd, rsa, csa)

proc ukAvx2F32Rows4(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int, c: ptr float32,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256, 4, 2, 8, mm256_setzero_ps, mm256_loadu_ps, mm256_set1_ps,
                      mm256_fmadd_ps, mm256_add_ps, mm256_storeu_ps, rsa, csa)

proc ukAvx2F32Rows2(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int, c: ptr float32,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256, 2, 2, 8, mm256_setzero_ps, mm256_loadu_ps, mm256_set1_ps,
                      mm256_fmadd_ps, mm256_add_ps, mm256_storeu_ps, rsa, csa)

proc ukAvx2F32Rows1(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int, c: ptr float32,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256, 1, 2, 8, mm256_setzero_ps, mm256_loadu_ps, mm256_set1_ps,
                      mm256_fmadd_ps, mm256_add_ps, mm256_storeu_ps, rsa, csa)

proc ukAvx2F64Rows4(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256d, 4, 2, 4, mm256_setzero_pd, mm256_loadu_pd, mm256_set1_pd,
                      mm256_fmadd_pd, mm256_add_pd, mm256_storeu_pd, rsa, csa)

proc ukAvx2F64Rows2(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256d, 2, 2, 4, mm256_setzero_pd, mm256_loadu_pd, mm256_set1_pd,
                      mm256_fmadd_pd, mm256_add_pd, mm256_storeu_pd, rsa, csa)

proc ukAvx2F64Rows1(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx2fn.} =
  simdMicroKernelBody(M256d, 1, 2, 4, mm256_setzero_pd, mm256_loadu_pd, mm256_set1_pd,
                      mm256_fmadd_pd, mm256_add_pd, mm256_storeu_pd, rsa, csa)

const avx2SmallNv = [6, 4, 3, 2, 2, 2, 1, 1]  ## vectors per wide small-path tile, by rows - 1
defineSmallKernels("smallAvx2F32", "float32", avx2SmallNv,
  "simdMicroKernelBody(M256, $MR, $NV, 8, mm256_setzero_ps, mm256_loadu_ps, mm256_set1_ps, " &
  "mm256_fmadd_ps, mm256_add_ps, mm256_storeu_ps, rsa, csa)", "avx2fn")
defineSmallKernels("smallAvx2F64", "float64", avx2SmallNv,
  "simdMicroKernelBody(M256d, $MR, $NV, 4, mm256_setzero_pd, mm256_loadu_pd, mm256_set1_pd, " &
  "mm256_fmadd_pd, mm256_add_pd, mm256_storeu_pd, rsa, csa)", "avx2fn")

{.pop.}

const
  avx2F32* = KernelSpec[float32](mr: 6, nr: 16, kc: 256, mc: 192, nc: 1024, uk: ukAvx2F32, ukDirect: ukAvx2F32Direct,
    ukDirectEpilogue: ukAvx2F32DirectEpilogue,
    ukRows: [nil, ukAvx2F32Rows4, ukAvx2F32Rows2, ukAvx2F32Rows1],
    sw: 8, snv: avx2SmallNv, smallWide: smallAvx2F32Wide, smallNarrow: smallAvx2F32Narrow)
  avx2F64* = KernelSpec[float64](mr: 6, nr: 8, kc: 256, mc: 96, nc: 512, uk: ukAvx2F64, ukDirect: ukAvx2F64Direct,
    ukRows: [nil, ukAvx2F64Rows4, ukAvx2F64Rows2, ukAvx2F64Rows1],
    sw: 4, snv: avx2SmallNv, smallWide: smallAvx2F64Wide, smallNarrow: smallAvx2F64Narrow)
