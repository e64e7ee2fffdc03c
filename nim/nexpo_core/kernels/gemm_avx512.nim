## AVX-512 micro-kernels: 14 x 32 (f32) and 14 x 16 (f64) register tiles (as mratsim's Laser):
## 28 accumulators in zmm registers + 2 for the B row + 1 broadcast of A (of 32). Per k step:
## 2 vector loads, 14 broadcasts, 28 FMAs, so the two FMA ports stay busy.

import ./common, ./simd

{.pragma: avx512fn, codegenDecl: avx512Decl.}

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

proc ukAvx512F64Direct(kc: int, a: ptr float64, rsa, csa: int, b: ptr float64, rsb: int, c: ptr float64,
                   ldc: int, accumulate: bool) {.nimcall, gcsafe, raises: [], avx512fn.} =
  simdMicroKernelBody(M512d, 14, 2, 8, mm512_setzero_pd, mm512_loadu_pd, mm512_set1_pd,
                      mm512_fmadd_pd, mm512_add_pd, mm512_storeu_pd, rsa, csa)

{.pop.}

const
  avx512F32* = KernelSpec[float32](mr: 14, nr: 32, kc: 256, mc: 504, nc: 4096, uk: ukAvx512F32, ukDirect: ukAvx512F32Direct)
  avx512F64* = KernelSpec[float64](mr: 14, nr: 16, kc: 256, mc: 252, nc: 2048, uk: ukAvx512F64, ukDirect: ukAvx512F64Direct)
