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
## Design (ideas from Cilk, nim-taskpools and weave; no code taken):
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

import std/[atomics, locks]
import ../config, ../contracts
import ./backoff, ./chase_lev, ./parking, ./thread_count

const dequeCapacity = 1024  ## per thread; spawns beyond it run inline

type
  RangeFn* = proc (lo, hi: int, ctx: pointer) {.nimcall, gcsafe, raises: [].}
  TaskFn* = proc (task: ptr Task) {.nimcall, gcsafe, raises: [].}

  Task* = object
    ## A unit of work. `run(addr task)` executes it; `arg`, `lo`, `hi` are free for the task
    ## function (parallelFor keeps its range there, fib-style code its input and result).
    run*: TaskFn
    arg*: pointer
    lo*, hi*: int
    body: RangeFn
    grain: int
    group: ptr TaskGroup

  TaskGroup* = object
    ## Join counter of a fork/join region; lives on the spawner's stack. Low 31 bits: tasks not
    ## yet finished; top bit: the spawner is parked waiting for them.
    pending: ParkWord
    borrowed: bool  # this group borrowed a caller slot that `sync` gives back

  WorkerStats* = object
    spawned*, executed*, stolen*, parks*: uint64

  Counters = object
    spawned {.align: cacheLineSize.}: Atomic[uint64]
    executed, stolen, parks: Atomic[uint64]

  Slot = object
    ## One thread's place in the pool: its deque, counters and (for workers) thread.
    deque: ChaseLevDeque[ptr Task, dequeCapacity]
    counters: Counters
    busy {.align: cacheLineSize.}: Atomic[bool]  # caller slots: borrowed right now
    stop: Atomic[bool]                           # workers: asked to exit
    thread: Thread[ptr Slot]
    running: bool                                # workers: thread started and not joined

const
  maxWorkers = 1023   ## numThreads() tops out at 1024 (the C ABI's limit)
  maxCallers = 32     ## outside threads inside parallelFor at once; more run their loop serially
  waiterBit = 0x8000_0000'u32
  countMask = 0x7fff_ffff'u32

var
  workerSlots: array[maxWorkers, ptr Slot]   # allocated on first use, never freed
  callerSlots: array[maxCallers, ptr Slot]
  liveWorkers: Atomic[int]      # worker threads running (victims to scan)
  configured: Atomic[int]       # numThreads()
  poolStarted: Atomic[bool]
  poolLock: Lock                # start/stop/resize
  sleepers {.align: cacheLineSize.}: Atomic[int32]
  wakeEpoch {.align: cacheLineSize.}: ParkWord   # event count idle threads park on
  currentSlot {.threadvar.}: ptr Slot
  isWorker {.threadvar.}: bool
  rngState {.threadvar.}: uint64

proc sched_yield(): cint {.importc, header: "<sched.h>".}

proc numThreads*(): int =
  ## Threads that compute in a parallelFor, the caller included.
  configured.load(moRelaxed)

proc newSlot(): ptr Slot =
  result = cast[ptr Slot](allocShared0(sizeof(Slot)))

# --- small helpers ----------------------------------------------------------------------

proc bump(c: var Atomic[uint64]) {.inline.} =
  ## Owner-only counter increment: a plain load + store, no locked instruction.
  c.store(c.load(moRelaxed) + 1, moRelaxed)

proc nextRandom(): uint64 {.inline.} =
  ## xorshift64*, per thread: picks steal victims.
  if rngState == 0:
    rngState = cast[uint64](addr rngState) or 1
  var x = rngState
  x = x xor (x shr 12)
  x = x xor (x shl 25)
  x = x xor (x shr 27)
  rngState = x
  x * 0x2545F4914F6CDD1D'u64

# --- waking parked threads --------------------------------------------------------------

proc notifyOne() {.inline.} =
  ## After publishing work: wake one parked thread, if any.
  fence(moSequentiallyConsistent)
  if sleepers.load(moRelaxed) > 0:
    discard wakeEpoch.fetchAdd(1, moRelease)
    parkWake(addr wakeEpoch, 1)

proc notifyAll() =
  discard wakeEpoch.fetchAdd(1, moRelease)
  parkWake(addr wakeEpoch)

proc workVisible(): bool =
  ## Any deque with a task in it (racy; used right before parking, after announcing it).
  for i in 0 ..< liveWorkers.load(moAcquire):
    let s = workerSlots[i]
    if s != nil and not s.deque.looksEmpty: return true
  for s in callerSlots:
    if s.busy.load(moRelaxed) and not s.deque.looksEmpty: return true
  false

# --- executing and stealing -------------------------------------------------------------

proc finish(g: ptr TaskGroup) {.inline.} =
  ## A task of `g` is done. The group may vanish right after the decrement (its spawner
  ## returns), so nothing of it is read afterwards: a parked spawner is woken through the
  ## global event count, whose word never moves.
  let prev = g.pending.fetchSub(1, moAcquireRelease)
  if prev == (waiterBit or 1):
    notifyAll()

proc execute(t: ptr Task) {.inline.} =
  let g = t.group
  t.run(t)
  if g != nil: finish(g)

proc trySteal(self: ptr Slot): ptr Task =
  ## One pass over every possible victim, starting at a random one.
  let workers = liveWorkers.load(moAcquire)
  let total = workers + maxCallers
  let start = int(nextRandom() mod uint64(total))
  for k in 0 ..< total:
    var i = start + k
    if i >= total: i -= total
    let victim = if i < workers: workerSlots[i] else: callerSlots[i - workers]
    if victim == nil or victim == self: continue
    if i >= workers and not victim.busy.load(moRelaxed): continue
    if victim.deque.looksEmpty: continue
    let t = victim.deque.steal()
    if t != nil:
      if self != nil: bump(self.counters.stolen)
      return t

proc findWork(self: ptr Slot): ptr Task {.inline.} =
  result = self.deque.pop()
  if result == nil:
    result = trySteal(self)

proc runFound(self: ptr Slot, t: ptr Task) {.inline.} =
  bump(self.counters.executed)
  execute(t)

# --- workers ----------------------------------------------------------------------------

proc parkIdle(self: ptr Slot, extraCheck: proc (): bool {.nimcall, gcsafe, raises: [].}) =
  ## Announce sleep, re-check for work, then sleep on the event count.
  let epoch = wakeEpoch.load(moAcquire)
  discard sleepers.fetchAdd(1, moSequentiallyConsistent)
  fence(moSequentiallyConsistent)
  if not workVisible() and not extraCheck():
    bump(self.counters.parks)
    parkWait(addr wakeEpoch, epoch)
  discard sleepers.fetchSub(1, moSequentiallyConsistent)

var currentStopFlag {.threadvar.}: ptr Atomic[bool]

proc stopRequested(): bool =
  currentStopFlag != nil and currentStopFlag[].load(moAcquire)

proc workerLoop(self: ptr Slot) {.thread.} =
  currentSlot = self
  isWorker = true
  currentStopFlag = addr self.stop
  rngState = cast[uint64](self) or 1
  var idle = 0
  while true:
    let t = findWork(self)
    if t != nil:
      if idle > 0 and workVisible(): notifyOne()   # more work out there: wake the next one
      idle = 0
      runFound(self, t)
      continue
    if self.stop.load(moAcquire):
      break   # own deque is empty (pop just failed): nothing of ours is lost
    if step(schedulerPolicy, idle) == wsBlock:   # backoff.nim
      parkIdle(self, stopRequested)
      idle = schedulerPolicy.spins   # after a wake: a short spin before parking again

proc startWorkersLocked() =
  ## With poolLock held: start numThreads() - 1 workers.
  ## If the OS refuses a thread, the pool runs with the ones it got (callers still compute).
  let n = configured.load(moRelaxed) - 1
  var started = 0
  for i in 0 ..< n:
    if workerSlots[i] == nil:
      workerSlots[i] = newSlot()
    let s = workerSlots[i]
    s.stop.store(false, moRelaxed)
    try:
      createThread(s.thread, workerLoop, s)
    except ResourceExhaustedError:
      break
    s.running = true
    inc started
  liveWorkers.store(started, moRelease)
  poolStarted.store(true, moRelease)

proc stopWorkersLocked() =
  ## With poolLock held: ask every worker to stop, wake them, join them.
  let n = liveWorkers.load(moRelaxed)
  for i in 0 ..< n:
    workerSlots[i].stop.store(true, moRelease)
  notifyAll()
  for i in 0 ..< n:
    let s = workerSlots[i]
    if s.running:
      joinThread(s.thread)
      s.running = false
  # Keep liveWorkers until all joined: a stopping worker may still push (and thieves must see
  # its deque) while it finishes a task.
  liveWorkers.store(0, moRelease)
  poolStarted.store(false, moRelease)

proc ensureStarted() {.inline.} =
  if not poolStarted.load(moAcquire):
    {.gcsafe.}:
      acquire(poolLock)
      if not poolStarted.load(moRelaxed):
        startWorkersLocked()
      release(poolLock)

# --- caller slots -----------------------------------------------------------------------

proc borrowCallerSlot(): bool =
  ## An outside thread takes a free caller slot for the duration of its fork/join region.
  let start = int(nextRandom() mod maxCallers)
  for k in 0 ..< maxCallers:
    let s = callerSlots[(start + k) mod maxCallers]
    if not s.busy.load(moRelaxed):
      var expected = false
      if s.busy.compareExchange(expected, true, moAcquire, moRelaxed):
        currentSlot = s
        return true
  false

proc returnCallerSlot() =
  let s = currentSlot
  currentSlot = nil
  s.busy.store(false, moRelease)

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

proc groupDone(g: var TaskGroup): bool {.inline.} =
  (g.pending.load(moAcquire) and countMask) == 0

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
        # Park on the event count; the finisher of our last task wakes it (waiter bit).
        let epoch = wakeEpoch.load(moAcquire)
        discard sleepers.fetchAdd(1, moSequentiallyConsistent)
        var v = g.pending.load(moAcquire)
        var parked = false
        while (v and countMask) != 0 and (v and waiterBit) == 0:
          if g.pending.compareExchange(v, v or waiterBit, moAcquireRelease, moAcquire):
            break
        fence(moSequentiallyConsistent)
        if not groupDone(g) and not workVisible():
          bump(self.counters.parks)
          parkWait(addr wakeEpoch, epoch)
          parked = true
        discard sleepers.fetchSub(1, moSequentiallyConsistent)
        # If a wake meant for idle threads reached us but we leave, pass it on.
        if parked and groupDone(g) and workVisible(): notifyOne()
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

# --- size and stats ---------------------------------------------------------------------

proc setNumThreads*(n: int) =
  ## Resize the pool to `n` threads (1 .. 1024) counting the caller. Safe while idle or busy
  ## (workers finish what they hold first). Not from inside a task (it would join itself).
  preCondition(not isWorker)
  let n = clamp(n, 1, maxWorkers + 1)
  {.gcsafe.}:
    acquire(poolLock)
    if poolStarted.load(moRelaxed):
      stopWorkersLocked()
    configured.store(n, moRelease)
    release(poolLock)

proc onPoolThread*(): bool =
  ## True on a pool worker thread (where setNumThreads must not be called).
  isWorker

proc workerStats*(): seq[WorkerStats] =
  ## One entry per thread that computes: entry 0 sums the outside callers, then the workers.
  let n = numThreads()
  result = newSeq[WorkerStats](n)
  for s in callerSlots:
    result[0].spawned += s.counters.spawned.load(moRelaxed)
    result[0].executed += s.counters.executed.load(moRelaxed)
    result[0].stolen += s.counters.stolen.load(moRelaxed)
    result[0].parks += s.counters.parks.load(moRelaxed)
  for i in 1 ..< n:
    let s = workerSlots[i - 1]
    if s != nil:
      result[i] = WorkerStats(spawned: s.counters.spawned.load(moRelaxed),
                              executed: s.counters.executed.load(moRelaxed),
                              stolen: s.counters.stolen.load(moRelaxed),
                              parks: s.counters.parks.load(moRelaxed))

# --- init and fork ----------------------------------------------------------------------

proc pthread_atfork(prepare, parent, child: proc () {.cdecl, gcsafe, raises: [].}): cint {.
  importc, header: "<pthread.h>".}

proc afterForkInChild() {.cdecl, gcsafe, raises: [].} =
  ## The child of fork() has only the forking thread: forget the parent's workers.
  {.gcsafe.}:
    initLock(poolLock)
    for s in workerSlots:
      if s != nil:
        s.running = false
        s.deque.reset()
        s.stop.store(false, moRelaxed)
    for s in callerSlots:
      if s != currentSlot:
        s.deque.reset()
        s.busy.store(false, moRelaxed)
    liveWorkers.store(0, moRelaxed)
    sleepers.store(0, moRelaxed)
    poolStarted.store(false, moRelaxed)

proc initPool() =
  initLock(poolLock)
  for i in 0 ..< maxCallers:
    callerSlots[i] = newSlot()
  configured.store(defaultThreads(maxWorkers + 1), moRelaxed)
  discard pthread_atfork(nil, nil, afterForkInChild)

initPool()
