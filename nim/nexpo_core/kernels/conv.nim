## 2-D convolution (NCHW, float32) as im2col + the GEMM of gemm.nim, per image and group.
##
## For image i and group g: out[g] (cout/g x oh*ow) = W[g] (cout/g x K) · cols (K x oh*ow) with
## K = cin/g * kh * kw. A 1x1 kernel with unit stride and no padding reads the input in place
## (cols is the image itself); otherwise `cols` is built in a pooled scratch buffer, with zeros
## where the window overlaps the padding. Bias and ReLU run over each finished image while it is
## in cache. Images are split across the scheduler's threads (each GEMM is then usually small
## enough to stay on its thread).

import std/atomics
import ../errors
import ../runtime/scheduler
import ./common, ./gemm, ./norm, ./pool

# Operand sizes are checked by the executor (inference/exec.nim) before a kernel runs.
{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

type
  ConvShape* = object
    n*, cin*, cout*, groups*: int
    g*: PoolGeometry       ## h, w, kh, kw, oh, ow, strides, pads (top, left), dilations

  ConvJob = object
    c: ConvShape
    src, weight, bias, dst: ptr float32
    relu: bool
    failed: Atomic[bool]

proc pointwise(c: ConvShape): bool =
  c.g.kh == 1 and c.g.kw == 1 and c.g.sh == 1 and c.g.sw == 1 and c.g.pt == 0 and
    c.g.pl == 0 and c.g.oh == c.g.h and c.g.ow == c.g.w

proc scratchElements*(c: ConvShape): int =
  ## Elements of im2col scratch one (image, group) needs (0 for pointwise convolutions).
  if c.pointwise: 0 else: (c.cin div c.groups) * c.g.kh * c.g.kw * c.g.oh * c.g.ow

proc im2col(c: ConvShape, src: ptr UncheckedArray[float32], cols: ptr UncheckedArray[float32]) =
  ## src: the cin/groups planes of one group; cols: K rows of oh*ow.
  let (h, w, kh, kw, oh, ow) = (c.g.h, c.g.w, c.g.kh, c.g.kw, c.g.oh, c.g.ow)
  let (sh, sw, pt, pl, dh, dw) = (c.g.sh, c.g.sw, c.g.pt, c.g.pl, c.g.dh, c.g.dw)
  let plane = oh * ow
  var row = 0
  for ch in 0 ..< c.cin div c.groups:
    for ky in 0 ..< kh:
      for kx in 0 ..< kw:
        let dstRow = row * plane
        for oy in 0 ..< oh:
          let y = oy * sh - pt + ky * dh
          let d = dstRow + oy * ow
          if y < 0 or y >= h:
            for ox in 0 ..< ow: cols[d + ox] = 0'f32
            continue
          let srow = ch * h * w + y * w
          let x0 = kx * dw - pl
          if sw == 1:  # zeros left of the image, one copy, zeros right of it
            let lo = min(ow, max(0, -x0))
            let hi = max(lo, min(ow, w - x0))
            for ox in 0 ..< lo: cols[d + ox] = 0'f32
            if hi > lo:
              copyMem(cols[d + lo].addr, src[srow + x0 + lo].addr, (hi - lo) * sizeof(float32))
            for ox in hi ..< ow: cols[d + ox] = 0'f32
          else:
            for ox in 0 ..< ow:
              let x = ox * sw + x0
              cols[d + ox] = (if x < 0 or x >= w: 0'f32 else: src[srow + x])
        inc row

proc convImages(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr ConvJob](ctx)
  let c = job.c
  let cinG = c.cin div c.groups
  let coutG = c.cout div c.groups
  let k = cinG * c.g.kh * c.g.kw
  let plane = c.g.oh * c.g.ow
  var scratch: pointer = nil
  if not c.pointwise:
    scratch = acquireBuffer(scratchElements(c) * sizeof(float32))
    if scratch == nil:
      job.failed.store(true, moRelaxed)
      return
  try:
    for i in lo ..< hi:
      for grp in 0 ..< c.groups:
        let input = job.src +! ((i * c.cin + grp * cinG) * c.g.h * c.g.w)
        var cols = input
        if scratch != nil:
          im2col(c, cast[ptr UncheckedArray[float32]](input),
                 cast[ptr UncheckedArray[float32]](scratch))
          cols = cast[ptr float32](scratch)
        let w = job.weight +! (grp * coutG * k)
        let output = job.dst +! ((i * c.cout + grp * coutG) * plane)
        gemmStrided[float32](coutG, plane, k, Operand[float32](base: w, rs: k, cs: 1),
                             Operand[float32](base: cols, rs: plane, cs: 1), output, plane)
      if job.bias != nil or job.relu:
        channelBiasAct(1, c.cout, plane, job.dst +! (i * c.cout * plane), job.bias, job.relu)
  except CatchableError:
    job.failed.store(true, moRelaxed)
  releaseBuffer(scratch)

proc conv2d*(c: ConvShape, src, weight, bias, dst: ptr float32, relu: bool) =
  var job = ConvJob(c: c, src: src, weight: weight, bias: bias, dst: dst, relu: relu)
  let work = c.g.oh * c.g.ow * c.cout * c.cin * c.g.kh * c.g.kw div c.groups
  if c.n < 2 or work < 1 shl 16:
    convImages(0, c.n, job.addr)
  else:
    parallelFor(0, c.n, 1, convImages, job.addr)
  if job.failed.load(moRelaxed):
    fail(stNoMem, "Conv: out of memory for the im2col buffers")
