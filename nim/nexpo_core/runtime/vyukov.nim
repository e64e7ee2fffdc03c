## Bounded multi-producer/multi-consumer queue of Dmitry Vyukov, specialised per side.
##
## Every slot carries a sequence number telling which lap it is ready for:
##
## ::
##
##   slot i, lap L (position p = L*cap + i):
##     seq == p          free: the sender that claims position p may write it
##     seq == p + 1      full: the receiver that claims position p may read it
##     seq == p + cap    freed again: ready for the sender of position p + cap
##
##   senders:   pos = tail; if slot.seq == pos: claim (CAS tail pos -> pos+1), write,
##              slot.seq = pos + 1 (release)
##   receivers: pos = head; if slot.seq == pos + 1: claim (CAS head), read,
##              slot.seq = pos + cap (release)
##
## MPSC, SPMC and MPMC are one algorithm: with a single sender (SPMC) the claim on the send
## side is a plain store instead of a CAS, and likewise on the receive side for MPSC.
##
## Sources:
## - D. Vyukov, "Bounded MPMC queue", 1024cores.net,
##   https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue
##
## Properties:
## - lock-free on the contended side(s) (one CAS per message), wait-free on a single side
## - senders and receivers contend only on their own index (`tail` / `head`, separate lines)
## - FIFO per sender: the messages of one sender are received in the order sent (positions are
##   claimed in order); across senders, in position order
## - a sender that stops between claiming a position and publishing its slot (a crashed
##   process) blocks receivers at that position: timed waits still expire

import std/atomics
import ./ring

template claimOrNot(index: var Atomic[uint64], pos: var uint64, multi: static bool): bool =
  when multi:
    index.compareExchangeWeak(pos, pos + 1, moRelaxed, moRelaxed)
  else:
    index.store(pos + 1, moRelaxed)
    true

proc vyukovTryPush*(r: ptr RingHeader, msg: pointer, len: int, heapCopy: pointer,
                    multiProducer: static bool): bool {.inline.} =
  ## False when full.
  var pos = r.tail.load(moRelaxed)
  while true:
    let s = slotAt(r, pos)
    let dif = cast[int64](s.seq.load(moAcquire) - pos)
    if dif == 0:
      if claimOrNot(r.tail, pos, multiProducer):
        writeMessage(s, msg, len, heapCopy)
        s.seq.store(pos + 1, moRelease)
        return true
    elif dif < 0:
      return false
    else:
      pos = r.tail.load(moRelaxed)

proc vyukovNextLen*(r: ptr RingHeader): int {.inline.} =
  ## Length of the message at the head, or -1 when none is ready. With several receivers the
  ## answer may be stale by the time the caller pops: `vyukovTryPop` re-checks.
  let pos = r.head.load(moRelaxed)
  let s = slotAt(r, pos)
  if s.seq.load(moAcquire) == pos + 1: peekLen(s) else: -1

proc vyukovTryPop*(r: ptr RingHeader, dst: pointer, dstCap, maxLen: int, res: var ReadResult,
                   multiConsumer: static bool): int {.inline.} =
  ## 1: popped into `res`; 0: empty; -1: the next message is longer than `maxLen` (not taken).
  var pos = r.head.load(moRelaxed)
  while true:
    let s = slotAt(r, pos)
    let dif = cast[int64](s.seq.load(moAcquire) - (pos + 1))
    if dif == 0:
      # The length is stable while seq says full and nobody has claimed pos (see header).
      if peekLen(s) > maxLen: return -1
      if claimOrNot(r.head, pos, multiConsumer):
        res = readMessage(s, dst, dstCap)
        s.seq.store(pos + r.capacity, moRelease)
        return 1
    elif dif < 0:
      return 0
    else:
      pos = r.head.load(moRelaxed)
