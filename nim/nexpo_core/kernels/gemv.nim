## Row-vector × matrix (y = x·B, m = 1) for a B too large for the L2: the batch-1 layers of
## big models. The small path reads B in one register tile's width (512 bytes) per row, a
## row stride apart, which the hardware prefetchers follow poorly once B leaves the L2.
## Here each pass streams eight of B's rows front to back and adds their weighted sum into a
## block of y kept in L1, so every read is sequential. Threads take contiguous column ranges.
##
## The loops are plain Nim; GCC vectorises them once per ISA path (the target attribute picks
## 16 or 8 float32 lanes), and `cpu.activeIsa()` picks the path like the GEMM's micro-kernels.

import ../config, ../cpu, ../targets
import ../runtime/scheduler
import ./common

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

const
  gemvMinBytes* = 1 shl 20   ## B at least this large: below, the small path's tiles win
  blockBytes = 8192          ## y's block: stays in L1 while B's rows stream past it
  minPartBytes = 1 shl 19    ## B bytes per thread before a split pays for its fork/join

proc ceilDiv(a, b: int): int {.inline.} = (a + b - 1) div b
proc roundUp(a, b: int): int {.inline.} = ceilDiv(a, b) * b

type
  GemvJob[T] = object
    n, k: int
    x: ptr T
    xs: int          ## x's element stride
    b: ptr T
    rsb: int         ## B's row stride (elements; columns are contiguous)
    y: ptr T
    colsPerPart: int

template gemvBlock[T](k, j0, j1: int, x: ptr T, xs: int, b: ptr T, rsb: int, y: ptr T) =
  ## y[j0 ..< j1] = Σ_i x[i]·B[i, j0 ..< j1], with j1 - j0 <= blockBytes / sizeof(T).
  ## The block is summed in a local array: it cannot alias B, so GCC vectorises without
  ## runtime overlap checks on nine pointers.
  const width = blockBytes div sizeof(T)
  var acc {.noinit.}: array[width, T]
  let cols = j1 - j0
  for t in 0 ..< cols: acc[t] = T(0)
  let xv = cast[ptr UncheckedArray[T]](x)
  var i = 0
  while i + 8 <= k:
    let x0 = xv[i * xs]
    let x1 = xv[(i + 1) * xs]
    let x2 = xv[(i + 2) * xs]
    let x3 = xv[(i + 3) * xs]
    let x4 = xv[(i + 4) * xs]
    let x5 = xv[(i + 5) * xs]
    let x6 = xv[(i + 6) * xs]
    let x7 = xv[(i + 7) * xs]
    let r0 = cast[ptr UncheckedArray[T]](b +! (i * rsb + j0))
    let r1 = cast[ptr UncheckedArray[T]](b +! ((i + 1) * rsb + j0))
    let r2 = cast[ptr UncheckedArray[T]](b +! ((i + 2) * rsb + j0))
    let r3 = cast[ptr UncheckedArray[T]](b +! ((i + 3) * rsb + j0))
    let r4 = cast[ptr UncheckedArray[T]](b +! ((i + 4) * rsb + j0))
    let r5 = cast[ptr UncheckedArray[T]](b +! ((i + 5) * rsb + j0))
    let r6 = cast[ptr UncheckedArray[T]](b +! ((i + 6) * rsb + j0))
    let r7 = cast[ptr UncheckedArray[T]](b +! ((i + 7) * rsb + j0))
    for t in 0 ..< cols:
      # two chains of four FMAs, then one add into the block
      let p = x0 * r0[t] + x2 * r2[t] + x4 * r4[t] + x6 * r6[t]
      let q = x1 * r1[t] + x3 * r3[t] + x5 * r5[t] + x7 * r7[t]
      acc[t] = acc[t] + (p + q)
    i += 8
  while i < k:
    let xi = xv[i * xs]
    let r = cast[ptr UncheckedArray[T]](b +! (i * rsb + j0))
    for t in 0 ..< cols: acc[t] = acc[t] + xi * r[t]
    inc i
  copyMem(y +! j0, acc[0].addr, cols * sizeof(T))

template gemvColumns[T](job: GemvJob[T], j0, j1: int) =
  const width = blockBytes div sizeof(T)
  var j = j0
  while j < j1:
    let e = min(j1, j + width)
    gemvBlock[T](job.k, j, e, job.x, job.xs, job.b, job.rsb, job.y)
    j = e

proc gemvPortable[T](job: GemvJob[T], j0, j1: int) =
  gemvColumns(job, j0, j1)

when x86SimdEnabled:
  proc gemvAvx2[T](job: GemvJob[T], j0, j1: int) {.avx2fn.} =
    gemvColumns(job, j0, j1)

  proc gemvAvx512[T](job: GemvJob[T], j0, j1: int) {.avx512fn.} =
    gemvColumns(job, j0, j1)

proc gemvRange[T](job: GemvJob[T], j0, j1: int) =
  when x86SimdEnabled:
    case activeIsa()
    of isaAvx512: gemvAvx512(job, j0, j1)
    of isaAvx2: gemvAvx2(job, j0, j1)
    of isaPortable: gemvPortable(job, j0, j1)
  else:
    gemvPortable(job, j0, j1)

proc gemvParts[T](lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let job = cast[ptr GemvJob[T]](ctx)
  for part in lo ..< hi:
    let j0 = part * job.colsPerPart
    gemvRange(job[], j0, min(job.n, j0 + job.colsPerPart))

proc gemvPays*(n, k, elementSize: int): bool {.inline.} =
  ## Whether a 1 x k · k x n product takes this path rather than the GEMM's small path.
  n * k * elementSize >= gemvMinBytes

proc gemv*[T: float32 | float64](n, k: int, x: ptr T, xs: int, b: ptr T, rsb: int, y: ptr T) =
  ## y[0 ..< n] = x·B: x has k elements `xs` apart, B is k x n with contiguous rows `rsb`
  ## apart (either may be negative). y is written, never read.
  if n <= 0: return
  var job = GemvJob[T](n: n, k: k, x: x, xs: xs, b: b, rsb: rsb, y: y)
  const lineElems = 64 div sizeof(T)   # parts start on a cache line of y and of B's rows
  let parts = max(1, min(numThreads(), n * k * sizeof(T) div minPartBytes))
  job.colsPerPart = roundUp(ceilDiv(n, parts), lineElems)
  let used = ceilDiv(n, job.colsPerPart)
  if used == 1: gemvRange(job, 0, n)
  else: parallelFor(0, used, 1, gemvParts[T], job.addr)

{.pop.}
