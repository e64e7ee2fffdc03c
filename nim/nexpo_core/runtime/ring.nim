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
##   (`nexpo/_fastpath.c` stores CPython `bytes` this way): the message is the `len` bytes at
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
##   channel.nim); its tail never carries the mark.

import std/atomics
import ../config
import ./parking

const
  ringMagic* = 0x4e45_5850_4f52_494e'u64   ## "NEXPORIN"
  ringVersion* = 2'u32   ## 2: close mark in tail, no sendersInFlight
  slotHeaderSize* = 16
  kindInline* = 0'u32
  kindHeap* = 1'u32
  kindRef* = 2'u32
  closedMark* = 1'u64 shl 63   ## set in `tail` by close: no position can be claimed any more

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
    recvWaiters*: Atomic[uint32]                       ## receivers parked (or about to)
    notFull* {.align: cacheLineSize.}: ParkWord        ## bumped when a slot frees
    sendWaiters*: Atomic[uint32]

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

proc slotAt*(r: ptr RingHeader, pos: uint64): ptr SlotHead {.inline.} =
  cast[ptr SlotHead](cast[uint](r) + uint(headerSpan) + uint(pos and r.mask) * uint(r.stride))

proc payload*(s: ptr SlotHead): pointer {.inline.} =
  cast[pointer](cast[uint](s) + uint(slotHeaderSize))

proc claimedEnd*(r: ptr RingHeader, order = moAcquire): uint64 {.inline.} =
  ## One past the last claimed position (the tail without the close mark).
  r.tail.load(order) and not closedMark

proc isShared*(r: ptr RingHeader): bool {.inline.} = r.shared != 0

proc ringMode*(r: ptr RingHeader): ChannelMode {.inline.} = ChannelMode(r.mode)

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

proc discardMessage*(s: ptr SlotHead) {.inline.} =
  ## Drop a claimed slot's message (when the ring is destroyed with messages left in it).
  if s.kind == kindHeap:
    c_free(cast[ptr pointer](payload(s))[])
  elif s.kind == kindRef:
    refRelease(refOf(s).obj)

proc peekLen*(s: ptr SlotHead): int {.inline.} = int(s.len.load(moRelaxed))
