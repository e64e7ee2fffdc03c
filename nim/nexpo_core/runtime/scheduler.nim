## Work-stealing fork/join scheduler: the pool nexpo's parallel kernels run on.
##
## API (the contract the kernels use):
## - `parallelFor(lo, hi, grain, fn, ctx)` calls `fn(a, b, ctx)` on disjoint chunks covering
##   [lo, hi), each at least `grain` long (except a shorter whole range), and returns when all
##   are done. Callable from any thread: Python threads (through cffi, concurrently), pool
##   workers (nested loops), or the body of another parallelFor.
## - `spawn(group, task)` / `sync(group)`: Cilk-style fork/join with caller-owned task frames
##   (zero allocation). The `Task` must stay where it is until `sync` returns.
## - `numThreads()` / `setNumThreads(n)`: the threads that compute, counting the caller: the
##   pool has n - 1 workers, because a caller always works while it waits. Default: the cores
##   this process may run on (sched_getaffinity), or `NEXPO_NUM_THREADS`.
## - `workerStats()`: per thread counters; entry 0 sums every outside caller.
##
## Design (ideas from Cilk, nim-taskpools and weave; no code taken). The pool itself (slots,
## workers, stealing, parking, resizing, fork) is `pool.nim`; this file is fork/join on it:
##
## ::
##
##   Python thread A ──parallelFor──┐        worker 1        worker 2   ...   worker n-1
##   Python thread B ──parallelFor──┤      ┌──────────┐   ┌──────────┐      ┌──────────┐
##                                  v      │ deque    │   │ deque    │      │ deque    │
##                        caller slots     └────┬─────┘   └────┬─────┘      └────┬─────┘
##                        (deque each)          │  steal (random victim, top)    │
##                             ^  └─────────────┴──────────────┴─────────────────┘
##                             └── an outside caller borrows a slot for the duration of a call
##
## - One Chase–Lev deque per thread that computes (workers and borrowed caller slots). The owner
##   pushes/pops at the bottom, thieves take the oldest task from a randomly chosen victim.
## - parallelFor splits eagerly by halves: it pushes the right halves (largest first) and runs
##   the leftmost leaf itself, then helps until its join counter drops to zero. A stolen half
##   splits again on the thief, so the work spreads in O(log n) steals.
## - Waiting never blocks progress: a thread in `sync` pops its own deque and steals; only when
##   nothing is visible anywhere does it park. Nested parallelFor from a worker cannot deadlock.
## - Idle threads spin briefly (PAUSE), then yield, then park on a futex event count with no
##   timeout: an idle pool burns no CPU. A push into an empty deque wakes one parked thread
##   when any sleeps (one fence + one load when none does); a thread that finds work while
##   more is visible wakes the next, so the pool ramps up in a cascade. Liveness never depends
##   on a wake: the owner of a deque always pops its own tasks in `sync`.
## - Resizing (`setNumThreads`) stops the workers (each drains its own deque first), then lets
##   the next parallelFor start the new count. Deques and counters are allocated once per slot
##   and never freed, so a thief can never read freed memory.
## - After fork() the child has no workers: an atfork handler resets the pool; it restarts
##   lazily on first use.
##
## Properties:
## - a parallelFor or spawn costs no heap allocation (tasks live on the spawner's stack)
## - every chunk runs exactly once; results written by chunks are visible to the caller when
##   parallelFor returns (acquire/release on the join counter)
## - the stats counters are owner-written, on their own cache lines (no shared atomic adds on
##   the hot path)

import std/atomics
import ../contracts
import ./backoff, ./chase_lev, ./pool

export Task, TaskGroup, TaskFn, RangeFn, WorkerStats
export numThreads, setNumThreads, onPoolThread, workerStats

# --- fork/join ---------------------------------------------------------------------------

proc spawn*(g: var TaskGroup, t: var Task) =
  ## Offer `t` to the pool; it runs on this thread or a thief before `sync(g)` returns.
  ## `t` and `g` must not move or go out of scope until then.
  preCondition(t.run != nil)
  if currentSlot == nil:
    ensureStarted()
    if not borrowCallerSlot():
      t.group = nil
      t.run(addr t)   # every caller slot in use: run inline, still correct
      return
    g.borrowed = true
  let self = currentSlot
  t.group = addr g
  discard g.pending.fetchAdd(1, moRelaxed)
  bump(self.counters.spawned)
  case self.deque.push(addr t)
  of prFirst:
    notifyOne()
  of prMore:
    discard   # whoever took our earlier items is awake and wakes the next (cascade)
  of prFull:
    discard g.pending.fetchSub(1, moRelaxed)
    t.group = nil
    bump(self.counters.executed)
    t.run(addr t)

proc sync*(g: var TaskGroup) =
  ## Wait until every task spawned on `g` has finished, running and stealing tasks meanwhile.
  if g.pending.load(moAcquire) != 0:
    let self = currentSlot
    preCondition(self != nil)
    var idle = 0
    while not groupDone(g):
      let t = findWork(self)
      if t != nil:
        if idle > 0 and workVisible(): notifyOne()
        idle = 0
        runFound(self, t)
        continue
      if step(schedulerPolicy, idle) == wsBlock:
        parkJoin(self, g)
        idle = schedulerPolicy.spins
  if g.borrowed:
    g.borrowed = false
    returnCallerSlot()

# --- parallel for -----------------------------------------------------------------------

proc runRange(t: ptr Task) {.nimcall, gcsafe, raises: [].} =
  ## Split [lo, hi) by halves, offering each right half, run the leftmost leaf, join.
  var lo = t.lo
  var hi = t.hi
  let grain = t.grain
  var g: TaskGroup
  var kids {.noinit.}: array[48, Task]
  var k = 0
  while hi - lo > grain and k < kids.len:
    let mid = lo + (hi - lo) div 2
    kids[k] = Task(run: runRange, arg: t.arg, lo: mid, hi: hi, body: t.body, grain: grain)
    spawn(g, kids[k])
    inc k
    hi = mid
  t.body(lo, hi, t.arg)
  sync(g)

proc parallelFor*(lo, hi, grain: int, fn: RangeFn, ctx: pointer) =
  ## Run `fn` over [lo, hi) in chunks of at least `grain` on the pool; return when all ran.
  if hi <= lo: return
  let grain = max(grain, 1)
  if hi - lo <= grain or numThreads() <= 1:
    fn(lo, hi, ctx)
    if currentSlot != nil: bump(currentSlot.counters.executed)
    return
  var borrowed = false
  if currentSlot == nil:
    ensureStarted()
    if not borrowCallerSlot():
      fn(lo, hi, ctx)   # every caller slot in use: run serially, still correct
      return
    borrowed = true
  let self = currentSlot
  bump(self.counters.spawned)
  bump(self.counters.executed)
  var root = Task(run: runRange, arg: ctx, lo: lo, hi: hi, body: fn, grain: grain)
  runRange(addr root)
  if borrowed: returnCallerSlot()
