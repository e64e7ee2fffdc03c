## Readiness without taking anything: `waitReady` (the Python layer's blocking calls and
## asyncio on shared rings wait with it), the asyncio arm-and-retry calls, and `select` over
## several channels (a futex word registered as a watcher on each).

{.push raises: [].}

import std/atomics
import ../errors
import ./channel_handle, ./channel_ops, ./parking, ./ring, ./wake, ./watchers

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
      return failed(stInvalid, "channels: too many waiters on one channel (max " & $maxWatchers & ")")
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
{.pop.}
