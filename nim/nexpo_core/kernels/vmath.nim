## Vectorisable float32 exp/erf/tanh/sigmoid/GELU over arrays, one loop per ISA path.
##
## libm's expf/erff are scalar calls; these are branch-free polynomials the compiler turns into
## SIMD loops. Each array kernel is written once as a template and instantiated three times:
## portable (the x86-64-v2 baseline), AVX2 and AVX-512 (the target strings of targets.nim), chosen
## per call from `cpu.activeIsa()` like the GEMM's micro-kernels.
##
## Accuracy (float32, checked against libm in tests/nim/test_kernels_inference.nim):
## - exp: x clamped to [-87.3, 88.3] (below: ~1e-38 instead of a denormal); 2^k · p(r), |r| <= ln2/2,
##   degree-6 Taylor polynomial of e^r: relative error <= 3e-7
## - erf: Abramowitz & Stegun 7.1.26, 1 - t·P(t)·e^(-x²), t = 1/(1 + 0.3275911|x|), with the sign
##   restored: absolute error <= 1.5e-7 (GELU, tanh, sigmoid: <= 5e-7·max(1, |x|))
## - tanh(x) = 1 - 2/(e^(2x) + 1); sigmoid(x) = 1/(1 + e^(-x)) (x clamped: no overflow, no NaN)
## NaN inputs give NaN outputs.

import ../config, ../cpu

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

type VKind* = enum
  vExp, vErf, vTanh, vSigmoid, vGelu

# Helpers are templates, not procs: a proc from another module (system's min/max/abs) cannot be
# inlined into a function with a wider target attribute, and a call stops vectorisation.
template clamped(v, lo, hi: float32): float32 =
  var c = v
  if c < lo: c = lo
  if c > hi: c = hi
  c

template absolute(v: float32): float32 =
  var a = v
  if a < 0'f32: a = -a
  a

template fastExpBody(x0: float32): float32 =
  let x = clamped(x0, -87.3'f32, 88.3'f32)
  # k = round(x / ln2) by the 1.5·2^23 trick (exact for |k| < 2^22; no libm call, vectorises)
  let kf = (x * 1.4426950408889634'f32 + 12582912'f32) - 12582912'f32
  let r = x - kf * 0.693359375'f32 + kf * 2.12194440e-4'f32  # x - k·ln2, ln2 split in two
  let p = 1'f32 + r * (1'f32 + r * (0.5'f32 + r * (0.16666667'f32 + r * (0.041666668'f32 +
          r * (0.008333334'f32 + r * 0.0013888889'f32)))))
  let scale = cast[float32]((int32(kf) + 127'i32) shl 23)
  p * scale

template fastExp*(x: float32): float32 =
  ## The exp of `vExp` for one element, to inline into other kernels' loops (NaN: not defined,
  ## test for it).
  fastExpBody(x)

template fastErfBody(x: float32): float32 =
  let ax = absolute(x)
  let t = 1'f32 / (1'f32 + 0.3275911'f32 * ax)
  let poly = t * (0.254829592'f32 + t * (-0.284496736'f32 + t * (1.421413741'f32 +
             t * (-1.453152027'f32 + t * 1.061405429'f32))))
  var e = 1'f32 - poly * fastExpBody(-ax * ax)
  if x < 0'f32: e = -e
  e

template valueOf(kind: static VKind, x: float32): float32 =
  when kind == vExp: fastExpBody(x)
  elif kind == vErf: fastErfBody(x)
  elif kind == vTanh: 1'f32 - 2'f32 / (fastExpBody(2'f32 * x) + 1'f32)
  elif kind == vSigmoid: 1'f32 / (1'f32 + fastExpBody(-x))
  else: 0.5'f32 * x * (1'f32 + fastErfBody(x * 0.70710678118654752'f32))

template loop(kind: static VKind, n: int, src, dst: ptr UncheckedArray[float32]) =
  for i in 0 ..< n:
    let x = src[i]
    var y = valueOf(kind, x)
    if x != x: y = x
    dst[i] = y

template mapBody(kind: VKind, n: int, src, dst: ptr UncheckedArray[float32]) =
  case kind
  of vExp: loop(vExp, n, src, dst)
  of vErf: loop(vErf, n, src, dst)
  of vTanh: loop(vTanh, n, src, dst)
  of vSigmoid: loop(vSigmoid, n, src, dst)
  of vGelu: loop(vGelu, n, src, dst)

template rowsBody(kind: VKind, rows, cols, ld: int, p: ptr float32) =
  ## In place over `rows` rows of `cols` elements, `ld` apart: a GEMM tile's epilogue, one call
  ## (and one set of the polynomials' constants) per tile instead of one per row.
  for i in 0 ..< rows:
    let row = cast[ptr UncheckedArray[float32]](cast[int](p) +% i *% ld *% 4)
    mapBody(kind, cols, row, row)

# Each loop also gets optimize("no-trapping-math"): without it GCC will not turn the clamps and
# the NaN test into selects on targets without mask registers, and the loop stays scalar.
# (The results are the same: nothing here reads the floating-point exception flags.)
proc mapPortable(kind: VKind, n: int, src, dst: ptr UncheckedArray[float32]) {.
    codegenDecl: "__attribute__((optimize(\"no-trapping-math\"))) $# $#$#".} =
  mapBody(kind, n, src, dst)

when x86SimdEnabled:
  proc mapAvx2(kind: VKind, n: int, src, dst: ptr UncheckedArray[float32]) {.codegenDecl:
      "__attribute__((target(\"" & avx2Targets & "\"), optimize(\"no-trapping-math\"))) $# $#$#".} =
    mapBody(kind, n, src, dst)

  proc mapAvx512(kind: VKind, n: int, src, dst: ptr UncheckedArray[float32]) {.codegenDecl:
      "__attribute__((target(\"" & avx512Targets & "\"), optimize(\"no-trapping-math\"))) $# $#$#".} =
    mapBody(kind, n, src, dst)

proc mapRowsPortable(kind: VKind, rows, cols, ld: int, p: ptr float32) {.
    codegenDecl: "__attribute__((optimize(\"no-trapping-math\"))) $# $#$#".} =
  rowsBody(kind, rows, cols, ld, p)

when x86SimdEnabled:
  proc mapRowsAvx2(kind: VKind, rows, cols, ld: int, p: ptr float32) {.codegenDecl:
      "__attribute__((target(\"" & avx2Targets & "\"), optimize(\"no-trapping-math\"))) $# $#$#".} =
    rowsBody(kind, rows, cols, ld, p)

  proc mapRowsAvx512(kind: VKind, rows, cols, ld: int, p: ptr float32) {.codegenDecl:
      "__attribute__((target(\"" & avx512Targets & "\"), optimize(\"no-trapping-math\"))) $# $#$#".} =
    rowsBody(kind, rows, cols, ld, p)

proc vmapRows*(kind: VKind, rows, cols, ld: int, p: ptr float32) =
  ## p[i*ld + j] = f(p[i*ld + j]) for i < rows, j < cols: `vmap` in place over a strided tile.
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: mapRowsAvx512(kind, rows, cols, ld, p)
    of isaAvx2: mapRowsAvx2(kind, rows, cols, ld, p)
    of isaPortable: mapRowsPortable(kind, rows, cols, ld, p)
  else:
    mapRowsPortable(kind, rows, cols, ld, p)

proc vmap*(kind: VKind, n: int, src, dst: ptr float32) =
  ## dst[i] = f(src[i]) for i < n (src == dst is allowed).
  let s = cast[ptr UncheckedArray[float32]](src)
  let d = cast[ptr UncheckedArray[float32]](dst)
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: mapAvx512(kind, n, s, d)
    of isaAvx2: mapAvx2(kind, n, s, d)
    of isaPortable: mapPortable(kind, n, s, d)
  else:
    mapPortable(kind, n, s, d)
