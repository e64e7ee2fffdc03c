## Bounded channels of byte messages: the four ring algorithms behind one blocking API with
## close, timeouts, batch operations, select, event-fd watchers (asyncio) and shared memory.
##
## ::
##
##   ByteChannel (one handle per process)    ring (malloc'd, or POSIX shm shared by processes)
##   +----------------------------+          +-------------------------------------------------+
##   | ring -------------------------------->| header: tail | head | closed | notEmpty/notFull |
##   | watchers[]: eventfd / word |          | slots:  [seq|len|kind|payload] x capacity       |
##   | shm name, creator flag     |          +-------------------------------------------------+
##   +----------------------------+
##
## Modes: SPSC is Lamport's ring (spsc.nim); MPSC, SPMC and MPMC are Vyukov's queue with a CAS
## only on the shared side(s) (vyukov.nim).
##
## Waiting: a blocked send/recv first retries with PAUSE for a few microseconds, then parks on
## the ring's `notFull`/`notEmpty` futex word (shared futex for shared rings, so a process wakes
## another). The other side bumps the word and wakes one waiter only when `sendWaiters` /
## `recvWaiters` says someone announced it will park (a seq_cst fence orders the two: no lost
## wakeup, and no syscall when nobody waits). A waiter whose deadline passes takes one last look,
## so a wakeup can never be swallowed by a timeout.
##
## Watchers (in one process): asyncio loops and `select` register an event fd or a futex word;
## a waiter arms its watcher, re-checks the ring, then sleeps; the side that makes the ring
## ready signals armed watchers once (one write(2) per sleep, nothing when nobody is armed).
##
## Close: `close` sets a flag and wakes everyone. Senders fail at once (ECLOSED); receivers
## drain what is left and fail only when the ring is closed AND empty (every claimed position
## consumed). A send racing with close either fails or is delivered to a receiver.
##
## Crashed peers (shared rings): a process that dies holding nothing loses nothing. One that dies
## between claiming a slot and publishing it (a few instructions plus the copy) leaves that slot
## unpublished: with Vyukov modes, receivers stop at it (timed waits expire with ETIMEOUT, the
## channel must be recreated); with SPSC the half-written message is simply never seen.
## Messages still in the ring when every process exits are lost with it. An SPSC side left
## "busy" by a crash makes later calls on that side fail with EINVAL rather than corrupt data.
##
## Properties:
## - messages are copied in and out (bytes semantics); at most `maxMessage` bytes, empty allowed
## - in-process rings keep messages up to `inlineMax` bytes in the slot; longer ones go to a
##   malloc'd block referenced by the slot (shared rings: every message is inline)
## - the handle is never copied (`=copy` is an error) and is freed by `release`

import std/[atomics, posix]
import ../errors
import ./parking, ./ring, ./spsc, ./vyukov, ./shm

const
  defaultInline* = 112          ## in-process slots: 16-byte header + 112 payload = 128 bytes
  maxCapacity* = 1 shl 24
  maxSharedMessage* = 1 shl 24
  spinLimit = 200               ## PAUSE rounds before parking (a few microseconds)
  maxWatchers = 64
  interestRecv* = 1'u32         ## watcher wants "a message may be ready"
  interestSend* = 2'u32         ## watcher wants "room may be free"

type
  Watcher = object
    armed: Atomic[uint32]
    used: bool
    interest: uint32
    fd: cint              ## event fd / pipe to write 8 bytes to, or -1
    word: ptr ParkWord    ## futex word to bump and wake, or nil

  ByteChannel* = object
    ring*: ptr RingHeader
    region: Region                     ## the mapping, for shared rings
    name: string                       ## shm name, for shared rings
    creator: bool                      ## created the shm object: unlinks it on close
    unlinked: Atomic[bool]
    watchLock: Atomic[bool]
    watchCount: Atomic[int32]
    watchers: array[maxWatchers, Watcher]

proc `=copy`*(dst: var ByteChannel, src: ByteChannel) {.error: "a channel handle is shared by pointer".}

proc eventWrite(fd: cint) =
  var one = 1'u64
  discard posix.write(fd, addr one, sizeof(one))

# --- construction -----------------------------------------------------------------------

proc checkGeometry(capacity, maxMessage: int) =
  check(capacity >= 1 and capacity <= maxCapacity,
        "capacity: must be between 1 and " & $maxCapacity & ", got " & $capacity)
  check(maxMessage >= 0 and maxMessage <= high(int32),
        "max_message_size: must be between 0 and 2**31-1, got " & $maxMessage)

proc ringCapacity(capacity: int): int =
  ## Rounded up to a power of two, at least 2 (Vyukov's sequence numbers need two slots).
  max(2, nextPow2(capacity))

proc newChannel*(mode: ChannelMode, capacity, maxMessage: int): ptr ByteChannel =
  ## An in-process channel; `capacity` is rounded up to a power of two (at least 2).
  checkGeometry(capacity, maxMessage)
  let cap = ringCapacity(capacity)
  let inline = min(maxMessage, defaultInline)
  let bytes = ringBytes(cap, inline)
  let mem = allocShared0(bytes + 64)
  let ringMem = cast[ptr RingHeader]((cast[uint](mem) + 63) and not 63'u)
  initRing(ringMem, mode, cap, inline, maxMessage, shared = false)
  result = cast[ptr ByteChannel](allocShared0(sizeof(ByteChannel)))
  result.ring = ringMem
  result.region = Region(base: mem, len: bytes + 64)

proc createShared*(name: string, mode: ChannelMode, capacity, maxMessage: int): ptr ByteChannel =
  ## A channel in POSIX shared memory; other processes attach with `openShared(name)`.
  checkGeometry(capacity, maxMessage)
  check(maxMessage <= maxSharedMessage,
        "max_message_size: shared channels hold at most " & $maxSharedMessage & " bytes a message")
  let cap = ringCapacity(capacity)
  let bytes = ringBytes(cap, maxMessage)
  let region = createRegion(name, bytes)
  initRing(cast[ptr RingHeader](region.base), mode, cap, maxMessage, maxMessage, shared = true)
  result = cast[ptr ByteChannel](allocShared0(sizeof(ByteChannel)))
  result.ring = cast[ptr RingHeader](region.base)
  result.region = region
  result.name = name
  result.creator = true

proc openShared*(name: string): ptr ByteChannel =
  let region = openRegion(name, headerSpan)
  let r = cast[ptr RingHeader](region.base)
  # The creator writes the magic last; give a creator that is mid-init a moment.
  var spins = 0
  while cast[ptr Atomic[uint64]](addr r.magic)[].load(moAcquire) != ringMagic and spins < 1000:
    inc spins
    discard usleep(1000)
  if cast[ptr Atomic[uint64]](addr r.magic)[].load(moAcquire) != ringMagic or
     r.version != ringVersion or r.shared == 0 or r.mode > 3 or
     ringBytes(int(r.capacity), int(r.inlineMax)) > region.len:
    unmapRegion(region)
    fail(stInvalid, "name: " & name & " is not a nexpo shared channel (or another version)")
  result = cast[ptr ByteChannel](allocShared0(sizeof(ByteChannel)))
  result.ring = r
  result.region = region
  result.name = name

proc release*(ch: ptr ByteChannel) =
  ## Free the handle (and, for an in-process ring, the ring and the messages left in it).
  if ch == nil: return
  let r = ch.ring
  if r.isShared:
    # A creator that goes away without close() still removes the name (no /dev/shm leak);
    # processes that have it mapped keep using the ring.
    if ch.creator and not ch.unlinked.exchange(true):
      unlinkRegion(ch.name)
    unmapRegion(ch.region)
  else:
    var pos = r.head.load(moRelaxed)
    while pos < r.tail.load(moRelaxed):
      discardMessage(slotAt(r, pos))
      inc pos
    deallocShared(ch.region.base)
  `=destroy`(ch.name)
  deallocShared(ch)

# --- state ------------------------------------------------------------------------------

proc isClosed*(ch: ptr ByteChannel): bool {.inline.} = ch.ring.closed.load(moAcquire) != 0

proc len*(ch: ptr ByteChannel): int =
  ## Messages in the ring (a snapshot; claimed-but-unpublished positions count).
  let r = ch.ring
  let h = r.head.load(moAcquire)
  let t = r.tail.load(moAcquire)
  if t > h: int(min(t - h, r.capacity)) else: 0

proc drained(r: ptr RingHeader): bool {.inline.} =
  ## Call only after seeing `closed`. A sender increments `sendersInFlight` before it checks
  ## `closed` and decrements it after publishing, and every access is sequentially consistent:
  ## either that sender sees `closed` and fails, or this load sees it in flight and the ring is
  ## not drained yet. Without this, a send that passed the check just before close() could
  ## publish after the receivers gave up: accepted, then lost.
  r.sendersInFlight.load(moSequentiallyConsistent) == 0 and
    r.head.load(moAcquire) >= r.tail.load(moAcquire)

# --- watchers ---------------------------------------------------------------------------

proc lockWatchers(ch: ptr ByteChannel) {.inline.} =
  while ch.watchLock.exchange(true, moAcquire):
    cpuRelax()

proc unlockWatchers(ch: ptr ByteChannel) {.inline.} =
  ch.watchLock.store(false, moRelease)

proc signalWatchers(ch: ptr ByteChannel, interest: uint32, force = false) =
  lockWatchers(ch)
  for w in ch.watchers.mitems:
    if w.used and (w.interest and interest) != 0:
      if force or w.armed.exchange(0, moAcquireRelease) != 0:
        if w.fd >= 0:
          eventWrite(w.fd)
        else:
          discard w.word[].fetchAdd(1, moRelease)
          parkWake(w.word)
  unlockWatchers(ch)

proc watch*(ch: ptr ByteChannel, fd: cint, word: ptr ParkWord, interest: uint32): int =
  ## Register a watcher; returns its id (for arm/unwatch), or -1 when the table is full.
  lockWatchers(ch)
  result = -1
  for i, w in ch.watchers.mpairs:
    if not w.used:
      w.used = true
      w.interest = interest
      w.fd = fd
      w.word = word
      w.armed.store(0, moRelaxed)
      result = i
      break
  if result >= 0:
    discard ch.watchCount.fetchAdd(1, moRelaxed)
  unlockWatchers(ch)

proc unwatch*(ch: ptr ByteChannel, id: int) =
  if id < 0 or id >= maxWatchers: return
  lockWatchers(ch)
  if ch.watchers[id].used:
    ch.watchers[id].used = false
    ch.watchers[id].armed.store(0, moRelaxed)
    discard ch.watchCount.fetchSub(1, moRelaxed)
  unlockWatchers(ch)

proc arm*(ch: ptr ByteChannel, id: int) {.inline.} =
  ch.watchers[id].armed.store(1, moRelaxed)
  fence(moSequentiallyConsistent)

proc validWatcher*(ch: ptr ByteChannel, id: int): bool =
  id >= 0 and id < maxWatchers and ch.watchers[id].used

# --- wakeups ----------------------------------------------------------------------------

proc notifyReceivers(ch: ptr ByteChannel) {.inline.} =
  let r = ch.ring
  fence(moSequentiallyConsistent)
  if r.recvWaiters.load(moRelaxed) > 0:
    discard r.notEmpty.fetchAdd(1, moRelease)
    parkWake(addr r.notEmpty, 1, r.isShared)
  if ch.watchCount.load(moRelaxed) > 0:
    signalWatchers(ch, interestRecv)

proc notifySenders(ch: ptr ByteChannel) {.inline.} =
  let r = ch.ring
  fence(moSequentiallyConsistent)
  if r.sendWaiters.load(moRelaxed) > 0:
    discard r.notFull.fetchAdd(1, moRelease)
    parkWake(addr r.notFull, 1, r.isShared)
  if ch.watchCount.load(moRelaxed) > 0:
    signalWatchers(ch, interestSend)

proc close*(ch: ptr ByteChannel) =
  ## Close for everyone (every process of a shared ring); the creator also unlinks the shm name.
  let r = ch.ring
  r.closed.store(1, moSequentiallyConsistent)
  discard r.notEmpty.fetchAdd(1, moRelease)
  discard r.notFull.fetchAdd(1, moRelease)
  parkWake(addr r.notEmpty, high(int32), r.isShared)
  parkWake(addr r.notFull, high(int32), r.isShared)
  signalWatchers(ch, interestRecv or interestSend, force = true)
  if ch.creator and not ch.unlinked.exchange(true):
    unlinkRegion(ch.name)

var lastMessage {.threadvar.}: string

proc setLastMessage(msg: string) =
  lastMessage = msg

proc takeLastMessage*(): string =
  ## The detail of the last stInvalid/stNoMem returned by a non-raising call on this thread.
  result = move lastMessage

# --- SPSC side guards -------------------------------------------------------------------

template guarded(r: ptr RingHeader, guard: untyped, side: string, body: untyped): Status =
  ## SPSC: a second thread (or process) on the same side at the same time is a usage error,
  ## reported instead of corrupting the ring. Other modes need no guard.
  if r.ringMode == cmSpsc:
    if r.guard.exchange(1, moAcquire) != 0:
      setLastMessage("channel: SPSC channel used by two " & side & "s at once; use mode='mpmc'")
      stInvalid
    else:
      let st = body
      r.guard.store(0, moRelease)
      st
  else:
    body

# --- one message ------------------------------------------------------------------------

proc pushRaw(r: ptr RingHeader, msg: pointer, len: int, heapCopy: pointer): bool {.inline.} =
  case r.ringMode
  of cmSpsc: spscTryPush(r, msg, len, heapCopy)
  of cmMpsc: vyukovTryPush(r, msg, len, heapCopy, multiProducer = true)
  of cmSpmc: vyukovTryPush(r, msg, len, heapCopy, multiProducer = false)
  of cmMpmc: vyukovTryPush(r, msg, len, heapCopy, multiProducer = true)

proc popRaw(r: ptr RingHeader, dst: pointer, dstCap, maxLen: int, res: var ReadResult): int {.inline.} =
  ## 1 popped, 0 empty, -1 next message longer than maxLen.
  case r.ringMode
  of cmSpsc:
    let n = spscNextLen(r)
    if n < 0: 0
    elif n > maxLen: -1
    elif spscTryPop(r, dst, dstCap, res): 1
    else: 0
  of cmMpsc: vyukovTryPop(r, dst, dstCap, maxLen, res, multiConsumer = false)
  of cmSpmc: vyukovTryPop(r, dst, dstCap, maxLen, res, multiConsumer = true)
  of cmMpmc: vyukovTryPop(r, dst, dstCap, maxLen, res, multiConsumer = true)

proc leaveSend(ch: ptr ByteChannel) {.inline.} =
  ## End of a send attempt. After close, receivers may be parked waiting for this sender to
  ## publish (see `drained`): wake them, whether this attempt published or not.
  let r = ch.ring
  discard r.sendersInFlight.fetchSub(1, moSequentiallyConsistent)
  if r.closed.load(moSequentiallyConsistent) != 0:
    discard r.notEmpty.fetchAdd(1, moRelease)
    parkWake(addr r.notEmpty, high(int32), r.isShared)
    signalWatchers(ch, interestRecv, force = true)

proc pushOne(ch: ptr ByteChannel, msg: pointer, len: int): Status {.inline.} =
  ## stOk, stAgain (full), stClosed, stInvalid (too long), stNoMem. Does not notify.
  let r = ch.ring
  discard r.sendersInFlight.fetchAdd(1, moSequentiallyConsistent)
  defer: leaveSend(ch)
  if r.closed.load(moSequentiallyConsistent) != 0: return stClosed
  if uint64(len) > r.maxMessage:
    setLastMessage("msg: " & $len & " bytes is over max_message_size (" & $r.maxMessage & ")")
    return stInvalid
  var heapCopy: pointer = nil
  if uint64(len) > r.inlineMax:
    heapCopy = c_malloc(csize_t(len))
    if heapCopy == nil:
      setLastMessage("msg: cannot allocate " & $len & " bytes")
      return stNoMem
    copyMem(heapCopy, msg, len)
  if pushRaw(r, msg, len, heapCopy): return stOk
  if heapCopy != nil: c_free(heapCopy)
  stAgain

proc popOne(ch: ptr ByteChannel, dst: pointer, dstCap: int, res: var ReadResult): Status {.inline.} =
  ## stOk, stAgain (empty, or a sender is mid-publish), stClosed (closed and drained).
  let r = ch.ring
  if popRaw(r, dst, dstCap, high(int), res) == 1: return stOk
  if r.closed.load(moSequentiallyConsistent) != 0:
    # Closed: drained only when every claimed position was consumed; a publish in flight
    # still counts as a message to wait for.
    if popRaw(r, dst, dstCap, high(int), res) == 1: return stOk
    if drained(r): return stClosed
  stAgain

# --- blocking ---------------------------------------------------------------------------

template waitLoop(ch: ptr ByteChannel, timeoutNs: int64, word, waiters: untyped,
                  attempt: untyped): Status =
  ## Retry `attempt` (a Status expression; stAgain = not yet) with spinning, then parking on
  ## `ring.word` until it succeeds, fails, or the deadline passes (timeoutNs < 0: never).
  let r = ch.ring
  var st = attempt
  if st == stAgain and timeoutNs != 0:
    let deadline = deadlineAfter(timeoutNs)
    var spins = 0
    while true:
      if spins < spinLimit:
        inc spins
        cpuRelax()
        st = attempt
        if st != stAgain: break
        continue
      let epoch = r.word.load(moAcquire)
      discard r.waiters.fetchAdd(1, moSequentiallyConsistent)
      fence(moSequentiallyConsistent)
      st = attempt
      if st != stAgain:
        discard r.waiters.fetchSub(1, moRelaxed)
        break
      let left = remainingNs(deadline)
      if left == 0:
        discard r.waiters.fetchSub(1, moRelaxed)
        st = stTimeout
        break
      parkWait(addr r.word, epoch, left, r.isShared)
      discard r.waiters.fetchSub(1, moRelaxed)
      spins = spinLimit - 8   # a few spins after each wake before parking again
  st

proc send*(ch: ptr ByteChannel, msg: pointer, len: int, timeoutNs: int64): Status =
  ## Blocking send (timeoutNs 0: try once, returns stAgain when full).
  let r = ch.ring
  let st = guarded(r, sendGuard, "sender"):
    waitLoop(ch, timeoutNs, notFull, sendWaiters, pushOne(ch, msg, len))
  if st == stOk: notifyReceivers(ch)
  st

proc recv*(ch: ptr ByteChannel, dst: pointer, dstCap: int, res: var ReadResult,
           timeoutNs: int64): Status =
  ## Blocking receive into `dst` (or `res.heap` when longer than dstCap).
  let r = ch.ring
  let st = guarded(r, recvGuard, "receiver"):
    waitLoop(ch, timeoutNs, notEmpty, recvWaiters, popOne(ch, dst, dstCap, res))
  if st == stOk: notifySenders(ch)
  st

proc popFitting(ch: ptr ByteChannel, dst: pointer, dstCap: int, res: var ReadResult): Status {.inline.} =
  ## Like popOne, but a message longer than dstCap is left in place (stUnsupported).
  let r = ch.ring
  let got = popRaw(r, dst, dstCap, dstCap, res)
  if got == 1: return stOk
  if got < 0: return stUnsupported
  if r.closed.load(moSequentiallyConsistent) != 0:
    let again = popRaw(r, dst, dstCap, dstCap, res)
    if again == 1: return stOk
    if again < 0: return stUnsupported
    if drained(r): return stClosed
  stAgain

proc recvInto*(ch: ptr ByteChannel, dst: pointer, dstCap: int, timeoutNs: int64): int64 =
  ## The one-call receive of the Python layer: the message length (copied into dst), or minus
  ## a Status: -stUnsupported when the next message is longer than dstCap (left in the ring:
  ## receive it with `recv`), -stAgain/-stTimeout/-stClosed/-stInvalid otherwise.
  let r = ch.ring
  var res: ReadResult
  let st = guarded(r, recvGuard, "receiver"):
    waitLoop(ch, timeoutNs, notEmpty, recvWaiters, popFitting(ch, dst, dstCap, res))
  if st == stOk:
    notifySenders(ch)
    return int64(res.len)
  -int64(ord(st))

proc sendMany*(ch: ptr ByteChannel, data: pointer, lens: ptr UncheckedArray[int], n: int,
               timeoutNs: int64, sent: var int): Status =
  ## Send `n` messages laid end to end in `data`, in order. Blocks while full (one deadline for
  ## the batch). stOk when all went; otherwise the status that stopped it, with `sent` telling
  ## how many did go.
  let r = ch.ring
  sent = 0
  var offset = 0
  let st = guarded(r, sendGuard, "sender"):
    var s = stOk
    let deadline = deadlineAfter(timeoutNs)
    while sent < n:
      let p = cast[pointer](cast[uint](data) + uint(offset))
      s = pushOne(ch, p, lens[sent])
      if s == stAgain:
        notifyReceivers(ch)   # let receivers drain what we already sent
        let left = if timeoutNs < 0: -1'i64 else: remainingNs(deadline)
        s = waitLoop(ch, left, notFull, sendWaiters, pushOne(ch, p, lens[sent]))
        if s == stAgain: s = stTimeout
      if s != stOk: break
      offset += lens[sent]
      inc sent
    s
  if sent > 0: notifyReceivers(ch)
  st

proc recvMany*(ch: ptr ByteChannel, dst: pointer, dstCap: int, lens: ptr UncheckedArray[int],
               maxN: int, timeoutNs: int64, count: var int, heap: var pointer): Status =
  ## Wait for one message (like recv), then take more while they are ready, fit in what is left
  ## of `dst`, and count < maxN. A first message longer than dstCap comes back alone in `heap`.
  let r = ch.ring
  count = 0
  heap = nil
  let st = guarded(r, recvGuard, "receiver"):
    var res: ReadResult
    var s = waitLoop(ch, timeoutNs, notEmpty, recvWaiters, popOne(ch, dst, dstCap, res))
    if s == stOk:
      lens[0] = res.len
      count = 1
      if res.heap != nil:
        heap = res.heap
      else:
        var used = res.len
        while count < maxN:
          let p = cast[pointer](cast[uint](dst) + uint(used))
          if popRaw(r, p, dstCap - used, dstCap - used, res) != 1: break
          lens[count] = res.len
          used += res.len
          inc count
    s
  if count > 0: notifySenders(ch)
  st

# --- asyncio support --------------------------------------------------------------------

proc tryRecvArm*(ch: ptr ByteChannel, id: int, dst: pointer, dstCap: int, res: var ReadResult): Status =
  ## Try to receive; when empty, arm watcher `id` and look once more (so a message sent in
  ## between is either seen now or signals the watcher). stAgain: armed, go wait on the fd.
  var st = recv(ch, dst, dstCap, res, 0)
  if st == stAgain:
    arm(ch, id)
    st = recv(ch, dst, dstCap, res, 0)
  st

proc trySendArm*(ch: ptr ByteChannel, id: int, msg: pointer, len: int): Status =
  var st = send(ch, msg, len, 0)
  if st == stAgain:
    arm(ch, id)
    st = send(ch, msg, len, 0)
  st

proc readyFor(ch: ptr ByteChannel, interest: uint32): Status {.inline.} =
  if ch.isClosed: return stOk
  let n = channel.len(ch)
  if (interest and interestRecv) != 0 and n > 0: return stOk
  if (interest and interestSend) != 0 and n < int(ch.ring.capacity): return stOk
  stAgain

proc waitReady*(ch: ptr ByteChannel, interest: uint32, timeoutNs: int64): Status =
  ## Block until the channel may be received from (interest 1) / sent to (2), or is closed,
  ## without taking or putting anything (asyncio on shared rings waits with this in a helper
  ## thread). A wake it consumed is passed on, so a blocked receiver/sender never misses one.
  let r = ch.ring
  result =
    if (interest and interestRecv) != 0:
      waitLoop(ch, timeoutNs, notEmpty, recvWaiters, readyFor(ch, interest))
    else:
      waitLoop(ch, timeoutNs, notFull, sendWaiters, readyFor(ch, interest))
  if result == stOk:
    if (interest and interestRecv) != 0: notifyReceivers(ch)
    else: notifySenders(ch)
  elif result == stAgain:
    result = stTimeout

# --- select -----------------------------------------------------------------------------

var selectRotor {.threadvar.}: int

proc select*(chs: ptr UncheckedArray[ptr ByteChannel], n: int, timeoutNs: int64, index: var int,
             dst: pointer, dstCap: int, res: var ReadResult): Status =
  ## Receive from whichever channel has a message first. Channels are tried starting one
  ## further on each call (round robin), so a busy channel cannot starve the others.
  ## stClosed only when every channel is closed and drained. Shared rings signal watchers only
  ## within one process, so with a shared ring in the set the wait re-checks every millisecond.
  var word: ParkWord
  var ids = newSeq[int](n)
  var anyShared = false
  for i in 0 ..< n:
    anyShared = anyShared or chs[i].ring.isShared
    ids[i] = watch(chs[i], -1, addr word, interestRecv)
    if ids[i] < 0:
      for j in 0 ..< i: unwatch(chs[j], ids[j])
      setLastMessage("channels: too many waiters on one channel (max " & $maxWatchers & ")")
      return stInvalid
  let deadline = deadlineAfter(timeoutNs)
  let start = selectRotor
  selectRotor = (selectRotor + 1) mod max(n, 1)
  var st = stAgain
  while true:
    let epoch = word.load(moAcquire)
    for i in 0 ..< n: arm(chs[i], ids[i])
    var closedCount = 0
    for k in 0 ..< n:
      let i = (start + k) mod n
      let s = recv(chs[i], dst, dstCap, res, 0)
      if s == stOk or s == stInvalid:
        index = i
        st = s
        break
      if s == stClosed: inc closedCount
    if st != stAgain: break
    if closedCount == n:
      st = stClosed
      break
    let left = remainingNs(deadline)
    if left == 0:
      st = stTimeout
      break
    let nap = if anyShared: (if left < 0: 1_000_000'i64 else: min(left, 1_000_000'i64)) else: left
    parkWait(addr word, epoch, nap)
  for i in 0 ..< n: unwatch(chs[i], ids[i])
  st
