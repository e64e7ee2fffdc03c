## Placeholder fork/join API used by the kernels until the work-stealing pool lands (issue 5).
## The interface is the contract: `parallelFor` splits [lo, hi) into chunks of at least `grain`
## and calls `fn(chunkLo, chunkHi, ctx)` on the pool's workers; it returns when all are done.
## This first version runs serially on the caller, counted as worker 0.

import std/atomics

type
  RangeFn* = proc (lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].}

  WorkerStats* = object
    spawned*, executed*, stolen*, parks*: uint64

var
  threadCount = 1
  executed0: Atomic[uint64]

proc numThreads*(): int = threadCount

proc setNumThreads*(n: int) =
  threadCount = max(1, n)

proc parallelFor*(lo, hi, grain: int, fn: RangeFn, ctx: pointer) =
  if hi > lo:
    fn(lo, hi, ctx)
    discard executed0.fetchAdd(1, moRelaxed)

proc workerStats*(): seq[WorkerStats] =
  ## One entry per worker: tasks spawned, executed and stolen, and times it parked.
  let n = executed0.load(moRelaxed)
  @[WorkerStats(spawned: n, executed: n)]
