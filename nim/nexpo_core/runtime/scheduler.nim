## Placeholder fork/join API used by the kernels until the work-stealing pool lands (issue 5).
## The interface is the contract: `parallelFor` splits [lo, hi) into chunks of at least `grain`
## and calls `fn(chunkLo, chunkHi, ctx)` on the pool's workers; it returns when all are done.
## This first version runs serially on the caller.

type
  RangeFn* = proc (lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].}

var threadCount = 1

proc numThreads*(): int = threadCount

proc setNumThreads*(n: int) =
  threadCount = max(1, n)

proc parallelFor*(lo, hi, grain: int, fn: RangeFn, ctx: pointer) =
  if hi > lo: fn(lo, hi, ctx)
