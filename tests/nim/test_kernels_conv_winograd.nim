## The Winograd F(2x2, 3x3) convolution (kernels/conv_winograd.nim) against a naive loop on every
## ISA path this CPU has: tile counts around each path's chunk (partial chunks), output channels
## not a multiple of the block, pads of 0..2 on either side, bias or none, ReLU or none, batch 1
## (inputs and items split across threads) and batch > 1, the fused 2x2/2 max pool and global
## average pool, and a NaN through ReLU and both pools.

import std/[unittest, random, math]
import nexpo_core
import nexpo_core/capi
import nexpo_core/cpu
import nexpo_core/kernels/conv
import ./conv_reference

discard nexpo_init()
var rng = initRand(20261208)

proc randomSeq(n: int): seq[float32] =
  result = newSeq[float32](n)
  for x in result.mitems: x = float32(rng.rand(2.0) - 1.0)

proc transform(c: ConvShape, w: seq[float32]): seq[float32] =
  ## The planner's layout (nexpo/inference/_ops_nn.py `_pack_winograd`): U = G g G^T in float64,
  ## as [block][pos][ci][winoBlock].
  const g = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]]
  result = newSeq[float32](winogradWeightElements(c))
  for co in 0 ..< c.cout:
    for ci in 0 ..< c.cin:
      for i in 0 .. 3:
        for k in 0 .. 3:
          var u = 0.0
          for a in 0 .. 2:
            for b in 0 .. 2:
              u += g[i][a] * float(w[((co * c.cin + ci) * 3 + a) * 3 + b]) * g[k][b]
          let (cb, lane) = (co div winoBlock, co mod winoBlock)
          result[(((cb * 16 + 4 * i + k) * c.cin) + ci) * winoBlock + lane] = float32(u)

proc shape(n, cin, cout, h, w, pt, pl, pb, pr: int): ConvShape =
  result = ConvShape(n: n, cin: cin, cout: cout, groups: 1)
  result.g = PoolGeometry(h: h, w: w, kh: 3, kw: 3, sh: 1, sw: 1, pt: pt, pl: pl, dh: 1, dw: 1)
  result.g.oh = h + pt + pb - 2
  result.g.ow = w + pl + pr - 2

proc agrees(c: ConvShape, withBias, relu: bool, pool = cpNone): bool =
  doAssert c.winogradApplies
  let x = randomSeq(c.n * c.cin * c.g.h * c.g.w)
  let w = randomSeq(c.cout * c.cin * 9)
  let b = if withBias: randomSeq(c.cout) else: @[]
  let want = pooled(c, naiveConv(c, x, w, b, relu), pool)
  let u = transform(c, w)
  result = true
  for isa in availableIsas():
    doAssert setIsa(isa)
    var got = newSeq[float32](want.len + 8)
    for v in got.mitems: v = 7
    conv2d(c, x[0].unsafeAddr, u[0].unsafeAddr, (if withBias: b[0].unsafeAddr else: nil),
           got[0].addr, relu, pool = pool, winograd = true)
    for i in 0 ..< want.len:
      if abs(got[i] - want[i]) > 1e-4 * (1 + abs(want[i])) * sqrt(float(c.cin)):
        echo "isa ", isa, " ", c, " pool ", pool, " at ", i, ": ", got[i], " vs ", want[i]
        result = false
        break
    for i in want.len ..< got.len:
      if got[i] != 7:
        echo "isa ", isa, " ", c, " wrote past the output at ", i
        result = false
  doAssert setIsa(best())

suite "Winograd convolution":
  test "fixed shapes: the benchmark CNN's layers, chunk boundaries, channel tails, pads":
    for (n, cin, cout, h, w, pt, pl, pb, pr) in [
        (1, 16, 32, 16, 16, 1, 1, 1, 1),   # the benchmark CNN's second layer, batch 1
        (3, 16, 32, 16, 16, 1, 1, 1, 1),   # and batch 3
        (1, 3, 16, 32, 32, 1, 1, 1, 1),    # its first layer
        (2, 5, 13, 10, 14, 1, 1, 1, 1),    # 35 tiles: a partial chunk on every path
        (1, 64, 12, 6, 6, 1, 1, 1, 1),     # 9 tiles, enough products to split items
        (2, 4, 4, 8, 6, 0, 0, 0, 0),       # no padding
        (1, 7, 9, 9, 11, 2, 1, 1, 2),      # uneven pads, odd input sizes
        (1, 8, 20, 4, 4, 0, 2, 0, 0)]:     # padding only on the left, 2x2 output
      let c = shape(n, cin, cout, h, w, pt, pl, pb, pr)
      for pool in [cpNone, cpMax2x2, cpMean]:
        check agrees(c, withBias = true, relu = true, pool = pool)
        check agrees(c, withBias = false, relu = false, pool = pool)

  test "random shapes":
    var trials = 0
    while trials < 30:
      let c = shape(rng.rand(1 .. 3), rng.rand(1 .. 20), rng.rand(4 .. 19), rng.rand(2 .. 20),
                    rng.rand(2 .. 40), rng.rand(0 .. 2), rng.rand(0 .. 2), rng.rand(0 .. 2),
                    rng.rand(0 .. 2))
      if not c.winogradApplies: continue
      inc trials
      check agrees(c, withBias = rng.rand(1) == 0, relu = rng.rand(1) == 0,
                   pool = rng.sample([cpNone, cpMax2x2, cpMean]))

  test "a NaN reaches the outputs whose windows hold it, through ReLU and both pools":
    let c = shape(1, 1, 5, 4, 4, 1, 1, 1, 1)
    var x = newSeq[float32](16)
    x[5] = NaN
    let u = transform(c, newSeq[float32](45))
    for isa in availableIsas():
      doAssert setIsa(isa)
      var got = newSeq[float32](5 * 16)
      conv2d(c, x[0].unsafeAddr, u[0].unsafeAddr, nil, got[0].addr, true, winograd = true)
      check isNaN(got[0]) and isNaN(got[5])
      conv2d(c, x[0].unsafeAddr, u[0].unsafeAddr, nil, got[0].addr, true, pool = cpMean,
             winograd = true)
      for ch in 0 ..< 5: check isNaN(got[ch])
    doAssert setIsa(best())
