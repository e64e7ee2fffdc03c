## The wake protocol of a channel: how a blocked send/recv waits (`waitLoop`), how the other
## side wakes it (`notifyReceivers`/`notifySenders`), close, and the SPSC side guards.
##
## Waiting: a blocked send/recv first retries with PAUSE for a moment, then gives its time slice
## away (sched_yield: with more threads than cores the peer it waits for may be descheduled),
## then parks on the ring's `notFull`/`notEmpty` futex word (shared futex for shared rings, so a
## process wakes another); the rounds are backoff.nim's `channelPolicy`. The other side
## bumps the word and wakes waiters only when `sendWaiters` / `recvWaiters` says someone
## armed it (announced it will park) since the last wake: no syscall when nobody waits, and
## one per arming, not one per message while a woken waiter is still on its way (it wakes
## every sleeper: each one re-arms before it sleeps again). The two sides form a Dekker
## pattern with no fence of its own:
##
## ::
##
##   waiter (receiver)                         waker (sender)
##   recvWaiters := 1 (armed)  (seq_cst RMW)   claim/publish tail    (seq_cst RMW, already needed)
##   try again; load tail      (seq_cst)       ... write, publish slot
##   tail > head: a sender is mid-publish,     load recvWaiters      (seq_cst)
##     do not sleep (yield, retry)             1: swap in 0; got 1: bump notEmpty, wake all
##   else sleep on notEmpty
##
## Either the waiter's load of `tail` sees the claim (and it does not sleep), or its arming
## comes first in the seq_cst order and the waker sees it. Senders waiting for room mirror this
## with `head` (receivers claim with a seq_cst RMW too). SPSC publishes with plain stores (no
## RMW per message): there the waker's barrier is `lightBarrier` and the waiter's
## `heavyBarrier` (barriers.nim: membarrier(2), so a message costs no fence in one process;
## full fences on both sides for shared rings). A waiter whose deadline passes takes one last
## look, so a wakeup can never be swallowed by a timeout.
##
## Close: `close` sets `closed`, and (Vyukov modes) `closedMark` in the ring's tail (one RMW;
## see ring.nim), and wakes everyone. Senders claim positions with a CAS expecting the mark
## clear, so they fail at once (ECLOSED) after it; receivers drain what is left and fail only
## when the tail is marked AND every claimed position was consumed (head == tail). A send
## racing with close either fails or was claimed before the mark, and then a receiver waits for
## it: never accepted and lost. SPSC: the sender's guard RMW (`sendGuard`, taken before it
## reads `closed`) plays the part of the claim: a receiver that sees `closed` and then a free
## guard knows the last send either saw `closed` or has published (see `closedAndDrained`).

{.push raises: [].}

import std/[atomics, posix]
import ../errors
import ./backoff, ./barriers, ./channel_handle, ./parking, ./ring, ./shm, ./watchers

# --- state ------------------------------------------------------------------------------

proc isClosed*(ch: ptr ByteChannel): bool {.inline.} = ch.ring.closed.load(moAcquire) != 0

proc len*(ch: ptr ByteChannel): int =
  ## Messages in the ring (a snapshot; claimed-but-unpublished positions count).
  template r: untyped = ch.ring
  let h = r.head.load(moAcquire)
  let t = r.claimedEnd(moAcquire)
  if t > h: int(min(t - h, r.capacity)) else: 0

proc closedAndDrained*(r: RingView): bool {.inline.} =
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

proc recvInFlight*(r: RingView): bool {.inline.} =
  ## The waiter's re-check (after announcing itself): a position is claimed that no receiver
  ## has taken yet, so a sender is publishing it (or just did): do not sleep on a wake-up that
  ## sender may already have decided not to send.
  r.claimedEnd(moSequentiallyConsistent) > r.head.load(moSequentiallyConsistent)

proc sendInFlight*(r: RingView): bool {.inline.} =
  ## Room is claimed by receivers (head moved) that a sender may not see free yet.
  let h = r.head.load(moSequentiallyConsistent)
  r.claimedEnd(moSequentiallyConsistent) - h < r.capacity

# --- wakeups ----------------------------------------------------------------------------

template wakerBarrier*(r: RingView) =
  ## The waker's StoreLoad: Vyukov modes have a seq_cst RMW (their claim) already; SPSC a
  ## compiler barrier in one process (paired with the waiter's `heavyBarrier`), a fence when
  ## shared.
  if r.ringMode == cmSpsc:
    if r.isShared: fence(moSequentiallyConsistent)
    else: lightBarrier()

template waiterBarrier*(r: RingView): bool =
  ## False: the barrier failed, sleep only briefly (poll).
  if r.ringMode == cmSpsc and not r.isShared: heavyBarrier() else: true

proc notifyReceivers*(ch: ptr ByteChannel) {.inline.} =
  ## After publishing messages. Vyukov modes: call only after a seq_cst RMW on the ring's
  ## tail (every successful push does one): it is the StoreLoad barrier that orders the
  ## publish before these loads (see the module doc). No syscall and no shared write when
  ## nobody waits, and one wake per arming: the first publish after receivers armed disarms
  ## and wakes them all, later ones see it disarmed (a woken receiver takes tens of
  ## microseconds to run; a wake per message until then cost a system call per message).
  template r: untyped = ch.ring
  wakerBarrier(r)
  if r.recvWaiters.load(moSequentiallyConsistent) != 0 and
      r.recvWaiters.exchange(0, moAcquireRelease) != 0:
    discard r.notEmpty.fetchAdd(1, moRelease)
    parkWake(addr r.notEmpty, high(int32), r.isShared)
  if ch.watchCount.load(moSequentiallyConsistent) > 0:
    signalWatchers(ch, interestRecv)

proc notifySenders*(ch: ptr ByteChannel) {.inline.} =
  ## After freeing slots (as notifyReceivers); Vyukov modes: call only after a seq_cst RMW on
  ## the ring's head.
  template r: untyped = ch.ring
  wakerBarrier(r)
  if r.sendWaiters.load(moSequentiallyConsistent) != 0 and
      r.sendWaiters.exchange(0, moAcquireRelease) != 0:
    discard r.notFull.fetchAdd(1, moRelease)
    parkWake(addr r.notFull, high(int32), r.isShared)
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
    try: unlinkRegion(ch.name)
    except NexpoError: discard   # cannot happen: the name was validated when it was created

# --- SPSC side guards -------------------------------------------------------------------

proc twoAtOnce*(side: string): string =
  "channel: SPSC channel used by two " & side & "s at once; use mode='mpmc'"

template guarded*(r: RingView, guard: untyped, side: string, body: untyped): Status =
  ## SPSC: a second thread (or process) on the same side at the same time is a usage error,
  ## reported instead of corrupting the ring. Other modes need no guard. Waits (`waitReady`)
  ## take it too, so a second thread on a side whose first one is blocked is told.
  if r.ringMode == cmSpsc:
    if r.guard.exchange(1, moAcquire) != 0:
      failed(stInvalid, twoAtOnce(side))
    else:
      let st = body
      r.guard.store(0, moRelease)
      st
  else:
    body

# --- the serialised path ----------------------------------------------------------------
#
# The guard's RMW is a locked instruction per side per message (measured: 1–3 ns, 3–8 % of an
# SPSC message between two Python threads; most of the rest is the GIL hand-off). A binding whose callers all hold one lock while they move messages
# (CPython's GIL: nexpo/_channel) marks an in-process ring `serialised`: its lock already lets
# one sender and one receiver in at a time, so its sends and receives (`takingSerialised`)
# only look at the guard (a blocked wait of that side holds it: the usage error is still
# told) and write nothing shared. Every other caller (cffi: select, asyncio; any thread, no
# lock) moves messages through `taking`, which turns the serialised path off for good first:
# an asymmetric Dekker (barriers.nim) on `serialised` and the side's `busy` word, so a
# serialised operation in flight is waited for and none starts after. Shared rings are never
# serialised (their peers are other processes).

proc leaveSerialised*(ch: ptr ByteChannel): bool =
  ## From now on every message move takes the guards; false if the barrier failed (then the
  ## caller must not move a message: a serialised one may be in flight).
  ch.serialised.store(false, moSequentiallyConsistent)
  var tries = 0
  while not heavyBarrier():
    inc tries
    if tries > 100: return false
    discard sched_yield()
  # A serialised operation in flight is short (a claim, a copy into a slot or a visit): no
  # wait inside it, and its lock is not released before it ends.
  while ch.sendBusy.load(moAcquire) != 0 or ch.recvBusy.load(moAcquire) != 0:
    discard sched_yield()
  true

proc serialise*(ch: ptr ByteChannel): bool =
  ## Mark an in-process ring serialised (before any other thread can use the handle). False
  ## (nothing changes) for shared rings, or when the asymmetric barrier is not available.
  if ch.ring.isShared or not asymmetric: return false
  ch.serialised.store(true, moRelease)
  true

template taking*(ch: ptr ByteChannel, guard: untyped, side: string, body: untyped): Status =
  ## A send or receive by a caller that may hold no lock of the binding.
  if ch.ring.ringMode == cmSpsc and ch.serialised.load(moRelaxed) and not leaveSerialised(ch):
    failed(stInvalid, "channel: could not leave the serialised path (membarrier failed)")
  else:
    guarded(ch.ring, guard, side, body)

template takingSerialised*(ch: ptr ByteChannel, guard, busy: untyped, side: string,
                           body: untyped): Status =
  ## A send or receive by a caller holding the binding's lock (the GIL): no shared write on a
  ## serialised ring; `taking` otherwise.
  var fast = false
  if ch.ring.ringMode == cmSpsc and ch.serialised.load(moRelaxed):
    ch.busy.store(1, moRelaxed)
    lightBarrier()   # pairs with leaveSerialised's heavyBarrier
    fast = ch.serialised.load(moRelaxed)
    if not fast: ch.busy.store(0, moRelease)
  if fast:
    let st =
      if ch.ring.guard.load(moRelaxed) != 0: failed(stInvalid, twoAtOnce(side))
      else: body
    ch.busy.store(0, moRelease)
    st
  else:
    taking(ch, guard, side, body)

# --- blocking ---------------------------------------------------------------------------

template waitLoop*(ch: ptr ByteChannel, timeoutNs: int64, word, waiters: untyped,
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
      if step(channelPolicy, rounds) == wsBlock:
        let epoch = r.word.load(moAcquire)
        discard r.waiters.exchange(1, moSequentiallyConsistent)   # armed (see notifyReceivers)
        let fenced = waiterBarrier(r)
        st = attempt
        if st != stAgain:
          break
        let busy = inFlight
        let left = remainingNs(deadline)
        if left == 0:
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
        rounds = channelPolicy.spins - 8   # a few spins after each wake before parking again
      st = attempt
      if st != stAgain: break
      if deadline >= 0 and remainingNs(deadline) == 0:
        st = attempt   # one last look
        if st == stAgain: st = stTimeout
        break
  st

{.pop.}
