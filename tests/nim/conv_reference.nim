## The reference convolution of the Nim conv tests: a direct loop over every output, input
## channel and kernel tap (groups, pads, strides, dilations), optional bias (empty = none) and
## ReLU (NaN stays NaN, as the kernels' ReLU keeps it).

import nexpo_core/kernels/conv

proc naiveConv*(c: ConvShape, x, w, b: seq[float32], relu: bool): seq[float32] =
  let g = c.g
  let (cinG, coutG) = (c.cin div c.groups, c.cout div c.groups)
  result = newSeq[float32](c.n * c.cout * g.oh * g.ow)
  for i in 0 ..< c.n:
    for co in 0 ..< c.cout:
      let grp = co div coutG
      for oy in 0 ..< g.oh:
        for ox in 0 ..< g.ow:
          var acc = if b.len > 0: b[co] else: 0'f32
          for ci in 0 ..< cinG:
            for ky in 0 ..< g.kh:
              for kx in 0 ..< g.kw:
                let y = oy * g.sh - g.pt + ky * g.dh
                let xx = ox * g.sw - g.pl + kx * g.dw
                if y >= 0 and y < g.h and xx >= 0 and xx < g.w:
                  acc += x[((i * c.cin + grp * cinG + ci) * g.h + y) * g.w + xx] *
                         w[((co * cinG + ci) * g.kh + ky) * g.kw + kx]
          result[((i * c.cout + co) * g.oh + oy) * g.ow + ox] =
            (if relu and acc < 0: 0'f32 else: acc)

proc maxPool2x2*(c: ConvShape, y: seq[float32]): seq[float32] =
  ## MaxPool 2x2 stride 2 over each plane of `y` (an odd last row/column is dropped).
  let (oh, ow) = (c.g.oh, c.g.ow)
  let (ph, pw) = (oh div 2, ow div 2)
  result = newSeq[float32](c.n * c.cout * ph * pw)
  for p in 0 ..< c.n * c.cout:
    for r in 0 ..< ph:
      for q in 0 ..< pw:
        var m = -3.4028235e38'f32
        for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)]:
          let v = y[(p * oh + 2 * r + dy) * ow + 2 * q + dx]
          if v > m: m = v
        result[(p * ph + r) * pw + q] = m

proc planeMeans*(c: ConvShape, y: seq[float32]): seq[float32] =
  ## GlobalAveragePool: the mean of each plane, summed in float64.
  let plane = c.g.oh * c.g.ow
  result = newSeq[float32](c.n * c.cout)
  for p in 0 ..< c.n * c.cout:
    var sum = 0.0
    for i in 0 ..< plane: sum += float(y[p * plane + i])
    result[p] = float32(sum / float(plane))

proc pooled*(c: ConvShape, y: seq[float32], pool: ConvPool): seq[float32] =
  ## `y` through the pool a kernel fuses into its store.
  case pool
  of cpNone: y
  of cpMax2x2: maxPool2x2(c, y)
  of cpMean: planeMeans(c, y)
