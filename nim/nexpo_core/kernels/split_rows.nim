## The memory-bound kernels (unary maps, softmax, layer norm) split across the scheduler's
## threads when a tensor is large enough to pay for the fork/join: contiguous chunks of at least
## `minChunk` elements, each running the serial kernel on its own part.

import ../runtime/scheduler
import ./common, ./elementwise, ./norm

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

const minChunk = 16384  ## elements (64 KiB of float32) per part at least

type
  RowsJob = object
    kind: int                  ## 0 unary, 1 softmax, 2 log-softmax, 3 layer norm
    unary: UnaryKind
    alpha, beta, eps: float32
    rowLen, axis, inner: int   ## elements per row; softmax's axis and inner sizes
    src, dst, scale, bias: ptr float32
    resid: ptr float32         ## layer norm: nil, or a residual added to src first

proc runRows(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr RowsJob](ctx)
  let rows = hi - lo
  let src = job.src +! (lo * job.rowLen)
  let dst = job.dst +! (lo * job.rowLen)
  case job.kind
  of 0: unaryMap(job.unary, rows * job.rowLen, src, dst, job.alpha, job.beta)
  of 1, 2: softmaxLines(rows, job.axis, job.inner, src, dst, job.kind == 2)
  else:
    let resid = if job.resid == nil: nil else: job.resid +! (lo * job.rowLen)
    layerNormResidual(rows, job.rowLen, src, resid, dst, job.scale, job.bias, job.eps)

proc split(job: var RowsJob, rows: int) =
  let perPart = max(1, minChunk div max(job.rowLen, 1))
  if rows <= perPart or numThreads() <= 1:
    runRows(0, rows, job.addr)
  else:
    parallelFor(0, rows, perPart, runRows, job.addr)

proc unaryMapParallel*(kind: UnaryKind, n: int, src, dst: ptr float32, alpha, beta: float32) =
  const rowLen = 1024  # rows of a flat array: only the part boundaries depend on it
  var job = RowsJob(kind: 0, unary: kind, alpha: alpha, beta: beta, rowLen: rowLen, src: src,
                    dst: dst)
  let full = n div rowLen
  split(job, full)
  if n > full * rowLen:
    unaryMap(kind, n - full * rowLen, src +! (full * rowLen), dst +! (full * rowLen), alpha, beta)

proc softmaxParallel*(outer, axis, inner: int, src, dst: ptr float32, logSoftmax: bool) =
  var job = RowsJob(kind: (if logSoftmax: 2 else: 1), rowLen: axis * inner, axis: axis,
                    inner: inner, src: src, dst: dst)
  split(job, outer)

proc layerNormParallel*(rows, cols: int, src, resid, dst, scale, bias: ptr float32, eps: float32) =
  ## LayerNorm of each row of src (+ resid when not nil: a fused residual Add).
  var job = RowsJob(kind: 3, rowLen: cols, eps: eps, src: src, resid: resid, dst: dst,
                    scale: scale, bias: bias)
  split(job, rows)
