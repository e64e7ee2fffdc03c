## The x86 SIMD intrinsics the kernels use, imported from <immintrin.h>. Procs calling them carry
## the target pragmas of `../targets.nim` (`{.avx2fn.}`, `{.avx512fn.}`).

const hdr = "<immintrin.h>"

type
  M256* {.importc: "__m256", header: hdr, bycopy.} = object
  M256d* {.importc: "__m256d", header: hdr, bycopy.} = object
  M512* {.importc: "__m512", header: hdr, bycopy.} = object
  M512d* {.importc: "__m512d", header: hdr, bycopy.} = object

proc mm256_setzero_ps*(): M256 {.importc: "_mm256_setzero_ps", header: hdr.}
proc mm256_loadu_ps*(p: ptr float32): M256 {.importc: "_mm256_loadu_ps", header: hdr.}
proc mm256_storeu_ps*(p: ptr float32, v: M256) {.importc: "_mm256_storeu_ps", header: hdr.}
proc mm256_set1_ps*(x: float32): M256 {.importc: "_mm256_set1_ps", header: hdr.}
proc mm256_add_ps*(a, b: M256): M256 {.importc: "_mm256_add_ps", header: hdr.}
proc mm256_fmadd_ps*(a, b, c: M256): M256 {.importc: "_mm256_fmadd_ps", header: hdr.}
proc mm256_max_ps*(a, b: M256): M256 {.importc: "_mm256_max_ps", header: hdr.}

proc mm256_setzero_pd*(): M256d {.importc: "_mm256_setzero_pd", header: hdr.}
proc mm256_loadu_pd*(p: ptr float64): M256d {.importc: "_mm256_loadu_pd", header: hdr.}
proc mm256_storeu_pd*(p: ptr float64, v: M256d) {.importc: "_mm256_storeu_pd", header: hdr.}
proc mm256_set1_pd*(x: float64): M256d {.importc: "_mm256_set1_pd", header: hdr.}
proc mm256_add_pd*(a, b: M256d): M256d {.importc: "_mm256_add_pd", header: hdr.}
proc mm256_fmadd_pd*(a, b, c: M256d): M256d {.importc: "_mm256_fmadd_pd", header: hdr.}

proc mm512_setzero_ps*(): M512 {.importc: "_mm512_setzero_ps", header: hdr.}
proc mm512_loadu_ps*(p: ptr float32): M512 {.importc: "_mm512_loadu_ps", header: hdr.}
proc mm512_storeu_ps*(p: ptr float32, v: M512) {.importc: "_mm512_storeu_ps", header: hdr.}
proc mm512_set1_ps*(x: float32): M512 {.importc: "_mm512_set1_ps", header: hdr.}
proc mm512_add_ps*(a, b: M512): M512 {.importc: "_mm512_add_ps", header: hdr.}
proc mm512_fmadd_ps*(a, b, c: M512): M512 {.importc: "_mm512_fmadd_ps", header: hdr.}
proc mm512_max_ps*(a, b: M512): M512 {.importc: "_mm512_max_ps", header: hdr.}

proc mm512_setzero_pd*(): M512d {.importc: "_mm512_setzero_pd", header: hdr.}
proc mm512_loadu_pd*(p: ptr float64): M512d {.importc: "_mm512_loadu_pd", header: hdr.}
proc mm512_storeu_pd*(p: ptr float64, v: M512d) {.importc: "_mm512_storeu_pd", header: hdr.}
proc mm512_set1_pd*(x: float64): M512d {.importc: "_mm512_set1_pd", header: hdr.}
proc mm512_add_pd*(a, b: M512d): M512d {.importc: "_mm512_add_pd", header: hdr.}
proc mm512_fmadd_pd*(a, b, c: M512d): M512d {.importc: "_mm512_fmadd_pd", header: hdr.}

type M512i* {.importc: "__m512i", header: hdr, bycopy.} = object
proc mm512_loadu_si512*(p: pointer): M512i {.importc: "_mm512_loadu_si512", header: hdr.}
proc mm512_permutexvar_ps*(idx: M512i, a: M512): M512 {.importc: "_mm512_permutexvar_ps", header: hdr.}
proc mm512_castps512_ps256*(a: M512): M256 {.importc: "_mm512_castps512_ps256", header: hdr.}
proc mm512_extractf32x8_ps*(a: M512, imm: cint): M256 {.importc: "_mm512_extractf32x8_ps", header: hdr.}
