## 2-D pooling (NCHW, float32): max and average windows with strides, pads and dilations.
## Padding never wins a max (a NaN in the window is skipped, as maxss does); an average divides by the window's in-image count unless
## `countIncludePad` (then by kh*kw, as ONNX's count_include_pad=1).
## Planes (image x channel) are split across the scheduler's threads when there is enough work.

import ../runtime/scheduler

# Operand sizes are checked by the executor (inference/exec.nim) before a kernel runs.
{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

type
  PoolGeometry* = object
    h*, w*, kh*, kw*, oh*, ow*, sh*, sw*, pt*, pl*, dh*, dw*: int

  PoolJob = object
    isMax, countIncludePad: bool
    g: PoolGeometry
    src, dst: ptr UncheckedArray[float32]

const parallelMinOutputs = 1 shl 15

proc poolPlanes(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr PoolJob](ctx)
  let (h, w, kh, kw, oh, ow) = (job.g.h, job.g.w, job.g.kh, job.g.kw, job.g.oh, job.g.ow)
  let (sh, sw, pt, pl, dh, dw) = (job.g.sh, job.g.sw, job.g.pt, job.g.pl, job.g.dh, job.g.dw)
  let isMax = job.isMax
  let s = job.src
  let d = job.dst
  for p in lo ..< hi:
    let sbase = p * h * w
    let dbase = p * oh * ow
    for oy in 0 ..< oh:
      let y0 = oy * sh - pt
      for ox in 0 ..< ow:
        let x0 = ox * sw - pl
        var acc = if isMax: NegInf.float32 else: 0'f32
        var count = 0
        for ky in 0 ..< kh:
          let y = y0 + ky * dh
          if y < 0 or y >= h: continue
          let row = sbase + y * w
          for kx in 0 ..< kw:
            let x = x0 + kx * dw
            if x < 0 or x >= w: continue
            let v = s[row + x]
            if isMax:
              acc = (if v > acc: v else: acc)  # branch-free (maxss): random data mispredicts
            else:
              acc += v
            inc count
        if not isMax:
          let divisor = if job.countIncludePad: kh * kw else: count
          acc = if divisor > 0: acc / float32(divisor) else: 0'f32
        d[dbase + oy * ow + ox] = acc

proc pool2d*(isMax, countIncludePad: bool, planes: int, g: PoolGeometry, src, dst: ptr float32) =
  var job = PoolJob(isMax: isMax, countIncludePad: countIncludePad, g: g,
                    src: cast[ptr UncheckedArray[float32]](src),
                    dst: cast[ptr UncheckedArray[float32]](dst))
  let outputs = planes * g.oh * g.ow * g.kh * g.kw
  if outputs < parallelMinOutputs or planes < 2:
    poolPlanes(0, planes, job.addr)
  else:
    let grain = max(1, planes div (4 * numThreads()))
    parallelFor(0, planes, grain, poolPlanes, job.addr)
