## Asymmetric memory barriers: a free barrier for the hot side of a Dekker pattern, paid for by
## an expensive one on the rare side.
##
## The channels' wake-up protocol is a Dekker pattern (waker: publish, StoreLoad, read "someone
## waits?"; waiter: announce, StoreLoad, re-check). The waker runs once per message, the waiter
## only before it parks. With `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` the waiter forces a
## full barrier on every CPU running a thread of this process, so the waker needs only a
## compiler barrier: either its publish happened before that barrier point (the waiter's
## re-check sees it) or its read of the waiter count comes after it (and sees the announcement).
##
## Sources: Linux membarrier(2); the "asymmetric Dekker" of liburcu (sys_membarrier) and folly's
## `asymmetricLightBarrier` / `asymmetricHeavyBarrier`.
##
## Properties:
## - `lightBarrier` is a compiler barrier when the process registered for expedited membarrier
##   (Linux >= 4.14), else a full fence (`fence(moSequentiallyConsistent)`)
## - `heavyBarrier` is the membarrier system call (a few microseconds: it interrupts the CPUs
##   running this process's threads), else a full fence
## - one process only: rings shared between processes use full fences on both sides

import std/atomics

when defined(linux):
  var SYS_membarrier {.importc, header: "<sys/syscall.h>".}: clong
  proc syscall(number: clong): clong {.importc, header: "<unistd.h>", varargs.}
  const
    membarrierQuery = 0.cint
    membarrierPrivateExpedited = 8.cint           ## MEMBARRIER_CMD_PRIVATE_EXPEDITED
    membarrierRegisterPrivateExpedited = 16.cint  ## MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED

proc registerAsymmetric(): bool =
  when defined(linux):
    let cmds = syscall(SYS_membarrier, membarrierQuery, 0.cint, 0.cint)
    if cmds < 0 or (cmds and membarrierPrivateExpedited) == 0: return false
    syscall(SYS_membarrier, membarrierRegisterPrivateExpedited, 0.cint, 0.cint) == 0
  else:
    false

let asymmetric* = registerAsymmetric()
  ## True when `lightBarrier` is a compiler barrier only.

proc compilerBarrier() {.inline.} =
  {.emit: "__asm__ __volatile__(\"\" ::: \"memory\");".}

template lightBarrier*() =
  ## The per-message side. Pair with `heavyBarrier` on the other side.
  if asymmetric: compilerBarrier()
  else: fence(moSequentiallyConsistent)

proc heavyBarrier*(): bool =
  ## The rare side: a full barrier on every thread of this process. False if the system call
  ## failed although `lightBarrier` relies on it (never seen; registration is per process and
  ## survives fork): the caller must then not sleep without a timeout.
  when defined(linux):
    if asymmetric:
      if syscall(SYS_membarrier, membarrierPrivateExpedited, 0.cint, 0.cint) == 0:
        return true
      discard syscall(SYS_membarrier, membarrierRegisterPrivateExpedited, 0.cint, 0.cint)
      return syscall(SYS_membarrier, membarrierPrivateExpedited, 0.cint, 0.cint) == 0
  fence(moSequentiallyConsistent)
  true
