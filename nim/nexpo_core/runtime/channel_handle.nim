## A channel handle: the process-local object behind `ptr ByteChannel` (channel.nim lists
## the files of its operations). It owns the ring (malloc'd, or a shared mapping), this process's copy of the
## ring's geometry (`RingView`), the watcher table, and the corruption state of a shared ring:
## shared rings are validated at open and their geometry is never read from shared memory again
## (ring.nim's threat model); a violation found later is recorded here, once, for good.

import std/[atomics, posix]
import ../errors
import ./parking, ./ring, ./ring_guard, ./shm

const
  defaultInline* = 16
    ## in-process slots: 16-byte header + 16 payload = 32 bytes, two to a cache line. Room for a
    ## lent reference [obj | data] (what the Python layer sends) or a message of up to 16 bytes;
    ## longer copied messages go to a malloc'd block. Small slots halve the cache lines a
    ## receiver pulls from the sender's core per message (a 128-byte slot cost ~25% in a
    ## thread-to-thread batch benchmark).
  maxCapacity* = 1 shl 24
  maxSharedMessage* = 1 shl 24
  maxWatchers* = 64

type
  Watcher* = object
    armed*: Atomic[uint32]
    used*: bool
    interest*: uint32
    fd*: cint                          ## event fd / pipe to write 8 bytes to, or -1
    word*: ptr ParkWord                ## futex word to bump and wake, or nil

  Corruption* = enum
    ## Why a shared ring is no longer trusted (the `corruption` word of a channel).
    coNone = 0
    coSlot = 1        ## a slot holds what no sender of a shared ring writes (kind, length)
    coSequence = 2    ## a sequence number no sender or receiver could have written
    coTruncated = 3   ## the file was shrunk under the mapping (ring_guard.nim)

  ByteChannel* = object
    ring*: RingView                    ## header address + this process's copy of the geometry
    corruption*: Atomic[uint32]        ## a `Corruption`; sticky once set (shared rings only)
    region*: Region                    ## the mapping, for shared rings
    name*: string                      ## shm name, for shared rings
    creator*: bool                     ## created the shm object: unlinks it on close
    unlinked*: Atomic[bool]
    watchLock*: Atomic[bool]
    watchCount*: Atomic[int32]
    watchers*: array[maxWatchers, Watcher]
    serialised*: Atomic[bool]          ## SPSC in one process: every message move holds the
                                       ## binding's lock (the GIL): no side guard (wake.nim)
    pad0: array[64, byte]              # (padding, not {.align.}: the handle is malloc'd)
    sendBusy*: Atomic[uint32]          ## a serialised send is in progress
    pad1: array[60, byte]
    recvBusy*: Atomic[uint32]          ## a serialised receive is in progress
    pad2: array[60, byte]

proc `=copy`*(dst: var ByteChannel, src: ByteChannel) {.error: "a channel handle is shared by pointer".}

# --- construction -----------------------------------------------------------------------

proc checkGeometry(capacity, maxMessage: int) =
  check(capacity >= 1 and capacity <= maxCapacity,
        "capacity: must be between 1 and " & $maxCapacity & ", got " & $capacity)
  check(maxMessage >= 0 and maxMessage <= high(int32),
        "max_message_size: must be between 0 and 2**31-1, got " & $maxMessage)

proc ringCapacity(capacity: int): int =
  ## Rounded up to a power of two, at least 2 (Vyukov's sequence numbers need two slots).
  max(2, nextPow2(capacity))

proc newChannel*(mode: ChannelMode, capacity, maxMessage: int): ptr ByteChannel =
  ## An in-process channel; `capacity` is rounded up to a power of two (at least 2).
  checkGeometry(capacity, maxMessage)
  let cap = ringCapacity(capacity)
  let inline = min(maxMessage, defaultInline)
  let bytes = ringBytes(cap, inline)
  let mem = allocShared0(bytes + 64)
  let ringMem = cast[ptr RingHeader]((cast[uint](mem) + 63) and not 63'u)
  initRing(ringMem, mode, cap, inline, maxMessage, shared = false)
  result = cast[ptr ByteChannel](allocShared0(sizeof(ByteChannel)))
  result.ring = viewOf(ringMem, mode, cap, inline, maxMessage, shared = false)
  result.region = Region(base: mem, len: bytes + 64)

proc guardShared(ch: ptr ByteChannel) =
  ## Register the mapping with ring_guard.nim (a shrunk file becomes stCorrupt, not SIGBUS).
  if not guardRegion(ch.region.base, ch.region.len, addr ch.corruption, uint32(ord(coTruncated))):
    unmapRegion(ch.region)
    `=destroy`(ch.name)
    deallocShared(ch)
    fail(stInvalid, "name: too many shared channels open in this process (max " & $maxGuarded & ")")

proc createShared*(name: string, mode: ChannelMode, capacity, maxMessage: int): ptr ByteChannel =
  ## A channel in POSIX shared memory; other processes attach with `openShared(name)`.
  checkGeometry(capacity, maxMessage)
  check(maxMessage <= maxSharedMessage,
        "max_message_size: shared channels hold at most " & $maxSharedMessage & " bytes a message")
  let cap = ringCapacity(capacity)
  let bytes = ringBytes(cap, maxMessage)
  let region = createRegion(name, bytes)
  let r = cast[ptr RingHeader](region.base)
  initRing(r, mode, cap, maxMessage, maxMessage, shared = true)
  result = cast[ptr ByteChannel](allocShared0(sizeof(ByteChannel)))
  result.ring = viewOf(r, mode, cap, maxMessage, maxMessage, shared = true)
  result.region = region
  result.name = name
  result.creator = true
  guardShared(result)

proc openShared*(name: string): ptr ByteChannel =
  let region = openRegion(name, headerSpan)
  let r = cast[ptr RingHeader](region.base)
  # The creator writes the magic last; give a creator that is mid-init a moment.
  var spins = 0
  while cast[ptr Atomic[uint64]](addr r.magic)[].load(moAcquire) != ringMagic and spins < 1000:
    inc spins
    discard usleep(1000)
  # Every field is read once, checked, and kept in this process (`RingView`): a peer may
  # rewrite the header at any time, so nothing below ever reads the geometry from it again.
  let magic = cast[ptr Atomic[uint64]](addr r.magic)[].load(moAcquire)
  let (version, mode, shared) = (r.version, r.mode, r.shared)
  let (cap, mask, stride) = (r.capacity, r.mask, r.stride)
  let (inline, maxMessage) = (r.inlineMax, r.maxMessage)
  if magic != ringMagic or version != ringVersion:
    unmapRegion(region)
    fail(stInvalid, "name: " & name & " is not a nexpo shared channel (or another version)")
  let valid = shared == 1 and mode <= 3 and
    cap >= 2 and cap <= uint64(maxCapacity) and (cap and (cap - 1)) == 0 and mask == cap - 1 and
    maxMessage <= uint64(maxSharedMessage) and inline == maxMessage and
    stride == uint64(strideFor(int(inline))) and
    ringBytes(int(cap), int(inline)) <= region.len
  if not valid:
    unmapRegion(region)
    fail(stCorrupt, "name: " & name & ": the shared channel's header is corrupted " &
         "(geometry out of range, or larger than the file)")
  result = cast[ptr ByteChannel](allocShared0(sizeof(ByteChannel)))
  result.ring = viewOf(r, ChannelMode(mode), int(cap), int(inline), int(maxMessage), shared = true)
  result.region = region
  result.name = name
  guardShared(result)

proc release*(ch: ptr ByteChannel) =
  ## Free the handle (and, for an in-process ring, the ring and the messages left in it).
  if ch == nil: return
  let r = ch.ring
  if r.isShared:
    # A creator that goes away without close() still removes the name (no /dev/shm leak);
    # processes that have it mapped keep using the ring.
    if ch.creator and not ch.unlinked.exchange(true):
      unlinkRegion(ch.name)
    unguardRegion(ch.region.base)
    unmapRegion(ch.region)
  else:
    var pos = r.head.load(moRelaxed)
    while pos < r.claimedEnd(moRelaxed):
      discardMessage(slotAt(r, pos))
      inc pos
    deallocShared(ch.region.base)
  `=destroy`(ch.name)
  deallocShared(ch)

# --- corruption of shared rings (see ring.nim's threat model) -----------------------------

const corruptionText: array[Corruption, string] = [
  "", "a slot holds what no sender writes (a reference, a pointer, or a length over the slot)",
  "a slot's sequence number is one no sender or receiver could have written",
  "the shared memory was truncated"]

proc corrupted*(ch: ptr ByteChannel): bool {.inline.} =
  ## This process stopped trusting the ring (only ever true for shared rings).
  ch.corruption.load(moRelaxed) != 0

proc corruptStatus*(ch: ptr ByteChannel): Status =
  let c = min(ch.corruption.load(moAcquire), uint32(ord(high(Corruption))))
  failed(stCorrupt, "channel: shared channel " & ch.name & " was corrupted by another process: " &
                   corruptionText[Corruption(c)] & "; it cannot be used any more")

proc markCorrupt*(ch: ptr ByteChannel, why: Corruption): Status =
  ## Record the first reason (sticky) and report it.
  var none = 0'u32
  discard ch.corruption.compareExchange(none, uint32(ord(why)), moAcquireRelease, moAcquire)
  corruptStatus(ch)

