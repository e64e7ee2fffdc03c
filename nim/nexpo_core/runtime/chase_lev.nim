## Chase–Lev work-stealing deque, fixed capacity.
##
## The owner thread pushes and pops at the bottom (LIFO: the newest, smallest, cache-hot task);
## any other thread steals from the top (FIFO: the oldest, usually largest, piece of work).
##
## ::
##
##            steal (thieves, CAS on top)          push / pop (owner only)
##                     |                                  |
##                     v                                  v
##   buffer:  [ . . . | T0 | T1 | T2 | T3 | . . . . . . ]
##                      ^top                ^bottom
##
## Sources:
## - D. Chase, Y. Lev, "Dynamic Circular Work-Stealing Deque", SPAA 2005,
##   https://doi.org/10.1145/1073970.1073974
## - N. M. Lê, A. Pop, A. Cohen, F. Zappa Nardelli, "Correct and Efficient Work-Stealing for
##   Weak Memory Models", PPoPP 2013, https://fzn.fr/readings/ppopp13.pdf (the C11 orderings
##   used here).
##
## Properties:
## - push and pop are wait-free for the owner; steal is lock-free (one CAS on `top`)
## - the only contention is on the last element (owner pop vs. a thief), settled by the CAS
## - fixed capacity, no resizing: nexpo's tasks live in their spawner's stack frame and fork/join
##   is strict, so a deque holds at most the spawn depth; `push` returns false when full and the
##   caller runs the task inline (correct, just not stealable). No buffer is ever freed while a
##   thief may read it, so there is no memory reclamation problem.
## - `top` and `bottom` sit on separate cache lines (thieves hammer `top`, the owner `bottom`)
## - slots are written with release and read with acquire: free on x86, and it lets
##   ThreadSanitizer (which does not model fences) see the handoff of the task's contents
## - copying is forbidden: a copied deque would be a second owner

import std/atomics
import ../config, ../contracts

type
  ChaseLevDeque*[T: ptr; N: static int] = object
    top {.align: cacheLineSize.}: Atomic[int]
    bottom {.align: cacheLineSize.}: Atomic[int]
    buffer {.align: cacheLineSize.}: array[N, Atomic[T]]

proc `=copy`*[T; N](dst: var ChaseLevDeque[T, N], src: ChaseLevDeque[T, N]) {.error:
  "a Chase-Lev deque has one owner; pass it by pointer".}

proc capacity*[T; N](d: ChaseLevDeque[T, N]): int {.inline.} = N

type PushResult* = enum
  prFull      ## no room: the caller runs the item itself
  prFirst     ## pushed into an empty deque (the moment worth waking a thief for)
  prMore      ## pushed behind other items

proc push*[T; N](d: var ChaseLevDeque[T, N], item: T): PushResult {.inline.} =
  ## Owner only.
  let b = d.bottom.load(moRelaxed)
  let t = d.top.load(moAcquire)
  # Thieves move the top only up to the bottom, which only the owner (us) moves.
  invariant(t <= b and b - t <= N)
  if b - t >= N:
    return prFull
  d.buffer[b mod N].store(item, moRelease)
  fence(moRelease)
  d.bottom.store(b + 1, moRelease)
  if b == t: prFirst else: prMore

proc pop*[T; N](d: var ChaseLevDeque[T, N]): T {.inline.} =
  ## Owner only: the newest item, or nil when empty (or a thief won the last one).
  let b = d.bottom.load(moRelaxed) - 1
  d.bottom.store(b, moRelaxed)
  fence(moSequentiallyConsistent)
  var t = d.top.load(moRelaxed)
  if t <= b:
    invariant(b - t < N)
    result = d.buffer[b mod N].load(moAcquire)
    if t == b:
      # Last element: race the thieves for it.
      if not d.top.compareExchange(t, t + 1, moSequentiallyConsistent, moRelaxed):
        result = nil
      d.bottom.store(b + 1, moRelaxed)
  else:
    d.bottom.store(b + 1, moRelaxed)

proc steal*[T; N](d: var ChaseLevDeque[T, N]): T {.inline.} =
  ## Any thread: the oldest item, or nil when empty or when another thread won the race.
  var t = d.top.load(moAcquire)
  fence(moSequentiallyConsistent)
  let b = d.bottom.load(moAcquire)
  if t < b:
    let item = d.buffer[t mod N].load(moAcquire)
    if d.top.compareExchange(t, t + 1, moSequentiallyConsistent, moRelaxed):
      return item
  nil

proc looksEmpty*[T; N](d: var ChaseLevDeque[T, N]): bool {.inline.} =
  ## A racy hint for idle threads deciding whether to scan further.
  d.top.load(moAcquire) >= d.bottom.load(moAcquire)

proc reset*[T; N](d: var ChaseLevDeque[T, N]) =
  ## Empty the deque; only when no other thread can touch it (after fork, in the child).
  d.top.store(0, moRelaxed)
  d.bottom.store(0, moRelaxed)
