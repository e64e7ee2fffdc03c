## Channel throughput with no Python in the loop. Prints one JSON line per case.
##
## Message: one int64 (8 bytes) unless stated; capacity 1024; clock: wall clock
## (std/monotimes) from the moment both sides start to the moment the receiver has everything;
## msgs/s = messages / seconds. Threads: the sender(s) and receiver(s) are separate OS threads.
## Built and run by benchmarks/nim/run.py (`python benchmarks/nim/run.py channels`).
##
## Cases:
## - spsc-ring: Lamport ring operations alone (spscTryPush/spscTryPop, spin when full/empty):
##   the data structure's ceiling
## - spsc-channel / mpmc-channel: the full channel API (blocking send/recv with close checks,
##   waiter bookkeeping and wakeups), one message per call
## - spsc-batch: sendMany/recvMany, 256 messages per call

import std/[atomics, monotimes, os, strutils, times]
import nexpo_core/errors
import nexpo_core/runtime/[channel, ring, spsc]

const capacity = 1024

type Timespec {.importc: "struct timespec", header: "<time.h>".} = object
  tv_sec, tv_nsec: clong
proc clock_gettime(clk: cint, t: ptr Timespec): cint {.importc, header: "<time.h>".}
var CLOCK_THREAD_CPUTIME_ID {.importc, header: "<time.h>".}: cint

proc threadCpuNs(): float =
  ## CPU time of this thread: robust when other processes share the cores.
  var ts: Timespec
  discard clock_gettime(CLOCK_THREAD_CPUTIME_ID, addr ts)
  ts.tv_sec.float * 1e9 + ts.tv_nsec.float

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
    while not spscTryPush(r, addr v, 8, nil): cpuRelax()

proc chanSender(c: ptr Ctx) {.thread.} =
  waitGo(c)
  for i in 0 ..< c.n:
    var v = i
    doAssert send(c.ch, addr v, 8, -1) == stOk

proc batchSender(c: ptr Ctx) {.thread.} =
  waitGo(c)
  var data: array[256, int]
  var lens: array[256, int]
  for i in 0 ..< 256: lens[i] = 8
  var i = 0
  while i < c.n:
    let k = min(256, c.n - i)
    for j in 0 ..< k: data[j] = i + j
    var sent = 0
    doAssert sendMany(c.ch, addr data[0], cast[ptr UncheckedArray[int]](addr lens[0]), k, -1, sent) == stOk
    i += k

proc ringReceive(c: ptr Ctx): int =
  let r = c.ch.ring
  var v: int
  var res: ReadResult
  for i in 0 ..< c.n:
    while not spscTryPop(r, addr v, 8, res): cpuRelax()
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
    doAssert spscTryPush(r, addr v, 8, nil)
    doAssert spscTryPop(r, addr v, 8, res)
    sum += v
  let cpu = threadCpuNs() - c0
  let ns = (getMonoTime() - t0).inNanoseconds.float
  doAssert sum == expectSum(n)
  echo """{"case": "spsc-ring-same-thread", "messages": $1, "message_bytes": 8, "capacity": $2, "clock": "wall+thread-cpu", "ns_per_send_recv_pair": $3, "cpu_ns_per_send_recv_pair": $4}""" % [
    $n, $capacity, formatFloat(ns / n.float, ffDecimal, 2), formatFloat(cpu / n.float, ffDecimal, 2)]
  release(ch)

let n = if paramCount() >= 1: parseInt(paramStr(1)) else: 10_000_000
let reps = if paramCount() >= 2: parseInt(paramStr(2)) else: 3
for _ in 0 ..< reps:
  runOneThread(n div 4)
  runSpsc("spsc-ring", n, ringSender, ringReceive)
  runSpsc("spsc-channel", n div 4, chanSender, proc (c: ptr Ctx): int = chanReceive(c, c.n))
  runSpsc("spsc-batch", n, batchSender, batchReceive)
  runMpmc(n div 4)
