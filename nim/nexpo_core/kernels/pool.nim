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

const
  parallelMinOutputs = 1 shl 15
  lowest = -3.4028235e38'f32  ## a max starts here, as onnxruntime's (a window all padding gives it)

template windowAt(job: ptr PoolJob, s: ptr UncheckedArray[float32], sbase, oy, ox: int): float32 =
  ## One output element, every tap bounds-checked (the padded border).
  let g = job.g
  var acc = if job.isMax: lowest else: 0'f32
  var count = 0
  for ky in 0 ..< g.kh:
    let y = oy * g.sh - g.pt + ky * g.dh
    if y < 0 or y >= g.h: continue
    for kx in 0 ..< g.kw:
      let x = ox * g.sw - g.pl + kx * g.dw
      if x < 0 or x >= g.w: continue
      let v = s[sbase + y * g.w + x]
      if job.isMax: acc = (if v > acc: v else: acc)  # branch-free (maxss): data mispredicts
      else: acc += v
      inc count
  if not job.isMax:
    let divisor = if job.countIncludePad: g.kh * g.kw else: count
    acc = if divisor > 0: acc / float32(divisor) else: 0'f32
  acc

proc poolPlanes(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [],
    codegenDecl: "__attribute__((optimize(\"no-trapping-math\"))) $# $#$#".} =
  ## Per output row: the columns whose windows lie inside the image run tap by tap over the
  ## whole row segment (loops without bounds checks, which vectorise: no-trapping-math lets GCC
  ## turn the max into a select, as in vmath.nim); the border columns and rows whose windows
  ## leave the image take `windowAt`.
  let job = cast[ptr PoolJob](ctx)
  let (h, w, kh, kw, oh, ow) = (job.g.h, job.g.w, job.g.kh, job.g.kw, job.g.oh, job.g.ow)
  let (sh, sw, pt, pl, dh, dw) = (job.g.sh, job.g.sw, job.g.pt, job.g.pl, job.g.dh, job.g.dw)
  let isMax = job.isMax
  let s = job.src
  let d = job.dst
  # columns ox in [oxLo, oxHi) have every tap inside the row
  let oxLo = min(ow, max(0, (pl + sw - 1) div sw))
  let lastStart = w - 1 - (kw - 1) * dw + pl  # largest ox*sw with the last tap inside
  let oxHi = if lastStart < 0: oxLo else: max(oxLo, min(ow, lastStart div sw + 1))
  let inv = 1'f32 / float32(kh * kw)
  for p in lo ..< hi:
    let sbase = p * h * w
    let dbase = p * oh * ow
    for oy in 0 ..< oh:
      let y0 = oy * sh - pt
      let rowInside = y0 >= 0 and y0 + (kh - 1) * dh < h
      let o = cast[ptr UncheckedArray[float32]](d[dbase + oy * ow].addr)
      if not rowInside or oxHi <= oxLo:
        for ox in 0 ..< ow: o[ox] = windowAt(job, s, sbase, oy, ox)
        continue
      for ox in 0 ..< oxLo: o[ox] = windowAt(job, s, sbase, oy, ox)
      for ox in oxHi ..< ow: o[ox] = windowAt(job, s, sbase, oy, ox)
      let first = oxLo * sw - pl
      for ox in oxLo ..< oxHi: o[ox] = (if isMax: lowest else: 0'f32)
      for ky in 0 ..< kh:
        let row = cast[ptr UncheckedArray[float32]](s[sbase + (y0 + ky * dh) * w + first].addr)
        if kw == 2 and dw == 1 and sw == 2:  # the common 2x2/2 window: both taps in one loop,
          for ox in oxLo ..< oxHi:           # an interleaved load the compiler vectorises
            let a = row[(ox - oxLo) * 2]
            let b = row[(ox - oxLo) * 2 + 1]
            if isMax:
              var m = o[ox]
              if a > m: m = a
              if b > m: m = b
              o[ox] = m
            else:
              o[ox] = o[ox] + (a + b)
          continue
        for kx in 0 ..< kw:
          let tap = kx * dw
          if isMax:
            for ox in oxLo ..< oxHi:
              let v = row[(ox - oxLo) * sw + tap]
              var m = o[ox]
              if v > m: m = v
              o[ox] = m
          else:
            for ox in oxLo ..< oxHi: o[ox] = o[ox] + row[(ox - oxLo) * sw + tap]
      if not isMax:
        for ox in oxLo ..< oxHi: o[ox] = o[ox] * inv

template pool2x2Body(job: ptr PoolJob, lo, hi: int, isMax: static bool) =
  let (h, w, oh, ow) = (job.g.h, job.g.w, job.g.oh, job.g.ow)
  for p in lo ..< hi:
    for oy in 0 ..< oh:
      let r0 = cast[ptr UncheckedArray[float32]](job.src[p * h * w + 2 * oy * w].addr)
      let r1 = cast[ptr UncheckedArray[float32]](job.src[p * h * w + (2 * oy + 1) * w].addr)
      let o = cast[ptr UncheckedArray[float32]](job.dst[(p * oh + oy) * ow].addr)
      for ox in 0 ..< ow:
        let (a, b, c, d) = (r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1])
        when isMax:  # the taps in the order of poolPlanes: the same result, NaN included
          var m = lowest
          if a > m: m = a
          if b > m: m = b
          if c > m: m = c
          if d > m: m = d
          o[ox] = m
        else:
          o[ox] = ((a + b) + (c + d)) * 0.25'f32

proc maxPool2x2(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [],
    codegenDecl: "__attribute__((optimize(\"no-trapping-math\"))) $# $#$#".} =
  pool2x2Body(cast[ptr PoolJob](ctx), lo, hi, true)

proc avgPool2x2(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [],
    codegenDecl: "__attribute__((optimize(\"no-trapping-math\"))) $# $#$#".} =
  pool2x2Body(cast[ptr PoolJob](ctx), lo, hi, false)

proc isPlain2x2(g: PoolGeometry): bool =
  ## The common 2x2 window of stride 2 with no padding: every window inside the image.
  g.kh == 2 and g.kw == 2 and g.sh == 2 and g.sw == 2 and g.pt == 0 and g.pl == 0 and
    g.dh == 1 and g.dw == 1 and 2 * g.oh <= g.h and 2 * g.ow <= g.w

proc pool2d*(isMax, countIncludePad: bool, planes: int, g: PoolGeometry, src, dst: ptr float32) =
  var job = PoolJob(isMax: isMax, countIncludePad: countIncludePad, g: g,
                    src: cast[ptr UncheckedArray[float32]](src),
                    dst: cast[ptr UncheckedArray[float32]](dst))
  let outputs = planes * g.oh * g.ow * g.kh * g.kw
  let fn: proc (lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
    if not g.isPlain2x2: poolPlanes
    elif isMax: maxPool2x2
    else: avgPool2x2
  if outputs < parallelMinOutputs or planes < 2:
    fn(0, planes, job.addr)
  else:
    let grain = max(1, planes div (4 * numThreads()))
    parallelFor(0, planes, grain, fn, job.addr)
