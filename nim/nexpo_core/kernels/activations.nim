## Activations fused into the GEMM epilogue of `linear`.
##
## - relu: max(x, 0), NaN stays NaN (as numpy.maximum)
## - gelu: the exact erf form, 0.5·x·(1 + erf(x/√2)) (PyTorch's default `nn.GELU()`), not the
##   tanh approximation
## - tanh, sigmoid: sigmoid evaluated without overflow for either sign
## - softmax: over the last axis (each row of the result), shifted by the row maximum so exp
##   never overflows
## - geluVec (float32, not in the C ABI): GELU with vmath.nim's vectorised erf, the values the
##   inference engine's unfused Gelu node computes, so a fused one gives the same bits

import std/math
import ../config, ../cpu, ../targets
import ./common, ./vmath

type
  Activation* = enum
    ## Numbers are the C ABI's (`NEXPO_ACT_*` in capi/kernels.h).
    actNone = 0, actRelu = 1, actGelu = 2, actTanh = 3, actSigmoid = 4, actSoftmax = 5,
    actGeluVec = 6  ## internal (inference plans): `geluVec` above

proc erfImpl(x: float32): float32 {.importc: "erff", header: "<math.h>".}
proc erfImpl(x: float64): float64 {.importc: "erf", header: "<math.h>".}

proc relu*[T](x: T): T {.inline.} = (if x < 0: T(0) else: x)

proc gelu*[T](x: T): T {.inline.} =
  const invSqrt2 = 0.70710678118654752440
  T(0.5) * x * (T(1) + erfImpl(x * T(invSqrt2)))

proc sigmoid*[T](x: T): T {.inline.} =
  if x >= 0: T(1) / (T(1) + exp(-x))
  else:
    let e = exp(x)
    e / (T(1) + e)

template applyElementwise(row: typed, cols: int, f: untyped) =
  for j in 0 ..< cols:
    let p = row +! j
    p[] = f(p[])

template epilogueBody[T](c: ptr T, ldc, rows, cols: int, bias: ptr T, act: Activation) =
  for i in 0 ..< rows:
    let row = c +! (i * ldc)
    if bias != nil:
      for j in 0 ..< cols:
        let p = row +! j
        p[] = p[] + (bias +! j)[]
    case act
    of actNone, actSoftmax: discard
    of actRelu:  # written out: a helper proc without the wide paths' target is not inlined
      for j in 0 ..< cols:
        let p = row +! j
        p[] = (if p[] < T(0): T(0) else: p[])
    of actGelu: applyElementwise(row, cols, gelu)
    of actGeluVec:
      when T is float32: vmap(vGelu, cols, row, row)
      else: applyElementwise(row, cols, gelu)
    of actTanh: applyElementwise(row, cols, tanh)
    of actSigmoid: applyElementwise(row, cols, sigmoid)

proc epiloguePortable[T](c: ptr T, ldc, rows, cols: int, bias: ptr T, act: Activation) =
  epilogueBody(c, ldc, rows, cols, bias, act)

when x86SimdEnabled:
  # The same loops compiled for the wide paths: without them the bias add and ReLU of every
  # GEMM tile ran in the baseline's 4 lanes (15 % of an MLP's time at batch 64). No trapping
  # math, so GCC may turn ReLU's select into a vector blend (NaN stays NaN either way).
  const noTrap = "optimize(\"no-trapping-math\")"
  proc epilogueAvx2[T](c: ptr T, ldc, rows, cols: int, bias: ptr T, act: Activation) {.
      codegenDecl: "__attribute__((target(\"" & avx2Targets & "\"), " & noTrap & ")) $# $#$#".} =
    epilogueBody(c, ldc, rows, cols, bias, act)

  proc epilogueAvx512[T](c: ptr T, ldc, rows, cols: int, bias: ptr T, act: Activation) {.
      codegenDecl: "__attribute__((target(\"" & avx512Targets & "\"), " & noTrap & ")) $# $#$#".} =
    epilogueBody(c, ldc, rows, cols, bias, act)

proc epilogueTile*[T](c: ptr T, ldc, rows, cols: int, bias: ptr T, act: Activation) =
  ## Finish a rows x cols tile of the result still hot in L1: add the bias row, then the
  ## elementwise activation (softmax needs whole rows: see `softmaxRows`).
  when T is float32:
    if act == actGeluVec:  # the bias pass, then the tile's GELU in one vectorised call
      if bias != nil: epilogueTile(c, ldc, rows, cols, bias, actNone)
      vmapRows(vGelu, rows, cols, ldc, c)
      return
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: epilogueAvx512(c, ldc, rows, cols, bias, act)
    of isaAvx2: epilogueAvx2(c, ldc, rows, cols, bias, act)
    of isaPortable: epiloguePortable(c, ldc, rows, cols, bias, act)
  else:
    epiloguePortable(c, ldc, rows, cols, bias, act)

proc softmaxRows*[T](c: ptr T, ldc, rows, cols: int) =
  ## Numerically stable softmax of each row: exp(x - max) / sum. A NaN anywhere in a row makes
  ## the whole row NaN, as the numpy formula does.
  if cols == 0: return
  for i in 0 ..< rows:
    let row = c +! (i * ldc)
    var hi = row[]
    for j in 1 ..< cols:
      let x = (row +! j)[]
      if x > hi or x != x: hi = x
    var total = T(0)
    for j in 0 ..< cols:
      let p = row +! j
      let e = exp(p[] - hi)
      p[] = e
      total += e
    let inv = T(1) / total
    for j in 0 ..< cols:
      let p = row +! j
      p[] = p[] * inv
