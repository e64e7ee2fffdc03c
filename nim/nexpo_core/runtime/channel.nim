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
## Modes: SPSC is Lamport's ring (spsc.nim); MPSC, SPMC and MPMC are Vyukov's queue (vyukov.nim)
## with a CAS on the shared side(s) and on the send side (the close mark, see below); a single
## receiver claims with a fetch-add.
##
## Waiting: a blocked send/recv first retries with PAUSE for a moment, then gives its time slice
## away (sched_yield: with more threads than cores the peer it waits for may be descheduled),
## then parks on the ring's `notFull`/`notEmpty` futex word (shared futex for shared rings, so a
## process wakes another). The other side bumps the word and wakes waiters only when
## `sendWaiters` / `recvWaiters` says someone announced it will park: no syscall when nobody
## waits. The two sides form a Dekker pattern with no fence of its own:
##
## ::
##
##   waiter (receiver)                         waker (sender)
##   recvWaiters += 1          (seq_cst RMW)   claim/publish tail    (seq_cst RMW, already needed)
##   try again; load tail      (seq_cst)       ... write, publish slot
##   tail > head: a sender is mid-publish,     load recvWaiters      (seq_cst)
##     do not sleep (yield, retry)             > 0: bump notEmpty, futex wake
##   else sleep on notEmpty
##
## Either the waiter's load of `tail` sees the claim (and it does not sleep), or its increment
## comes first in the seq_cst order and the waker sees it. Senders waiting for room mirror this
## with `head` (receivers claim with a seq_cst RMW too). SPSC publishes with plain stores (no
## RMW per message): there the waker's barrier is `lightBarrier` and the waiter's
## `heavyBarrier` (barriers.nim: membarrier(2), so a message costs no fence in one process;
## full fences on both sides for shared rings). A waiter whose deadline passes takes one last
## look, so a wakeup can never be swallowed by a timeout.
##
## Watchers (in one process): asyncio loops and `select` register an event fd or a futex word;
## a waiter arms its watcher, re-checks the ring, then sleeps; the side that makes the ring
## ready signals armed watchers once (one write(2) per sleep, nothing when nobody is armed).
##
## Close: `close` sets `closed`, and (Vyukov modes) `closedMark` in the ring's tail (one RMW;
## see ring.nim), and wakes everyone. Senders claim positions with a CAS expecting the mark
## clear, so they fail at once (ECLOSED) after it; receivers drain what is left and fail only
## when the tail is marked AND every claimed position was consumed (head == tail). A send
## racing with close either fails or was claimed before the mark, and then a receiver waits for
## it: never accepted and lost. SPSC: the sender's guard RMW (`sendGuard`, taken before it
## reads `closed`) plays the part of the claim: a receiver that sees `closed` and then a free
## guard knows the last send either saw `closed` or has published (see `closedAndDrained`).
##
## Batches: `sendMany` claims every free slot it needs with one index update (one CAS) and
## wakes receivers once; `recvMany` likewise takes every ready message that fits at once.
##
## Crashed peers (shared rings): a process that dies holding nothing loses nothing. One that dies
## between claiming a slot and publishing it (a few instructions plus the copy) leaves that slot
## unpublished: with Vyukov modes, receivers stop at it (timed waits expire with ETIMEOUT, the
## channel must be recreated); with SPSC the half-written message is simply never seen.
## Messages still in the ring when every process exits are lost with it. An SPSC side left
## "busy" by a crash makes later calls on that side fail with EINVAL rather than corrupt data;
## after a close, receivers then cannot tell the ring is drained and wait out their timeouts.
##
## Hostile peers (shared rings; ring.nim has the threat model): the per-message code takes the
## geometry from the handle's `RingView` (this process's copy), checks every slot it takes, and
## turns a state no honest peer produces into stCorrupt, remembered in the handle (`corruption`,
## also set by ring_guard.nim's SIGBUS handler when the file shrinks): every later call on it
## returns stCorrupt at once.
##
## Lent references (in-process rings only): a binding that holds its messages in immutable
## objects (CPython `bytes`) may lend them instead of copying (`sendRefs`: the slot keeps the
## object's address and its data pointer, ring.nim's kind 2) and take them back the same way
## (`recvVisit` hands the visitor the reference). A receiver that copies (every other receive)
## copies the bytes out and releases the reference through `ring.refRelease`. Both calls are
## non-blocking: the binding makes them while it holds its own lock (the GIL) and waits with
## the copying calls, or `waitReady`, when they would block.
##
## Properties:
## - messages are copied in and out (bytes semantics), or lent as immutable objects by a
##   binding; at most `maxMessage` bytes, empty allowed
## - in-process rings keep messages up to `inlineMax` bytes in the slot; longer ones go to a
##   malloc'd block referenced by the slot (shared rings: every message is inline)
## - the handle is never copied (`=copy` is an error) and is freed by `release`

import std/[atomics, posix]
import ../errors
import ./barriers, ./channel_handle, ./parking, ./ring, ./shm, ./spsc, ./vyukov

export channel_handle

const
  spinLimit = 100               ## PAUSE rounds before yielding (~ a few microseconds)
  yieldLimit = 16               ## sched_yield rounds before parking
  interestRecv* = 1'u32         ## watcher wants "a message may be ready"
  interestSend* = 2'u32         ## watcher wants "room may be free"

proc eventWrite(fd: cint) =
  var one = 1'u64
  discard posix.write(fd, addr one, sizeof(one))

# --- state ------------------------------------------------------------------------------

proc isClosed*(ch: ptr ByteChannel): bool {.inline.} = ch.ring.closed.load(moAcquire) != 0

proc len*(ch: ptr ByteChannel): int =
  ## Messages in the ring (a snapshot; claimed-but-unpublished positions count).
  template r: untyped = ch.ring
  let h = r.head.load(moAcquire)
  let t = r.claimedEnd(moAcquire)
  if t > h: int(min(t - h, r.capacity)) else: 0

proc closedAndDrained(r: RingView): bool {.inline.} =
  ## The receivers' end: the tail carries the close mark (no position can be claimed any
  ## more) and every claimed position was taken by a receiver. A send that claimed its position
  ## before the close is counted by the tail, so it is waited for, never lost.
  ## SPSC: `closed`, then no send in progress, then head == tail. The sender takes `sendGuard`
  ## (seq_cst RMW) before it loads `closed` (seq_cst): if it saw `closed` clear, its guard RMW
  ## precedes our guard load in the seq_cst order, so we see the guard taken, or released by
  ## its release store after publishing (and then we see the tail it published).
  if r.ringMode == cmSpsc:
    r.closed.load(moSequentiallyConsistent) != 0 and
      r.sendGuard.load(moSequentiallyConsistent) == 0 and
      r.head.load(moRelaxed) >= r.tail.load(moAcquire)
  else:
    let t = r.tail.load(moSequentiallyConsistent)
    (t and closedMark) != 0 and r.head.load(moSequentiallyConsistent) >= (t and not closedMark)

proc recvInFlight(r: RingView): bool {.inline.} =
  ## The waiter's re-check (after announcing itself): a position is claimed that no receiver
  ## has taken yet, so a sender is publishing it (or just did): do not sleep on a wake-up that
  ## sender may already have decided not to send.
  r.claimedEnd(moSequentiallyConsistent) > r.head.load(moSequentiallyConsistent)

proc sendInFlight(r: RingView): bool {.inline.} =
  ## Room is claimed by receivers (head moved) that a sender may not see free yet.
  let h = r.head.load(moSequentiallyConsistent)
  r.claimedEnd(moSequentiallyConsistent) - h < r.capacity

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
      if force or w.armed.exchange(0, moSequentiallyConsistent) != 0:
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
  if ch.ring.ringMode == cmSpsc and not ch.ring.isShared:
    # The SPSC waker has only a compiler barrier (see the module doc). The system call has
    # not been seen to fail once registered (and blocking waits poll if it does); an armed
    # watcher would then risk missing one signal.
    discard heavyBarrier()

proc validWatcher*(ch: ptr ByteChannel, id: int): bool =
  id >= 0 and id < maxWatchers and ch.watchers[id].used

# --- wakeups ----------------------------------------------------------------------------

template wakerBarrier(r: RingView) =
  ## The waker's StoreLoad: Vyukov modes have a seq_cst RMW (their claim) already; SPSC a
  ## compiler barrier in one process (paired with the waiter's `heavyBarrier`), a fence when
  ## shared.
  if r.ringMode == cmSpsc:
    if r.isShared: fence(moSequentiallyConsistent)
    else: lightBarrier()

template waiterBarrier(r: RingView): bool =
  ## False: the barrier failed, sleep only briefly (poll).
  if r.ringMode == cmSpsc and not r.isShared: heavyBarrier() else: true

proc notifyReceivers(ch: ptr ByteChannel, n = 1) {.inline.} =
  ## After publishing `n` messages. Vyukov modes: call only after a seq_cst RMW on the ring's
  ## tail (every successful push does one): it is the StoreLoad barrier that orders the
  ## publish before these loads (see the module doc). No syscall and no shared write when
  ## nobody waits.
  template r: untyped = ch.ring
  wakerBarrier(r)
  if r.recvWaiters.load(moSequentiallyConsistent) > 0:
    discard r.notEmpty.fetchAdd(1, moRelease)
    parkWake(addr r.notEmpty, int32(min(n, high(int32).int)), r.isShared)
  if ch.watchCount.load(moSequentiallyConsistent) > 0:
    signalWatchers(ch, interestRecv)

proc notifySenders(ch: ptr ByteChannel, n = 1) {.inline.} =
  ## After freeing `n` slots; Vyukov modes: call only after a seq_cst RMW on the ring's head.
  template r: untyped = ch.ring
  wakerBarrier(r)
  if r.sendWaiters.load(moSequentiallyConsistent) > 0:
    discard r.notFull.fetchAdd(1, moRelease)
    parkWake(addr r.notFull, int32(min(n, high(int32).int)), r.isShared)
  if ch.watchCount.load(moSequentiallyConsistent) > 0:
    signalWatchers(ch, interestSend)

proc close*(ch: ptr ByteChannel) =
  ## Close for everyone (every process of a shared ring); the creator also unlinks the shm name.
  template r: untyped = ch.ring
  r.closed.store(1, moSequentiallyConsistent)
  if r.ringMode != cmSpsc:
    discard r.tail.fetchOr(closedMark, moSequentiallyConsistent)
  discard r.notEmpty.fetchAdd(1, moRelease)
  discard r.notFull.fetchAdd(1, moRelease)
  parkWake(addr r.notEmpty, high(int32), r.isShared)
  parkWake(addr r.notFull, high(int32), r.isShared)
  signalWatchers(ch, interestRecv or interestSend, force = true)
  if ch.creator and not ch.unlinked.exchange(true):
    unlinkRegion(ch.name)

# --- SPSC side guards -------------------------------------------------------------------

template guarded(r: RingView, guard: untyped, side: string, body: untyped): Status =
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

# --- the ring operations, for every mode ----------------------------------------------

template ringPush(r: RingView, want: int, pos, idx, writeSlot: untyped): int =
  ## Up to `want` messages with one claim (see spsc.nim / vyukov.nim): count, 0 full, -1 closed.
  case r.ringMode
  of cmSpsc:
    # The guard RMW (see `guarded`) came before this seq_cst load: see closedAndDrained.
    if r.closed.load(moSequentiallyConsistent) != 0: -1
    else: lamportPush(r, want, pos, idx, writeSlot)
  of cmMpsc, cmMpmc: vyukovPush(r, want, true, true, pos, idx, slotAt(r, pos).seq, writeSlot)
  of cmSpmc: vyukovPush(r, want, false, true, pos, idx, slotAt(r, pos).seq, writeSlot)

template ringPop(r: RingView, want: int, pos, idx, accept, readSlot: untyped): int =
  ## Up to `want` accepted messages with one claim: count, 0 empty, -1 the first refused.
  case r.ringMode
  of cmSpsc: lamportPop(r, want, 1, pos, idx, accept, readSlot)
  of cmMpsc: vyukovPop(r, want, false, true, pos, idx, slotAt(r, pos).seq, accept, readSlot)
  of cmSpmc, cmMpmc: vyukovPop(r, want, true, true, pos, idx, slotAt(r, pos).seq, accept, readSlot)

# --- one message ------------------------------------------------------------------------

proc tooLong(r: RingView, len: int): Status =
  if r.closed.load(moSequentiallyConsistent) != 0: return stClosed
  setLastMessage("msg: " & $len & " bytes is over max_message_size (" & $r.maxMessage & ")")
  stInvalid

proc pushOne(ch: ptr ByteChannel, msg: pointer, len: int): Status {.inline.} =
  ## stOk, stAgain (full), stClosed, stInvalid (too long), stNoMem. Does not notify.
  template r: untyped = ch.ring
  if r.shared and ch.corrupted: return corruptStatus(ch)
  if uint64(len) > r.maxMessage: return tooLong(r, len)
  var heapCopy: pointer = nil   # never for shared rings: inlineMax == maxMessage
  if uint64(len) > r.inlineMax:
    heapCopy = c_malloc(csize_t(len))
    if heapCopy == nil:
      setLastMessage("msg: cannot allocate " & $len & " bytes")
      return stNoMem
    copyMem(heapCopy, msg, len)
  let got = ringPush(r, 1, pos, idx):
    writeMessage(slotAt(r, pos), msg, len, heapCopy)
  if got == 1: return stOk
  if heapCopy != nil: c_free(heapCopy)
  if got == ringCorrupt: markCorrupt(ch, coSequence)
  elif got < 0: stClosed
  else: stAgain

template takeMessage(r: RingView, s: ptr SlotHead, dst: pointer, dstCap: int,
                      bad: var bool): ReadResult =
  ## A shared ring's slots are checked before anything is copied (ring.nim's `readShared`).
  if r.shared: readShared(s, dst, dstCap, r.inlineMax, bad) else: readMessage(s, dst, dstCap)

template emptyStatus(r: RingView): Status =
  ## What a receive that found nothing says: closed and drained, or not yet.
  if closedAndDrained(r): stClosed else: stAgain

proc popShared(ch: ptr ByteChannel, dst: pointer, dstCap, maxLen: int,
               res: var ReadResult): Status {.noinline.} =
  ## `popOne` for a shared ring: the slot is checked before it is read; a slot whose length is
  ## over the slot is taken (not refused as too long), so that the read reports it.
  template r: untyped = ch.ring
  if ch.corrupted: return corruptStatus(ch)
  var bad = false
  let got = ringPop(r, 1, pos, idx, peekLen(slotAt(r, pos)) <= maxLen or
                                    uint64(peekLen(slotAt(r, pos))) > r.inlineMax):
    res = readShared(slotAt(r, pos), dst, dstCap, r.inlineMax, bad)
  if bad:
    if res.heap != nil: c_free(res.heap)
    res = ReadResult()
    markCorrupt(ch, coSlot)
  elif got == 1: stOk
  elif got == ringCorrupt: markCorrupt(ch, coSequence)
  elif got < 0: stUnsupported
  else: emptyStatus(r)

proc popOne(ch: ptr ByteChannel, dst: pointer, dstCap, maxLen: int, res: var ReadResult): Status {.inline.} =
  ## stOk, stAgain (empty, or a sender is mid-publish), stClosed (closed and drained),
  ## stUnsupported (the next message is longer than maxLen: left in place).
  template r: untyped = ch.ring
  if r.shared: return popShared(ch, dst, dstCap, maxLen, res)
  let got = ringPop(r, 1, pos, idx, peekLen(slotAt(r, pos)) <= maxLen):
    res = readMessage(slotAt(r, pos), dst, dstCap)
  if got == 1: stOk
  elif got == ringCorrupt: markCorrupt(ch, coSequence)   # only if a peer wrote the ring
  elif got < 0: stUnsupported
  else: emptyStatus(r)

# --- blocking ---------------------------------------------------------------------------

template waitLoop(ch: ptr ByteChannel, timeoutNs: int64, word, waiters: untyped,
                  attempt, inFlight: untyped): Status =
  ## Retry `attempt` (a Status expression; stAgain = not yet) spinning, then yielding, then
  ## parking on `ring.word` until it succeeds, fails, or the deadline passes (timeoutNs < 0:
  ## never). `inFlight` (evaluated after announcing in `ring.waiters`) says the other side has
  ## claimed a position it may not have published yet: then the waiter must not sleep.
  template r: untyped = ch.ring
  var st = attempt
  if st == stAgain and timeoutNs != 0:
    let deadline = deadlineAfter(timeoutNs)
    var rounds = 0
    var inFlightRounds = 0
    while true:
      if rounds < spinLimit:
        inc rounds
        cpuRelax()
      elif rounds < spinLimit + yieldLimit:
        inc rounds
        discard sched_yield()
      else:
        let epoch = r.word.load(moAcquire)
        discard r.waiters.fetchAdd(1, moSequentiallyConsistent)
        let fenced = waiterBarrier(r)
        st = attempt
        if st != stAgain:
          discard r.waiters.fetchSub(1, moRelaxed)
          break
        let busy = inFlight
        let left = remainingNs(deadline)
        if left == 0:
          discard r.waiters.fetchSub(1, moRelaxed)
          st = stTimeout
          break
        if busy or not fenced:
          # The other side is between its claim and its publish: it will not necessarily
          # wake us. Give it the core; after a while (a crashed peer of a shared ring) nap.
          inc inFlightRounds
          if inFlightRounds < 64:
            discard sched_yield()
          else:
            parkWait(addr r.word, epoch, (if left < 0: 1_000_000'i64 else: min(left, 1_000_000'i64)),
                     r.isShared)
        else:
          inFlightRounds = 0
          parkWait(addr r.word, epoch, left, r.isShared)
        discard r.waiters.fetchSub(1, moRelaxed)
        rounds = spinLimit - 8   # a few spins after each wake before parking again
      st = attempt
      if st != stAgain: break
      if deadline >= 0 and remainingNs(deadline) == 0:
        st = attempt   # one last look
        if st == stAgain: st = stTimeout
        break
  st

proc send*(ch: ptr ByteChannel, msg: pointer, len: int, timeoutNs: int64): Status =
  ## Blocking send (timeoutNs 0: try once, returns stAgain when full).
  template r: untyped = ch.ring
  let st = guarded(r, sendGuard, "sender"):
    waitLoop(ch, timeoutNs, notFull, sendWaiters, pushOne(ch, msg, len), sendInFlight(r))
  if st == stOk: notifyReceivers(ch)
  st

proc recv*(ch: ptr ByteChannel, dst: pointer, dstCap: int, res: var ReadResult,
           timeoutNs: int64): Status =
  ## Blocking receive into `dst` (or `res.heap` when longer than dstCap).
  template r: untyped = ch.ring
  let st = guarded(r, recvGuard, "receiver"):
    waitLoop(ch, timeoutNs, notEmpty, recvWaiters, popOne(ch, dst, dstCap, high(int), res),
             recvInFlight(r))
  if st == stOk: notifySenders(ch)
  st

proc recvInto*(ch: ptr ByteChannel, dst: pointer, dstCap: int, timeoutNs: int64): int64 =
  ## The one-call receive of the Python layer: the message length (copied into dst), or minus
  ## a Status: -stUnsupported when the next message is longer than dstCap (left in the ring:
  ## receive it with `recv`), -stAgain/-stTimeout/-stClosed/-stInvalid otherwise.
  template r: untyped = ch.ring
  var res: ReadResult
  let st = guarded(r, recvGuard, "receiver"):
    waitLoop(ch, timeoutNs, notEmpty, recvWaiters, popOne(ch, dst, dstCap, dstCap, res),
             recvInFlight(r))
  if st == stOk:
    notifySenders(ch)
    return int64(res.len)
  -int64(ord(st))

# --- batches ----------------------------------------------------------------------------

proc pushBatch(ch: ptr ByteChannel, data: pointer, lens: ptr UncheckedArray[int], n: int,
               sent, offset: var int): Status =
  ## Send the next messages of a batch with one claim: the run of inline-sized messages from
  ## `sent` on (as many as are free), or one message that needs a heap block. Advances
  ## `sent`/`offset`; stOk when at least one went, else stAgain/stClosed/stInvalid/stNoMem.
  template r: untyped = ch.ring
  if r.shared and ch.corrupted: return corruptStatus(ch)
  let first = lens[sent]
  if uint64(first) > r.maxMessage: return tooLong(r, first)
  if uint64(first) > r.inlineMax:
    let st = pushOne(ch, cast[pointer](cast[uint](data) + uint(offset)), first)
    if st == stOk:
      offset += first
      inc sent
    return st
  var run = 1
  while sent + run < n and run < int(r.capacity) and uint64(lens[sent + run]) <= r.inlineMax:
    inc run
  var off = offset
  let got = ringPush(r, run, pos, idx):
    let m = lens[sent + idx]
    writeMessage(slotAt(r, pos), cast[pointer](cast[uint](data) + uint(off)), m, nil)
    off += m
  if got > 0:
    # `off` ran over exactly the `got` messages written (a failed CAS wrote but did not publish).
    sent += got
    offset = off
    stOk
  elif got == ringCorrupt: markCorrupt(ch, coSequence)
  elif got < 0: stClosed
  else: stAgain

proc sendMany*(ch: ptr ByteChannel, data: pointer, lens: ptr UncheckedArray[int], n: int,
               timeoutNs: int64, sent: var int): Status =
  ## Send `n` messages laid end to end in `data`, in order. Blocks while full (one deadline for
  ## the batch). stOk when all went; otherwise the status that stopped it, with `sent` telling
  ## how many did go. Every free slot is claimed at once; receivers are woken once per claim
  ## round, not per message.
  template r: untyped = ch.ring
  sent = 0
  var offset = 0
  var unannounced = 0   # sent but receivers not yet notified
  let st = guarded(r, sendGuard, "sender"):
    var s = stOk
    let deadline = deadlineAfter(timeoutNs)
    while sent < n:
      let before = sent
      s = pushBatch(ch, data, lens, n, sent, offset)
      if s == stAgain:
        if unannounced > 0:
          notifyReceivers(ch, unannounced)   # let receivers drain what we already sent
          unannounced = 0
        let left = if timeoutNs < 0: -1'i64 else: remainingNs(deadline)
        s = waitLoop(ch, left, notFull, sendWaiters, pushBatch(ch, data, lens, n, sent, offset),
                     sendInFlight(r))
        if s == stAgain: s = stTimeout
      unannounced += sent - before
      if s != stOk: break
    s
  if unannounced > 0: notifyReceivers(ch, unannounced)
  st

proc acceptInto(s: ptr SlotHead, idx: int, scanned: var int, firstAlone: var bool, dstCap: int): bool {.inline.} =
  ## recvMany's scan: the first message always (alone in a heap block when longer than the
  ## buffer), then more while they fit end to end in `dstCap` bytes.
  let m = peekLen(s)
  if idx == 0:
    scanned = m
    firstAlone = m > dstCap
    true
  elif firstAlone or scanned + m > dstCap:
    false
  else:
    scanned += m
    true

proc popBatch(ch: ptr ByteChannel, dst: pointer, dstCap: int, lens: ptr UncheckedArray[int],
              maxN: int, count: var int, heap: var pointer): Status =
  template r: untyped = ch.ring
  if r.shared and ch.corrupted: return corruptStatus(ch)
  var scanned = 0
  var firstAlone = false
  var used = 0
  var bad = false
  let got = ringPop(r, maxN, pos, idx, acceptInto(slotAt(r, pos), idx, scanned, firstAlone, dstCap)):
    let res = takeMessage(r, slotAt(r, pos), cast[pointer](cast[uint](dst) + uint(used)),
                          dstCap - used, bad)
    lens[idx] = res.len
    if res.heap == nil: used += res.len
    elif idx == 0: heap = res.heap
    else:            # only a peer rewriting a length between the scan and the read gets here
      c_free(res.heap)
      bad = true
  if bad:
    if heap != nil: c_free(heap)
    heap = nil
    markCorrupt(ch, coSlot)
  elif got > 0:
    count = got
    stOk
  elif got == ringCorrupt: markCorrupt(ch, coSequence)
  else:
    emptyStatus(r)

proc recvMany*(ch: ptr ByteChannel, dst: pointer, dstCap: int, lens: ptr UncheckedArray[int],
               maxN: int, timeoutNs: int64, count: var int, heap: var pointer): Status =
  ## Wait for one message (like recv), then take more while they are ready, fit in what is left
  ## of `dst`, and count < maxN, all with one claim. A first message longer than dstCap comes
  ## back alone in `heap`.
  template r: untyped = ch.ring
  count = 0
  heap = nil
  let st = guarded(r, recvGuard, "receiver"):
    waitLoop(ch, timeoutNs, notEmpty, recvWaiters,
             popBatch(ch, dst, dstCap, lens, maxN, count, heap), recvInFlight(r))
  if count > 0: notifySenders(ch, count)
  st

# --- lent references (see the module doc) --------------------------------------------------

proc sendRefs*(ch: ptr ByteChannel, objs, datas: ptr UncheckedArray[pointer],
               lens: ptr UncheckedArray[int], n: int, sent: var int): Status =
  ## Non-blocking: lend up to `n` messages (`lens[i]` bytes at `datas[i]`, kept alive by
  ## `objs[i]`) with one claim; `sent` says how many went, in order (the caller still owns the
  ## rest). stOk when at least one went; stAgain (full), stClosed, stInvalid (the first message
  ## is over max_message_size), stUnsupported (a shared ring, or slots too small to hold a
  ## reference: copy instead).
  template r: untyped = ch.ring
  sent = 0
  if n <= 0: return stOk
  if r.isShared or r.inlineMax < uint64(2 * sizeof(pointer)):
    # Shared: an address means nothing in another process. Tiny slots (max_message_size
    # under 16 bytes) have no room for [obj | data], and copying them costs no more.
    setLastMessage("channel: this channel does not take lent references")
    return stUnsupported
  var run = 0
  while run < n and run < int(r.capacity) and uint64(lens[run]) <= r.maxMessage:
    inc run
  if run == 0: return tooLong(r, lens[0])
  var got = 0
  let st = guarded(r, sendGuard, "sender"):
    got = ringPush(r, run, pos, idx):
      writeRef(slotAt(r, pos), objs[idx], datas[idx], lens[idx])
    if got > 0: stOk
    elif got == ringCorrupt: markCorrupt(ch, coSequence)   # in-process: cannot happen
    elif got < 0: stClosed
    else: stAgain
  if got > 0:
    sent = got
    notifyReceivers(ch, got)
  st

proc recvVisit*(ch: ptr ByteChannel, maxN: int, visit: RefVisit, ctx: pointer,
                count: var int): Status =
  ## Non-blocking: take up to `maxN` ready messages with one claim and hand each, in order and
  ## in place, to `visit` (ring.nim's `RefVisit`). stOk (count > 0), stAgain (empty), stClosed
  ## (closed and drained).
  template r: untyped = ch.ring
  count = 0
  if r.shared and ch.corrupted: return corruptStatus(ch)
  var got = 0
  var bad = false
  let st = guarded(r, recvGuard, "receiver"):
    if r.shared:   # two loops: the in-process one stays as small as it was
      got = ringPop(r, maxN, pos, idx, true):
        visitShared(slotAt(r, pos), visit, ctx, r.inlineMax, bad)
    else:
      got = ringPop(r, maxN, pos, idx, true):
        visitMessage(slotAt(r, pos), visit, ctx)
    if bad: markCorrupt(ch, coSlot)
    elif got > 0: stOk
    elif got == ringCorrupt: markCorrupt(ch, coSequence)
    else: emptyStatus(r)
  if got > 0:
    count = got
    notifySenders(ch, got)
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

proc messageReady(r: RingView): bool {.inline.} =
  ## The message at the head is published (not merely claimed by a sender). Vyukov: any slot
  ## state but the two "not yet" ones (free, or last lap's receiver still reading) counts as
  ## ready, so that a state no peer of ours produces goes to the attempt, which reports it.
  let h = r.head.load(moAcquire)
  if r.ringMode == cmSpsc: r.tail.load(moAcquire) > h
  else:
    let sq = slotAt(r, h).seq.load(moAcquire)
    sq != h and sq != h + 1 - r.capacity

proc roomReady(r: RingView): bool {.inline.} =
  ## The slot at the tail is free (its last message was taken, not merely claimed); as above,
  ## any state but the two "not yet" ones (last lap's message not taken, or not yet written).
  let t = r.claimedEnd(moAcquire)
  if r.ringMode == cmSpsc: t - r.head.load(moAcquire) < r.capacity
  else:
    let sq = slotAt(r, t).seq.load(moAcquire)
    sq != t - r.capacity and sq != t + 1 - r.capacity

proc readyFor(ch: ptr ByteChannel, interest: uint32): Status {.inline.} =
  ## Ready means the attempt that follows can succeed: a published message or a free slot, not
  ## one a peer has claimed and not finished (the wait's in-flight check covers those), so a
  ## caller that waits and then tries does not spin on a peer mid-copy. Closed: senders are
  ## ready at once (to fail); receivers when a message is published or the ring is drained.
  template r: untyped = ch.ring
  if ch.corrupted: return stOk   # the attempt that follows reports it
  if (interest and interestRecv) != 0 and (messageReady(r) or closedAndDrained(r)): return stOk
  if (interest and interestSend) != 0 and (ch.isClosed or roomReady(r)): return stOk
  stAgain

proc waitReady*(ch: ptr ByteChannel, interest: uint32, timeoutNs: int64, claimSide = true): Status =
  ## Block until the channel may be received from (interest 1) / sent to (2), or is closed,
  ## without taking or putting anything: the Python layer's blocking calls wait with this (GIL
  ## released), then try again holding the GIL; asyncio on shared rings waits with it in a
  ## helper thread. A wake it consumed is passed on, so a blocked receiver/sender never misses one.
  ## SPSC: a wait that `claimSide`s holds its side's guard, as a blocked send/recv does, so a
  ## second thread using that side meanwhile is told (stInvalid) rather than silently
  ## tolerated. A helper thread that waits on behalf of another (asyncio on a shared ring, which
  ## may abandon the wait when cancelled) does not claim it.
  template r: untyped = ch.ring
  template waitSide(guard: untyped, side: string, word, waiters, inFlight: untyped): Status =
    if claimSide:
      guarded(r, guard, side):
        waitLoop(ch, timeoutNs, word, waiters, readyFor(ch, interest), inFlight)
    else:
      waitLoop(ch, timeoutNs, word, waiters, readyFor(ch, interest), inFlight)
  result =
    if (interest and interestRecv) != 0:
      waitSide(recvGuard, "receiver", notEmpty, recvWaiters, recvInFlight(r))
    else:
      waitSide(sendGuard, "sender", notFull, sendWaiters, sendInFlight(r))
  if result == stOk:
    fence(moSequentiallyConsistent)   # notify* expect a seq_cst RMW before them; none here
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
      if s == stOk or s == stInvalid or s == stCorrupt:
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
