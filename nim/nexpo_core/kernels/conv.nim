## 2-D convolution (NCHW, float32) as im2col + the GEMM of gemm.nim, per image and group.
##
## For image i and group g: out[g] (cout/g x oh*ow) = W[g] (cout/g x K) · cols (K x oh*ow) with
## K = cin/g * kh * kw. A 1x1 kernel with unit stride and no padding reads the input in place
## (cols is the image itself); otherwise `cols` is built in the caller's scratch buffer, with
## zeros where the window overlaps the padding. Bias and ReLU run over the finished image.

import ./common, ./gemm, ./norm, ./pool

type
  ConvShape* = object
    n*, cin*, cout*, groups*: int
    g*: PoolGeometry       ## h, w, kh, kw, oh, ow, strides, pads (top, left), dilations

proc pointwise(c: ConvShape): bool =
  c.g.kh == 1 and c.g.kw == 1 and c.g.sh == 1 and c.g.sw == 1 and c.g.pt == 0 and
    c.g.pl == 0 and c.g.oh == c.g.h and c.g.ow == c.g.w

proc scratchElements*(c: ConvShape): int =
  ## Elements of im2col scratch one (image, group) needs (0 for pointwise convolutions).
  if c.pointwise: 0 else: (c.cin div c.groups) * c.g.kh * c.g.kw * c.g.oh * c.g.ow

proc im2col(c: ConvShape, src: ptr UncheckedArray[float32], cols: ptr UncheckedArray[float32]) =
  ## src: the cin/groups planes of one group; cols: K rows of oh*ow.
  let g = c.g
  let plane = g.oh * g.ow
  var row = 0
  for ch in 0 ..< c.cin div c.groups:
    for ky in 0 ..< g.kh:
      for kx in 0 ..< g.kw:
        let dstRow = row * plane
        for oy in 0 ..< g.oh:
          let y = oy * g.sh - g.pt + ky * g.dh
          let d = dstRow + oy * g.ow
          if y < 0 or y >= g.h:
            for ox in 0 ..< g.ow: cols[d + ox] = 0'f32
            continue
          let srow = ch * g.h * g.w + y * g.w
          for ox in 0 ..< g.ow:
            let x = ox * g.sw - g.pl + kx * g.dw
            cols[d + ox] = (if x < 0 or x >= g.w: 0'f32 else: src[srow + x])
        inc row

proc conv2d*(c: ConvShape, src, weight, bias, dst, scratch: ptr float32, relu: bool) =
  let g = c.g
  let cinG = c.cin div c.groups
  let coutG = c.cout div c.groups
  let k = cinG * g.kh * g.kw
  let plane = g.oh * g.ow
  for i in 0 ..< c.n:
    for grp in 0 ..< c.groups:
      let input = src +! ((i * c.cin + grp * cinG) * g.h * g.w)
      var cols = input
      if not c.pointwise:
        im2col(c, cast[ptr UncheckedArray[float32]](input),
               cast[ptr UncheckedArray[float32]](scratch))
        cols = scratch
      let w = weight +! (grp * coutG * k)
      let output = dst +! ((i * c.cout + grp * coutG) * plane)
      gemmStrided[float32](coutG, plane, k, Operand[float32](base: w, rs: k, cs: 1),
                           Operand[float32](base: cols, rs: plane, cs: 1), output, plane)
  if bias != nil or relu:
    channelBiasAct(c.n, c.cout, plane, dst, bias, relu)
