## Survive a peer that shrinks a shared ring's file.
##
## A process that opened a shared ring maps the whole file. Another process of the same user can
## ftruncate it afterwards; touching a page past the new end then raises SIGBUS, which would
## kill the survivor. This module installs one SIGBUS handler (the first time a shared ring is
## mapped) that looks the faulting address up in a table of this process's shared-ring mappings:
##
## - inside one: the handler maps anonymous zero pages over that whole mapping (MAP_FIXED, so
##   the addresses stay valid), records the loss in the channel's `corruption` word and returns;
##   the faulting instruction runs again on zeros, and the channel's next operation fails with
##   stCorrupt. Nothing of the ring is trusted after that (this process stops seeing the peer).
## - anywhere else: the fault is not ours, and goes to the handler that was installed before
##   (or the default action, which ends the process as it would have without us).
##
## The handler only does async-signal-safe work: atomic loads of the table, mmap(2), an atomic
## store. The table is fixed-size (no allocation) and written under a spin lock by
## `guardRegion`/`unguardRegion`, which run when a channel is created, opened or released
## (never while that channel is in use, so an entry never disappears under a fault on it).
##
## Limits: a SIGBUS handler installed after ours that does not chain to it (Python's
## `faulthandler.enable()` chains by re-raising, which loses the faulting address) takes the
## fault first, and the process dies as before. Pages lost before the first shared ring was
## opened cannot exist (`openShared` checks the size with fstat first).

import std/[atomics, posix]

const maxGuarded* = 4096   ## shared rings mapped at once in one process

type
  GuardEntry = object
    base: Atomic[uint]         ## 0: free
    len: Atomic[uint]
    flag: Atomic[pointer]      ## ptr Atomic[uint32]: the channel's corruption word

var
  entries: array[maxGuarded, GuardEntry]
  tableLock: Atomic[bool]
  installed: Atomic[bool]
  previous: Sigaction          ## the SIGBUS disposition we chain to (written once, before install)
  lostCode: uint32             ## what the handler stores in a flag (set with the first guard)

proc lockTable() =
  while tableLock.exchange(true, moAcquire):
    discard sched_yield()

proc unlockTable() = tableLock.store(false, moRelease)

{.push stackTrace: off, checks: off.}   # runs in a signal handler

proc chain(sig: cint, info: ptr SigInfo, ctx: pointer) =
  ## Hand a fault that is not ours to whoever had SIGBUS before us.
  if (previous.sa_flags and SA_SIGINFO) != 0 and previous.sa_sigaction != nil:
    previous.sa_sigaction(sig, info, ctx)
  elif previous.sa_handler == SIG_IGN:
    discard
  elif previous.sa_handler == SIG_DFL or previous.sa_handler == nil:
    # Restore the default and let it act: a real fault re-executes and dies of SIGBUS; a
    # signal sent by kill(2) is raised again.
    var dfl: Sigaction
    dfl.sa_handler = SIG_DFL
    discard sigemptyset(dfl.sa_mask)
    discard sigaction(SIGBUS, dfl, nil)
    if info == nil or info.si_code <= 0:
      discard posix.raise(SIGBUS)
  else:
    previous.sa_handler(sig)

proc onSigbus(sig: cint, info: ptr SigInfo, ctx: pointer) {.noconv.} =
  if info != nil and info.si_code > 0:   # raised by the kernel for a memory access
    let a = cast[uint](info.si_addr)
    for e in entries.mitems:
      let base = e.base.load(moAcquire)
      if base != 0 and a >= base and a - base < e.len.load(moRelaxed):
        let len = e.len.load(moRelaxed)
        let p = mmap(cast[pointer](base), int(len), PROT_READ or PROT_WRITE,
                     MAP_PRIVATE or MAP_ANONYMOUS or MAP_FIXED, -1, 0)
        let flag = cast[ptr Atomic[uint32]](e.flag.load(moRelaxed))
        if flag != nil: flag[].store(lostCode, moRelease)
        if p != MAP_FAILED:
          return
        break   # could not replace the pages: the process dies of the fault as before
  chain(sig, info, ctx)

{.pop.}

proc install() =
  ## Once per process, before the first guarded mapping can fault.
  lockTable()
  if not installed.load(moRelaxed):
    var act: Sigaction
    act.sa_sigaction = onSigbus
    act.sa_flags = SA_SIGINFO or SA_NODEFER or SA_ONSTACK
    discard sigemptyset(act.sa_mask)
    if sigaction(SIGBUS, act, addr previous) == 0:
      installed.store(true, moRelease)
  unlockTable()

proc guardRegion*(base: pointer, len: int, flag: ptr Atomic[uint32], code: uint32): bool =
  ## Register a shared mapping; a fault in it stores `code` in `flag`. False when the table
  ## is full (`maxGuarded` rings mapped at once).
  install()
  lostCode = code
  lockTable()
  result = false
  for e in entries.mitems:
    if e.base.load(moRelaxed) == 0:
      e.len.store(uint(len), moRelaxed)
      e.flag.store(flag, moRelaxed)
      e.base.store(cast[uint](base), moRelease)
      result = true
      break
  unlockTable()

proc unguardRegion*(base: pointer) =
  ## Before the mapping goes away.
  lockTable()
  for e in entries.mitems:
    if e.base.load(moRelaxed) == cast[uint](base):
      e.base.store(0, moRelease)
      e.flag.store(nil, moRelaxed)
      break
  unlockTable()
