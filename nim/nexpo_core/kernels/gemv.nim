## Row-vector × matrix (y = x·B, m = 1) for a B too large for the L2: the batch-1 layers of
## big models. The small path reads B in one register tile's width (512 bytes) per row, a
## row stride apart, which the hardware prefetchers follow poorly once B leaves the L2.
## Here each pass streams four of B's rows front to back and adds their weighted sum into a
## block of y kept in L1, so every read is sequential. Threads take contiguous column ranges.
##
## The AVX2 and AVX-512 paths are explicit vectors, unrolled; the portable one is a plain loop
## that GCC vectorises. `cpu.activeIsa()` picks the path like the GEMM's micro-kernels.

import ../config, ../cpu, ../targets
import ../runtime/scheduler
import ./common, ./simd

{.push boundChecks: off, overflowChecks: off, rangeChecks: off.}

const
  gemvMinBytes* = 1 shl 20   ## B at least this large: below, the small path's tiles win
  blockBytes = 8192          ## y's block: stays in L1 while B's rows stream past it
  minPartBytes = 1 shl 19    ## B bytes per thread before a split pays for its fork/join
  rowsPerPass = 4            ## B rows per pass over y's block (even). Measured on Zen 5, 1 x
                             ## 1024 · 1024 x 1024 float32 (B in L3, rows 16 bytes off a cache
                             ## line as numpy allocates them): 4 beat 2 and 8 by 3-5% on 1 and
                             ## 2 threads; software prefetch of the next pass's rows won on an
                             ## idle machine only and lost 10-15% with the other core busy
  unrollVectors = 4          ## vectors of each row per step of a pass

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

template passPlain(R: static int, acc, cols, r0, rsb, x0, xstride: untyped) =
  ## acc[0 ..< cols] += Σ_q x[q]·B[q] over the pass's R rows, vectorised by GCC (the portable
  ## path).
  type E = typeof(x0[])
  let a = cast[ptr UncheckedArray[E]](acc)
  var i = 0
  while i < R:  # two rows at a time (R is even)
    let b0 = cast[ptr UncheckedArray[E]](r0 +! (i * rsb))
    let b1 = cast[ptr UncheckedArray[E]](r0 +! ((i + 1) * rsb))
    let w0 = (x0 +! (i * xstride))[]
    let w1 = (x0 +! ((i + 1) * xstride))[]
    for t in 0 ..< cols: a[t] = a[t] + w0 * b0[t] + w1 * b1[t]
    i += 2

template passSimd(V: typedesc, W: static int, load, bcast, fma, store: untyped,
                  R: static int, acc, cols, r0, rsb, x0, xstride: untyped) =
  ## The same pass in explicit vectors: per vector of the block, one chain of R FMAs from the
  ## block into the block; `unrollVectors` vectors per step.
  const step = unrollVectors * W
  let steps = cols div step * step
  var rows {.noinit.}: array[R, typeof(r0)]
  var xb {.noinit.}: array[R, V]
  for q in 0 ..< R:
    rows[q] = r0 +! (q * rsb)
    xb[q] = bcast((x0 +! (q * xstride))[])
  var t = 0
  while t < steps:
    unroll vi, unrollVectors:
      let ap = acc +! (t + vi * W)
      var s = load(ap)
      unroll q, R:
        s = fma(xb[q], load(rows[q] +! (t + vi * W)), s)
      store(ap, s)
    t += step
  while t + W <= cols:
    let ap = acc +! t
    var s = load(ap)
    unroll q, R:
      s = fma(xb[q], load(rows[q] +! t), s)
    store(ap, s)
    t += W
  while t < cols:  # the ragged end, under one vector
    var s = (acc +! t)[]
    for q in 0 ..< R: s = s + (x0 +! (q * xstride))[] * (rows[q] +! t)[]
    (acc +! t)[] = s
    inc t

template gemvBlock[T](k, j0, j1: int, x: ptr T, xs: int, b: ptr T, rsb: int, y: ptr T,
                      pass: untyped) =
  ## y[j0 ..< j1] = Σ_i x[i]·B[i, j0 ..< j1], with j1 - j0 <= blockBytes / sizeof(T): passes
  ## of `rowsPerPass` rows, each added into the block. The block is summed in a local array:
  ## it cannot alias B, so GCC needs no runtime overlap checks.
  const width = blockBytes div sizeof(T)
  var acc {.noinit, align(64).}: array[width, T]
  let cols = j1 - j0
  for t in 0 ..< cols: acc[t] = T(0)
  let accp = acc[0].addr
  var i = 0
  while i + rowsPerPass <= k:
    pass(rowsPerPass, accp, cols, b +! (i * rsb + j0), rsb, x +! (i * xs), xs)
    i += rowsPerPass
  while i + 2 <= k:
    pass(2, accp, cols, b +! (i * rsb + j0), rsb, x +! (i * xs), xs)
    i += 2
  if i < k:  # k odd: the last row
    let xi = (x +! (i * xs))[]
    let r = cast[ptr UncheckedArray[T]](b +! (i * rsb + j0))
    for t in 0 ..< cols: acc[t] = acc[t] + xi * r[t]
  copyMem(y +! j0, accp, cols * sizeof(T))

template gemvColumns[T](job: GemvJob[T], j0, j1: int, pass: untyped) =
  const width = blockBytes div sizeof(T)
  var j = j0
  while j < j1:
    let e = min(j1, j + width)
    gemvBlock[T](job.k, j, e, job.x, job.xs, job.b, job.rsb, job.y, pass)
    j = e

proc gemvPortable[T](job: GemvJob[T], j0, j1: int) =
  gemvColumns(job, j0, j1, passPlain)

when x86SimdEnabled:
  template passAvx2F32(R: static int, acc, cols, r0, rsb, x0, xstride: untyped) =
    passSimd(M256, 8, mm256_loadu_ps, mm256_set1_ps, mm256_fmadd_ps, mm256_storeu_ps,
             R, acc, cols, r0, rsb, x0, xstride)
  template passAvx2F64(R: static int, acc, cols, r0, rsb, x0, xstride: untyped) =
    passSimd(M256d, 4, mm256_loadu_pd, mm256_set1_pd, mm256_fmadd_pd, mm256_storeu_pd,
             R, acc, cols, r0, rsb, x0, xstride)
  template passAvx512F32(R: static int, acc, cols, r0, rsb, x0, xstride: untyped) =
    passSimd(M512, 16, mm512_loadu_ps, mm512_set1_ps, mm512_fmadd_ps, mm512_storeu_ps,
             R, acc, cols, r0, rsb, x0, xstride)
  template passAvx512F64(R: static int, acc, cols, r0, rsb, x0, xstride: untyped) =
    passSimd(M512d, 8, mm512_loadu_pd, mm512_set1_pd, mm512_fmadd_pd, mm512_storeu_pd,
             R, acc, cols, r0, rsb, x0, xstride)

  proc gemvAvx2[T](job: GemvJob[T], j0, j1: int) {.avx2fn.} =
    when T is float32: gemvColumns(job, j0, j1, passAvx2F32)
    else: gemvColumns(job, j0, j1, passAvx2F64)

  proc gemvAvx512[T](job: GemvJob[T], j0, j1: int) {.avx512fn.} =
    when T is float32: gemvColumns(job, j0, j1, passAvx512F32)
    else: gemvColumns(job, j0, j1, passAvx512F64)

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
