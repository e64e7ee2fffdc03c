## The memory layout every channel ring shares, in one process or across processes.
##
## A ring is ONE contiguous region with no pointers inside (only offsets), so the same bytes
## work when mapped at different addresses by different processes (POSIX shared memory) or
## when malloc'd for threads of one process.
##
## ::
##
##   offset 0    RingHeader   geometry (immutable after init) | tail line | head line |
##                            closed line | notEmpty line | notFull line  (64-byte lines)
##                            tail: bit 63 is the close mark (`closedMark`), bits 0..62 the
##                            next position to send to
##   offset H    slot 0       [seq u64 | len u32 | kind u32 | payload: inlineMax bytes ...]
##   H+stride    slot 1       ...
##   ...         slot cap-1
##
## - `seq` is the per-slot sequence number of Vyukov's queue (unused by the SPSC ring).
## - `kind` 0: the message is inline in the payload; kind 1 (one process only): the payload
##   holds a pointer to a malloc'd copy (messages longer than the inline room); kind 2 (one
##   process only): the payload holds an object reference `[obj | data]` lent by a binding
##   (`nexpo/_channel/lend.c` stores CPython `bytes` this way): the message is the `len` bytes at
##   `data`, kept alive by `obj`. A receiver that can take the reference takes it as it is (no
##   copy); any other receiver copies the bytes out and gives `obj` to `refRelease` (see
##   below). Shared rings use kind 0 only: their messages must fit the inline room
##   (`maxMessage == inlineMax`).
## - `stride` is a multiple of 8, and of 64 once it reaches 64 (slots of big messages start on
##   their own cache line); small slots pack densely so an int64 ring stays cache friendly.
##
## Properties:
## - every field written by producers (tail, producer cache) is on a different cache line from
##   every field written by consumers (head, consumer cache), and both from the read-mostly
##   geometry and the wait words (`{.align: 64.}`)
## - the header carries a magic and a layout version, checked when a process opens it
## - the capacity is a power of two: positions map to slots with a mask
## - Vyukov modes: close sets `closedMark` in `tail` with one RMW, and senders claim positions
##   with a compare-and-swap that expects the mark clear: a send either claimed its position
##   before the close (then `tail` counts it and receivers wait for it) or fails. Receivers know
##   exactly what is still to come: the ring is drained iff closed and head == tail (unmarked).
##   (The scheme of crossbeam-channel's bounded flavour.) The SPSC sender publishes its tail
##   with a plain store instead, so SPSC close goes through `closed` and `sendGuard` (see
##   wake.nim); its tail never carries the mark.

## Threat model of shared rings: the memory is shared with processes we do not trust (any
## process of this user may open the name, and a peer may be buggy or hostile). Such a peer
## can write any byte of the ring at any time, and shrink the file under us. It can therefore
## lose, reorder or forge messages of this ring and close it; it cannot make this process read
## or write outside the mapping, hand out a pointer or object it chose, spin, block past a
## timeout, or die. The rules that make that so:
## - no pointer ever enters a shared ring: slot kinds 1 and 2 are for in-process rings only,
##   and every shared message is inline (`maxMessage == inlineMax`);
## - the geometry (mode, capacity, mask, stride, inlineMax, maxMessage, shared) is validated
##   once at create/open and copied into process-local memory (`RingView`); nothing reads it
##   from the shared header afterwards;
## - every slot a receiver takes is checked (kind 0, len <= inlineMax) before a byte is
##   copied; a Vyukov sequence number no run of the protocol can produce, and loops a peer
##   could keep going by moving head/tail, end in `ringCorrupt` or a bounded retry count;
## - a page lost to a peer's ftruncate is replaced by zeros (ring_guard.nim) instead of SIGBUS.
## A violation marks the channel corrupted in this process (channel_handle.nim: `stCorrupt`, Python's
## `nexpo.ChannelCorrupted`) for good.

import std/atomics
import ../config, ../contracts
import ./parking

const
  ringMagic* = 0x4e45_5850_4f52_494e'u64   ## "NEXPORIN"
  ringVersion* = 3'u32   ## 2: close mark in tail, no sendersInFlight; 3: waiters are an armed flag
  slotHeaderSize* = 16
  kindInline* = 0'u32
  kindHeap* = 1'u32
  kindRef* = 2'u32
  closedMark* = 1'u64 shl 63   ## set in `tail` by close: no position can be claimed any more
  ringCorrupt* = -2            ## a ring operation met a state no honest peer produces

type
  ChannelMode* = enum
    cmSpsc = 0 ## one sender, one receiver: Lamport ring
    cmMpsc = 1 ## many senders, one receiver: Vyukov, CAS on the send side only
    cmSpmc = 2 ## one sender, many receivers: Vyukov, CAS on the receive side only
    cmMpmc = 3 ## many of both: Vyukov's bounded MPMC queue

  RingHeader* = object
    magic*: uint64
    version*: uint32
    mode*: uint32
    capacity*: uint64
    mask*: uint64
    stride*: uint64
    inlineMax*: uint64
    maxMessage*: uint64
    shared*: uint32
    tail* {.align: cacheLineSize.}: Atomic[uint64]     ## next position to send to | closedMark
    producerCachedHead*: uint64                        ## SPSC: the sender's stale copy of head
    sendGuard* {.align: cacheLineSize.}: Atomic[uint32] ## SPSC: a send is in progress (own
                                                       ## line: the sender's RMW on it never
                                                       ## waits for the receiver's reads of tail)
    head* {.align: cacheLineSize.}: Atomic[uint64]     ## next position to receive from
    consumerCachedTail*: uint64                        ## SPSC: the receiver's stale copy of tail
    recvGuard* {.align: cacheLineSize.}: Atomic[uint32] ## SPSC: a receive is in progress
    closed* {.align: cacheLineSize.}: Atomic[uint32]   ## mirrors closedMark (read-mostly line)
    notEmpty* {.align: cacheLineSize.}: ParkWord       ## bumped when a message arrives
    recvWaiters*: Atomic[uint32]                       ## 1: a receiver armed a wake (wake.nim)
    notFull* {.align: cacheLineSize.}: ParkWord        ## bumped when a slot frees
    sendWaiters*: Atomic[uint32]                       ## 1: a sender armed a wake

  SlotHead* = object
    seq*: Atomic[uint64]
    len*: Atomic[uint32]   ## atomic: receivers of Vyukov's queue peek it before claiming
    kind*: uint32

  RefRelease* = proc (obj: pointer) {.cdecl, gcsafe, raises: [].}
    ## Drops an object reference of a kind-2 slot. Called from any thread, with whatever locks
    ## the caller holds (a binding defers the real release, e.g. until it holds the GIL).

var refRelease*: RefRelease
  ## Set once by the binding before it sends a reference (`nexpo_channel_set_ref_release`).

proc c_malloc*(size: csize_t): pointer {.importc: "malloc", header: "<stdlib.h>".}
proc c_free*(p: pointer) {.importc: "free", header: "<stdlib.h>".}

proc `=copy`*(dst: var RingHeader, src: RingHeader) {.error: "a ring lives in place; use a pointer".}

const headerSpan* = (sizeof(RingHeader) + cacheLineSize - 1) div cacheLineSize * cacheLineSize

proc roundUp(x, m: int): int {.inline.} = (x + m - 1) div m * m

proc nextPow2*(x: int): int =
  result = 1
  while result < x: result = result shl 1

proc strideFor*(inlineMax: int): int =
  ## Bytes per slot holding `inlineMax` payload bytes.
  let raw = roundUp(slotHeaderSize + inlineMax, 8)
  if raw >= cacheLineSize: roundUp(raw, cacheLineSize) else: raw

proc ringBytes*(capacity, inlineMax: int): int =
  ## Size of the whole region: header + slots.
  headerSpan + capacity * strideFor(inlineMax)

proc initRing*(r: ptr RingHeader, mode: ChannelMode, capacity, inlineMax, maxMessage: int,
               shared: bool) =
  ## Lay out a zeroed region of `ringBytes(capacity, inlineMax)` bytes. The magic is written
  ## last (release), so a process that sees it sees a complete header.
  preCondition(capacity == nextPow2(capacity))
  r.version = ringVersion
  r.mode = uint32(ord(mode))
  r.capacity = uint64(capacity)
  r.mask = uint64(capacity - 1)
  r.stride = uint64(strideFor(inlineMax))
  r.inlineMax = uint64(inlineMax)
  r.maxMessage = uint64(maxMessage)
  r.shared = uint32(shared)
  let base = cast[uint](r) + uint(headerSpan)
  for i in 0 ..< capacity:
    let s = cast[ptr SlotHead](base + uint(i) * uint(r.stride))
    s.seq.store(uint64(i), moRelaxed)
  fence(moRelease)
  cast[ptr Atomic[uint64]](addr r.magic)[].store(ringMagic, moRelease)

type RingView* = object
  ## One process's handle on a ring: the header's address plus this process's copy of the
  ## geometry, taken when it created or opened the ring (a peer may rewrite the header's copy).
  ## The per-message code reads the geometry only from here; the header's atomics (tail, head,
  ## guards, wait words) through the accessors below.
  hdr*: ptr RingHeader
  slots*: uint                 ## address of slot 0
  mode*: ChannelMode
  shared*: bool
  capacity*: uint64
  mask*: uint64
  stride*: uint64
  inlineMax*: uint64
  maxMessage*: uint64

template trusted*(q: typed): bool =
  ## Whether contracts may check `q`'s relations: always for in-process rings and the typed
  ## queues; never for a shared ring, whose relations a hostile peer may break (the code
  ## reports that as stCorrupt instead, ring.nim's threat model).
  when q is RingView: not q.shared else: true

proc viewOf*(r: ptr RingHeader, mode: ChannelMode, capacity, inlineMax, maxMessage: int,
             shared: bool): RingView =
  RingView(hdr: r, slots: cast[uint](r) + uint(headerSpan), mode: mode, shared: shared,
           capacity: uint64(capacity), mask: uint64(capacity - 1),
           stride: uint64(strideFor(inlineMax)), inlineMax: uint64(inlineMax),
           maxMessage: uint64(maxMessage))

template tail*(v: RingView): untyped = v.hdr.tail
template head*(v: RingView): untyped = v.hdr.head
template sendGuard*(v: RingView): untyped = v.hdr.sendGuard
template recvGuard*(v: RingView): untyped = v.hdr.recvGuard
template closed*(v: RingView): untyped = v.hdr.closed
template notEmpty*(v: RingView): untyped = v.hdr.notEmpty
template notFull*(v: RingView): untyped = v.hdr.notFull
template recvWaiters*(v: RingView): untyped = v.hdr.recvWaiters
template sendWaiters*(v: RingView): untyped = v.hdr.sendWaiters
template producerCachedHead*(v: RingView): untyped = v.hdr.producerCachedHead
template `producerCachedHead=`*(v: RingView, x: uint64) = v.hdr.producerCachedHead = x
template consumerCachedTail*(v: RingView): untyped = v.hdr.consumerCachedTail
template `consumerCachedTail=`*(v: RingView, x: uint64) = v.hdr.consumerCachedTail = x

proc slotAt*(r: RingView, pos: uint64): ptr SlotHead {.inline.} =
  ## In bounds whatever `pos` is: the mask and stride are this process's.
  cast[ptr SlotHead](r.slots + uint(pos and r.mask) * uint(r.stride))

proc payload*(s: ptr SlotHead): pointer {.inline.} =
  cast[pointer](cast[uint](s) + uint(slotHeaderSize))

proc claimedEnd*(r: RingView, order = moAcquire): uint64 {.inline.} =
  ## One past the last claimed position (the tail without the close mark).
  r.tail.load(order) and not closedMark

proc isShared*(r: RingView): bool {.inline.} = r.shared

proc ringMode*(r: RingView): ChannelMode {.inline.} = r.mode

# --- message payloads -------------------------------------------------------------------

proc copyBytes*(dst, src: pointer, n: int) {.inline.} =
  ## copyMem for message payloads (the buffers never overlap): up to 16 bytes with at most two
  ## overlapping fixed-size moves instead of a call to memcpy (small messages are the common
  ## case, and a batch copies one per message).
  template at(p: pointer, i: int): pointer = cast[pointer](cast[uint](p) + uint(i))
  if n > 16:
    copyMem(dst, src, n)
  elif n >= 8:
    copyMem(dst, src, 8)
    copyMem(at(dst, n - 8), at(src, n - 8), 8)
  elif n >= 4:
    copyMem(dst, src, 4)
    copyMem(at(dst, n - 4), at(src, n - 4), 4)
  elif n > 0:
    let d = cast[ptr UncheckedArray[byte]](dst)
    let s = cast[ptr UncheckedArray[byte]](src)
    d[0] = s[0]
    d[n div 2] = s[n div 2]
    d[n - 1] = s[n - 1]

proc writeMessage*(s: ptr SlotHead, msg: pointer, len: int, heapCopy: pointer) {.inline.} =
  ## Fill a claimed slot: inline when `heapCopy` is nil, else by reference to `heapCopy`
  ## (a malloc'd copy the receiver frees).
  s.len.store(uint32(len), moRelaxed)
  if heapCopy == nil:
    s.kind = kindInline
    copyBytes(payload(s), msg, len)
  else:
    s.kind = kindHeap
    cast[ptr pointer](payload(s))[] = heapCopy

proc writeRef*(s: ptr SlotHead, obj, data: pointer, len: int) {.inline.} =
  ## Fill a claimed slot with a lent reference (kind 2): the message is `len` bytes at `data`.
  s.len.store(uint32(len), moRelaxed)
  s.kind = kindRef
  let p = cast[ptr array[2, pointer]](payload(s))
  p[0] = obj
  p[1] = data

proc refOf*(s: ptr SlotHead): tuple[obj, data: pointer] {.inline.} =
  let p = cast[ptr array[2, pointer]](payload(s))
  (p[0], p[1])

type ReadResult* = object
  len*: int
  heap*: pointer   ## non-nil: the message was not copied; the receiver owns this malloc'd block

proc readMessage*(s: ptr SlotHead, dst: pointer, dstCap: int): ReadResult {.inline.} =
  ## Take the message out of a claimed slot: copied into `dst` when it fits, otherwise handed
  ## over as a malloc'd block (copied from the slot if inline or lent). A lent reference is
  ## released once copied.
  result.len = int(s.len.load(moRelaxed))
  if s.kind != kindHeap:
    var obj: pointer = nil
    var src = payload(s)
    if s.kind == kindRef:
      (obj, src) = refOf(s)
    if result.len <= dstCap:
      copyBytes(dst, src, result.len)
    else:
      result.heap = c_malloc(csize_t(max(result.len, 1)))
      copyMem(result.heap, src, result.len)
    if obj != nil: refRelease(obj)
  else:
    let blk = cast[ptr pointer](payload(s))[]
    if result.len <= dstCap:
      if result.len > 0: copyMem(dst, blk, result.len)
      c_free(blk)
    else:
      result.heap = blk

proc sharedLen(s: ptr SlotHead, inlineMax: uint64, bad: var bool): int {.inline.} =
  ## A shared slot's length, read once and checked: an inline message (kind 0) no longer than
  ## the slot holds. Anything else sets `bad` and reads as an empty message.
  let n = s.len.load(moRelaxed)
  if s.kind != kindInline or uint64(n) > inlineMax:
    bad = true
    0
  else:
    int(n)

proc readShared*(s: ptr SlotHead, dst: pointer, dstCap: int, inlineMax: uint64,
                 bad: var bool): ReadResult {.inline.} =
  ## `readMessage` for a shared ring: only inline messages, of a checked length.
  result.len = sharedLen(s, inlineMax, bad)
  if result.len <= dstCap:
    copyBytes(dst, payload(s), result.len)
  else:
    result.heap = c_malloc(csize_t(result.len))
    if result.heap == nil:
      bad = true
      result.len = 0
    else:
      copyMem(result.heap, payload(s), result.len)

type RefVisit* = proc (ctx: pointer, data: pointer, len: int, obj: pointer) {.cdecl, gcsafe, raises: [].}
  ## Receives one message in place: `len` bytes at `data`, valid during the call only; `obj` is
  ## the lent reference of a kind-2 slot (the visitor owns it from then on), else nil.

proc visitMessage*(s: ptr SlotHead, visit: RefVisit, ctx: pointer) {.inline.} =
  ## Hand a claimed slot's message to `visit` without copying it first.
  let len = int(s.len.load(moRelaxed))
  if s.kind == kindInline:
    visit(ctx, payload(s), len, nil)
  elif s.kind == kindHeap:
    let blk = cast[ptr pointer](payload(s))[]
    visit(ctx, blk, len, nil)
    c_free(blk)
  else:
    let (obj, data) = refOf(s)
    visit(ctx, data, len, obj)

proc visitShared*(s: ptr SlotHead, visit: RefVisit, ctx: pointer, inlineMax: uint64,
                   bad: var bool) {.inline.} =
  ## `visitMessage` for a shared ring: an invalid slot is not visited (it sets `bad`).
  let len = sharedLen(s, inlineMax, bad)
  if not bad:
    visit(ctx, payload(s), len, nil)

proc discardMessage*(s: ptr SlotHead) {.inline.} =
  ## Drop a claimed slot's message (when the ring is destroyed with messages left in it).
  if s.kind == kindHeap:
    c_free(cast[ptr pointer](payload(s))[])
  elif s.kind == kindRef:
    refRelease(refOf(s).obj)

proc peekLen*(s: ptr SlotHead): int {.inline.} = int(s.len.load(moRelaxed))
