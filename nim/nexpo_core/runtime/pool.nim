## The scheduler's thread pool: the per-thread slots (a Chase–Lev deque and counters each),
## the workers' loop, stealing, parking on one event count, outside callers borrowing a slot,
## resizing and fork safety. `scheduler.nim` builds fork/join (`spawn`/`sync`) and
## `parallelFor` on it and is the only module that imports this one; its header has the design.

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
    body*: RangeFn       # parallelFor's chunk function and grain
    grain*: int
    group*: ptr TaskGroup

  TaskGroup* = object
    ## Join counter of a fork/join region; lives on the spawner's stack. Low 31 bits: tasks not
    ## yet finished; top bit: the spawner is parked waiting for them.
    pending*: ParkWord
    borrowed*: bool  # this group borrowed a caller slot that `sync` gives back

  WorkerStats* = object
    spawned*, executed*, stolen*, parks*: uint64

  Counters = object
    spawned* {.align: cacheLineSize.}: Atomic[uint64]
    executed*, stolen, parks: Atomic[uint64]

  Slot* = object
    ## One thread's place in the pool: its deque, counters and (for workers) thread.
    deque*: ChaseLevDeque[ptr Task, dequeCapacity]
    counters*: Counters
    busy {.align: cacheLineSize.}: Atomic[bool]  # caller slots: borrowed right now
    stop: Atomic[bool]                           # workers: asked to exit
    thread: Thread[ptr Slot]
    running: bool                                # workers: thread started and not joined

const
  maxWorkers = 1023   ## numThreads() tops out at 1024 (the C ABI's limit)
  maxCallers = 32     ## outside threads inside parallelFor at once; more run their loop serially
  waiterBit* = 0x8000_0000'u32
  countMask* = 0x7fff_ffff'u32

var
  workerSlots: array[maxWorkers, ptr Slot]   # allocated on first use, never freed
  callerSlots: array[maxCallers, ptr Slot]
  liveWorkers: Atomic[int]      # worker threads running (victims to scan)
  configured: Atomic[int]       # numThreads()
  poolStarted: Atomic[bool]
  poolLock: Lock                # start/stop/resize
  sleepers {.align: cacheLineSize.}: Atomic[int32]
  wakeEpoch {.align: cacheLineSize.}: ParkWord   # event count idle threads park on
  currentSlot* {.threadvar.}: ptr Slot   # this thread's slot (worker, or borrowed caller slot)
  isWorker {.threadvar.}: bool
  rngState {.threadvar.}: uint64

proc sched_yield(): cint {.importc, header: "<sched.h>".}

proc numThreads*(): int =
  ## Threads that compute in a parallelFor, the caller included.
  configured.load(moRelaxed)

proc newSlot(): ptr Slot =
  result = cast[ptr Slot](allocShared0(sizeof(Slot)))

# --- small helpers ----------------------------------------------------------------------

proc bump*(c: var Atomic[uint64]) {.inline.} =
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

proc notifyOne*() {.inline.} =
  ## After publishing work: wake one parked thread, if any.
  fence(moSequentiallyConsistent)
  if sleepers.load(moRelaxed) > 0:
    discard wakeEpoch.fetchAdd(1, moRelease)
    parkWake(addr wakeEpoch, 1)

proc notifyAll() =
  discard wakeEpoch.fetchAdd(1, moRelease)
  parkWake(addr wakeEpoch)

proc workVisible*(): bool =
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

proc findWork*(self: ptr Slot): ptr Task {.inline.} =
  result = self.deque.pop()
  if result == nil:
    result = trySteal(self)

proc runFound*(self: ptr Slot, t: ptr Task) {.inline.} =
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

proc ensureStarted*() {.inline.} =
  if not poolStarted.load(moAcquire):
    {.gcsafe.}:
      acquire(poolLock)
      if not poolStarted.load(moRelaxed):
        startWorkersLocked()
      release(poolLock)

# --- caller slots -----------------------------------------------------------------------

proc borrowCallerSlot*(): bool =
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

proc returnCallerSlot*() =
  let s = currentSlot
  currentSlot = nil
  s.busy.store(false, moRelease)

# --- joining ------------------------------------------------------------------------------

proc groupDone*(g: var TaskGroup): bool {.inline.} =
  (g.pending.load(moAcquire) and countMask) == 0

proc parkJoin*(self: ptr Slot, g: var TaskGroup) =
  ## `sync` found no work anywhere: park on the event count; the finisher of `g`'s last task
  ## wakes it (waiter bit).
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
