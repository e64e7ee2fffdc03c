## Lent references (in-process rings only): a binding that holds its messages in immutable
## objects (CPython `bytes`) may lend them instead of copying (`sendRefs`: the slot keeps the
## object's address and its data pointer, ring.nim's kind 2) and take them back the same way
## (`recvVisit` hands the visitor the reference). A receiver that copies (every other receive)
## copies the bytes out and releases the reference through `ring.refRelease`. Both calls are
## non-blocking: the binding makes them while it holds its own lock (the GIL) and waits with
## the copying calls, or `waitReady`, when they would block. A binding that says so
## (`serialise`) has an SPSC ring skip its side guards on these two calls (wake.nim).
## `sendRef` / `recvOne` are the same calls for one message (a binding's per-item send and
## receive): the same steps, without the run arrays and loops of a batch.

{.push raises: [].}

import std/atomics
import ../errors
import ./channel_handle, ./channel_ops, ./ring, ./wake

template refusesRefs(r: untyped): bool =
  ## Shared: an address means nothing in another process. Tiny slots (max_message_size under
  ## 16 bytes) have no room for [obj | data], and copying them costs no more.
  r.isShared or r.inlineMax < uint64(2 * sizeof(pointer))

template pushedStatus(ch: ptr ByteChannel, got: int): Status =
  ## A lending push's count as a status: stOk, stClosed or stAgain (full).
  if got > 0: stOk
  elif got == ringCorrupt: markCorrupt(ch, coSequence)   # in-process: cannot happen
  elif got < 0: stClosed
  else: stAgain

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
  if refusesRefs(r):
    return failed(stUnsupported, "channel: this channel does not take lent references")
  var run = 0
  while run < n and run < int(r.capacity) and uint64(lens[run]) <= r.maxMessage:
    inc run
  if run == 0: return tooLong(r, lens[0])
  var got = 0
  let st = takingSerialised(ch, sendGuard, sendBusy, "sender"):
    got = ringPush(r, run, pos, idx):
      writeRef(slotAt(r, pos), objs[idx], datas[idx], lens[idx])
    pushedStatus(ch, got)
  if got > 0:
    sent = got
    notifyReceivers(ch)
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
  let st = takingSerialised(ch, recvGuard, recvBusy, "receiver"):
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
    notifySenders(ch)
  st

proc sendRef*(ch: ptr ByteChannel, obj, data: pointer, len: int): Status =
  ## `sendRefs` for one message: stOk when it went (the ring holds `obj`), else as `sendRefs`
  ## (the caller still owns `obj`).
  template r: untyped = ch.ring
  if refusesRefs(r):
    return failed(stUnsupported, "channel: this channel does not take lent references")
  if uint64(len) > r.maxMessage: return tooLong(r, len)
  var got = 0
  let st = takingSerialised(ch, sendGuard, sendBusy, "sender"):
    got = ringPush(r, 1, pos, idx):
      writeRef(slotAt(r, pos), obj, data, len)
    pushedStatus(ch, got)
  if got > 0: notifyReceivers(ch)
  st

proc recvOne*(ch: ptr ByteChannel, visit: RefVisit, ctx: pointer): Status =
  ## `recvVisit` for one message: stOk (it was visited), stAgain (empty), stClosed.
  template r: untyped = ch.ring
  if r.shared: # the checked slots of a shared ring: the batch path, kept as it is
    var count = 0
    return recvVisit(ch, 1, visit, ctx, count)
  var got = 0
  let st = takingSerialised(ch, recvGuard, recvBusy, "receiver"):
    got = ringPop(r, 1, pos, idx, true):
      visitMessage(slotAt(r, pos), visit, ctx)
    if got > 0: stOk
    elif got == ringCorrupt: markCorrupt(ch, coSequence)
    else: emptyStatus(r)
  if got > 0: notifySenders(ch)
  st
{.pop.}
