## AVX-512 micro-kernels: 14 x 32 (f32) and 14 x 16 (f64) register tiles (as mratsim's Laser):
## 28 accumulators in zmm registers + 2 for the B row + 1 broadcast of A (of 32). Per k step:
## 2 vector loads, 14 broadcasts, 28 FMAs, so the two FMA ports stay busy.

import ./common, ./simd

import ../targets

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

proc ukAvx512F32(kc: int, a, b: ptr float32, rsb: int, c: ptr float32, ldc: int,
                 accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512, 14, 2, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps,
                      mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, 1, 14)

proc ukAvx512F64(kc: int, a, b: ptr float64, rsb: int, c: ptr float64, ldc: int,
                 accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512d, 14, 2, 8, mm512_setzero_pd, mm512_loadu_pd, mm512_set1_pd,
                      mm512_fmadd_pd, mm512_add_pd, mm512_storeu_pd, 1, 14)

proc ukAvx512F32Direct(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int, c: ptr float32,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512, 14, 2, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps,
                      mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, rsa, csa)

proc ukAvx512F32DirectEpilogue(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int,
                   c: ptr float32, ldc: int, accumulate: bool, bias: ptr float32, relu: bool)
                  {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdEpilogueKernelBody(M512, 14, 2, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps,
                         mm512_fmadd_ps, mm512_add_ps, mm512_max_ps, mm512_storeu_ps, rsa, csa)

proc ukAvx512F64Direct(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512d, 14, 2, 8, mm512_setzero_pd, mm512_loadu_pd, mm512_set1_pd,
                      mm512_fmadd_pd, mm512_add_pd, mm512_storeu_pd, rsa, csa)

proc ukAvx512F32Rows8(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int, c: ptr float32,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512, 8, 2, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps,
                      mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, rsa, csa)

proc ukAvx512F32Rows4(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int, c: ptr float32,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512, 4, 2, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps,
                      mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, rsa, csa)

proc ukAvx512F32Rows2(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int, c: ptr float32,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512, 2, 2, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps,
                      mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, rsa, csa)

proc ukAvx512F32Rows1(kc: int, a: ptr float32, rsa, csa: int, b: ptr float32, rsb: int, c: ptr float32,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512, 1, 2, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps,
                      mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, rsa, csa)

proc ukAvx512F64Rows8(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512d, 8, 2, 8, mm512_setzero_pd, mm512_loadu_pd, mm512_set1_pd,
                      mm512_fmadd_pd, mm512_add_pd, mm512_storeu_pd, rsa, csa)

proc ukAvx512F64Rows4(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512d, 4, 2, 8, mm512_setzero_pd, mm512_loadu_pd, mm512_set1_pd,
                      mm512_fmadd_pd, mm512_add_pd, mm512_storeu_pd, rsa, csa)

proc ukAvx512F64Rows2(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512d, 2, 2, 8, mm512_setzero_pd, mm512_loadu_pd, mm512_set1_pd,
                      mm512_fmadd_pd, mm512_add_pd, mm512_storeu_pd, rsa, csa)

proc ukAvx512F64Rows1(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512d, 1, 2, 8, mm512_setzero_pd, mm512_loadu_pd, mm512_set1_pd,
                      mm512_fmadd_pd, mm512_add_pd, mm512_storeu_pd, rsa, csa)

const avx512SmallNv = [8, 6, 4, 4, 4, 4, 3, 3]  ## vectors per wide small-path tile, by rows - 1
defineSmallKernels("smallAvx512F32", "float32", avx512SmallNv,
  "simdMicroKernelBody(M512, $MR, $NV, 16, mm512_setzero_ps, mm512_loadu_ps, mm512_set1_ps, " &
  "mm512_fmadd_ps, mm512_add_ps, mm512_storeu_ps, rsa, csa)", "avx512fn")
defineSmallKernels("smallAvx512F64", "float64", avx512SmallNv,
  "simdMicroKernelBody(M512d, $MR, $NV, 8, mm512_setzero_pd, mm512_loadu_pd, mm512_set1_pd, " &
  "mm512_fmadd_pd, mm512_add_pd, mm512_storeu_pd, rsa, csa)", "avx512fn")

{.pop.}

const
  # Blocking measured on this Sapphire Rapids (48 KiB L1d, 2 MiB L2): the A micro-panel
  # (14 x kc) stays in L1, the packed B block (kc x nc, ~1 MiB) in L2.
  avx512F32* = KernelSpec[float32](mr: 14, nr: 32, kc: 256, mc: 504, nc: 1024, uk: ukAvx512F32, ukDirect: ukAvx512F32Direct,
    ukDirectEpilogue: ukAvx512F32DirectEpilogue,
    ukRows: [ukAvx512F32Rows8, ukAvx512F32Rows4, ukAvx512F32Rows2, ukAvx512F32Rows1],
    sw: 16, snv: avx512SmallNv, smallWide: smallAvx512F32Wide, smallNarrow: smallAvx512F32Narrow)
  avx512F64* = KernelSpec[float64](mr: 14, nr: 16, kc: 192, mc: 252, nc: 512, uk: ukAvx512F64, ukDirect: ukAvx512F64Direct,
    ukRows: [ukAvx512F64Rows8, ukAvx512F64Rows4, ukAvx512F64Rows2, ukAvx512F64Rows1],
    sw: 8, snv: avx512SmallNv, smallWide: smallAvx512F64Wide, smallNarrow: smallAvx512F64Narrow)
