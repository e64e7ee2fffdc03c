## The work-stealing scheduler: exact coverage, nesting, concurrent outside callers, resizing,
## fork/join, counters and parking. Quick enough to run under ASan and TSan.

import std/[atomics, os, unittest]
import nexpo_core/runtime/scheduler

type Hits = object
  counts: ptr UncheckedArray[Atomic[int32]]

proc markRange(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let h = cast[ptr Hits](ctx)
  for i in lo ..< hi:
    discard h.counts[i].fetchAdd(1, moRelaxed)

proc newHits(n: int): Hits =
  Hits(counts: cast[ptr UncheckedArray[Atomic[int32]]](allocShared0(n * sizeof(int32) + 1)))

proc allOnce(h: Hits, n: int): bool =
  for i in 0 ..< n:
    if h.counts[i].load(moRelaxed) != 1: return false
  true

proc coverOnce(lo, hi, grain: int): bool =
  var h = newHits(hi)
  parallelFor(lo, hi, grain, markRange, addr h)
  result = allOnce(Hits(counts: cast[ptr UncheckedArray[Atomic[int32]]](addr h.counts[lo])), hi - lo)
  for i in 0 ..< lo:
    if h.counts[i].load(moRelaxed) != 0: result = false
  deallocShared(h.counts)

# --- nested loops -----------------------------------------------------------------------

type Nested = object
  total: Atomic[int]

proc innerBody(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  let n = cast[ptr Nested](ctx)
  discard n.total.fetchAdd(hi - lo, moRelaxed)

proc outerBody(lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].} =
  for _ in lo ..< hi:
    parallelFor(0, 1000, 7, innerBody, ctx)

# --- fork/join: fibonacci ---------------------------------------------------------------

proc fibTask(t: ptr Task) {.nimcall, gcsafe, raises: [].} =
  let n = t.lo
  if n < 2:
    t.hi = n
    return
  var g: TaskGroup
  var left = Task(run: fibTask, lo: n - 1)
  spawn(g, left)
  var right = Task(run: fibTask, lo: n - 2)
  fibTask(addr right)
  sync(g)
  t.hi = left.hi + right.hi

proc fib(n: int): int =
  var root = Task(run: fibTask, lo: n)
  fibTask(addr root)
  root.hi

# --- outside callers --------------------------------------------------------------------

var callerFailures: Atomic[int]

proc callerThread(rounds: int) {.thread.} =
  for r in 0 ..< rounds:
    let n = 5000 + r * 37
    if not coverOnce(0, n, 64): discard callerFailures.fetchAdd(1)
    if fib(15) != 610: discard callerFailures.fetchAdd(1)

suite "scheduler":
  test "default size is the usable cores, at least 1":
    check numThreads() >= 1

  test "parallelFor runs every index exactly once":
    setNumThreads(4)
    for (lo, hi, grain) in [(0, 1, 1), (0, 10, 1), (3, 1000, 1), (0, 100_000, 64),
                            (17, 4097, 4096), (0, 12345, 0), (0, 5, 100)]:
      check coverOnce(lo, hi, grain)

  test "empty and reversed ranges call nothing":
    var h = newHits(4)
    parallelFor(3, 3, 1, markRange, addr h)
    parallelFor(3, 1, 1, markRange, addr h)
    for i in 0 ..< 4: check h.counts[i].load == 0
    deallocShared(h.counts)

  test "nested parallelFor from workers does not deadlock":
    setNumThreads(3)
    var n: Nested
    parallelFor(0, 64, 1, outerBody, addr n)
    check n.total.load == 64 * 1000

  test "spawn/sync computes fib":
    setNumThreads(4)
    check fib(20) == 6765
    setNumThreads(1)
    check fib(15) == 610

  test "several outside threads call in at once":
    setNumThreads(3)
    var threads: array[4, Thread[int]]
    for t in threads.mitems: createThread(t, callerThread, 20)
    joinThreads(threads)
    check callerFailures.load == 0

  test "resize while idle, repeatedly":
    for n in [1, 2, 4, 3, 1, 5, 2]:
      setNumThreads(n)
      check numThreads() == n
      check coverOnce(0, 20_000, 16)
      check workerStats().len == n

  test "counters: every spawned task executes; idle workers park":
    setNumThreads(3)
    check coverOnce(0, 10, 1)   # start the workers before the first snapshot
    proc totals(): (uint64, uint64, uint64) =
      for s in workerStats():
        result[0] += s.spawned
        result[1] += s.executed
        result[2] += s.parks
    let before = totals()
    check coverOnce(0, 50_000, 8)
    sleep(50)   # workers go idle and park
    let after = totals()
    check after[0] - before[0] == after[1] - before[1]
    check after[0] > before[0]
    check after[2] > before[2]
