## Elementwise kernels of the inference engine: unary maps, broadcasting binary ops, Where, Cast.
##
## - unary maps are float32 (plus logical not on bool bytes); erf/tanh/exp are libm's
## - binary ops and Where walk the output in row-major order over up to `maxRank` dimensions;
##   every input is read through its own element strides, 0 along a broadcast dimension, so
##   numpy broadcasting never materialises an expanded operand
## - dtypes: 0 float32, 1 int64, 2 bool (one byte, 0 or 1)

import std/math
import ./common, ./activations, ./vmath

# Operand sizes are checked by the executor (inference/exec.nim) before a kernel runs.
{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

const maxRank* = 6

type
  UnaryKind* = enum
    uIdentity = 0, uNeg, uAbs, uExp, uLog, uSqrt, uReciprocal, uErf, uTanh, uSigmoid, uRelu,
    uLeakyRelu, uClip, uGelu, uGeluTanh, uHardSigmoid, uHardSwish, uScale, uNot, uFloor, uCeil
  BinaryKind* = enum
    bAdd = 0, bSub, bMul, bDiv, bPow, bMax, bMin, bEqual, bLess, bGreater, bLessEq, bGreaterEq,
    bAnd, bOr, bXor
  DType* = enum
    dtF32 = 0, dtI64 = 1, dtBool = 2
  Dims* = array[maxRank, int]

proc erff(x: float32): float32 {.importc: "erff", header: "<math.h>".}

proc unaryF32(kind: UnaryKind, x, alpha, beta: float32): float32 {.inline.} =
  case kind
  of uIdentity: x
  of uNeg: -x
  of uAbs: abs(x)
  of uExp: exp(x)
  of uLog: ln(x)
  of uSqrt: sqrt(x)
  of uReciprocal: 1'f32 / x
  of uErf: erff(x)
  of uTanh: tanh(x)
  of uSigmoid: sigmoid(x)
  of uRelu: (if x < 0: 0'f32 else: x)
  of uLeakyRelu: (if x < 0: alpha * x else: x)
  of uClip: (if x < alpha: alpha elif x > beta: beta else: x)
  of uGelu: gelu(x)
  of uGeluTanh:
    const c = 0.7978845608028654'f32  # sqrt(2/pi)
    0.5'f32 * x * (1'f32 + tanh(c * (x + 0.044715'f32 * x * x * x)))
  of uHardSigmoid: max(0'f32, min(1'f32, alpha * x + beta))
  of uHardSwish: x * max(0'f32, min(1'f32, x / 6'f32 + 0.5'f32))
  of uScale: alpha * x + beta
  of uFloor: floor(x)
  of uCeil: ceil(x)
  of uNot: x

proc unaryMap*(kind: UnaryKind, n: int, src, dst: ptr float32, alpha, beta: float32) =
  let s = cast[ptr UncheckedArray[float32]](src)
  let d = cast[ptr UncheckedArray[float32]](dst)
  template loop(k: static UnaryKind) =
    for i in 0 ..< n: d[i] = unaryF32(k, s[i], alpha, beta)
  case kind  # one loop per kind: the kind test leaves the inner loop, which then vectorises
  of uRelu: loop(uRelu)
  of uScale: loop(uScale)
  of uExp: vmap(vExp, n, src, dst)
  of uErf: vmap(vErf, n, src, dst)
  of uSigmoid: vmap(vSigmoid, n, src, dst)
  of uTanh: vmap(vTanh, n, src, dst)
  of uGelu: vmap(vGelu, n, src, dst)
  else:
    for i in 0 ..< n: d[i] = unaryF32(kind, s[i], alpha, beta)

proc logicalNot*(n: int, src, dst: ptr uint8) =
  let s = cast[ptr UncheckedArray[uint8]](src)
  let d = cast[ptr UncheckedArray[uint8]](dst)
  for i in 0 ..< n: d[i] = (if s[i] == 0: 1'u8 else: 0'u8)

template forEachIndex*(rank: int, shape: Dims, strides: openArray[Dims], body: untyped) =
  ## Calls `body` once per output element in row-major order with `offs[j]` the element offset
  ## of input j and `pos` the output index. The innermost dimension is a plain loop.
  block:
    let nin = strides.len
    var offs {.inject.}: array[4, int]
    var idx: Dims
    var total = 1
    for d in 0 ..< rank: total *= shape[d]
    let inner = if rank == 0: 1 else: shape[rank - 1]
    if total > 0:
      var pos {.inject.} = 0
      while pos < total:
        var base: array[4, int]
        for j in 0 ..< nin:
          for d in 0 ..< rank - 1: base[j] += idx[d] * strides[j][d]
        for t in 0 ..< inner:
          for j in 0 ..< nin:
            offs[j] = base[j] + (if rank == 0: 0 else: t * strides[j][rank - 1])
          body
          inc pos
        var d = rank - 2
        while d >= 0:
          inc idx[d]
          if idx[d] < shape[d]: break
          idx[d] = 0
          dec d

proc binaryValue[T](kind: BinaryKind, a, b: T): T {.inline.} =
  case kind
  of bAdd: a + b
  of bSub: a - b
  of bMul: a * b
  of bDiv:
    when T is float32: a / b
    else: (if b == 0: T(0) else: a div b)  # integer division by zero: 0, never a trap
  of bPow:
    when T is float32: pow(a, b)
    else: T(pow(float64(a), float64(b)))
  of bMax: max(a, b)
  of bMin: min(a, b)
  else: T(0)

proc compareValue[T](kind: BinaryKind, a, b: T): bool {.inline.} =
  case kind
  of bEqual: a == b
  of bLess: a < b
  of bGreater: a > b
  of bLessEq: a <= b
  of bGreaterEq: a >= b
  of bAnd: a != T(0) and b != T(0)
  of bOr: a != T(0) or b != T(0)
  of bXor: (a != T(0)) != (b != T(0))
  else: false

proc isComparison*(kind: BinaryKind): bool = kind >= bEqual

template innerLoop(T: typedesc, n: int, pa: ptr UncheckedArray[T], ia: int,
                    pb: ptr UncheckedArray[T], ib: int, f: untyped) =
  ## One output row: the stride cases (1,1), (1,0), (0,1) get their own loops, which vectorise.
  if ia == 1 and ib == 1:
    for t in 0 ..< n:
      let x {.inject.} = pa[t]
      let y {.inject.} = pb[t]
      d[t] = f
  elif ia == 1 and ib == 0:
    let y {.inject.} = pb[0]
    for t in 0 ..< n:
      let x {.inject.} = pa[t]
      d[t] = f
  elif ia == 0 and ib == 1:
    let x {.inject.} = pa[0]
    for t in 0 ..< n:
      let y {.inject.} = pb[t]
      d[t] = f
  else:
    for t in 0 ..< n:
      let x {.inject.} = pa[t * ia]
      let y {.inject.} = pb[t * ib]
      d[t] = f

proc binaryTyped[T](kind: BinaryKind, rank: int, shape, sa, sb: Dims, a, b: ptr T,
                    dst: pointer) =
  ## Rows of the output (all dimensions but the last) in order, each an inner loop.
  let inner = if rank == 0: 1 else: shape[rank - 1]
  let ia = if rank == 0: 0 else: sa[rank - 1]
  let ib = if rank == 0: 0 else: sb[rank - 1]
  var rows = 1
  for k in 0 ..< rank - 1: rows *= shape[k]
  var idx: Dims
  for row in 0 ..< rows:
    var oa, ob = 0
    for k in 0 ..< rank - 1:
      oa += idx[k] * sa[k]
      ob += idx[k] * sb[k]
    let pa = cast[ptr UncheckedArray[T]](a +! oa)
    let pb = cast[ptr UncheckedArray[T]](b +! ob)
    if kind.isComparison:
      let d = cast[ptr UncheckedArray[uint8]](cast[ptr uint8](dst) +! (row * inner))
      innerLoop(T, inner, pa, ia, pb, ib, uint8(compareValue(kind, x, y)))
    else:
      let d = cast[ptr UncheckedArray[T]](cast[ptr T](dst) +! (row * inner))
      case kind
      of bAdd: innerLoop(T, inner, pa, ia, pb, ib, x + y)
      of bSub: innerLoop(T, inner, pa, ia, pb, ib, x - y)
      of bMul: innerLoop(T, inner, pa, ia, pb, ib, x * y)
      of bDiv: innerLoop(T, inner, pa, ia, pb, ib, binaryValue(bDiv, x, y))
      else: innerLoop(T, inner, pa, ia, pb, ib, binaryValue(kind, x, y))
    var k = rank - 2
    while k >= 0:
      inc idx[k]
      if idx[k] < shape[k]: break
      idx[k] = 0
      dec k

proc binaryBroadcast*(kind: BinaryKind, dtype: DType, rank: int, shape, sa, sb: Dims,
                      a, b, dst: pointer) =
  case dtype
  of dtF32: binaryTyped[float32](kind, rank, shape, sa, sb, cast[ptr float32](a),
                                 cast[ptr float32](b), dst)
  of dtI64: binaryTyped[int64](kind, rank, shape, sa, sb, cast[ptr int64](a),
                               cast[ptr int64](b), dst)
  of dtBool: binaryTyped[uint8](kind, rank, shape, sa, sb, cast[ptr uint8](a),
                                cast[ptr uint8](b), dst)

proc whereSelect*(elemSize, rank: int, shape, sc, sx, sy: Dims, cond, x, y, dst: pointer) =
  let c = cast[ptr UncheckedArray[uint8]](cond)
  let px = cast[ptr UncheckedArray[uint8]](x)
  let py = cast[ptr UncheckedArray[uint8]](y)
  let d = cast[ptr UncheckedArray[uint8]](dst)
  forEachIndex(rank, shape, [sc, sx, sy]):
    let src = if c[offs[0]] != 0: px[offs[1] * elemSize].addr else: py[offs[2] * elemSize].addr
    copyMem(d[pos * elemSize].addr, src, elemSize)

proc castElements*(src: DType, dst: DType, n: int, a, b: pointer) =
  template conv(S, D: typedesc, f: untyped) =
    let s = cast[ptr UncheckedArray[S]](a)
    let d = cast[ptr UncheckedArray[D]](b)
    for i in 0 ..< n:
      let x {.inject.} = s[i]
      d[i] = f
  case src
  of dtF32:
    case dst
    of dtF32: copyMem(b, a, n * 4)
    of dtI64:  # NaN and out-of-range values have no int64: clamp instead of C's undefined cast
      conv(float32, int64):
        (if x != x: 0'i64 elif x >= 9.2233715e18'f32: high(int64)
         elif x <= -9.2233715e18'f32: low(int64) else: int64(x))
    of dtBool: conv(float32, uint8, uint8(x != 0'f32))
  of dtI64:
    case dst
    of dtF32: conv(int64, float32, float32(x))
    of dtI64: copyMem(b, a, n * 8)
    of dtBool: conv(int64, uint8, uint8(x != 0))
  of dtBool:
    case dst
    of dtF32: conv(uint8, float32, float32(x != 0))
    of dtI64: conv(uint8, int64, int64(x != 0))
    of dtBool: conv(uint8, uint8, uint8(x != 0))
