## Single-producer single-consumer ring: Lamport's queue with cached indices.
##
## ::
##
##   sender owns tail (+ a stale copy of head)      receiver owns head (+ a stale copy of tail)
##        |                                                  |
##        v                                                  v
##   [ free | free | m5 | m6 | m7 | free ... ]     slot = position & mask
##                   ^head         ^tail            empty: head == tail; full: tail - head == cap
##
## Sources:
## - L. Lamport, "Specifying Concurrent Program Modules", TOPLAS 1983 (the wait-free SPSC ring)
## - the cached-index refinement (each side re-reads the other's index only when its stale copy
##   says full/empty): M. Herlihy, N. Shavit, "The Art of Multiprocessor Programming", and
##   rigtorp/SPSCQueue, https://rigtorp.se/ringbuffer/
##
## Properties:
## - wait-free: no CAS, no retry loop; one release store publishes each message
## - in the steady state neither side touches the other's cache line (cached indices), so a
##   message costs a copy plus a store
## - correct only with one sender thread and one receiver thread at a time (the Python layer
##   serialises each side of an SPSC channel with a lock; see nexpo/channels.py)

import std/atomics
import ./ring

proc spscTryPush*(r: ptr RingHeader, msg: pointer, len: int, heapCopy: pointer): bool {.inline.} =
  ## False when full.
  let t = r.tail.load(moRelaxed)
  if t - r.producerCachedHead >= r.capacity:
    r.producerCachedHead = r.head.load(moAcquire)
    if t - r.producerCachedHead >= r.capacity:
      return false
  writeMessage(slotAt(r, t), msg, len, heapCopy)
  r.tail.store(t + 1, moRelease)
  true

proc spscNextLen*(r: ptr RingHeader): int {.inline.} =
  ## Length of the next message, or -1 when empty (receiver only).
  let h = r.head.load(moRelaxed)
  if h == r.consumerCachedTail:
    r.consumerCachedTail = r.tail.load(moAcquire)
    if h == r.consumerCachedTail:
      return -1
  peekLen(slotAt(r, h))

proc spscTryPop*(r: ptr RingHeader, dst: pointer, dstCap: int, res: var ReadResult): bool {.inline.} =
  ## False when empty.
  let h = r.head.load(moRelaxed)
  if h == r.consumerCachedTail:
    r.consumerCachedTail = r.tail.load(moAcquire)
    if h == r.consumerCachedTail:
      return false
  res = readMessage(slotAt(r, h), dst, dstCap)
  r.head.store(h + 1, moRelease)
  true
