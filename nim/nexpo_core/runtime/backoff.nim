## Waiting for a peer thread of a lock-free structure: a few PAUSEs, then give the core away.
##
## ::
##
##   attempt fails --> wait(): round 1 .. spinLimit-1   PAUSE (cpuRelax)
##                             round spinLimit          sched_yield(), rounds start over
##
## The typed queues never block by themselves (`tryPush`/`tryPop`); their blocking `push`/`pop`
## retry with this policy. Why so short a spin: a queue that is full (empty) waits for a
## consumer (producer) to run. With more threads than cores that peer is usually NOT running,
## and only `sched_yield` lets it; every PAUSE before the yield is time the peer could have
## used. With the peer running on another core, yielding early costs one syscall (~0.2 us here,
## returning at once when nothing else is runnable) and lets a few messages pile up, so the
## next calls stream through cache lines instead of trading one line per message.
##
## Measured (typed-mpmc of benchmarks/nim/bench_channels.nim: MpmcQueue[int64], capacity
## 1024, 2 producers x 2 consumers on 2 cores, one value per call, medians of >= 5 runs):
## 64 PAUSEs (~1 us here) before yielding ~21-27M msgs/s; 0-4 PAUSEs ~30M on a loaded
## machine, ~44M on an idle one. 8 and more lose again.
##
## Sources:
## - the spin-then-yield policy of T. E. Anderson, "The Performance of Spin Lock Alternatives
##   for Shared-Memory Multiprocessors", IEEE TPDS 1990, and of M. Herlihy, N. Shavit, "The Art
##   of Multiprocessor Programming", ch. 7 (backoff)
## - sched_yield(2): the caller goes to the end of its core's queue of runnable threads
##
## Properties:
## - never sleeps: a waiter whose peer stays away keeps yielding (for waits that may last, use
##   the channels, which park on a futex)
## - no shared state: a `Backoff` is a counter on the waiter's stack; copying one is harmless
## - `reset` after progress, so the next wait starts with the short spin again

import std/posix

const spinLimit* = 4
  ## wait() rounds per sched_yield: 3 PAUSEs then a yield (see the module doc for the numbers)

type Backoff* = object
  rounds: int

proc wait*(b: var Backoff) {.inline.} =
  ## One round of waiting: PAUSE, or every `spinLimit`-th round sched_yield.
  inc b.rounds
  if b.rounds < spinLimit:
    cpuRelax()
  else:
    discard sched_yield()
    b.rounds = 0

proc reset*(b: var Backoff) {.inline.} =
  b.rounds = 0
