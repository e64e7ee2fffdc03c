## Normalisation kernels of the inference engine (float32). Row sums run in 16 float32 lanes
## (`laneSum`: the compiler keeps them in vector registers, and the rounding error grows with
## n/16 instead of n), then the lanes are added in float64.
##
## Tensors are viewed as [outer, axis, inner]: the op runs along `axis` for each of the
## outer*inner lines (inner = 1 is the contiguous, common case).

import std/math
import ../config, ../cpu, ../targets
import ./vmath

# Operand sizes are checked by the executor (inference/exec.nim) before a kernel runs.
{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

type F32s = ptr UncheckedArray[float32]

const lanes = 16

template laneSum(n: int, term: untyped): float64 =
  ## sum of `term` (an expression of the injected index `j`) for j in 0 ..< n.
  block:
    var acc {.noinit.}: array[lanes, float32]
    var j {.inject.} = 0
    let laned = n >= lanes  # short lines: no lanes to clear and add (the same sum)
    if laned:
      for t in 0 ..< lanes: acc[t] = 0'f32
    while j + lanes <= n:
      let start = j
      for t in 0 ..< lanes:
        j = start + t
        acc[t] = acc[t] + term  # not +=: a call gcc won't inline into an optimize()d proc
      j = start + lanes
    var total = 0'f64
    while j < n:
      total = total + float64(term)
      inc j
    if laned:
      for t in 0 ..< lanes: total = total + float64(acc[t])
    total

template rowMax(s: F32s, base, n: int): float32 =
  ## max of s[base ..< base + n] (n >= 1), NaN when any element is NaN (a NaN sticks in its
  ## lane: nothing compares greater than it); in 16 lanes, a compare and a blend each.
  block:
    var hi = -Inf.float32
    var j = 0
    if n >= lanes:
      var acc {.noinit.}: array[lanes, float32]
      for t in 0 ..< lanes: acc[t] = -Inf.float32
      while j + lanes <= n:
        for t in 0 ..< lanes:
          let x = s[base + j + t]
          acc[t] = (if x > acc[t] or x != x: x else: acc[t])
        j += lanes
      for t in 0 ..< lanes: hi = (if acc[t] > hi or acc[t] != acc[t]: acc[t] else: hi)
    while j < n:
      let x = s[base + j]
      hi = (if x > hi or x != x: x else: hi)
      inc j
    hi

template softmaxRowsBody(outer, axis: int, s, d: F32s) =
  ## Softmax of contiguous rows, a block of rows at a time: shift every row by its max, one
  ## vectorised exp over the whole block, then each row's sum and scale. (Attention's rows are
  ## short: per-row calls and a scalar max loop would cost more than the exps.)
  let perBlock = max(1, 4096 div axis)
  var o = 0
  while o < outer:
    let rows = min(perBlock, outer - o)
    for r in o ..< o + rows:
      let base = r * axis
      let hi = rowMax(s, base, axis)
      for j in 0 ..< axis: d[base + j] = s[base + j] - hi
    vmap(vExp, rows * axis, d[o * axis].addr, d[o * axis].addr)
    for r in o ..< o + rows:
      let base = r * axis
      let inv = float32(1.0 / laneSum(axis, d[base + j]))
      for j in 0 ..< axis: d[base + j] = d[base + j] * inv
    o += rows

const noTrap = "optimize(\"no-trapping-math\")"

proc softmaxRowsPortable(outer, axis: int, s, d: F32s) {.
    codegenDecl: "__attribute__((" & noTrap & ")) $# $#$#".} =
  softmaxRowsBody(outer, axis, s, d)

when x86SimdEnabled:
  proc softmaxRowsAvx2(outer, axis: int, s, d: F32s) {.
      codegenDecl: "__attribute__((target(\"" & avx2Targets & "\"), " & noTrap & ")) $# $#$#".} =
    softmaxRowsBody(outer, axis, s, d)

  proc softmaxRowsAvx512(outer, axis: int, s, d: F32s) {.
      codegenDecl: "__attribute__((target(\"" & avx512Targets & "\"), " & noTrap & ")) $# $#$#".} =
    softmaxRowsBody(outer, axis, s, d)

proc softmaxRowsBlocked(outer, axis: int, s, d: F32s) =
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: softmaxRowsAvx512(outer, axis, s, d)
    of isaAvx2: softmaxRowsAvx2(outer, axis, s, d)
    of isaPortable: softmaxRowsPortable(outer, axis, s, d)
  else:
    softmaxRowsPortable(outer, axis, s, d)

proc softmaxLines*(outer, axis, inner: int, src, dst: ptr float32, logSoftmax: bool) =
  ## exp(x - max) / sum along the axis (or x - max - log(sum) for LogSoftmax).
  let s = cast[F32s](src)
  let d = cast[F32s](dst)
  if axis == 0: return
  if inner == 1 and not logSoftmax:
    softmaxRowsBlocked(outer, axis, s, d)
    return
  for o in 0 ..< outer:
    for i in 0 ..< inner:
      let base = o * axis * inner + i
      var hi = s[base]
      for j in 1 ..< axis:
        let x = s[base + j * inner]
        if x > hi or x != x: hi = x
      var total = 0'f32
      if inner == 1:  # contiguous line: shift, then the vectorised exp in place
        for j in 0 ..< axis: d[base + j] = s[base + j] - hi
        if logSoftmax:
          var e {.noinit.}: array[256, float32]
          var j = 0
          while j < axis:
            let m = min(256, axis - j)
            vmap(vExp, m, d[base + j].addr, e[0].addr)
            for t in 0 ..< m: total += e[t]
            j += m
          let shift = ln(total)
          for j in 0 ..< axis: d[base + j] = d[base + j] - shift
        else:
          vmap(vExp, axis, d[base].addr, d[base].addr)
          let inv = float32(1.0 / laneSum(axis, d[base + j]))
          for j in 0 ..< axis: d[base + j] = d[base + j] * inv
        continue
      for j in 0 ..< axis:
        let e = exp(s[base + j * inner] - hi)
        if not logSoftmax: d[base + j * inner] = e
        total += e
      if logSoftmax:
        let shift = hi + ln(total)
        for j in 0 ..< axis: d[base + j * inner] = s[base + j * inner] - shift
      else:
        let inv = 1'f32 / total
        for j in 0 ..< axis: d[base + j * inner] = d[base + j * inner] * inv

template layerNormBody(rows, cols: int, src, resid, dst, scale, bias: ptr float32, eps: float32) =
  let g = cast[F32s](scale)
  let b = cast[F32s](bias)
  if cols == 0: return
  for r in 0 ..< rows:
    let base = r * cols
    var s = cast[F32s](src)
    let d = cast[F32s](dst)
    if resid != nil:  # normalise x + residual: the sum goes to the output row first (L1)
      let x = cast[F32s](src)
      let y = cast[F32s](resid)
      for j in 0 ..< cols: d[base + j] = x[base + j] + y[base + j]
      s = d
    let mean = float32(laneSum(cols, s[base + j]) / float64(cols))
    let sq = laneSum(cols, (s[base + j] - mean) * (s[base + j] - mean))
    let inv = float32(1.0 / sqrt(sq / float64(cols) + float64(eps)))
    if bias == nil:
      for j in 0 ..< cols: d[base + j] = (s[base + j] - mean) * inv * g[j]
    else:
      for j in 0 ..< cols: d[base + j] = (s[base + j] - mean) * inv * g[j] + b[j]

proc layerNormPortable(rows, cols: int, src, resid, dst, scale, bias: ptr float32, eps: float32) =
  layerNormBody(rows, cols, src, resid, dst, scale, bias, eps)

when x86SimdEnabled:
  proc layerNormAvx2(rows, cols: int, src, resid, dst, scale, bias: ptr float32, eps: float32) {.
      codegenDecl: "__attribute__((target(\"" & avx2Targets & "\"))) $# $#$#".} =
    layerNormBody(rows, cols, src, resid, dst, scale, bias, eps)

  proc layerNormAvx512(rows, cols: int, src, resid, dst, scale, bias: ptr float32, eps: float32) {.
      codegenDecl: "__attribute__((target(\"" & avx512Targets & "\"))) $# $#$#".} =
    layerNormBody(rows, cols, src, resid, dst, scale, bias, eps)

proc layerNormResidual*(rows, cols: int, src, resid, dst, scale, bias: ptr float32, eps: float32) =
  ## Layer normalisation of src + resid (a residual connection's Add fused in; `resid` may be
  ## nil: src alone). dst may be src or resid.
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: layerNormAvx512(rows, cols, src, resid, dst, scale, bias, eps)
    of isaAvx2: layerNormAvx2(rows, cols, src, resid, dst, scale, bias, eps)
    of isaPortable: layerNormPortable(rows, cols, src, resid, dst, scale, bias, eps)
  else:
    layerNormPortable(rows, cols, src, resid, dst, scale, bias, eps)

proc layerNorm*(rows, cols: int, src, dst, scale, bias: ptr float32, eps: float32) =
  ## (x - mean) / sqrt(var + eps) * scale + bias over each contiguous row; `bias` may be nil.
  ## Compiled for each ISA path (the row sums and the scaling are vector loops).
  layerNormResidual(rows, cols, src, nil, dst, scale, bias, eps)

proc channelAffine*(n, c, spatial: int, src, dst, scale, shift: ptr float32) =
  ## y = x * scale[ch] + shift[ch] for NC... tensors (BatchNormalization folded to this).
  let s = cast[F32s](src)
  let d = cast[F32s](dst)
  let g = cast[F32s](scale)
  let b = cast[F32s](shift)
  for i in 0 ..< n:
    for ch in 0 ..< c:
      let base = (i * c + ch) * spatial
      let gg = g[ch]
      let bb = b[ch]
      for j in 0 ..< spatial: d[base + j] = s[base + j] * gg + bb

proc channelBiasAct*(n, c, spatial: int, data, bias: ptr float32, relu: bool) =
  ## In place: add bias[ch] (when not nil), then ReLU (when asked); Conv's epilogue.
  let d = cast[F32s](data)
  let b = cast[F32s](bias)
  for i in 0 ..< n:
    for ch in 0 ..< c:
      let base = (i * c + ch) * spatial
      let bb = if bias == nil: 0'f32 else: b[ch]
      if relu:
        for j in 0 ..< spatial:
          let v = d[base + j] + bb
          d[base + j] = (if v < 0: 0'f32 else: v)
      elif bias != nil:
        for j in 0 ..< spatial: d[base + j] = d[base + j] + bb

proc biasActRows*(rows, cols, ld: int, data, bias: ptr float32, relu: bool) =
  ## `channelBiasAct` over a block of `rows` rows (one per channel) of `cols` elements, row
  ## stride `ld`: the columns one part of a split convolution wrote.
  let b = cast[F32s](bias)
  for ch in 0 ..< rows:
    let d = cast[F32s](cast[int](data) + ch * ld * sizeof(float32))
    let bb = if bias == nil: 0'f32 else: b[ch]
    if relu:
      for j in 0 ..< cols:
        let v = d[j] + bb
        d[j] = (if v < 0: 0'f32 else: v)
    elif bias != nil:
      for j in 0 ..< cols: d[j] = d[j] + bb

proc instanceNorm*(n, c, spatial: int, src, dst, scale, bias: ptr float32, eps: float32) =
  let s = cast[F32s](src)
  let d = cast[F32s](dst)
  let g = cast[F32s](scale)
  let b = cast[F32s](bias)
  if spatial == 0: return
  for i in 0 ..< n:
    for ch in 0 ..< c:
      let base = (i * c + ch) * spatial
      var total = 0'f64
      for j in 0 ..< spatial: total += float64(s[base + j])
      let mean = float32(total / float64(spatial))
      var sq = 0'f64
      for j in 0 ..< spatial:
        let v = s[base + j] - mean
        sq += float64(v * v)
      let inv = float32(1.0 / sqrt(sq / float64(spatial) + float64(eps)))
      let gg = g[ch] * inv
      for j in 0 ..< spatial: d[base + j] = (s[base + j] - mean) * gg + b[ch]
