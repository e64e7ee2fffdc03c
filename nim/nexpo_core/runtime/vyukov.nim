## Bounded multi-producer/multi-consumer queue of Dmitry Vyukov, specialised per side, batched.
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
##   senders:   pos = tail; scan slots pos, pos+1, ... while seq == that position (free);
##              claim the k free ones (CAS tail pos -> pos+k), write them,
##              slot.seq = p + 1 for each (release)
##   receivers: pos = head; scan while seq == position + 1 (full); claim (CAS head pos -> pos+k),
##              read them, slot.seq = p + cap for each (release)
##
## A batch claims only slots it has seen free (full), so it never waits for another thread:
## the queue stays lock-free and a batch of one is exactly Vyukov's algorithm. The scan is
## validated by the CAS: an index only grows, so a successful CAS means nobody claimed any of
## the scanned positions in between.
##
## The algorithm is written once, as two templates (`vyukovPush`, `vyukovPop`) over any object
## with `tail`/`head: Atomic[uint64]` and `capacity: uint64`; the caller supplies the slot's
## sequence word and the slot write/read. Two instantiations:
##
## - the byte ring of channels (MPSC, SPMC, MPMC; channel_ops.nim's `ringPush`/`ringPop`): claims are
##   sequentially consistent RMWs (the tail CAS expects `closedMark` clear, so close and a send
##   cannot both win; a single receiver claims with a fetch-add). They double as the StoreLoad
##   barrier of the channel's wake-up protocol (see wake.nim).
## - the typed queue `MpmcQueue[T]` (relaxed CAS, as in the original).
##
## The typed queue also has blocking `push`/`pop`: ``pos = fetch-add(tail, 1)``, wait until
## ``seq == pos``, write, ``seq = pos + 1`` (and the mirror for `pop`): the same slot states, so
## all calls work on one queue.
##
## Sources:
## - D. Vyukov, "Bounded MPMC queue", 1024cores.net,
##   https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue
## - batch claims: the ticket idea of E. Rigtorp's MPMCQueue (github.com/rigtorp/MPMCQueue), here
##   without per-slot waiting; the typed queue's blocking `push`/`pop` are its push/pop
##   (fetch-add ticket, wait on the slot's turn)
##
## Properties:
## - lock-free on the contended side(s) (one CAS per batch), wait-free on a single side
## - senders and receivers contend only on their own index (`tail` / `head`, separate lines)
## - FIFO per sender: the messages of one sender are received in the order sent (positions are
##   claimed in order); across senders, in position order
## - a sender that stops between claiming a position and publishing its slot (a crashed
##   process) blocks receivers at that position: timed waits still expire
## - typed queue: `T` must be a plain (copyMem-able) type; the queue is never copied
##   (`=copy` is an error), its cells are freed by `=destroy`
## - typed queue, blocking `push`/`pop` (E. Rigtorp's): claim with a fetch-add, which never
##   fails, then wait for that one slot (backoff.nim: PAUSE, yield, nap). Blocking, not
##   lock-free: a waiter needs the one thread that owns its slot's previous lap (`push`) or its
##   position (`pop`). They mix with the try and batch calls: a CAS claim only takes positions
##   it saw ready, and a fetch-add that ran ahead of the other side only makes those look
##   full (empty). Measured (typed-mpmc, int64, capacity 1024, 2 x 2 threads on 2 cores, a
##   loaded machine, medians of 5-12): tryPush/tryPop retried ~30M msgs/s; fetch-add claims
##   ~41-44M with backoff.nim's nap, 10-35M and single runs down to 6M without it (a waiter
##   yielding in vain while the one peer it needs sits in the other core's run queue).
##   Padding cells to 64 bytes or spreading consecutive positions across lines did not help
##   (streaming 16-byte cells moves one line per 4 messages).

import std/[atomics, typetraits]
import ../config, ../contracts
import ./backoff, ./ring, ./spsc

# --- the algorithm ----------------------------------------------------------------------

const claimRetries* = 1024
  ## Channels (`rmw`): index reloads and failed claims one call makes before it reports "not
  ## now" (0) and lets the caller's wait (bounded, GIL released) take over. Each one means
  ## another thread made progress, so honest contention never gets near it; a peer process
  ## that keeps moving a shared ring's index would otherwise hold us in this loop.

template vyukovPush*(q: typed, want: int, multi, rmw: static bool,
                     pos, idx, seqWord, writeSlot: untyped): int =
  ## Claim up to `want` free positions (0: full), run `writeSlot` for each (with `pos`/`idx`
  ## bound) and publish each slot. `seqWord` is the expression of the sequence word of the slot
  ## of `pos`. `rmw` (channels): claim with a seq_cst CAS that fails once `closedMark` is set,
  ## and return -1 then. Otherwise a single producer (`multi` false) claims with a plain store.
  ## `rmw` also checks the first slot's sequence against the states the protocol allows at the
  ## tail (`t`: free; `t - cap + 1`: last lap's message not taken; `t - cap`: last lap's sender
  ## still writing; later values only once the tail has moved on) and returns `ringCorrupt`
  ## for any other.
  const claimOrder = when rmw: moSequentiallyConsistent else: moRelaxed
  var pushed = 0
  var t = q.tail.load(moRelaxed)
  var retries = 0
  while true:
    when rmw:
      if (t and closedMark) != 0:
        pushed = -1
        break
      if retries >= claimRetries:
        break                          # 0: "full" for now (see claimRetries)
      inc retries
    var k = 0
    var first = 0'i64
    while k < want:
      let pos = t + uint64(k)
      let dif = cast[int64](seqWord.load(moAcquire) - pos)
      if dif != 0:
        if k == 0: first = dif
        break
      inc k
    if k == 0:
      if first > 0:                    # another sender took position t: look again
        let t2 = q.tail.load(moRelaxed)
        when rmw:
          if t2 == t:                  # ... yet the tail never moved: not a state of ours
            pushed = ringCorrupt
            break
        t = t2
        continue
      when rmw:
        if first != -cast[int64](q.capacity) and first != 1 - cast[int64](q.capacity):
          pushed = ringCorrupt
      break                            # full
    when multi or rmw:
      if not q.tail.compareExchangeWeak(t, t + uint64(k), claimOrder, moRelaxed):
        continue                       # t now holds the current tail
    else:
      q.tail.store(t + uint64(k), moRelaxed)
    for j in 0 ..< k:
      let pos = t + uint64(j)
      let idx = j
      if trusted(q):
        let sq = seqWord.load(moRelaxed)
        invariant(sq == pos)           # claimed: free for this lap, and only we may write it
      writeSlot
      seqWord.store(pos + 1, moRelease)
    pushed = k
    break
  pushed

template vyukovPop*(q: typed, want: int, multi, rmw: static bool,
                    pos, idx, seqWord, accept, readSlot: untyped): int =
  ## Claim up to `want` full positions whose message `accept` (a bool expression over
  ## `pos`/`idx`, evaluated in order from idx 0 on every scan) takes, then run `readSlot` for
  ## each and free its slot. Returns the count; 0 empty; -1 the first full message was refused.
  ## `rmw` (channels): the claim is a seq_cst RMW (a CAS, or a fetch-add for one receiver), and
  ## the first slot's sequence is checked as in `vyukovPush` (at the head `h`: `h + 1` full;
  ## `h` empty; `h - cap + 1` last lap's receiver still reading; later values only once the
  ## head has moved on); any other returns `ringCorrupt`.
  const claimOrder = when rmw: moSequentiallyConsistent else: moRelaxed
  var popped = 0
  var h = q.head.load(moRelaxed)
  var retries = 0
  while true:
    when rmw:
      if retries >= claimRetries:
        break                          # 0: "empty" for now (see claimRetries)
      inc retries
    var k = 0
    var first = 0'i64
    var stop, refused = false
    while k < want and not stop:
      let pos = h + uint64(k)
      let idx = k
      let dif = cast[int64](seqWord.load(moAcquire) - (pos + 1))
      if dif != 0:
        if k == 0: first = dif
        stop = true
      elif not accept:
        refused = k == 0
        stop = true
      else:
        inc k
    if k == 0:
      if first > 0:                    # another receiver took position h: look again
        let h2 = q.head.load(moRelaxed)
        when rmw:
          if h2 == h:                  # ... yet the head never moved: not a state of ours
            popped = ringCorrupt
            break
        h = h2
        continue
      when rmw:
        if first != 0 and first != -1 and first != -cast[int64](q.capacity):
          popped = ringCorrupt
          break

      popped = if refused: -1 else: 0
      break
    when multi:
      if not q.head.compareExchangeWeak(h, h + uint64(k), claimOrder, moRelaxed):
        continue
    elif rmw:
      discard q.head.fetchAdd(uint64(k), moSequentiallyConsistent)
    else:
      q.head.store(h + uint64(k), moRelaxed)
    for j in 0 ..< k:
      let pos = h + uint64(j)
      let idx = j
      if trusted(q):
        let sq = seqWord.load(moRelaxed)
        invariant(sq == pos + 1)       # claimed: published this lap, and only we may take it
      readSlot
      seqWord.store(pos + q.capacity, moRelease)
    popped = k
    break
  popped

# --- the typed queue --------------------------------------------------------------------

type
  MpmcCell[T] = object
    seq: Atomic[uint64]
    val: T

  MpmcQueue*[T] = object
    ## Bounded MPMC queue of plain values (see the module doc). Lives in place: share it by
    ## pointer.
    capacity: uint64                                  ## read-only after init
    mask: uint64
    cells: ptr UncheckedArray[MpmcCell[T]]            ## cache-line aligned
    mem: pointer                                      ## the allocation holding `cells`
    home: pointer                                     ## set by newMpmcQueue: the allocation
    tail {.align: queueSpan.}: Atomic[uint64]         ## producers' line (see spsc.queueSpan)
    head {.align: queueSpan.}: Atomic[uint64]         ## consumers' line
    pad {.align: queueSpan.}: uint8

proc `=copy`*[T](dst: var MpmcQueue[T], src: MpmcQueue[T]) {.error: "a queue lives in place; share it by pointer".}

proc `=destroy`*[T](q: var MpmcQueue[T]) =
  if q.mem != nil:
    deallocShared(q.mem)
    q.mem = nil
    q.cells = nil

proc init*[T](q: var MpmcQueue[T], capacity: int) =
  ## Capacity rounded up to a power of two, at least 2.
  when not supportsCopyMem(T):
    {.error: "MpmcQueue holds plain values only (no GC'd fields)".}
  let cap = nextPow2(max(capacity, 2))
  q.capacity = uint64(cap)
  q.mask = uint64(cap - 1)
  q.mem = allocShared0(cap * sizeof(MpmcCell[T]) + cacheLineSize)
  q.cells = cast[ptr UncheckedArray[MpmcCell[T]]]((cast[uint](q.mem) + uint(cacheLineSize - 1)) and
                                                  not uint(cacheLineSize - 1))
  for i in 0 ..< cap:
    q.cells[i].seq.store(uint64(i), moRelaxed)
  q.tail.store(0, moRelaxed)
  q.head.store(0, moRelease)

proc capacity*[T](q: var MpmcQueue[T]): int {.inline.} = int(q.capacity)

proc newMpmcQueue*[T](capacity: int): ptr MpmcQueue[T] =
  ## A queue in shared memory, aligned as its layout wants; free it with `freeQueue`.
  let (mem, at) = alignedHome(sizeof(MpmcQueue[T]))
  result = cast[ptr MpmcQueue[T]](at)
  result[].init(capacity)
  result.home = mem

proc freeQueue*[T](q: ptr MpmcQueue[T]) =
  let mem = q.home
  `=destroy`(q[])
  deallocShared(mem)

template cellOf[T](q: var MpmcQueue[T], pos: uint64): var MpmcCell[T] = q.cells[pos and q.mask]

proc tryPush*[T](q: var MpmcQueue[T], v: T): bool {.inline.} =
  let n = vyukovPush(q, 1, true, false, pos, idx, q.cellOf(pos).seq):
    q.cellOf(pos).val = v
  n == 1

proc tryPop*[T](q: var MpmcQueue[T], v: var T): bool {.inline.} =
  let n = vyukovPop(q, 1, true, false, pos, idx, q.cellOf(pos).seq, true):
    v = q.cellOf(pos).val
  n == 1

proc push*[T](q: var MpmcQueue[T], v: T) {.inline.} =
  ## Pushes `v`, waiting while its slot is taken. Rigtorp's blocking push: a fetch-add claims
  ## the next position outright (it never fails, unlike the CAS of `tryPush`), then the caller
  ## waits, by backoff.nim's policy, until that slot's previous lap has been popped.
  let pos = q.tail.fetchAdd(1, moRelaxed)
  let c = addr q.cellOf(pos)
  var b: Backoff
  while c.seq.load(moAcquire) != pos: b.wait()
  c.val = v
  c.seq.store(pos + 1, moRelease)

proc pop*[T](q: var MpmcQueue[T]): T {.inline.} =
  ## Pops the value of the next position, claimed with a fetch-add, waiting until its push
  ## has published it (see `push`).
  let pos = q.head.fetchAdd(1, moRelaxed)
  let c = addr q.cellOf(pos)
  var b: Backoff
  while c.seq.load(moAcquire) != pos + 1: b.wait()
  result = c.val
  c.seq.store(pos + q.capacity, moRelease)

proc pushMany*[T](q: var MpmcQueue[T], src: openArray[T]): int {.inline.} =
  ## Pushes a prefix of `src` (the free slots seen at once); returns its length.
  if src.len == 0: return 0
  vyukovPush(q, src.len, true, false, pos, idx, q.cellOf(pos).seq):
    q.cellOf(pos).val = src[idx]

proc popMany*[T](q: var MpmcQueue[T], dst: var openArray[T]): int {.inline.} =
  ## Pops up to `dst.len` values into `dst` (the ready ones seen at once); returns how many.
  if dst.len == 0: return 0
  let n = vyukovPop(q, dst.len, true, false, pos, idx, q.cellOf(pos).seq, true):
    dst[idx] = q.cellOf(pos).val
  max(n, 0)

proc len*[T](q: var MpmcQueue[T]): int =
  ## A snapshot: claimed positions, clamped to 0 .. capacity (blocked `push`/`pop` callers
  ## hold positions ahead of the other side).
  let h = q.head.load(moAcquire)
  let t = q.tail.load(moAcquire)
  if t > h: int(min(t - h, q.capacity)) else: 0
