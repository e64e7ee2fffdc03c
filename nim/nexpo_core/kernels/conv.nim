## 2-D convolution (NCHW, float32) as im2col + the GEMM of gemm.nim, per image and group.
##
## For image i and group g: out[g] (cout/g x oh*ow) = W[g] (cout/g x K) · cols (K x oh*ow) with
## K = cin/g * kh * kw. A 1x1 kernel with unit stride and no padding reads the input in place
## (cols is the image itself); otherwise `cols` is built in a pooled scratch buffer, with zeros
## where the window overlaps the padding. Bias and ReLU run over each finished image while it is
## in cache. Images are split across the scheduler's threads (each GEMM is then usually small
## enough to stay on its thread). With fewer images than threads (batch 1), each image's output
## rows are split instead: every part builds its own columns of `cols` and runs its GEMM on them.

import std/atomics
import ../config, ../cpu, ../errors, ../targets
import ../runtime/scheduler
import ./common, ./gemm, ./norm, ./conv_shape, ./conv_direct, ./conv_winograd

export conv_shape, conv_direct.packedBlock, conv_direct.packedWeightElements,
  conv_winograd.winoBlock, conv_winograd.winogradApplies, conv_winograd.winogradWeightElements

# Operand sizes are checked by the executor (inference/exec.nim) before a kernel runs.
{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

type
  ConvJob = object
    c: ConvShape
    src, weight, bias, dst: ptr float32
    relu: bool
    failed: Atomic[bool]
    image: int             ## row split: the image, the shared im2col buffer, rows per part
    scratch: ptr float32
    padded: ptr float32    ## the image's input as im2col reads it
    rowsPerPart: int

const rowSplitMinWork = 1 shl 17  ## multiply-adds of one image below which it stays on one thread

proc scratchElements*(c: ConvShape): int =
  ## Elements of scratch one (image, group) needs: the im2col matrix, then the padded input
  ## when there is padding (0 for pointwise convolutions).
  if c.pointwise: return 0
  result = (c.cin div c.groups) * c.g.kh * c.g.kw * c.g.oh * c.g.ow
  if c.needsPadding:
    let (hp, wp) = c.paddedDims
    result += (c.cin div c.groups) * hp * wp

proc padInput(c: ConvShape, src, dst: ptr UncheckedArray[float32]) =
  ## One group's input planes into dst (hp x wp each) with zeros around them.
  let (hp, wp) = c.paddedDims
  let (h, w, pt, pl) = (c.g.h, c.g.w, c.g.pt, c.g.pl)
  zeroMem(dst[0].addr, (c.cin div c.groups) * hp * wp * sizeof(float32))
  for ch in 0 ..< c.cin div c.groups:
    for y in 0 ..< h:
      copyMem(dst[(ch * hp + y + pt) * wp + pl].addr, src[(ch * h + y) * w].addr,
              w * sizeof(float32))

template im2colBody(c: ConvShape, src: ptr UncheckedArray[float32], hp, wp: int,
                    cols: ptr UncheckedArray[float32], oy0, oy1: int) =
  ## src: the cin/groups planes (hp x wp, padded: every window inside) of one group; cols: K rows
  ## of oh*ow, of which the columns of output rows oy0 ..< oy1 are written. The pieces are a few
  ## dozen elements: inline loops compiled for the ISA path (not memcpy calls).
  let (kh, kw, oh, ow) = (c.g.kh, c.g.kw, c.g.oh, c.g.ow)
  let (sh, sw, dh, dw) = (c.g.sh, c.g.sw, c.g.dh, c.g.dw)
  let plane = oh * ow
  var row = 0
  for ch in 0 ..< c.cin div c.groups:
    for ky in 0 ..< kh:
      for kx in 0 ..< kw:
        let dstRow = row * plane
        for oy in oy0 ..< oy1:
          let d = dstRow + oy * ow
          let srow = (ch * hp + oy * sh + ky * dh) * wp + kx * dw
          if sw == 1:
            for ox in 0 ..< ow: cols[d + ox] = src[srow + ox]
          else:
            for ox in 0 ..< ow: cols[d + ox] = src[srow + ox * sw]
        inc row

const noCallsPragma = "optimize(\"no-tree-loop-distribute-patterns\")"

proc im2colPortable(c: ConvShape, src: ptr UncheckedArray[float32], hp, wp: int,
                    cols: ptr UncheckedArray[float32], oy0, oy1: int) {.
    codegenDecl: "__attribute__((" & noCallsPragma & ")) $# $#$#".} =
  im2colBody(c, src, hp, wp, cols, oy0, oy1)

when x86SimdEnabled:
  proc im2colAvx2(c: ConvShape, src: ptr UncheckedArray[float32], hp, wp: int,
                    cols: ptr UncheckedArray[float32], oy0, oy1: int) {.
      codegenDecl: "__attribute__((target(\"" & avx2Targets & "\"), " & noCallsPragma & ")) $# $#$#".} =
    im2colBody(c, src, hp, wp, cols, oy0, oy1)

  proc im2colAvx512(c: ConvShape, src: ptr UncheckedArray[float32], hp, wp: int,
                    cols: ptr UncheckedArray[float32], oy0, oy1: int) {.
      codegenDecl: "__attribute__((target(\"" & avx512Targets & "\"), " & noCallsPragma & ")) $# $#$#".} =
    im2colBody(c, src, hp, wp, cols, oy0, oy1)

proc im2col(c: ConvShape, src, scratch: ptr float32, oy0, oy1: int) =
  ## Columns of output rows oy0 ..< oy1 into scratch's im2col matrix; `src` is the padded
  ## input (`prepareInput`).
  let (hp, wp) = if c.needsPadding: c.paddedDims else: (c.g.h, c.g.w)
  let s = cast[ptr UncheckedArray[float32]](src)
  let cols = cast[ptr UncheckedArray[float32]](scratch)
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: im2colAvx512(c, s, hp, wp, cols, oy0, oy1)
    of isaAvx2: im2colAvx2(c, s, hp, wp, cols, oy0, oy1)
    of isaPortable: im2colPortable(c, s, hp, wp, cols, oy0, oy1)
  else:
    im2colPortable(c, s, hp, wp, cols, oy0, oy1)

proc prepareInput(c: ConvShape, input, scratch: ptr float32): ptr float32 =
  ## The input im2col reads: one group's planes, zero-padded into scratch (after the im2col
  ## matrix) when the convolution pads.
  if not c.needsPadding: return input
  let padded = scratch +! ((c.cin div c.groups) * c.g.kh * c.g.kw * c.g.oh * c.g.ow)
  padInput(c, cast[ptr UncheckedArray[float32]](input), cast[ptr UncheckedArray[float32]](padded))
  padded

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
          let sc = cast[ptr float32](scratch)
          im2col(c, prepareInput(c, input, sc), sc, 0, c.g.oh)
          cols = sc
        let w = job.weight +! (grp * coutG * k)
        let output = job.dst +! ((i * c.cout + grp * coutG) * plane)
        gemmStrided[float32](coutG, plane, k, Operand[float32](base: w, rs: k, cs: 1),
                             Operand[float32](base: cols, rs: plane, cs: 1), output, plane)
      if job.bias != nil or job.relu:
        channelBiasAct(1, c.cout, plane, job.dst +! (i * c.cout * plane), job.bias, job.relu)
  except CatchableError:
    job.failed.store(true, moRelaxed)
  releaseBuffer(scratch)

proc convRowParts(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  ## Output rows [part * rowsPerPart, ..) of one image (groups = 1): im2col of those columns,
  ## their GEMM, bias and ReLU.
  let job = cast[ptr ConvJob](ctx)
  let c = job.c
  let k = c.cin * c.g.kh * c.g.kw
  let plane = c.g.oh * c.g.ow
  let input = job.padded
  let output = job.dst +! (job.image * c.cout * plane)
  try:
    for part in lo ..< hi:
      let oy0 = part * job.rowsPerPart
      let oy1 = min(c.g.oh, oy0 + job.rowsPerPart)
      if oy0 >= oy1: continue
      var cols = input
      if job.scratch != nil:
        im2col(c, input, job.scratch, oy0, oy1)
        cols = job.scratch
      let j0 = oy0 * c.g.ow
      let width = (oy1 - oy0) * c.g.ow
      gemmStrided[float32](c.cout, width, k, Operand[float32](base: job.weight, rs: k, cs: 1),
                           Operand[float32](base: cols +! j0, rs: plane, cs: 1), output +! j0,
                           plane)
      if job.bias != nil or job.relu:
        biasActRows(c.cout, width, plane, output +! j0, job.bias, job.relu)
  except CatchableError:
    job.failed.store(true, moRelaxed)

proc conv2d*(c: ConvShape, src, weight, bias, dst: ptr float32, relu: bool, packed = false,
             pool = cpNone, winograd = false) =
  ## `packed`: the weights are in the direct kernel's layout (conv_direct.nim; needs
  ## `c.directApplies`), else OIHW for im2col + GEMM. `winograd`: Winograd-transformed
  ## (conv_winograd.nim; needs `c.winogradApplies`). `pool` (packed or winograd only): dst gets
  ## the 2x2/2 max pool of the output, or each plane's mean.
  if winograd:
    winogradConv(c, src, weight, bias, dst, relu, pool)
    return
  if packed:
    directConv(c, src, weight, bias, dst, relu, pool)
    return
  var job = ConvJob(c: c, src: src, weight: weight, bias: bias, dst: dst, relu: relu)
  let work = c.g.oh * c.g.ow * c.cout * c.cin * c.g.kh * c.g.kw div c.groups
  let threads = numThreads()
  if c.n < threads and threads > 1 and c.groups == 1 and work >= rowSplitMinWork and
      c.g.oh >= 2:
    # fewer images than threads: split each image's output rows (>= 64 columns a part)
    let parts = max(1, min(threads, c.g.oh * c.g.ow div 64))
    job.rowsPerPart = (c.g.oh + parts - 1) div parts
    if not c.pointwise:
      job.scratch = cast[ptr float32](acquireBuffer(scratchElements(c) * sizeof(float32)))
      if job.scratch == nil: fail(stNoMem, "Conv: out of memory for the im2col buffers")
    for i in 0 ..< c.n:
      job.image = i
      job.padded = src +! (i * c.cin * c.g.h * c.g.w)
      if job.scratch != nil: job.padded = prepareInput(c, job.padded, job.scratch)
      parallelFor(0, (c.g.oh + job.rowsPerPart - 1) div job.rowsPerPart, 1, convRowParts,
                  job.addr)
    releaseBuffer(job.scratch)
  elif c.n < 2 or work < 1 shl 16:
    convImages(0, c.n, job.addr)
  else:
    parallelFor(0, c.n, 1, convImages, job.addr)
  if job.failed.load(moRelaxed):
    fail(stNoMem, "Conv: out of memory for the im2col buffers")
