## Nim-level tests of the inference kernels (conv, pooling, normalisation, strided copy, gather,
## broadcasting) against naive loops, and of the executor's checks on malformed plans. Sizes stay
## small: this also runs under ASan+UBSan.

import std/[unittest, random, math]
import nexpo_core
import nexpo_core/capi
import nexpo_core/errors
import nexpo_core/cpu
import nexpo_core/kernels/[elementwise, norm, pool, conv, tensor_ops, vmath]
import nexpo_core/inference/[program, exec]
import ./conv_reference

discard nexpo_init()
var rng = initRand(20261207)

proc randomSeq(n: int): seq[float32] =
  result = newSeq[float32](n)
  for x in result.mitems: x = float32(rng.rand(2.0) - 1.0)

suite "inference kernels":
  test "conv2d matches a direct convolution (groups, pads, strides, dilations, ReLU)":
    for trial in 0 ..< 20:
      var c: ConvShape
      c.groups = rng.rand(1 .. 3)
      c.cin = c.groups * rng.rand(1 .. 3)
      c.cout = c.groups * rng.rand(1 .. 3)
      c.n = rng.rand(1 .. 3)
      c.g = PoolGeometry(h: rng.rand(3 .. 9), w: rng.rand(3 .. 9), kh: rng.rand(1 .. 3),
                         kw: rng.rand(1 .. 3), sh: rng.rand(1 .. 2), sw: rng.rand(1 .. 2),
                         pt: rng.rand(0 .. 1), pl: rng.rand(0 .. 1), dh: rng.rand(1 .. 2),
                         dw: rng.rand(1 .. 2))
      c.g.oh = (c.g.h + 2 * c.g.pt - (c.g.kh - 1) * c.g.dh - 1) div c.g.sh + 1
      c.g.ow = (c.g.w + 2 * c.g.pl - (c.g.kw - 1) * c.g.dw - 1) div c.g.sw + 1
      if c.g.oh < 1 or c.g.ow < 1: continue
      let x = randomSeq(c.n * c.cin * c.g.h * c.g.w)
      let w = randomSeq(c.cout * (c.cin div c.groups) * c.g.kh * c.g.kw)
      let b = randomSeq(c.cout)
      var got = newSeq[float32](c.n * c.cout * c.g.oh * c.g.ow)
      conv2d(c, x[0].unsafeAddr, w[0].unsafeAddr, b[0].unsafeAddr, got[0].addr, true)
      let want = naiveConv(c, x, w, b, relu = true)
      for i in 0 ..< got.len: check abs(got[i] - want[i]) < 1e-4

  test "max and average pooling with padding":
    let x = @[1'f32, 2, 3, 4, 5, 6, 7, 8, 9]
    var g = PoolGeometry(h: 3, w: 3, kh: 2, kw: 2, oh: 2, ow: 2, sh: 2, sw: 2, pt: 1, pl: 1,
                         dh: 1, dw: 1)
    var res = newSeq[float32](4)
    pool2d(true, false, 1, g, x[0].unsafeAddr, res[0].addr)
    check res == @[1'f32, 3, 7, 9]
    pool2d(false, false, 1, g, x[0].unsafeAddr, res[0].addr)
    check res == @[1'f32, 2.5, 5.5, 7]
    pool2d(false, true, 1, g, x[0].unsafeAddr, res[0].addr)
    check res == @[0.25'f32, 1.25, 2.75, 7]

  test "softmax and layer normalisation":
    let x = @[1'f32, 2, 3, 4, 5, 6]
    var y = newSeq[float32](6)
    softmaxLines(2, 3, 1, x[0].unsafeAddr, y[0].addr, false)
    check abs(y[0] + y[1] + y[2] - 1) < 1e-6 and abs(y[2] - exp(1'f32) * y[1]) < 1e-6
    softmaxLines(1, 2, 3, x[0].unsafeAddr, y[0].addr, true)  # along the middle axis
    check abs(exp(y[0]) + exp(y[3]) - 1) < 1e-6
    let g = @[1'f32, 1, 1]
    layerNorm(2, 3, x[0].unsafeAddr, y[0].addr, g[0].unsafeAddr, nil, 0)
    check abs(y[0] + 1.2247449) < 1e-5 and abs(y[4]) < 1e-6

  test "strided copy transposes and broadcasts; gather checks indices":
    let x = @[1'f32, 2, 3, 4, 5, 6]  # 2 x 3
    var y = newSeq[float32](6)
    stridedCopy(4, 2, [3, 2, 0, 0, 0, 0, 0, 0], [1, 3, 0, 0, 0, 0, 0, 0], [2, 1, 0, 0, 0, 0, 0, 0],
                x[0].unsafeAddr, y[0].addr)
    check y == @[1'f32, 4, 2, 5, 3, 6]
    stridedCopy(4, 2, [2, 3, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0], [3, 1, 0, 0, 0, 0, 0, 0],
                x[0].unsafeAddr, y[0].addr)
    check y == @[1'f32, 2, 3, 1, 2, 3]
    let idx = @[-1'i64, 0]
    gatherAxis(4, 1, 2, 3, 2, x[0].unsafeAddr, idx[0].unsafeAddr, y[0].addr)
    check y == @[4'f32, 5, 6, 1, 2, 3]
    let bad = @[2'i64]
    expect NexpoError:
      gatherAxis(4, 1, 2, 3, 1, x[0].unsafeAddr, bad[0].unsafeAddr, y[0].addr)

  test "binary broadcasting and comparisons":
    let a = @[1'f32, 2, 3]
    let b = @[10'f32, 2]
    var y = newSeq[float32](6)
    var shape, sa, sb: Dims
    shape[0] = 2; shape[1] = 3
    sa[0] = 0; sa[1] = 1
    sb[0] = 1; sb[1] = 0
    binaryBroadcast(bAdd, dtF32, 2, shape, sa, sb, a[0].unsafeAddr, b[0].unsafeAddr, y[0].addr)
    check y == @[11'f32, 12, 13, 3, 4, 5]
    var m = newSeq[uint8](6)
    binaryBroadcast(bEqual, dtF32, 2, shape, sa, sb, a[0].unsafeAddr, b[0].unsafeAddr, m[0].addr)
    check m == @[0'u8, 0, 0, 0, 1, 0]

  test "vectorised exp/erf/tanh/sigmoid/GELU agree with libm on every ISA path":
    proc erff(x: float32): float32 {.importc: "erff", header: "<math.h>".}
    var xs: seq[float32]
    for i in -2000 .. 2000: xs.add float32(i) * 0.005'f32
    xs.add [-100'f32, -88, 80, 88, 100, NaN]
    var ys = newSeq[float32](xs.len)
    for isa in availableIsas():
      check setIsa(isa)
      for kind in VKind:
        vmap(kind, xs.len, xs[0].addr, ys[0].addr)
        for i, x in xs:
          let want = case kind
            of vExp: exp(x)
            of vErf: erff(x)
            of vTanh: tanh(x)
            of vSigmoid: 1'f32 / (1'f32 + exp(-x))
            of vGelu: 0.5'f32 * x * (1'f32 + erff(x * 0.70710678'f32))
          if x != x:
            check ys[i] != ys[i]
          elif kind == vExp:
            check abs(ys[i] - want) <= 3e-7 * abs(want) + 1e-37  # below -87.3: clamped
          else:
            check abs(ys[i] - want) <= 5e-7 * max(1'f32, abs(x))
    discard setIsa(best())

  test "the executor rejects operands outside their buffers":
    var x = @[1'f32, 2, 3, 4]
    var bases = [cast[pointer](x[0].addr)]
    var sizes = [16]
    let sp = Spaces(bases: cast[ptr UncheckedArray[pointer]](bases[0].addr),
                    sizes: cast[ptr UncheckedArray[int]](sizes[0].addr), count: 1)
    var code = @[int64(ord(opUnary)), 13, 10, 5, 0, 0, 0, 0, 16, 0, 0, 16]  # relu of 5 elements
    code.setLen(12)
    expect NexpoError:
      runPlan(cast[ptr UncheckedArray[int64]](code[0].addr), code.len, sp)
    code[1] = 12
    code[3] = 4
    runPlan(cast[ptr UncheckedArray[int64]](code[0].addr), code.len, sp)
    check x == @[1'f32, 2, 3, 4]
