## Shared rings written by a hostile peer (ring.nim's threat model): slots with pointers or
## lengths over the slot, sequence numbers no peer of ours writes, geometry rewritten after open,
## a file shrunk under the mapping. Each ends in stCorrupt (sticky) or a timeout; nothing reads
## outside the mapping, spins, or faults. The peer is simulated by writing the header and slots
## through a second handle's mapping (what another process's writes look like).

import std/[atomics, monotimes, os, posix, strutils, times, unittest]
import nexpo_core/errors
import nexpo_core/runtime/[channel, ring]

var counter = 0

proc freshName(): string =
  inc counter
  "nexpo-hostile-nim-" & $getCurrentProcessId() & "-" & $counter

proc send(ch: ptr ByteChannel, s: string, timeoutNs = 0'i64): Status =
  send(ch, (if s.len > 0: unsafeAddr s[0] else: nil), s.len, timeoutNs)

proc recv(ch: ptr ByteChannel, st: var Status, timeoutNs = 0'i64): string =
  var buf: array[256, char]
  var res: ReadResult
  st = recv(ch, addr buf[0], buf.len, res, timeoutNs)
  if st == stOk:
    result = newString(res.len)
    if res.heap != nil:
      if res.len > 0: copyMem(addr result[0], res.heap, res.len)
      c_free(res.heap)
    elif res.len > 0:
      copyMem(addr result[0], addr buf[0], res.len)

proc pair(mode: ChannelMode, cap = 4, maxMessage = 32): (ptr ByteChannel, ptr ByteChannel, string) =
  let name = freshName()
  let a = createShared(name, mode, cap, maxMessage)
  (a, openShared(name), name)

suite "hostile shared rings":
  test "a slot of kind 1 or 2, or a length over the slot, is stCorrupt and sticky":
    for mode in ChannelMode:
      for (kind, length) in [(kindHeap, 4'u32), (kindRef, 4'u32), (kindInline, 150'u32)]:
        let (a, b, _) = pair(mode)
        check send(a, "hello") == stOk
        let s = slotAt(b.ring, 0)
        s.kind = kind
        s.len.store(length)
        cast[ptr array[2, pointer]](payload(s))[] = [cast[pointer](0xdead), cast[pointer](0xbeef)]
        var st: Status
        discard recv(b, st)
        check st == stCorrupt
        check "another process" in $lastErrorCString()
        check b.corrupted
        check send(b, "x") == stCorrupt   # this process stopped trusting the ring
        close(a)
        release(b)
        release(a)

  test "a sequence from the future, with the index never moving, is stCorrupt at once":
    for mode in [cmMpsc, cmSpmc, cmMpmc]:
      let (a, b, _) = pair(mode)
      slotAt(b.ring, 0).seq.store(5000)
      let t0 = getMonoTime()
      var st: Status
      discard recv(b, st, 500_000_000)
      check st == stCorrupt
      check send(a, "x", 500_000_000) == stCorrupt
      check (getMonoTime() - t0).inMilliseconds < 400
      close(a)
      release(b)
      release(a)

  test "an impossible sequence at the tail stops a sender; a stuck one times out":
    let (a, b, _) = pair(cmMpmc)
    slotAt(b.ring, 0).seq.store(3)        # neither free, nor last lap's, nor from the future
    check send(b, "x", 100_000_000) == stCorrupt
    let (c, d, _) = pair(cmMpmc)
    c.ring.tail.store(1)                   # a claim that is never published
    var st: Status
    discard recv(d, st, 50_000_000)
    check st == stTimeout
    for ch in [a, b, c, d]: release(ch)

  test "geometry rewritten after open changes nothing this process does":
    let (a, b, _) = pair(cmMpmc, 4, 32)
    let h = b.ring.hdr
    h.maxMessage = 1 shl 20
    h.inlineMax = 1 shl 20
    h.capacity = 1 shl 40
    h.mask = high(uint64)
    h.stride = 1 shl 30
    h.mode = 99
    check send(b, repeat('z', 100)) == stInvalid   # still over max_message_size here
    check send(b, "fits") == stOk
    for i in 0 ..< 4: check slotAt(b.ring, uint64(i)).kind == kindInline
    var st: Status
    check recv(a, st) == "fits"
    release(b)
    release(a)

  test "open refuses garbage geometry and a file shorter than the header says":
    for field in 0 ..< 6:
      let name = freshName()
      let a = createShared(name, cmMpmc, 4, 32)
      let h = a.ring.hdr
      case field
      of 0: h.capacity = 3
      of 1: h.mask = 1
      of 2: h.stride = 8
      of 3: h.inlineMax = 7
      of 4: h.mode = 4
      else: h.shared = 0
      expect NexpoError:
        discard openShared(name)
      release(a)
    let name = freshName()
    let a = createShared(name, cmMpmc, 64, 1024)
    let fd = shm_open(cstring("/" & name), O_RDWR, Mode(0o600))
    check ftruncate(fd, Off(4096)) == 0
    discard posix.close(fd)
    try:
      discard openShared(name)
      check false
    except NexpoError as e:
      check e.status == stCorrupt
    release(a)

  test "a file shrunk under the mapping: zero pages and stCorrupt, not SIGBUS":
    let (a, b, name) = pair(cmSpsc, 64, 4096)
    for i in 0 ..< 40: check send(a, repeat(char(i), 4000)) == stOk
    let fd = shm_open(cstring("/" & name), O_RDWR, Mode(0o600))
    check ftruncate(fd, 0) == 0
    discard posix.close(fd)
    var st: Status
    discard recv(b, st)                    # faults, gets zero pages, carries on
    discard recv(b, st)
    check st == stCorrupt
    check "truncated" in $lastErrorCString()
    check send(a, "x") in {stOk, stCorrupt}
    release(b)
    release(a)
