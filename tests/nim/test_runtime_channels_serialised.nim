## The serialised path (runtime/wake.nim): an SPSC ring whose lending calls all hold one lock
## (a Nim Lock stands for CPython's GIL) skips the side guards; a copying call made without it
## turns that off for good while the other side may be mid-operation.

{.used.}

import std/[atomics, locks, os, strutils, unittest]
import nexpo_core/config
import nexpo_core/errors
import nexpo_core/runtime/[barriers, channel, ring]

proc freeRef(obj: pointer) {.cdecl, gcsafe, raises: [].} = c_free(obj)

proc newLent(seq: int): pointer =
  result = c_malloc(csize_t(sizeof(int)))
  cast[ptr int](result)[] = seq

proc lendOne(ch: ptr ByteChannel, seq: int): Status =
  ## Odd messages go by the one-message call (sendRef), even ones by the batch call.
  var obj = newLent(seq)
  var data = obj
  var len = sizeof(int)
  var sent = 0
  if seq mod 2 == 1:
    result = sendRef(ch, obj, data, len)
    if result == stOk: sent = 1
  else:
    result = sendRefs(ch, cast[ptr UncheckedArray[pointer]](addr obj),
                      cast[ptr UncheckedArray[pointer]](addr data),
                      cast[ptr UncheckedArray[int]](addr len), 1, sent)
  if sent == 0: c_free(obj)

proc takeOne(ctx: pointer, data: pointer, len: int, obj: pointer) {.cdecl, gcsafe, raises: [].} =
  cast[ptr int](ctx)[] = cast[ptr int](data)[]
  if obj != nil: c_free(obj)

type Ctx = object
  ch: ptr ByteChannel
  n, switchAt: int
  gil: Lock
  got: ptr UncheckedArray[int]

proc producer(c: ptr Ctx) {.thread.} =
  var i = 0
  while i < c.n:
    acquire(c.gil)
    let st = lendOne(c.ch, i)
    release(c.gil)
    if st == stOk: inc i
    else:
      doAssert st == stAgain
      doAssert waitReady(c.ch, interestSend, 1_000_000) in {stOk, stTimeout}

proc consumer(c: ptr Ctx) {.thread.} =
  var i = 0
  while i < c.n:
    var st: Status
    var x = -1
    if i < c.switchAt:   # the binding's receive, holding the lock
      var count = 0
      acquire(c.gil)
      st = if i mod 2 == 1: recvOne(c.ch, takeOne, addr x)   # the one-message call
           else: recvVisit(c.ch, 1, takeOne, addr x, count)
      release(c.gil)
    else:                # a copying receive without the lock: leaves the serialised path
      var res: ReadResult
      st = recv(c.ch, addr x, sizeof(x), res, 0)
    if st == stOk:
      c.got[i] = x
      inc i
    else:
      doAssert st == stAgain
      doAssert waitReady(c.ch, interestRecv, 1_000_000) in {stOk, stTimeout}

suite "serialised SPSC rings":
  setup:
    ring.refRelease = freeRef

  test "only in-process rings with the asymmetric barrier are serialised":
    let ch = newChannel(cmSpsc, 4, 64)
    check serialise(ch) == asymmetric
    release(ch)
    let name = "nexpo-test-serialise-" & $getCurrentProcessId()
    let shared = createShared(name, cmSpsc, 4, 64)
    check not serialise(shared)
    check sendRef(shared, nil, nil, 0) == stUnsupported   # an address means nothing there
    close(shared)
    release(shared)

  test "a waiting receiver holds its side: a second one is told":
    let ch = newChannel(cmSpsc, 4, 64)
    discard serialise(ch)
    ch.ring.recvGuard.store(1)   # what a blocked waitReady holds
    var x = 0
    var count = 0
    check lendOne(ch, 7) == stOk
    check recvVisit(ch, 1, takeOne, addr x, count) == stInvalid
    check "two receivers" in $lastErrorCString()
    check recvOne(ch, takeOne, addr x) == stInvalid
    ch.ring.recvGuard.store(0)
    check recvVisit(ch, 1, takeOne, addr x, count) == stOk and x == 7
    release(ch)

  test "a copying receiver mid-stream: nothing lost, duplicated or reordered":
    let rounds = when tsanEnabled or sanitizeEnabled: 20 else: 200
    for round in 0 ..< rounds:
      var c = Ctx(ch: newChannel(cmSpsc, [2, 8, 64][round mod 3], 64), n: 300,
                  switchAt: (round * 37) mod 300)
      discard serialise(c.ch)
      initLock(c.gil)
      c.got = cast[ptr UncheckedArray[int]](allocShared0(c.n * sizeof(int)))
      var p, r: Thread[ptr Ctx]
      createThread(p, producer, addr c)
      createThread(r, consumer, addr c)
      joinThread(p)
      joinThread(r)
      for i in 0 ..< c.n: check c.got[i] == i
      check not c.ch.serialised.load
      deallocShared(c.got)
      deinitLock(c.gil)
      release(c.ch)
