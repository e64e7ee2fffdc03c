## The one spin/yield/block policy of the runtime: a waiter spins with PAUSE for a few rounds,
## then gives its time slice away for a few more, then blocks in the way its structure blocks.
## Each user has its own measured constants (a `WaitPolicy`); what "block" means is its own:
##
## ==================  =========================  ==============================================
## policy              rounds                     then
## ==================  =========================  ==============================================
## `queuePolicy`       15 x 1 PAUSE, 8 yields     a 1 us nap, and over again (`Backoff`, below)
## `channelPolicy`     100 x 1 PAUSE, 16 yields   park on the ring's futex word (wake.nim), 8
##                                                spins after each wake
## `schedulerPolicy`   64 x 32 PAUSE, 16 yields   park on the pool's event count (scheduler.nim),
##                                                a 1-round spin after each wake
## ==================  =========================  ==============================================
##
## Why the channel spins longer than the queues: a channel waiter parks on a futex and is woken
## by its peer, so a park costs two system calls and a context switch, which ~100 PAUSEs
## (a few microseconds) often save; a queue waiter has no one to wake it and must come back on
## its own (below). The scheduler's rounds are steal attempts over every deque, 32 PAUSEs apart.
##
## The typed queues' policy:
##
## ::
##
##   wait() round:  1 .. 15    PAUSE (cpuRelax), ~0.25 us in all here
##                  16 .. 23   sched_yield()
##                  24         nanosleep(1 us; the kernel's timer slack makes it ~50-60 us),
##                             then the rounds start over
##
## The typed queues' blocking `push`/`pop` wait with this policy. Why so little spinning: a
## queue that is full (empty) waits for a consumer (producer) to run. With more threads than
## cores that peer is often NOT running, and only giving the core away lets it; every PAUSE
## is time the peer could have used. Why spin at all: when the peer runs on the other core the
## wait is short, and a yield per message costs more than the message. Why the nap: while
## every thread of a core spins or yields, the core never goes idle, so the kernel does not
## pull a waiting peer over from the other core's run queue; a waiter that waits on one
## particular peer (a fetch-add claim, see vyukov.nim's `push`/`pop`) can then burn its whole
## time slice. A nap idles the core.
##
## Measured on 2 cores (typed-mpmc of benchmarks/nim/bench_channels.nim: MpmcQueue[int64],
## capacity 1024, 2 producers x 2 consumers, one value per call, medians of 5-12 runs, the
## machine shared with other work): fetch-add push/pop waiting with 64 PAUSEs then yields
## 10-23M msgs/s; 3 PAUSEs then yields 26-35M, single runs down to 15M; the nap after 1-2
## yields ~23M, after 4-8 yields ~41-44M, after 12-16 ~35-42M; a nap once the wait has lasted
## 2/20/100 us (clock-based) 22/26/28M. Retried CAS (tryPush/tryPop): ~30M, with or without
## the nap. PAUSE costs ~15 ns and sched_yield ~0.2 us on that machine. Those runs used 3
## PAUSEs. The machine's state moves the numbers: idle, 3 PAUSEs ran either ~15M or ~45M
## (median 15M of 10, the old 64-PAUSE loop 16.5M), 15 PAUSEs 32-44M (median 38M); with one
## core busy with a spinning process 15 PAUSEs 42M, 3 PAUSEs 43M, the old loop 24M.
##
## Sources:
## - spin-then-yield: T. E. Anderson, "The Performance of Spin Lock Alternatives for
##   Shared-Memory Multiprocessors", IEEE TPDS 1990; M. Herlihy, N. Shavit, "The Art of
##   Multiprocessor Programming", ch. 7 (backoff)
## - sched_yield(2), nanosleep(2) and the timer slack (prctl(2) PR_SET_TIMERSLACK)
##
## Properties:
## - never blocks on anything: a waiter whose peer stays away keeps cycling, one nap per 24
##   rounds (for waits that may last, use the channels, which park on a futex and are woken)
## - no shared state: a `Backoff` is a counter on the waiter's stack; copying one is harmless
## - `reset` after progress, so the next wait starts with the short spin again

import std/posix

{.push raises: [].}

type
  WaitPolicy* = object
    spins*: int       ## rounds of PAUSE first
    pauses*: int      ## PAUSEs per spin round
    yields*: int      ## then rounds of sched_yield(); then the caller blocks
  WaitStep* = enum
    wsSpun            ## this round spun
    wsYielded         ## this round gave the core away
    wsBlock           ## spins and yields are used up: block now (and reset the count)

const
  queuePolicy* = WaitPolicy(spins: 15, pauses: 1, yields: 8)
  channelPolicy* = WaitPolicy(spins: 100, pauses: 1, yields: 16)
  schedulerPolicy* = WaitPolicy(spins: 64, pauses: 32, yields: 16)

template step*(p: static WaitPolicy, rounds: var int): WaitStep =
  ## One round of waiting under policy `p`; `rounds` counts them (0 after progress).
  inc rounds
  if rounds <= p.spins:
    for _ in 0 ..< p.pauses: cpuRelax()
    wsSpun
  elif rounds <= p.spins + p.yields:
    discard sched_yield()
    wsYielded
  else:
    wsBlock

type Backoff* = object
  rounds: int

proc nap() {.noinline.} =
  var ts = Timespec(tv_sec: posix.Time(0), tv_nsec: 1000)
  discard nanosleep(ts, ts)

proc wait*(b: var Backoff) {.inline.} =
  ## One round of waiting (see the module doc).
  if step(queuePolicy, b.rounds) == wsBlock:
    nap()
    b.rounds = 0

proc reset*(b: var Backoff) {.inline.} =
  ## After progress: the next wait starts with the spin again.
  b.rounds = 0

{.pop.}
