## Typed queues (SpscQueue[T], MpmcQueue[T]): full/empty edges, batches, blocking push/pop,
## and across threads exactly once with per-producer FIFO. Sized to stay quick under ASan and TSan.

import std/[atomics, posix, unittest]
import nexpo_core/config
import nexpo_core/runtime/[spsc, vyukov]

const perProducer = when tsanEnabled or sanitizeEnabled: 20_000 else: 200_000

template backoff(spins: var int) =
  inc spins
  if spins < 32: cpuRelax()
  else:
    discard sched_yield()
    spins = 0

# --- SPSC -------------------------------------------------------------------------------

type SpscCtx = object
  q: ptr SpscQueue[int64]
  bad: Atomic[int]

proc spscProducer(c: ptr SpscCtx) {.thread.} =
  var i = 0
  var buf: array[19, int64]
  var spins = 0
  while i < perProducer:
    if i mod 3 == 0:
      # a batch of up to 19, pushed in pieces as room appears
      let k = min(19, perProducer - i)
      for j in 0 ..< k: buf[j] = int64(i + j)
      var done = 0
      while done < k:
        let m = c.q[].pushMany(buf.toOpenArray(done, k - 1))
        if m == 0: backoff(spins)
        done += m
      i += k
    else:
      while not c.q[].tryPush(int64(i)): backoff(spins)
      inc i

proc spscConsumer(c: ptr SpscCtx) {.thread.} =
  var expect = 0'i64
  var buf: array[23, int64]
  var spins = 0
  var round = 0
  while expect < perProducer:
    inc round
    if round mod 2 == 0:
      let m = c.q[].popMany(buf)
      if m == 0: backoff(spins)
      for j in 0 ..< m:
        if buf[j] != expect: discard c.bad.fetchAdd(1)
        inc expect
    else:
      var v: int64
      if c.q[].tryPop(v):
        if v != expect: discard c.bad.fetchAdd(1)
        inc expect
      else: backoff(spins)

# --- MPMC -------------------------------------------------------------------------------

type
  MpmcCtx = object
    q: ptr MpmcQueue[int64]
    producers: int
    received: ptr UncheckedArray[Atomic[int32]]
    orderErrors: Atomic[int]
    done: Atomic[int]        # values taken so far, all consumers
    share: int               # shareConsumer: values each consumer takes
    popOnly: bool            # shareConsumer: blocking pops only
  Arg = tuple[c: ptr MpmcCtx, id: int]

proc encode(producer, seq: int): int64 = int64(producer shl 32 or seq)

proc mpmcProducer(a: Arg) {.thread.} =
  # Rounds of a batch, a tryPush and a blocking push.
  var s = 0
  var buf: array[13, int64]
  var spins = 0
  while s < perProducer:
    if (s + a.id) mod 3 == 2:
      a.c.q[].push(encode(a.id, s))
      inc s
    elif (s + a.id) mod 3 == 0:
      let k = min(13, perProducer - s)
      for j in 0 ..< k: buf[j] = encode(a.id, s + j)
      var done = 0
      while done < k:
        let m = a.c.q[].pushMany(buf.toOpenArray(done, k - 1))
        if m == 0: backoff(spins)
        done += m
      s += k
    else:
      while not a.c.q[].tryPush(encode(a.id, s)): backoff(spins)
      inc s

proc record(c: ptr MpmcCtx, got: openArray[int64], last: var seq[int]) =
  ## Count each value received and check it follows the last one from its producer.
  for v in got:
    let p = int(v shr 32)
    let s = int(v and 0xffff_ffff)
    discard c.received[p * perProducer + s].fetchAdd(1, moRelaxed)
    if s <= last[p]: discard c.orderErrors.fetchAdd(1)
    last[p] = s

proc mpmcConsumer(a: Arg) {.thread.} =
  let c = a.c
  let total = c.producers * perProducer
  var last = newSeq[int](c.producers)
  for x in last.mitems: x = -1
  var buf: array[17, int64]
  var spins = 0
  var round = 0
  while c.done.load(moRelaxed) < total:
    inc round
    var m = 0
    if round mod 2 == 0:
      m = c.q[].popMany(buf)
    else:
      var v: int64
      if c.q[].tryPop(v):
        buf[0] = v
        m = 1
    if m == 0:
      backoff(spins)
      continue
    record(c, buf.toOpenArray(0, m - 1), last)
    discard c.done.fetchAdd(m)

type StressMode = enum
  anyCall        ## producers mix every call; consumers try/batch until all are taken
  blockingOnly   ## push/pop only
  mixedShares    ## producers mix every call; each consumer takes an equal share mixing pop,
                 ## tryPop and popMany (a share, so a blocking pop always gets a value)

proc shareConsumer(a: Arg) {.thread.} =
  let c = a.c
  let share = c.share
  var last = newSeq[int](c.producers)
  for x in last.mitems: x = -1
  var buf: array[7, int64]
  var got, round, spins = 0
  while got < share:
    inc round
    var m = 0
    if c.popOnly or round mod 3 == 0:
      buf[0] = c.q[].pop()
      m = 1
    elif round mod 3 == 1:
      if c.q[].tryPop(buf[0]): m = 1
    else:
      m = c.q[].popMany(buf.toOpenArray(0, min(buf.len, share - got) - 1))
    if m == 0:
      backoff(spins)
      continue
    record(c, buf.toOpenArray(0, m - 1), last)
    got += m

proc blockingProducer(a: Arg) {.thread.} =
  for s in 0 ..< perProducer: a.c.q[].push(encode(a.id, s))

proc mpmcStress(producers, consumers, capacity: int, mode = anyCall): bool =
  let c = cast[ptr MpmcCtx](allocShared0(sizeof(MpmcCtx)))
  c.q = newMpmcQueue[int64](capacity)
  c.producers = producers
  let total = producers * perProducer
  c.received = cast[ptr UncheckedArray[Atomic[int32]]](allocShared0(total * sizeof(int32)))
  var ps = newSeq[Thread[Arg]](producers)
  var cs = newSeq[Thread[Arg]](consumers)
  if mode != anyCall:
    doAssert total mod consumers == 0
    c.share = total div consumers
  c.popOnly = mode == blockingOnly
  for i in 0 ..< consumers:
    createThread(cs[i], (if mode == anyCall: mpmcConsumer else: shareConsumer), (c, i))
  for i in 0 ..< producers:
    createThread(ps[i], (if mode == blockingOnly: blockingProducer else: mpmcProducer), (c, i))
  joinThreads(ps)
  joinThreads(cs)
  result = c.orderErrors.load == 0 and c.q[].len == 0
  for i in 0 ..< total:
    if c.received[i].load != 1:
      result = false
      break
  deallocShared(c.received)
  freeQueue(c.q)
  deallocShared(c)

suite "typed queues":
  test "SpscQueue: capacity, full, empty, batches in order":
    var q: SpscQueue[int64]
    q.init(5)
    check q.capacity == 8
    var v: int64
    check not q.tryPop(v)
    for i in 0 ..< 8: check q.tryPush(int64(i))
    check not q.tryPush(99)
    check q.len == 8
    var out3: array[3, int64]
    check q.popMany(out3) == 3
    check out3 == [0'i64, 1, 2]
    # Freed slots go back in groups of 128 bytes, or when the consumer has taken all it knows:
    # these 3 are held back while 5 messages wait.
    check q.pushMany([10'i64, 11, 12, 13, 14]) == 0
    var all: array[16, int64]
    check q.popMany(all) == 5
    check all[0 ..< 5] == @[3'i64, 4, 5, 6, 7]
    check q.len == 0
    check q.pushMany([10'i64, 11, 12, 13, 14, 15, 16, 17, 18]) == 8
    check q.popMany(all) == 8
    check all[0 ..< 8] == @[10'i64, 11, 12, 13, 14, 15, 16, 17]
    check q.popMany(all) == 0
    check q.pushMany(newSeq[int64]()) == 0

  test "SpscQueue of big values frees every slot at once":
    type Big = object
      a: array[16, int64]   # 128 bytes: a release group of one slot
    var q: SpscQueue[Big]
    q.init(4)
    for i in 0 ..< 4: check q.tryPush(Big(a: [int64(i), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
    var b: Big
    check q.tryPop(b) and b.a[0] == 0
    check q.tryPush(b)
    check q.len == 4

  test "MpmcQueue: capacity, full, empty, batches in order":
    var q: MpmcQueue[int64]
    q.init(1)
    check q.capacity == 2
    q.`=destroy`()
    q.init(6)
    check q.capacity == 8
    var v: int64
    check not q.tryPop(v)
    check q.pushMany([1'i64, 2, 3]) == 3
    for i in 4 .. 8: check q.tryPush(int64(i))
    check not q.tryPush(9)
    check q.pushMany([9'i64]) == 0
    var all: array[5, int64]
    check q.popMany(all) == 5
    check all == [1'i64, 2, 3, 4, 5]
    check q.pushMany([9'i64, 10, 11, 12]) == 4        # wraps around the ring
    var rest: array[16, int64]
    check q.popMany(rest) == 7
    check rest[0 ..< 7] == @[6'i64, 7, 8, 9, 10, 11, 12]

  test "SpscQueue across two threads: exactly once, in order, single and batch ops":
    for cap in [2, 64, 1024]:
      let c = cast[ptr SpscCtx](allocShared0(sizeof(SpscCtx)))
      c.q = newSpscQueue[int64](cap)
      check (cast[uint](c.q) and uint(queueSpan - 1)) == 0
      var p, r: Thread[ptr SpscCtx]
      createThread(r, spscConsumer, c)
      createThread(p, spscProducer, c)
      joinThread(p)
      joinThread(r)
      check c.bad.load == 0
      check c.q[].len == 0
      freeQueue(c.q)
      deallocShared(c)

  test "MpmcQueue 4 producers x 4 consumers: exactly once, per-producer FIFO":
    check mpmcStress(4, 4, 1024)

  test "MpmcQueue with a tiny ring":
    check mpmcStress(2, 2, 2)
    check mpmcStress(3, 1, 4)
    check mpmcStress(1, 3, 4)

  test "MpmcQueue blocking push/pop: in order on one thread, mixed with try calls":
    var q: MpmcQueue[int64]
    q.init(4)
    for i in 0 ..< 4: q.push(int64(i))
    check not q.tryPush(4)
    check q.pop() == 0
    check q.tryPush(4)
    var v: int64
    check q.tryPop(v) and v == 1
    for i in 2 .. 4: check q.pop() == int64(i)
    check not q.tryPop(v)

  test "MpmcQueue blocking push/pop 4 producers x 4 consumers: exactly once, per-producer FIFO":
    check mpmcStress(4, 4, 1024, blockingOnly)
    check mpmcStress(4, 4, 2, blockingOnly)
    check mpmcStress(2, 2, 1024, blockingOnly)

  test "MpmcQueue blocking, try and batch calls mixed on both sides, 4 x 4":
    check mpmcStress(4, 4, 1024, mixedShares)
    check mpmcStress(4, 4, 4, mixedShares)
    check mpmcStress(2, 4, 2, mixedShares)
