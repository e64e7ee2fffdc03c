## Watchers of a channel (in one process): asyncio loops and `select` register an event fd or
## a futex word; a waiter arms its watcher, re-checks the ring, then sleeps; the side that makes
## the ring ready signals armed watchers once (one write(2) per sleep, nothing when nobody is
## armed). The table lives in the handle (channel_handle.nim), behind a spin lock taken only to
## register, unregister and signal.

{.push raises: [].}

import std/[atomics, posix]
import ./barriers, ./channel_handle, ./parking, ./ring

const
  interestRecv* = 1'u32         ## watcher wants "a message may be ready"
  interestSend* = 2'u32         ## watcher wants "room may be free"

proc eventWrite(fd: cint) =
  var one = 1'u64
  discard posix.write(fd, addr one, sizeof(one))

proc lockWatchers(ch: ptr ByteChannel) {.inline.} =
  while ch.watchLock.exchange(true, moAcquire):
    cpuRelax()

proc unlockWatchers(ch: ptr ByteChannel) {.inline.} =
  ch.watchLock.store(false, moRelease)

proc signalWatchers*(ch: ptr ByteChannel, interest: uint32, force = false) =
  lockWatchers(ch)
  for w in ch.watchers.mitems:
    if w.used and (w.interest and interest) != 0:
      if force or w.armed.exchange(0, moSequentiallyConsistent) != 0:
        if w.fd >= 0:
          eventWrite(w.fd)
        else:
          discard w.word[].fetchAdd(1, moRelease)
          parkWake(w.word)
  unlockWatchers(ch)

proc watch*(ch: ptr ByteChannel, fd: cint, word: ptr ParkWord, interest: uint32): int =
  ## Register a watcher; returns its id (for arm/unwatch), or -1 when the table is full.
  lockWatchers(ch)
  result = -1
  for i, w in ch.watchers.mpairs:
    if not w.used:
      w.used = true
      w.interest = interest
      w.fd = fd
      w.word = word
      w.armed.store(0, moRelaxed)
      result = i
      break
  if result >= 0:
    discard ch.watchCount.fetchAdd(1, moRelaxed)
  unlockWatchers(ch)

proc unwatch*(ch: ptr ByteChannel, id: int) =
  if id < 0 or id >= maxWatchers: return
  lockWatchers(ch)
  if ch.watchers[id].used:
    ch.watchers[id].used = false
    ch.watchers[id].armed.store(0, moRelaxed)
    discard ch.watchCount.fetchSub(1, moRelaxed)
  unlockWatchers(ch)

proc arm*(ch: ptr ByteChannel, id: int) {.inline.} =
  ch.watchers[id].armed.store(1, moRelaxed)
  fence(moSequentiallyConsistent)
  if ch.ring.ringMode == cmSpsc and not ch.ring.isShared:
    # The SPSC waker has only a compiler barrier (see the module doc). The system call has
    # not been seen to fail once registered (and blocking waits poll if it does); an armed
    # watcher would then risk missing one signal.
    discard heavyBarrier()

proc validWatcher*(ch: ptr ByteChannel, id: int): bool =
  id >= 0 and id < maxWatchers and ch.watchers[id].used

{.pop.}
