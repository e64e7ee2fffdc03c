## 2-D pooling (NCHW, float32): max and average windows with strides, pads and dilations.
## Padding never wins a max; an average divides by the window's in-image count unless
## `countIncludePad` (then by kh*kw, as ONNX's count_include_pad=1).

type
  PoolGeometry* = object
    h*, w*, kh*, kw*, oh*, ow*, sh*, sw*, pt*, pl*, dh*, dw*: int

proc pool2d*(isMax, countIncludePad: bool, planes: int, g: PoolGeometry, src, dst: ptr float32) =
  let s = cast[ptr UncheckedArray[float32]](src)
  let d = cast[ptr UncheckedArray[float32]](dst)
  for p in 0 ..< planes:
    let sbase = p * g.h * g.w
    let dbase = p * g.oh * g.ow
    for oy in 0 ..< g.oh:
      for ox in 0 ..< g.ow:
        var acc = if isMax: NegInf.float32 else: 0'f32
        var count = 0
        for ky in 0 ..< g.kh:
          let y = oy * g.sh - g.pt + ky * g.dh
          if y < 0 or y >= g.h: continue
          for kx in 0 ..< g.kw:
            let x = ox * g.sw - g.pl + kx * g.dw
            if x < 0 or x >= g.w: continue
            let v = s[sbase + y * g.w + x]
            if isMax:
              if v > acc or v != v: acc = v
            else:
              acc += v
            inc count
        if not isMax:
          let divisor = if countIncludePad: g.kh * g.kw else: count
          acc = if divisor > 0: acc / float32(divisor) else: 0'f32
        d[dbase + oy * g.ow + ox] = acc
