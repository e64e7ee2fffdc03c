## The direct convolution kernel (kernels/conv_direct.nim) against a naive loop on every ISA path
## this CPU has: widths around the vector widths (partial last vectors), output channels not a
## multiple of the tile (zero-padded blocks), row strides, dilations, groups, a 1x1 kernel with
## padding, bias or none, ReLU or none, NaN through ReLU, batch 1 (items split) and batch > 1,
## the fused 2x2/2 max pool (odd output sizes drop the last row/column, as MaxPool does) and the
## fused global average pool (partial vectors and rows past the last in its sums).

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

proc pack(c: ConvShape, w: seq[float32]): seq[float32] =
  ## The planner's layout (nexpo/inference/_ops_nn.py `_pack_direct`).
  let coutG = c.cout div c.groups
  let taps = (c.cin div c.groups) * c.g.kh * c.g.kw
  let blocks = (coutG + packedBlock - 1) div packedBlock
  result = newSeq[float32](packedWeightElements(c))
  for grp in 0 ..< c.groups:
    for co in 0 ..< coutG:
      for t in 0 ..< taps:
        let (cb, lane) = (co div packedBlock, co mod packedBlock)
        result[((grp * blocks + cb) * taps + t) * packedBlock + lane] =
          w[(grp * coutG + co) * taps + t]

proc shape(n, cin, cout, groups, h, w, kh, kw, sh, pt, pl, dh, dw: int): ConvShape =
  result = ConvShape(n: n, cin: cin, cout: cout, groups: groups)
  result.g = PoolGeometry(h: h, w: w, kh: kh, kw: kw, sh: sh, sw: 1, pt: pt, pl: pl,
                          dh: dh, dw: dw)
  result.g.oh = (h + 2 * pt - (kh - 1) * dh - 1) div sh + 1
  result.g.ow = (w + 2 * pl - (kw - 1) * dw - 1) + 1

proc agrees(c: ConvShape, withBias, relu: bool, pool = cpNone): bool =
  doAssert c.directApplies
  let x = randomSeq(c.n * c.cin * c.g.h * c.g.w)
  let w = randomSeq(c.cout * (c.cin div c.groups) * c.g.kh * c.g.kw)
  let b = if withBias: randomSeq(c.cout) else: @[]
  let y = naiveConv(c, x, w, b, relu)
  let want = case pool
             of cpMax2x2: maxPool2x2(c, y)
             of cpMean: planeMeans(c, y)
             of cpNone: y
  let packed = pack(c, w)
  result = true
  for isa in availableIsas():
    doAssert setIsa(isa)
    var got = newSeq[float32](want.len)
    conv2d(c, x[0].unsafeAddr, packed[0].unsafeAddr, (if withBias: b[0].unsafeAddr else: nil),
           got[0].addr, relu, packed = true, pool = pool)
    for i in 0 ..< got.len:
      if abs(got[i] - want[i]) > 1e-4 * (1 + abs(want[i])):
        echo "isa ", isa, " ", c, " at ", i, ": ", got[i], " vs ", want[i]
        result = false
        break
  doAssert setIsa(best())

suite "direct convolution":
  test "fixed edge cases: vector-width boundaries, channel tails, 1x1 padded, stride, dilation":
    for (n, cin, cout, groups, h, w, kh, kw, sh, pt, pl, dh, dw) in [
        (1, 3, 16, 1, 32, 32, 3, 3, 1, 1, 1, 1, 1),   # the benchmark CNN's first layer
        (2, 16, 32, 1, 16, 16, 3, 3, 1, 1, 1, 1, 1),  # its second
        (1, 5, 13, 1, 17, 17, 3, 3, 1, 1, 1, 1, 1),   # 17 columns: one full + one 1-lane vector
        (2, 4, 4, 1, 9, 7, 3, 3, 1, 0, 0, 1, 1),      # no padding, 5 columns
        (1, 6, 9, 1, 33, 15, 3, 3, 2, 1, 1, 1, 1),    # stride 2 in rows
        (1, 8, 12, 1, 12, 20, 3, 3, 1, 2, 2, 2, 2),   # dilation 2
        (1, 3, 8, 1, 5, 31, 1, 1, 1, 1, 1, 1, 1),     # 1x1 kernel with padding
        (3, 6, 12, 3, 10, 10, 3, 3, 1, 1, 1, 1, 1),   # 3 groups of 2 -> 4
        (1, 8, 40, 2, 11, 24, 5, 5, 1, 2, 2, 1, 1),   # 5x5, groups, 20 channels a group
        (1, 64, 64, 1, 8, 8, 3, 3, 1, 1, 1, 1, 1)]:   # batch 1, enough work to split items
      let c = shape(n, cin, cout, groups, h, w, kh, kw, sh, pt, pl, dh, dw)
      check agrees(c, withBias = true, relu = true)
      check agrees(c, withBias = false, relu = false)
      check agrees(c, withBias = true, relu = true, pool = cpMean)
      check agrees(c, withBias = false, relu = false, pool = cpMean)
      if c.g.oh >= 2 and c.g.ow >= 2:
        check agrees(c, withBias = true, relu = true, pool = cpMax2x2)
        check agrees(c, withBias = false, relu = false, pool = cpMax2x2)

  test "random shapes":
    for trial in 0 ..< 30:
      let groups = rng.rand(1 .. 2)
      let c = shape(rng.rand(1 .. 3), groups * rng.rand(1 .. 5), groups * rng.rand(4 .. 19), groups,
                    rng.rand(3 .. 12), rng.rand(3 .. 40), rng.rand(1 .. 3), rng.rand(1 .. 3),
                    rng.rand(1 .. 2), rng.rand(0 .. 2), rng.rand(0 .. 2), rng.rand(1 .. 2),
                    rng.rand(1 .. 2))
      if c.g.oh < 1 or c.g.ow < 1 or not c.directApplies: continue
      let pool = if c.g.oh >= 2 and c.g.ow >= 2: rng.sample([cpNone, cpMax2x2, cpMean])
                 else: rng.sample([cpNone, cpMean])
      check agrees(c, withBias = rng.rand(1) == 0, relu = rng.rand(1) == 0, pool = pool)

  test "ReLU keeps a NaN; the packing's zero channels are never stored":
    let c = shape(1, 1, 5, 1, 4, 4, 3, 3, 1, 1, 1, 1, 1)
    var x = newSeq[float32](16)
    x[5] = NaN
    let w = pack(c, newSeq[float32](45))
    for isa in availableIsas():
      doAssert setIsa(isa)
      var got = newSeq[float32](5 * 16 + 8)
      for v in got.mitems: v = 7
      conv2d(c, x[0].unsafeAddr, w[0].unsafeAddr, nil, got[0].addr, true, packed = true)
      check isNaN(got[0]) and isNaN(got[5]) and got[15] == 0
      check got[80] == 7 and got[87] == 7  # nothing past the output
      for v in got.mitems: v = 7
      conv2d(c, x[0].unsafeAddr, w[0].unsafeAddr, nil, got[0].addr, true, packed = true,
             pool = cpMean)
      for ch in 0 ..< 5: check isNaN(got[ch])  # every channel's plane has a NaN: its mean too
      check got[5] == 7
    doAssert setIsa(best())
