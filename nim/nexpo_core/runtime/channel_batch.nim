## Batches: `sendMany` claims every free slot it needs with one index update (one CAS) and
## wakes receivers once; `recvMany` likewise takes every ready message that fits at once.

{.push raises: [].}

import std/atomics
import ../contracts, ../errors
import ./channel_handle, ./channel_ops, ./parking, ./ring, ./wake

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
    preCondition(uint64(m) <= r.inlineMax)   # the run holds inline-sized messages only
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
  let st = taking(ch, sendGuard, "sender"):
    var s = stOk
    let deadline = deadlineAfter(timeoutNs)
    while sent < n:
      let before = sent
      s = pushBatch(ch, data, lens, n, sent, offset)
      if s == stAgain:
        if unannounced > 0:
          notifyReceivers(ch)   # let receivers drain what we already sent
          unannounced = 0
        let left = if timeoutNs < 0: -1'i64 else: remainingNs(deadline)
        s = waitLoop(ch, left, notFull, sendWaiters, pushBatch(ch, data, lens, n, sent, offset),
                     sendInFlight(r))
        if s == stAgain: s = stTimeout
      unannounced += sent - before
      if s != stOk: break
    s
  if unannounced > 0: notifyReceivers(ch)
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
  let st = taking(ch, recvGuard, "receiver"):
    waitLoop(ch, timeoutNs, notEmpty, recvWaiters,
             popBatch(ch, dst, dstCap, lens, maxN, count, heap), recvInFlight(r))
  if count > 0: notifySenders(ch)
  st
{.pop.}
