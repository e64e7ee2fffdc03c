## One message at a time: the ring operations for every mode (`ringPush`/`ringPop` over
## spsc.nim's and vyukov.nim's algorithms), the copy in and out (checked slot by slot for shared
## rings), and the blocking `send`/`recv` on top of wake.nim's `waitLoop`.

{.push raises: [].}

import std/atomics
import ../contracts, ../errors
import ./channel_handle, ./ring, ./spsc, ./vyukov, ./wake

# --- the ring operations, for every mode ----------------------------------------------

template ringPush*(r: RingView, want: int, pos, idx, writeSlot: untyped): int =
  ## Up to `want` messages with one claim (see spsc.nim / vyukov.nim): count, 0 full, -1 closed.
  case r.ringMode
  of cmSpsc:
    # The guard RMW (see `guarded`) came before this seq_cst load: see closedAndDrained.
    if r.closed.load(moSequentiallyConsistent) != 0: -1
    else: lamportPush(r, want, pos, idx, writeSlot)
  of cmMpsc, cmMpmc: vyukovPush(r, want, true, true, pos, idx, slotAt(r, pos).seq, writeSlot)
  of cmSpmc: vyukovPush(r, want, false, true, pos, idx, slotAt(r, pos).seq, writeSlot)

template ringPop*(r: RingView, want: int, pos, idx, accept, readSlot: untyped): int =
  ## Up to `want` accepted messages with one claim: count, 0 empty, -1 the first refused.
  case r.ringMode
  of cmSpsc: lamportPop(r, want, 1, pos, idx, accept, readSlot)
  of cmMpsc: vyukovPop(r, want, false, true, pos, idx, slotAt(r, pos).seq, accept, readSlot)
  of cmSpmc, cmMpmc: vyukovPop(r, want, true, true, pos, idx, slotAt(r, pos).seq, accept, readSlot)

# --- one message ------------------------------------------------------------------------

proc tooLong*(r: RingView, len: int): Status =
  if r.closed.load(moSequentiallyConsistent) != 0: return stClosed
  failed(stInvalid, "msg: " & $len & " bytes is over max_message_size (" & $r.maxMessage & ")")

proc pushOne*(ch: ptr ByteChannel, msg: pointer, len: int): Status {.inline.} =
  ## stOk, stAgain (full), stClosed, stInvalid (too long), stNoMem. Does not notify.
  template r: untyped = ch.ring
  if r.shared and ch.corrupted: return corruptStatus(ch)
  if uint64(len) > r.maxMessage: return tooLong(r, len)
  var heapCopy: pointer = nil   # never for shared rings: inlineMax == maxMessage
  if uint64(len) > r.inlineMax:
    heapCopy = c_malloc(csize_t(len))
    if heapCopy == nil:
      return failed(stNoMem, "msg: cannot allocate " & $len & " bytes")
    copyMem(heapCopy, msg, len)
  let got = ringPush(r, 1, pos, idx):
    preCondition(heapCopy != nil or uint64(len) <= r.inlineMax)   # fits the slot
    writeMessage(slotAt(r, pos), msg, len, heapCopy)
  if got == 1: return stOk
  if heapCopy != nil: c_free(heapCopy)
  if got == ringCorrupt: markCorrupt(ch, coSequence)
  elif got < 0: stClosed
  else: stAgain

template takeMessage*(r: RingView, s: ptr SlotHead, dst: pointer, dstCap: int,
                      bad: var bool): ReadResult =
  ## A shared ring's slots are checked before anything is copied (ring.nim's `readShared`).
  if r.shared: readShared(s, dst, dstCap, r.inlineMax, bad) else: readMessage(s, dst, dstCap)

template emptyStatus*(r: RingView): Status =
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

proc popOne*(ch: ptr ByteChannel, dst: pointer, dstCap, maxLen: int, res: var ReadResult): Status {.inline.} =
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

proc send*(ch: ptr ByteChannel, msg: pointer, len: int, timeoutNs: int64): Status =
  ## Blocking send (timeoutNs 0: try once, returns stAgain when full).
  template r: untyped = ch.ring
  let st = taking(ch, sendGuard, "sender"):
    waitLoop(ch, timeoutNs, notFull, sendWaiters, pushOne(ch, msg, len), sendInFlight(r))
  if st == stOk: notifyReceivers(ch)
  st

proc recv*(ch: ptr ByteChannel, dst: pointer, dstCap: int, res: var ReadResult,
           timeoutNs: int64): Status =
  ## Blocking receive into `dst` (or `res.heap` when longer than dstCap).
  template r: untyped = ch.ring
  let st = taking(ch, recvGuard, "receiver"):
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
  let st = taking(ch, recvGuard, "receiver"):
    waitLoop(ch, timeoutNs, notEmpty, recvWaiters, popOne(ch, dst, dstCap, dstCap, res),
             recvInFlight(r))
  if st == stOk:
    notifySenders(ch)
    return int64(res.len)
  -int64(ord(st))
{.pop.}
