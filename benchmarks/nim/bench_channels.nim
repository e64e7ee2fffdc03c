## Channel throughput with no Python in the loop. Prints one JSON line per case.
##
## Message: one int64 (8 bytes) unless stated; capacity 1024; clock: wall clock
## (std/monotimes) from the moment both sides start to the moment the receiver has everything;
## msgs/s = messages / seconds. Threads: the sender(s) and receiver(s) are separate OS threads.
## Built and run by benchmarks/nim/run.py (`python benchmarks/nim/run.py channels`).
##
## Cases:
## - spsc-ring: the channels' byte ring operations alone (spscTryPush/spscPop, spin when
##   full/empty): the data structure's ceiling under the channel layer
## - spsc-channel / mpmc-channel: the full channel API (blocking send/recv with close checks,
##   waiter bookkeeping and wakeups), one message per call
## - spsc-batch / mpmc-batch: sendMany/recvMany, 256 messages per call (mpmc: 2 x 2 threads)
## - typed-spsc / typed-mpmc: the typed queues `SpscQueue[int64]` / `MpmcQueue[int64]` (same
##   algorithms as the byte rings, see spsc.nim / vyukov.nim; allocated aligned with
##   newSpscQueue/newMpmcQueue), one value per call; message_bytes 8 = the int64 itself, no
##   slot header. typed-mpmc calls the queue's blocking push/pop (fetch-add claims, waiting by
##   backoff.nim's policy: 15 PAUSEs, 8 yields, a nap). typed-spsc calls tryPush/tryPop and,
##   when full/empty, PAUSEs and yields after 64 tries (`waitTurn`; SpscQueue has no blocking
##   calls, and backoff.nim's policy, tuned for more threads than cores, halves this 1 x 1 row)
## - typed-spsc-batch / typed-mpmc-batch: pushMany/popMany of up to 256 values
##
## Arguments: [messages (10M)] [repetitions (3)] [only cases whose name contains this]. The
## cases run in the order above; a filtered run skips the earlier ones, which also warm the
## machine up, so compare filtered runs only with filtered runs.

import std/[atomics, monotimes, os, posix, strutils, times]
import nexpo_core/errors
import nexpo_core/runtime/[channel, ring, spsc, vyukov]
import ./bare_ring, ./cputime

const capacity = 1024


type Ctx = object
  ch: ptr ByteChannel
  n: int
  go: Atomic[bool]

proc waitGo(c: ptr Ctx) =
  while not c.go.load(moAcquire): cpuRelax()

proc ringSender(c: ptr Ctx) {.thread.} =
  waitGo(c)
  let r = c.ch.ring
  for i in 0 ..< c.n:
    var v = i
    while spscTryPush(r, addr v, 8, nil) != 1: cpuRelax()

proc chanSender(c: ptr Ctx) {.thread.} =
  waitGo(c)
  for i in 0 ..< c.n:
    var v = i
    doAssert send(c.ch, addr v, 8, -1) == stOk

proc sendBatches(ch: ptr ByteChannel, count: int) =
  ## Send 0 ..< count through sendMany, 256 messages per call.
  var data: array[256, int]
  var lens: array[256, int]
  for i in 0 ..< 256: lens[i] = 8
  var i = 0
  while i < count:
    let k = min(256, count - i)
    for j in 0 ..< k: data[j] = i + j
    var sent = 0
    doAssert sendMany(ch, addr data[0], cast[ptr UncheckedArray[int]](addr lens[0]), k, -1, sent) == stOk
    i += k

proc batchSender(c: ptr Ctx) {.thread.} =
  waitGo(c)
  sendBatches(c.ch, c.n)

proc ringReceive(c: ptr Ctx): int =
  let r = c.ch.ring
  var v: int
  var res: ReadResult
  for i in 0 ..< c.n:
    while spscPop(r, addr v, 8, 8, res) != 1: cpuRelax()
    result += v

proc chanReceive(c: ptr Ctx, count: int): int =
  var v: int
  var res: ReadResult
  for i in 0 ..< count:
    doAssert recv(c.ch, addr v, 8, res, -1) == stOk
    result += v

proc batchReceive(c: ptr Ctx): int =
  var buf: array[256, int]
  var lens: array[256, int]
  var got = 0
  var heap: pointer
  while got < c.n:
    var count = 0
    doAssert recvMany(c.ch, addr buf[0], sizeof(buf), cast[ptr UncheckedArray[int]](addr lens[0]),
                      256, -1, count, heap) == stOk
    for j in 0 ..< count: result += buf[j]
    got += count

# --- typed queues ---------------------------------------------------------------------
# The try and batch calls never block: the caller waits. Here: PAUSE a little, then sched_yield
# (with 4 threads on 2 cores a thread spinning on its peer's time slice would stall both).
# typed-mpmc uses the queue's own blocking push/pop instead.

template waitTurn(spins: var int) =
  inc spins
  if spins < 64: cpuRelax()
  else:
    discard sched_yield()
    spins = 0

type TypedCtx = object
  spsc: ptr SpscQueue[int64]   # newSpscQueue/newMpmcQueue: aligned as the layouts want
  mpmc: ptr MpmcQueue[int64]
  n: int           # messages per producer
  go: Atomic[bool]
  sum: Atomic[int64]

proc waitGoT(c: ptr TypedCtx) =
  while not c.go.load(moAcquire): cpuRelax()

proc typedSpscSender(c: ptr TypedCtx) {.thread.} =
  waitGoT(c)
  for i in 0 ..< c.n:
    var spins = 0
    while not c.spsc[].tryPush(int64(i)): waitTurn(spins)

proc batchSend[Q](c: ptr TypedCtx, q: ptr Q) =
  ## Push 0 ..< c.n in batches of 256 (what each typed *-batch sender does).
  var buf: array[256, int64]
  var i = 0
  while i < c.n:
    let k = min(256, c.n - i)
    for j in 0 ..< k: buf[j] = int64(i + j)
    var done, spins = 0
    while done < k:
      let m = q[].pushMany(buf.toOpenArray(done, k - 1))
      if m == 0: waitTurn(spins)
      done += m
    i += k

proc typedSpscBatchSender(c: ptr TypedCtx) {.thread.} =
  waitGoT(c)
  batchSend(c, c.spsc)

proc typedMpmcSender(c: ptr TypedCtx) {.thread.} =
  waitGoT(c)
  let q = c.mpmc
  for i in 0 ..< c.n:
    q[].push(int64(i))

proc typedMpmcBatchSender(c: ptr TypedCtx) {.thread.} =
  waitGoT(c)
  batchSend(c, c.mpmc)

proc typedMpmcReceiver(c: ptr TypedCtx) {.thread.} =
  # Each receiver takes exactly n messages (2 producers x n = 2 receivers x n).
  waitGoT(c)
  let q = c.mpmc
  var s: int64
  for i in 0 ..< c.n:
    s += q[].pop()
  discard c.sum.fetchAdd(s)

proc typedMpmcBatchReceiver(c: ptr TypedCtx) {.thread.} =
  waitGoT(c)
  var s: int64
  var buf: array[256, int64]
  var got, spins = 0
  while got < c.n:
    let m = c.mpmc[].popMany(buf.toOpenArray(0, min(256, c.n - got) - 1))
    if m == 0: waitTurn(spins)
    for j in 0 ..< m: s += buf[j]
    got += m
  discard c.sum.fetchAdd(s)

proc report(name: string, producers, consumers, n: int, ns: float) =
  echo """{"case": "$1", "producers": $2, "consumers": $3, "messages": $4, "message_bytes": 8, "capacity": $5, "clock": "wall", "seconds": $6, "msgs_per_s": $7}""" % [
    name, $producers, $consumers, $n, $capacity, formatFloat(ns / 1e9, ffDecimal, 4),
    $int(n.float / (ns / 1e9))]

proc expectSum(n: int): int = n * (n - 1) div 2

proc runSpsc(name: string, n: int, sender: proc (c: ptr Ctx) {.thread, nimcall.},
             receive: proc (c: ptr Ctx): int {.nimcall.}) =
  var c = Ctx(ch: newChannel(cmSpsc, capacity, 8), n: n)
  var t: Thread[ptr Ctx]
  createThread(t, sender, addr c)
  let t0 = getMonoTime()
  c.go.store(true, moRelease)
  let total = receive(addr c)
  let ns = (getMonoTime() - t0).inNanoseconds.float
  joinThread(t)
  doAssert total == expectSum(n)
  report(name, 1, 1, n, ns)
  release(c.ch)

type MpmcCtx = tuple[c: ptr Ctx, count: int, sum: ptr Atomic[int]]

proc mpmcSender(a: MpmcCtx) {.thread.} =
  waitGo(a.c)
  for i in 0 ..< a.count:
    var v = i
    doAssert send(a.c.ch, addr v, 8, -1) == stOk

proc mpmcReceiver(a: MpmcCtx) {.thread.} =
  waitGo(a.c)
  discard a.sum[].fetchAdd(chanReceive(a.c, a.count))

proc runMpmc(n: int) =
  var c = Ctx(ch: newChannel(cmMpmc, capacity, 8), n: n)
  var sum: Atomic[int]
  let each = n div 2
  var ts: array[4, Thread[MpmcCtx]]
  createThread(ts[0], mpmcSender, (addr c, each, addr sum))
  createThread(ts[1], mpmcSender, (addr c, each, addr sum))
  createThread(ts[2], mpmcReceiver, (addr c, each, addr sum))
  createThread(ts[3], mpmcReceiver, (addr c, each, addr sum))
  let t0 = getMonoTime()
  c.go.store(true, moRelease)
  joinThreads(ts)
  let ns = (getMonoTime() - t0).inNanoseconds.float
  doAssert sum.load == 2 * expectSum(each)
  report("mpmc-channel", 2, 2, 2 * each, ns)
  release(c.ch)

proc runOneThread(n: int) =
  ## Send then receive on one thread: the cost of the operations themselves, free of
  ## cross-core traffic and of the scheduler (meaningful on a loaded machine).
  for mode in [cmSpsc, cmMpmc]:
    let ch = newChannel(mode, capacity, 8)
    var v, sum: int
    var res: ReadResult
    let t0 = getMonoTime()
    let c0 = threadCpuNs()
    for i in 0 ..< n:
      v = i
      doAssert send(ch, addr v, 8, -1) == stOk
      doAssert recv(ch, addr v, 8, res, -1) == stOk
      sum += v
    let cpu = threadCpuNs() - c0
    let ns = (getMonoTime() - t0).inNanoseconds.float
    doAssert sum == expectSum(n)
    echo """{"case": "$1-channel-same-thread", "messages": $2, "message_bytes": 8, "capacity": $3, "clock": "wall+thread-cpu", "ns_per_send_recv_pair": $4, "cpu_ns_per_send_recv_pair": $5}""" % [
      $mode, $n, $capacity, formatFloat(ns / n.float, ffDecimal, 2), formatFloat(cpu / n.float, ffDecimal, 2)]
    release(ch)
  let ch = newChannel(cmSpsc, capacity, 8)
  let r = ch.ring
  var v, sum: int
  var res: ReadResult
  let t0 = getMonoTime()
  let c0 = threadCpuNs()
  for i in 0 ..< n:
    v = i
    doAssert spscTryPush(r, addr v, 8, nil) == 1
    doAssert spscPop(r, addr v, 8, 8, res) == 1
    sum += v
  let cpu = threadCpuNs() - c0
  let ns = (getMonoTime() - t0).inNanoseconds.float
  doAssert sum == expectSum(n)
  echo """{"case": "spsc-ring-same-thread", "messages": $1, "message_bytes": 8, "capacity": $2, "clock": "wall+thread-cpu", "ns_per_send_recv_pair": $3, "cpu_ns_per_send_recv_pair": $4}""" % [
    $n, $capacity, formatFloat(ns / n.float, ffDecimal, 2), formatFloat(cpu / n.float, ffDecimal, 2)]
  release(ch)

proc runTypedSpsc(name: string, n: int, batch: bool) =
  let c = cast[ptr TypedCtx](allocShared0(sizeof(TypedCtx)))
  c.spsc = newSpscQueue[int64](capacity)
  c.n = n
  var t: Thread[ptr TypedCtx]
  createThread(t, (if batch: typedSpscBatchSender else: typedSpscSender), c)
  var total: int64
  let t0 = getMonoTime()
  c.go.store(true, moRelease)
  if batch:
    var buf: array[256, int64]
    var got, spins = 0
    while got < n:
      let m = c.spsc[].popMany(buf)
      if m == 0: waitTurn(spins)
      for j in 0 ..< m: total += buf[j]
      got += m
  else:
    var v: int64
    for i in 0 ..< n:
      var spins = 0
      while not c.spsc[].tryPop(v): waitTurn(spins)
      total += v
  let ns = (getMonoTime() - t0).inNanoseconds.float
  joinThread(t)
  doAssert total == int64(expectSum(n))
  report(name, 1, 1, n, ns)
  if c.spsc != nil: freeQueue(c.spsc)
  if c.mpmc != nil: freeQueue(c.mpmc)
  deallocShared(c)

proc runTypedMpmc(name: string, n: int, batch: bool) =
  let c = cast[ptr TypedCtx](allocShared0(sizeof(TypedCtx)))
  c.mpmc = newMpmcQueue[int64](capacity)
  let each = n div 2
  c.n = each
  var ts: array[4, Thread[ptr TypedCtx]]
  for i in 0 .. 1:
    createThread(ts[i], (if batch: typedMpmcBatchSender else: typedMpmcSender), c)
    createThread(ts[2 + i], (if batch: typedMpmcBatchReceiver else: typedMpmcReceiver), c)
  let t0 = getMonoTime()
  c.go.store(true, moRelease)
  joinThreads(ts)
  let ns = (getMonoTime() - t0).inNanoseconds.float
  doAssert c.sum.load == 2 * int64(expectSum(each))
  report(name, 2, 2, 2 * each, ns)
  if c.spsc != nil: freeQueue(c.spsc)
  if c.mpmc != nil: freeQueue(c.mpmc)
  deallocShared(c)

proc mpmcBatchSender(a: MpmcCtx) {.thread.} =
  waitGo(a.c)
  sendBatches(a.c.ch, a.count)

proc mpmcBatchReceiver(a: MpmcCtx) {.thread.} =
  # Receivers stop when the channel is closed and drained (they need not split evenly).
  waitGo(a.c)
  var buf: array[256, int]
  var lens: array[256, int]
  var heap: pointer
  var s = 0
  while true:
    var count = 0
    let st = recvMany(a.c.ch, addr buf[0], sizeof(buf), cast[ptr UncheckedArray[int]](addr lens[0]),
                      256, -1, count, heap)
    if st == stClosed: break
    doAssert st == stOk
    for j in 0 ..< count: s += buf[j]
  discard a.sum[].fetchAdd(s)

proc runMpmcBatch(n: int) =
  var c = Ctx(ch: newChannel(cmMpmc, capacity, 8), n: n)
  var sum: Atomic[int]
  let each = n div 2
  var ps, rs: array[2, Thread[MpmcCtx]]
  for i in 0 .. 1:
    createThread(ps[i], mpmcBatchSender, (addr c, each, addr sum))
    createThread(rs[i], mpmcBatchReceiver, (addr c, each, addr sum))
  let t0 = getMonoTime()
  c.go.store(true, moRelease)
  joinThreads(ps)
  close(c.ch)
  joinThreads(rs)
  let ns = (getMonoTime() - t0).inNanoseconds.float
  doAssert sum.load == 2 * expectSum(each)
  report("mpmc-batch", 2, 2, 2 * each, ns)
  release(c.ch)

let n = if paramCount() >= 1: parseInt(paramStr(1)) else: 10_000_000
let reps = if paramCount() >= 2: parseInt(paramStr(2)) else: 3
let only = if paramCount() >= 3: paramStr(3) else: ""   ## run only cases whose name contains this

proc wanted(name: string): bool = only.len == 0 or only in name

for _ in 0 ..< reps:
  if wanted("same-thread"): runOneThread(n div 4)
  if wanted("spsc-ring"): runSpsc("spsc-ring", n, ringSender, ringReceive)
  if wanted("spsc-channel"):
    runSpsc("spsc-channel", n div 4, chanSender, proc (c: ptr Ctx): int = chanReceive(c, c.n))
  if wanted("spsc-batch"): runSpsc("spsc-batch", n, batchSender, batchReceive)
  if wanted("mpmc-channel"): runMpmc(n div 4)
  if wanted("mpmc-batch"): runMpmcBatch(n)
  if wanted("typed-spsc"): runTypedSpsc("typed-spsc", n * 4, batch = false)
  if wanted("typed-spsc-batch"): runTypedSpsc("typed-spsc-batch", n * 4, batch = true)
  if wanted("typed-mpmc"): runTypedMpmc("typed-mpmc", n, batch = false)
  if wanted("typed-mpmc-batch"): runTypedMpmc("typed-mpmc-batch", n * 2, batch = true)
