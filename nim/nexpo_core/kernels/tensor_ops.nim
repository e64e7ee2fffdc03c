## Data-movement and reduction kernels of the inference engine.
##
## - `stridedCopy`: out[idx] = in[sum idx_d * sin_d] with its own output strides: Transpose,
##   Slice, Expand, Tile (viewed at twice the rank), Concat and Split are all this one loop
## - `gatherAxis`: Gather along one axis with int64 indices (negative ones count from the end;
##   out-of-range ones fail: never a read outside the tensor)
## - `reduceLines`: sum/mean/max/min/argmax/argmin along the middle axis of [outer, r, inner]

import ../errors
import ../runtime/scheduler

# Operand sizes are checked by the executor (inference/exec.nim) before a kernel runs.
{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

const maxCopyRank* = 8

type
  CopyDims* = array[maxCopyRank, int]
  ReduceKind* = enum
    rSum = 0, rMean, rMax, rMin, rArgMax, rArgMin, rArgMaxLast, rArgMinLast

proc stridedCopy*(elemSize, rank: int, shape, sin, sout: CopyDims, src, dst: pointer) =
  let s = cast[ptr UncheckedArray[uint8]](src)
  let d = cast[ptr UncheckedArray[uint8]](dst)
  var total = 1
  for i in 0 ..< rank: total *= shape[i]
  if total == 0: return
  if rank == 0:
    copyMem(dst, src, elemSize)
    return
  var idx: CopyDims
  let last = rank - 1
  let inner = shape[last]
  let innerContiguous = sin[last] == 1 and sout[last] == 1
  var done = 0
  while done < total:
    var si = 0
    var di = 0
    for k in 0 ..< last:
      si += idx[k] * sin[k]
      di += idx[k] * sout[k]
    if innerContiguous:
      copyMem(d[di * elemSize].addr, s[si * elemSize].addr, inner * elemSize)
    elif elemSize == 4:
      let s4 = cast[ptr UncheckedArray[uint32]](src)
      let d4 = cast[ptr UncheckedArray[uint32]](dst)
      for t in 0 ..< inner: d4[di + t * sout[last]] = s4[si + t * sin[last]]
    else:
      for t in 0 ..< inner:
        copyMem(d[(di + t * sout[last]) * elemSize].addr, s[(si + t * sin[last]) * elemSize].addr,
                elemSize)
    done += inner
    var k = last - 1
    while k >= 0:
      inc idx[k]
      if idx[k] < shape[k]: break
      idx[k] = 0
      dec k

proc gatherAxis*(elemSize, outer, axisDim, inner, nidx: int, data: pointer, indices: ptr int64,
                 dst: pointer) =
  let idx = cast[ptr UncheckedArray[int64]](indices)
  let s = cast[ptr UncheckedArray[uint8]](data)
  let d = cast[ptr UncheckedArray[uint8]](dst)
  let chunk = inner * elemSize
  for j in 0 ..< nidx:
    let v = idx[j]
    if v < -axisDim or v >= axisDim:
      fail(stInvalid, "Gather: index " & $v & " is out of range for an axis of " & $axisDim)
  for o in 0 ..< outer:
    for j in 0 ..< nidx:
      var v = int(idx[j])
      if v < 0: v += axisDim
      copyMem(d[(o * nidx + j) * chunk].addr, s[(o * axisDim + v) * chunk].addr, chunk)

proc reduceOuter(kind: ReduceKind, lo, hi, r, inner: int, src, dst: pointer) =
  let s = cast[ptr UncheckedArray[float32]](src)
  let d = cast[ptr UncheckedArray[float32]](dst)
  let di = cast[ptr UncheckedArray[int64]](dst)
  for o in lo ..< hi:
    for i in 0 ..< inner:
      let base = o * r * inner + i
      let at = o * inner + i
      case kind
      of rSum, rMean:
        var total = 0'f64
        if inner == 1:  # contiguous (a global pool's planes): 8 partial sums, no add chain
          var part: array[8, float64]
          var j = 0
          while j + 8 <= r:
            for l in 0 ..< 8: part[l] += float64(s[base + j + l])
            j += 8
          for l in 0 ..< 8: total += part[l]
          for k in j ..< r: total += float64(s[base + k])
        else:
          for j in 0 ..< r: total += float64(s[base + j * inner])
        d[at] = float32(if kind == rMean: total / float64(max(r, 1)) else: total)
      of rMax, rMin:
        if r == 0:
          fail(stInvalid, "reduction of an empty axis has no maximum or minimum")
        var best = s[base]
        for j in 1 ..< r:
          let x = s[base + j * inner]
          if (kind == rMax and x > best) or (kind == rMin and x < best) or x != x: best = x
        d[at] = best
      else:
        if r == 0: fail(stInvalid, "ArgMax/ArgMin of an empty axis")
        let wantMax = kind in {rArgMax, rArgMaxLast}
        let lastWins = kind in {rArgMaxLast, rArgMinLast}
        var best = s[base]
        var pos = 0
        for j in 1 ..< r:
          let x = s[base + j * inner]
          let better = if wantMax: x > best else: x < best
          if better or (lastWins and x == best):
            best = x
            pos = j
        di[at] = int64(pos)

type ReduceJob = object
  kind: ReduceKind
  r, inner: int
  src, dst: pointer

proc reduceRange(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr ReduceJob](ctx)
  try: reduceOuter(job.kind, lo, hi, job.r, job.inner, job.src, job.dst)
  except CatchableError: discard  # sums and means (the only split kinds) do not fail

proc reduceLines*(kind: ReduceKind, outer, r, inner: int, src, dst: pointer) =
  ## Sums and means of enough data (a global pool at batch 64) split `outer` over the threads.
  if kind in {rSum, rMean} and outer > 1 and outer * r * inner >= 1 shl 16 and numThreads() > 1:
    var job = ReduceJob(kind: kind, r: r, inner: inner, src: src, dst: dst)
    parallelFor(0, outer, max(1, outer div (4 * numThreads())), reduceRange, job.addr)
  else:
    reduceOuter(kind, 0, outer, r, inner, src, dst)
