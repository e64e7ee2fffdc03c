## Single-producer single-consumer ring: Lamport's queue with cached indices, batched.
##
## ::
##
##   sender owns tail (+ a stale copy of head)      receiver owns head (+ a stale copy of tail)
##        |                                                  |
##        v                                                  v
##   [ free | free | m5 | m6 | m7 | free ... ]     slot = position & mask
##                   ^head         ^tail            empty: head == tail; full: tail - head == cap
##
## The algorithm is written once, as two templates (`lamportPush`, `lamportPop`) over any
## object with `tail`/`head: Atomic[uint64]`, `producerCachedHead`/`consumerCachedTail: uint64`
## and `capacity: uint64`; the caller supplies the slot write/read. Two instantiations:
##
## - the byte ring of channels (`RingView`; channel_ops.nim's `ringPush`/`ringPop`, and
##   benchmarks/nim/bare_ring.nim for the bare-ring benchmark); the channel layer adds close
##   and wake-ups around it without touching the indices
## - the typed queue `SpscQueue[T]`: the honest structure for "int64 messages between two
##   threads"
##
## Both publish with plain release stores: no RMW, no fence.
##
## A batch claims every free slot it wants at once and publishes the index once. The typed
## queue's consumer also hands freed slots back in groups of 128 bytes (`releaseGroup`), so a
## producer waiting on a full queue does not refill the cache line the consumer is reading.
##
## Sources:
## - L. Lamport, "Specifying Concurrent Program Modules", TOPLAS 1983 (the wait-free SPSC ring)
## - the cached-index refinement (each side re-reads the other's index only when its stale copy
##   says full/empty): E. Rigtorp, https://rigtorp.se/ringbuffer/ and rigtorp/SPSCQueue;
##   M. Herlihy, N. Shavit, "The Art of Multiprocessor Programming"
##
## Properties:
## - wait-free: no retry loop; one index update publishes a whole batch
## - in the steady state neither side touches the other's cache line (cached indices)
## - correct only with one sender thread and one receiver thread at a time (the byte channel
##   guards each side; see wake.nim's `guarded`)
## - typed queue: `T` must be a plain (copyMem-able) type; the queue is never copied
##   (`=copy` is an error), its slots are freed by `=destroy`

import std/[atomics, typetraits]
import ../config, ../contracts
import ./ring

# --- the algorithm ----------------------------------------------------------------------

template lamportPush*(q: typed, want: int, pos, idx, writeSlot: untyped): int =
  ## Claim up to `want` free positions and run `writeSlot` for each, in order, with `pos` (the
  ## position) and `idx` (0, 1, ...) bound; then publish them all with one release store of the
  ## tail. Returns how many went (0: full).
  var pushed = 0
  let t0 = q.tail.load(moRelaxed)
  block:
    var room = q.capacity - (t0 - q.producerCachedHead)
    if room < uint64(want):
      q.producerCachedHead = q.head.load(moAcquire)
      room = q.capacity - (t0 - q.producerCachedHead)
    if trusted(q):
      # The head never passes the tail, nor the tail the head + capacity; a cached head is
      # an older head (the sender owns the tail, t0 is exact).
      let h = q.producerCachedHead
      invariant(h <= t0 and t0 - h <= q.capacity)
    let k = int(min(room, uint64(want)))
    if k > 0:
      for j in 0 ..< k:
        let pos = t0 + uint64(j)
        let idx = j
        writeSlot
      q.tail.store(t0 + uint64(k), moRelease)
      pushed = k
  pushed

template lamportPop*(q: typed, want: int, releaseGroup: static int,
                     pos, idx, accept, readSlot: untyped): int =
  ## Take up to `want` ready messages, in order: for each, `accept` (a bool expression over
  ## `pos`/`idx`) decides whether to take it (false: stop, the message stays), then `readSlot`
  ## consumes it. One release store of the head frees them all. Returns how many were taken;
  ## -1 when the first ready message was not accepted; 0 when empty.
  ##
  ## `releaseGroup` > 1 (a power of two; needs a private `consumerPos: uint64` in `q`): freed
  ## slots go back to the producer only when the head crosses a multiple of `releaseGroup` or
  ## the consumer has taken everything it knows of. Without it, a producer waiting on a full
  ## queue refills each slot the moment it frees, in the very cache line the consumer is reading,
  ## and that line bounces between the cores once per message. Never more than
  ## `releaseGroup - 1` slots are held back, and only while the consumer knows of messages it
  ## has not taken yet (so it always comes back and releases them).
  let h0 = when releaseGroup > 1: q.consumerPos else: q.head.load(moRelaxed)
  var avail = q.consumerCachedTail - h0
  if avail < uint64(want):
    q.consumerCachedTail = q.tail.load(moAcquire)
    avail = q.consumerCachedTail - h0
  if trusted(q):
    # A cached tail is an older tail, never behind what this receiver took (h0 is exact).
    let t = q.consumerCachedTail
    invariant(h0 <= t and t - h0 <= q.capacity)
  let limit = int(min(avail, uint64(want)))
  var k = 0
  var refused = false
  while k < limit:
    block:
      let pos = h0 + uint64(k)
      let idx = k
      if not accept:
        refused = true
        break
      readSlot
    if refused: break
    inc k
  if k > 0:
    let h1 = h0 + uint64(k)
    when releaseGroup > 1:
      q.consumerPos = h1
      const groupMask = not uint64(releaseGroup - 1)
      if (h1 and groupMask) != (h0 and groupMask) or h1 == q.consumerCachedTail:
        q.head.store(h1, moRelease)
    else:
      q.head.store(h1, moRelease)
  if k == 0 and refused: -1 else: k

# --- the typed queue --------------------------------------------------------------------

const queueSpan* = 2 * cacheLineSize
  ## Distance between fields written by different threads in the typed queues: 128 bytes, not
  ## 64, because x86's adjacent-line prefetcher moves lines in pairs (folly's
  ## hardware_destructive_interference_size makes the same choice).

type
  SpscQueue*[T] = object
    ## Bounded SPSC queue of plain values (see the module doc). Lives in place: share it by
    ## pointer; one thread pushes, one pops.
    capacity: uint64                                  ## read-only after init
    mask: uint64
    slots: ptr UncheckedArray[T]                      ## cache-line aligned
    mem: pointer                                      ## the allocation holding `slots`
    home: pointer                                     ## set by newSpscQueue: the allocation
    tail {.align: queueSpan.}: Atomic[uint64]         ## producer's line
    producerCachedHead: uint64
    head {.align: queueSpan.}: Atomic[uint64]         ## slots freed so far (written once a group)
    consumerPos {.align: queueSpan.}: uint64          ## consumer's private line: next position
                                                      ## to pop (head lags by < releaseGroup)
    consumerCachedTail: uint64
    pad {.align: queueSpan.}: uint8                   ## keeps that line to itself

proc `=copy`*[T](dst: var SpscQueue[T], src: SpscQueue[T]) {.error: "a queue lives in place; share it by pointer".}

proc `=destroy`*[T](q: var SpscQueue[T]) =
  if q.mem != nil:
    deallocShared(q.mem)
    q.mem = nil
    q.slots = nil

proc init*[T](q: var SpscQueue[T], capacity: int) =
  ## Capacity rounded up to a power of two.
  when not supportsCopyMem(T):
    {.error: "SpscQueue holds plain values only (no GC'd fields)".}
  let cap = nextPow2(max(capacity, 1))
  q.capacity = uint64(cap)
  q.mask = uint64(cap - 1)
  q.mem = allocShared0(cap * sizeof(T) + cacheLineSize)
  q.slots = cast[ptr UncheckedArray[T]]((cast[uint](q.mem) + uint(cacheLineSize - 1)) and
                                        not uint(cacheLineSize - 1))
  q.tail.store(0, moRelaxed)
  q.head.store(0, moRelaxed)
  q.producerCachedHead = 0
  q.consumerCachedTail = 0
  q.consumerPos = 0

proc capacity*[T](q: var SpscQueue[T]): int {.inline.} = int(q.capacity)

proc alignedHome*(size: int): (pointer, pointer) =
  ## (allocation, `queueSpan`-aligned address inside it) for `size` zeroed bytes. The typed
  ## queues' `{.align.}` fields are only apart on real cache lines when the object itself is
  ## aligned: allocShared (malloc) guarantees 16 bytes.
  let mem = allocShared0(size + queueSpan)
  (mem, cast[pointer]((cast[uint](mem) + uint(queueSpan - 1)) and not uint(queueSpan - 1)))

proc newSpscQueue*[T](capacity: int): ptr SpscQueue[T] =
  ## A queue in shared memory, aligned as its layout wants; free it with `freeQueue`.
  let (mem, at) = alignedHome(sizeof(SpscQueue[T]))
  result = cast[ptr SpscQueue[T]](at)
  result[].init(capacity)
  result.home = mem

proc freeQueue*[T](q: ptr SpscQueue[T]) =
  let mem = q.home
  `=destroy`(q[])
  deallocShared(mem)

proc tryPush*[T](q: var SpscQueue[T], v: T): bool {.inline.} =
  let n = lamportPush(q, 1, pos, idx):
    q.slots[pos and q.mask] = v
  n == 1

const releaseBytes = 2 * cacheLineSize
  ## Freed slots go back to the producer 128 bytes at a time: the pair of lines the adjacent-line
  ## prefetcher moves together. Measured here (typed-spsc, int64, capacity 1024, loaded 2-core
  ## VM, medians of 12): one slot at a time ~60M msgs/s, 64 bytes ~77M, 128 bytes ~90M.

template releaseGroup(T: typedesc): int =
  ## Slots per release (at least 1).
  max(1, releaseBytes div sizeof(T))

proc tryPop*[T](q: var SpscQueue[T], v: var T): bool {.inline.} =
  let n = lamportPop(q, 1, releaseGroup(T), pos, idx, true):
    v = q.slots[pos and q.mask]
  n == 1

proc pushMany*[T](q: var SpscQueue[T], src: openArray[T]): int {.inline.} =
  ## Pushes a prefix of `src` (as much as fits); returns its length.
  if src.len == 0: return 0
  lamportPush(q, src.len, pos, idx):
    q.slots[pos and q.mask] = src[idx]

proc popMany*[T](q: var SpscQueue[T], dst: var openArray[T]): int {.inline.} =
  ## Pops up to `dst.len` values into `dst`; returns how many.
  if dst.len == 0: return 0
  lamportPop(q, dst.len, releaseGroup(T), pos, idx, true):
    dst[idx] = q.slots[pos and q.mask]

proc len*[T](q: var SpscQueue[T]): int =
  ## A snapshot (counts popped slots not handed back yet: fewer than a release group).
  int(q.tail.load(moAcquire) - q.head.load(moAcquire))
