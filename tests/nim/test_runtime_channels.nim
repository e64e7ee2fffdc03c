## Channels: every mode within its contract under stress (exactly once, per-producer FIFO),
## close racing with send/recv, timeouts, batches, select fairness, shared-memory handles.
## Sized to stay quick under ASan and TSan.

import std/[atomics, os, strutils, unittest]
import nexpo_core/config
import nexpo_core/errors
import nexpo_core/runtime/[channel, ring]

const perProducer = when tsanEnabled or sanitizeEnabled: 10_000 else: 100_000

type
  Msg = object
    producer, seq: int

  StressCtx = object
    ch: ptr ByteChannel
    producers, consumers: int
    received: ptr UncheckedArray[Atomic[int32]]   # per (producer, seq): times received
    lastSeq: ptr UncheckedArray[int]              # per (consumer, producer): last seq seen
    orderErrors: Atomic[int]
    done: Atomic[int]

  Arg = tuple[ctx: ptr StressCtx, id: int]

proc producer(a: Arg) {.thread.} =
  let c = a.ctx
  for s in 0 ..< perProducer:
    var m = Msg(producer: a.id, seq: s)
    doAssert send(c.ch, addr m, sizeof(m), -1) == stOk

proc consumer(a: Arg) {.thread.} =
  let c = a.ctx
  var m: Msg
  var res: ReadResult
  while true:
    let st = recv(c.ch, addr m, sizeof(m), res, -1)
    if st == stClosed: break
    doAssert st == stOk and res.len == sizeof(Msg) and res.heap == nil
    discard c.received[m.producer * perProducer + m.seq].fetchAdd(1, moRelaxed)
    let slot = a.id * c.producers + m.producer
    if m.seq <= c.lastSeq[slot]: discard c.orderErrors.fetchAdd(1)
    c.lastSeq[slot] = m.seq

proc batchProducer(a: Arg) {.thread.} =
  ## sendMany in batches of 1..37 messages (varying, so claims straddle the ring's end).
  let c = a.ctx
  var batch: array[37, Msg]
  var lens: array[37, int]
  for i in 0 ..< lens.len: lens[i] = sizeof(Msg)
  var s = 0
  var k = 1
  while s < perProducer:
    let n = min(k, perProducer - s)
    for j in 0 ..< n: batch[j] = Msg(producer: a.id, seq: s + j)
    var sent = 0
    doAssert sendMany(c.ch, addr batch[0], cast[ptr UncheckedArray[int]](addr lens[0]), n, -1, sent) == stOk
    doAssert sent == n
    s += n
    k = k mod 37 + 1

proc batchConsumer(a: Arg) {.thread.} =
  let c = a.ctx
  var buf: array[50, Msg]
  var lens: array[50, int]
  var heap: pointer
  var want = 1
  while true:
    var count = 0
    let st = recvMany(c.ch, addr buf[0], sizeof(buf), cast[ptr UncheckedArray[int]](addr lens[0]),
                      want, -1, count, heap)
    if st == stClosed: break
    doAssert st == stOk and heap == nil and count >= 1 and count <= want
    for j in 0 ..< count:
      doAssert lens[j] == sizeof(Msg)
      let m = buf[j]
      discard c.received[m.producer * perProducer + m.seq].fetchAdd(1, moRelaxed)
      let slot = a.id * c.producers + m.producer
      if m.seq <= c.lastSeq[slot]: discard c.orderErrors.fetchAdd(1)
      c.lastSeq[slot] = m.seq
    want = want mod 50 + 1

proc stress(mode: ChannelMode, producers, consumers, capacity: int, batches = false): bool =
  var c = StressCtx(ch: newChannel(mode, capacity, 64), producers: producers, consumers: consumers)
  let total = producers * perProducer
  c.received = cast[ptr UncheckedArray[Atomic[int32]]](allocShared0(total * sizeof(int32)))
  c.lastSeq = cast[ptr UncheckedArray[int]](allocShared0(consumers * producers * sizeof(int)))
  for i in 0 ..< consumers * producers: c.lastSeq[i] = -1
  var ps = newSeq[Thread[Arg]](producers)
  var cs = newSeq[Thread[Arg]](consumers)
  for i in 0 ..< consumers:
    createThread(cs[i], (if batches and i mod 2 == 0: batchConsumer else: consumer), (addr c, i))
  for i in 0 ..< producers:
    createThread(ps[i], (if batches and i mod 2 == 0: batchProducer else: producer), (addr c, i))
  joinThreads(ps)
  close(c.ch)
  joinThreads(cs)
  result = c.orderErrors.load == 0
  for i in 0 ..< total:
    if c.received[i].load != 1:
      result = false
      break
  deallocShared(c.received)
  deallocShared(c.lastSeq)
  release(c.ch)

# --- close racing with send/recv --------------------------------------------------------

type RaceCtx = object
  ch: ptr ByteChannel
  sent, got: Atomic[int]

proc raceSender(c: ptr RaceCtx) {.thread.} =
  var x = 7
  while true:
    let st = send(c.ch, addr x, sizeof(x), 1_000_000)
    if st == stOk: discard c.sent.fetchAdd(1)
    elif st == stClosed: break

proc raceBatchSender(c: ptr RaceCtx) {.thread.} =
  ## sendMany: `sent` says how many went even when close stops the batch midway.
  var xs: array[5, int]
  var lens = [8, 8, 8, 8, 8]
  while true:
    var sent = 0
    let st = sendMany(c.ch, addr xs[0], cast[ptr UncheckedArray[int]](addr lens[0]), 5, 1_000_000, sent)
    discard c.sent.fetchAdd(sent)
    if st == stClosed: break
    doAssert st in {stOk, stTimeout}

proc raceBatchReceiver(c: ptr RaceCtx) {.thread.} =
  var xs: array[4, int]
  var lens: array[4, int]
  var heap: pointer
  while true:
    var count = 0
    let st = recvMany(c.ch, addr xs[0], sizeof(xs), cast[ptr UncheckedArray[int]](addr lens[0]), 4,
                      1_000_000, count, heap)
    if st == stOk: discard c.got.fetchAdd(count)
    elif st == stClosed: break

proc raceReceiver(c: ptr RaceCtx) {.thread.} =
  var x: int
  var res: ReadResult
  while true:
    let st = recv(c.ch, addr x, sizeof(x), res, 1_000_000)
    if st == stOk: discard c.got.fetchAdd(1)
    elif st == stClosed: break

# --- helpers ----------------------------------------------------------------------------

proc sendStr(ch: ptr ByteChannel, s: string, timeoutNs = -1'i64): Status =
  send(ch, (if s.len > 0: unsafeAddr s[0] else: nil), s.len, timeoutNs)

proc recvStr(ch: ptr ByteChannel, st: var Status, timeoutNs = -1'i64): string =
  var buf: array[256, char]
  var res: ReadResult
  st = recv(ch, addr buf[0], buf.len, res, timeoutNs)
  if st == stOk:
    result = newString(res.len)
    if res.heap != nil:
      copyMem(addr result[0], res.heap, res.len)
      c_free(res.heap)
    elif res.len > 0:
      copyMem(addr result[0], addr buf[0], res.len)

suite "channels":
  test "each mode: FIFO, empty and long messages, oversize refused":
    for mode in ChannelMode:
      let ch = newChannel(mode, 8, 1000)
      var st: Status
      check sendStr(ch, "") == stOk
      check sendStr(ch, "hello") == stOk
      check sendStr(ch, repeat('x', 1000)) == stOk    # beyond the inline room: heap slot
      check sendStr(ch, repeat('x', 1001)) == stInvalid
      check "max_message_size" in $lastErrorCString()
      check recvStr(ch, st) == "" and st == stOk
      check recvStr(ch, st) == "hello"
      check recvStr(ch, st) == repeat('x', 1000)
      check channel.len(ch) == 0
      release(ch)

  test "every message length from 0 to 40 bytes comes back intact (small-copy paths)":
    for mode in ChannelMode:
      let ch = newChannel(mode, 64, 64)
      for n in 0 .. 40:
        var m = newString(n)
        for i in 0 ..< n: m[i] = char((n * 7 + i * 13) mod 256)
        check sendStr(ch, m) == stOk
        var st: Status
        check recvStr(ch, st) == m
      release(ch)

  test "capacity rounds up to a power of two; full and empty report stAgain":
    let ch = newChannel(cmMpmc, 3, 8)
    check ch.ring.capacity == 4
    for i in 0 ..< 4: check sendStr(ch, "m", 0) == stOk
    check sendStr(ch, "m", 0) == stAgain
    check channel.len(ch) == 4
    var st: Status
    for i in 0 ..< 4: discard recvStr(ch, st, 0)
    discard recvStr(ch, st, 0)
    check st == stAgain
    release(ch)

  test "timeouts expire on empty and full channels":
    for mode in ChannelMode:
      let ch = newChannel(mode, 1, 8)
      check ch.ring.capacity == 2
      var st: Status
      discard recvStr(ch, st, 20_000_000)
      check st == stTimeout
      check sendStr(ch, "a") == stOk
      check sendStr(ch, "a") == stOk
      check sendStr(ch, "b", 20_000_000) == stTimeout
      release(ch)

  test "close: senders fail at once, receivers drain then fail":
    let ch = newChannel(cmMpmc, 4, 8)
    check sendStr(ch, "a") == stOk
    check sendStr(ch, "b") == stOk
    close(ch)
    check ch.isClosed
    check sendStr(ch, "c") == stClosed
    var st: Status
    check recvStr(ch, st) == "a"
    check recvStr(ch, st) == "b"
    discard recvStr(ch, st)
    check st == stClosed
    release(ch)

  test "MPMC 4 producers x 4 consumers: exactly once, per-producer FIFO":
    check stress(cmMpmc, 4, 4, 1024)

  test "MPMC with a tiny ring (constant blocking)":
    check stress(cmMpmc, 2, 2, 2)

  test "MPSC 4 producers x 1 consumer":
    check stress(cmMpsc, 4, 1, 256)

  test "SPMC 1 producer x 4 consumers":
    check stress(cmSpmc, 1, 4, 256)

  test "SPSC 1 x 1":
    check stress(cmSpsc, 1, 1, 64)

  test "batches under stress: sendMany/recvMany mixed with send/recv, every mode":
    check stress(cmMpmc, 4, 4, 64, batches = true)
    check stress(cmMpmc, 2, 2, 4, batches = true)    # claims wrap a tiny ring constantly
    check stress(cmMpsc, 4, 1, 32, batches = true)
    check stress(cmSpmc, 1, 4, 32, batches = true)
    check stress(cmSpsc, 1, 1, 16, batches = true)

  test "close racing with blocked senders and receivers loses nothing":
    # Every mode, single and batch operations, closes at different moments (the first rounds
    # close almost at once, while threads are still starting and claiming).
    const rounds = when tsanEnabled or sanitizeEnabled: 6 else: 24
    for round in 0 ..< rounds:
      for mode in ChannelMode:
        var c = RaceCtx(ch: newChannel(mode, 4, 8))
        let senders = if mode in {cmSpmc, cmSpsc}: 1 else: 3
        let receivers = if mode in {cmMpsc, cmSpsc}: 1 else: 3
        var ss = newSeq[Thread[ptr RaceCtx]](senders)
        var rs = newSeq[Thread[ptr RaceCtx]](receivers)
        for i, t in ss.mpairs:
          createThread(t, (if (i + round) mod 2 == 0: raceSender else: raceBatchSender), addr c)
        for i, t in rs.mpairs:
          createThread(t, (if (i + round) mod 2 == 0: raceReceiver else: raceBatchReceiver), addr c)
        if round mod 3 != 0: sleep(round mod 7)
        close(c.ch)
        joinThreads(ss)
        joinThreads(rs)
        check c.sent.load == c.got.load
        check channel.len(c.ch) == 0
        release(c.ch)

  test "SPSC refuses two senders at once instead of corrupting":
    let ch = newChannel(cmSpsc, 4, 8)
    ch.ring.sendGuard.store(1)   # as if another thread were mid-send
    check sendStr(ch, "x") == stInvalid
    check "SPSC" in $lastErrorCString()
    ch.ring.sendGuard.store(0)
    check sendStr(ch, "x") == stOk
    release(ch)

  test "batches: sendMany / recvMany keep order and respect the buffer":
    for mode in ChannelMode:
      let ch = newChannel(mode, 16, 200)
      var data = ""
      var lens: array[10, int]
      for i in 0 ..< 10:
        let m = $i & repeat('z', i * 20)
        data.add m
        lens[i] = m.len
      var sent = 0
      check sendMany(ch, addr data[0], cast[ptr UncheckedArray[int]](addr lens[0]), 10, -1, sent) == stOk
      check sent == 10
      var buf: array[300, char]
      var got: array[10, int]
      var count = 0
      var heap: pointer
      var all = ""
      var n = 0
      while n < 10:
        check recvMany(ch, addr buf[0], buf.len, cast[ptr UncheckedArray[int]](addr got[0]), 10, -1,
                       count, heap) == stOk
        check heap == nil
        var off = 0
        for i in 0 ..< count:
          check got[i] == lens[n + i]
          for j in 0 ..< got[i]: all.add buf[off + j]
          off += got[i]
        n += count
      check all == data
      release(ch)

  test "recvMany: a first message longer than the buffer comes back alone, on the heap":
    for mode in ChannelMode:
      let ch = newChannel(mode, 8, 500)
      check sendStr(ch, repeat('L', 300)) == stOk
      check sendStr(ch, "after") == stOk
      var buf: array[128, char]
      var lens: array[8, int]
      var count = 0
      var heap: pointer
      check recvMany(ch, addr buf[0], buf.len, cast[ptr UncheckedArray[int]](addr lens[0]), 8, -1,
                     count, heap) == stOk
      check count == 1 and lens[0] == 300 and heap != nil
      c_free(heap)
      heap = nil
      check recvMany(ch, addr buf[0], buf.len, cast[ptr UncheckedArray[int]](addr lens[0]), 8, -1,
                     count, heap) == stOk
      check count == 1 and lens[0] == 5 and heap == nil
      check recvInto(ch, addr buf[0], buf.len, 0) == -int64(ord(stAgain))
      check sendStr(ch, repeat('M', 100)) == stOk
      check recvInto(ch, addr buf[0], 64, 0) == -int64(ord(stUnsupported))   # left in place
      check channel.len(ch) == 1
      check recvInto(ch, addr buf[0], buf.len, 0) == 100
      release(ch)

  test "sendMany stops at close and says how many went":
    for mode in ChannelMode:
      let ch = newChannel(mode, 4, 8)
      var xs: array[6, int]
      var lens = [8, 8, 8, 8, 8, 8]
      var sent = 0
      check sendMany(ch, addr xs[0], cast[ptr UncheckedArray[int]](addr lens[0]), 6, 5_000_000, sent) == stTimeout
      check sent == 4
      close(ch)
      check sendMany(ch, addr xs[0], cast[ptr UncheckedArray[int]](addr lens[0]), 6, -1, sent) == stClosed
      check sent == 0
      var st: Status
      for i in 0 ..< 4: discard recvStr(ch, st)
      check st == stOk
      discard recvStr(ch, st)
      check st == stClosed
      release(ch)

  test "select serves every ready channel (no starvation)":
    var chs: array[3, ptr ByteChannel]
    for i in 0 ..< 3:
      chs[i] = newChannel(cmMpmc, 64, 8)
      for _ in 0 ..< 60: check sendStr(chs[i], $i) == stOk
    var counts: array[3, int]
    var buf: array[8, char]
    var res: ReadResult
    var index = 0
    for _ in 0 ..< 90:
      check select(cast[ptr UncheckedArray[ptr ByteChannel]](addr chs[0]), 3, -1, index,
                   addr buf[0], 8, res) == stOk
      inc counts[index]
    for c in counts: check c == 30
    for c in chs: close(c)
    var left = 0
    while select(cast[ptr UncheckedArray[ptr ByteChannel]](addr chs[0]), 3, -1, index,
                 addr buf[0], 8, res) == stOk:
      inc left
    check left == 90
    for c in chs: release(c)

  test "select wakes on a send from another thread, and times out":
    var chs: array[2, ptr ByteChannel]
    for i in 0 ..< 2: chs[i] = newChannel(cmMpmc, 4, 8)
    var buf: array[8, char]
    var res: ReadResult
    var index = -1
    check select(cast[ptr UncheckedArray[ptr ByteChannel]](addr chs[0]), 2, 10_000_000, index,
                 addr buf[0], 8, res) == stTimeout
    proc later(ch: ptr ByteChannel) {.thread.} =
      sleep(20)
      var x = 'k'
      doAssert send(ch, addr x, 1, -1) == stOk
    var t: Thread[ptr ByteChannel]
    createThread(t, later, chs[1])
    check select(cast[ptr UncheckedArray[ptr ByteChannel]](addr chs[0]), 2, -1, index,
                 addr buf[0], 8, res) == stOk
    check index == 1 and buf[0] == 'k'
    joinThread(t)
    for c in chs: release(c)

  test "shared memory: two handles on one ring, unlinked by the creator's close":
    let name = "nexpo-test-" & $getCurrentProcessId()
    let a = createShared(name, cmSpsc, 8, 64)
    let b = openShared(name)
    check sendStr(a, "across") == stOk
    var st: Status
    check recvStr(b, st) == "across"
    check sendStr(a, repeat('y', 65)) == stInvalid
    expect NexpoError:
      discard createShared(name, cmSpsc, 8, 64)
    close(a)
    check b.isClosed
    expect NexpoError:
      discard openShared(name)
    release(b)
    release(a)

# --- lent references (the binding's kind-2 slots) -------------------------------------------
# A lent object here is a malloc'd block [seq: int]; the message is its 8 bytes. The release
# hook counts and frees, as the binding's deferred Py_DECREF would.

var releasedRefs: Atomic[int]

proc countingRelease(obj: pointer) {.cdecl, gcsafe, raises: [].} =
  discard releasedRefs.fetchAdd(1, moRelaxed)
  c_free(obj)

proc newLent(seq: int): pointer =
  result = c_malloc(csize_t(sizeof(int)))
  cast[ptr int](result)[] = seq

type
  Taken = object
    seqs: seq[int]
    lent: int

proc takeVisit(ctx: pointer, data: pointer, len: int, obj: pointer) {.cdecl, gcsafe, raises: [].} =
  let t = cast[ptr Taken](ctx)
  doAssert len == sizeof(int)
  t.seqs.add cast[ptr int](data)[]
  if obj != nil:
    doAssert obj == data   # newLent's block is its own data
    inc t.lent
    c_free(obj)            # the visitor owns it

proc lendAll(ch: ptr ByteChannel, first, n: int): int =
  ## Lend seqs first ..< first+n; returns how many went (the rest are freed here).
  var objs, datas: array[64, pointer]
  var lens: array[64, int]
  for i in 0 ..< n:
    objs[i] = newLent(first + i)
    datas[i] = objs[i]
    lens[i] = sizeof(int)
  var sent = 0
  discard sendRefs(ch, cast[ptr UncheckedArray[pointer]](addr objs[0]),
                   cast[ptr UncheckedArray[pointer]](addr datas[0]),
                   cast[ptr UncheckedArray[int]](addr lens[0]), n, sent)
  for i in sent ..< n: c_free(objs[i])
  sent

type LendCtx = object
  ch: ptr ByteChannel
  n: int
  seen: ptr UncheckedArray[Atomic[int32]]
  lentBack: Atomic[int]

proc lendProducer(c: ptr LendCtx) {.thread.} =
  var i = 0
  while i < c.n:
    let k = lendAll(c.ch, i, min(1 + i mod 7, c.n - i))
    if k == 0:
      doAssert waitReady(c.ch, interestSend, -1) == stOk
    i += k
  close(c.ch)

proc lendConsumer(c: ptr LendCtx) {.thread.} =
  var round = 0
  var buf: array[8 * 16, byte]
  var lens: array[16, int]
  while true:
    inc round
    var t: Taken
    var st: Status
    if round mod 2 == 0:
      var count = 0
      st = recvVisit(c.ch, 5, takeVisit, addr t, count)
      discard c.lentBack.fetchAdd(t.lent, moRelaxed)
    else:   # a receiver that copies: the hook releases the lent block
      var count = 0
      var heap: pointer
      st = recvMany(c.ch, addr buf[0], buf.len, cast[ptr UncheckedArray[int]](addr lens[0]),
                    16, 0, count, heap)
      for j in 0 ..< count: t.seqs.add cast[ptr int](addr buf[8 * j])[]
    if st == stClosed: break
    if st == stAgain:
      discard waitReady(c.ch, interestRecv, 1_000_000)
      continue
    doAssert st == stOk
    for s in t.seqs: discard c.seen[s].fetchAdd(1, moRelaxed)

suite "lent references":
  setup:
    ring.refRelease = countingRelease
    releasedRefs.store(0)

  test "taken back by a visitor, released by a copying receiver or by the ring's release":
    let ch = newChannel(cmMpmc, 8, 1024)
    check lendAll(ch, 10, 4) == 4
    var t: Taken
    var count = 0
    check recvVisit(ch, 2, takeVisit, addr t, count) == stOk
    check count == 2 and t.seqs == @[10, 11] and t.lent == 2
    var res: ReadResult
    var x = 0
    check recv(ch, addr x, sizeof(x), res, 0) == stOk   # copies, then releases the block
    check x == 12 and releasedRefs.load == 1
    release(ch)                                         # one left in the ring
    check releasedRefs.load == 2

  test "a full ring takes what fits; oversize, shared and tiny-slot rings refuse":
    let ch = newChannel(cmSpsc, 4, 8)                   # inline room 8 < 16: no references
    var sent = 0
    var obj = newLent(1)
    var data = obj
    var len = 8
    check sendRefs(ch, cast[ptr UncheckedArray[pointer]](addr obj),
                   cast[ptr UncheckedArray[pointer]](addr data),
                   cast[ptr UncheckedArray[int]](addr len), 1, sent) == stUnsupported
    check sent == 0
    check "does not take lent references" in $lastErrorCString()   # recorded, like any failure
    c_free(obj)
    release(ch)
    let small = newChannel(cmMpsc, 4, 64)
    check lendAll(small, 0, 6) == 4
    check lendAll(small, 4, 1) == 0                     # full: stAgain, nothing taken
    release(small)
    check releasedRefs.load == 4
    let name = "nexpo-test-lend-" & $getCurrentProcessId()
    let shared = createShared(name, cmSpsc, 4, 64)
    check lendAll(shared, 0, 1) == 0
    close(shared)
    release(shared)

  for mode in [cmSpsc, cmMpmc]:
    test "threads: every lent message arrives once, taken or released (" & $mode & ")":
      let n = when tsanEnabled or sanitizeEnabled: 5_000 else: 50_000
      var c = LendCtx(ch: newChannel(mode, 16, 64), n: n)
      c.seen = cast[ptr UncheckedArray[Atomic[int32]]](allocShared0(n * sizeof(Atomic[int32])))
      var p: Thread[ptr LendCtx]
      var cs: array[2, Thread[ptr LendCtx]]
      createThread(p, lendProducer, addr c)
      let consumers = if mode == cmSpsc: 1 else: 2
      for i in 0 ..< consumers: createThread(cs[i], lendConsumer, addr c)
      joinThread(p)
      for i in 0 ..< consumers: joinThread(cs[i])
      var once = 0
      for i in 0 ..< n:
        if c.seen[i].load == 1: inc once
      check once == n
      check c.lentBack.load + releasedRefs.load == n
      deallocShared(c.seen)
      release(c.ch)
